//! Fuzz target `chunked`: the in-place chunked body decoder, [`ChunkedDecoder`].
//!
//! Input: one control byte, then the body bytes as they follow a request head. The control
//! byte's top two bits pick the body limit (0, 1, 64 or 1 MiB decoded bytes), the other six
//! seed how the bytes are split ([`super::cuts`]).
//!
//! Property: on every input, whole and split, the decoder agrees with [`reference`], a
//! whole-input decoder written from RFC 9112 §7.1 and our stated policy: the decoded body and
//! where the body ends, or that more is needed, or which kind of error (400 or 413).
//!
//! The policy, beyond the RFC's grammar: chunk-size is 1 to 16 hex digits; whitespace may
//! follow it; a chunk extension (after `;`) is not parsed, but no line may hold a control
//! character other than HTAB, a CR other than the one before its LF, or more than
//! [`MAX_LINE_BYTES`] bytes before its LF; trailer fields are `token ":" value` lines, at most
//! [`MAX_TRAILER_BYTES`] together, and are discarded.

use crate::http::chunked::{ChunkedDecoder, ChunkedError, MAX_LINE_BYTES, MAX_TRAILER_BYTES};

const BODY_LIMITS: [u64; 4] = [0, 1, 64, 1 << 20];

pub fn run(data: &[u8]) {
    let Some((&control, body)) = data.split_first() else {
        return;
    };
    let max_body = BODY_LIMITS[usize::from(control >> 6)];
    let expected = reference(body, max_body);
    assert_eq!(decode_in_pieces(body, &[], max_body), expected, "whole");
    let cuts = super::cuts(control & 0x3f, body.len());
    assert_eq!(
        decode_in_pieces(body, &cuts, max_body),
        expected,
        "split at {cuts:?}"
    );
}

/// What decoding a body's bytes came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The body is complete: its decoded bytes, and how many input bytes it took.
    Done { body: Vec<u8>, consumed: usize },
    /// The input ended before the body did.
    NeedMore,
    /// Malformed framing (400).
    Invalid,
    /// More decoded bytes than the limit (413).
    TooLarge,
}

/// Feeds `input` to the decoder as it would arrive, in pieces cut at `cuts`.
pub fn decode_in_pieces(input: &[u8], cuts: &[usize], max_body: u64) -> Outcome {
    let mut decoder = ChunkedDecoder::new(max_body);
    let mut region = Vec::new();
    for piece in super::pieces(input, cuts) {
        region.extend_from_slice(piece);
        match decoder.decode(&mut region) {
            Ok(true) => {
                assert!(decoder.consumed() <= region.len());
                return Outcome::Done {
                    body: region[..decoder.decoded()].to_vec(),
                    consumed: decoder.consumed(),
                };
            }
            Ok(false) => {}
            Err(ChunkedError::Invalid(_)) => return Outcome::Invalid,
            Err(ChunkedError::TooLarge) => return Outcome::TooLarge,
        }
        assert!(
            decoder.decoded() as u64 <= max_body,
            "decoded past the limit"
        );
    }
    Outcome::NeedMore
}

/// The reference decoder: the whole input at once, one step of the grammar at a time.
pub fn reference(input: &[u8], max_body: u64) -> Outcome {
    let mut at = 0;
    let mut body = Vec::new();
    // chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF; last-chunk has size 0.
    loop {
        let (line, next) = match line_at(input, at) {
            Line::Complete(line, next) => (line, next),
            Line::Incomplete => return Outcome::NeedMore,
            Line::Invalid => return Outcome::Invalid,
        };
        let Some(size) = chunk_size(line) else {
            return Outcome::Invalid;
        };
        at = next;
        if size == 0 {
            break;
        }
        if body.len() as u128 + u128::from(size) > u128::from(max_body) {
            return Outcome::TooLarge;
        }
        let size = size as usize; // at most max_body, which fits
        if input.len() - at < size {
            return Outcome::NeedMore;
        }
        body.extend_from_slice(&input[at..at + size]);
        at += size;
        match &input[at..] {
            [b'\r', b'\n', ..] => at += 2,
            [] | [b'\r'] => return Outcome::NeedMore,
            _ => return Outcome::Invalid,
        }
    }
    // trailer-section = *( field-line CRLF ) CRLF
    let mut trailer_bytes = 0;
    loop {
        let (line, next) = match line_at(input, at) {
            Line::Complete(line, next) => (line, next),
            Line::Incomplete => return Outcome::NeedMore,
            Line::Invalid => return Outcome::Invalid,
        };
        trailer_bytes += next - at;
        if line.is_empty() {
            return Outcome::Done {
                body,
                consumed: next,
            };
        }
        if trailer_bytes > MAX_TRAILER_BYTES || !field_line(line) {
            return Outcome::Invalid;
        }
        at = next;
    }
}

enum Line<'a> {
    /// The line without its CRLF, and where the next one starts.
    Complete(&'a [u8], usize),
    Incomplete,
    Invalid,
}

/// The CRLF-terminated line at `at`.
fn line_at(input: &[u8], at: usize) -> Line<'_> {
    let rest = &input[at..];
    let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
        return if rest.len() > MAX_LINE_BYTES {
            Line::Invalid
        } else {
            Line::Incomplete
        };
    };
    if lf > MAX_LINE_BYTES {
        return Line::Invalid;
    }
    match rest[..lf].split_last() {
        Some((b'\r', line)) if !line.contains(&b'\r') && !has_control(line) => {
            Line::Complete(line, at + lf + 1)
        }
        _ => Line::Invalid,
    }
}

/// Any control character but HTAB (RFC 5234 CTL: 0x00-0x1F and DEL).
fn has_control(bytes: &[u8]) -> bool {
    bytes.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

/// `1*16HEXDIG *( SP / HTAB ) [ ";" anything ]`
fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return None;
    }
    let after = &line[digits..];
    let after = &after[after
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count()..];
    if !after.is_empty() && after[0] != b';' {
        return None;
    }
    let text = std::str::from_utf8(&line[..digits]).ok()?;
    u64::from_str_radix(text, 16).ok()
}

/// `field-name ":" field-value`, the name a token (RFC 9110 §5.1, §5.6.2).
fn field_line(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let name = &line[..colon];
    !name.is_empty()
        && name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_reads_the_rfc_examples() {
        let body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        assert_eq!(
            reference(body, 100),
            Outcome::Done {
                body: b"Wikipedia".to_vec(),
                consumed: body.len() - 4
            }
        );
        assert_eq!(reference(b"4\r\nWi", 100), Outcome::NeedMore);
        assert_eq!(reference(b"4\r\nWiki\r\n", 3), Outcome::TooLarge);
        assert_eq!(reference(b"4\nWiki\r\n", 100), Outcome::Invalid);
        for seed in [0, 1, 2, 3, 0x41, 0x82] {
            run(&[&[seed][..], body].concat());
        }
    }
}
