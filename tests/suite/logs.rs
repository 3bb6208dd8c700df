//! Logs: the access log's formats (`--log-format common|combined|json`) parsed back after
//! known requests, `combined` beside what nginx itself writes for the same request, the log in
//! a file (`--access-log`) reopened on SIGUSR1 while requests flow, and the operator messages
//! on stderr (`TIME LEVEL message`, filtered by `--log-level`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::nginx::Nginx;
use crate::support::*;

/// A Referer a log must not show raw: quotes, a backslash, a tab (httparse takes them all in
/// a field value).
const REFERER: &[u8] = b"http://example.test/?q=\"x\"\\y\tz";
/// The same as nginx writes it in its logs.
const REFERER_ESCAPED: &str = "http://example.test/?q=\\x22x\\x22\\x5Cy\\x09z";
/// A User-Agent with quotes, UTF-8 (é) and a byte that is not UTF-8 (0xFF).
const USER_AGENT: &[u8] = b"tester/1.0 \"quoted\" \xc3\xa9 \xff end";
const USER_AGENT_ESCAPED: &str = "tester/1.0 \\x22quoted\\x22 \\xC3\\xA9 \\xFF end";

/// `request_line`, a Host, `fields`, and the blank line.
fn request_with(request_line: &str, fields: &[(&str, &[u8])]) -> Vec<u8> {
    let mut raw = format!("{request_line}\r\nHost: localhost\r\n").into_bytes();
    for (name, value) in fields {
        raw.extend_from_slice(name.as_bytes());
        raw.extend_from_slice(b": ");
        raw.extend_from_slice(value);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"\r\n");
    raw
}

/// `GET /hello.txt` with the hostile Referer and User-Agent, closing the connection.
fn hostile_hello() -> Vec<u8> {
    request_with(
        "GET /hello.txt HTTP/1.1",
        &[
            ("Referer", REFERER),
            ("User-Agent", USER_AGENT),
            ("Connection", b"close"),
        ],
    )
}

/// Waits for `count` access-log lines on stdout.
fn wait_for_log_lines(server: &Server, count: usize) -> Vec<String> {
    wait_for(&format!("{count} access-log lines"), PATIENCE, || {
        let lines = server.log_lines();
        if lines.len() >= count {
            Ok(lines)
        } else {
            Err(format!("{lines:?}"))
        }
    })
}

/// `line` with the date between `[` and `]` left out (nginx writes its local time there).
fn without_date(line: &str) -> String {
    match (line.find('['), line.find(']')) {
        (Some(open), Some(close)) if open < close => {
            format!("{}[]{}", &line[..open], &line[close + 1..])
        }
        _ => panic!("no [date] in {line:?}"),
    }
}

/// Whether `line` is `127.0.0.1 - - [date] rest` with the date of a second in
/// `before..=after` (one second of slack each side).
fn is_clf_line(line: &str, before: i64, after: i64, rest: &str) -> bool {
    (before - 1..=after + 1)
        .any(|second| line == format!("127.0.0.1 - - [{}] {rest}", clf_date(second)))
}

#[test]
fn common_is_the_default_format() {
    let server = Server::start_with_log(&["--log-format", "common"]);
    let default = Server::start_with_log(&[]);
    let before = now_secs();
    for server in [&server, &default] {
        let mut c = server.connect();
        c.send(&hostile_hello());
        assert_hello(&c.read_response());
    }
    let after = now_secs();
    for server in [&server, &default] {
        let lines = wait_for_log_lines(server, 1);
        assert!(
            is_clf_line(
                &lines[0],
                before,
                after,
                "\"GET /hello.txt HTTP/1.1\" 200 12"
            ),
            "{lines:?}"
        );
    }
}

#[test]
fn combined_adds_the_referer_and_user_agent_escaped_as_nginx_does() {
    let server = Server::start_with_log(&["--log-format", "combined"]);
    let before = now_secs();
    let mut c = server.connect();
    c.send(&hostile_hello());
    assert_hello(&c.read_response());
    // Without either field, and with a target that holds a quote.
    let missing = server.get("/missing\".txt");
    assert_eq!(missing.status, 404);
    let after = now_secs();

    // Two workers: the lines may come in either order.
    let lines = wait_for_log_lines(&server, 2);
    let hostile = format!(
        "\"GET /hello.txt HTTP/1.1\" 200 12 \"{REFERER_ESCAPED}\" \"{USER_AGENT_ESCAPED}\""
    );
    let bare = format!(
        "\"GET /missing\\\".txt HTTP/1.1\" 404 {} \"-\" \"-\"",
        missing.body.len()
    );
    for rest in [hostile, bare] {
        assert!(
            lines
                .iter()
                .any(|line| is_clf_line(line, before, after, &rest)),
            "no line ends with {rest:?}: {lines:?}"
        );
    }
}

