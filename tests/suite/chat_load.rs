//! Group chat at scale and in isolation: 1,000 concurrent event streams on
//! the one event-loop thread all get a new message; a subscriber that stops
//! reading is dropped once its unsent output passes the server's bound
//! (256 KiB beyond the kernel buffers) without delaying anyone else; and
//! subscribers that disconnect are removed. Loopback only, every wait
//! bounded.

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, SockRef, Socket, Type};

use crate::support::*;

/// Lifts this process's soft RLIMIT_NOFILE to the hard limit (1,000 client
/// sockets plus the other tests running in parallel need more than the
/// common default of 1024) and checks there is room for `need` more.
fn ensure_open_files(need: u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
    let current = getrlimit(Resource::Nofile).current;
    assert!(
        current.is_none_or(|n| n >= need + 512),
        "RLIMIT_NOFILE {current:?} is too low for this test (needs {need} sockets)"
    );
}

/// Waits until the server's open file descriptor count satisfies `pred`
/// (connections closing after a response are closed asynchronously).
fn wait_fds(
    server: &Server,
    timeout: Duration,
    pred: impl Fn(usize) -> bool,
) -> Result<usize, usize> {
    let deadline = Instant::now() + timeout;
    loop {
        let n = server.open_fds();
        if pred(n) {
            return Ok(n);
        }
        if Instant::now() >= deadline {
            return Err(n);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The server's fd count once it has not changed for 300 ms.
fn settled_fds(server: &Server) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = server.open_fds();
    let mut since = Instant::now();
    loop {
        thread::sleep(Duration::from_millis(25));
        let n = server.open_fds();
        if n != last {
            last = n;
            since = Instant::now();
        } else if since.elapsed() >= Duration::from_millis(300) || Instant::now() >= deadline {
            return n;
        }
    }
}

#[test]
fn a_thousand_streams_all_receive_a_new_message() {
    const STREAMS: usize = 1000;
    ensure_open_files(STREAMS as u64);
    let server = Server::start(&[]);
    let token = user_token(&server, "crowd");
    let req = stream_req(&token, "");

    let start = Instant::now();
    let mut streams: Vec<EventStream> = (0..STREAMS)
        .map(|_| EventStream::open(&server, &req))
        .collect();
    let opened = start.elapsed();
    assert!(
        opened < Duration::from_secs(10),
        "opening {STREAMS} streams took {opened:?}"
    );
    for s in &streams {
        s.set_nonblocking(true);
    }

    let posted = Instant::now();
    let m = send_message(&server, &token, "hello, everyone");
    let deadline = posted + Duration::from_secs(10);
    let mut got: Vec<Option<ChatMessage>> = vec![None; STREAMS];
    let mut missing = STREAMS;
    while missing > 0 && Instant::now() < deadline {
        let mut progress = false;
        for (i, s) in streams.iter_mut().enumerate() {
            if got[i].is_some() {
                continue;
            }
            progress |= s.pump().unwrap_or_else(|e| panic!("stream #{i}: {e}"));
            while let Some((_, item)) = s.pop_item() {
                match item {
                    SseItem::Comment(_) => {}
                    SseItem::Event(ev) if ev.is_retry_only() => {}
                    SseItem::Event(ev) => {
                        got[i] = Some(event_message(&ev));
                        missing -= 1;
                        break;
                    }
                }
            }
            if got[i].is_none() && s.ending().is_some() {
                panic!(
                    "stream #{i} ended ({:?}) before the message\n{}",
                    s.ending(),
                    s.context()
                );
            }
        }
        if !progress {
            thread::sleep(Duration::from_millis(2));
        }
    }
    let elapsed = posted.elapsed();
    assert_eq!(
        missing,
        0,
        "{missing} of {STREAMS} streams did not receive the message within 10 s; first: {}",
        streams[got.iter().position(Option::is_none).unwrap_or(0)].context()
    );
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.as_ref(), Some(&m), "stream #{i}");
    }
    eprintln!("{STREAMS} streams opened in {opened:?}; all received the message in {elapsed:?}");

    // Still serving, and the streams stay open.
    Req::get("/healthz").send(&server).expect(200);
    drop(streams);
}

