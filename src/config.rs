//! Command-line flags and their defaults; every limit and timeout of the server is one flag.
//! Each flag is also a key of the `--config` file ([`crate::config_file`]), with no code: a new
//! flag only needs its entry in looplight.example.toml, which a test checks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::http::conn::Settings;
use crate::http::parse::ParseLimits;
use crate::server::log_format::LogFormat;
use crate::static_files::StaticOptions;
use crate::store::Target;

/// looplight: a small, fast HTTP/1.1 server on single-threaded event loops, one per worker.
///
/// Serves the files under --root on --addr. Timeouts are in seconds and may be fractional
/// (0.5 is half a second).
#[derive(Parser, Debug, Clone)]
#[command(name = "looplight", version, about, long_about = None)]
pub struct Config {
    /// Address to listen on (HOST:PORT; port 0 picks a free one).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// Directory of static files to serve.
    #[arg(long, value_name = "DIR", default_value = "www")]
    pub root: PathBuf,

    /// Do not write the access log.
    #[arg(long)]
    pub quiet: bool,

    /// Access log format: common (Common Log Format), combined (common plus "Referer" and
    /// "User-Agent", as nginx's default) or json (one object per line).
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = LogFormat::Common)]
    pub log_format: LogFormat,

    /// Write the access log to this file (appended to, created if missing) instead of stdout.
    /// SIGUSR1 reopens it: rename it, then signal (what logrotate does).
    #[arg(long, value_name = "PATH")]
    pub access_log: Option<PathBuf>,

    /// Least severe operator message written to stderr.
    #[arg(long, value_name = "LEVEL", default_value = "info", value_parser = log_level_parser())]
    pub log_level: log::LevelFilter,

    /// Largest request head (request line and header fields) in bytes; larger gets 431.
    #[arg(long, value_name = "BYTES", default_value_t = ParseLimits::default().max_head_bytes)]
    pub max_head_bytes: usize,

    /// Longest request-target (URI) in bytes; longer gets 414.
    #[arg(long, value_name = "BYTES", default_value_t = ParseLimits::default().max_target_bytes)]
    pub max_uri_bytes: usize,

    /// Most header fields in one request; more gets 431.
    #[arg(long, value_name = "COUNT", default_value_t = ParseLimits::default().max_headers)]
    pub max_headers: usize,

    /// Largest request body in bytes (after chunked decoding); larger gets 413, decided from
    /// Content-Length before the body is read.
    #[arg(long, value_name = "BYTES", default_value_t = ParseLimits::default().max_body_bytes)]
    pub max_body_bytes: u64,

    /// Seconds for a whole request head to arrive (from its first byte, or from accept for a
    /// new connection); a partial head then gets 408, a silent connection is closed.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_seconds)]
    pub header_timeout: Duration,

    /// Seconds a request body may stall without a byte arriving before 408.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_seconds)]
    pub body_timeout: Duration,

    /// Seconds an idle keep-alive connection is kept open between requests.
    #[arg(long, value_name = "SECS", default_value = "15", value_parser = parse_seconds)]
    pub keep_alive_timeout: Duration,

    /// Seconds a client may go without reading any of our response before it is dropped.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_seconds)]
    pub write_timeout: Duration,

    /// Seconds to let responses in flight finish after SIGINT/SIGTERM before exiting anyway.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_seconds)]
    pub shutdown_timeout: Duration,

    /// Most simultaneous connections, all workers together; beyond it, new ones wait in the
    /// listen backlog.
    #[arg(long, value_name = "COUNT", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Event loops, each on a thread of its own with its own listening sockets
    /// (SO_REUSEPORT). Default: the CPUs this process may run on.
    #[arg(long, value_name = "COUNT", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,

    /// Helper threads for work kept off the loops (password hashing, SQL, compression,
    /// listings), at a lower priority than the loops. Default: as many as workers, at least 2.
    #[arg(long, value_name = "COUNT", value_parser = clap::value_parser!(u16).range(1..))]
    pub helpers: Option<u16>,

    /// Cache-Control of static file responses.
    #[arg(long, value_name = "VALUE", default_value = "no-cache")]
    pub cache_control: String,

    /// Cache fingerprinted file names (`app.3f2a9c1b.js`) as immutable for a year.
    #[arg(long)]
    pub immutable_fingerprinted: bool,

    /// Compress text files on the fly (br, gzip; each file once, kept in the file cache).
    #[arg(long)]
    pub compress: bool,

    /// Memory for the static file cache (small files' bytes), in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024 * 1024)]
    pub file_cache_bytes: usize,

    /// List the contents of directories without an index.html (HTML, or JSON on request).
    #[arg(long)]
    pub list_dirs: bool,

    /// Single-page app: serve /index.html for unknown paths without a file extension.
    #[arg(long)]
    pub spa: bool,

    /// For developing a site, not for production: watch --root for changes (recursively),
    /// serve every edit at once, and reload the pages open in browsers. HTML pages get a small
    /// script that listens on the event stream /_looplight/reload.
    #[arg(long)]
    pub watch: bool,

    /// Where the API keeps users, sessions, posts and chat: a SQLite file (created if
    /// missing), or a PostgreSQL server shared by several instances
    /// (postgres://USER[:PASS]@HOST[:PORT]/NAME).
    #[arg(long, value_name = "PATH|URL", default_value = "looplight.db")]
    pub db: PathBuf,

    /// Largest JSON request body the API accepts, in bytes; larger gets 413. Any body is
    /// also bounded by --max-body-bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024)]
    pub max_json_body: usize,

    /// Let browsers on ORIGIN call the API (CORS, with credentials); repeat for several.
    #[arg(long, value_name = "ORIGIN")]
    pub cors_origin: Vec<String>,

    /// Seconds a login session lasts (the cookie's Max-Age).
    #[arg(long, value_name = "SECS", default_value_t = 7 * 24 * 3600)]
    pub session_ttl: u64,

    /// Seconds between comment lines on an idle event stream (keeps proxies and clients from
    /// timing it out).
    #[arg(long, value_name = "SECS", default_value = "15", value_parser = parse_seconds)]
    pub sse_heartbeat: Duration,

    /// Insert this many generated posts on start (for load tests), then serve.
    #[arg(long, value_name = "COUNT", default_value_t = 0)]
    pub seed_posts: u64,

    /// Run as this user once the listeners are bound (so that ports below 1024 can be used
    /// as root): the database files are handed to it, its groups taken, and root given up.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Serve the metrics (Prometheus text format) at /metrics on the site's addresses.
    #[arg(long, help_heading = "Metrics")]
    pub metrics: bool,

    /// Serve the metrics at /metrics on this address of their own (HOST:PORT), so they need
    /// not be public; /metrics stays off the site's addresses unless --metrics is given too.
    #[arg(long, value_name = "HOST:PORT", help_heading = "Metrics")]
    pub metrics_addr: Option<SocketAddr>,

    /// Also serve HTTPS on this address (default 127.0.0.1:8443 when --cert or
    /// --tls-self-signed is given without it).
    #[arg(long, value_name = "HOST:PORT", help_heading = "HTTPS")]
    pub tls_addr: Option<SocketAddr>,

    /// Certificate chain for HTTPS, PEM (leaf first). SIGHUP reloads it.
    #[arg(long, value_name = "PEM", requires = "key", help_heading = "HTTPS")]
    pub cert: Option<PathBuf>,

    /// Private key for --cert, PEM (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PEM", requires = "cert", help_heading = "HTTPS")]
    pub key: Option<PathBuf>,

    /// Serve HTTPS with a self-signed certificate for localhost, generated on first run and
    /// kept next to --db; its fingerprint and how to trust it are printed at start.
    #[arg(long, conflicts_with = "cert", help_heading = "HTTPS")]
    pub tls_self_signed: bool,

    /// Answer every plain-HTTP request except /healthz with a redirect (308) to HTTPS.
    #[arg(long, help_heading = "HTTPS")]
    pub redirect_http: bool,

    /// Send Strict-Transport-Security with this max-age (seconds) on HTTPS responses.
    #[arg(long, value_name = "SECS", help_heading = "HTTPS")]
    pub hsts: Option<u64>,
}

