//! HTTPS for the harness: the same strict `Client`, with its bytes going
//! through a rustls client session (`Client::connect_tls`), plus what the TLS
//! tests need to look at the handshake: the negotiated protocol version and
//! ALPN protocol, and the SHA-256 fingerprint of the server's certificate (to
//! tell certificates apart across a SIGHUP reload).
//!
//! The handshake is completed in `connect_tls`, with the usual socket
//! timeouts, so a refused handshake is an error there. Session resumption is
//! off: every connection does a full handshake and sees the certificate the
//! server uses at that moment.
//!
//! How the server ends the TLS stream is recorded (`Client::tls_end`): a
//! `close_notify` alert reads as a clean EOF (`Ok(0)`), while a TCP close
//! WITHOUT `close_notify` is never passed off as one: reads fail with
//! `UnexpectedEof` and a message saying so.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ProtocolVersion, RootCertStore};
use sha2::{Digest, Sha256};

use super::{Client, IO_TIMEOUT, Response, Server, ServerBuilder, get_close};

/// File names of the self-signed certificate and key, next to the database.
pub const SELF_SIGNED_CERT: &str = "looplight-cert.pem";
pub const SELF_SIGNED_KEY: &str = "looplight-key.pem";
/// The ALPN protocol the server speaks.
pub const HTTP11: &[u8] = b"http/1.1";

/// How the server ended the TLS stream, as a TLS client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsEnd {
    /// A `close_notify` alert arrived: reads return `Ok(0)`.
    CloseNotify,
    /// TCP ended without `close_notify` (a truncation): reads fail with
    /// `UnexpectedEof`.
    NoCloseNotify,
}

// ---------------------------------------------------------------------------
// Client configuration
// ---------------------------------------------------------------------------

