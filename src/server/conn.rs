//! One client connection on the loop: its socket (plain or TLS) ⇄ its HTTP state machine
//! ([`http::conn`](crate::http::conn), which does no I/O) ⇄ the app. This file owns what
//! touches the outside world for one connection: socket reads and writes, readiness, the call
//! into the app (and the helper pool for deferred work), the access log, and event-stream
//! subscriptions.
//!
//! The loop calls [`Conn::drive`] whenever the socket may have changed (readiness is a hint) and
//! [`Conn::on_timeout`] when the deadline it reported has passed. `drive` repeats three steps
//! until none of them makes progress:
//!
//! 1. **read** what the socket has into the HTTP connection's buffer (until `WouldBlock`, as
//!    edge-triggered readiness demands), when it wants input;
//! 2. **process** every complete request it hands out, in order: call the app, and queue the
//!    response, open the stream, or hand the job to the helper pool (the request then waits
//!    until [`Conn::on_job_done`]);
//! 3. **flush** its output: encoded bytes, then a body shared with the file cache (writev) or
//!    a file (sendfile), until `WouldBlock`.
//!
//! One turn is bounded: at most [`BYTES_PER_WAKE`] bytes written and `REQUESTS_PER_WAKE`
//! requests answered, then the connection yields ([`Flow::Yield`]) and the loop serves the
//! others before driving it again. A client downloading a large file costs everyone else one
//! bounded step per tick, not the whole file.

use std::io::{self, IoSlice, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use mio::Interest;

use crate::events::{self, EventStream};
use crate::http::buffers::BufferPool;
use crate::http::conn::{
    self as http, Env, Exchange, Expired, Input, Next, Pushed, Rejection, Settings, Settle,
};
use crate::http::date::DateCache;
use crate::http::request::Request;
use crate::http::response::{BodySlice, Response};
use crate::http::status::StatusCode;
use crate::jobs::{Job, Outcome, Responder};
use crate::router::{App, Reply};
use crate::server::access_log::AccessLog;
use crate::server::metrics::{ConnState, Endpoint, RequestKind, WorkerMetrics};
use crate::server::pool::Helpers;
use crate::server::topics::Topics;
use crate::server::transport::{self, Transport};

/// Requests answered per wake-up before yielding to other connections.
const REQUESTS_PER_WAKE: usize = 32;
/// Bytes written per wake-up before yielding to other connections: one connection holds the
/// loop for one bounded step (a sendfile call, or TLS records), not for a whole large file.
/// The step is also what one sendfile call is asked for, and smaller is cheaper per byte, not
/// only fairer: 1 MiB files to 16 wrk connections cost 158 / 116 / 236 / 299 us of server CPU
/// each with 16 / 32 / 64 / 128 KiB steps, and one connection got 1,262 files/s with 32 KiB
/// against 463 with 64 KiB (benches/load/ab.sh over loopback; nginx asks for up to 2 MiB,
/// lighttpd 256 KiB).
pub const BYTES_PER_WAKE: usize = 32 * 1024;
/// Bytes read and dropped per call while discarding input.
const DISCARD_CHUNK: usize = 4096;

/// A connection's identity for the life of the server: its slab slot (and poll token), and a
/// serial number, since slots are reused. Timers, helper jobs and event subscriptions name
/// connections by it, and find a stale entry by a serial that no longer matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConnId {
    pub slot: usize,
    pub serial: u64,
}

/// What the server needs from one `drive`.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    /// Waiting for the socket or a timer.
    Open,
    /// More requests are buffered but this wake-up's budget is spent: drive again next tick.
    Yield,
    /// Done: close the socket and free the slot.
    Close,
}

/// Everything a connection borrows from the loop while it is driven.
pub struct Ctx<'a> {
    pub app: &'a App,
    pub settings: &'a Settings,
    pub date: &'a DateCache,
    pub log: &'a mut AccessLog,
    pub buffers: &'a mut BufferPool,
    pub pool: &'a Helpers,
    pub topics: &'a mut Topics,
    /// This loop's counters.
    pub metrics: &'a WorkerMetrics,
    /// The metrics endpoint, when it is on.
    pub endpoint: Option<&'a Endpoint>,
    pub now: Instant,
}

