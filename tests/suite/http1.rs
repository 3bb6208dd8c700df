//! HTTP/1.1 protocol behaviour (RFC 9112 message syntax and connection
//! management, RFC 9110 semantics): response basics, persistence and
//! `Connection`, pipelining, request-body framing (Content-Length and
//! chunked), request-smuggling defences, Host rules, protocol versions,
//! `Expect: 100-continue`, HEAD, and method handling.
//!
//! Static-file specifics (content types, redirects, traversal) are in
//! `static_files`; size limits and timeouts in `limits`.

use std::time::Duration;

use crate::support::*;

const ALLOW: &str = "GET, HEAD, OPTIONS";

fn post(path: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

fn assert_405(resp: &crate::support::Response) {
    assert_eq!(resp.status, 405, "expected 405:\n{}", resp.head);
    resp.assert_basics();
    // RFC 9110 §15.5.6: a 405 MUST carry Allow.
    assert_eq!(resp.header("allow"), Some(ALLOW), "{}", resp.head);
}

/// Sends `raw` followed by `GET /hello.txt` (Connection: close) on one
/// connection and asserts: 405 for the first request, 200 hello for the
/// second, then close with nothing else. This proves the first request's
/// body was framed exactly (not more, not less).
fn assert_body_framed_then_hello(server: &Server, raw: &[u8]) {
    let mut c = server.connect();
    c.send(&concat(&[raw, &get_close("/hello.txt")]));
    let first = c.read_response();
    assert_405(&first);
    assert!(
        !first.has_token("connection", "close"),
        "405 must keep the connection open:\n{}",
        first.head
    );
    let second = c.read_response();
    assert_hello(&second);
    c.assert_closed();
}

// ---------------------------------------------------------------------------
// Response basics
// ---------------------------------------------------------------------------

#[test]
fn get_returns_200_with_status_line_date_server_and_content_length() {
    let server = Server::start(&[]);
    let resp = server.get("/hello.txt");
    // RFC 9112 §4: status-line = HTTP-version SP status-code SP [reason-phrase]
    assert_eq!(resp.status_line(), "HTTP/1.1 200 OK");
    // RFC 9110 §6.6.1 (Date), §10.2.4 (Server), §8.6 (Content-Length)
    resp.assert_basics();
    assert_eq!(resp.header("content-length"), Some("12"));
    assert_eq!(resp.body, HELLO);
}

#[test]
fn error_responses_have_date_server_content_length_and_text_body() {
    let server = Server::start(&[]);
    let resp = server.get("/no-such-file.txt");
    assert_eq!(resp.status_line(), "HTTP/1.1 404 Not Found");
    resp.assert_basics();
    assert_error_body(&resp);
}

#[test]
fn header_field_names_are_case_insensitive() {
    // RFC 9110 §5.1: field names are case-insensitive.
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send(b"POST /hello.txt HTTP/1.1\r\nhOsT: localhost\r\ncontent-LENGTH: 3\r\n\r\nabc");
    assert_405(&c.read_response());
    c.send(b"GET /hello.txt HTTP/1.1\r\nHOST: localhost\r\nCONNECTION: CLOSE\r\n\r\n");
    let resp = c.read_response();
    assert_hello(&resp);
    c.assert_closed();
}

// ---------------------------------------------------------------------------
// Persistence (RFC 9112 §9.3) and Connection: close (RFC 9112 §9.6)
// ---------------------------------------------------------------------------

#[test]
fn http11_connection_is_persistent_by_default() {
    // RFC 9112 §9.3: HTTP/1.1 defaults to persistent connections.
    let server = Server::start(&[]);
    let mut c = server.connect();
    for _ in 0..3 {
        c.send(&get("/hello.txt"));
        let resp = c.read_response();
        assert_hello(&resp);
        assert!(!resp.has_token("connection", "close"), "{}", resp.head);
    }
    c.assert_silent_for(Duration::from_millis(200));
}

#[test]
fn connection_close_request_gets_close_response_then_eof() {
    // RFC 9112 §9.6: the server MUST close after the response to a request
    // carrying "close", and SHOULD send "close" in that response.
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send(&get_close("/hello.txt"));
    let resp = c.read_response();
    assert_hello(&resp);
    assert!(resp.has_token("connection", "close"), "{}", resp.head);
    c.assert_closed();
}

#[test]
fn connection_close_among_other_options_is_honoured() {
    // RFC 9110 §7.6.1: Connection is a comma-separated list of options.
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: foo, Close\r\n\r\n");
    let resp = c.read_response();
    assert_hello(&resp);
    assert!(resp.has_token("connection", "close"), "{}", resp.head);
    c.assert_closed();
}

#[test]
fn http10_request_is_closed_after_response() {
    // RFC 9112 §9.3: HTTP/1.0 without keep-alive → close after response.
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send(b"GET /hello.txt HTTP/1.0\r\n\r\n");
    let resp = c.read_response();
    assert_hello(&resp);
    assert!(!resp.has_token("connection", "keep-alive"), "{}", resp.head);
    c.assert_closed();
}

#[test]
fn http10_keep_alive_request_keeps_connection_open() {
    // RFC 9112 §9.3 and Appendix C.2.2 (HTTP/1.0 keep-alive).
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send(b"GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let first = c.read_response();
    assert_hello(&first);
    assert!(
        first.has_token("connection", "keep-alive"),
        "{}",
        first.head
    );
    c.send(b"GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let second = c.read_response();
    assert_hello(&second);
    assert!(
        second.has_token("connection", "keep-alive"),
        "{}",
        second.head
    );
    // A final plain HTTP/1.0 request ends the connection.
    c.send(b"GET /hello.txt HTTP/1.0\r\n\r\n");
    assert_hello(&c.read_response());
    c.assert_closed();
}

#[test]
fn not_found_keeps_the_connection_alive() {
    // A 404 is not a framing error; the connection persists (RFC 9112 §9.3).
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send(&get("/missing.txt"));
    let resp = c.read_response();
    assert_eq!(resp.status, 404, "{}", resp.head);
    assert!(!resp.has_token("connection", "close"), "{}", resp.head);
    c.send(&get_close("/hello.txt"));
    assert_hello(&c.read_response());
    c.assert_closed();
}

#[test]
fn requests_pipelined_after_connection_close_are_not_answered() {
    // RFC 9112 §9.6: after the response to a "close" request the server
    // closes; a request already pipelined behind it is not processed.
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send(&concat(&[&get_close("/hello.txt"), &get("/index.html")]));
    let resp = c.read_response();
    assert_hello(&resp);
    assert!(resp.has_token("connection", "close"), "{}", resp.head);
    c.assert_closed();
}

#[test]
fn requests_pipelined_after_an_http10_request_are_not_answered() {
    // RFC 9112 §9.3: an HTTP/1.0 request without keep-alive ends the
    // connection after its response.
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send(&concat(&[
        b"GET /hello.txt HTTP/1.0\r\n\r\n",
        &get("/index.html"),
    ]));
    assert_hello(&c.read_response());
    c.assert_closed();
}

// ---------------------------------------------------------------------------
// Pipelining (RFC 9112 §9.3.2)
// ---------------------------------------------------------------------------

fn pipeline_files() -> Vec<(String, Vec<u8>)> {
    (0..10)
        .map(|i| {
            (
                format!("f{i}.txt"),
                format!("file number {i}\n").repeat(i + 1).into_bytes(),
            )
        })
        .collect()
}

fn pipelined_requests(n: usize) -> Vec<u8> {
    let mut all = Vec::new();
    for i in 0..n {
        if i + 1 == n {
            all.extend(get_close(&format!("/f{i}.txt")));
        } else {
            all.extend(get(&format!("/f{i}.txt")));
        }
    }
    all
}

fn start_pipeline_server() -> Server {
    let files = pipeline_files();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_slice()))
        .collect();
    Server::with_root(&refs, &[])
}

fn assert_pipelined_responses(c: &mut Client, n: usize) {
    let files = pipeline_files();
    for (i, (_, content)) in files.iter().enumerate().take(n) {
        let resp = c.read_response();
        assert_eq!(resp.status, 200, "response #{i}:\n{}", resp.head);
        resp.assert_basics();
        assert_eq!(&resp.body, content, "response #{i} out of order or wrong");
    }
    // Exactly one response per request: nothing more, then close.
    c.assert_closed();
}

#[test]
fn pipelined_requests_in_one_write_are_answered_in_order_exactly_once() {
    // RFC 9112 §9.3.2: responses MUST be sent in request order.
    let server = start_pipeline_server();
    let mut c = server.connect();
    c.send(&pipelined_requests(10));
    assert_pipelined_responses(&mut c, 10);
}

#[test]
fn pipelined_requests_split_at_odd_byte_boundaries_are_answered_in_order() {
    let server = start_pipeline_server();
    let mut c = server.connect();
    c.send_in_pieces(&pipelined_requests(10), 7, Duration::from_millis(1));
    assert_pipelined_responses(&mut c, 10);
}

#[test]
fn pipelined_requests_sent_byte_by_byte_are_answered() {
    let server = start_pipeline_server();
    let mut c = server.connect();
    c.send_in_pieces(&pipelined_requests(3), 1, Duration::from_micros(200));
    assert_pipelined_responses(&mut c, 3);
}

#[test]
fn pipelined_post_bodies_and_gets_are_answered_in_order() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let chunked = b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    c.send(&concat(&[
        &post("/hello.txt", b"x=1"),
        &get("/hello.txt"),
        chunked,
        &get_close("/hello.txt"),
    ]));
    assert_405(&c.read_response());
    assert_hello(&c.read_response());
    assert_405(&c.read_response());
    assert_hello(&c.read_response());
    c.assert_closed();
}

