//! Request-head parsing and message framing (RFC 9112 §2–§6), with no I/O.
//!
//! `parse_head` takes the bytes buffered so far and either asks for more, rejects the request with
//! a precise [`ParseError`], or returns a [`Head`]: offsets into the buffer plus the decisions the
//! connection needs (body framing, keep-alive, `Expect: 100-continue`). Offsets instead of borrowed
//! slices let the connection keep the head in its read buffer while the body arrives.
//!
//! The pipeline:
//! 1. Enforce the request-target limit while the request line is still incomplete (414), so a
//!    client cannot make us buffer an endless URI.
//! 2. Let httparse parse the head; a partial head longer than the head limit is a 431.
//! 3. Classify the request-target form (RFC 9112 §3.2).
//! 4. Walk the header fields once: Host, Connection, Content-Length, Transfer-Encoding, Expect.
//! 5. Decide the framing of the body (RFC 9112 §6.3), rejecting anything ambiguous.

use std::fmt;
use std::mem::MaybeUninit;

use crate::http::status::StatusCode;

/// How much the parser may buffer and accept; every limit maps to one status code.
#[derive(Clone, Copy, Debug)]
pub struct ParseLimits {
    /// Request line plus header section, in bytes (431 beyond it).
    pub max_head_bytes: usize,
    /// Request-target length in bytes (414 beyond it).
    pub max_target_bytes: usize,
    /// Number of header fields (431 beyond it).
    pub max_headers: usize,
    /// Body length in bytes, after chunked decoding (413 beyond it).
    pub max_body_bytes: u64,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_head_bytes: 16 * 1024,
            max_target_bytes: 8 * 1024,
            max_headers: 100,
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Upper bound on header fields httparse is given room for; `max_headers` is capped to it.
pub const HEADER_SLOTS: usize = 256;

/// A byte range within the head buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    /// The bytes this span covers in `buf`.
    pub fn of(self, buf: &[u8]) -> &[u8] {
        &buf[self.start..self.end]
    }

    /// How many bytes it covers.
    pub fn len(self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(self) -> bool {
        self.end == self.start
    }

    fn within(outer: &[u8], inner: &[u8]) -> Span {
        let start = inner.as_ptr() as usize - outer.as_ptr() as usize;
        Span {
            start,
            end: start + inner.len(),
        }
    }
}

/// One header field as offsets into the head buffer.
#[derive(Clone, Copy, Debug, Default)]
pub struct HeaderSpan {
    pub name: Span,
    pub value: Span,
}

/// The two protocol versions we speak (RFC 9112 §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// The form of the request-target (RFC 9112 §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetForm {
    /// `/path?query`
    Origin,
    /// `http://authority/path?query`; `path` starts at the path (may be empty).
    Absolute { path: Span },
    /// `host:port`, only meaningful for CONNECT.
    Authority,
    /// `*`, only meaningful for OPTIONS.
    Asterisk,
}

/// How the request body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body at all.
    Empty,
    /// `Content-Length` bytes follow the head.
    Length(u64),
    /// The chunked transfer coding follows the head.
    Chunked,
}

/// A parsed request head: offsets into the buffer it was parsed from, and the framing decisions.
#[derive(Clone, Copy, Debug)]
pub struct Head {
    /// Bytes taken by the head, including the blank line (and any leading empty lines).
    pub len: usize,
    pub method: Span,
    pub target: Span,
    pub target_form: TargetForm,
    pub version: Version,
    pub framing: Framing,
    /// Whether the client allows the connection to persist after this exchange (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request (RFC 9110 §10.1.1).
    pub expect_continue: bool,
    /// The lengths of its header field names.
    pub name_lengths: NameLengths,
}

/// A set of the lengths of a request's header field names, modulo 64, in one word. Most
/// lookups are for fields a request does not carry (`If-None-Match`, `Range`, `Origin`, …):
/// with this, they end on one bit test instead of a scan of the fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NameLengths(u64);

impl NameLengths {
    pub fn insert(&mut self, name_len: usize) {
        self.0 |= Self::bit(name_len);
    }

    /// False if no field name has this length; true if one may have.
    #[inline]
    pub fn may_contain(self, name_len: usize) -> bool {
        self.0 & Self::bit(name_len) != 0
    }

    #[inline]
    fn bit(name_len: usize) -> u64 {
        1 << (name_len % 64)
    }
}

