//! The group chat room: history, sending, and the live stream (server-sent events).
//!
//! Sending stores the message, then publishes it to the `chat` topic as an SSE event whose id
//! is the message id. A stream first replays the messages after the client's `Last-Event-ID`
//! (or `?after=`), then receives live ones: both happen on the loop thread, in the same tick, so
//! no message can slip between the replay and the subscription.

use serde::Deserialize;
use serde_json::json;

use crate::events::{EventStream, encode_event};
use crate::http::request::Request;
use crate::http::response::{IntoResponse, Response};
use crate::json::{HttpError, Json, read_json};
use crate::router::Reply;
use crate::store::Message;

use super::auth::authenticate;
use super::{Api, char_len, count_param, length_error};

/// The topic every stream subscribes to.
const TOPIC: &str = "chat";
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;
const MAX_TEXT_CHARS: usize = 2000;
/// At most this many missed messages are replayed to a reconnecting stream.
const MAX_REPLAY: u32 = 1000;

/// GET /api/chat/messages?after=&limit= → {"messages": [...]}, oldest first.
pub fn list(api: &Api, request: &Request<'_>) -> Result<Reply, HttpError> {
    authenticate(api, request)?;
    let limit = u32::try_from(count_param(request, "limit", DEFAULT_LIMIT.into())?)
        .unwrap_or(MAX_LIMIT)
        .min(MAX_LIMIT);
    let messages = match request.query_param("after") {
        Some(_) => api
            .store
            .messages_after(after_id(count_param(request, "after", 0)?), limit)?,
        None => api.store.recent_messages(limit)?,
    };
    Ok(Reply::Now(
        Json(json!({ "messages": messages })).into_response(),
    ))
}

/// POST /api/chat/messages {"text"} → 201 Message, and the message to every stream.
pub fn send(api: &Api, request: &Request<'_>) -> Result<Reply, HttpError> {
    #[derive(Deserialize)]
    struct MessageInput {
        text: String,
    }
    let user = authenticate(api, request)?;
    let input: MessageInput = read_json(request, api.settings.max_json_body)?;
    if !(1..=MAX_TEXT_CHARS).contains(&char_len(&input.text)) {
        return Err(length_error("text", 1, MAX_TEXT_CHARS));
    }
    let message = api.store.insert_message(user.id, &input.text)?;
    api.publisher.publish(TOPIC, event_for(&message));
    Ok(Reply::Now((201, Json(message)).into_response()))
}

/// GET /api/chat/stream → text/event-stream: missed messages first, then live ones.
pub fn stream(api: &Api, request: &Request<'_>) -> Result<Reply, HttpError> {
    authenticate(api, request)?;
    let resume_after = match request.header("last-event-id") {
        // A browser resuming: an id we did not send is treated as "from the start".
        Some(value) => Some(
            std::str::from_utf8(value)
                .ok()
                .and_then(|id| id.trim().parse().ok())
                .unwrap_or(0),
        ),
        None if request.query_param("after").is_some() => Some(count_param(request, "after", 0)?),
        None => None,
    };
    let mut replay = Vec::new();
    if let Some(after) = resume_after {
        for message in api.store.messages_after(after_id(after), MAX_REPLAY)? {
            replay.extend_from_slice(&event_for(&message));
        }
    }
    let response = Response::empty(200)
        .with_header("Content-Type", "text/event-stream")
        .with_header("Cache-Control", "no-cache");
    Ok(Reply::Stream(EventStream {
        topic: TOPIC.to_owned(),
        response,
        replay,
    }))
}

/// `id: <id>\nevent: message\ndata: <Message JSON>\n\n`
fn event_for(message: &Message) -> Vec<u8> {
    let data = serde_json::to_string(message).unwrap_or_default();
    let mut event = Vec::with_capacity(data.len() + 40);
    encode_event(&mut event, u64::try_from(message.id).ok(), "message", &data);
    event
}

fn after_id(after: u64) -> i64 {
    i64::try_from(after).unwrap_or(i64::MAX)
}