// ---------------------------------------------------------------------------
// Request body framing (RFC 9112 §6, §7.1)
// ---------------------------------------------------------------------------

#[test]
fn post_with_content_length_body_gets_405_and_connection_stays_usable() {
    // RFC 9112 §6.3 item 6: Content-Length delimits the body.
    let server = Server::start(&[]);
    assert_body_framed_then_hello(&server, &post("/hello.txt", b"name=value&x=yz"));
}

#[test]
fn post_with_content_length_zero_is_framed() {
    let server = Server::start(&[]);
    assert_body_framed_then_hello(&server, &post("/hello.txt", b""));
}

#[test]
fn content_length_body_arriving_in_pieces_is_framed() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let req = post("/hello.txt", &b"0123456789abcdefghij".repeat(10));
    c.send(&req[..60]); // head incomplete
    c.send_in_pieces(&req[60..], 13, Duration::from_millis(2));
    assert_405(&c.read_response());
    c.send(&get_close("/hello.txt"));
    assert_hello(&c.read_response());
    c.assert_closed();
}

#[test]
fn chunked_body_is_decoded_and_connection_stays_usable() {
    // RFC 9112 §7.1: chunk = chunk-size CRLF chunk-data CRLF; last-chunk "0".
    let server = Server::start(&[]);
    let req = b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
                5\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n";
    assert_body_framed_then_hello(&server, req);
}

