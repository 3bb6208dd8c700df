//! One HTTP/1.1 connection as a state machine with no I/O: bytes in, requests out, responses
//! in, bytes and file slices out, deadlines reported (RFC 9112 §9).
//!
//! Its caller (`server::conn` for a socket, the tests below for a script) moves the bytes and
//! answers the requests, in four steps it repeats while any of them makes progress:
//!
//! 1. **receive**: [`Conn::wants_input`] says what to read (request bytes, bytes to discard, or
//!    nothing yet); [`Conn::read_space`] lends room in the input buffer, [`Conn::received`]
//!    takes what was put there, [`Conn::received_eof`] the end of the input.
//! 2. **dispatch**: [`Conn::next`] parses what is buffered and hands out one complete request,
//!    or a rejection (a status for input that cannot be processed). The caller answers it
//!    before asking for the next: [`Conn::respond`], [`Conn::defer`] (a helper thread computes
//!    the answer; later requests wait in the buffer, so responses stay in order), or
//!    [`Conn::open_stream`]. Pipelining falls out of this loop.
//! 3. **send**: [`Conn::output`] is what goes out next: encoded bytes, then a slice of a body
//!    that is sent from where it lies (shared with the file cache, or an open file);
//!    [`Conn::sent`] reports how much the socket took.
//! 4. **settle**: with nothing left to send, [`Conn::settle`] says whether to wait, to shut
//!    down our side of the connection (then [`Conn::linger`]), or to close.
//!
//! Where the connection is lives in one [`Phase`] plus `keep_alive` (which only ever goes from
//! true to false). Every change of phase is a named method; a call that makes no sense in the
//! current phase is a bug in the caller and panics with the phase printed. Time comes in as
//! `now`; [`Conn::deadline`] says when the caller must call [`Conn::on_deadline`] if nothing
//! happens before.
//!
//! When the connection ends after a response (the client asked, a parse error, shutdown), our
//! side is shut down once everything is sent and the input is drained for a moment ("lingering
//! close"): closing with unread input would send a reset that can destroy the response before
//! the client reads it.

use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Duration, Instant};

use crate::http::buffers::{BufferPool, READ_BUF_BASELINE};
use crate::http::chunked::{self, ChunkedDecoder, ChunkedError};
use crate::http::date::DateCache;
use crate::http::parse::{self, Framing, Head, HeaderSpan, ParseError, ParseLimits, Version};
use crate::http::read_buf::ReadBuf;
use crate::http::request::Request;
use crate::http::response::{self, Body, BodyFraming, BodySlice, ConnectionHeader, Response};
use crate::http::status::StatusCode;

/// Stop answering pipelined requests while this much output is waiting.
const OUTPUT_HIGH_WATER: usize = 64 * 1024;
/// Bodies up to this size are copied behind their head; larger shared ones are sent from the
/// cache (writev), saving the copy and a write buffer that would outgrow the pool's.
const INLINE_BODY: usize = 8 * 1024;
/// Unsent bytes an event-stream subscriber may fall behind before it is dropped.
pub const MAX_STREAM_BACKLOG: usize = 256 * 1024;
/// How long, and how much, to drain a client's input after our final response.
pub const LINGER_TIMEOUT: Duration = Duration::from_secs(2);
pub const LINGER_MAX_BYTES: usize = 1024 * 1024;

/// The limits and timeouts every connection keeps (from the server's configuration).
#[derive(Clone, Debug)]
pub struct Settings {
    pub limits: ParseLimits,
    /// For a whole head, from its first byte (or from accept, for a new connection).
    pub header_timeout: Duration,
    /// For the next byte of a body.
    pub body_timeout: Duration,
    /// Between requests.
    pub keep_alive_timeout: Duration,
    /// For the client to take some of our output.
    pub write_timeout: Duration,
    /// Silence on an event stream before a comment line keeps it alive.
    pub sse_heartbeat: Duration,
}

/// What a call borrows from the caller: the time, the settings, the cached `Date`, and the pool
/// the buffers come from (and go back to while the connection is idle).
pub struct Env<'a> {
    pub now: Instant,
    pub settings: &'a Settings,
    pub date: &'a DateCache,
    pub buffers: &'a mut BufferPool,
}

/// Where the connection is. See the module docs.
#[derive(Debug)]
enum Phase {
    /// Expecting a request head; the buffer holds part of one, or nothing (idle).
    Head,
    /// `len` body bytes after the head, which stays at the front of the buffer.
    Body { head: Head, len: usize },
    /// A chunked body after the head, decoded in place.
    Chunked { head: Head, decoder: ChunkedDecoder },
    /// [`Conn::next`] handed out this request; the caller has not answered it yet.
    Dispatched(Buffered),
    /// A helper computes the answer to this request ([`Conn::defer`]); it stays at the front of
    /// the buffer, and the requests behind it wait.
    Waiting(Buffered),
    /// [`Conn::next`] (or a deadline) rejected the input; the error response, the last one on
    /// this connection, is due.
    Rejected,
    /// The rest of a body that goes out before anything else (a shared or file body).
    Sending(Body),
    /// An endless event stream: events are appended as they are published, as chunks when
    /// `chunked`, else until the connection closes (HTTP/1.0). An event with an id up to
    /// `last_id` was sent already.
    Streaming { chunked: bool, last_id: Option<u64> },
    /// The last response is queued: once it is sent, our side shuts down.
    Closing,
    /// Our side is shut down (FIN sent); input is drained until `until`.
    Lingering { until: Instant, drained: usize },
    /// Nothing more will happen: the caller drops the connection.
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

/// What a connection is doing (see [`Conn::activity`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activity {
    /// Kept alive between requests, nothing buffered either way.
    Idle,
    /// Part of a request (head or body) has arrived.
    Reading,
    /// A helper is computing the answer.
    Waiting,
    /// A response is going out (or the connection is closing after one).
    Writing,
    /// An event stream is open.
    Streaming,
}

/// What [`Conn::wants_input`] asks the caller to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// Request bytes, into [`Conn::read_space`].
    Request,
    /// Bytes to throw away ([`Conn::discarded`]): after our last response, or from a client
    /// whose event stream is open (its only input should be its FIN).
    Discard,
    /// Nothing now: the output must drain first, or no request will be read again.
    Nothing,
}

/// What [`Conn::next`] found in the buffer.
// `Request` is a view of borrowed slices, handed out once per request: boxing it to shrink the
// enum would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Next<'a> {
    /// A complete request, to be answered with [`Conn::respond`], [`Conn::defer`] or
    /// [`Conn::open_stream`].
    Request(Request<'a>),
    /// Input that cannot be processed: answer with [`Conn::respond`] (an error response for
    /// `status`); the connection closes after it.
    Reject(Rejection<'a>),
    /// Nothing to answer now; `advanced` if the state moved on anyway (a head was parsed and
    /// its body is awaited), which may let the caller read more.
    Nothing { advanced: bool },
}

/// A request the connection will not process, and why.
#[derive(Debug, PartialEq, Eq)]
pub struct Rejection<'a> {
    pub status: StatusCode,
    /// The request's path, if its request line got that far (it decides the error's format).
    pub path: Option<&'a str>,
}

/// What the access log records about one answered request.
#[derive(Debug)]
pub struct Exchange<'a> {
    /// `None` for input that was not a request (rejected before it was parsed).
    pub request: Option<RequestLine<'a>>,
    pub status: StatusCode,
    /// Body bytes sent (0 for HEAD and event streams).
    pub body_bytes: u64,
    /// From the request's first byte to its response, on the caller's clock (`Env::now`, which
    /// the server reads once per loop tick: a request answered in the tick that read it took 0).
    pub duration: Duration,
}

/// The request as logged: its request line, and its header fields for the formats that show
/// some. Method and target are the bytes the parser accepted (ASCII): a log format that needs
/// text converts them, the others copy them as they are.
pub struct RequestLine<'a> {
    pub method: &'a [u8],
    pub target: &'a [u8],
    pub version: &'a str,
    pub fields: HeaderFields<'a>,
}

impl std::fmt::Debug for RequestLine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLine")
            .field("method", &String::from_utf8_lossy(self.method))
            .field("target", &String::from_utf8_lossy(self.target))
            .field("version", &self.version)
            .field("fields", &self.fields)
            .finish()
    }
}

/// A request's header fields, looked up by name only when asked (the common log format never
/// does).
#[derive(Clone, Copy)]
pub struct HeaderFields<'a> {
    head: &'a [u8],
    spans: &'a [HeaderSpan],
}

impl<'a> HeaderFields<'a> {
    /// The fields `spans` locates in `head`, the request head they were parsed from.
    pub fn new(head: &'a [u8], spans: &'a [HeaderSpan]) -> HeaderFields<'a> {
        HeaderFields { head, spans }
    }

    /// The value of the first field named `name` (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        let head = self.head;
        self.spans
            .iter()
            .find(|field| field.name.of(head).eq_ignore_ascii_case(name.as_bytes()))
            .map(|field| field.value.of(head))
    }
}

