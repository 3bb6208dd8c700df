//! The seed corpora: realistic inputs for each target (request heads as curl, wrk, ab,
//! browsers and nginx send them; bodies, header values, paths and JSON the tests and the
//! site use; real TLS ClientHellos), each with the control bytes its target expects.
//!
//! Not run by default: `cargo test --lib fuzzing::seeds -- --ignored` writes them to
//! `fuzz/corpus/<target>/seed-*`, and `fuzz/run-all.sh` (cargo fuzz cmin) keeps those that
//! add coverage.

use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, ClientConnection, RootCertStore};
use rustls_pki_types::ServerName;

const CURL: &str =
    "GET / HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n";
const WRK: &str = "GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
const AB: &str =
    "GET / HTTP/1.0\r\nHost: localhost:8080\r\nUser-Agent: ApacheBench/2.3\r\nAccept: */*\r\n\r\n";
const CHROME: &str = "GET /posts.html HTTP/1.1\r\nHost: localhost:8080\r\nConnection: keep-alive\r\n\
sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n\
sec-ch-ua-mobile: ?0\r\nsec-ch-ua-platform: \"Linux\"\r\nUpgrade-Insecure-Requests: 1\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n\
Sec-Fetch-Site: none\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-User: ?1\r\nSec-Fetch-Dest: document\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\n\
If-None-Match: \"5f3c-18c2a1b9e40\"\r\nIf-Modified-Since: Tue, 14 May 2024 10:12:00 GMT\r\n\r\n";
const FIREFOX: &str = "GET / HTTP/1.1\r\nHost: localhost:8080\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n\
Connection: keep-alive\r\nUpgrade-Insecure-Requests: 1\r\nSec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\nSec-Fetch-Site: none\r\nSec-Fetch-User: ?1\r\nPriority: u=0, i\r\n\r\n";
const SAFARI: &str = "GET /style.css HTTP/1.1\r\nHost: localhost:8080\r\nAccept: text/css,*/*;q=0.1\r\n\
Sec-Fetch-Site: same-origin\r\nAccept-Encoding: gzip, deflate, br\r\nSec-Fetch-Mode: no-cors\r\n\
User-Agent: Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15\r\n\
Referer: http://localhost:8080/\r\nAccept-Language: en-GB,en;q=0.9\r\nSec-Fetch-Dest: style\r\n\
Connection: keep-alive\r\n\r\n";
const FETCH_LOGIN: &str = "POST /api/auth/login HTTP/1.1\r\nHost: localhost:8080\r\nContent-Length: 47\r\n\
Content-Type: application/json\r\nOrigin: http://localhost:8080\r\nReferer: http://localhost:8080/login.html\r\n\
Accept: */*\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n\r\n{\"username\":\"alice\",\"password\":\"correct horse\"}";
const VIDEO_RANGE: &str = "GET /media/talk.mp4 HTTP/1.1\r\nHost: localhost:8080\r\nAccept: */*\r\n\
Range: bytes=0-\r\nIf-Range: \"5f3c-18c2a1b9e40\"\r\nAccept-Encoding: identity\r\n\r\n";
const CURL_CHUNKED: &str = "POST /api/posts HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/8.5.0\r\n\
Accept: */*\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n\
1f\r\n{\"title\":\"t\",\"body\":\"chunked!\"}\r\n0\r\n\r\n";
const CURL_EXPECT: &str = "PUT /api/posts/1 HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/8.5.0\r\n\
Accept: */*\r\nContent-Type: application/json\r\nContent-Length: 28\r\nExpect: 100-continue\r\n\r\n\
{\"title\":\"a\",\"body\":\"bcdef\"}";
const NGINX_SSE: &str = "GET /api/chat/stream HTTP/1.1\r\nHost: example.org\r\n\
X-Forwarded-For: 203.0.113.7\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\
Last-Event-ID: 42\r\nCookie: session=0123456789abcdef\r\n\r\n";
const PROXY_ABSOLUTE: &str = "GET http://localhost:8080/index.html?x=1 HTTP/1.1\r\n\
Host: localhost:8080\r\nProxy-Connection: keep-alive\r\n\r\n";
const PREFLIGHT: &str = "OPTIONS /api/posts HTTP/1.1\r\nHost: localhost:8080\r\nOrigin: https://app.example\r\n\
Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\n\r\n";

/// Heads the parser must refuse, from `http::parse`'s table and the smuggling classics.
const BAD_HEADS: &[&str] = &[
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n  2\r\n\r\n",
    "GET / HTTP/1.1\nHost: a\n\n",
    "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
    "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
    "CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n",
    "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
];

