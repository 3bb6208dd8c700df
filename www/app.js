"use strict";
(function () {
  var card = document.querySelector(".live");
  var status = document.getElementById("live-status");
  var data = document.getElementById("live-data");
  var again = document.getElementById("live-again");
  if (!card || !status || !data) return;

  function set(id, v) {
    var el = document.getElementById(id);
    if (el) el.textContent = v == null || v === "" ? "(not sent)" : v;
  }

  function load() {
    if (!window.fetch) {
      status.textContent = "This browser has no fetch(); try opening /hello.txt directly.";
      return Promise.resolve();
    }
    status.textContent = "Fetching /hello.txt…";
    if (again) again.disabled = true;
    var t0 = performance.now();
    return fetch("/hello.txt", { cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text().then(function (body) {
          var ms = performance.now() - t0;
          var h = r.headers;
          set("h-body", JSON.stringify(body));
          set("h-time", ms.toFixed(1) + " ms");
          set("h-server", h.get("Server"));
          set("h-length", h.get("Content-Length"));
          set("h-etag", h.get("ETag"));
          set("h-modified", h.get("Last-Modified"));
          status.textContent = "GET /hello.txt → " + r.status + " " + (r.statusText || "OK");
          data.hidden = false;
          card.classList.add("ok");
        });
      })
      .catch(function (e) {
        card.classList.remove("ok");
        data.hidden = true;
        status.textContent = "Couldn't reach /hello.txt (" + (e && e.message || "network error") +
          "). Live details are unavailable right now.";
      })
      .then(function () { if (again) again.disabled = false; });
  }

  if (again) again.addEventListener("click", load);
  var first = load();
  // Tests (headless --dump-dom) look for data-ready="true" once the first fetch has settled.
  function ready() { document.body.dataset.ready = "true"; }
  if (first && first.then) first.then(ready, ready); else ready();
})();