#[test]
fn chunked_body_with_uppercase_hex_and_leading_zeros_is_framed() {
    // RFC 9112 §7.1: chunk-size = 1*HEXDIG (case-insensitive, leading zeros ok).
    let server = Server::start(&[]);
    let req = b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
                00A\r\n0123456789\r\n000\r\n\r\n";
    assert_body_framed_then_hello(&server, req);
}

#[test]
fn chunk_extensions_are_ignored() {
    // RFC 9112 §7.1.1: a recipient MUST ignore unrecognized chunk extensions.
    let server = Server::start(&[]);
    let req = b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
                5;name=value\r\nhello\r\n3 ; quoted=\"a;b\" ; flag\r\nabc\r\n0;last\r\n\r\n";
    assert_body_framed_then_hello(&server, req);
}

#[test]
fn chunked_trailer_fields_are_accepted() {
    // RFC 9112 §7.1.2: trailer-section = *( field-line CRLF ) after last-chunk.
    let server = Server::start(&[]);
    let req = b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
                5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n";
    assert_body_framed_then_hello(&server, req);
}

#[test]
fn transfer_encoding_is_case_insensitive() {
    // RFC 9112 §7: transfer-coding names are case-insensitive.
    let server = Server::start(&[]);
    let req = b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: Chunked\r\n\r\n\
                3\r\nabc\r\n0\r\n\r\n";
    assert_body_framed_then_hello(&server, req);
}

#[test]
fn chunked_body_split_across_writes_is_framed() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let req = b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
                5;e=1\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nX-T: v\r\n\r\n";
    c.send_in_pieces(req, 3, Duration::from_millis(1));
    assert_405(&c.read_response());
    c.send(&get_close("/hello.txt"));
    assert_hello(&c.read_response());
    c.assert_closed();
}

#[test]
fn get_with_content_length_body_is_framed() {
    // RFC 9112 §6.3: framing is independent of the method; the body of a
    // GET must be consumed, not parsed as the next request.
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nXXXXX");
    assert_hello(&c.read_response());
    c.send(&get_close("/hello.txt"));
    assert_hello(&c.read_response());
    c.assert_closed();
}

#[test]
fn content_length_with_leading_zeros_is_valid() {
    // RFC 9110 §8.6: Content-Length = 1*DIGIT, so "005" is 5.
    let server = Server::start(&[]);
    let req = b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 005\r\n\r\nhello";
    assert_body_framed_then_hello(&server, req);
}

