//! Fuzz target `conn`: the sans-I/O connection ([`Conn`]) fed arbitrary bytes in arbitrary
//! splits, driven as `server::conn` drives it (read, process, flush, settle; deadlines on an
//! injected clock), by a scripted client and a scripted app.
//!
//! Input: two control bytes, then what the client sends.
//! - Byte 0, the client's manners. Bit 0: it closes its sending side (EOF) once it has sent
//!   everything. Bits 1-2: how much it reads each turn (everything, 1, 61 or 600 bytes).
//!   Bits 3-4: how far the clock moves each turn (0, 1, 7 or 40 s; deadlines that pass are
//!   handled). Bit 5: the server shuts down gracefully at the end. Bit 6: deferred jobs take
//!   one turn longer.
//! - Byte 1 seeds how the bytes are split into writes ([`super::cuts`]); one write a turn.
//!
//! The app answers by the first letter of the path: `d` defers to a "helper" (answered next
//! turn), `p` prepares and is handled again, `s` opens an event stream (an event a turn), `f` a
//! file body, `m` a multipart body of file ranges, `b` a large shared body, `z` a 10 KB body
//! copied inline, `n` 204 and `c` 304 (both with a body the connection must drop); anything
//! else echoes method, target and body.
//!
//! Properties:
//! 1. It never panics, the connection's own `unreachable!`s included (the harness is a
//!    correct caller: a panic there is a state the connection got itself into).
//! 2. The output is valid HTTP/1.1, read as a client reads it: one final response per
//!    answered exchange, in order, each with the status and body the app (or the rejection)
//!    gave it; `Content-Length` where a body is allowed (the GET length for HEAD, with no
//!    body), none for 204 and 304; chunked event streams; `100 Continue` only interim.
//! 3. No response for a request it rejected: after a rejection no request is handed out, and
//!    the error response, with `Connection: close`, is the last output.
//! 4. Memory stays bounded by the configured limits: the buffers the connection holds never
//!    exceed what the limits allow, however the input is split or the output read.
//! 5. No stall: with input waiting and nothing else to do, it either reads or answers.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, UNIX_EPOCH};

use crate::http::buffers::{BufferPool, READ_BUF_BASELINE};
use crate::http::chunked::{MAX_LINE_BYTES, MAX_TRAILER_BYTES};
use crate::http::conn::{
    Conn, Env, Expired, Input, MAX_STREAM_BACKLOG, Next, Pushed, Settings, Settle,
};
use crate::http::date::DateCache;
use crate::http::method::Method;
use crate::http::parse::{ParseLimits, Version};
use crate::http::request::Request;
use crate::http::response::{Body, BodySlice, FilePart, Response};
use crate::http::status::StatusCode;

/// The limits of every connection here: small, so that the fuzzer crosses each of them.
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

/// Output the connection may keep before it stops answering (`http::conn`'s high water).
const OUTPUT_HIGH_WATER: usize = 64 * 1024;
/// The largest response the app encodes into the write buffer (the `z` route, with its head).
const LARGEST_INLINE_RESPONSE: usize = INLINE_BODY_LEN + 1024;
const INLINE_BODY_LEN: usize = 10 * 1024;
const SHARED_BODY_LEN: usize = 20 * 1024;
const FILE_LEN: usize = 3000;
/// The bytes each turn the client reads, by bits 1-2 of the control byte.
const READ_WINDOWS: [Option<usize>; 4] = [None, Some(1), Some(61), Some(600)];
/// How far the clock moves each turn, by bits 3-4.
const CLOCK_STEPS: [u64; 4] = [0, 1, 7, 40];
/// Turns of "read everything, finish every job" at the end, before the output is checked.
const SETTLING_TURNS: usize = 16;

