//! The login throttle of a single process (SQLite): failed logins per (lower-cased) username,
//! in memory. The sixth attempt within a minute of five failures is refused until the oldest
//! failure is a minute old. (PostgreSQL keeps the same count in a table, shared by every
//! instance: `postgres`.)

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Failed logins for one username that make the next attempt wait.
pub const MAX_FAILURES: usize = 5;
/// How long a failed login counts.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Failed logins per (lower-cased) username within the last minute.
#[derive(Clone, Debug, Default)]
pub struct LoginThrottle {
    failures: Arc<Mutex<HashMap<String, VecDeque<Instant>>>>,
}

impl LoginThrottle {
    /// `Err(retry_after)` when the username has had too many recent failures.
    pub fn check(&self, username: &str) -> Result<(), Duration> {
        self.check_at(username, Instant::now())
    }

    pub fn record_failure(&self, username: &str) {
        self.record_failure_at(username, Instant::now());
    }

    fn check_at(&self, username: &str, now: Instant) -> Result<(), Duration> {
        let mut failures = self.lock();
        let Some(recent) = failures.get_mut(username) else {
            return Ok(());
        };
        while recent
            .front()
            .is_some_and(|&at| now.duration_since(at) >= FAILURE_WINDOW)
        {
            recent.pop_front();
        }
        match recent.front() {
            Some(&oldest) if recent.len() >= MAX_FAILURES => {
                let wait = FAILURE_WINDOW.saturating_sub(now.duration_since(oldest));
                Err(Duration::from_secs(wait.as_secs_f64().ceil() as u64))
            }
            Some(_) => Ok(()),
            None => {
                failures.remove(username);
                Ok(())
            }
        }
    }

    fn record_failure_at(&self, username: &str, now: Instant) {
        self.lock()
            .entry(username.to_owned())
            .or_default()
            .push_back(now);
    }

    pub fn forget(&self, username: &str) {
        self.lock().remove(username);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_blocks_the_sixth_attempt_within_a_minute() {
        let throttle = LoginThrottle::default();
        let t0 = Instant::now();
        for n in 0..MAX_FAILURES {
            assert!(throttle.check_at("eve", t0).is_ok(), "attempt {n}");
            throttle.record_failure_at("eve", t0);
        }
        let wait = throttle
            .check_at("eve", t0 + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(throttle.check_at("bob", t0).is_ok());
        assert!(throttle.check_at("eve", t0 + FAILURE_WINDOW).is_ok());
        throttle.forget("eve");
        assert!(throttle.check_at("eve", t0).is_ok());
    }
}
