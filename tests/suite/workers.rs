//! `--workers 2`: two event loops, each with its own listeners (SO_REUSEPORT), sharing the
//! API's state. What is shared must behave as on one loop: chat messages reach the streams of
//! both workers, in order, once each, with exact `Last-Event-ID` replay; the login throttle
//! counts failures from both; SIGTERM and SIGHUP reach both.
//!
//! Which worker a connection lands on is the kernel's choice (a hash of the client's port), so
//! each test opens many connections (32: the chance that all land on one of two workers is
//! 2^-31) and, once the server has stopped, checks from the line each worker prints on its way
//! out (`worker N of 2 served R requests on C connections`) that both served.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::tls::TestCert;
use crate::support::*;

/// Connections per test: enough that both workers get some.
const CONNECTIONS: usize = 32;

/// Stops `server` with SIGTERM, checks that it exits cleanly, and returns the connections each
/// worker accepted, from their closing lines.
fn stop_and_count_connections(server: &mut Server) -> Vec<u64> {
    server.signal("TERM");
    let status = server
        .wait_exit(PATIENCE)
        .expect("the server exits after SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    let lines = wait_for("both workers' closing lines", PATIENCE, || {
        let lines: Vec<String> = server
            .messages()
            .into_iter()
            .filter(|message| message.starts_with("worker "))
            .collect();
        if lines.len() == 2 {
            Ok(lines)
        } else {
            Err(format!("{lines:?}"))
        }
    });
    let mut connections: Vec<(u64, u64)> = lines
        .iter()
        .map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            // worker N of 2 served R requests on C connections
            assert_eq!(words.len(), 10, "{line:?}");
            let number = |at: usize| -> u64 {
                words[at]
                    .parse()
                    .unwrap_or_else(|_| panic!("{line:?}: word {at}"))
            };
            (number(1), number(8))
        })
        .collect();
    connections.sort_unstable();
    assert_eq!(
        connections
            .iter()
            .map(|(worker, _)| *worker)
            .collect::<Vec<_>>(),
        [0, 1],
        "{lines:?}"
    );
    connections.into_iter().map(|(_, count)| count).collect()
}

fn assert_both_served(connections: &[u64]) {
    assert!(
        connections.iter().all(|&count| count > 0),
        "connections per worker: {connections:?}"
    );
}

#[test]
fn a_chat_message_reaches_streams_on_every_worker_once_in_order() {
    let mut server = Server::start(&["--workers", "2"]);
    let alice = user_token(&server, "alice");
    let first = send_message(&server, &alice, "before the streams");
    let mut streams: Vec<EventStream> = (0..CONNECTIONS)
        .map(|_| open_stream(&server, &alice, &format!("?after={}", first.id - 1)))
        .collect();
    // Each replays the first message from the store, then gets the live ones.
    let live: Vec<ChatMessage> = (0..3)
        .map(|n| send_message(&server, &alice, &format!("live {n}")))
        .collect();
    let expected: Vec<i64> = std::iter::once(first.id)
        .chain(live.iter().map(|m| m.id))
        .collect();
    for (n, stream) in streams.iter_mut().enumerate() {
        let got: Vec<i64> = stream
            .next_messages(expected.len(), PATIENCE)
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(got, expected, "stream {n}");
    }
    // Resuming with Last-Event-ID on fresh connections: exactly what came after.
    let mut resumed: Vec<EventStream> = (0..CONNECTIONS)
        .map(|_| {
            let request = stream_req(&alice, "").header("Last-Event-ID", live[0].id.to_string());
            EventStream::open(&server, &request)
        })
        .collect();
    let last = send_message(&server, &alice, "after the resume");
    for (n, stream) in resumed.iter_mut().enumerate() {
        let got: Vec<i64> = stream
            .next_messages(3, PATIENCE)
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(got, [live[1].id, live[2].id, last.id], "resumed stream {n}");
    }
    for (n, stream) in streams.iter_mut().enumerate() {
        assert_eq!(stream.next_message(PATIENCE).id, last.id, "stream {n}");
    }
    assert_both_served(&stop_and_count_connections(&mut server));
}