pub fn run(data: &[u8]) {
    let [manners, split_seed, input @ ..] = data else {
        return;
    };
    let mut harness = Harness::new(*manners);
    let cuts = super::cuts(*split_seed, input.len());
    for piece in super::pieces(input, &cuts) {
        harness.client_sends(piece);
        harness.turn();
    }
    if manners & 1 != 0 {
        harness.client_done = true;
        harness.turn();
    }
    if manners & 0x20 != 0 {
        harness.shut_down();
    }
    harness.window = None;
    for _ in 0..SETTLING_TURNS {
        harness.turn();
    }
    harness.check_output();
}

/// What the client must find in the output for one answered exchange.
#[derive(Debug)]
struct Expected {
    status: u16,
    /// The request was HEAD: the GET length, no body.
    head_request: bool,
    /// The body a GET gets (for a stream: its events so far).
    body: Vec<u8>,
    /// An event stream: chunked (HTTP/1.1) or delimited by the close (HTTP/1.0).
    stream: Option<Version>,
    /// A rejection: the last response, with `Connection: close`.
    rejection: bool,
}

/// What the app decided for a request.
enum Plan {
    Respond(Response, Expected),
    /// A helper computes the response; `retry`: the request is then handled again.
    Defer {
        later: Response,
        expected: Expected,
        retry: bool,
    },
    Stream(Response, Expected),
}

struct Harness {
    conn: Conn,
    settings: Settings,
    date: DateCache,
    buffers: BufferPool,
    now: Instant,
    /// Bytes the client sent that the connection has not read.
    input: VecDeque<u8>,
    client_done: bool,
    /// What the client takes each turn; `None`: everything.
    window: Option<usize>,
    /// What it still takes this turn.
    read_budget: usize,
    clock_step: Duration,
    slow_jobs: bool,
    /// Everything the client read.
    received: Vec<u8>,
    /// Answered exchanges, in order.
    expected: Vec<Expected>,
    /// A deferred request's answer, and the turns until it comes.
    job: Option<(Plan, u8)>,
    /// The open stream's next event id.
    next_event: u64,
    rejected: bool,
    /// An event stream was opened (its backlog may exceed the high-water mark).
    streamed: bool,
    lingering: bool,
    closed: bool,
    /// Closed with output unsent (a write timeout, a stream too far behind): the output may
    /// end in the middle of a response.
    cut_short: bool,
}

impl Harness {
    fn new(manners: u8) -> Harness {
        let mut date = DateCache::new();
        date.refresh(UNIX_EPOCH + Duration::from_secs(784_111_777));
        let now = Instant::now();
        Harness {
            conn: Conn::new(([127, 0, 0, 1], 40000).into(), false, now),
            settings: settings(),
            date,
            buffers: BufferPool::default(),
            now,
            input: VecDeque::new(),
            client_done: false,
            window: READ_WINDOWS[usize::from((manners >> 1) & 3)],
            read_budget: 0,
            clock_step: Duration::from_secs(CLOCK_STEPS[usize::from((manners >> 3) & 3)]),
            slow_jobs: manners & 0x40 != 0,
            received: Vec::new(),
            expected: Vec::new(),
            job: None,
            next_event: 2,
            rejected: false,
            streamed: false,
            lingering: false,
            closed: false,
            cut_short: false,
        }
    }

    fn client_sends(&mut self, bytes: &[u8]) {
        self.input.extend(bytes);
    }

    /// One turn of the loop for this connection: drive, a job's answer, an event, the clock.
    fn turn(&mut self) {
        self.read_budget = self.window.unwrap_or(usize::MAX);
        self.drive();
        self.finish_job();
        self.publish_event();
        self.tick_clock();
        self.check_memory();
        self.check_not_stalled();
    }

