// The SharedWorker behind shared-stream.js: one EventSource for every tab of this browser that
// shows the same stream (the worker is named after the stream's path), its events passed on to
// each tab's MessagePort.
//
// - A tab attaches with {type: "attach", url, events, lock}. The first tab's URL opens the
//   stream, and so does the next one's after the stream gave up (readyState CLOSED); a tab
//   that attaches to a stream already open is told "open" at once. The EventSource reconnects
//   by itself (with Last-Event-ID) and every tab hears "error" then "open" again.
// - A tab detaches with {type: "detach"} when it closes its handle. One that goes away without
//   a word (closed, crashed) lets go of the lock it held, which grants the worker's own
//   request for that lock: the worker forgets its port then. The tab that opened the stream
//   is a tab like the others: the stream goes on for the rest. With no tab left, it closes.
"use strict";

var source = null;      // the EventSource, or null
var ports = new Set();  // the ports of the tabs attached
var names = new Set();  // the event names some tab listens for

self.addEventListener("connect", function (e) {
  var port = e.ports[0];
  port.addEventListener("message", function (m) {
    var msg = m.data;
    if (!msg) return;
    if (msg.type === "attach") attach(port, msg);
    else if (msg.type === "detach") detach(port);
  });
  port.start();
});

function attach(port, msg) {
  if (ports.has(port)) return;
  ports.add(port);
  if (msg.lock && self.navigator.locks) {
    navigator.locks.request(msg.lock, function () { detach(port); }).catch(function () {});
  }
  (msg.events || ["message"]).forEach(listenFor);
  if (!source || source.readyState === EventSource.CLOSED) openSource(msg.url);
  else if (source.readyState === EventSource.OPEN) port.postMessage({ type: "open" });
}

function detach(port) {
  if (!ports.delete(port)) return;
  port.close();
  if (ports.size === 0 && source) {
    source.close();
    source = null;
  }
}

function openSource(url) {
  if (source) source.close();
  var es = new EventSource(url);
  source = es;
  es.addEventListener("open", function () {
    if (es === source) broadcast({ type: "open" });
  });
  es.addEventListener("error", function () {
    if (es === source) broadcast({ type: "error", readyState: es.readyState });
  });
  names.forEach(function (name) { forward(es, name); });
}

function listenFor(name) {
  if (names.has(name)) return;
  names.add(name);
  if (source) forward(source, name);
}

function forward(es, name) {
  es.addEventListener(name, function (ev) {
    if (es === source) broadcast({ type: "event", name: name, data: ev.data, lastEventId: ev.lastEventId });
  });
}

function broadcast(msg) {
  ports.forEach(function (port) { port.postMessage(msg); });
}