impl std::fmt::Debug for HeaderFields<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        f.debug_map()
            .entries(self.spans.iter().map(|field| {
                (
                    text(field.name.of(self.head)),
                    text(field.value.of(self.head)),
                )
            }))
            .finish()
    }
}

/// What to send next: `bytes`, then the `body` slice (see [`Conn::output`]).
#[derive(Debug)]
pub struct Output<'a> {
    pub bytes: &'a [u8],
    pub body: Option<BodySlice<'a>>,
}

/// What [`Conn::push_event`] did with an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Queued for sending.
    Queued,
    /// Not queued: no stream is open, or the event was sent already (its id is not new).
    Skipped,
    /// The client has not taken the last [`MAX_STREAM_BACKLOG`] bytes: drop the connection,
    /// it must not hold memory (or the publisher) hostage; it can reconnect with
    /// `Last-Event-ID`.
    TooFarBehind,
}

/// What the caller does once everything is sent ([`Conn::settle`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Settle {
    /// Wait for input, a helper's answer, events to publish, or the deadline.
    Wait,
    /// Shut down our sending side, then call [`Conn::linger`].
    ShutDownWrite,
    /// Close the connection.
    Close,
}

/// What to do when the deadline passed ([`Conn::on_deadline`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Expired<'a> {
    Close,
    /// An idle event stream: push a comment line to keep it (and any proxy on the way) alive.
    Heartbeat,
    /// Part of a request arrived but not all of it in time (RFC 9110 §15.5.9): answer the
    /// rejection as one from [`Conn::next`].
    Reject(Rejection<'a>),
}

/// The input is more than a lingering close is willing to drain.
#[derive(Debug, PartialEq, Eq)]
pub struct TooMuchInput;

/// One client connection's HTTP state. See the module docs.
#[derive(Debug)]
pub struct Conn {
    phase: Phase,
    /// Whether the connection may carry another request after the current one.
    keep_alive: bool,
    peer: SocketAddr,
    /// Requests arrive over TLS.
    secure: bool,
    read_buf: ReadBuf,
    headers: Vec<HeaderSpan>,
    write_buf: Vec<u8>,
    /// How much of `write_buf` is sent.
    written: usize,
    /// The client finished sending (EOF).
    peer_closed: bool,
    /// Requests answered.
    requests: u64,
    accepted_at: Instant,
    /// When the first byte of the request being read arrived.
    request_started: Option<Instant>,
    last_read: Instant,
    last_write: Instant,
}

impl Conn {
    /// A connection accepted at `now` from `peer`.
    pub fn new(peer: SocketAddr, secure: bool, now: Instant) -> Conn {
        Conn {
            phase: Phase::Head,
            keep_alive: true,
            peer,
            secure,
            read_buf: ReadBuf::empty(),
            headers: Vec::new(),
            write_buf: Vec::new(),
            written: 0,
            peer_closed: false,
            requests: 0,
            accepted_at: now,
            request_started: None,
            last_read: now,
            last_write: now,
        }
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Whether an event stream is open.
    pub fn is_streaming(&self) -> bool {
        matches!(self.phase, Phase::Streaming { .. })
    }

    /// What the connection is doing, in the few words an operator counts connections by.
    pub fn activity(&self) -> Activity {
        match self.phase {
            Phase::Head if self.read_buf.is_empty() && !self.has_output() => Activity::Idle,
            Phase::Head | Phase::Body { .. } | Phase::Chunked { .. } if !self.has_output() => {
                Activity::Reading
            }
            Phase::Dispatched(_) | Phase::Waiting(_) => Activity::Waiting,
            Phase::Streaming { .. } => Activity::Streaming,
            _ => Activity::Writing,
        }
    }

    /// Whether the client finished sending.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Bytes of buffer the connection holds (input, output, header offsets): what its limits
    /// bound, whatever the input (the `conn` fuzz target checks it).
    pub fn buffer_bytes(&self) -> usize {
        self.read_buf.capacity()
            + self.write_buf.capacity()
            + self.headers.capacity() * std::mem::size_of::<HeaderSpan>()
    }

    // ---- 1. receive ---------------------------------------------------------------------

    /// What the caller should read now.
    pub fn wants_input(&self) -> Input {
        if self.peer_closed {
            return Input::Nothing;
        }
        match self.phase {
            Phase::Streaming { .. } | Phase::Lingering { .. } => Input::Discard,
            Phase::Head | Phase::Body { .. } | Phase::Chunked { .. } | Phase::Waiting(_)
                if self.unsent() <= OUTPUT_HIGH_WATER =>
            {
                Input::Request
            }
            _ => Input::Nothing,
        }
    }

    /// Room for request bytes, as much as the request being read may still take; `None` when
    /// the buffer holds that much already (answer what is there first). Report what was
    /// written into it with [`Conn::received`].
    pub fn read_space(
        &mut self,
        settings: &Settings,
        buffers: &mut BufferPool,
    ) -> Option<&mut [u8]> {
        if self.read_buf.capacity() == 0 {
            self.read_buf = buffers.take_read();
        }
        let limit = self.read_limit(settings);
        self.read_buf.spare(limit)
    }

    /// `n` bytes were written into the space [`Conn::read_space`] lent.
    pub fn received(&mut self, n: usize, now: Instant) {
        self.read_buf.filled(n);
        self.last_read = now;
        if self.request_started.is_none() && matches!(self.phase, Phase::Head) {
            self.request_started = Some(now);
        }
    }

    /// The client finished sending: what is buffered is all there will be.
    pub fn received_eof(&mut self) {
        self.peer_closed = true;
    }

    /// `n` bytes were read and thrown away ([`Input::Discard`]). A lingering close drains at
    /// most [`LINGER_MAX_BYTES`]: past that, close at once.
    pub fn discarded(&mut self, n: usize) -> Result<(), TooMuchInput> {
        if let Phase::Lingering { drained, .. } = &mut self.phase {
            *drained += n;
            if *drained > LINGER_MAX_BYTES {
                return Err(TooMuchInput);
            }
        }
        Ok(())
    }

    /// How far the read buffer may grow for the request being read.
    fn read_limit(&self, settings: &Settings) -> usize {
        match &self.phase {
            // One byte past the head limit, so that "too large" can be seen.
            Phase::Head => settings.limits.max_head_bytes + 1,
            Phase::Body { head, len } => head.len + len,
            Phase::Chunked { head, .. } => {
                let max_body =
                    usize::try_from(settings.limits.max_body_bytes).unwrap_or(usize::MAX);
                head.len
                    .saturating_add(max_body)
                    .saturating_add(chunked::MAX_LINE_BYTES + chunked::MAX_TRAILER_BYTES)
            }
            _ => 0,
        }
        .max(READ_BUF_BASELINE)
    }

    // ---- 2. dispatch --------------------------------------------------------------------

    /// Parses the buffered input up to the next complete request and hands it out (see
    /// [`Next`]). Nothing is handed out while the output is backed up, a request is being
    /// answered, or the connection is not reading requests.
    pub fn next(&mut self, env: &mut Env<'_>) -> Next<'_> {
        let mut advanced = false;
        loop {
            if self.output_backed_up() {
                return Next::Nothing { advanced };
            }
            let step = match &mut self.phase {
                Phase::Head => self.parse_head(env),
                Phase::Body { head, len } => {
                    let (head, len) = (*head, *len);
                    if self.read_buf.len() >= head.len + len {
                        Step::Complete(Buffered {
                            head,
                            body: head.len..head.len + len,
                            consumed: head.len + len,
                        })
                    } else {
                        Step::NeedMore
                    }
                }
                Phase::Chunked { head, decoder } => {
                    let head = *head;
                    let region = &mut self.read_buf.data_mut()[head.len..];
                    match decoder.decode(region) {
                        Ok(true) => Step::Complete(Buffered {
                            head,
                            body: head.len..head.len + decoder.decoded(),
                            consumed: head.len + decoder.consumed(),
                        }),
                        Ok(false) => {
                            // The framing read so far is of no more use: its room goes to the
                            // bytes still to come (see `ChunkedDecoder::compact`).
                            let freed = decoder.compact(region);
                            self.read_buf.truncate_end(freed);
                            Step::NeedMore
                        }
                        Err(ChunkedError::Invalid(_)) => Step::Reject(StatusCode::BAD_REQUEST),
                        Err(ChunkedError::TooLarge) => Step::Reject(StatusCode::CONTENT_TOO_LARGE),
                    }
                }
                Phase::Dispatched(_) | Phase::Rejected => {
                    unreachable!(
                        "next() before the last request was answered: {:?}",
                        self.phase
                    )
                }
                _ => return Next::Nothing { advanced },
            };
            match step {
                Step::NeedMore => {
                    if self.peer_closed {
                        // The rest of this request will never come.
                        self.phase = Phase::Closing;
                        advanced = true;
                    }
                    return Next::Nothing { advanced };
                }
                Step::Continue => advanced = true,
                Step::Reject(status) => return self.reject(status),
                Step::Complete(buffered) => return self.dispatch(buffered, false, Some(env.now)),
            }
        }
    }

    /// Tries to parse a head from the buffer and decides how its body is framed.
    fn parse_head(&mut self, env: &mut Env<'_>) -> Step {
        if self.read_buf.is_empty() {
            return Step::NeedMore;
        }
        if self.headers.capacity() == 0 {
            self.headers = env.buffers.take_headers();
        }
        let head = match parse::parse_head(
            self.read_buf.data(),
            &env.settings.limits,
            &mut self.headers,
        ) {
            Ok(Some(head)) => head,
            Ok(None) => return Step::NeedMore,
            Err(error) => return Step::Reject(error.status()),
        };
        let body_started = self.read_buf.len() > head.len;
        match head.framing {
            Framing::Empty => Step::Complete(Buffered {
                head,
                body: head.len..head.len,
                consumed: head.len,
            }),
            Framing::Length(len) => {
                // `parse_head` enforced the body limit, so the length fits in memory.
                let Ok(len) = usize::try_from(len) else {
                    return Step::Reject(ParseError::BodyTooLarge.status());
                };
                self.expect_continue(&head, body_started, env.buffers);
                self.phase = Phase::Body { head, len };
                Step::Continue
            }
            Framing::Chunked => {
                self.expect_continue(&head, body_started, env.buffers);
                let decoder = ChunkedDecoder::new(env.settings.limits.max_body_bytes);
                self.phase = Phase::Chunked { head, decoder };
                Step::Continue
            }
        }
    }

    /// RFC 9110 §10.1.1: tell a client waiting for `100 Continue` to send its body, unless the
    /// body is already on its way.
    fn expect_continue(&mut self, head: &Head, body_started: bool, buffers: &mut BufferPool) {
        if head.expect_continue && !body_started {
            self.output_buf(buffers)
                .extend_from_slice(response::CONTINUE);
        }
    }

    /// Hands out the complete request at the front of the buffer (`prepared`: again, after the
    /// job it asked for), at the caller's clock `now` (if it has one at hand).
    fn dispatch(&mut self, buffered: Buffered, prepared: bool, now: Option<Instant>) -> Next<'_> {
        let data = self.read_buf.data();
        let request = Request::new_at(
            &buffered.head,
            &data[..buffered.head.len],
            &self.headers,
            &data[buffered.body.clone()],
            self.peer,
            self.secure,
            now,
        );
        match request {
            Some(mut request) => {
                self.phase = Phase::Dispatched(buffered);
                if prepared {
                    request.mark_prepared();
                }
                Next::Request(request)
            }
            // Not UTF-8 where httparse accepts only ASCII: cannot happen, but is not trusted.
            None => {
                self.phase = Phase::Rejected;
                Next::Reject(Rejection {
                    status: StatusCode::BAD_REQUEST,
                    path: parse::request_path(data),
                })
            }
        }
    }

    /// Rejects the input with `status`: its error response will be the last one.
    fn reject(&mut self, status: StatusCode) -> Next<'_> {
        self.phase = Phase::Rejected;
        Next::Reject(Rejection {
            status,
            path: parse::request_path(self.read_buf.data()),
        })
    }