/// Why a request was rejected. Every variant is answered with its status and the connection is
/// closed: after a framing or syntax error the rest of the byte stream cannot be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// 400: syntax or framing error; the message says which.
    BadRequest(&'static str),
    /// 413: Content-Length (or the decoded chunked body) exceeds the body limit.
    BodyTooLarge,
    /// 414: request-target longer than the limit.
    UriTooLong,
    /// 417: an expectation other than 100-continue.
    ExpectationFailed,
    /// 431: head larger than the limit, or too many header fields.
    HeadTooLarge,
    /// 501: a transfer coding we do not implement.
    UnsupportedTransferCoding,
    /// 505: a well-formed HTTP version whose major version is not 1.
    VersionNotSupported,
}

impl ParseError {
    /// The response status for this error.
    pub fn status(self) -> StatusCode {
        match self {
            ParseError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ParseError::BodyTooLarge => StatusCode::CONTENT_TOO_LARGE,
            ParseError::UriTooLong => StatusCode::URI_TOO_LONG,
            ParseError::ExpectationFailed => StatusCode::EXPECTATION_FAILED,
            ParseError::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ParseError::UnsupportedTransferCoding => StatusCode::NOT_IMPLEMENTED,
            ParseError::VersionNotSupported => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::BadRequest(why) => write!(f, "bad request: {why}"),
            ParseError::BodyTooLarge => f.write_str("request body too large"),
            ParseError::UriTooLong => f.write_str("request-target too long"),
            ParseError::ExpectationFailed => f.write_str("unsupported expectation"),
            ParseError::HeadTooLarge => f.write_str("request header section too large"),
            ParseError::UnsupportedTransferCoding => f.write_str("unsupported transfer coding"),
            ParseError::VersionNotSupported => f.write_str("HTTP version not supported"),
        }
    }
}

impl std::error::Error for ParseError {}

/// `token = 1*tchar` (RFC 9110 §5.6.2): method names, field names, transfer codings.
pub fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
}

/// Parses the request head at the start of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed, `Ok(Some(head))` once the head is complete
/// (the first `head.len` bytes; the body, if any, follows), or the error to answer with.
/// `headers` is cleared and receives the header fields.
pub fn parse_head(
    buf: &[u8],
    limits: &ParseLimits,
    headers: &mut Vec<HeaderSpan>,
) -> Result<Option<Head>, ParseError> {
    // Nothing past the head limit can matter: a head that needs more is too large. So only
    // that much is looked at, and the verdict does not depend on bytes after it (a bad byte
    // there was a 400 when the bytes arrived whole, a 431 when they arrived a few at a time;
    // found by the `head` fuzz target).
    let buf = &buf[..buf.len().min(limits.max_head_bytes.saturating_add(1))];

    // 1. The request-target limit, checked on the raw request line so that it applies before
    //    the line is complete. The verdict is the one the bytes before the first byte too
    //    many already earn, if any (a bad method, say): a connection fed a byte at a time
    //    would have given that one (found by the `head` fuzz target).
    if let Some(excess_at) = target_excess(buf, limits.max_target_bytes) {
        return match parse_head(&buf[..excess_at], limits, headers) {
            Err(error) => Err(error),
            Ok(_) => Err(ParseError::UriTooLong),
        };
    }

    // 2. httparse does the tokenizing. It gets one slot more than the limit so that "too many"
    //    is distinguishable from "exactly at the limit".
    //    The slots are left uninitialized: no per-request memset of a few KiB.
    let max_headers = limits.max_headers.min(HEADER_SLOTS - 1);
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; HEADER_SLOTS];
    let mut request = httparse::Request::new(&mut []);
    let len = match request.parse_with_uninit_headers(buf, &mut slots[..max_headers + 1]) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > limits.max_head_bytes => {
            return Err(ParseError::HeadTooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(ParseError::HeadTooLarge),
        Err(httparse::Error::Version) => {
            return match version_error(buf)? {
                // As for any partial head: one already past the limit is too large (found by
                // the `head` fuzz target: a long line ending in `HTTP/1.2` at the limit).
                VersionVerdict::Partial if buf.len() > limits.max_head_bytes => {
                    Err(ParseError::HeadTooLarge)
                }
                VersionVerdict::Partial => Ok(None),
                VersionVerdict::LaterMinor { digit_at } => {
                    parse_as_http11(buf, digit_at, limits, headers)
                }
            };
        }
        Err(error) => return Err(ParseError::BadRequest(httparse_reason(error))),
    };
    if len > limits.max_head_bytes {
        return Err(ParseError::HeadTooLarge);
    }
    let (Some(method), Some(target), Some(minor)) = (request.method, request.path, request.version)
    else {
        return Err(ParseError::BadRequest("incomplete request line"));
    };
    if request.headers.len() > max_headers {
        return Err(ParseError::HeadTooLarge);
    }
    let version = if minor == 0 {
        Version::Http10
    } else {
        Version::Http11
    };

    // 3. The request-target.
    if target.len() > limits.max_target_bytes {
        return Err(ParseError::UriTooLong);
    }
    let target_form = target_form(target.as_bytes())?;
    let target_span = Span::within(buf, target.as_bytes());
    let target_form = match target_form {
        TargetForm::Absolute { path } => TargetForm::Absolute {
            path: Span {
                start: target_span.start + path.start,
                end: target_span.start + path.end,
            },
        },
        other => other,
    };

    // 4. One pass over the fields.
    let mut fields = Fields::default();
    let mut name_lengths = NameLengths::default();
    headers.clear();
    for header in request.headers.iter() {
        name_lengths.insert(header.name.len());
        headers.push(HeaderSpan {
            name: Span::within(buf, header.name.as_bytes()),
            value: Span::within(buf, header.value),
        });
        fields.see(header.name, header.value, limits)?;
    }

    // RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host, and a valid one.
    if version == Version::Http11 && fields.host_count == 0 {
        return Err(ParseError::BadRequest("missing Host header"));
    }
    if fields.host_count > 1 {
        return Err(ParseError::BadRequest("more than one Host header"));
    }

    // 5. Framing.
    let framing = framing(&fields, version, limits)?;
    let keep_alive = match version {
        Version::Http11 => !fields.connection_close,
        Version::Http10 => fields.connection_keep_alive && !fields.connection_close,
    };

    Ok(Some(Head {
        len,
        method: Span::within(buf, method.as_bytes()),
        target: target_span,
        target_form,
        version,
        framing,
        keep_alive,
        expect_continue: version == Version::Http11 && fields.expect_continue,
        name_lengths,
    }))
}

