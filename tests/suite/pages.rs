//! The www pages in a real browser: headless Chromium (Debian's `chromium`, installed by
//! `.ci/run`) loads each page from the real server serving the repository's `www/`. Every page
//! script marks `<body data-ready="true">` when its first work is done (API calls included), so
//! a page whose script failed to load or threw never gets the mark; the console must stay clean.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::*;

const CHROMIUM: &str = "/usr/bin/chromium";

/// The DOM after scripts ran, and Chromium's log.
fn render(url: &str) -> (String, String) {
    render_with(url, &[])
}

/// [`render`] with extra Chromium flags.
fn render_with(url: &str, flags: &[&str]) -> (String, String) {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is required for the browser tests (.ci/run installs it)"
    );
    let profile = tempfile::tempdir().unwrap();
    let mut command = Command::new(CHROMIUM);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(flags)
        .arg(url);
    let output = run_with_deadline(command, Duration::from_secs(60));
    assert!(
        output.status.success(),
        "chromium failed on {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn every_page_runs_its_script_to_completion_without_console_errors() {
    let www = Path::new(env!("CARGO_MANIFEST_DIR")).join("www");
    let server = Server::builder().site(&www).start();
    for page in ["/", "/posts.html", "/login.html", "/chat.html"] {
        let (dom, log) = render(&format!("http://{}{page}", server.addr));
        assert!(
            dom.contains("data-ready=\"true\""),
            "{page}: the page script did not finish; DOM:\n{dom}\nlog:\n{log}"
        );
        let errors: Vec<&str> = log
            .lines()
            .filter(|line| line.contains("Uncaught") || line.contains(":CONSOLE("))
            .collect();
        assert!(
            errors.is_empty(),
            "{page}: console errors:\n{}",
            errors.join("\n")
        );
    }
}

/// The trust instruction the server prints for Chromium really works: with the printed SPKI pin
/// the pages load and run over HTTPS (the API calls included); without it the certificate is
/// refused and no page script runs.
#[test]
fn pages_run_over_https_with_the_printed_chromium_pin() {
    let www = Path::new(env!("CARGO_MANIFEST_DIR")).join("www");
    let server = Server::builder().site(&www).tls().start();
    let flag = "--ignore-certificate-errors-spki-list=";
    let line = server
        .wait_for_stderr_line(IO_TIMEOUT, |line| line.contains(flag))
        .unwrap_or_else(|| panic!("no {flag} on stderr: {:?}", server.stderr_lines()));
    let pin = line
        .split_once(flag)
        .map(|(_, pin)| pin.trim())
        .unwrap_or("");
    let port = server.https_addr().port();
    let pinned = format!("{flag}{pin}");
    for page in ["/", "/posts.html"] {
        let url = format!("https://localhost:{port}{page}");
        let (dom, log) = render_with(&url, &[&pinned]);
        assert!(
            dom.contains("data-ready=\"true\""),
            "{url}: the page did not run over HTTPS; DOM:\n{dom}\nlog:\n{log}"
        );
    }
    let url = format!("https://localhost:{port}/posts.html");
    let (dom, _) = render_with(&url, &[]);
    assert!(
        !dom.contains("data-ready=\"true\""),
        "{url}: an untrusted certificate must not be accepted; DOM:\n{dom}"
    );
}