    /// The dispatched request goes to a helper; its answer comes later ([`Conn::respond`] or
    /// [`Conn::open_stream`] while waiting, or [`Conn::request_again`]).
    pub fn defer(&mut self) {
        match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Dispatched(buffered) => self.phase = Phase::Waiting(buffered),
            phase => unreachable!("defer() with no dispatched request: {phase:?}"),
        }
    }

    /// The request a helper prepared something for, handed out again to be answered now.
    pub fn request_again(&mut self) -> Next<'_> {
        match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Waiting(buffered) => self.dispatch(buffered, true, None),
            phase => unreachable!("request_again() with no waiting request: {phase:?}"),
        }
    }

    /// Answers the dispatched (or waiting, or rejected) request with `response`, after
    /// telling `log` about the exchange.
    pub fn respond(
        &mut self,
        response: Response,
        env: &mut Env<'_>,
        log: impl FnOnce(&Exchange<'_>),
    ) {
        match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Dispatched(request) | Phase::Waiting(request) => {
                self.keep_alive &= request.head.keep_alive;
                let is_head = self.is_head(&request);
                let body_bytes = if is_head { 0 } else { response.body().len() };
                log(&self.exchange(&request, response.status(), body_bytes, env.now));
                self.finish_request(&request, env.now);
                let body = self.queue(response, is_head, request.head.version, env);
                self.phase = self.after_response();
                self.start_sending(body);
            }
            Phase::Rejected => self.answer_and_close(response, env, log),
            phase => unreachable!("respond() with no request to answer: {phase:?}"),
        }
    }

    /// Sends `response` as the last one on this connection, whatever it was doing (a client
    /// that sent plain HTTP to the TLS port, a rejected request).
    pub fn answer_and_close(
        &mut self,
        response: Response,
        env: &mut Env<'_>,
        log: impl FnOnce(&Exchange<'_>),
    ) {
        self.keep_alive = false;
        log(&Exchange {
            request: None,
            status: response.status(),
            body_bytes: response.body().len(),
            duration: self.elapsed(env.now),
        });
        let body = self.queue(response, false, Version::Http11, env);
        self.phase = Phase::Closing;
        self.start_sending(body);
    }

    /// Answers the dispatched (or waiting) request with an event stream: `response`'s head,
    /// then `first` (events already encoded, sent as one chunk), then whatever
    /// [`Conn::push_event`] adds; `last_id` is the id of the last event in `first`. No later
    /// request on this connection is read. Returns false if the stream did not open (HEAD gets
    /// the head only).
    pub fn open_stream(
        &mut self,
        response: Response,
        first: &[u8],
        last_id: Option<u64>,
        env: &mut Env<'_>,
        log: impl FnOnce(&Exchange<'_>),
    ) -> bool {
        let request = match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Dispatched(request) | Phase::Waiting(request) => request,
            phase => unreachable!("open_stream() with no request to answer: {phase:?}"),
        };
        self.keep_alive &= request.head.keep_alive;
        let is_head = self.is_head(&request);
        log(&self.exchange(&request, response.status(), 0, env.now));
        // Pipelined bytes after a stream request can never be answered.
        self.finish_request(&request, env.now);
        self.read_buf.clear();
        self.request_started = None;
        let chunked = request.head.version == Version::Http11;
        if !chunked {
            self.keep_alive = false;
        }
        let (framing, connection) = if chunked {
            (BodyFraming::Chunked, ConnectionHeader::Omit)
        } else {
            (BodyFraming::UntilClose, ConnectionHeader::Close)
        };
        let (status, headers, _) = response.into_parts();
        let out = self.output_buf(env.buffers);
        response::encode_head(
            out,
            status,
            &headers,
            framing,
            env.date.imf_fixdate(),
            connection,
        );
        if is_head {
            self.phase = self.after_response();
            return false;
        }
        if chunked {
            response::encode_chunk(out, first);
        } else {
            out.extend_from_slice(first);
        }
        self.phase = Phase::Streaming { chunked, last_id };
        true
    }

    /// Appends `event` to the open event stream; an event whose `id` is not past the last one
    /// sent was sent already (in the replay) and is skipped.
    pub fn push_event(
        &mut self,
        id: Option<u64>,
        event: &[u8],
        buffers: &mut BufferPool,
    ) -> Pushed {
        let Phase::Streaming { chunked, last_id } = &mut self.phase else {
            return Pushed::Skipped;
        };
        let chunked = *chunked;
        if let Some(id) = id {
            if last_id.is_some_and(|last| id <= last) {
                return Pushed::Skipped;
            }
            *last_id = Some(id);
        }
        if self.unsent() > MAX_STREAM_BACKLOG {
            return Pushed::TooFarBehind;
        }
        let out = self.output_buf(buffers);
        if chunked {
            response::encode_chunk(out, event);
        } else {
            out.extend_from_slice(event);
        }
        Pushed::Queued
    }

    /// Ends an open event stream (its last chunk); the connection closes once it is sent.
    pub fn end_stream(&mut self, buffers: &mut BufferPool) {
        let Phase::Streaming { chunked, .. } = self.phase else {
            unreachable!("end_stream() with no stream open: {:?}", self.phase);
        };
        if chunked {
            self.output_buf(buffers)
                .extend_from_slice(response::LAST_CHUNK);
        }
        self.keep_alive = false;
        self.phase = Phase::Closing;
    }

    /// Graceful shutdown: no request after the ones in flight; an event stream ends. Returns
    /// true if the connection is idle and can close at once.
    pub fn shut_down(&mut self, buffers: &mut BufferPool) -> bool {
        self.keep_alive = false;
        if self.is_streaming() {
            self.end_stream(buffers);
            return false;
        }
        matches!(self.phase, Phase::Head) && self.read_buf.is_empty() && !self.has_output()
    }

    /// What comes after a response: the next request, or the end.
    fn after_response(&self) -> Phase {
        if self.keep_alive {
            Phase::Head
        } else {
            Phase::Closing
        }
    }

    /// Drops an answered request from the buffer.
    fn finish_request(&mut self, request: &Buffered, now: Instant) {
        self.read_buf.consume(request.consumed);
        self.requests += 1;
        self.request_started = (!self.read_buf.is_empty()).then_some(now);
    }

    fn is_head(&self, request: &Buffered) -> bool {
        request.head.method.of(self.read_buf.data()) == b"HEAD"
    }

    /// The access-log entry for the request at the front of the buffer (whose header fields
    /// are the last parsed), answered at `now`.
    fn exchange(
        &self,
        request: &Buffered,
        status: StatusCode,
        body_bytes: u64,
        now: Instant,
    ) -> Exchange<'_> {
        let data = self.read_buf.data();
        Exchange {
            request: Some(RequestLine {
                method: request.head.method.of(data),
                target: request.head.target.of(data),
                version: request.head.version.as_str(),
                fields: HeaderFields::new(&data[..request.head.len], &self.headers),
            }),
            status,
            body_bytes,
            duration: self.elapsed(now),
        }
    }

    /// How long the request being answered has taken by `now`, from its first byte.
    fn elapsed(&self, now: Instant) -> Duration {
        match self.request_started {
            // Most requests are answered in the tick that read them.
            Some(started) if started != now => now.saturating_duration_since(started),
            _ => Duration::ZERO,
        }
    }

    /// Encodes `response`'s head, and its body if it is small, into the write buffer; returns
    /// the body to send from where it lies, if any.
    fn queue(
        &mut self,
        response: Response,
        is_head: bool,
        version: Version,
        env: &mut Env<'_>,
    ) -> Option<Body> {
        let (status, headers, body) = response.into_parts();
        let connection = match (self.keep_alive, version) {
            (false, _) => ConnectionHeader::Close,
            (true, Version::Http10) => ConnectionHeader::KeepAlive,
            (true, Version::Http11) => ConnectionHeader::Omit,
        };
        let out = self.output_buf(env.buffers);
        response::encode_head(
            out,
            status,
            &headers,
            BodyFraming::Length(body.len()),
            env.date.imf_fixdate(),
            connection,
        );
        if is_head || !status.allows_body() {
            return None;
        }
        match body {
            Body::Empty => None,
            Body::Bytes(bytes) => {
                out.extend_from_slice(&bytes);
                None
            }
            Body::Shared { bytes, range } if range.len() <= INLINE_BODY => {
                out.extend_from_slice(&bytes[range]);
                None
            }
            // Larger shared bodies and files are sent from where they are, no copy.
            body => Some(body),
        }
    }

    /// Makes `body` the next thing to send after the write buffer, if anything of it is left.
    fn start_sending(&mut self, body: Option<Body>) {
        if let Some(body) = body {
            let after = std::mem::replace(&mut self.phase, Phase::Sending(body));
            debug_assert!(matches!(after, Phase::Head | Phase::Closing));
            self.body_progressed();
        }
    }

    /// Once a body's current slice is sent: framing bytes before the next file range join the
    /// write buffer (one write with what precedes them); with nothing left the body is done.
    fn body_progressed(&mut self) {
        let Phase::Sending(body) = &mut self.phase else {
            return;
        };
        while let Some(bytes) = body.take_leading_bytes() {
            self.write_buf.extend_from_slice(&bytes);
        }
        if body.front().is_none() {
            self.phase = self.after_response();
        }
    }

    // ---- 3. send ------------------------------------------------------------------------

    /// Whether anything is waiting to be sent.
    pub fn has_output(&self) -> bool {
        self.unsent() > 0 || matches!(self.phase, Phase::Sending(_))
    }

    /// What to send next: the encoded bytes, then (in the same write if the transport can) a
    /// slice of the body being sent.
    pub fn output(&self) -> Output<'_> {
        Output {
            bytes: &self.write_buf[self.written..],
            body: match &self.phase {
                Phase::Sending(body) => body.front(),
                _ => None,
            },
        }
    }

    /// `n` bytes of [`Conn::output`] were sent: from its bytes first, then from its body.
    pub fn sent(&mut self, n: usize, now: Instant) {
        self.last_write = now;
        let from_buffer = n.min(self.unsent());
        self.written += from_buffer;
        if self.written == self.write_buf.len() {
            self.write_buf.clear();
            self.written = 0;
        }
        let from_body = n - from_buffer;
        if from_body > 0 {
            let Phase::Sending(body) = &mut self.phase else {
                unreachable!("{from_body} body bytes sent with no body: {:?}", self.phase);
            };
            body.advance(from_body);
            self.body_progressed();
        }
    }

    /// The client took bytes the caller queued elsewhere (TLS records): it is not stalled.
    pub fn peer_took_output(&mut self, now: Instant) {
        self.last_write = now;
    }

    /// The file being sent ended before its announced length (it shrank, or failed): the
    /// message cannot be completed, so the connection closes once the rest is sent, and the
    /// client sees a truncated message rather than a misframed one.
    pub fn file_ended(&mut self) {
        match self.phase {
            Phase::Sending(_) => {
                self.keep_alive = false;
                self.phase = Phase::Closing;
            }
            _ => unreachable!("file_ended() with no body being sent: {:?}", self.phase),
        }
    }

    /// Whether to stop producing responses until the client reads some.
    fn output_backed_up(&self) -> bool {
        self.unsent() > OUTPUT_HIGH_WATER
            || matches!(self.phase, Phase::Sending(_) | Phase::Streaming { .. })
    }

    /// Bytes in the write buffer not yet sent.
    fn unsent(&self) -> usize {
        self.write_buf.len() - self.written
    }

    /// The write buffer, taken from the pool if the connection gave it back while idle. Bytes
    /// already sent are dropped before more are queued: a client that reads steadily but never
    /// quite catches up (so the buffer never empties) would otherwise make it keep every byte
    /// queued since it was last empty, without bound (found by the `conn` fuzz target). The
    /// move costs nothing on the usual path, where `sent` empties the buffer.
    fn output_buf(&mut self, buffers: &mut BufferPool) -> &mut Vec<u8> {
        if self.write_buf.capacity() == 0 {
            self.write_buf = buffers.take_write();
        }
        if self.written > 0 {
            self.write_buf.drain(..self.written);
            self.written = 0;
        }
        &mut self.write_buf
    }

    // ---- 4. settle ----------------------------------------------------------------------

    /// With nothing left to send: whether the connection waits, shuts down its sending side,
    /// or closes. A waiting connection with nothing buffered gives its buffers to the pool.
    pub fn settle(&mut self, buffers: &mut BufferPool) -> Settle {
        if self.has_output() {
            return Settle::Wait;
        }
        if !self.keep_alive && matches!(self.phase, Phase::Head) && self.read_buf.is_empty() {
            // Shutting down between requests.
            self.phase = Phase::Closing;
        }
        match self.phase {
            Phase::Lingering { .. } | Phase::Streaming { .. } | Phase::Head
                if self.peer_closed && self.read_buf.is_empty() =>
            {
                Settle::Close
            }
            // A half-closed client still gets the response its job is computing.
            Phase::Waiting(_) => Settle::Wait,
            Phase::Lingering { .. } => Settle::Wait,
            Phase::Head | Phase::Body { .. } | Phase::Chunked { .. } | Phase::Streaming { .. } => {
                self.release_idle_buffers(buffers);
                Settle::Wait
            }
            Phase::Closing if self.peer_closed => Settle::Close,
            Phase::Closing => Settle::ShutDownWrite,
            Phase::Closed => Settle::Close,
            Phase::Dispatched(_) | Phase::Rejected | Phase::Sending(_) => {
                unreachable!("settle() in the middle of a response: {:?}", self.phase)
            }
        }
    }

    /// Our sending side is shut down: drain the input for a moment (see the module docs).
    pub fn linger(&mut self, now: Instant, buffers: &mut BufferPool) {
        let Phase::Closing = self.phase else {
            unreachable!("linger() before the last response: {:?}", self.phase);
        };
        // Unread input is discarded from now on; the buffers are not needed any more.
        self.read_buf.clear();
        self.release_idle_buffers(buffers);
        self.phase = Phase::Lingering {
            until: now + LINGER_TIMEOUT,
            drained: 0,
        };
    }

    /// Between requests a connection needs no buffers: give them to the pool.
    fn release_idle_buffers(&mut self, buffers: &mut BufferPool) {
        if self.read_buf.is_empty() {
            buffers.give_read(std::mem::replace(&mut self.read_buf, ReadBuf::empty()));
            // No request in the buffer: its header offsets are stale.
            buffers.give_headers(std::mem::take(&mut self.headers));
        }
        if !self.has_output() {
            buffers.give_write(std::mem::take(&mut self.write_buf));
            self.written = 0;
        }
    }

    /// Hands the buffers back when the connection closes.
    pub fn recycle(self, buffers: &mut BufferPool) {
        buffers.give_read(self.read_buf);
        buffers.give_write(self.write_buf);
        buffers.give_headers(self.headers);
    }

    // ---- time ---------------------------------------------------------------------------

    /// When the caller must call [`Conn::on_deadline`] if nothing happens before.
    pub fn deadline(&self, settings: &Settings) -> Instant {
        if let Phase::Lingering { until, .. } = self.phase {
            return until;
        }
        if self.has_output() {
            return self.write_deadline(settings);
        }
        match (&self.phase, self.request_started) {
            (Phase::Streaming { .. }, _) => self.last_write + settings.sse_heartbeat,
            (Phase::Head, Some(started)) => started + settings.header_timeout,
            (Phase::Head, None) if self.requests == 0 => self.accepted_at + settings.header_timeout,
            (Phase::Head, None) => self.last_write + settings.keep_alive_timeout,
            (Phase::Body { .. } | Phase::Chunked { .. }, _) => {
                self.last_read + settings.body_timeout
            }
            _ => self.last_read.max(self.last_write) + settings.write_timeout,
        }
    }

    /// The deadline for the client to take some output (also for output the caller holds,
    /// such as TLS records).
    pub fn write_deadline(&self, settings: &Settings) -> Instant {
        self.last_write + settings.write_timeout
    }

    /// The deadline passed with nothing happening. With output still unsent the client is
    /// not reading (the caller checks for progress first): close.
    pub fn on_deadline(&mut self) -> Expired<'_> {
        if self.has_output() {
            return Expired::Close;
        }
        match self.phase {
            Phase::Streaming { .. } => Expired::Heartbeat,
            Phase::Head if !self.read_buf.is_empty() => self.expire_request(),
            Phase::Body { .. } | Phase::Chunked { .. } => self.expire_request(),
            // The job never came back in time; there is no sensible response to send.
            Phase::Waiting(_) => Expired::Close,
            // Nothing pending: an idle keep-alive connection, or one that never spoke; or the
            // linger is over.
            _ => Expired::Close,
        }
    }

    fn expire_request(&mut self) -> Expired<'_> {
        match self.reject(StatusCode::REQUEST_TIMEOUT) {
            Next::Reject(rejection) => Expired::Reject(rejection),
            next => unreachable!("reject() gave {next:?}"),
        }
    }
}

