//! Isolation: what one client asks for must cost only that client. Work that takes
//! milliseconds (a large directory listing, brotli-compressing a text file) runs off the event
//! loop, so other connections are answered meanwhile; a multipart range request on a huge file
//! streams the ranges instead of reading the file into memory; running out of descriptors turns
//! a file open into a 503 with `Retry-After` (the condition is temporary) and the server
//! recovers; the memory of a burst of password hashes is given back.
//!
//! Plus two smaller contract points that came with the same change: `HTTP/1.y` (y > 1) is
//! served as HTTP/1.1 (RFC 9110 §2.5), and the landing page promises nothing that is not there.
//!
//! "Does not hold up" is decided by ordering, never by elapsed time: connection A asks for the
//! slow thing, connection B then asks for `/hello.txt`, and when B's response is complete not
//! one byte of A's may have arrived yet. A server that does A's work on the loop thread writes
//! A's response (or part of it) before it even reads B's request, so it fails this.

use std::fs::{self, File};
use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Barrier;
use std::thread;
use std::time::Duration;

use crate::static_rfc::{boundary_of, parse_multipart};
use crate::support::*;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Read timeout while waiting for a response that deliberately costs the server real work
/// (done on helper threads that run at low priority), instead of `IO_TIMEOUT`.
const SLOW_WORK_TIMEOUT: Duration = Duration::from_secs(20);

/// A field of `/proc/PID/status` in KiB, e.g. `VmRSS` or `VmHWM`.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    let kib = line.trim().strip_suffix("kB").unwrap_or(line).trim();
    kib.parse()
        .unwrap_or_else(|_| panic!("bad {field} line {line:?}"))
}

/// Whether any byte from the server is waiting on `c`'s socket, without blocking. Panics if the
/// server closed the connection (a response was expected on it).
fn bytes_waiting(c: &Client) -> bool {
    assert!(
        c.buffered().is_empty(),
        "the client already holds unread bytes"
    );
    c.stream.set_nonblocking(true).unwrap();
    let mut probe = [0u8; 1];
    let peeked = c.stream.peek(&mut probe);
    c.stream.set_nonblocking(false).unwrap();
    match peeked {
        Ok(0) => panic!("the server closed the connection instead of answering"),
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(e) => panic!("peek failed: {e}"),
    }
}

/// Sends `request` followed by a `Connection: close` request for a missing file on one fresh
/// connection and returns the first response after checking the basics (Content-Length equals
/// the body length) and that the follow-up response parses: the first one was framed exactly.
fn fetch_framed(server: &Server, request: &[u8]) -> Result<Response, String> {
    let mut c = server.connect();
    c.send(&concat(&[request, &get_close("/__followup_probe__.none")]));
    let resp = c
        .try_read_response(false)
        .map_err(|e| format!("{e}\nrequest:\n{}", String::from_utf8_lossy(request)))?;
    resp.assert_basics();
    let next = c.try_read_response(false).map_err(|e| {
        format!(
            "the response was not framed correctly (the next one does not parse): {e}\n{}",
            resp.head
        )
    })?;
    assert_eq!(next.status, 404, "follow-up after\n{}", resp.head);
    Ok(resp)
}

fn ranged_get(path: &str, range: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nRange: bytes={range}\r\n\r\n").into_bytes()
}

// ---------------------------------------------------------------------------
// Multipart ranges of a huge file
// ---------------------------------------------------------------------------

/// 2 GiB: larger than any memory budget the server has.
const HUGE_LEN: u64 = 2 * 1024 * 1024 * 1024;
/// Where the block of known bytes in the middle of the huge file starts.
const HUGE_MID: u64 = (1 << 30) + 12_345;

/// The non-zero regions of the sparse huge file (offset, bytes); everything else reads as zeros.
fn huge_regions() -> Vec<(u64, Vec<u8>)> {
    let pattern = patterned_bytes(4096 + 65_536 + 4096);
    let mut start = b"HUGE-START".to_vec();
    start.extend_from_slice(&pattern[..4096]);
    let middle = pattern[4096..4096 + 65_536].to_vec();
    let mut end = pattern[4096 + 65_536..].to_vec();
    end.extend_from_slice(b"HUGE-END");
    vec![
        (0, start),
        (HUGE_MID, middle),
        (HUGE_LEN - end.len() as u64, end),
    ]
}

