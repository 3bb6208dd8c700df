//! Test harness: spawns the real `looplight` binary on an ephemeral port with
//! a fresh temporary document root and its own SQLite database
//! (`--db TMP/looplight.db`, never the default; tests under `postgres::` get
//! a fresh PostgreSQL database instead, see `postgres`), and provides a small,
//! strict raw HTTP/1.1 client on top of `std::net::TcpStream`. `api` and
//! `json` add a request builder, a strict JSON parser and the JSON API
//! contract's assertions; `wait` polls conditions with a deadline (no test
//! sleeps to wait for something or asserts how long anything took); `sse`
//! reads never-ending event streams (chunked framing and server-sent events)
//! incrementally with deadlines, `chat` has the chat API's helpers, `tls`
//! runs the same client over rustls (HTTPS) and `webdriver` is a small W3C
//! WebDriver client for the two-browser chat test; `postgres` runs a
//! throwaway PostgreSQL cluster and `nginx` a balancer in front of several
//! servers; `sockets` reads the kernel's connection table.
//!
//! Everything here is deliberately independent of the server's own code: the
//! client parses responses itself (status line, header fields, Content-Length
//! or chunked framing) so that framing bugs in the server show up as parse
//! failures here. All socket operations use short timeouts so a misbehaving
//! server makes a test fail instead of hang.

#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

pub mod api;
pub mod chat;
pub mod json;
pub mod nginx;
pub mod postgres;
pub mod sockets;
pub mod sse;
pub mod tls;
pub mod wait;
pub mod webdriver;
pub use self::postgres::skip_on_postgres;
pub use api::*;
pub use chat::*;
pub use json::*;
pub use sockets::*;
pub use sse::*;
pub use wait::*;

/// Upper bound for any single blocking socket operation.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the binary may take to print its "listening" line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

pub const SIGTERM: &str = "TERM";
/// File name of each server's database inside its temp dir.
pub const DB_FILE: &str = "looplight.db";
pub const SIGINT: &str = "INT";

/// Content of `/hello.txt` in the default document root (12 bytes).
pub const HELLO: &[u8] = b"Hello world\n";
/// Content of `secret.txt`, which lives NEXT TO the document root (outside
/// it). It must never appear in any response.
pub const SECRET: &[u8] = b"TOP-SECRET-looplight-outside-the-root-7f3a9c";
pub const INDEX_HTML: &[u8] = b"<!doctype html><title>home</title><p>root index</p>\n";
pub const DIR_INDEX_HTML: &[u8] = b"<!doctype html><title>dir</title><p>dir index</p>\n";

/// The files every server gets unless the test supplies its own list.
pub fn default_files() -> Vec<(String, Vec<u8>)> {
    let png: &[u8] =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    [
        ("hello.txt", HELLO),
        ("index.html", INDEX_HTML),
        ("style.css", b"body { color: red; }\n".as_slice()),
        ("app.js", b"console.log('hi');\n".as_slice()),
        ("image.png", png),
        ("blob.unknownext", b"\x00\x01\x02binary".as_slice()),
        ("empty.txt", b"".as_slice()),
        ("dir/index.html", DIR_INDEX_HTML),
        ("dir/page.html", b"<p>page</p>\n".as_slice()),
        ("dir/sub/index.html", b"<p>sub index</p>\n".as_slice()),
        ("noindex/file.txt", b"no index here\n".as_slice()),
    ]
    .into_iter()
    .map(|(p, c)| (p.to_string(), c.to_vec()))
    .collect()
}

