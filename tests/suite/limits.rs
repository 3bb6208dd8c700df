//! Size limits and timeouts (RFC 9110 §17.5 "Attacks via Protocol Element
//! Length", RFC 9112 §9.5 "Failures and Timeouts"): `--max-head-bytes`
//! (431), `--max-uri-bytes` (414), `--max-headers` (431), `--max-body-bytes`
//! (413), header/body/keep-alive/write timeouts (408 or silent close,
//! slowloris), `--max-connections`, and file-descriptor exhaustion under
//! `prlimit`.
//!
//! Timeouts are set to fractions of a second through the flags so the tests
//! stay fast. No test here measures time: a timeout is asserted by its event
//! (the 408, the close), awaited for less than the flag's default (the
//! client's `IO_TIMEOUT`, 5 s, against defaults of 10 s and more; `PATIENCE`,
//! 20 s, against the 30 s write timeout), so a flag that is ignored fails the
//! test; where idle time must exceed a timeout, a `Witness` on
//! another connection proves it on the server's clock. How long each timeout
//! really takes, and the CPU the server burns while it cannot accept, are
//! figures printed by `benches/load/timing.py`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use crate::support::*;

// ---------------------------------------------------------------------------
// Head size, URI length, header count
// ---------------------------------------------------------------------------

#[test]
fn head_larger_than_max_head_bytes_gets_431() {
    // RFC 6585 §5 (431 Request Header Fields Too Large).
    let server = Server::start(&["--max-head-bytes", "1024"]);
    let req = format!(
        "GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "a".repeat(2000)
    );
    expect_error_and_close(&server, req.as_bytes(), 431);
}

#[test]
fn endless_head_gets_431_once_it_exceeds_max_head_bytes() {
    // The head never terminates; the server must not buffer without bound.
    let server = Server::start(&["--max-head-bytes", "1024"]);
    let mut c = server.connect();
    c.send(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n");
    for i in 0..100 {
        if c.try_send(format!("X-Filler-{i}: {}\r\n", "b".repeat(40)).as_bytes())
            .is_err()
        {
            break;
        }
    }
    let resp = c.read_response();
    assert_error_and_close(&mut c, &resp, 431);
}

#[test]
fn head_within_max_head_bytes_is_served() {
    let server = Server::start(&["--max-head-bytes", "1024"]);
    let req = format!(
        "GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nX-Pad: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(500)
    );
    assert_hello(&server.request(req.as_bytes()));
}

#[test]
fn request_target_longer_than_max_uri_bytes_gets_414() {
    // RFC 9112 §3, RFC 9110 §15.5.15 (414 URI Too Long).
    let server = Server::start(&["--max-uri-bytes", "100"]);
    let req = format!(
        "GET /{} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "a".repeat(200)
    );
    expect_error_and_close(&server, req.as_bytes(), 414);
}

#[test]
fn request_target_longer_than_max_uri_bytes_gets_414_before_line_is_complete() {
    // The request line is still incomplete (no CRLF yet), but the target is
    // already too long: answer 414 without waiting for the rest.
    let server = Server::start(&["--max-uri-bytes", "100"]);
    let mut c = server.connect();
    c.send(format!("GET /{}", "a".repeat(300)).as_bytes());
    let resp = c.read_response();
    assert_error_and_close(&mut c, &resp, 414);
}

#[test]
fn request_target_within_max_uri_bytes_is_served() {
    let server = Server::start(&["--max-uri-bytes", "100"]);
    let target = format!("/hello.txt?{}", "q".repeat(80)); // 91 bytes
    assert_hello(&server.get(&target));
}

#[test]
fn more_header_fields_than_max_headers_gets_431() {
    // RFC 6585 §5.
    let server = Server::start(&["--max-headers", "5"]);
    let mut req = String::from("GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n");
    for i in 0..9 {
        req.push_str(&format!("X-H{i}: v\r\n"));
    }
    req.push_str("\r\n");
    expect_error_and_close(&server, req.as_bytes(), 431);
}

#[test]
fn exactly_max_headers_fields_are_accepted() {
    let server = Server::start(&["--max-headers", "5"]);
    let req = "GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\nConnection: close\r\n\r\n";
    assert_hello(&server.request(req.as_bytes()));
}

#[test]
fn request_target_length_limit_is_inclusive() {
    // A target of exactly --max-uri-bytes is allowed; one byte more is 414.
    let server = Server::start(&["--max-uri-bytes", "100"]);
    let exact = format!("/hello.txt?{}", "q".repeat(100 - "/hello.txt?".len()));
    assert_eq!(exact.len(), 100);
    assert_hello(&server.get(&exact));
    let over = format!("{exact}q");
    expect_error_and_close(&server, &get_close(&over), 414);
}

// ---------------------------------------------------------------------------
// Body size
// ---------------------------------------------------------------------------

#[test]
fn content_length_above_max_body_bytes_gets_413_from_head_alone() {
    // RFC 9110 §15.5.14: the server may refuse without reading the content,
    // and then closes the connection. Only the head is sent here.
    let server = Server::start(&["--max-body-bytes", "100"]);
    let mut c = server.connect();
    c.send(b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 101\r\n\r\n");
    let resp = c.read_response();
    assert_error_and_close(&mut c, &resp, 413);
}

#[test]
fn content_length_equal_to_max_body_bytes_is_accepted() {
    let server = Server::start(&["--max-body-bytes", "100"]);
    let mut c = server.connect();
    let mut req =
        b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'x', 100));
    c.send(&req);
    let resp = c.read_response();
    assert_eq!(
        resp.status, 405,
        "a body of exactly the limit is allowed:\n{}",
        resp.head
    );
    c.send(&get_close("/hello.txt"));
    assert_hello(&c.read_response());
}