/// A client configuration trusting exactly `roots`, offering `alpn` (in
/// order) and the protocol `versions` (None: rustls's safe defaults, TLS 1.3
/// and 1.2). Session resumption is disabled.
pub fn client_config_with(
    roots: &[CertificateDer<'static>],
    versions: Option<&[&'static rustls::SupportedProtocolVersion]>,
    alpn: &[&[u8]],
) -> Arc<ClientConfig> {
    let mut store = RootCertStore::empty();
    for cert in roots {
        store
            .add(cert.clone())
            .unwrap_or_else(|e| panic!("cannot trust a test certificate: {e}"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider);
    let builder = match versions {
        None => builder.with_safe_default_protocol_versions(),
        Some(v) => builder.with_protocol_versions(v),
    }
    .expect("protocol versions");
    let mut config = builder.with_root_certificates(store).with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// Safe default versions (TLS 1.3 and 1.2), ALPN `http/1.1`.
pub fn client_config(roots: &[CertificateDer<'static>]) -> Arc<ClientConfig> {
    client_config_with(roots, None, &[HTTP11])
}

/// Every certificate in a PEM file (panics if there is none).
pub fn load_certs(path: &Path) -> Vec<CertificateDer<'static>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect())
        .unwrap_or_else(|e| panic!("reading certificates from {}: {e:?}", path.display()));
    assert!(!certs.is_empty(), "no certificate in {}", path.display());
    certs
}

/// SHA-256 of a certificate's DER bytes as uppercase hex pairs joined by `:`
/// (the format the server prints).
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Whether `s` looks like a fingerprint: 32 uppercase hex pairs joined by `:`.
pub fn is_fingerprint(s: &str) -> bool {
    let pairs: Vec<&str> = s.split(':').collect();
    pairs.len() == 32
        && pairs.iter().all(|p| {
            p.len() == 2
                && p.bytes()
                    .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
        })
}

/// The rustls error inside an I/O error from a TLS operation, if any.
pub fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// The first TLS records a real client sends (its ClientHello), captured
/// from a rustls client session without any network.
pub fn client_hello_bytes() -> Vec<u8> {
    let test_cert = TestCert::new("client hello capture");
    let config = client_config(&[test_cert.der()]);
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = ClientConnection::new(config, name).expect("client session");
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).expect("write_tls into a Vec");
    }
    assert_eq!(out[0], 0x16, "a ClientHello is a handshake record");
    out
}

// ---------------------------------------------------------------------------
// Test certificates
// ---------------------------------------------------------------------------

/// A self-signed certificate for `localhost` (and 127.0.0.1) made with
/// rcgen, with a distinct common name so several can be trusted at once.
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
    cert_der: CertificateDer<'static>,
}

impl TestCert {
    pub fn new(common_name: &str) -> TestCert {
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("certificate params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        let key = rcgen::KeyPair::generate().expect("generate a key");
        let cert = params.self_signed(&key).expect("self-sign");
        TestCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
        }
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.cert_der.clone()
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(&self.cert_der)
    }

    /// Writes the certificate and key PEM files (replacing their contents).
    pub fn write(&self, cert_path: &Path, key_path: &Path) {
        std::fs::write(cert_path, &self.cert_pem).unwrap();
        std::fs::write(key_path, &self.key_pem).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Client over TLS
// ---------------------------------------------------------------------------

/// Reads decrypted bytes into `buf` (used by `Client::fill`): Ok(0) only
/// after `close_notify`; a TCP close without it is an `UnexpectedEof` error.
pub(super) fn read_plaintext(
    conn: &mut ClientConnection,
    sock: &mut TcpStream,
    buf: &mut [u8],
    end: &mut Option<TlsEnd>,
) -> io::Result<usize> {
    match rustls::Stream::new(conn, sock).read(buf) {
        Ok(0) => {
            *end = Some(TlsEnd::CloseNotify);
            Ok(0)
        }
        Ok(n) => Ok(n),
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
            *end = Some(TlsEnd::NoCloseNotify);
            Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                "TLS: the peer closed TCP without sending close_notify (unclean TLS close)",
            ))
        }
        Err(e) => Err(e),
    }
}

/// Encrypts and writes all of `bytes` (used by `Client::try_send`).
pub(super) fn write_plaintext(
    conn: &mut ClientConnection,
    sock: &mut TcpStream,
    bytes: &[u8],
) -> io::Result<()> {
    let mut stream = rustls::Stream::new(conn, sock);
    stream.write_all(bytes)?;
    stream.flush()
}

/// A TLS handshake held back: `start` sends only the first `prefix` bytes of
/// the ClientHello, `finish` sends the rest and completes the handshake, so
/// a test can check the server waits for a partial ClientHello.
pub struct HeldHandshake {
    pub client: Client,
    conn: ClientConnection,
    rest: Vec<u8>,
}

impl HeldHandshake {
    pub fn start(addr: SocketAddr, roots: &[CertificateDer<'static>], prefix: usize) -> Self {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        let mut client = Client::from_stream(stream);
        let name = ServerName::try_from("localhost").unwrap();
        let mut conn = ClientConnection::new(client_config(roots), name).expect("client session");
        let mut hello = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut hello).expect("write_tls into a Vec");
        }
        assert!(
            prefix < hello.len(),
            "the ClientHello has only {} bytes",
            hello.len()
        );
        client.send(&hello[..prefix]);
        HeldHandshake {
            client,
            conn,
            rest: hello[prefix..].to_vec(),
        }
    }

    /// Sends the rest of the ClientHello and completes the handshake.
    pub fn finish(self) -> Client {
        let HeldHandshake {
            mut client,
            mut conn,
            rest,
        } = self;
        client.send(&rest);
        while conn.is_handshaking() {
            conn.complete_io(&mut client.stream)
                .unwrap_or_else(|e| panic!("completing the held handshake: {e}"));
        }
        client.tls = Some(Box::new(conn));
        client
    }
}

impl Client {
    /// Connects to `addr` over TLS as `server_name`, trusting `roots`; the
    /// handshake is complete on return. Panics on failure.
    pub fn connect_tls(
        addr: SocketAddr,
        server_name: &str,
        roots: &[CertificateDer<'static>],
    ) -> Client {
        Client::try_connect_tls_with(addr, server_name, client_config(roots))
            .unwrap_or_else(|e| panic!("TLS connection to {addr} ({server_name}) failed: {e}"))
    }

    /// Connects and completes the handshake with `config`; the error of a
    /// refused handshake carries the rustls error (see `rustls_error`).
    pub fn try_connect_tls_with(
        addr: SocketAddr,
        server_name: &str,
        config: Arc<ClientConfig>,
    ) -> io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        let mut client = Client::from_stream(stream);
        let name = ServerName::try_from(server_name.to_string())
            .map_err(|e| io::Error::new(ErrorKind::InvalidInput, e))?;
        let mut conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        let deadline = Instant::now() + IO_TIMEOUT;
        while conn.is_handshaking() {
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    ErrorKind::TimedOut,
                    "TLS handshake did not finish",
                ));
            }
            conn.complete_io(&mut client.stream)?;
        }
        client.tls = Some(Box::new(conn));
        Ok(client)
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    fn tls_conn(&self) -> &ClientConnection {
        self.tls.as_deref().expect("not a TLS client")
    }

    /// The negotiated TLS version.
    pub fn tls_version(&self) -> ProtocolVersion {
        self.tls_conn()
            .protocol_version()
            .expect("handshake complete")
    }

    /// The ALPN protocol the server selected, if any.
    pub fn alpn(&self) -> Option<Vec<u8>> {
        self.tls_conn().alpn_protocol().map(<[u8]>::to_vec)
    }

    /// SHA-256 fingerprint of the server's leaf certificate.
    pub fn peer_fingerprint(&self) -> String {
        let certs = self
            .tls_conn()
            .peer_certificates()
            .expect("the server sent a certificate");
        fingerprint(&certs[0])
    }

    /// How the server ended the TLS stream, once a read saw it.
    pub fn tls_end(&self) -> Option<TlsEnd> {
        self.tls_end
    }

    /// Sends our own `close_notify` alert.
    pub fn send_close_notify(&mut self) {
        let conn = self.tls.as_deref_mut().expect("not a TLS client");
        conn.send_close_notify();
        write_plaintext(conn, &mut self.stream, &[]).expect("send close_notify");
    }
}

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