/// Deterministic, non-repeating-looking bytes for large-file tests.
pub fn patterned_bytes(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x: u32 = 0x1234_5678;
    while out.len() < len {
        // xorshift32
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

type SetupFn = Box<dyn FnOnce(&Path, &Path)>;

/// Builder for a server process. `Server::start`, `Server::with_root` and
/// `Server::start_with_log` are shorthands for the common cases.
pub struct ServerBuilder {
    files: Vec<(String, Vec<u8>)>,
    args: Vec<String>,
    quiet: bool,
    nofile: Option<u32>,
    setup: Option<SetupFn>,
    dir: Option<TempDir>,
    default_db: bool,
    site: Option<PathBuf>,
    db: Option<String>,
    harness_flags: bool,
    https: bool,
}

impl ServerBuilder {
    /// Replace the default file set.
    pub fn files(mut self, files: &[(&str, &[u8])]) -> Self {
        self.files = files
            .iter()
            .map(|(p, c)| (p.to_string(), c.to_vec()))
            .collect();
        self
    }

    /// Add one file (relative to the root) on top of the current set.
    pub fn file(mut self, path: &str, content: &[u8]) -> Self {
        self.files.push((path.to_string(), content.to_vec()));
        self
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Keep the access log on stdout (omit `--quiet`).
    pub fn with_log(mut self) -> Self {
        self.quiet = false;
        self
    }

    /// Run the binary under `prlimit --nofile=N:N`.
    pub fn nofile(mut self, n: u32) -> Self {
        self.nofile = Some(n);
        self
    }

    /// Extra filesystem preparation, called with (root, outside_dir) before
    /// the server starts (e.g. to create symlinks).
    pub fn setup(mut self, f: impl FnOnce(&Path, &Path) + 'static) -> Self {
        self.setup = Some(Box::new(f));
        self
    }

    /// Start in the temp dir of an earlier server (from `Server::stop`), so
    /// the new process opens the same `looplight.db`: data must survive a
    /// restart.
    pub fn reuse_dir(mut self, dir: TempDir) -> Self {
        self.dir = Some(dir);
        self
    }

    /// Do not pass `--db`; run the process with the temp dir as its working
    /// directory instead, so the default database `./looplight.db` is
    /// created there (never in the repository).
    pub fn default_db(mut self) -> Self {
        self.default_db = true;
        self
    }

    /// Serve this directory (e.g. the repository's `www/`) instead of a temp root.
    pub fn site(mut self, dir: impl Into<PathBuf>) -> Self {
        self.site = Some(dir.into());
        self
    }

    /// Use this `--db` (e.g. a PostgreSQL URL several servers share) instead of a
    /// database of the server's own.
    pub fn db(mut self, db: &str) -> Self {
        self.db = Some(db.to_owned());
        self
    }

    /// Pass none of the harness's own flags (`--addr`, `--quiet`, `--root`, `--db`): the
    /// test's args say everything, e.g. `--config FILE` naming the temp dir's root (given
    /// with `reuse_dir`) and a database in it. The file must keep the address 127.0.0.1:0.
    pub fn without_harness_flags(mut self) -> Self {
        self.harness_flags = false;
        self
    }

    /// Expect the second stdout line (HTTPS) even though no flag says so: HTTPS configured
    /// in a `--config` file.
    pub fn expect_https(mut self) -> Self {
        self.https = true;
        self
    }

    pub fn start(self) -> Server {
        let dir = match self.dir {
            Some(dir) => dir,
            None => tempfile::tempdir().expect("create temp dir"),
        };
        let outside = dir.path().to_path_buf();
        let root = outside.join("www");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(outside.join("secret.txt"), SECRET).unwrap();
        for (path, content) in &self.files {
            let full = root.join(path);
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent).unwrap();
            }
            std::fs::write(&full, content).unwrap();
        }
        if let Some(setup) = self.setup {
            setup(&root, &outside);
        }

        let bin = env!("CARGO_BIN_EXE_looplight");
        let mut cmd = match self.nofile {
            Some(n) => {
                let mut c = Command::new("/usr/bin/prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        // The harness's own flags, unless the test's args say everything.
        let mut database = None;
        if self.harness_flags {
            cmd.args(["--addr", "127.0.0.1:0"]);
            if self.quiet {
                cmd.arg("--quiet");
            }
            cmd.arg("--root").arg(self.site.as_deref().unwrap_or(&root));
            // Every server gets its own SQLite database inside its own temp dir
            // (tests run in parallel; the default ./looplight.db is never used),
            // or under `postgres::` a PostgreSQL database of its own.
            if let Some(db) = &self.db {
                cmd.arg("--db").arg(db);
            } else if self.default_db {
                cmd.current_dir(&outside);
            } else if postgres::this_test_uses_postgres() {
                let db = postgres::database_for_dir(&outside);
                cmd.arg("--db").arg(&db.url);
                database = Some(db);
            } else {
                cmd.arg("--db").arg(outside.join(DB_FILE));
            }
        }
        cmd.args(&self.args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // With HTTPS on, the second stdout line announces the HTTPS address.
        let https = self.https
            || self.args.iter().any(|a| {
                matches!(a.as_str(), "--tls-addr" | "--tls-self-signed" | "--cert")
                    || a.starts_with("--tls-addr=")
                    || a.starts_with("--cert=")
            });
        let cert_file = self
            .args
            .iter()
            .position(|a| a == "--cert")
            .and_then(|i| self.args.get(i + 1))
            .map(PathBuf::from);
        let mut child = cmd.spawn().expect("spawn looplight binary");

        // Drain stderr so the pipe never fills; kept for failure messages.
        let stderr_lines = Arc::new(Mutex::new(Vec::new()));
        let stderr_done = Arc::new(AtomicBool::new(false));
        {
            let stderr = child.stderr.take().unwrap();
            let sink = Arc::clone(&stderr_lines);
            let done = Arc::clone(&stderr_done);
            thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    match line {
                        Ok(l) => sink.lock().unwrap().push(l),
                        Err(_) => break,
                    }
                }
                done.store(true, Ordering::SeqCst);
            });
        }

        // First stdout line announces the address (with HTTPS, the second
        // line the HTTPS address); everything after it is access log,
        // drained continuously into `log`.
        let log = Arc::new(Mutex::new(Vec::new()));
        let stdout_done = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<io::Result<String>>();
        {
            let stdout = child.stdout.take().unwrap();
            let sink = Arc::clone(&log);
            let done = Arc::clone(&stdout_done);
            let announcements = if https { 2 } else { 1 };
            thread::spawn(move || {
                let mut reader = BufReader::new(stdout);
                for _ in 0..announcements {
                    let mut line = String::new();
                    let r = reader.read_line(&mut line).map(|_| line);
                    let _ = tx.send(r);
                }
                for line in reader.lines() {
                    match line {
                        Ok(l) => sink.lock().unwrap().push(l),
                        Err(_) => break,
                    }
                }
                done.store(true, Ordering::SeqCst);
            });
        }

        let fail = |child: &mut Child, msg: String| -> ! {
            let _ = child.kill();
            let status = child.wait().ok();
            // The process is gone: let the reader take the rest of its stderr.
            let _ = try_wait_for(Duration::from_secs(2), POLL, || {
                if stderr_done.load(Ordering::SeqCst) {
                    Ok(())
                } else {
                    Err(String::new())
                }
            });
            panic!(
                "{msg}\nexit status: {status:?}\nstderr:\n{}",
                stderr_lines.lock().unwrap().join("\n")
            );
        };
        // The next stdout line, which must announce `scheme://127.0.0.1:PORT` with a real port.
        let announced = |child: &mut Child, scheme: &str, which: &str| -> SocketAddr {
            let line = match rx.recv_timeout(STARTUP_TIMEOUT) {
                Ok(Ok(line)) if !line.is_empty() => line,
                Ok(Ok(_)) => fail(
                    child,
                    format!("server exited before printing its {scheme} address"),
                ),
                Ok(Err(e)) => fail(child, format!("reading server stdout failed: {e}")),
                Err(_) => fail(
                    child,
                    format!("server did not print its {scheme} address within 10 s"),
                ),
            };
            let line = line.trim_end_matches('\n');
            let prefix = format!("looplight listening on {scheme}://");
            let Some(addr_text) = line.strip_prefix(prefix.as_str()) else {
                fail(child, format!("unexpected {which} stdout line: {line:?}"));
            };
            let addr: SocketAddr = match addr_text.parse() {
                Ok(a) => a,
                Err(_) => fail(child, format!("bad address in {which} line: {line:?}")),
            };
            assert_eq!(addr.ip().to_string(), "127.0.0.1", "{which} line: {line:?}");
            assert_ne!(
                addr.port(),
                0,
                "server must report the real bound port: {line:?}"
            );
            addr
        };
        let addr = announced(&mut child, "http", "first");
        // With HTTPS on, the second line announces the TLS listener.
        let tls_addr = https.then(|| announced(&mut child, "https", "second"));

        Server {
            child,
            addr,
            tls_addr,
            cert_file,
            log,
            stdout_done,
            stderr_lines,
            stderr_done,
            root,
            dir: Some(dir),
            database,
        }
    }
}

/// A running `looplight` process. Dropping it SIGKILLs the process.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// The HTTPS address (second stdout line), when HTTPS is on.
    pub tls_addr: Option<SocketAddr>,
    /// The `--cert` file, if one was given.
    cert_file: Option<PathBuf>,
    log: Arc<Mutex<Vec<String>>>,
    /// Set once the stdout reader has seen EOF (the process and everything
    /// it printed is gone: `log` is final).
    stdout_done: Arc<AtomicBool>,
    stderr_lines: Arc<Mutex<Vec<String>>>,
    /// Set once the stderr reader has seen EOF (`stderr_lines` is final).
    stderr_done: Arc<AtomicBool>,
    root: PathBuf,
    /// Always Some, except after `stop` took it.
    dir: Option<TempDir>,
    /// The PostgreSQL database of a test under `postgres::`, dropped after the process.
    database: Option<postgres::Database>,
}

impl Server {
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            files: default_files(),
            args: Vec::new(),
            quiet: true,
            nofile: None,
            setup: None,
            dir: None,
            default_db: false,
            site: None,
            db: None,
            harness_flags: true,
            https: false,
        }
    }

    /// Default root, `--quiet`, plus `args`.
    pub fn start(args: &[&str]) -> Server {
        Self::builder().args(args).start()
    }

    /// Like `start` but without `--quiet`, so the access log is captured.
    pub fn start_with_log(args: &[&str]) -> Server {
        Self::builder().args(args).with_log().start()
    }

    /// A root containing exactly `files`.
    pub fn with_root(files: &[(&str, &[u8])], args: &[&str]) -> Server {
        Self::builder().files(files).args(args).start()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory containing the root (and `secret.txt`).
    pub fn outside_dir(&self) -> &Path {
        self.dir.as_ref().expect("temp dir").path()
    }

    /// The SQLite database the server was started with (`--db`).
    pub fn db_path(&self) -> PathBuf {
        self.outside_dir().join(DB_FILE)
    }

    /// Graceful stop: SIGTERM, wait for exit status 0, and hand back the
    /// temp dir (root + database) for `ServerBuilder::reuse_dir`.
    pub fn stop(mut self) -> TempDir {
        self.signal(SIGTERM);
        let status = self
            .wait_exit(Duration::from_secs(15))
            .unwrap_or_else(|| panic!("server did not exit within 15 s of SIGTERM"));
        assert!(
            status.success(),
            "exit status after SIGTERM: {status}\nstderr:\n{}",
            self.stderr_lines().join("\n")
        );
        // A server started again on this dir opens the same database.
        if let Some(database) = self.database.take() {
            database.keep();
        }
        self.dir.take().expect("temp dir")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// One request on a fresh connection; returns the first response.
    pub fn request(&self, raw: &[u8]) -> Response {
        let mut c = self.connect();
        c.send(raw);
        c.read_response()
    }

    /// `GET path` with `Connection: close` on a fresh connection.
    pub fn get(&self, path: &str) -> Response {
        self.request(&get_close(path))
    }

    /// Access-log lines printed so far (after the "listening" line).
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr_lines.lock().unwrap().clone()
    }

    /// Polls stderr until a line satisfies `pred` or `timeout` passes.
    pub fn wait_for_stderr_line(
        &self,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        wait_for_line(&self.stderr_lines, timeout, pred)
    }

    /// The operator messages on stderr so far (see `operator_message`), without their time
    /// and level; lines of another shape are left out.
    pub fn messages(&self) -> Vec<String> {
        self.stderr_lines()
            .iter()
            .filter_map(|line| operator_message(line))
            .map(|(_, message)| message.to_owned())
            .collect()
    }

    /// Polls stderr until an operator message satisfies `pred` or `timeout` passes; returns
    /// the message (without time and level).
    pub fn wait_for_message(
        &self,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let line = self.wait_for_stderr_line(timeout, |line| {
            operator_message(line).is_some_and(|(_, message)| pred(message))
        })?;
        operator_message(&line).map(|(_, message)| message.to_owned())
    }

    /// Polls the access log until a line satisfies `pred` or `timeout` passes.
    pub fn wait_for_log_line(
        &self,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        wait_for_line(&self.log, timeout, pred)
    }

    /// Sends a signal by name (e.g. `SIGTERM` = "TERM") using `kill(1)`.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill(1)");
        assert!(status.success(), "kill -{sig} {} failed", self.pid());
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        try_wait_for(timeout, POLL, || {
            self.child
                .try_wait()
                .expect("try_wait")
                .ok_or_else(|| "still running".to_string())
        })
        .ok()
    }

    /// After the process exited: waits until its stdout has been read to the
    /// end, so `log_lines` holds everything it ever printed.
    pub fn wait_stdout_closed(&self) {
        wait_until("the server's stdout to reach EOF", PATIENCE, || {
            self.stdout_done.load(Ordering::SeqCst)
        });
    }

    /// After the process exited: waits until its stderr has been read to the
    /// end, so `stderr_lines` holds everything it ever printed.
    pub fn wait_stderr_closed(&self) {
        wait_until("the server's stderr to reach EOF", PATIENCE, || {
            self.stderr_done.load(Ordering::SeqCst)
        });
    }

    /// Panics if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(st) = self.child.try_wait().expect("try_wait") {
            panic!(
                "server process exited unexpectedly: {st}\nstderr:\n{}",
                self.stderr_lines().join("\n")
            );
        }
    }

    /// Number of file descriptors the server process has open.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("read /proc/<pid>/fd")
            .count()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// Request builders
