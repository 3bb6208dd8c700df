// Shared by the page scripts: calls to looplight's JSON API, and its errors as readable text.
// Loaded (deferred) before each page's own script, which picks what it needs from
// window.looplightApi.
(function () {
  "use strict";

  function ApiError(message, status, retryAfter) {
    this.message = message; this.status = status; this.retryAfter = retryAfter;
  }

  function api(method, path, body) {
    var opts = { method: method, credentials: "same-origin", cache: "no-store", headers: { "Accept": "application/json" } };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(path, opts).then(function (r) {
      return r.text().then(function (text) {
        var data = null;
        if (text) { try { data = JSON.parse(text); } catch (e) { data = null; } }
        if (r.ok) return data;
        var msg = data && typeof data.error === "string" && data.error
          ? data.error
          : "The server answered " + r.status + (r.statusText ? " " + r.statusText : "") +
            (data === null ? "; the JSON API may not be running." : ".");
        throw new ApiError(msg, r.status, r.headers.get("Retry-After"));
      });
    }, function () {
      throw new ApiError("Couldn't reach the server. Check your connection and try again.", 0, null);
    });
  }

  function errText(e) {
    if (e instanceof ApiError) return e.message;
    return "Something went wrong: " + (e && e.message ? e.message : String(e));
  }

  // Retry-After is either delta-seconds or an HTTP date; returns whole seconds or null.
  function retrySeconds(v) {
    if (v == null || v === "") return null;
    if (/^\s*\d+\s*$/.test(v)) return parseInt(v, 10);
    var t = Date.parse(v);
    return isNaN(t) ? null : Math.max(1, Math.ceil((t - Date.now()) / 1000));
  }

  window.looplightApi = { ApiError: ApiError, api: api, errText: errText, retrySeconds: retrySeconds };
})();
