//! Helpers for the group chat tests: the Message shape, sending and listing
//! messages, and reading chat events from an `EventStream` with the exact
//! wire format of the contract:
//!
//! ```text
//! id: <id>\nevent: message\ndata: <Message JSON>\n\n
//! ```

use std::time::{Duration, Instant};

use super::api::{Exchange, Req, rfc3339_utc};
use super::json::{Json, js, json_obj};
use super::sse::{EventStream, Next, SseEvent, SseItem};
use super::{Client, Server};

pub const MESSAGES: &str = "/api/chat/messages";
pub const STREAM: &str = "/api/chat/stream";

/// Largest valid message text, in Unicode scalar values.
pub const MAX_TEXT_CHARS: usize = 2000;

/// A chat Message as returned by the API, after its shape was checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    pub id: i64,
    pub user: String,
    pub text: String,
    pub sent_at: String,
}

impl ChatMessage {
    /// Contract: Message = {"id": int, "user": str, "text": str, "sent_at":
    /// RFC 3339}; ids positive.
    pub fn from_json(j: &Json) -> ChatMessage {
        j.assert_keys(&["id", "sent_at", "text", "user"]);
        let m = ChatMessage {
            id: j.field("id").int(),
            user: j.field("user").str().to_string(),
            text: j.field("text").str().to_string(),
            sent_at: j.field("sent_at").str().to_string(),
        };
        assert!(m.id > 0, "message ids are positive integers: {j}");
        assert!(
            rfc3339_utc(&m.sent_at).is_some(),
            "sent_at is not RFC 3339 UTC: {j}"
        );
        m
    }
}

/// `{"text": <text>}`.
pub fn text_body(text: &str) -> String {
    json_obj(&[("text", &js(text))])
}

/// `POST /api/chat/messages` with a bearer token and a JSON body.
pub fn send_req(token: &str, body: impl AsRef<[u8]>) -> Req {
    Req::post(MESSAGES).bearer(token).json(body)
}

fn check_sent(x: &Exchange, text: &str) -> ChatMessage {
    let m = ChatMessage::from_json(&x.expect(201));
    assert_eq!(m.text, text, "the text is stored verbatim\n{}", x.show());
    m
}

/// Sends a message on a fresh connection (expects 201 Message with that
/// text).
pub fn send_message(server: &Server, token: &str, text: &str) -> ChatMessage {
    let x = send_req(token, text_body(text)).send(server);
    check_sent(&x, text)
}

/// Sends a message on a keep-alive connection.
pub fn send_message_on(c: &mut Client, token: &str, text: &str) -> ChatMessage {
    let x = send_req(token, text_body(text)).send_on(c);
    check_sent(&x, text)
}

/// `GET /api/chat/messages<query>` → the messages (200, exactly
/// `{"messages": [...]}`, shapes checked).
pub fn list_messages(server: &Server, token: &str, query: &str) -> Vec<ChatMessage> {
    let x = Req::get(&format!("{MESSAGES}{query}"))
        .bearer(token)
        .send(server);
    let j = x.expect(200);
    j.assert_keys(&["messages"]);
    j.field("messages")
        .arr()
        .iter()
        .map(ChatMessage::from_json)
        .collect()
}

/// `GET /api/chat/stream<query>` with a bearer token.
pub fn stream_req(token: &str, query: &str) -> Req {
    Req::get(&format!("{STREAM}{query}")).bearer(token)
}

/// Opens `GET /api/chat/stream<query>` with a bearer token.
pub fn open_stream(server: &Server, token: &str, query: &str) -> EventStream {
    EventStream::open(server, &stream_req(token, query))
}

/// The Message of a chat event, after checking the exact wire format
/// `id: <id>\nevent: message\ndata: <Message JSON>\n\n` and that the id
/// field is the Message's id. Panics (showing the raw block) otherwise.
pub fn event_message(ev: &SseEvent) -> ChatMessage {
    let lines: Vec<&str> = ev.raw.split('\n').collect();
    let well_formed = lines.len() == 5
        && lines[0].starts_with("id: ")
        && lines[1] == "event: message"
        && lines[2].starts_with("data: ")
        && lines[3].is_empty()
        && lines[4].is_empty();
    assert!(
        well_formed,
        "a chat event must be exactly `id: <id>\\nevent: message\\ndata: <Message JSON>\\n\\n`, got {:?}",
        ev.raw
    );
    let data = &lines[2]["data: ".len()..];
    let j = Json::parse(data.as_bytes())
        .unwrap_or_else(|e| panic!("event data is not JSON: {e}: {:?}", ev.raw));
    let m = ChatMessage::from_json(&j);
    assert_eq!(
        &lines[0]["id: ".len()..],
        m.id.to_string(),
        "the event id must be the Message id: {:?}",
        ev.raw
    );
    m
}

impl EventStream {
    /// The next chat message (heartbeat comments and `retry:`-only blocks
    /// skipped) within `timeout`; panics otherwise, or if the stream ends.
    pub fn next_message(&mut self, timeout: Duration) -> ChatMessage {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next_item(deadline) {
                Ok(Some(SseItem::Comment(_))) => {}
                Ok(Some(SseItem::Event(ev))) if ev.is_retry_only() => {}
                Ok(Some(SseItem::Event(ev))) => return event_message(&ev),
                Ok(None) => panic!(
                    "the event stream ended ({:?}) while a message was expected\n{}",
                    self.ending(),
                    self.context()
                ),
                Err(e) => panic!("no chat message within {timeout:?}: {e}"),
            }
        }
    }

    /// The next `n` chat messages, all within `timeout`.
    pub fn next_messages(&mut self, n: usize, timeout: Duration) -> Vec<ChatMessage> {
        let deadline = Instant::now() + timeout;
        (0..n)
            .map(|_| self.next_message(deadline.saturating_duration_since(Instant::now())))
            .collect()
    }

    /// Asserts no chat message arrives (and the stream does not end) during
    /// `d`; comments are fine.
    pub fn assert_no_message_for(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        loop {
            match self.poll_next(deadline) {
                Ok(Next::Item(SseItem::Comment(_))) => {}
                Ok(Next::Item(SseItem::Event(ev))) if ev.is_retry_only() => {}
                Ok(Next::Item(SseItem::Event(ev))) => panic!(
                    "unexpected event {:?} (each message is sent once)\n{}",
                    ev.raw,
                    self.context()
                ),
                Ok(Next::Ended(how)) => panic!(
                    "the event stream ended ({how:?}); it should stay open\n{}",
                    self.context()
                ),
                Ok(Next::TimedOut) => return,
                Err(e) => panic!("{e}"),
            }
        }
    }
}
