//! The event loop: the only place that touches sockets.
//!
//! The rule it keeps: the loop thread does socket I/O, parsing, routing, cache hits, and work
//! bounded by a small constant (tens of microseconds). Anything whose cost grows with data or
//! waits on something else — SQL, password hashing, compression, directory listings — runs on
//! the helper pool (`pool`, see `jobs`) or the database's writer thread and comes back through
//! the Waker. Large bodies leave in bounded steps (`conn::BYTES_PER_WAKE`), and each socket
//! may queue only `MAX_UNSENT_BYTES` in the kernel. One client's expensive request costs that
//! client time, and nobody else (benches/load/isolation.py measures it).
//!
//! One thread, one `mio::Poll`, edge-triggered. Each tick:
//! 1. wait for events, no longer than the nearest deadline (0 if a connection yielded);
//! 2. refresh the cached date;
//! 3. for each event: accept until `WouldBlock` (a listener: plain HTTP, or HTTPS whose
//!    connections get a rustls session), start a graceful shutdown or reload the certificate
//!    (signal), hand finished jobs to their connections and deliver published events
//!    (waker), or drive the connection (socket);
//! 4. drive the connections that yielded their turn last tick;
//!    (after any connection ran a handler, the events it published are written to their
//!    subscribers at once, before anyone else is served);
//! 5. fire due timers;
//! 6. flush the access log.
//!
//! Connections live in a `Slab`; their slot index is their `mio::Token`. When the connection
//! limit is reached, or the process runs out of file descriptors, accepting pauses (leaving new
//! clients in the kernel's backlog) and resumes when a connection closes or after a short
//! back-off: the loop never spins on a listener it cannot serve.

pub mod access_log;
pub mod conn;
pub mod pool;
pub mod timers;
pub mod tls;
pub mod topics;
pub mod transport;

#[cfg(test)]
mod test_support;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

use crate::config::Config;
use crate::events::Published;
use crate::http::buffers::BufferPool;
use crate::http::conn::Settings;
use crate::http::date::DateCache;
use crate::router::App;
use access_log::AccessLog;
use conn::{Conn, ConnId, Ctx, Flow};
use pool::HelperPool;
use timers::Timers;
use tls::{CertificateInfo, TlsSettings};
use topics::Topics;
use transport::Transport;

const LISTENER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);
const WAKER: Token = Token(usize::MAX - 3);
const TLS_LISTENER: Token = Token(usize::MAX - 4);
/// Threads that run deferred handler jobs (password hashing, SQL, compression, listings), unless
/// the app needs more (`App::needs_helpers`).
const HELPER_THREADS: usize = 2;
/// Unsent bytes the kernel may hold per socket (TCP_NOTSENT_LOWAT, inherited by accepted
/// sockets from the listener). Without it the kernel grows each send buffer to megabytes:
/// 1,000 slow readers queued ~2.2 GB of kernel memory and starved every other socket. Bytes
/// in flight are not limited, so throughput over real networks is not either; writability is
/// reported once less than this is waiting, and one wake-up's step (`BYTES_PER_WAKE`) refills
/// it.
const MAX_UNSENT_BYTES: u32 = 128 * 1024;
/// Pending connections the kernel may queue for us.
const LISTEN_BACKLOG: i32 = 1024;
/// Events taken per poll call.
const EVENTS_CAPACITY: usize = 1024;
/// Back-off before accepting again after the process ran out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Bound listeners, ready to run.
pub struct Server {
    poll: Poll,
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<TlsListener>,
    config: Config,
}

/// The HTTPS listener and the certificate its connections are served with.
struct TlsListener {
    socket: TcpListener,
    local_addr: SocketAddr,
    settings: TlsSettings,
}

