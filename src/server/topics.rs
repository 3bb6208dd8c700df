//! Which connections subscribe to which topic (see `events`). Entries of closed connections are
//! dropped lazily, when a publish finds them gone.

use std::collections::HashMap;

use crate::server::timers::TimerKey;

#[derive(Debug, Default)]
pub struct Topics {
    subscribers: HashMap<String, Vec<TimerKey>>,
}

impl Topics {
    pub fn subscribe(&mut self, topic: &str, key: TimerKey) {
        self.subscribers
            .entry(topic.to_owned())
            .or_default()
            .push(key);
    }

    /// Takes the subscriber list of `topic` for a publish; give it back with `restore`.
    pub fn take(&mut self, topic: &str) -> Vec<TimerKey> {
        self.subscribers.remove(topic).unwrap_or_default()
    }

    /// Puts back the (pruned) list taken for a publish, keeping any subscriptions made since.
    pub fn restore(&mut self, topic: &str, mut keys: Vec<TimerKey>) {
        if keys.is_empty() && !self.subscribers.contains_key(topic) {
            return;
        }
        let entry = self.subscribers.entry(topic.to_owned()).or_default();
        keys.append(entry);
        *entry = keys;
    }
}
