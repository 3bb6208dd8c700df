//! HTTPS (rustls) end to end: the `--tls-addr` listener next to the plain
//! one, with the self-signed certificate (`--tls-self-signed`) or
//! `--cert`/`--key` files.
//!
//! - Handshake: TLS 1.3 by default, TLS 1.2 still served, ALPN `http/1.1`
//!   selected and an `h2`-only client refused (no_application_protocol).
//! - HTTP over TLS behaves exactly as plain HTTP: keep-alive, pipelining
//!   (ten requests in one write), 1 MiB and 100 KiB files byte-exact, byte
//!   ranges, the JSON API with a `Secure` session cookie, the chat event
//!   stream; curl interoperates (connection reuse, a large download, the
//!   exact command the server prints).
//! - Endings: `Connection: close`, HTTP/1.0 and errors end with close_notify
//!   then FIN (a clean EOF for a TLS client, never a bare TCP close).
//! - Hostile or broken peers: garbage and truncated or stalled handshakes
//!   are closed (garbage at once, stalls after `--header-timeout`), plain
//!   HTTP on the TLS port gets a plain-HTTP 400 pointing to `https://`, and
//!   other clients never notice.
//! - `--redirect-http` (308 to HTTPS, `/healthz` exempt), `--hsts` (only on
//!   TLS responses).
//! - Certificates: the self-signed one is explained on stderr (path,
//!   SHA-256 fingerprint, a curl command), kept with mode 0600 and reused
//!   after a restart; SIGHUP reloads `--cert`/`--key` under traffic without
//!   dropping anything, and keeps the old certificate when the new files
//!   are broken.
//! - Flag errors: HTTPS flags without a certificate source are refused.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::{AlertDescription, ProtocolVersion};

use crate::support::tls::*;
use crate::support::*;

const CURL: &str = "/usr/bin/curl";
/// Generous deadline for something that should happen at once (to give up,
/// never a measurement).
const PROMPT: Duration = Duration::from_secs(10);

fn tls_server() -> Server {
    Server::builder().tls().start()
}

/// Runs curl with a hard time limit and returns its output.
fn curl(args: &[&str]) -> Output {
    assert!(
        Path::new(CURL).exists(),
        "{CURL} is required for the curl interoperability tests (install curl)"
    );
    let mut command = Command::new(CURL);
    command
        .args(["--max-time", "10", "--silent", "--show-error"])
        .args(args);
    run_with_deadline(command, Duration::from_secs(15))
}

fn curl_ok(args: &[&str]) -> Output {
    let out = curl(args);
    assert!(
        out.status.success(),
        "curl {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Waits up to `PROMPT` for the operator message (stderr, without its time and level)
/// starting with `prefix`.
fn stderr_line(server: &Server, prefix: &str) -> String {
    server
        .wait_for_message(PROMPT, |m| m.starts_with(prefix))
        .unwrap_or_else(|| {
            panic!(
                "no message starting with {prefix:?}; stderr:\n{}",
                server.stderr_lines().join("\n")
            )
        })
}

/// The fingerprint the server printed for its self-signed certificate.
fn printed_fingerprint(server: &Server) -> String {
    let line = stderr_line(server, "  SHA-256 fingerprint: ");
    line["  SHA-256 fingerprint: ".len()..].to_string()
}

/// Reads from a raw socket until the peer closes it (EOF or reset); returns
/// the bytes received. Panics if it is still open after `IO_TIMEOUT`
/// without a byte (half the default header timeout: a close that comes from
/// that timeout, not from the server's own decision, fails).
fn raw_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
            Err(e) if is_timeout(&e) => {
                panic!("connection still open after {IO_TIMEOUT:?} of silence; received {got:?}")
            }
            Err(e) => panic!("read error {e}; received {got:?}"),
        }
    }
}

/// Before a handshake, the server may answer garbage with nothing or a TLS
/// alert record (content type 21), nothing else.
fn assert_nothing_or_alert(got: &[u8], what: &str) {
    assert!(
        got.is_empty() || got[0] == 0x15,
        "{what}: only a TLS alert may come back, got {got:02x?}"
    );
}

/// One `GET /hello.txt` on a keep-alive connection, as a Result (for the
/// traffic thread, which counts failures instead of panicking).
fn try_hello(c: &mut Client) -> Result<(), String> {
    c.try_send(&get("/hello.txt"))
        .map_err(|e| format!("send: {e}"))?;
    let resp = c.try_read_response(false)?;
    if resp.status != 200 || resp.body != HELLO {
        return Err(format!("unexpected response:\n{}", resp.head));
    }
    Ok(())
}

/// A new TLS connection, one `GET /hello.txt` with `Connection: close`, a
/// clean TLS close; returns the certificate fingerprint the server showed.
fn try_fresh_hello(addr: SocketAddr, roots: &[CertificateDer<'static>]) -> Result<String, String> {
    let mut c = Client::try_connect_tls_with(addr, "localhost", client_config(roots))
        .map_err(|e| format!("handshake: {e}"))?;
    let fp = c.peer_fingerprint();
    c.try_send(&get_close("/hello.txt"))
        .map_err(|e| format!("send: {e}"))?;
    let resp = c.try_read_response(false)?;
    if resp.status != 200 || resp.body != HELLO {
        return Err(format!("unexpected response:\n{}", resp.head));
    }
    c.closed_within(PROMPT)?;
    Ok(fp)
}

/// The header fields of a response without `Date` (which may tick between
/// two responses), for comparing TLS and plain responses.
fn fields_but_date(resp: &Response) -> Vec<(String, String)> {
    resp.headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("date"))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect()
}

