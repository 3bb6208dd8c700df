//! `--user NAME`: started as root, the server binds its listeners (a port below 1024 among
//! them), then runs as NAME, every thread of it, with its database still usable. These tests
//! need root; run as another user they say so and pass without checking anything.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;

use nix::unistd::{User, geteuid};

use crate::support::api::user_token;
use crate::support::wait::PATIENCE;
use crate::support::{HELLO, Server};

/// Whether the tests run as root; if not, says which test is skipped and why.
fn root_or_skip(test: &str) -> bool {
    let root = geteuid().is_root();
    if !root {
        eprintln!("SKIPPED {test}: --user is only meaningful when started as root");
    }
    root
}

/// A port below 1024 that nothing listens on (only root can bind one).
fn free_privileged_port() -> SocketAddr {
    (900..1024)
        .rev()
        .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
        .find(|addr| TcpListener::bind(addr).is_ok())
        .expect("a free port below 1024")
}

/// The real, effective, saved and file-system ids on a `Uid:` or `Gid:` line of a status file.
fn ids(status: &str, field: &str) -> Vec<u32> {
    let line = status
        .lines()
        .find(|line| line.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} line"));
    line[field.len()..]
        .split_whitespace()
        .map(|id| id.parse().unwrap())
        .collect()
}

#[test]
fn after_binding_every_thread_runs_as_the_user_and_the_database_still_works() {
    if !root_or_skip("privileges::after_binding_every_thread_runs_as_the_user") {
        return;
    }
    let nobody = User::from_name("nobody").unwrap().expect("the user nobody");
    let metrics_addr = free_privileged_port();
    let metrics_arg = metrics_addr.to_string();
    // The temporary directory (root's, 0700) holds the site and the database: nobody must be
    // able to reach them, as on a real server. The log directory stays root's: only the log
    // file is handed over.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let log_dir = dir.path().join("log");
    std::fs::create_dir(&log_dir).unwrap();
    let access_log = log_dir.join("access.log");
    let access_log_arg = access_log.to_str().unwrap().to_owned();
    let server = Server::builder()
        .reuse_dir(dir)
        .with_log()
        .args(&[
            "--user",
            "nobody",
            "--metrics-addr",
            &metrics_arg,
            "--access-log",
            &access_log_arg,
        ])
        .start();

    let tasks = format!("/proc/{}/task", server.pid());
    let threads: Vec<_> = std::fs::read_dir(&tasks).unwrap().collect();
    assert!(threads.len() > 1, "the loop, the database writer, helpers");
    for thread in threads {
        let status = std::fs::read_to_string(thread.unwrap().path().join("status")).unwrap();
        assert_eq!(ids(&status, "Uid:"), [nobody.uid.as_raw(); 4], "{status}");
        assert_eq!(ids(&status, "Gid:"), [nobody.gid.as_raw(); 4], "{status}");
        let groups = status.lines().find(|l| l.starts_with("Groups:")).unwrap();
        assert!(
            !groups.split_whitespace().any(|group| group == "0"),
            "{groups}"
        );
    }

    let response = server.get("/hello.txt");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, HELLO);
    // A write (the writer thread's connection) and reads (connections opened after the
    // switch, which need the database files and their -shm).
    let token = user_token(&server, "dropped");
    assert_eq!(token.len(), 64);
    let database = std::fs::metadata(server.db_path()).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&database),
        nobody.uid.as_raw()
    );
    // Each worker opened the access log after root was given up, and wrote to it.
    crate::support::wait::wait_for("the access log written", PATIENCE, || {
        let log = std::fs::read_to_string(&access_log).map_err(|e| e.to_string())?;
        if log.contains("\"GET /hello.txt HTTP/1.1\" 200") {
            Ok(())
        } else {
            Err(log)
        }
    });
    let log_file = std::fs::metadata(&access_log).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&log_file),
        nobody.uid.as_raw()
    );
    // The listener below 1024 was bound before root was given up.
    let mut client = crate::support::Client::connect(metrics_addr);
    client.send(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(client.read_response().status, 200);
}

#[test]
fn an_unknown_user_stops_the_start_with_a_message_naming_it() {
    if !root_or_skip("privileges::an_unknown_user_stops_the_start") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_looplight"))
        .args(["--addr", "127.0.0.1:0", "--user", "no-such-user-looplight"])
        .arg("--db")
        .arg(dir.path().join("x.db"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--user no-such-user-looplight"), "{stderr}");
}

#[test]
fn serving_as_root_without_user_is_warned_about() {
    if !root_or_skip("privileges::serving_as_root_without_user_is_warned_about") {
        return;
    }
    let server = Server::start(&[]);
    let warning = server.wait_for_stderr_line(PATIENCE, |line| {
        line.contains("serving as root") && line.contains("--user")
    });
    assert!(warning.is_some(), "{:?}", server.stderr_lines());
}