/// The huge file's bytes `first..=last`, from the model (zeros plus the regions).
fn huge_expected(first: u64, last: u64) -> Vec<u8> {
    let mut out = vec![0u8; (last - first + 1) as usize];
    for (offset, bytes) in huge_regions() {
        let region_end = offset + bytes.len() as u64;
        let lo = first.max(offset);
        let hi = (last + 1).min(region_end);
        if lo < hi {
            out[(lo - first) as usize..(hi - first) as usize]
                .copy_from_slice(&bytes[(lo - offset) as usize..(hi - offset) as usize]);
        }
    }
    out
}

/// Checks a multipart/byteranges 206 of the huge file: one part per range, in order, each with
/// the right Content-Type, Content-Range and bytes.
fn assert_huge_parts(resp: &Response, ranges: &[(u64, u64)]) {
    assert_eq!(
        resp.status,
        206,
        "{}\n{}",
        resp.head,
        String::from_utf8_lossy(&resp.body[..resp.body.len().min(300)])
    );
    assert!(
        resp.header("content-range").is_none(),
        "RFC 9110 §14.4: a multipart 206 has no Content-Range field:\n{}",
        resp.head
    );
    let ct = resp.header("content-type").expect("Content-Type");
    let parts = parse_multipart(&resp.body, &boundary_of(ct));
    assert_eq!(parts.len(), ranges.len(), "parts of\n{}", resp.head);
    for (part, &(first, last)) in parts.iter().zip(ranges) {
        let cr = format!("bytes {first}-{last}/{HUGE_LEN}");
        assert_eq!(part.header("content-range"), Some(cr.as_str()));
        assert_eq!(
            part.header("content-type"),
            Some("application/octet-stream"),
            "part {cr}"
        );
        assert!(
            part.data == huge_expected(first, last),
            "part {cr}: the bytes differ from the file's ({} bytes received)",
            part.data.len()
        );
    }
}

/// A multipart/byteranges response on a file far larger than memory must be assembled from the
/// ranges alone. Guards against building the multipart body from the whole file read into
/// memory (which the old code did: 2 GiB of RSS for two bytes of ranges, and an easy way to
/// exhaust the server's memory with one request).
#[test]
fn multipart_ranges_on_a_huge_file_stream_without_reading_it() {
    let server = Server::builder()
        .setup(|root, _| {
            let file = File::create(root.join("huge.bin")).unwrap();
            file.set_len(HUGE_LEN).unwrap();
            for (offset, bytes) in huge_regions() {
                file.write_all_at(&bytes, offset).unwrap();
            }
            assert_eq!(file.metadata().unwrap().len(), HUGE_LEN);
        })
        .start();
    // Premise: the regions put known non-zero bytes at both ends.
    assert_eq!(huge_expected(0, 0), b"H");
    assert_eq!(huge_expected(HUGE_LEN - 1, HUGE_LEN - 1), b"D");
    let pid = server.pid();
    let fetch = |request: &[u8]| {
        fetch_framed(&server, request).unwrap_or_else(|e| {
            panic!(
                "{e}\nthe server's peak RSS so far: {} MiB",
                status_kib(pid, "VmHWM") / 1024
            )
        })
    };

    // The first and the last byte.
    let resp = fetch(&ranged_get("/huge.bin", "0-0,-1"));
    let ct = resp.header("content-type").unwrap_or_default();
    assert!(
        ct.starts_with("multipart/byteranges;") && ct.contains("boundary="),
        "Content-Type {ct:?}"
    );
    assert_huge_parts(&resp, &[(0, 0), (HUGE_LEN - 1, HUGE_LEN - 1)]);

    // Three ranges in the middle: across the start of the known block, inside it, and across
    // its end into the zeros of the hole.
    let block_end = HUGE_MID + 65_536;
    let ranges = [
        (HUGE_MID - 100, HUGE_MID + 99),
        (HUGE_MID + 30_000, HUGE_MID + 30_999),
        (block_end - 50, block_end + 49),
    ];
    let field: Vec<String> = ranges.iter().map(|(a, b)| format!("{a}-{b}")).collect();
    let resp = fetch(&ranged_get("/huge.bin", &field.join(",")));
    assert_huge_parts(&resp, &ranges);

    // More ranges than the server's limit of 16: the whole file (RFC 9110 §14.2 allows
    // ignoring the Range field). Only the head is read; then the connection is dropped.
    let many: Vec<String> = (0..17u64)
        .map(|i| format!("{}-{}", 1000 * i, 1000 * i + 9))
        .collect();
    let mut c = server.connect();
    c.send(&ranged_get("/huge.bin", &many.join(",")));
    let resp = c.read_response_to_head();
    assert_eq!(resp.status, 200, "17 ranges:\n{}", resp.head);
    assert_eq!(resp.content_length(), Some(HUGE_LEN), "{}", resp.head);
    drop(c);

    // The server still answers, and never held anything like the file in memory.
    assert_hello(&server.get("/hello.txt"));
    let peak_kib = status_kib(pid, "VmHWM");
    assert!(
        peak_kib < 64 * 1024,
        "peak RSS {} MiB: the multipart responses read the 2 GiB file into memory",
        peak_kib / 1024
    );
}

