//! The chat page in real browsers: two headless Chromium sessions (Debian's
//! `chromium`, driven through Debian's `chromedriver` with the small W3C
//! WebDriver client in `support::webdriver`) open `/chat.html` from the
//! server serving the repository's `www/`, log in through the page's form as
//! two different users, and talk: what one sends shows up in the other's
//! list (with the right user) and exactly once in the sender's own. A
//! visitor whose session cookie is still valid goes straight to the room.
//!
//! And eight tabs of one browser on the chat page: a browser opens at most
//! six HTTP/1.1 connections to a host, so with a stream per tab the seventh
//! would hang; the page shares one stream between its tabs (a SharedWorker),
//! which outlives the tab that opened it.
//!
//! Page hooks: login `#login-form`, `#login-username`, `#login-password`,
//! `#login-submit`; room `#room`; `<ol id="messages">` of `<li
//! class="message" data-id="…">` with `.message-user` and `.message-text`;
//! sending `#send-form`, `#message-text`, `#message-send`; `<body
//! data-ready="true">` when loaded, `data-room="connected"` while the stream
//! is open.

use std::path::Path;
use std::time::Duration;

use crate::support::webdriver::{Session, WebDriver};
use crate::support::*;

/// Deadline to give up waiting for the page (never a measurement).
const WAIT: Duration = Duration::from_secs(30);

/// Whether the element matching `arguments[0]` exists and is rendered
/// (not `display: none`, not inside `[hidden]`, not `visibility: hidden`).
const VISIBLE: &str = "const el = document.querySelector(arguments[0]);
    return !!el && !el.closest('[hidden]') && el.getClientRects().length > 0
        && getComputedStyle(el).visibility !== 'hidden';";

fn visible(s: &Session, css: &str) -> bool {
    s.execute(VISIBLE, &[js(css)]) == Json::Bool(true)
}

fn wait_visible(s: &Session, who: &str, css: &str) {
    s.wait_for(
        &format!("{who}: {css} to be visible"),
        WAIT,
        VISIBLE,
        &[js(css)],
    );
}

fn wait_ready(s: &Session, who: &str) {
    s.wait_for(
        &format!("{who}: <body data-ready=\"true\">"),
        WAIT,
        "return document.body && document.body.dataset.ready === 'true';",
        &[],
    );
}

fn wait_connected(s: &Session, who: &str) {
    s.wait_for(
        &format!("{who}: <body data-room=\"connected\">"),
        WAIT,
        "return document.body && document.body.dataset.room === 'connected';",
        &[],
    );
}

/// Opens the chat page and logs in through its form; waits until the room
/// is shown and its stream is connected.
fn log_in_through_the_page(s: &Session, url: &str, user: &str) {
    s.navigate(url);
    wait_ready(s, user);
    wait_visible(s, user, "#login-form");
    assert!(
        !visible(s, "#room"),
        "{user}: the room is shown before logging in\n{}",
        s.page_state()
    );
    let name = s.find("#login-username");
    s.clear(&name);
    s.send_keys(&name, user);
    let password = s.find("#login-password");
    s.clear(&password);
    s.send_keys(&password, PASSWORD);
    s.click(&s.find("#login-submit"));
    wait_visible(s, user, "#room");
    wait_ready(s, user);
    wait_connected(s, user);
}

/// `data-id`s of the `li.message` elements whose `.message-text` is
/// exactly `text`.
const MATCHING_IDS: &str = "return Array.from(document.querySelectorAll('#messages li.message'))
    .filter(li => { const t = li.querySelector('.message-text'); return t && t.textContent === arguments[0]; })
    .map(li => li.dataset.id);";

fn matching_ids(s: &Session, text: &str) -> Vec<String> {
    s.execute(MATCHING_IDS, &[js(text)])
        .arr()
        .iter()
        .map(|v| v.as_str().unwrap_or("").to_string())
        .collect()
}

/// Waits until `li.message` with that text exists; returns its `data-id`.
fn wait_message(s: &Session, who: &str, text: &str) -> String {
    let found = s.wait_for(
        &format!("{who}: an li.message whose .message-text is {text:?}"),
        WAIT,
        &format!("const ids = (() => {{ {MATCHING_IDS} }})(); return ids.length ? ids : null;"),
        &[js(text)],
    );
    found.arr()[0].as_str().unwrap_or("").to_string()
}