/// The session cookie of the contract (see `assert_session_cookie`), with
/// `Secure` as it must be over TLS.
fn assert_secure_session_cookie(x: &Exchange, value: &str, max_age: u64) {
    let fields = x.headers_all("set-cookie");
    assert_eq!(fields.len(), 1, "exactly one Set-Cookie\n{}", x.show());
    let c = SetCookie::parse(fields[0]);
    assert_eq!(c.name, "session", "{}", x.show());
    assert_eq!(c.value, value, "cookie value\n{}", x.show());
    let mut want = vec![
        ("httponly".to_string(), None),
        ("max-age".to_string(), Some(max_age.to_string())),
        ("path".to_string(), Some("/".to_string())),
        ("samesite".to_string(), Some("Lax".to_string())),
        ("secure".to_string(), None),
    ];
    want.sort();
    assert_eq!(
        c.sorted_attrs(),
        want,
        "over TLS: `session=…; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}; Secure`\n{}",
        x.show()
    );
}

// ---------------------------------------------------------------------------
// Handshake
// ---------------------------------------------------------------------------

#[test]
fn keep_alive_over_tls_negotiates_tls13_and_http11() {
    let server = tls_server();
    let mut c = server.connect_tls();
    assert_eq!(c.tls_version(), ProtocolVersion::TLSv1_3);
    assert_eq!(c.alpn().as_deref(), Some(HTTP11));
    for _ in 0..3 {
        c.send(&get("/hello.txt"));
        let resp = c.read_response();
        assert_hello(&resp);
        assert!(!resp.has_token("connection", "close"), "{}", resp.head);
    }
    c.send(&head("/hello.txt"));
    let resp = c.read_response_to_head();
    assert_eq!(resp.status, 200, "{}", resp.head);
    resp.assert_basics_head();
    assert_eq!(resp.content_length(), Some(HELLO.len() as u64));
    c.send(&get("/dir/page.html"));
    let resp = c.read_response();
    assert_eq!(
        (resp.status, resp.body.as_slice()),
        (200, b"<p>page</p>\n".as_slice())
    );
    c.send(&get_close("/hello.txt"));
    assert_hello(&c.read_response());
    c.assert_closed();
}

#[test]
fn tls12_only_client_is_served() {
    let server = tls_server();
    let config = client_config_with(
        &server.tls_roots(),
        Some(&[&rustls::version::TLS12]),
        &[HTTP11],
    );
    let mut c = Client::try_connect_tls_with(server.https_addr(), "localhost", config)
        .unwrap_or_else(|e| panic!("TLS 1.2 handshake failed: {e}"));
    assert_eq!(c.tls_version(), ProtocolVersion::TLSv1_2);
    assert_eq!(c.alpn().as_deref(), Some(HTTP11));
    c.send(&get("/hello.txt"));
    assert_hello(&c.read_response());
    c.send(&get_close("/hello.txt"));
    assert_hello(&c.read_response());
    c.assert_closed();
    assert_eq!(c.tls_end(), Some(TlsEnd::CloseNotify));
}

#[test]
fn alpn_selects_http11_and_an_h2_only_client_is_refused() {
    let server = tls_server();
    let roots = server.tls_roots();
    let addr = server.https_addr();
    // h2 preferred but http/1.1 offered too: http/1.1.
    let config = client_config_with(&roots, None, &[b"h2", HTTP11]);
    let mut c = Client::try_connect_tls_with(addr, "localhost", config).unwrap();
    assert_eq!(c.alpn().as_deref(), Some(HTTP11));
    c.send(&get_close("/hello.txt"));
    assert_hello(&c.read_response());

    // No ALPN extension at all: the server goes on without ALPN (RFC 7301
    // §3.2) and speaks HTTP/1.1.
    let config = client_config_with(&roots, None, &[]);
    let mut c = Client::try_connect_tls_with(addr, "localhost", config).unwrap();
    assert_eq!(c.alpn(), None);
    c.send(&get_close("/hello.txt"));
    assert_hello(&c.read_response());

    // Only h2: refused with a no_application_protocol alert (RFC 7301 §3.2).
    let config = client_config_with(&roots, None, &[b"h2"]);
    let err = match Client::try_connect_tls_with(addr, "localhost", config) {
        Ok(c) => panic!(
            "a client offering only h2 completed the handshake (ALPN {:?})",
            c.alpn().map(|p| String::from_utf8_lossy(&p).into_owned())
        ),
        Err(e) => e,
    };
    assert_eq!(
        rustls_error(&err),
        Some(&rustls::Error::AlertReceived(
            AlertDescription::NoApplicationProtocol
        )),
        "expected a no_application_protocol alert, got: {err}"
    );
    assert_hello(&server.get_tls("/hello.txt"));
}

// ---------------------------------------------------------------------------
// HTTP over TLS
// ---------------------------------------------------------------------------