impl Ctx<'_> {
    /// What the HTTP connection borrows for one call.
    fn env(&mut self) -> Env<'_> {
        Env {
            now: self.now,
            settings: self.settings,
            date: self.date,
            buffers: &mut *self.buffers,
        }
    }

    /// What the HTTP connection borrows for one call that answers a request, and where the
    /// exchange (from `peer`, answered by `kind`) is recorded: the access log and the metrics.
    fn env_and_log(
        &mut self,
        peer: IpAddr,
        kind: RequestKind,
    ) -> (Env<'_>, impl FnOnce(&Exchange<'_>) + '_) {
        let (date, now, metrics) = (self.date, self.now, self.metrics);
        let log = &mut *self.log;
        let env = Env {
            now,
            settings: self.settings,
            date,
            buffers: &mut *self.buffers,
        };
        (env, move |exchange: &Exchange<'_>| {
            log.record(peer, date, exchange);
            metrics.record(exchange, kind);
        })
    }
}

/// A client connection.
#[derive(Debug)]
pub struct Conn {
    pub transport: Transport,
    http: http::Conn,
    pub id: ConnId,
    /// The time of this connection's live timer entry, if it has one (see `timers`).
    pub armed: Option<Instant>,
    /// The readiness this socket is registered for.
    pub registered: Interest,
    /// Readiness hints: cleared when the socket says `WouldBlock`, set by the loop on events.
    readable: bool,
    writable: bool,
    /// The poller reported the peer's FIN (or an error): read until EOF is seen.
    peer_hung_up: bool,
    /// Accepted on the metrics listener (`--metrics-addr`): only the metrics are served.
    metrics_only: bool,
    /// What answered the request being answered (for its duration's label).
    answered_by: RequestKind,
    /// What the metrics count this connection as, once the loop has counted it.
    pub counted_as: Option<ConnState>,
}

impl Conn {
    pub fn new(transport: Transport, peer: SocketAddr, id: ConnId, now: Instant) -> Conn {
        Conn::accepted_on(transport, peer, id, now, false)
    }

    /// A connection accepted on the metrics listener (`metrics_only`) or a site's.
    pub fn accepted_on(
        transport: Transport,
        peer: SocketAddr,
        id: ConnId,
        now: Instant,
        metrics_only: bool,
    ) -> Conn {
        let secure = transport.is_secure();
        Conn {
            transport,
            http: http::Conn::new(peer, secure, now),
            id,
            armed: None,
            registered: Interest::READABLE,
            // A new socket is writable, and a client usually sends its request at once.
            readable: true,
            writable: true,
            peer_hung_up: false,
            metrics_only,
            answered_by: RequestKind::Static,
            counted_as: None,
        }
    }

    /// What the metrics count this connection as now: in its TLS handshake, or what the HTTP
    /// connection is doing.
    pub fn state(&self) -> ConnState {
        if self.transport.is_handshaking() {
            ConnState::HANDSHAKE
        } else {
            ConnState::of(self.http.activity())
        }
    }

    /// Whether the connection speaks TLS (a client that sent plain HTTP to the TLS port was
    /// answered in plain HTTP: its handshake failed).
    pub fn is_secure(&self) -> bool {
        self.transport.is_secure()
    }

    /// Records a readiness event.
    pub fn on_event(&mut self, event: &mio::event::Event) {
        self.readable |= event.is_readable() || event.is_read_closed() || event.is_error();
        self.writable |= event.is_writable() || event.is_write_closed() || event.is_error();
        self.peer_hung_up |= event.is_read_closed() || event.is_error();
    }

    /// Makes all the progress the socket allows. See the module docs for the three steps.
    pub fn drive(&mut self, ctx: &mut Ctx<'_>) -> Flow {
        let mut requests = REQUESTS_PER_WAKE;
        let mut bytes = BYTES_PER_WAKE;
        loop {
            let read = match self.read(ctx) {
                Ok(read) => read,
                Err(_) => return Flow::Close,
            };
            let processed = self.process(ctx, &mut requests);
            let flushed = match self.flush(ctx, &mut bytes) {
                Ok(flushed) => flushed,
                Err(_) => return Flow::Close,
            };
            // Budget spent with work left: others get their turn first.
            if requests == 0 || (bytes == 0 && self.writable && self.has_output()) {
                return Flow::Yield;
            }
            if !(read || processed || flushed) {
                break;
            }
        }
        self.settle(ctx)
    }

    /// The deadline was reached (the loop checked it against [`Conn::deadline`]).
    pub fn on_timeout(&mut self, ctx: &mut Ctx<'_>) -> Flow {
        if self.has_output() {
            // Before dropping a client for not reading, see whether it took anything: the
            // kernel reports writability only once a good share of a (large) send buffer is
            // free, so a slow but steady reader can look stalled from here.
            self.writable = true;
            let mut bytes = BYTES_PER_WAKE;
            return match self.flush(ctx, &mut bytes) {
                Ok(true) => self.drive(ctx),
                _ => Flow::Close,
            };
        }
        let rejection = match self.http.on_deadline() {
            Expired::Close => return Flow::Close,
            Expired::Heartbeat => return self.push_event(None, events::KEEP_ALIVE_COMMENT, ctx),
            Expired::Reject(rejection) => {
                ctx.app
                    .error_for_path(rejection.status, rejection.path, self.transport.is_secure())
            }
        };
        self.answer(rejection, ctx);
        self.drive(ctx)
    }

