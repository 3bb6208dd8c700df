//! Turning a burst of file events into one reload.
//!
//! An editor's save is several events (a write, a close, often a rename or a backup file), and
//! a build step may write several files: pages should reload once, after the burst. A burst
//! is due once it has been quiet for `quiet`, or `max_delay` after its first event if it never
//! goes quiet (a tool writing on and on still gets its pages reloaded). Time is passed in, so
//! the rules are tested without a clock.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Debounce {
    quiet: Duration,
    max_delay: Duration,
    /// The burst under way: (its first event, its last event).
    burst: Option<(Instant, Instant)>,
}

impl Debounce {
    pub fn new(quiet: Duration, max_delay: Duration) -> Debounce {
        Debounce {
            quiet,
            max_delay,
            burst: None,
        }
    }

    /// Notes an event at `now`: it starts a burst, or extends the one under way.
    pub fn record(&mut self, now: Instant) {
        let first = self.burst.map_or(now, |(first, _)| first);
        self.burst = Some((first, now));
    }

    /// When the burst under way is due; `None` when there is none.
    pub fn deadline(&self) -> Option<Instant> {
        let (first, last) = self.burst?;
        Some((last + self.quiet).min(first + self.max_delay))
    }

    /// Whether the burst under way is due at `now`; if so it is over (the next event starts
    /// another).
    pub fn take_due(&mut self, now: Instant) -> bool {
        let due = self.deadline().is_some_and(|deadline| deadline <= now);
        if due {
            self.burst = None;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUIET: Duration = Duration::from_millis(100);
    const MAX_DELAY: Duration = Duration::from_millis(500);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn nothing_is_due_without_events() {
        let mut debounce = Debounce::new(QUIET, MAX_DELAY);
        let t0 = Instant::now();
        assert_eq!(debounce.deadline(), None);
        assert!(!debounce.take_due(t0 + ms(10_000)));
    }

    #[test]
    fn one_event_is_due_once_it_has_been_quiet_then_over() {
        let mut debounce = Debounce::new(QUIET, MAX_DELAY);
        let t0 = Instant::now();
        debounce.record(t0);
        assert_eq!(debounce.deadline(), Some(t0 + QUIET));
        assert!(!debounce.take_due(t0 + ms(99)));
        assert!(debounce.take_due(t0 + ms(100)));
        assert_eq!(debounce.deadline(), None, "over: nothing more is due");
        assert!(!debounce.take_due(t0 + ms(1_000)));
    }

    #[test]
    fn a_save_of_several_events_is_one_reload() {
        let mut debounce = Debounce::new(QUIET, MAX_DELAY);
        let t0 = Instant::now();
        let mut reloads = 0;
        // write, close, rename, delete the backup: a few milliseconds apart.
        for at in [0, 2, 3, 40, 41] {
            reloads += usize::from(debounce.take_due(t0 + ms(at)));
            debounce.record(t0 + ms(at));
        }
        assert_eq!(
            debounce.deadline(),
            Some(t0 + ms(141)),
            "quiet after the last"
        );
        for at in (42..400).step_by(7) {
            reloads += usize::from(debounce.take_due(t0 + ms(at)));
        }
        assert_eq!(reloads, 1);
    }

    #[test]
    fn a_burst_that_never_goes_quiet_is_due_after_the_longest_delay() {
        let mut debounce = Debounce::new(QUIET, MAX_DELAY);
        let t0 = Instant::now();
        let mut reloads = Vec::new();
        // An event every 50 ms for two seconds: never 100 ms of quiet.
        for step in 0..40 {
            let now = t0 + ms(step * 50);
            if debounce.take_due(now) {
                reloads.push(step * 50);
            }
            debounce.record(now);
        }
        assert_eq!(
            reloads,
            [500, 1000, 1500],
            "each at most 500 ms after its burst began"
        );
    }

    #[test]
    fn an_event_after_a_reload_starts_a_new_burst() {
        let mut debounce = Debounce::new(QUIET, MAX_DELAY);
        let t0 = Instant::now();
        debounce.record(t0);
        assert!(debounce.take_due(t0 + ms(150)));
        debounce.record(t0 + ms(700));
        assert_eq!(debounce.deadline(), Some(t0 + ms(800)));
        assert!(debounce.take_due(t0 + ms(800)));
    }
}