/// The outcome of looking at the buffered input once.
enum Step {
    NeedMore,
    /// The state advanced (head parsed, waiting for its body); look again.
    Continue,
    Complete(Buffered),
    Reject(StatusCode),
}

#[cfg(test)]
mod tests {
    //! The connection driven by a script: a scripted client (input bytes, EOF, how much of the
    //! output it reads) and a scripted app, with the caller's part played as `server::conn`
    //! plays it, minus the socket. Every script also runs with its input split at every byte.

    use std::collections::VecDeque;
    use std::io::Write as _;
    use std::os::unix::fs::FileExt;
    use std::sync::Arc;
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::http::response::FilePart;

    /// What the scripted app does with a request.
    enum Answer {
        Now(Response),
        /// Defer to a "helper"; answered later with [`Harness::finish_job`].
        Defer,
        /// An event stream with these first events.
        Stream(&'static [u8], Option<u64>),
    }

    type App = Box<dyn FnMut(&Request<'_>) -> Answer>;

    /// Answers every request with `METHOD target body` as text.
    fn echo() -> App {
        Box::new(|request| {
            let text = format!(
                "{} {} {}",
                request.method(),
                request.target(),
                String::from_utf8_lossy(request.body())
            );
            Answer::Now(Response::text(StatusCode::OK, text))
        })
    }

    /// Where the connection ended up, as the caller sees it.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum End {
        /// Still open (waiting for input, a job, events or a deadline).
        Open,
        /// Our side is shut down; input is being drained.
        Lingering,
        /// The caller closed the connection.
        Closed,
    }

