//! Process and connection lifecycle: many concurrent clients, clients that
//! vanish mid-response or half-close (RFC 9112 §9.6), graceful shutdown on
//! SIGTERM (stop accepting, finish in-flight responses, close idle
//! connections, exit 0 within `--shutdown-timeout`), the access log in
//! Common Log Format, `--quiet`, and `--help`.

use std::io::Read;
use std::net::TcpStream;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::*;

const BIG_LEN: usize = 16 * 1024 * 1024;

fn big_server(args: &[&str]) -> (Server, Vec<u8>) {
    let big = patterned_bytes(BIG_LEN);
    let server = Server::builder().file("big.bin", &big).args(args).start();
    (server, big)
}

/// Reads from `c` until EOF in small steps with pauses (a slow client).
fn read_slowly_to_close(c: &mut Client, step: usize, pause: Duration) -> Vec<u8> {
    let mut out = c.buffered().to_vec();
    let mut buf = vec![0u8; step];
    loop {
        match c.stream.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                panic!("connection reset after {} bytes of the download", out.len())
            }
            Err(e) => panic!("download stalled after {} bytes: {e}", out.len()),
        }
        thread::sleep(pause);
    }
}

/// Splits a raw single response into (head, body).
fn split_response(raw: &[u8]) -> (String, &[u8]) {
    let end = find(raw, b"\r\n\r\n").expect("response head");
    (
        String::from_utf8_lossy(&raw[..end]).into_owned(),
        &raw[end + 4..],
    )
}

// ---------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------

#[test]
fn five_hundred_concurrent_connections_are_all_served() {
    let server = Server::start(&[]);
    let start = Instant::now();
    let mut clients: Vec<Client> = (0..500).map(|_| server.connect()).collect();
    for c in &mut clients {
        c.send(&get_close("/hello.txt"));
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let resp = c
            .try_read_response(false)
            .unwrap_or_else(|e| panic!("client #{i}: {e}"));
        assert_hello(&resp);
    }
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "500 connections took {:?}",
        start.elapsed()
    );
}

