//! `--config FILE` and `--check-config` on the real binary: a file with every key configures
//! the server (seen over its sockets), a flag on the command line wins over the file, and
//! `--check-config` judges a file, good or bad, without binding or opening anything. The
//! messages and the parsing of every key in detail are unit tests (`src/config_file.rs`).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::support::tls::TestCert;
use crate::support::*;

/// Runs the binary in `dir` with `args`; it must exit (not serve).
fn run_in(dir: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_looplight"));
    command.current_dir(dir).args(args);
    run_with_deadline(command, Duration::from_secs(10))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A TOML string holding `path`.
fn toml_path(path: &Path) -> String {
    format!("{:?}", path.to_str().expect("a UTF-8 temp path"))
}

#[test]
fn a_file_with_every_key_configures_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let cert = TestCert::new("looplight config file");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    cert.write(&cert_path, &key_path);
    let db = dir.path().join("site.db");
    // Every flag at the time of writing, most away from its default; what can be seen from
    // outside is checked below.
    let file = format!(
        r#"# looplight, all from this file
addr = "127.0.0.1:0"
root = {root}
quiet = false
max-head-bytes = 4096
max-uri-bytes = 256
max-headers = 20
max-body-bytes = 1000
header-timeout = 2.5
body-timeout = 30
keep-alive-timeout = 0.75
write-timeout = 30
shutdown-timeout = 5
max-connections = 100
workers = 2
helpers = 2
cache-control = "max-age=60"
immutable-fingerprinted = true
compress = false
file-cache-bytes = 1_000_000
list-dirs = true
spa = true
db = {db}
max-json-body = 4096
cors-origin = ["https://a.example", "https://b.example"]
session-ttl = 600
sse-heartbeat = 5
seed-posts = 3
tls-addr = "127.0.0.1:0"
cert = {cert}
key = {key}
tls-self-signed = false
redirect-http = true
hsts = 60
"#,
        root = toml_path(&dir.path().join("www")),
        db = toml_path(&db),
        cert = toml_path(&cert_path),
        key = toml_path(&key_path),
    );
    let config = dir.path().join("looplight.toml");
    std::fs::write(&config, file).unwrap();
    let server = Server::builder()
        .reuse_dir(dir)
        .without_harness_flags()
        .expect_https()
        .args(&["--config", config.to_str().unwrap()])
        .start();
    let tls_get = |raw: &[u8]| {
        let mut client = Client::connect_tls(server.https_addr(), "localhost", &[cert.der()]);
        client.send(raw);
        client.read_response()
    };

    // root, cache-control, cert and key, tls-addr, hsts.
    let hello = tls_get(&get_close("/hello.txt"));
    assert_eq!(hello.status, 200, "{}", hello.head);
    assert_eq!(hello.body, HELLO);
    assert_eq!(
        hello.header("cache-control"),
        Some("max-age=60"),
        "{}",
        hello.head
    );
    assert_eq!(
        hello.header("strict-transport-security"),
        Some("max-age=60"),
        "{}",
        hello.head
    );
    // list-dirs, spa.
    let listing = tls_get(&get_close("/noindex/"));
    assert_eq!(listing.status, 200, "{}", listing.head);
    assert!(
        listing.body_str().contains("file.txt"),
        "{}",
        listing.body_str()
    );
    let app_route = tls_get(&get_close("/some/app/route"));
    assert_eq!(app_route.status, 200, "{}", app_route.head);
    assert_eq!(app_route.body, INDEX_HTML);
    // db, seed-posts, cors-origin (the second of the list).
    let posts = tls_get(
        b"GET /api/posts HTTP/1.1\r\nHost: localhost\r\nOrigin: https://b.example\r\n\
          Connection: close\r\n\r\n",
    );
    assert_eq!(posts.status, 200, "{}", posts.head);
    assert_eq!(Json::parse(&posts.body).unwrap().field("total").int(), 3);
    assert_eq!(
        posts.header("access-control-allow-origin"),
        Some("https://b.example"),
        "{}",
        posts.head
    );
    assert!(server.outside_dir().join("site.db").exists());
    // redirect-http, on plain HTTP.
    let redirect = server.get("/hello.txt");
    assert_eq!(redirect.status, 308, "{}", redirect.head);
    // max-headers and max-uri-bytes: the request is refused before any redirect.
    let mut many = String::from("GET / HTTP/1.1\r\nHost: localhost\r\n");
    for n in 0..25 {
        many.push_str(&format!("X-Header-{n}: {n}\r\n"));
    }
    many.push_str("Connection: close\r\n\r\n");
    assert_eq!(server.request(many.as_bytes()).status, 431);
    let long_uri = format!("/{}", "a".repeat(300));
    assert_eq!(server.get(&long_uri).status, 414);
    // quiet = false: the access log is on.
    server
        .wait_for_log_line(PATIENCE, |line| line.contains("/hello.txt"))
        .expect("an access-log line for /hello.txt");
    // keep-alive-timeout (0.75 s) ends an idle connection before header-timeout (2.5 s) has
    // passed for a head begun after it; with the defaults (15 s, 10 s) it would come after.
    let mut idle = server.connect();
    idle.send(&get("/hello.txt"));
    assert_eq!(idle.read_response().status, 308);
    let mut witness = Witness::start(&server);
    wait_until("the idle connection to be closed", PATIENCE, || {
        assert!(
            !witness.fired(),
            "the header timeout passed before the idle keep-alive connection was closed"
        );
        idle.peek_now() == Peeked::Closed
    });
}

