//! Fuzz target `head`: the request-head parser, [`parse_head`].
//!
//! Input: one byte that seeds how the rest is split ([`super::cuts`]), then the bytes a client
//! sends (a head, and whatever follows it).
//!
//! Properties:
//! 1. It never panics, on any bytes.
//! 2. Limits are honoured: under small limits the verdict is the one without limits, or a
//!    limit's own error (413, 414, 431), and only when that limit is really exceeded; an
//!    accepted head is within every limit.
//! 3. An accepted head re-serializes (request line, one field per line, `name: value`) to a
//!    head that parses to the same request, and re-serializing that gives the same bytes.
//! 4. A head split at any point parses the same as whole: fed prefix by prefix, as a
//!    connection receives it, the first verdict other than "need more" is the whole's verdict
//!    (every prefix for short inputs, the seed's cuts for longer ones).

use crate::http::parse::{
    Framing, HEADER_SLOTS, HeaderSpan, ParseError, ParseLimits, TargetForm, Version, parse_head,
};

/// Limits no input of a fuzzer's size reaches (the body limit aside, which `Content-Length`
/// can exceed, and which is the same here as in production: as much as a u64 holds).
const GENEROUS: ParseLimits = ParseLimits {
    max_head_bytes: 1 << 24,
    max_target_bytes: 1 << 24,
    max_headers: HEADER_SLOTS - 1,
    max_body_bytes: u64::MAX,
};

/// Limits small enough for the fuzzer to cross each of them.
const SMALL: ParseLimits = ParseLimits {
    max_head_bytes: 512,
    max_target_bytes: 64,
    max_headers: 8,
    max_body_bytes: 1000,
};

/// Inputs up to this long are checked at every prefix; longer ones at the seed's cuts.
const EVERY_PREFIX_UP_TO: usize = 96;

pub fn run(data: &[u8]) {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let whole = verdict(input, &GENEROUS);
    let small = verdict(input, &SMALL);
    check_limits(input, &small, &whole);
    if let Verdict::Accepted(accepted) = &whole {
        check_reserialization(accepted);
    }
    for (limits, expected) in [(&GENEROUS, &whole), (&SMALL, &small)] {
        check_prefixes(input, seed, limits, expected);
    }
}

/// What the parser said, with the spans resolved to bytes so verdicts compare with `==`.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    NeedMore,
    Rejected(ParseError),
    Accepted(Accepted),
}

#[derive(Debug, PartialEq, Eq)]
struct Accepted {
    len: usize,
    method: Vec<u8>,
    target: Vec<u8>,
    form: Form,
    version: Version,
    framing: Framing,
    keep_alive: bool,
    expect_continue: bool,
    fields: Vec<(Vec<u8>, Vec<u8>)>,
}

#[derive(Debug, PartialEq, Eq)]
enum Form {
    Origin,
    Absolute { path: Vec<u8> },
    Authority,
    Asterisk,
}

fn verdict(input: &[u8], limits: &ParseLimits) -> Verdict {
    let mut headers: Vec<HeaderSpan> = Vec::new();
    match parse_head(input, limits, &mut headers) {
        Ok(None) => Verdict::NeedMore,
        Err(error) => Verdict::Rejected(error),
        Ok(Some(head)) => {
            assert!(head.len <= input.len(), "head longer than the input");
            let form = match head.target_form {
                TargetForm::Origin => Form::Origin,
                TargetForm::Absolute { path } => Form::Absolute {
                    path: path.of(input).to_vec(),
                },
                TargetForm::Authority => Form::Authority,
                TargetForm::Asterisk => Form::Asterisk,
            };
            let in_head = |span: crate::http::parse::Span| {
                assert!(span.end <= head.len, "span {span:?} past the head");
                span.of(input).to_vec()
            };
            Verdict::Accepted(Accepted {
                len: head.len,
                method: in_head(head.method),
                target: in_head(head.target),
                form,
                version: head.version,
                framing: head.framing,
                keep_alive: head.keep_alive,
                expect_continue: head.expect_continue,
                fields: headers
                    .iter()
                    .map(|field| (in_head(field.name), in_head(field.value)))
                    .collect(),
            })
        }
    }
}