#[test]
fn many_threads_doing_keep_alive_requests_are_all_served() {
    let server = Server::start(&[]);
    let addr = server.addr;
    let threads: Vec<_> = (0..20)
        .map(|_| {
            thread::spawn(move || {
                let mut c = Client::connect(addr);
                for _ in 0..25 {
                    c.send(&get("/hello.txt"));
                    assert_hello(&c.read_response());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread failed");
    }
}

// ---------------------------------------------------------------------------
// Clients that go away
// ---------------------------------------------------------------------------

#[test]
fn clients_resetting_mid_download_do_not_disturb_the_server() {
    let (mut server, big) = big_server(&[]);
    for _ in 0..5 {
        let mut c = server.connect();
        c.send(&get("/big.bin"));
        c.read_exact_bytes(100 * 1024);
        // Dropping a socket with unread received data makes the kernel send
        // a RST, so the server's next write fails with EPIPE/ECONNRESET.
        drop(c);
    }
    thread::sleep(Duration::from_millis(100));
    server.assert_running();
    assert_hello(&server.get("/hello.txt"));
    let resp = server.get("/big.bin");
    assert!(resp.body == big, "download after resets is not byte-exact");
}

#[test]
fn half_closed_client_gets_the_full_response_then_the_connection_closes() {
    // RFC 9112 §9.6: a half-closed client is still reading; the server
    // must finish the response before closing.
    let (server, big) = big_server(&[]);
    let mut c = server.connect();
    c.send(&get("/big.bin"));
    c.shutdown_write();
    let resp = c.read_response();
    assert_eq!(resp.status, 200, "{}", resp.head);
    assert!(
        resp.body == big,
        "response to a half-closed client is not byte-exact"
    );
    c.assert_closed();
}

#[test]
fn half_closed_client_gets_all_pipelined_responses() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send(&concat(&[
        &get("/hello.txt"),
        &get("/dir/"),
        &get("/hello.txt"),
    ]));
    c.shutdown_write();
    assert_hello(&c.read_response());
    assert_eq!(c.read_response().body, DIR_INDEX_HTML);
    assert_hello(&c.read_response());
    c.assert_closed();
}

// ---------------------------------------------------------------------------
// Graceful shutdown
// ---------------------------------------------------------------------------

#[test]
fn sigterm_finishes_in_flight_download_closes_idle_connections_and_exits_0() {
    let (mut server, big) = big_server(&["--shutdown-timeout", "8"]);

    let mut idle = server.connect();
    idle.send(&get("/hello.txt"));
    assert_hello(&idle.read_response());

    let mut download = server.connect();
    download.send(&get("/big.bin"));
    // Read the start of the response: the download is now in flight.
    let mut raw = download.read_exact_bytes(64 * 1024);

    server.signal(SIGTERM);
    let signalled = Instant::now();

    // Idle keep-alive connections are closed promptly.
    idle.assert_closed_within(Duration::from_secs(3));

    // New connections are refused, or accepted by the kernel but never
    // answered (closed/reset when the process exits).
    thread::sleep(Duration::from_millis(200));
    let addr = server.addr;
    let probe = thread::spawn(move || -> Result<(), String> {
        let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
            return Ok(());
        };
        let mut c = Client::from_stream(s);
        let _ = c.try_send(&get_close("/hello.txt"));
        c.set_read_timeout(Duration::from_secs(9));
        let mut buf = [0u8; 1024];
        match c.stream.read(&mut buf) {
            Ok(0) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(()),
            Ok(n) => Err(format!(
                "new connection was served during shutdown: {:?}",
                String::from_utf8_lossy(&buf[..n])
            )),
            Err(e) => Err(format!("new connection neither refused nor closed: {e}")),
        }
    });

    // The in-flight download completes, byte-exact, while read slowly.
    raw.extend(read_slowly_to_close(
        &mut download,
        64 * 1024,
        Duration::from_millis(4),
    ));
    drop(download); // let the server finish its lingering close at once
    let (head, body) = split_response(&raw);
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("\r\ncontent-length: {BIG_LEN}")),
        "{head}"
    );
    assert!(
        body == big.as_slice(),
        "download cut short or corrupted by shutdown ({} of {BIG_LEN} body bytes)",
        body.len()
    );

    let status = server
        .wait_exit(Duration::from_secs(9))
        .expect("server did not exit after SIGTERM");
    assert!(
        status.success(),
        "graceful shutdown must exit with status 0, got {status}"
    );
    assert!(
        signalled.elapsed() < Duration::from_secs(8),
        "shutdown took {:?}",
        signalled.elapsed()
    );
    probe.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn shutdown_timeout_bounds_the_grace_period_for_stalled_clients() {
    let (mut server, _big) = big_server(&["--shutdown-timeout", "0.5"]);
    let mut stalled = server.connect();
    stalled.send(&get("/big.bin"));
    stalled.read_exact_bytes(1024); // then never read again
    server.signal(SIGTERM);
    let start = Instant::now();
    let status = server.wait_exit(Duration::from_secs(4));
    let elapsed = start.elapsed();
    assert!(
        status.is_some(),
        "server still running 4 s after SIGTERM with --shutdown-timeout 0.5"
    );
    assert!(
        elapsed >= Duration::from_millis(400),
        "in-flight response was abandoned immediately ({elapsed:?})"
    );
    assert!(
        elapsed < Duration::from_millis(2500),
        "grace period overran: {elapsed:?}"
    );
}

#[test]
fn sigterm_on_an_idle_server_exits_promptly_with_status_0() {
    let mut server = Server::start(&[]);
    assert_hello(&server.get("/hello.txt"));
    server.signal(SIGTERM);
    let status = server
        .wait_exit(Duration::from_secs(3))
        .expect("server did not exit after SIGTERM");
    assert!(status.success(), "exit status {status}");
}

// ---------------------------------------------------------------------------
// Access log and command line
// ---------------------------------------------------------------------------

#[test]
fn access_log_line_is_in_common_log_format() {
    let server = Server::start_with_log(&[]);
    let before = now_secs();
    assert_hello(&server.get("/hello.txt"));
    let after = now_secs();
    let line = server
        .wait_for_log_line(Duration::from_secs(3), |l| l.contains("/hello.txt"))
        .unwrap_or_else(|| {
            panic!(
                "no access-log line for /hello.txt; stdout lines: {:?}",
                server.log_lines()
            )
        });
    let matches = (before - 1..=after + 1).any(|t| {
        line == format!(
            "127.0.0.1 - - [{}] \"GET /hello.txt HTTP/1.1\" 200 12",
            clf_date(t)
        )
    });
    assert!(
        matches,
        "access-log line {line:?} is not `127.0.0.1 - - [{}] \"GET /hello.txt HTTP/1.1\" 200 12`",
        clf_date(after)
    );
}

#[test]
fn access_log_records_status_and_body_size_of_errors() {
    let server = Server::start_with_log(&[]);
    let resp = server.get("/missing.txt");
    assert_eq!(resp.status, 404);
    let line = server
        .wait_for_log_line(Duration::from_secs(3), |l| l.contains("/missing.txt"))
        .unwrap_or_else(|| panic!("no access-log line; stdout lines: {:?}", server.log_lines()));
    let suffix = format!("] \"GET /missing.txt HTTP/1.1\" 404 {}", resp.body.len());
    assert!(
        line.starts_with("127.0.0.1 - - [") && line.ends_with(&suffix),
        "{line:?} should end with {suffix:?}"
    );
}

#[test]
fn access_log_has_one_line_per_pipelined_request_in_order() {
    let server = Server::start_with_log(&[]);
    let mut c = server.connect();
    c.send(&concat(&[
        &get("/hello.txt"),
        &get("/missing.txt"),
        b"HEAD /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    ]));
    assert_hello(&c.read_response());
    assert_eq!(c.read_response().status, 404);
    assert_eq!(c.read_response_to_head().status, 200);
    c.assert_closed();
    let _ = server.wait_for_log_line(Duration::from_secs(3), |l| l.contains("HEAD /hello.txt"));
    let lines = server.log_lines();
    let expected = [
        "\"GET /hello.txt HTTP/1.1\" 200 ",
        "\"GET /missing.txt HTTP/1.1\" 404 ",
        "\"HEAD /hello.txt HTTP/1.1\" 200 ",
    ];
    assert_eq!(lines.len(), 3, "one line per request: {lines:?}");
    for (line, want) in lines.iter().zip(expected) {
        assert!(
            line.contains(want),
            "{line:?} should contain {want:?} (order: {lines:?})"
        );
    }
}

#[test]
fn quiet_suppresses_the_access_log() {
    let server = Server::start(&[]); // --quiet
    assert_hello(&server.get("/hello.txt"));
    thread::sleep(Duration::from_millis(300));
    assert!(
        server.log_lines().is_empty(),
        "--quiet must not log: {:?}",
        server.log_lines()
    );
}

#[test]
fn help_documents_every_flag() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_looplight"));
    command.arg("--help");
    let output = run_with_deadline(command, Duration::from_secs(5));
    let help = String::from_utf8_lossy(&output.stdout);
    let status = output.status;
    assert!(status.success(), "--help exit status {status}");
    for flag in [
        "--addr",
        "--root",
        "--quiet",
        "--max-head-bytes",
        "--max-uri-bytes",
        "--max-headers",
        "--max-body-bytes",
        "--header-timeout",
        "--body-timeout",
        "--keep-alive-timeout",
        "--write-timeout",
        "--shutdown-timeout",
        "--max-connections",
        "--help",
    ] {
        assert!(
            help.contains(flag),
            "--help does not document {flag}:\n{help}"
        );
    }
}
