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
//! Workers (`--workers N`, [`Server::run_workers`]): N such loops, each on its own thread with
//! its own `Poll`, slab, timers, buffers, app and listeners (SO_REUSEPORT on the same
//! address: the kernel spreads new connections over them, and no loop ever waits on another's
//! accept). Shared-nothing on a request's path; what they do share (`Control`) is touched per
//! connection or per signal: the open-connection count against `--max-connections`, the
//! certificate after a reload, the signals (worker 0 receives them and wakes the others), and
//! the helper pool (`pool`). Published events reach every loop through its own inbox
//! (`events`).
//!
//! Each loop: one thread, one `mio::Poll`, edge-triggered. Each tick:
//! 1. wait for events, no longer than the nearest deadline (0 if a connection yielded);
//! 2. refresh the cached date;
//! 3. for each event: accept until `WouldBlock` (a listener: plain HTTP, or HTTPS whose
//!    connections get a rustls session), start a graceful shutdown, reload the certificate or
//!    ask for the access log to be reopened (signal), hand finished jobs to their connections
//!    and deliver published events (waker), or drive the connection (socket);
//! 4. drive the connections that yielded their turn last tick;
//!    (after any connection ran a handler, the events it published are written to their
//!    subscribers at once, before anyone else is served);
//! 5. fire due timers;
//! 6. flush the access log (to a file opened anew, if SIGUSR1 asked for it).
//!
//! Connections live in a `Slab`; their slot index is their `mio::Token`. When the connection
//! limit is reached, or the process runs out of file descriptors, accepting pauses (leaving new
//! clients in the kernel's backlog) and resumes when a connection closes or after a short
//! back-off: the loop never spins on a listener it cannot serve.

pub mod access_log;
pub mod conn;
pub mod log_format;
pub mod metrics;
pub mod pool;
pub mod timers;
pub mod tls;
pub mod topics;
pub mod transport;

#[cfg(test)]
mod test_support;

use std::io;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

use crate::config::Config;
use crate::events::{Inbox, Published};
use crate::http::buffers::BufferPool;
use crate::http::conn::Settings;
use crate::http::date::DateCache;
use crate::router::App;
use access_log::AccessLog;
use conn::{Conn, ConnId, Ctx, Flow};
use metrics::{ConnState, Endpoint, Registry, WorkerMetrics};
use pool::{HelperPool, Helpers};
use timers::Timers;
use tls::{CertificateInfo, TlsSettings};
use topics::Topics;
use transport::Transport;

const LISTENER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);
const WAKER: Token = Token(usize::MAX - 3);
const TLS_LISTENER: Token = Token(usize::MAX - 4);
const METRICS_LISTENER: Token = Token(usize::MAX - 5);
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
/// Connection slots a loop keeps when it has no connection left; beyond it, the room goes back.
/// 64 slots are 29 KiB. (At 1,024, the 500 slots each of two workers' share of a burst of
/// 1,000 connections, 440 KiB in all, stayed after the last of them closed.)
const SLAB_KEPT_WHEN_EMPTY: usize = 64;
/// Back-off before accepting again after the process ran out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Bound listeners, ready to run.
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<TlsListener>,
    /// `--metrics-addr`'s listener and the address it got.
    metrics: Option<(TcpListener, SocketAddr)>,
    /// The other workers' listeners (plain, and TLS if on), bound with the first: all are
    /// bound before `--user` gives up root, since SO_REUSEPORT lets only sockets of the same
    /// user share a port.
    more_listeners: Vec<(TcpListener, Option<TcpListener>)>,
    config: Config,
}

