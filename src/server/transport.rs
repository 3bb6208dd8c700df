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