/// Where HTTPS listens when only a certificate source is given: 127.0.0.1:8443.
pub const DEFAULT_TLS_ADDR: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    8443,
));

/// Where the certificate and key for HTTPS come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// PEM files the operator provides.
    Files { cert: PathBuf, key: PathBuf },
    /// A localhost certificate generated once and kept in `dir` (next to the database).
    SelfSigned { dir: PathBuf },
}

impl Config {
    /// The parser limits these flags set.
    pub fn parse_limits(&self) -> ParseLimits {
        ParseLimits {
            max_head_bytes: self.max_head_bytes,
            max_target_bytes: self.max_uri_bytes,
            max_headers: self.max_headers,
            max_body_bytes: self.max_body_bytes,
        }
    }

    /// Where the API's data lives: a SQLite file, or a `postgres://` URL.
    pub fn db_target(&self) -> Target {
        Target::parse(&self.db.to_string_lossy())
    }

    /// The limits and timeouts of every connection.
    pub fn connection_settings(&self) -> Settings {
        Settings {
            limits: self.parse_limits(),
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            keep_alive_timeout: self.keep_alive_timeout,
            write_timeout: self.write_timeout,
            sse_heartbeat: self.sse_heartbeat,
        }
    }

    /// How the static directory is served.
    pub fn static_options(&self) -> StaticOptions {
        StaticOptions {
            cache_control: self.cache_control.clone(),
            immutable_fingerprinted: self.immutable_fingerprinted,
            compress: self.compress,
            // Each worker has its own cache: together they stay within the flag.
            cache_bytes: self.file_cache_bytes / self.workers(),
            list_dirs: self.list_dirs,
            spa: self.spa,
            ..StaticOptions::default()
        }
    }

