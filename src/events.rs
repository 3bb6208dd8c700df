//! Live updates: server-sent events (the WHATWG HTML standard, §9.2) published to topics.
//!
//! A handler subscribes its connection by returning [`Reply::Stream`](crate::Reply::Stream)
//! (or answering a job with [`Responder::stream`](crate::Responder::stream)) with an
//! [`EventStream`]: the response head, a topic, and events to send first (a replay). The
//! connection then stays open as a long-lived response — a slab entry, not a thread.
//!
//! Anyone holding a [`Publisher`] (from [`App::publisher`](crate::App::publisher)), on any
//! thread, can publish an event to a topic: it is queued for every event loop (one per worker,
//! each with its own inbox, all in the same order) and the loops are woken; each writes it to
//! its subscribers without waiting for a slow one (a subscriber whose unsent
//! output passes a bound is dropped and can resume with `Last-Event-ID`).
//!
//! Events with an id (`id:` field) are delivered in the order published, each once per
//! stream: the loop keeps each topic's recent events, so a stream whose replay was read off the
//! loop (from a database, on a helper thread) is sent the events published while that replay
//! was being read, and none it already had (see [`EventStream::last_id`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

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
    pub topic: Arc<str>,
    pub id: Option<u64>,
    pub event: Arc<[u8]>,
}

/// Publishes events to topics, from any thread; cheap to clone.
///
/// Every event loop serving the app (one per worker) has an inbox; a publish puts the
/// event into each, under one lock, so that every loop receives the events in the same order
/// (the order `Last-Event-ID` replay relies on). That lock is taken by publishers only, never
/// on a request's path; a loop takes only its own inbox's.
#[derive(Clone, Debug, Default)]
pub struct Publisher {
    /// The inboxes of the loops serving now: a loop that ended drops its inbox, which is
    /// then forgotten here at the next publish.
    inboxes: Arc<Mutex<Vec<Weak<Inbox>>>>,
}

/// One event loop's share of what is published: the events not delivered yet, and the waker
/// that tells the loop about them.
#[derive(Debug)]
pub(crate) struct Inbox {
    queued: Mutex<Vec<Published>>,
    /// Set after a push: the loop looks at `queued` (after every handler it runs) only then,
    /// so its usual check is one atomic swap, not a lock a publisher may hold.
    pending: AtomicBool,
    waker: Arc<Waker>,
}

impl Publisher {
    /// Queues `event` (already encoded, see [`encode_event`]; `id` is its `id:` field, if any)
    /// for every subscriber of `topic`, on every loop, and wakes the loops to deliver it.
    /// Events with ids must be published in increasing id order. Before the server starts
    /// nobody can be subscribed: the event goes nowhere.
    pub fn publish(&self, topic: &str, id: Option<u64>, event: Vec<u8>) {
        let published = Published {
            topic: topic.into(),
            id,
            event: event.into(),
        };
        // Held while pushing to every inbox: two publishers cannot interleave differently in
        // two loops.
        lock(&self.inboxes).retain(|inbox| {
            let Some(inbox) = inbox.upgrade() else {
                return false;
            };
            lock(&inbox.queued).push(published.clone());
            inbox.pending.store(true, Ordering::Release);
            let _ = inbox.waker.wake();
            true
        });
    }

    /// Gives a loop, woken through `waker`, its own inbox: it receives everything published
    /// from now on (the server calls this once per loop, before serving).
    pub(crate) fn subscribe(&self, waker: Arc<Waker>) -> Arc<Inbox> {
        let inbox = Arc::new(Inbox {
            queued: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            waker,
        });
        lock(&self.inboxes).push(Arc::downgrade(&inbox));
        inbox
    }
}

impl Inbox {
    /// Takes the queued events, in the order published; the loop calls this after running
    /// handlers and when woken.
    pub(crate) fn take(&self) -> Vec<Published> {
        // A push whose flag is not set yet is taken at the wake-up that follows it.
        if !self.pending.swap(false, Ordering::Acquire) {
            return Vec::new();
        }
        std::mem::take(&mut *lock(&self.queued))
    }
}

/// Locks `mutex`, whose data stays consistent even if a holder panicked (pushes and takes).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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
    fn publishing_reaches_every_inbox_in_one_order_and_wakes_each_loop() {
        let publisher = Publisher::default();
        // Before the server starts there is nobody to deliver to.
        publisher.clone().publish("chat", Some(1), b"lost".to_vec());
        let mut polls = [mio::Poll::new().unwrap(), mio::Poll::new().unwrap()];
        let inboxes: Vec<_> = polls
            .iter()
            .map(|poll| {
                let waker = Waker::new(poll.registry(), mio::Token(9)).unwrap();
                publisher.subscribe(Arc::new(waker))
            })
            .collect();
        let publishers: Vec<_> = (0..4)
            .map(|n| {
                let publisher = publisher.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        publisher.publish("chat", None, format!("{n}.{i}").into_bytes());
                    }
                })
            })
            .collect();
        for thread in publishers {
            thread.join().unwrap();
        }
        let mut events = mio::Events::with_capacity(4);
        for poll in &mut polls {
            poll.poll(&mut events, Some(std::time::Duration::from_secs(5)))
                .unwrap();
            assert_eq!(
                events.iter().next().map(|event| event.token()),
                Some(mio::Token(9))
            );
        }
        let seen: Vec<Vec<Vec<u8>>> = inboxes
            .iter()
            .map(|inbox| inbox.take().iter().map(|p| p.event.to_vec()).collect())
            .collect();
        assert_eq!(seen[0].len(), 200);
        assert_eq!(seen[0], seen[1], "the same order in every loop");
        assert!(inboxes.iter().all(|inbox| inbox.take().is_empty()));
        // A loop that ended is forgotten.
        let mut inboxes = inboxes;
        let ended = inboxes.pop();
        drop(ended);
        publisher.publish("chat", None, b"z".to_vec());
        assert_eq!(publisher.inboxes.lock().unwrap().len(), 1);
        assert_eq!(inboxes[0].take().len(), 1);
    }
}
