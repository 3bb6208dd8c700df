//! The helper pool: a few threads that run the jobs handlers defer (see `jobs`), so that work
//! whose cost grows with data (password hashing, SQL, compression, listings) never stalls the
//! event loop. One pool serves every worker's loop (`--helpers` threads).
//!
//! 1. A loop submits `(key, job)` with its own way back (a channel and its waker); the
//!    connection waits in its `Waiting` state.
//! 2. A helper thread runs the job with a [`Responder`] for `key` (a panic is caught: the
//!    dropped responder answers 500, and the thread lives on).
//! 3. The responder sends `(key, outcome)` back to that loop and wakes it through its
//!    `mio::Waker`; the loop drains the outcomes and hands each to its connection, if that connection (same slot
//!    *and* id) still exists.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use mio::Waker;

use crate::jobs::{Job, Outcome, Responder};
use crate::metrics::PROCESS;
use crate::server::conn::ConnId;

/// Scheduling niceness of helper threads (0 is the loop's; 19 the lowest priority).
pub const HELPER_NICENESS: i32 = 10;

struct Task {
    key: ConnId,
    job: Job,
    /// The submitting loop's way back.
    results: Sender<(ConnId, Outcome)>,
    waker: Arc<Waker>,
}

/// The helper threads, shared by every worker's loop: one queue of jobs, each carrying the
/// way back to the loop that submitted it. Submitting is a channel send (no lock); only the
/// helpers take the queue's lock, to wait for a task.
pub struct HelperPool {
    /// `None` once shutting down, which ends the threads.
    tasks: Option<Sender<Task>>,
    queue: Arc<Mutex<Receiver<Task>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl HelperPool {
    /// Starts `threads` helper threads (at least one).
    pub fn new(threads: usize) -> std::io::Result<HelperPool> {
        let (task_sender, task_receiver) = mpsc::channel::<Task>();
        let pool = HelperPool {
            tasks: Some(task_sender),
            queue: Arc::new(Mutex::new(task_receiver)),
            threads: Mutex::new(Vec::new()),
        };
        pool.ensure_threads(threads.max(1))?;
        Ok(pool)
    }

    /// Starts more threads if fewer than `wanted` run (an app whose jobs wait on a database
    /// server asks for more, see `App::needs_helpers`).
    pub fn ensure_threads(&self, wanted: usize) -> std::io::Result<()> {
        let mut threads = self
            .threads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        while threads.len() < wanted {
            let tasks = Arc::clone(&self.queue);
            let thread = thread::Builder::new()
                .name(format!("looplight-helper-{}", threads.len()))
                .spawn(move || run_helper(&tasks))?;
            threads.push(thread);
        }
        Ok(())
    }

    /// The helper threads running.
    pub fn threads(&self) -> usize {
        self.threads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }
}

impl Drop for HelperPool {
    /// Lets the threads finish the jobs they have and exit.
    fn drop(&mut self) {
        self.tasks = None;
        let threads = self
            .threads
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for thread in threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// One loop's use of the (shared) helper pool: it submits jobs, and their outcomes come back
/// to it alone, waking it through its waker.
pub struct Helpers {
    pool: Arc<HelperPool>,
    results_to: Sender<(ConnId, Outcome)>,
    results: Receiver<(ConnId, Outcome)>,
    waker: Arc<Waker>,
}

impl Helpers {
    /// This loop's access to `pool`; outcomes wake the loop through `waker`.
    pub fn new(pool: Arc<HelperPool>, waker: Arc<Waker>) -> Helpers {
        let (results_to, results) = mpsc::channel();
        Helpers {
            pool,
            results_to,
            results,
            waker,
        }
    }

    /// Queues `job` for the connection identified by `key`.
    pub fn submit(&self, key: ConnId, job: Job) {
        if let Some(tasks) = &self.pool.tasks {
            PROCESS.helper_queue_depth.inc();
            // The threads outlive the sender, so this cannot fail while the pool exists.
            let _ = tasks.send(Task {
                key,
                job,
                results: self.results_to.clone(),
                waker: Arc::clone(&self.waker),
            });
        }
    }

    /// The outcomes that have come back since the last call.
    pub fn finished(&self) -> impl Iterator<Item = (ConnId, Outcome)> + '_ {
        self.results.try_iter()
    }
}

/// Lowers the calling thread's priority below the loop's.
///
/// Helpers yield the CPU to the event loop: on a shared core the loop's latency matters more
/// than a login's. benches/load/api.sh, server and helpers pinned to one core, p99 of a
/// static file while 8 clients log in: nice 0 8.1 ms (38 logins/s), nice 10 3.9 ms (23/s),
/// nice 19 2.9 ms (14/s); alone ~80 us. 10 keeps logins moving on a saturated core.
pub fn lower_priority() {
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), HELPER_NICENESS);
}

fn run_helper(tasks: &Mutex<Receiver<Task>>) {
    lower_priority();
    loop {
        // Holding the lock only while waiting for one task.
        let task = match tasks.lock() {
            Ok(receiver) => receiver.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(Task {
            key,
            job,
            results,
            waker,
        }) = task
        else {
            return; // The pool is gone.
        };
        PROCESS.helper_queue_depth.dec();
        let responder = Responder::new(key, results, waker);
        let started = Instant::now();
        // A panic drops the responder, which answers 500; the thread goes on.
        let _ = catch_unwind(AssertUnwindSafe(|| job(responder)));
        PROCESS.helper_job_seconds.observe(started.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::response::Response;
    use crate::http::status::StatusCode;
    use std::time::Duration;

    #[test]
    fn runs_jobs_off_thread_and_reports_panics_as_500() {
        let mut poll = mio::Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let pool = Helpers::new(Arc::new(HelperPool::new(2).unwrap()), waker);
        let key = |slot| ConnId { slot, serial: 1 };
        pool.submit(
            key(1),
            Box::new(|responder| responder.respond(Response::empty(StatusCode::NO_CONTENT))),
        );
        pool.submit(key(2), Box::new(|_responder| panic!("handler bug")));
        let mut seen = Vec::new();
        let mut events = mio::Events::with_capacity(4);
        while seen.len() < 2 {
            poll.poll(&mut events, Some(Duration::from_secs(5)))
                .unwrap();
            assert!(!events.is_empty(), "the waker never fired");
            seen.extend(pool.finished().map(|(key, outcome)| match outcome {
                Outcome::Response(response) => (key.slot, response.status()),
                other => panic!("{other:?}"),
            }));
        }
        seen.sort();
        assert_eq!(
            seen,
            vec![
                (1, StatusCode::NO_CONTENT),
                (2, StatusCode::INTERNAL_SERVER_ERROR)
            ]
        );
    }
}
