//! Fuzz target `headers`: the static pipeline's header parsers: `Range` (`range::resolve` and
//! the multipart body), the preconditions (`conditional::evaluate`: If-Match, If-None-Match,
//! If-Modified-Since, If-Unmodified-Since, If-Range) and `Accept-Encoding`
//! (`encoding::accepted`).
//!
//! Input: one byte picks the parser (modulo 3); the rest is used twice.
//! 1. As raw field values: the parser must not panic, whatever the bytes, and its answer must
//!    be sane: ranges inside the representation, at most `MAX_RANGES`, a multipart body no
//!    larger than the ranges plus their framing, and never more than the file plus framing;
//!    codings each at most once.
//! 2. As a recipe for a well-formed field value (the grammar of RFC 9110 §14.1, §13.1, §12.5.3,
//!    with the choices taken from the bytes): the parser must agree with the reference model
//!    below, written from the RFC and our stated policy, on what to send.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Duration, UNIX_EPOCH};

use super::Choices;
use crate::http::parse::{ParseLimits, parse_head};
use crate::http::request::Request;
use crate::http::response::FilePart;
use crate::static_files::conditional::{self, Precondition, Validators};
use crate::static_files::encoding::{self, Coding};
use crate::static_files::range::{self, BOUNDARY, MAX_RANGES, RangeReply};

pub fn run(data: &[u8]) {
    let mut choices = Choices::new(data);
    let parser = choices.below(3);
    let rest = choices.rest();
    match parser {
        0 => {
            raw_range(rest);
            well_formed_range(&mut Choices::new(rest));
        }
        1 => {
            raw_preconditions(rest);
            well_formed_preconditions(&mut Choices::new(rest));
        }
        _ => {
            raw_accept_encoding(rest);
            well_formed_accept_encoding(&mut Choices::new(rest));
        }
    }
}

// ---- Range -------------------------------------------------------------------------------

/// The representation lengths raw headers are resolved against: empty, tiny, the sizes of
/// real files, and one near the largest a file system allows.
const LENGTHS: [u64; 5] = [0, 1, 1000, 10 * 1024 * 1024, u64::MAX / 2];

fn raw_range(header: &[u8]) {
    for len in LENGTHS {
        let reply = range::resolve(header, len);
        check_range_reply(&reply, len);
    }
}

/// What any reply must be, well-formed header or not.
fn check_range_reply(reply: &RangeReply, len: u64) {
    match reply {
        RangeReply::Whole | RangeReply::Unsatisfiable => {}
        RangeReply::Single(range) => {
            assert!(
                range.start < range.end && range.end <= len,
                "{range:?} of {len}"
            );
        }
        RangeReply::Multiple(ranges) => {
            assert!(
                (2..=MAX_RANGES).contains(&ranges.len()),
                "{} ranges",
                ranges.len()
            );
            for range in ranges {
                assert!(
                    range.start < range.end && range.end <= len,
                    "{range:?} of {len}"
                );
            }
            let asked: u128 = ranges.iter().map(|r| u128::from(r.end - r.start)).sum();
            assert!(asked <= u128::from(len), "{asked} bytes asked of {len}");
            check_multipart(ranges, len);
        }
    }
}

