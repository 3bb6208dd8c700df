//! The ceiling: a mio server that does nothing an HTTP server must do. It accepts, reads, and
//! for every `\r\n\r\n` it sees writes one fixed response, with no parsing, routing, files or
//! timers. What it costs per request is the syscalls and the loop alone, so looplight's
//! distance from it (benches/load/compare.sh runs both under one load) is the cost of
//! looplight's own request path.
//!
//! The fixed response is the one looplight sends for `www/hello.txt`, with the same header
//! fields and the same length (270 bytes), so that the kernel and the load generator do the
//! same work for both servers. With a shorter response (69 bytes, as this server first had)
//! wrk parses a quarter of the bytes per response, and on a pipelined load it is wrk, not
//! the server, that then sets the rate: the ratio measured the client.
//!
//!     cargo bench --bench ceiling -- --serve 127.0.0.1:18182
//!
//! Without `--serve` it exits at once (so a plain `cargo bench` does not hang on it).

use std::io::{ErrorKind, Read, Write};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: looplight\r\n\
Date: Thu, 03 Dec 2026 00:18:36 GMT\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Last-Modified: Wed, 02 Dec 2026 12:56:22 GMT\r\n\
Accept-Ranges: bytes\r\n\
ETag: \"6b101576.13066088-c\"\r\n\
Cache-Control: no-cache\r\n\
Content-Length: 12\r\n\
\r\n\
Hello, world";
const LISTENER: Token = Token(usize::MAX);

/// A connection: its socket, the tail of a request head split across reads (up to 3 bytes of
/// a possible `\r\n\r\n`), and responses not written yet.
struct Client {
    socket: TcpStream,
    tail: Vec<u8>,
    unsent: Vec<u8>,
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let Some(addr) = args
        .iter()
        .position(|arg| arg == "--serve")
        .and_then(|i| args.get(i + 1))
    else {
        println!("ceiling: a baseline server for load tests; run with --serve ADDR");
        return Ok(());
    };
    let mut listener = TcpListener::bind(addr.parse().map_err(std::io::Error::other)?)?;
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut clients: Slab<Client> = Slab::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        poll.poll(&mut events, None)?;
        for event in &events {
            if event.token() == LISTENER {
                while let Ok((mut socket, _)) = listener.accept() {
                    // As looplight does: responses go out when written, not after an ACK.
                    socket.set_nodelay(true)?;
                    let entry = clients.vacant_entry();
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    poll.registry()
                        .register(&mut socket, Token(entry.key()), interest)?;
                    let (tail, unsent) = (Vec::new(), Vec::new());
                    entry.insert(Client {
                        socket,
                        tail,
                        unsent,
                    });
                }
                continue;
            }
            let key = event.token().0;
            let Some(client) = clients.get_mut(key) else {
                continue;
            };
            if !serve(client, &mut buf) {
                let mut gone = clients.remove(key);
                poll.registry().deregister(&mut gone.socket)?;
            }
        }
    }
}

/// Reads what is there, answers every complete head, writes what it can; false once closed.
fn serve(client: &mut Client, buf: &mut [u8]) -> bool {
    loop {
        match client.socket.read(buf) {
            Ok(0) => return false,
            Ok(n) => {
                client.tail.extend_from_slice(&buf[..n]);
                let heads = client.tail.windows(4).filter(|w| w == b"\r\n\r\n").count();
                let keep = client.tail.len().saturating_sub(3);
                client.tail.drain(..keep);
                for _ in 0..heads {
                    client.unsent.extend_from_slice(RESPONSE);
                }
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => break,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    while !client.unsent.is_empty() {
        match client.socket.write(&client.unsent) {
            Ok(n) => {
                client.unsent.drain(..n);
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => break,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    true
}
