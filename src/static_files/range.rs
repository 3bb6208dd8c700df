//! Byte ranges (RFC 9110 §14): parsing `Range: bytes=…` against a representation's length, and
//! the `multipart/byteranges` body for several ranges (§14.6).
//!
//! 1. Anything but the `bytes` unit, or a syntax error anywhere, means the header is ignored
//!    (§14.2: "a server MAY ignore the Range header field") and the whole file is sent.
//! 2. Each range is resolved against the length: `a-b` (b clamped to the end), `a-`, `-n`
//!    (the last n bytes). Ranges starting at or past the end are unsatisfiable and dropped.
//! 3. None left → 416. One → 206 with Content-Range. Several → 206 multipart, unless there are
//!    too many or they overlap heavily (a denial-of-service pattern, §14.2 ¶13) → whole file.

use std::ops::Range;

use crate::http::response::FilePart;

/// More ranges than this in one request are answered with the whole file.
pub const MAX_RANGES: usize = 16;

/// What to send for a `Range` header.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeReply {
    /// Ignore the header: 200 with the whole representation.
    Whole,
    /// 206 with one range.
    Single(Range<u64>),
    /// 206 multipart/byteranges, ranges in the order asked.
    Multiple(Vec<Range<u64>>),
    /// 416 with `Content-Range: bytes */<len>`.
    Unsatisfiable,
}

/// Decides the reply to `Range: <header>` for a representation of `len` bytes.
pub fn resolve(header: &[u8], len: u64) -> RangeReply {
    let Some(set) = strip_unit(header) else {
        return RangeReply::Whole;
    };
    let mut ranges = Vec::new();
    for spec in set.split(|&b| b == b',') {
        let spec = spec.trim_ascii();
        if spec.is_empty() {
            continue; // empty list elements are allowed (RFC 9110 §5.6.1)
        }
        match parse_spec(spec) {
            None => return RangeReply::Whole,
            Some(spec) => {
                if let Some(range) = spec.resolve(len) {
                    ranges.push(range);
                }
            }
        }
        if ranges.len() > MAX_RANGES {
            return RangeReply::Whole;
        }
    }
    match ranges.len() {
        0 if set.iter().any(|b| !b.is_ascii_whitespace() && *b != b',') => {
            RangeReply::Unsatisfiable
        }
        0 => RangeReply::Whole,
        1 => RangeReply::Single(ranges.remove(0)),
        _ if overlaps_heavily(&ranges, len) => RangeReply::Whole,
        _ => RangeReply::Multiple(ranges),
    }
}

/// `Content-Range: bytes first-last/len`
pub fn content_range(range: &Range<u64>, len: u64) -> String {
    format!("bytes {}-{}/{len}", range.start, range.end - 1)
}

/// A boundary that cannot occur in a part header; content is framed by length anyway.
pub const BOUNDARY: &str = "looplight-byteranges-7d1c3e";

/// The `multipart/byteranges` body (§14.6) for `ranges` of a representation of `total` bytes,
/// as framing bytes around file ranges: a file's parts are streamed from it, never read into
/// memory as a whole.
pub fn multipart_parts(ranges: &[Range<u64>], total: u64, content_type: &str) -> Vec<FilePart> {
    let mut parts = Vec::with_capacity(ranges.len() * 2 + 1);
    let mut framing = Vec::new();
    for range in ranges {
        framing.extend_from_slice(b"--");
        framing.extend_from_slice(BOUNDARY.as_bytes());
        framing.extend_from_slice(b"\r\nContent-Type: ");
        framing.extend_from_slice(content_type.as_bytes());
        framing.extend_from_slice(b"\r\nContent-Range: ");
        framing.extend_from_slice(content_range(range, total).as_bytes());
        framing.extend_from_slice(b"\r\n\r\n");
        parts.push(FilePart::Bytes(std::mem::take(&mut framing)));
        parts.push(FilePart::Range(range.clone()));
        framing.extend_from_slice(b"\r\n");
    }
    framing.extend_from_slice(b"--");
    framing.extend_from_slice(BOUNDARY.as_bytes());
    framing.extend_from_slice(b"--\r\n");
    parts.push(FilePart::Bytes(framing));
    parts
}