/// The multipart body: its parts add up, its framing is bounded, and built from bytes it
/// holds exactly the ranges asked.
fn check_multipart(ranges: &[Range<u64>], len: u64) {
    const CONTENT_TYPE: &str = "text/plain; charset=utf-8";
    let parts = range::multipart_parts(ranges, len, CONTENT_TYPE);
    let total: u128 = parts.iter().map(|part| u128::from(part.len())).sum();
    let file_bytes: u128 = parts
        .iter()
        .map(|part| match part {
            FilePart::Range(range) => u128::from(range.end - range.start),
            FilePart::Bytes(_) => 0,
        })
        .sum();
    let asked: u128 = ranges.iter().map(|r| u128::from(r.end - r.start)).sum();
    assert_eq!(
        file_bytes, asked,
        "the parts' file ranges are the ranges asked"
    );
    // Per part: `--` boundary CRLF, two fields, CRLF, the range, CRLF; then the close.
    let per_part =
        2 + BOUNDARY.len() + 2 + 14 + CONTENT_TYPE.len() + 2 + 15 + 6 + 3 * 20 + 2 + 4 + 2;
    let bound = asked + (ranges.len() * per_part + BOUNDARY.len() + 6) as u128;
    assert!(
        total <= bound,
        "multipart body of {total} bytes for {asked}"
    );
    assert!(
        total <= u128::from(len) + (ranges.len() * per_part + BOUNDARY.len() + 6) as u128,
        "multipart body larger than the file and its framing"
    );
    if len <= 64 * 1024 {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let body = range::multipart_body(&data, ranges, CONTENT_TYPE);
        assert_eq!(
            body.len() as u128,
            total,
            "in-memory and streamed bodies differ"
        );
        let mut at = 0;
        for (part, range) in parts
            .iter()
            .filter(|p| matches!(p, FilePart::Range(_)))
            .zip(ranges)
        {
            let FilePart::Range(part) = part else {
                unreachable!();
            };
            assert_eq!(part, range);
        }
        for part in &parts {
            let n = part.len() as usize;
            if let FilePart::Range(range) = part {
                assert!(
                    body[at..at + n] == data[range.start as usize..range.end as usize],
                    "the part's bytes"
                );
            }
            at += n;
        }
    }
}

/// One `range-spec` (RFC 9110 §14.1.1).
#[derive(Debug)]
enum Spec {
    /// `first-pos "-" [ last-pos ]`
    Int { first: u64, last: Option<u64> },
    /// `"-" suffix-length`
    Suffix(u64),
}

fn well_formed_range(choices: &mut Choices<'_>) {
    let len = match choices.below(4) {
        0 => choices.number(1),
        1 => choices.number(2),
        2 => choices.number(4),
        _ => choices.number(8),
    };
    let unit = ["bytes", "BYTES", "Bytes"][choices.below(3)];
    let count = 1 + choices.below(24);
    let mut specs = Vec::new();
    let mut header = format!("{unit}=");
    for index in 0..count {
        if index > 0 {
            header.push_str([",", ", ", " ,", ",\t", ", ,"][choices.below(5)]);
        }
        let spec = match choices.below(3) {
            0 => {
                let first = position(choices, len);
                let digits = choices.below(3) + 1;
                let last = first.saturating_add(choices.number(digits));
                Spec::Int {
                    first,
                    last: Some(last),
                }
            }
            1 => Spec::Int {
                first: position(choices, len),
                last: None,
            },
            _ => Spec::Suffix(position(choices, len)),
        };
        let zeros = "0".repeat(choices.below(8) / 6);
        match spec {
            Spec::Int { first, last } => {
                write!(header, "{zeros}{first}-").unwrap();
                if let Some(last) = last {
                    write!(header, "{last}").unwrap();
                }
            }
            Spec::Suffix(suffix) => write!(header, "-{zeros}{suffix}").unwrap(),
        }
        specs.push(spec);
    }
    let got = range::resolve(header.as_bytes(), len);
    let expected = model_range(&specs, len);
    assert_eq!(got, expected, "Range: {header} of {len} bytes");
    check_range_reply(&got, len);
}

/// A byte position near something interesting: the start, the end, or anywhere.
fn position(choices: &mut Choices<'_>, len: u64) -> u64 {
    let offset = choices.number(2);
    match choices.below(4) {
        0 => offset,
        1 => len.saturating_sub(offset),
        2 => len.saturating_add(offset),
        _ => choices.number(8),
    }
}