// ---------------------------------------------------------------------------

/// `GET path HTTP/1.1` with a Host header (keep-alive).
pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes()
}

/// `GET path HTTP/1.1` with `Connection: close`.
pub fn get_close(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").into_bytes()
}

/// `HEAD path HTTP/1.1` with a Host header (keep-alive).
pub fn head(path: &str) -> Vec<u8> {
    format!("HEAD {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes()
}

/// Concatenates request byte strings (for pipelining).
pub fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

// ---------------------------------------------------------------------------
// Response
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Response {
    pub version: String,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The raw head as received (status line + fields, without final CRLF).
    pub head: String,
}

impl Response {
    pub fn status_line(&self) -> String {
        format!("{} {} {}", self.version, self.status, self.reason)
    }

    /// First value of a header field, case-insensitive name match.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All values of a header field, in order.
    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether a comma-separated header (e.g. Connection) contains `token`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers_all(name)
            .iter()
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length").map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("bad Content-Length {v:?}"))
        })
    }

    /// Methods listed in `Allow`, trimmed, in order.
    pub fn allow(&self) -> Vec<String> {
        self.headers_all("allow")
            .iter()
            .flat_map(|v| v.split(','))
            .map(|m| m.trim().to_string())
            .collect()
    }

    /// Checks what every response must have per the contract:
    /// `HTTP/1.1` status line, `Date` (IMF-fixdate, close to now),
    /// `Server: looplight`, never `Transfer-Encoding`, and a
    /// `Content-Length` that matches the body unless the status forbids one.
    /// (Use `assert_basics_head` for responses to HEAD.)
    pub fn assert_basics(&self) {
        self.assert_basics_inner(false);
        if !no_body_status(self.status) {
            assert_eq!(
                self.content_length(),
                Some(self.body.len() as u64),
                "Content-Length must equal the body length (RFC 9110 §8.6): {}",
                self.head
            );
        }
    }

    /// Like `assert_basics` for a response to HEAD (no body on the wire).
    pub fn assert_basics_head(&self) {
        self.assert_basics_inner(true);
        assert!(self.body.is_empty());
    }

    fn assert_basics_inner(&self, _head: bool) {
        assert_eq!(
            self.version,
            "HTTP/1.1",
            "status line: {}",
            self.status_line()
        );
        assert!(
            !self.reason.is_empty(),
            "reason phrase expected: {:?}",
            self.status_line()
        );
        // RFC 9110 §6.6.1: an origin server with a clock MUST send Date.
        let date = self
            .header("date")
            .unwrap_or_else(|| panic!("missing Date:\n{}", self.head));
        assert_date_is_now(date);
        assert_eq!(
            self.headers_all("date").len(),
            1,
            "one Date field:\n{}",
            self.head
        );
        // RFC 9110 §10.2.4
        assert_eq!(
            self.header("server"),
            Some("looplight"),
            "Server header:\n{}",
            self.head
        );
        assert!(
            self.header("transfer-encoding").is_none(),
            "chunked responses are not used:\n{}",
            self.head
        );
        if no_body_status(self.status) {
            // RFC 9110 §8.6: no Content-Length in 1xx / 204 responses.
            if self.status < 200 || self.status == 204 {
                assert!(self.header("content-length").is_none(), "{}", self.head);
            }
        } else {
            assert!(
                self.header("content-length").is_some(),
                "Content-Length required:\n{}",
                self.head
            );
            assert_eq!(self.headers_all("content-length").len(), 1, "{}", self.head);
        }
    }
}

