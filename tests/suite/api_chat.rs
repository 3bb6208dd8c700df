//! Group chat: every line of the contract.
//!
//! - Login required for all of it (401 with a JSON error otherwise).
//! - Message = {"id": int, "user": str, "text": str, "sent_at": RFC 3339}.
//! - `GET /api/chat/messages?after=<id>&limit=` → `{"messages":[…]}` oldest
//!   first: the first `limit` messages after that id, or without `after`
//!   the most recent `limit`; limit default 50, clamped to 200; a
//!   non-numeric or negative limit/after → 400.
//! - `POST /api/chat/messages {"text"}` (1–2000 Unicode scalar values) →
//!   201 Message; 415/400/422/413 as for the rest of the API.
//! - `GET /api/chat/stream` → 200 `text/event-stream`, `Cache-Control:
//!   no-cache`, chunked on HTTP/1.1; each new message as `id: <id>\nevent:
//!   message\ndata: <Message JSON>\n\n`; `Last-Event-ID` (or, without it,
//!   `?after=`) replays the messages after that id first; a `:` comment at
//!   least every `--sse-heartbeat` seconds while idle; HEAD gives the head
//!   only; SIGTERM ends streams with the terminating chunk.
//! - Messages live in SQLite and survive a restart.
//!
//! Scale and isolation (1,000 streams, a stalled subscriber, disconnects)
//! are in `chat_load`; the two-browser test in `browser_chat`.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

/// Generous deadline for an event that should arrive at once (a deadline to
/// give up, never a measurement).
const PROMPT: Duration = Duration::from_secs(10);

/// A server with two logged-in users; returns (server, alice's token,
/// bob's token).
fn two_users(args: &[&str]) -> (Server, String, String) {
    let server = Server::start(args);
    let a = user_token(&server, "alice");
    let b = user_token(&server, "bob");
    (server, a, b)
}

/// Adds (or not) credentials to a request.
type Auth<'a> = Box<dyn Fn(Req) -> Req + 'a>;

fn ids(ms: &[ChatMessage]) -> Vec<i64> {
    ms.iter().map(|m| m.id).collect()
}

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

#[test]
fn help_documents_sse_heartbeat_with_default_15() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_looplight"));
    command.arg("--help");
    let output = run_with_deadline(command, Duration::from_secs(5));
    assert!(
        output.status.success(),
        "--help exit status {}",
        output.status
    );
    let help = String::from_utf8_lossy(&output.stdout);
    let line = help
        .lines()
        .find(|l| l.trim_start().starts_with("--sse-heartbeat"))
        .unwrap_or_else(|| panic!("--help does not document --sse-heartbeat:\n{help}"));
    assert!(
        line.contains("[default: 15]"),
        "--sse-heartbeat defaults to 15 seconds: {line:?}"
    );
}

// ---------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------

#[test]
fn every_chat_route_requires_a_valid_session() {
    // Contract: login required for all of it; 401 with a JSON error.
    let server = Server::start(&[]);
    let token = user_token(&server, "member");
    let ended = user_token(&server, "leaver");
    Req::post("/api/auth/logout")
        .bearer(&ended)
        .body("")
        .send(&server)
        .expect_204();
    let body = text_body("hello");
    let auths: Vec<(&str, Auth)> = vec![
        ("no credentials", Box::new(|r| r)),
        (
            "unknown bearer token",
            Box::new(|r| r.bearer(&"0".repeat(64))),
        ),
        (
            "garbage bearer token",
            Box::new(|r| r.bearer("' OR 1=1 --")),
        ),
        (
            "unknown cookie",
            Box::new(|r| r.header("Cookie", format!("session={}", "a".repeat(64)))),
        ),
        ("logged-out session", Box::new(|r| r.bearer(&ended))),
    ];
    for (what, auth) in &auths {
        for req in [
            Req::get(MESSAGES),
            Req::get(&format!("{MESSAGES}?after=0&limit=10")),
            Req::post(MESSAGES).json(&body),
            Req::get(STREAM),
            Req::get(&format!("{STREAM}?after=0")),
            Req::get(STREAM).header("Last-Event-ID", "0"),
        ] {
            let x = auth(req).send(&server);
            assert_eq!(x.status, 401, "{what}\n{}", x.show());
            x.expect_error(401);
        }
        // HEAD: the same status, no body.
        let x = auth(Req::head(STREAM)).send(&server);
        assert_eq!(x.status, 401, "{what}: HEAD\n{}", x.show());
        x.resp.assert_basics_head();
    }
    // Nothing was posted by any of them.
    assert_eq!(list_messages(&server, &token, ""), vec![]);
}