    /// Plays `server::conn::drive`: read, process, flush until nothing moves, then settle.
    fn drive(&mut self) {
        for _ in 0..1000 {
            if self.closed {
                return;
            }
            let read = self.read();
            if self.closed {
                return;
            }
            let processed = self.process();
            let flushed = self.flush();
            if !(read || processed || flushed) {
                self.settle();
                return;
            }
        }
        panic!("the connection kept making progress for 1000 rounds on a finite input");
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
                    assert!(!space.is_empty(), "read_space lent no room");
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
                        self.closed = true;
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
            let plan = match self.conn.next(&mut env) {
                Next::Nothing { advanced } => return any || advanced,
                Next::Request(request) => {
                    assert!(!self.rejected, "a request handed out after a rejection");
                    app(&request)
                }
                Next::Reject(rejection) => {
                    assert!(!self.rejected, "rejected twice");
                    self.rejected = true;
                    rejection_plan(rejection.status)
                }
            };
            self.carry_out(plan);
            any = true;
        }
    }

    fn carry_out(&mut self, plan: Plan) {
        let mut env = Env {
            now: self.now,
            settings: &self.settings,
            date: &self.date,
            buffers: &mut self.buffers,
        };
        match plan {
            Plan::Respond(response, expected) => {
                let mut logged = 0;
                self.conn.respond(response, &mut env, |_| logged += 1);
                assert_eq!(logged, 1, "one log entry per exchange");
                self.expected.push(expected);
            }
            Plan::Defer { .. } => {
                self.conn.defer();
                let turns = if self.slow_jobs { 2 } else { 1 };
                self.job = Some((plan, turns));
            }
            Plan::Stream(response, mut expected) => {
                let first = event(1);
                let opened = self
                    .conn
                    .open_stream(response, &first, Some(1), &mut env, |_| {});
                if opened {
                    expected.body = first;
                }
                self.expected.push(expected);
            }
        }
    }

    /// A deferred request's job is done (after its turns).
    fn finish_job(&mut self) {
        if self.closed {
            // The connection is gone (it waited past its deadline): nobody to answer.
            self.job = None;
            return;
        }
        let Some((_, turns)) = &mut self.job else {
            return;
        };
        *turns -= 1;
        if *turns > 0 {
            return;
        }
        let Some((
            Plan::Defer {
                later,
                expected,
                retry,
            },
            _,
        )) = self.job.take()
        else {
            unreachable!("only deferred plans wait");
        };
        if retry {
            let plan = match self.conn.request_again() {
                Next::Request(request) => {
                    assert!(request.prepared(), "handled again but not marked prepared");
                    app(&request)
                }
                Next::Reject(rejection) => rejection_plan(rejection.status),
                Next::Nothing { .. } => panic!("request_again() handed out nothing"),
            };
            self.carry_out(plan);
        } else {
            self.carry_out(Plan::Respond(later, expected));
        }
        self.drive();
    }

    /// An open stream gets one event a turn; every third repeats an id (skipped).
    fn publish_event(&mut self) {
        if self.closed || !self.conn.is_streaming() {
            return;
        }
        let id = self.next_event;
        self.next_event += 1;
        let repeat = id.is_multiple_of(3);
        let sent_id = if repeat { id - 1 } else { id };
        let bytes = event(sent_id);
        match self
            .conn
            .push_event(Some(sent_id), &bytes, &mut self.buffers)
        {
            Pushed::Queued => {
                assert!(!repeat, "an event id sent twice");
                self.stream_body().extend_from_slice(&bytes);
            }
            Pushed::Skipped => assert!(repeat, "a new event skipped"),
            Pushed::TooFarBehind => {
                assert!(self.conn.has_output(), "too far behind with nothing unsent");
                self.closed = true;
                self.cut_short = true;
                return;
            }
        }
        self.drive();
    }

    fn stream_body(&mut self) -> &mut Vec<u8> {
        let last = self.expected.last_mut().expect("a stream was opened");
        assert!(
            last.stream.is_some(),
            "events for a response that is no stream"
        );
        &mut last.body
    }

    /// The clock moves; a deadline that passed is handled as the loop's timer handles it.
    fn tick_clock(&mut self) {
        if self.clock_step.is_zero() || self.closed {
            return;
        }
        self.now += self.clock_step;
        if self.conn.deadline(&self.settings) > self.now {
            return;
        }
        if self.conn.has_output() && self.flush() {
            self.drive();
            return;
        }
        let plan = match self.conn.on_deadline() {
            Expired::Close => {
                self.cut_short |= self.conn.has_output();
                self.closed = true;
                return;
            }
            Expired::Heartbeat => {
                let comment = b": keep-alive\n\n";
                match self.conn.push_event(None, comment, &mut self.buffers) {
                    Pushed::Queued => self.stream_body().extend_from_slice(comment),
                    Pushed::Skipped => {}
                    Pushed::TooFarBehind => {
                        self.closed = true;
                        self.cut_short = true;
                        return;
                    }
                }
                self.drive();
                return;
            }
            Expired::Reject(rejection) => {
                assert!(!self.rejected, "rejected twice");
                self.rejected = true;
                rejection_plan(rejection.status)
            }
        };
        self.carry_out(plan);
        self.drive();
    }

    /// Graceful shutdown, as the server does it on SIGTERM.
    fn shut_down(&mut self) {
        if self.closed {
            return;
        }
        // An open stream ends with its last chunk, which the reader takes as the stream's end.
        if self.conn.shut_down(&mut self.buffers) {
            self.closed = true;
            return;
        }
        self.drive();
    }

    /// Plays `server::conn::flush` for a client that reads `window` bytes a turn.
    fn flush(&mut self) -> bool {
        let mut any = false;
        while self.read_budget > 0 {
            let output = self.conn.output();
            let chunk: Vec<u8> = match (output.bytes, output.body) {
                ([], None) => return any,
                ([], Some(BodySlice::Bytes(bytes))) => bytes.to_vec(),
                ([], Some(BodySlice::File { file, offset, len })) => {
                    let mut buf = vec![0; len.min(64 * 1024) as usize];
                    let n = file.read_at(&mut buf, offset).expect("reading the fixture");
                    assert!(n > 0, "a file slice past the fixture's end");
                    buf.truncate(n);
                    buf
                }
                (bytes, _) => bytes.to_vec(),
            };
            let n = chunk.len().min(self.read_budget);
            self.received.extend_from_slice(&chunk[..n]);
            self.read_budget -= n;
            self.conn.sent(n, self.now);
            any = true;
        }
        any
    }

    fn settle(&mut self) {
        match self.conn.settle(&mut self.buffers) {
            Settle::Wait => {}
            Settle::Close => self.closed = true,
            Settle::ShutDownWrite => {
                assert!(!self.lingering, "shut down twice");
                self.conn.linger(self.now, &mut self.buffers);
                self.lingering = true;
                self.read();
                if self.conn.peer_closed() {
                    self.closed = true;
                }
            }
        }
    }

    /// Property 4: the buffers stay within what the limits allow. The input buffer grows up
    /// to one request's worth (a head; a head and its body; a head, a chunked body and its
    /// framing allowance). The output buffer holds what is unsent: up to the high-water mark
    /// plus one response, or an event stream's allowed backlog plus one event; a Vec's
    /// capacity may be twice what it holds.
    fn check_memory(&mut self) {
        let limits = &self.settings.limits;
        let input_bound = READ_BUF_BASELINE.max(
            limits.max_head_bytes
                + 1
                + limits.max_body_bytes as usize
                + MAX_LINE_BYTES
                + MAX_TRAILER_BYTES,
        );
        self.streamed |= self.conn.is_streaming();
        let unsent_bound = if self.streamed {
            MAX_STREAM_BACKLOG
        } else {
            OUTPUT_HIGH_WATER
        };
        let output_bound = 2 * (unsent_bound + LARGEST_INLINE_RESPONSE);
        let held = self.conn.buffer_bytes();
        assert!(
            held <= input_bound + output_bound,
            "the connection holds {held} bytes of buffers; the limits allow {}",
            input_bound + output_bound
        );
    }

    /// Property 5: a connection with input waiting, no job out, nothing to send, that wants
    /// request bytes must have room for them (else it waits for ever: only a timeout ends it).
    fn check_not_stalled(&mut self) {
        if self.input.is_empty()
            || self.closed
            || self.job.is_some()
            || self.conn.has_output()
            || self.conn.wants_input() != Input::Request
        {
            return;
        }
        assert!(
            self.conn
                .read_space(&self.settings, &mut self.buffers)
                .is_some(),
            "stalled: {} bytes wait, the buffer is full, and nothing can be answered",
            self.input.len()
        );
    }

    /// Properties 2 and 3: the client reads the output as a sequence of responses.
    fn check_output(&self) {
        // LOOPLIGHT_FUZZ_DEBUG=1 shows what the client expected, for a failure to read.
        if std::env::var_os("LOOPLIGHT_FUZZ_DEBUG").is_some() {
            eprintln!("expected {:#?}", self.expected);
            eprintln!("cut short: {}, closed: {}", self.cut_short, self.closed);
            eprintln!("received {:?}", String::from_utf8_lossy(&self.received));
        }
        let mut reader = ResponseReader {
            out: &self.received,
        };
        for (index, expected) in self.expected.iter().enumerate() {
            let last = index + 1 == self.expected.len();
            if !reader.response(expected, self.cut_short) {
                // Closed with output unsent: the rest never reached the client.
                return;
            }
            if expected.rejection {
                assert!(last, "exchanges answered after a rejection");
            }
        }
        // A client still sending a body may have been told to go on.
        while reader.out.starts_with(CONTINUE) {
            reader.out = &reader.out[CONTINUE.len()..];
        }
        assert!(
            reader.out.is_empty() || self.cut_short,
            "{} bytes of output past the last response: {:?}",
            reader.out.len(),
            String::from_utf8_lossy(&reader.out[..reader.out.len().min(200)])
        );
    }
}

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// An event as the stream sends it.
fn event(id: u64) -> Vec<u8> {
    format!("id: {id}\ndata: event {id}\n\n").into_bytes()
}