fn no_body_status(status: u16) -> bool {
    (100..200).contains(&status) || status == 204 || status == 304
}

// ---------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------

/// See `Client::peek_now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peeked {
    /// Nothing has arrived and the connection is open.
    Nothing,
    /// Bytes are waiting to be read.
    Bytes,
    /// The server closed (or reset) the connection, with nothing unread.
    Closed,
}

/// A raw TCP client with a receive buffer, so several (pipelined) responses
/// can be parsed one after another from the same connection. With `tls`
/// (see `Client::connect_tls`) every byte goes through rustls; `stream` is
/// then the encrypted socket underneath.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
    tls: Option<Box<rustls::ClientConnection>>,
    /// How the server ended the TLS stream, once a read saw it.
    tls_end: Option<tls::TlsEnd>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        Self::from_stream(stream)
    }

    pub fn from_stream(stream: TcpStream) -> Client {
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: Vec::new(),
            tls: None,
            tls_end: None,
        }
    }

    pub fn set_read_timeout(&self, d: Duration) {
        self.stream.set_read_timeout(Some(d)).unwrap();
    }

    /// Writes all bytes (panics on error).
    pub fn send(&mut self, bytes: &[u8]) {
        self.try_send(bytes)
            .unwrap_or_else(|e| panic!("send failed: {e}"));
    }

    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Some(conn) = self.tls.as_deref_mut() {
            return tls::write_plaintext(conn, &mut self.stream, bytes);
        }
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Sends `bytes` in pieces of `piece` bytes with a short pause between
    /// pieces, so they arrive in separate TCP segments.
    pub fn send_in_pieces(&mut self, bytes: &[u8], piece: usize, pause: Duration) {
        for chunk in bytes.chunks(piece) {
            self.send(chunk);
            // The scenario itself (a client trickling its request), not a
            // wait for anything: callers assert nothing about how long it took.
            thread::sleep(pause);
        }
    }

    /// Half-closes the write side.
    pub fn shutdown_write(&self) {
        self.stream.shutdown(Shutdown::Write).unwrap();
    }

    /// Reads more bytes into the buffer; Ok(0) means EOF.
    fn fill(&mut self) -> io::Result<usize> {
        let mut tmp = [0u8; 65536];
        let n = match self.tls.as_deref_mut() {
            Some(conn) => tls::read_plaintext(conn, &mut self.stream, &mut tmp, &mut self.tls_end)?,
            None => self.stream.read(&mut tmp)?,
        };
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    fn fill_or_err(&mut self, what: &str) -> Result<(), String> {
        match self.fill() {
            Ok(0) => Err(format!(
                "connection closed while reading {what}; buffered: {:?}",
                self.preview()
            )),
            Ok(_) => Ok(()),
            Err(e) if is_timeout(&e) => Err(format!(
                "timed out reading {what}; buffered so far: {:?}",
                self.preview()
            )),
            Err(e) => Err(format!(
                "error reading {what}: {e}; buffered: {:?}",
                self.preview()
            )),
        }
    }

    fn preview(&self) -> String {
        let n = self.buf.len().min(400);
        String::from_utf8_lossy(&self.buf[..n]).into_owned()
    }

    /// What the server has sent that this client has not read, right now
    /// (a non-blocking peek; nothing is consumed).
    pub fn peek_now(&self) -> Peeked {
        if !self.buf.is_empty() {
            return Peeked::Bytes;
        }
        self.stream.set_nonblocking(true).unwrap();
        let mut probe = [0u8; 1];
        let peeked = self.stream.peek(&mut probe);
        self.stream.set_nonblocking(false).unwrap();
        match peeked {
            Ok(0) => Peeked::Closed,
            Ok(_) => Peeked::Bytes,
            Err(e) if e.kind() == ErrorKind::WouldBlock => Peeked::Nothing,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => Peeked::Closed,
            Err(e) => panic!("peek: {e}"),
        }
    }

    /// Bytes received but not yet consumed by a parsed response.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Reads exactly `n` raw bytes (from the buffer first).
    pub fn read_exact_bytes(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            if let Err(e) = self.fill_or_err("raw bytes") {
                panic!("{e}");
            }
        }
        self.buf.drain(..n).collect()
    }

    /// Parses one response (to a non-HEAD request). Panics on error.
    pub fn read_response(&mut self) -> Response {
        self.try_read_response(false)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Parses one response to a HEAD request (no body regardless of
    /// Content-Length, RFC 9112 §6.3 item 1).
    pub fn read_response_to_head(&mut self) -> Response {
        self.try_read_response(true)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_read_response(&mut self, to_head: bool) -> Result<Response, String> {
        // Head: everything up to the first CRLFCRLF.
        let head_end = loop {
            if let Some(pos) = find(&self.buf, b"\r\n\r\n") {
                break pos;
            }
            if self.buf.len() > 64 * 1024 {
                return Err(format!(
                    "response head too large or not CRLF-terminated: {:?}",
                    self.preview()
                ));
            }
            self.fill_or_err("response head")?;
        };
        let head_bytes: Vec<u8> = self.buf.drain(..head_end + 4).collect();
        let head = String::from_utf8(head_bytes[..head_end].to_vec()).map_err(|_| {
            format!(
                "non-UTF-8 response head: {:?}",
                String::from_utf8_lossy(&head_bytes)
            )
        })?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        // RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
        let (version, rest) = status_line
            .split_once(' ')
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let (code, reason) = rest
            .split_once(' ')
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        if !version.starts_with("HTTP/") {
            return Err(format!("bad status line {status_line:?}"));
        }
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("bad status code in {status_line:?}"));
        }
        let status: u16 = code.parse().unwrap();
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| format!("bad header line {line:?} in\n{head}"))?;
            if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
                return Err(format!("bad header name {name:?} in\n{head}"));
            }
            headers.push((
                name.to_string(),
                value.trim_matches(|c| c == ' ' || c == '\t').to_string(),
            ));
        }
        let mut resp = Response {
            version: version.to_string(),
            status,
            reason: reason.to_string(),
            headers,
            body: Vec::new(),
            head: head.clone(),
        };

        if to_head || no_body_status(status) {
            return Ok(resp);
        }
        let chunked = resp
            .header("transfer-encoding")
            .map(|te| {
                te.split(',')
                    .next_back()
                    .unwrap()
                    .trim()
                    .eq_ignore_ascii_case("chunked")
            })
            .unwrap_or(false);
        if chunked {
            resp.body = self.read_chunked_body()?;
        } else if let Some(cl) = resp.header("content-length") {
            if resp.headers_all("content-length").len() > 1 {
                return Err(format!("several Content-Length fields:\n{head}"));
            }
            let len: usize = cl
                .parse()
                .map_err(|_| format!("bad Content-Length {cl:?}"))?;
            while self.buf.len() < len {
                self.fill_or_err(&format!("body ({} of {len} bytes so far)", self.buf.len()))?;
            }
            resp.body = self.buf.drain(..len).collect();
        } else {
            // Close-delimited body (RFC 9112 §6.3 item 8).
            resp.body = self.try_read_to_close()?;
        }
        Ok(resp)
    }

    fn read_chunked_body(&mut self) -> Result<Vec<u8>, String> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line()?;
            let size_text = line.split(';').next().unwrap().trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| format!("bad chunk size {line:?}"))?;
            if size == 0 {
                // trailer section
                loop {
                    if self.read_line()?.is_empty() {
                        return Ok(body);
                    }
                }
            }
            while self.buf.len() < size + 2 {
                self.fill_or_err("chunk data")?;
            }
            body.extend(self.buf.drain(..size));
            if self.buf.drain(..2).as_slice() != b"\r\n" {
                return Err("chunk data not followed by CRLF".into());
            }
        }
    }

    fn read_line(&mut self) -> Result<String, String> {
        loop {
            if let Some(pos) = find(&self.buf, b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..pos + 2).collect();
                return Ok(String::from_utf8_lossy(&line[..pos]).into_owned());
            }
            self.fill_or_err("line")?;
        }
    }

    /// Reads until EOF (or connection reset); panics on timeout.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        self.try_read_to_close().unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_read_to_close(&mut self) -> Result<Vec<u8>, String> {
        loop {
            match self.fill() {
                Ok(0) => return Ok(std::mem::take(&mut self.buf)),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    return Ok(std::mem::take(&mut self.buf));
                }
                Err(e) if is_timeout(&e) => {
                    return Err(format!(
                        "timed out waiting for the server to close; received so far: {:?}",
                        self.preview()
                    ));
                }
                Err(e) => return Err(format!("read error: {e}")),
            }
        }
    }

    /// Asserts the server closes the connection (EOF or reset) within
    /// `IO_TIMEOUT` without sending any further bytes.
    pub fn assert_closed(&mut self) {
        self.assert_closed_within(IO_TIMEOUT);
    }

    pub fn assert_closed_within(&mut self, d: Duration) {
        if let Err(e) = self.closed_within(d) {
            panic!("{e}");
        }
    }

    /// Ok(()) if the peer closes (EOF/reset) within `d` with no further data.
    pub fn closed_within(&mut self, d: Duration) -> Result<(), String> {
        if !self.buf.is_empty() {
            return Err(format!(
                "unexpected extra bytes before close: {:?}",
                self.preview()
            ));
        }
        self.set_read_timeout(d);
        let r = self.fill();
        self.set_read_timeout(IO_TIMEOUT);
        match r {
            Ok(0) => Ok(()),
            Ok(_) => Err(format!(
                "expected the connection to be closed, got bytes: {:?}",
                self.preview()
            )),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => Ok(()),
            Err(e) if is_timeout(&e) => Err(format!("connection still open after {d:?}")),
            Err(e) => Err(format!("unexpected read error: {e}")),
        }
    }

    /// Asserts nothing at all arrives (and the connection is not closed)
    /// during `d`.
    pub fn assert_silent_for(&mut self, d: Duration) {
        assert!(
            self.buf.is_empty(),
            "unexpected buffered bytes: {:?}",
            self.preview()
        );
        self.set_read_timeout(d);
        let r = self.fill();
        self.set_read_timeout(IO_TIMEOUT);
        match r {
            Err(e) if is_timeout(&e) => {}
            Ok(0) => panic!("connection was closed, expected it to stay open and silent"),
            Ok(_) => panic!("expected no bytes, got {:?}", self.preview()),
            Err(e) => panic!("expected no bytes, got error {e}"),
        }
    }
}

