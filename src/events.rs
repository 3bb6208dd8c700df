//! Live updates: server-sent events (the WHATWG HTML standard, §9.2) published to topics.
//!
//! A handler subscribes its connection by returning [`Reply::Stream`](crate::Reply::Stream)
//! with an [`EventStream`]: the response head, a topic, and events to send first (a replay).
//! The connection then stays open as a long-lived response — a slab entry, not a thread.
//! Anyone holding a [`Publisher`] (from [`App::publisher`](crate::App::publisher)) can publish an
//! event to a topic; the loop writes it to every subscriber before it next sleeps, without
//! waiting for a slow one (a subscriber whose unsent output passes a bound is dropped and can
//! resume with `Last-Event-ID`).

use std::cell::RefCell;
use std::rc::Rc;

use crate::http::response::Response;

/// What a handler returns to turn its response into an event stream.
#[derive(Debug)]
pub struct EventStream {
    /// The topic whose events this connection receives.
    pub topic: String,
    /// Status and headers (`Content-Type: text/event-stream` is the caller's to set).
    pub response: Response,
    /// Encoded events sent before any live one (see [`encode_event`]).
    pub replay: Vec<u8>,
}

/// An encoded event on its way to a topic's subscribers, shared by all of them.
pub(crate) type Published = (String, Rc<[u8]>);

/// Publishes events to topics; cheap to clone, used on the loop thread.
#[derive(Clone, Debug, Default)]
pub struct Publisher {
    queued: Rc<RefCell<Vec<Published>>>,
}

impl Publisher {
    /// Queues `event` (already encoded, see [`encode_event`]) for every subscriber of `topic`.
    pub fn publish(&self, topic: &str, event: Vec<u8>) {
        self.queued
            .borrow_mut()
            .push((topic.to_owned(), event.into()));
    }

    /// Takes the queued events; the loop calls this once per tick.
    pub(crate) fn take(&self) -> Vec<Published> {
        std::mem::take(&mut *self.queued.borrow_mut())
    }
}

/// Appends one event: `id: <id>\nevent: <name>\ndata: <line>\n` per line of `data`, then a
/// blank line. `data` may hold newlines; each line becomes its own `data:` field.
pub fn encode_event(out: &mut Vec<u8>, id: Option<u64>, name: &str, data: &str) {
    if let Some(id) = id {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
        out.push(b'\n');
    }
    if !name.is_empty() {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.trim_end_matches('\r').as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// A comment line: ignored by clients, it keeps idle streams (and proxies) from timing out.
pub const KEEP_ALIVE_COMMENT: &[u8] = b": keep-alive\n\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_fields_and_multiline_data() {
        let mut out = Vec::new();
        encode_event(&mut out, Some(7), "message", "{\"a\":1}");
        encode_event(&mut out, None, "", "two\nlines");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "id: 7\nevent: message\ndata: {\"a\":1}\n\ndata: two\ndata: lines\n\n"
        );
    }

    #[test]
    fn publisher_queues_until_taken() {
        let publisher = Publisher::default();
        publisher.clone().publish("chat", b"x".to_vec());
        let taken = publisher.take();
        assert_eq!(taken.len(), 1);
        assert_eq!(&*taken[0].1, b"x");
        assert!(publisher.take().is_empty());
    }
}
