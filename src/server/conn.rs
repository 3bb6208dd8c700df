//! One client connection: its buffers and the state machine that moves bytes through it.
//!
//! The loop calls [`Conn::drive`] whenever the socket may have changed (readiness is a hint) and
//! [`Conn::on_timeout`] when the deadline it reported has passed. `drive` repeats three steps
//! until none of them makes progress:
//!
//! 1. **read** what the socket has into `read_buf` (until `WouldBlock`, as edge-triggered
//!    readiness demands), unless the output is backed up;
//! 2. **process** every complete request in the buffer, in order: parse the head, frame the
//!    body, call the app, encode the response into `write_buf` (pipelining falls out of this);
//!    a reply that is a job (`jobs`) leaves its request at the front of the buffer, `Waiting`
//!    until the helper pool hands back the outcome ([`Conn::on_job_done`]);
//! 3. **flush** `write_buf` (and stream a large file after it) until `WouldBlock`.
//!
//! One turn is bounded: at most [`BYTES_PER_WAKE`] bytes written and `REQUESTS_PER_WAKE`
//! requests answered, then the connection yields ([`Flow::Yield`]) and the loop serves the
//! others before driving it again. A client downloading a large file costs everyone else one
//! bounded step per tick, not the whole file.
//!
//! The state that decides what happens next is two enums: `Reading` (which part of a request
//! we expect) and `Writing` (where the output comes from). Keep-alive is a flag that only ever
//! goes from true to false. Which timeout applies and which readiness we need are both derived
//! from that state ([`Conn::deadline`], [`Conn::interest`]), never stored beside it.
//!
//! When the connection must end after a response (client asked, parse error, shutdown), the
//! write side is shut down once everything is sent and the input is drained for a moment
//! ("lingering close"): closing with unread input would send a reset that can destroy the
//! response before the client reads it.

use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Interest;

use crate::config::Config;
use crate::events::{self, EventStream};
use crate::http::chunked::{self, ChunkedDecoder, ChunkedError};
use crate::http::date::DateCache;
use crate::http::parse::{self, Framing, Head, HeaderSpan, ParseError, Version};
use crate::http::request::Request;
use crate::http::response::{self, Body, BodyFraming, ConnectionHeader, FilePart, Response};
use crate::http::status::StatusCode;
use crate::jobs::{Job, Outcome, Responder};
use crate::router::{App, Reply};
use crate::server::access_log::{AccessLog, RequestLine};
use crate::server::buffers::{BufferPool, READ_BUF_BASELINE};
use crate::server::pool::HelperPool;
use crate::server::read_buf::{Filled, ReadBuf};
use crate::server::timers::TimerKey;
use crate::server::topics::Topics;
use crate::server::transport::{self, Transport};

/// Files up to this size are copied into the write buffer behind their head (one write for
/// both); larger files are streamed in chunks of this size.
pub const FILE_CHUNK: usize = 64 * 1024;
/// Stop processing pipelined requests while this much output is waiting.
const OUTPUT_HIGH_WATER: usize = 64 * 1024;
/// Bodies up to this size are copied behind their head; larger shared ones are written from
/// the cache (writev), saving the copy and a write buffer that would outgrow the pool's.
const INLINE_BODY: usize = 8 * 1024;
/// Unsent bytes an event-stream subscriber may fall behind before it is dropped.
pub const MAX_STREAM_BACKLOG: usize = 256 * 1024;
/// Requests answered per wake-up before yielding to other connections.
const REQUESTS_PER_WAKE: usize = 32;
/// Bytes written per wake-up before yielding to other connections: one connection holds the
/// loop for one bounded step (a sendfile call, or TLS records), not for a whole large file.
/// A 64 KiB sendfile to a loopback reader costs ~0.2 ms here (benches/load/isolation.py).
pub const BYTES_PER_WAKE: usize = 64 * 1024;
/// How long, and how much, to drain a client's input after our final response.
const LINGER_TIMEOUT: Duration = Duration::from_secs(2);
const LINGER_MAX_BYTES: usize = 1024 * 1024;

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
    pub config: &'a Config,
    pub date: &'a DateCache,
    pub log: &'a mut AccessLog,
    pub buffers: &'a mut BufferPool,
    pub pool: &'a HelperPool,
    pub topics: &'a mut Topics,
    pub now: Instant,
}

/// Which part of a request the connection expects next.
#[derive(Debug)]
enum Reading {
    /// A request head (the buffer may hold part of it).
    Head,
    /// `len` body bytes after the head, which stays at the front of the buffer.
    Body { head: Head, len: usize },
    /// A chunked body after the head, decoded in place.
    Chunked { head: Head, decoder: ChunkedDecoder },
    /// A handler's job runs on the helper pool; the request stays at the front of the buffer
    /// (its response is logged from it; a prepared request is handled again) and later
    /// requests wait, so responses stay in order.
    Waiting(Buffered),
    /// No further requests will be read: the peer finished, or we decided to close.
    Closed,
}

