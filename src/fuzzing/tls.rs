//! Fuzz target `tls`: arbitrary bytes at the TLS port, through the code path the server runs
//! for every TLS connection: `server::conn::Conn` over `Transport::tls` (a rustls
//! `ServerConnection` with the server's own configuration and a generated certificate),
//! driven as the loop drives it, on readiness events from a real poller.
//!
//! The socket is one end of a Unix stream socket pair, held as the `TcpStream` the transport
//! takes: every call the transport makes (read, write, peek, shutdown) behaves the same on
//! it, and a pair per input costs no port and leaves no TIME_WAIT behind, where a loopback
//! TCP pair per input would exhaust the ephemeral ports within minutes.
//!
//! Input: one byte seeds how the rest is split into writes ([`super::cuts`]); the rest is what
//! the client sends, then it closes its side.
//!
//! Properties:
//! 1. Never a panic: whatever arrives, the connection answers, errs or closes.
//! 2. What the server sends is well framed: TLS records (type 20 to 23, version 3.x, at most
//!    2^14 + 2048 bytes each; complete unless the connection closed mid-write), or, if the
//!    client's first byte was an uppercase letter (plain HTTP at the TLS port), one plain
//!    HTTP/1.1 400 response and nothing else.
//! 3. It ends: once the client has closed, the connection closes within a few turns.

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token, Waker};
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use rustls::{ServerConfig, ServerConnection};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::config::Config;
use crate::router::App;
use crate::server::Shared;
use crate::server::conn::{Conn, ConnId, Flow};
use crate::server::tls::{generate_localhost_certificate, server_config};
use crate::server::transport::Transport;

const SOCKET: Token = Token(1);
/// Turns after the client's close before the connection must have closed.
const CLOSING_TURNS: usize = 8;
/// The largest TLS record (RFC 8446 §5.2: TLSCiphertext is at most 2^14 + 256 bytes; TLS 1.2
/// allows 2^14 + 2048).
const MAX_RECORD: usize = (1 << 14) + 2048;
/// What the server answers a plain-HTTP client with.
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\n";

pub fn run(data: &[u8]) {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    RIG.with(|rig| rig.borrow_mut().connect_and_send(input, seed));
}

thread_local! {
    static RIG: std::cell::RefCell<Rig> = std::cell::RefCell::new(Rig::new());
}

/// What the loop lends its connections, built once: the app, settings, a helper pool, the
/// poller, and the server's TLS configuration with a certificate generated for the run.
struct Rig {
    shared: Shared,
    poll: Poll,
    events: Events,
    config: Arc<ServerConfig>,
    connections: u64,
}

impl Rig {
    fn new() -> Rig {
        let poll = Poll::new().expect("a poller");
        let waker = Arc::new(Waker::new(poll.registry(), Token(0)).expect("a waker"));
        let (cert_pem, key) = generate_localhost_certificate().expect("a certificate");
        let cert = rustls_pki_types::pem::PemObject::from_pem_slice(cert_pem.as_bytes())
            .map(|cert: CertificateDer<'_>| cert.into_owned())
            .expect("the certificate's DER");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let config = Arc::new(server_config(vec![cert], key).expect("a TLS configuration"));
        let mut settings = Config::defaults();
        settings.quiet = true;
        Rig {
            shared: Shared::new(App::new(), settings, waker).expect("the loop's shared parts"),
            poll,
            events: Events::with_capacity(8),
            config,
            connections: 0,
        }
    }

    fn connect_and_send(&mut self, input: &[u8], seed: u8) {
        let (server_end, client_end) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            None,
        )
        .expect("a socket pair");
        let mut socket = mio::net::TcpStream::from_std(std::net::TcpStream::from(server_end));
        let mut client = UnixStream::from(client_end);
        self.poll
            .registry()
            .register(&mut socket, SOCKET, Interest::READABLE | Interest::WRITABLE)
            .expect("registering the socket");
        let session = ServerConnection::new(Arc::clone(&self.config)).expect("a TLS session");
        self.connections += 1;
        let id = ConnId {
            slot: 1,
            serial: self.connections,
        };
        let peer = SocketAddr::from(([127, 0, 0, 1], 40000));
        let mut conn = Conn::new(Transport::tls(socket, session), peer, id, Instant::now());

        let mut received = Vec::new();
        let mut closed = false;
        for piece in super::pieces(input, &super::cuts(seed, input.len())) {
            if closed {
                break;
            }
            // The client gives up on a write the server does not take (a full socket).
            if client.write_all(piece).is_err() {
                break;
            }
            closed = self.turn(&mut conn);
            read_available(&mut client, &mut received);
        }
        if !closed {
            let _ = client.shutdown(std::net::Shutdown::Write);
            for _ in 0..CLOSING_TURNS {
                closed = self.turn(&mut conn);
                read_available(&mut client, &mut received);
                if closed {
                    break;
                }
            }
            assert!(closed, "the connection outlived its client");
        }
        let _ = self.poll.registry().deregister(conn.transport.socket_mut());
        conn.recycle(&mut self.shared.buffers);
        read_available(&mut client, &mut received);
        check_output(input.first().copied(), &received);
    }