    /// Graceful shutdown: finish what is in flight, then close. Idle connections close now;
    /// event streams end with their last chunk.
    pub fn begin_shutdown(&mut self, ctx: &mut Ctx<'_>) -> Flow {
        if self.http.shut_down(ctx.buffers) && !self.transport.has_pending() {
            return Flow::Close;
        }
        self.drive(ctx)
    }

    /// Whether this connection is an open event stream.
    pub fn is_streaming(&self) -> bool {
        self.http.is_streaming()
    }

    /// Appends `event` to an open event stream and sends what the socket takes (see
    /// [`http::Conn::push_event`]).
    pub fn push_event(&mut self, id: Option<u64>, event: &[u8], ctx: &mut Ctx<'_>) -> Flow {
        match self.http.push_event(id, event, ctx.buffers) {
            Pushed::Skipped => Flow::Open,
            Pushed::TooFarBehind => Flow::Close,
            Pushed::Queued => self.drive(ctx),
        }
    }

    /// When the loop must look at this connection again if the socket stays quiet.
    pub fn deadline(&self, settings: &Settings) -> Instant {
        if self.transport.has_pending() {
            return self.http.write_deadline(settings);
        }
        self.http.deadline(settings)
    }

    /// The readiness to wait for: always input (requests, or the peer closing), and output
    /// only while something is waiting to be sent and the socket said it was full.
    pub fn interest(&self) -> Interest {
        if self.has_output() && !self.writable {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }

    /// Whether output is waiting to be sent (TLS records included).
    fn has_output(&self) -> bool {
        self.http.has_output() || self.transport.has_pending()
    }

    // ---- step 1: read -------------------------------------------------------------------

    /// Reads what the HTTP connection wants. Returns whether anything happened.
    fn read(&mut self, ctx: &mut Ctx<'_>) -> io::Result<bool> {
        if !self.readable {
            return Ok(false);
        }
        match self.http.wants_input() {
            Input::Request => self.read_requests(ctx),
            Input::Discard => self.discard_input(ctx),
            Input::Nothing => Ok(false),
        }
    }

    /// Reads until `WouldBlock`, the buffer limit, or EOF. Returns whether bytes arrived.
    fn read_requests(&mut self, ctx: &mut Ctx<'_>) -> io::Result<bool> {
        let mut arrived = false;
        loop {
            let Some(space) = self.http.read_space(ctx.settings, ctx.buffers) else {
                // Full: process what is here first; the readable hint stays set for later.
                return Ok(arrived);
            };
            let offered = space.len();
            match self.transport.read(space) {
                Ok(0) => {
                    self.http.received_eof();
                    return Ok(true);
                }
                Ok(n) => {
                    self.http.received(n, ctx.now);
                    ctx.metrics.received_bytes.add(n as u64);
                    arrived = true;
                    // A short read drained the socket: skip the read that would only say
                    // WouldBlock (a syscall per request). Edge-triggered epoll reports any
                    // later bytes; a FIN that already came is flagged on the event instead.
                    if n < offered && !self.peer_hung_up && !self.transport.eof_pending() {
                        self.readable = false;
                        return Ok(true);
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return Ok(arrived);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if transport::is_plain_http(&error) => {
                    self.answer_plain_http(ctx);
                    return Ok(true);
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Reads and discards input (see [`Input::Discard`]). Returns whether anything happened.
    fn discard_input(&mut self, ctx: &mut Ctx<'_>) -> io::Result<bool> {
        let mut any = false;
        let mut scratch = [0; DISCARD_CHUNK];
        loop {
            match self.transport.read(&mut scratch) {
                Ok(0) => {
                    self.http.received_eof();
                    return Ok(true);
                }
                Ok(n) => {
                    any = true;
                    ctx.metrics.received_bytes.add(n as u64);
                    if self.http.discarded(n).is_err() {
                        return Err(io::ErrorKind::InvalidData.into());
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return Ok(any);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
    }

    // ---- step 2: process ----------------------------------------------------------------

    /// Answers every complete request the HTTP connection hands out, in order, within
    /// `budget`. Returns whether any state changed.
    fn process(&mut self, ctx: &mut Ctx<'_>, budget: &mut usize) -> bool {
        let mut changed = false;
        while *budget > 0 {
            let metrics_only = self.metrics_only;
            let (reply, answered_by) = match self.http.next(&mut ctx.env()) {
                Next::Nothing { advanced } => return changed || advanced,
                Next::Request(request) => {
                    *budget -= 1;
                    route(ctx, &request, metrics_only)
                }
                Next::Reject(rejection) => refuse(ctx, &rejection, self.transport.is_secure()),
            };
            self.answered_by = answered_by;
            self.act_on(reply, ctx);
            changed = true;
        }
        changed
    }

    /// Queues the response, opens the stream, or hands the job to the helper pool (the
    /// request then waits at the front of the buffer).
    fn act_on(&mut self, reply: Reply, ctx: &mut Ctx<'_>) {
        match reply {
            Reply::Now(response) => self.answer(response, ctx),
            Reply::Stream(stream) => self.start_stream(*stream, ctx),
            Reply::Later(job) => self.wait_for(job, ctx),
            Reply::Prepare(work) => {
                let job: Job = Box::new(move |responder: Responder| {
                    work();
                    responder.retry();
                });
                self.wait_for(job, ctx);
            }
        }
    }

    /// Sends `response` for the request being answered, and logs the exchange.
    fn answer(&mut self, response: Response, ctx: &mut Ctx<'_>) {
        let (mut env, log) = ctx.env_and_log(self.http.peer().ip(), self.answered_by);
        self.http.respond(response, &mut env, log);
    }

    /// Hands `job` to the helper pool; the request waits for its outcome.
    fn wait_for(&mut self, job: Job, ctx: &mut Ctx<'_>) {
        ctx.pool.submit(self.id, job);
        self.http.defer();
    }

    /// A job finished: send its response (or open its stream, or handle the request again)
    /// and go on with the next request.
    pub fn on_job_done(&mut self, outcome: Outcome, ctx: &mut Ctx<'_>) -> Flow {
        match outcome {
            Outcome::Response(response) => self.answer(response, ctx),
            Outcome::Stream(stream) => self.start_stream(stream, ctx),
            Outcome::Retry => {
                let metrics_only = self.metrics_only;
                let (reply, answered_by) = match self.http.request_again() {
                    Next::Request(request) => route(ctx, &request, metrics_only),
                    Next::Reject(rejection) => refuse(ctx, &rejection, self.transport.is_secure()),
                    Next::Nothing { .. } => unreachable!("request_again() handed out nothing"),
                };
                self.answered_by = answered_by;
                self.act_on(reply, ctx);
            }
        }
        self.drive(ctx)
    }

    /// Sends the head of an event stream and its replay, catches up on events published
    /// since the replay was read (from the topic's recent history), and subscribes to its
    /// topic.
    fn start_stream(&mut self, stream: EventStream, ctx: &mut Ctx<'_>) {
        let EventStream {
            topic,
            response,
            replay,
            last_id,
        } = stream;
        // Events published between reading the replay and now: the topic still has them,
        // unless so many came that it forgot some (then the stream ends, and the client
        // resumes from its last id).
        let catch_up = match last_id {
            Some(after) => ctx.topics.recent_after(&topic, after),
            None => Some(Vec::new()),
        };
        let mut first = replay;
        let mut last_id = last_id;
        for (id, event) in catch_up.iter().flatten() {
            first.extend_from_slice(event);
            last_id = Some(*id);
        }
        let (mut env, log) = ctx.env_and_log(self.http.peer().ip(), RequestKind::Stream);
        let opened = self
            .http
            .open_stream(response, &first, last_id, &mut env, log);
        if !opened {
            return;
        }
        match catch_up {
            Some(_) => ctx.topics.subscribe(&topic, self.id),
            None => self.http.end_stream(ctx.buffers),
        }
    }

    /// A client sent plain HTTP to the TLS port: say so in plain HTTP (as nginx does) rather
    /// than with a TLS alert it cannot read, then close.
    fn answer_plain_http(&mut self, ctx: &mut Ctx<'_>) {
        self.transport.drop_tls();
        let response = Response::text(
            StatusCode::BAD_REQUEST,
            "400 Bad Request: this port speaks HTTPS, use an https:// URL\n",
        );
        let (mut env, log) = ctx.env_and_log(self.http.peer().ip(), RequestKind::Static);
        self.http.answer_and_close(response, &mut env, log);
    }

    // ---- step 3: flush ------------------------------------------------------------------

    /// Writes until the output is gone or the socket is full: TLS records already encrypted,
    /// then the encoded bytes, then a body shared from the file cache (in the same writev as
    /// the bytes before it) or a file (sendfile, the bytes before it sent with MSG_MORE so
    /// they share a segment with the first file bytes). Stops when `budget` bytes are written
    /// (see [`BYTES_PER_WAKE`]). Returns whether any byte was written.
    fn flush(&mut self, ctx: &mut Ctx<'_>, budget: &mut usize) -> io::Result<bool> {
        let mut wrote = false;
        while self.writable && *budget > 0 {
            // Records first: TLS takes no more plaintext while they wait.
            match self.transport.send_pending() {
                Ok(0) => {}
                Ok(n) => {
                    *budget = budget.saturating_sub(n);
                    self.http.peer_took_output(ctx.now);
                    wrote = true;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    self.writable = false;
                    break;
                }
                Err(error) => return Err(error),
            }
            if *budget == 0 {
                break;
            }
            let output = self.http.output();
            let file_only =
                output.bytes.is_empty() && matches!(output.body, Some(BodySlice::File { .. }));
            let result = match (output.bytes, output.body) {
                ([], None) if self.transport.has_pending() => continue,
                ([], None) => break,
                ([], Some(BodySlice::Bytes(body))) => self.transport.write(body),
                ([], Some(BodySlice::File { file, offset, len })) => {
                    let len = usize::try_from(len).unwrap_or(usize::MAX).min(*budget);
                    self.transport.send_file(file, offset, len, ctx.buffers)
                }
                (bytes, Some(BodySlice::Bytes(body))) => self
                    .transport
                    .write_vectored(&[IoSlice::new(bytes), IoSlice::new(body)]),
                (bytes, Some(BodySlice::File { .. })) => self.transport.write_before_file(bytes),
                (bytes, None) => self.transport.write(bytes),
            };
            match result {
                // A socket takes nothing only if it is broken; a file gives nothing if it
                // shrank: end the message visibly truncated.
                Ok(0) if file_only => self.http.file_ended(),
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.http.sent(n, ctx.now);
                    ctx.metrics.sent_bytes.add(n as u64);
                    *budget = budget.saturating_sub(n);
                    wrote = true;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(wrote)
    }

    /// After the three steps: whether the connection lives on, lingers, or closes.
    fn settle(&mut self, ctx: &mut Ctx<'_>) -> Flow {
        if self.has_output() {
            return Flow::Open;
        }
        match self.http.settle(ctx.buffers) {
            Settle::Wait => Flow::Open,
            Settle::Close => Flow::Close,
            Settle::ShutDownWrite => match self.transport.shutdown_write() {
                Ok(()) => {
                    self.http.linger(ctx.now, ctx.buffers);
                    self.readable = true;
                    match self.discard_input(ctx) {
                        Ok(_) if !self.http.peer_closed() => Flow::Open,
                        _ => Flow::Close,
                    }
                }
                // TLS's close_notify waits for the socket; the next turn sends it and shuts down.
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    self.writable = false;
                    Flow::Open
                }
                Err(_) => Flow::Close,
            },
        }
    }

    /// Hands the buffers back when the connection closes.
    pub fn recycle(self, buffers: &mut BufferPool) {
        self.http.recycle(buffers);
    }
}

/// Calls the app for `request`. A panicking handler costs its own request a 500, nothing more;
/// so does a handler that asks to prepare a request it was already prepared for (a bug).
/// The metrics endpoint's answer to `request` if it is the endpoint's to give (every request
/// on the metrics listener, `metrics_only`), else the app's; and what answered it.
#[inline]
fn route(ctx: &Ctx<'_>, request: &Request<'_>, metrics_only: bool) -> (Reply, RequestKind) {
    if let Some(endpoint) = ctx.endpoint
        && let Some(response) = endpoint.answer(request, metrics_only)
    {
        return (Reply::Now(response), RequestKind::Static);
    }
    let reply = call_app(ctx.app, request);
    (reply, RequestKind::answered_by(ctx.app.answered_by()))
}

/// The error response for input the HTTP connection rejected (its format follows the path,
/// when the request line got that far).
fn refuse(ctx: &Ctx<'_>, rejection: &Rejection<'_>, secure: bool) -> (Reply, RequestKind) {
    let response = ctx
        .app
        .error_for_path(rejection.status, rejection.path, secure);
    (Reply::Now(response), RequestKind::Static)
}

fn call_app(app: &App, request: &Request<'_>) -> Reply {
    let internal_error = || {
        Reply::Now(app.error_for_path(
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(request.path()),
            request.is_secure(),
        ))
    };
    match catch_unwind(AssertUnwindSafe(|| app.handle(request))) {
        Ok(Reply::Prepare(_)) if request.prepared() => internal_error(),
        Ok(reply) => reply,
        Err(_) => internal_error(),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::net::TcpStream as StdTcpStream;
    use std::rc::Rc;
    use std::sync::Arc;
    use std::thread;

    use mio::{Events, Poll, Token, Waker};
    use socket2::SockRef;

    use super::*;
    use crate::config::Config;
    use crate::server::Shared;
    use crate::server::test_support::{
        ClientStream, ReadResponse, deadline, read_response, socket_pair, time_left, tls_client,
        tls_server_config,
    };

    const WAKER: Token = Token(0);
    const SOCKET: Token = Token(1);
    const ID: ConnId = ConnId { slot: 1, serial: 1 };

    /// What the loop lends a connection, built from real parts, and a poller for one socket and
    /// the helper pool's waker.
    struct Harness {
        /// The same parts the loop lends its connections.
        shared: Shared,
        poll: Poll,
        events: Events,
    }

    impl Harness {
        fn new(app: App) -> Harness {
            let poll = Poll::new().unwrap();
            let waker = Arc::new(Waker::new(poll.registry(), WAKER).unwrap());
            let mut config = Config::defaults();
            config.quiet = true;
            Harness {
                shared: Shared::new(app, config, waker).unwrap(),
                poll,
                events: Events::with_capacity(8),
            }
        }

        fn ctx(&mut self) -> Ctx<'_> {
            self.shared.ctx(Instant::now())
        }

        /// A connection on the server's end of a loopback pair (registered for every
        /// readiness change), and the client's end.
        fn open(&mut self, secure: bool) -> (Conn, StdTcpStream) {
            let (mut socket, client) = socket_pair();
            self.poll
                .registry()
                .register(&mut socket, SOCKET, Interest::READABLE | Interest::WRITABLE)
                .unwrap();
            let transport = if secure {
                let session = rustls::ServerConnection::new(tls_server_config()).unwrap();
                Transport::tls(socket, session)
            } else {
                Transport::plain(socket)
            };
            let peer = client.local_addr().unwrap();
            (Conn::new(transport, peer, ID, Instant::now()), client)
        }

        /// Waits for the socket or the waker; socket events go to `conn` as the loop hands them
        /// over. Returns whether the socket had one.
        fn wait(&mut self, conn: &mut Conn, deadline: Instant, waiting_for: &str) -> bool {
            let left = time_left(deadline, waiting_for);
            self.poll.poll(&mut self.events, Some(left)).unwrap();
            let mut socket = false;
            for event in self.events.iter() {
                if event.token() == SOCKET {
                    conn.on_event(event);
                    socket = true;
                }
            }
            socket
        }

        /// Drives `conn` as the loop does (again at once after a yield, else on its socket's
        /// next event) until `done` accepts the flow of a turn. Job outcomes are not delivered.
        fn drive_until(&mut self, conn: &mut Conn, mut done: impl FnMut(&Flow) -> bool) -> Flow {
            let deadline = deadline();
            loop {
                let flow = conn.drive(&mut self.ctx());
                if done(&flow) {
                    return flow;
                }
                match flow {
                    Flow::Close => panic!("closed early"),
                    Flow::Yield => {}
                    Flow::Open => while !self.wait(conn, deadline, "the socket") {},
                }
            }
        }

        /// The next outcome the helper pool sends back (socket events meanwhile are recorded
        /// on `conn`, not acted on).
        fn job_outcome(&mut self, conn: &mut Conn) -> Outcome {
            let deadline = deadline();
            loop {
                if let Some((key, outcome)) = self.shared.pool.finished().next() {
                    assert_eq!(key, conn.id);
                    return outcome;
                }
                self.wait(conn, deadline, "the job");
            }
        }
    }

    fn get(path: &str) -> String {
        format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
    }

    /// Reads `count` responses.
    fn read_responses(client: &mut dyn ClientStream, count: usize) -> Vec<ReadResponse> {
        let mut buf = Vec::new();
        (0..count)
            .map(|_| read_response(&mut *client, &mut buf))
            .collect()
    }

    /// Reads until the end of the stream.
    fn read_to_end(client: &mut StdTcpStream) -> Vec<u8> {
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        rest
    }

    fn body(response: &ReadResponse) -> &str {
        std::str::from_utf8(&response.body).unwrap()
    }

    fn bodies(responses: &[ReadResponse]) -> Vec<&str> {
        responses.iter().map(body).collect()
    }

    /// The app the tests talk to: `/a` and `/b` say their names, `/boom` panics; and the
    /// number of requests its handlers were called for.
    fn app() -> (App, Rc<Cell<usize>>) {
        let handled = Rc::new(Cell::new(0));
        let counted = |reply: fn() -> Response| {
            let handled = Rc::clone(&handled);
            move |_: &Request<'_>| {
                handled.set(handled.get() + 1);
                reply()
            }
        };
        let mut app = App::new();
        app.get("/a", counted(|| Response::text(StatusCode::OK, "a")));
        app.get("/b", counted(|| Response::text(StatusCode::OK, "b")));
        app.get("/boom", counted(|| panic!("a handler bug")));
        (app, handled)
    }

    #[test]
    fn a_request_gets_its_response_and_the_clients_eof_closes() {
        let (app, handled) = app();
        let mut harness = Harness::new(app);
        let (mut conn, mut client) = harness.open(false);
        client.write_all(get("/a").as_bytes()).unwrap();
        let flow = harness.drive_until(&mut conn, |_| handled.get() == 1);
        assert_eq!(flow, Flow::Open, "kept alive for the next request");
        let response = read_responses(&mut client, 1).remove(0);
        assert_eq!(response.status(), 200);
        assert_eq!(body(&response), "a");
        assert_eq!(response.header("connection"), None);
        drop(client);
        let flow = harness.drive_until(&mut conn, |flow| *flow != Flow::Open);
        assert_eq!(flow, Flow::Close);
    }

    #[test]
    fn pipelined_requests_are_answered_in_order() {
        let (app, handled) = app();
        let mut harness = Harness::new(app);
        let (mut conn, mut client) = harness.open(false);
        client
            .write_all((get("/b") + &get("/a")).as_bytes())
            .unwrap();
        let flow = harness.drive_until(&mut conn, |_| handled.get() == 2);
        assert_eq!(flow, Flow::Open);
        assert_eq!(bodies(&read_responses(&mut client, 2)), ["b", "a"]);
        drop(client);
        let flow = harness.drive_until(&mut conn, |flow| *flow != Flow::Open);
        assert_eq!(flow, Flow::Close);
    }

    #[test]
    fn connection_close_ends_with_the_response_then_eof() {
        let (app, handled) = app();
        let mut harness = Harness::new(app);
        let (mut conn, mut client) = harness.open(false);
        let request = "GET /a HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
        client.write_all(request.as_bytes()).unwrap();
        let flow = harness.drive_until(&mut conn, |_| handled.get() == 1);
        // Our side is shut down; the connection lingers until the client's EOF.
        assert_eq!(flow, Flow::Open);
        let response = read_responses(&mut client, 1).remove(0);
        assert_eq!(body(&response), "a");
        assert_eq!(response.header("connection"), Some("close"));
        assert_eq!(read_to_end(&mut client), b"", "EOF after the response");
        drop(client);
        let flow = harness.drive_until(&mut conn, |flow| *flow != Flow::Open);
        assert_eq!(flow, Flow::Close);
    }

    #[test]
    fn a_panicking_handler_costs_its_request_a_500_and_nothing_more() {
        let (app, handled) = app();
        let mut harness = Harness::new(app);
        let (mut conn, mut client) = harness.open(false);
        client
            .write_all((get("/boom") + &get("/a")).as_bytes())
            .unwrap();
        let flow = harness.drive_until(&mut conn, |_| handled.get() == 2);
        assert_eq!(flow, Flow::Open);
        let responses = read_responses(&mut client, 2);
        assert_eq!(responses[0].status(), 500);
        assert_eq!(responses[1].status(), 200);
        assert_eq!(body(&responses[1]), "a");
    }

    #[test]
    fn a_deferred_request_waits_for_its_job_outcome() {
        let dispatched = Rc::new(Cell::new(false));
        let (mut app, handled) = app();
        app.get("/later", {
            let dispatched = Rc::clone(&dispatched);
            move |_| {
                dispatched.set(true);
                Reply::later(|| Response::text(StatusCode::OK, "later"))
            }
        });
        let mut harness = Harness::new(app);
        let (mut conn, mut client) = harness.open(false);
        client.write_all(get("/later").as_bytes()).unwrap();
        let flow = harness.drive_until(&mut conn, |_| dispatched.get());
        assert_eq!(flow, Flow::Open);
        // Driven again (readiness is a hint), it still has nothing to say.
        assert_eq!(conn.drive(&mut harness.ctx()), Flow::Open);
        assert_eq!(conn.interest(), Interest::READABLE);
        client.set_nonblocking(true).unwrap();
        let nothing = client.read(&mut [0; 64]).unwrap_err();
        assert_eq!(nothing.kind(), io::ErrorKind::WouldBlock, "no response yet");
        client.set_nonblocking(false).unwrap();

        let outcome = harness.job_outcome(&mut conn);
        assert_eq!(conn.on_job_done(outcome, &mut harness.ctx()), Flow::Open);
        let response = read_responses(&mut client, 1).remove(0);
        assert_eq!(body(&response), "later");
        // Kept alive: the next request is answered on the loop.
        client.write_all(get("/a").as_bytes()).unwrap();
        let flow = harness.drive_until(&mut conn, |_| handled.get() == 1);
        assert_eq!(flow, Flow::Open);
        assert_eq!(bodies(&read_responses(&mut client, 1)), ["a"]);
    }

    #[test]
    fn a_turn_answers_at_most_requests_per_wake_then_yields() {
        let (app, handled) = app();
        let mut harness = Harness::new(app);
        let (mut conn, mut client) = harness.open(false);
        // One write, well under a segment: the requests arrive together.
        let requests = get("/a").repeat(REQUESTS_PER_WAKE + 1);
        client.write_all(requests.as_bytes()).unwrap();
        let flow = harness.drive_until(&mut conn, |_| handled.get() > 0);
        assert_eq!(flow, Flow::Yield);
        assert_eq!(handled.get(), REQUESTS_PER_WAKE);
        let client = thread::spawn(move || read_responses(&mut client, REQUESTS_PER_WAKE + 1));
        let flow = harness.drive_until(&mut conn, |flow| *flow == Flow::Close);
        assert_eq!(flow, Flow::Close);
        assert_eq!(client.join().unwrap().len(), REQUESTS_PER_WAKE + 1);
        assert_eq!(handled.get(), REQUESTS_PER_WAKE + 1);
    }

    #[test]
    fn a_turn_writes_at_most_bytes_per_wake_then_yields() {
        const BODY: usize = 4 * 1024 * 1024;
        let dispatched = Rc::new(Cell::new(false));
        let mut app = App::new();
        app.get("/big", {
            let dispatched = Rc::clone(&dispatched);
            move |_| {
                dispatched.set(true);
                Response::text(StatusCode::OK, "x".repeat(BODY))
            }
        });
        let mut harness = Harness::new(app);
        let (mut conn, mut client) = harness.open(false);
        // Deterministic socket sizes: the send buffer holds several turns' worth, so the first
        // write takes a full turn; the two buffers together hold far less than the body, so
        // output is left over.
        let socket = SockRef::from(&*conn.transport.socket_mut());
        socket.set_send_buffer_size(4 * BYTES_PER_WAKE).unwrap();
        SockRef::from(&client)
            .set_recv_buffer_size(2 * BYTES_PER_WAKE)
            .unwrap();
        assert!(socket.send_buffer_size().unwrap() >= 2 * BYTES_PER_WAKE);
        client.write_all(get("/big").as_bytes()).unwrap();
        // The client is not reading yet: the turn that answers writes one step, and yields.
        let flow = harness.drive_until(&mut conn, |_| dispatched.get());
        assert_eq!(flow, Flow::Yield);
        assert!(conn.has_output());

        let client = thread::spawn(move || read_responses(&mut client, 1).remove(0));
        let flow = harness.drive_until(&mut conn, |flow| *flow == Flow::Close);
        assert_eq!(flow, Flow::Close);
        let response = client.join().unwrap();
        assert_eq!(response.body.len(), BODY);
        assert!(response.body.iter().all(|&byte| byte == b'x'));
    }

    #[test]
    fn https_requests_are_answered_over_tls() {
        let (app, handled) = app();
        let mut harness = Harness::new(app);
        let (mut conn, client) = harness.open(true);
        let client = thread::spawn(move || {
            let mut client = tls_client(client);
            let both = get("/a") + &get("/b");
            client.write_all(both.as_bytes()).unwrap();
            let responses = read_responses(&mut client, 2);
            client.conn.send_close_notify();
            client.flush().unwrap();
            responses
        });
        let flow = harness.drive_until(&mut conn, |flow| *flow != Flow::Open);
        assert_eq!(flow, Flow::Close, "the client's close_notify ends it");
        assert_eq!(handled.get(), 2);
        assert_eq!(bodies(&client.join().unwrap()), ["a", "b"]);
    }

    #[test]
    fn plain_http_on_the_tls_port_is_told_so_in_plain_http() {
        let (app, handled) = app();
        let mut harness = Harness::new(app);
        let (mut conn, mut client) = harness.open(true);
        let client = thread::spawn(move || {
            client.write_all(get("/a").as_bytes()).unwrap();
            let mut buf = Vec::new();
            let response = read_response(&mut client, &mut buf);
            client.read_to_end(&mut buf).unwrap();
            (response, buf)
        });
        let flow = harness.drive_until(&mut conn, |flow| *flow == Flow::Close);
        assert_eq!(flow, Flow::Close);
        let (response, after) = client.join().unwrap();
        assert_eq!(response.status(), 400);
        assert!(body(&response).contains("https://"), "{}", body(&response));
        assert_eq!(response.header("connection"), Some("close"));
        assert_eq!(after, b"");
        assert_eq!(handled.get(), 0, "not a request for the app");
    }
}
