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

  // A status line (aria-live element) with a kind: "", "error", "ok".
  function setStatus(node, text, kind) {
    text = String(text || "");
    node.className = "status" + (kind ? " " + kind : "");
    node.textContent = text.charAt(0).toUpperCase() + text.slice(1);
  }

  // A form with a busy state while its request runs and a countdown lock after a 429.

  function Ctl(form, button, statusNode) {
    this.form = form; this.button = button; this.status = statusNode;
    this.label = button.textContent; this.busy = false; this.lockedUntil = 0; this.timer = null;
  }
  Ctl.prototype.blocked = function () { return this.busy || Date.now() < this.lockedUntil; };
  Ctl.prototype.start = function (text) {
    this.busy = true;
    this.form.setAttribute("aria-busy", "true");
    this.button.setAttribute("aria-disabled", "true");
    if (text != null) setStatus(this.status, text, "");
  };
  Ctl.prototype.stop = function () {
    this.busy = false;
    this.form.removeAttribute("aria-busy");
    if (Date.now() >= this.lockedUntil) this.button.removeAttribute("aria-disabled");
  };
  Ctl.prototype.fail = function (e, prefix) {
    if (e.status === 429) {
      var secs = retrySeconds(e.retryAfter);
      var msg = (e.message || "Too many attempts").replace(/[.!\s]+$/, "");
      setStatus(this.status, secs != null
        ? msg + " — try again in " + secs + " s."
        : msg + " — please wait a little and try again.", "error");
      if (secs != null && secs > 0) this.lock(secs);
      return;
    }
    setStatus(this.status, (prefix || "") + errText(e), "error");
  };
  // Keep the button unusable for `secs` seconds, counting down on its label (not in the live region).
  Ctl.prototype.lock = function (secs) {
    var self = this;
    this.lockedUntil = Date.now() + secs * 1000;
    this.button.setAttribute("aria-disabled", "true");
    clearInterval(this.timer);
    var tick = function () {
      var left = Math.ceil((self.lockedUntil - Date.now()) / 1000);
      if (left <= 0) {
        clearInterval(self.timer);
        self.button.textContent = self.label;
        if (!self.busy) self.button.removeAttribute("aria-disabled");
        return;
      }
      self.button.textContent = self.label + " (wait " + left + " s)";
    };
    tick();
    this.timer = setInterval(tick, 1000);
  };

  Ctl.prototype.unlock = function () {
    if (!this.lockedUntil) return;
    clearInterval(this.timer);
    this.lockedUntil = 0;
    this.button.textContent = this.label;
    if (!this.busy) this.button.removeAttribute("aria-disabled");
  };

  window.looplightApi = {
    ApiError: ApiError, api: api, errText: errText, retrySeconds: retrySeconds,
    setStatus: setStatus, FormControl: Ctl
  };
})();