/// Polls `lines` (filled by a reader thread) until one satisfies `pred` or `timeout` passes.
/// An operator message as the server writes it on stderr, `TIME LEVEL message` (an RFC 3339
/// time in UTC, a level name in capitals): `(level, message)`, or `None` for a line of
/// another shape.
pub fn operator_message(line: &str) -> Option<(&str, &str)> {
    let (time, rest) = line.split_once(' ')?;
    let (level, message) = rest.split_once(' ')?;
    rfc3339_utc(time)?;
    ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]
        .contains(&level)
        .then_some((level, message))
}

fn wait_for_line(
    lines: &Mutex<Vec<String>>,
    timeout: Duration,
    pred: impl Fn(&str) -> bool,
) -> Option<String> {
    try_wait_for(timeout, POLL, || {
        let lines = lines.lock().unwrap();
        lines
            .iter()
            .find(|l| pred(l))
            .cloned()
            .ok_or_else(|| format!("{} lines", lines.len()))
    })
    .ok()
}

pub fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

// ---------------------------------------------------------------------------
// Common assertions
// ---------------------------------------------------------------------------

/// Asserts an error response to a bad request: the expected status, a short
/// text/plain body, `Connection: close`, and that the server then closes
/// the connection (RFC 9112 §9.6).
pub fn assert_error_and_close(client: &mut Client, resp: &Response, status: u16) {
    assert_eq!(
        resp.status,
        status,
        "expected {status}, got:\n{}\n\n{}",
        resp.head,
        resp.body_str()
    );
    resp.assert_basics();
    assert_error_body(resp);
    assert!(
        resp.has_token("connection", "close"),
        "error response must carry Connection: close:\n{}",
        resp.head
    );
    client.assert_closed();
}

