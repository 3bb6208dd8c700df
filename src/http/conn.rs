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
    pub status: u16,
    /// The request's path, if its request line got that far (it decides the error's format).
    pub path: Option<&'a str>,
}

/// What the access log records about one answered request.
#[derive(Debug, PartialEq, Eq)]
pub struct Exchange<'a> {
    /// `None` for input that was not a request (rejected before it was parsed).
    pub request: Option<RequestLine<'a>>,
    pub status: u16,
    /// Body bytes sent (0 for HEAD and event streams).
    pub body_bytes: u64,
}

/// The request line as logged.
#[derive(Debug, PartialEq, Eq)]
pub struct RequestLine<'a> {
    pub method: &'a str,
    pub target: &'a str,
    pub version: &'a str,
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

    /// Whether the client finished sending.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
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
                    match decoder.decode(&mut self.read_buf.data_mut()[head.len..]) {
                        Ok(true) => Step::Complete(Buffered {
                            head,
                            body: head.len..head.len + decoder.decoded(),
                            consumed: head.len + decoder.consumed(),
                        }),
                        Ok(false) => Step::NeedMore,
                        Err(ChunkedError::Invalid(_)) => Step::Reject(400),
                        Err(ChunkedError::TooLarge) => Step::Reject(413),
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
                Step::Complete(buffered) => return self.dispatch(buffered, false),
            }
        }
    }

    /// Tries to parse a head from the buffer and decides how its body is framed.
    fn parse_head(&mut self, env: &mut Env<'_>) -> Step {
        if self.read_buf.is_empty() {
            return Step::NeedMore;
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
    /// job it asked for).
    fn dispatch(&mut self, buffered: Buffered, prepared: bool) -> Next<'_> {
        let data = self.read_buf.data();
        let request = Request::new(
            &buffered.head,
            &data[..buffered.head.len],
            &self.headers,
            &data[buffered.body.clone()],
            self.peer,
            self.secure,
        );
        match request {
            Some(request) => {
                self.phase = Phase::Dispatched(buffered);
                Next::Request(if prepared {
                    request.prepared_again()
                } else {
                    request
                })
            }
            // Not UTF-8 where httparse accepts only ASCII: cannot happen, but is not trusted.
            None => {
                self.phase = Phase::Rejected;
                Next::Reject(Rejection {
                    status: 400,
                    path: parse::request_path(data),
                })
            }
        }
    }

    /// Rejects the input with `status`: its error response will be the last one.
    fn reject(&mut self, status: u16) -> Next<'_> {
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
            Phase::Waiting(buffered) => self.dispatch(buffered, true),
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
                log(&self.exchange(&request, response.status(), body_bytes));
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
        log(&self.exchange(&request, response.status(), 0));
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

    /// The access-log entry for the request at the front of the buffer.
    fn exchange(&self, request: &Buffered, status: u16, body_bytes: u64) -> Exchange<'_> {
        let data = self.read_buf.data();
        let text = |span: parse::Span| std::str::from_utf8(span.of(data)).unwrap_or("-");
        Exchange {
            request: Some(RequestLine {
                method: text(request.head.method),
                target: text(request.head.target),
                version: request.head.version.as_str(),
            }),
            status,
            body_bytes,
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
        if is_head || !response::status_allows_body(status) {
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

    /// The write buffer, taken from the pool if the connection gave it back while idle.
    fn output_buf(&mut self, buffers: &mut BufferPool) -> &mut Vec<u8> {
        if self.write_buf.capacity() == 0 {
            self.write_buf = buffers.take_write();
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
        match self.reject(408) {
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
    Reject(u16),
}
