//! Reading a never-ending streamed response (server-sent events) a piece at
//! a time: `EventStream` sends the request, checks the response head, then
//! decodes the body incrementally — HTTP/1.1 chunked framing (RFC 9112 §7.1)
//! or, for HTTP/1.0, a close-delimited body — and splits it into
//! server-sent-event items (HTML Living Standard §9.2.6, "event stream
//! interpretation"): comment lines and dispatched event blocks.
//!
//! Every read has a deadline. The chunk decoder is strict (hex size, CRLF
//! after each chunk's data) so framing bugs show up as errors, and every
//! event keeps its raw bytes so tests can assert the exact wire format.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

use super::api::{Req, show};
use super::{Client, Response, Server, find, is_timeout};

/// One item of an event stream.
#[derive(Debug, Clone, PartialEq)]
pub enum SseItem {
    /// A comment line (it starts with `:`), without its line ending.
    Comment(String),
    /// An event block (field lines up to a blank line).
    Event(SseEvent),
}

/// An event block as received.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    /// The block exactly as received: every line with its `\n`, then the
    /// blank line's `\n`.
    pub raw: String,
    /// (name, value) of each field line in order; the value loses one
    /// leading space, as in the standard.
    pub fields: Vec<(String, String)>,
}

impl SseEvent {
    /// The last value of field `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Data lines joined with `\n` (None without a data field).
    pub fn data(&self) -> Option<String> {
        let lines: Vec<&str> = self
            .fields
            .iter()
            .filter(|(n, _)| n == "data")
            .map(|(_, v)| v.as_str())
            .collect();
        (!lines.is_empty()).then(|| lines.join("\n"))
    }

    /// A block made of `retry:` fields only (reconnection time, no event).
    pub fn is_retry_only(&self) -> bool {
        self.fields.iter().all(|(n, _)| n == "retry")
    }
}

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Framing {
    /// `Transfer-Encoding: chunked` (HTTP/1.1).
    Chunked,
    /// Read until the server closes (HTTP/1.0).
    CloseDelimited,
}

/// Why the body ended or could not be read on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ending {
    /// The terminating zero-size chunk (and trailer section) arrived.
    LastChunk,
    /// The server closed the connection (EOF).
    Eof,
    /// The connection was reset.
    Reset,
}

/// Result of `EventStream::poll_next`.
#[derive(Debug)]
pub enum Next {
    Item(SseItem),
    Ended(Ending),
    TimedOut,
}

/// Outcome of one read attempt.
enum Fill {
    Data,
    Ended,
    Idle,
}

/// A streamed response being read incrementally.
pub struct EventStream {
    pub client: Client,
    /// The response head (its `body` is always empty).
    pub head: Response,
    /// The request as sent.
    pub request: Vec<u8>,
    framing: Framing,
    /// Decoded body bytes not yet split into lines.
    text: Vec<u8>,
    /// Lines of the event block being received.
    pending: Vec<String>,
    items: VecDeque<SseItem>,
    ending: Option<Ending>,
    /// Decoded body bytes so far.
    pub body_len: usize,
    /// The last decoded bytes, for failure messages.
    tail: Vec<u8>,
}

/// Header checks every event-stream response must pass: HTTP/1.1 200,
/// `Content-Type: text/event-stream`, `Cache-Control: no-cache`, Date and
/// `Server: looplight`; on HTTP/1.1 `Transfer-Encoding: chunked` without
/// Content-Length (RFC 9112 §6.1), on HTTP/1.0 no Transfer-Encoding (RFC
/// 9112 §6.1: never chunked to a 1.0 client) and no Content-Length.
pub fn assert_event_stream_head(head: &Response, http10: bool, context: &str) {
    assert_eq!(
        head.status, 200,
        "expected 200 for the event stream\n{context}"
    );
    assert_eq!(head.version, "HTTP/1.1", "status line\n{context}");
    let date = head
        .header("date")
        .unwrap_or_else(|| panic!("missing Date\n{context}"));
    super::assert_date_is_now(date);
    assert_eq!(
        head.header("server"),
        Some("looplight"),
        "Server header\n{context}"
    );
    let ct = head
        .header("content-type")
        .unwrap_or_else(|| panic!("event stream without Content-Type\n{context}"));
    let media = ct.split(';').next().unwrap().trim();
    assert!(
        media.eq_ignore_ascii_case("text/event-stream"),
        "Content-Type must be text/event-stream, got {ct:?}\n{context}"
    );
    assert_eq!(
        head.headers_all("content-type").len(),
        1,
        "one Content-Type\n{context}"
    );
    assert!(
        head.has_token("cache-control", "no-cache"),
        "Cache-Control: no-cache expected\n{context}"
    );
    assert!(
        head.header("content-length").is_none(),
        "a stream has no Content-Length\n{context}"
    );
    if http10 {
        assert!(
            head.header("transfer-encoding").is_none(),
            "no Transfer-Encoding to an HTTP/1.0 client (RFC 9112 §6.1)\n{context}"
        );
    } else {
        let te = head.headers_all("transfer-encoding");
        assert!(
            te.len() == 1 && te[0].trim().eq_ignore_ascii_case("chunked"),
            "Transfer-Encoding: chunked expected on HTTP/1.1, got {te:?}\n{context}"
        );
    }
}