#[test]
fn combined_is_what_nginx_writes_for_the_same_request() {
    let server = Server::start_with_log(&["--log-format", "combined"]);
    let nginx = Nginx::balance(&[server.addr]);
    let plain = get_close("/hello.txt");
    for request in [hostile_hello(), plain] {
        let mut c = nginx.connect();
        c.send(&request);
        assert_hello(&c.read_response());
    }
    // nginx writes its line once the response is sent: both are there.
    let theirs = wait_for("nginx's two access-log lines", PATIENCE, || {
        let log = nginx.access_log();
        let lines: Vec<String> = log.lines().map(str::to_owned).collect();
        if lines.len() >= 2 {
            Ok(lines)
        } else {
            Err(format!("{lines:?}\nerror log:\n{}", nginx.error_log()))
        }
    });
    assert!(
        theirs[0].ends_with(&format!("\"{REFERER_ESCAPED}\" \"{USER_AGENT_ESCAPED}\"")),
        "nginx escapes as the test expects: {theirs:?}"
    );
    assert!(theirs[1].ends_with(" \"-\" \"-\""), "{theirs:?}");
    // Ours come from two workers, in either order.
    let sorted = |lines: &[String]| {
        let mut lines: Vec<String> = lines.iter().map(|line| without_date(line)).collect();
        lines.sort();
        lines
    };
    assert_eq!(sorted(&wait_for_log_lines(&server, 2)), sorted(&theirs));
}

#[test]
fn json_lines_parse_back_with_every_field() {
    let server = Server::start_with_log(&["--log-format", "json"]);
    let mut c = server.connect();
    c.send(&request_with(
        "GET /hello.txt?x=1 HTTP/1.1",
        &[("Referer", REFERER), ("User-Agent", USER_AGENT)],
    ));
    assert_hello(&c.read_response());
    c.send(b"HEAD /hello.txt HTTP/1.0\r\nHost: localhost\r\n\r\n");
    assert_eq!(c.read_response_to_head().status, 200);
    let missing = server.get("/missing.txt");
    assert_eq!(missing.status, 404);
    // Not a request at all: logged without a request line.
    let garbage = server.request(b"\x01\x02 nonsense\r\n\r\n");
    assert_eq!(garbage.status, 400);
    // Answered by a helper thread, on a later loop tick than the one that read it.
    let posts = server.get("/api/posts");
    assert_eq!(posts.status, 200);

    let lines = wait_for_log_lines(&server, 5);
    assert_eq!(lines.len(), 5, "{lines:?}");
    let mut by_target = BTreeMap::new();
    for line in &lines {
        assert!(
            !line.contains('\t'),
            "control bytes are escaped in JSON: {line:?}"
        );
        let mut entry: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        let fields = entry.as_object_mut().expect("an object per line");
        let time = fields.remove("time").expect("time");
        assert_rfc3339_near_now(time.as_str().expect("time is a string"));
        let duration = fields.remove("duration_ms").expect("duration_ms");
        let duration = duration.as_f64().expect("duration_ms is a number");
        assert!(duration >= 0.0, "{line:?}");
        let target = fields["target"].as_str().unwrap_or("(none)").to_owned();
        by_target.insert(target, (entry, duration));
    }
    assert_eq!(
        by_target["/hello.txt?x=1"].0,
        json!({
            "remote_addr": "127.0.0.1",
            "method": "GET",
            "target": "/hello.txt?x=1",
            "protocol": "HTTP/1.1",
            "status": 200,
            "body_bytes": 12,
            "referer": "http://example.test/?q=\"x\"\\y\tz",
            "user_agent": "tester/1.0 \"quoted\" é \u{FFFD} end",
        })
    );
    let entry = |target: &str| by_target[target].0.clone();
    assert_eq!(
        entry("/hello.txt"),
        json!({
            "remote_addr": "127.0.0.1",
            "method": "HEAD",
            "target": "/hello.txt",
            "protocol": "HTTP/1.0",
            "status": 200,
            "body_bytes": 0,
            "referer": null,
            "user_agent": null,
        })
    );
    assert_eq!(
        entry("/missing.txt")["body_bytes"],
        json!(missing.body.len())
    );
    assert_eq!(entry("/missing.txt")["status"], json!(404));
    assert_eq!(
        entry("(none)"),
        json!({
            "remote_addr": "127.0.0.1",
            "method": null,
            "target": null,
            "protocol": null,
            "status": 400,
            "body_bytes": garbage.body.len(),
            "referer": null,
            "user_agent": null,
        })
    );
    assert_eq!(entry("/api/posts")["status"], json!(200));
    assert!(
        by_target["/api/posts"].1 > 0.0,
        "a request answered by a helper took some time: {lines:?}"
    );
}