const GOOD_HEADS: &[&str] = &[
    CURL,
    WRK,
    AB,
    CHROME,
    FIREFOX,
    SAFARI,
    FETCH_LOGIN,
    VIDEO_RANGE,
    CURL_CHUNKED,
    CURL_EXPECT,
    NGINX_SSE,
    PROXY_ABSOLUTE,
    PREFLIGHT,
];

fn write(target: &str, name: &str, bytes: &[u8]) {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join(format!("seed-{name}")), bytes).unwrap();
}

fn with(control: &[u8], bytes: &[u8]) -> Vec<u8> {
    [control, bytes].concat()
}

fn head_seeds() {
    for (index, head) in GOOD_HEADS.iter().chain(BAD_HEADS).enumerate() {
        write("head", &format!("{index:02}"), &with(&[0], head.as_bytes()));
    }
    write("head", "split", &with(&[2], CHROME.as_bytes()));
}

fn chunked_seeds() {
    let bodies: &[&[u8]] = &[
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET / HTTP/1.1\r\n",
        b"1f\r\n{\"title\":\"t\",\"body\":\"chunked!\"}\r\n0\r\n\r\n",
        b"0005;name=value;x\r\nhello\r\n000\r\nX-Sum: 1\r\nY: 2\r\n\r\n",
        b"5;a=\"b;c\"\r\nhello\r\n0\r\n\r\n",
        b"4\r\n\r\n\r\n\r\n0\r\n\r\n",
        b"5 \r\nhello\r\n0\t;x\r\n\r\n",
        b"3\r\nhello\r\n0\r\n\r\n",
        b"fffffffffffffffff\r\nx\r\n",
        b"5\nhello\r\n0\r\n\r\n",
        b"0\r\nnot a field\r\n\r\n",
    ];
    for (index, body) in bodies.iter().enumerate() {
        write("chunked", &format!("{index:02}"), &with(&[0x80], body));
    }
    write("chunked", "split", &with(&[0xc1], bodies[0]));
}

fn conn_seeds() {
    let pipelined = [WRK, WRK, WRK].concat();
    let routes = "GET /d HTTP/1.1\r\nHost: x\r\n\r\nGET /p HTTP/1.1\r\nHost: x\r\n\r\n\
        HEAD /f HTTP/1.1\r\nHost: x\r\n\r\nGET /m HTTP/1.1\r\nHost: x\r\n\r\n\
        GET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /n HTTP/1.1\r\nHost: x\r\n\r\n\
        GET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /z HTTP/1.1\r\nHost: x\r\n\r\n\
        GET /s HTTP/1.1\r\nHost: x\r\n\r\n";
    let slow_reader = "GET /z HTTP/1.1\r\nHost: x\r\n\r\n".repeat(12);
    let seeds: &[(&str, [u8; 2], &str)] = &[
        ("pipelined", [0, 0], &pipelined),
        ("pipelined-split", [1, 3], &pipelined),
        ("chrome", [0, 2], CHROME),
        ("firefox-eof", [1, 0], FIREFOX),
        ("ab", [1, 0], AB),
        ("chunked", [0, 1], CURL_CHUNKED),
        ("expect", [0, 2], CURL_EXPECT),
        ("sse", [0x08, 0], NGINX_SSE),
        ("routes", [0, 0], routes),
        ("routes-slow", [0x44, 7], routes),
        ("slow-reader", [0x06, 5], &slow_reader),
        (
            "timeout",
            [0x18, 1],
            "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nabc",
        ),
        ("shutdown", [0x20, 0], routes),
        ("bad", [0, 0], BAD_HEADS[0]),
    ];
    for (name, control, input) in seeds {
        write("conn", name, &with(control, input.as_bytes()));
    }
}

fn headers_seeds() {
    let values: &[(u8, &str)] = &[
        (0, "bytes=0-499"),
        (0, "bytes=0-0,-1"),
        (0, "bytes=500-999,7000-"),
        (0, "bytes=0-"),
        (0, "bytes=-500"),
        (0, "bytes=0-1,5-6,10-20,30-"),
        (0, "items=1-2"),
        (1, "\"5f3c-18c2a1b9e40\""),
        (1, "W/\"v1\", \"v2\"*Tue, 14 May 2024 10:12:00 GMT"),
        (
            1,
            "\"v1\"\"v1\"Sun, 06 Nov 1994 08:49:37 GMTSunday, 06-Nov-94 08:49:37 GMT\"v1\"",
        ),
        (2, "gzip, deflate, br, zstd"),
        (2, "gzip, deflate"),
        (2, "br;q=1.0, gzip;q=0.8, *;q=0.1"),
        (2, "identity"),
        (2, "*"),
        (2, "deflate, gzip, br, zstd"),
    ];
    for (index, (selector, value)) in values.iter().enumerate() {
        write(
            "headers",
            &format!("{index:02}"),
            &with(&[*selector], value.as_bytes()),
        );
    }
}