/// Which listener a connection came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Listening {
    /// The site, over plain HTTP.
    Http,
    /// The site, over HTTPS.
    Https,
    /// `--metrics-addr`: only the metrics.
    Metrics,
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
    /// every connection is a descriptor. With more than one worker, every worker's listeners
    /// are bound here, on one address with SO_REUSEPORT.
    pub fn bind(config: Config) -> io::Result<Server> {
        config
            .check()
            .map_err(|message| io::Error::new(io::ErrorKind::InvalidInput, message))?;
        raise_open_file_limit();
        // The access log file is created (or found unwritable) before anything is announced;
        // each worker opens its own.
        AccessLog::for_config(&config)?;
        let reuse_port = config.workers() > 1;
        let listener = listen(config.addr, reuse_port)?;
        let local_addr = listener.local_addr()?;
        let tls = match (config.cert_source(), config.tls_listen_addr()) {
            (Some(source), Some(addr)) => {
                let settings = TlsSettings::load(source)?;
                let socket = listen(addr, reuse_port).map_err(|error| {
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
        // One listener, on worker 0: a scrape sums every worker's counters wherever it lands.
        let metrics = match config.metrics_addr {
            Some(addr) => {
                let socket = listen(addr, false).map_err(|error| {
                    io::Error::new(error.kind(), format!("--metrics-addr {addr}: {error}"))
                })?;
                let addr = socket.local_addr()?;
                Some((socket, addr))
            }
            None => None,
        };
        let mut more_listeners = Vec::new();
        for _ in 1..config.workers() {
            let tls_listener = match &tls {
                Some(tls) => Some(listen(tls.local_addr, true)?),
                None => None,
            };
            more_listeners.push((listen(local_addr, true)?, tls_listener));
        }
        Ok(Server {
            listener,
            local_addr,
            tls,
            metrics,
            more_listeners,
            config,
        })
    }

    /// The metrics address actually bound, with `--metrics-addr`.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(_, addr)| *addr)
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

    /// Serves `app` on one event loop, on this thread, until SIGINT or SIGTERM, then finishes
    /// the responses in flight (at most `shutdown_timeout`) and returns. SIGUSR1 reopens the
    /// `--access-log` file; with HTTPS on, SIGHUP reloads the certificate. Only poll and
    /// listener failures return an error. (For several loops, see [`Server::run_workers`].)
    pub fn run(self, app: App) -> io::Result<()> {
        let signals = self.signals();
        let mut workers = self.into_workers(1, signals)?;
        match workers.pop() {
            Some(worker) => EventLoop::new(worker, app)?.run(),
            None => Ok(()),
        }
    }

    /// Serves on `config.workers()` event loops (`--workers`), each on a thread of its own
    /// (the first on this thread) with its own listeners and an app made by `make_app`, until
    /// SIGINT or SIGTERM, like [`Server::run`]. The apps should share their state and their
    /// [`Publisher`](crate::Publisher) (see [`App::with_publisher`]): an event published on
    /// any worker then reaches the streams of all. If `make_app` fails on any worker, none
    /// serves and the first error is returned.
    ///
    /// `listening` runs once every worker's listener is bound: the moment to announce the
    /// address. A client told earlier could connect while the first worker's listener was
    /// the only one, and wait in its backlog whatever the other workers do.
    pub fn run_workers<F>(
        self,
        make_app: F,
        listening: impl FnOnce() -> io::Result<()>,
    ) -> io::Result<()>
    where
        F: Fn() -> io::Result<App> + Sync,
    {
        let count = self.config.workers();
        let signals = self.signals();
        let workers = self.into_workers(count, signals)?;
        listening()?;
        let gate = StartGate::new(count);
        let serve = |worker: Worker| -> io::Result<()> {
            let control = Arc::clone(&worker.control);
            let index = worker.index;
            let built = catch_unwind(AssertUnwindSafe(|| {
                make_app().and_then(|app| EventLoop::new(worker, app))
            }))
            .unwrap_or_else(|_| Err(io::Error::other("making the app panicked")));
            // Every loop has its inbox and listeners before any serves; a failure anywhere
            // stops them all before the first request.
            let all_built = if built.is_ok() {
                gate.arrive()
            } else {
                gate.abandon();
                false
            };
            let mut event_loop = built?;
            if !all_built {
                return Ok(());
            }
            let served = event_loop.run();
            if served.is_err() {
                // This loop is gone: the others stop too, without waiting for it.
                control.running.fetch_sub(1, Ordering::AcqRel);
                control.shut_down_all();
            }
            if count > 1 {
                log::info!(
                    "worker {index} of {count} served {} requests on {} connections",
                    event_loop.shared.log.exchanges(),
                    event_loop.accepted
                );
            }
            served
        };
        std::thread::scope(|scope| {
            let mut workers = workers.into_iter();
            let first = workers.next();
            let others: Vec<_> = workers
                .map(|worker| {
                    let name = format!("looplight-worker-{}", worker.index);
                    std::thread::Builder::new()
                        .name(name)
                        .spawn_scoped(scope, || serve(worker))
                })
                .collect::<io::Result<_>>()
                .inspect_err(|_| gate.abandon())?;
            let mut result = first.map_or(Ok(()), &serve);
            for other in others {
                let outcome = other
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("a worker panicked")));
                result = result.and(outcome);
            }
            if gate.was_abandoned() && result.is_ok() {
                result = Err(io::Error::other("a worker could not start"));
            }
            result
        })
    }

    /// The signals the server answers: SIGINT, SIGTERM and SIGUSR1, and SIGHUP with HTTPS on.
    fn signals(&self) -> &'static [i32] {
        if self.tls.is_some() {
            &[SIGINT, SIGTERM, SIGUSR1, SIGHUP]
        } else {
            &[SIGINT, SIGTERM, SIGUSR1]
        }
    }

    /// Takes the listeners of `count - 1` more workers next to ours (SO_REUSEPORT: the kernel
    /// spreads new connections over them), makes each worker's poller and waker, starts the
    /// helper pool, and gives `signals` to worker 0: the workers, ready to become loops.
    fn into_workers(self, count: usize, signals: &[i32]) -> io::Result<Vec<Worker>> {
        let Server {
            listener,
            local_addr,
            tls,
            metrics,
            more_listeners,
            config,
        } = self;
        let (tls_socket, tls_settings) = match tls {
            Some(TlsListener {
                socket, settings, ..
            }) => (Some(socket), Some(settings)),
            None => (None, None),
        };
        let mut listeners = vec![(listener, tls_socket)];
        // Those bound with the first, and any more a caller asked for (a test's loop).
        listeners.extend(more_listeners.into_iter().take(count - 1));
        for _ in listeners.len()..count {
            let tls_listener = match listeners[0].1.as_ref() {
                Some(first) => Some(listen(first.local_addr()?, true)?),
                None => None,
            };
            listeners.push((listen(local_addr, true)?, tls_listener));
        }
        let polls = (0..count)
            .map(|_| Poll::new())
            .collect::<io::Result<Vec<_>>>()?;
        let wakers = polls
            .iter()
            .map(|poll| Waker::new(poll.registry(), WAKER).map(Arc::new))
            .collect::<io::Result<Vec<_>>>()?;
        let control = Arc::new(Control {
            open_connections: AtomicUsize::new(0),
            max_connections: config.max_connections,
            shutdowns: AtomicUsize::new(0),
            running: AtomicUsize::new(count),
            tls: tls_settings.map(Mutex::new),
            tls_generation: AtomicU64::new(0),
            access_log_reopens: AtomicU64::new(0),
            wakers: wakers.clone(),
            registry: Arc::default(),
        });
        let pool = Arc::new(HelperPool::new(config.helpers())?);
        let mut signals = Some(Signals::new(signals)?);
        let mut metrics_listener = metrics.map(|(socket, _)| socket);
        let workers = polls
            .into_iter()
            .zip(wakers)
            .zip(listeners)
            .enumerate()
            .map(
                |(index, ((poll, waker), (listener, tls_listener)))| Worker {
                    index,
                    poll,
                    waker,
                    listener,
                    tls_listener,
                    signals: signals.take(),
                    metrics_listener: metrics_listener.take(),
                    control: Arc::clone(&control),
                    pool: Arc::clone(&pool),
                    config: config.clone(),
                },
            )
            .collect();
        Ok(workers)
    }

    /// The loop `Server::run` builds, with `signals`: for the tests.
    #[cfg(test)]
    fn into_event_loop(self, app: App, signals: &[i32]) -> io::Result<EventLoop> {
        let mut workers = self.into_workers(1, signals)?;
        let worker = workers.pop().ok_or_else(|| io::Error::other("no worker"))?;
        EventLoop::new(worker, app)
    }
}