#[test]
fn many_tiny_chunks_are_framed() {
    let server = Server::start(&[]);
    let mut req =
        b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for i in 0..1000 {
        req.extend_from_slice(format!("1\r\n{}\r\n", i % 10).as_bytes());
    }
    req.extend_from_slice(b"0\r\n\r\n");
    assert_body_framed_then_hello(&server, &req);
}

// ---------------------------------------------------------------------------
// Request smuggling defences (RFC 9112 §6.1, §6.3, §11.2)
// ---------------------------------------------------------------------------

#[test]
fn transfer_encoding_with_content_length_is_rejected_with_close() {
    // RFC 9112 §6.1 ¶15: such a request MAY be rejected and the server MUST
    // close the connection; the contract says 400.
    let server = Server::start(&[]);
    expect_error_and_close(
        &server,
        b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n\
          0\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n",
        400,
    );
}

#[test]
fn differing_content_lengths_are_rejected_with_close() {
    // RFC 9112 §6.3 item 5: invalid Content-Length → 400, then close.
    let server = Server::start(&[]);
    expect_error_and_close(
        &server,
        b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde",
        400,
    );
    expect_error_and_close(
        &server,
        b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3, 5\r\n\r\nabcde",
        400,
    );
}

#[test]
fn malformed_content_length_values_are_rejected_with_close() {
    // RFC 9110 §8.6: Content-Length = 1*DIGIT; RFC 9112 §6.3 item 5.
    let server = Server::start(&[]);
    for value in ["abc", "-1", "+5", "1 2", "0x10", "", "5a", "1.0"] {
        let req = format!(
            "POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: {value}\r\n\r\nhello"
        );
        let mut c = server.connect();
        c.send(req.as_bytes());
        let resp = c.read_response();
        assert_eq!(
            resp.status, 400,
            "Content-Length: {value:?} must be rejected:\n{}",
            resp.head
        );
        assert_error_and_close(&mut c, &resp, 400);
    }
}

#[test]
fn transfer_encoding_not_ending_in_chunked_is_rejected_with_close() {
    // RFC 9112 §6.3 item 4: chunked not final in a request → 400 and close.
    let server = Server::start(&[]);
    expect_error_and_close(
        &server,
        b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\nabc",
        400,
    );
    for coding in ["chunked, gzip", "identity", "xchunked", "chunked, identity"] {
        let req = format!(
            "POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: {coding}\r\n\r\n0\r\n\r\n"
        );
        expect_error_and_close(&server, req.as_bytes(), 400);
    }
}

#[test]
fn unsupported_transfer_coding_before_chunked_gets_501_with_close() {
    // RFC 9112 §6.1: unknown/unsupported transfer coding SHOULD → 501.
    let server = Server::start(&[]);
    expect_error_and_close(
        &server,
        b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
    );
}

#[test]
fn chunked_applied_twice_is_rejected_with_close() {
    // RFC 9112 §6.1: chunked MUST NOT be applied more than once.
    let server = Server::start(&[]);
    expect_error_and_close(
        &server,
        b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
        400,
    );
    expect_error_and_close(
        &server,
        b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    );
}

#[test]
fn transfer_encoding_in_http10_request_is_rejected_with_close() {
    // RFC 9112 §6.1 ¶16: TE in an HTTP/1.0 message → framing is faulty, close.
    let server = Server::start(&[]);
    expect_error_and_close(
        &server,
        b"POST /hello.txt HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        400,
    );
}

#[test]
fn invalid_chunk_size_lines_are_rejected_with_close() {
    // RFC 9112 §7.1: chunk-size = 1*HEXDIG, chunk line ends with CRLF.
    let server = Server::start(&[]);
    let bad_bodies: [&[u8]; 6] = [
        b"zz\r\nhello\r\n0\r\n\r\n",       // non-hex size
        b"\r\nhello\r\n0\r\n\r\n",         // missing digits
        b";ext\r\nhello\r\n0\r\n\r\n",     // extension without size
        b"5;ext\nx\r\nhello\r\n0\r\n\r\n", // bare LF inside the chunk line
        b"-5\r\nhello\r\n0\r\n\r\n",       // sign
        b"0x5\r\nhello\r\n0\r\n\r\n",      // hex prefix
    ];
    for body in bad_bodies {
        let req = concat(&[
            b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n",
            body,
        ]);
        let mut c = server.connect();
        c.send(&req);
        let resp = c.read_response();
        assert_eq!(
            resp.status,
            400,
            "chunked body {:?} must be rejected:\n{}",
            String::from_utf8_lossy(body),
            resp.head
        );
        assert_error_and_close(&mut c, &resp, 400);
    }
}