/// RFC 9110 §14.1.2 and §14.2, with our policy for several ranges: more than `MAX_RANGES`
/// satisfiable ones, together more than the file, or more than one overlapping its
/// neighbour in start order, and the whole file is sent instead.
fn model_range(specs: &[Spec], len: u64) -> RangeReply {
    let satisfiable: Vec<Range<u64>> = specs
        .iter()
        .filter_map(|spec| match *spec {
            // A range starting at or past the end cannot be satisfied.
            Spec::Int { first, .. } if first >= len => None,
            Spec::Int { first, last } => {
                let end = last.map_or(u128::from(len), |last| u128::from(last) + 1);
                Some(first..end.min(u128::from(len)) as u64)
            }
            Spec::Suffix(0) => None,
            Spec::Suffix(suffix) => (len > 0).then(|| len - suffix.min(len)..len),
        })
        .collect();
    if satisfiable.len() > MAX_RANGES {
        return RangeReply::Whole;
    }
    match satisfiable.len() {
        0 => RangeReply::Unsatisfiable,
        1 => RangeReply::Single(satisfiable[0].clone()),
        _ => {
            let asked: u128 = satisfiable
                .iter()
                .map(|r| u128::from(r.end - r.start))
                .sum();
            let mut by_start: Vec<&Range<u64>> = satisfiable.iter().collect();
            by_start.sort_by_key(|range| range.start);
            let overlapping = by_start
                .windows(2)
                .filter(|pair| pair[1].start < pair[0].end)
                .count();
            if asked > u128::from(len) || overlapping > 1 {
                RangeReply::Whole
            } else {
                RangeReply::Multiple(satisfiable)
            }
        }
    }
}

// ---- Preconditions -----------------------------------------------------------------------

const PRECONDITION_FIELDS: [&str; 5] = [
    "If-Match",
    "If-None-Match",
    "If-Modified-Since",
    "If-Unmodified-Since",
    "If-Range",
];

/// Runs `evaluate` on a GET whose header section holds `fields`.
fn evaluate(fields: &[(&str, Vec<u8>)], validators: Validators<'_>) -> Option<Precondition> {
    let mut head = b"GET /file.txt HTTP/1.1\r\nHost: fuzz\r\n".to_vec();
    for (name, value) in fields {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let mut spans = Vec::new();
    let limits = ParseLimits {
        max_head_bytes: 1 << 20,
        ..ParseLimits::default()
    };
    // A value a client could not have sent (a control character) is not a request.
    let parsed = parse_head(&head, &limits, &mut spans).ok()??;
    let peer = SocketAddr::from(([127, 0, 0, 1], 9));
    let request = Request::new(&parsed, &head, &spans, &[], peer, false)?;
    Some(conditional::evaluate(&request, validators))
}

fn raw_preconditions(bytes: &[u8]) {
    // Each field gets a share of the bytes; the validators are fixed.
    let share = bytes.len().div_ceil(PRECONDITION_FIELDS.len()).max(1);
    let fields: Vec<(&str, Vec<u8>)> = PRECONDITION_FIELDS
        .iter()
        .zip(bytes.chunks(share))
        .map(|(name, value)| (*name, value.to_vec()))
        .collect();
    let validators = Validators {
        etag: "\"v1\"",
        modified_secs: 784_111_777,
    };
    evaluate(&fields, validators);
}

/// What a precondition field holds, well-formed.
#[derive(Clone, Debug)]
enum Condition {
    Any,
    Tags(Vec<(bool, String)>),
    Date(Option<u64>),
}

const OPAQUE_TAGS: [&str; 5] = ["v1", "v2", "abc", "a,b", ""];

fn well_formed_preconditions(choices: &mut Choices<'_>) {
    let etag_opaque = OPAQUE_TAGS[choices.below(OPAQUE_TAGS.len())];
    let etag = format!("\"{etag_opaque}\"");
    let modified_secs = 1_000_000 + choices.number(3);
    let validators = Validators {
        etag: &etag,
        modified_secs,
    };
    let mut fields = Vec::new();
    let mut conditions: [Option<Condition>; 5] = Default::default();
    for (index, name) in PRECONDITION_FIELDS.iter().enumerate() {
        if choices.below(2) == 0 {
            continue;
        }
        let is_date = matches!(index, 2 | 3) || (index == 4 && choices.below(2) == 0);
        let (condition, value) = if is_date {
            let secs = match choices.below(4) {
                0 => modified_secs,
                1 => modified_secs - 1,
                2 => modified_secs + 1,
                _ => choices.number(4),
            };
            match choices.below(8) {
                0 => (Condition::Date(None), "yesterday".to_owned()),
                _ => {
                    let date = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs));
                    (Condition::Date(Some(secs)), date)
                }
            }
        } else if index < 2 && choices.below(6) == 0 {
            (Condition::Any, "*".to_owned())
        } else {
            let count = if index == 4 { 1 } else { 1 + choices.below(4) };
            let mut tags = Vec::new();
            let mut value = String::new();
            for n in 0..count {
                if n > 0 {
                    value.push_str([",", ", ", " , "][choices.below(3)]);
                }
                let weak = choices.below(3) == 0;
                let opaque = OPAQUE_TAGS[choices.below(OPAQUE_TAGS.len())];
                if weak {
                    value.push_str("W/");
                }
                write!(value, "\"{opaque}\"").unwrap();
                tags.push((weak, opaque.to_owned()));
            }
            (Condition::Tags(tags), value)
        };
        conditions[index] = Some(condition);
        fields.push((*name, value.into_bytes()));
    }
    let got = evaluate(&fields, validators).expect("a well-formed request");
    let expected = model_preconditions(&conditions, etag_opaque, modified_secs);
    assert_eq!(
        got, expected,
        "{fields:?} against {etag} modified at {modified_secs}"
    );
}

