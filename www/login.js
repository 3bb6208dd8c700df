"use strict";

// Login and registration for looplight. Server data is shown with textContent only.
(function () {
  var shared = window.looplightApi;
  var ApiError = shared.ApiError;
  var api = shared.api;
  var retrySeconds = shared.retrySeconds;

  var $ = function (id) { return document.getElementById(id); };
  var loginForm = $("login-form"), regForm = $("register-form");
  var loginUser = $("login-username"), loginPass = $("login-password");
  var regUser = $("reg-username"), regPass = $("reg-password"), regPass2 = $("reg-password2");
  var signedIn = $("signed-in"), who = $("who"), logoutBtn = $("logout"), cont = $("continue-link");

  // Where to go after logging in: ?next=posts.html#42 (only our own pages), else the blog.
  function nextUrl() {
    var n = new URLSearchParams(location.search).get("next") || "";
    return /^[a-z][a-z0-9_-]*\.html(#[A-Za-z0-9_\/=%.~-]*)?$/.test(n) ? n : "posts.html";
  }
  var NEXT = nextUrl();
  cont.href = NEXT;




  function setStatus(node, text, kind) {
    text = String(text || "");
    node.className = "status" + (kind ? " " + kind : "");
    node.textContent = text.charAt(0).toUpperCase() + text.slice(1);
  }

  // Per-form state: busy while a request runs, locked while a 429 cools down.
  function Ctl(form, button, statusNode) {
    this.form = form; this.button = button; this.status = statusNode;
    this.label = button.textContent; this.busy = false; this.lockedUntil = 0; this.timer = null;
  }
  Ctl.prototype.blocked = function () { return this.busy || Date.now() < this.lockedUntil; };
  Ctl.prototype.start = function (text) {
    this.busy = true;
    this.form.setAttribute("aria-busy", "true");
    this.button.setAttribute("aria-disabled", "true");
    setStatus(this.status, text, "");
  };
  Ctl.prototype.stop = function () {
    this.busy = false;
    this.form.removeAttribute("aria-busy");
    if (Date.now() >= this.lockedUntil) this.button.removeAttribute("aria-disabled");
  };
  Ctl.prototype.fail = function (e, prefix) {
    var secs = e.status === 429 ? retrySeconds(e.retryAfter) : null;
    if (e.status === 429) {
      var msg = (e.message || "Too many attempts").replace(/[.!\s]+$/, "");
      setStatus(this.status, secs != null
        ? msg + " — try again in " + secs + " s."
        : msg + " — please wait a little and try again.", "error");
      if (secs != null && secs > 0) this.lock(secs);
      return;
    }
    setStatus(this.status, (prefix || "") + e.message, "error");
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

  var loginCtl = new Ctl(loginForm, $("login-submit"), $("login-status"));
  var regCtl = new Ctl(regForm, $("register-submit"), $("register-status"));

  function welcome(ctl, username) {
    setStatus(ctl.status, "Welcome, " + username + "! Taking you to the blog…", "ok");
    location.assign(NEXT);
  }

  loginForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (loginCtl.blocked()) return;
    var username = loginUser.value.trim(), password = loginPass.value;
    loginCtl.start("Logging in…");
    api("POST", "/api/auth/login", { username: username, password: password }).then(function (d) {
      loginCtl.stop();
      welcome(loginCtl, d && d.username ? String(d.username) : username);
    }, function (e) {
      loginCtl.stop();
      loginCtl.fail(e, e.status === 401 ? "" : "Couldn't log in: ");
      if (e.status === 401) { loginPass.select(); loginPass.focus(); }
    });
  });

  // Repeated password must match; report it through the browser's own validation.
  function checkMatch() {
    regPass2.setCustomValidity(regPass2.value && regPass2.value !== regPass.value ? "The passwords don't match." : "");
  }
  regPass.addEventListener("input", checkMatch);
  regPass2.addEventListener("input", checkMatch);

  regForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    checkMatch();
    if (!regForm.reportValidity()) return;
    if (regCtl.blocked()) return;
    var username = regUser.value.trim(), password = regPass.value;
    regCtl.start("Creating your account…");
    api("POST", "/api/auth/register", { username: username, password: password }).then(function () {
      setStatus(regCtl.status, "Account created. Logging you in…", "");
      return api("POST", "/api/auth/login", { username: username, password: password }).then(function (d) {
        regCtl.stop();
        welcome(regCtl, d && d.username ? String(d.username) : username);
      }, function (e) {
        regCtl.stop();
        loginUser.value = username;
        setStatus(regCtl.status, "Account created, but logging in failed (" + e.message + "). Please log in.", "error");
        loginPass.focus();
      });
    }, function (e) {
      regCtl.stop();
      regCtl.fail(e, e.status === 409 || e.status === 422 ? "" : "Couldn't create the account: ");
      if (e.status === 409) { regUser.select(); regUser.focus(); }
    });
  });

  logoutBtn.addEventListener("click", function () {
    api("POST", "/api/auth/logout").then(null, function (e) {
      if (e.status !== 401) throw e;
    }).then(function () {
      signedIn.hidden = true;
      setStatus(loginCtl.status, "You're logged out.", "ok");
      loginUser.focus();
    }, function (e) {
      setStatus(loginCtl.status, "Couldn't log out: " + e.message, "error");
    });
  });

  // The skip link shouldn't leave "#main" in the URL; just move focus.
  var skip = document.querySelector(".skip");
  if (skip) skip.addEventListener("click", function (ev) { ev.preventDefault(); $("main").focus(); });

  function ready() { document.body.dataset.ready = "true"; }
  if (!window.fetch) { setStatus(loginCtl.status, "This browser is too old (no fetch()).", "error"); ready(); return; }

  // Already logged in? Say so (the forms stay usable to switch accounts).
  api("GET", "/api/auth/me").then(function (d) {
    if (d && typeof d.username === "string") {
      who.textContent = d.username;
      signedIn.hidden = false;
    }
  }, function () { /* 401: not logged in; anything else: the forms will report it */ }).then(ready, ready);
})();