#[test]
fn a_write_is_read_at_once_on_every_worker_while_reads_keep_the_loops_busy() {
    // A loop's reads of single posts share one snapshot per tick (two fcntl calls a tick
    // instead of per read). A post created, changed or deleted on one worker must still be
    // read as it was answered, by the next request on any worker, however busy that loop is:
    // readers on both workers keep their ticks full of reads meanwhile.
    let mut server = Server::start(&["--workers", "2"]);
    let token = user_token(&server, "author");
    let busy = create_post(&server, &token, "read all the time", "");
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let mut client = server.connect();
            let stop = Arc::clone(&stop);
            let request = format!("GET /api/posts/{} HTTP/1.1\r\nHost: t\r\n\r\n", busy.id);
            thread::spawn(move || {
                let mut served = 0;
                while !stop.load(Ordering::Relaxed) {
                    client.send(request.repeat(8).as_bytes());
                    for _ in 0..8 {
                        assert_eq!(client.read_response().status, 200);
                        served += 1;
                    }
                }
                served
            })
        })
        .collect();
    for n in 0..CONNECTIONS {
        let post = create_post(&server, &token, &format!("post {n}"), "first");
        assert_eq!(fetch_post(&server, post.id), Some(post.clone()), "created");
        let path = format!("/api/posts/{}", post.id);
        Req::put(&path)
            .bearer(&token)
            .json(post_body("changed", "second"))
            .send(&server)
            .expect(200);
        let changed = fetch_post(&server, post.id).expect("still there");
        assert_eq!(
            (changed.title.as_str(), changed.body.as_str()),
            ("changed", "second")
        );
        Req::delete(&path).bearer(&token).send(&server).expect_204();
        assert_eq!(fetch_post(&server, post.id), None, "deleted");
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().expect("a reader failed") > 0);
    }
    assert_both_served(&stop_and_count_connections(&mut server));
}

#[test]
fn no_loop_keeps_a_read_snapshot_once_it_has_answered() {
    // The snapshot a loop's reads share ends with the loop's tick: a loop that waits for
    // requests holds no read transaction, which would keep SQLite from checkpointing the WAL
    // past it. Reads on both workers, then a write: a full checkpoint, which waits for every
    // reader to be on the newest snapshot, succeeds once the loops are idle.
    let mut server = Server::start(&["--workers", "2"]);
    let token = user_token(&server, "author");
    let post = create_post(&server, &token, "read on both workers", "");
    for _ in 0..CONNECTIONS {
        assert_eq!(fetch_post(&server, post.id), Some(post.clone()));
    }
    create_post(&server, &token, "newer than every snapshot", "");
    let db = rusqlite::Connection::open(server.db_path()).expect("the database opens");
    db.busy_timeout(Duration::ZERO).expect("no waiting");
    wait_for("a checkpoint no reader blocks", PATIENCE, || {
        let busy: i64 = db
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
            .map_err(|error| error.to_string())?;
        if busy == 0 {
            Ok(())
        } else {
            Err("a reader still holds an older snapshot".to_owned())
        }
    });
    assert_both_served(&stop_and_count_connections(&mut server));
}

#[test]
fn failed_logins_on_every_worker_count_toward_one_throttle() {
    let mut server = Server::start(&["--workers", "2"]);
    register(&server, "victim", PASSWORD);
    // One connection per attempt, so the attempts are spread over both workers.
    let mut clients: Vec<Client> = (0..CONNECTIONS).map(|_| server.connect()).collect();
    for (n, client) in clients.iter_mut().take(5).enumerate() {
        login_req("victim", &format!("wrong password {n}"))
            .send_on(client)
            .expect_error(401);
    }
    for client in clients.iter_mut().skip(5) {
        login_req("victim", PASSWORD)
            .send_on(client)
            .expect_error(429);
    }
    assert_both_served(&stop_and_count_connections(&mut server));
}

#[test]
fn sigterm_ends_the_streams_of_every_worker_and_the_server_exits() {
    let mut server = Server::start(&["--workers", "2"]);
    let alice = user_token(&server, "alice");
    let mut streams: Vec<EventStream> = (0..CONNECTIONS)
        .map(|_| open_stream(&server, &alice, ""))
        .collect();
    // Every stream is live (subscribed) before the signal.
    let message = send_message(&server, &alice, "before the end");
    for stream in &mut streams {
        assert_eq!(stream.next_message(PATIENCE).id, message.id);
    }
    let connections = stop_and_count_connections(&mut server);
    let deadline = Instant::now() + PATIENCE;
    for (n, stream) in streams.iter_mut().enumerate() {
        assert!(stream.wait_closed(deadline), "stream {n} still open");
    }
    assert_both_served(&connections);
    assert!(
        connections.iter().sum::<u64>() >= CONNECTIONS as u64,
        "{connections:?}"
    );
}