/// The scripted app (see the module docs).
fn app(request: &Request<'_>) -> Plan {
    let head_request = request.method() == Method::Head;
    let expected = |status: StatusCode, body: &[u8]| Expected {
        status: status.as_u16(),
        head_request,
        body: if status.allows_body() {
            body.to_vec()
        } else {
            Vec::new()
        },
        stream: None,
        rejection: false,
    };
    let path = request.path();
    let variant = path.len() % 7;
    match path.as_bytes().get(1) {
        Some(b'd') | Some(b'p') => {
            let body = format!("deferred {path}");
            Plan::Defer {
                expected: expected(StatusCode::OK, body.as_bytes()),
                later: Response::text(StatusCode::OK, body),
                retry: path.as_bytes()[1] == b'p' && !request.prepared(),
            }
        }
        Some(b's') => Plan::Stream(
            Response::empty(StatusCode::OK).with_header("Content-Type", "text/event-stream"),
            Expected {
                stream: Some(request.version()),
                ..expected(StatusCode::OK, b"")
            },
        ),
        Some(b'f') => {
            let (offset, len) = (variant * 100, FILE_LEN - variant * 300);
            let bytes = &fixture().1[offset..offset + len];
            let file = fixture()
                .0
                .try_clone()
                .expect("a descriptor for the fixture");
            let body = Body::File {
                file,
                offset: offset as u64,
                len: len as u64,
            };
            Plan::Respond(
                Response::empty(StatusCode::OK).with_body(body),
                expected(StatusCode::OK, bytes),
            )
        }
        Some(b'm') => {
            let data = &fixture().1;
            let ranges = [10..100 + variant, 500..2000, 2990..3000];
            let mut parts = VecDeque::new();
            let mut bytes = Vec::new();
            for (index, range) in ranges.iter().enumerate() {
                let framing = format!("--b{index}\r\n\r\n").into_bytes();
                bytes.extend_from_slice(&framing);
                bytes.extend_from_slice(&data[range.clone()]);
                parts.push_back(FilePart::Bytes(framing));
                parts.push_back(FilePart::Range(range.start as u64..range.end as u64));
            }
            parts.push_back(FilePart::Bytes(b"--end--\r\n".to_vec()));
            bytes.extend_from_slice(b"--end--\r\n");
            let file = fixture()
                .0
                .try_clone()
                .expect("a descriptor for the fixture");
            Plan::Respond(
                Response::empty(StatusCode::PARTIAL_CONTENT)
                    .with_body(Body::FileParts { file, parts }),
                expected(StatusCode::PARTIAL_CONTENT, &bytes),
            )
        }
        Some(b'b') => {
            let bytes = shared_body();
            let range = variant..SHARED_BODY_LEN - variant;
            let expected = expected(StatusCode::OK, &bytes[range.clone()]);
            Plan::Respond(
                Response::empty(StatusCode::OK).with_body(Body::Shared { bytes, range }),
                expected,
            )
        }
        Some(b'z') => {
            let body = vec![b'z'; INLINE_BODY_LEN - variant];
            let expected = expected(StatusCode::OK, &body);
            Plan::Respond(
                Response::empty(StatusCode::OK).with_body(Body::Bytes(body.into())),
                expected,
            )
        }
        Some(b'n') => Plan::Respond(
            Response::text(StatusCode::NO_CONTENT, "dropped"),
            expected(StatusCode::NO_CONTENT, b""),
        ),
        Some(b'c') => Plan::Respond(
            Response::text(StatusCode::NOT_MODIFIED, "dropped"),
            expected(StatusCode::NOT_MODIFIED, b""),
        ),
        _ => {
            let mut body = format!("{} {} ", request.method(), request.target()).into_bytes();
            body.extend_from_slice(request.body());
            let expected = expected(StatusCode::OK, &body);
            Plan::Respond(
                Response::empty(StatusCode::OK).with_body(Body::Bytes(body.into())),
                expected,
            )
        }
    }
}

