//! What the server's unit tests share: connected loopback socket pairs (the server's end
//! non-blocking, as the loop has it; the client's blocking with short timeouts, so a bug is a
//! failure, not a hang), one test certificate with the rustls configurations that serve and
//! trust it, a TLS client over a blocking socket, and a client-side HTTP response reader.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, StreamOwned};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

use crate::server::tls::{generate_localhost_certificate, server_config};

/// How long any test waits for something that should happen at once.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// When a wait starting now gives up.
pub fn deadline() -> Instant {
    Instant::now() + TIMEOUT
}

/// The time left before `deadline`; panics once it has passed (the awaited thing never came).
pub fn time_left(deadline: Instant, waiting_for: &str) -> Duration {
    let left = deadline.saturating_duration_since(Instant::now());
    assert!(!left.is_zero(), "timed out waiting for {waiting_for}");
    left
}

/// A connected loopback pair: the accepted end as a non-blocking mio socket, and the client's
/// end blocking, with read and write timeouts.
pub fn socket_pair() -> (mio::net::TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    client.set_read_timeout(Some(TIMEOUT)).unwrap();
    client.set_write_timeout(Some(TIMEOUT)).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    (mio::net::TcpStream::from_std(server), client)
}

/// `len` bytes that differ from their neighbours, so a misplaced byte shows.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ seed.wrapping_mul(31))
        .collect()
}

/// A certificate for localhost, made once per test binary: (its DER, its key's PKCS#8 DER).
fn test_certificate() -> &'static (CertificateDer<'static>, Vec<u8>) {
    static CERT: OnceLock<(CertificateDer<'static>, Vec<u8>)> = OnceLock::new();
    CERT.get_or_init(|| {
        let (cert_pem, key) = generate_localhost_certificate().unwrap();
        let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
        (cert, key.serialize_der())
    })
}

/// The server's configuration, built as the server builds it ([`server_config`]).
pub fn tls_server_config() -> Arc<ServerConfig> {
    let (cert, key) = test_certificate();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.clone()));
    Arc::new(server_config(vec![cert.clone()], key).unwrap())
}

/// A client configuration trusting only the test certificate, offering ALPN http/1.1.
pub fn tls_client_config() -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(test_certificate().0.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A TLS client for `localhost` over `socket`; the handshake runs on its first read or write.
pub fn tls_client(socket: TcpStream) -> StreamOwned<ClientConnection, TcpStream> {
    let name = ServerName::try_from("localhost").unwrap();
    let session = ClientConnection::new(tls_client_config(), name).unwrap();
    StreamOwned::new(session, socket)
}

/// A blocking client's stream, plain or TLS.
pub trait ClientStream: Read + Write + Send {}

impl<T: Read + Write + Send> ClientStream for T {}

/// One HTTP response as a client reads it: the head, and a `Content-Length` body.
#[derive(Debug)]
pub struct ReadResponse {
    pub head: String,
    pub body: Vec<u8>,
}

impl ReadResponse {
    pub fn status(&self) -> u16 {
        self.head[9..12].parse().unwrap()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (field, value) = line.split_once(':')?;
            field.eq_ignore_ascii_case(name).then_some(value.trim())
        })
    }
}

/// Reads one response from `stream`; `buf` keeps bytes read past it (pipelined responses).
pub fn read_response<R: Read + ?Sized>(stream: &mut R, buf: &mut Vec<u8>) -> ReadResponse {
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|window| window == b"\r\n\r\n") {
            break at + 4;
        }
        fill(stream, buf);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut response = ReadResponse {
        head,
        body: Vec::new(),
    };
    let len: usize = response
        .header("content-length")
        .map_or(0, |len| len.parse().unwrap());
    while buf.len() < head_end + len {
        fill(stream, buf);
    }
    response.body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    response
}

/// Reads once more into `buf`; the peer closing first is a failure.
fn fill<R: Read + ?Sized>(stream: &mut R, buf: &mut Vec<u8>) {
    let mut chunk = [0; 16 * 1024];
    match stream.read(&mut chunk) {
        Ok(0) => panic!(
            "the server closed mid-response; got {:?}",
            String::from_utf8_lossy(buf)
        ),
        Ok(n) => buf.extend_from_slice(&chunk[..n]),
        Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
        Err(error) => panic!("reading a response: {error}"),
    }
}
