// Live reload (looplight --watch, for development): the page reloads when a file under the
// site's root changes, and when the server comes back after a restart. The stream of reload
// events is shared by every tab of the browser (shared-stream.js, above);
// window.looplightLiveReload is its handle, for a look from the console.
(function () {
  "use strict";
  if (!window.EventSource || !window.looplightStream) return;
  var stream = null;

  function listen() {
    var lost = false;  // the stream broke since it last opened: its return means a restart
    stream = window.looplightStream.open("/_looplight/reload", {
      worker: "/_looplight/shared-stream-worker.js",
      events: ["reload"]
    });
    stream.addEventListener("reload", function () { location.reload(); });
    stream.addEventListener("error", function () { lost = true; });
    stream.addEventListener("open", function () { if (lost) location.reload(); });
    window.looplightLiveReload = stream;
  }

  // Leaving the page lets go of the stream; a page restored from the back/forward cache may
  // be out of date, so it loads again.
  window.addEventListener("pagehide", function () {
    if (stream) stream.close();
    stream = null;
  });
  window.addEventListener("pageshow", function (ev) {
    if (ev.persisted) location.reload();
  });
  listen();
})();