#[test]
fn chunk_data_not_followed_by_crlf_is_rejected_with_close() {
    // RFC 9112 §7.1: chunk-data is followed by CRLF; extra data means the
    // size lied (a classic smuggling vector).
    let server = Server::start(&[]);
    expect_error_and_close(
        &server,
        b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n",
        400,
    );
}

#[test]
fn overflowing_chunk_size_is_rejected_with_close() {
    // RFC 9112 §7.1: recipients MUST prevent integer overflow when parsing
    // chunk sizes. Either 400 (malformed) or 413 (too large) is acceptable.
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send(
        b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
             10000000000000000000000000000005\r\nhello\r\n0\r\n\r\n",
    );
    let resp = c.read_response();
    assert!(
        matches!(resp.status, 400 | 413),
        "overflowing chunk size:\n{}",
        resp.head
    );
    assert_error_and_close(&mut c, &resp, resp.status);
}

#[test]
fn request_hidden_in_content_length_body_is_not_answered() {
    // RFC 9112 §11.2: the body is data, never a second request.
    let server = Server::start(&[]);
    let hidden = b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut c = server.connect();
    c.send(&concat(&[
        &post("/hello.txt", hidden),
        &get_close("/hello.txt"),
    ]));
    assert_405(&c.read_response());
    assert_hello(&c.read_response());
    c.assert_closed();
}

#[test]
fn request_hidden_in_chunked_body_is_not_answered() {
    let server = Server::start(&[]);
    let hidden = b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut req = format!(
        "POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        hidden.len()
    )
    .into_bytes();
    req.extend_from_slice(hidden);
    req.extend_from_slice(b"\r\n0\r\n\r\n");
    let mut c = server.connect();
    c.send(&concat(&[&req, &get_close("/hello.txt")]));
    assert_405(&c.read_response());
    assert_hello(&c.read_response());
    c.assert_closed();
}

#[test]
fn obs_fold_header_line_is_rejected() {
    // RFC 9112 §5.2: obs-fold in a request → 400 (or replace with SP);
    // the contract chooses 400.
    let server = Server::start(&[]);
    expect_error_and_close(
        &server,
        b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nX-Folded: first\r\n  second\r\n\r\n",
        400,
    );
    expect_error_and_close(
        &server,
        b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nX-Folded: first\r\n\tsecond\r\n\r\n",
        400,
    );
}

#[test]
fn whitespace_between_field_name_and_colon_is_rejected() {
    // RFC 9112 §5.1: a server MUST reject such a request with 400.
    let server = Server::start(&[]);
    expect_error_and_close(
        &server,
        b"GET /hello.txt HTTP/1.1\r\nHost : localhost\r\n\r\n",
        400,
    );
    expect_error_and_close(
        &server,
        b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length\t: 5\r\n\r\nhello",
        400,
    );
}

#[test]
fn repeated_identical_content_length_is_framed_as_one_value() {
    // RFC 9110 §8.6 / RFC 9112 §6.3 item 5: "5, 5" (or two "5" lines) MAY
    // be rejected or treated as 5. looplight takes the second option: the
    // body is exactly 5 bytes and the next request is read after it.
    let server = Server::start(&[]);
    let variants: [&[u8]; 2] = [
        b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5, 5\r\n\r\nhello",
        b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    ];
    for raw in variants {
        let mut c = server.connect();
        c.send(&concat(&[raw, &get_close("/hello.txt")]));
        assert_405(&c.read_response());
        assert_hello(&c.read_response());
        c.assert_closed();
    }
}

#[test]
fn bare_cr_inside_a_header_is_rejected() {
    // RFC 9112 §2.2: a bare CR MUST be treated as invalid or replaced by SP.
    // looplight rejects it (400 + close); treating it as a line break would
    // let the hidden Content-Length swallow the start of the next request.
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send(&concat(&[
        b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nX-Foo: a\rContent-Length: 5\r\n\r\n",
        &get_close("/hello.txt"),
    ]));
    let first = c.read_response();
    assert_error_and_close(&mut c, &first, 400);
}

#[test]
fn bad_request_in_a_pipeline_ends_the_connection_after_its_400() {
    // Earlier requests are answered; after the 400 the connection closes and
    // later pipelined requests are not processed.
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send(&concat(&[
        &get("/hello.txt"),
        b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n",
        &get("/index.html"),
    ]));
    assert_hello(&c.read_response());
    let resp = c.read_response();
    assert_error_and_close(&mut c, &resp, 400);
}