// ---------------------------------------------------------------------------
// Directory listings off the loop
// ---------------------------------------------------------------------------

const MANY_FILES: usize = 30_000;

fn many_name(i: usize) -> String {
    format!("f{i:05}.txt")
}

/// Listing 30,000 entries (reading the directory, a stat per entry, sorting, HTML) takes tens
/// of milliseconds. Guards against building the listing on the loop thread, where every other
/// connection waits behind it: B's small request, sent after A's listing request, must be
/// answered completely while not one byte of A's listing has arrived.
#[test]
fn a_directory_listing_does_not_hold_up_other_connections() {
    let server = Server::builder()
        .args(&["--list-dirs"])
        .setup(|root, _| {
            let dir = root.join("many");
            fs::create_dir(&dir).unwrap();
            for i in 0..MANY_FILES {
                File::create(dir.join(many_name(i))).unwrap();
            }
        })
        .start();
    // Both connections accepted and served once (hello.txt now in the file cache), so the
    // requests below are each one read on an established connection.
    let mut a = server.connect();
    let mut b = server.connect();
    for c in [&mut a, &mut b] {
        c.send(&get("/hello.txt"));
        assert_hello(&c.read_response());
    }

    a.send(&get("/many/"));
    b.send(&get("/hello.txt"));
    assert_hello(&b.read_response());
    assert!(
        !bytes_waiting(&a),
        "A's listing (or part of it) arrived before B's response was complete: the listing \
         was built on the loop thread and B waited behind it"
    );

    // A's listing then arrives, complete and correct. (It is built by a low-priority helper
    // thread, which on a loaded machine may take seconds: more than the usual read timeout.)
    a.set_read_timeout(SLOW_WORK_TIMEOUT);
    let resp = a.read_response();
    assert_eq!(resp.status, 200, "{}", resp.head);
    resp.assert_basics();
    let ct = resp.header("content-type").unwrap_or_default();
    assert!(ct.starts_with("text/html"), "Content-Type {ct:?}");
    let page = resp.body_str();
    // Which names make it into a listing that is cut short depends on the directory's order
    // on disk, so the check is: many links to files of many/, every one a file we created,
    // none twice.
    let mut listed: Vec<usize> = page
        .split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter_map(|href| {
            let name = href.strip_prefix("./").unwrap_or(href);
            let number = name.strip_prefix('f')?.strip_suffix(".txt")?;
            (number.len() == 5 && number.bytes().all(|b| b.is_ascii_digit()))
                .then(|| number.parse::<usize>().unwrap())
        })
        .collect();
    let count = listed.len();
    listed.sort_unstable();
    listed.dedup();
    assert_eq!(listed.len(), count, "a name is listed twice");
    assert!(
        listed.iter().all(|&i| i < MANY_FILES),
        "the listing links to a file that does not exist"
    );
    assert!(
        count >= 1000,
        "only {count} of {MANY_FILES} names listed:\n{}",
        &page[..page.len().min(2000)]
    );
    // The connection is still in order: keep-alive after the listing.
    a.send(&get_close("/hello.txt"));
    assert_hello(&a.read_response());
    a.assert_closed();
}

// ---------------------------------------------------------------------------
// On-the-fly compression off the loop
// ---------------------------------------------------------------------------

const TEXT_FILES: usize = 40;
const TEXT_BYTES: usize = 200 * 1024;

fn xorshift(x: &mut u32) -> u32 {
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    *x
}