#[test]
fn a_stalled_subscriber_is_dropped_without_delaying_the_others() {
    if skip_on_postgres("it counts the server's fds; PostgreSQL's pool adds some meanwhile") {
        return;
    }
    // A client that stops reading must not hold up the loop: the normal
    // stream receives every message promptly while the stalled one's
    // unsent output grows; past the bound the server drops the stalled
    // subscriber and closes its connection (which then ends with EOF or a
    // reset after the data the kernel had buffered).
    let server = Server::start(&[]);
    let token = user_token(&server, "talker");

    // The stalled client: a small receive buffer (no window autotuning);
    // it reads the response head and then nothing.
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .connect_timeout(&server.addr.into(), Duration::from_secs(5))
        .unwrap();
    let stalled_stream: TcpStream = socket.into();
    let mut stalled = EventStream::start(
        Client::from_stream(stalled_stream),
        stream_req(&token, "").bytes(),
    );
    let mut normal = open_stream(&server, &token, "");
    let mut poster = server.connect();
    Req::get("/healthz").send_on(&mut poster).expect(200);
    let baseline = settled_fds(&server);

    // The normal subscriber reads continuously in its own thread.
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<(ChatMessage, Instant)>();
    let reader = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match normal.poll_next(Instant::now() + Duration::from_millis(100)) {
                    Ok(Next::Item(_, SseItem::Comment(_))) | Ok(Next::TimedOut) => {}
                    Ok(Next::Item(_, SseItem::Event(ev))) if ev.is_retry_only() => {}
                    Ok(Next::Item(t, SseItem::Event(ev))) => {
                        if tx.send((event_message(&ev), t)).is_err() {
                            return;
                        }
                    }
                    Ok(Next::Ended(how)) => {
                        panic!("the normal stream ended ({how:?})\n{}", normal.context())
                    }
                    Err(e) => panic!("normal stream: {e}"),
                }
            }
        })
    };

    // ~8 KB of event per message (2000 four-byte characters); post until
    // the server has dropped the stalled subscriber (its connection closes:
    // one fd fewer), within a bound.
    const MAX_MESSAGES: usize = 3000;
    let time_cap = Instant::now() + Duration::from_secs(15);
    let mut posted: Vec<(ChatMessage, Instant)> = Vec::new();
    let mut dropped = false;
    let post_started = Instant::now();
    while posted.len() < MAX_MESSAGES && Instant::now() < time_cap {
        let text = format!("{:04}{}", posted.len(), "😀".repeat(MAX_TEXT_CHARS - 4));
        let m = send_message_on(&mut poster, &token, &text);
        posted.push((m, Instant::now()));
        if server.open_fds() < baseline {
            dropped = true;
            break;
        }
    }
    let posting_took = post_started.elapsed();
    // A few more after the drop: the others are still served.
    for i in 0..5 {
        let m = send_message_on(&mut poster, &token, &format!("after the drop {i}"));
        posted.push((m, Instant::now()));
    }

    // The normal stream received every message, in order, promptly.
    let mut lags = Vec::with_capacity(posted.len());
    for (i, (m, sent)) in posted.iter().enumerate() {
        let (got, at) = match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(x) => x,
            Err(_) => {
                stop.store(true, Ordering::Relaxed);
                if let Err(e) = reader.join() {
                    std::panic::resume_unwind(e);
                }
                panic!(
                    "the normal stream received only {i} of {} messages",
                    posted.len()
                );
            }
        };
        assert_eq!(got, *m, "normal stream, message #{i}");
        lags.push(at.saturating_duration_since(*sent));
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().expect("normal stream reader");
    let worst = lags.iter().max().copied().unwrap_or_default();
    assert!(
        worst <= Duration::from_secs(2),
        "the normal stream was delayed by up to {worst:?} while another subscriber stalled"
    );

    let bytes_per_event = posted[0].0.text.len();
    assert!(
        dropped,
        "the stalled subscriber was not dropped after {} messages of ~{bytes_per_event} bytes \
         (~{} MiB of unsent output) in {posting_took:?}: its connection is still open \
         (server fds {} vs {baseline} before)",
        posted.len(),
        posted.len() * bytes_per_event / (1 << 20),
        server.open_fds()
    );

    // The stalled connection: what the kernel had buffered, then EOF/reset,
    // within a few seconds. What arrived is a prefix of the messages, in
    // order, and not all of them (the rest was dropped).
    let read_started = Instant::now();
    let result = stalled.read_to_end(read_started + Duration::from_secs(5));
    let (items, ending) = result.unwrap_or_else(|e| {
        panic!("the stalled connection did not end within 5 s of reading it: {e}")
    });
    let received: Vec<ChatMessage> = items
        .iter()
        .filter_map(|i| match i {
            SseItem::Event(ev) if !ev.is_retry_only() => Some(event_message(ev)),
            _ => None,
        })
        .collect();
    let expected: Vec<ChatMessage> = posted.iter().map(|(m, _)| m.clone()).collect();
    assert!(
        received.len() < expected.len(),
        "the stalled subscriber got all {} messages: it was never dropped",
        expected.len()
    );
    assert_eq!(
        received[..],
        expected[..received.len()],
        "the stalled stream is a prefix of the messages, in order"
    );
    eprintln!(
        "stalled subscriber dropped after {} messages ({posting_took:?}); it had {} messages \
         in kernel buffers, then {ending:?}; worst lag of the normal stream {worst:?}",
        posted.len() - 5,
        received.len()
    );
    Req::get("/healthz").send_on(&mut poster).expect(200);
}

#[test]
fn disconnected_subscribers_are_removed() {
    if skip_on_postgres("it counts the server's fds; PostgreSQL's pool adds some meanwhile") {
        return;
    }
    // Clients that close (FIN) or reset (RST) their stream are removed: the
    // server stays healthy, their connections are closed, and later
    // streams work.
    let mut server = Server::start(&[]);
    let token = user_token(&server, "comer_goer");
    let baseline = settled_fds(&server);

    let streams: Vec<EventStream> = (0..20).map(|_| open_stream(&server, &token, "")).collect();
    wait_fds(&server, Duration::from_secs(3), |n| n >= baseline + 20).unwrap_or_else(|n| {
        panic!("20 open streams but the server has {n} fds ({baseline} before)")
    });
    for (i, s) in streams.into_iter().enumerate() {
        if i % 2 == 1 {
            // SO_LINGER 0: close() sends a reset.
            SockRef::from(&s.client.stream)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
        drop(s);
    }
    let m1 = send_message(&server, &token, "to nobody 1");
    let m2 = send_message(&server, &token, "to nobody 2");
    server.assert_running();
    Req::get("/healthz").send(&server).expect(200);
    wait_fds(&server, Duration::from_secs(3), |n| n <= baseline).unwrap_or_else(|n| {
        panic!("the closed streams' connections were not closed: {n} fds, {baseline} before")
    });

    // A following stream works: replay, then live.
    let mut s = open_stream(&server, &token, &format!("?after={}", m1.id - 1));
    assert_eq!(s.next_messages(2, Duration::from_secs(3)), vec![m1, m2]);
    let m3 = send_message(&server, &token, "to someone");
    assert_eq!(s.next_message(Duration::from_secs(3)), m3);
    server.assert_running();
}
