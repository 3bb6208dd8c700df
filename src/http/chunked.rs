//! Incremental decoder for the chunked transfer coding (RFC 9112 §7.1), decoding in place.
//!
//! The body bytes sit in the connection's read buffer right after the request head. The decoder
//! walks them as they arrive and moves each chunk's data down over the framing it has consumed,
//! so the decoded body ends up contiguous at the start of the region without a second buffer:
//!
//! ```text
//! before: 5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n<next request>
//! after:  hello world<consumed framing .........><next request>
//!         └ decoded ┘                            └ `consumed()` ┘
//! ```
//!
//! Every step is driven by what is buffered: a chunk-size line or trailer line that is not
//! complete yet waits (bounded by [`MAX_LINE_BYTES`]); chunk data is taken as far as it goes.
//! httparse parses the chunk-size number; the line around it is validated here, strictly, since
//! a lenient chunk parser is the classic request-smuggling hole.

use crate::http::parse;

/// Longest chunk-size line (with extensions) or trailer line we buffer.
pub const MAX_LINE_BYTES: usize = 4096;
/// Largest trailer section we accept; trailer fields are read and discarded.
pub const MAX_TRAILER_BYTES: usize = 16 * 1024;

/// Why a chunked body was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkedError {
    /// Malformed framing: 400.
    Invalid(&'static str),
    /// The decoded body would exceed the limit: 413.
    TooLarge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Expecting a chunk-size line.
    Size,
    /// Inside chunk data, this many bytes to go.
    Data(u64),
    /// Expecting the CRLF that ends chunk data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
    Done,
}

/// Decoder state for one chunked body. Positions are relative to the start of the body region.
#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    state: State,
    /// Bytes of the region consumed (framing and data).
    read: usize,
    /// Decoded bytes, stored at the start of the region.
    written: usize,
    trailer_bytes: usize,
    max_body: u64,
}

impl ChunkedDecoder {
    pub fn new(max_body: u64) -> Self {
        ChunkedDecoder {
            state: State::Size,
            read: 0,
            written: 0,
            trailer_bytes: 0,
            max_body,
        }
    }

    /// Decodes as much of `region` (the body bytes buffered so far, starting where the body
    /// starts) as possible. Returns `Ok(true)` once the whole body, trailers included, is done.
    pub fn decode(&mut self, region: &mut [u8]) -> Result<bool, ChunkedError> {
        loop {
            let input = &region[self.read..];
            match self.state {
                State::Size => {
                    let Some(line_len) = complete_line(input)? else {
                        return Ok(false);
                    };
                    let size = chunk_size(&input[..line_len])?;
                    self.read += line_len;
                    if size == 0 {
                        self.state = State::Trailers;
                    } else {
                        if size > self.max_body - self.written as u64 {
                            return Err(ChunkedError::TooLarge);
                        }
                        self.state = State::Data(size);
                    }
                }
                State::Data(remaining) => {
                    if input.is_empty() {
                        return Ok(false);
                    }
                    let take =
                        usize::try_from(remaining).map_or(input.len(), |r| r.min(input.len()));
                    region.copy_within(self.read..self.read + take, self.written);
                    self.read += take;
                    self.written += take;
                    let left = remaining - take as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                }
                State::DataEnd => match input {
                    [b'\r', b'\n', ..] => {
                        self.read += 2;
                        self.state = State::Size;
                    }
                    [] | [b'\r'] => return Ok(false),
                    _ => return Err(ChunkedError::Invalid("chunk data not followed by CRLF")),
                },
                State::Trailers => {
                    let Some(line_len) = complete_line(input)? else {
                        return Ok(false);
                    };
                    self.read += line_len;
                    self.trailer_bytes += line_len;
                    if line_len == 2 {
                        self.state = State::Done;
                    } else if self.trailer_bytes > MAX_TRAILER_BYTES {
                        return Err(ChunkedError::Invalid("trailer section too large"));
                    } else if !valid_trailer_field(&input[..line_len - 2]) {
                        return Err(ChunkedError::Invalid("invalid trailer field"));
                    }
                }
                State::Done => return Ok(true),
            }
        }
    }

    /// Drops the framing consumed so far: moves the bytes not read yet down to just after the
    /// decoded body, and returns how many bytes the region lost at its end (the caller
    /// shortens its buffer by that much). A body in many small chunks then takes no more room
    /// than its decoded bytes and one incomplete line; without it the framing piled up in the
    /// buffer until it was full, and the connection waited for bytes it had no room for
    /// (found by the `conn` fuzz target).
    pub fn compact(&mut self, region: &mut [u8]) -> usize {
        let gap = self.read - self.written;
        if gap > 0 {
            region.copy_within(self.read.., self.written);
            self.read = self.written;
        }
        gap
    }

    /// Bytes of the region consumed so far (since the last [`ChunkedDecoder::compact`]); once
    /// done, the next request starts here.
    pub fn consumed(&self) -> usize {
        self.read
    }

