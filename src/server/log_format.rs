//! The access log's line formats (`--log-format`): how one exchange becomes one line.
//!
//! - `common`: the Common Log Format, `host - - [date] "request" status bytes` (`-` for no body
//!   bytes); quotes and backslashes in the request line are escaped with a backslash.
//! - `combined`: the common line followed by `"Referer" "User-Agent"`, as nginx's default
//!   `combined` format writes them: `-` for a missing field, and `"`, `\`, control bytes and
//!   bytes above 0x7E as `\xHH` (nginx's `escape=default`).
//! - `json`: one JSON object per line, serialized by serde_json.
//!
//! Whatever the client sent, a line stays one line and its fields stay apart: every byte taken
//! from the request is escaped by the format's own rules (no raw newline can get through).

use std::borrow::Cow;
use std::io::Write;
use std::net::IpAddr;

use serde::Serialize;

use crate::http::conn::Exchange;
use crate::http::date::DateCache;

/// An access-log line format (see the module docs). The variants have no doc comments on
/// purpose: clap would list them as help text, one per line, and lay out all of `--help` that
/// way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Common,
    Combined,
    Json,
}

impl LogFormat {
    /// Appends the line (newline included) for `exchange`, with `peer` and the cached `date`.
    pub fn write_line(
        self,
        buf: &mut Vec<u8>,
        peer: IpAddr,
        date: &DateCache,
        exchange: &Exchange<'_>,
    ) {
        match self {
            LogFormat::Common => {
                common_fields(buf, peer, date, exchange);
            }
            LogFormat::Combined => {
                common_fields(buf, peer, date, exchange);
                let field = |name| exchange.request.as_ref()?.fields.get(name);
                buf.push(b' ');
                push_nginx_quoted(buf, field("referer"));
                buf.push(b' ');
                push_nginx_quoted(buf, field("user-agent"));
            }
            LogFormat::Json => json_object(buf, peer, date, exchange),
        }
        buf.push(b'\n');
    }
}

/// `host - - [date] "request" status bytes`
fn common_fields(buf: &mut Vec<u8>, peer: IpAddr, date: &DateCache, exchange: &Exchange<'_>) {
    let Exchange {
        request,
        status,
        body_bytes,
        ..
    } = exchange;
    // Writing into a Vec cannot fail.
    let _ = write!(buf, "{peer} - - [");
    buf.extend_from_slice(date.clf());
    buf.extend_from_slice(b"] \"");
    match request {
        Some(line) => {
            push_backslash_escaped(buf, line.method);
            buf.push(b' ');
            push_backslash_escaped(buf, line.target);
            buf.push(b' ');
            buf.extend_from_slice(line.version.as_bytes());
        }
        None => buf.push(b'-'),
    }
    buf.extend_from_slice(b"\" ");
    buf.extend_from_slice(itoa::Buffer::new().format(status.as_u16()).as_bytes());
    buf.push(b' ');
    if *body_bytes == 0 {
        buf.push(b'-');
    } else {
        buf.extend_from_slice(itoa::Buffer::new().format(*body_bytes).as_bytes());
    }
}

/// Quotes and backslashes are escaped so a crafted target cannot forge log fields (the request
/// line holds no control bytes: the parser refuses them).
fn push_backslash_escaped(buf: &mut Vec<u8>, text: &[u8]) {
    for &byte in text {
        if byte == b'"' || byte == b'\\' {
            buf.push(b'\\');
        }
        buf.push(byte);
    }
}

/// `"value"` escaped as nginx escapes variables in its logs, or `"-"` for no value.
fn push_nginx_quoted(buf: &mut Vec<u8>, value: Option<&[u8]>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    buf.push(b'"');
    match value {
        None => buf.push(b'-'),
        Some(value) => {
            for &byte in value {
                if byte == b'"' || byte == b'\\' || !(0x20..=0x7E).contains(&byte) {
                    let hex = [HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0xF)]];
                    buf.extend_from_slice(&[b'\\', b'x', hex[0], hex[1]]);
                } else {
                    buf.push(byte);
                }
            }
        }
    }
    buf.push(b'"');
}