#[test]
fn the_session_cookie_works_for_every_chat_route() {
    // Contract: the token may be sent as cookie `session=<token>` (what
    // the browser does, EventSource included).
    let server = Server::start(&[]);
    let token = user_token(&server, "cookie_chat");
    let mut stream = EventStream::open(&server, &Req::get(STREAM).cookie(&token));
    let x = Req::post(MESSAGES)
        .cookie(&token)
        .json(text_body("via cookie"))
        .send(&server);
    let m = ChatMessage::from_json(&x.expect(201));
    assert_eq!(
        (m.user.as_str(), m.text.as_str()),
        ("cookie_chat", "via cookie")
    );
    let x = Req::get(MESSAGES).cookie(&token).send(&server);
    let j = x.expect(200);
    assert_eq!(
        j.field("messages")
            .arr()
            .iter()
            .map(ChatMessage::from_json)
            .collect::<Vec<_>>(),
        vec![m.clone()],
        "{}",
        x.show()
    );
    assert_eq!(stream.next_message(PROMPT), m);
}

// ---------------------------------------------------------------------------
// Posting
// ---------------------------------------------------------------------------

#[test]
fn post_returns_201_with_the_message_of_the_logged_in_user() {
    // Contract: POST {"text"} → 201 Message; user = the session's user;
    // sent_at RFC 3339 (now); ids positive and increasing.
    let (server, alice, bob) = two_users(&[]);
    let x = send_req(&alice, text_body("Hello, room!")).send(&server);
    let m1 = ChatMessage::from_json(&x.expect(201));
    assert_eq!(m1.user, "alice", "{}", x.show());
    assert_eq!(m1.text, "Hello, room!");
    assert_rfc3339_near_now(&m1.sent_at);

    let m2 = send_message(&server, &bob, "Hi alice");
    assert_eq!(m2.user, "bob");
    assert_rfc3339_near_now(&m2.sent_at);
    let m3 = send_message(&server, &alice, "Hello again");
    assert!(
        m1.id < m2.id && m2.id < m3.id,
        "ids increase: {m1:?} {m2:?} {m3:?}"
    );
    assert!(m1.sent_at <= m2.sent_at && m2.sent_at <= m3.sent_at);

    // Listed oldest first, the same for every user.
    let all = vec![m1, m2, m3];
    assert_eq!(list_messages(&server, &alice, ""), all);
    assert_eq!(list_messages(&server, &bob, ""), all);
}

#[test]
fn extra_fields_are_ignored_and_cannot_spoof_the_user_id_or_time() {
    // Like the rest of the API: unknown fields are ignored, including
    // attempts to set id, user or sent_at.
    let server = Server::start(&[]);
    let token = user_token(&server, "honest");
    let body = json_obj(&[
        ("text", &js("spoof?")),
        ("id", "999"),
        ("user", &js("mallory")),
        ("sent_at", &js("1999-01-01T00:00:00Z")),
        ("admin", "true"),
    ]);
    let x = send_req(&token, body).send(&server);
    let m = ChatMessage::from_json(&x.expect(201));
    assert_eq!(m.user, "honest", "{}", x.show());
    assert_eq!(m.text, "spoof?");
    assert_ne!(m.id, 999, "{}", x.show());
    assert_rfc3339_near_now(&m.sent_at);
    assert_eq!(list_messages(&server, &token, ""), vec![m]);
}

