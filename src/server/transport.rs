//! The bytes of one connection on the wire: plain TCP, or TLS through rustls.
//!
//! [`Conn`](super::conn::Conn) reads and writes plaintext through a [`Transport`] and never
//! needs to know which kind it has, with two exceptions it asks about: TLS keeps encrypted
//! records of its own that must reach the socket ([`Transport::has_pending`],
//! [`Transport::send_pending`]), and a plain-HTTP client on the TLS port is told so in plain
//! HTTP ([`is_plain_http`], [`Transport::drop_tls`]).
//!
//! TLS, step by step, all non-blocking:
//! - **read**: plaintext rustls already decrypted first; then `read_tls` (one socket read) and
//!   `process_new_packets` (decrypt, or run the handshake, which queues records to send), until
//!   the caller's buffer is full or a socket read comes back short (or `WouldBlock`). A short
//!   read of plaintext therefore still means "the socket is drained", as it does for plain TCP,
//!   and the connection skips the read that would only say `WouldBlock`.
//! - **write**: plaintext is encrypted into rustls's record buffer (at most 64 KiB, its default
//!   limit) without touching the socket; `send_pending` then writes the records with one
//!   writev. The connection calls `send_pending` before every write, so the buffer never holds
//!   more than one write's worth.
//! - **files**: no sendfile through TLS; the file is read at its offset and encrypted, a buffer
//!   limit's worth at a time.
//! - **close**: a close_notify alert is queued and sent before the socket's write side shuts.

use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::os::unix::fs::FileExt;

use mio::net::TcpStream;
use rustix::net::SendFlags;
use rustls::ServerConnection;

use crate::http::buffers::BufferPool;

/// Most bytes one sendfile call is asked to move.
const SENDFILE_CHUNK: usize = 1024 * 1024;
/// Most file bytes encrypted per call: rustls's default limit on unsent records.
const TLS_FILE_CHUNK: usize = 64 * 1024;
/// The first byte of every TLS handshake record (content type 22).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// A connection's socket, with or without TLS.
#[derive(Debug)]
pub struct Transport {
    socket: TcpStream,
    /// `None` for plain TCP.
    tls: Option<Box<TlsSession>>,
}

/// The rustls session of a TLS connection, and what we know of its ends.
#[derive(Debug)]
struct TlsSession {
    session: ServerConnection,
    /// The client's first byte was looked at (a TLS record, or plain HTTP?).
    first_byte_checked: bool,
    /// The peer sent close_notify, or closed TCP: no plaintext will follow what is buffered.
    peer_closed: bool,
    close_notify_queued: bool,
}

/// The error a TLS read reports when the client speaks plain HTTP (see [`is_plain_http`]).
#[derive(Debug)]
struct PlainHttpOnTlsPort;

impl std::fmt::Display for PlainHttpOnTlsPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("plain HTTP on the TLS port")
    }
}

impl std::error::Error for PlainHttpOnTlsPort {}

/// Whether a read failed because the client sent plain HTTP to the TLS port. The request is
/// still unread in the socket: the connection can answer it in plain HTTP after
/// [`Transport::drop_tls`].
pub fn is_plain_http(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<PlainHttpOnTlsPort>())
}

impl Transport {
    /// A plain TCP transport.
    pub fn plain(socket: TcpStream) -> Transport {
        Transport { socket, tls: None }
    }

    /// A TLS transport for a socket just accepted on the TLS listener.
    pub fn tls(socket: TcpStream, session: ServerConnection) -> Transport {
        let tls = TlsSession {
            session,
            first_byte_checked: false,
            peer_closed: false,
            close_notify_queued: false,
        };
        Transport {
            socket,
            tls: Some(Box::new(tls)),
        }
    }

    /// The socket, to register with the poller.
    pub fn socket_mut(&mut self) -> &mut TcpStream {
        &mut self.socket
    }