impl EventStream {
    /// Connects, sends `req` and reads the head, which must be a 200 event
    /// stream (see `assert_event_stream_head`).
    pub fn open(server: &Server, req: &Req) -> EventStream {
        EventStream::start(server.connect(), req.bytes())
    }

    /// Sends `request` on `client` and reads the head of the event stream.
    pub fn start(mut client: Client, request: Vec<u8>) -> EventStream {
        client.send(&request);
        let head = client.try_read_response(true).unwrap_or_else(|e| {
            panic!("--- request ---\n{}\nno response head: {e}", show(&request))
        });
        let http10 = request.starts_with(b"GET ") && find(&request, b" HTTP/1.0\r\n").is_some();
        let context = format!(
            "--- request ---\n{}\n--- response head ---\n{}\n--- received after the head ---\n{}",
            show(&request),
            head.head,
            show(client.buffered())
        );
        assert_event_stream_head(&head, http10, &context);
        let mut stream = EventStream {
            client,
            head,
            request,
            framing: if http10 {
                Framing::CloseDelimited
            } else {
                Framing::Chunked
            },
            text: Vec::new(),
            pending: Vec::new(),
            items: VecDeque::new(),
            ending: None,
            body_len: 0,
            tail: Vec::new(),
        };
        // Body bytes that came with the head (a replay, say).
        stream.decode().unwrap_or_else(|e| panic!("{e}"));
        stream
    }

    /// How the body ended, if it did.
    pub fn ending(&self) -> Option<Ending> {
        self.ending
    }

    /// Request, head and the last bytes of the body, for failure messages.
    pub fn context(&self) -> String {
        format!(
            "--- request ---\n{}\n--- response head ---\n{}\n--- last {} of {} decoded body bytes ---\n{}\n--- undecoded ---\n{}",
            show(&self.request),
            self.head.head,
            self.tail.len(),
            self.body_len,
            show(&self.tail),
            show(self.client.buffered())
        )
    }

    /// Switches the socket to non-blocking mode (for `pump`).
    pub fn set_nonblocking(&self, on: bool) {
        self.client.stream.set_nonblocking(on).unwrap();
    }