/// RFC 9110 §13.2.2 for a GET of a representation with a strong ETag `"opaque"`.
fn model_preconditions(
    conditions: &[Option<Condition>; 5],
    opaque: &str,
    modified_secs: u64,
) -> Precondition {
    let [
        if_match,
        if_none_match,
        if_modified_since,
        if_unmodified_since,
        if_range,
    ] = conditions;
    // Step 1 (§13.1.1: strong comparison), else step 2 (§13.1.4).
    match if_match {
        Some(Condition::Any) => {}
        Some(Condition::Tags(tags)) => {
            if !tags.iter().any(|(weak, tag)| !weak && tag == opaque) {
                return Precondition::Failed;
            }
        }
        Some(Condition::Date(_)) => unreachable!(),
        None => {
            if let Some(Condition::Date(Some(since))) = if_unmodified_since
                && modified_secs > *since
            {
                return Precondition::Failed;
            }
        }
    }
    // Step 3 (§13.1.2: weak comparison), else step 4 (§13.1.3).
    match if_none_match {
        Some(Condition::Any) => return Precondition::NotModified,
        Some(Condition::Tags(tags)) => {
            if tags.iter().any(|(_, tag)| tag == opaque) {
                return Precondition::NotModified;
            }
        }
        Some(Condition::Date(_)) => unreachable!(),
        None => {
            if let Some(Condition::Date(Some(since))) = if_modified_since
                && modified_secs <= *since
            {
                return Precondition::NotModified;
            }
        }
    }
    // Step 5 (§13.1.5): a strong match, or exactly the modification date.
    let range_allowed = match if_range {
        None => true,
        Some(Condition::Tags(tags)) => tags.iter().all(|(weak, tag)| !weak && tag == opaque),
        Some(Condition::Date(date)) => *date == Some(modified_secs),
        Some(Condition::Any) => unreachable!(),
    };
    Precondition::Proceed { range_allowed }
}

// ---- Accept-Encoding ---------------------------------------------------------------------

fn raw_accept_encoding(value: &[u8]) {
    let codings = encoding::accepted(Some(value));
    assert!(codings.len() <= Coding::ALL.len(), "{codings:?}");
    assert!(
        !(codings.len() == 2 && codings[0] == codings[1]),
        "a coding twice: {codings:?}"
    );
    for preference in crate::http::accept::preferences(value) {
        assert!(!preference.name.is_empty(), "an element with no name");
        assert!(
            preference.quality.is_none_or(|q| q <= 1000),
            "{preference:?}"
        );
    }
}