#[test]
fn a_reloaded_certificate_is_served_by_every_worker() {
    let certs = tempfile::tempdir().unwrap();
    let cert_file = certs.path().join("cert.pem");
    let key_file = certs.path().join("key.pem");
    let a = TestCert::new("looplight test A");
    let b = TestCert::new("looplight test B");
    a.write(&cert_file, &key_file);
    let mut server = Server::builder()
        .args(&[
            "--workers",
            "2",
            "--tls-addr",
            "127.0.0.1:0",
            "--cert",
            cert_file.to_str().unwrap(),
            "--key",
            key_file.to_str().unwrap(),
        ])
        .start();
    let addr = server.https_addr();
    let roots = vec![a.der(), b.der()];
    let fingerprints = |count: usize| -> Vec<String> {
        (0..count)
            .map(|_| Client::connect_tls(addr, "localhost", &roots).peer_fingerprint())
            .collect()
    };
    assert_eq!(
        fingerprints(CONNECTIONS),
        vec![a.fingerprint(); CONNECTIONS]
    );
    b.write(&cert_file, &key_file);
    server.signal("HUP");
    server
        .wait_for_message(PATIENCE, |message| message.starts_with("reloaded"))
        .unwrap_or_else(|| panic!("no `reloaded` line:\n{}", server.stderr_lines().join("\n")));
    // Once the line is out, every worker hands out the new certificate.
    assert_eq!(
        fingerprints(CONNECTIONS),
        vec![b.fingerprint(); CONNECTIONS]
    );
    let connections = stop_and_count_connections(&mut server);
    assert_both_served(&connections);
}

#[test]
fn static_files_are_served_by_every_worker_within_one_connection_limit() {
    let mut server = Server::with_root(
        &[("hello.txt", b"hello, workers\n")],
        &["--workers", "2", "--max-connections", "4"],
    );
    // Four connections, open at once, are served; a fifth waits in the backlog until one
    // of them closes, whichever worker holds it.
    let mut held: Vec<Client> = (0..4).map(|_| server.connect()).collect();
    for client in &mut held {
        client.send(&get("/hello.txt"));
        assert_eq!(client.read_response().body_str(), "hello, workers\n");
    }
    let mut waiting = server.connect();
    waiting.send(&get("/hello.txt"));
    waiting.assert_silent_for(Duration::from_millis(300));
    drop(held.pop());
    assert_eq!(waiting.read_response().body_str(), "hello, workers\n");
    drop(held);
    drop(waiting);
    for _ in 0..CONNECTIONS {
        let mut client = server.connect();
        client.send(&get_close("/hello.txt"));
        assert_eq!(client.read_response().body_str(), "hello, workers\n");
    }
    assert_both_served(&stop_and_count_connections(&mut server));
}

#[test]
fn access_log_lines_of_both_workers_never_interleave() {
    let mut server = Server::builder()
        .file("hello.txt", b"hello, workers\n")
        .args(&["--workers", "2"])
        .with_log()
        .start();
    let requests_per_connection = 50;
    let clients: Vec<std::thread::JoinHandle<()>> = (0..CONNECTIONS)
        .map(|_| {
            let mut client = server.connect();
            std::thread::spawn(move || {
                // Pipelined: many lines per tick on each worker.
                let request = get("/hello.txt");
                let all: Vec<u8> = request.repeat(requests_per_connection);
                client.send(&all);
                for _ in 0..requests_per_connection {
                    assert_eq!(client.read_response().body_str(), "hello, workers\n");
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let expected = CONNECTIONS * requests_per_connection;
    let lines = wait_for("every request's log line", PATIENCE, || {
        let lines = server.log_lines();
        if lines.len() >= expected {
            Ok(lines)
        } else {
            Err(format!("{} lines", lines.len()))
        }
    });
    for line in &lines {
        assert!(
            line.starts_with("127.0.0.1 - - [")
                && line.ends_with("] \"GET /hello.txt HTTP/1.1\" 200 15"),
            "a whole line, alone: {line:?}"
        );
    }
    assert_eq!(lines.len(), expected);
    assert_both_served(&stop_and_count_connections(&mut server));
}