/// About `len` bytes of space-separated words drawn (seeded by `seed`) from a vocabulary of
/// 2,000 made-up words: text that compresses, but only with real work (no long repeats).
fn words_text(seed: u32, len: usize) -> Vec<u8> {
    let mut v = 0x9e37_79b9u32;
    let vocabulary: Vec<String> = (0..2000)
        .map(|_| {
            let n = 2 + xorshift(&mut v) % 9;
            (0..n)
                .map(|_| char::from(b'a' + (xorshift(&mut v) % 26) as u8))
                .collect()
        })
        .collect();
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        out.extend_from_slice(vocabulary[xorshift(&mut x) as usize % vocabulary.len()].as_bytes());
        out.push(if xorshift(&mut x).is_multiple_of(13) {
            b'\n'
        } else {
            b' '
        });
    }
    out
}

fn text_path(i: usize) -> String {
    format!("text/t{i:02}.txt")
}

fn brotli_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(bytes, 4096)
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("the br body does not decode: {e}"));
    out
}

/// Compressing 200 KB of text with brotli takes tens of milliseconds, and each file is
/// compressed once, on its first request. Guards against compressing on the loop thread: B's
/// request, sent right after A's 40 pipelined requests, must be answered completely before
/// any byte of A's first (compressed) response arrives; then A gets all 40, in order, each the
/// br coding of the right file.
///
/// Why "no byte of A yet" and not "not all 40 of A yet": a loop-thread compressor would still
/// pass the weaker check, since the loop turns to other connections after 32 pipelined
/// requests, and whenever A's socket is full (A is not reading). What B must never do is wait
/// for a compression, and that shows as A's first response (or part of it) being on the wire
/// before B's is complete. 40 distinct files keep every request a cold compression, so
/// whichever request is in progress when B arrives costs tens of milliseconds; B's round trip
/// on an idle loop costs well under one. (Assumes compression happens on first request, not
/// ahead of time at start-up.)
#[test]
fn on_the_fly_compression_does_not_hold_up_other_connections() {
    let texts: Vec<Vec<u8>> = (0..TEXT_FILES)
        .map(|i| words_text(i as u32 + 1, TEXT_BYTES))
        .collect();
    let mut builder = Server::builder().args(&["--compress"]);
    for (i, text) in texts.iter().enumerate() {
        builder = builder.file(&text_path(i), text);
    }
    let server = builder.start();
    let mut a = server.connect();
    let mut b = server.connect();
    for c in [&mut a, &mut b] {
        c.send(&get("/hello.txt"));
        assert_hello(&c.read_response());
    }

    let pipeline: Vec<u8> = (0..TEXT_FILES)
        .flat_map(|i| {
            format!(
                "GET /{} HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: br\r\n\r\n",
                text_path(i)
            )
            .into_bytes()
        })
        .collect();
    a.send(&pipeline);
    b.send(&get("/hello.txt"));
    assert_hello(&b.read_response());
    assert!(
        !bytes_waiting(&a),
        "a compressed response for A arrived before B's response was complete: B waited \
         behind a compression on the loop thread"
    );

    // Each response waits for its compression on a low-priority helper thread, which on a
    // loaded machine may take seconds: more than the usual read timeout.
    a.set_read_timeout(SLOW_WORK_TIMEOUT);
    for (i, text) in texts.iter().enumerate() {
        let resp = a.read_response();
        let what = format!("response {i} (/{})", text_path(i));
        assert_eq!(resp.status, 200, "{what}:\n{}", resp.head);
        resp.assert_basics();
        assert_eq!(
            resp.header("content-encoding"),
            Some("br"),
            "{what}:\n{}",
            resp.head
        );
        assert!(
            resp.body.len() < text.len(),
            "{what}: {} bytes of br for {} of text",
            resp.body.len(),
            text.len()
        );
        assert!(
            brotli_decode(&resp.body) == *text,
            "{what}: the body is not the br coding of that file (out of order?)"
        );
    }
    a.send(&get_close("/hello.txt"));
    assert_hello(&a.read_response());
    a.assert_closed();
}

// ---------------------------------------------------------------------------
// Out of descriptors: 503 with Retry-After
// ---------------------------------------------------------------------------

/// The descriptor limit the server runs under: its own start-up needs (standard streams,
/// SQLite, listener, poller, waker: about 13 today) with room to spare for a few more, plus a
/// couple of dozen connections to fill the rest.
const NOFILE: u32 = 48;

/// The server's open descriptors: how many, and whether one of them is `name`.
fn fds_and_whether_open(pid: u32, name: &str) -> (usize, bool) {
    let mut count = 0;
    let mut open = false;
    if let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) {
        for entry in dir.flatten() {
            count += 1;
            if let Ok(target) = fs::read_link(entry.path()) {
                open |= target.file_name().is_some_and(|f| f == name);
            }
        }
    }
    (count, open)
}