#[test]
fn huge_content_length_is_rejected_without_overflow() {
    // RFC 9110 §8.6: recipients MUST anticipate large numerals and prevent
    // integer overflow. 400 (unparseable) or 413 (too large) are both fine.
    let server = Server::start(&[]);
    for value in ["18446744073709551616", "99999999999999999999999999"] {
        let mut c = server.connect();
        c.send(
            format!(
                "POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: {value}\r\n\r\nabc"
            )
            .as_bytes(),
        );
        let resp = c.read_response();
        assert!(
            matches!(resp.status, 400 | 413),
            "Content-Length {value}:\n{}",
            resp.head
        );
        assert_error_and_close(&mut c, &resp, resp.status);
    }
}

#[test]
fn chunked_body_exceeding_max_body_bytes_gets_413() {
    let server = Server::start(&["--max-body-bytes", "100"]);
    let mut c = server.connect();
    let chunk = format!("40\r\n{}\r\n", "z".repeat(64));
    let req = format!(
        "POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}{chunk}{chunk}0\r\n\r\n"
    );
    c.send(req.as_bytes());
    let resp = c.read_response();
    assert_error_and_close(&mut c, &resp, 413);
}

#[test]
fn oversized_body_sent_eagerly_still_receives_413() {
    // RFC 9112 §9.6: the server closes in stages (half-close, then
    // drain) so a client still sending its body can read the response
    // instead of getting a reset that destroys it.
    let server = Server::start(&["--max-body-bytes", "1000"]);
    let mut c = server.connect();
    let len = 4 * 1024 * 1024;
    c.send(
        format!("POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len}\r\n\r\n")
            .as_bytes(),
    );
    let mut writer = c.stream.try_clone().unwrap();
    let sender = thread::spawn(move || {
        let block = vec![b'u'; 64 * 1024];
        for _ in 0..len / block.len() {
            if writer.write_all(&block).is_err() {
                break;
            }
        }
    });
    let resp = c.read_response();
    assert_error_and_close(&mut c, &resp, 413);
    drop(c);
    sender.join().unwrap();
}

#[test]
fn chunked_body_of_exactly_max_body_bytes_is_accepted() {
    let server = Server::start(&["--max-body-bytes", "100"]);
    let mut c = server.connect();
    let req = format!(
        "POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
         40\r\n{}\r\n24\r\n{}\r\n0\r\n\r\n",
        "a".repeat(64),
        "b".repeat(36)
    );
    c.send(req.as_bytes());
    let resp = c.read_response();
    assert_eq!(
        resp.status, 405,
        "a 100-byte chunked body is within the limit:\n{}",
        resp.head
    );
    c.send(&get_close("/hello.txt"));
    assert_hello(&c.read_response());
}