#[test]
fn a_flag_on_the_command_line_wins_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("looplight.toml");
    std::fs::write(
        &config,
        r#"
cache-control = "max-age=60"
list-dirs = true
cors-origin = ["https://a.example", "https://b.example"]
"#,
    )
    .unwrap();
    let server = Server::start(&[
        "--config",
        config.to_str().unwrap(),
        "--cache-control",
        "no-store",
        "--cors-origin",
        "https://c.example",
    ]);
    let hello = server.get("/hello.txt");
    assert_eq!(
        hello.header("cache-control"),
        Some("no-store"),
        "{}",
        hello.head
    );
    // What the command line does not set is the file's.
    assert_eq!(server.get("/noindex/").status, 200);
    // A repeated flag replaces the file's whole list.
    let allowed = |origin: &str| {
        let raw = format!(
            "GET /api/posts HTTP/1.1\r\nHost: localhost\r\nOrigin: {origin}\r\n\
             Connection: close\r\n\r\n"
        );
        let response = server.request(raw.as_bytes());
        assert_eq!(response.status, 200, "{}", response.head);
        response.header("access-control-allow-origin") == Some(origin)
    };
    assert!(allowed("https://c.example"));
    assert!(!allowed("https://a.example"));
    assert!(!allowed("https://b.example"));
}

#[test]
fn check_config_says_ok_without_binding_or_opening_anything() {
    let dir = tempfile::tempdir().unwrap();
    // An address already taken, a root that does not exist and a database not yet made: a
    // start would fail on the first and make the last, a check does neither.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let file = format!(
        "addr = \"{}\"\nroot = \"no-such-root\"\ndb = \"never.db\"\nkeep-alive-timeout = 0.5\n\
         cors-origin = [\"https://a.example\"]\n",
        taken.local_addr().unwrap()
    );
    std::fs::write(dir.path().join("looplight.toml"), file).unwrap();
    let out = run_in(
        dir.path(),
        &["--config", "looplight.toml", "--check-config"],
    );
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "looplight: configuration ok (looplight.toml)\n"
    );
    assert_eq!(text(&out.stderr), "");
    assert!(
        !dir.path().join("never.db").exists(),
        "--check-config opened the database"
    );

    // Flags alone are checked the same way.
    let out = run_in(dir.path(), &["--check-config", "--workers", "2"]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "looplight: configuration ok\n");
}

#[test]
fn check_config_refuses_a_bad_file_naming_each_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = "addr = \"127.0.0.1:0\"\n\nheader-timeout = \"soon\"\n# a comment\n\
                keepalive-timeout = 3\nworkers = 0\n";
    std::fs::write(dir.path().join("looplight.toml"), file).unwrap();
    let out = run_in(
        dir.path(),
        &["--config", "looplight.toml", "--check-config"],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert_eq!(text(&out.stdout), "");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        [
            r#"looplight: looplight.toml:3: header-timeout: invalid value "soon": not a number of seconds"#,
            r#"looplight: looplight.toml:5: unknown key "keepalive-timeout" (did you mean "keep-alive-timeout"?)"#,
            r#"looplight: looplight.toml:6: workers: invalid value "0": 0 is not in 1..=65535"#,
        ]
    );

    // A rule between flags, one of them from the file: Config::check's message.
    std::fs::write(dir.path().join("hsts.toml"), "hsts = 60\n").unwrap();
    let out = run_in(dir.path(), &["--config", "hsts.toml", "--check-config"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--hsts needs HTTPS"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_bad_file_stops_the_server_before_it_listens() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("www")).unwrap();
    let file =
        "addr = \"127.0.0.1:0\"\nroot = \"www\"\ndb = \"site.db\"\ncache-control = \"no-cache\n";
    std::fs::write(dir.path().join("looplight.toml"), file).unwrap();
    let out = run_in(dir.path(), &["--config", "looplight.toml"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(
        stderr.starts_with("looplight: looplight.toml:4: "),
        "{stderr}"
    );
    assert!(
        !text(&out.stdout).contains("listening"),
        "{}",
        text(&out.stdout)
    );
    assert!(!dir.path().join("site.db").exists());

    let out = run_in(dir.path(), &["--config", "missing.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("looplight: --config missing.toml: "),
        "{}",
        text(&out.stderr)
    );
}