/// A complete request at the front of the read buffer.
#[derive(Clone, Debug)]
struct Buffered {
    head: Head,
    /// Where its (decoded) body is in the buffer.
    body: Range<usize>,
    /// The bytes it takes in the buffer (a chunked body takes more than it decodes to).
    consumed: usize,
}

/// Where the output comes from.
#[derive(Debug)]
enum Writing {
    /// Whatever is in `write_buf` (possibly nothing).
    Buffer,
    /// `write_buf`, then `bytes[range]` (a body shared with the file cache); no later response
    /// may start before it ends.
    Shared {
        bytes: Arc<[u8]>,
        range: Range<usize>,
    },
    /// `write_buf`, then `remaining` bytes of `file` from `offset` (sendfile, or read and
    /// encrypted over TLS), then the `rest` of a multipart body (framing bytes go through
    /// `write_buf`); no later response may start before it ends.
    File {
        file: File,
        offset: u64,
        remaining: u64,
        rest: std::vec::IntoIter<FilePart>,
    },
    /// An endless event stream (see `events`): events are appended as they are published,
    /// as chunks when `chunked`, else until the connection closes (HTTP/1.0). `last_id` is
    /// the id of the last event sent: an event with an id up to it was sent already.
    Stream { chunked: bool, last_id: Option<u64> },
    /// Our side is shut down (FIN sent); input is drained until `until`.
    Lingering { until: Instant, drained: usize },
}

/// A client connection.
#[derive(Debug)]
pub struct Conn {
    pub transport: Transport,
    peer: SocketAddr,
    /// Unique for the life of the server (slab slots are reused).
    pub id: u64,
    /// The slab slot (and poll token) of this connection.
    slot: usize,
    /// The time of this connection's live timer entry, if it has one (see `timers`).
    pub armed: Option<Instant>,
    /// The readiness this socket is registered for.
    pub registered: Interest,
    read_buf: ReadBuf,
    write_buf: Vec<u8>,
    written: usize,
    headers: Vec<HeaderSpan>,
    reading: Reading,
    writing: Writing,
    keep_alive: bool,
    /// Readiness hints: cleared when the socket says `WouldBlock`, set by the loop on events.
    readable: bool,
    writable: bool,
    peer_closed: bool,
    /// The poller reported the peer's FIN (or an error): read until EOF is seen.
    peer_hung_up: bool,
    requests: u64,
    accepted_at: Instant,
    /// When the first byte of the request being read arrived.
    request_started: Option<Instant>,
    last_read: Instant,
    last_write: Instant,
}

impl Conn {
    pub fn new(transport: Transport, peer: SocketAddr, key: TimerKey, now: Instant) -> Conn {
        Conn {
            transport,
            peer,
            id: key.conn_id,
            slot: key.slot,
            armed: None,
            registered: Interest::READABLE,
            read_buf: ReadBuf::empty(),
            write_buf: Vec::new(),
            written: 0,
            headers: Vec::new(),
            reading: Reading::Head,
            writing: Writing::Buffer,
            keep_alive: true,
            // A new socket is writable, and a client usually sends its request at once.
            readable: true,
            writable: true,
            peer_closed: false,
            peer_hung_up: false,
            requests: 0,
            accepted_at: now,
            request_started: None,
            last_read: now,
            last_write: now,
        }
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
        if let Writing::Lingering { .. } = self.writing {
            return Flow::Close; // the linger is over
        }
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
        if let Writing::Stream { .. } = self.writing {
            // An idle stream: a comment line keeps it (and any proxy on the way) alive.
            return self.push_event(None, events::KEEP_ALIVE_COMMENT, ctx);
        }
        match self.reading {
            // Part of a request arrived but not all of it in time (RFC 9110 §15.5.9).
            Reading::Head if !self.read_buf.is_empty() => {
                self.reject(StatusCode::REQUEST_TIMEOUT, ctx)
            }
            Reading::Body { .. } | Reading::Chunked { .. } => {
                self.reject(StatusCode::REQUEST_TIMEOUT, ctx)
            }
            // The job never came back in time; there is no sensible response to send.
            Reading::Waiting(_) => return Flow::Close,
            // Nothing pending: an idle keep-alive connection, or one that never spoke.
            Reading::Head | Reading::Closed => return Flow::Close,
        }
        self.drive(ctx)
    }