    /// One read (blocking up to `timeout`, or returning at once on a
    /// non-blocking socket) and decoding of whatever arrived.
    fn fill_once(&mut self, timeout: Option<Duration>) -> Result<Fill, String> {
        if self.ending.is_some() {
            return Ok(Fill::Ended);
        }
        if let Some(t) = timeout {
            self.client
                .set_read_timeout(t.max(Duration::from_millis(1)));
        }
        let fill = match self.client.fill() {
            Ok(0) => {
                self.decode()?;
                self.close_with(Ending::Eof)?;
                Fill::Ended
            }
            Ok(_) => Fill::Data,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                self.decode()?;
                self.close_with(Ending::Reset)?;
                Fill::Ended
            }
            Err(e) if is_timeout(&e) => Fill::Idle,
            Err(e) => return Err(format!("read error {e}\n{}", self.context())),
        };
        if matches!(fill, Fill::Data) {
            self.decode()?;
        }
        Ok(fill)
    }

    fn close_with(&mut self, how: Ending) -> Result<(), String> {
        if self.ending.is_none() {
            if self.framing == Framing::CloseDelimited {
                // The end of a close-delimited body: flush the last block.
                let rest = std::mem::take(&mut self.client.buf);
                self.push_text(&rest);
            }
            self.ending = Some(how);
        }
        Ok(())
    }

    /// Moves complete chunks (or, close-delimited, all bytes) from the
    /// client's buffer into decoded text, then splits it into items.
    fn decode(&mut self) -> Result<(), String> {
        match self.framing {
            Framing::CloseDelimited => {
                let bytes = std::mem::take(&mut self.client.buf);
                self.push_text(&bytes);
            }
            Framing::Chunked => loop {
                if self.ending.is_some() {
                    if !self.client.buf.is_empty() {
                        return Err(format!(
                            "bytes after the terminating chunk: {:?}\n{}",
                            show(&self.client.buf),
                            self.context()
                        ));
                    }
                    break;
                }
                let buf = &self.client.buf;
                let Some(eol) = find(buf, b"\r\n") else {
                    if buf.len() > 1024 {
                        return Err(format!("chunk-size line too long\n{}", self.context()));
                    }
                    break;
                };
                let line = String::from_utf8_lossy(&buf[..eol]).into_owned();
                let size_text = line.split(';').next().unwrap();
                if size_text.is_empty() || !size_text.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!(
                        "bad chunk-size line {line:?} (RFC 9112 §7.1)\n{}",
                        self.context()
                    ));
                }
                let size = usize::from_str_radix(size_text, 16)
                    .map_err(|_| format!("chunk size overflows: {line:?}"))?;
                if size == 0 {
                    // last-chunk, then the trailer section up to a blank line.
                    let rest = &buf[eol + 2..];
                    let end = if rest.starts_with(b"\r\n") {
                        Some(2)
                    } else {
                        find(rest, b"\r\n\r\n").map(|p| p + 4)
                    };
                    let Some(end) = end else { break };
                    self.client.buf.drain(..eol + 2 + end);
                    self.ending = Some(Ending::LastChunk);
                    continue;
                }
                let total = eol + 2 + size + 2;
                if buf.len() < total {
                    break;
                }
                if &buf[total - 2..total] != b"\r\n" {
                    return Err(format!(
                        "chunk data not followed by CRLF (chunk of {size} bytes)\n{}",
                        self.context()
                    ));
                }
                let data: Vec<u8> = buf[eol + 2..eol + 2 + size].to_vec();
                self.client.buf.drain(..total);
                self.push_text(&data);
            },
        }
        Ok(())
    }

    fn push_text(&mut self, data: &[u8]) {
        self.body_len += data.len();
        self.tail.extend_from_slice(data);
        if self.tail.len() > 2048 {
            let cut = self.tail.len() - 1024;
            self.tail.drain(..cut);
        }
        self.text.extend_from_slice(data);
        while let Some(nl) = self.text.iter().position(|&b| b == b'\n') {
            let line_bytes: Vec<u8> = self.text.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&line_bytes[..nl]).into_owned();
            if line.is_empty() {
                if !self.pending.is_empty() {
                    let lines = std::mem::take(&mut self.pending);
                    let mut raw = String::new();
                    let mut fields = Vec::new();
                    for l in &lines {
                        raw.push_str(l);
                        raw.push('\n');
                        if l.starts_with(':') {
                            continue;
                        }
                        let (name, value) = match l.split_once(':') {
                            Some((n, v)) => (n, v.strip_prefix(' ').unwrap_or(v)),
                            None => (l.as_str(), ""),
                        };
                        fields.push((name.to_string(), value.to_string()));
                    }
                    raw.push('\n');
                    self.items
                        .push_back(SseItem::Event(SseEvent { raw, fields }));
                }
            } else if line.starts_with(':') && self.pending.is_empty() {
                self.items.push_back(SseItem::Comment(line));
            } else {
                self.pending.push(line);
            }
        }
    }

    /// Whether the decoded text ends exactly at an item boundary (no
    /// partial line, no unfinished event block).
    pub fn at_boundary(&self) -> bool {
        self.text.is_empty() && self.pending.is_empty()
    }

    /// The next item, or why there is none yet:
    /// `Next::Ended` when the body ended, `Next::TimedOut` at `deadline`.
    /// Err only for a framing or read error.
    pub fn poll_next(&mut self, deadline: Instant) -> Result<Next, String> {
        loop {
            if let Some(item) = self.items.pop_front() {
                return Ok(Next::Item(item));
            }
            if let Some(how) = self.ending {
                return Ok(Next::Ended(how));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Next::TimedOut);
            }
            self.fill_once(Some(deadline - now))?;
        }
    }

    /// The next item. Ok(None) when the body ended (see `ending`); Err if
    /// `deadline` passes first, or on a framing error.
    pub fn next_item(&mut self, deadline: Instant) -> Result<Option<SseItem>, String> {
        match self.poll_next(deadline)? {
            Next::Item(item) => Ok(Some(item)),
            Next::Ended(_) => Ok(None),
            Next::TimedOut => Err(format!(
                "timed out waiting for the event stream\n{}",
                self.context()
            )),
        }
    }

    /// Non-blocking: reads what is there (socket in non-blocking mode, see
    /// `set_nonblocking`), decodes it, and returns whether anything arrived.
    pub fn pump(&mut self) -> Result<bool, String> {
        Ok(!matches!(self.fill_once(None)?, Fill::Idle))
    }

    /// Takes the next already-decoded item, without reading.
    pub fn pop_item(&mut self) -> Option<SseItem> {
        self.items.pop_front()
    }

    /// Reads the rest of the body: items until the body ends, which must
    /// happen before `deadline`. Returns the items and how it ended.
    pub fn read_to_end(&mut self, deadline: Instant) -> Result<(Vec<SseItem>, Ending), String> {
        let mut out = Vec::new();
        while let Some(item) = self.next_item(deadline)? {
            out.push(item);
        }
        Ok((out, self.ending.unwrap()))
    }

    /// After the terminating chunk: the server closes the connection (EOF
    /// or reset) before `deadline`, or keeps it for another request. Returns
    /// true when it was closed.
    pub fn wait_closed(&mut self, deadline: Instant) -> bool {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            self.client.set_read_timeout(deadline - now);
            match self.client.fill() {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}