#[test]
fn text_length_is_1_to_2000_characters() {
    // Contract: text 1–2000 chars, counted as Unicode scalar values; empty
    // or 2001 → 422.
    let server = Server::start(&[]);
    let token = user_token(&server, "lengths");
    let valid = [
        "x".to_string(),
        "😀".to_string(),
        "a".repeat(MAX_TEXT_CHARS),
        "é".repeat(MAX_TEXT_CHARS),
        "😀".repeat(MAX_TEXT_CHARS),
        "e\u{301}".repeat(MAX_TEXT_CHARS / 2), // 2000 scalar values
    ];
    let mut sent = Vec::new();
    for text in &valid {
        sent.push(send_message(&server, &token, text));
    }
    let invalid = [
        String::new(),
        "a".repeat(MAX_TEXT_CHARS + 1),
        "é".repeat(MAX_TEXT_CHARS + 1),
        "😀".repeat(MAX_TEXT_CHARS + 1),
        "e\u{301}".repeat(MAX_TEXT_CHARS / 2) + "x",
    ];
    let mut failures = Failures::default();
    for text in &invalid {
        failures.check_error(&send_req(&token, text_body(text)).send(&server), &[422]);
    }
    failures.assert_none(invalid.len());
    assert_eq!(
        list_messages(&server, &token, ""),
        sent,
        "only the valid ones"
    );
}

#[test]
fn missing_text_wrong_types_and_other_shapes_are_422() {
    // Like the rest of the API: valid JSON of the wrong shape → 422.
    let server = Server::start(&[]);
    let token = user_token(&server, "shapes");
    let mut bodies: Vec<String> = [
        "{}",
        "[]",
        "[{\"text\":\"hi\"}]",
        "\"text\"",
        "42",
        "null",
        "true",
        "{\"txt\":\"hi\"}",
        "{\"Text\":\"hi\"}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for v in [
        "null",
        "42",
        "-1",
        "1.5",
        "true",
        "false",
        "[]",
        "[\"hi\"]",
        "{}",
        "{\"a\":\"hi\"}",
    ] {
        bodies.push(json_obj(&[("text", v)]));
    }
    let mut failures = Failures::default();
    for body in &bodies {
        failures.check_error(&send_req(&token, body).send(&server), &[422]);
    }
    failures.assert_none(bodies.len());
    assert_eq!(list_messages(&server, &token, ""), vec![]);
}

#[test]
fn non_json_content_type_is_415() {
    // Contract: Content-Type must be application/json (missing → 415);
    // parameters and case are fine.
    let server = Server::start(&[]);
    let token = user_token(&server, "types415");
    let body = text_body("hi");
    let base = || Req::post(MESSAGES).bearer(&token).body(&body);
    let mut failures = Failures::default();
    let cts = [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/event-stream",
        "application/jsonp",
        "",
    ];
    failures.check_error(&base().send(&server), &[415]);
    for ct in cts {
        failures.check_error(&base().header("Content-Type", ct).send(&server), &[415]);
    }
    failures.assert_none(cts.len() + 1);
    for ct in ["application/json; charset=utf-8", "APPLICATION/JSON"] {
        let x = base().header("Content-Type", ct).send(&server);
        ChatMessage::from_json(&x.expect(201));
    }
    assert_eq!(list_messages(&server, &token, "").len(), 2);
}

