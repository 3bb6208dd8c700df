//! Conditional requests (RFC 9110 §13): evaluating If-Match, If-Unmodified-Since, If-None-Match,
//! If-Modified-Since and If-Range against a file's validators, in the order of §13.2.2.
//!
//! 1. If-Match present: no strong match → 412. Else, If-Unmodified-Since: modified since → 412.
//! 2. If-None-Match present: a weak match → 304 for GET/HEAD (412 otherwise). Else, for
//!    GET/HEAD, If-Modified-Since: not modified since → 304.
//! 3. If-Range (only with a Range): a strong match of the ETag, or a date equal to
//!    Last-Modified, keeps the Range; anything else means send the whole file.
//!
//! Invalid dates are ignored, as §13.1.3 and §13.1.4 require.

use std::time::UNIX_EPOCH;

use crate::http::request::Request;

/// What the validators of the selected representation are.
#[derive(Clone, Copy, Debug)]
pub struct Validators<'a> {
    /// The strong entity tag, quotes included: `"abc"`.
    pub etag: &'a str,
    /// Last modification, in whole seconds since the epoch.
    pub modified_secs: u64,
}

/// The outcome of the preconditions.
#[derive(Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Go on and serve (a Range, if any, still applies only if `range_allowed`).
    Proceed {
        range_allowed: bool,
    },
    NotModified,
    Failed,
}

/// Evaluates the request's preconditions (§13.2.2) for a GET or HEAD of a representation that
/// has `validators`.
pub fn evaluate(request: &Request<'_>, validators: Validators<'_>) -> Precondition {
    // 1.
    if let Some(if_match) = request.header("if-match") {
        if !list_matches(if_match, validators.etag, Comparison::Strong) {
            return Precondition::Failed;
        }
    } else if let Some(since) = date_header(request, "if-unmodified-since")
        && validators.modified_secs > since
    {
        return Precondition::Failed;
    }
    // 2.
    if let Some(if_none_match) = request.header("if-none-match") {
        if list_matches(if_none_match, validators.etag, Comparison::Weak) {
            return Precondition::NotModified;
        }
    } else if let Some(since) = date_header(request, "if-modified-since")
        && validators.modified_secs <= since
    {
        return Precondition::NotModified;
    }
    // 3.
    let range_allowed = match request.header("if-range") {
        None => true,
        Some(value) => if_range_holds(value.trim_ascii(), validators),
    };
    Precondition::Proceed { range_allowed }
}

#[derive(Clone, Copy)]
enum Comparison {
    /// §8.8.3.2: both tags strong and identical.
    Strong,
    /// §8.8.3.2: identical opaque-tags, either or both may be weak.
    Weak,
}

/// Whether an `If-Match` / `If-None-Match` list (`*`, or entity tags) matches `etag`.
fn list_matches(list: &[u8], etag: &str, comparison: Comparison) -> bool {
    let list = list.trim_ascii();
    if list == b"*" {
        return true; // the representation exists
    }
    entity_tags(list).any(|(weak, tag)| match comparison {
        Comparison::Strong => !weak && tag == etag.as_bytes(),
        Comparison::Weak => tag == strip_weak(etag).as_bytes(),
    })
}

/// The entity tags of a list: (is weak, the quoted opaque tag). Commas may occur inside quotes.
fn entity_tags(mut list: &[u8]) -> impl Iterator<Item = (bool, &[u8])> {
    std::iter::from_fn(move || {
        loop {
            list = list.trim_ascii_start();
            list = list.strip_prefix(b",").unwrap_or(list).trim_ascii_start();
            if list.is_empty() {
                return None;
            }
            let weak = list.starts_with(b"W/");
            let rest = if weak { &list[2..] } else { list };
            if rest.first() != Some(&b'"') {
                // Not an entity tag: skip to the next element.
                let next = rest
                    .iter()
                    .position(|&b| b == b',')
                    .map_or(rest.len(), |i| i);
                list = &rest[next..];
                continue;
            }
            let close = rest[1..].iter().position(|&b| b == b'"').map(|i| i + 2)?;
            let tag = &rest[..close];
            list = &rest[close..];
            return Some((weak, tag));
        }
    })
}

fn strip_weak(etag: &str) -> &str {
    etag.strip_prefix("W/").unwrap_or(etag)
}

/// §13.1.5: an entity tag must match strongly; a date must equal Last-Modified exactly (and
/// our Last-Modified is a strong validator: the file's mtime, at a second granularity).
fn if_range_holds(value: &[u8], validators: Validators<'_>) -> bool {
    if value.first() == Some(&b'"') || value.starts_with(b"W/") {
        return value == validators.etag.as_bytes();
    }
    parse_date(value).is_some_and(|secs| secs == validators.modified_secs)
}

#[inline]
fn date_header(request: &Request<'_>, name: &str) -> Option<u64> {
    parse_date(request.header(name)?)
}

/// An HTTP-date (any of the three formats of §5.6.7) in seconds since the epoch.
fn parse_date(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(value).ok()?;
    let time = httpdate::parse_http_date(text.trim()).ok()?;
    time.duration_since(UNIX_EPOCH)
        .ok()
        .map(|since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_tag_lists() {
        let tags: Vec<(bool, &[u8])> =
            entity_tags(b"\"a\", W/\"b\" ,\"c,d\", junk, \"e\"").collect();
        assert_eq!(
            tags,
            vec![
                (false, &b"\"a\""[..]),
                (true, &b"\"b\""[..]),
                (false, &b"\"c,d\""[..]),
                (false, &b"\"e\""[..]),
            ]
        );
        assert!(list_matches(b"*", "\"x\"", Comparison::Strong));
        assert!(list_matches(b"W/\"x\"", "\"x\"", Comparison::Weak));
        assert!(!list_matches(b"W/\"x\"", "\"x\"", Comparison::Strong));
        assert!(!list_matches(b"\"y\"", "\"x\"", Comparison::Weak));
    }

    #[test]
    fn if_range_needs_a_strong_match_or_the_exact_date() {
        let validators = Validators {
            etag: "\"v1\"",
            modified_secs: 784_111_777,
        };
        assert!(if_range_holds(b"\"v1\"", validators));
        assert!(!if_range_holds(b"W/\"v1\"", validators));
        assert!(!if_range_holds(b"\"v2\"", validators));
        assert!(if_range_holds(b"Sun, 06 Nov 1994 08:49:37 GMT", validators));
        assert!(!if_range_holds(
            b"Sun, 06 Nov 1994 08:49:38 GMT",
            validators
        ));
        assert!(!if_range_holds(b"not a date", validators));
    }
}
