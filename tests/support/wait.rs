//! Waiting for things without trusting the clock.
//!
//! A test that needs something to have happened (the server started, a job
//! finished, a message arrived, a session expired, the server closed a
//! connection) polls the observable condition with `wait_for` instead of
//! sleeping for a guessed time: it goes on as soon as the condition holds,
//! and on a loaded machine it simply waits longer. The deadline is only the
//! point where the test gives up, with a message that says what it was
//! waiting for and what it saw last; it is generous because it is never
//! part of what is asserted. No test asserts how long anything took
//! (figures about time live in `benches/load/timing.py`).
//!
//! When a test needs time to pass on the server's clock (an idle period
//! longer than a timeout, a session older than its TTL), it waits for the
//! server to say so: `Witness` is a connection whose head never completes,
//! so the server's own `--header-timeout` answers it with 408 once that much
//! time has passed there.

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use super::{Client, Peeked, Server};

/// How often `wait_for` looks again.
pub const POLL: Duration = Duration::from_millis(10);

/// The default deadline for something that takes milliseconds on an idle
/// machine: long enough for a loaded 2-core machine, short enough that a
/// bug fails the test instead of hanging it.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Polls `check` every `POLL` until it returns `Ok`, and returns that value.
/// `Err` carries what was seen instead, for the failure message. Panics
/// once `timeout` has passed without success.
pub fn wait_for<T>(what: &str, timeout: Duration, check: impl FnMut() -> Result<T, String>) -> T {
    wait_for_every(what, timeout, POLL, check)
}

/// `wait_for` with another poll interval (for checks that cost a request).
pub fn wait_for_every<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    check: impl FnMut() -> Result<T, String>,
) -> T {
    try_wait_for(timeout, every, check).unwrap_or_else(|last| {
        panic!("gave up after {timeout:?} waiting for {what}; last seen: {last}")
    })
}

/// Polls `check` every `every` until it returns `Ok`; `Err(last state)` if
/// `timeout` passes first.
pub fn try_wait_for<T>(
    timeout: Duration,
    every: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check() {
            Ok(value) => return Ok(value),
            Err(last) => last,
        };
        if Instant::now() >= deadline {
            return Err(last);
        }
        thread::sleep(every);
    }
}

/// Polls `cond` until it is true; panics with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    wait_for(what, timeout, || {
        if cond() {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    })
}

/// A connection that sends the start of a head and never finishes it: the
/// server answers it with 408 once its `--header-timeout` has passed since
/// that first byte. Receiving that 408 is proof, on the server's own clock,
/// that at least the header timeout has elapsed since `Witness::start`
/// returned; nothing in the test measures time.
pub struct Witness {
    client: Client,
}

impl Witness {
    pub fn start(server: &Server) -> Witness {
        Witness::start_at(server.addr)
    }

    pub fn start_at(addr: SocketAddr) -> Witness {
        let mut client = Client::connect(addr);
        client.send(b"GET /witness HTTP/1.1\r\nHost: localhost\r\n");
        Witness { client }
    }

    /// Whether the 408 has arrived, without blocking. Panics if anything
    /// else arrives or the connection ends without it.
    pub fn fired(&mut self) -> bool {
        match self.client.peek_now() {
            Peeked::Nothing => return false,
            Peeked::Closed => panic!("witness: the server closed the connection without a 408"),
            Peeked::Bytes => {}
        }
        let resp = self
            .client
            .try_read_response(false)
            .unwrap_or_else(|e| panic!("witness: {e}"));
        assert_eq!(
            resp.status, 408,
            "witness: a head that never ends gets 408 (RFC 9110 §15.5.9):\n{}",
            resp.head
        );
        true
    }

    /// Waits (polling, up to `timeout`) for the 408.
    pub fn wait(mut self, what: &str, timeout: Duration) {
        wait_until(
            &format!("the header timeout to pass on the server ({what})"),
            timeout,
            || self.fired(),
        );
    }
}
