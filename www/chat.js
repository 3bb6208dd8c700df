"use strict";

// The group chat for looplight: log in / register inline, then one room fed by
// GET /api/chat/messages (history) and the stream /api/chat/stream (live). The stream is
// shared by every tab of the browser (shared-stream.js): any number of chat tabs hold one
// connection, not one each (a browser opens at most six to a host).
// Every piece of server data is rendered with textContent / text nodes, never innerHTML.
(function () {
  var shared = window.looplightApi;
  var setStatus = shared.setStatus;
  var Ctl = shared.FormControl;
  var ApiError = shared.ApiError;
  var api = shared.api;
  var errText = shared.errText;

  var HISTORY = 50;        // messages loaded on entering the room
  var CATCH_UP = 200;      // messages per request when catching up (the API's largest page)
  var MAX_CHARS = 2000;    // longest message the API accepts
  var KEEP = 1000;         // most messages kept in the DOM (older ones are dropped)
  var NEAR_BOTTOM = 48;    // px: "at the bottom" tolerance for auto-scroll

  var $ = function (id) { return document.getElementById(id); };
  var el = {
    main: $("main"), status: $("status"), conn: $("conn"), connText: $("conn-text"),
    session: $("session"), who: $("who"), logout: $("logout"),
    auth: $("auth"), loginForm: $("login-form"), loginUser: $("login-username"), loginPass: $("login-password"),
    regForm: $("register-form"), regUser: $("register-username"), regPass: $("register-password"), regPass2: $("register-password2"),
    room: $("room"), log: $("log"), list: $("messages"), loading: $("chat-loading"), empty: $("chat-empty"), jump: $("jump"),
    sendForm: $("send-form"), text: $("message-text"), send: $("message-send"), countWrap: $("send-count"), count: $("count-n"),
    sendStatus: $("send-status")
  };

  var me = null;           // username of the visitor, or null
  var epoch = 0;           // bumps on every enter/leave of the room; stale callbacks are dropped
  var shown = new Set();   // ids of messages ever shown in this room session (never shown twice)
  var lastId = 0;          // newest message id shown
  var source = null;       // the live stream (a looplightStream handle, like an EventSource)
  var retryTimer = null;   // manual reconnect after the browser gave up (readyState CLOSED)
  var retryDelay = 2000;
  var everOpen = false;    // the stream has opened at least once since entering the room
  var sending = false;
  var stuck = true;        // the log is scrolled to the newest message (keep it there)

  // ---------- API (same conventions as posts.js / login.js) ----------





  // ---------- small DOM helpers ----------

  function h(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text != null) n.textContent = text;
    return n;
  }

  function clear(n) { while (n.firstChild) n.removeChild(n.firstChild); }


  function status(text, kind) { setStatus(el.status, text, kind); }

  function ready() { document.body.dataset.ready = "true"; }


  var loginCtl = new Ctl(el.loginForm, $("login-submit"), $("login-status"));
  var regCtl = new Ctl(el.regForm, $("register-submit"), $("register-status"));
  var sendCtl = new Ctl(el.sendForm, el.send, el.sendStatus);

  // ---------- views ----------

  function showAuth(focus) {
    me = null;
    el.session.hidden = true;
    el.room.hidden = true;
    el.conn.hidden = true;
    el.auth.hidden = false;
    document.title = "Chat — looplight";
    if (focus) el.loginUser.focus();
  }

  function showRoom() {
    el.who.textContent = me;
    el.session.hidden = false;
    el.auth.hidden = true;
    el.room.hidden = false;
    el.conn.hidden = false;
    setStatus(loginCtl.status, ""); setStatus(regCtl.status, "");
    el.loginPass.value = ""; el.regPass.value = ""; el.regPass2.value = "";
  }

  // ---------- connection state ----------

  var connState = "";
  function setConn(state) {
    if (state === "connected") document.body.dataset.room = "connected";
    else if (state === "reconnecting") document.body.dataset.room = "reconnecting";
    else delete document.body.dataset.room;
    if (state === connState) return;   // don't repeat the same news in the live region
    connState = state;
    el.conn.className = "conn" + (state ? " " + state : "");
    el.connText.textContent = state === "connected" ? "connected"
      : state === "reconnecting" ? "reconnecting…"
      : "connecting…";
  }

  // ---------- messages ----------

  function sameDay(a, b) {
    return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
  }

  function fmtTime(d) {
    var now = new Date();
    var opts = { hour: "numeric", minute: "2-digit" };
    if (!sameDay(d, now)) {
      opts.month = "short"; opts.day = "numeric";
      if (d.getFullYear() !== now.getFullYear()) opts.year = "numeric";
    }
    try { return new Intl.DateTimeFormat(undefined, opts).format(d); } catch (e) { return d.toLocaleString(); }
  }

  function timeEl(s) {
    var d = new Date(s);
    if (!s || isNaN(d.getTime())) return h("time", null, String(s || ""));
    var t = h("time", "message-time", fmtTime(d));
    t.setAttribute("datetime", String(s));
    try {
      t.title = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" }).format(d);
    } catch (e) { t.title = d.toLocaleString(); }
    return t;
  }

  function messageItem(m) {
    var li = h("li", "message");
    li.dataset.id = String(m.id);
    var mine = me !== null && m.user === me;
    if (mine) li.classList.add("mine");
    var head = h("p", "message-head");
    head.appendChild(h("span", "message-user", m.user));
    if (mine) head.appendChild(h("span", "message-you", "you"));
    head.appendChild(timeEl(m.sent_at));
    li.appendChild(head);
    li.appendChild(h("p", "message-text", m.text));
    return li;
  }

  function validMessage(m) {
    return m && typeof m.id === "number" && isFinite(m.id) && typeof m.text === "string";
  }

  function atBottom() {
    var l = el.log;
    return l.scrollHeight - l.scrollTop - l.clientHeight <= NEAR_BOTTOM;
  }

  function scrollToEnd() { el.log.scrollTop = el.log.scrollHeight; }

  // Add messages in id order, skipping ids already shown. `forceScroll` when the visitor sent it.
  function addMessages(msgs, forceScroll) {
    var stick = stuck || atBottom() || forceScroll;
    var added = 0;
    msgs.forEach(function (m) {
      if (!validMessage(m) || shown.has(m.id)) return;
      shown.add(m.id);
      m = { id: m.id, user: String(m.user == null ? "" : m.user), text: m.text, sent_at: m.sent_at };
      var li = messageItem(m);
      if (m.id > lastId) {
        el.list.appendChild(li);
        lastId = m.id;
      } else {
        // Arrived late (e.g. our POST answer after a newer message from the stream): insert in place.
        var after = el.list.lastElementChild;
        while (after && Number(after.dataset.id) > m.id) after = after.previousElementSibling;
        el.list.insertBefore(li, after ? after.nextSibling : el.list.firstChild);
      }
      added++;
    });
    if (!added) return;
    while (el.list.children.length > KEEP) el.list.removeChild(el.list.firstElementChild);
    el.empty.hidden = true;
    if (stick) { scrollToEnd(); stuck = true; el.jump.hidden = true; }
    else el.jump.hidden = false;
  }

  el.log.addEventListener("scroll", function () {
    stuck = atBottom();
    if (stuck) el.jump.hidden = true;
  }, { passive: true });
  // A resized log (rotation, on-screen keyboard, window resize) stays at the bottom if it was there.
  if (window.ResizeObserver) {
    var ro = new ResizeObserver(function () { if (stuck && !el.room.hidden) scrollToEnd(); });
    ro.observe(el.log);
    ro.observe(el.list);
  }
  el.jump.addEventListener("click", function () {
    scrollToEnd();
    stuck = true;
    el.jump.hidden = true;
    el.text.focus();
  });

  // ---------- the live stream ----------

  function closeStream() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (source) { source.close(); source = null; }
  }

  function openStream(my) {
    closeStream();
    if (my !== epoch) return;
    var es;
    try {
      es = window.looplightStream.open("/api/chat/stream?after=" + lastId, {
        worker: "shared-stream-worker.js",
        events: ["message"]
      });
    } catch (e) {
      status("This browser can't open the live stream: " + errText(e), "error");
      ready();
      return;
    }
    source = es;
    es.addEventListener("open", function () {
      if (es !== source) return;
      retryDelay = 2000;
      setConn("connected");
      if (!everOpen) { everOpen = true; ready(); }
      if (es.shared) catchUp(my, es);
    });
    es.addEventListener("message", function (ev) {
      if (es !== source) return;
      var m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      addMessages([m], false);
    });
    es.addEventListener("error", function () {
      if (es !== source) return;
      setConn("reconnecting");
      // CONNECTING: the browser retries by itself (with Last-Event-ID). CLOSED: it gave up,
      // e.g. the server answered with an error status; find out why, then retry ourselves.
      if (es.readyState !== window.looplightStream.CLOSED) return;
      es.close();
      source = null;
      if (!everOpen) ready();
      api("GET", "/api/auth/me").then(function () {
        if (my !== epoch) return;
        var wait = retryDelay;
        retryDelay = Math.min(retryDelay * 2, 30000);
        retryTimer = setTimeout(function () { openStream(my); }, wait);
      }, function (e) {
        if (my !== epoch) return;
        if (e.status === 401) { sessionLost(); return; }
        retryTimer = setTimeout(function () { openStream(my); }, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 30000);
      });
    });
  }

  // A stream shared with other tabs was opened for one of them, maybe long before this tab
  // joined: what came before this tab listened is read from the API. Nothing falls between
  // the two: this tab hears every message published from the moment it is told "open", and
  // the request below, sent after that, finds every message committed before it (a message is
  // committed before it is published). Both may bring the same one; it is shown once.
  function catchUp(my, es) {
    api("GET", "/api/chat/messages?limit=" + CATCH_UP + "&after=" + lastId).then(function (d) {
      if (my !== epoch || es !== source || !d || !Array.isArray(d.messages)) return;
      var msgs = d.messages.filter(validMessage).sort(function (a, b) { return a.id - b.id; });
      addMessages(msgs, false);
      if (msgs.length === CATCH_UP) catchUp(my, es);  // a full page: there may be more
    }, function () { /* the stream goes on; its next "open" catches up again */ });
  }

  // ---------- entering / leaving the room ----------

  function enterRoom(username) {
    var my = ++epoch;
    closeStream();
    me = username;
    shown = new Set();
    lastId = 0;
    everOpen = false;
    retryDelay = 2000;
    clear(el.list);
    stuck = true;
    el.loading.hidden = false;
    el.empty.hidden = true;
    el.jump.hidden = true;
    el.log.setAttribute("aria-busy", "true");
    setStatus(sendCtl.status, "");
    setConn("");
    status("");
    showRoom();
    document.title = "Chat (" + username + ") — looplight";
    return api("GET", "/api/chat/messages?limit=" + HISTORY).then(function (d) {
      if (my !== epoch) return;
      if (!d || !Array.isArray(d.messages)) throw new ApiError("The server sent an unexpected answer for the messages.", 0);
      var msgs = d.messages.filter(validMessage).sort(function (a, b) { return a.id - b.id; });
      el.loading.hidden = true;
      addMessages(msgs, true);
      el.empty.hidden = shown.size > 0;
      el.log.removeAttribute("aria-busy");
      scrollToEnd();
      stuck = true;
      openStream(my);
      if (document.activeElement === document.body || !document.activeElement ||
          el.auth.contains(document.activeElement)) el.text.focus({ preventScroll: true });
    }, function (e) {
      if (my !== epoch) return;
      el.loading.hidden = true;
      el.log.removeAttribute("aria-busy");
      if (e.status === 401) { sessionLost(); ready(); return; }
      status("Couldn't load the messages: " + errText(e), "error");
      var again = h("button", "btn ghost tiny retry", "Try again");
      again.type = "button";
      again.addEventListener("click", function () { enterRoom(username); });
      el.status.appendChild(document.createTextNode(" "));
      el.status.appendChild(again);
      ready();
    });
  }

  function leaveRoom() {
    epoch++;
    closeStream();
    setConn("");
    clear(el.list);
    shown = new Set();
    lastId = 0;
    sendCtl.stop();
    sending = false;
    el.text.value = "";
    updateCount();
    showAuth(false);
  }

  // The API answered 401: the session is gone.
  function sessionLost() {
    leaveRoom();
    status("Your session has expired. Please log in again.", "error");
    el.loginUser.focus();
  }

  el.logout.addEventListener("click", function () {
    if (el.logout.getAttribute("aria-disabled") === "true") return;
    el.logout.setAttribute("aria-disabled", "true");
    api("POST", "/api/auth/logout").then(function () { return true; }, function (e) {
      if (e.status === 401) return true; // already logged out
      status("Couldn't log out: " + errText(e), "error");
      return false;
    }).then(function (ok) {
      el.logout.removeAttribute("aria-disabled");
      if (!ok) return;
      leaveRoom();
      status("You're logged out.", "ok");
      el.loginUser.focus();
    });
  });

  // ---------- login / register ----------

  el.loginForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (loginCtl.blocked()) return;
    var username = el.loginUser.value.trim(), password = el.loginPass.value;
    lockedName = username;
    if (!username || !password) {
      setStatus(loginCtl.status, "Please enter your username and password.", "error");
      (username ? el.loginPass : el.loginUser).focus();
      return;
    }
    loginCtl.start("Logging in…");
    status("");
    api("POST", "/api/auth/login", { username: username, password: password }).then(function (d) {
      loginCtl.stop();
      enterRoom(d && typeof d.username === "string" ? d.username : username);
    }, function (e) {
      loginCtl.stop();
      loginCtl.fail(e, e.status === 401 ? "" : "Couldn't log in: ");
      if (e.status === 401) { el.loginPass.select(); el.loginPass.focus(); }
    });
  });

  // The server rate-limits failed logins per username, so a cool-down only holds for that name.
  var lockedName = "";
  el.loginUser.addEventListener("input", function () {
    if (loginCtl.lockedUntil && el.loginUser.value.trim() !== lockedName) loginCtl.unlock();
  });

  // The repeated password must match; report it through the browser's own validation.
  function checkMatch() {
    el.regPass2.setCustomValidity(el.regPass2.value && el.regPass2.value !== el.regPass.value ? "The passwords don't match." : "");
  }
  el.regPass.addEventListener("input", checkMatch);
  el.regPass2.addEventListener("input", checkMatch);

  el.regForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    checkMatch();
    if (!el.regForm.reportValidity()) return;
    if (regCtl.blocked()) return;
    var username = el.regUser.value.trim(), password = el.regPass.value;
    regCtl.start("Creating your account…");
    status("");
    api("POST", "/api/auth/register", { username: username, password: password }).then(function () {
      setStatus(regCtl.status, "Account created. Logging you in…", "");
      return api("POST", "/api/auth/login", { username: username, password: password }).then(function (d) {
        regCtl.stop();
        el.regUser.value = "";
        enterRoom(d && typeof d.username === "string" ? d.username : username);
      }, function (e) {
        regCtl.stop();
        el.loginUser.value = username;
        setStatus(regCtl.status, "Account created, but logging in failed (" + errText(e) + "). Please log in.", "error");
        el.loginPass.focus();
      });
    }, function (e) {
      regCtl.stop();
      regCtl.fail(e, e.status === 409 || e.status === 422 ? "" : "Couldn't create the account: ");
      if (e.status === 409) { el.regUser.select(); el.regUser.focus(); }
    });
  });

  // ---------- sending ----------

  function charCount(s) { return Array.from(s).length; }  // code points, like the server

  function updateCount() {
    var n = charCount(el.text.value);
    el.count.textContent = String(n);
    var over = n > MAX_CHARS;
    el.countWrap.classList.toggle("over", over);
    if (over) el.text.setAttribute("aria-invalid", "true");
    else el.text.removeAttribute("aria-invalid");
    // grow the textarea with its content, up to the CSS max-height
    if (el.room.hidden) return;
    el.text.style.height = "auto";
    el.text.style.height = el.text.scrollHeight + 2 + "px";
  }

  el.text.addEventListener("input", function () {
    updateCount();
    if (el.sendStatus.classList.contains("error")) setStatus(el.sendStatus, "");
  });

  // Enter sends; Shift+Enter (or an IME composing text) inserts a line break.
  el.text.addEventListener("keydown", function (ev) {
    if (ev.key !== "Enter" || ev.shiftKey || ev.altKey || ev.ctrlKey || ev.metaKey || ev.isComposing || ev.keyCode === 229) return;
    ev.preventDefault();
    if (el.sendForm.requestSubmit) el.sendForm.requestSubmit();
    else el.send.click();
  });

  el.sendForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (sending || sendCtl.blocked() || !me) return;
    var text = el.text.value;
    var n = charCount(text);
    if (!text.trim()) {
      setStatus(el.sendStatus, "Type a message first.", "error");
      el.text.focus();
      return;
    }
    if (n > MAX_CHARS) {
      setStatus(el.sendStatus, "That's " + n + " characters; a message can have at most " + MAX_CHARS + ".", "error");
      el.text.focus();
      return;
    }
    var my = epoch;
    sending = true;
    sendCtl.start(null);
    setStatus(el.sendStatus, "");
    api("POST", "/api/chat/messages", { text: text }).then(function (m) {
      if (my !== epoch) return;
      sending = false;
      sendCtl.stop();
      if (validMessage(m)) addMessages([m], true);
      // Clear only if the visitor hasn't started on something else meanwhile.
      if (el.text.value === text) el.text.value = "";
      updateCount();
      el.text.focus();
    }, function (e) {
      if (my !== epoch) return;
      sending = false;
      sendCtl.stop();
      if (e.status === 401) { sessionLost(); return; }
      sendCtl.fail(e, "Couldn't send: ");
      el.text.focus();
    });
  });

  // ---------- start ----------

  // The skip link shouldn't leave "#main" in the URL; just move focus.
  var skip = document.querySelector(".skip");
  if (skip) skip.addEventListener("click", function (ev) { ev.preventDefault(); el.main.focus(); });

  // Leaving the page: close the stream politely (and let the page into the back/forward cache).
  window.addEventListener("pagehide", function () { closeStream(); });
  window.addEventListener("pageshow", function (ev) {
    if (ev.persisted && me && !source) openStream(epoch);
  });

  if (!window.fetch || !window.Promise || !window.EventSource || !window.Set || !window.looplightStream) {
    status("This browser is too old for the chat (it needs fetch() and EventSource).", "error");
    ready();
    return;
  }

  updateCount();
  api("GET", "/api/auth/me").then(function (d) {
    if (d && typeof d.username === "string" && d.username) return enterRoom(d.username);
    showAuth(false);
    ready();
  }, function (e) {
    showAuth(false);
    if (e.status !== 401) status("Couldn't check whether you're logged in: " + errText(e), "error");
    ready();
  });
})();