    struct Harness {
        conn: Conn,
        settings: Settings,
        date: DateCache,
        buffers: BufferPool,
        now: Instant,
        app: App,
        /// Bytes the client sent that the connection has not read yet.
        input: VecDeque<u8>,
        /// The client sent its FIN (seen once `input` is read).
        client_done: bool,
        /// Bytes the client still takes (`None`: everything).
        client_window: Option<usize>,
        /// Everything the connection sent.
        sent: Vec<u8>,
        log: Vec<String>,
        end: End,
    }

    fn settings() -> Settings {
        Settings {
            limits: ParseLimits {
                max_head_bytes: 256,
                max_target_bytes: 64,
                max_headers: 8,
                max_body_bytes: 64,
            },
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            keep_alive_timeout: Duration::from_secs(15),
            write_timeout: Duration::from_secs(60),
            sse_heartbeat: Duration::from_secs(5),
        }
    }

    impl Harness {
        fn new(app: App) -> Harness {
            let mut date = DateCache::new();
            date.refresh(UNIX_EPOCH + Duration::from_secs(784_111_777));
            let now = Instant::now();
            Harness {
                conn: Conn::new(([127, 0, 0, 1], 40000).into(), false, now),
                settings: settings(),
                date,
                buffers: BufferPool::default(),
                now,
                app,
                input: VecDeque::new(),
                client_done: false,
                client_window: None,
                sent: Vec::new(),
                log: Vec::new(),
                end: End::Open,
            }
        }

        /// The client sends `bytes`; the connection is driven.
        fn send(&mut self, bytes: &[u8]) -> &mut Harness {
            self.input.extend(bytes);
            self.drive()
        }

        /// The client sends `parts`, one write each (see [`each_way`]).
        fn send_parts(&mut self, parts: &[&[u8]]) -> &mut Harness {
            for part in parts {
                self.send(part);
            }
            self
        }

        /// The client closes its sending side.
        fn finish(&mut self) -> &mut Harness {
            self.client_done = true;
            self.drive()
        }

        /// Takes what the client has read so far.
        fn take_sent(&mut self) -> String {
            String::from_utf8(std::mem::take(&mut self.sent)).expect("UTF-8 output")
        }

        fn advance(&mut self, by: Duration) {
            self.now += by;
        }

        /// Plays `server::conn::drive`: read, process, flush until nothing moves, then settle.
        fn drive(&mut self) -> &mut Harness {
            if self.end == End::Closed {
                return self;
            }
            loop {
                let read = self.read();
                if self.end == End::Closed {
                    return self;
                }
                let processed = self.process();
                let flushed = self.flush();
                if !(read || processed || flushed) {
                    break;
                }
            }
            self.settle();
            self
        }

        fn read(&mut self) -> bool {
            let mut any = false;
            match self.conn.wants_input() {
                Input::Request => {
                    while !self.input.is_empty() {
                        let Some(space) = self.conn.read_space(&self.settings, &mut self.buffers)
                        else {
                            return any;
                        };
                        let n = space.len().min(self.input.len());
                        for (slot, byte) in space.iter_mut().zip(self.input.drain(..n)) {
                            *slot = byte;
                        }
                        self.conn.received(n, self.now);
                        any = true;
                    }
                }
                Input::Discard => {
                    let n = self.input.len();
                    self.input.clear();
                    if n > 0 {
                        any = true;
                        if self.conn.discarded(n).is_err() {
                            self.end = End::Closed;
                            return true;
                        }
                    }
                }
                Input::Nothing => return false,
            }
            if self.input.is_empty() && self.client_done && !self.conn.peer_closed() {
                self.conn.received_eof();
                any = true;
            }
            any
        }

        fn process(&mut self) -> bool {
            let mut any = false;
            loop {
                let mut env = Env {
                    now: self.now,
                    settings: &self.settings,
                    date: &self.date,
                    buffers: &mut self.buffers,
                };
                let answer = match self.conn.next(&mut env) {
                    Next::Nothing { advanced } => return any || advanced,
                    Next::Request(request) => (self.app)(&request),
                    Next::Reject(rejection) => Answer::Now(Response::text(
                        rejection.status,
                        format!("rejected {:?}", rejection.path),
                    )),
                };
                self.apply(answer);
                any = true;
            }
        }

        fn apply(&mut self, answer: Answer) {
            let log = &mut self.log;
            let mut env = Env {
                now: self.now,
                settings: &self.settings,
                date: &self.date,
                buffers: &mut self.buffers,
            };
            let record = |exchange: &Exchange<'_>| log.push(format!("{exchange:?}"));
            match answer {
                Answer::Now(response) => self.conn.respond(response, &mut env, record),
                Answer::Defer => self.conn.defer(),
                Answer::Stream(first, last_id) => {
                    let response = Response::empty(StatusCode::OK)
                        .with_header("Content-Type", "text/event-stream");
                    self.conn
                        .open_stream(response, first, last_id, &mut env, record);
                }
            }
        }

        /// A deferred request's job finished with `response`.
        fn finish_job(&mut self, response: Response) -> &mut Harness {
            self.apply(Answer::Now(response));
            self.drive()
        }

