//! The access log: one common-log-format line per request, buffered in memory and written to
//! stdout once per loop tick, so logging costs a memcpy per request and a write per tick.
//!
//! Each worker has its own log buffer, written straight to file descriptor 1 with write(2) in
//! pieces of whole lines of at most `PIPE_BUF` bytes: such a write lands whole, never with
//! another worker's bytes inside (POSIX for pipes; Linux serializes writes to a file), so lines
//! from different workers never interleave mid-line, and no worker waits on a lock another
//! holds (std's stdout lock would be one, taken every tick by every worker).

use std::io::{self, Write};
use std::net::IpAddr;
use std::os::fd::AsFd;

use crate::http::conn::Exchange;
use crate::http::date::DateCache;

/// Flush early if a tick produced this much log (a burst of pipelined requests).
const FLUSH_THRESHOLD: usize = 64 * 1024;
/// The most one write(2) to a pipe writes whole (POSIX `PIPE_BUF`, 4096 on Linux).
const WHOLE_WRITE_BYTES: usize = 4096;

#[derive(Debug)]
pub struct AccessLog {
    enabled: bool,
    buf: Vec<u8>,
    /// Exchanges recorded (logged or not): the requests this loop served.
    exchanges: u64,
}

impl AccessLog {
    pub fn new(enabled: bool) -> AccessLog {
        AccessLog {
            enabled,
            buf: Vec::new(),
            exchanges: 0,
        }
    }

    /// Appends `host - - [date] "request" status bytes`.
    pub fn record(&mut self, peer: IpAddr, date: &DateCache, exchange: &Exchange<'_>) {
        self.exchanges += 1;
        if !self.enabled {
            return;
        }
        let Exchange {
            request,
            status,
            body_bytes,
            ..
        } = exchange;
        let buf = &mut self.buf;
        // Writing into a Vec cannot fail.
        let _ = write!(buf, "{peer} - - [");
        buf.extend_from_slice(date.clf());
        buf.extend_from_slice(b"] \"");
        match request {
            Some(line) => {
                push_escaped(buf, line.method);
                buf.push(b' ');
                push_escaped(buf, line.target);
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
        buf.push(b'\n');
        if buf.len() >= FLUSH_THRESHOLD {
            self.flush();
        }
    }

    /// Writes out what was buffered. A failing stdout loses log lines, never requests.
    pub fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let stdout = io::stdout();
        let mut rest = &self.buf[..];
        while !rest.is_empty() {
            let piece = whole_lines_within(rest, WHOLE_WRITE_BYTES);
            match rustix::io::write(stdout.as_fd(), piece) {
                Ok(0) => break,
                Ok(written) => rest = &rest[written..],
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => break,
            }
        }
        self.buf.clear();
    }

    /// The exchanges recorded so far, logged or not.
    pub fn exchanges(&self) -> u64 {
        self.exchanges
    }

    #[cfg(test)]
    fn buffered(&self) -> &[u8] {
        &self.buf
    }
}

/// The longest start of `bytes` made of whole lines and at most `limit` bytes long; a first line
/// longer than `limit` alone.
fn whole_lines_within(bytes: &[u8], limit: usize) -> &[u8] {
    if bytes.len() <= limit {
        return bytes;
    }
    let end = memchr::memrchr(b'\n', &bytes[..limit])
        .or_else(|| memchr::memchr(b'\n', bytes))
        .map_or(bytes.len(), |newline| newline + 1);
    &bytes[..end]
}

/// Quotes and backslashes are escaped so a crafted target cannot forge log fields.
fn push_escaped(buf: &mut Vec<u8>, text: &str) {
    for &byte in text.as_bytes() {
        if byte == b'"' || byte == b'\\' {
            buf.push(b'\\');
        }
        buf.push(byte);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::conn::{HeaderFields, RequestLine};
    use crate::http::status::StatusCode;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn writes_are_whole_lines_within_the_limit() {
        let lines = b"aaa\nbb\ncccc\n";
        assert_eq!(whole_lines_within(lines, 100), lines);
        assert_eq!(whole_lines_within(lines, 7), b"aaa\nbb\n");
        assert_eq!(whole_lines_within(lines, 6), b"aaa\n");
        // A line longer than the limit goes alone.
        assert_eq!(whole_lines_within(lines, 2), b"aaa\n");
        assert_eq!(whole_lines_within(b"aaaa", 2), b"aaaa");
    }

    #[test]
    fn common_log_format_line() {
        let mut date = DateCache::new();
        date.refresh(UNIX_EPOCH + Duration::from_secs(784_111_777));
        let mut log = AccessLog::new(true);
        let request = RequestLine {
            method: "GET",
            target: "/a\"b",
            version: "HTTP/1.1",
            fields: HeaderFields::new(b"", &[]),
        };
        let answered = Exchange {
            request: Some(request),
            status: StatusCode::OK,
            body_bytes: 12,
            duration: Duration::ZERO,
        };
        let rejected = Exchange {
            request: None,
            status: StatusCode::BAD_REQUEST,
            body_bytes: 0,
            duration: Duration::ZERO,
        };
        log.record([127, 0, 0, 1].into(), &date, &answered);
        log.record([127, 0, 0, 1].into(), &date, &rejected);
        assert_eq!(
            String::from_utf8_lossy(log.buffered()),
            "127.0.0.1 - - [06/Nov/1994:08:49:37 +0000] \"GET /a\\\"b HTTP/1.1\" 200 12\n\
             127.0.0.1 - - [06/Nov/1994:08:49:37 +0000] \"-\" 400 -\n"
        );
    }
}