/// Where the workers wait for each other before serving: all of them built, or one failed.
struct StartGate {
    /// (workers still building, abandoned)
    state: Mutex<(usize, bool)>,
    changed: Condvar,
}

impl StartGate {
    fn new(workers: usize) -> StartGate {
        StartGate {
            state: Mutex::new((workers, false)),
            changed: Condvar::new(),
        }
    }

    /// Reports this worker built and waits for the others: true once all are, false if one
    /// failed.
    fn arrive(&self) -> bool {
        let mut state = self.lock();
        state.0 = state.0.saturating_sub(1);
        self.changed.notify_all();
        while state.0 > 0 && !state.1 {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        !state.1
    }

    /// Tells the workers waiting (and those to come) that not all will start.
    fn abandon(&self) {
        self.lock().1 = true;
        self.changed.notify_all();
    }

    fn was_abandoned(&self) -> bool {
        self.lock().1
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, bool)> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What one worker's loop is made of, before it has its app.
struct Worker {
    index: usize,
    poll: Poll,
    waker: Arc<Waker>,
    listener: TcpListener,
    tls_listener: Option<TcpListener>,
    /// The process's signals: worker 0 receives them for all.
    signals: Option<Signals>,
    /// `--metrics-addr`'s listener: worker 0's.
    metrics_listener: Option<TcpListener>,
    control: Arc<Control>,
    pool: Arc<HelperPool>,
    config: Config,
}

/// What the workers share, none of it on a request's path: the count of open connections
/// (touched per connection), the certificate (read by a loop after a reload), and what the
/// signals asked for.
struct Control {
    /// Connections open on every worker, against `max_connections`.
    open_connections: AtomicUsize,
    max_connections: usize,
    /// SIGINT/SIGTERM received so far: the first starts a graceful shutdown, the next ends it.
    shutdowns: AtomicUsize,
    /// Loops not finished yet.
    running: AtomicUsize,
    /// The certificate (reloaded by the worker that receives SIGHUP).
    tls: Option<Mutex<TlsSettings>>,
    /// Bumped by each reload: a loop whose copy is older takes the new configuration.
    tls_generation: AtomicU64,
    /// SIGUSR1s received: a loop whose access log file was opened at an older count opens it
    /// anew (`AccessLog::follow_reopens`).
    access_log_reopens: AtomicU64,
    /// Every worker's waker, to tell them all.
    wakers: Vec<Arc<Waker>>,
    /// Every worker's metrics, for the scrape.
    registry: Arc<Registry>,
}

impl Control {
    /// Counts one more open connection, unless that would pass `--max-connections`.
    fn reserve_connection(&self) -> bool {
        self.open_connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.max_connections).then_some(open + 1)
            })
            .is_ok()
    }

    /// Counts a connection closed (or a reservation not used).
    fn release_connection(&self) {
        self.open_connections.fetch_sub(1, Ordering::AcqRel);
    }

    fn has_room(&self) -> bool {
        self.open_connections.load(Ordering::Acquire) < self.max_connections
    }

    /// Asks every worker to shut down (again, for a second signal).
    fn shut_down_all(&self) {
        self.shutdowns.fetch_add(1, Ordering::AcqRel);
        self.wake_all();
    }

    /// Reads the certificate and key again, for new connections on every worker; open ones
    /// keep theirs. A certificate that fails to load leaves the current one in use.
    fn reload_certificate(&self) {
        let Some(tls) = &self.tls else {
            return;
        };
        let mut tls = tls.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match tls.reload() {
            Ok(certificate) => {
                // Bumped before the news is out: a connection accepted after the line below,
                // on any worker, gets the new certificate (`EventLoop::refresh_tls`).
                self.tls_generation.fetch_add(1, Ordering::AcqRel);
                log::info!(
                    "reloaded {} (SHA-256 {})",
                    certificate.cert_path.display(),
                    certificate.fingerprint
                );
            }
            Err(error) => {
                log::error!("certificate not reloaded, keeping the old one: {error}")
            }
        }
    }

    /// Asks every loop to open its access log file anew (after logrotate renamed it).
    fn reopen_access_log(&self) {
        log::info!("SIGUSR1: reopening the access log");
        self.access_log_reopens.fetch_add(1, Ordering::AcqRel);
        self.wake_all();
    }

    /// The current TLS configuration and its generation.
    fn tls_config(&self) -> Option<(Arc<rustls::ServerConfig>, u64)> {
        let tls = self.tls.as_ref()?;
        let tls = tls.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Some((tls.config(), self.tls_generation.load(Ordering::Acquire)))
    }

    fn wake_all(&self) {
        for waker in &self.wakers {
            let _ = waker.wake();
        }
    }
}