#[test]
fn access_log_goes_to_a_file_created_then_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let path_arg = path.to_str().unwrap();
    let args = ["--access-log", path_arg];
    let mut server = Server::start_with_log(&args);
    assert!(path.exists(), "created at start");
    assert_hello(&server.get("/hello.txt"));
    wait_for_file_lines(&path, 1);
    server.signal(SIGTERM);
    server.wait_exit(PATIENCE).expect("exit after SIGTERM");
    server.wait_stdout_closed();
    assert_eq!(
        server.log_lines(),
        Vec::<String>::new(),
        "nothing on stdout"
    );

    let again = Server::start_with_log(&args);
    assert_eq!(again.get("/missing.txt").status, 404);
    let lines = wait_for_file_lines(&path, 2);
    assert!(
        lines[0].contains("\"GET /hello.txt HTTP/1.1\" 200 12"),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("\"GET /missing.txt HTTP/1.1\" 404 "),
        "{lines:?}"
    );
}

/// The lines of the file at `path` once it has at least `count`.
fn wait_for_file_lines(path: &Path, count: usize) -> Vec<String> {
    wait_for(
        &format!("{count} lines in {}", path.display()),
        PATIENCE,
        || {
            let lines = file_lines(path);
            if lines.len() >= count {
                Ok(lines)
            } else {
                Err(format!("{lines:?}"))
            }
        },
    )
}

/// The whole lines of the file at `path` (none if it does not exist); panics on a last line
/// without its newline.
fn file_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "a line written in part: {:?}",
        text.lines().last()
    );
    text.lines().map(str::to_owned).collect()
}

/// The `n` of a `json` line for `GET /hello.txt?n=N`; panics on a line that is not one.
fn request_number(line: &str) -> u64 {
    let entry: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    assert_eq!(entry["status"], json!(200), "{line:?}");
    entry["target"]
        .as_str()
        .and_then(|target| target.strip_prefix("/hello.txt?n="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a numbered request: {line:?}"))
}

#[test]
fn sigusr1_reopens_the_file_and_no_line_is_lost_or_split() {
    const WORKERS: usize = 2;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let rotated = dir.path().join("access.log.1");
    let server = Server::start_with_log(&[
        "--workers",
        "2",
        "--log-format",
        "json",
        "--log-level",
        "debug",
        "--access-log",
        path.to_str().unwrap(),
    ]);

    // Two clients send numbered requests, each on a new connection (so both workers serve),
    // until told to stop.
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (next, stop, addr) = (Arc::clone(&next), Arc::clone(&stop), server.addr);
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    let mut c = Client::connect(addr);
                    c.send(&get_close(&format!("/hello.txt?n={n}")));
                    assert_hello(&c.read_response());
                }
            })
        })
        .collect();
    let sent_at_least = |count: u64| {
        wait_until(&format!("{count} requests sent"), PATIENCE, || {
            next.load(Ordering::SeqCst) >= count
        })
    };

    wait_for_file_lines(&path, 20);
    // What logrotate does: rename, then signal.
    std::fs::rename(&path, &rotated).unwrap();
    server.signal("USR1");
    wait_for("every worker to reopen the access log", PATIENCE, || {
        let reopened = server
            .messages()
            .iter()
            .filter(|m| m.starts_with("reopened the access log"))
            .count();
        if reopened == WORKERS {
            Ok(())
        } else {
            Err(server.stderr_lines().join("\n"))
        }
    });
    // Every request numbered from here on is sent after every worker reopened.
    let reopened_at = next.load(Ordering::SeqCst);
    sent_at_least(reopened_at + 20);
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().expect("a client failed");
    }
    let sent = next.load(Ordering::SeqCst);

    let (old, new) = wait_for("a line per request in the two files", PATIENCE, || {
        let (old, new) = (file_lines(&rotated), file_lines(&path));
        if old.len() + new.len() >= sent as usize {
            Ok((old, new))
        } else {
            Err(format!("{} + {} of {sent}", old.len(), new.len()))
        }
    });
    let mut seen = vec![0u32; sent as usize];
    for line in old.iter().chain(&new) {
        let n = request_number(line);
        seen[n as usize] += 1;
    }
    let wrong: Vec<_> = (0..sent).filter(|&n| seen[n as usize] != 1).collect();
    assert!(
        wrong.is_empty(),
        "requests not logged exactly once: {wrong:?}"
    );
    assert!(!old.is_empty());
    let late_in_old: Vec<u64> = old
        .iter()
        .map(|line| request_number(line))
        .filter(|&n| n >= reopened_at)
        .collect();
    assert!(
        late_in_old.is_empty(),
        "requests sent after the reopen went to the old file: {late_in_old:?}"
    );
    assert!(new.len() >= 20, "{new:?}");
}