    /// Decoded body bytes, stored at `region[..decoded()]`.
    pub fn decoded(&self) -> usize {
        self.written
    }
}

/// Length of the CRLF-terminated line at the start of `input`, CRLF included; `None` while the
/// line is incomplete. A bare LF or CR inside the line is rejected (RFC 9112 §2.2 allows a
/// recipient to accept bare LF, but inside chunk framing it is a smuggling vector).
fn complete_line(input: &[u8]) -> Result<Option<usize>, ChunkedError> {
    match memchr::memchr(b'\n', input) {
        // The same limit as for a line still incomplete, so that whether a line is too long
        // does not depend on how its bytes arrived (found by the `chunked` fuzz target).
        Some(lf) if lf > MAX_LINE_BYTES => Err(ChunkedError::Invalid("line too long")),
        Some(lf) => {
            if lf == 0
                || input[lf - 1] != b'\r'
                || memchr::memchr(b'\r', &input[..lf - 1]).is_some()
            {
                return Err(ChunkedError::Invalid("line not terminated by CRLF"));
            }
            Ok(Some(lf + 1))
        }
        None if input.len() > MAX_LINE_BYTES => Err(ChunkedError::Invalid("line too long")),
        None => Ok(None),
    }
}

/// `chunk-size [ chunk-ext ] CRLF` (RFC 9112 §7.1, §7.1.1), line includes the CRLF.
fn chunk_size(line: &[u8]) -> Result<u64, ChunkedError> {
    // httparse accepts a line with no digits as size 0; that would end the body early.
    if !line.first().is_some_and(u8::is_ascii_hexdigit) {
        return Err(ChunkedError::Invalid("chunk size is not a hex number"));
    }
    let ext = &line[..line.len() - 2];
    if ext.iter().any(|&b| b.is_ascii_control() && b != b'\t') {
        return Err(ChunkedError::Invalid(
            "control character in chunk extension",
        ));
    }
    match httparse::parse_chunk_size(line) {
        Ok(httparse::Status::Complete((_, size))) => Ok(size),
        Ok(httparse::Status::Partial) | Err(_) => Err(ChunkedError::Invalid("invalid chunk size")),
    }
}

