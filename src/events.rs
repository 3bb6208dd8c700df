//! Live updates: server-sent events (the WHATWG HTML standard, §9.2) published to topics.
//!
//! A handler subscribes its connection by returning [`Reply::Stream`](crate::Reply::Stream)
//! (or answering a job with [`Responder::stream`](crate::Responder::stream)) with an
//! [`EventStream`]: the response head, a topic, and events to send first (a replay). The
//! connection then stays open as a long-lived response — a slab entry, not a thread.
//!
//! Anyone holding a [`Publisher`] (from [`App::publisher`](crate::App::publisher)), on any
//! thread, can publish an event to a topic: it is queued and the loop is woken, and the loop
//! writes it to every subscriber without waiting for a slow one (a subscriber whose unsent
//! output passes a bound is dropped and can resume with `Last-Event-ID`).
//!
//! Events with an id (`id:` field) are delivered in the order published, each once per
//! stream: the loop keeps each topic's recent events, so a stream whose replay was read off the
//! loop (from a database, on a helper thread) is sent the events published while that replay
//! was being read, and none it already had (see [`EventStream::last_id`]).

use std::sync::{Arc, Mutex, OnceLock};

use mio::Waker;

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
    /// The id of the last event in `replay`, or the id the client resumed after if the
    /// replay is empty; `None` for a stream that starts with live events only. Published
    /// events with an id up to it are not sent again; those after it that were published
    /// before the stream subscribed are sent from the topic's recent history.
    pub last_id: Option<u64>,
}

/// An encoded event on its way to a topic's subscribers, shared by all of them.
#[derive(Clone, Debug)]
pub(crate) struct Published {
    pub topic: String,
    pub id: Option<u64>,
    pub event: Arc<[u8]>,
}

/// Publishes events to topics, from any thread; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Publisher {
    shared: Arc<PublisherShared>,
}

#[derive(Debug, Default)]
struct PublisherShared {
    queued: Mutex<Vec<Published>>,
    /// Wakes the loop to deliver; set when the server starts.
    waker: OnceLock<Arc<Waker>>,
}

impl Publisher {
    /// Queues `event` (already encoded, see [`encode_event`]; `id` is its `id:` field, if any)
    /// for every subscriber of `topic`, and wakes the loop to deliver it. Events with ids must
    /// be published in increasing id order.
    pub fn publish(&self, topic: &str, id: Option<u64>, event: Vec<u8>) {
        let published = Published {
            topic: topic.to_owned(),
            id,
            event: event.into(),
        };
        self.queue().push(published);
        if let Some(waker) = self.shared.waker.get() {
            let _ = waker.wake();
        }
    }

    /// Lets publishing wake the loop through `waker` (the server calls this once).
    pub(crate) fn wake_with(&self, waker: Arc<Waker>) {
        let _ = self.shared.waker.set(waker);
    }

    /// Takes the queued events, in the order published; the loop calls this once per tick.
    pub(crate) fn take(&self) -> Vec<Published> {
        std::mem::take(&mut *self.queue())
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Published>> {
        self.shared
            .queued
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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
    fn publisher_queues_until_taken_and_wakes_the_loop() {
        let publisher = Publisher::default();
        // Before the server starts there is nothing to wake.
        publisher.clone().publish("chat", Some(1), b"x".to_vec());
        let mut poll = mio::Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(9)).unwrap());
        publisher.wake_with(waker);
        let from_another_thread = publisher.clone();
        std::thread::spawn(move || from_another_thread.publish("chat", None, b"y".to_vec()))
            .join()
            .unwrap();
        let mut events = mio::Events::with_capacity(4);
        poll.poll(&mut events, Some(std::time::Duration::from_secs(5)))
            .unwrap();
        assert_eq!(
            events.iter().next().map(|event| event.token()),
            Some(mio::Token(9))
        );
        let taken = publisher.take();
        let seen: Vec<_> = taken.iter().map(|p| (p.id, &*p.event)).collect();
        assert_eq!(seen, [(Some(1), &b"x"[..]), (None, &b"y"[..])]);
        assert!(publisher.take().is_empty());
    }
}