fn paths_seeds() {
    let paths = [
        "index.html",
        "a.txt",
        "link-in",
        "link-out",
        "link-abs-in",
        "link-abs-out",
        "link-dir/sub/c.txt",
        "link-out-dir/secret.txt",
        "dir/link-up",
        "dir/link-parent/a.txt",
        "dir/link-grandparent/outside/secret.txt",
        "%2e%2e/outside/secret.txt",
        "..%2f..%2fetc%2fpasswd",
        "loop1",
        "link-etc",
        "sp%20ace.txt",
        "per%25cent.txt",
        ".env",
        "%2ehidden/h.txt",
        "dir/./b.txt",
        "dir//sub/c.txt",
        "assets/app.3f2a9c1b.js",
        "%C3%BC.txt",
        "back%5cslash",
        "a.txt/",
        "dir/",
    ];
    for (index, path) in paths.iter().enumerate() {
        write("paths", &format!("{index:02}"), path.as_bytes());
    }
}

fn api_seeds() {
    let requests: &[(&str, u8, u8, &str)] = &[
        (
            "register",
            0,
            0,
            r#"{"username":"alice_1","password":"correct horse"}"#,
        ),
        (
            "login",
            1,
            0,
            r#"{"username":"fuzzer","password":"fuzzing-password"}"#,
        ),
        ("logout", 2, 1, ""),
        ("me", 3, 1, ""),
        ("list", 4, 0, "limit=10&offset=0"),
        ("create", 5, 1, r#"{"title":"Hello","body":"First post"}"#),
        ("show", 6, 4, "3\n"),
        ("update", 7, 5, "1\n{\"title\":\"Edited\",\"body\":\"x\"}"),
        ("delete", 8, 5, "2\n"),
        ("search-get", 9, 0, "q=loop+socket&limit=5"),
        ("search-post", 10, 0, r#"{"q":"epoll buffer"}"#),
        ("chat-list", 11, 1, "after=0&limit=50"),
        ("chat-send", 12, 1, r#"{"text":"hi all \u00e9"}"#),
        ("chat-stream", 13, 1, "after=0"),
        ("health", 14, 0, ""),
        ("wrong-type", 5, 3, r#"{"title":"t","body":"b"}"#),
        ("bad-json", 5, 1, r#"{"title":"t","body":"#),
    ];
    for (name, route, flags, payload) in requests {
        write("api", name, &with(&[*route, *flags], payload.as_bytes()));
    }
}

/// ClientHellos of real configurations: TLS 1.3 and 1.2, with and without ALPN and SNI.
fn tls_seeds() {
    let hello = |versions: &[&'static rustls::SupportedProtocolVersion], alpn: bool, name: &str| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth();
        if alpn {
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        }
        let name = ServerName::try_from(name.to_owned()).unwrap();
        let mut client = ClientConnection::new(Arc::new(config), name).unwrap();
        let mut bytes = Vec::new();
        client.write_tls(&mut bytes).unwrap();
        bytes
    };
    let tls13 = &[&rustls::version::TLS13][..];
    let tls12 = &[&rustls::version::TLS12][..];
    let both = &[&rustls::version::TLS13, &rustls::version::TLS12][..];
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("hello-13", hello(tls13, true, "localhost")),
        ("hello-12", hello(tls12, true, "localhost")),
        ("hello-both-no-alpn", hello(both, false, "localhost")),
        ("hello-ip", hello(both, true, "127.0.0.1")),
        ("plain-http", CURL.as_bytes().to_vec()),
        ("alert", b"\x15\x03\x03\x00\x02\x02\x28".to_vec()),
        (
            "sslv2-hello",
            b"\x80\x2e\x01\x03\x01\x00\x15\x00\x00\x00\x10".to_vec(),
        ),
    ];
    for (name, bytes) in seeds {
        write("tls", name, &with(&[0], &bytes));
    }
    let split = hello(tls13, true, "localhost");
    write("tls", "hello-13-split", &with(&[1], &split));
}

#[test]
#[ignore = "writes the seed corpora into fuzz/corpus; run by hand"]
fn write_seed_corpora() {
    head_seeds();
    chunked_seeds();
    conn_seeds();
    headers_seeds();
    paths_seeds();
    api_seeds();
    tls_seeds();
}