// ---------------------------------------------------------------------------
// Header timeout (slowloris)
// ---------------------------------------------------------------------------

#[test]
fn slowly_trickled_head_gets_408_within_header_timeout_while_others_are_served() {
    // RFC 9110 §15.5.9 (408); RFC 9112 §9.5. The whole head must arrive within
    // --header-timeout of its first byte, however steadily bytes trickle in:
    // the 408 comes while the client is still trickling, and another client
    // is served meanwhile.
    let server = Server::start(&["--header-timeout", "0.5"]);
    let mut slow = server.connect();
    slow.send(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nX-Slow: ");
    let stop = Arc::new(AtomicBool::new(false));
    let trickled = Arc::new(AtomicUsize::new(0));
    let trickler = {
        let mut writer = slow.stream.try_clone().unwrap();
        let stop = Arc::clone(&stop);
        let trickled = Arc::clone(&trickled);
        // Returns whether it ran out of bytes before being stopped.
        thread::spawn(move || {
            for _ in 0..1200 {
                if stop.load(Ordering::Relaxed) || writer.write_all(b"a").is_err() {
                    return false;
                }
                trickled.fetch_add(1, Ordering::Relaxed);
                // The scenario (a byte every 50 ms), not a wait for anything.
                thread::sleep(Duration::from_millis(50));
            }
            true
        })
    };

    // Meanwhile, once the trickle is under way, another client is served.
    wait_until("the slow client to trickle a few bytes", PATIENCE, || {
        trickled.load(Ordering::Relaxed) >= 2
    });
    assert_hello(&server.get("/hello.txt"));

    let resp = slow.read_response();
    assert_error_and_close(&mut slow, &resp, 408);
    stop.store(true, Ordering::Relaxed);
    assert!(
        !trickler.join().unwrap(),
        "premise: the client was still trickling its head when the 408 came"
    );
}

#[test]
fn connection_that_sends_nothing_is_closed_after_header_timeout() {
    // Either a silent close or a 408 is acceptable for an empty connection.
    // It must come from --header-timeout 0.3: the client waits at most
    // IO_TIMEOUT, half the default header timeout.
    let server = Server::start(&["--header-timeout", "0.3"]);
    let mut c = server.connect();
    let data = c.read_to_close();
    if !data.is_empty() {
        let text = String::from_utf8_lossy(&data);
        assert!(
            text.starts_with("HTTP/1.1 408 "),
            "only a 408 may be sent, got {text:?}"
        );
    }
}

#[test]
fn header_timeout_does_not_apply_to_idle_time_between_requests() {
    // Between requests the keep-alive timeout governs, not the header timeout:
    // after an idle pause longer than the header timeout (proved by a witness's
    // 408 on the server's clock) the connection still serves the next request.
    let server = Server::start(&["--header-timeout", "0.3", "--keep-alive-timeout", "60"]);
    let mut c = server.connect();
    c.send(&get("/hello.txt"));
    assert_hello(&c.read_response());
    Witness::start(&server).wait("an idle pause longer than the header timeout", PATIENCE);
    c.send(&get_close("/hello.txt"));
    assert_hello(&c.read_response());
}

#[test]
fn many_slow_clients_do_not_delay_a_normal_client() {
    // Single-threaded event loop: 50 half-sent heads must not block anyone.
    // The normal client is answered while every slow one is still waiting
    // (nothing sent to it, still open): a loop that waited for a slow head
    // would have had to answer it first. The header timeout is long so that
    // no slow head can time out during the test, however loaded the machine.
    let server = Server::start(&["--header-timeout", "60"]);
    let mut slow: Vec<Client> = (0..50).map(|_| server.connect()).collect();
    for c in &mut slow {
        c.send(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n");
    }
    assert_hello(&server.get("/hello.txt"));
    for (i, c) in slow.iter().enumerate() {
        assert_eq!(
            c.peek_now(),
            Peeked::Nothing,
            "slow client #{i} when the normal client had its response"
        );
    }
    // The slow ones are still waiting, not answered or dropped.
    slow[0].assert_silent_for(Duration::from_millis(100));
}

#[test]
fn header_timeout_restarts_with_the_first_byte_of_each_request() {
    // After an idle keep-alive pause longer than the header timeout (a witness
    // proves it on the server's clock), a new head gets the full header timeout
    // from ITS first byte, not from the end of the previous response (which
    // would have expired during the pause): a head sent now is served, and one
    // left unfinished gets 408.
    let server = Server::start(&["--header-timeout", "0.5", "--keep-alive-timeout", "60"]);
    let mut c = server.connect();
    c.send(&get("/hello.txt"));
    assert_hello(&c.read_response());
    Witness::start(&server).wait("an idle pause longer than the header timeout", PATIENCE);
    c.send(b"GET /hello.txt HTTP/1.1\r\n");
    c.send(b"Host: localhost\r\n\r\n");
    assert_hello(&c.read_response());
    c.send(b"GET /hello.txt HTTP/1.1\r\n"); // and never finish the head
    let resp = c.read_response();
    assert_error_and_close(&mut c, &resp, 408);
}

// ---------------------------------------------------------------------------
// Keep-alive timeout
// ---------------------------------------------------------------------------

#[test]
fn idle_keep_alive_connection_is_closed_silently_after_timeout() {
    // RFC 9112 §9.5: idle connections may be closed; no 408 is sent to an
    // idle persistent connection. The close is awaited for IO_TIMEOUT, a third
    // of the default keep-alive timeout: it comes from the flag.
    let server = Server::start(&["--keep-alive-timeout", "0.3"]);
    let mut c = server.connect();
    c.send(&get("/hello.txt"));
    assert_hello(&c.read_response());
    c.assert_closed();
}

#[test]
fn keep_alive_connection_survives_idle_shorter_than_timeout() {
    // Idle for longer than the (short) header timeout, as a witness proves on
    // the server's clock, but far less than the keep-alive timeout: the
    // connection is still there.
    let server = Server::start(&["--keep-alive-timeout", "60", "--header-timeout", "0.5"]);
    let mut c = server.connect();
    c.send(&get("/hello.txt"));
    assert_hello(&c.read_response());
    Witness::start(&server).wait("an idle pause of half a second", PATIENCE);
    c.send(&get_close("/hello.txt"));
    assert_hello(&c.read_response());
}

// ---------------------------------------------------------------------------
// Body timeout
// ---------------------------------------------------------------------------

/// A POST whose body stalls after 3 of its 10 bytes.
const STALLED_BODY: &[u8] =
    b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nabc";

#[test]
fn stalled_body_gets_408_and_close() {
    // Awaited for IO_TIMEOUT, far below the default body timeout (30 s).
    let server = Server::start(&["--body-timeout", "0.3"]);
    let mut c = server.connect();
    c.send(STALLED_BODY);
    let resp = c.read_response();
    assert_error_and_close(&mut c, &resp, 408);
}

#[test]
fn stalled_chunked_body_gets_408_and_close() {
    let server = Server::start(&["--body-timeout", "0.3"]);
    let mut c = server.connect();
    c.send(b"POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
    let resp = c.read_response();
    assert_error_and_close(&mut c, &resp, 408);
}

#[test]
fn slow_but_progressing_body_is_not_timed_out() {
    // --body-timeout bounds the time WITHOUT progress, not the total time: a
    // body trickled a byte every 50 ms (a twentieth of the timeout) until a
    // stalled body on another connection has had its 408 (so the body timeout
    // has passed on the server's clock since this one began) is read whole.
    let server = Server::start(&["--body-timeout", "1", "--header-timeout", "5"]);
    let mut c = server.connect();
    let len = 400;
    c.send(
        format!("POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len}\r\n\r\n")
            .as_bytes(),
    );
    let mut witness = server.connect();
    witness.send(STALLED_BODY);
    let mut sent = 0;
    while witness.peek_now() == Peeked::Nothing {
        assert!(
            sent < len - 1,
            "premise: the stalled body on the other connection never timed out \
             while {sent} bytes trickled in"
        );
        c.send(b"x");
        sent += 1;
        // The scenario (a slow client), not a wait for anything.
        thread::sleep(Duration::from_millis(50));
    }
    let witness_resp = witness.read_response();
    assert_eq!(witness_resp.status, 408, "{}", witness_resp.head);
    c.send(&vec![b'x'; len - sent]);
    let resp = c.read_response();
    assert_eq!(resp.status, 405, "{}", resp.head);
    c.send(&get_close("/hello.txt"));
    assert_hello(&c.read_response());
}

// ---------------------------------------------------------------------------
// Write timeout
// ---------------------------------------------------------------------------

#[test]
fn client_that_stops_reading_is_disconnected_after_write_timeout() {
    // 20 pipelined requests for a 3 MiB file (60 MiB) cannot fit in socket
    // buffers; with the client not reading, the server must give up after
    // --write-timeout instead of holding the connection forever. That it gave
    // up is seen in the kernel's table (its end of the connection is closed)
    // without reading, which would be progress; awaited for PATIENCE, below
    // the default write timeout (30 s).
    let big = patterned_bytes(3 * 1024 * 1024);
    let server = Server::builder()
        .file("big.bin", &big)
        .args(&["--write-timeout", "0.5"])
        .start();
    let mut c = server.connect();
    let reqs: Vec<u8> = (0..20).flat_map(|_| get("/big.bin")).collect();
    c.send(&reqs);
    let me = c.stream.local_addr().unwrap();
    wait_for("the server to accept the connection", PATIENCE, || {
        server_holds(server.addr, me)
    });
    wait_for(
        "the server to drop the connection that stopped reading",
        PATIENCE,
        || server_released(server.addr, me),
    );

    // The server is still serving others.
    assert_hello(&server.get("/hello.txt"));

    // Drain whatever is buffered: the connection must already be closed.
    let mut total = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    c.stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let closed = loop {
        match c.stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => total += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(e) if is_timeout(&e) => break false,
            Err(e) => panic!("read error {e}"),
        }
    };
    assert!(
        closed,
        "connection still open after write timeout ({total} bytes read)"
    );
    assert!(
        total < 20 * big.len(),
        "all {total} bytes were delivered; the write timeout never fired"
    );
}

#[test]
fn slow_reader_making_progress_is_not_cut_off() {
    // The write timeout is about a client that stops reading; one that keeps
    // reading slowly for longer than the timeout gets the whole file (and
    // neither the header nor the keep-alive timeout interferes). "Longer than
    // the timeout" is proved on the server's clock: a second client asks for
    // the same file and reads nothing, and the slow reader keeps its slow
    // pace until the server has dropped that one. (The file is large enough
    // for the slow pace to last several write timeouts; the pace itself is
    // the one the test always had: smaller reads can leave the server's
    // socket without room for so long that it is a stop, not a slow read.)
    let big = patterned_bytes(16 * 1024 * 1024);
    let server = Server::builder()
        .file("big.bin", &big)
        .args(&[
            "--write-timeout",
            "0.6",
            "--keep-alive-timeout",
            "0.3",
            "--header-timeout",
            "0.3",
        ])
        .start();
    let mut c = server.connect();
    c.send(&get_close("/big.bin"));
    let mut stalled = server.connect();
    stalled.send(&get_close("/big.bin"));
    let stalled_addr = stalled.stream.local_addr().unwrap();
    // Watched from another thread, so that neither waiting for it nor
    // reading the kernel's table slows the reader down: first the server
    // holds the other client's connection, later it has dropped it.
    let stalled_dropped = Arc::new(AtomicBool::new(false));
    let watcher = {
        let dropped = Arc::clone(&stalled_dropped);
        let server_addr = server.addr;
        thread::spawn(move || {
            wait_for("the server to accept the other client", PATIENCE, || {
                server_holds(server_addr, stalled_addr)
            });
            let gone = try_wait_for(PATIENCE, POLL, || {
                server_released(server_addr, stalled_addr)
            });
            dropped.store(gone.is_ok(), Ordering::SeqCst);
        })
    };
    let mut stalled_dropped_at = None;
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 192 * 1024];
    loop {
        if stalled_dropped_at.is_none() && stalled_dropped.load(Ordering::SeqCst) {
            stalled_dropped_at = Some(raw.len());
        }
        // Up to 192 KiB every 50 ms until the other client was dropped (the
        // scenario: a slow reader), then the rest without pauses.
        match c.stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) => panic!("download failed after {} bytes: {e}", raw.len()),
        }
        if stalled_dropped_at.is_none() {
            thread::sleep(Duration::from_millis(50));
        }
    }
    assert!(
        stalled_dropped_at.is_some_and(|at| at < raw.len()),
        "premise: the download ended ({} bytes) before the server dropped the client that \
         read nothing, so it was not slower than the write timeout",
        raw.len()
    );
    watcher.join().unwrap();
    let end = find(&raw, b"\r\n\r\n").expect("response head");
    assert!(raw.starts_with(b"HTTP/1.1 200 "));
    assert!(
        raw[end + 4..] == big[..],
        "slow download cut short: {} of {} body bytes",
        raw.len() - end - 4,
        big.len()
    );
    drop(stalled);
}

