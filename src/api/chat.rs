//! The group chat room: history, sending, and the live stream (server-sent events).
//!
//! Sending stores the message (on the writer thread), then, once it is committed, publishes it
//! to the `chat` topic as an SSE event whose id is the message id. A stream first replays the
//! messages after the client's `Last-Event-ID` (or `?after=`), read on a helper thread, then
//! receives live ones. The loop orders the two: events published while the replay was read are
//! sent from the topic's recent history, those already in the replay are not sent twice
//! (`EventStream::last_id`), so no message slips between replay and subscription.

use serde::Deserialize;
use serde_json::json;

use crate::events::{EventStream, Publisher, encode_event};
use crate::http::request::Request;
use crate::http::response::{IntoResponse, Response};
use crate::http::status::StatusCode;
use crate::json::{HttpError, Json, read_json};
use crate::metrics::PROCESS;
use crate::store::Message;

use super::auth::authenticate;
use super::{Answer, Api, char_len, count_param, length_error};

/// The topic every stream subscribes to.
pub(crate) const TOPIC: &str = "chat";
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;
const MAX_TEXT_CHARS: usize = 2000;
/// At most this many missed messages are replayed to a reconnecting stream.
const MAX_REPLAY: u32 = 1000;

/// GET /api/chat/messages?after=&limit= → {"messages": [...]}, oldest first.
pub fn list(api: &Api, request: &Request<'_>) -> Result<Answer, HttpError> {
    authenticate(api, request)?;
    let limit = u32::try_from(count_param(request, "limit", DEFAULT_LIMIT.into())?)
        .unwrap_or(MAX_LIMIT)
        .min(MAX_LIMIT);
    let messages = match request.query_param("after") {
        Some(_) => {
            let after = after_id(count_param(request, "after", 0)?);
            api.db.read(|store| store.messages_after(after, limit))?
        }
        None => api.db.read(|store| store.recent_messages(limit))?,
    };
    Ok(Answer::respond(Json(json!({ "messages": messages }))))
}

/// POST /api/chat/messages {"text"} → 201 Message, and the message to every stream (both
/// once the message is committed).
pub fn send(api: &Api, request: &Request<'_>) -> Result<Answer, HttpError> {
    #[derive(Deserialize)]
    struct MessageInput {
        text: String,
    }
    let user = authenticate(api, request)?;
    let input: MessageInput = read_json(request, api.settings.max_json_body)?;
    if !(1..=MAX_TEXT_CHARS).contains(&char_len(&input.text)) {
        return Err(length_error("text", 1, MAX_TEXT_CHARS));
    }
    Ok(Answer::write_and_publish(move |store| {
        let message = store.insert_message(user.id, &input.text)?;
        let id = u64::try_from(message.id).unwrap_or_default();
        let event = event_for(&message);
        Ok((
            (StatusCode::CREATED, Json(message)).into_response(),
            (TOPIC, id, event),
        ))
    }))
}

/// GET /api/chat/stream → text/event-stream: missed messages first, then live ones.
pub fn stream(api: &Api, request: &Request<'_>) -> Result<Answer, HttpError> {
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
    let mut last_id = resume_after;
    if let Some(after) = resume_after {
        let missed = api
            .db
            .read(|store| store.messages_after(after_id(after), MAX_REPLAY))?;
        for message in missed {
            replay.extend_from_slice(&event_for(&message));
            last_id = u64::try_from(message.id).ok().or(last_id);
        }
    } else if api.db.is_shared() {
        // A shared database publishes a message when the listener hears of it, which may be
        // after its POST was answered: start after the newest message committed by now, so
        // that one is history to this stream (ids commit in order, so every later one is new).
        let newest = api
            .db
            .read(|store| Ok(store.recent_messages(1)?.first().map_or(0, |m| m.id)))?;
        last_id = Some(u64::try_from(newest).unwrap_or(0));
    }
    let response = Response::empty(StatusCode::OK)
        .with_header("Content-Type", "text/event-stream")
        .with_header("Cache-Control", "no-cache");
    Ok(Answer::Stream(EventStream {
        topic: TOPIC.to_owned(),
        response,
        replay,
        last_id,
    }))
}

/// Sends `messages` to every stream of this instance (from a shared database, which tells
/// every instance about each message it committed).
pub fn publish(publisher: &Publisher, messages: &[Message]) {
    for message in messages {
        let id = u64::try_from(message.id).ok();
        PROCESS.chat_messages_published.inc();
        publisher.publish(TOPIC, id, event_for(message));
    }
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