impl ServerBuilder {
    /// HTTPS on an ephemeral port with the self-signed certificate:
    /// `--tls-addr 127.0.0.1:0 --tls-self-signed`.
    pub fn tls(self) -> Self {
        self.args(&["--tls-addr", "127.0.0.1:0", "--tls-self-signed"])
    }
}

impl Server {
    /// The HTTPS address (panics when HTTPS is off).
    pub fn https_addr(&self) -> SocketAddr {
        self.tls_addr.expect("HTTPS is not enabled on this server")
    }

    /// `https://localhost:<tls port><path>`.
    pub fn tls_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.https_addr().port())
    }

    /// The certificate file: `--cert`, or the self-signed one next to the
    /// database.
    pub fn cert_path(&self) -> PathBuf {
        match &self.cert_file {
            Some(p) => p.clone(),
            None => self.outside_dir().join(SELF_SIGNED_CERT),
        }
    }

    /// The self-signed key file next to the database.
    pub fn self_signed_key_path(&self) -> PathBuf {
        self.outside_dir().join(SELF_SIGNED_KEY)
    }

    /// The certificates in `cert_path` (what a client should trust).
    pub fn tls_roots(&self) -> Vec<CertificateDer<'static>> {
        load_certs(&self.cert_path())
    }

    /// A TLS connection as `localhost`, trusting `cert_path`.
    pub fn connect_tls(&self) -> Client {
        Client::connect_tls(self.https_addr(), "localhost", &self.tls_roots())
    }

    /// `GET path` with `Connection: close` over a fresh TLS connection.
    pub fn get_tls(&self, path: &str) -> Response {
        let mut c = self.connect_tls();
        c.send(&get_close(path));
        c.read_response()
    }
}

// ---------------------------------------------------------------------------
// Self-test of the client's close_notify detection
// ---------------------------------------------------------------------------

/// A one-connection rustls server that answers one request with `response`,
/// then ends TLS cleanly (`close_notify`) or just closes TCP.
fn one_shot_tls_server(
    cert: &TestCert,
    response: &'static [u8],
    close_notify: bool,
) -> (SocketAddr, thread::JoinHandle<()>) {
    let chain = vec![cert.der()];
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut conn = rustls::ServerConnection::new(config).unwrap();
        let mut tls = rustls::Stream::new(&mut conn, &mut sock);
        let mut buf = [0u8; 4096];
        let mut got = Vec::new();
        while super::find(&got, b"\r\n\r\n").is_none() {
            let n = tls.read(&mut buf).unwrap();
            assert!(n > 0, "client went away");
            got.extend_from_slice(&buf[..n]);
        }
        tls.write_all(response).unwrap();
        tls.flush().unwrap();
        if close_notify {
            conn.send_close_notify();
            while conn.wants_write() {
                conn.write_tls(&mut sock).unwrap();
            }
        }
        drop(sock);
    });
    (addr, handle)
}

#[test]
fn tls_client_tells_close_notify_from_a_bare_tcp_close() {
    let cert = TestCert::new("harness self-test");
    let response: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    for close_notify in [true, false] {
        let (addr, handle) = one_shot_tls_server(&cert, response, close_notify);
        let mut c = Client::connect_tls(addr, "localhost", &[cert.der()]);
        c.send(&get_close("/"));
        assert_eq!(c.read_response().body, b"ok");
        let result = c.closed_within(Duration::from_secs(2));
        if close_notify {
            assert_eq!(result, Ok(()));
            assert_eq!(c.tls_end(), Some(TlsEnd::CloseNotify));
        } else {
            let err = result.expect_err("a bare TCP close must not look like a clean TLS close");
            assert!(err.contains("close_notify"), "{err}");
            assert_eq!(c.tls_end(), Some(TlsEnd::NoCloseNotify));
        }
        handle.join().unwrap();
    }
}
