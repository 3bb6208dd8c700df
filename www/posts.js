"use strict";

// The blog UI for looplight: list, read, search, write, edit and delete posts via /api/.
// Every piece of server data is rendered with textContent / text nodes, never innerHTML.
(function () {
  var shared = window.looplightApi;
  var ApiError = shared.ApiError;
  var api = shared.api;
  var errText = shared.errText;

  var PAGE = 10;          // posts per page
  var SEARCH_LIMIT = 20;  // search results to ask for
  var EXCERPT = 240;      // characters of body shown in the list

  var $ = function (id) { return document.getElementById(id); };
  var el = {
    status: $("status"), main: $("main"),
    session: $("session"), who: $("who"), logout: $("logout"), navLogin: $("nav-login"), loginLink: $("login-link"),
    searchForm: $("search-form"), q: $("q"), newBtn: $("new-btn"),
    views: { list: $("view-list"), post: $("view-post"), edit: $("view-edit"), search: $("view-search") },
    listTitle: $("list-title"), listCount: $("list-count"), postList: $("post-list"), listEmpty: $("list-empty"),
    pager: $("pager"), newer: $("newer"), older: $("older"), pageInfo: $("page-info"),
    postTitle: $("post-title"), postMeta: $("post-meta"), postBody: $("post-body"), postActions: $("post-actions"),
    editTitle: $("edit-title"), editForm: $("edit-form"), fTitle: $("f-title"), fBody: $("f-body"), fCount: $("f-count"),
    saveBtn: $("save-btn"), cancel: $("cancel-link"), editLogin: $("edit-login"), editLoginLink: $("edit-login-link"),
    searchTitle: $("search-title"), searchCount: $("search-count"), searchResults: $("search-results")
  };

  var me = null;           // username of the visitor, or null
  var seq = 0;             // bumps on every navigation; stale responses are dropped
  var flash = null;        // status message to show after the next navigation
  var listOffset = 0;      // last list page seen, for the "All posts" links
  var current = null;      // route being shown
  var editing = null;      // post being edited (null for a new post)
  var busy = false;        // a write request is in flight

  // ---------- API ----------




  // ---------- small DOM helpers ----------

  function h(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text != null) n.textContent = text;
    return n;
  }

  function clear(n) { while (n.firstChild) n.removeChild(n.firstChild); }

  // status(text, kind, link): kind is "", "ok" or "error"; link is {href, text} appended after the text.
  function status(text, kind, link) {
    clear(el.status);
    el.status.className = "status" + (kind ? " " + kind : "");
    if (!text) return;
    el.status.appendChild(document.createTextNode(text));
    if (link) {
      el.status.appendChild(document.createTextNode(" "));
      var a = h("a", null, link.text);
      a.href = link.href;
      el.status.appendChild(a);
    }
  }

  function loginHref(next) {
    return "login.html?next=" + encodeURIComponent(next || ("posts.html" + location.hash));
  }

  function fmtDate(s) {
    var d = new Date(s);
    if (!s || isNaN(d.getTime())) return String(s || "");
    try {
      return new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" }).format(d);
    } catch (e) { return d.toLocaleString(); }
  }

  function timeEl(s) {
    var t = h("time", null, fmtDate(s));
    if (s) t.setAttribute("datetime", String(s));
    return t;
  }

  // "by alice · 22 Nov 2025, 10:00 · edited 23 Nov 2025, 09:00"
  function fillMeta(p, post) {
    clear(p);
    p.appendChild(document.createTextNode("by "));
    p.appendChild(h("span", "author", String(post.author)));
    if (me && post.author === me) p.appendChild(document.createTextNode(" (you)"));
    p.appendChild(document.createTextNode(" · "));
    p.appendChild(timeEl(post.created_at));
    if (post.updated_at && post.updated_at !== post.created_at) {
      p.appendChild(document.createTextNode(" · edited "));
      p.appendChild(timeEl(post.updated_at));
    }
  }

  function excerpt(body) {
    var s = String(body || "").replace(/\s+/g, " ").trim();
    if (s.length <= EXCERPT) return s;
    var cut = s.slice(0, EXCERPT);
    var sp = cut.lastIndexOf(" ");
    return (sp > EXCERPT * 0.6 ? cut.slice(0, sp) : cut) + "…";
  }

  // Words of the query to highlight, longest first. Like the server, a word is a run of
  // letters and digits; everything else (quotes, *, -, _) separates words.
  function queryTerms(q) {
    var words = String(q).match(/[\p{L}\p{N}]+/gu) || [];
    var seen = {}, out = [];
    words.forEach(function (w) {
      var k = w.toLowerCase();
      if (!seen[k]) { seen[k] = true; out.push(w); }
    });
    return out.sort(function (a, b) { return b.length - a.length; });
  }

  // Append `text` to `node`, wrapping matches of `terms` in <mark>, using text nodes only.
  function appendHighlighted(node, text, terms) {
    text = String(text == null ? "" : text);
    if (!terms.length) { node.appendChild(document.createTextNode(text)); return; }
    var re = new RegExp(terms.map(function (t) { return t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"); }).join("|"), "giu");
    var last = 0, m;
    while ((m = re.exec(text)) !== null) {
      if (!m[0]) { re.lastIndex++; continue; }
      if (m.index > last) node.appendChild(document.createTextNode(text.slice(last, m.index)));
      node.appendChild(h("mark", null, m[0]));
      last = m.index + m[0].length;
    }
    if (last < text.length) node.appendChild(document.createTextNode(text.slice(last)));
  }

  // ---------- session ----------

  function showSession() {
    var nextHere = loginHref();
    el.loginLink.href = nextHere;
    if (me) {
      el.who.textContent = me;
      el.session.hidden = false;
      el.navLogin.hidden = true;
      el.newBtn.textContent = "New post";
      el.newBtn.href = "#new";
      el.newBtn.className = "btn";
    } else {
      el.session.hidden = true;
      el.navLogin.hidden = false;
      el.newBtn.textContent = "Log in to write";
      el.newBtn.href = loginHref("posts.html#new");
      el.newBtn.className = "btn ghost";
    }
  }

  function loadMe() {
    return api("GET", "/api/auth/me").then(function (d) {
      me = d && typeof d.username === "string" ? d.username : null;
    }, function () { me = null; }).then(showSession);
  }

  // A write came back 401: the session is gone.
  function sessionLost() {
    me = null;
    showSession();
    status("Your session has expired.", "error", { href: loginHref(), text: "Log in again" });
  }

  el.logout.addEventListener("click", function () {
    if (busy) return;
    busy = true;
    el.logout.setAttribute("aria-disabled", "true");
    api("POST", "/api/auth/logout").then(function () { return true; }, function (e) {
      if (e.status === 401) return true; // already logged out
      status("Couldn't log out: " + errText(e), "error");
      return false;
    }).then(function (ok) {
      busy = false;
      el.logout.removeAttribute("aria-disabled");
      if (!ok) return;
      me = null;
      showSession();
      // Owner controls go at once; the view is then re-rendered for a visitor.
      var owned = document.querySelectorAll(".owner");
      for (var i = 0; i < owned.length; i++) owned[i].parentNode.removeChild(owned[i]);
      flash = { text: "You're logged out.", kind: "ok" };
      el.loginLink.focus();
      route(false);
    });
  });

  // ---------- routing ----------

  function parseHash() {
    var hs = location.hash.replace(/^#/, "");
    var m;
    if (hs === "" || hs === "main") return { view: "list", offset: 0 };
    if ((m = /^offset=(\d{1,9})$/.exec(hs))) return { view: "list", offset: parseInt(m[1], 10) };
    if ((m = /^(?:post\/)?(\d{1,18})$/.exec(hs))) return { view: "post", id: m[1] };
    if (hs === "new") return { view: "new" };
    if ((m = /^edit\/(\d{1,18})$/.exec(hs))) return { view: "edit", id: m[1] };
    if (hs.indexOf("search=") === 0) {
      var raw = hs.slice(7).replace(/\+/g, " "), q;
      try { q = decodeURIComponent(raw); } catch (e) { q = raw; }
      return { view: "search", q: q };
    }
    return { view: "list", offset: 0 };
  }

  function listHash(offset) { return offset > 0 ? "#offset=" + offset : "#"; }

  function show(name, titleEl, moveFocus) {
    Object.keys(el.views).forEach(function (k) { el.views[k].hidden = k !== name; });
    var backs = document.querySelectorAll(".back");
    for (var i = 0; i < backs.length; i++) backs[i].href = listHash(listOffset);
    el.cancel.href = editing ? "#" + editing.id : listHash(listOffset);
    if (moveFocus && titleEl) {
      titleEl.focus({ preventScroll: true });
      window.scrollTo(0, 0);
    }
  }

  function go(hash) {
    hash = hash.replace(/^#/, "");
    if (location.hash.replace(/^#/, "") === hash) route(true);
    else location.hash = hash;
  }

  // Render the view for the current hash. Resolves when the first API call settled.
  function route(moveFocus) {
    var my = ++seq;
    current = parseHash();
    if (flash) { status(flash.text, flash.kind, flash.link); flash = null; } else status("");
    el.q.value = current.view === "search" ? current.q : "";
    var job;
    switch (current.view) {
      case "post": job = renderPost(my, current.id, moveFocus); break;
      case "new": job = renderEditor(my, null, moveFocus); break;
      case "edit": job = renderEditor(my, current.id, moveFocus); break;
      case "search": job = renderSearch(my, current.q, moveFocus); break;
      default: job = renderList(my, current.offset, moveFocus);
    }
    return Promise.resolve(job).catch(function (e) {
      if (my === seq) status(errText(e), "error");
    });
  }

  window.addEventListener("hashchange", function () { route(true); });

  // ---------- owner actions (edit / delete with inline confirmation) ----------

  function ownerActions(post, onDeleted) {
    var box = h("div", "actions");
    var edit = h("a", "btn ghost tiny", "Edit");
    edit.href = "#edit/" + post.id;
    edit.setAttribute("aria-label", "Edit “" + post.title + "”");
    var del = h("button", "btn danger tiny", "Delete");
    del.type = "button";
    del.setAttribute("aria-label", "Delete “" + post.title + "”");
    box.appendChild(edit);
    box.appendChild(del);

    var confirm = h("div", "confirm");
    confirm.hidden = true;
    confirm.setAttribute("role", "group");
    confirm.setAttribute("aria-label", "Confirm deletion");
    var q = h("p", null, "Delete this post for good?");
    var yes = h("button", "btn danger solid tiny", "Yes, delete");
    yes.type = "button";
    var no = h("button", "btn ghost tiny", "Cancel");
    no.type = "button";
    confirm.appendChild(q); confirm.appendChild(yes); confirm.appendChild(no);

    var wrap = h("div", "owner");
    wrap.appendChild(box);
    wrap.appendChild(confirm);

    del.addEventListener("click", function () {
      box.hidden = true; confirm.hidden = false; no.focus();
    });
    no.addEventListener("click", function () {
      confirm.hidden = true; box.hidden = false; del.focus();
    });
    yes.addEventListener("click", function () {
      if (busy) return;
      busy = true;
      yes.setAttribute("aria-disabled", "true");
      yes.textContent = "Deleting…";
      api("DELETE", "/api/posts/" + encodeURIComponent(post.id)).then(function () {
        busy = false;
        onDeleted();
      }, function (e) {
        busy = false;
        yes.removeAttribute("aria-disabled");
        yes.textContent = "Yes, delete";
        if (e.status === 401) { sessionLost(); return; }
        if (e.status === 404) { status("That post was already deleted.", "error"); return; }
        status("Couldn't delete the post: " + errText(e), "error");
      });
    });
    return wrap;
  }

  // ---------- list ----------

  function postItem(post, offset) {
    var li = h("li", "post-item");
    var art = h("article");
    var h2 = h("h2");
    var a = h("a", null, String(post.title));
    a.href = "#" + post.id;
    h2.appendChild(a);
    var meta = h("p", "meta");
    fillMeta(meta, post);
    art.appendChild(h2);
    art.appendChild(meta);
    var ex = excerpt(post.body);
    if (ex) art.appendChild(h("p", "excerpt", ex));
    if (me && post.author === me) {
      art.appendChild(ownerActions(post, function () {
        flash = { text: "Deleted “" + post.title + "”.", kind: "ok" };
        route(false).then(function () { el.listTitle.focus({ preventScroll: true }); });
      }));
    }
    li.appendChild(art);
    return li;
  }

  function renderList(my, offset, moveFocus) {
    listOffset = offset;
    editing = null;
    document.title = "Blog — looplight";
    show("list", el.listTitle, moveFocus);
    el.listCount.textContent = "Loading posts…";
    el.postList.setAttribute("aria-busy", "true");
    return api("GET", "/api/posts?limit=" + PAGE + "&offset=" + offset).then(function (d) {
      if (my !== seq) return;
      el.postList.removeAttribute("aria-busy");
      if (!d || !Array.isArray(d.posts)) throw new ApiError("The server sent an unexpected answer for the post list.", 0);
      var total = typeof d.total === "number" ? d.total : d.posts.length;
      if (!d.posts.length && offset > 0 && total > 0) {
        // Past the end (e.g. after a delete): jump to the last page.
        var lastPage = Math.floor((total - 1) / PAGE) * PAGE;
        history.replaceState(null, "", lastPage > 0 ? "#offset=" + lastPage : "posts.html");
        return renderList(my, lastPage, false);
      }
      clear(el.postList);
      d.posts.forEach(function (p) { el.postList.appendChild(postItem(p, offset)); });
      el.listEmpty.hidden = d.posts.length > 0;
      if (!d.posts.length) {
        clear(el.listEmpty);
        el.listEmpty.appendChild(document.createTextNode("No posts yet. "));
        var a = h("a", null, me ? "Write the first one" : "Log in to write the first one");
        a.href = me ? "#new" : loginHref("posts.html#new");
        el.listEmpty.appendChild(a);
      }
      el.listCount.textContent = total === 0 ? "0 posts"
        : "Showing " + (offset + 1) + "–" + (offset + d.posts.length) + " of " + total + (total === 1 ? " post" : " posts");
      var pages = Math.max(1, Math.ceil(total / PAGE));
      el.pager.hidden = total <= PAGE && offset === 0;
      el.pageInfo.textContent = "Page " + (Math.floor(offset / PAGE) + 1) + " of " + pages;
      el.newer.disabled = offset <= 0;
      el.older.disabled = offset + d.posts.length >= total;
    }, function (e) {
      if (my !== seq) return;
      el.postList.removeAttribute("aria-busy");
      clear(el.postList);
      el.pager.hidden = true;
      el.listEmpty.hidden = true;
      el.listCount.textContent = "";
      status("Couldn't load posts: " + errText(e), "error");
    });
  }

  el.newer.addEventListener("click", function () {
    var o = Math.max(0, listOffset - PAGE);
    go(o > 0 ? "#offset=" + o : "");
  });
  el.older.addEventListener("click", function () { go("#offset=" + (listOffset + PAGE)); });

  // ---------- one post ----------

  function fillBody(container, body) {
    clear(container);
    var text = String(body || "").replace(/\r\n?/g, "\n").trim();
    if (!text) { container.appendChild(h("p", "muted", "(This post has no body.)")); return; }
    text.split(/\n[ \t]*\n+/).forEach(function (para) {
      container.appendChild(h("p", null, para));
    });
  }

  function renderPost(my, id, moveFocus) {
    editing = null;
    show("post", null, false);
    el.postTitle.textContent = "Loading…";
    clear(el.postMeta); clear(el.postBody); clear(el.postActions);
    return api("GET", "/api/posts/" + encodeURIComponent(id)).then(function (post) {
      if (my !== seq) return;
      if (!post || post.id == null) throw new ApiError("The server sent an unexpected answer for this post.", 0);
      document.title = post.title + " — looplight blog";
      el.postTitle.textContent = String(post.title);
      fillMeta(el.postMeta, post);
      fillBody(el.postBody, post.body);
      if (me && post.author === me) {
        el.postActions.appendChild(ownerActions(post, function () {
          flash = { text: "Deleted “" + post.title + "”.", kind: "ok" };
          go(listHash(listOffset));
        }));
      }
      if (moveFocus) { el.postTitle.focus({ preventScroll: true }); window.scrollTo(0, 0); }
    }, function (e) {
      if (my !== seq) return;
      document.title = "Post not found — looplight blog";
      el.postTitle.textContent = e.status === 404 ? "Post not found" : "Couldn't load the post";
      el.postBody.appendChild(h("p", "muted", e.status === 404
        ? "There is no post #" + id + ". It may have been deleted."
        : errText(e)));
      if (e.status !== 404) status(errText(e), "error");
      if (moveFocus) el.postTitle.focus({ preventScroll: true });
    });
  }

  // ---------- write / edit ----------

  function updateCount() { el.fCount.textContent = String(el.fBody.value.length); }
  el.fBody.addEventListener("input", updateCount);
  el.fTitle.addEventListener("input", function () { el.fTitle.removeAttribute("aria-invalid"); });

  function renderEditor(my, id, moveFocus) {
    editing = null;
    el.fTitle.removeAttribute("aria-invalid");
    var isNew = id == null;
    el.editTitle.textContent = isNew ? "New post" : "Edit post";
    document.title = (isNew ? "New post" : "Edit post") + " — looplight blog";
    el.saveBtn.textContent = isNew ? "Publish" : "Save changes";
    el.editLoginLink.href = loginHref();
    if (!me) {
      el.editForm.hidden = true;
      el.editLogin.hidden = false;
      show("edit", el.editTitle, moveFocus);
      return Promise.resolve();
    }
    el.editLogin.hidden = true;
    if (isNew) {
      el.editForm.hidden = false;
      el.fTitle.value = ""; el.fBody.value = ""; updateCount();
      show("edit", null, false);
      if (moveFocus) el.fTitle.focus();
      return Promise.resolve();
    }
    el.editForm.hidden = true;
    el.fTitle.value = ""; el.fBody.value = ""; updateCount();
    show("edit", el.editTitle, moveFocus);
    return api("GET", "/api/posts/" + encodeURIComponent(id)).then(function (post) {
      if (my !== seq) return;
      if (post.author !== me) {
        status("You can only edit your own posts.", "error", { href: "#" + id, text: "Back to the post" });
        return;
      }
      editing = post;
      el.cancel.href = "#" + post.id;
      el.editForm.hidden = false;
      el.fTitle.value = String(post.title);
      el.fBody.value = String(post.body || "");
      updateCount();
      if (moveFocus) el.fTitle.focus();
    }, function (e) {
      if (my !== seq) return;
      status(e.status === 404 ? "There is no post #" + id + " to edit." : "Couldn't load the post: " + errText(e), "error");
    });
  }

  el.editForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (busy || !current || !me) return;
    // In the edit route, only submit once the post has loaded (and is ours).
    if (current.view === "edit" && (!editing || String(editing.id) !== current.id)) return;
    if (current.view !== "edit" && current.view !== "new") return;
    var title = el.fTitle.value.trim();
    var body = el.fBody.value;
    if (!title) {
      el.fTitle.setAttribute("aria-invalid", "true");
      status("Please give the post a title.", "error");
      el.fTitle.focus();
      return;
    }
    if (title.length > 200 || body.length > 100000) {
      status("The title can have at most 200 characters and the body at most 100000.", "error");
      return;
    }
    var wasEditing = editing;
    var label = el.saveBtn.textContent;
    busy = true;
    el.saveBtn.setAttribute("aria-disabled", "true");
    el.saveBtn.textContent = wasEditing ? "Saving…" : "Publishing…";
    el.editForm.setAttribute("aria-busy", "true");
    var req = wasEditing
      ? api("PUT", "/api/posts/" + encodeURIComponent(wasEditing.id), { title: title, body: body })
      : api("POST", "/api/posts", { title: title, body: body });
    req.then(function (post) {
      done();
      flash = { text: wasEditing ? "Saved your changes." : "Published “" + title + "”.", kind: "ok" };
      go("#" + (post && post.id != null ? post.id : wasEditing ? wasEditing.id : ""));
    }, function (e) {
      done();
      if (e.status === 401) { sessionLost(); return; }
      if (e.status === 403) { status("You can only edit your own posts.", "error"); return; }
      if (e.status === 404) { status("This post no longer exists.", "error"); return; }
      status((wasEditing ? "Couldn't save: " : "Couldn't publish: ") + errText(e), "error");
    });
    function done() {
      busy = false;
      el.saveBtn.removeAttribute("aria-disabled");
      el.saveBtn.textContent = label;
      el.editForm.removeAttribute("aria-busy");
    }
  });

  // ---------- search ----------

  el.searchForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var q = el.q.value.trim();
    if (!q) { status("Type a word or two to search for.", "error"); el.q.focus(); return; }
    go("#search=" + encodeURIComponent(q));
  });

  function renderSearch(my, q, moveFocus) {
    editing = null;
    document.title = "Search: " + q + " — looplight blog";
    el.searchTitle.textContent = "Search";
    clear(el.searchResults);
    el.searchCount.textContent = "";
    show("search", el.searchTitle, moveFocus);
    if (!q.trim()) {
      status("Type a word or two to search for.", "error");
      return Promise.resolve();
    }
    el.searchTitle.textContent = "Results for “" + q + "”";
    el.searchCount.textContent = "Searching…";
    var terms = queryTerms(q);
    return api("GET", "/api/search?q=" + encodeURIComponent(q) + "&limit=" + SEARCH_LIMIT).then(function (d) {
      if (my !== seq) return;
      if (!d || !Array.isArray(d.results)) throw new ApiError("The server sent an unexpected answer for the search.", 0);
      var n = d.results.length;
      el.searchCount.textContent = n === 0 ? "No matches"
        : (n >= SEARCH_LIMIT ? "Top " + n : n) + (n === 1 ? " match" : " matches");
      if (!n) {
        var li = h("li", "empty", "Nothing matched “" + q + "”. Try fewer or different words.");
        el.searchResults.appendChild(li);
      }
      d.results.forEach(function (r) {
        var item = h("li", "post-item");
        var art = h("article");
        var h2 = h("h2");
        var a = h("a");
        a.href = "#" + r.id;
        appendHighlighted(a, r.title, terms);
        h2.appendChild(a);
        art.appendChild(h2);
        if (r.snippet) {
          var p = h("p", "excerpt");
          appendHighlighted(p, r.snippet, terms);
          art.appendChild(p);
        }
        item.appendChild(art);
        el.searchResults.appendChild(item);
      });
    }, function (e) {
      if (my !== seq) return;
      el.searchCount.textContent = "";
      status("Search failed: " + errText(e), "error");
    });
  }

  // ---------- start ----------

  // The skip link shouldn't change the route: just move focus to the content.
  var skip = document.querySelector(".skip");
  if (skip) skip.addEventListener("click", function (ev) { ev.preventDefault(); el.main.focus(); });

  // posts.html?q=word (the search form without JavaScript) becomes #search=word.
  var qs = new URLSearchParams(location.search).get("q");
  if (qs && qs.trim() && !location.hash) history.replaceState(null, "", "posts.html#search=" + encodeURIComponent(qs.trim()));

  function ready() { document.body.dataset.ready = "true"; }
  if (!window.fetch || !window.Promise) {
    status("This browser is too old for the blog (no fetch()).", "error");
    ready();
    return;
  }
  loadMe().then(function () { return route(false); }).catch(function (e) {
    status(errText(e), "error");
  }).then(ready, ready);
})();