/// When every descriptor is taken, opening a file fails for a reason that has nothing to do
/// with the file and that passes: RFC 9110 §15.6.4 503 with Retry-After (§10.2.3), not a 500
/// (a server error that suggests retrying is pointless) nor a 404. Guards against mapping
/// EMFILE to 500 (or to "missing"), and against the failure outliving its cause: once
/// descriptors are free the same request succeeds again.
#[test]
fn running_out_of_descriptors_turns_file_opens_into_503_with_retry_after() {
    // Larger than the memory cache's per-file limit (256 KiB): opened on every request.
    let big = patterned_bytes(300 * 1024);
    let server = Server::builder()
        .file("big.bin", &big)
        .nofile(NOFILE)
        // Connections that never send anything must stay open for the whole test.
        .args(&["--header-timeout", "60", "--keep-alive-timeout", "60"])
        .start();
    let pid = server.pid();
    let at_start = server.open_fds();
    assert!(
        at_start + 10 <= NOFILE as usize,
        "premise: the server uses {at_start} of {NOFILE} descriptors at start; raise NOFILE"
    );

    let mut first = server.connect();
    first.send(&get("/big.bin"));
    let resp = first.read_response();
    assert_eq!(resp.status, 200, "{}", resp.head);
    assert!(resp.body == big, "big.bin differs");

    // More connections than there are descriptors: the server accepts until its table is full,
    // the rest wait in the kernel's backlog.
    let extra: Vec<TcpStream> = (0..NOFILE)
        .map(|i| {
            TcpStream::connect_timeout(&server.addr, IO_TIMEOUT)
                .unwrap_or_else(|e| panic!("connect #{i}: {e}"))
        })
        .collect();
    // Premise: every descriptor taken, and big.bin's from the first request closed again (so
    // no slot frees up behind our back).
    wait_for("premise: the descriptor table to fill", PATIENCE, || {
        let (fds, big_open) = fds_and_whether_open(pid, "big.bin");
        if fds >= NOFILE as usize && !big_open {
            Ok(())
        } else {
            Err(format!(
                "{fds} of {NOFILE} in use, big.bin open: {big_open}, with {} connections",
                extra.len() + 1
            ))
        }
    });

    first.send(&get("/big.bin"));
    let resp = first.read_response();
    assert_eq!(
        resp.status, 503,
        "opening a file with no descriptor left:\n{}",
        resp.head
    );
    resp.assert_basics();
    assert_error_body(&resp);
    let retry_after = resp
        .header("retry-after")
        .unwrap_or_else(|| panic!("503 without Retry-After:\n{}", resp.head));
    assert!(
        (!retry_after.is_empty() && retry_after.bytes().all(|b| b.is_ascii_digit()))
            || is_imf_fixdate(retry_after),
        "Retry-After {retry_after:?} is neither delay-seconds nor an HTTP-date (RFC 9110 §10.2.3)"
    );

    // Descriptors free up: the same request succeeds again (on the first connection while it
    // stays open, else on a new one).
    drop(extra);
    let mut client = if resp.has_token("connection", "close") {
        None
    } else {
        Some(first)
    };
    wait_for_every(
        "a 200 for big.bin after the descriptors were freed",
        PATIENCE,
        Duration::from_millis(50),
        || {
            let mut c = client.take().unwrap_or_else(|| server.connect());
            let outcome = c
                .try_send(&get("/big.bin"))
                .map_err(|e| format!("send failed: {e}"))
                .and_then(|()| c.try_read_response(false));
            match outcome {
                Ok(resp) if resp.status == 200 => {
                    assert!(resp.body == big, "big.bin differs after recovery");
                    Ok(())
                }
                Ok(resp) => {
                    if !resp.has_token("connection", "close") {
                        client = Some(c);
                    }
                    Err(resp.head)
                }
                Err(e) => Err(e),
            }
        },
    );
}

// ---------------------------------------------------------------------------
// HTTP/1.2 is HTTP/1.1
// ---------------------------------------------------------------------------