/// Errors have a short, non-empty text/plain body.
pub fn assert_error_body(resp: &Response) {
    let ct = resp
        .header("content-type")
        .unwrap_or_else(|| panic!("error without Content-Type:\n{}", resp.head));
    assert!(
        ct.starts_with("text/plain"),
        "error Content-Type should be text/plain, got {ct:?}"
    );
    assert!(
        !resp.body.is_empty() && resp.body.len() < 4096,
        "short error body expected, got {} bytes",
        resp.body.len()
    );
}

/// Sends `raw` on a fresh connection and asserts the error-and-close
/// behaviour for `status`.
pub fn expect_error_and_close(server: &Server, raw: &[u8], status: u16) {
    let mut c = server.connect();
    c.send(raw);
    let resp = c
        .try_read_response(false)
        .unwrap_or_else(|e| panic!("request {:?}: {e}", String::from_utf8_lossy(raw)));
    assert_eq!(
        resp.status,
        status,
        "request {:?} expected {status}, got:\n{}",
        String::from_utf8_lossy(raw),
        resp.head
    );
    assert_error_and_close(&mut c, &resp, status);
}

/// Asserts a 200 response carrying `/hello.txt`.
pub fn assert_hello(resp: &Response) {
    assert_eq!(
        resp.status, 200,
        "expected 200 for /hello.txt:\n{}",
        resp.head
    );
    resp.assert_basics();
    assert_eq!(resp.body, HELLO);
}