/// The path of the request line at the start of `buf`, if that much of it arrived and is
/// readable: used to pick the format of an error response for a request that failed to parse.
pub fn request_path(buf: &[u8]) -> Option<&str> {
    let start = buf.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let line = &buf[start..];
    let line = &line[..memchr::memchr(b'\n', line).unwrap_or(line.len())];
    let mut parts = line.split(|&b| b == b' ');
    let (_method, target) = (parts.next()?, parts.next()?);
    let path = target.split(|&b| b == b'?').next()?;
    std::str::from_utf8(path)
        .ok()
        .filter(|path| path.starts_with('/'))
}

/// What one pass over the header fields found.
#[derive(Default)]
struct Fields {
    host_count: usize,
    content_length: Option<u64>,
    content_length_too_large: bool,
    /// Whether any Transfer-Encoding field was present.
    transfer_encoding_seen: bool,
    /// How many times `chunked` was listed, across all Transfer-Encoding fields.
    chunked_count: usize,
    /// Whether the last transfer coding listed is `chunked`.
    chunked_last: bool,
    /// Whether a coding other than `chunked` was listed.
    other_coding: bool,
    connection_close: bool,
    connection_keep_alive: bool,
    expect_continue: bool,
}

impl Fields {
    fn see(&mut self, name: &str, value: &[u8], limits: &ParseLimits) -> Result<(), ParseError> {
        if name.eq_ignore_ascii_case("host") {
            self.host_count += 1;
            if !valid_host(value) {
                return Err(ParseError::BadRequest("invalid Host header"));
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            self.see_content_length(value, limits)?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            self.see_transfer_encoding(value)?;
        } else if name.eq_ignore_ascii_case("connection") {
            for option in list_elements(value) {
                if option.eq_ignore_ascii_case(b"close") {
                    self.connection_close = true;
                } else if option.eq_ignore_ascii_case(b"keep-alive") {
                    self.connection_keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("expect") {
            // RFC 9110 §10.1.1: 100-continue is the only expectation defined.
            if value.eq_ignore_ascii_case(b"100-continue") {
                self.expect_continue = true;
            } else {
                return Err(ParseError::ExpectationFailed);
            }
        }
        Ok(())
    }

    /// RFC 9110 §8.6: `Content-Length = 1*DIGIT`. A list of identical values (in one field or
    /// several) is accepted as one; differing values are a framing error (RFC 9112 §6.3 ¶5).
    fn see_content_length(&mut self, value: &[u8], limits: &ParseLimits) -> Result<(), ParseError> {
        let mut any = false;
        for element in value.split(|&b| b == b',') {
            let digits = trim_ows(element);
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(ParseError::BadRequest("invalid Content-Length"));
            }
            any = true;
            let parsed = parse_decimal(digits);
            let length = parsed.unwrap_or(u64::MAX);
            match self.content_length {
                Some(previous) if previous != length => {
                    return Err(ParseError::BadRequest("conflicting Content-Length values"));
                }
                _ => self.content_length = Some(length),
            }
            if parsed.is_none() || length > limits.max_body_bytes {
                self.content_length_too_large = true;
            }
        }
        if !any {
            return Err(ParseError::BadRequest("invalid Content-Length"));
        }
        Ok(())
    }

    /// RFC 9112 §6.1: codings are applied in the order listed; chunked must be last and once.
    fn see_transfer_encoding(&mut self, value: &[u8]) -> Result<(), ParseError> {
        self.transfer_encoding_seen = true;
        let mut any = false;
        for coding in value.split(|&b| b == b',') {
            let coding = trim_ows(coding);
            if coding.is_empty() {
                continue;
            }
            any = true;
            // A coding may carry parameters (`gzip;q=1`); only its name matters here.
            let name = trim_ows(coding.split(|&b| b == b';').next().unwrap_or(coding));
            if name.eq_ignore_ascii_case(b"chunked") {
                if name.len() != coding.len() {
                    return Err(ParseError::BadRequest("parameters on chunked"));
                }
                self.chunked_count += 1;
                self.chunked_last = true;
            } else {
                self.other_coding = true;
                self.chunked_last = false;
            }
        }
        if !any {
            return Err(ParseError::BadRequest("empty Transfer-Encoding"));
        }
        Ok(())
    }
}

/// RFC 9112 §6.3: decides how the body is delimited, refusing every ambiguous case.
fn framing(fields: &Fields, version: Version, limits: &ParseLimits) -> Result<Framing, ParseError> {
    if fields.transfer_encoding_seen {
        // §6.1: HTTP/1.0 has no transfer codings; treat the framing as faulty.
        if version == Version::Http10 {
            return Err(ParseError::BadRequest(
                "Transfer-Encoding in an HTTP/1.0 request",
            ));
        }
        // §6.3 ¶3: both headers is a smuggling signature; we reject rather than guess.
        if fields.content_length.is_some() {
            return Err(ParseError::BadRequest(
                "both Transfer-Encoding and Content-Length",
            ));
        }
        // §6.3 ¶4: chunked not last means the length cannot be determined.
        if !fields.chunked_last {
            return Err(ParseError::BadRequest(
                "chunked is not the final transfer coding",
            ));
        }
        // §7.1: chunked must not be applied more than once.
        if fields.chunked_count > 1 {
            return Err(ParseError::BadRequest("chunked applied more than once"));
        }
        // §6.1: a coding we do not understand (gzip, chunked) → 501.
        if fields.other_coding {
            return Err(ParseError::UnsupportedTransferCoding);
        }
        return Ok(Framing::Chunked);
    }
    match fields.content_length {
        None | Some(0) => Ok(Framing::Empty),
        Some(_) if fields.content_length_too_large => Err(ParseError::BodyTooLarge),
        Some(length) if length > limits.max_body_bytes => Err(ParseError::BodyTooLarge),
        Some(length) => Ok(Framing::Length(length)),
    }
}

/// Where the first byte of the request-target past `max` is, if it arrived: a target too
/// long is refused even while the request line is incomplete.
fn target_excess(buf: &[u8], max: usize) -> Option<usize> {
    // No room for a target that long: the usual case, decided without a scan.
    if buf.len() <= max {
        return None;
    }
    // Skip the empty lines a client may send before the request line (RFC 9112 §2.2).
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let line = &buf[start..];
    let line = match memchr::memchr(b'\n', line) {
        Some(end) => &line[..end],
        None => line,
    };
    let method_end = memchr::memchr(b' ', line)?;
    let rest = &line[method_end + 1..];
    let target_len = memchr::memchr(b' ', rest).unwrap_or(rest.len());
    (target_len > max).then_some(start + method_end + 1 + max)
}

/// RFC 9112 §3.2: which of the four forms the target has. Anything else is a 400.
fn target_form(target: &[u8]) -> Result<TargetForm, ParseError> {
    if target.first() == Some(&b'/') {
        return Ok(TargetForm::Origin);
    }
    if target == b"*" {
        return Ok(TargetForm::Asterisk);
    }
    for scheme in [&b"http://"[..], b"https://"] {
        if target.len() >= scheme.len() && target[..scheme.len()].eq_ignore_ascii_case(scheme) {
            let rest = &target[scheme.len()..];
            let authority_len = rest
                .iter()
                .position(|&b| b == b'/' || b == b'?' || b == b'#')
                .unwrap_or(rest.len());
            if authority_len == 0 || !valid_host(&rest[..authority_len]) {
                return Err(ParseError::BadRequest(
                    "invalid authority in absolute-form target",
                ));
            }
            let path_start = scheme.len() + authority_len;
            return Ok(TargetForm::Absolute {
                path: Span {
                    start: path_start,
                    end: target.len(),
                },
            });
        }
    }
    if !target.contains(&b'/') && target.contains(&b':') && valid_host(target) {
        return Ok(TargetForm::Authority);
    }
    Err(ParseError::BadRequest("invalid request-target"))
}

/// RFC 9110 §7.2: `Host = uri-host [ ":" port ]`, where uri-host is an IP literal in brackets,
/// an IPv4 address or a reg-name. Empty is allowed (a target without authority).
fn valid_host(value: &[u8]) -> bool {
    if let Some(b'[') = value.first() {
        return valid_ip_literal_host(value);
    }
    // A reg-name (or IPv4 address), then the port after the only colon: every request's Host
    // is checked, so in one forward pass with a table lookup per byte and no branch but the
    // loop's. Each byte must be allowed where it stands; the first colon moves to the port.
    let mut allowed = IN_HOST;
    let mut valid = true;
    for &byte in value {
        let class = HOST_BYTES[usize::from(byte)];
        valid &= class & allowed != 0;
        if class == COLON {
            allowed = IN_PORT;
        }
    }
    valid
}

/// `[` IP-literal `]` [ ":" port ], the literal checked loosely: hex digits, colons and dots.
fn valid_ip_literal_host(value: &[u8]) -> bool {
    let Some(close) = value.iter().position(|&b| b == b']') else {
        return false;
    };
    let literal = &value[1..close];
    let literal_ok = !literal.is_empty()
        && literal
            .iter()
            .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    literal_ok
        && match &value[close + 1..] {
            [] => true,
            [b':', port @ ..] => port.iter().all(u8::is_ascii_digit),
            _ => false,
        }
}

/// Where a byte may stand in a Host value outside brackets, as flags: in the host (a reg-name,
/// RFC 3986 §3.2.2: unreserved, pct-encoded, sub-delims; or an IPv4 address), in the port.
const IN_HOST: u8 = 1;
const IN_PORT: u8 = 2;
/// The colon before the port: in the host part only, where it ends the host.
const COLON: u8 = IN_HOST | 4;

const HOST_BYTES: [u8; 256] = {
    let mut table = [0; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        if byte.is_ascii_digit() {
            table[b] = IN_HOST | IN_PORT;
        } else if byte.is_ascii_alphabetic() {
            table[b] = IN_HOST;
        }
        b += 1;
    }
    let others = b"-._~%!$&'()*+,;=";
    let mut i = 0;
    while i < others.len() {
        table[others[i] as usize] = IN_HOST;
        i += 1;
    }
    table[b':' as usize] = COLON;
    table
};

/// The elements of a comma-separated list field (RFC 9110 §5.6.1), trimmed, empties skipped.
fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|element| !element.is_empty())
}

fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// Parses ASCII digits; `None` on overflow.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// What an `HTTP/x.y` token httparse refused turned out to be.
enum VersionVerdict {
    /// The token may still become `HTTP/x.y`: wait for more bytes.
    Partial,
    /// `HTTP/1.y` with y > 1; the minor digit is at `digit_at`.
    LaterMinor { digit_at: usize },
}

/// httparse reports any version but 1.0 and 1.1 as `Version`. RFC 9110 §2.5: a recipient
/// "SHOULD process" a message with a higher minor version "as if it were in the highest minor
/// version within that major version to which the recipient is conformant", so `HTTP/1.2`
/// (any 1.y, y > 1) is served as HTTP/1.1. Any other well-formed `HTTP/x.y` is a 505
/// (RFC 9110 §15.6.6), anything else a malformed request line. A token that may still become
/// `HTTP/x.y` waits for more bytes.
fn version_error(buf: &[u8]) -> Result<VersionVerdict, ParseError> {
    const PATTERN: &[u8] = b"HTTP/d.d";
    let matches_pattern = |token: &[u8]| {
        token.len() <= PATTERN.len()
            && token.iter().zip(PATTERN).all(|(&b, &p)| match p {
                b'd' => b.is_ascii_digit(),
                _ => b == p,
            })
    };
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let line_end = memchr::memchr(b'\n', &buf[start..]).map(|end| start + end);
    let line = &buf[start..line_end.unwrap_or(buf.len())];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // The version is the rest of the line after method and target (RFC 9112 §3: method SP
    // request-target SP HTTP-version). Not the last word: in `GET /a b HTTP/1.1` httparse
    // refused `b`, and reading `HTTP/1.1` there sent the parse round for ever (a stack
    // overflow, found by the `head` fuzz target's seeds).
    let version = line.splitn(3, |&b| b == b' ').nth(2).unwrap_or_default();
    match line_end {
        Some(_) if version.len() == PATTERN.len() && matches_pattern(version) => {
            match version.strip_prefix(b"HTTP/1.") {
                // httparse takes 1.0 and 1.1 itself: if it refused one, something else on the
                // line is wrong, and parsing it again as HTTP/1.1 would refuse it again.
                Some([b'0' | b'1']) => Err(ParseError::BadRequest("invalid request line")),
                Some(_) => {
                    let digit_at = start + line.len() - 1;
                    Ok(VersionVerdict::LaterMinor { digit_at })
                }
                None => Err(ParseError::VersionNotSupported),
            }
        }
        None if matches_pattern(version) => Ok(VersionVerdict::Partial),
        _ => Err(ParseError::BadRequest("invalid HTTP version")),
    }
}

/// Parses a head whose request line says `HTTP/1.y` (y > 1) as the HTTP/1.1 it is served as:
/// from a copy with the minor digit at `digit_at` replaced. Spans are offsets, so they hold for
/// `buf` too. Only the head can matter, so the copy stops one byte past the head limit (a
/// longer head is still "too large"). Rare, so the copy costs nothing that matters.
fn parse_as_http11(
    buf: &[u8],
    digit_at: usize,
    limits: &ParseLimits,
    headers: &mut Vec<HeaderSpan>,
) -> Result<Option<Head>, ParseError> {
    let mut copy = buf[..buf.len().min(limits.max_head_bytes + 1)].to_vec();
    match copy.get_mut(digit_at) {
        Some(digit) => *digit = b'1',
        None => return Err(ParseError::HeadTooLarge),
    }
    parse_head(&copy, limits, headers)
}

fn httparse_reason(error: httparse::Error) -> &'static str {
    match error {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token in request line",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "invalid HTTP version",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ParseLimits {
        ParseLimits {
            max_head_bytes: 1024,
            max_target_bytes: 64,
            max_headers: 8,
            max_body_bytes: 1000,
        }
    }