#[test]
fn content_length_in_chunked_trailer_does_not_affect_framing() {
    // RFC 9112 §7.1.2: trailer fields are not merged into the header
    // section; a framing field there must not change where the message ends.
    let server = Server::start(&[]);
    let req = b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
                5\r\nhello\r\n0\r\nContent-Length: 50\r\n\r\n";
    let mut c = server.connect();
    c.send(&concat(&[req, &get_close("/hello.txt")]));
    // The trailer is read and discarded: the body ended at the last chunk.
    assert_405(&c.read_response());
    assert_hello(&c.read_response());
    c.assert_closed();
}

#[test]
fn overlong_chunk_extension_is_rejected() {
    // RFC 9112 §7.1.1: a server ought to limit the length of chunk
    // extensions and answer 4xx when exceeded, rather than buffer without bound.
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send(
        b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=",
    );
    let mut writer = c.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let block = vec![b'a'; 16 * 1024];
        for _ in 0..64 {
            if std::io::Write::write_all(&mut writer, &block).is_err() {
                break;
            }
        }
    });
    let resp = c.read_response();
    assert!(
        (400..500).contains(&resp.status),
        "1 MiB chunk extension must get a 4xx:\n{}",
        resp.head
    );
    assert_error_and_close(&mut c, &resp, resp.status);
    drop(c);
    sender.join().unwrap();
}

#[test]
fn overlong_trailer_section_is_rejected() {
    // RFC 9110 §17.5 / RFC 9112 §7.1.2: the trailer section is bounded like
    // the header section; 1 MiB of trailer fields must get a 4xx.
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send(b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n");
    let mut writer = c.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let line = format!("X-Trailer: {}\r\n", "t".repeat(1000));
        for _ in 0..1000 {
            if std::io::Write::write_all(&mut writer, line.as_bytes()).is_err() {
                break;
            }
        }
    });
    let resp = c.read_response();
    assert!(
        (400..500).contains(&resp.status),
        "1 MiB trailer section must get a 4xx:\n{}",
        resp.head
    );
    assert_error_and_close(&mut c, &resp, resp.status);
    drop(c);
    sender.join().unwrap();
}

#[test]
fn invalid_field_lines_are_rejected() {
    // RFC 9112 §5: field-line = field-name ":" OWS field-value OWS, and
    // field-name is a token (RFC 9110 §5.1).
    let server = Server::start(&[]);
    for line in ["X Bad: 1", "NoColonHere", "X(Bad): 1", ": empty-name"] {
        let req = format!("GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n{line}\r\n\r\n");
        expect_error_and_close(&server, req.as_bytes(), 400);
    }
}

// ---------------------------------------------------------------------------
// Host (RFC 9112 §3.2) and request targets (RFC 9112 §3.2.1-§3.2.4)
// ---------------------------------------------------------------------------

#[test]
fn http11_request_without_host_is_rejected() {
    // RFC 9112 §3.2: MUST respond 400 to an HTTP/1.1 request lacking Host.
    let server = Server::start(&[]);
    expect_error_and_close(&server, b"GET /hello.txt HTTP/1.1\r\n\r\n", 400);
}

#[test]
fn request_with_two_host_fields_is_rejected() {
    // RFC 9112 §3.2: more than one Host field line → 400.
    let server = Server::start(&[]);
    expect_error_and_close(
        &server,
        b"GET /hello.txt HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
        400,
    );
}

#[test]
fn http10_request_without_host_is_served() {
    let server = Server::start(&[]);
    let resp = server.request(b"GET /hello.txt HTTP/1.0\r\n\r\n");
    assert_hello(&resp);
}

#[test]
fn absolute_form_target_is_served() {
    // RFC 9112 §3.2.2: a server MUST accept the absolute-form.
    let server = Server::start(&[]);
    let resp = server.request(b"GET http://example.com/hello.txt HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n");
    assert_hello(&resp);
}