    /// Graceful shutdown: finish what is in flight, then close. Idle connections close now;
    /// event streams end with their last chunk.
    pub fn begin_shutdown(&mut self, ctx: &mut Ctx<'_>) -> Flow {
        self.keep_alive = false;
        if let Writing::Stream { chunked, .. } = self.writing {
            if chunked {
                self.output(ctx).extend_from_slice(response::LAST_CHUNK);
            }
            self.writing = Writing::Buffer;
            return self.drive(ctx);
        }
        let idle =
            matches!(self.reading, Reading::Head) && self.read_buf.is_empty() && !self.has_output();
        if idle { Flow::Close } else { Flow::Open }
    }

    /// Whether this connection is an open event stream.
    pub fn is_streaming(&self) -> bool {
        matches!(self.writing, Writing::Stream { .. })
    }

    /// Appends `event` to an open event stream and sends what the socket takes; an event
    /// whose `id` is not past the last one sent was sent already (in the replay) and is
    /// skipped. A subscriber that has not taken the last `MAX_STREAM_BACKLOG` bytes is
    /// dropped: it must not hold memory (or the publisher) hostage; it can reconnect with
    /// `Last-Event-ID`.
    pub fn push_event(&mut self, id: Option<u64>, event: &[u8], ctx: &mut Ctx<'_>) -> Flow {
        let Writing::Stream { chunked, last_id } = &mut self.writing else {
            return Flow::Open;
        };
        let chunked = *chunked;
        if let Some(id) = id {
            if last_id.is_some_and(|last| id <= last) {
                return Flow::Open;
            }
            *last_id = Some(id);
        }
        if self.unsent() > MAX_STREAM_BACKLOG {
            return Flow::Close;
        }
        let out = self.output(ctx);
        if chunked {
            response::encode_chunk(out, event);
        } else {
            out.extend_from_slice(event);
        }
        self.drive(ctx)
    }

    /// When the loop must look at this connection again if the socket stays quiet.
    pub fn deadline(&self, config: &Config) -> Instant {
        if let Writing::Lingering { until, .. } = self.writing {
            return until;
        }
        if self.has_output() {
            return self.last_write + config.write_timeout;
        }
        if let Writing::Stream { .. } = self.writing {
            return self.last_write + config.sse_heartbeat;
        }
        match (&self.reading, self.request_started) {
            (Reading::Head, Some(started)) => started + config.header_timeout,
            (Reading::Head, None) if self.requests == 0 => self.accepted_at + config.header_timeout,
            (Reading::Head, None) => self.last_write + config.keep_alive_timeout,
            (Reading::Body { .. } | Reading::Chunked { .. }, _) => {
                self.last_read + config.body_timeout
            }
            (Reading::Waiting(_) | Reading::Closed, _) => {
                self.last_read.max(self.last_write) + config.write_timeout
            }
        }
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
        self.written < self.write_buf.len()
            || matches!(self.writing, Writing::File { .. } | Writing::Shared { .. })
            || self.transport.has_pending()
    }

    /// Whether to stop producing responses until the client reads some.
    fn output_backed_up(&self) -> bool {
        self.unsent() > OUTPUT_HIGH_WATER
            || matches!(
                self.writing,
                Writing::File { .. } | Writing::Shared { .. } | Writing::Stream { .. }
            )
    }

    /// Bytes queued in the write buffer and not yet written.
    fn unsent(&self) -> usize {
        self.write_buf.len() - self.written
    }

    // ---- step 1: read -------------------------------------------------------------------

    /// Reads until `WouldBlock`, the buffer limit, or EOF. Returns whether bytes arrived.
    fn read(&mut self, ctx: &mut Ctx<'_>) -> io::Result<bool> {
        if !self.readable || self.peer_closed {
            return Ok(false);
        }
        if let Writing::Lingering { .. } | Writing::Stream { .. } = self.writing {
            return self.discard_input();
        }
        if matches!(self.reading, Reading::Closed) || self.output_backed_up() {
            return Ok(false);
        }
        if self.read_buf.capacity() == 0 {
            self.read_buf = ctx.buffers.take_read();
        }
        let limit = self.read_limit(ctx.config);
        let mut arrived = false;
        loop {
            let filled = match self.read_buf.fill_from(&mut self.transport, limit) {
                Ok(filled) => filled,
                Err(error) if transport::is_plain_http(&error) => {
                    self.answer_plain_http(ctx);
                    return Ok(true);
                }
                Err(error) => return Err(error),
            };
            match filled {
                Filled::Bytes { short, .. } => {
                    arrived = true;
                    self.last_read = ctx.now;
                    if self.request_started.is_none() && matches!(self.reading, Reading::Head) {
                        self.request_started = Some(ctx.now);
                    }
                    // A short read drained the socket: skip the read that would only say
                    // WouldBlock (a syscall per request). Edge-triggered epoll reports any
                    // later bytes; a FIN that already came is flagged on the event instead.
                    if short && !self.peer_hung_up && !self.transport.eof_pending() {
                        self.readable = false;
                        return Ok(true);
                    }
                }
                Filled::Eof => {
                    self.peer_closed = true;
                    return Ok(true);
                }
                Filled::WouldBlock => {
                    self.readable = false;
                    return Ok(arrived);
                }
                // Process what is here first; the readable hint stays set for later.
                Filled::Full => return Ok(arrived),
            }
        }
    }

