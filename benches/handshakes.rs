//! TLS handshakes per second a server sustains: a load generator, not a criterion bench.
//!
//! Each of THREADS clients loops: connect, a full TLS 1.3 handshake (X25519, no resumption),
//! `GET PATH` with `Connection: close`, read to the end. To make the *server* the bottleneck
//! on a machine where client and server share few cores, the client skips what costs it most
//! and the server nothing: it does not verify the certificate or the handshake signature
//! (benchmark only, loopback only). What remains per handshake on the client is one X25519 key
//! exchange; the server also signs (ECDSA) and issues its session tickets.
//!
//!   cargo bench --bench handshakes -- ADDR [SECONDS] [THREADS] [PATH]
//!   e.g. taskset -c 1 cargo bench --bench handshakes -- 127.0.0.1:8443 5 8 /hello.txt
//!
//! `benches/load/tls_compare.sh` runs it against looplight and nginx side by side.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};

/// Accepts any certificate and signature: the handshake's cost without the client's checks.
#[derive(Debug)]
struct TrustAnything(Vec<SignatureScheme>);

impl ServerCertVerifier for TrustAnything {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.clone()
    }
}

fn client_config() -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let schemes = provider
        .signature_verification_algorithms
        .supported_schemes();
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3 is supported")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(TrustAnything(schemes)))
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// One connection: handshake, request, response to EOF. Returns whether it all worked.
fn one_exchange(addr: SocketAddr, config: &Arc<ClientConfig>, request: &[u8]) -> bool {
    let Ok(mut socket) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return false;
    };
    let _ = socket.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = socket.set_nodelay(true);
    let name = ServerName::try_from("localhost").expect("a valid name");
    let Ok(mut session) = ClientConnection::new(Arc::clone(config), name) else {
        return false;
    };
    let mut stream = rustls::Stream::new(&mut session, &mut socket);
    if stream.write_all(request).is_err() {
        return false;
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response); // ends with close_notify, or a bare close
    response.starts_with(b"HTTP/1.1 200")
}

fn main() {
    // `cargo bench` passes `--bench`; everything else is ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| arg != "--bench")
        .collect();
    let Some(addr) = args
        .first()
        .and_then(|addr| addr.parse::<SocketAddr>().ok())
    else {
        eprintln!("usage: cargo bench --bench handshakes -- ADDR [SECONDS] [THREADS] [PATH]");
        std::process::exit(2);
    };
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let threads: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(8);
    let path = args
        .get(3)
        .cloned()
        .unwrap_or_else(|| "/hello.txt".to_owned());
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");

    let config = client_config();
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (config, request) = (Arc::clone(&config), request.clone().into_bytes());
            let (done, failed) = (Arc::clone(&done), Arc::clone(&failed));
            std::thread::spawn(move || {
                while Instant::now() < until {
                    let counter = if one_exchange(addr, &config, &request) {
                        &done
                    } else {
                        &failed
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let done = done.load(Ordering::Relaxed);
    println!(
        "{done} handshakes in {elapsed:.2}s: {:.0} handshakes/s, {} failed",
        done as f64 / elapsed,
        failed.load(Ordering::Relaxed)
    );
}