#[test]
fn pipelined_requests_over_tls_in_one_write_are_answered_in_order() {
    let server = tls_server();
    let requests: Vec<(Vec<u8>, bool)> = vec![
        (get("/hello.txt"), false),
        (head("/hello.txt"), true),
        (get("/no-such-file.txt"), false),
        (get("/style.css"), false),
        (get("/hello.txt"), false),
        (head("/index.html"), true),
        (get("/dir/"), false),
        (get("/missing/deeper/file"), false),
        (get("/app.js"), false),
        (get_close("/hello.txt"), false),
    ];
    // The same requests over plain HTTP, one per connection, as the reference.
    let reference: Vec<Response> = requests
        .iter()
        .map(|(raw, is_head)| {
            let mut c = server.connect();
            c.send(raw);
            c.try_read_response(*is_head)
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();

    let mut c = server.connect_tls();
    let all: Vec<&[u8]> = requests.iter().map(|(r, _)| r.as_slice()).collect();
    c.send(&concat(&all)); // one write: one TLS record
    for (i, ((raw, is_head), want)) in requests.iter().zip(&reference).enumerate() {
        let got = c
            .try_read_response(*is_head)
            .unwrap_or_else(|e| panic!("response {i} to {:?}: {e}", show(raw)));
        let what = format!(
            "response {i} to {:?}\n--- over TLS ---\n{}\n--- over plain HTTP ---\n{}",
            show(raw),
            got.head,
            want.head
        );
        assert_eq!(got.status, want.status, "{what}");
        assert_eq!(fields_but_date(&got), fields_but_date(want), "{what}");
        assert!(got.body == want.body, "body differs: {what}");
        if *is_head {
            got.assert_basics_head();
        } else {
            got.assert_basics();
        }
    }
    assert_eq!(reference[0].body, HELLO);
    assert_eq!(reference[1].content_length(), Some(HELLO.len() as u64));
    assert_eq!(reference[2].status, 404);
    assert_eq!(reference[6].body, DIR_INDEX_HTML);
    c.assert_closed();
    assert_eq!(c.tls_end(), Some(TlsEnd::CloseNotify));
}

#[test]
fn large_files_and_ranges_over_tls_are_byte_exact() {
    let big = patterned_bytes(1 << 20);
    // ~100 KiB, small enough for the in-memory file cache.
    let mid: Vec<u8> = patterned_bytes(100 * 1024 + 3)
        .iter()
        .map(|b| b ^ 0x5a)
        .collect();
    let server = Server::builder()
        .file("big.bin", &big)
        .file("mid.bin", &mid)
        .tls()
        .start();
    let mut c = server.connect_tls();
    for round in 0..2 {
        c.send(&get("/big.bin"));
        let resp = c.read_response();
        assert_eq!(resp.status, 200, "round {round}: {}", resp.head);
        resp.assert_basics();
        assert!(
            resp.body == big,
            "round {round}: 1 MiB body differs ({} bytes)",
            resp.body.len()
        );
    }
    for round in 0..2 {
        c.send(&get("/mid.bin"));
        let resp = c.read_response();
        assert_eq!(resp.status, 200, "round {round}: {}", resp.head);
        resp.assert_basics();
        assert!(resp.body == mid, "round {round}: 100 KiB body differs");
    }
    let ranges: [(&str, &str, &[u8], &str); 3] = [
        (
            "/big.bin",
            "bytes=1000-70999",
            &big[1000..71_000],
            "bytes 1000-70999/1048576",
        ),
        (
            "/big.bin",
            "bytes=-5000",
            &big[big.len() - 5000..],
            "bytes 1043576-1048575/1048576",
        ),
        (
            "/mid.bin",
            "bytes=65530-65545",
            &mid[65_530..65_546],
            "bytes 65530-65545/102403",
        ),
    ];
    for (path, range, want, content_range) in ranges {
        c.send(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nRange: {range}\r\n\r\n").as_bytes(),
        );
        let resp = c.read_response();
        assert_eq!(resp.status, 206, "{path} {range}: {}", resp.head);
        resp.assert_basics();
        assert_eq!(
            resp.header("content-range"),
            Some(content_range),
            "{}",
            resp.head
        );
        assert!(resp.body == want, "{path} {range}: wrong slice");
    }
    c.send(&get_close("/big.bin"));
    assert!(c.read_response().body == big);
    c.assert_closed();
}

#[test]
fn tls_requests_are_logged_and_the_https_line_is_not() {
    let server = Server::builder().tls().with_log().start();
    assert_hello(&server.get_tls("/hello.txt"));
    server
        .wait_for_log_line(PROMPT, |l| l.contains("\"GET /hello.txt HTTP/1.1\" 200"))
        .unwrap_or_else(|| panic!("no access log line: {:?}", server.log_lines()));
    assert!(
        !server.log_lines().iter().any(|l| l.contains("listening")),
        "{:?}",
        server.log_lines()
    );
}

// ---------------------------------------------------------------------------
// curl
// ---------------------------------------------------------------------------

#[test]
fn curl_reuses_one_tls_connection_for_two_urls() {
    let server = tls_server();
    let cert = server.cert_path();
    let url = server.tls_url("/hello.txt");
    let out = curl_ok(&[
        "--cacert",
        cert.to_str().unwrap(),
        "-v",
        "--http1.1",
        "-w",
        "%{http_code} %{num_connects}\\n",
        &url,
        &url,
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Hello world\n200 1\nHello world\n200 0\n"
    );
    let verbose = String::from_utf8_lossy(&out.stderr);
    assert!(
        verbose.contains("Re-using existing connection") || verbose.contains("Reusing existing"),
        "curl did not reuse the TLS connection:\n{verbose}"
    );
}

#[test]
fn curl_downloads_1_mib_over_tls_byte_exact() {
    let big = patterned_bytes(1 << 20);
    let server = Server::builder().file("big.bin", &big).tls().start();
    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("big.bin");
    curl_ok(&[
        "--cacert",
        server.cert_path().to_str().unwrap(),
        "-o",
        file.to_str().unwrap(),
        &server.tls_url("/big.bin"),
    ]);
    let got = std::fs::read(&file).unwrap();
    assert_eq!(got.len(), big.len());
    assert!(got == big, "curl download differs from the file");
}

#[test]
fn the_curl_command_printed_on_stderr_works() {
    let server = tls_server();
    let line = stderr_line(&server, "  curl: ");
    let words: Vec<&str> = line["  curl: ".len()..].split_whitespace().collect();
    assert_eq!(words.first(), Some(&"curl"), "{line:?}");
    let url = words.last().unwrap();
    assert!(url.ends_with('/'), "the printed URL ends with /: {line:?}");
    let mut args: Vec<String> = words[1..words.len() - 1]
        .iter()
        .map(|w| w.to_string())
        .collect();
    args.push(format!("{url}hello.txt"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = curl_ok(&args);
    assert_eq!(out.stdout, HELLO, "{line:?}");
}

// ---------------------------------------------------------------------------
// API and event streams over TLS
// ---------------------------------------------------------------------------

#[test]
fn login_over_tls_sets_a_secure_cookie_and_posts_are_shared_with_plain_http() {
    let server = tls_server();
    let mut c = server.connect_tls();
    register_req("tls_user", PASSWORD)
        .send_on(&mut c)
        .expect(201);
    let x = login_req("tls_user", PASSWORD).send_on(&mut c);
    let token = x.expect(200).field("token").str().to_string();
    assert_token_syntax(&token);
    assert_secure_session_cookie(&x, &token, 604_800);

    let x = Req::post("/api/posts")
        .cookie(&token)
        .json(post_body("over TLS", "sent encrypted"))
        .send_on(&mut c);
    let post = Post::from_json(&x.expect(201));
    assert_eq!(
        (post.title.as_str(), post.author.as_str()),
        ("over TLS", "tls_user")
    );
    let x = Req::get(&format!("/api/posts/{}", post.id)).send_on(&mut c);
    assert_eq!(Post::from_json(&x.expect(200)), post);
    // The same data over plain HTTP, and the TLS session works there too.
    assert_eq!(fetch_post(&server, post.id), Some(post.clone()));
    assert_eq!(whoami(&server, &token).as_deref(), Some("tls_user"));

    // Over plain HTTP the cookie has no Secure.
    let x = login_req("tls_user", PASSWORD).send(&server);
    let plain_token = x.expect(200).field("token").str().to_string();
    assert_session_cookie(&x, &plain_token, 604_800);

    // Logout clears the cookie: with Secure over TLS, without over plain.
    let x = Req::post("/api/auth/logout")
        .cookie(&token)
        .body("")
        .send_on(&mut c);
    x.expect_204();
    assert_secure_session_cookie(&x, "", 0);
    let x = Req::post("/api/auth/logout")
        .bearer(&plain_token)
        .body("")
        .send(&server);
    x.expect_204();
    assert_session_cookie(&x, "", 0);
    assert_eq!(whoami(&server, &token), None);
}

#[test]
fn chat_stream_over_tls_receives_messages() {
    let server = tls_server();
    let token = user_token(&server, "alice");
    let mut stream = EventStream::start(server.connect_tls(), stream_req(&token, "").bytes());
    let mut poster = server.connect_tls();
    let sent = send_message_on(&mut poster, &token, "hello over TLS 🔒");
    assert_eq!(stream.next_message(PROMPT), sent);
    // A message posted over plain HTTP reaches the TLS stream too.
    let sent = send_message(&server, &token, "and one over plain HTTP");
    assert_eq!(stream.next_message(PROMPT), sent);
    let sent = send_message_on(&mut poster, &token, "third");
    assert_eq!(stream.next_message(PROMPT), sent);
    stream.assert_no_message_for(Duration::from_millis(100));
}

// ---------------------------------------------------------------------------
// How connections end
// ---------------------------------------------------------------------------

/// After the server ended TLS with close_notify, the TCP connection ends
/// too (FIN): the raw socket reads EOF.
fn assert_fin_after_close_notify(c: &mut Client, what: &str) {
    assert_eq!(c.tls_end(), Some(TlsEnd::CloseNotify), "{what}");
    c.stream.set_read_timeout(Some(PROMPT)).unwrap();
    let mut byte = [0u8; 1];
    match c.stream.read(&mut byte) {
        Ok(0) => {}
        Ok(_) => panic!("{what}: bytes after close_notify"),
        Err(e) => panic!("{what}: expected FIN after close_notify, got {e}"),
    }
}

#[test]
fn the_server_ends_tls_with_close_notify_then_fin() {
    let server = tls_server();
    // Connection: close after a keep-alive request.
    let mut c = server.connect_tls();
    c.send(&get("/hello.txt"));
    assert_hello(&c.read_response());
    c.send(&get_close("/hello.txt"));
    let resp = c.read_response();
    assert_hello(&resp);
    assert!(resp.has_token("connection", "close"), "{}", resp.head);
    c.assert_closed();
    assert_fin_after_close_notify(&mut c, "Connection: close");

    // HTTP/1.0 without keep-alive.
    let mut c = server.connect_tls();
    c.send(b"GET /hello.txt HTTP/1.0\r\n\r\n");
    let resp = c.read_response();
    assert_eq!((resp.status, resp.body.as_slice()), (200, HELLO));
    c.assert_closed();
    assert_fin_after_close_notify(&mut c, "HTTP/1.0");

    // An error response that ends the connection (HTTP/1.1 without Host).
    let mut c = server.connect_tls();
    c.send(b"GET /hello.txt HTTP/1.1\r\n\r\n");
    let resp = c.read_response();
    assert_error_and_close(&mut c, &resp, 400);
    assert_fin_after_close_notify(&mut c, "400 without Host");
}

// ---------------------------------------------------------------------------
// Hostile and broken clients
// ---------------------------------------------------------------------------

#[test]
fn garbage_on_the_tls_port_is_closed_at_once_and_others_are_unaffected() {
    let mut server = tls_server();
    let mut good = server.connect_tls();
    good.send(&get("/hello.txt"));
    assert_hello(&good.read_response());
    let garbage: [&[u8]; 4] = [
        &[0u8; 64],
        b"\xff\xfe\xfd\xfc\xfb garbage garbage\r\n\r\n",
        b"get /hello.txt http/1.1\r\nhost: localhost\r\n\r\n",
        b"\x80\x2e\x01\x03\x01\x00\x15\x00\x00\x00\x10 sslv2-style hello",
    ];
    for bytes in garbage {
        let mut raw = TcpStream::connect(server.https_addr()).unwrap();
        raw.write_all(bytes).unwrap();
        let got = raw_until_closed(&mut raw);
        assert_nothing_or_alert(&got, &format!("garbage {:?}", show(bytes)));
        // The established TLS client and new ones are fine.
        good.send(&get("/hello.txt"));
        assert_hello(&good.read_response());
        assert_hello(&server.get_tls("/hello.txt"));
    }
    assert_hello(&server.get("/hello.txt"));
    server.assert_running();
}

#[test]
fn plain_http_on_the_tls_port_gets_a_plain_400_pointing_to_https() {
    let mut server = tls_server();
    let mut c = Client::connect(server.https_addr());
    c.send(&get("/hello.txt"));
    let resp = c.read_response();
    assert_eq!(resp.status, 400, "{}\n{}", resp.head, resp.body_str());
    assert!(
        resp.body_str().contains("https://"),
        "the 400 should point to https://, got {:?}",
        resp.body_str()
    );
    assert_error_and_close(&mut c, &resp, 400);
    assert_hello(&server.get_tls("/hello.txt"));
    server.assert_running();
}

#[test]
fn truncated_client_hellos_do_not_hurt_the_server() {
    let mut server = tls_server();
    let hello = client_hello_bytes();
    let mut good = server.connect_tls();
    good.send(&get("/hello.txt"));
    assert_hello(&good.read_response());
    for cut in [20, 5, 1, hello.len() - 1, hello.len()] {
        // Send a prefix of a real ClientHello, then close.
        let mut raw = TcpStream::connect(server.https_addr()).unwrap();
        raw.write_all(&hello[..cut]).unwrap();
        drop(raw);
        good.send(&get("/hello.txt"));
        assert_hello(&good.read_response());
    }
    assert_hello(&server.get_tls("/hello.txt"));
    assert_hello(&server.get("/hello.txt"));
    server.assert_running();
}

#[test]
fn stalled_handshakes_are_closed_after_the_header_timeout() {
    // Not before it: with a header timeout of a minute, a connection that
    // sent 20 bytes of a ClientHello (which the server has read: its receive
    // queue is empty) and one that sent nothing are still open once another
    // client has been served; the partial handshake then completes and is
    // served.
    let server = Server::builder()
        .tls()
        .args(&["--header-timeout", "60"])
        .start();
    let addr = server.https_addr();
    let held = HeldHandshake::start(addr, &server.tls_roots(), 20);
    let silent = Client::connect(addr);
    let held_addr = held.client.stream.local_addr().unwrap();
    wait_for(
        "the server to read the partial ClientHello",
        PATIENCE,
        || {
            server_holds(addr, held_addr)?;
            held.client.server_has_read_all()
        },
    );
    assert_hello(&server.get_tls("/hello.txt"));
    assert_eq!(
        held.client.peek_now(),
        Peeked::Nothing,
        "a partial ClientHello must wait for the header timeout"
    );
    assert_eq!(
        silent.peek_now(),
        Peeked::Nothing,
        "a silent connection must wait for the header timeout"
    );
    let mut c = held.finish();
    c.send(&get_close("/hello.txt"));
    assert_hello(&c.read_response());
    drop((server, silent));

    // After it: with --header-timeout 0.5 both are closed (awaited for
    // IO_TIMEOUT, half the default), and so is a completed handshake whose
    // head never ends, with a 408 over TLS.
    let mut server = Server::builder()
        .tls()
        .args(&["--header-timeout", "0.5"])
        .start();
    let hello = client_hello_bytes();
    let addr = server.https_addr();
    let mut good = server.connect_tls();
    good.send(&get("/hello.txt"));
    assert_hello(&good.read_response());

    // A partial ClientHello, then silence; and a connection that sends
    // nothing at all.
    let stalled: Vec<thread::JoinHandle<Vec<u8>>> = [Some(20), None]
        .into_iter()
        .map(|prefix| {
            let mut raw = TcpStream::connect(addr).unwrap();
            if let Some(n) = prefix {
                raw.write_all(&hello[..n]).unwrap();
            }
            thread::spawn(move || raw_until_closed(&mut raw))
        })
        .collect();
    // A completed handshake with a head that never ends: 408 over TLS.
    let mut slow = server.connect_tls();
    slow.send(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n");
    let resp = slow.read_response();
    assert_error_and_close(&mut slow, &resp, 408);
    assert_eq!(slow.tls_end(), Some(TlsEnd::CloseNotify));

    for (what, handle) in ["partial ClientHello", "nothing sent"]
        .into_iter()
        .zip(stalled)
    {
        let got = handle.join().unwrap();
        assert_nothing_or_alert(&got, what);
    }
    // The established keep-alive connection was left alone.
    good.send(&get_close("/hello.txt"));
    assert_hello(&good.read_response());
    server.assert_running();
}

// ---------------------------------------------------------------------------
// --redirect-http and --hsts
// ---------------------------------------------------------------------------

#[test]
fn redirect_http_sends_308_to_https_except_healthz() {
    let server = Server::builder()
        .tls()
        .args(&["--redirect-http", "--hsts", "60"])
        .start();
    let plain = server.addr.port();
    let tls = server.https_addr().port();
    let cases: Vec<(String, String)> = vec![
        (
            format!(
                "GET /hello.txt?q=a%20b&empty= HTTP/1.1\r\nHost: localhost:{plain}\r\nConnection: close\r\n\r\n"
            ),
            format!("https://localhost:{tls}/hello.txt?q=a%20b&empty="),
        ),
        (
            "GET /dir/page.html HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n".into(),
            format!("https://example.test:{tls}/dir/page.html"),
        ),
        (
            format!("GET / HTTP/1.1\r\nHost: [::1]:{plain}\r\nConnection: close\r\n\r\n"),
            format!("https://[::1]:{tls}/"),
        ),
        (
            "GET /x?y=1 HTTP/1.0\r\n\r\n".into(),
            format!("https://127.0.0.1:{tls}/x?y=1"),
        ),
        (
            String::from_utf8(
                Req::post("/api/posts")
                    .json(post_body("t", "b"))
                    .close()
                    .bytes(),
            )
            .unwrap(),
            format!("https://localhost:{tls}/api/posts"),
        ),
    ];
    for (raw, location) in &cases {
        let resp = server.request(raw.as_bytes());
        let what = format!("request {raw:?}\n{}", resp.head);
        assert_eq!(resp.status, 308, "{what}");
        resp.assert_basics();
        assert_eq!(resp.header("location"), Some(location.as_str()), "{what}");
        assert!(resp.header("strict-transport-security").is_none(), "{what}");
    }
    let resp = {
        let mut c = server.connect();
        c.send(&head("/hello.txt"));
        c.read_response_to_head()
    };
    assert_eq!(resp.status, 308, "HEAD: {}", resp.head);
    assert_eq!(
        resp.header("location"),
        Some(format!("https://localhost:{tls}/hello.txt").as_str())
    );

    // /healthz stays on plain HTTP.
    for path in ["/healthz", "/healthz?probe=1"] {
        let x = Req::get(path).close().send(&server);
        let j = x.expect(200);
        assert_eq!(
            j,
            Json::Obj(vec![("status".into(), Json::Str("ok".into()))]),
            "{}",
            x.show()
        );
        assert!(
            x.header("strict-transport-security").is_none(),
            "{}",
            x.show()
        );
    }

    // Nothing is redirected over TLS.
    let mut c = server.connect_tls();
    c.send(&get("/hello.txt?q=1"));
    assert_hello(&c.read_response());
    let x = Req::get("/healthz").send_on(&mut c);
    x.expect(200);
    let x = Req::get("/api/posts").close().send_on(&mut c);
    x.expect(200);

    // A real client follows the redirect to HTTPS.
    let out = curl_ok(&[
        "-L",
        "--cacert",
        server.cert_path().to_str().unwrap(),
        "-w",
        "\\n%{http_code} %{num_redirects} %{url_effective}",
        &format!("http://localhost:{plain}/hello.txt"),
    ]);
    let want = format!("Hello world\n\n200 1 https://localhost:{tls}/hello.txt");
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
}

#[test]
fn hsts_is_sent_on_every_tls_response_and_never_over_plain_http() {
    let server = Server::builder()
        .tls()
        .args(&["--hsts", "31536000"])
        .start();
    let requests: [(&[u8], u16); 4] = [
        (b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n", 200),
        (b"GET /nope.txt HTTP/1.1\r\nHost: localhost\r\n\r\n", 404),
        (b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n", 200),
        (
            b"GET /api/posts/999 HTTP/1.1\r\nHost: localhost\r\n\r\n",
            404,
        ),
    ];
    let mut tls = server.connect_tls();
    for (raw, status) in requests {
        tls.send(raw);
        let resp = tls.read_response();
        assert_eq!(resp.status, status, "over TLS: {}", resp.head);
        assert_eq!(
            resp.headers_all("strict-transport-security"),
            vec!["max-age=31536000"],
            "over TLS: {}",
            resp.head
        );
        let resp = server.request(raw);
        assert_eq!(resp.status, status, "over plain HTTP: {}", resp.head);
        assert!(
            resp.header("strict-transport-security").is_none(),
            "over plain HTTP: {}",
            resp.head
        );
    }
    // The plain-HTTP answer on the TLS port is not a TLS response.
    let mut c = Client::connect(server.https_addr());
    c.send(&get("/hello.txt"));
    let resp = c.read_response();
    assert_eq!(resp.status, 400, "{}", resp.head);
    assert!(
        resp.header("strict-transport-security").is_none(),
        "{}",
        resp.head
    );
}

#[test]
fn hsts_is_sent_on_tls_error_responses_too() {
    // Contract: EVERY response over TLS carries it (RFC 6797 §7.1), also
    // the errors the server answers before routing, which end the connection.
    let server = Server::builder()
        .tls()
        .args(&["--hsts", "31536000", "--max-head-bytes", "1024"])
        .start();
    let long_field = format!(
        "GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nX-Long: {}\r\n\r\n",
        "a".repeat(2000)
    );
    let cases: [(&[u8], u16); 2] = [
        (b"GET /hello.txt HTTP/1.1\r\n\r\n", 400),
        (long_field.as_bytes(), 431),
    ];
    let mut missing = Vec::new();
    for (raw, status) in cases {
        let mut tls = server.connect_tls();
        tls.send(raw);
        let resp = tls.read_response();
        assert_error_and_close(&mut tls, &resp, status);
        if resp.headers_all("strict-transport-security") != vec!["max-age=31536000"] {
            missing.push(format!(
                "request {:?}\n--- response over TLS ---\n{}",
                show(raw),
                resp.head
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "TLS responses without `Strict-Transport-Security: max-age=31536000`:\n{}",
        missing.join("\n\n")
    );
}

// ---------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------

#[test]
fn self_signed_certificate_is_explained_kept_private_and_reused() {
    let server = tls_server();
    let cert_file = server.cert_path();
    let canonical = std::fs::canonicalize(&cert_file).unwrap();
    let port = server.https_addr().port();
    let first = stderr_line(&server, "HTTPS uses a self-signed certificate");
    // The reader thread collects stderr a line at a time: wait for the last of the four.
    stderr_line(&server, "  browser: ");
    let lines = server.messages();
    let at = lines.iter().position(|l| *l == first).unwrap();
    assert!(
        lines.len() >= at + 4,
        "four lines expected:\n{}",
        lines.join("\n")
    );
    assert_eq!(
        lines[at],
        format!(
            "HTTPS uses a self-signed certificate for localhost (generated now): {}",
            canonical.display()
        )
    );
    let fp = printed_fingerprint(&server);
    assert!(is_fingerprint(&fp), "{:?}", lines[at + 1]);
    assert_eq!(lines[at + 1], format!("  SHA-256 fingerprint: {fp}"));
    assert_eq!(
        lines[at + 2],
        format!(
            "  curl: curl --cacert {} https://localhost:{port}/",
            canonical.display()
        )
    );
    assert!(
        lines[at + 3].starts_with("  browser: "),
        "{:?}",
        lines[at + 3]
    );

    // The fingerprint is that of the file's certificate and of the one served.
    let roots = load_certs(&cert_file);
    assert_eq!(fingerprint(&roots[0]), fp);
    assert_eq!(server.connect_tls().peer_fingerprint(), fp);
    // The certificate also names 127.0.0.1.
    let mut c = Client::connect_tls(server.https_addr(), "127.0.0.1", &roots);
    c.send(&get_close("/hello.txt"));
    assert_hello(&c.read_response());
    let key_mode = |s: &Server| {
        std::fs::metadata(s.self_signed_key_path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(key_mode(&server), 0o600, "the key file must be private");
    let cert_pem = std::fs::read(&cert_file).unwrap();
    let key_pem = std::fs::read(server.self_signed_key_path()).unwrap();

    // After a restart in the same directory: the same certificate.
    let dir = server.stop();
    let server = Server::builder().reuse_dir(dir).tls().start();
    let line = stderr_line(&server, "HTTPS uses a self-signed certificate");
    assert_eq!(
        line,
        format!(
            "HTTPS uses a self-signed certificate for localhost (reused): {}",
            canonical.display()
        )
    );
    assert_eq!(printed_fingerprint(&server), fp);
    assert_eq!(server.connect_tls().peer_fingerprint(), fp);
    assert!(
        std::fs::read(&cert_file).unwrap() == cert_pem,
        "cert file rewritten"
    );
    assert!(
        std::fs::read(server.self_signed_key_path()).unwrap() == key_pem,
        "key file rewritten"
    );
    assert_eq!(key_mode(&server), 0o600);
    assert_hello(&server.get_tls("/hello.txt"));
}

/// What the traffic thread of the reload test saw.
#[derive(Default)]
struct Traffic {
    fresh_ok: usize,
    keep_alive_ok: usize,
    /// Certificate fingerprints of the new connections, in order.
    fingerprints: Vec<String>,
    failures: Vec<String>,
}

#[test]
fn sighup_reloads_the_certificate_under_traffic() {
    let certs = tempfile::tempdir().unwrap();
    let cert_file = certs.path().join("cert.pem");
    let key_file = certs.path().join("key.pem");
    let a = TestCert::new("looplight test A");
    let b = TestCert::new("looplight test B");
    let c = TestCert::new("looplight test C");
    a.write(&cert_file, &key_file);
    let mut server = Server::builder()
        .args(&[
            "--tls-addr",
            "127.0.0.1:0",
            "--cert",
            cert_file.to_str().unwrap(),
            "--key",
            key_file.to_str().unwrap(),
        ])
        .start();
    assert_eq!(server.cert_path(), cert_file);
    let line = stderr_line(&server, "HTTPS certificate ");
    assert_eq!(
        line,
        format!(
            "HTTPS certificate {} (SHA-256 {})",
            std::fs::canonicalize(&cert_file).unwrap().display(),
            a.fingerprint()
        )
    );
    let addr = server.https_addr();
    let roots = vec![a.der(), b.der(), c.der()];
    let mut old = Client::connect_tls(addr, "localhost", &roots);
    assert_eq!(old.peer_fingerprint(), a.fingerprint());
    old.send(&get("/hello.txt"));
    assert_hello(&old.read_response());

    // Traffic: new connections and a keep-alive connection, nonstop. `rounds`
    // counts the rounds in which both succeeded, for the test to wait on.
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicUsize::new(0));
    let traffic = {
        let stop = Arc::clone(&stop);
        let rounds = Arc::clone(&rounds);
        let roots = roots.clone();
        thread::spawn(move || {
            let mut t = Traffic::default();
            let mut keep = Client::connect_tls(addr, "localhost", &roots);
            while !stop.load(Ordering::Relaxed) {
                let mut ok = true;
                match try_fresh_hello(addr, &roots) {
                    Ok(fp) => {
                        t.fresh_ok += 1;
                        t.fingerprints.push(fp);
                    }
                    Err(e) => {
                        ok = false;
                        t.failures.push(format!("new connection: {e}"))
                    }
                }
                match try_hello(&mut keep) {
                    Ok(()) => t.keep_alive_ok += 1,
                    Err(e) => {
                        ok = false;
                        t.failures.push(format!("keep-alive connection: {e}"))
                    }
                }
                if ok {
                    rounds.fetch_add(1, Ordering::SeqCst);
                }
                if t.failures.len() > 100 {
                    break; // reported below; no point going on
                }
            }
            t
        })
    };
    // Some traffic before the reload (instead of sleeping 500 ms) ...
    let wait_rounds = |n: usize, what: &str| {
        wait_until(what, PATIENCE, || {
            rounds.load(Ordering::SeqCst) >= n || traffic.is_finished()
        })
    };
    wait_rounds(5, "5 rounds of traffic before the reload");
    b.write(&cert_file, &key_file);
    server.signal("HUP");
    let reloaded = server
        .wait_for_message(PROMPT, |m| m.starts_with("reloaded"))
        .unwrap_or_else(|| panic!("no `reloaded` line:\n{}", server.stderr_lines().join("\n")));
    assert!(reloaded.contains(&b.fingerprint()), "{reloaded:?}");
    assert!(reloaded.contains("cert.pem"), "{reloaded:?}");
    // ... and some after it (instead of sleeping 700 ms): rounds that began
    // after the `reloaded` line.
    let after_reload = rounds.load(Ordering::SeqCst) + 1;
    wait_rounds(after_reload + 5, "5 rounds of traffic after the reload");
    stop.store(true, Ordering::Relaxed);
    let t = traffic.join().unwrap();

    assert!(
        t.failures.is_empty(),
        "{} failed requests during the reload:\n{}",
        t.failures.len(),
        t.failures.join("\n")
    );
    assert!(
        t.fresh_ok >= 10 && t.keep_alive_ok >= 10,
        "too little traffic to tell: {} new connections, {} keep-alive requests",
        t.fresh_ok,
        t.keep_alive_ok
    );
    let first_b = t
        .fingerprints
        .iter()
        .position(|fp| *fp == b.fingerprint())
        .unwrap_or_else(|| panic!("no new connection saw the new certificate"));
    assert!(
        first_b > 0
            && t.fingerprints[..first_b]
                .iter()
                .all(|fp| *fp == a.fingerprint()),
        "before the reload, A; then B: {:?}",
        t.fingerprints
    );
    assert!(
        t.fingerprints[first_b..]
            .iter()
            .all(|fp| *fp == b.fingerprint()),
        "after the reload, only B: {:?}",
        t.fingerprints
    );
    // The connection opened before the reload keeps working, with A.
    old.send(&get("/hello.txt"));
    assert_hello(&old.read_response());
    assert_eq!(old.peer_fingerprint(), a.fingerprint());
    assert_eq!(try_fresh_hello(addr, &roots), Ok(b.fingerprint()));

    // Broken files: the current certificate (B) stays.
    let not_reloaded = |n: usize| {
        wait_for(
            &format!("{n} `certificate not reloaded` lines"),
            PROMPT,
            || {
                let lines = server.stderr_lines();
                let count = lines
                    .iter()
                    .filter(|l| l.contains("certificate not reloaded"))
                    .count();
                if count >= n {
                    Ok(())
                } else {
                    Err(format!("stderr:\n{}", lines.join("\n")))
                }
            },
        )
    };
    std::fs::write(&cert_file, "this is not a PEM certificate\n").unwrap();
    server.signal("HUP");
    not_reloaded(1);
    assert_eq!(try_fresh_hello(addr, &roots), Ok(b.fingerprint()));
    // C's certificate with B's key: they do not match.
    std::fs::write(&cert_file, &c.cert_pem).unwrap();
    server.signal("HUP");
    not_reloaded(2);
    assert_eq!(try_fresh_hello(addr, &roots), Ok(b.fingerprint()));
    old.send(&get("/hello.txt"));
    assert_hello(&old.read_response());
    server.assert_running();

    // A good pair again is picked up.
    c.write(&cert_file, &key_file);
    server.signal("HUP");
    wait_for("a second `reloaded` line", PROMPT, || {
        let lines = server.messages();
        let count = lines.iter().filter(|m| m.starts_with("reloaded")).count();
        if count >= 2 {
            Ok(())
        } else {
            Err(format!("stderr:\n{}", lines.join("\n")))
        }
    });
    assert_eq!(try_fresh_hello(addr, &roots), Ok(c.fingerprint()));
}

// ---------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------

/// Runs the binary with `args` after a throwaway `--addr`, `--root` and
/// `--db`; it must exit (not serve).
fn run_binary(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    std::fs::create_dir_all(&root).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_looplight"));
    command
        .args(["--addr", "127.0.0.1:0", "--quiet", "--root"])
        .arg(&root)
        .arg("--db")
        .arg(dir.path().join("x.db"))
        .args(args);
    run_with_deadline(command, Duration::from_secs(10))
}

#[test]
fn https_flags_without_a_certificate_are_refused() {
    let cases: [(&[&str], &str); 4] = [
        (&["--redirect-http"], "--redirect-http"),
        (&["--tls-addr", "127.0.0.1:0"], "--tls-addr"),
        (&["--hsts", "60"], "--hsts"),
        (&["--cert", "/nonexistent/cert.pem"], "--key"),
    ];
    for (args, flag) in cases {
        let out = run_binary(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{args:?} must fail; stderr:\n{stderr}"
        );
        assert!(
            stderr.contains(flag),
            "{args:?}: the message should name {flag}:\n{stderr}"
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("listening"),
            "{args:?}: must not listen"
        );
    }
}

#[test]
fn unreadable_certificate_files_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, "not a certificate\n").unwrap();
    TestCert::new("unused").write(&dir.path().join("unused.pem"), &key);
    let out = run_binary(&[
        "--tls-addr",
        "127.0.0.1:0",
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a broken --cert must fail:\n{stderr}"
    );
    assert!(
        stderr.contains("cert.pem"),
        "the message should name the file:\n{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
}

/// Sends `bytes` one byte per TCP segment, with a pause every `burst` bytes, so the server
/// sees TLS records (and the handshake) cut at every possible place.
fn trickle(stream: &mut TcpStream, bytes: &[u8], burst: usize) {
    for (i, byte) in bytes.iter().enumerate() {
        stream.write_all(&[*byte]).expect("trickle a byte");
        if i % burst == burst - 1 {
            // The scenario (bytes in separate segments), not a wait for anything.
            thread::sleep(Duration::from_millis(1));
        }
    }
}

#[test]
fn tls_records_trickled_a_byte_at_a_time_are_reassembled() {
    let server = tls_server();
    let mut stream = TcpStream::connect_timeout(&server.https_addr(), IO_TIMEOUT).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(client_config(&server.tls_roots()), name).unwrap();
    // Pipelined requests, each cut into bytes inside its records.
    conn.writer()
        .write_all(&concat(&[&get("/hello.txt"), &get_close("/hello.txt")]))
        .unwrap();
    let mut received = Vec::new();
    loop {
        while conn.wants_write() {
            let mut out = Vec::new();
            conn.write_tls(&mut out).unwrap();
            trickle(&mut stream, &out, 64);
        }
        match conn.read_tls(&mut stream) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => panic!(
                "reading from the server: {e}; got so far: {}",
                show(&received)
            ),
        }
        conn.process_new_packets()
            .expect("valid TLS from the server");
        match conn.reader().read_to_end(&mut received) {
            Ok(_) => break, // close_notify
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("TLS read: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&received);
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{text}");
    assert!(text.ends_with("\r\n\r\nHello world\n"), "{text}");
}

#[test]
fn a_large_upload_over_tls_is_read_whole_and_the_connection_goes_on() {
    let server = tls_server();
    let mut c = server.connect_tls();
    let body = patterned_bytes(1_000_000);
    let head = format!(
        "POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.send(&concat(&[head.as_bytes(), &body]));
    let refused = c.read_response();
    assert_eq!(refused.status, 405, "{}", refused.status_line());
    // Every body byte was consumed: the next request on the connection is read as one.
    c.send(&get("/hello.txt"));
    assert_hello(&c.read_response());
}