    /// One turn of the loop: readiness events, then the connection driven until it waits.
    /// Returns whether it closed.
    fn turn(&mut self, conn: &mut Conn) -> bool {
        match self.poll.poll(&mut self.events, Some(Duration::ZERO)) {
            Ok(()) => {}
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => panic!("poll: {error}"),
        }
        for event in self.events.iter() {
            if event.token() == SOCKET {
                conn.on_event(event);
            }
        }
        let mut ctx = self.shared.ctx(Instant::now());
        for _ in 0..64 {
            match conn.drive(&mut ctx) {
                Flow::Yield => continue,
                Flow::Open => return false,
                Flow::Close => return true,
            }
        }
        panic!("the connection yielded 64 times in a row on a finite input");
    }
}

/// Reads what the server sent so far, without waiting.
fn read_available(client: &mut UnixStream, received: &mut Vec<u8>) {
    let mut buf = [0; 16 * 1024];
    loop {
        match client.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Property 2.
fn check_output(first_byte: Option<u8>, received: &[u8]) {
    if first_byte.is_some_and(|b| b.is_ascii_uppercase()) {
        assert!(
            received.is_empty() || received.starts_with(PLAIN_HTTP_ANSWER),
            "plain HTTP got {:?}",
            String::from_utf8_lossy(&received[..received.len().min(200)])
        );
        if received.is_empty() {
            return;
        }
        let head_end = received
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a complete head")
            + 4;
        let head = std::str::from_utf8(&received[..head_end]).expect("an ASCII head");
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("Content-Length: "))
            .and_then(|value| value.parse().ok())
            .expect("a Content-Length");
        assert!(head.contains("Connection: close\r\n"), "{head}");
        assert_eq!(received.len(), head_end + length, "bytes after the answer");
        return;
    }
    let mut rest = received;
    while !rest.is_empty() {
        let [content_type, major, minor, high, low, ..] = *rest else {
            panic!("a record header cut short: {rest:?}");
        };
        assert!(
            (20..=23).contains(&content_type),
            "record type {content_type}"
        );
        assert!(major == 3 && minor <= 4, "record version {major}.{minor}");
        let len = usize::from(u16::from_be_bytes([high, low]));
        assert!(len <= MAX_RECORD, "a record of {len} bytes");
        assert!(rest.len() >= 5 + len, "a record cut short");
        rest = &rest[5 + len..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hellos_garbage_and_plain_http_each_end_cleanly() {
        run(b"\x00");
        run(b"\x00GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        run(b"\x03\x16\x03\x01\x00\x05hello");
        run(b"\x01\x16\x03\x01\xff\xff");
        run(&[0u8; 300]);
    }
}