#[test]
fn two_browsers_chat_through_the_page() {
    let www = Path::new(env!("CARGO_MANIFEST_DIR")).join("www");
    let server = Server::builder().site(&www).start();
    // Accounts through the API (fast); logging in happens in the pages.
    register(&server, "alice", PASSWORD);
    register(&server, "bob", PASSWORD);
    let url = server.url("/chat.html");

    // Declared before the sessions, so the sessions (browsers) are closed
    // before chromedriver is killed.
    let driver = WebDriver::start();
    let a = driver.new_session();
    let b = driver.new_session();
    log_in_through_the_page(&a, &url, "alice");
    log_in_through_the_page(&b, &url, "bob");

    // Alice sends; HTML-like text must come out as text.
    let text = "Hi Bob <b>not bold</b> & café";
    let input = a.find("#message-text");
    a.send_keys(&input, text);
    a.click(&a.find("#message-send"));

    // Bob sees it, from alice.
    let id = wait_message(&b, "bob", text);
    assert!(
        id.parse::<i64>().is_ok_and(|n| n > 0),
        "li.message data-id should be the message id, got {id:?}"
    );
    let user = b.text(&b.find(&format!(
        "#messages li.message[data-id=\"{id}\"] .message-user"
    )));
    assert_eq!(
        user,
        "alice",
        "bob's page shows the sender\n{}",
        b.page_state()
    );
    let shown = b.text(&b.find(&format!(
        "#messages li.message[data-id=\"{id}\"] .message-text"
    )));
    assert_eq!(shown, text, "bob's page shows the text as text");

    // Alice's own list shows it exactly once (not once when sent and again
    // from the stream), with the same id. Instead of waiting a while for a
    // second copy, wait until both sources are done with it: the page has
    // handled the POST's answer (it clears the input), and a later message
    // has come in on each stream (a stream delivers in order, so anything it
    // had for the first message came before).
    assert_eq!(wait_message(&a, "alice", text), id);
    a.wait_for(
        "alice: the send answered (the input cleared)",
        WAIT,
        "return document.querySelector('#message-text').value === '';",
        &[],
    );
    let marker = "a later message, from the API";
    send_message(&server, &login(&server, "bob", PASSWORD), marker);
    wait_message(&a, "alice", marker);
    wait_message(&b, "bob", marker);
    assert_eq!(
        matching_ids(&a, text),
        vec![id.clone()],
        "alice's list must show her message exactly once\n{}",
        a.page_state()
    );
    assert_eq!(matching_ids(&b, text), vec![id.clone()], "bob's list: once");
    let own_user = a.text(&a.find(&format!(
        "#messages li.message[data-id=\"{id}\"] .message-user"
    )));
    assert_eq!(own_user, "alice");

    // The message really went through the API.
    let token = login(&server, "bob", PASSWORD);
    let stored = list_messages(&server, &token, "");
    assert!(
        stored
            .iter()
            .any(|m| m.id.to_string() == id && m.user == "alice" && m.text == text),
        "the page's message is stored: {stored:?}"
    );

    // A visitor whose session cookie is still valid goes straight to the
    // room: bob reloads the page.
    b.navigate(&url);
    wait_ready(&b, "bob (reload)");
    wait_visible(&b, "bob (reload)", "#room");
    assert!(
        !visible(&b, "#login-form"),
        "bob is logged in: the login form must not be shown\n{}",
        b.page_state()
    );
    wait_connected(&b, "bob (reload)");

    b.delete();
    a.delete();
    drop(driver);
}

/// Access-log lines of requests for the chat's event stream.
fn stream_requests(server: &Server) -> Vec<String> {
    server
        .log_lines()
        .into_iter()
        .filter(|line| line.contains("\"GET /api/chat/stream"))
        .collect()
}

/// Waits until the access log has the lines of `posts` messages sent: the
/// lines logged before them (the stream's included) have been read by then.
fn wait_for_posts_logged(server: &Server, posts: usize) {
    wait_for("the POSTs of the messages in the access log", WAIT, || {
        let logged = server
            .log_lines()
            .iter()
            .filter(|line| line.contains("\"POST /api/chat/messages"))
            .count();
        if logged >= posts {
            Ok(())
        } else {
            Err(format!("{logged} of {posts}"))
        }
    });
}

#[test]
fn eight_tabs_share_one_stream_that_outlives_the_tab_that_opened_it() {
    let www = Path::new(env!("CARGO_MANIFEST_DIR")).join("www");
    let server = Server::builder().site(&www).with_log().start();
    register(&server, "carol", PASSWORD);
    register(&server, "dave", PASSWORD);
    let url = server.url("/chat.html");

    let driver = WebDriver::start();
    let s = driver.new_session();
    // The first tab logs in and opens the stream; the seven others (the
    // session cookie is the browser's) go straight to the room.
    log_in_through_the_page(&s, &url, "carol");
    let mut tabs = vec![s.window_handle()];
    for n in 2..=8 {
        let tab = s.new_tab();
        s.switch_to(&tab);
        s.navigate(&url);
        let who = format!("carol's tab {n}");
        wait_ready(&s, &who);
        wait_visible(&s, &who, "#room");
        wait_connected(&s, &who);
        tabs.push(tab);
    }

    let dave = login(&server, "dave", PASSWORD);
    let first = "one message, eight tabs";
    send_message(&server, &dave, first);
    for (n, tab) in tabs.iter().enumerate() {
        s.switch_to(tab);
        wait_message(&s, &format!("carol's tab {}", n + 1), first);
    }
    wait_for_posts_logged(&server, 1);
    assert_eq!(
        stream_requests(&server).len(),
        1,
        "eight tabs, one event stream from the browser: {:?}",
        stream_requests(&server)
    );

    // The tab that opened the stream goes; the others keep hearing it.
    s.switch_to(&tabs[0]);
    let left = s.close_window();
    assert_eq!(left.len(), 7, "seven tabs left: {left:?}");
    let second = "after the first tab closed";
    send_message(&server, &dave, second);
    for (n, tab) in tabs.iter().enumerate().skip(1) {
        s.switch_to(tab);
        let who = format!("carol's tab {}", n + 1);
        wait_message(&s, &who, second);
        assert_eq!(
            matching_ids(&s, first).len(),
            1,
            "{who}: the first message once\n{}",
            s.page_state()
        );
    }
    wait_for_posts_logged(&server, 2);
    assert_eq!(
        stream_requests(&server).len(),
        1,
        "the same stream goes on, none opened again: {:?}",
        stream_requests(&server)
    );

    s.delete();
    drop(driver);
}