/// Property 2.
fn check_limits(input: &[u8], small: &Verdict, unlimited: &Verdict) {
    match small {
        Verdict::Accepted(head) => {
            assert!(head.len <= SMALL.max_head_bytes, "head over the limit");
            assert!(head.target.len() <= SMALL.max_target_bytes, "target over");
            assert!(head.fields.len() <= SMALL.max_headers, "fields over");
            if let Framing::Length(len) = head.framing {
                assert!(len <= SMALL.max_body_bytes, "body over the limit");
            }
            assert_eq!(small, unlimited, "limits changed an accepted head");
        }
        Verdict::Rejected(ParseError::UriTooLong) => assert!(
            first_target_len(input) > SMALL.max_target_bytes,
            "414 for a target of {} bytes",
            first_target_len(input)
        ),
        Verdict::Rejected(ParseError::HeadTooLarge) => assert!(
            input.len() > SMALL.max_head_bytes || field_lines(input) > SMALL.max_headers,
            "431 for {} bytes, {} field lines",
            input.len(),
            field_lines(input)
        ),
        Verdict::Rejected(ParseError::BodyTooLarge) => {}
        other => assert_eq!(other, unlimited, "limits changed the verdict"),
    }
}

/// The request-target as far as it arrived: after the first space of the first line that is
/// not empty, up to the next space or the line's end.
fn first_target_len(input: &[u8]) -> usize {
    let start = input
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(input.len());
    let line = input[start..].split(|&b| b == b'\n').next().unwrap_or(&[]);
    let Some(space) = line.iter().position(|&b| b == b' ') else {
        return 0;
    };
    let rest = &line[space + 1..];
    rest.iter().position(|&b| b == b' ').unwrap_or(rest.len())
}

/// Lines after the request line, up to the blank one: at least the field count.
fn field_lines(input: &[u8]) -> usize {
    let mut lines = input
        .split(|&b| b == b'\n')
        .skip_while(|line| line.is_empty() || line == b"\r");
    lines.next(); // the request line
    lines
        .take_while(|line| !line.is_empty() && *line != b"\r")
        .count()
}

/// Property 3.
fn check_reserialization(accepted: &Accepted) {
    let bytes = serialize(accepted);
    let Verdict::Accepted(again) = verdict(&bytes, &GENEROUS) else {
        panic!(
            "re-serialized head rejected: {:?} gave {:?}",
            String::from_utf8_lossy(&bytes),
            verdict(&bytes, &GENEROUS)
        );
    };
    assert_eq!(again.len, bytes.len(), "re-serialized head not taken whole");
    let same = Accepted {
        len: accepted.len,
        ..again
    };
    assert_eq!(&same, accepted, "re-serialized head means something else");
    assert_eq!(serialize(&same), bytes, "re-serializing is not idempotent");
}

/// The canonical form of a head: `METHOD SP target SP version CRLF`, `name: value CRLF` per
/// field, `CRLF`.
fn serialize(head: &Accepted) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&head.method);
    out.push(b' ');
    out.extend_from_slice(&head.target);
    out.push(b' ');
    out.extend_from_slice(head.version.as_str().as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &head.fields {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Property 4.
fn check_prefixes(input: &[u8], seed: u8, limits: &ParseLimits, whole: &Verdict) {
    let cut_points: Vec<usize> = if input.len() <= EVERY_PREFIX_UP_TO {
        (0..input.len()).collect()
    } else {
        super::cuts(seed.max(1), input.len())
    };
    for cut in cut_points {
        let prefix = verdict(&input[..cut], limits);
        if prefix != Verdict::NeedMore {
            assert_eq!(
                &prefix,
                whole,
                "the first {cut} bytes decided otherwise than all {}",
                input.len()
            );
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typical_heads_hold_every_property() {
        for head in [
            &b"\x01GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"\x05POST /api/posts HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
            b"\x00GET http://a/b?c HTTP/1.2\r\nHost: a\r\nX:  y \r\n\r\n",
            b"\x02OPTIONS * HTTP/1.0\r\n\r\n",
        ] {
            run(head);
        }
    }
}