    /// The event loops to run: `--workers`, or the CPUs this process may run on.
    pub fn workers(&self) -> usize {
        match self.workers {
            Some(workers) => usize::from(workers),
            None => std::thread::available_parallelism().map_or(1, |cpus| cpus.get()),
        }
    }

    /// The helper threads to start: `--helpers`, or one per worker and at least 2 (an app may
    /// ask for more, see `App::needs_helpers`).
    pub fn helpers(&self) -> usize {
        match self.helpers {
            Some(helpers) => usize::from(helpers),
            None => self.workers().max(2),
        }
    }

    /// Where the HTTPS certificate comes from; `None` when HTTPS is off.
    pub fn cert_source(&self) -> Option<CertSource> {
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            return Some(CertSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            });
        }
        if self.tls_self_signed {
            // Next to the SQLite file; in the working directory with a database server.
            let dir = match self.db_target() {
                Target::Sqlite(path) => match path.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
                    _ => PathBuf::from("."),
                },
                Target::Postgres(_) => PathBuf::from("."),
            };
            return Some(CertSource::SelfSigned { dir });
        }
        None
    }

    /// The HTTPS address, if HTTPS is on.
    pub fn tls_listen_addr(&self) -> Option<SocketAddr> {
        self.cert_source()?;
        Some(self.tls_addr.unwrap_or(DEFAULT_TLS_ADDR))
    }

    /// Flag combinations clap cannot express; the message names the flags to fix.
    pub fn check(&self) -> Result<(), String> {
        let tls = self.cert_source().is_some();
        if self.tls_addr.is_some() && !tls {
            return Err("--tls-addr needs --cert and --key, or --tls-self-signed".into());
        }
        if self.redirect_http && !tls {
            return Err(
                "--redirect-http needs HTTPS (--cert and --key, or --tls-self-signed)".into(),
            );
        }
        if self.hsts.is_some() && !tls {
            return Err("--hsts needs HTTPS (--cert and --key, or --tls-self-signed)".into());
        }
        Ok(())
    }

    /// The configuration with every flag at its default.
    pub fn defaults() -> Config {
        Config::parse_from(["looplight"])
    }
}

/// The `--log-level` names (lower case, as `log` spells them) and their filters.
fn log_level_parser() -> impl clap::builder::TypedValueParser<Value = log::LevelFilter> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["error", "warn", "info", "debug", "trace"]).try_map(
        |level| {
            level
                .parse::<log::LevelFilter>()
                .map_err(|error| error.to_string())
        },
    )
}

