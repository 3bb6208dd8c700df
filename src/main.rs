//! The `looplight` binary: flags → Config → the API's shared state → one App (API routes +
//! www/) per worker → Server::run_workers.

// One call needs `unsafe` (the allocator policy, below); nothing else may.
#![deny(unsafe_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use looplight::api::ApiSettings;
use looplight::live_reload::LiveReload;
use looplight::privileges;
use looplight::server::tls::CertificateInfo;
use looplight::store::Target;
use looplight::{App, Config, Publisher, Server};

fn main() -> ExitCode {
    give_large_allocations_back();
    // The flags over the --config file; exits on errors, --help and --check-config.
    let config = looplight::config_file::parse();
    // The first and only logger: this cannot fail.
    let _ = looplight::logger::init(config.log_level);
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            log::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: Config) -> std::io::Result<()> {
    // Opened once, shared by every worker's app: one store, one login throttle, one publisher
    // whose events reach the streams of every worker.
    let publisher = Publisher::default();
    let api = looplight::api::open(ApiSettings::from(&config), publisher.clone())
        .map_err(|error| std::io::Error::other(format!("--db {}: {error}", config.db.display())))?;
    let (redirect_http, hsts) = (config.redirect_http, config.hsts);
    let (root, mut static_options) = (config.root.clone(), config.static_options());
    let workers = config.workers();
    let user = config.user.clone();
    // What --user must still be able to write: the SQLite files and the access log (opened
    // again by each worker, and on SIGUSR1).
    let mut handed_over = match config.db_target() {
        Target::Sqlite(path) => privileges::sqlite_files(&path),
        Target::Postgres(_) => Vec::new(),
    };
    handed_over.extend(config.access_log.clone());
    // --watch: watched from now on (before the address is announced), for as long as we serve.
    let live_reload = config
        .watch
        .then(|| LiveReload::start(&root, publisher.clone()))
        .transpose()
        .map_err(|error| {
            std::io::Error::new(error.kind(), format!("--watch {}: {error}", root.display()))
        })?;
    if let Some(live_reload) = &live_reload {
        static_options = live_reload.static_options(static_options);
        log::info!(
            "watching {} (--watch, for development): edits are served at once and open pages \
             reload",
            root.display()
        );
    }
    let server = Server::bind(config)?;
    // Root is needed only to bind (ports below 1024); the rest runs as --user.
    match user {
        Some(name) => privileges::Account::named(&name)
            .and_then(|account| account.become_it(&handed_over))
            .map_err(|error| {
                std::io::Error::new(error.kind(), format!("--user {name}: {error}"))
            })?,
        None if privileges::running_as_root() => {
            log::warn!("serving as root; --user NAME gives root up once the listeners are bound")
        }
        None => {}
    }
    let tls_addr = server.tls_addr();
    // Each worker builds its own app (routes and file cache are the worker's own).
    let make_app = || -> std::io::Result<App> {
        let mut app = App::with_publisher(publisher.clone());
        looplight::api::mount_routes(&mut app, &api);
        if let Some(live_reload) = &live_reload {
            live_reload.mount(&mut app);
        }
        app.static_dir_with("/", &root, static_options.clone())
            .map_err(|error| {
                std::io::Error::new(error.kind(), format!("--root {}: {error}", root.display()))
            })?;
        if let Some(tls_addr) = tls_addr {
            if redirect_http {
                app.redirect_to_https(tls_addr.port(), &host_of(tls_addr));
            }
            if let Some(max_age) = hsts {
                app.hsts(max_age);
            }
        }
        Ok(app)
    };
    // A missing --root is refused before the address is announced.
    make_app()?;
    let local_addr = server.local_addr();
    let metrics_addr = server.metrics_addr();
    let certificate = server.certificate().cloned();
    // Announced once every worker listens (see `Server::run_workers`).
    let listening = || -> std::io::Result<()> {
        // The first line of stdout, flushed at once: scripts and tests read the address from
        // it (and the HTTPS address from the second line, when HTTPS is on).
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "looplight listening on http://{local_addr}")?;
        if let Some(tls_addr) = tls_addr {
            writeln!(stdout, "looplight listening on https://{tls_addr}")?;
        }
        if let Some(metrics_addr) = metrics_addr {
            writeln!(stdout, "looplight metrics on http://{metrics_addr}/metrics")?;
        }
        stdout.flush()?;
        drop(stdout);
        let https = tls_addr.map_or(String::new(), |addr| format!(" and https://{addr}"));
        log::info!(
            "looplight {} serving {} on http://{local_addr}{https} with {workers} worker{}",
            env!("CARGO_PKG_VERSION"),
            root.display(),
            if workers == 1 { "" } else { "s" },
        );
        if let (Some(certificate), Some(tls_addr)) = (&certificate, tls_addr) {
            explain_certificate(certificate, tls_addr);
        }
        Ok(())
    };
    server.run_workers(make_app, listening)
}

/// Makes every allocation of 128 KiB or more a mapping of its own, returned to the system when
/// freed.
///
/// glibc's default raises that threshold to the size of the largest block freed so far, after
/// which big blocks come from the heap and stay there: each login's argon2 hash takes 19 MiB
/// (OWASP's minimum memory cost), so RSS grew from 6.6 MB at start to 221 MB after 8 logins
/// and never came down. With a fixed threshold it is back where it was as soon as the hashes
/// end (benches/load/isolation.py `loginburst`). The price is an mmap/munmap pair per big
/// allocation, small next to the work that needs one (a hash takes tens of milliseconds).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn give_large_allocations_back() {
    const MMAP_THRESHOLD: libc::c_int = 128 * 1024;
    // SAFETY: mallopt only sets a parameter of glibc's allocator; it is called first thing in
    // main, before any other thread exists, and any value is valid for M_MMAP_THRESHOLD up to
    // HEAP_MAX_SIZE / 2 (32 MiB on 64-bit).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_large_allocations_back() {}

/// The host name for URLs to `addr`: `localhost` for a wildcard address.
fn host_of(addr: SocketAddr) -> String {
    match addr {
        _ if addr.ip().is_unspecified() => "localhost".to_owned(),
        SocketAddr::V4(v4) => v4.ip().to_string(),
        SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
    }
}

/// Tells the operator (in the log) which certificate HTTPS serves and, for a self-signed one,
/// how to trust it.
fn explain_certificate(certificate: &CertificateInfo, tls_addr: SocketAddr) {
    let path = std::fs::canonicalize(&certificate.cert_path)
        .unwrap_or_else(|_| certificate.cert_path.clone());
    let path = path.display();
    let fingerprint = &certificate.fingerprint;
    let Some(spki) = &certificate.spki_sha256 else {
        log::info!("HTTPS certificate {path} (SHA-256 {fingerprint})");
        return;
    };
    let made = if certificate.generated {
        "generated now"
    } else {
        "reused"
    };
    let url = format!("https://localhost:{}/", tls_addr.port());
    log::info!("HTTPS uses a self-signed certificate for localhost ({made}): {path}");
    log::info!("  SHA-256 fingerprint: {fingerprint}");
    log::info!("  curl: curl --cacert {path} {url}");
    log::info!(
        "  browser: open {url} and accept the warning once the certificate's SHA-256 \
         fingerprint matches the one above; or import {path} as a trusted certificate; or start \
         Chromium with --ignore-certificate-errors-spki-list={spki}"
    );
}
