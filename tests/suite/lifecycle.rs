//! Process and connection lifecycle: many concurrent clients, clients that
//! vanish mid-response or half-close (RFC 9112 §9.6), graceful shutdown on
//! SIGTERM (stop accepting, finish in-flight responses, close idle
//! connections, exit 0 within `--shutdown-timeout`), the access log in
//! Common Log Format, `--quiet`, and `--help`.
//!
//! Nothing here measures time. A shutdown that must not wait for its grace
//! period runs with a grace of an hour, so exiting at all proves it; one
//! whose grace must end runs with a write timeout of an hour, so only the
//! grace can end it. How long these take: `benches/load/timing.py`.

use std::io::Read;
use std::net::TcpStream;
use std::process::Command;
use std::thread;
use std::time::Duration;

use crate::support::*;

const BIG_LEN: usize = 16 * 1024 * 1024;

fn big_server(args: &[&str]) -> (Server, Vec<u8>) {
    let big = patterned_bytes(BIG_LEN);
    let server = Server::builder().file("big.bin", &big).args(args).start();
    (server, big)
}

/// A grace period no test can reach: a server that waits for it never exits
/// within the test's deadline.
const HOUR: &str = "3600";

/// Reads from `c` until EOF in small steps with pauses (a slow client; the
/// pauses are the scenario, not a wait for anything).
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
    let mut reset = Vec::new();
    for _ in 0..5 {
        let mut c = server.connect();
        c.send(&get("/big.bin"));
        c.read_exact_bytes(100 * 1024);
        reset.push(c.stream.local_addr().unwrap());
        // Dropping a socket with unread received data makes the kernel send
        // a RST, so the server's next write fails with EPIPE/ECONNRESET.
        drop(c);
    }
    // The server has dealt with every reset (closed its end) and lives on.
    for addr in reset {
        wait_for("the server to close a reset connection", PATIENCE, || {
            server_released(server.addr, addr)
        });
    }
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
    // The process exits once the download is done, not when the grace period
    // (an hour) runs out.
    let (mut server, big) = big_server(&["--shutdown-timeout", HOUR]);

    let mut idle = server.connect();
    idle.send(&get("/hello.txt"));
    assert_hello(&idle.read_response());

    let mut download = server.connect();
    download.send(&get("/big.bin"));
    // Read the start of the response: the download is now in flight.
    let mut raw = download.read_exact_bytes(64 * 1024);

    server.signal(SIGTERM);

    // Idle keep-alive connections are closed at once, while the download is
    // still in flight.
    idle.assert_closed();

    // The server stopped accepting before it closed the idle connection: new
    // connections are refused, or accepted by the kernel but never answered
    // (closed/reset when the process exits).
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
        .wait_exit(PATIENCE)
        .expect("server did not exit after SIGTERM once its last response was done");
    assert!(
        status.success(),
        "graceful shutdown must exit with status 0, got {status}"
    );
    probe.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn shutdown_timeout_bounds_the_grace_period_for_stalled_clients() {
    // A stalled in-flight response is not abandoned when shutdown begins: the
    // server has closed an idle connection (it is shutting down) and still
    // holds the stalled one, which then reads its whole response.
    let (mut server, big) = big_server(&["--shutdown-timeout", HOUR]);
    let mut idle = server.connect();
    idle.send(&get("/hello.txt"));
    assert_hello(&idle.read_response());
    let mut stalled = server.connect();
    stalled.send(&get("/big.bin"));
    let mut raw = stalled.read_exact_bytes(1024); // then nothing for a while
    server.signal(SIGTERM);
    idle.assert_closed();
    let me = stalled.stream.local_addr().unwrap();
    server_holds(server.addr, me)
        .unwrap_or_else(|e| panic!("the stalled response was abandoned at SIGTERM: {e}"));
    server.assert_running();
    raw.extend(stalled.read_to_close());
    let end = find(&raw, b"\r\n\r\n").expect("response head");
    assert!(raw.starts_with(b"HTTP/1.1 200 "));
    assert!(
        raw[end + 4..] == big[..],
        "the stalled download was cut short by the shutdown"
    );
    drop(stalled);
    let status = server.wait_exit(PATIENCE).expect("exit after the download");
    assert!(status.success(), "exit status {status}");

    // The grace period ends: a client that never reads again cannot keep the
    // server alive. Its write timeout is an hour, so only the 0.5 s grace can
    // end the process.
    let (mut server, _big) = big_server(&["--shutdown-timeout", "0.5", "--write-timeout", HOUR]);
    let mut stalled = server.connect();
    stalled.send(&get("/big.bin"));
    stalled.read_exact_bytes(1024); // then never read again
    server.signal(SIGTERM);
    assert!(
        server.wait_exit(PATIENCE).is_some(),
        "server still running {PATIENCE:?} after SIGTERM with --shutdown-timeout 0.5"
    );
}

#[test]
fn sigterm_on_an_idle_server_exits_promptly_with_status_0() {
    // Nothing in flight: it exits without waiting for the grace period.
    let mut server = Server::start(&["--shutdown-timeout", HOUR]);
    assert_hello(&server.get("/hello.txt"));
    server.signal(SIGTERM);
    let status = server
        .wait_exit(PATIENCE)
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
        .wait_for_log_line(PATIENCE, |l| l.contains("/hello.txt"))
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
        .wait_for_log_line(PATIENCE, |l| l.contains("/missing.txt"))
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
    let _ = server.wait_for_log_line(PATIENCE, |l| l.contains("HEAD /hello.txt"));
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
    // Everything the process ever wrote to stdout is in once it has exited
    // and its stdout reached EOF: no line may be there.
    let mut server = Server::start(&[]); // --quiet
    assert_hello(&server.get("/hello.txt"));
    server.signal(SIGTERM);
    server
        .wait_exit(PATIENCE)
        .expect("server did not exit after SIGTERM");
    server.wait_stdout_closed();
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
        "--log-format",
        "--access-log",
        "--log-level",
        "--help",
    ] {
        assert!(
            help.contains(flag),
            "--help does not document {flag}:\n{help}"
        );
    }
}