    /// Whether the bytes are encrypted (requests arrived over TLS).
    pub fn is_secure(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether a TLS handshake is still going on.
    pub fn is_handshaking(&self) -> bool {
        self.tls
            .as_ref()
            .is_some_and(|tls| tls.session.is_handshaking())
    }

    /// Goes on in plain TCP: for answering a plain-HTTP client on the TLS port.
    pub fn drop_tls(&mut self) {
        self.tls = None;
    }

    /// TLS saw the end of the input but the last read still returned data: read once more
    /// to get the end reported (a plain socket reports it itself).
    pub fn eof_pending(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.peer_closed)
    }

    /// Encrypted records are waiting for the socket.
    pub fn has_pending(&self) -> bool {
        self.tls
            .as_ref()
            .is_some_and(|tls| tls.session.wants_write())
    }

    /// Writes the waiting TLS records. Returns the bytes written (0 if none were waiting);
    /// `WouldBlock` if the socket was full before any went out.
    pub fn send_pending(&mut self) -> io::Result<usize> {
        let Some(tls) = &mut self.tls else {
            return Ok(0);
        };
        let mut sent = 0;
        while tls.session.wants_write() {
            match tls.session.write_tls(&mut self.socket) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => sent += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock && sent > 0 => {
                    return Ok(sent);
                }
                Err(error) => return Err(error),
            }
        }
        Ok(sent)
    }

    /// Writes the bytes that come before a file body: with MSG_MORE on plain TCP, so the head
    /// shares a segment with the first file bytes.
    pub fn write_before_file(&mut self, head: &[u8]) -> io::Result<usize> {
        match &mut self.tls {
            None => rustix::net::send(&self.socket, head, SendFlags::MORE).map_err(io::Error::from),
            Some(tls) => tls.write_plaintext(&mut self.socket, &[IoSlice::new(head)]),
        }
    }

    /// Sends up to `len` bytes of `file` from `offset`. 0 means the file ended early. TLS
    /// reads the bytes through `buffers`' scratch buffer.
    pub fn send_file(
        &mut self,
        file: &File,
        mut offset: u64,
        len: usize,
        buffers: &mut BufferPool,
    ) -> io::Result<usize> {
        match &mut self.tls {
            // The kernel copies file pages to the socket: no read into user space.
            None => rustix::fs::sendfile(
                &self.socket,
                file,
                Some(&mut offset),
                len.min(SENDFILE_CHUNK),
            )
            .map_err(io::Error::from),
            Some(tls) => {
                let chunk = buffers.scratch(len.min(TLS_FILE_CHUNK));
                let read = file.read_at(chunk, offset)?;
                if read == 0 {
                    return Ok(0);
                }
                tls.write_plaintext(&mut self.socket, &[IoSlice::new(&chunk[..read])])
            }
        }
    }

    /// Before a close without a lingering phase (timeout, error): TLS tells the peer the
    /// end is deliberate (close_notify) if the socket takes it at once. Nothing else to do
    /// for plain TCP.
    pub fn say_goodbye(&mut self) {
        if let Some(tls) = &mut self.tls
            && !tls.close_notify_queued
        {
            tls.session.send_close_notify();
            tls.close_notify_queued = true;
            let _ = self.send_pending();
        }
    }

    /// Ends our side of the connection: close_notify (TLS), then FIN. `WouldBlock` if the
    /// alert is still waiting for the socket; call again once it is sent.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        if let Some(tls) = &mut self.tls
            && !tls.close_notify_queued
        {
            tls.session.send_close_notify();
            tls.close_notify_queued = true;
        }
        self.send_pending()?;
        if self.has_pending() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.socket.shutdown(Shutdown::Write)
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.tls {
            None => self.socket.read(buf),
            Some(tls) => tls.read_plaintext(&mut self.socket, buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.tls {
            None => self.socket.write(buf),
            Some(tls) => tls.write_plaintext(&mut self.socket, &[IoSlice::new(buf)]),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match &mut self.tls {
            None => self.socket.write_vectored(bufs),
            Some(tls) => tls.write_plaintext(&mut self.socket, bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The socket as rustls reads it, noting whether a read returned less than it asked for.
struct ShortReadProbe<'a> {
    socket: &'a mut TcpStream,
    short: bool,
}

impl Read for ShortReadProbe<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.socket.read(buf)?;
        self.short = n > 0 && n < buf.len();
        Ok(n)
    }
}

impl TlsSession {
    /// Fills `buf` with decrypted bytes, reading the socket until `buf` is full or the socket
    /// has nothing more. `Ok(0)` is the end of the stream; `WouldBlock` means no plaintext yet
    /// (maybe the handshake moved on and has records to send).
    fn read_plaintext(&mut self, socket: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        let mut socket_drained = false;
        loop {
            filled += self.take_plaintext(&mut buf[filled..])?;
            // A short socket read drained it, as for plain TCP: the read that would only say
            // WouldBlock is skipped (a syscall per request).
            if filled == buf.len() || self.peer_closed || (socket_drained && filled > 0) {
                return Ok(filled);
            }
            if !self.first_byte_checked {
                Self::check_first_byte(socket)?;
                self.first_byte_checked = true;
            }
            let mut probe = ShortReadProbe {
                socket: &mut *socket,
                short: false,
            };
            let read = self.session.read_tls(&mut probe);
            socket_drained = probe.short;
            match read {
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock && filled > 0 => {
                    return Ok(filled);
                }
                Err(error) => return Err(error),
            }
            if let Err(error) = self.session.process_new_packets() {
                // rustls queued an alert saying why; send it if the socket takes it now. The
                // connection is over either way.
                let _ = self.session.write_tls(socket);
                return Err(io::Error::new(io::ErrorKind::InvalidData, error));
            }
        }
    }

    /// Moves already decrypted bytes into `buf`; notes the end of the stream.
    fn take_plaintext(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.session.reader().read(buf) {
            // close_notify received: a clean end.
            Ok(0) => {
                self.peer_closed = true;
                Ok(0)
            }
            Ok(n) => Ok(n),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(0),
            // TCP closed without close_notify. HTTP framing tells whether a message was cut
            // short, so this is an ordinary end of input here.
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                self.peer_closed = true;
                Ok(0)
            }
            Err(error) => Err(error),
        }
    }

    /// A TLS client starts with a handshake record; a plain HTTP client with a method name.
    fn check_first_byte(socket: &TcpStream) -> io::Result<()> {
        let mut first = [0; 1];
        match socket.peek(&mut first) {
            Ok(0) => Ok(()), // EOF: read_tls will see it
            Ok(_) => {
                if first[0] != TLS_HANDSHAKE_RECORD && first[0].is_ascii_uppercase() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        PlainHttpOnTlsPort,
                    ));
                }
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Encrypts as much of `bufs` as the record buffer takes. Records still waiting from an
    /// earlier write go out first; if they cannot, nothing more is taken (`WouldBlock`).
    fn write_plaintext(
        &mut self,
        socket: &mut TcpStream,
        bufs: &[IoSlice<'_>],
    ) -> io::Result<usize> {
        while self.session.wants_write() {
            match self.session.write_tls(socket) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        match self.session.writer().write_vectored(bufs)? {
            0 if bufs.iter().any(|buf| !buf.is_empty()) => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpStream as StdTcpStream;
    use std::thread;
    use std::time::Instant;

    use mio::{Events, Interest, Poll, Token};

    use super::*;
    use crate::server::test_support::{
        ClientStream, deadline, pattern, socket_pair, time_left, tls_client, tls_server_config,
    };

    /// The server's end of a loopback pair, driven as the loop drives it: each call goes on
    /// until `WouldBlock`, and only then waits for readiness (edge-triggered), until a deadline.
    struct ServerEnd {
        transport: Transport,
        buffers: BufferPool,
        poll: Poll,
        events: Events,
        deadline: Instant,
    }

    impl ServerEnd {
        fn new(mut transport: Transport) -> ServerEnd {
            let poll = Poll::new().unwrap();
            poll.registry()
                .register(
                    transport.socket_mut(),
                    Token(0),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .unwrap();
            ServerEnd {
                transport,
                buffers: BufferPool::default(),
                poll,
                events: Events::with_capacity(4),
                deadline: deadline(),
            }
        }

        /// Waits for the socket to change. Callers retry every operation after it.
        fn wait(&mut self, waiting_for: &str) {
            let left = time_left(self.deadline, waiting_for);
            match self.poll.poll(&mut self.events, Some(left)) {
                Err(error) if error.kind() != io::ErrorKind::Interrupted => panic!("{error}"),
                _ => {}
            }
        }

        /// The next bytes that arrive (empty at the end of the stream). TLS records the read
        /// queued (the handshake) are sent while waiting.
        fn read_some(&mut self) -> io::Result<Vec<u8>> {
            let mut buf = vec![0; 16 * 1024];
            loop {
                match self.transport.read(&mut buf) {
                    Ok(n) => return Ok(buf[..n].to_vec()),
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                    Err(error) => return Err(error),
                }
                match self.transport.send_pending() {
                    Ok(0) => {}
                    Ok(_) => continue,
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                    Err(error) => return Err(error),
                }
                self.wait("input");
            }
        }

        fn read_exact(&mut self, len: usize) -> Vec<u8> {
            let mut got = Vec::new();
            while got.len() < len {
                let chunk = self.read_some().unwrap();
                assert!(!chunk.is_empty(), "EOF after {} of {len} bytes", got.len());
                got.extend_from_slice(&chunk);
            }
            assert_eq!(got.len(), len, "more bytes than were sent");
            got
        }

        /// Repeats `op` until the socket takes it.
        fn retry<T>(&mut self, mut op: impl FnMut(&mut Self) -> io::Result<T>) -> T {
            loop {
                match op(self) {
                    Ok(value) => return value,
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                        self.wait("room to write")
                    }
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => panic!("{error}"),
                }
            }
        }

        /// Sends the TLS records still waiting.
        fn flush(&mut self) {
            while self.transport.has_pending() {
                self.retry(|end| end.transport.send_pending());
            }
        }

        fn write_all(&mut self, mut bytes: &[u8]) {
            while !bytes.is_empty() {
                let n = self.retry(|end| end.transport.write(bytes));
                assert_ne!(n, 0, "the socket took nothing");
                bytes = &bytes[n..];
            }
            self.flush();
        }

        /// Sends `len` bytes of `file` from `offset`, or up to its end; returns what was sent.
        fn send_file_all(&mut self, file: &File, offset: u64, len: usize) -> usize {
            let mut sent = 0;
            while sent < len {
                let n = self.retry(|end| {
                    end.transport.send_file(
                        file,
                        offset + sent as u64,
                        len - sent,
                        &mut end.buffers,
                    )
                });
                if n == 0 {
                    break;
                }
                sent += n;
            }
            self.flush();
            sent
        }

        fn shutdown_write(&mut self) {
            self.retry(|end| end.transport.shutdown_write());
        }
    }

    /// A connected pair: the server's end (plain, or TLS) and the client's blocking stream.
    fn connect(secure: bool) -> (ServerEnd, Box<dyn ClientStream>) {
        let (server, client) = socket_pair();
        if secure {
            let session = ServerConnection::new(tls_server_config()).unwrap();
            let server = ServerEnd::new(Transport::tls(server, session));
            (server, Box::new(tls_client(client)))
        } else {
            (ServerEnd::new(Transport::plain(server)), Box::new(client))
        }
    }

    fn kind(secure: bool) -> &'static str {
        if secure { "TLS" } else { "plain" }
    }

    /// Reads until the end of the stream. Over TLS that is a close_notify alert: a TCP close
    /// without one is an error.
    fn read_to_end(client: &mut dyn ClientStream) -> io::Result<Vec<u8>> {
        let mut got = Vec::new();
        client.read_to_end(&mut got)?;
        Ok(got)
    }

    /// Runs the client's side of a test on its own thread.
    fn spawn_client<T: Send + 'static>(
        mut client: Box<dyn ClientStream>,
        script: impl FnOnce(&mut dyn ClientStream) -> T + Send + 'static,
    ) -> thread::JoinHandle<T> {
        thread::spawn(move || script(&mut *client))
    }

    /// An unnamed temporary file holding `data`.
    fn temp_file(data: &[u8]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(data).unwrap();
        file
    }

    #[test]
    fn bytes_round_trip_both_ways_and_eof_reads_as_zero() {
        for secure in [false, true] {
            let (mut server, client) = connect(secure);
            let request = pattern(100_000, 1);
            let response = pattern(200_000, 2);
            let client = spawn_client(client, {
                let request = request.clone();
                move |client| {
                    client.write_all(&request).unwrap();
                    client.flush().unwrap();
                    read_to_end(client).unwrap()
                }
            });
            assert_eq!(
                server.read_exact(request.len()),
                request,
                "{}",
                kind(secure)
            );
            server.write_all(&response);
            server.shutdown_write();
            assert_eq!(client.join().unwrap(), response, "{}", kind(secure));
            // The client is gone: its end of the stream reads as 0 (over TLS without its
            // close_notify too: HTTP framing tells a cut-short message, not TLS).
            assert_eq!(server.read_some().unwrap(), b"", "{}", kind(secure));
        }
    }

    #[test]
    fn tls_handshake_negotiates_a_modern_version_and_http11() {
        let (server, client) = socket_pair();
        let session = ServerConnection::new(tls_server_config()).unwrap();
        let mut server = ServerEnd::new(Transport::tls(server, session));
        assert!(server.transport.is_secure());
        let client = thread::spawn(move || {
            let mut client = tls_client(client);
            while client.conn.is_handshaking() {
                client.conn.complete_io(&mut client.sock).unwrap();
            }
            client.write_all(b"ping").unwrap();
            let mut pong = [0; 4];
            client.read_exact(&mut pong).unwrap();
            (
                client.conn.protocol_version(),
                client.conn.alpn_protocol().map(<[u8]>::to_vec),
                pong,
            )
        });
        assert_eq!(server.read_exact(4), b"ping");
        server.write_all(b"pong");
        let (version, alpn, pong) = client.join().unwrap();
        assert_eq!(version, Some(rustls::ProtocolVersion::TLSv1_3));
        assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
        assert_eq!(&pong, b"pong");
    }

    #[test]
    fn nothing_to_read_is_would_block() {
        for secure in [false, true] {
            let (mut server, _client) = connect(secure);
            let error = server.transport.read(&mut [0; 64]).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::WouldBlock, "{}", kind(secure));
            assert!(!is_plain_http(&error));
        }
    }

    #[test]
    fn send_file_sends_exactly_the_range_asked_and_nothing_past_the_end() {
        // Larger than one TLS chunk, so TLS encrypts it in several steps.
        let data = pattern(300_000, 3);
        let file = temp_file(&data);
        let end = data.len() as u64;
        for secure in [false, true] {
            let (mut server, client) = connect(secure);
            let client = spawn_client(client, |client| {
                client.write_all(b"go").unwrap();
                client.flush().unwrap();
                read_to_end(client).unwrap()
            });
            assert_eq!(server.read_exact(2), b"go");
            assert_eq!(server.send_file_all(&file, 1_000, 150_000), 150_000);
            // Asked for more than is left: what is left; then nothing, not an error.
            assert_eq!(server.send_file_all(&file, end - 10, 100), 10);
            assert_eq!(server.send_file_all(&file, end, 100), 0);
            assert_eq!(server.send_file_all(&file, end + 5, 100), 0);
            server.shutdown_write();
            let mut expected = data[1_000..151_000].to_vec();
            expected.extend_from_slice(&data[data.len() - 10..]);
            let got = client.join().unwrap();
            assert_eq!(got.len(), expected.len(), "{}", kind(secure));
            assert!(got == expected, "{}: the bytes differ", kind(secure));
        }
    }

    #[test]
    fn the_head_written_before_a_file_arrives_before_the_file() {
        let data = pattern(70_000, 4);
        let file = temp_file(&data);
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n";
        for secure in [false, true] {
            let (mut server, client) = connect(secure);
            let client = spawn_client(client, |client| {
                client.write_all(b"go").unwrap();
                client.flush().unwrap();
                read_to_end(client).unwrap()
            });
            assert_eq!(server.read_exact(2), b"go");
            let mut rest = &head[..];
            while !rest.is_empty() {
                let n = server.retry(|end| end.transport.write_before_file(rest));
                assert_ne!(n, 0, "the socket took nothing");
                rest = &rest[n..];
            }
            assert_eq!(server.send_file_all(&file, 0, data.len()), data.len());
            server.shutdown_write();
            let got = client.join().unwrap();
            assert_eq!(&got[..head.len()], head, "{}", kind(secure));
            assert!(
                got[head.len()..] == data,
                "{}: file bytes differ",
                kind(secure)
            );
        }
    }

    #[test]
    fn shutdown_write_gives_the_peer_eof_and_leaves_reading_open() {
        for secure in [false, true] {
            let (mut server, client) = connect(secure);
            let client = spawn_client(client, |client| {
                client.write_all(b"go").unwrap();
                client.flush().unwrap();
                // Over TLS, Ok here means close_notify came before the FIN.
                let before_eof = read_to_end(client);
                client.write_all(b"still here").unwrap();
                client.flush().unwrap();
                before_eof.unwrap()
            });
            assert_eq!(server.read_exact(2), b"go");
            server.write_all(b"bye");
            server.shutdown_write();
            assert_eq!(server.read_exact(10), b"still here", "{}", kind(secure));
            assert_eq!(client.join().unwrap(), b"bye", "{}", kind(secure));
        }
    }

    #[test]
    fn say_goodbye_over_tls_sends_close_notify_before_the_socket_closes() {
        let (mut server, client) = connect(true);
        let client = spawn_client(client, |client| {
            client.write_all(b"go").unwrap();
            client.flush().unwrap();
            read_to_end(client)
        });
        assert_eq!(server.read_exact(2), b"go");
        server.write_all(b"bye");
        server.transport.say_goodbye();
        assert!(
            !server.transport.has_pending(),
            "the alert fits an empty socket"
        );
        drop(server);
        assert_eq!(client.join().unwrap().unwrap(), b"bye");
    }

    #[test]
    fn plain_http_on_the_tls_port_is_recognised_and_left_unread() {
        let (server, mut client) = socket_pair();
        let session = ServerConnection::new(tls_server_config()).unwrap();
        let mut server = ServerEnd::new(Transport::tls(server, session));
        client.write_all(b"GET / HTTP/1.1\r\n").unwrap();
        let error = server.read_some().unwrap_err();
        assert!(is_plain_http(&error), "{error}");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        // The request is still in the socket, for an answer in plain HTTP.
        server.transport.drop_tls();
        assert!(!server.transport.is_secure());
        assert_eq!(server.read_exact(16), b"GET / HTTP/1.1\r\n");
        drop::<StdTcpStream>(client);
    }

    #[test]
    fn only_the_plain_http_error_is_plain_http() {
        let cases = [
            (
                io::Error::new(io::ErrorKind::InvalidData, PlainHttpOnTlsPort),
                true,
            ),
            (
                io::Error::new(io::ErrorKind::InvalidData, "bad record"),
                false,
            ),
            (
                io::Error::new(io::ErrorKind::InvalidData, rustls::Error::DecryptError),
                false,
            ),
            (io::ErrorKind::WouldBlock.into(), false),
            (io::Error::from_raw_os_error(libc::ECONNRESET), false),
        ];
        for (error, expected) in cases {
            assert_eq!(is_plain_http(&error), expected, "{error:?}");
        }
    }
}
