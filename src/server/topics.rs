//! Which connections subscribe to which topic (see `events`), and each topic's recent events.
//! Entries of closed connections are dropped lazily, when a publish finds them gone.
//!
//! The recent events (those with ids, the last [`RECENT_EVENTS`] per topic) let a stream that
//! read its replay off the loop catch up on what was published meanwhile: the loop is the one
//! place where "published" and "subscribed" are ordered.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::server::conn::ConnId;

/// Events with ids remembered per topic. A replay read on a helper thread takes milliseconds;
/// a topic would need this many events in that time to outrun it.
pub const RECENT_EVENTS: usize = 1024;

#[derive(Debug, Default)]
pub struct Topics {
    subscribers: HashMap<String, Vec<ConnId>>,
    recent: HashMap<String, Recent>,
}

/// One topic's latest events, oldest first.
#[derive(Debug, Default)]
struct Recent {
    events: VecDeque<(u64, Arc<[u8]>)>,
    /// The highest id dropped from `events`, if any was.
    forgotten_through: Option<u64>,
}

impl Topics {
    pub fn subscribe(&mut self, topic: &str, key: ConnId) {
        self.subscribers
            .entry(topic.to_owned())
            .or_default()
            .push(key);
    }

    /// Takes the subscriber list of `topic` for a publish; give it back with `restore`.
    pub fn take(&mut self, topic: &str) -> Vec<ConnId> {
        self.subscribers.remove(topic).unwrap_or_default()
    }

    /// Puts back the (pruned) list taken for a publish, keeping any subscriptions made since.
    pub fn restore(&mut self, topic: &str, mut keys: Vec<ConnId>) {
        if keys.is_empty() && !self.subscribers.contains_key(topic) {
            return;
        }
        let entry = self.subscribers.entry(topic.to_owned()).or_default();
        keys.append(entry);
        *entry = keys;
    }

    /// Remembers a published event with an id (ids increase per topic).
    pub fn remember(&mut self, topic: &str, id: u64, event: &Arc<[u8]>) {
        let recent = match self.recent.get_mut(topic) {
            Some(recent) => recent,
            None => self.recent.entry(topic.to_owned()).or_default(),
        };
        if recent.events.len() == RECENT_EVENTS
            && let Some((dropped, _)) = recent.events.pop_front()
        {
            recent.forgotten_through = Some(dropped);
        }
        recent.events.push_back((id, Arc::clone(event)));
    }

    /// The remembered events of `topic` with an id above `after`, oldest first; `None` if some
    /// of them may have been forgotten already.
    pub fn recent_after(&self, topic: &str, after: u64) -> Option<Vec<(u64, Arc<[u8]>)>> {
        let Some(recent) = self.recent.get(topic) else {
            return Some(Vec::new());
        };
        if recent
            .forgotten_through
            .is_some_and(|forgotten| forgotten > after)
        {
            return None;
        }
        let newer = recent.events.partition_point(|(id, _)| *id <= after);
        Some(recent.events.range(newer..).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_events_after_an_id_until_they_are_forgotten() {
        let mut topics = Topics::default();
        let event: Arc<[u8]> = Arc::from(&b"e"[..]);
        assert_eq!(topics.recent_after("chat", 0), Some(Vec::new()));
        for id in 1..=3 {
            topics.remember("chat", id, &event);
        }
        let ids = |found: Option<Vec<(u64, Arc<[u8]>)>>| {
            found.map(|events| events.into_iter().map(|(id, _)| id).collect::<Vec<_>>())
        };
        assert_eq!(ids(topics.recent_after("chat", 1)), Some(vec![2, 3]));
        assert_eq!(ids(topics.recent_after("chat", 3)), Some(vec![]));
        assert_eq!(ids(topics.recent_after("other", 0)), Some(vec![]));
        for id in 4..=(RECENT_EVENTS as u64 + 3) {
            topics.remember("chat", id, &event);
        }
        // 1, 2 and 3 are forgotten: after 2 something may be missing, after 3 nothing is.
        assert_eq!(ids(topics.recent_after("chat", 2)), None);
        assert_eq!(
            ids(topics.recent_after("chat", RECENT_EVENTS as u64 + 2)),
            Some(vec![RECENT_EVENTS as u64 + 3])
        );
        assert_eq!(
            topics.recent_after("chat", 3).map(|e| e.len()),
            Some(RECENT_EVENTS)
        );
    }
}
