//! Logs: the operator messages on stderr (`TIME LEVEL message`, filtered by `--log-level`).

use std::process::Command;
use std::time::Duration;

use crate::support::*;

#[test]
fn operator_messages_are_lines_with_a_time_and_a_level() {
    let mut server = Server::start(&["--workers", "2"]);
    server.signal(SIGTERM);
    server.wait_exit(PATIENCE).expect("exit after SIGTERM");
    server.wait_stderr_closed();
    let lines = server.stderr_lines();
    for line in &lines {
        let (level, _) = operator_message(line).unwrap_or_else(|| panic!("{line:?}"));
        assert_eq!(level, "INFO", "{line:?}");
    }
    let messages = server.messages();
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
    assert_eq!(server.stderr_lines(), Vec::<String>::new());
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
