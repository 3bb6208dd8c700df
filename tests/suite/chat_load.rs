//! Group chat at scale and in isolation: 1,000 concurrent event streams on
//! the one event-loop thread all get a new message; a subscriber that stops
//! reading is dropped once its unsent output passes the server's bound
//! (256 KiB beyond the kernel buffers) without delaying anyone else; and
//! subscribers that disconnect are removed. Loopback only, every wait
//! bounded, nothing timed (how long a fan-out takes: benches/load/
//! sse_fanout.py).

use std::net::{SocketAddr, TcpStream};
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

/// Generous deadline for a message to reach a stream (to give up, not a
/// measurement).
const PROMPT: Duration = Duration::from_secs(10);

#[test]
fn a_thousand_streams_all_receive_a_new_message() {
    const STREAMS: usize = 1000;
    ensure_open_files(STREAMS as u64);
    let server = Server::start(&[]);
    let token = user_token(&server, "crowd");
    let req = stream_req(&token, "");

    let mut streams: Vec<EventStream> = (0..STREAMS)
        .map(|_| EventStream::open(&server, &req))
        .collect();
    for s in &streams {
        s.set_nonblocking(true);
    }

    let m = send_message(&server, &token, "hello, everyone");
    let deadline = Instant::now() + PATIENCE;
    let mut got: Vec<Option<ChatMessage>> = vec![None; STREAMS];
    let mut missing = STREAMS;
    while missing > 0 && Instant::now() < deadline {
        let mut progress = false;
        for (i, s) in streams.iter_mut().enumerate() {
            if got[i].is_some() {
                continue;
            }
            progress |= s.pump().unwrap_or_else(|e| panic!("stream #{i}: {e}"));
            while let Some(item) = s.pop_item() {
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
            thread::sleep(Duration::from_millis(2)); // poll interval
        }
    }
    assert_eq!(
        missing,
        0,
        "{missing} of {STREAMS} streams did not receive the message within {PATIENCE:?}; first: {}",
        streams[got.iter().position(Option::is_none).unwrap_or(0)].context()
    );
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.as_ref(), Some(&m), "stream #{i}");
    }

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
    // stream receives each message before the next one is even posted,
    // while the stalled one's unsent output grows; past the bound the server
    // drops the stalled subscriber and closes its connection (which then
    // ends with EOF or a reset after the data the kernel had buffered).
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
    let stalled_addr = stalled.client.stream.local_addr().unwrap();
    let mut normal = open_stream(&server, &token, "");
    let mut poster = server.connect();
    Req::get("/healthz").send_on(&mut poster).expect(200);
    server_holds(server.addr, stalled_addr)
        .unwrap_or_else(|e| panic!("premise: the stalled stream is open: {e}"));

    // ~8 KB of event per message (2000 four-byte characters); post until
    // the server has dropped the stalled subscriber (it let go of the
    // connection), within a bound. Each message must reach the normal
    // stream before the next is posted: a loop held up by the stalled
    // client would not deliver it.
    const MAX_MESSAGES: usize = 3000;
    let give_up = Instant::now() + Duration::from_secs(60);
    let mut posted: Vec<ChatMessage> = Vec::new();
    let mut dropped = false;
    while posted.len() < MAX_MESSAGES && Instant::now() < give_up {
        let text = format!("{:04}{}", posted.len(), "😀".repeat(MAX_TEXT_CHARS - 4));
        let m = send_message_on(&mut poster, &token, &text);
        assert_eq!(
            normal.next_message(PROMPT),
            m,
            "normal stream, message #{} (posted while the other subscriber stalled)",
            posted.len()
        );
        posted.push(m);
        if server_released(server.addr, stalled_addr).is_ok() {
            dropped = true;
            break;
        }
    }
    // A few more after the drop: the others are still served.
    for i in 0..5 {
        let m = send_message_on(&mut poster, &token, &format!("after the drop {i}"));
        assert_eq!(
            normal.next_message(PROMPT),
            m,
            "normal stream after the drop"
        );
        posted.push(m);
    }

    let bytes_per_event = posted[0].text.len();
    assert!(
        dropped,
        "the stalled subscriber was not dropped after {} messages of ~{bytes_per_event} bytes \
         (~{} MiB of unsent output): its connection is still open ({:?})",
        posted.len(),
        posted.len() * bytes_per_event / (1 << 20),
        server_end_of(server.addr, stalled_addr)
    );

    // The stalled connection: what the kernel had buffered, then EOF/reset.
    // What arrived is a prefix of the messages, in order, and not all of
    // them (the rest was dropped).
    let result = stalled.read_to_end(Instant::now() + PATIENCE);
    let (items, _ending) =
        result.unwrap_or_else(|e| panic!("the stalled connection did not end once read: {e}"));
    let received: Vec<ChatMessage> = items
        .iter()
        .filter_map(|i| match i {
            SseItem::Event(ev) if !ev.is_retry_only() => Some(event_message(ev)),
            _ => None,
        })
        .collect();
    assert!(
        received.len() < posted.len(),
        "the stalled subscriber got all {} messages: it was never dropped",
        posted.len()
    );
    assert_eq!(
        received[..],
        posted[..received.len()],
        "the stalled stream is a prefix of the messages, in order"
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

    let streams: Vec<EventStream> = (0..20).map(|_| open_stream(&server, &token, "")).collect();
    let addrs: Vec<SocketAddr> = streams
        .iter()
        .map(|s| s.client.stream.local_addr().unwrap())
        .collect();
    let table = TcpTable::read();
    for a in &addrs {
        table
            .server_holds(server.addr, *a)
            .unwrap_or_else(|e| panic!("premise: an open stream: {e}"));
    }
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
    // The server closed its end of every one of them.
    wait_for(
        "the server to close the disconnected streams' connections",
        PATIENCE,
        || {
            let table = TcpTable::read();
            addrs
                .iter()
                .try_for_each(|a| table.server_released(server.addr, *a))
        },
    );

    // A following stream works: replay, then live.
    let mut s = open_stream(&server, &token, &format!("?after={}", m1.id - 1));
    assert_eq!(s.next_messages(2, PROMPT), vec![m1, m2]);
    let m3 = send_message(&server, &token, "to someone");
    assert_eq!(s.next_message(PROMPT), m3);
    server.assert_running();
}