const CODING_NAMES: [&str; 11] = [
    "gzip", "br", "x-gzip", "deflate", "identity", "*", "GZIP", "Br", "X-GZIP", "compress", "zstd",
];

/// Valid qvalues (RFC 9110 §12.4.2) and their thousandths.
const QVALUES: [(&str, u16); 12] = [
    ("0", 0),
    ("1", 1000),
    ("0.5", 500),
    ("0.05", 50),
    ("0.123", 123),
    ("1.0", 1000),
    ("1.000", 1000),
    ("0.", 0),
    ("1.", 1000),
    ("0.000", 0),
    ("0.999", 999),
    ("0.001", 1),
];

fn well_formed_accept_encoding(choices: &mut Choices<'_>) {
    let count = choices.below(8);
    let mut value = String::new();
    let mut elements = Vec::new();
    for n in 0..count {
        if n > 0 {
            value.push_str([",", ", ", " ,", ", ,", ",\t"][choices.below(5)]);
        }
        let name = CODING_NAMES[choices.below(CODING_NAMES.len())];
        value.push_str(name);
        let weight = match choices.below(3) {
            0 => None,
            _ => {
                let (text, q) = QVALUES[choices.below(QVALUES.len())];
                let key = ["q", "Q"][choices.below(2)];
                let space = ["", " ", "\t"][choices.below(3)];
                write!(value, "{space};{space}{key}={text}").unwrap();
                Some(q)
            }
        };
        elements.push((name, weight.unwrap_or(1000)));
    }
    let got = encoding::accepted(Some(value.as_bytes()));
    assert_eq!(
        got.as_slice(),
        model_accept_encoding(&elements),
        "Accept-Encoding: {value}"
    );
}

/// RFC 9110 §12.5.3, with our policy: the last weight given for a coding (or for `*`) counts,
/// a coding's own weight beats the wildcard's, q=0 means "not acceptable", and among equal
/// weights br goes before gzip. `x-gzip` is gzip.
fn model_accept_encoding(elements: &[(&str, u16)]) -> Vec<Coding> {
    let weight_of = |names: &[&str]| {
        elements
            .iter()
            .rev()
            .find(|(name, _)| names.iter().any(|n| name.eq_ignore_ascii_case(n)))
            .map(|(_, q)| *q)
    };
    let wildcard = weight_of(&["*"]);
    let mut wanted: Vec<(u16, Coding)> = [
        (weight_of(&["br"]), Coding::Brotli),
        (weight_of(&["gzip", "x-gzip"]), Coding::Gzip),
    ]
    .into_iter()
    .filter_map(|(q, coding)| Some((q.or(wildcard)?, coding)))
    .filter(|(q, _)| *q > 0)
    .collect();
    if wanted.len() == 2 && wanted[1].0 > wanted[0].0 {
        wanted.swap(0, 1);
    }
    wanted.into_iter().map(|(_, coding)| coding).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_models_read_the_rfc_examples() {
        let specs = [
            Spec::Int {
                first: 0,
                last: Some(499),
            },
            Spec::Suffix(500),
        ];
        assert_eq!(
            model_range(&specs, 10_000),
            RangeReply::Multiple(vec![0..500, 9500..10_000])
        );
        assert_eq!(
            model_range(&[Spec::Suffix(0)], 10),
            RangeReply::Unsatisfiable
        );
        assert_eq!(
            model_accept_encoding(&[("gzip", 1000), ("br", 500)]),
            [Coding::Gzip, Coding::Brotli]
        );
        for selector in 0..3u8 {
            for input in [
                &b""[..],
                b"bytes=0-1,5-6",
                b"\x01\x02\x03\x04\x05\x06\x07\x08",
            ] {
                run(&[&[selector][..], input].concat());
            }
        }
    }
}