impl Server {
    /// Binds `config.addr`, and `config.tls_listen_addr()` with its certificate loaded (or
    /// generated) if HTTPS is on. Raises the open-file limit to its hard maximum first, since
    /// every connection is a descriptor.
    pub fn bind(config: Config) -> io::Result<Server> {
        config
            .check()
            .map_err(|message| io::Error::new(io::ErrorKind::InvalidInput, message))?;
        raise_open_file_limit();
        let listener = listen(config.addr)?;
        let local_addr = listener.local_addr()?;
        let tls = match (config.cert_source(), config.tls_listen_addr()) {
            (Some(source), Some(addr)) => {
                let settings = TlsSettings::load(source)?;
                let socket = listen(addr).map_err(|error| {
                    io::Error::new(error.kind(), format!("--tls-addr {addr}: {error}"))
                })?;
                Some(TlsListener {
                    local_addr: socket.local_addr()?,
                    socket,
                    settings,
                })
            }
            _ => None,
        };
        Ok(Server {
            poll: Poll::new()?,
            listener,
            local_addr,
            tls,
            config,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The HTTPS address actually bound, if HTTPS is on.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().map(|tls| tls.local_addr)
    }

    /// The certificate HTTPS serves, if HTTPS is on.
    pub fn certificate(&self) -> Option<&CertificateInfo> {
        self.tls.as_ref().map(|tls| tls.settings.certificate())
    }

    /// Serves `app` until SIGINT or SIGTERM, then finishes the responses in flight (at most
    /// `shutdown_timeout`) and returns. With HTTPS on, SIGHUP reloads the certificate. Only
    /// poll and listener failures return an error.
    pub fn run(self, app: App) -> io::Result<()> {
        let signals: &[i32] = if self.tls.is_some() {
            &[SIGINT, SIGTERM, SIGHUP]
        } else {
            &[SIGINT, SIGTERM]
        };
        self.into_event_loop(app, signals)?.run()
    }

    /// Registers the listeners and `signals` and starts the helper pool: the loop, ready to
    /// run.
    fn into_event_loop(self, app: App, signals: &[i32]) -> io::Result<EventLoop> {
        let Server {
            poll,
            mut listener,
            tls,
            config,
            ..
        } = self;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let (tls_listener, tls_settings) = match tls {
            Some(TlsListener {
                mut socket,
                settings,
                ..
            }) => {
                poll.registry()
                    .register(&mut socket, TLS_LISTENER, Interest::READABLE)?;
                (Some(socket), Some(settings))
            }
            None => (None, None),
        };
        let mut signals = Signals::new(signals)?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        let waker = std::sync::Arc::new(mio::Waker::new(poll.registry(), WAKER)?);
        app.publisher().wake_with(std::sync::Arc::clone(&waker));
        Ok(EventLoop {
            poll,
            listener: Some(listener),
            tls_listener,
            tls: tls_settings,
            signals,
            conns: Slab::new(),
            timers: Timers::default(),
            shared: Shared::new(app, config, waker)?,
            now: Instant::now(),
            next_serial: 0,
            accept_blocked: false,
            accept_retry_at: None,
            yielded: Vec::new(),
            shutdown_deadline: None,
        })
    }
}

/// The loop's state; see the module docs for one tick.
struct EventLoop {
    poll: Poll,
    /// `None` once shutting down (both listeners).
    listener: Option<TcpListener>,
    tls_listener: Option<TcpListener>,
    /// The certificate new HTTPS connections get.
    tls: Option<TlsSettings>,
    signals: Signals,
    conns: Slab<Conn>,
    timers: Timers,
    shared: Shared,
    /// The time at the start of this tick.
    now: Instant,
    next_serial: u64,
    /// Accepting stopped (connection limit, or out of descriptors) with clients maybe waiting.
    accept_blocked: bool,
    accept_retry_at: Option<Instant>,
    /// Connections that spent their budget and want another turn.
    yielded: Vec<usize>,
    shutdown_deadline: Option<Instant>,
}

impl EventLoop {
    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        loop {
            // 1. Wait.
            let timeout = self.poll_timeout();
            if let Err(error) = self.poll.poll(&mut events, timeout)
                && error.kind() != io::ErrorKind::Interrupted
            {
                return Err(error);
            }
            // 2. Time.
            self.now = Instant::now();
            self.shared.date.refresh(SystemTime::now());
            // 3. Events.
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(false),
                    TLS_LISTENER => self.accept(true),
                    SIGNALS => self.on_signal(),
                    // Jobs finished, or events were published off the loop.
                    WAKER => {
                        self.finish_jobs();
                        self.deliver_published();
                    }
                    Token(slot) => {
                        if let Some(conn) = self.conns.get_mut(slot) {
                            conn.on_event(event);
                            self.drive(slot);
                        }
                    }
                }
            }
            // 4. Connections that yielded.
            for slot in std::mem::take(&mut self.yielded) {
                self.drive(slot);
            }
            // 5. Timers, and accepting again once there is room.
            self.fire_timers();
            if self.accept_blocked
                && self.conns.len() < self.shared.config.max_connections
                && self.accept_retry_at.is_none_or(|at| at <= self.now)
            {
                self.accept_retry_at = None;
                self.accept_all();
            }
            // 6. Log.
            self.shared.log.flush();

            if let Some(deadline) = self.shutdown_deadline
                && (self.conns.is_empty() || self.now >= deadline)
            {
                return Ok(());
            }
        }
    }

    /// How long `poll` may sleep: until the nearest timer, accept retry or shutdown deadline.
    fn poll_timeout(&self) -> Option<Duration> {
        if !self.yielded.is_empty() {
            return Some(Duration::ZERO);
        }
        [
            self.timers.next(),
            self.accept_retry_at,
            self.shutdown_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// Accepts from both listeners: once there is room again, or after the back-off.
    fn accept_all(&mut self) {
        self.accept_blocked = false;
        self.accept(false);
        self.accept(true);
    }

    /// Accepts from the plain or the TLS listener until `WouldBlock`, the connection limit,
    /// or descriptor exhaustion (which set `accept_blocked`: clients may be left waiting).
    fn accept(&mut self, secure: bool) {
        loop {
            let listener = if secure {
                &self.tls_listener
            } else {
                &self.listener
            };
            let Some(listener) = listener else {
                return;
            };
            if self.conns.len() >= self.shared.config.max_connections {
                self.accept_blocked = true;
                return;
            }
            match listener.accept() {
                Ok((socket, peer)) => self.open(socket, peer, secure),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if is_out_of_descriptors(&error) => {
                    // The client stays in the backlog; try again shortly, not in a busy loop.
                    self.accept_blocked = true;
                    self.accept_retry_at = Some(self.now + ACCEPT_BACKOFF);
                    return;
                }
                // ECONNABORTED and friends concern one client only.
                Err(_) => {}
            }
        }
    }

    /// Registers a new connection and drives it at once: its request (or TLS handshake) is
    /// often already here.
    fn open(&mut self, mut socket: TcpStream, peer: SocketAddr, secure: bool) {
        // Small responses must not wait for Nagle's algorithm.
        let _ = socket.set_nodelay(true);
        let entry = self.conns.vacant_entry();
        let slot = entry.key();
        if self
            .poll
            .registry()
            .register(&mut socket, Token(slot), Interest::READABLE)
            .is_err()
        {
            return;
        }
        let transport = match (&self.tls, secure) {
            (Some(tls), true) => match rustls::ServerConnection::new(tls.config()) {
                Ok(session) => Transport::tls(socket, session),
                Err(_) => return,
            },
            _ => Transport::plain(socket),
        };
        self.next_serial += 1;
        let id = ConnId {
            slot,
            serial: self.next_serial,
        };
        entry.insert(Conn::new(transport, peer, id, self.now));
        self.drive(slot);
    }

    /// Runs one connection and applies the outcome.
    fn drive(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let flow = conn.drive(&mut self.shared.ctx(self.now));
        self.apply(slot, flow);
        // Before anyone else is served: a stream that subscribes next must not get an event
        // it already replayed from the store.
        self.deliver_published();
    }

    /// Closes, or updates registration and timer for, the connection in `slot`.
    fn apply(&mut self, slot: usize, flow: Flow) {
        if flow == Flow::Close {
            self.close(slot);
            return;
        }
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let interest = conn.interest();
        if interest != conn.registered {
            if self
                .poll
                .registry()
                .reregister(conn.transport.socket_mut(), Token(slot), interest)
                .is_err()
            {
                self.close(slot);
                return;
            }
            conn.registered = interest;
        }
        let deadline = conn.deadline(&self.shared.settings);
        if conn.armed.is_none_or(|armed| deadline < armed) {
            conn.armed = Some(deadline);
            self.timers.schedule(deadline, conn.id);
        }
        if flow == Flow::Yield {
            self.yielded.push(slot);
        }
    }

    fn close(&mut self, slot: usize) {
        // Dropping the socket closes it, which also removes it from the epoll set.
        if let Some(mut conn) = self.conns.try_remove(slot) {
            conn.transport.say_goodbye();
            conn.recycle(&mut self.shared.buffers);
        }
    }

    /// Handles due timer entries: times a connection out, or re-arms it for its later deadline.
    fn fire_timers(&mut self) {
        while let Some((at, key)) = self.timers.pop_due(self.now) {
            let Some(conn) = self.conns.get_mut(key.slot) else {
                continue;
            };
            if conn.id != key || conn.armed != Some(at) {
                continue; // Stale: the slot was reused, or a newer entry replaced this one.
            }
            conn.armed = None;
            let flow = if conn.deadline(&self.shared.settings) <= self.now {
                conn.on_timeout(&mut self.shared.ctx(self.now))
            } else {
                Flow::Open
            };
            self.apply(key.slot, flow);
            self.deliver_published();
        }
    }

    /// Writes the events published since the last call to every subscriber of their topic,
    /// in the order published, remembering those with ids for streams about to subscribe.
    fn deliver_published(&mut self) {
        for Published { topic, id, event } in self.shared.app.publisher().take() {
            if let Some(id) = id {
                self.shared.topics.remember(&topic, id, &event);
            }
            let mut subscribers = self.shared.topics.take(&topic);
            subscribers.retain(|key| {
                self.conns
                    .get(key.slot)
                    .is_some_and(|conn| conn.id == *key && conn.is_streaming())
            });
            for key in &subscribers {
                if let Some(conn) = self.conns.get_mut(key.slot) {
                    let flow = conn.push_event(id, &event, &mut self.shared.ctx(self.now));
                    self.apply(key.slot, flow);
                }
            }
            self.shared.topics.restore(&topic, subscribers);
        }
    }

    /// Hands the outcomes of finished jobs to their connections (if still open).
    fn finish_jobs(&mut self) {
        let finished: Vec<_> = self.shared.pool.finished().collect();
        for (key, outcome) in finished {
            let Some(conn) = self.conns.get_mut(key.slot) else {
                continue;
            };
            if conn.id != key {
                continue;
            }
            let flow = conn.on_job_done(outcome, &mut self.shared.ctx(self.now));
            self.apply(key.slot, flow);
            self.deliver_published();
        }
    }

    /// SIGHUP reloads the certificate; SIGINT/SIGTERM shut down.
    fn on_signal(&mut self) {
        let received: Vec<i32> = self.signals.pending().collect();
        if received.contains(&SIGHUP) {
            self.reload_certificate();
        }
        if received.iter().any(|&signal| signal != SIGHUP) {
            self.shut_down();
        }
    }

    /// Reads the certificate and key again for new connections; open ones keep theirs. A
    /// certificate that fails to load leaves the current one in use.
    fn reload_certificate(&mut self) {
        let Some(tls) = &mut self.tls else {
            return;
        };
        match tls.reload() {
            Ok(certificate) => eprintln!(
                "looplight: reloaded {} (SHA-256 {})",
                certificate.cert_path.display(),
                certificate.fingerprint
            ),
            Err(error) => {
                eprintln!("looplight: certificate not reloaded, keeping the old one: {error}")
            }
        }
    }

    /// Stops accepting, closes idle connections, lets the rest finish.
    fn shut_down(&mut self) {
        if self.shutdown_deadline.is_some() {
            // A second signal: stop waiting.
            self.shutdown_deadline = Some(self.now);
            return;
        }
        self.shutdown_deadline = Some(self.now + self.shared.config.shutdown_timeout);
        for mut listener in [self.listener.take(), self.tls_listener.take()]
            .into_iter()
            .flatten()
        {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        self.accept_blocked = false;
        self.accept_retry_at = None;
        let slots: Vec<usize> = self.conns.iter().map(|(slot, _)| slot).collect();
        for slot in slots {
            if let Some(conn) = self.conns.get_mut(slot) {
                let flow = conn.begin_shutdown(&mut self.shared.ctx(self.now));
                self.apply(slot, flow);
            }
        }
    }
}

/// What every connection reads (and logs to) while it is driven.
pub(crate) struct Shared {
    app: App,
    config: Config,
    /// Every connection's limits and timeouts (from `config`).
    settings: Settings,
    date: DateCache,
    log: AccessLog,
    pub(crate) buffers: BufferPool,
    pool: HelperPool,
    topics: Topics,
}

impl Shared {
    /// What the loop lends its connections when serving `app` under `config`; helper threads
    /// wake the loop through `waker` when a job is done.
    pub(crate) fn new(app: App, config: Config, waker: Arc<Waker>) -> io::Result<Shared> {
        let pool = HelperPool::new(HELPER_THREADS.max(app.helpers_needed()), waker)?;
        let mut date = DateCache::new();
        date.refresh(SystemTime::now());
        Ok(Shared {
            log: AccessLog::new(!config.quiet),
            settings: config.connection_settings(),
            date,
            buffers: BufferPool::default(),
            pool,
            topics: Topics::default(),
            app,
            config,
        })
    }

    /// The connections' view of it at `now`.
    pub(crate) fn ctx(&mut self, now: Instant) -> Ctx<'_> {
        Ctx {
            app: &self.app,
            settings: &self.settings,
            date: &self.date,
            log: &mut self.log,
            buffers: &mut self.buffers,
            pool: &self.pool,
            topics: &mut self.topics,
            now,
        }
    }
}

/// A non-blocking listener with SO_REUSEADDR and our backlog.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_notsent_lowat(MAX_UNSENT_BYTES)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// EMFILE, ENFILE, ENOBUFS, ENOMEM: accepting cannot succeed until something is released.
fn is_out_of_descriptors(error: &io::Error) -> bool {
    use rustix::io::Errno;
    let code = error.raw_os_error();
    [Errno::MFILE, Errno::NFILE, Errno::NOBUFS, Errno::NOMEM]
        .iter()
        .any(|errno| code == Some(errno.raw_os_error()))
}

/// Lifts the soft RLIMIT_NOFILE to the hard limit; failure just leaves the limit as it was.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::io::{Read, Write};
    use std::net::TcpStream as StdTcpStream;
    use std::rc::Rc;
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};
    use std::thread;

    use clap::Parser;
    use socket2::SockRef;

    use super::*;
    use crate::http::response::Response;
    use crate::http::status::StatusCode;
    use crate::router::Reply;
    use crate::server::test_support::{TIMEOUT, deadline, read_response, time_left};

    /// The defaults, on an ephemeral port, quiet, with `args` added.
    fn config(args: &[&str]) -> Config {
        let base = ["looplight", "--addr", "127.0.0.1:0", "--quiet"];
        Config::parse_from(base.iter().chain(args))
    }

    fn client(addr: SocketAddr) -> StdTcpStream {
        let client = StdTcpStream::connect(addr).unwrap();
        client.set_read_timeout(Some(TIMEOUT)).unwrap();
        client.set_write_timeout(Some(TIMEOUT)).unwrap();
        client
    }

    #[test]
    fn out_of_descriptors_is_emfile_enfile_enobufs_and_enomem_only() {
        let cases = [
            (libc::EMFILE, true),
            (libc::ENFILE, true),
            (libc::ENOBUFS, true),
            (libc::ENOMEM, true),
            // One client's trouble: accept the next.
            (libc::ECONNABORTED, false),
            (libc::EPROTO, false),
            (libc::EPERM, false),
            (libc::EAGAIN, false),
            (libc::EINTR, false),
        ];
        for (code, expected) in cases {
            let error = io::Error::from_raw_os_error(code);
            assert_eq!(is_out_of_descriptors(&error), expected, "{error}");
        }
        // Only the OS's codes count, not a kind that reads alike.
        assert!(!is_out_of_descriptors(&io::ErrorKind::OutOfMemory.into()));
        assert!(!is_out_of_descriptors(&io::Error::other(
            "too many open files"
        )));
    }

    #[test]
    fn listen_gives_a_non_blocking_listener_whose_sockets_queue_little() {
        let mut listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        assert_ne!(addr.port(), 0);
        let socket = SockRef::from(&listener);
        assert!(socket.reuse_address().unwrap());
        assert_eq!(socket.tcp_notsent_lowat().unwrap(), MAX_UNSENT_BYTES);
        // Non-blocking: with nobody waiting, accept says so instead of waiting.
        let error = listener.accept().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);

        let client = client(addr);
        let mut poll = Poll::new().unwrap();
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .unwrap();
        let mut events = Events::with_capacity(4);
        let deadline = deadline();
        let (accepted, peer) = loop {
            match listener.accept() {
                Ok(accepted) => break accepted,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    let left = time_left(deadline, "the connection");
                    poll.poll(&mut events, Some(left)).unwrap();
                }
                Err(error) => panic!("{error}"),
            }
        };
        assert_eq!(peer, client.local_addr().unwrap());
        // The point of setting it on the listener: accepted sockets inherit it.
        let accepted = SockRef::from(&accepted);
        assert_eq!(accepted.tcp_notsent_lowat().unwrap(), MAX_UNSENT_BYTES);
    }

    #[test]
    fn bind_to_port_zero_reports_the_port_bound() {
        let server = Server::bind(config(&[])).unwrap();
        let addr = server.local_addr();
        assert_eq!(addr.ip(), std::net::Ipv4Addr::LOCALHOST);
        assert_ne!(addr.port(), 0);
        assert!(server.tls_addr().is_none());
        assert!(server.certificate().is_none());
        // Listening there: the kernel completes the handshake before any accept.
        client(addr);
    }

    #[test]
    fn bind_with_https_binds_a_second_port_and_makes_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("site.db");
        let db = db.to_str().unwrap();
        let args = ["--tls-addr", "127.0.0.1:0", "--tls-self-signed", "--db", db];
        let server = Server::bind(config(&args)).unwrap();
        let tls_addr = server.tls_addr().expect("HTTPS is on");
        assert_ne!(tls_addr.port(), 0);
        assert_ne!(tls_addr, server.local_addr());
        let certificate = server.certificate().expect("HTTPS is on");
        assert!(certificate.generated);
        assert!(certificate.cert_path.starts_with(dir.path()));
        client(tls_addr);
    }

    #[test]
    fn bind_refuses_flags_that_do_not_go_together() {
        let error = Server::bind(config(&["--tls-addr", "127.0.0.1:0"])).err();
        let error = error.expect("--tls-addr without a certificate");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(error.to_string().contains("--tls-addr"), "{error}");
    }

    /// The loop `Server::run` builds (plain HTTP only), without signal handlers: signals are
    /// process-wide and this binary runs tests in parallel, so a test starts the shutdown
    /// itself (the integration tests send real signals to a real process).
    fn event_loop(server: Server, app: App) -> EventLoop {
        server.into_event_loop(app, &[]).unwrap()
    }

    /// Step 3 of one tick of `EventLoop::run`, for what a test does before calling it.
    fn handle_events(event_loop: &mut EventLoop, events: &mut Events, deadline: Instant) {
        let left = time_left(deadline, "the loop's events");
        event_loop.poll.poll(events, Some(left)).unwrap();
        event_loop.now = Instant::now();
        for event in events.iter() {
            match event.token() {
                LISTENER => event_loop.accept(false),
                WAKER => event_loop.finish_jobs(),
                SIGNALS | TLS_LISTENER => {}
                Token(slot) => {
                    if let Some(conn) = event_loop.conns.get_mut(slot) {
                        conn.on_event(event);
                        event_loop.drive(slot);
                    }
                }
            }
        }
    }

    #[test]
    fn shutdown_closes_idle_connections_finishes_the_busy_one_and_run_returns() {
        let server = Server::bind(config(&["--shutdown-timeout", "5"])).unwrap();
        let addr = server.local_addr();
        // The handler's job waits until the test lets it answer.
        let dispatched = Rc::new(Cell::new(false));
        let (let_answer, answer) = mpsc::channel::<()>();
        let answer = Arc::new(Mutex::new(answer));
        let mut app = App::new();
        app.get("/slow", {
            let dispatched = Rc::clone(&dispatched);
            move |_| {
                dispatched.set(true);
                let answer = Arc::clone(&answer);
                Reply::later(move || {
                    let _ = answer.lock().unwrap().recv_timeout(TIMEOUT);
                    Response::text(StatusCode::OK, "finished")
                })
            }
        });
        let mut event_loop = event_loop(server, app);

        let mut busy = client(addr);
        busy.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut idle = client(addr);
        let mut events = Events::with_capacity(16);
        let deadline = deadline();
        while !dispatched.get() || event_loop.conns.len() < 2 {
            handle_events(&mut event_loop, &mut events, deadline);
        }

        event_loop.shut_down();
        // The idle connection is closed at once, and nobody new is let in.
        assert_eq!(idle.read(&mut [0; 64]).unwrap(), 0, "EOF");
        let error = StdTcpStream::connect(addr).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
        // The busy one gets its response, its last, once the job answers.
        let_answer.send(()).unwrap();
        let reader = thread::spawn(move || {
            let mut buf = Vec::new();
            let response = read_response(&mut busy, &mut buf);
            busy.read_to_end(&mut buf).unwrap();
            (response, buf)
        });
        event_loop.run().unwrap();
        assert!(event_loop.conns.is_empty());
        let (response, after) = reader.join().unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.body, b"finished");
        assert_eq!(response.header("connection"), Some("close"));
        assert_eq!(after, b"", "nothing after the last response");
    }
}