        /// Plays `server::conn::flush` with a client that reads `client_window` bytes.
        fn flush(&mut self) -> bool {
            let mut any = false;
            loop {
                let window = self.client_window.unwrap_or(usize::MAX);
                if window == 0 {
                    return any;
                }
                let output = self.conn.output();
                let chunk: Vec<u8> = match (output.bytes, output.body) {
                    ([], None) => return any,
                    ([], Some(BodySlice::Bytes(bytes))) => bytes.to_vec(),
                    ([], Some(BodySlice::File { file, offset, len })) => {
                        let mut buf = vec![0; len.min(64 * 1024) as usize];
                        let n = file.read_at(&mut buf, offset).expect("file read");
                        if n == 0 {
                            self.conn.file_ended();
                            any = true;
                            continue;
                        }
                        buf.truncate(n);
                        buf
                    }
                    (bytes, _) => bytes.to_vec(),
                };
                let n = chunk.len().min(window);
                self.sent.extend_from_slice(&chunk[..n]);
                if let Some(window) = &mut self.client_window {
                    *window -= n;
                }
                self.conn.sent(n, self.now);
                any = true;
            }
        }

        fn settle(&mut self) {
            match self.conn.settle(&mut self.buffers) {
                Settle::Wait => {}
                Settle::Close => self.end = End::Closed,
                Settle::ShutDownWrite => {
                    self.conn.linger(self.now, &mut self.buffers);
                    self.end = End::Lingering;
                    // As the server does: drain at once, and close if the client is gone.
                    self.read();
                    if self.conn.peer_closed() {
                        self.end = End::Closed;
                    }
                }
            }
        }

        /// Plays the loop's timer: if the deadline passed, the connection handles it.
        fn fire_timer(&mut self) -> &mut Harness {
            if self.end == End::Closed || self.conn.deadline(&self.settings) > self.now {
                return self;
            }
            if self.conn.has_output() && self.flush() {
                return self.drive();
            }
            let answer = match self.conn.on_deadline() {
                Expired::Close => {
                    self.end = End::Closed;
                    return self;
                }
                Expired::Heartbeat => {
                    self.conn
                        .push_event(None, b": keep-alive\n\n", &mut self.buffers);
                    return self.drive();
                }
                Expired::Reject(rejection) => Answer::Now(Response::text(
                    rejection.status,
                    format!("rejected {:?}", rejection.path),
                )),
            };
            self.apply(answer);
            self.drive()
        }
    }

    /// What a script produced: the client's bytes, the log, and the end state.
    #[derive(Debug, PartialEq, Eq)]
    struct Transcript {
        sent: String,
        log: Vec<String>,
        end: End,
    }

    /// Runs `input` (then the client's FIN if `then_close`) through a fresh connection.
    fn run_in_parts(parts: &[&[u8]], then_close: bool, app: fn() -> App) -> Transcript {
        let mut h = Harness::new(app());
        for part in parts {
            h.send(part);
        }
        if then_close {
            h.finish();
        }
        Transcript {
            sent: h.take_sent(),
            log: std::mem::take(&mut h.log),
            end: h.end,
        }
    }

    /// Runs `input` whole, then split in two at every byte; every run must produce the same.
    fn run_split_everywhere(input: &[u8], then_close: bool, app: fn() -> App) -> Transcript {
        let whole = run_in_parts(&[input], then_close, app);
        for at in 1..input.len() {
            let split = run_in_parts(&[&input[..at], &input[at..]], then_close, app);
            assert_eq!(split, whole, "input split at byte {at}");
        }
        whole
    }

    /// Every way the tests send `input`: whole, and in two parts split at each byte.
    fn each_way(input: &[u8]) -> Vec<Vec<&[u8]>> {
        let splits = (1..input.len()).map(|at| vec![&input[..at], &input[at..]]);
        std::iter::once(vec![input]).chain(splits).collect()
    }

    const DATE: &str = "Date: Sun, 06 Nov 1994 08:49:37 GMT";

    /// The response `echo` gives, with the connection header line if any.
    fn echoed(text: &str, connection: Option<&str>) -> String {
        let connection =
            connection.map_or(String::new(), |value| format!("Connection: {value}\r\n"));
        format!(
            "HTTP/1.1 200 OK\r\nServer: looplight\r\n{DATE}\r\nContent-Type: text/plain; \
             charset=utf-8\r\nContent-Length: {}\r\n{connection}\r\n{text}",
            text.len()
        )
    }

    #[test]
    fn keep_alive_and_close_rules_for_http_1_0_and_1_1() {
        // RFC 9112 §9.3: 1.1 persists unless "close"; 1.0 only with "keep-alive".
        let cases: &[(&str, Option<&str>, End)] = &[
            ("GET /a HTTP/1.1\r\nHost: x\r\n\r\n", None, End::Open),
            (
                "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                Some("close"),
                End::Lingering,
            ),
            ("GET /a HTTP/1.0\r\n\r\n", Some("close"), End::Lingering),
            (
                "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                Some("keep-alive"),
                End::Open,
            ),
        ];
        for (request, connection, end) in cases {
            let transcript = run_split_everywhere(request.as_bytes(), false, echo);
            assert_eq!(transcript.sent, echoed("GET /a ", *connection), "{request}");
            assert_eq!(transcript.end, *end, "{request}");
        }
    }