#[test]
fn options_asterisk_form_returns_200_with_allow() {
    // RFC 9112 §3.2.4, RFC 9110 §9.3.7.
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send(b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let resp = c.read_response();
    assert_eq!(resp.status, 200, "{}", resp.head);
    resp.assert_basics();
    assert_eq!(resp.header("allow"), Some(ALLOW), "{}", resp.head);
    // still keep-alive
    c.send(&get_close("/hello.txt"));
    assert_hello(&c.read_response());
}

#[test]
fn absolute_form_without_path_serves_the_root() {
    // RFC 9112 §3.3 / RFC 9110 §4.2.3: an empty path is equivalent to "/".
    let server = Server::start(&[]);
    let resp = server.request(
        b"GET http://example.com HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(resp.status, 200, "{}", resp.head);
    assert_eq!(resp.body, INDEX_HTML);
}

// ---------------------------------------------------------------------------
// Versions and request-line syntax (RFC 9112 §2.3, §3)
// ---------------------------------------------------------------------------

#[test]
fn unsupported_http_versions_get_505() {
    // RFC 9110 §15.6.6: 505 for a major version other than 1. (HTTP/1.2 and
    // any other 1.y are served as HTTP/1.1 per RFC 9110 §2.5; see
    // isolation::http_1_2_is_served_as_http_1_1.)
    let server = Server::start(&[]);
    for version in ["HTTP/2.0", "HTTP/3.0", "HTTP/0.9"] {
        let mut c = server.connect();
        c.send(format!("GET /hello.txt {version}\r\nHost: localhost\r\n\r\n").as_bytes());
        let resp = c.read_response();
        assert_eq!(resp.status, 505, "{version}:\n{}", resp.head);
        resp.assert_basics();
        assert_error_body(&resp);
    }
}

#[test]
fn garbage_request_lines_get_400_and_close() {
    // RFC 9112 §3: request-line = method SP request-target SP HTTP-version;
    // RFC 9112 §2.3: HTTP-name is case-sensitive "HTTP".
    let server = Server::start(&[]);
    let garbage: [&[u8]; 7] = [
        b"hello\r\n\r\n",
        b"GET /hello.txt\r\nHost: localhost\r\n\r\n",
        b"GET /hello.txt FOO/1.1\r\nHost: localhost\r\n\r\n",
        b"GET /hello.txt http/1.1\r\nHost: localhost\r\n\r\n",
        b"GET /hello.txt HTTP/1.1x\r\nHost: localhost\r\n\r\n",
        b"G\x01T /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", // TLS ClientHello-ish
    ];
    for raw in garbage {
        let mut c = server.connect();
        c.send(raw);
        let resp = c
            .try_read_response(false)
            .unwrap_or_else(|e| panic!("request {:?}: {e}", String::from_utf8_lossy(raw)));
        assert_eq!(
            resp.status,
            400,
            "request {:?}:\n{}",
            String::from_utf8_lossy(raw),
            resp.head
        );
        assert_error_and_close(&mut c, &resp, 400);
    }
}

#[test]
fn leading_empty_lines_before_request_line_are_ignored() {
    // RFC 9112 §2.2: a server SHOULD ignore at least one empty line
    // received before the request-line.
    let server = Server::start(&[]);
    let resp = server
        .request(b"\r\nGET /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_hello(&resp);
}

#[test]
fn origin_form_target_must_start_with_a_slash() {
    // RFC 9112 §3.2.1: origin-form = absolute-path [ "?" query ]; a bare
    // "hello.txt" matches none of the four target forms.
    let server = Server::start(&[]);
    expect_error_and_close(
        &server,
        b"GET hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n",
        400,
    );
}

// ---------------------------------------------------------------------------
// Expect: 100-continue (RFC 9110 §10.1.1)
// ---------------------------------------------------------------------------

#[test]
fn expect_100_continue_gets_interim_response_before_body_is_sent() {
    // RFC 9110 §10.1.1 and RFC 9110 §15.2.1; the contract chooses to send
    // 100 (rather than an immediate final status) when the body is pending.
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send(b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let interim = c.read_response();
    assert_eq!(
        interim.head, "HTTP/1.1 100 Continue",
        "expected exactly `HTTP/1.1 100 Continue\\r\\n\\r\\n`"
    );
    c.send(b"hello");
    assert_405(&c.read_response());
    c.send(&get_close("/hello.txt"));
    assert_hello(&c.read_response());
    c.assert_closed();
}

#[test]
fn expect_100_continue_with_chunked_body_gets_interim_response() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send(b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n");
    let interim = c.read_response();
    assert_eq!(interim.head, "HTTP/1.1 100 Continue");
    c.send(b"5\r\nhello\r\n0\r\n\r\n");
    assert_405(&c.read_response());
}

#[test]
fn expect_100_continue_with_body_already_sent_gets_exactly_one_final_response() {
    // The server may or may not send 100 when the body is already there, but
    // there must be exactly one final response, and the body must be framed.
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send(&concat(&[
        b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
        &get_close("/hello.txt"),
    ]));
    let mut resp = c.read_response();
    if resp.status == 100 {
        resp = c.read_response();
    }
    assert_405(&resp);
    assert_hello(&c.read_response());
    c.assert_closed();
}

#[test]
fn expect_100_continue_with_too_large_content_length_gets_413_without_100() {
    // RFC 9110 §10.1.1: a final status determinable from the head is sent
    // immediately instead of 100.
    let server = Server::start(&["--max-body-bytes", "100"]);
    let mut c = server.connect();
    c.send(b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n");
    let resp = c.read_response();
    assert_eq!(
        resp.status, 413,
        "expected an immediate 413, got:\n{}",
        resp.head
    );
    assert_error_and_close(&mut c, &resp, 413);
}

#[test]
fn expect_100_continue_in_http10_request_is_ignored() {
    // RFC 9110 §10.1.1: MUST ignore 100-continue in an HTTP/1.0 request.
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send(b"POST /hello.txt HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    c.assert_silent_for(Duration::from_millis(300));
    c.send(b"hello");
    let resp = c.read_response();
    assert_405(&resp);
    c.assert_closed();
}

#[test]
fn unknown_expectation_gets_417() {
    // RFC 9110 §10.1.1 and §15.5.18.
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nExpect: foo\r\n\r\n");
    let resp = c.read_response();
    assert_eq!(resp.status, 417, "{}", resp.head);
    resp.assert_basics();
    assert_error_body(&resp);
}

// ---------------------------------------------------------------------------
// HEAD (RFC 9110 §9.3.2)
// ---------------------------------------------------------------------------

#[test]
fn head_has_same_headers_as_get_and_no_body() {
    // RFC 9110 §9.3.2, §8.6: Content-Length of HEAD = that of GET.
    // Pipelining GET after HEAD proves no body bytes followed the HEAD head.
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send(&concat(&[&head("/hello.txt"), &get_close("/hello.txt")]));
    let h = c.read_response_to_head();
    let g = c.read_response();
    assert_eq!(h.status, 200, "{}", h.head);
    h.assert_basics_head();
    assert_hello(&g);
    for name in [
        "content-length",
        "content-type",
        "last-modified",
        "etag",
        "server",
    ] {
        assert_eq!(
            h.header(name),
            g.header(name),
            "{name} differs between HEAD and GET"
        );
    }
    assert_eq!(h.header("content-length"), Some("12"));
    c.assert_closed();
}

#[test]
fn head_of_missing_file_has_404_headers_and_no_body() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send(&concat(&[&head("/missing.txt"), &get_close("/hello.txt")]));
    let h = c.read_response_to_head();
    assert_eq!(h.status, 404, "{}", h.head);
    h.assert_basics_head();
    assert_hello(&c.read_response());
    c.assert_closed();
}

// ---------------------------------------------------------------------------
// Methods (RFC 9110 §9)
// ---------------------------------------------------------------------------

#[test]
fn unknown_method_gets_501() {
    // RFC 9110 §9.1: unrecognized method SHOULD → 501.
    let server = Server::start(&[]);
    let resp =
        server.request(b"FOO /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_eq!(resp.status, 501, "{}", resp.head);
    resp.assert_basics();
    assert_error_body(&resp);
}

#[test]
fn method_names_are_case_sensitive() {
    // RFC 9110 §9.1: the method token is case-sensitive, so "get" is an
    // unknown method, not GET.
    let server = Server::start(&[]);
    let resp =
        server.request(b"get /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_eq!(resp.status, 501, "{}", resp.head);
    assert_ne!(resp.body, HELLO);
}

#[test]
fn write_methods_on_static_files_get_405_with_allow() {
    // RFC 9110 §15.5.6: 405 MUST carry Allow.
    let server = Server::start(&[]);
    let mut c = server.connect();
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        c.send(
            format!("{method} /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
                .as_bytes(),
        );
        let resp = c.read_response();
        assert_eq!(resp.status, 405, "{method}:\n{}", resp.head);
        assert_405(&resp);
        assert_error_body(&resp);
    }
    c.send(&get_close("/hello.txt"));
    assert_hello(&c.read_response());
}

#[test]
fn options_on_path_returns_200_allow_and_empty_body() {
    // RFC 9110 §9.3.7.
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send(b"OPTIONS /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let resp = c.read_response();
    assert_eq!(resp.status, 200, "{}", resp.head);
    resp.assert_basics();
    assert_eq!(resp.header("allow"), Some(ALLOW));
    assert_eq!(resp.header("content-length"), Some("0"));
    assert!(resp.body.is_empty());
    c.send(&get_close("/hello.txt"));
    assert_hello(&c.read_response());
}