    fn parse(input: &[u8]) -> Result<Option<Head>, ParseError> {
        parse_head(input, &limits(), &mut Vec::new())
    }

    /// Feeds `input` one prefix at a time: every strict prefix must be Partial or already the
    /// same error; the full input must give `expected`.
    fn check_every_split(input: &[u8], expected: &Result<Option<Head>, ParseError>) {
        for cut in 0..input.len() {
            match (parse(&input[..cut]), expected) {
                (Ok(None), _) => {}
                (Err(e), Err(want)) if e == *want => {}
                (other, _) => panic!(
                    "prefix {cut} of {:?} gave {other:?}, expected Partial or {expected:?}",
                    String::from_utf8_lossy(input)
                ),
            }
        }
    }

    enum Want {
        Ok { framing: Framing, keep_alive: bool },
        Err(ParseError),
    }

    const CASES: &[(&str, &[u8], Want)] = &[
        (
            "simple GET",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            Want::Ok { framing: Framing::Empty, keep_alive: true },
        ),
        (
            "leading empty line is skipped",
            b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            Want::Ok { framing: Framing::Empty, keep_alive: true },
        ),
        (
            "HTTP/1.0 closes by default",
            b"GET / HTTP/1.0\r\n\r\n",
            Want::Ok { framing: Framing::Empty, keep_alive: false },
        ),
        (
            "HTTP/1.0 keep-alive",
            b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
            Want::Ok { framing: Framing::Empty, keep_alive: true },
        ),
        (
            "Connection: close in a list",
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n",
            Want::Ok { framing: Framing::Empty, keep_alive: false },
        ),
        (
            "Content-Length",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
            Want::Ok { framing: Framing::Length(5), keep_alive: true },
        ),
        (
            "identical Content-Length repeated",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n",
            Want::Ok { framing: Framing::Length(5), keep_alive: true },
        ),
        (
            "Content-Length zero",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
            Want::Ok { framing: Framing::Empty, keep_alive: true },
        ),
        (
            "chunked",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
            Want::Ok { framing: Framing::Chunked, keep_alive: true },
        ),
        (
            "Host with port and IPv6 literal",
            b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
            Want::Ok { framing: Framing::Empty, keep_alive: true },
        ),
        (
            "absolute-form",
            b"GET http://example.com/x?y HTTP/1.1\r\nHost: other\r\n\r\n",
            Want::Ok { framing: Framing::Empty, keep_alive: true },
        ),
        (
            "asterisk-form",
            b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
            Want::Ok { framing: Framing::Empty, keep_alive: true },
        ),
        (
            "missing Host",
            b"GET / HTTP/1.1\r\n\r\n",
            Want::Err(ParseError::BadRequest("missing Host header")),
        ),
        (
            "two Hosts",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            Want::Err(ParseError::BadRequest("more than one Host header")),
        ),
        (
            "invalid Host",
            b"GET / HTTP/1.1\r\nHost: a b/c\r\n\r\n",
            Want::Err(ParseError::BadRequest("invalid Host header")),
        ),
        (
            "TE and CL",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            Want::Err(ParseError::BadRequest("both Transfer-Encoding and Content-Length")),
        ),
        (
            "differing Content-Length",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            Want::Err(ParseError::BadRequest("conflicting Content-Length values")),
        ),
        (
            "signed Content-Length",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n",
            Want::Err(ParseError::BadRequest("invalid Content-Length")),
        ),
        (
            "hex Content-Length",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\n",
            Want::Err(ParseError::BadRequest("invalid Content-Length")),
        ),
        (
            "empty Content-Length",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
            Want::Err(ParseError::BadRequest("invalid Content-Length")),
        ),
        (
            "Content-Length over the limit",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n",
            Want::Err(ParseError::BodyTooLarge),
        ),
        (
            "Content-Length overflowing u64",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            Want::Err(ParseError::BodyTooLarge),
        ),
        (
            "gzip only",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
            Want::Err(ParseError::BadRequest("chunked is not the final transfer coding")),
        ),
        (
            "chunked then gzip",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            Want::Err(ParseError::BadRequest("chunked is not the final transfer coding")),
        ),
        (
            "gzip, chunked",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            Want::Err(ParseError::UnsupportedTransferCoding),
        ),
        (
            "chunked twice across fields",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            Want::Err(ParseError::BadRequest("chunked applied more than once")),
        ),
        (
            "TE in HTTP/1.0",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            Want::Err(ParseError::BadRequest("Transfer-Encoding in an HTTP/1.0 request")),
        ),
        (
            "HTTP/2.0",
            b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
            Want::Err(ParseError::VersionNotSupported),
        ),
        (
            "HTTP/1.2 is served as HTTP/1.1 (RFC 9110 §2.5)",
            b"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
            Want::Ok { framing: Framing::Empty, keep_alive: true },
        ),
        (
            "HTTP/1.9 needs Host like HTTP/1.1",
            b"GET / HTTP/1.9\r\n\r\n",
            Want::Err(ParseError::BadRequest("missing Host header")),
        ),
        (
            "HTTP/1.9 with a body",
            b"POST / HTTP/1.9\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
            Want::Ok { framing: Framing::Length(5), keep_alive: true },
        ),
        (
            "HTTP/0.9",
            b"GET / HTTP/0.9\r\nHost: a\r\n\r\n",
            Want::Err(ParseError::VersionNotSupported),
        ),
        (
            "garbage version",
            b"GET / FOO/1.1\r\nHost: a\r\n\r\n",
            Want::Err(ParseError::BadRequest("invalid HTTP version")),
        ),
        (
            "space before colon",
            b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
            Want::Err(ParseError::BadRequest("invalid header name")),
        ),
        (
            "obs-fold",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n  2\r\n\r\n",
            Want::Err(ParseError::BadRequest("invalid header name")),
        ),
        (
            "target without slash",
            b"GET index.html HTTP/1.1\r\nHost: a\r\n\r\n",
            Want::Err(ParseError::BadRequest("invalid request-target")),
        ),
        (
            "unknown expectation",
            b"POST / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\n\r\n",
            Want::Err(ParseError::ExpectationFailed),
        ),
        (
            "too many headers",
            b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\nF: 1\r\nG: 1\r\nH: 1\r\n\r\n",
            Want::Err(ParseError::HeadTooLarge),
        ),
        (
            "a space in the target (not a version after it: once, a stack overflow)",
            b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
            Want::Err(ParseError::BadRequest("invalid HTTP version")),
        ),
        (
            "a space in the target, later minor version",
            b"GET /a b HTTP/1.2\r\nHost: a\r\n\r\n",
            Want::Err(ParseError::BadRequest("invalid HTTP version")),
        ),
        (
            "long target",
            b"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: a\r\n\r\n",
            Want::Err(ParseError::UriTooLong),
        ),
    ];