// ---------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// (year, month 1-12, day 1-31) from days since 1970-01-01 (H. Hinnant).
fn civil_from_days(z: i64) -> (i64, usize, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as usize;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn split_time(secs: i64) -> (i64, usize, u32, i64, i64, i64, usize) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let wd = (days + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    (y, m, d, rem / 3600, rem / 60 % 60, rem % 60, wd)
}

/// RFC 9110 §5.6.7 IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn imf_fixdate(secs: i64) -> String {
    let (y, m, d, hh, mm, ss, wd) = split_time(secs);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[wd],
        d,
        MONTHS[m - 1],
        y,
        hh,
        mm,
        ss
    )
}

/// Common Log Format timestamp, e.g. `10/Oct/2000:13:55:36 +0000`.
pub fn clf_date(secs: i64) -> String {
    let (y, m, d, hh, mm, ss, _) = split_time(secs);
    format!(
        "{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000",
        d,
        MONTHS[m - 1],
        y,
        hh,
        mm,
        ss
    )
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Asserts `value` is an IMF-fixdate within a few seconds of now.
pub fn assert_date_is_now(value: &str) {
    let now = now_secs();
    let ok = (now - 5..=now + 2).any(|t| imf_fixdate(t) == value);
    assert!(
        ok,
        "Date {value:?} is not an IMF-fixdate near now ({})",
        imf_fixdate(now)
    );
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since the epoch of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn parse_imf_fixdate(value: &str) -> Option<i64> {
    if !is_imf_fixdate(value) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| value[r].parse::<i64>().ok();
    let month = MONTHS.iter().position(|m| *m == &value[8..11])? as i64 + 1;
    let days = days_from_civil(num(12..16)?, month, num(5..7)?);
    let secs = days * 86_400 + num(17..19)? * 3600 + num(20..22)? * 60 + num(23..25)?;
    // The weekday must match the date.
    (imf_fixdate(secs) == value).then_some(secs)
}

/// The server's clock, in whole seconds: the `Date` of a fresh response.
pub fn server_clock(server: &Server) -> i64 {
    let resp = server.get("/hello.txt");
    let date = resp
        .header("date")
        .unwrap_or_else(|| panic!("no Date:\n{}", resp.head));
    parse_imf_fixdate(date).unwrap_or_else(|| panic!("bad Date {date:?}"))
}

/// Waits until the server's clock (its `Date`) reads later than `secs`:
/// time has passed where it matters, on the server, without a sleep.
pub fn wait_for_server_clock_past(server: &Server, secs: i64) {
    wait_for_every(
        &format!("the server's Date to pass {}", imf_fixdate(secs)),
        PATIENCE,
        Duration::from_millis(50),
        || {
            let now = server_clock(server);
            if now > secs {
                Ok(())
            } else {
                Err(imf_fixdate(now))
            }
        },
    );
}

/// Syntax-only IMF-fixdate check (any instant).
pub fn is_imf_fixdate(value: &str) -> bool {
    let b = value.as_bytes();
    if b.len() != 29 || !value.is_ascii() {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(|c| c.is_ascii_digit());
    DAYS.contains(&&value[0..3])
        && &value[3..5] == ", "
        && digits(5..7)
        && b[7] == b' '
        && MONTHS.contains(&&value[8..11])
        && b[11] == b' '
        && digits(12..16)
        && b[16] == b' '
        && digits(17..19)
        && b[19] == b':'
        && digits(20..22)
        && b[22] == b':'
        && digits(23..25)
        && &value[25..] == " GMT"
}

/// Runs `command` to completion with stdin closed and its output captured; panics if it is
/// still running after `limit` (a hung child must fail the test, not hang it).
pub fn run_with_deadline(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let status = match try_wait_for(limit, POLL, || {
        child
            .try_wait()
            .unwrap()
            .ok_or_else(|| "running".to_string())
    }) {
        Ok(status) => status,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not finish within {limit:?}");
        }
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}
