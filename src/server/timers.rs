//! Connection deadlines, kept in a min-heap and driven by the loop's poll timeout.
//!
//! Entries are lazy: a connection's deadline usually moves *later* as it makes progress (every
//! request pushes the idle timeout out), and that costs nothing here. The heap holds at most one
//! live entry per connection, the earliest it may need; when it fires the loop asks the
//! connection for its current deadline and either times it out or re-arms. An entry pushed for
//! an earlier deadline leaves the old one stale, recognised by its time and skipped. A steady
//! keep-alive connection therefore touches the heap once per timeout period, not per request.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::server::conn::ConnId;

#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, ConnId)>>,
}

impl Timers {
    /// Adds an entry for `key` at `at`.
    pub fn schedule(&mut self, at: Instant, key: ConnId) {
        self.heap.push(Reverse((at, key)));
    }

    /// The earliest entry's time.
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Removes and returns one entry due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, ConnId)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(entry)| entry),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_due_entries_in_time_order() {
        let mut timers = Timers::default();
        let t0 = Instant::now();
        let key = |slot| ConnId {
            slot,
            serial: slot as u64,
        };
        timers.schedule(t0 + Duration::from_secs(3), key(3));
        timers.schedule(t0 + Duration::from_secs(1), key(1));
        timers.schedule(t0 + Duration::from_secs(2), key(2));
        assert_eq!(timers.next(), Some(t0 + Duration::from_secs(1)));
        let now = t0 + Duration::from_secs(2);
        assert_eq!(timers.pop_due(now).map(|(_, k)| k.slot), Some(1));
        assert_eq!(timers.pop_due(now).map(|(_, k)| k.slot), Some(2));
        assert_eq!(timers.pop_due(now), None);
        assert_eq!(timers.len(), 1);
    }
}