/// A trailer line must look like a field line: `name ":" value`, name a non-empty token.
fn valid_trailer_field(line: &[u8]) -> bool {
    let Some(colon) = memchr::memchr(b':', line) else {
        return false;
    };
    parse::is_token(&line[..colon])
        && line[colon + 1..]
            .iter()
            .all(|&b| b == b'\t' || !b.is_ascii_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` as if it arrived in pieces cut at `cuts`; returns (body, consumed).
    fn decode_in_pieces(
        input: &[u8],
        cuts: &[usize],
        max_body: u64,
    ) -> Result<(Vec<u8>, usize), ChunkedError> {
        let mut decoder = ChunkedDecoder::new(max_body);
        let mut region = Vec::new();
        let mut from = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            region.extend_from_slice(&input[from..cut]);
            from = cut;
            if decoder.decode(&mut region)? {
                return Ok((region[..decoder.decoded()].to_vec(), decoder.consumed()));
            }
        }
        Err(ChunkedError::Invalid("incomplete"))
    }

    const OK_CASES: &[(&str, &[u8], &[u8])] = &[
        ("one chunk", b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
        (
            "two chunks",
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            b"hello world",
        ),
        ("upper hex", b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
        ("leading zeros", b"0005\r\nhello\r\n000\r\n\r\n", b"hello"),
        (
            "extensions",
            b"5;name=value;x\r\nhello\r\n0;last\r\n\r\n",
            b"hello",
        ),
        (
            "quoted extension",
            b"5;a=\"b;c\"\r\nhello\r\n0\r\n\r\n",
            b"hello",
        ),
        (
            "trailers",
            b"5\r\nhello\r\n0\r\nX-Sum: 1\r\nY: 2\r\n\r\n",
            b"hello",
        ),
        ("empty body", b"0\r\n\r\n", b""),
        (
            "data contains CRLF",
            b"4\r\n\r\n\r\n\r\n0\r\n\r\n",
            b"\r\n\r\n",
        ),
    ];

    const BAD_CASES: &[(&str, &[u8], ChunkedError)] = &[
        (
            "no digits",
            b"\r\nhello\r\n0\r\n\r\n",
            ChunkedError::Invalid("chunk size is not a hex number"),
        ),
        (
            "ext without size",
            b";x\r\n0\r\n\r\n",
            ChunkedError::Invalid("chunk size is not a hex number"),
        ),
        (
            "non-hex",
            b"5g\r\nhello\r\n0\r\n\r\n",
            ChunkedError::Invalid("invalid chunk size"),
        ),
        (
            "negative",
            b"-5\r\nhello\r\n0\r\n\r\n",
            ChunkedError::Invalid("chunk size is not a hex number"),
        ),
        (
            "bare LF after size",
            b"5\nhello\r\n0\r\n\r\n",
            ChunkedError::Invalid("line not terminated by CRLF"),
        ),
        (
            "bare LF in extension",
            b"5;a\nb\r\nhello\r\n0\r\n\r\n",
            ChunkedError::Invalid("line not terminated by CRLF"),
        ),
        (
            "bare CR in extension",
            b"5;a\rb\r\nhello\r\n0\r\n\r\n",
            ChunkedError::Invalid("line not terminated by CRLF"),
        ),
        (
            "data too long",
            b"3\r\nhello\r\n0\r\n\r\n",
            ChunkedError::Invalid("chunk data not followed by CRLF"),
        ),
        (
            "size overflow",
            b"fffffffffffffffff\r\nx\r\n",
            ChunkedError::Invalid("invalid chunk size"),
        ),
        ("over the body limit", b"65\r\n", ChunkedError::TooLarge),
        (
            "trailer without colon",
            b"0\r\nnot a field\r\n\r\n",
            ChunkedError::Invalid("invalid trailer field"),
        ),
    ];

    #[test]
    fn valid_bodies_whole_and_split_at_every_byte() {
        for (name, input, body) in OK_CASES {
            let mut with_next = input.to_vec();
            with_next.extend_from_slice(b"GET / HTTP/1.1\r\n");
            for cut in 0..=input.len() {
                let (decoded, consumed) = decode_in_pieces(&with_next, &[cut], 100)
                    .unwrap_or_else(|e| panic!("{name} cut at {cut}: {e:?}"));
                assert_eq!(decoded, *body, "{name} cut at {cut}");
                assert_eq!(consumed, input.len(), "{name} cut at {cut}");
            }
            // One byte at a time.
            let cuts: Vec<usize> = (1..with_next.len()).collect();
            let (decoded, _) = decode_in_pieces(&with_next, &cuts, 100).unwrap();
            assert_eq!(decoded, *body, "{name} byte by byte");
        }
    }

    #[test]
    fn invalid_bodies_whole_and_split_at_every_byte() {
        for (name, input, error) in BAD_CASES {
            for cut in 0..=input.len() {
                let got = decode_in_pieces(input, &[cut], 100);
                assert_eq!(got, Err(*error), "{name} cut at {cut}");
            }
        }
    }

    #[test]
    fn compacting_between_pieces_decodes_the_same_in_no_more_room() {
        for (name, input, body) in OK_CASES {
            for piece in 1..=3 {
                let mut decoder = ChunkedDecoder::new(100);
                let mut region = Vec::new();
                let mut most = 0;
                let mut done = false;
                for bytes in input.chunks(piece) {
                    region.extend_from_slice(bytes);
                    most = most.max(region.len());
                    if decoder.decode(&mut region).unwrap() {
                        done = true;
                        break;
                    }
                    let freed = decoder.compact(&mut region);
                    region.truncate(region.len() - freed);
                    assert_eq!(decoder.consumed(), decoder.decoded(), "{name}");
                }
                assert!(done, "{name} in pieces of {piece}");
                assert_eq!(&region[..decoder.decoded()], *body, "{name}");
                assert_eq!(decoder.consumed(), region.len(), "{name}");
                assert!(most <= body.len() + piece + 20, "{name}: {most} bytes held");
            }
        }
    }

    #[test]
    fn body_limit_counts_decoded_bytes_across_chunks() {
        let input = b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n";
        assert!(decode_in_pieces(input, &[], 6).is_ok());
        assert_eq!(decode_in_pieces(input, &[], 5), Err(ChunkedError::TooLarge));
    }

    #[test]
    fn a_long_line_is_too_long_however_it_arrives() {
        // A line of MAX_LINE_BYTES bytes before its LF passes; one more byte does not, whether
        // the LF came with it or later (a whole line used to pass at any length).
        for (ext, verdict) in [(MAX_LINE_BYTES - 3, true), (MAX_LINE_BYTES - 2, false)] {
            let mut input = format!("1;{}\r\n", "e".repeat(ext)).into_bytes();
            input.extend_from_slice(b"x\r\n0\r\n\r\n");
            for cut in [0, MAX_LINE_BYTES, MAX_LINE_BYTES + 1] {
                let got = decode_in_pieces(&input, &[cut], 100);
                match verdict {
                    true => assert!(got.is_ok(), "{ext} cut at {cut}: {got:?}"),
                    false => assert_eq!(got, Err(ChunkedError::Invalid("line too long"))),
                }
            }
        }
    }

    #[test]
    fn endless_size_line_is_rejected() {
        let mut input = b"5;".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 1));
        assert_eq!(
            decode_in_pieces(&input, &[], 100),
            Err(ChunkedError::Invalid("line too long"))
        );
    }
}
