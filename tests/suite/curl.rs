//! Interoperability with a real client: drives the server with the `curl`
//! command-line tool (GET, HTTP/1.0, HEAD, connection reuse across URLs,
//! chunked uploads with curl's automatic `Expect: 100-continue`, large
//! downloads). curl is required: these tests fail loudly if it is missing.

use std::process::{Command, Output};
use std::time::Duration;

use crate::support::*;

const CURL: &str = "/usr/bin/curl";

/// Runs curl with a hard time limit and returns its output.
fn curl(args: &[&str]) -> Output {
    assert!(
        std::path::Path::new(CURL).exists(),
        "{CURL} is required for the curl interoperability tests (install curl)"
    );
    let mut command = Command::new(CURL);
    command
        .args(["--max-time", "10", "--silent", "--show-error"])
        .args(args);
    run_with_deadline(command, Duration::from_secs(15))
}

fn curl_ok(args: &[&str]) -> Vec<u8> {
    let out = curl(args);
    assert!(
        out.status.success(),
        "curl {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Parses curl `-i` output (one response) into (status line, headers, body).
fn parse_included(out: &[u8]) -> (String, Vec<String>, Vec<u8>) {
    let end = find(out, b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header block in {:?}", String::from_utf8_lossy(out)));
    let head = String::from_utf8_lossy(&out[..end]).into_owned();
    let mut lines = head.split("\r\n").map(str::to_string);
    let status = lines.next().unwrap();
    (status, lines.collect(), out[end + 4..].to_vec())
}

fn header<'a>(headers: &'a [String], name: &str) -> Option<&'a str> {
    headers.iter().find_map(|h| {
        let (n, v) = h.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn curl_get_receives_headers_and_body() {
    let server = Server::start(&[]);
    let out = curl_ok(&["-i", &server.url("/hello.txt")]);
    let (status, headers, body) = parse_included(&out);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(header(&headers, "content-length"), Some("12"));
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(header(&headers, "server"), Some("looplight"));
    assert!(header(&headers, "date").is_some_and(is_imf_fixdate));
    assert_eq!(body, HELLO);
}

#[test]
fn curl_http10_request_is_served() {
    let server = Server::start(&[]);
    let out = curl_ok(&["-i", "--http1.0", &server.url("/hello.txt")]);
    let (status, _headers, body) = parse_included(&out);
    assert!(
        status.starts_with("HTTP/1.") && status.ends_with(" 200 OK"),
        "{status}"
    );
    assert_eq!(body, HELLO);
}

#[test]
fn curl_head_request_gets_headers_only() {
    let server = Server::start(&[]);
    let out = curl_ok(&["-I", &server.url("/hello.txt")]);
    let (status, headers, body) = parse_included(&out);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(header(&headers, "content-length"), Some("12"));
    assert!(
        body.is_empty(),
        "HEAD must not return a body: {:?}",
        String::from_utf8_lossy(&body)
    );
}

#[test]
fn curl_reuses_one_connection_for_two_urls() {
    // RFC 9112 §9.3: persistent connection; curl reports 0 new connects for
    // the second transfer when it reuses the first connection.
    let server = Server::start(&[]);
    let out = curl_ok(&[
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{num_connects}\\n",
        &server.url("/hello.txt"),
        &server.url("/index.html"),
    ]);
    assert_eq!(String::from_utf8_lossy(&out), "200 1\n200 0\n");
}

#[test]
fn curl_chunked_upload_gets_405_with_allow() {
    // curl sends `Transfer-Encoding: chunked` and `Expect: 100-continue`.
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let upload = dir.path().join("upload.bin");
    std::fs::write(&upload, patterned_bytes(200 * 1024)).unwrap();
    let data = format!("@{}", upload.display());
    let out = curl_ok(&[
        "-i",
        "-X",
        "POST",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &data,
        &server.url("/hello.txt"),
    ]);
    // Skip an interim "100 Continue" block if curl printed one.
    let mut rest: &[u8] = &out;
    if rest.starts_with(b"HTTP/1.1 100") {
        let end = find(rest, b"\r\n\r\n").unwrap();
        rest = &rest[end + 4..];
    }
    let (status, headers, _body) = parse_included(rest);
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    assert_eq!(header(&headers, "allow"), Some("GET, HEAD, OPTIONS"));
}

#[test]
fn curl_chunked_upload_then_get_reuses_the_connection() {
    // The chunked body must be consumed exactly so the connection can be
    // reused for the next transfer.
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let upload = dir.path().join("upload.bin");
    std::fs::write(&upload, patterned_bytes(50 * 1024)).unwrap();
    let data = format!("@{}", upload.display());
    let out = curl_ok(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{num_connects}\\n",
        "-X",
        "POST",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &data,
        &server.url("/hello.txt"),
        "--next",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{num_connects}\\n",
        &server.url("/hello.txt"),
    ]);
    assert_eq!(String::from_utf8_lossy(&out), "405 1\n200 0\n");
}

#[test]
fn curl_downloads_a_large_file_byte_exact() {
    let big = patterned_bytes(5 * 1024 * 1024 + 7);
    let server = Server::builder().file("big.bin", &big).start();
    let out = curl_ok(&[&server.url("/big.bin")]);
    assert_eq!(out.len(), big.len());
    assert!(out == big, "curl download differs from the file");
}

#[test]
fn curl_follows_directory_redirect() {
    let server = Server::start(&[]);
    let out = curl_ok(&[
        "-L",
        "-w",
        "\\n%{http_code} %{num_redirects} %{url_effective}",
        &server.url("/dir"),
    ]);
    let text = String::from_utf8_lossy(&out);
    let expected_tail = format!("\n200 1 {}", server.url("/dir/"));
    assert!(text.ends_with(&expected_tail), "curl -L output: {text:?}");
    assert!(out.starts_with(DIR_INDEX_HTML));
}