    #[test]
    fn the_client_closing_after_its_response_closes_the_connection() {
        let transcript = run_split_everywhere(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", true, echo);
        assert_eq!(transcript.sent, echoed("GET /a ", None));
        assert_eq!(transcript.end, End::Closed);
        // A request cut short by the FIN gets no answer.
        let transcript = run_split_everywhere(b"GET /a HTTP/1.1\r\nHost:", true, echo);
        assert_eq!(
            (transcript.sent.as_str(), transcript.end),
            ("", End::Closed)
        );
    }

    #[test]
    fn pipelined_requests_are_answered_in_order() {
        let input = b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n\
                      POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\
                      GET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n\
                      GET /4 HTTP/1.1\r\nHost: x\r\n\r\n";
        let transcript = run_split_everywhere(input, false, echo);
        let expected = [
            echoed("GET /1 ", None),
            echoed("POST /2 abc", None),
            echoed("GET /3 ", Some("close")),
        ]
        .concat();
        // The request after `Connection: close` is never answered.
        assert_eq!(transcript.sent, expected);
        assert_eq!(transcript.log.len(), 3);
        assert_eq!(transcript.end, End::Lingering);
    }

    #[test]
    fn expect_100_continue_is_answered_only_while_the_body_has_not_started() {
        // RFC 9110 §10.1.1.
        let head: &[u8] =
            b"PUT /u HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
        for parts in each_way(head) {
            let mut h = Harness::new(echo());
            h.send_parts(&parts);
            assert_eq!(h.take_sent(), "HTTP/1.1 100 Continue\r\n\r\n");
            h.send(b"hi");
            assert_eq!(h.take_sent(), echoed("PUT /u hi", None));
        }
        // Head and body together: the client is not waiting, so no interim response; unless
        // the head arrived alone first.
        let request = [head, b"hi"].concat();
        for (at, parts) in each_way(&request).iter().enumerate() {
            let mut h = Harness::new(echo());
            h.send_parts(parts);
            let interim = if at == head.len() {
                "HTTP/1.1 100 Continue\r\n\r\n"
            } else {
                ""
            };
            assert_eq!(
                h.take_sent(),
                format!("{interim}{}", echoed("PUT /u hi", None)),
                "split at {at}"
            );
        }
    }

    #[test]
    fn head_gets_the_length_get_would_have_but_no_body() {
        let transcript = run_split_everywhere(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n", false, echo);
        let full = echoed("HEAD /h ", None);
        let head_only = &full[..full.find("\r\n\r\n").map(|at| at + 4).unwrap_or(0)];
        assert_eq!(transcript.sent, head_only);
        assert!(
            transcript.log[0].contains("body_bytes: 0"),
            "{:?}",
            transcript.log
        );
    }

    #[test]
    fn chunked_bodies_are_decoded_and_bad_ones_rejected() {
        let input = b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
                      3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: t\r\n\r\n\
                      GET /next HTTP/1.1\r\nHost: x\r\n\r\n";
        let transcript = run_split_everywhere(input, false, echo);
        assert_eq!(
            transcript.sent,
            [echoed("POST /c abcde", None), echoed("GET /next ", None)].concat()
        );

        let bad = b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        let transcript = run_split_everywhere(bad, false, echo);
        assert!(
            transcript.sent.starts_with("HTTP/1.1 400 "),
            "{}",
            transcript.sent
        );
        assert_eq!(transcript.end, End::Lingering);

        let huge = b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n";
        let transcript = run_split_everywhere(huge, false, echo);
        assert!(
            transcript.sent.starts_with("HTTP/1.1 413 "),
            "{}",
            transcript.sent
        );
    }

    #[test]
    fn every_limit_and_framing_error_has_its_status_then_a_lingering_close() {
        let long_target = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "t".repeat(64));
        let many_headers = format!("GET / HTTP/1.1\r\nHost: x\r\n{}\r\n", "A: b\r\n".repeat(8));
        let big_head = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nA: {}\r\n\r\n",
            "v".repeat(256)
        );
        let cases: Vec<(String, u16)> = vec![
            (big_head, 431),
            (many_headers, 431),
            (long_target, 414),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 65\r\n\r\n".into(), 413),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
                    .into(),
                400,
            ),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".into(),
                501,
            ),
            // RFC 9112 §6.3: chunked must be the final coding of a request.
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n".into(), 400),
            ("GET / HTTP/2.0\r\nHost: x\r\n\r\n".into(), 505),
            ("GET / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n".into(), 417),
            ("GET / HTTP/1.1\r\n\r\n".into(), 400),
            ("\x01\x02 garbage\r\n\r\n".into(), 400),
        ];
        for (input, status) in cases {
            let transcript = run_split_everywhere(input.as_bytes(), false, echo);
            assert!(
                transcript.sent.starts_with(&format!("HTTP/1.1 {status} ")),
                "{input:?} got {}",
                transcript.sent
            );
            assert!(
                transcript.sent.contains("Connection: close\r\n"),
                "{input:?}"
            );
            assert_eq!(transcript.end, End::Lingering, "{input:?}");
            assert_eq!(transcript.log.len(), 1);
        }
    }

    #[test]
    fn a_lingering_close_drains_for_a_while_then_ends() {
        let bad: &[u8] = b"GET / HTTP/9.0\r\n\r\n";
        for parts in each_way(bad) {
            let mut h = Harness::new(echo());
            h.send_parts(&parts);
            assert_eq!(h.end, End::Lingering);
            assert_eq!(h.conn.wants_input(), Input::Discard);
            // The client's late bytes are read and dropped, not answered.
            h.take_sent();
            h.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            assert_eq!((h.take_sent().as_str(), h.end), ("", End::Lingering));
            // Its FIN ends the connection.
            h.finish();
            assert_eq!(h.end, End::Closed);

            // A client that never stops sending is cut off.
            let mut h = Harness::new(echo());
            h.send_parts(&parts);
            h.send(&vec![b'x'; LINGER_MAX_BYTES + 1]);
            assert_eq!(h.end, End::Closed);

            // A silent one is closed at the end of the linger.
            let mut h = Harness::new(echo());
            h.send_parts(&parts);
            assert_eq!(h.conn.deadline(&h.settings), h.now + LINGER_TIMEOUT);
            h.advance(LINGER_TIMEOUT);
            h.fire_timer();
            assert_eq!(h.end, End::Closed);
        }
    }

    fn defer_slow() -> App {
        let mut echo = echo();
        Box::new(move |request| {
            if request.path() == "/slow" {
                Answer::Defer
            } else {
                echo(request)
            }
        })
    }

    #[test]
    fn a_deferred_response_keeps_later_requests_waiting_in_order() {
        let input: &[u8] =
            b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /fast HTTP/1.1\r\nHost: x\r\n\r\n";
        for parts in each_way(input) {
            let mut h = Harness::new(defer_slow());
            h.send_parts(&parts);
            assert_eq!((h.take_sent().as_str(), h.end), ("", End::Open));
            // A client that half-closes still gets the answer its job computes.
            h.finish();
            assert_eq!(h.end, End::Open);
            h.finish_job(Response::text(StatusCode::OK, "slow"));
            let slow = echoed("slow", None);
            assert_eq!(h.take_sent(), [slow, echoed("GET /fast ", None)].concat());
            assert_eq!(h.end, End::Closed);
        }
    }

    #[test]
    fn a_request_handled_again_is_marked_prepared() {
        for parts in each_way(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n") {
            let mut h = Harness::new(defer_slow());
            h.send_parts(&parts);
            match h.conn.request_again() {
                Next::Request(request) => {
                    assert!(request.prepared());
                    assert_eq!(request.path(), "/slow");
                }
                next => panic!("expected the request again, got {next:?}"),
            }
            h.finish_job(Response::text(StatusCode::OK, "ready"));
            assert_eq!(h.take_sent(), echoed("ready", None));
        }
    }

    fn stream_app() -> App {
        Box::new(|_| Answer::Stream(b"id: 2\ndata: two\n\n", Some(2)))
    }

    #[test]
    fn an_event_stream_sends_its_head_replay_and_new_events() {
        let input = b"GET /events HTTP/1.1\r\nHost: x\r\n\r\nGET /never HTTP/1.1\r\n\r\n";
        let transcript = run_split_everywhere(input, false, stream_app);
        let head = format!(
            "HTTP/1.1 200 OK\r\nServer: looplight\r\n{DATE}\r\nContent-Type: text/event-stream\r\n\
             Transfer-Encoding: chunked\r\n\r\n"
        );
        assert_eq!(
            transcript.sent,
            format!("{head}11\r\nid: 2\ndata: two\n\n\r\n")
        );
        assert_eq!(transcript.end, End::Open);

        let mut h = Harness::new(stream_app());
        h.send(input);
        h.take_sent();
        // Pipelined bytes and later input are discarded, never answered.
        assert_eq!(h.conn.wants_input(), Input::Discard);
        let push = |h: &mut Harness, id| h.conn.push_event(id, b"data: x\n\n", &mut h.buffers);
        assert_eq!(push(&mut h, Some(2)), Pushed::Skipped, "sent in the replay");
        assert_eq!(push(&mut h, Some(3)), Pushed::Queued);
        assert_eq!(push(&mut h, None), Pushed::Queued);
        h.drive();
        assert_eq!(h.take_sent(), "9\r\ndata: x\n\n\r\n9\r\ndata: x\n\n\r\n");
        // A client that stops reading is dropped once it is too far behind.
        h.client_window = Some(0);
        let pushed = (0..)
            .map(|_| push(&mut h, None))
            .find(|pushed| *pushed != Pushed::Queued);
        assert_eq!(pushed, Some(Pushed::TooFarBehind));
    }

    #[test]
    fn an_event_stream_to_http_1_0_is_delimited_by_the_close_and_head_gets_the_head() {
        let transcript = run_split_everywhere(b"GET /events HTTP/1.0\r\n\r\n", false, stream_app);
        assert!(
            transcript
                .sent
                .contains("Connection: close\r\n\r\nid: 2\ndata: two\n\n")
        );
        assert!(!transcript.sent.contains("chunked"));

        let transcript = run_split_everywhere(
            b"HEAD /events HTTP/1.1\r\nHost: x\r\n\r\n",
            false,
            stream_app,
        );
        assert!(
            transcript
                .sent
                .ends_with("Transfer-Encoding: chunked\r\n\r\n"),
            "{}",
            transcript.sent
        );
        assert_eq!(transcript.end, End::Open);
    }

    #[test]
    fn shutdown_in_each_phase() {
        // Idle: close at once.
        let mut h = Harness::new(echo());
        assert!(h.conn.shut_down(&mut h.buffers));

        // Between keep-alive requests: idle too.
        for parts in each_way(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") {
            let mut h = Harness::new(echo());
            h.send_parts(&parts);
            assert!(h.conn.shut_down(&mut h.buffers));
        }

        // Part of a request read: it is finished and answered with Connection: close.
        for parts in each_way(b"GET /p HTTP/1.1\r\nHo") {
            let mut h = Harness::new(echo());
            h.send_parts(&parts);
            assert!(!h.conn.shut_down(&mut h.buffers));
            h.send(b"st: x\r\n\r\n");
            assert_eq!(h.take_sent(), echoed("GET /p ", Some("close")));
            assert_eq!(h.end, End::Lingering);
        }

        // Part of a body read: the same.
        for parts in each_way(b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab") {
            let mut h = Harness::new(echo());
            h.send_parts(&parts);
            assert!(!h.conn.shut_down(&mut h.buffers));
            h.send(b"cd");
            assert_eq!(h.take_sent(), echoed("POST /b abcd", Some("close")));
            assert_eq!(h.end, End::Lingering);
        }

        // Waiting on a job: its answer is the last.
        let input: &[u8] =
            b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /fast HTTP/1.1\r\nHost: x\r\n\r\n";
        for parts in each_way(input) {
            let mut h = Harness::new(defer_slow());
            h.send_parts(&parts);
            assert!(!h.conn.shut_down(&mut h.buffers));
            h.finish_job(Response::text(StatusCode::OK, "slow"));
            assert_eq!(h.take_sent(), echoed("slow", Some("close")));
            assert_eq!(h.end, End::Lingering);
        }

        // Sending a large body: it is finished, then the connection closes.
        for parts in each_way(b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n") {
            let mut h = Harness::new(file_app());
            h.client_window = Some(3);
            h.send_parts(&parts);
            assert!(!h.conn.shut_down(&mut h.buffers));
            h.client_window = None;
            h.drive();
            assert!(h.take_sent().ends_with("\r\n\r\n23456"));
            assert_eq!(h.end, End::Lingering);
        }

        // An event stream ends with its last chunk.
        for parts in each_way(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n") {
            let mut h = Harness::new(stream_app());
            h.send_parts(&parts);
            h.take_sent();
            assert!(!h.conn.shut_down(&mut h.buffers));
            h.drive();
            assert_eq!(
                (h.take_sent().as_str(), h.end),
                ("0\r\n\r\n", End::Lingering)
            );
        }
    }

    #[test]
    fn deadlines_follow_the_phase_on_an_injected_clock() {
        let s = settings();
        // A connection that never speaks is closed after the header timeout, without a word.
        let mut h = Harness::new(echo());
        let start = h.now;
        assert_eq!(h.conn.deadline(&s), start + s.header_timeout);
        h.advance(s.header_timeout - Duration::from_millis(1));
        h.fire_timer();
        assert_eq!(h.end, End::Open, "not yet");
        h.advance(Duration::from_millis(1));
        h.fire_timer();
        assert_eq!((h.take_sent().as_str(), h.end), ("", End::Closed));

        // Part of a head, then silence: 408 (RFC 9110 §15.5.9), timed from its first byte.
        for parts in each_way(b"GET /slow-head HTTP/1.1\r\n") {
            let mut h = Harness::new(echo());
            h.advance(Duration::from_secs(1));
            let first_byte = h.now;
            h.send(parts[0]);
            h.advance(Duration::from_secs(1));
            h.send_parts(&parts[1..]);
            assert_eq!(h.conn.deadline(&s), first_byte + s.header_timeout);
            h.advance(s.header_timeout);
            h.fire_timer();
            let sent = h.take_sent();
            assert!(sent.starts_with("HTTP/1.1 408 "), "{sent}");
            assert!(sent.contains("rejected Some(\"/slow-head\")"), "{sent}");
            assert_eq!(h.end, End::Lingering);
        }

        // A body that stalls: 408 after the body timeout from its last byte.
        for parts in each_way(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab") {
            let mut h = Harness::new(echo());
            h.send_parts(&parts);
            assert_eq!(h.conn.deadline(&s), h.now + s.body_timeout);
            h.advance(s.body_timeout);
            h.fire_timer();
            assert!(h.take_sent().starts_with("HTTP/1.1 408 "));
        }

        // Between requests: the keep-alive timeout from the last response, then a quiet close.
        for parts in each_way(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") {
            let mut h = Harness::new(echo());
            h.send_parts(&parts);
            h.take_sent();
            assert_eq!(h.conn.deadline(&s), h.now + s.keep_alive_timeout);
            h.advance(s.keep_alive_timeout);
            h.fire_timer();
            assert_eq!((h.take_sent().as_str(), h.end), ("", End::Closed));
        }

        // A job that never comes back: closed after the write timeout.
        for parts in each_way(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n") {
            let mut h = Harness::new(defer_slow());
            h.send_parts(&parts);
            assert_eq!(h.conn.deadline(&s), h.now + s.write_timeout);
            h.advance(s.write_timeout);
            h.fire_timer();
            assert_eq!(h.end, End::Closed);
        }

        // A client that reads nothing: closed after the write timeout; one that reads a little
        // in time is not.
        for parts in each_way(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") {
            let mut h = Harness::new(echo());
            h.client_window = Some(0);
            h.send_parts(&parts);
            assert_eq!(h.conn.deadline(&s), h.now + s.write_timeout);
            h.advance(s.write_timeout);
            h.client_window = Some(1);
            h.fire_timer();
            assert_eq!(h.end, End::Open);
            assert_eq!(h.conn.deadline(&s), h.now + s.write_timeout);
            h.advance(s.write_timeout);
            h.client_window = Some(0);
            h.fire_timer();
            assert_eq!(h.end, End::Closed);
        }

        // An idle event stream gets a heartbeat comment.
        for parts in each_way(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n") {
            let mut h = Harness::new(stream_app());
            h.send_parts(&parts);
            h.take_sent();
            assert_eq!(h.conn.deadline(&s), h.now + s.sse_heartbeat);
            h.advance(s.sse_heartbeat);
            h.fire_timer();
            assert_eq!(
                (h.take_sent().as_str(), h.end),
                ("e\r\n: keep-alive\n\n\r\n", End::Open)
            );
        }
    }

    fn temp_file(bytes: &[u8]) -> std::fs::File {
        let mut file = tempfile::tempfile().expect("temp file");
        file.write_all(bytes).expect("write temp file");
        file
    }

    fn file_app() -> App {
        Box::new(|request| {
            let file = temp_file(b"0123456789");
            let body = match request.path() {
                "/file" => Body::File {
                    file,
                    offset: 2,
                    len: 5,
                },
                "/parts" => Body::FileParts {
                    file,
                    parts: VecDeque::from([
                        FilePart::Bytes(b"<a>".to_vec()),
                        FilePart::Range(0..2),
                        FilePart::Bytes(b"<b>".to_vec()),
                        FilePart::Range(8..10),
                        FilePart::Bytes(b"<end>".to_vec()),
                    ]),
                },
                // Announces more than the file has: it "shrank".
                _ => Body::File {
                    file,
                    offset: 8,
                    len: 5,
                },
            };
            Answer::Now(Response::empty(StatusCode::OK).with_body(body))
        })
    }

    #[test]
    fn file_bodies_go_out_as_file_slices() {
        let input = b"GET /file HTTP/1.1\r\nHost: x\r\n\r\nGET /parts HTTP/1.1\r\nHost: x\r\n\r\n";
        let transcript = run_split_everywhere(input, false, file_app);
        let head = |len| {
            format!(
                "HTTP/1.1 200 OK\r\nServer: looplight\r\n{DATE}\r\nContent-Length: {len}\r\n\r\n"
            )
        };
        assert_eq!(
            transcript.sent,
            format!("{}23456{}<a>01<b>89<end>", head(5), head(15))
        );

        // A file that ends early: the message is visibly cut short and the connection closes.
        let transcript =
            run_split_everywhere(b"GET /short HTTP/1.1\r\nHost: x\r\n\r\n", false, file_app);
        assert_eq!(transcript.sent, format!("{}89", head(5)));
        assert_eq!(transcript.end, End::Lingering);
    }

    #[test]
    fn a_body_in_many_small_chunks_is_not_limited_by_its_framing() {
        // 60 one-byte chunks, each with a 400-byte extension: 24 KB of framing for a body of
        // 60 bytes (the limit is 64). The framing used to stay in the buffer until it was
        // full; then the connection waited for the rest of a body it had no room for.
        let mut input =
            b"POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..60 {
            input.extend_from_slice(format!("1;{}\r\nx\r\n", "e".repeat(400)).as_bytes());
        }
        input.extend_from_slice(b"0\r\n\r\n");
        for piece in [input.len(), 4096, 7] {
            let mut h = Harness::new(echo());
            for part in input.chunks(piece) {
                h.send(part);
            }
            assert_eq!(
                h.take_sent(),
                echoed(&format!("POST /u {}", "x".repeat(60)), None)
            );
        }
    }

    #[test]
    fn a_reader_that_lags_for_ever_costs_no_more_than_the_high_water_mark() {
        // Pipelined requests for 10 KB answers, and a client that reads 3 KB a turn while
        // sending a request every turn: the output never drains, and the bytes it took must
        // not stay in the buffer (they did, and the buffer grew with every request).
        let app = || -> App {
            Box::new(|_| Answer::Now(Response::text(StatusCode::OK, "z".repeat(10 * 1024))))
        };
        let mut h = Harness::new(app());
        for _ in 0..100 {
            h.client_window = Some(3000);
            h.send(b"GET /z HTTP/1.1\r\nHost: x\r\n\r\n");
            assert!(
                h.conn.buffer_bytes() <= 2 * (OUTPUT_HIGH_WATER + 16 * 1024) + READ_BUF_BASELINE,
                "{} bytes of buffers",
                h.conn.buffer_bytes()
            );
        }
        h.client_window = None;
        h.drive();
        assert_eq!(h.log.len(), 100);
        assert_eq!(h.take_sent().matches("HTTP/1.1 200 OK").count(), 100);
    }

    #[test]
    fn a_large_body_holds_back_the_next_response_until_it_is_sent() {
        let app = || -> App {
            Box::new(|request| {
                let bytes: Arc<[u8]> = vec![b'x'; 100 * 1024].into();
                match request.path() {
                    "/big" => {
                        Answer::Now(Response::empty(StatusCode::OK).with_body(Body::shared(bytes)))
                    }
                    _ => Answer::Now(Response::text(StatusCode::OK, "small")),
                }
            })
        };
        let input: &[u8] =
            b"GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /small HTTP/1.1\r\nHost: x\r\n\r\n";
        for parts in each_way(input) {
            let mut h = Harness::new(app());
            h.client_window = Some(10);
            h.send_parts(&parts);
            assert_eq!(
                h.log.len(),
                1,
                "the second request waits for the first body"
            );
            assert_eq!(h.conn.wants_input(), Input::Nothing);
            h.client_window = None;
            h.drive();
            assert_eq!(h.log.len(), 2);
            let big_head = format!(
                "HTTP/1.1 200 OK\r\nServer: looplight\r\n{DATE}\r\nContent-Length: 102400\r\n\r\n"
            );
            let expected = [big_head, "x".repeat(100 * 1024), echoed("small", None)].concat();
            assert!(
                h.take_sent() == expected,
                "the big body, then the small response"
            );
        }
    }
}