fn rejection_plan(status: StatusCode) -> Plan {
    Plan::Respond(
        Response::text(status, "rejected"),
        Expected {
            status: status.as_u16(),
            head_request: false,
            body: b"rejected".to_vec(),
            stream: None,
            rejection: true,
        },
    )
}

/// The file the `f` and `m` routes send from, and its bytes.
fn fixture() -> &'static (File, Vec<u8>) {
    static FIXTURE: OnceLock<(File, Vec<u8>)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let bytes: Vec<u8> = (0..FILE_LEN).map(|i| (i % 251) as u8).collect();
        let mut file = tempfile::tempfile().expect("a temporary file");
        file.write_all(&bytes).expect("writing the fixture");
        (file, bytes)
    })
}

fn shared_body() -> Arc<[u8]> {
    static SHARED: OnceLock<Arc<[u8]>> = OnceLock::new();
    Arc::clone(SHARED.get_or_init(|| (0..SHARED_BODY_LEN).map(|i| (i % 13) as u8).collect()))
}

/// The client's side: reads responses off the output and checks each against its exchange.
struct ResponseReader<'a> {
    out: &'a [u8],
}

impl ResponseReader<'_> {
    /// Reads the next final response (interim `100 Continue`s before it are skipped) and
    /// checks it. Returns false if the output ended first, which only `may_end` allows.
    fn response(&mut self, expected: &Expected, may_end: bool) -> bool {
        while self.out.starts_with(CONTINUE) {
            self.out = &self.out[CONTINUE.len()..];
        }
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut fields);
        let head_len = match parsed.parse(self.out) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if may_end => return false,
            other => panic!(
                "not a response head ({other:?}): {:?}",
                String::from_utf8_lossy(&self.out[..self.out.len().min(300)])
            ),
        };
        assert_eq!(parsed.version, Some(1), "not HTTP/1.1");
        assert_eq!(parsed.code, Some(expected.status), "status");
        let named = |name: &str| -> Vec<&[u8]> {
            parsed
                .headers
                .iter()
                .filter(|field| field.name.eq_ignore_ascii_case(name))
                .map(|field| field.value)
                .collect()
        };
        let lengths = named("content-length");
        let chunked = named("transfer-encoding") == [&b"chunked"[..]];
        let close = named("connection") == [&b"close"[..]];
        assert!(lengths.len() <= 1, "Content-Length twice");
        assert!(!chunked || lengths.is_empty(), "both framings");
        assert_eq!(named("date").len(), 1, "one Date");
        if expected.rejection {
            assert!(close, "a rejection without Connection: close");
        }
        self.out = &self.out[head_len..];
        let allows_body = StatusCode::from_u16(expected.status).is_some_and(|s| s.allows_body());
        if let Some(version) = expected.stream {
            if expected.head_request {
                return true;
            }
            return match version {
                Version::Http11 => {
                    assert!(chunked, "an HTTP/1.1 stream must be chunked");
                    self.chunked_stream(&expected.body, may_end)
                }
                Version::Http10 => {
                    assert!(
                        close && lengths.is_empty(),
                        "an HTTP/1.0 stream ends with the close"
                    );
                    assert!(expected.body.starts_with(self.out), "the stream's events");
                    self.out = &[];
                    true
                }
            };
        }
        if !allows_body {
            assert!(
                lengths.is_empty() && !chunked,
                "a length on a {}",
                expected.status
            );
            return true;
        }
        let length: usize = std::str::from_utf8(lengths.first().expect("Content-Length"))
            .ok()
            .and_then(|text| text.parse().ok())
            .expect("a decimal Content-Length");
        assert_eq!(length, expected.body.len(), "Content-Length");
        if expected.head_request {
            return true;
        }
        if self.out.len() < length {
            assert!(may_end, "the body ends early");
            assert!(expected.body.starts_with(self.out), "the body's bytes");
            return false;
        }
        assert!(self.out[..length] == expected.body[..], "the body's bytes");
        self.out = &self.out[length..];
        if close {
            assert!(self.out.is_empty(), "bytes after Connection: close");
        }
        true
    }

    /// A chunked event stream: its chunks' data must be the events sent, in order; it ends
    /// with the last chunk (a shutdown) or with the output.
    fn chunked_stream(&mut self, events: &[u8], may_end: bool) -> bool {
        let mut data = Vec::new();
        loop {
            if self.out.is_empty() {
                break;
            }
            let Some(line_end) = self.out.windows(2).position(|w| w == b"\r\n") else {
                assert!(may_end, "a chunk-size line cut short");
                break;
            };
            let size = usize::from_str_radix(
                std::str::from_utf8(&self.out[..line_end]).expect("hex size"),
                16,
            )
            .expect("hex size");
            let chunk_end = line_end + 2 + size + 2;
            if size == 0 {
                assert!(self.out.len() >= line_end + 4, "last chunk cut short");
                self.out = &self.out[line_end + 4..];
                break;
            }
            if self.out.len() < chunk_end {
                assert!(may_end, "a chunk cut short");
                break;
            }
            data.extend_from_slice(&self.out[line_end + 2..line_end + 2 + size]);
            assert_eq!(&self.out[chunk_end - 2..chunk_end], b"\r\n", "chunk end");
            self.out = &self.out[chunk_end..];
        }
        assert!(events.starts_with(&data), "the stream's events");
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripted_conversations_hold_every_property() {
        let pipelined = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /f HTTP/1.1\r\nHost: x\r\n\r\n\
            POST /d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
            GET /m HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n\
            GET /n HTTP/1.1\r\nHost: x\r\n\r\nGET /p HTTP/1.1\r\nHost: x\r\n\r\n\
            GET /s HTTP/1.1\r\nHost: x\r\n\r\n";
        for manners in [0, 1, 2, 4, 6, 8, 0x18, 0x21, 0x40] {
            for seed in [0, 1, 2, 3, 7] {
                run(&[&[manners, seed][..], pipelined].concat());
            }
        }
        run(b"\x01\x00GET / HTTP/9.9\r\n\r\n");
        run(b"\x08\x05GET / HTTP/1.1\r\nHost: x\r\n");
    }
}