#[test]
fn malformed_json_is_400() {
    let server = Server::start(&[]);
    let token = user_token(&server, "malformed");
    let mut bodies: Vec<Vec<u8>> = [
        "",
        " ",
        "{",
        "{\"text\":}",
        "{\"text\":\"unterminated}",
        "{'text':'hi'}",
        "{\"text\":\"hi\",}",
        "{\"text\" \"hi\"}",
        "{\"text\":\"hi\"} trailing",
        "{\"text\":\"hi\"}}",
        "{}{}",
        "{\"text\":\"bad \\x escape\"}",
        "{\"text\":\"raw\u{1}control\"}",
        "{\"text\":\"\\ud800\"}x",
        "/* comment */ {\"text\":\"hi\"}",
        "' OR 1=1 --",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    bodies.push(b"{\"text\":\"ab\xff\xfecd\"}".to_vec());
    bodies.push(b"{\"text\":\"\xc0\xaf\"}".to_vec());
    let mut failures = Failures::default();
    for body in &bodies {
        failures.check_error(&send_req(&token, body).send(&server), &[400]);
    }
    failures.assert_none(bodies.len());
    assert_eq!(list_messages(&server, &token, ""), vec![]);
}

#[test]
fn body_over_max_json_body_is_413() {
    // Contract: 413 over `--max-json-body`; the limit itself is fine.
    // Padding is JSON whitespace.
    let server = Server::start(&["--max-json-body", "1000"]);
    let token = user_token(&server, "bigbody");
    let pad = |json: String, len: usize| format!("{json}{}", " ".repeat(len - json.len()));
    let x = send_req(&token, pad(text_body("at the limit"), 1000)).send(&server);
    ChatMessage::from_json(&x.expect(201));
    send_req(&token, pad(text_body("over the limit"), 1001))
        .send(&server)
        .expect_error(413);
    send_req(&token, pad(text_body("chunked, over"), 1500))
        .chunked()
        .send(&server)
        .expect_error(413);
    assert_eq!(list_messages(&server, &token, "").len(), 1);
}

#[test]
fn hostile_text_is_stored_and_streamed_verbatim() {
    // SQL syntax, NUL, line breaks (which must not break the one-line
    // `data:` field), U+2028 and HTML are stored and sent verbatim.
    let server = Server::start(&[]);
    let token = user_token(&server, "hostile");
    let mut stream = open_stream(&server, &token, "");
    let mut texts: Vec<String> = HOSTILE_STRINGS.iter().map(|s| s.to_string()).collect();
    texts.extend(
        [
            "line 1\nline 2\r\nline 3\rend",
            "\n\ndata: injected\n\nid: 999\n",
            "\u{2028}\u{2029}\u{85}",
            "<script>alert(1)</script>&amp;",
            "tab\there\u{7f}",
            "😀 é ü",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let sent: Vec<ChatMessage> = texts
        .iter()
        .map(|t| send_message(&server, &token, t))
        .collect();
    assert_eq!(list_messages(&server, &token, "?limit=200"), sent);
    assert_eq!(stream.next_messages(sent.len(), PROMPT), sent);
    stream.assert_no_message_for(Duration::from_millis(200));
}

// ---------------------------------------------------------------------------
// Listing
// ---------------------------------------------------------------------------

#[test]
fn list_with_after_and_limit() {
    // Contract: oldest first; after=<id> → the first `limit` messages after
    // it; without after, the most recent `limit`.
    let server = Server::start(&[]);
    let token = user_token(&server, "lister");
    assert_eq!(list_messages(&server, &token, ""), vec![], "empty room");
    let x = Req::get(MESSAGES).bearer(&token).send(&server);
    assert_eq!(x.expect(200), Json::parse(b"{\"messages\":[]}").unwrap());

    let m: Vec<ChatMessage> = (1..=5)
        .map(|i| send_message(&server, &token, &format!("message {i}")))
        .collect();
    let q = |query: &str| list_messages(&server, &token, query);
    assert_eq!(q(""), m);
    assert_eq!(
        q("?limit=2"),
        m[3..].to_vec(),
        "the most recent 2, oldest first"
    );
    assert_eq!(q("?limit=1"), m[4..].to_vec());
    assert_eq!(q("?limit=5"), m);
    assert_eq!(q("?limit=50"), m);
    assert_eq!(q("?after=0"), m);
    assert_eq!(q(&format!("?after={}", m[1].id)), m[2..].to_vec());
    assert_eq!(q(&format!("?after={}&limit=2", m[0].id)), m[1..3].to_vec());
    assert_eq!(q(&format!("?limit=2&after={}", m[0].id)), m[1..3].to_vec());
    assert_eq!(q(&format!("?after={}&limit=1", m[3].id)), m[4..].to_vec());
    assert_eq!(q(&format!("?after={}", m[4].id)), vec![], "nothing newer");
    assert_eq!(q(&format!("?after={}", m[4].id + 1000)), vec![]);
    assert_eq!(
        q("?after=0&limit=3"),
        m[..3].to_vec(),
        "the first 3 after 0"
    );
}

#[test]
fn list_limit_defaults_to_50_and_is_clamped_to_200() {
    // Contract: limit default 50, at most 200 (more is clamped).
    let server = Server::start(&[]);
    let token = user_token(&server, "chatty");
    let mut c = server.connect();
    let m: Vec<ChatMessage> = (0..205)
        .map(|i| send_message_on(&mut c, &token, &format!("n{i}")))
        .collect();
    assert!(m.windows(2).all(|w| w[0].id < w[1].id), "ids increase");
    let q = |query: &str| list_messages(&server, &token, query);
    assert_eq!(q(""), m[155..].to_vec(), "default: the most recent 50");
    for query in [
        "?limit=200",
        "?limit=201",
        "?limit=1000",
        "?limit=4294967296",
    ] {
        assert_eq!(ids(&q(query)), ids(&m[5..]), "{query}: the most recent 200");
    }
    assert_eq!(
        q("?after=0"),
        m[..50].to_vec(),
        "default: the first 50 after 0"
    );
    assert_eq!(ids(&q("?after=0&limit=1000")), ids(&m[..200]));
    let after = m[100].id;
    assert_eq!(ids(&q(&format!("?after={after}"))), ids(&m[101..151]));
    assert_eq!(
        ids(&q(&format!("?after={after}&limit=500"))),
        ids(&m[101..])
    );
}

#[test]
fn invalid_limit_or_after_is_400() {
    // Contract: a non-numeric or negative limit or after → 400 (an empty
    // value too, as for the posts list).
    let server = Server::start(&[]);
    let token = user_token(&server, "badquery");
    send_message(&server, &token, "one");
    let queries = [
        "limit=",
        "limit=abc",
        "limit=-1",
        "limit=-100",
        "limit=1.5",
        "limit=1e2",
        "limit=0x10",
        "limit=%20",
        "limit=1%20",
        "limit=' OR 1=1 --",
        "after=",
        "after=abc",
        "after=-1",
        "after=1.5",
        "after=-0.5",
        "after=1e2",
        "after=' OR 1=1 --",
        "after=1;DROP TABLE messages",
        "limit=10&after=-3",
        "after=0&limit=x",
    ];
    let mut failures = Failures::default();
    for q in queries {
        let target = format!("{MESSAGES}?{}", q.replace(' ', "%20"));
        failures.check_error(&Req::get(&target).bearer(&token).send(&server), &[400]);
    }
    failures.assert_none(queries.len());
    // Huge numerals are not a 500: clamped / empty, or refused.
    for q in [
        "limit=99999999999999999999999",
        "after=99999999999999999999999",
    ] {
        let x = Req::get(&format!("{MESSAGES}?{q}"))
            .bearer(&token)
            .send(&server);
        if x.status == 400 {
            x.expect_error(400);
        } else {
            let j = x.expect(200);
            assert!(j.field("messages").arr().len() <= 1, "{}", x.show());
        }
    }
    assert_eq!(list_messages(&server, &token, "").len(), 1);
}

// ---------------------------------------------------------------------------
// Persistence
// ---------------------------------------------------------------------------

#[test]
fn messages_survive_a_restart() {
    // Contract: messages are in SQLite and survive a restart.
    let (server, alice, bob) = two_users(&[]);
    let before = vec![
        send_message(&server, &alice, "before the restart"),
        send_message(&server, &bob, "still here after"),
        send_message(&server, &alice, "😀 and ünïcode"),
    ];
    let dir = server.stop();

    let server = Server::builder().reuse_dir(dir).start();
    assert_eq!(list_messages(&server, &alice, ""), before);
    assert_eq!(list_messages(&server, &bob, "?after=0"), before);
    // The stream replays them from the database, then new ones follow with
    // larger ids.
    let mut stream = open_stream(&server, &bob, "?after=0");
    assert_eq!(stream.next_messages(3, PROMPT), before);
    let after = send_message(&server, &alice, "after the restart");
    assert!(after.id > before[2].id, "ids keep increasing: {after:?}");
    assert_eq!(stream.next_message(PROMPT), after);
}

// ---------------------------------------------------------------------------
// The event stream
// ---------------------------------------------------------------------------

#[test]
fn stream_sends_each_new_message_once_in_the_exact_event_format() {
    // Contract: 200 text/event-stream, Cache-Control: no-cache, chunked;
    // each new message as `id: <id>\nevent: message\ndata: <JSON>\n\n`.
    // Without Last-Event-ID or ?after, nothing older is replayed.
    let (server, alice, bob) = two_users(&[]);
    let old = send_message(&server, &alice, "before the stream opened");
    let mut stream = open_stream(&server, &bob, "");
    stream.assert_no_message_for(Duration::from_millis(300));

    let m = send_message(&server, &alice, "live one");
    let got = stream.next_message(PROMPT);
    assert_eq!(got, m, "the event carries the Message as POST returned it");
    assert_ne!(got.id, old.id);
    let m2 = send_message(&server, &bob, "live two");
    assert_eq!(stream.next_message(PROMPT), m2);
    stream.assert_no_message_for(Duration::from_millis(300));
    assert!(
        stream.at_boundary(),
        "events end with a blank line\n{}",
        stream.context()
    );
}

#[test]
fn a_stream_opened_right_after_a_post_gets_that_message_only_if_asked_and_once() {
    // The race between a send and a stream opening: once POST has answered
    // 201, the message is history. A stream opened then with
    // `Last-Event-ID: <id - 1>` (or `?after=<id - 1>`) gets it exactly once
    // (from the replay), and one opened without either does not get it at
    // all — it is not a new message for that stream.
    let server = Server::start(&[]);
    let token = user_token(&server, "racer");
    let mut failures = Vec::new();
    for round in 0..30 {
        let m = send_message(&server, &token, &format!("round {round}"));
        let (what, req) = match round % 3 {
            0 => (
                format!("Last-Event-ID: {}", m.id - 1),
                stream_req(&token, "").header("Last-Event-ID", (m.id - 1).to_string()),
            ),
            1 => (
                format!("?after={}", m.id - 1),
                stream_req(&token, &format!("?after={}", m.id - 1)),
            ),
            _ => ("no replay asked".to_string(), stream_req(&token, "")),
        };
        let mut s = EventStream::open(&server, &req);
        let wanted = if round % 3 == 2 { 0 } else { 1 };
        // A later message marks the end: a stream delivers in order, so all
        // it will ever send about `m` comes before the marker (no waiting to
        // see whether an extra copy turns up).
        let marker = send_message(&server, &token, &format!("marker {round}"));
        let deadline = Instant::now() + PROMPT;
        let mut got = Vec::new();
        loop {
            match s.poll_next(deadline) {
                Ok(Next::Item(SseItem::Event(ev))) if !ev.is_retry_only() => {
                    let msg = event_message(&ev);
                    if msg == marker {
                        break;
                    }
                    got.push(msg)
                }
                Ok(Next::Item(..)) => {}
                Ok(Next::TimedOut) => panic!(
                    "round {round}: the marker message never arrived\n{}",
                    s.context()
                ),
                Ok(Next::Ended(how)) => panic!("stream ended ({how:?})\n{}", s.context()),
                Err(e) => panic!("{e}"),
            }
        }
        let expected: Vec<ChatMessage> = vec![m.clone(); wanted];
        if got != expected {
            failures.push(format!(
                "round {round}: POST answered 201 with id {}, then a stream opened with {what} \
                 received {} event(s) for it (expected {wanted}); stream body so far:\n{}",
                m.id,
                got.len(),
                s.context()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 30 rounds failed; the first ones:\n{}",
        failures.len(),
        failures[..failures.len().min(3)].join("\n\n")
    );
}

#[test]
fn two_users_receive_each_others_messages() {
    let (server, alice, bob) = two_users(&[]);
    let mut a = open_stream(&server, &alice, "");
    let mut b = open_stream(&server, &bob, "");
    let from_bob = send_message(&server, &bob, "hi from bob");
    assert_eq!(from_bob.user, "bob");
    assert_eq!(
        a.next_message(PROMPT),
        from_bob,
        "alice's stream gets bob's message"
    );
    assert_eq!(b.next_message(PROMPT), from_bob, "bob's own stream too");
    let from_alice = send_message(&server, &alice, "hello bob");
    assert_eq!(from_alice.user, "alice");
    assert_eq!(b.next_message(PROMPT), from_alice);
    assert_eq!(a.next_message(PROMPT), from_alice);
    a.assert_no_message_for(Duration::from_millis(200));
    b.assert_no_message_for(Duration::from_millis(200));
}

#[test]
fn last_event_id_replays_the_messages_after_it_then_live_ones() {
    // Contract: `Last-Event-ID: <id>` replays the messages after that id
    // first, in order, then live ones; all of them (more than a page).
    let server = Server::start(&[]);
    let token = user_token(&server, "reconnect");
    let mut c = server.connect();
    let m: Vec<ChatMessage> = (0..75)
        .map(|i| send_message_on(&mut c, &token, &format!("backlog {i}")))
        .collect();

    let mut s = EventStream::open(
        &server,
        &stream_req(&token, "").header("Last-Event-ID", m[1].id.to_string()),
    );
    assert_eq!(s.next_messages(73, PROMPT), m[2..].to_vec());
    let live = send_message(&server, &token, "live after replay");
    assert_eq!(s.next_message(PROMPT), live);
    s.assert_no_message_for(Duration::from_millis(300));

    // Last-Event-ID: 0 → everything; the newest id → nothing replayed.
    let mut all = EventStream::open(
        &server,
        &stream_req(&token, "").header("Last-Event-ID", "0"),
    );
    let mut everything = m.clone();
    everything.push(live.clone());
    assert_eq!(all.next_messages(76, PROMPT), everything);
    all.assert_no_message_for(Duration::from_millis(200));
    let mut none = EventStream::open(
        &server,
        &stream_req(&token, "").header("Last-Event-ID", live.id.to_string()),
    );
    none.assert_no_message_for(Duration::from_millis(300));
    let next = send_message(&server, &token, "one more");
    assert_eq!(none.next_message(PROMPT), next);
    assert_eq!(all.next_message(PROMPT), next);
    assert_eq!(s.next_message(PROMPT), next);
}

#[test]
fn after_query_replays_like_last_event_id_and_the_header_wins() {
    // Contract: `?after=<id>` does the same when no Last-Event-ID header is
    // present; the header wins when both are.
    let server = Server::start(&[]);
    let token = user_token(&server, "afterq");
    let m: Vec<ChatMessage> = (0..5)
        .map(|i| send_message(&server, &token, &format!("m{i}")))
        .collect();

    let mut q = open_stream(&server, &token, &format!("?after={}", m[2].id));
    assert_eq!(q.next_messages(2, PROMPT), m[3..].to_vec());
    q.assert_no_message_for(Duration::from_millis(200));

    let mut both = EventStream::open(
        &server,
        &stream_req(&token, &format!("?after={}", m[0].id))
            .header("Last-Event-ID", m[3].id.to_string()),
    );
    assert_eq!(
        both.next_message(PROMPT),
        m[4],
        "Last-Event-ID wins over ?after"
    );
    both.assert_no_message_for(Duration::from_millis(200));

    let mut both2 = EventStream::open(
        &server,
        &stream_req(&token, &format!("?after={}", m[3].id))
            .header("Last-Event-ID", m[0].id.to_string()),
    );
    assert_eq!(both2.next_messages(4, PROMPT), m[1..].to_vec());

    let live = send_message(&server, &token, "live");
    for s in [&mut q, &mut both, &mut both2] {
        assert_eq!(s.next_message(PROMPT), live);
        s.assert_no_message_for(Duration::from_millis(100));
    }
}

#[test]
fn heartbeat_comments_arrive_at_least_every_interval_while_idle() {
    // Contract: a comment line (starting with ':') at least every
    // `--sse-heartbeat S` seconds while idle. Asserted by the events: one
    // heartbeat after another keeps arriving on an idle stream, with nothing
    // else in between, awaited for less than the default interval (15 s) so
    // that they come from the flag. The gaps between them are measured by
    // benches/load/timing.py.
    const HEARTBEATS: usize = 3;
    const GIVE_UP: Duration = Duration::from_secs(10);
    let server = Server::start(&["--sse-heartbeat", "0.3"]);
    let token = user_token(&server, "idler");
    let mut s = open_stream(&server, &token, "");
    let deadline = Instant::now() + GIVE_UP;
    let mut heartbeats = 0;
    while heartbeats < HEARTBEATS {
        match s.poll_next(deadline) {
            Ok(Next::Item(SseItem::Comment(c))) => {
                assert!(c.starts_with(':'), "{c:?}");
                heartbeats += 1;
            }
            Ok(Next::Item(SseItem::Event(ev))) if ev.is_retry_only() => {}
            Ok(Next::Item(SseItem::Event(ev))) => {
                panic!("unexpected event while idle: {:?}\n{}", ev.raw, s.context())
            }
            Ok(Next::Ended(how)) => panic!("stream ended ({how:?})\n{}", s.context()),
            Ok(Next::TimedOut) => panic!(
                "expected {HEARTBEATS} heartbeat comments with --sse-heartbeat 0.3, got \
                 {heartbeats} in {GIVE_UP:?}\n{}",
                s.context()
            ),
            Err(e) => panic!("{e}"),
        }
    }
    assert!(s.at_boundary(), "comments are whole lines\n{}", s.context());
    // Messages still flow after the heartbeats.
    let m = send_message(&server, &token, "after the quiet");
    assert_eq!(s.next_message(PROMPT), m);
}

#[test]
fn head_on_the_stream_returns_the_headers_and_no_body() {
    // HEAD /api/chat/stream: the GET headers, no body, does not hang (and
    // does not subscribe the connection).
    let server = Server::start(&[]);
    let token = user_token(&server, "header");
    let mut c = server.connect();
    // It does not hang: the response arrives within the client's IO_TIMEOUT.
    let x = Req::head(STREAM).bearer(&token).send_on(&mut c);
    assert_eq!(x.status, 200, "{}", x.show());
    assert_eq!(x.version, "HTTP/1.1", "{}", x.show());
    assert_date_is_now(x.header("date").unwrap_or(""));
    assert_eq!(x.header("server"), Some("looplight"), "{}", x.show());
    // RFC 9110 §8.6: no Content-Length unless it equals what GET would
    // send, and the stream has no length.
    assert!(x.header("content-length").is_none(), "{}", x.show());
    let ct = x.header("content-type").unwrap_or("");
    assert!(
        ct.split(';')
            .next()
            .unwrap()
            .trim()
            .eq_ignore_ascii_case("text/event-stream"),
        "HEAD has the GET Content-Type\n{}",
        x.show()
    );
    assert!(x.has_token("cache-control", "no-cache"), "{}", x.show());
    // No body: nothing more arrives, even when a message is posted.
    c.assert_silent_for(Duration::from_millis(200));
    send_message(&server, &token, "not for HEAD");
    if x.has_token("connection", "close") {
        c.assert_closed();
    } else {
        c.assert_silent_for(Duration::from_millis(300));
        // The connection is still usable: the next response parses.
        Req::get("/healthz").send_on(&mut c).expect(200);
    }
}

#[test]
fn http10_stream_is_close_delimited_not_chunked() {
    // "Transfer-Encoding: chunked on HTTP/1.1": an HTTP/1.0 client gets no
    // chunked framing (RFC 9112 §6.1); the body is the raw event stream.
    let server = Server::start(&[]);
    let token = user_token(&server, "oldclient");
    let request = format!(
        "GET {STREAM} HTTP/1.0\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    let mut s = EventStream::start(server.connect(), request.into_bytes());
    let m = send_message(&server, &token, "to an HTTP/1.0 client");
    assert_eq!(s.next_message(PROMPT), m);
}

#[test]
fn sigterm_ends_streams_with_the_terminating_chunk_and_exits_0() {
    // A stream ends cleanly on SIGTERM: whole events, then the terminating
    // chunk; the process exits 0. The grace period is an hour: streams end
    // at once, not when the grace runs out, or the test gives up first.
    let mut server = Server::start(&["--shutdown-timeout", "3600"]);
    let token = user_token(&server, "leaving");
    let mut busy = open_stream(&server, &token, "");
    let mut idle = open_stream(&server, &token, "");
    let m = send_message(&server, &token, "last words");
    assert_eq!(busy.next_message(PROMPT), m);

    server.signal(SIGTERM);
    let deadline = Instant::now() + PATIENCE;
    for (name, s) in [("busy", &mut busy), ("idle", &mut idle)] {
        let (items, ending) = s
            .read_to_end(deadline)
            .unwrap_or_else(|e| panic!("{name} stream after SIGTERM: {e}"));
        assert_eq!(
            ending,
            Ending::LastChunk,
            "{name} stream must end with the terminating chunk, not a cut connection\n{}",
            s.context()
        );
        for item in &items {
            if let SseItem::Event(ev) = item
                && !ev.is_retry_only()
            {
                assert_eq!(event_message(ev), m, "{name}: only the pending message");
            }
        }
        assert!(
            s.at_boundary(),
            "{name}: no partial event before the end\n{}",
            s.context()
        );
        assert!(
            s.wait_closed(deadline),
            "{name}: the connection closes after the stream ended"
        );
    }
    let status = server
        .wait_exit(PATIENCE)
        .expect("server did not exit after SIGTERM");
    assert!(status.success(), "exit status after SIGTERM: {status}");
}