    /// How far the read buffer may grow for the request being read.
    fn read_limit(&self, config: &Config) -> usize {
        match &self.reading {
            // One byte past the head limit, so that "too large" can be seen.
            Reading::Head => config.max_head_bytes + 1,
            Reading::Body { head, len } => head.len + len,
            Reading::Chunked { head, .. } => {
                let max_body = usize::try_from(config.max_body_bytes).unwrap_or(usize::MAX);
                head.len
                    .saturating_add(max_body)
                    .saturating_add(chunked::MAX_LINE_BYTES + chunked::MAX_TRAILER_BYTES)
            }
            Reading::Waiting(_) | Reading::Closed => 0,
        }
        .max(READ_BUF_BASELINE)
    }

    /// Reads and discards input after our final response, so that closing sends a FIN rather
    /// than a reset. Returns whether anything happened.
    /// Reads and discards input: after our final response (lingering, bounded), or from a
    /// client that has an event stream open (whose only input should be its FIN).
    fn discard_input(&mut self) -> io::Result<bool> {
        let mut any = false;
        let mut scratch = [0; 4096];
        loop {
            match self.transport.read(&mut scratch) {
                Ok(0) => {
                    self.peer_closed = true;
                    return Ok(true);
                }
                Ok(n) => {
                    any = true;
                    if let Writing::Lingering { drained, .. } = &mut self.writing {
                        *drained += n;
                        if *drained > LINGER_MAX_BYTES {
                            return Err(io::ErrorKind::InvalidData.into());
                        }
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

    /// Answers every complete request in the buffer, in order, within `budget`. Returns whether
    /// any state changed.
    fn process(&mut self, ctx: &mut Ctx<'_>, budget: &mut usize) -> bool {
        let mut changed = false;
        while *budget > 0 && !self.output_backed_up() {
            let step = match &mut self.reading {
                Reading::Waiting(_) | Reading::Closed => break,
                Reading::Head => None,
                Reading::Body { head, len } => {
                    let (head, len) = (*head, *len);
                    Some(if self.read_buf.len() >= head.len + len {
                        Step::Complete {
                            head,
                            body: head.len..head.len + len,
                            consumed: head.len + len,
                        }
                    } else {
                        Step::NeedMore
                    })
                }
                Reading::Chunked { head, decoder } => {
                    let head = *head;
                    Some(
                        match decoder.decode(&mut self.read_buf.data_mut()[head.len..]) {
                            Ok(true) => Step::Complete {
                                head,
                                body: head.len..head.len + decoder.decoded(),
                                consumed: head.len + decoder.consumed(),
                            },
                            Ok(false) => Step::NeedMore,
                            Err(ChunkedError::Invalid(_)) => Step::Reject(StatusCode::BAD_REQUEST),
                            Err(ChunkedError::TooLarge) => {
                                Step::Reject(StatusCode::CONTENT_TOO_LARGE)
                            }
                        },
                    )
                }
            };
            let step = match step {
                Some(step) => step,
                None => self.parse_head(ctx),
            };
            match step {
                Step::NeedMore => {
                    if self.peer_closed {
                        // The rest of this request will never come.
                        self.reading = Reading::Closed;
                        changed = true;
                    }
                    break;
                }
                Step::Continue => changed = true,
                Step::Reject(status) => {
                    self.reject(status, ctx);
                    return true;
                }
                Step::Complete {
                    head,
                    body,
                    consumed,
                } => {
                    *budget -= 1;
                    let request = Buffered {
                        head,
                        body,
                        consumed,
                    };
                    self.respond(request, false, ctx);
                    changed = true;
                }
            }
        }
        changed
    }

    /// Tries to parse a head from the buffer and decides how its body is framed.
    fn parse_head(&mut self, ctx: &mut Ctx<'_>) -> Step {
        if self.read_buf.is_empty() {
            return Step::NeedMore;
        }
        let limits = ctx.config.parse_limits();
        let head = match parse::parse_head(self.read_buf.data(), &limits, &mut self.headers) {
            Ok(Some(head)) => head,
            Ok(None) => return Step::NeedMore,
            Err(error) => return Step::Reject(error.status()),
        };
        let body_started = self.read_buf.len() > head.len;
        match head.framing {
            Framing::Empty => Step::Complete {
                head,
                body: head.len..head.len,
                consumed: head.len,
            },
            Framing::Length(len) => {
                // `parse_head` enforced the body limit, so the length fits in memory.
                let Ok(len) = usize::try_from(len) else {
                    return Step::Reject(ParseError::BodyTooLarge.status());
                };
                self.expect_continue(&head, body_started, ctx);
                self.reading = Reading::Body { head, len };
                Step::Continue
            }
            Framing::Chunked => {
                self.expect_continue(&head, body_started, ctx);
                let decoder = ChunkedDecoder::new(ctx.config.max_body_bytes);
                self.reading = Reading::Chunked { head, decoder };
                Step::Continue
            }
        }
    }

    /// RFC 9110 §10.1.1: tell a client waiting for `100 Continue` to send its body, unless the
    /// body is already on its way.
    fn expect_continue(&mut self, head: &Head, body_started: bool, ctx: &mut Ctx<'_>) {
        if head.expect_continue && !body_started {
            self.output(ctx).extend_from_slice(response::CONTINUE);
        }
    }

    /// The write buffer, taken from the pool if the connection gave it back while idle.
    fn output(&mut self, ctx: &mut Ctx<'_>) -> &mut Vec<u8> {
        if self.write_buf.capacity() == 0 {
            self.write_buf = ctx.buffers.take_write();
        }
        &mut self.write_buf
    }

    /// Calls the app for the complete request at the front of the buffer (`prepared`: again,
    /// after the job it asked for) and acts on its reply.
    fn respond(&mut self, buffered: Buffered, prepared: bool, ctx: &mut Ctx<'_>) {
        let data = self.read_buf.data();
        let secure = self.transport.is_secure();
        let Some(request) = Request::new(
            &buffered.head,
            &data[..buffered.head.len],
            &self.headers,
            &data[buffered.body.clone()],
            self.peer,
            secure,
        ) else {
            self.reject(StatusCode::BAD_REQUEST, ctx);
            return;
        };
        let request = if prepared {
            request.prepared_again()
        } else {
            request
        };
        // A panicking handler costs its own request a 500, nothing more.
        let reply =
            catch_unwind(AssertUnwindSafe(|| ctx.app.handle(&request))).unwrap_or_else(|_| {
                Reply::Now(ctx.app.error_for_path(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Some(request.path()),
                    secure,
                ))
            });
        self.keep_alive &= buffered.head.keep_alive;
        let reply = match reply {
            // Prepared once already: the handler must answer now (a bug if it does not).
            Reply::Prepare(_) if prepared => Reply::Now(ctx.app.error_for_path(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(request.path()),
                secure,
            )),
            reply => reply,
        };
        self.act_on(reply, buffered, ctx);
    }

    /// Queues the response, opens the stream, or hands the job to the helper pool (the
    /// request then waits at the front of the buffer).
    fn act_on(&mut self, reply: Reply, buffered: Buffered, ctx: &mut Ctx<'_>) {
        let version = buffered.head.version;
        let is_head = buffered.head.method.of(self.read_buf.data()) == b"HEAD";
        match reply {
            Reply::Now(response) => {
                self.log(&buffered, &response, is_head, ctx);
                self.finish_request(&buffered, ctx);
                self.reading = self.reading_after_response();
                self.queue(response, is_head, version, ctx);
            }
            Reply::Stream(stream) => {
                self.log(&buffered, &stream.response, true, ctx);
                self.finish_request(&buffered, ctx);
                // Pipelined bytes after a stream request can never be answered.
                self.read_buf.clear();
                self.request_started = None;
                self.reading = self.start_stream(stream, is_head, version, ctx);
            }
            Reply::Later(job) => self.wait_for(job, buffered, ctx),
            Reply::Prepare(work) => {
                let job: Job = Box::new(move |responder: Responder| {
                    work();
                    responder.retry();
                });
                self.wait_for(job, buffered, ctx);
            }
        }
    }

    /// Hands `job` to the helper pool; the connection waits for its outcome.
    fn wait_for(&mut self, job: Job, buffered: Buffered, ctx: &mut Ctx<'_>) {
        let key = TimerKey {
            slot: self.slot,
            conn_id: self.id,
        };
        ctx.pool.submit(key, job);
        self.reading = Reading::Waiting(buffered);
    }

    /// Drops an answered request from the buffer.
    fn finish_request(&mut self, buffered: &Buffered, ctx: &Ctx<'_>) {
        self.read_buf.consume(buffered.consumed);
        self.requests += 1;
        self.request_started = (!self.read_buf.is_empty()).then_some(ctx.now);
    }

    /// Appends the access-log line for the request at the front of the buffer.
    fn log(&self, buffered: &Buffered, response: &Response, is_head: bool, ctx: &mut Ctx<'_>) {
        let data = self.read_buf.data();
        let text = |span: parse::Span| std::str::from_utf8(span.of(data)).unwrap_or("-");
        let line = RequestLine {
            method: text(buffered.head.method),
            target: text(buffered.head.target),
            version: buffered.head.version.as_str(),
        };
        let bytes = if is_head { 0 } else { response.body().len() };
        ctx.log.record(
            self.peer.ip(),
            ctx.date,
            Some(line),
            response.status(),
            bytes,
        );
    }

    /// Sends the head of an event stream and its replay, catches up on events published
    /// since the replay was read (from the topic's recent history), and subscribes to its
    /// topic. The stream is endless: no later request on this connection is read. HEAD gets
    /// the head only. Returns what to read next.
    fn start_stream(
        &mut self,
        stream: EventStream,
        is_head: bool,
        version: Version,
        ctx: &mut Ctx<'_>,
    ) -> Reading {
        let EventStream {
            topic,
            response,
            replay,
            last_id,
        } = stream;
        let (status, headers, _) = response.into_parts();
        let chunked = version == Version::Http11;
        let framing = if chunked {
            BodyFraming::Chunked
        } else {
            BodyFraming::UntilClose
        };
        if !chunked {
            self.keep_alive = false;
        }
        let connection = if chunked {
            ConnectionHeader::Omit
        } else {
            ConnectionHeader::Close
        };
        let out = self.output(ctx);
        response::encode_head(
            out,
            status,
            &headers,
            framing,
            ctx.date.imf_fixdate(),
            connection,
        );
        if is_head {
            return self.reading_after_response();
        }
        // Events published between reading the replay and now: the topic still has them,
        // unless so many came that it forgot some (then the stream ends, and the client
        // resumes from its last id).
        let catch_up = match last_id {
            Some(after) => ctx.topics.recent_after(&topic, after),
            None => Some(Vec::new()),
        };
        let out = self.output(ctx);
        let mut events = replay;
        let mut last_id = last_id;
        for (id, event) in catch_up.iter().flatten() {
            events.extend_from_slice(event);
            last_id = Some(*id);
        }
        if chunked {
            response::encode_chunk(out, &events);
        } else {
            out.extend_from_slice(&events);
        }
        if catch_up.is_none() {
            if chunked {
                out.extend_from_slice(response::LAST_CHUNK);
            }
            self.keep_alive = false;
            return Reading::Closed;
        }
        self.writing = Writing::Stream { chunked, last_id };
        ctx.topics.subscribe(
            &topic,
            TimerKey {
                slot: self.slot,
                conn_id: self.id,
            },
        );
        Reading::Closed
    }

    /// What to read once a response is queued: the next request, or nothing if the
    /// connection ends with this response.
    fn reading_after_response(&self) -> Reading {
        if self.keep_alive {
            Reading::Head
        } else {
            Reading::Closed
        }
    }

    /// A job finished: send its response (or open its stream, or handle the request again)
    /// and go on with the next request.
    pub fn on_job_done(&mut self, outcome: Outcome, ctx: &mut Ctx<'_>) -> Flow {
        let Reading::Waiting(buffered) = std::mem::replace(&mut self.reading, Reading::Closed)
        else {
            unreachable!(
                "a job finished for a connection not waiting: {:?}",
                self.reading
            );
        };
        match outcome {
            Outcome::Response(response) => self.act_on(Reply::Now(response), buffered, ctx),
            Outcome::Stream(stream) => self.act_on(Reply::Stream(stream), buffered, ctx),
            Outcome::Retry => self.respond(buffered, true, ctx),
        }
        self.drive(ctx)
    }

    /// Answers a request that cannot be processed with `status`, then closes (RFC 9112 §6.3:
    /// after a framing error the rest of the stream cannot be trusted).
    fn reject(&mut self, status: StatusCode, ctx: &mut Ctx<'_>) {
        // The path, if the request line got that far, decides the error's format.
        let path = parse::request_path(self.read_buf.data());
        let response = ctx
            .app
            .error_for_path(status, path, self.transport.is_secure());
        self.answer_and_close(response, ctx);
    }

    /// A client sent plain HTTP to the TLS port: say so in plain HTTP (as nginx does) rather
    /// than with a TLS alert it cannot read, then close.
    fn answer_plain_http(&mut self, ctx: &mut Ctx<'_>) {
        self.transport.drop_tls();
        let response = Response::text(
            StatusCode::BAD_REQUEST,
            "400 Bad Request: this port speaks HTTPS, use an https:// URL\n",
        );
        self.answer_and_close(response, ctx);
    }

    /// Queues `response` as the last one on this connection and logs it.
    fn answer_and_close(&mut self, response: Response, ctx: &mut Ctx<'_>) {
        self.keep_alive = false;
        self.reading = Reading::Closed;
        ctx.log.record(
            self.peer.ip(),
            ctx.date,
            None,
            response.status(),
            response.body().len(),
        );
        self.queue(response, false, Version::Http11, ctx);
    }

    /// Encodes `response` into the write buffer; a large file body becomes a stream.
    fn queue(&mut self, response: Response, is_head: bool, version: Version, ctx: &mut Ctx<'_>) {
        let (status, headers, body) = response.into_parts();
        let connection = match (self.keep_alive, version) {
            (false, _) => ConnectionHeader::Close,
            (true, Version::Http10) => ConnectionHeader::KeepAlive,
            (true, Version::Http11) => ConnectionHeader::Omit,
        };
        let len = body.len();
        response::encode_head(
            self.output(ctx),
            status,
            &headers,
            BodyFraming::Length(len),
            ctx.date.imf_fixdate(),
            connection,
        );
        if is_head || !status.allows_body() {
            return;
        }
        match body {
            Body::Empty => {}
            Body::Bytes(bytes) => self.write_buf.extend_from_slice(&bytes),
            Body::Shared { bytes, range } if range.len() <= INLINE_BODY => {
                self.write_buf.extend_from_slice(&bytes[range]);
            }
            // Larger: written straight from the cache, no copy.
            Body::Shared { bytes, range } => self.writing = Writing::Shared { bytes, range },
            // Small: behind the head, one write for both.
            Body::File { file, offset, len } if len <= FILE_CHUNK as u64 => {
                if !append_from_file(&mut self.write_buf, &file, offset, len) {
                    self.abort_after_flush();
                }
            }
            Body::File { file, offset, len } => {
                self.writing = Writing::File {
                    file,
                    offset,
                    remaining: len,
                    rest: Vec::new().into_iter(),
                }
            }
            Body::FileParts { file, parts } => {
                self.writing = Writing::File {
                    file,
                    offset: 0,
                    remaining: 0,
                    rest: parts.into_iter(),
                };
                self.next_file_part();
            }
        }
    }

    /// Moves a file body on once its current range is sent: framing bytes between ranges go
    /// to the write buffer, the next range becomes current; with none left the body is done.
    fn next_file_part(&mut self) {
        let Writing::File {
            offset,
            remaining,
            rest,
            ..
        } = &mut self.writing
        else {
            return;
        };
        while *remaining == 0 {
            match rest.next() {
                Some(FilePart::Bytes(bytes)) => self.write_buf.extend_from_slice(&bytes),
                Some(FilePart::Range(range)) => {
                    *offset = range.start;
                    *remaining = range.end.saturating_sub(range.start);
                }
                None => {
                    self.writing = Writing::Buffer;
                    return;
                }
            }
        }
    }

    /// The promised body cannot be delivered (the file shrank or failed): send what we have and
    /// close, so the client sees a truncated message rather than a misframed one.
    fn abort_after_flush(&mut self) {
        self.keep_alive = false;
        self.reading = Reading::Closed;
        self.writing = Writing::Buffer;
    }

    // ---- step 3: flush ------------------------------------------------------------------

    /// Writes until the output is gone or the socket is full: TLS records already encrypted,
    /// then the write buffer, then a body shared from the file cache (in the same writev as
    /// the head) or a file (sendfile, the head sent with MSG_MORE so it shares a segment with
    /// the first file bytes). Stops when `budget` bytes are written (see [`BYTES_PER_WAKE`]).
    /// Returns whether any byte was written.
    fn flush(&mut self, ctx: &mut Ctx<'_>, budget: &mut usize) -> io::Result<bool> {
        let mut wrote = false;
        while self.writable && *budget > 0 {
            // Records first: TLS takes no more plaintext while they wait.
            match self.transport.send_pending() {
                Ok(0) => {}
                Ok(n) => {
                    *budget = budget.saturating_sub(n);
                    self.last_write = ctx.now;
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
            let result = if self.written < self.write_buf.len() {
                let head = &self.write_buf[self.written..];
                match &self.writing {
                    Writing::Shared { bytes, range } => self
                        .transport
                        .write_vectored(&[IoSlice::new(head), IoSlice::new(&bytes[range.clone()])]),
                    Writing::File { .. } => self.transport.write_before_file(head),
                    _ => self.transport.write(head),
                }
            } else {
                self.write_buf.clear();
                self.written = 0;
                match &mut self.writing {
                    Writing::Shared { bytes, range } => self.transport.write(&bytes[range.clone()]),
                    Writing::File {
                        file,
                        offset,
                        remaining,
                        ..
                    } => {
                        let len = usize::try_from(*remaining)
                            .unwrap_or(usize::MAX)
                            .min(*budget);
                        self.transport.send_file(file, offset, len, ctx.buffers)
                    }
                    // Only TLS records may be left; the next turn sends them.
                    _ if self.transport.has_pending() => continue,
                    _ => break,
                }
            };
            match result {
                // A socket takes nothing only if it is broken; a file gives nothing if it
                // shrank: end the message visibly truncated.
                Ok(0)
                    if matches!(self.writing, Writing::File { .. })
                        && self.written == self.write_buf.len() =>
                {
                    self.abort_after_flush();
                }
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.advance(n);
                    *budget = budget.saturating_sub(n);
                    self.last_write = ctx.now;
                    wrote = true;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(wrote)
    }

    /// Accounts `n` written bytes: the write buffer's first, then the body's.
    fn advance(&mut self, n: usize) {
        let from_buffer = n.min(self.unsent());
        self.written += from_buffer;
        let from_body = n - from_buffer;
        if from_body == 0 {
            return;
        }
        match &mut self.writing {
            Writing::Shared { range, .. } => {
                range.start += from_body;
                if range.start >= range.end {
                    self.writing = Writing::Buffer;
                }
            }
            // send_file moved `offset` itself.
            Writing::File { remaining, .. } => {
                *remaining = remaining.saturating_sub(from_body as u64);
                self.next_file_part();
            }
            _ => {}
        }
    }

    /// After the three steps: decides whether the connection lives on, lingers, or closes.
    fn settle(&mut self, ctx: &mut Ctx<'_>) -> Flow {
        if self.has_output() {
            return Flow::Open;
        }
        if let Writing::Lingering { .. } = self.writing {
            return if self.peer_closed {
                Flow::Close
            } else {
                Flow::Open
            };
        }
        if let Reading::Waiting(_) = self.reading {
            // A half-closed client still gets the response its job is computing.
            return Flow::Open;
        }
        if let Writing::Stream { .. } = self.writing {
            if self.peer_closed {
                return Flow::Close;
            }
            self.release_idle_buffers(ctx.buffers);
            return Flow::Open;
        }
        if !self.keep_alive && matches!(self.reading, Reading::Head) && self.read_buf.is_empty() {
            // Shutting down between requests.
            self.reading = Reading::Closed;
        }
        if !matches!(self.reading, Reading::Closed) {
            if self.peer_closed && self.read_buf.is_empty() {
                return Flow::Close;
            }
            self.release_idle_buffers(ctx.buffers);
            return Flow::Open;
        }
        // No further response will be produced.
        if self.peer_closed {
            return Flow::Close;
        }
        match self.transport.shutdown_write() {
            Ok(()) => {}
            // TLS's close_notify waits for the socket; the next turn sends it and shuts down.
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                self.writable = false;
                return Flow::Open;
            }
            Err(_) => return Flow::Close,
        }
        // Unread input is discarded from now on; the buffers are not needed any more.
        self.read_buf.clear();
        self.release_idle_buffers(ctx.buffers);
        self.writing = Writing::Lingering {
            until: ctx.now + LINGER_TIMEOUT,
            drained: 0,
        };
        self.readable = true;
        match self.discard_input() {
            Ok(_) if !self.peer_closed => Flow::Open,
            _ => Flow::Close,
        }
    }

    /// Between requests a connection needs no buffers: give them to the pool.
    fn release_idle_buffers(&mut self, pool: &mut BufferPool) {
        if self.read_buf.is_empty() {
            pool.give_read(std::mem::replace(&mut self.read_buf, ReadBuf::empty()));
        }
        if !self.has_output() {
            pool.give_write(std::mem::take(&mut self.write_buf));
            self.written = 0;
        }
    }

    /// Hands the buffers back when the connection closes.
    pub fn recycle(self, pool: &mut BufferPool) {
        pool.give_read(self.read_buf);
        pool.give_write(self.write_buf);
    }
}

/// The outcome of looking at the buffered input once.
enum Step {
    NeedMore,
    /// The state advanced (head parsed, waiting for its body); look again.
    Continue,
    /// A whole request: its head, the body's range in the buffer, and the bytes it took.
    Complete {
        head: Head,
        body: std::ops::Range<usize>,
        consumed: usize,
    },
    Reject(StatusCode),
}

/// Appends exactly `len` bytes of `file` from `offset` to `buf`; false if the file ended early
/// or failed.
fn append_from_file(buf: &mut Vec<u8>, file: &File, offset: u64, len: u64) -> bool {
    let start = buf.len();
    let Ok(len) = usize::try_from(len) else {
        return false;
    };
    buf.resize(start + len, 0);
    let read = file.read_exact_at(&mut buf[start..], offset).is_ok();
    if !read {
        buf.truncate(start);
    }
    read
}
