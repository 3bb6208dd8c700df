// One event stream per browser, not per tab. A browser opens at most six HTTP/1.1 connections
// to a host, so with an EventSource per tab the seventh tab's stream (and every request after
// it) would wait without an error.
//
// looplightStream.open(url, {worker, events}) gives a handle that acts like an EventSource:
// addEventListener("open" | "error" | one of `events`), readyState, close(). Events reach
// listeners as {data, lastEventId}.
// - Where SharedWorker exists, the stream belongs to a worker (the script `worker`, see
//   shared-stream-worker.js) that every tab showing the same stream shares; each tab hears its
//   events over a MessagePort (handle.shared is true). A tab holds a Web Lock while it
//   listens, so the worker learns when the tab goes away, even one that crashed.
// - Elsewhere, or if the worker cannot start, the tab opens an EventSource of its own.
(function () {
  "use strict";

  var CONNECTING = 0, OPEN = 1, CLOSED = 2;

  function Handle() {
    this.readyState = CONNECTING;
    this.shared = false;
    this.listeners = {};
  }
  Handle.prototype.addEventListener = function (type, listener) {
    (this.listeners[type] = this.listeners[type] || []).push(listener);
  };
  Handle.prototype.dispatch = function (type, event) {
    var self = this;
    (this.listeners[type] || []).slice().forEach(function (listener) { listener.call(self, event); });
  };
  Handle.prototype.close = function () { this.readyState = CLOSED; };

  function open(url, options) {
    options = options || {};
    var events = options.events || ["message"];
    var handle = new Handle();
    if (options.worker && window.SharedWorker) {
      try {
        openShared(handle, url, options.worker, events);
        return handle;
      } catch (e) { /* not allowed here (the page's policy, say): the tab goes alone */ }
    }
    openOwn(handle, url, events);
    return handle;
  }

  // The tab's own EventSource.
  function openOwn(handle, url, events) {
    var source = new EventSource(url);
    handle.shared = false;
    handle.readyState = CONNECTING;
    source.addEventListener("open", function () {
      handle.readyState = OPEN;
      handle.dispatch("open", {});
    });
    source.addEventListener("error", function () {
      handle.readyState = source.readyState;
      handle.dispatch("error", {});
    });
    events.forEach(function (name) {
      source.addEventListener(name, function (ev) {
        handle.dispatch(name, { data: ev.data, lastEventId: ev.lastEventId });
      });
    });
    handle.close = function () {
      source.close();
      handle.readyState = CLOSED;
    };
  }

  // The stream of the SharedWorker that every tab showing `url`'s path shares.
  function openShared(handle, url, workerUrl, events) {
    var href = new URL(url, location.href);
    var worker = new SharedWorker(workerUrl, { name: "looplight-stream " + href.pathname });
    var port = worker.port;
    var done = false;       // detached: closed, or gone alone
    var attached = false;   // the worker was asked to attach this tab
    var release = null;     // lets go of this tab's lock

    function detach() {
      if (done) return;
      done = true;
      port.postMessage({ type: "detach" });
      port.close();
      if (release) release();
    }

    handle.shared = true;
    handle.close = function () {
      detach();
      handle.readyState = CLOSED;
    };
    // The worker's script could not be loaded, or failed: the tab goes alone.
    worker.addEventListener("error", function () {
      if (done) return;
      detach();
      openOwn(handle, url, events);
    });
    port.addEventListener("message", function (m) {
      var msg = m.data;
      if (done || !msg) return;
      if (msg.type === "open") {
        handle.readyState = OPEN;
        handle.dispatch("open", {});
      } else if (msg.type === "error") {
        handle.readyState = msg.readyState;
        handle.dispatch("error", {});
      } else if (msg.type === "event") {
        handle.dispatch(msg.name, { data: msg.data, lastEventId: msg.lastEventId });
      }
    });
    port.start();

    var attach = { type: "attach", url: href.href, events: events };
    function sendAttach() {
      if (done || attached) return;
      attached = true;
      port.postMessage(attach);
    }
    if (!navigator.locks) {
      sendAttach();
      return;
    }
    // Held for as long as this tab listens: let go by detach(), or by the browser when the
    // tab closes, navigates away or crashes. The worker asks for it too, and is granted it then.
    attach.lock = "looplight-stream-tab " + Date.now().toString(36) + Math.random().toString(36).slice(2);
    navigator.locks.request(attach.lock, function () {
      if (done) return null;
      sendAttach();
      return new Promise(function (resolve) { release = resolve; });
    }).catch(sendAttach);  // no locks for this page after all: attach without one
  }

  window.looplightStream = { open: open, CONNECTING: CONNECTING, OPEN: OPEN, CLOSED: CLOSED };
})();