// ---------------------------------------------------------------------------
// Connection limits
// ---------------------------------------------------------------------------

#[test]
fn connection_beyond_max_connections_waits_until_a_slot_frees() {
    // (That the server does not spin meanwhile is measured by
    // benches/load/timing.py: CPU ticks at the connection limit.)
    let server = Server::start(&["--max-connections", "4"]);
    let mut held: Vec<Client> = (0..4)
        .map(|_| {
            let mut c = server.connect();
            c.send(&get("/hello.txt"));
            assert_hello(&c.read_response());
            c
        })
        .collect();

    let mut fifth = server.connect(); // completes in the kernel backlog
    fifth.send(&get_close("/hello.txt"));
    fifth.assert_silent_for(Duration::from_millis(800));

    drop(held.pop());
    let resp = fifth.read_response();
    assert_hello(&resp);
    fifth.assert_closed();

    // The remaining held connections still work.
    for c in &mut held {
        c.send(&get("/hello.txt"));
        assert_hello(&c.read_response());
    }
}

#[test]
fn running_out_of_file_descriptors_neither_crashes_nor_spins() {
    // With only 32 descriptors, 60 connections exhaust the process's fd
    // table: accept() fails with EMFILE. The server must back off, survive,
    // and resume once descriptors free up. (That it backs off rather than
    // spinning on the ready listener is a CPU figure, measured by
    // benches/load/timing.py.)
    let mut server = Server::builder().nofile(32).start();
    assert_hello(&server.get("/hello.txt"));

    let conns: Vec<Client> = (0..60)
        .map(|i| {
            let s = TcpStream::connect_timeout(&server.addr, IO_TIMEOUT)
                .unwrap_or_else(|e| panic!("connect #{i}: {e}"));
            Client::from_stream(s)
        })
        .collect();
    for c in &conns {
        let _ = (&c.stream).write_all(&get("/hello.txt"));
    }
    // Premise: the descriptor table really is (nearly) full now.
    let fds = wait_for("the server's descriptor table to fill", PATIENCE, || {
        let fds = server.open_fds();
        if fds >= 28 {
            Ok(fds)
        } else {
            Err(format!("{fds} of 32 descriptors in use"))
        }
    });
    // The accept that failed came before the requests on the connections it
    // did accept were answered: once every connection the server holds has
    // its response, the server has been through EMFILE and lives on.
    wait_for(
        "a response on every connection the server accepted",
        PATIENCE,
        || {
            let mut unanswered = 0;
            let mut accepted = 0;
            let table = TcpTable::read();
            for c in &conns {
                let me = c.stream.local_addr().unwrap();
                if table.server_holds(server.addr, me).is_ok() {
                    accepted += 1;
                    if c.peek_now() == Peeked::Nothing {
                        unanswered += 1;
                    }
                }
            }
            if accepted > 0 && unanswered == 0 {
                Ok(())
            } else {
                Err(format!(
                    "{unanswered} of {accepted} accepted connections unanswered ({fds} fds)"
                ))
            }
        },
    );
    let table = TcpTable::read();
    assert!(
        conns.iter().any(|c| table
            .server_holds(server.addr, c.stream.local_addr().unwrap())
            .is_err()),
        "premise: the server accepted all 60 connections with 32 descriptors"
    );
    server.assert_running();

    drop(conns);
    let mut c = server.connect();
    c.send(&get_close("/hello.txt"));
    let resp = c.read_response();
    assert_hello(&resp);
    server.assert_running();
}