/// The loop's state; see the module docs for one tick.
struct EventLoop {
    poll: Poll,
    /// `None` once shutting down (every listener).
    listener: Option<TcpListener>,
    tls_listener: Option<TcpListener>,
    metrics_listener: Option<TcpListener>,
    /// The certificate new HTTPS connections get, and the reload it came from.
    tls: Option<(Arc<rustls::ServerConfig>, u64)>,
    /// Worker 0's: the process's signals.
    signals: Option<Signals>,
    control: Arc<Control>,
    /// The shutdown requests of `control` this loop has acted on.
    shutdowns_seen: usize,
    conns: Slab<Conn>,
    timers: Timers,
    shared: Shared,
    /// The time at the start of this tick.
    now: Instant,
    next_serial: u64,
    /// Connections accepted so far.
    accepted: u64,
    /// Accepting stopped (connection limit, or out of descriptors) with clients maybe waiting.
    accept_blocked: bool,
    accept_retry_at: Option<Instant>,
    /// Connections that spent their budget and want another turn.
    yielded: Vec<usize>,
    shutdown_deadline: Option<Instant>,
}

impl EventLoop {
    /// Registers the worker's listeners (and signals), subscribes it to what `app` publishes,
    /// and makes sure the helper pool has the threads `app` needs: the loop, ready to run.
    fn new(worker: Worker, app: App) -> io::Result<EventLoop> {
        let Worker {
            poll,
            waker,
            mut listener,
            mut tls_listener,
            mut signals,
            mut metrics_listener,
            control,
            pool,
            config,
            ..
        } = worker;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        if let Some(socket) = &mut tls_listener {
            poll.registry()
                .register(socket, TLS_LISTENER, Interest::READABLE)?;
        }
        if let Some(signals) = &mut signals {
            poll.registry()
                .register(signals, SIGNALS, Interest::READABLE)?;
        }
        if let Some(socket) = &mut metrics_listener {
            poll.registry()
                .register(socket, METRICS_LISTENER, Interest::READABLE)?;
        }
        pool.ensure_threads(app.helpers_needed())?;
        let metrics = Arc::new(WorkerMetrics::default());
        control
            .registry
            .register(Arc::clone(&metrics), app.file_cache_stats());
        let endpoint = (config.metrics || config.metrics_addr.is_some())
            .then(|| Endpoint::new(Arc::clone(&control.registry), config.metrics));
        let mut shared = Shared::with_pool(app, config, waker, pool)?;
        shared.metrics = metrics;
        shared.endpoint = endpoint;
        Ok(EventLoop {
            poll,
            listener: Some(listener),
            tls_listener,
            metrics_listener,
            tls: control.tls_config(),
            signals,
            shutdowns_seen: 0,
            control,
            conns: Slab::new(),
            timers: Timers::default(),
            shared,
            now: Instant::now(),
            next_serial: 0,
            accepted: 0,
            accept_blocked: false,
            accept_retry_at: None,
            yielded: Vec::new(),
            shutdown_deadline: None,
        })
    }
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
                    LISTENER => self.accept(Listening::Http),
                    TLS_LISTENER => self.accept(Listening::Https),
                    METRICS_LISTENER => self.accept(Listening::Metrics),
                    SIGNALS => self.on_signal(),
                    // Jobs finished, events were published off the loop, or another
                    // worker passed on a signal.
                    WAKER => {
                        self.finish_jobs();
                        self.deliver_published();
                        self.follow_control();
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
                && self.control.has_room()
                && self.accept_retry_at.is_none_or(|at| at <= self.now)
            {
                self.accept_retry_at = None;
                self.accept_all();
            }
            // 6. The app's end of the tick (its hooks end what handlers kept for the tick,
            //    such as the store's shared read snapshot, before the loop may sleep).
            self.shared.app.end_tick();
            // 7. Log.
            let reopens = self.control.access_log_reopens.load(Ordering::Acquire);
            self.shared.log.follow_reopens(reopens);
            self.shared.log.flush();

            if let Some(deadline) = self.shutdown_deadline
                && ((self.conns.is_empty() && self.may_leave_first()) || self.now >= deadline)
            {
                self.control.running.fetch_sub(1, Ordering::AcqRel);
                // The signals' worker may be waiting for this one.
                self.control.wake_all();
                return Ok(());
            }
        }
    }

    /// Whether this loop may end before the others: not the one that receives signals, which
    /// must pass on a second SIGINT/SIGTERM (stop waiting) to loops still finishing.
    fn may_leave_first(&self) -> bool {
        self.signals.is_none() || self.control.running.load(Ordering::Acquire) <= 1
    }

    /// How long `poll` may sleep: until the nearest timer, accept retry or shutdown deadline.
    fn poll_timeout(&self) -> Option<Duration> {
        if !self.yielded.is_empty() {
            return Some(Duration::ZERO);
        }
        // At the connection limit, room may be made by another worker, which does not wake
        // this one: look again after the back-off.
        let room_check = (self.accept_blocked && self.accept_retry_at.is_none())
            .then(|| self.now + ACCEPT_BACKOFF);
        [
            self.timers.next(),
            self.accept_retry_at,
            room_check,
            self.shutdown_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// Accepts from every listener: once there is room again, or after the back-off.
    fn accept_all(&mut self) {
        self.accept_blocked = false;
        self.accept(Listening::Http);
        self.accept(Listening::Https);
        self.accept(Listening::Metrics);
    }

    /// Accepts from one listener until `WouldBlock`, the connection limit, or descriptor
    /// exhaustion (which set `accept_blocked`: clients may be left waiting).
    fn accept(&mut self, from: Listening) {
        loop {
            let listener = match from {
                Listening::Http => &self.listener,
                Listening::Https => &self.tls_listener,
                Listening::Metrics => &self.metrics_listener,
            };
            let Some(listener) = listener else {
                return;
            };
            // `--max-connections` counts every worker's connections.
            if !self.control.reserve_connection() {
                self.accept_blocked = true;
                return;
            }
            let accepted = listener.accept();
            if accepted.is_err() {
                self.control.release_connection();
            }
            match accepted {
                Ok((socket, peer)) => {
                    self.shared.metrics.accepted.inc();
                    if !self.open(socket, peer, from) {
                        self.shared.metrics.refused.inc();
                        self.control.release_connection();
                    }
                }
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
    /// often already here. False if it could not be registered (the socket is closed).
    fn open(&mut self, mut socket: TcpStream, peer: SocketAddr, from: Listening) -> bool {
        let secure = from == Listening::Https;
        // Small responses must not wait for Nagle's algorithm.
        let _ = socket.set_nodelay(true);
        if secure {
            self.refresh_tls();
        }
        let entry = self.conns.vacant_entry();
        let slot = entry.key();
        if self
            .poll
            .registry()
            .register(&mut socket, Token(slot), Interest::READABLE)
            .is_err()
        {
            return false;
        }
        let transport = match (&self.tls, secure) {
            (Some((tls, _)), true) => match rustls::ServerConnection::new(Arc::clone(tls)) {
                Ok(session) => Transport::tls(socket, session),
                Err(_) => return false,
            },
            _ => Transport::plain(socket),
        };
        self.accepted += 1;
        self.next_serial += 1;
        let id = ConnId {
            slot,
            serial: self.next_serial,
        };
        let metrics_only = from == Listening::Metrics;
        let conn = entry.insert(Conn::accepted_on(
            transport,
            peer,
            id,
            self.now,
            metrics_only,
        ));
        // Counted before it runs: a TLS client that fails in its first turn (plain HTTP to
        // the TLS port) has then been counted in its handshake.
        count_state(&self.shared.metrics, conn);
        self.drive(slot);
        true
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
        count_state(&self.shared.metrics, conn);
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
            count_closed(&self.shared.metrics, &conn);
            conn.transport.say_goodbye();
            conn.recycle(&mut self.shared.buffers);
            self.control.release_connection();
        }
        // The slab keeps the room its busiest moment needed (~460 bytes per slot): once every
        // connection is gone, give a large one back (5,000 closed connections kept 2.2 MiB).
        if self.conns.is_empty() && self.conns.capacity() > SLAB_KEPT_WHEN_EMPTY {
            self.conns.shrink_to_fit();
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
        for Published { topic, id, event } in self.shared.inbox.take() {
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

    /// SIGHUP reloads the certificate; SIGUSR1 reopens the access log; SIGINT/SIGTERM shut
    /// down: on every worker.
    fn on_signal(&mut self) {
        let Some(signals) = &mut self.signals else {
            return;
        };
        let received: Vec<i32> = signals.pending().collect();
        if received.contains(&SIGHUP) {
            self.control.reload_certificate();
        }
        if received.contains(&SIGUSR1) {
            self.control.reopen_access_log();
        }
        for _ in received
            .iter()
            .filter(|&&signal| signal == SIGINT || signal == SIGTERM)
        {
            self.control.shut_down_all();
        }
        self.follow_control();
    }

    /// Takes the certificate reloaded since this loop's copy was made, if any: one atomic
    /// load per HTTPS connection, the lock only after a reload.
    fn refresh_tls(&mut self) {
        let generation = self.control.tls_generation.load(Ordering::Acquire);
        if self
            .tls
            .as_ref()
            .is_some_and(|(_, seen)| *seen != generation)
        {
            self.tls = self.control.tls_config();
        }
    }

    /// Acts on what the workers were told since the last call: shutdown.
    fn follow_control(&mut self) {
        let shutdowns = self.control.shutdowns.load(Ordering::Acquire);
        while self.shutdowns_seen < shutdowns {
            self.shutdowns_seen += 1;
            self.shut_down();
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
        for mut listener in [
            self.listener.take(),
            self.tls_listener.take(),
            self.metrics_listener.take(),
        ]
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

/// What every connection reads (and logs to) while it is driven: one per loop.
pub(crate) struct Shared {
    app: App,
    config: Config,
    /// Every connection's limits and timeouts (from `config`).
    settings: Settings,
    date: DateCache,
    log: AccessLog,
    pub(crate) buffers: BufferPool,
    pool: Helpers,
    /// What the app's publisher delivers to this loop.
    inbox: Arc<Inbox>,
    topics: Topics,
    /// This loop's counters (registered with the workers' `Registry`).
    metrics: Arc<WorkerMetrics>,
    /// The metrics endpoint, with `--metrics` or `--metrics-addr`.
    endpoint: Option<Endpoint>,
}

impl Shared {
    /// What the loop lends its connections when serving `app` under `config`, with a helper
    /// pool of its own; helper threads and publishers wake the loop through `waker`.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn new(app: App, config: Config, waker: Arc<Waker>) -> io::Result<Shared> {
        let threads = config.helpers().max(app.helpers_needed());
        let pool = Arc::new(HelperPool::new(threads)?);
        Shared::with_pool(app, config, waker, pool)
    }

    /// [`Shared::new`] with the helper pool the workers share.
    fn with_pool(
        app: App,
        config: Config,
        waker: Arc<Waker>,
        pool: Arc<HelperPool>,
    ) -> io::Result<Shared> {
        let mut date = DateCache::new();
        date.refresh(SystemTime::now());
        Ok(Shared {
            log: AccessLog::for_config(&config)?,
            settings: config.connection_settings(),
            date,
            buffers: BufferPool::default(),
            inbox: app.publisher().subscribe(Arc::clone(&waker)),
            pool: Helpers::new(pool, waker),
            topics: Topics::default(),
            metrics: Arc::default(),
            endpoint: None,
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
            metrics: &self.metrics,
            endpoint: self.endpoint.as_ref(),
            now,
        }
    }
}

/// Counts `conn` by what it does now.
fn count_state(metrics: &WorkerMetrics, conn: &mut Conn) {
    let state = conn.state();
    if conn.counted_as == Some(state) {
        return;
    }
    count_handshake_end(metrics, conn);
    metrics.track(conn.counted_as, Some(state));
    conn.counted_as = Some(state);
}

/// Counts `conn` gone.
fn count_closed(metrics: &WorkerMetrics, conn: &Conn) {
    count_handshake_end(metrics, conn);
    metrics.track(conn.counted_as, None);
}

/// Counts the TLS handshake of a connection counted in its handshake until now, which has
/// moved on or closed: completed, or failed (closed during it, or a client that sent plain
/// HTTP to the TLS port, answered without TLS). A whole exchange may happen in one turn.
fn count_handshake_end(metrics: &WorkerMetrics, conn: &Conn) {
    if conn.counted_as != Some(ConnState::HANDSHAKE) {
        return;
    }
    if conn.is_secure() && conn.state() != ConnState::HANDSHAKE {
        metrics.tls_handshakes.inc();
    } else {
        metrics.tls_handshake_failures.inc();
    }
}

/// A non-blocking listener with SO_REUSEADDR and our backlog; with `reuse_port`, other
/// sockets may listen on the same address (SO_REUSEPORT: one per worker, the kernel spreads
/// new connections over them by a hash of the client's address and port).
fn listen(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
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
        let mut listener = listen("127.0.0.1:0".parse().unwrap(), false).unwrap();
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
    fn the_connection_limit_counts_every_workers_connections() {
        let control = Arc::new(Control {
            open_connections: AtomicUsize::new(0),
            max_connections: 3,
            shutdowns: AtomicUsize::new(0),
            running: AtomicUsize::new(2),
            tls: None,
            tls_generation: AtomicU64::new(0),
            access_log_reopens: AtomicU64::new(0),
            wakers: Vec::new(),
            registry: Arc::default(),
        });
        // Two workers race for the last places: exactly three are given.
        let reserved: usize = (0..2)
            .map(|_| {
                let control = Arc::clone(&control);
                thread::spawn(move || (0..10).filter(|_| control.reserve_connection()).count())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|worker| worker.join().unwrap())
            .sum();
        assert_eq!(reserved, 3);
        assert!(!control.has_room());
        control.release_connection();
        assert!(control.has_room());
        assert!(control.reserve_connection());
        assert!(!control.reserve_connection());
    }

    #[test]
    fn workers_start_together_or_not_at_all() {
        let gate = Arc::new(StartGate::new(3));
        let waiting: Vec<_> = (0..2)
            .map(|_| {
                let gate = Arc::clone(&gate);
                thread::spawn(move || gate.arrive())
            })
            .collect();
        gate.abandon();
        let started: Vec<bool> = waiting.into_iter().map(|w| w.join().unwrap()).collect();
        assert_eq!(
            started,
            [false, false],
            "nobody serves when one worker failed"
        );
        assert!(gate.was_abandoned());

        let gate = Arc::new(StartGate::new(2));
        let other = {
            let gate = Arc::clone(&gate);
            thread::spawn(move || gate.arrive())
        };
        assert!(gate.arrive());
        assert!(other.join().unwrap());
        assert!(!gate.was_abandoned());
    }

    #[test]
    fn workers_listen_on_one_address_with_so_reuseport() {
        let server = Server::bind(config(&["--workers", "3"])).unwrap();
        let addr = server.local_addr();
        let workers = server.into_workers(3, &[]).unwrap();
        assert_eq!(workers.len(), 3);
        for worker in &workers {
            assert_eq!(worker.listener.local_addr().unwrap(), addr);
            assert!(SockRef::from(&worker.listener).reuse_port().unwrap());
        }
        assert!(
            workers[0].signals.is_some(),
            "worker 0 receives the signals"
        );
        assert!(workers[1..].iter().all(|worker| worker.signals.is_none()));
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
                LISTENER => event_loop.accept(Listening::Http),
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
    fn a_loop_gives_back_the_room_of_a_burst_once_its_last_connection_closes() {
        let server = Server::bind(config(&[])).unwrap();
        let addr = server.local_addr();
        let mut event_loop = event_loop(server, App::new());
        let mut events = Events::with_capacity(16);
        let deadline = deadline();
        let mut burst = |event_loop: &mut EventLoop, count: usize| {
            let clients: Vec<_> = (0..count).map(|_| client(addr)).collect();
            while event_loop.conns.len() < count {
                handle_events(event_loop, &mut events, deadline);
            }
            drop(clients);
            while !event_loop.conns.is_empty() {
                handle_events(event_loop, &mut events, deadline);
            }
        };

        // A few connections: their room is kept for the next ones.
        burst(&mut event_loop, SLAB_KEPT_WHEN_EMPTY / 2);
        assert!(event_loop.conns.capacity() >= SLAB_KEPT_WHEN_EMPTY / 2);
        // A burst: once the last of them is gone, so is the room.
        burst(&mut event_loop, SLAB_KEPT_WHEN_EMPTY * 2);
        assert_eq!(event_loop.conns.capacity(), 0);
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
