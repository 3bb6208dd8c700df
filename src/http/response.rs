//! Responses: the builder handlers use, and the encoding of a response head into bytes.
//!
//! Encoding is pure: it appends to a `Vec<u8>` and never touches a socket or a file. A file body
//! is carried as an open [`File`] and its length; the connection decides how to send it.
//!
//! Every head carries `Server`, `Date` and, where a body is allowed, `Content-Length`
//! (RFC 9110 §8.6); 1xx, 204 and 304 responses carry neither a body nor a length
//! (RFC 9110 §15.3.5, §15.4.5; [`StatusCode::allows_body`]).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fs::File;
use std::ops::Range;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::http::date::IMF_FIXDATE_LEN;
use crate::http::status::StatusCode;

/// What follows the head.
#[derive(Debug, Default)]
pub enum Body {
    #[default]
    Empty,
    Bytes(Cow<'static, [u8]>),
    /// A range of bytes shared with a cache (a static file held in memory).
    Shared {
        bytes: Arc<[u8]>,
        range: Range<usize>,
    },
    /// `len` bytes of an open file, from `offset`.
    File {
        file: File,
        offset: u64,
        len: u64,
    },
    /// Ranges of an open file with bytes between them, in order: a `multipart/byteranges`
    /// body streamed from the file, never read into memory as a whole.
    FileParts {
        file: File,
        parts: VecDeque<FilePart>,
    },
}

/// The next piece of a body to send: bytes in memory, or a range of an open file (which the
/// server sends with sendfile, or reads and encrypts).
#[derive(Debug)]
pub enum BodySlice<'a> {
    Bytes(&'a [u8]),
    File {
        file: &'a File,
        offset: u64,
        len: u64,
    },
}

/// One piece of a [`Body::FileParts`].
#[derive(Debug)]
pub enum FilePart {
    /// Bytes of our own (multipart framing).
    Bytes(Vec<u8>),
    /// A range of the file.
    Range(Range<u64>),
}

impl FilePart {
    pub fn len(&self) -> u64 {
        match self {
            FilePart::Bytes(bytes) => bytes.len() as u64,
            FilePart::Range(range) => range.end.saturating_sub(range.start),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The length of a multipart body: out of line, so that [`Body::len`] inlines as a few
/// instructions for every other body.
#[inline(never)]
fn parts_len(parts: &VecDeque<FilePart>) -> u64 {
    parts.iter().map(FilePart::len).sum()
}

impl Body {
    /// The number of body bytes, as announced in `Content-Length`.
    #[inline]
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::Shared { range, .. } => range.len() as u64,
            Body::File { len, .. } => *len,
            Body::FileParts { parts, .. } => parts_len(parts),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The piece to send next; `None` once every byte is sent.
    pub fn front(&self) -> Option<BodySlice<'_>> {
        let slice = match self {
            Body::Empty => return None,
            Body::Bytes(bytes) => BodySlice::Bytes(bytes),
            Body::Shared { bytes, range } => BodySlice::Bytes(&bytes[range.clone()]),
            Body::File { file, offset, len } => BodySlice::File {
                file,
                offset: *offset,
                len: *len,
            },
            Body::FileParts { file, parts } => match parts.front()? {
                FilePart::Bytes(bytes) => BodySlice::Bytes(bytes),
                FilePart::Range(range) => BodySlice::File {
                    file,
                    offset: range.start,
                    len: range.end.saturating_sub(range.start),
                },
            },
        };
        match slice {
            BodySlice::Bytes([]) | BodySlice::File { len: 0, .. } => None,
            slice => Some(slice),
        }
    }

    /// Drops `n` sent bytes (at most the [`Body::front`] slice's length) from the front.
    pub fn advance(&mut self, n: usize) {
        match self {
            Body::Empty => {}
            Body::Bytes(Cow::Borrowed(bytes)) => *bytes = &bytes[n.min(bytes.len())..],
            Body::Bytes(Cow::Owned(bytes)) => {
                bytes.drain(..n.min(bytes.len()));
            }
            Body::Shared { range, .. } => range.start = (range.start + n).min(range.end),
            Body::File { offset, len, .. } => {
                let n = (n as u64).min(*len);
                *offset += n;
                *len -= n;
            }
            Body::FileParts { parts, .. } => {
                let done = match parts.front_mut() {
                    Some(FilePart::Bytes(bytes)) => {
                        bytes.drain(..n.min(bytes.len()));
                        bytes.is_empty()
                    }
                    Some(FilePart::Range(range)) => {
                        range.start = (range.start + n as u64).min(range.end);
                        range.is_empty()
                    }
                    None => false,
                };
                if done {
                    parts.pop_front();
                }
            }
        }
    }

    /// Takes the bytes at the front of a multipart body (its framing between file ranges), so
    /// that they can travel in the same write as what precedes them.
    pub fn take_leading_bytes(&mut self) -> Option<Vec<u8>> {
        let Body::FileParts { parts, .. } = self else {
            return None;
        };
        let Some(FilePart::Bytes(bytes)) = parts.front_mut() else {
            return None;
        };
        let bytes = std::mem::take(bytes);
        parts.pop_front();
        Some(bytes)
    }

    /// All of `bytes`, shared.
    pub fn shared(bytes: Arc<[u8]>) -> Body {
        let range = 0..bytes.len();
        Body::Shared { bytes, range }
    }
}

/// A header field value: a literal, a string made for this response, or one shared with a
/// cache (a static file's ETag, Last-Modified, Content-Type), which costs a reference count
/// rather than a copy per response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderValue {
    Static(&'static str),
    Owned(String),
    Shared(Arc<str>),
}

impl HeaderValue {
    pub fn as_str(&self) -> &str {
        match self {
            HeaderValue::Static(text) => text,
            HeaderValue::Owned(text) => text,
            HeaderValue::Shared(text) => text,
        }
    }
}

impl From<&'static str> for HeaderValue {
    fn from(text: &'static str) -> Self {
        HeaderValue::Static(text)
    }
}

impl From<String> for HeaderValue {
    fn from(text: String) -> Self {
        HeaderValue::Owned(text)
    }
}

impl From<Cow<'static, str>> for HeaderValue {
    fn from(text: Cow<'static, str>) -> Self {
        match text {
            Cow::Borrowed(text) => HeaderValue::Static(text),
            Cow::Owned(text) => HeaderValue::Owned(text),
        }
    }
}

impl From<Arc<str>> for HeaderValue {
    fn from(text: Arc<str>) -> Self {
        HeaderValue::Shared(text)
    }
}

impl From<&Arc<str>> for HeaderValue {
    fn from(text: &Arc<str>) -> Self {
        HeaderValue::Shared(Arc::clone(text))
    }
}

/// The header fields of a response, in order. The first lives inside the response: most
/// responses (JSON, errors) carry one, a `Content-Type`, and a static file's fields come
/// encoded once per file. One slot, not two, keeps a [`Response`] at 120 bytes, which the
/// compiler moves with a few register copies instead of a `memcpy` call; a response is moved
/// through every layer between its handler and the connection.
pub type HeaderFields = SmallVec<[(&'static str, HeaderValue); INLINE_HEADER_FIELDS]>;

/// Header fields a response holds without a heap allocation.
const INLINE_HEADER_FIELDS: usize = 1;

/// An HTTP response under construction.
#[derive(Debug)]
pub struct Response {
    status: StatusCode,
    headers: HeaderFields,
    /// Header fields encoded already (see [`Response::with_encoded_fields`]), sent after
    /// `headers`.
    encoded_fields: Option<Arc<[u8]>>,
    body: Body,
}

impl Response {
    /// A response with no header fields (beyond the ones the server adds) and no body.
    pub fn empty(status: StatusCode) -> Response {
        Response {
            status,
            headers: HeaderFields::new(),
            encoded_fields: None,
            body: Body::Empty,
        }
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: StatusCode, text: impl Into<Cow<'static, str>>) -> Response {
        let body = match text.into() {
            Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
            Cow::Owned(text) => Cow::Owned(text.into_bytes()),
        };
        Response::empty(status)
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_body(Body::Bytes(body))
    }

    /// A `text/html; charset=utf-8` response.
    pub fn html(status: StatusCode, html: impl Into<Cow<'static, str>>) -> Response {
        let mut response = Response::text(status, html);
        response.set_header("Content-Type", "text/html; charset=utf-8");
        response
    }

    /// A redirect to `location` (absolute or relative reference, RFC 9110 §10.2.2).
    pub fn redirect(status: StatusCode, location: impl Into<Cow<'static, str>>) -> Response {
        Response::text(status, status.reason_phrase().unwrap_or("Redirect"))
            .with_header("Location", location.into())
    }

    /// The standard error response: the status and its reason phrase as plain text.
    pub fn error(status: StatusCode) -> Response {
        let text = match status.status_line() {
            Some(line) => Cow::Borrowed(&line["HTTP/1.1 ".len()..]),
            None => Cow::Owned(format!("{status}\r\n")),
        };
        Response::text(status, text)
    }

    /// Adds a header field. Values must not contain CR or LF; any that do are replaced by
    /// spaces when the head is encoded, so a handler can never split a response.
    pub fn with_header(mut self, name: &'static str, value: impl Into<HeaderValue>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Replaces every field named `name` with one carrying `value`.
    pub fn set_header(&mut self, name: &'static str, value: impl Into<HeaderValue>) {
        self.headers
            .retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
        self.headers.push((name, value.into()));
    }

    /// Adds header fields encoded once beforehand with [`encode_fields`] (a cached file's, the
    /// same for every response): no list to build, no value to copy per response. They are
    /// not seen by [`Response::header`].
    pub fn with_encoded_fields(mut self, fields: Arc<[u8]>) -> Self {
        self.encoded_fields = Some(fields);
        self
    }

    pub fn with_body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The first value of the header field `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(existing, _)| existing.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn body(&self) -> &Body {
        &self.body
    }

    /// Splits the response into head fields and body for encoding.
    pub(crate) fn into_parts(self) -> (StatusCode, Fields, Body) {
        let fields = Fields {
            list: self.headers,
            encoded: self.encoded_fields,
        };
        (self.status, fields, self.body)
    }
}

/// A response's header fields, as encoding takes them: a list, then a block encoded already.
#[derive(Debug, Default)]
pub struct Fields {
    pub list: HeaderFields,
    pub encoded: Option<Arc<[u8]>>,
}

/// Anything a handler may return.
pub trait IntoResponse {
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

/// Whether the response head says anything about the connection (RFC 9112 §9.3, §9.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionHeader {
    /// HTTP/1.1 keep-alive: nothing to say.
    Omit,
    /// `Connection: keep-alive`, for HTTP/1.0 clients that asked for it.
    KeepAlive,
    /// `Connection: close`: the server closes after this response.
    Close,
}

/// How the body after a head is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// `Content-Length`: pass the length of the body a GET would carry, also for HEAD
    /// (RFC 9110 §9.3.2).
    Length(u64),
    /// `Transfer-Encoding: chunked`, for a body of unknown length to an HTTP/1.1 client.
    Chunked,
    /// Neither: the body ends when the connection closes (HTTP/1.0 clients).
    UntilClose,
}

/// Appends a complete response head to `out`. The framing header is written only for
/// statuses that allow a body.
pub fn encode_head(
    out: &mut Vec<u8>,
    status: StatusCode,
    fields: &Fields,
    framing: BodyFraming,
    date: &[u8; IMF_FIXDATE_LEN],
    connection: ConnectionHeader,
) {
    // The common prefix of every response, written in one copy; 200 is the fast path.
    match status.status_line() {
        Some(line) => out.extend_from_slice(line.as_bytes()),
        None => {
            out.extend_from_slice(b"HTTP/1.1 ");
            out.extend_from_slice(itoa::Buffer::new().format(status.as_u16()).as_bytes());
            out.extend_from_slice(b" \r\n");
        }
    }
    out.extend_from_slice(b"Server: looplight\r\nDate: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\n");
    encode_fields(out, &fields.list);
    if let Some(encoded) = &fields.encoded {
        out.extend_from_slice(encoded);
    }
    if status.allows_body() {
        match framing {
            BodyFraming::Length(length) => {
                out.extend_from_slice(b"Content-Length: ");
                out.extend_from_slice(itoa::Buffer::new().format(length).as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            BodyFraming::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
            BodyFraming::UntilClose => {}
        }
    }
    match connection {
        ConnectionHeader::Omit => {}
        ConnectionHeader::KeepAlive => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        ConnectionHeader::Close => out.extend_from_slice(b"Connection: close\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends header field lines. Values must not contain CR or LF; any that do are replaced by
/// spaces, so that no value can split a response.
pub fn encode_fields(out: &mut Vec<u8>, headers: &[(&'static str, HeaderValue)]) {
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        let start = out.len();
        out.extend_from_slice(value.as_str().as_bytes());
        for byte in &mut out[start..] {
            if *byte == b'\r' || *byte == b'\n' {
                *byte = b' ';
            }
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends `data` as one chunk of a chunked body (RFC 9112 §7.1); empty data is skipped, since
/// an empty chunk would end the body.
pub fn encode_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let mut size = [0u8; 16];
    let digits = hex_digits(data.len(), &mut size);
    out.extend_from_slice(digits);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The last chunk: ends a chunked body (no trailers).
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

fn hex_digits(mut n: usize, buf: &mut [u8; 16]) -> &[u8] {
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b"0123456789abcdef"[n % 16];
        n /= 16;
        if n == 0 {
            return &buf[start..];
        }
    }
}

/// The interim `100 Continue` response (RFC 9110 §15.2.1).
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8; IMF_FIXDATE_LEN] = b"Sun, 06 Nov 1994 08:49:37 GMT";

    fn encode(response: Response, connection: ConnectionHeader) -> String {
        let (status, headers, body) = response.into_parts();
        let mut out = Vec::new();
        let framing = BodyFraming::Length(body.len());
        encode_head(&mut out, status, &headers, framing, DATE, connection);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_response_head() {
        let head = encode(
            Response::text(StatusCode::OK, "hello"),
            ConnectionHeader::Omit,
        );
        assert_eq!(
            head,
            "HTTP/1.1 200 OK\r\nServer: looplight\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n\r\n"
        );
    }

    #[test]
    fn no_content_length_on_204_and_304() {
        for status in [StatusCode::NO_CONTENT, StatusCode::NOT_MODIFIED] {
            let head = encode(Response::empty(status), ConnectionHeader::Omit);
            assert!(!head.contains("Content-Length"), "{head}");
        }
    }

    #[test]
    fn connection_header_and_unknown_status() {
        let status = StatusCode::from_u16(299).unwrap();
        let head = encode(Response::empty(status), ConnectionHeader::Close);
        assert!(head.starts_with("HTTP/1.1 299 \r\n"), "{head}");
        assert!(
            head.ends_with("Content-Length: 0\r\nConnection: close\r\n\r\n"),
            "{head}"
        );
    }

    #[test]
    fn chunks_are_hex_framed_and_empty_data_is_skipped() {
        let mut out = Vec::new();
        encode_chunk(&mut out, b"hello world, sixteen+ bytes");
        encode_chunk(&mut out, b"");
        encode_chunk(&mut out, b"x");
        out.extend_from_slice(LAST_CHUNK);
        assert_eq!(
            out,
            b"1b\r\nhello world, sixteen+ bytes\r\n1\r\nx\r\n0\r\n\r\n"
        );
    }

    #[test]
    fn chunked_framing_head() {
        let (status, headers, _) = Response::empty(StatusCode::OK).into_parts();
        let mut out = Vec::new();
        encode_head(
            &mut out,
            status,
            &headers,
            BodyFraming::Chunked,
            DATE,
            ConnectionHeader::Omit,
        );
        assert!(
            String::from_utf8(out)
                .unwrap()
                .ends_with("Transfer-Encoding: chunked\r\n\r\n")
        );
    }

    #[test]
    fn header_values_cannot_split_the_response() {
        let response = Response::empty(StatusCode::OK).with_header("X-Evil", "a\r\nSet-Cookie: b");
        let head = encode(response, ConnectionHeader::Omit);
        assert!(head.contains("X-Evil: a  Set-Cookie: b\r\n"), "{head}");
    }

    #[test]
    fn error_body_and_reason() {
        let response = Response::error(StatusCode::NOT_FOUND);
        let Body::Bytes(text) = response.body() else {
            panic!("{:?}", response.body());
        };
        assert_eq!(&text[..], b"404 Not Found\r\n");
        let unnamed = Response::error(StatusCode::from_u16(299).unwrap());
        let Body::Bytes(text) = unnamed.body() else {
            panic!("{:?}", unnamed.body());
        };
        assert_eq!(&text[..], b"299\r\n");
    }
}