/// The same body built in memory, from bytes already there (a file in the cache: at most
/// `MAX_CACHED_FILE`, and the ranges together are never longer than the file).
pub fn multipart_body(data: &[u8], ranges: &[Range<u64>], content_type: &str) -> Vec<u8> {
    let parts = multipart_parts(ranges, data.len() as u64, content_type);
    let mut body = Vec::with_capacity(parts.iter().map(|part| part.len() as usize).sum());
    for part in parts {
        match part {
            FilePart::Bytes(bytes) => body.extend_from_slice(&bytes),
            FilePart::Range(range) => {
                body.extend_from_slice(&data[range.start as usize..range.end as usize])
            }
        }
    }
    body
}

#[derive(Debug, PartialEq, Eq)]
enum Spec {
    /// `first-` or `first-last`
    From { first: u64, last: Option<u64> },
    /// `-suffix`
    Suffix(u64),
}

impl Spec {
    fn resolve(&self, len: u64) -> Option<Range<u64>> {
        match *self {
            Spec::From { first, .. } if first >= len => None,
            Spec::From { first, last } => {
                let end = last.map_or(len, |last| last.saturating_add(1).min(len));
                Some(first..end)
            }
            Spec::Suffix(0) => None,
            Spec::Suffix(_) if len == 0 => None,
            Spec::Suffix(suffix) => Some(len.saturating_sub(suffix)..len),
        }
    }
}

fn strip_unit(header: &[u8]) -> Option<&[u8]> {
    let header = header.trim_ascii();
    let (unit, set) = header.split_at(header.iter().position(|&b| b == b'=')?);
    unit.trim_ascii()
        .eq_ignore_ascii_case(b"bytes")
        .then(|| &set[1..])
}

/// `first-last`, `first-` or `-suffix`, digits only; `last < first` is invalid (§14.1.1).
fn parse_spec(spec: &[u8]) -> Option<Spec> {
    let dash = spec.iter().position(|&b| b == b'-')?;
    let (first, last) = (&spec[..dash], &spec[dash + 1..]);
    match (number(first), number(last)) {
        (None, Some(suffix)) if first.is_empty() => Some(Spec::Suffix(suffix)),
        (Some(first), None) if last.is_empty() => Some(Spec::From { first, last: None }),
        (Some(first), Some(last)) if last >= first => Some(Spec::From {
            first,
            last: Some(last),
        }),
        _ => None,
    }
}

fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // A position past u64::MAX is past any file's end: saturate rather than reject.
    Some(digits.iter().fold(0u64, |acc, &d| {
        acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// Ranges that together ask for more than the whole file, or that overlap, are a
/// denial-of-service pattern for multipart responses.
fn overlaps_heavily(ranges: &[Range<u64>], len: u64) -> bool {
    // In u128: near u64::MAX, a few whole-file ranges overflowed a u64 sum (a panic in debug
    // builds, a wrapped sum in release; found by the `headers` fuzz target).
    let asked: u128 = ranges
        .iter()
        .map(|range| u128::from(range.end - range.start))
        .sum();
    if asked > u128::from(len) {
        return true;
    }
    let mut sorted: Vec<&Range<u64>> = ranges.iter().collect();
    sorted.sort_by_key(|range| range.start);
    let overlapping = sorted
        .windows(2)
        .filter(|pair| pair[1].start < pair[0].end)
        .count();
    overlapping > 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_ranges_per_rfc_9110_section_14_1_2() {
        let cases: &[(&str, RangeReply)] = &[
            ("bytes=0-499", RangeReply::Single(0..500)),
            ("bytes=500-999", RangeReply::Single(500..1000)),
            ("bytes=500-", RangeReply::Single(500..1000)),
            ("bytes=-500", RangeReply::Single(500..1000)),
            ("bytes=-5000", RangeReply::Single(0..1000)),
            ("bytes=900-5000", RangeReply::Single(900..1000)),
            ("BYTES = 0-0", RangeReply::Single(0..1)),
            ("bytes=999-999", RangeReply::Single(999..1000)),
        ];
        for (header, want) in cases {
            assert_eq!(resolve(header.as_bytes(), 1000), *want, "{header}");
        }
    }

    #[test]
    fn unsatisfiable_and_ignored() {
        let cases: &[(&str, RangeReply)] = &[
            ("bytes=1000-", RangeReply::Unsatisfiable),
            ("bytes=1000-2000, 5000-", RangeReply::Unsatisfiable),
            ("bytes=-0", RangeReply::Unsatisfiable),
            ("bytes=5-1", RangeReply::Whole),
            ("bytes=abc", RangeReply::Whole),
            ("bytes=1-2,x", RangeReply::Whole),
            ("items=0-5", RangeReply::Whole),
            ("bytes 0-5", RangeReply::Whole),
            ("bytes=", RangeReply::Whole),
            ("bytes=99999999999999999999999-", RangeReply::Unsatisfiable),
        ];
        for (header, want) in cases {
            assert_eq!(resolve(header.as_bytes(), 1000), *want, "{header}");
        }
        assert_eq!(resolve(b"bytes=-5", 0), RangeReply::Unsatisfiable);
        assert_eq!(resolve(b"bytes=0-", 0), RangeReply::Unsatisfiable);
    }

    #[test]
    fn several_ranges_and_the_abusive_ones() {
        assert_eq!(
            resolve(b"bytes=0-1,5-6", 10),
            RangeReply::Multiple(vec![0..2, 5..7])
        );
        // An unsatisfiable member is dropped; one left is a single range.
        assert_eq!(resolve(b"bytes=0-1,50-60", 10), RangeReply::Single(0..2));
        assert_eq!(resolve(b"bytes=0-9,0-9", 10), RangeReply::Whole);
        let many = (0..17)
            .map(|n| format!("{n}-{n}"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(
            resolve(format!("bytes={many}").as_bytes(), 100),
            RangeReply::Whole
        );
    }

    #[test]
    fn ranges_that_add_up_past_u64_max_are_the_whole_file() {
        let huge = u64::MAX / 2;
        assert_eq!(resolve(b"bytes=0-,1-,2-", huge), RangeReply::Whole);
        assert_eq!(resolve(b"bytes=-5,0-", u64::MAX), RangeReply::Whole);
    }

    #[test]
    fn multipart_parts_frame_file_ranges() {
        let parts = multipart_parts(&[0..2, 5..7], 10, "text/plain");
        let ranges: Vec<_> = parts
            .iter()
            .filter_map(|part| match part {
                FilePart::Range(range) => Some(range.clone()),
                FilePart::Bytes(_) => None,
            })
            .collect();
        assert_eq!(ranges, [0..2, 5..7]);
        let total: u64 = parts.iter().map(FilePart::len).sum();
        let body = multipart_body(b"0123456789", &[0..2, 5..7], "text/plain");
        assert_eq!(total, body.len() as u64);
    }

    #[test]
    fn multipart_body_layout() {
        let body = multipart_body(b"0123456789", &[0..2, 5..7], "text/plain");
        let text = String::from_utf8(body).unwrap();
        assert_eq!(
            text,
            format!(
                "--{BOUNDARY}\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\n01\r\n\
                 --{BOUNDARY}\r\nContent-Type: text/plain\r\nContent-Range: bytes 5-6/10\r\n\r\n56\r\n\
                 --{BOUNDARY}--\r\n"
            )
        );
    }
}