#[test]
fn operator_messages_are_lines_with_a_time_and_a_level() {
    let mut server = Server::start(&["--workers", "2"]);
    server.signal(SIGTERM);
    server.wait_exit(PATIENCE).expect("exit after SIGTERM");
    server.wait_stderr_closed();
    let lines = server.stderr_lines();
    for line in &lines {
        let (level, message) = operator_message(line).unwrap_or_else(|| panic!("{line:?}"));
        if !is_root_warning(message) {
            assert_eq!(level, "INFO", "{line:?}");
        }
    }
    let messages: Vec<String> = server
        .messages()
        .into_iter()
        .filter(|message| !is_root_warning(message))
        .collect();
    let start = format!(
        "looplight {} serving {} on http://{} with 2 workers",
        env!("CARGO_PKG_VERSION"),
        server.root().display(),
        server.addr
    );
    assert_eq!(messages.first(), Some(&start), "{lines:?}");
    let workers = messages.iter().filter(|m| m.starts_with("worker ")).count();
    assert_eq!(workers, 2, "{lines:?}");
}

#[test]
fn log_level_warn_hides_the_info_messages() {
    let mut server = Server::start(&["--log-level", "warn", "--workers", "2"]);
    assert_hello(&server.get("/hello.txt"));
    server.signal(SIGTERM);
    server.wait_exit(PATIENCE).expect("exit after SIGTERM");
    server.wait_stderr_closed();
    let lines: Vec<String> = server
        .stderr_lines()
        .into_iter()
        .filter(|line| !operator_message(line).is_some_and(|(_, m)| is_root_warning(m)))
        .collect();
    assert_eq!(lines, Vec::<String>::new());
}

/// The warning a server started as root without --user gives (the tests may run as root).
fn is_root_warning(message: &str) -> bool {
    message.starts_with("serving as root")
}

#[test]
fn log_level_error_still_shows_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_looplight"));
    command
        .args(["--addr", "127.0.0.1:0", "--log-level", "error", "--root"])
        .arg(dir.path().join("no-such-root"))
        .arg("--db")
        .arg(dir.path().join("site.db"));
    let output = run_with_deadline(command, Duration::from_secs(15));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    let (level, message) = operator_message(lines[0]).unwrap_or_else(|| panic!("{stderr}"));
    assert_eq!(level, "ERROR");
    assert!(message.starts_with("--root "), "{message:?}");
}

#[test]
fn long_lines_of_both_workers_on_stdout_stay_whole() {
    // Lines longer than a pipe writes whole (4 KiB): a pipe may split such a write when it is
    // full, and let another worker's write in between.
    const CONNECTIONS: usize = 16;
    const REQUESTS: usize = 20;
    let user_agent = "x".repeat(6000);
    let server = Server::start_with_log(&["--workers", "2", "--log-format", "combined"]);
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let mut client = server.connect();
            let request = request_with(
                &format!("GET /hello.txt?c={i} HTTP/1.1"),
                &[("User-Agent", user_agent.as_bytes())],
            );
            thread::spawn(move || {
                // Pipelined: many long lines per tick on each worker.
                client.send(&request.repeat(REQUESTS));
                for _ in 0..REQUESTS {
                    assert_hello(&client.read_response());
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client failed");
    }
    let lines = wait_for_log_lines(&server, CONNECTIONS * REQUESTS);
    assert_eq!(lines.len(), CONNECTIONS * REQUESTS);
    let tail = format!(" HTTP/1.1\" 200 12 \"-\" \"{user_agent}\"");
    for line in &lines {
        let whole = line.starts_with("127.0.0.1 - - [")
            && line.contains("] \"GET /hello.txt?c=")
            && line.ends_with(&tail)
            && line.len() < user_agent.len() + 100;
        assert!(
            whole,
            "a whole line, alone: {:?}…",
            &line[..line.len().min(200)]
        );
    }
}