    #[test]
    fn host_values_are_reg_names_ip_literals_and_ports() {
        for good in [
            &b""[..],
            b"example.com",
            b"127.0.0.1:8080",
            b"[::1]:80",
            b"a-b.c_d~e%20!$&'()*+,;=",
            b"h:",
            b"1.2.3.4",
        ] {
            assert!(valid_host(good), "{}", String::from_utf8_lossy(good));
        }
        for bad in [
            &b"a b"[..],
            b"a/b",
            b"user@host",
            b"a\"b",
            b"<a>",
            b"h:8o",
            b"[::1",
            b"[]",
            b"[::1]x",
            b"[::1]:8o",
            b"a:1:2",
            b"h:80:",
            "h\u{e9}.fr".as_bytes(),
        ] {
            assert!(!valid_host(bad), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn table_cases_whole_and_split_at_every_byte() {
        for (name, input, want) in CASES {
            let got = parse(input);
            match (want, &got) {
                (
                    Want::Ok {
                        framing,
                        keep_alive,
                    },
                    Ok(Some(head)),
                ) => {
                    assert_eq!(head.framing, *framing, "{name}");
                    assert_eq!(head.keep_alive, *keep_alive, "{name}");
                    assert_eq!(head.len, input.len(), "{name}");
                }
                (Want::Err(error), Err(got_error)) => assert_eq!(got_error, error, "{name}"),
                _ => panic!("{name}: got {got:?}"),
            }
            check_every_split(input, &got);
        }
    }

    #[test]
    fn spans_point_at_method_target_and_fields() {
        let input = b"GET /a?b HTTP/1.1\r\nHost: example\r\nX-Y:  z \r\n\r\nBODY";
        let mut headers = Vec::new();
        let head = parse_head(input, &limits(), &mut headers).unwrap().unwrap();
        assert_eq!(head.method.of(input), b"GET");
        assert_eq!(head.target.of(input), b"/a?b");
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[1].name.of(input), b"X-Y");
        assert_eq!(headers[1].value.of(input), b"z");
        assert_eq!(&input[head.len..], b"BODY");
    }

    #[test]
    fn absolute_form_path_span() {
        let input = b"GET HTTP://example.com:80/p?q HTTP/1.1\r\nHost: a\r\n\r\n";
        let head = parse_head(input, &limits(), &mut Vec::new())
            .unwrap()
            .unwrap();
        let TargetForm::Absolute { path } = head.target_form else {
            panic!("{:?}", head.target_form);
        };
        assert_eq!(path.of(input), b"/p?q");
    }

    #[test]
    fn request_path_of_a_rejected_request() {
        assert_eq!(
            request_path(b"POST /api/x?y HTTP/1.1\r\nContent-Length: zz"),
            Some("/api/x")
        );
        assert_eq!(request_path(b"\r\nGET /a HTTP/1.1"), Some("/a"));
        assert_eq!(request_path(b"GET"), None);
        assert_eq!(request_path(b"GET * HTTP/1.1"), None);
    }

    #[test]
    fn incomplete_long_target_is_414_before_the_line_ends() {
        let mut input = b"GET /".to_vec();
        input.extend(std::iter::repeat_n(b'a', 100));
        assert_eq!(parse(&input).unwrap_err(), ParseError::UriTooLong);
    }

    #[test]
    fn a_bad_byte_past_the_head_limit_is_the_head_too_large() {
        // The head limit is 1024: the bad value byte comes after it, so the head is too large
        // before it is bad, whole or split.
        let mut input = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        input.extend(std::iter::repeat_n(b'v', 1100));
        input.extend_from_slice(b"\x01\r\n\r\n");
        assert_eq!(parse(&input).map(|_| ()), Err(ParseError::HeadTooLarge));
        check_every_split(&input, &parse(&input));
    }

    #[test]
    fn a_target_too_long_after_a_bad_method_is_the_bad_method() {
        // Byte by byte, the method fails first; whole, it must fail the same way.
        let mut input = b"G\x01T /".to_vec();
        input.extend(std::iter::repeat_n(b'a', 100));
        input.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\n\r\n");
        let expected = Err(ParseError::BadRequest("invalid token in request line"));
        assert_eq!(parse(&input).map(|_| ()), expected);
        check_every_split(&input, &parse(&input));
    }

    #[test]
    fn head_over_the_limit_is_431_while_partial() {
        let mut input = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        input.extend(std::iter::repeat_n(b'a', 2000));
        assert_eq!(parse(&input).unwrap_err(), ParseError::HeadTooLarge);
    }

    #[test]
    fn a_later_minor_version_reaching_the_head_limit_unfinished_is_431() {
        // The request line ends with `HTTP/1.2` exactly at the limit; its line end comes after.
        let method = "M".repeat(limits().max_head_bytes - " / HTTP/1.2".len() + 1);
        let input = format!("{method} / HTTP/1.2\r\nHost: a\r\n\r\n");
        assert_eq!(
            parse(input.as_bytes()).unwrap_err(),
            ParseError::HeadTooLarge
        );
        check_every_split(input.as_bytes(), &parse(input.as_bytes()));
    }

    #[test]
    fn expect_continue_only_for_http11() {
        let head = parse(
            b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert!(head.expect_continue);
        let head = parse(b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!head.expect_continue);
    }
}