/// One `json` line; field names are part of the format (documented in the README).
#[derive(Serialize)]
struct JsonLine<'a> {
    /// RFC 3339, UTC, to the second.
    time: &'a str,
    remote_addr: IpAddr,
    /// The request line's parts: null for input that was not a request.
    method: Option<Cow<'a, str>>,
    target: Option<Cow<'a, str>>,
    protocol: Option<&'a str>,
    status: u16,
    body_bytes: u64,
    /// Milliseconds from the request's first byte to its response, to the microsecond.
    duration_ms: f64,
    /// null when the request has no such field; bytes that are not UTF-8 become U+FFFD.
    referer: Option<Cow<'a, str>>,
    user_agent: Option<Cow<'a, str>>,
}

fn json_object(buf: &mut Vec<u8>, peer: IpAddr, date: &DateCache, exchange: &Exchange<'_>) {
    let request = exchange.request.as_ref();
    let field = |name| {
        let value = request?.fields.get(name)?;
        Some(String::from_utf8_lossy(value))
    };
    let micros = u64::try_from(exchange.duration.as_micros()).unwrap_or(u64::MAX);
    let line = JsonLine {
        time: date.rfc3339(),
        remote_addr: peer,
        method: request.map(|line| String::from_utf8_lossy(line.method)),
        target: request.map(|line| String::from_utf8_lossy(line.target)),
        protocol: request.map(|line| line.version),
        status: exchange.status.as_u16(),
        body_bytes: exchange.body_bytes,
        duration_ms: micros as f64 / 1000.0,
        referer: field("referer"),
        user_agent: field("user-agent"),
    };
    let start = buf.len();
    // Cannot fail (a Vec, plain data); if it somehow did, no half object is left behind.
    if serde_json::to_writer(&mut *buf, &line).is_err() {
        buf.truncate(start);
        buf.extend_from_slice(b"{}");
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::http::conn::{HeaderFields, RequestLine};
    use crate::http::parse::{HeaderSpan, ParseLimits, parse_head};
    use crate::http::status::StatusCode;

    /// A parsed request head, to log exchanges of.
    struct Parsed {
        raw: Vec<u8>,
        head_len: usize,
        spans: Vec<HeaderSpan>,
    }

    impl Parsed {
        fn new(raw: &[u8]) -> Parsed {
            let mut spans = Vec::new();
            let head = parse_head(raw, &ParseLimits::default(), &mut spans)
                .expect("a valid head")
                .expect("a complete head");
            Parsed {
                raw: raw.to_vec(),
                head_len: head.len,
                spans,
            }
        }

        fn exchange(&self, method: &'static str, target: &'static str) -> Exchange<'_> {
            Exchange {
                request: Some(RequestLine {
                    method: method.as_bytes(),
                    target: target.as_bytes(),
                    version: "HTTP/1.1",
                    fields: HeaderFields::new(&self.raw[..self.head_len], &self.spans),
                }),
                status: StatusCode::OK,
                body_bytes: 12,
                duration: Duration::from_micros(1_234),
            }
        }
    }

    fn date() -> DateCache {
        let mut date = DateCache::new();
        date.refresh(UNIX_EPOCH + Duration::from_secs(784_111_777));
        date
    }

    fn rejected() -> Exchange<'static> {
        Exchange {
            request: None,
            status: StatusCode::BAD_REQUEST,
            body_bytes: 0,
            duration: Duration::ZERO,
        }
    }

    fn line(format: LogFormat, exchange: &Exchange<'_>) -> String {
        let mut buf = Vec::new();
        format.write_line(&mut buf, [127, 0, 0, 1].into(), &date(), exchange);
        String::from_utf8(buf).expect("log lines are UTF-8 here")
    }

    /// Bytes a client may put in a header value (httparse takes tab, visible ASCII and
    /// obs-text) that a log must not show raw.
    const HOSTILE: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\
        Referer: http://x/?q=\"a\"\\b\tc\r\n\
        User-Agent: agent \"007\" \xc3\xa9 \xff\" 200 -\r\n\r\n";

    #[test]
    fn common_log_format_line() {
        let plain = Parsed::new(b"GET / HTTP/1.1\r\nHost: t\r\nUser-Agent: curl\r\n\r\n");
        assert_eq!(
            line(LogFormat::Common, &plain.exchange("GET", "/a\"b\\c")),
            "127.0.0.1 - - [06/Nov/1994:08:49:37 +0000] \"GET /a\\\"b\\\\c HTTP/1.1\" 200 12\n"
        );
        assert_eq!(
            line(LogFormat::Common, &rejected()),
            "127.0.0.1 - - [06/Nov/1994:08:49:37 +0000] \"-\" 400 -\n"
        );
    }

    #[test]
    fn combined_adds_referer_and_user_agent_escaped_as_nginx_does() {
        let plain = Parsed::new(
            b"GET / HTTP/1.1\r\nHost: t\r\nUser-Agent: curl/8.5\r\nReferer: /from\r\n\r\n",
        );
        assert_eq!(
            line(LogFormat::Combined, &plain.exchange("GET", "/x")),
            "127.0.0.1 - - [06/Nov/1994:08:49:37 +0000] \"GET /x HTTP/1.1\" 200 12 \
             \"/from\" \"curl/8.5\"\n"
        );
        let hostile = Parsed::new(HOSTILE);
        assert_eq!(
            line(LogFormat::Combined, &hostile.exchange("GET", "/\"q\"")),
            "127.0.0.1 - - [06/Nov/1994:08:49:37 +0000] \"GET /\\\"q\\\" HTTP/1.1\" 200 12 \
             \"http://x/?q=\\x22a\\x22\\x5Cb\\x09c\" \
             \"agent \\x22007\\x22 \\xC3\\xA9 \\xFF\\x22 200 -\"\n"
        );
        // Missing fields are `-`; an empty one is empty; none at all for a rejection.
        let bare = Parsed::new(b"GET / HTTP/1.1\r\nHost: t\r\nReferer:\r\n\r\n");
        assert!(
            line(LogFormat::Combined, &bare.exchange("GET", "/")).ends_with(" 200 12 \"\" \"-\"\n")
        );
        assert!(line(LogFormat::Combined, &rejected()).ends_with("\"-\" 400 - \"-\" \"-\"\n"));
    }

    #[test]
    fn nginx_escaping_covers_every_byte_that_could_break_a_line() {
        let every_byte: Vec<u8> = (0..=255).collect();
        let mut buf = Vec::new();
        push_nginx_quoted(&mut buf, Some(&every_byte));
        let inner = &buf[1..buf.len() - 1];
        assert!(
            inner
                .iter()
                .all(|&byte| (0x20..=0x7E).contains(&byte) && byte != b'"'),
            "{}",
            String::from_utf8_lossy(&buf)
        );
        let text = String::from_utf8_lossy(inner);
        assert!(text.starts_with("\\x00\\x01"), "{text}");
        assert!(text.contains("\\x0A"), "{text}");
        assert!(text.contains(" !\\x22#"), "{text}");
        assert!(text.contains("[\\x5C]"), "{text}");
        assert!(text.contains("}~\\x7F\\x80"), "{text}");
        assert!(text.ends_with("\\xFE\\xFF"), "{text}");
    }

    #[test]
    fn json_line_parses_back_with_every_field() {
        let hostile = Parsed::new(HOSTILE);
        let text = line(LogFormat::Json, &hostile.exchange("GET", "/\"q\"\\\n"));
        assert!(text.ends_with('\n'));
        assert_eq!(text.matches('\n').count(), 1, "one line: {text:?}");
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "time": "1994-11-06T08:49:37Z",
                "remote_addr": "127.0.0.1",
                "method": "GET",
                "target": "/\"q\"\\\n",
                "protocol": "HTTP/1.1",
                "status": 200,
                "body_bytes": 12,
                "duration_ms": 1.234,
                "referer": "http://x/?q=\"a\"\\b\tc",
                "user_agent": "agent \"007\" é \u{FFFD}\" 200 -",
            })
        );
        let rejected: serde_json::Value =
            serde_json::from_str(&line(LogFormat::Json, &rejected())).unwrap();
        assert_eq!(
            rejected,
            serde_json::json!({
                "time": "1994-11-06T08:49:37Z",
                "remote_addr": "127.0.0.1",
                "method": null,
                "target": null,
                "protocol": null,
                "status": 400,
                "body_bytes": 0,
                "duration_ms": 0.0,
                "referer": null,
                "user_agent": null,
            })
        );
    }

    #[test]
    fn json_remote_address_of_ipv6_peer() {
        let mut buf = Vec::new();
        let peer: IpAddr = "::1".parse().unwrap();
        LogFormat::Json.write_line(&mut buf, peer, &date(), &rejected());
        let value: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(value["remote_addr"], "::1");
    }
}