/// Parses a non-negative, possibly fractional number of seconds.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| "not a number of seconds".to_owned())?;
    Duration::try_from_secs_f64(seconds).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_ones() {
        let config = Config::defaults();
        assert_eq!(config.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.root, PathBuf::from("www"));
        assert_eq!(config.header_timeout, Duration::from_secs(10));
        assert_eq!(config.max_body_bytes, 1024 * 1024);
        assert_eq!(config.log_format, LogFormat::Common);
        assert_eq!(config.access_log, None);
        assert_eq!(config.log_level, log::LevelFilter::Info);
    }

    #[test]
    fn log_flags() {
        let config = Config::parse_from([
            "looplight",
            "--log-format",
            "json",
            "--access-log",
            "/var/log/looplight/access.log",
            "--log-level",
            "warn",
        ]);
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(
            config.access_log,
            Some(PathBuf::from("/var/log/looplight/access.log"))
        );
        assert_eq!(config.log_level, log::LevelFilter::Warn);
        let combined = Config::parse_from(["looplight", "--log-format", "combined"]);
        assert_eq!(combined.log_format, LogFormat::Combined);
        assert!(Config::try_parse_from(["looplight", "--log-format", "apache"]).is_err());
        assert!(Config::try_parse_from(["looplight", "--log-level", "off"]).is_err());
        assert!(Config::try_parse_from(["looplight", "--log-level", "loud"]).is_err());
    }

    #[test]
    fn workers_default_to_the_cpus_and_share_the_file_cache() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let config = Config::defaults();
        assert_eq!(config.workers(), cpus);
        assert_eq!(config.helpers(), cpus.max(2));
        let two = Config::parse_from(["looplight", "--workers", "2", "--file-cache-bytes", "1000"]);
        assert_eq!(two.workers(), 2);
        assert_eq!(two.static_options().cache_bytes, 500, "each worker's share");
        let one = Config::parse_from(["looplight", "--workers", "1", "--helpers", "5"]);
        assert_eq!((one.workers(), one.helpers()), (1, 5));
        assert!(Config::try_parse_from(["looplight", "--workers", "0"]).is_err());
        assert!(Config::try_parse_from(["looplight", "--helpers", "0"]).is_err());
    }

    #[test]
    fn fractional_seconds() {
        let config = Config::parse_from(["looplight", "--keep-alive-timeout", "0.25"]);
        assert_eq!(config.keep_alive_timeout, Duration::from_millis(250));
        assert!(Config::try_parse_from(["looplight", "--body-timeout", "-1"]).is_err());
        assert!(Config::try_parse_from(["looplight", "--body-timeout", "soon"]).is_err());
    }

    #[test]
    fn https_is_on_only_with_a_certificate_source() {
        let plain = Config::defaults();
        assert_eq!(plain.cert_source(), None);
        assert_eq!(plain.tls_listen_addr(), None);
        assert!(plain.check().is_ok());

        let self_signed =
            Config::parse_from(["looplight", "--tls-self-signed", "--db", "data/site.db"]);
        assert_eq!(
            self_signed.cert_source(),
            Some(CertSource::SelfSigned {
                dir: PathBuf::from("data")
            })
        );
        assert_eq!(self_signed.tls_listen_addr(), Some(DEFAULT_TLS_ADDR));
        let next_to_default_db = Config::parse_from(["looplight", "--tls-self-signed"]);
        assert_eq!(
            next_to_default_db.cert_source(),
            Some(CertSource::SelfSigned {
                dir: PathBuf::from(".")
            })
        );
        let with_a_server = Config::parse_from([
            "looplight",
            "--tls-self-signed",
            "--db",
            "postgres://u@db.example/site",
        ]);
        assert_eq!(
            with_a_server.cert_source(),
            Some(CertSource::SelfSigned {
                dir: PathBuf::from(".")
            })
        );

        let files = Config::parse_from([
            "looplight",
            "--cert",
            "c.pem",
            "--key",
            "k.pem",
            "--tls-addr",
            "0.0.0.0:443",
        ]);
        assert!(matches!(
            files.cert_source(),
            Some(CertSource::Files { .. })
        ));
        assert_eq!(
            files.tls_listen_addr(),
            Some("0.0.0.0:443".parse().unwrap())
        );

        for alone in [
            &["looplight", "--tls-addr", "127.0.0.1:0"][..],
            &["looplight", "--redirect-http"],
            &["looplight", "--hsts", "60"],
        ] {
            let error = Config::parse_from(alone).check().unwrap_err();
            assert!(error.contains(alone[1]), "{error}");
        }
        assert!(Config::try_parse_from(["looplight", "--cert", "c.pem"]).is_err());
        assert!(
            Config::try_parse_from([
                "looplight",
                "--cert",
                "c",
                "--key",
                "k",
                "--tls-self-signed"
            ])
            .is_err()
        );
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Config::command().debug_assert();
    }
}