/// RFC 9110 §2.5: a recipient SHOULD process a message with a higher minor version as if it
/// were the highest minor version it conforms to, here 1.1. Guards against answering
/// `HTTP/1.2` with 505 (which tells the client the major version is unsupported), against
/// treating it as 1.0 (closing after each response, or accepting it without Host), and against
/// the relaxation spreading to other major versions.
#[test]
fn http_1_2_is_served_as_http_1_1() {
    let server = Server::start(&[]);

    // Keep-alive like 1.1 (assert_hello checks the `HTTP/1.1` status line).
    let mut c = server.connect();
    c.send(b"GET /hello.txt HTTP/1.2\r\nHost: localhost\r\n\r\n");
    let resp = c.read_response();
    assert_hello(&resp);
    assert!(!resp.has_token("connection", "close"), "{}", resp.head);
    c.send(b"GET /hello.txt HTTP/1.9\r\nHost: localhost\r\n\r\n");
    let resp = c.read_response();
    assert_hello(&resp);
    assert!(!resp.has_token("connection", "close"), "{}", resp.head);
    // Chunked framing like 1.1 (1.0 has no transfer codings): the body is consumed exactly,
    // so the request after it is answered on the same connection.
    c.send(
        b"POST /hello.txt HTTP/1.2\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n0\r\n\r\n",
    );
    let resp = c.read_response();
    assert_eq!(resp.status, 405, "{}", resp.head);
    resp.assert_basics();
    c.send(&get_close("/hello.txt"));
    assert_hello(&c.read_response());
    c.assert_closed();

    // Host is required like in 1.1 (RFC 9112 §3.2).
    expect_error_and_close(&server, b"GET /hello.txt HTTP/1.2\r\n\r\n", 400);

    // Other major versions keep their 505, and a request line without a version its 400.
    for version in ["HTTP/2.0", "HTTP/3.0", "HTTP/0.9"] {
        let mut c = server.connect();
        c.send(format!("GET /hello.txt {version}\r\nHost: localhost\r\n\r\n").as_bytes());
        let resp = c.read_response();
        assert_eq!(resp.status, 505, "{version}:\n{}", resp.head);
        resp.assert_basics();
        assert_error_body(&resp);
    }
    expect_error_and_close(&server, b"GET /hello.txt\r\n\r\n", 400);
}

// ---------------------------------------------------------------------------
// The landing page
// ---------------------------------------------------------------------------

/// The repository's landing page describes what the server does today. Guards against
/// announcing features as coming "soon" or "Next up" (promises the code does not keep).
#[test]
fn the_landing_page_promises_nothing_that_is_not_there() {
    let www = Path::new(env!("CARGO_MANIFEST_DIR")).join("www");
    let server = Server::builder().site(&www).start();
    let resp = server.get("/");
    assert_eq!(resp.status, 200, "{}", resp.head);
    resp.assert_basics();
    let page = resp.body_str();
    assert!(page.contains("looplight"), "not the landing page:\n{page}");
    for (i, line) in page.lines().enumerate() {
        assert!(
            !line.to_ascii_lowercase().contains("soon"),
            "www/index.html line {}: {line:?} says \"soon\"",
            i + 1
        );
        assert!(
            !line.contains("Next up"),
            "www/index.html line {}: {line:?} says \"Next up\"",
            i + 1
        );
    }
}

// ---------------------------------------------------------------------------
// Password hashing gives its memory back
// ---------------------------------------------------------------------------

/// Each argon2 hash uses about 19 MiB. Guards against a burst of logins leaving the server
/// that much bigger for good (the allocator keeping each helper thread's freed blocks): after
/// 8 simultaneous logins, resident memory must come back to within 8 MiB of what it was
/// before the burst.
#[test]
fn logins_give_their_memory_back() {
    let server = Server::start(&[]);
    let users: Vec<String> = (0..8).map(|i| format!("burst_user_{i}")).collect();
    for user in &users {
        register(&server, user, PASSWORD);
    }
    let pid = server.pid();
    let before = status_kib(pid, "VmRSS");

    let barrier = Barrier::new(users.len());
    thread::scope(|scope| {
        for user in &users {
            let (server, barrier) = (&server, &barrier);
            scope.spawn(move || {
                barrier.wait();
                login(server, user, PASSWORD);
            });
        }
    });

    let slack = 8 * 1024;
    let mut series = Vec::new();
    wait_for_every(
        &format!(
            "RSS to come back within 8 MiB of {} MiB (before the 8 logins)",
            before / 1024
        ),
        PATIENCE,
        Duration::from_millis(100),
        || {
            let rss = status_kib(pid, "VmRSS");
            series.push(rss / 1024);
            if rss <= before + slack {
                Ok(())
            } else {
                Err(format!("MiB every 100 ms after the burst: {series:?}"))
            }
        },
    );
}
