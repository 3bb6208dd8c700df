"use strict";

// Login and registration for looplight. Server data is shown with textContent only.
(function () {
  var shared = window.looplightApi;
  var setStatus = shared.setStatus;
  var Ctl = shared.FormControl;
  var api = shared.api;

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
