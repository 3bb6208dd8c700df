//! Static files against RFC 9110, over real TCP: validators (§8.8), conditional
//! requests and their evaluation order (§13), byte ranges and
//! multipart/byteranges (§14), content codings (§8.4, §12.5.3) from
//! pre-compressed sidecars and `--compress`, the file cache's freshness,
//! `Cache-Control` options, directory listings (`--list-dirs`), the custom
//! `404.html` page and the `--spa` fallback.
//!
//! Every request is written as raw bytes so the exact header fields are under
//! the test's control. Helpers live in this module (not in `support`).

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, UNIX_EPOCH};

use crate::support::*;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A fixed modification time: Sun, 09 Sep 2001 01:46:40 GMT.
const T: u64 = 1_000_000_000;

/// 20 bytes, each distinct, for range arithmetic.
const DIGITS: &[u8] = b"0123456789abcdefghij";

const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

fn set_mtime(path: &Path, secs: u64) {
    let f = File::options().write(true).open(path).unwrap();
    f.set_modified(UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

/// A request with `headers` ("Name: value" lines); `Connection: close` if `close`.
fn raw(method: &str, path: &str, headers: &[&str], close: bool) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

fn describe(request: &[u8], resp: &Response) -> String {
    format!(
        "request:\n{}\nresponse:\n{}",
        String::from_utf8_lossy(request),
        resp.head
    )
}

/// GET with extra header fields on a fresh connection; checks the basics and
/// that the response is framed correctly (no stray body bytes, e.g. after a
/// 304) by parsing a pipelined follow-up response.
fn get_with(server: &Server, path: &str, headers: &[&str]) -> Response {
    let request = raw("GET", path, headers, false);
    let mut c = server.connect();
    // A follow-up request on the same connection: if the first response
    // carried stray body bytes, the second one would not parse.
    c.send(&concat(&[&request, &get_close("/__followup_probe__.none")]));
    let resp = c
        .try_read_response(false)
        .unwrap_or_else(|e| panic!("{e}\nrequest:\n{}", String::from_utf8_lossy(&request)));
    resp.assert_basics();
    let next = c.try_read_response(false).unwrap_or_else(|e| {
        panic!(
            "the response was not framed correctly (the next response does not parse): {e}\n{}",
            describe(&request, &resp)
        )
    });
    assert_eq!(
        next.status,
        404,
        "follow-up response after\n{}",
        describe(&request, &resp)
    );
    resp
}

/// HEAD with extra header fields; checks that no body bytes follow.
fn head_with(server: &Server, path: &str, headers: &[&str]) -> Response {
    let request = raw("HEAD", path, headers, false);
    let mut c = server.connect();
    c.send(&concat(&[&request, &get_close("/__followup_probe__.none")]));
    let resp = c.read_response_to_head();
    resp.assert_basics_head();
    let next = c.try_read_response(false).unwrap_or_else(|e| {
        panic!(
            "bytes after a response to HEAD (RFC 9110 §9.3.2: no content): {e}\n{}",
            describe(&request, &resp)
        )
    });
    assert_eq!(next.status, 404, "{}", describe(&request, &resp));
    resp
}

fn expect_status(resp: &Response, status: u16, what: &str) {
    assert_eq!(
        resp.status,
        status,
        "{what}: expected {status}, got\n{}\n\n{}",
        resp.head,
        String::from_utf8_lossy(&resp.body[..resp.body.len().min(300)])
    );
}

fn etag(resp: &Response) -> String {
    resp.header("etag")
        .unwrap_or_else(|| panic!("no ETag:\n{}", resp.head))
        .to_string()
}

/// RFC 9110 §8.8.3: entity-tag = [ weak ] opaque-tag; opaque-tag = DQUOTE *etagc DQUOTE.
fn assert_strong_etag(tag: &str) {
    assert!(!tag.starts_with("W/"), "ETag {tag:?} should be strong");
    assert!(
        tag.len() >= 2
            && tag.starts_with('"')
            && tag.ends_with('"')
            && tag[1..tag.len() - 1]
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80),
        "ETag {tag:?} is not a quoted opaque-tag"
    );
}

/// RFC 9110 §15.4.5: a 304 has no content, and carries the fields a 200
/// would for caching (ETag, Cache-Control, Date, Vary), but no Content-Type
/// and no Content-Length.
fn assert_not_modified(resp: &Response, etag_200: &str, cache_control: &str, what: &str) {
    expect_status(resp, 304, what);
    assert!(resp.body.is_empty(), "{what}: 304 with a body");
    assert!(
        resp.header("content-length").is_none(),
        "{what}: 304 must not carry Content-Length:\n{}",
        resp.head
    );
    assert!(
        resp.header("content-type").is_none(),
        "{what}: 304 must not carry Content-Type:\n{}",
        resp.head
    );
    assert_eq!(
        resp.header("etag"),
        Some(etag_200),
        "{what}: 304 must carry the ETag a 200 would:\n{}",
        resp.head
    );
    assert_eq!(
        resp.header("cache-control"),
        Some(cache_control),
        "{what}: 304 must carry the Cache-Control a 200 would:\n{}",
        resp.head
    );
    assert!(resp.header("date").is_some(), "{what}: 304 without Date");
}

fn vary_has(resp: &Response, token: &str) -> bool {
    resp.has_token("vary", token)
}

/// Runs `program args` with `input` on stdin and returns its stdout.
fn pipe_through(program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Several KB of compressible text.
fn text_body() -> Vec<u8> {
    let mut out = String::new();
    for i in 0..240 {
        out.push_str(&format!(
            "line {i:04}: the quick brown fox jumps over the lazy dog {}\n",
            (i * 7919) % 1000
        ));
    }
    out.into_bytes()
}

/// Polls `path` until `done` holds or `PATIENCE` passed; returns the last
/// response. (How soon a change shows: benches/load/timing.py.)
fn poll(server: &Server, path: &str, done: impl Fn(&Response) -> bool) -> Response {
    let mut last = None;
    let _ = try_wait_for(PATIENCE, Duration::from_millis(50), || {
        let resp = server.get(path);
        let ok = done(&resp);
        last = Some(resp);
        if ok { Ok(()) } else { Err(String::new()) }
    });
    last.expect("polled at least once")
}

/// The `boundary` parameter of a multipart media type (RFC 9110 §5.6.6,
/// RFC 2046 §5.1.1), unquoted.
pub(crate) fn boundary_of(content_type: &str) -> String {
    let mut params = content_type.split(';');
    let essence = params.next().unwrap().trim();
    assert!(
        essence.eq_ignore_ascii_case("multipart/byteranges"),
        "Content-Type {content_type:?} is not multipart/byteranges"
    );
    for p in params {
        let (name, value) = p.trim().split_once('=').expect("parameter with a value");
        if name.trim().eq_ignore_ascii_case("boundary") {
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            assert!(
                !value.is_empty() && value.len() <= 70,
                "bad boundary {value:?} (RFC 2046 §5.1.1)"
            );
            return value.to_string();
        }
    }
    panic!("no boundary parameter in {content_type:?}");
}

pub(crate) struct Part {
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) data: Vec<u8>,
}

impl Part {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a multipart body (RFC 2046 §5.1.1): optional preamble, parts
/// delimited by CRLF "--" boundary, each with header fields, a blank line and
/// the data; closed by "--" boundary "--".
pub(crate) fn parse_multipart(body: &[u8], boundary: &str) -> Vec<Part> {
    let dash_boundary = format!("--{boundary}");
    let delimiter = format!("\r\n--{boundary}");
    let show = || String::from_utf8_lossy(body).into_owned();
    // The first dash-boundary is at the very start or after a preamble's CRLF.
    let mut i = if body.starts_with(dash_boundary.as_bytes()) {
        dash_boundary.len()
    } else {
        find(body, delimiter.as_bytes())
            .map(|p| p + delimiter.len())
            .unwrap_or_else(|| panic!("no boundary in the multipart body:\n{}", show()))
    };
    let mut parts = Vec::new();
    loop {
        if body[i..].starts_with(b"--") {
            // close-delimiter; only an epilogue (CRLF ...) may follow.
            let rest = &body[i + 2..];
            assert!(
                rest.is_empty() || rest.starts_with(b"\r\n"),
                "junk after the close delimiter: {:?}",
                String::from_utf8_lossy(rest)
            );
            return parts;
        }
        // transport-padding, then CRLF.
        while matches!(body.get(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        assert!(
            body[i..].starts_with(b"\r\n"),
            "boundary not followed by CRLF at offset {i}:\n{}",
            show()
        );
        i += 2;
        let head_end = i + find(&body[i..], b"\r\n\r\n")
            .unwrap_or_else(|| panic!("part without a blank line:\n{}", show()));
        let head = std::str::from_utf8(&body[i..head_end]).expect("UTF-8 part headers");
        let headers = head
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l
                    .split_once(':')
                    .unwrap_or_else(|| panic!("bad part header line {l:?}"));
                (n.to_string(), v.trim().to_string())
            })
            .collect();
        i = head_end + 4;
        let end = i + find(&body[i..], delimiter.as_bytes())
            .unwrap_or_else(|| panic!("part not followed by a delimiter:\n{}", show()));
        parts.push(Part {
            headers,
            data: body[i..end].to_vec(),
        });
        i = end + delimiter.len();
    }
}

// ---------------------------------------------------------------------------
// Validators and Cache-Control (RFC 9110 §8.8, RFC 9111 §5.2)
// ---------------------------------------------------------------------------

#[test]
fn rfc9110_8_8_every_file_response_has_validators_accept_ranges_and_cache_control() {
    let server = Server::builder()
        .setup(|root, _| set_mtime(&root.join("hello.txt"), T))
        .start();
    for path in [
        "/hello.txt",
        "/",
        "/dir/page.html",
        "/image.png",
        "/empty.txt",
    ] {
        let resp = get_with(&server, path, &[]);
        expect_status(&resp, 200, path);
        assert_strong_etag(&etag(&resp));
        let lm = resp
            .header("last-modified")
            .unwrap_or_else(|| panic!("{path}: no Last-Modified"));
        assert!(is_imf_fixdate(lm), "{path}: Last-Modified {lm:?}");
        assert_eq!(
            resp.header("accept-ranges"),
            Some("bytes"),
            "{path}: RFC 9110 §14.3\n{}",
            resp.head
        );
        assert_eq!(
            resp.header("cache-control"),
            Some("no-cache"),
            "{path}: default Cache-Control\n{}",
            resp.head
        );
    }
    let resp = get_with(&server, "/hello.txt", &[]);
    assert_eq!(
        resp.header("last-modified"),
        Some("Sun, 09 Sep 2001 01:46:40 GMT")
    );
    // HEAD carries the same validators (RFC 9110 §9.3.2).
    let h = head_with(&server, "/hello.txt", &[]);
    expect_status(&h, 200, "HEAD /hello.txt");
    assert_eq!(h.header("etag"), resp.header("etag"));
    assert_eq!(h.header("last-modified"), resp.header("last-modified"));
    assert_eq!(h.content_length(), Some(HELLO.len() as u64));
}

#[test]
fn rfc9111_5_2_cache_control_option_sets_the_field_on_200_206_and_304() {
    let server = Server::start(&["--cache-control", "public, max-age=60"]);
    let ok = get_with(&server, "/hello.txt", &[]);
    expect_status(&ok, 200, "GET");
    assert_eq!(ok.header("cache-control"), Some("public, max-age=60"));
    let partial = get_with(&server, "/hello.txt", &["Range: bytes=0-1"]);
    expect_status(&partial, 206, "Range");
    // RFC 9110 §15.3.7: a 206 carries Cache-Control and ETag as a 200 would.
    assert_eq!(partial.header("cache-control"), Some("public, max-age=60"));
    assert_eq!(partial.header("etag"), ok.header("etag"));
    let tag = etag(&ok);
    let nm = get_with(&server, "/hello.txt", &[&format!("If-None-Match: {tag}")]);
    assert_not_modified(&nm, &tag, "public, max-age=60", "If-None-Match");
}

// ---------------------------------------------------------------------------
// Conditional requests (RFC 9110 §13)
// ---------------------------------------------------------------------------

fn cond_server() -> Server {
    Server::builder()
        .file("cond.txt", DIGITS)
        .setup(|root, _| set_mtime(&root.join("cond.txt"), T))
        .start()
}

#[test]
fn rfc9110_13_1_1_if_match_uses_strong_comparison() {
    let server = cond_server();
    let tag = etag(&get_with(&server, "/cond.txt", &[]));
    let weak = format!("W/{tag}");
    let cases: Vec<(String, u16)> = vec![
        ("\"no-such-tag\"".into(), 412),
        ("*".into(), 200),
        (tag.clone(), 200),
        (format!("\"x\", {tag}"), 200),
        (format!("\"x\",{tag} , \"y\""), 200),
        // §8.8.3.2: a weak tag never matches strongly.
        (weak.clone(), 412),
        (format!("\"x\", {weak}"), 412),
    ];
    for (value, status) in cases {
        let field = format!("If-Match: {value}");
        let resp = get_with(&server, "/cond.txt", &[&field]);
        expect_status(&resp, status, &field);
        if status == 200 {
            assert_eq!(resp.body, DIGITS, "{field}");
        }
    }
}

#[test]
fn rfc9110_13_1_4_if_unmodified_since() {
    let server = cond_server();
    let tag = etag(&get_with(&server, "/cond.txt", &[]));
    let before = imf_fixdate(T as i64 - 1);
    let at = imf_fixdate(T as i64);
    let after = imf_fixdate(T as i64 + 100);
    let cases: Vec<(Vec<String>, u16)> = vec![
        (vec![format!("If-Unmodified-Since: {before}")], 412),
        (vec![format!("If-Unmodified-Since: {at}")], 200),
        (vec![format!("If-Unmodified-Since: {after}")], 200),
        // §13.1.4: an invalid date is ignored.
        (vec!["If-Unmodified-Since: not a date".into()], 200),
        (
            vec!["If-Unmodified-Since: Sun, 32 Foo 2001 99:00:00 GMT".into()],
            200,
        ),
        // §13.2.2 step 2: only evaluated when If-Match is absent.
        (
            vec![
                format!("If-Match: {tag}"),
                format!("If-Unmodified-Since: {before}"),
            ],
            200,
        ),
        (
            vec![
                "If-Match: \"other\"".into(),
                format!("If-Unmodified-Since: {after}"),
            ],
            412,
        ),
    ];
    for (fields, status) in cases {
        let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
        let resp = get_with(&server, "/cond.txt", &refs);
        expect_status(&resp, status, &fields.join(" | "));
        if status == 412 {
            assert!(!contains(&resp.body, DIGITS), "412 must not carry the file");
        } else {
            assert_eq!(resp.body, DIGITS);
        }
    }
}

#[test]
fn rfc9110_13_1_2_if_none_match_uses_weak_comparison_and_304_has_no_content() {
    let server = cond_server();
    let tag = etag(&get_with(&server, "/cond.txt", &[]));
    for value in [
        tag.clone(),
        format!("W/{tag}"),
        format!("\"nope\", W/\"other\", {tag}"),
        format!("\"a\",{tag}"),
        "*".to_string(),
    ] {
        let field = format!("If-None-Match: {value}");
        let resp = get_with(&server, "/cond.txt", &[&field]);
        assert_not_modified(&resp, &tag, "no-cache", &field);
    }
    for value in ["\"nope\"", "W/\"nope\"", "\"a\", \"b\""] {
        let field = format!("If-None-Match: {value}");
        let resp = get_with(&server, "/cond.txt", &[&field]);
        expect_status(&resp, 200, &field);
        assert_eq!(resp.body, DIGITS);
    }
}

#[test]
fn rfc9110_13_1_3_if_modified_since_and_precedence_of_if_none_match() {
    let server = cond_server();
    let tag = etag(&get_with(&server, "/cond.txt", &[]));
    let not_modified = [
        format!("If-Modified-Since: {}", imf_fixdate(T as i64)),
        format!("If-Modified-Since: {}", imf_fixdate(T as i64 + 100)),
        // §5.6.7: recipients MUST accept the obsolete RFC 850 and asctime formats.
        "If-Modified-Since: Sunday, 09-Sep-01 01:46:40 GMT".to_string(),
        "If-Modified-Since: Sun Sep  9 01:46:40 2001".to_string(),
    ];
    for field in &not_modified {
        let resp = get_with(&server, "/cond.txt", &[field]);
        assert_not_modified(&resp, &tag, "no-cache", field);
    }
    let modified = [
        format!("If-Modified-Since: {}", imf_fixdate(T as i64 - 1)),
        "If-Modified-Since: yesterday".to_string(),
        "If-Modified-Since: Sun, 09 Sep 2001 01:46:40".to_string(),
    ];
    for field in &modified {
        let resp = get_with(&server, "/cond.txt", &[field]);
        expect_status(&resp, 200, field);
        assert_eq!(resp.body, DIGITS);
    }
    // §13.2.2 step 4: If-Modified-Since only when If-None-Match is absent.
    let later = format!("If-Modified-Since: {}", imf_fixdate(T as i64 + 100));
    let resp = get_with(&server, "/cond.txt", &["If-None-Match: \"other\"", &later]);
    expect_status(
        &resp,
        200,
        "non-matching If-None-Match + later If-Modified-Since",
    );
    assert_eq!(resp.body, DIGITS);
    let earlier = format!("If-Modified-Since: {}", imf_fixdate(T as i64 - 1));
    let inm = format!("If-None-Match: {tag}");
    let resp = get_with(&server, "/cond.txt", &[&inm, &earlier]);
    assert_not_modified(
        &resp,
        &tag,
        "no-cache",
        "matching If-None-Match + earlier IMS",
    );
}

#[test]
fn rfc9110_13_2_2_evaluation_order() {
    let server = cond_server();
    let tag = etag(&get_with(&server, "/cond.txt", &[]));
    // Step 1 before step 3: a failed If-Match wins over a matching If-None-Match.
    let inm = format!("If-None-Match: {tag}");
    let resp = get_with(&server, "/cond.txt", &["If-Match: \"other\"", &inm]);
    expect_status(&resp, 412, "If-Match fails, If-None-Match matches");
    // Step 2 before step 3.
    let ius = format!("If-Unmodified-Since: {}", imf_fixdate(T as i64 - 1));
    let resp = get_with(&server, "/cond.txt", &[&ius, &inm]);
    expect_status(
        &resp,
        412,
        "If-Unmodified-Since fails, If-None-Match matches",
    );
    // Preconditions before Range (step 5): 304 and 412 rather than 206.
    let resp = get_with(&server, "/cond.txt", &[&inm, "Range: bytes=0-4"]);
    assert_not_modified(&resp, &tag, "no-cache", "If-None-Match + Range");
    let resp = get_with(
        &server,
        "/cond.txt",
        &["If-Match: \"other\"", "Range: bytes=0-4"],
    );
    expect_status(&resp, 412, "If-Match fails + Range");
    // Both pass: the range is served.
    let im = format!("If-Match: {tag}");
    let resp = get_with(&server, "/cond.txt", &[&im, "Range: bytes=0-4"]);
    expect_status(&resp, 206, "If-Match holds + Range");
    assert_eq!(resp.body, &DIGITS[..5]);
}

#[test]
fn rfc9110_13_1_5_if_range_with_entity_tag_and_date() {
    let server = cond_server();
    let tag = etag(&get_with(&server, "/cond.txt", &[]));
    let lm = imf_fixdate(T as i64);
    let cases: Vec<(String, u16)> = vec![
        (tag.clone(), 206),
        ("\"other\"".into(), 200),
        // §13.1.5: a weak entity tag never satisfies If-Range.
        (format!("W/{tag}"), 200),
        (lm.clone(), 206),
        (imf_fixdate(T as i64 + 1), 200),
        (imf_fixdate(T as i64 - 1), 200),
    ];
    for (value, status) in cases {
        let field = format!("If-Range: {value}");
        let resp = get_with(&server, "/cond.txt", &[&field, "Range: bytes=2-5"]);
        expect_status(&resp, status, &field);
        if status == 206 {
            assert_eq!(resp.body, &DIGITS[2..6], "{field}");
            assert_eq!(
                resp.header("content-range"),
                Some(format!("bytes 2-5/{}", DIGITS.len()).as_str())
            );
        } else {
            assert_eq!(resp.body, DIGITS, "{field}: whole file expected");
            assert!(resp.header("content-range").is_none(), "{}", resp.head);
        }
    }
}

#[test]
fn rfc9110_13_1_2_head_with_if_none_match_is_304() {
    let server = cond_server();
    let tag = etag(&get_with(&server, "/cond.txt", &[]));
    let field = format!("If-None-Match: {tag}");
    let resp = head_with(&server, "/cond.txt", &[&field]);
    assert_not_modified(&resp, &tag, "no-cache", "HEAD + If-None-Match");
    let ims = format!("If-Modified-Since: {}", imf_fixdate(T as i64));
    let resp = head_with(&server, "/cond.txt", &[&ims]);
    assert_not_modified(&resp, &tag, "no-cache", "HEAD + If-Modified-Since");
}

// ---------------------------------------------------------------------------
// Ranges (RFC 9110 §14)
// ---------------------------------------------------------------------------

fn range_server() -> Server {
    Server::builder()
        .file("digits.txt", DIGITS)
        .file("ten.txt", &DIGITS[..10])
        .file("empty.txt", b"")
        .file("long.txt", &patterned_text(64))
        .start()
}

fn patterned_text(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

#[test]
fn rfc9110_14_1_2_single_byte_ranges() {
    let server = range_server();
    let len = DIGITS.len();
    let whole = get_with(&server, "/digits.txt", &[]);
    let cases: [(&str, std::ops::Range<usize>); 7] = [
        ("bytes=0-4", 0..5),
        ("bytes=5-", 5..len),
        ("bytes=-3", len - 3..len),
        ("bytes=2-999999", 2..len),
        ("bytes=19-19", 19..20),
        ("bytes=-999", 0..len),
        // §14.1: range units are case-insensitive.
        ("Bytes=0-4", 0..5),
    ];
    for (spec, r) in cases {
        let field = format!("Range: {spec}");
        let resp = get_with(&server, "/digits.txt", &[&field]);
        expect_status(&resp, 206, &field);
        let expected_cr = format!("bytes {}-{}/{len}", r.start, r.end - 1);
        assert_eq!(
            resp.header("content-range"),
            Some(expected_cr.as_str()),
            "{field}: §14.4\n{}",
            resp.head
        );
        assert_eq!(resp.content_length(), Some(r.len() as u64), "{field}");
        assert_eq!(resp.body, &DIGITS[r.clone()], "{field}");
        assert_eq!(resp.header("content-type"), Some(TEXT_PLAIN), "{field}");
        // §15.3.7: the 206 carries the validators a 200 would.
        assert_eq!(resp.header("etag"), whole.header("etag"), "{field}");
        assert_eq!(
            resp.header("last-modified"),
            whole.header("last-modified"),
            "{field}"
        );
    }
}

#[test]
fn rfc9110_15_5_17_unsatisfiable_range_is_416_with_content_range() {
    let server = range_server();
    let len = DIGITS.len();
    for spec in [
        format!("bytes={len}-"),
        format!("bytes={}-{}", len + 5, len + 9),
    ] {
        let field = format!("Range: {spec}");
        let resp = get_with(&server, "/digits.txt", &[&field]);
        expect_status(&resp, 416, &field);
        let expected = format!("bytes */{len}");
        assert_eq!(
            resp.header("content-range"),
            Some(expected.as_str()),
            "{field}: §14.4 unsatisfied-range\n{}",
            resp.head
        );
        assert!(!contains(&resp.body, DIGITS), "416 must not carry the file");
    }
    // Any range of a 0-byte representation is unsatisfiable (§14.1.1).
    for spec in ["bytes=0-", "bytes=0-0", "bytes=-1"] {
        let field = format!("Range: {spec}");
        let resp = get_with(&server, "/empty.txt", &[&field]);
        expect_status(&resp, 416, &format!("empty file, {field}"));
        assert_eq!(resp.header("content-range"), Some("bytes */0"));
    }
}

#[test]
fn rfc9110_14_2_invalid_or_unknown_ranges_are_ignored() {
    let server = range_server();
    for spec in [
        "bytes=5-2",
        "bytes=x",
        "items=0-1",
        "bytes=0-1,x",
        "bytes 0-1",
        "bytes=--1",
    ] {
        let field = format!("Range: {spec}");
        let resp = get_with(&server, "/digits.txt", &[&field]);
        expect_status(&resp, 200, &field);
        assert_eq!(resp.body, DIGITS, "{field}");
        assert!(resp.header("content-range").is_none(), "{}", resp.head);
    }
}

#[test]
fn rfc9110_14_2_range_on_head_is_ignored() {
    // §14.2: "A server MUST ignore a Range header field received with a
    // request method that is unrecognized or for which range handling is not
    // defined"; range handling is defined only for GET.
    let server = range_server();
    let resp = head_with(&server, "/digits.txt", &["Range: bytes=0-4"]);
    expect_status(&resp, 200, "HEAD + Range");
    assert_eq!(resp.content_length(), Some(DIGITS.len() as u64));
    assert!(resp.header("content-range").is_none(), "{}", resp.head);
}

#[test]
fn rfc9110_14_6_multiple_ranges_are_multipart_byteranges() {
    let server = range_server();
    let len = DIGITS.len();
    let resp = get_with(&server, "/digits.txt", &["Range: bytes=0-1,5-6,-2"]);
    expect_status(&resp, 206, "three ranges");
    assert!(
        resp.header("content-range").is_none(),
        "§14.4: a multipart 206 has no Content-Range field:\n{}",
        resp.head
    );
    let ct = resp.header("content-type").expect("Content-Type");
    let boundary = boundary_of(ct);
    let parts = parse_multipart(&resp.body, &boundary);
    let expected = [(0usize, 1usize), (5, 6), (len - 2, len - 1)];
    assert_eq!(parts.len(), expected.len(), "{}", resp.body_str());
    for (part, (first, last)) in parts.iter().zip(expected) {
        assert_eq!(part.header("content-type"), Some(TEXT_PLAIN));
        let cr = format!("bytes {first}-{last}/{len}");
        assert_eq!(part.header("content-range"), Some(cr.as_str()));
        assert_eq!(part.data, &DIGITS[first..=last]);
    }
    // Framing: the response is followed by a parseable one (checked by
    // get_with); Content-Length is the multipart body's length (assert_basics).

    // range-set is a list (§5.6.1): optional whitespace around the commas.
    let resp = get_with(&server, "/digits.txt", &["Range: bytes=0-1 , 5-6"]);
    expect_status(&resp, 206, "bytes=0-1 , 5-6");
    let parts = parse_multipart(
        &resp.body,
        &boundary_of(resp.header("content-type").unwrap()),
    );
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].data, &DIGITS[0..2]);
    assert_eq!(parts[1].data, &DIGITS[5..7]);
}

#[test]
fn rfc9110_14_2_too_many_or_overlapping_ranges_get_the_whole_file() {
    let server = range_server();
    // 17 disjoint single-byte ranges.
    let many: Vec<String> = (0..17).map(|i| format!("{}-{}", 2 * i, 2 * i)).collect();
    let field = format!("Range: bytes={}", many.join(","));
    let resp = get_with(&server, "/long.txt", &[&field]);
    expect_status(&resp, 200, &field);
    assert_eq!(resp.body, patterned_text(64));
    // Overlapping ranges that together ask for more than the file.
    let resp = get_with(&server, "/ten.txt", &["Range: bytes=0-9,0-9"]);
    expect_status(&resp, 200, "bytes=0-9,0-9 on a 10-byte file");
    assert_eq!(resp.body, &DIGITS[..10]);
}

#[test]
fn rfc9110_14_ranges_on_a_large_sendfile_file_are_byte_exact() {
    let big = patterned_bytes(3 * 1024 * 1024 + 123);
    let len = big.len();
    let server = Server::builder().file("big.bin", &big).start();
    let start = 1_500_000usize;
    let end = 1_700_000usize; // inclusive
    let field = format!("Range: bytes={start}-{end}");
    let resp = get_with(&server, "/big.bin", &[&field]);
    expect_status(&resp, 206, &field);
    let cr = format!("bytes {start}-{end}/{len}");
    assert_eq!(resp.header("content-range"), Some(cr.as_str()));
    assert!(resp.body == big[start..=end], "middle range differs");
    // Suffix and open-ended ranges at the end.
    let resp = get_with(&server, "/big.bin", &["Range: bytes=-1000"]);
    expect_status(&resp, 206, "suffix");
    assert!(resp.body == big[len - 1000..], "suffix range differs");
    let resp = get_with(&server, "/big.bin", &["Range: bytes=3145000-"]);
    expect_status(&resp, 206, "open-ended");
    assert!(resp.body == big[3_145_000..], "open-ended range differs");
    // Several ranges of a large file.
    let resp = get_with(
        &server,
        "/big.bin",
        &["Range: bytes=100-199,2000000-2000099"],
    );
    expect_status(&resp, 206, "two ranges of the large file");
    let boundary = boundary_of(resp.header("content-type").unwrap());
    let parts = parse_multipart(&resp.body, &boundary);
    assert_eq!(parts.len(), 2);
    assert!(parts[0].data == big[100..200]);
    assert!(parts[1].data == big[2_000_000..2_000_100]);
    assert_eq!(
        parts[1].header("content-type"),
        Some("application/octet-stream")
    );
    // Keep-alive after a sendfile range: two ranges pipelined on one connection.
    let mut c = server.connect();
    c.send(&concat(&[
        &raw("GET", "/big.bin", &["Range: bytes=10-20"], false),
        &raw("GET", "/big.bin", &["Range: bytes=3000000-3000010"], true),
    ]));
    assert!(c.read_response().body == big[10..=20]);
    assert!(c.read_response().body == big[3_000_000..=3_000_010]);
    c.assert_closed();
}

// ---------------------------------------------------------------------------
// Content codings: pre-compressed sidecars (RFC 9110 §8.4, §12.5.3)
// ---------------------------------------------------------------------------

/// `big.txt` and its `gzip -k -9` sidecar, both with mtime `T`, unless
/// `sidecar_mtime` says otherwise.
fn sidecar_server(sidecar_mtime: u64) -> Server {
    Server::builder()
        .file("big.txt", &text_body())
        .setup(move |root, _| {
            let status = Command::new("gzip")
                .args(["-k", "-9", "-n"])
                .arg(root.join("big.txt"))
                .status()
                .expect("run gzip");
            assert!(status.success());
            set_mtime(&root.join("big.txt"), T);
            set_mtime(&root.join("big.txt.gz"), sidecar_mtime);
        })
        .start()
}

#[test]
fn rfc9110_8_4_gzip_sidecar_is_served_to_clients_that_accept_it() {
    let server = sidecar_server(T);
    let sidecar = std::fs::read(server.root().join("big.txt.gz")).unwrap();
    let identity = get_with(&server, "/big.txt", &[]);
    expect_status(&identity, 200, "no Accept-Encoding");
    assert_eq!(identity.body, text_body());
    assert!(
        identity.header("content-encoding").is_none(),
        "{}",
        identity.head
    );
    assert!(
        vary_has(&identity, "accept-encoding"),
        "§12.5.5: the identity response varies by Accept-Encoding too:\n{}",
        identity.head
    );

    let gz = get_with(&server, "/big.txt", &["Accept-Encoding: gzip"]);
    expect_status(&gz, 200, "Accept-Encoding: gzip");
    assert_eq!(gz.header("content-encoding"), Some("gzip"), "{}", gz.head);
    assert!(vary_has(&gz, "accept-encoding"), "{}", gz.head);
    assert!(gz.body == sidecar, "body must be the sidecar's bytes");
    assert_eq!(
        gz.header("content-type"),
        Some(TEXT_PLAIN),
        "the media type stays the file's (§8.4)"
    );
    assert_strong_etag(&etag(&gz));
    assert_ne!(
        etag(&gz),
        etag(&identity),
        "§8.8.3: different representations need different strong ETags"
    );
    assert_eq!(pipe_through("gzip", &["-dc"], &gz.body), text_body());

    for ae in [
        "Accept-Encoding: gzip;q=0",
        "Accept-Encoding: identity",
        "Accept-Encoding: gzip;q=0, identity",
        "Accept-Encoding: br",
    ] {
        let resp = get_with(&server, "/big.txt", &[ae]);
        expect_status(&resp, 200, ae);
        assert!(
            resp.header("content-encoding").is_none(),
            "{ae}:\n{}",
            resp.head
        );
        assert_eq!(resp.body, text_body(), "{ae}");
        assert_eq!(etag(&resp), etag(&identity), "{ae}");
    }
    for ae in [
        "Accept-Encoding: gzip, deflate",
        "Accept-Encoding: GZIP",
        "Accept-Encoding: br;q=1, gzip;q=0.5",
        "Accept-Encoding: *",
    ] {
        let resp = get_with(&server, "/big.txt", &[ae]);
        expect_status(&resp, 200, ae);
        assert_eq!(resp.header("content-encoding"), Some("gzip"), "{ae}");
        assert!(resp.body == sidecar, "{ae}");
    }
}

#[test]
fn rfc9110_13_1_2_conditional_and_range_requests_apply_to_the_sidecar_representation() {
    let server = sidecar_server(T);
    let sidecar = std::fs::read(server.root().join("big.txt.gz")).unwrap();
    let identity_tag = etag(&get_with(&server, "/big.txt", &[]));
    let gz_tag = etag(&get_with(&server, "/big.txt", &["Accept-Encoding: gzip"]));

    // 304 for the gzip representation carries Vary (§15.4.5).
    let inm = format!("If-None-Match: {gz_tag}");
    let resp = get_with(&server, "/big.txt", &[&inm, "Accept-Encoding: gzip"]);
    assert_not_modified(&resp, &gz_tag, "no-cache", "gzip ETag + gzip");
    assert!(vary_has(&resp, "accept-encoding"), "{}", resp.head);
    // The identity representation's validator does not match the gzip one.
    let inm_identity = format!("If-None-Match: {identity_tag}");
    let resp = get_with(
        &server,
        "/big.txt",
        &[&inm_identity, "Accept-Encoding: gzip"],
    );
    expect_status(&resp, 200, "identity ETag + gzip");
    assert!(resp.body == sidecar);
    let resp = get_with(&server, "/big.txt", &[&inm_identity]);
    assert_not_modified(&resp, &identity_tag, "no-cache", "identity ETag, no coding");
    assert!(vary_has(&resp, "accept-encoding"), "{}", resp.head);

    // §14.1: ranges select bytes of the selected (encoded) representation.
    let resp = get_with(
        &server,
        "/big.txt",
        &["Accept-Encoding: gzip", "Range: bytes=0-9"],
    );
    expect_status(&resp, 206, "gzip + Range");
    assert_eq!(resp.header("content-encoding"), Some("gzip"));
    assert_eq!(resp.body, &sidecar[..10]);
    let cr = format!("bytes 0-9/{}", sidecar.len());
    assert_eq!(resp.header("content-range"), Some(cr.as_str()));
}

#[test]
fn rfc9110_8_4_a_sidecar_older_than_its_file_is_ignored() {
    let server = sidecar_server(T - 100);
    let resp = get_with(&server, "/big.txt", &["Accept-Encoding: gzip"]);
    expect_status(&resp, 200, "stale sidecar");
    assert!(
        resp.header("content-encoding").is_none(),
        "a stale sidecar must not be served:\n{}",
        resp.head
    );
    assert_eq!(resp.body, text_body());
}

// ---------------------------------------------------------------------------
// Content codings: --compress
// ---------------------------------------------------------------------------

fn compress_server() -> Server {
    let png_like = {
        let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
        v.extend(std::iter::repeat_n(b'A', 4000));
        v
    };
    Server::builder()
        .file("text.txt", &text_body())
        .file("style.css", &text_body())
        .file("small.txt", &text_body()[..900])
        .file("pic.png", &png_like)
        .args(&["--compress"])
        .start()
}

#[test]
fn rfc9110_8_4_1_compress_gzip_on_the_fly() {
    let server = compress_server();
    let identity = get_with(&server, "/text.txt", &[]);
    expect_status(&identity, 200, "identity");
    assert_eq!(identity.body, text_body());
    assert!(identity.header("content-encoding").is_none());

    let gz = get_with(&server, "/text.txt", &["Accept-Encoding: gzip"]);
    expect_status(&gz, 200, "gzip");
    assert_eq!(gz.header("content-encoding"), Some("gzip"), "{}", gz.head);
    assert!(vary_has(&gz, "accept-encoding"), "{}", gz.head);
    assert!(vary_has(&identity, "accept-encoding"), "{}", identity.head);
    assert_eq!(gz.header("content-type"), Some(TEXT_PLAIN));
    assert!(gz.body.len() < text_body().len());
    assert_eq!(
        pipe_through("gzip", &["-dc"], &gz.body),
        text_body(),
        "gunzip of the body must give the file"
    );
    assert_strong_etag(&etag(&gz));
    assert_ne!(etag(&gz), etag(&identity));
    // A strong validator promises identical bytes: compressed once, served the same.
    let again = get_with(&server, "/text.txt", &["Accept-Encoding: gzip"]);
    assert_eq!(etag(&again), etag(&gz));
    assert!(again.body == gz.body);
    // CSS too (a text type).
    let css = get_with(&server, "/style.css", &["Accept-Encoding: gzip"]);
    assert_eq!(css.header("content-encoding"), Some("gzip"), "{}", css.head);
    assert_eq!(pipe_through("gzip", &["-dc"], &css.body), text_body());
}

#[test]
fn rfc9110_8_4_1_compress_brotli_on_the_fly() {
    let server = compress_server();
    let identity = get_with(&server, "/text.txt", &[]);
    let gz = get_with(&server, "/text.txt", &["Accept-Encoding: gzip"]);
    let br = get_with(&server, "/text.txt", &["Accept-Encoding: br"]);
    expect_status(&br, 200, "br");
    assert_eq!(br.header("content-encoding"), Some("br"), "{}", br.head);
    assert!(vary_has(&br, "accept-encoding"), "{}", br.head);
    // No brotli decoder on this machine (no `brotli` tool, no python module):
    // check it is a different, smaller encoding.
    assert!(
        br.body.len() < text_body().len(),
        "br body ({} bytes) not smaller than the file ({})",
        br.body.len(),
        text_body().len()
    );
    assert!(br.body != text_body() && br.body != gz.body);
    assert!(!br.body.starts_with(b"\x1f\x8b"), "br body looks like gzip");
    assert_strong_etag(&etag(&br));
    assert_ne!(etag(&br), etag(&identity));
    assert_ne!(etag(&br), etag(&gz));
}

#[test]
fn rfc9110_13_1_2_conditional_requests_against_the_compressed_etag() {
    let server = compress_server();
    let identity_tag = etag(&get_with(&server, "/text.txt", &[]));
    let gz = get_with(&server, "/text.txt", &["Accept-Encoding: gzip"]);
    let gz_tag = etag(&gz);
    let inm = format!("If-None-Match: {gz_tag}");
    let resp = get_with(&server, "/text.txt", &[&inm, "Accept-Encoding: gzip"]);
    assert_not_modified(&resp, &gz_tag, "no-cache", "gzip ETag + gzip");
    assert!(vary_has(&resp, "accept-encoding"), "{}", resp.head);
    // The same tag does not match the identity representation.
    let resp = get_with(&server, "/text.txt", &[&inm]);
    expect_status(&resp, 200, "gzip ETag, no Accept-Encoding");
    assert_eq!(resp.body, text_body());
    assert_eq!(etag(&resp), identity_tag);
    // If-Match with the gzip tag holds for the gzip representation.
    let im = format!("If-Match: {gz_tag}");
    let resp = get_with(&server, "/text.txt", &[&im, "Accept-Encoding: gzip"]);
    expect_status(&resp, 200, "If-Match gzip ETag + gzip");
    assert!(resp.body == gz.body);
    // A range of the compressed representation (§14.1).
    let resp = get_with(
        &server,
        "/text.txt",
        &["Accept-Encoding: gzip", "Range: bytes=0-1"],
    );
    expect_status(&resp, 206, "gzip + Range");
    assert_eq!(resp.header("content-encoding"), Some("gzip"));
    assert_eq!(resp.body, b"\x1f\x8b");
    let cr = format!("bytes 0-1/{}", gz.body.len());
    assert_eq!(resp.header("content-range"), Some(cr.as_str()));
}

#[test]
// RFC 9110 §12.5.3: the server chooses which codings to apply; already
// compressed media (image/png) and tiny files are sent as identity.
fn compress_skips_images_and_files_under_1_kib() {
    let server = compress_server();
    for (path, content) in [
        (
            "/pic.png",
            std::fs::read(server.root().join("pic.png")).unwrap(),
        ),
        ("/small.txt", text_body()[..900].to_vec()),
    ] {
        for ae in ["Accept-Encoding: gzip", "Accept-Encoding: br"] {
            let resp = get_with(&server, path, &[ae]);
            expect_status(&resp, 200, path);
            assert!(
                resp.header("content-encoding").is_none(),
                "{path} with {ae} must not be compressed:\n{}",
                resp.head
            );
            assert_eq!(resp.body, content, "{path}");
        }
    }
}

// ---------------------------------------------------------------------------
// File cache freshness
// ---------------------------------------------------------------------------

#[test]
// RFC 9110 §8.8 / §13.1: validators and content describe the *current*
// representation; the file cache may lag (about a second by design), but a
// change on disk shows without a restart.
fn changed_file_is_served_fresh() {
    let server = Server::builder()
        .file("fresh.txt", b"version one\n")
        .setup(|root, _| set_mtime(&root.join("fresh.txt"), T))
        .start();
    let before = server.get("/fresh.txt");
    assert_eq!(before.body, b"version one\n");
    let path = server.root().join("fresh.txt");
    // Same length, other bytes, other mtime.
    std::fs::write(&path, b"version two\n").unwrap();
    set_mtime(&path, T + 3600);
    let after = poll(&server, "/fresh.txt", |r| r.body != before.body);
    assert_eq!(
        after.body, b"version two\n",
        "still stale after {PATIENCE:?}"
    );
    after.assert_basics();
    assert_ne!(after.header("etag"), before.header("etag"));
    assert_eq!(
        after.header("last-modified"),
        Some(imf_fixdate(T as i64 + 3600).as_str())
    );
}

#[test]
// RFC 9110 §15.5.5: a 404 is not permanent; a cached miss must not hide a
// file created afterwards (for more than about a second, by design).
fn file_created_after_a_404_is_served() {
    let server = Server::start(&[]);
    let first = server.get("/late.txt");
    expect_status(&first, 404, "before creation");
    std::fs::write(server.root().join("late.txt"), b"I am late\n").unwrap();
    let resp = poll(&server, "/late.txt", |r| r.status == 200);
    expect_status(
        &resp,
        200,
        &format!("polled for {PATIENCE:?} after creation"),
    );
    assert_eq!(resp.body, b"I am late\n");
}

#[test]
// RFC 9110 §15.5.5: once the file is gone there is no current
// representation; cached bytes must not outlive it (by more than about a
// second, by design).
fn deleted_file_is_404() {
    let server = Server::builder().file("gone.txt", b"soon gone\n").start();
    assert_eq!(server.get("/gone.txt").body, b"soon gone\n");
    std::fs::remove_file(server.root().join("gone.txt")).unwrap();
    let resp = poll(&server, "/gone.txt", |r| r.status == 404);
    expect_status(
        &resp,
        404,
        &format!("polled for {PATIENCE:?} after deletion"),
    );
    assert!(!contains(&resp.body, b"soon gone"));
}

#[test]
fn rfc8246_immutable_fingerprinted_names() {
    let files: &[(&str, &[u8])] = &[
        ("app.3f2a9c1b.js", b"console.log(1);\n"),
        ("app.js", b"console.log(2);\n"),
    ];
    let server = Server::with_root(files, &["--immutable-fingerprinted"]);
    let resp = get_with(&server, "/app.3f2a9c1b.js", &[]);
    expect_status(&resp, 200, "fingerprinted");
    assert_eq!(
        resp.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let resp = get_with(&server, "/app.js", &[]);
    expect_status(&resp, 200, "plain");
    assert_eq!(resp.header("cache-control"), Some("no-cache"));
    // Without the flag, the fingerprinted name gets the default.
    let plain = Server::with_root(files, &[]);
    let resp = get_with(&plain, "/app.3f2a9c1b.js", &[]);
    assert_eq!(resp.header("cache-control"), Some("no-cache"));
}

// ---------------------------------------------------------------------------
// Directory listings (--list-dirs)
// ---------------------------------------------------------------------------

const ODD_NAME: &str = "a&b<c>.txt";

/// The files of /list/ (besides the dotfile and sub/) and their contents.
const LISTED_FILES: [(&str, &[u8]); 6] = [
    ("file.txt", b"listed\n"),
    (ODD_NAME, b"odd\n"),
    ("with space.txt", b"spaced\n"),
    ("100%.txt", b"percent\n"),
    ("what?#.txt", b"query-hash\n"),
    ("a:b.txt", b"colon\n"),
];

fn listing_builder() -> ServerBuilder {
    Server::builder()
        .file("list/file.txt", b"listed\n")
        .file(&format!("list/{ODD_NAME}"), b"odd\n")
        .file("list/with space.txt", b"spaced\n")
        .file("list/100%.txt", b"percent\n")
        .file("list/what?#.txt", b"query-hash\n")
        .file("list/a:b.txt", b"colon\n")
        .file("list/.hidden", b"DOT-SECRET\n")
        .file("list/sub/inner.txt", b"inner\n")
        .setup(|root, _| set_mtime(&root.join("list/file.txt"), T))
}

fn html_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("bad %-escape in {s}")));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// The href attribute values of a page (double-quoted).
fn hrefs(page: &str) -> Vec<String> {
    page.split("href=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_string())
        .collect()
}

#[test]
// RFC 9110 §15.5.5: without --list-dirs a directory with no index has no
// representation to send.
fn directory_without_index_is_404_unless_list_dirs() {
    let server = listing_builder().start();
    let resp = get_with(&server, "/list/", &[]);
    expect_status(&resp, 404, "listing is off by default");
    assert!(!resp.body_str().contains("file.txt"));
}

#[test]
// RFC 9110 §8.3 (text/html), §12.5.5 (Vary: Accept); RFC 3986 §2.1, §4.2
// (links are percent-encoded relative references); RFC 9110 §17.3 (no dotfiles).
fn list_dirs_html_escapes_names_encodes_links_and_hides_dotfiles() {
    let server = listing_builder().args(&["--list-dirs"]).start();
    let resp = get_with(&server, "/list/", &[]);
    expect_status(&resp, 200, "listing");
    let ct = resp.header("content-type").unwrap_or_default();
    assert!(ct.starts_with("text/html"), "Content-Type {ct:?}");
    assert!(
        vary_has(&resp, "accept"),
        "§12.5.5: the listing varies by Accept:\n{}",
        resp.head
    );
    let page = resp.body_str();
    assert!(page.contains("file.txt"), "{page}");
    assert!(!page.contains("inner.txt"), "lists only one level");
    assert!(page.contains("sub/"), "{page}");
    assert!(
        page.contains("a&amp;b&lt;c&gt;.txt"),
        "name must be HTML-escaped:\n{page}"
    );
    assert!(
        !page.contains(ODD_NAME),
        "raw name {ODD_NAME:?} must not appear:\n{page}"
    );
    assert!(
        !page.contains(".hidden") && !page.contains("DOT-SECRET"),
        "{page}"
    );

    // Links: every entry's href is a relative reference (RFC 3986 §4.2) that,
    // resolved against /list/, fetches that entry.
    let links: Vec<String> = hrefs(&page).iter().map(|h| html_unescape(h)).collect();
    for href in &links {
        assert!(
            !href.contains([' ', '<', '>', '"', '`', '\\']),
            "href {href:?} is not a valid URI reference (RFC 3986 §2)"
        );
        let first_segment = href.split(['/', '?', '#']).next().unwrap_or_default();
        assert!(
            !first_segment.contains(':'),
            "href {href:?} would be read as a URI with a scheme (RFC 3986 §4.2)"
        );
    }
    for (name, content) in LISTED_FILES {
        let href = links
            .iter()
            .find(|h| percent_decode(href_path(h)).ends_with(name.as_bytes()))
            .unwrap_or_else(|| panic!("no link to {name:?} among {links:?}"));
        let target = resolve_href("/list/", href);
        let resp = get_with(&server, &target, &[]);
        expect_status(
            &resp,
            200,
            &format!("link {href:?} for {name:?} -> {target:?}"),
        );
        assert_eq!(resp.body, content, "link {href:?} for {name:?}");
    }
    let sub = links
        .iter()
        .find(|h| percent_decode(href_path(h)).ends_with(b"sub/"))
        .unwrap_or_else(|| panic!("no link to sub/ among {links:?}"));
    let resp = get_with(&server, &resolve_href("/list/", sub), &[]);
    expect_status(&resp, 200, "sub/ link");
    assert!(resp.body_str().contains("inner.txt"));
}

/// The path of a reference: without its query and fragment.
fn href_path(href: &str) -> &str {
    href.split(['?', '#']).next().unwrap_or_default()
}

/// Resolves a relative reference against `base` (a directory path ending in
/// `/`) the way a browser would (RFC 3986 §5.2, simplified: no `..`).
fn resolve_href(base: &str, href: &str) -> String {
    let href = href.split('#').next().unwrap_or_default();
    let joined = if href.starts_with('/') {
        href.to_string()
    } else {
        format!("{base}{href}")
    };
    joined.replace("/./", "/")
}

#[test]
// RFC 9110 §12.5.1 (Accept: application/json selects JSON), §12.5.5 (Vary);
// RFC 8259 (strictly parsed JSON).
fn list_dirs_json_listing() {
    let server = listing_builder().args(&["--list-dirs"]).start();
    let resp = get_with(&server, "/list/", &["Accept: application/json"]);
    expect_status(&resp, 200, "JSON listing");
    let ct = resp.header("content-type").unwrap_or_default();
    assert!(ct.starts_with("application/json"), "Content-Type {ct:?}");
    assert!(vary_has(&resp, "accept"), "{}", resp.head);
    let doc = Json::parse(&resp.body).unwrap_or_else(|e| panic!("{e}\n{}", resp.body_str()));
    doc.assert_keys(&["path", "entries", "truncated"]);
    assert_eq!(doc.field("path").str(), "/list/");
    assert_eq!(doc.field("truncated"), &Json::Bool(false));
    let entries = doc.field("entries").arr();
    let mut names: Vec<&str> = entries.iter().map(|e| e.field("name").str()).collect();
    names.sort_unstable();
    let mut expected: Vec<&str> = LISTED_FILES.iter().map(|(n, _)| *n).collect();
    expected.push("sub");
    expected.sort_unstable();
    assert_eq!(names, expected);
    for e in entries {
        e.assert_keys(&["name", "type", "size", "modified"]);
        assert!(is_imf_fixdate(e.field("modified").str()), "{e}");
    }
    let file = entries
        .iter()
        .find(|e| e.field("name").str() == "file.txt")
        .unwrap();
    assert_eq!(file.field("type").str(), "file");
    assert_eq!(file.field("size").int(), 7);
    assert_eq!(file.field("modified").str(), imf_fixdate(T as i64));
    let sub = entries
        .iter()
        .find(|e| e.field("name").str() == "sub")
        .unwrap();
    assert_eq!(sub.field("type").str(), "dir");
}

#[test]
// RFC 9110 §17.3: listing never exposes dot directories; an index.html
// still takes precedence over the listing.
fn list_dirs_still_serves_index_html_and_hides_dot_directories() {
    let server = Server::builder()
        .file(".git/config", b"[core]\n")
        .args(&["--list-dirs"])
        .start();
    let resp = get_with(&server, "/dir/", &[]);
    expect_status(&resp, 200, "/dir/ has index.html");
    assert_eq!(resp.body, DIR_INDEX_HTML);
    let resp = get_with(&server, "/noindex/", &[]);
    expect_status(&resp, 200, "/noindex/ listed");
    assert!(resp.body_str().contains("file.txt"));
    let resp = get_with(&server, "/.git/", &[]);
    expect_status(&resp, 404, "dot directory");
    assert!(!resp.body_str().contains("config"));
}

// ---------------------------------------------------------------------------
// 404 page and SPA fallback (RFC 9110 §15.5.5)
// ---------------------------------------------------------------------------

const PAGE_404: &[u8] = b"<!doctype html><title>lost</title><p>custom not found</p>\n";

#[test]
fn rfc9110_15_5_5_custom_404_page() {
    let server = Server::builder().file("404.html", PAGE_404).start();
    for path in ["/missing", "/nope/missing.txt", "/noindex/"] {
        let resp = get_with(&server, path, &[]);
        expect_status(&resp, 404, path);
        assert_eq!(resp.body, PAGE_404, "{path}");
        let ct = resp.header("content-type").unwrap_or_default();
        assert!(ct.starts_with("text/html"), "{path}: Content-Type {ct:?}");
    }
    let resp = head_with(&server, "/missing", &[]);
    expect_status(&resp, 404, "HEAD /missing");
    assert_eq!(resp.content_length(), Some(PAGE_404.len() as u64));
    // Existing files are unaffected.
    assert_hello(&get_with(&server, "/hello.txt", &[]));
}

#[test]
// RFC 9110 §15.5.5 (404) and §13.2.1 (preconditions ignored for non-2xx).
fn plain_404_without_a_404_page() {
    let server = Server::start(&[]);
    let resp = get_with(&server, "/missing", &[]);
    expect_status(&resp, 404, "/missing");
    assert_error_body(&resp);
    // RFC 9110 §13.2.1: preconditions are ignored when the response without
    // them would not be 2xx (here 404): neither 304 nor 412.
    for field in ["If-None-Match: *", "If-Match: *", "If-Match: \"x\""] {
        let resp = get_with(&server, "/missing", &[field]);
        expect_status(&resp, 404, &format!("/missing with {field}"));
    }
}

#[test]
// RFC 9110 §15.3.1 / §15.5.5: with --spa, extension-less unknown paths get
// 200 with /index.html; paths naming a file (with an extension) stay 404.
fn spa_serves_index_for_extensionless_routes_only() {
    let server = Server::start(&["--spa"]);
    for path in ["/some/route", "/app", "/users/42/edit"] {
        let resp = get_with(&server, path, &[]);
        expect_status(&resp, 200, path);
        assert_eq!(resp.body, INDEX_HTML, "{path}");
        assert_eq!(
            resp.header("content-type"),
            Some("text/html; charset=utf-8")
        );
    }
    for path in ["/missing.js", "/some/route/missing.css"] {
        let resp = get_with(&server, path, &[]);
        expect_status(&resp, 404, path);
    }
    let resp = head_with(&server, "/some/route", &[]);
    expect_status(&resp, 200, "HEAD /some/route");
    assert_eq!(resp.content_length(), Some(INDEX_HTML.len() as u64));
    assert_hello(&get_with(&server, "/hello.txt", &[]));
    assert_eq!(get_with(&server, "/dir/", &[]).body, DIR_INDEX_HTML);
    // Without --spa the route is a 404.
    let plain = Server::start(&[]);
    expect_status(&plain.get("/some/route"), 404, "no --spa");
}

#[test]
fn rfc9110_12_4_2_listing_json_refused_with_q_0_gets_html() {
    // §12.4.2: "a weight of 0 means not acceptable"; the client accepts HTML
    // and explicitly refuses JSON, so the HTML listing is the one to send.
    let server = listing_builder().args(&["--list-dirs"]).start();
    for accept in [
        "Accept: text/html, application/json;q=0",
        "Accept: application/json;q=0, text/html",
        "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    ] {
        let resp = get_with(&server, "/list/", &[accept]);
        expect_status(&resp, 200, accept);
        let ct = resp.header("content-type").unwrap_or_default();
        assert!(
            ct.starts_with("text/html"),
            "{accept}: expected the HTML listing, got Content-Type {ct:?}"
        );
    }
}

#[test]
fn rfc9110_9_3_2_head_carries_the_coded_representations_fields() {
    let server = sidecar_server(T);
    let sidecar = std::fs::read(server.root().join("big.txt.gz")).unwrap();
    let get = get_with(&server, "/big.txt", &["Accept-Encoding: gzip"]);
    let resp = head_with(&server, "/big.txt", &["Accept-Encoding: gzip"]);
    expect_status(&resp, 200, "HEAD + gzip sidecar");
    assert_eq!(
        resp.header("content-encoding"),
        Some("gzip"),
        "{}",
        resp.head
    );
    assert_eq!(resp.content_length(), Some(sidecar.len() as u64));
    assert_eq!(resp.header("etag"), get.header("etag"));
    assert!(vary_has(&resp, "accept-encoding"), "{}", resp.head);

    let server = compress_server();
    let get = get_with(&server, "/text.txt", &["Accept-Encoding: gzip"]);
    let resp = head_with(&server, "/text.txt", &["Accept-Encoding: gzip"]);
    expect_status(&resp, 200, "HEAD + --compress");
    assert_eq!(
        resp.header("content-encoding"),
        Some("gzip"),
        "{}",
        resp.head
    );
    assert_eq!(resp.content_length(), Some(get.body.len() as u64));
    assert_eq!(resp.header("etag"), get.header("etag"));
}

#[test]
fn rfc9110_14_6_multipart_ranges_of_the_sidecar_representation() {
    let server = sidecar_server(T);
    let sidecar = std::fs::read(server.root().join("big.txt.gz")).unwrap();
    let len = sidecar.len();
    let resp = get_with(
        &server,
        "/big.txt",
        &["Accept-Encoding: gzip", "Range: bytes=0-1,10-19"],
    );
    expect_status(&resp, 206, "gzip + two ranges");
    assert_eq!(
        resp.header("content-encoding"),
        Some("gzip"),
        "{}",
        resp.head
    );
    assert!(vary_has(&resp, "accept-encoding"), "§15.3.7: {}", resp.head);
    let parts = parse_multipart(
        &resp.body,
        &boundary_of(resp.header("content-type").unwrap()),
    );
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].data, &sidecar[0..2]);
    assert_eq!(parts[1].data, &sidecar[10..20]);
    let cr = format!("bytes 10-19/{len}");
    assert_eq!(parts[1].header("content-range"), Some(cr.as_str()));
    assert_eq!(parts[1].header("content-type"), Some(TEXT_PLAIN));
}

#[test]
fn rfc9110_12_5_3_accept_encoding_weights_choose_the_coding() {
    let server = compress_server();
    for (ae, want) in [
        ("Accept-Encoding: br;q=0.5, gzip;q=0.8", Some("gzip")),
        ("Accept-Encoding: gzip;q=0.2, br;q=0.9", Some("br")),
        ("Accept-Encoding: br;q=0, gzip", Some("gzip")),
        ("Accept-Encoding: *;q=0.5, br;q=0", Some("gzip")),
        ("Accept-Encoding: br;q=0, gzip;q=0", None),
        ("Accept-Encoding: deflate", None),
    ] {
        let resp = get_with(&server, "/text.txt", &[ae]);
        expect_status(&resp, 200, ae);
        assert_eq!(
            resp.header("content-encoding"),
            want,
            "{ae}:\n{}",
            resp.head
        );
        if want.is_none() {
            assert_eq!(resp.body, text_body(), "{ae}");
        }
    }
}
