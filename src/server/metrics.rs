//! Each worker's counters, and the scrape that sums them: `GET /metrics` (`--metrics` on the
//! site's listeners, or `--metrics-addr` on a listener of its own).
//!
//! A worker's loop is the only writer of its [`WorkerMetrics`] (see [`crate::metrics`]): a
//! request costs a few plain increments (its method and status class, its duration's bucket,
//! its bytes). Connections are counted by what they are doing whenever the loop has driven
//! one ([`WorkerMetrics::track`]), so the gauges are exact between ticks without a walk over
//! the connections. The [`Registry`] lists every worker's metrics (and its file caches') for
//! the scrape, which runs on whichever loop the scraper's connection landed on.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::http::conn::{Activity, Exchange};
use crate::http::method::Method;
use crate::http::request::Request;
use crate::http::response::Response;
use crate::http::status::StatusCode;
use crate::metrics::{
    CONTENT_TYPE, Counter, Exposition, Gauge, Histogram, HistogramSnapshot, Kind, OneWriter,
    PROCESS,
};
use crate::router::AnsweredBy;
use crate::static_files::CacheStats;

/// The path the metrics are served on.
pub const PATH: &str = "/metrics";

/// Method labels: the methods looplight answers, and `other` for the rest (and for input that
/// was not a request).
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other",
];
/// Status labels, by class.
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// Duration labels: what answered the request.
const KINDS: [&str; 3] = ["static", "api", "stream"];
/// Connection state labels: a TLS handshake, then what the HTTP connection does.
const STATES: [&str; 6] = [
    "handshake",
    "idle",
    "reading",
    "waiting",
    "writing",
    "streaming",
];

/// What a connection is counted as (an index into `STATES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnState(usize);

impl ConnState {
    pub const HANDSHAKE: ConnState = ConnState(0);

    pub fn of(activity: Activity) -> ConnState {
        ConnState(match activity {
            Activity::Idle => 1,
            Activity::Reading => 2,
            Activity::Waiting => 3,
            Activity::Writing => 4,
            Activity::Streaming => 5,
        })
    }
}

/// What answered a request, for its duration's label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    Static,
    Api,
    Stream,
}

impl RequestKind {
    /// The kind of a response `handler` gave.
    pub fn answered_by(handler: AnsweredBy) -> RequestKind {
        match handler {
            AnsweredBy::Route => RequestKind::Api,
            AnsweredBy::Static => RequestKind::Static,
        }
    }
}

/// One worker's counters; only its loop writes them.
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    /// By method, then status class.
    requests: [[Counter<OneWriter>; STATUS_CLASSES.len()]; METHODS.len()],
    /// By [`RequestKind`]: from the request's first byte to its response being queued (an
    /// event stream: opened), on the loop's clock (read once per tick).
    durations: [Histogram<OneWriter>; KINDS.len()],
    /// HTTP bytes read from clients (after TLS decryption).
    pub received_bytes: Counter<OneWriter>,
    /// HTTP bytes written to clients (before TLS encryption), file bodies included.
    pub sent_bytes: Counter<OneWriter>,
    pub accepted: Counter<OneWriter>,
    /// Accepted sockets closed at once: they could not be registered or given a TLS session.
    pub refused: Counter<OneWriter>,
    pub tls_handshakes: Counter<OneWriter>,
    pub tls_handshake_failures: Counter<OneWriter>,
    /// Open connections, by state.
    connections: [Gauge<OneWriter>; STATES.len()],
}

impl WorkerMetrics {
    /// Counts an answered (or rejected) request, answered by `kind`; the time it took is
    /// counted for requests only (not for input that was not one).
    #[inline]
    pub fn record(&self, exchange: &Exchange<'_>, kind: RequestKind) {
        let method = exchange
            .request
            .as_ref()
            .map_or(METHODS.len() - 1, |line| method_index(line.method));
        let class = usize::from(exchange.status.as_u16() / 100).clamp(1, 5) - 1;
        self.requests[method][class].inc();
        if exchange.request.is_some() {
            self.durations[kind as usize].observe(exchange.duration);
        }
    }

    /// A connection is now counted as `now` (it was as `before`, if it was counted at all).
    #[inline]
    pub fn track(&self, before: Option<ConnState>, now: Option<ConnState>) {
        if before == now {
            return;
        }
        if let Some(ConnState(before)) = before {
            self.connections[before].dec();
        }
        if let Some(ConnState(now)) = now {
            self.connections[now].inc();
        }
    }
}

/// The index of `method` in `METHODS`.
#[inline]
fn method_index(method: &[u8]) -> usize {
    match method {
        b"GET" => 0,
        b"HEAD" => 1,
        b"POST" => 2,
        b"PUT" => 3,
        b"PATCH" => 4,
        b"DELETE" => 5,
        b"OPTIONS" => 6,
        _ => 7,
    }
}

/// One of a worker's counters, picked for summing.
type WorkerCounter = fn(&WorkerMetrics) -> &Counter<OneWriter>;

/// Every worker's metrics, for the scrape.
#[derive(Debug)]
pub struct Registry {
    workers: Mutex<Vec<Registered>>,
    /// When the process started (`looplight_start_time_seconds`).
    started: SystemTime,
}

#[derive(Debug)]
struct Registered {
    metrics: Arc<WorkerMetrics>,
    caches: Vec<Arc<CacheStats>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            workers: Mutex::default(),
            started: SystemTime::now(),
        }
    }
}

impl Registry {
    /// Adds a worker's metrics and those of its app's file caches.
    pub fn register(&self, metrics: Arc<WorkerMetrics>, caches: Vec<Arc<CacheStats>>) {
        self.lock().push(Registered { metrics, caches });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Registered>> {
        self.workers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every metric, summed over the workers, in the text exposition format.
    pub fn render(&self) -> String {
        let workers = self.lock();
        let sum = |counter: WorkerCounter| -> u64 {
            workers.iter().map(|w| counter(&w.metrics).get()).sum()
        };
        let mut out = Exposition::default();

        out.family(
            "looplight_http_requests_total",
            Kind::Counter,
            "HTTP requests answered, by method and status class (input that was not a request counts as method other).",
        );
        for (m, method) in METHODS.iter().enumerate() {
            for (c, class) in STATUS_CLASSES.iter().enumerate() {
                let count: u64 = workers.iter().map(|w| w.metrics.requests[m][c].get()).sum();
                out.sample(
                    "looplight_http_requests_total",
                    &[("method", method), ("status", class)],
                    count,
                );
            }
        }

        let durations: Vec<([(&str, &str); 1], HistogramSnapshot)> = KINDS
            .iter()
            .enumerate()
            .map(|(k, kind)| {
                let mut snapshot = HistogramSnapshot::default();
                for worker in workers.iter() {
                    snapshot.add(&worker.metrics.durations[k]);
                }
                ([("kind", *kind)], snapshot)
            })
            .collect();
        let series: Vec<(&[(&str, &str)], HistogramSnapshot)> = durations
            .iter()
            .map(|(labels, snapshot)| (&labels[..], snapshot.clone()))
            .collect();
        out.histogram(
            "looplight_http_request_duration_seconds",
            "From a request's first byte to its response queued (an event stream: opened), by what answered it: static files, API routes, event streams.",
            &series,
        );

        let counters: [(&str, &str, WorkerCounter); 6] = [
            (
                "looplight_http_received_bytes_total",
                "HTTP bytes read from clients (after TLS decryption).",
                |w| &w.received_bytes,
            ),
            (
                "looplight_http_sent_bytes_total",
                "HTTP bytes written to clients (before TLS encryption), file bodies included.",
                |w| &w.sent_bytes,
            ),
            (
                "looplight_connections_accepted_total",
                "Connections accepted.",
                |w| &w.accepted,
            ),
            (
                "looplight_connections_refused_total",
                "Connections closed as soon as accepted (no room to register them, or no TLS session).",
                |w| &w.refused,
            ),
            (
                "looplight_tls_handshakes_total",
                "TLS handshakes completed.",
                |w| &w.tls_handshakes,
            ),
            (
                "looplight_tls_handshake_failures_total",
                "TLS connections closed before their handshake completed.",
                |w| &w.tls_handshake_failures,
            ),
        ];
        for (name, help, counter) in counters {
            out.family(name, Kind::Counter, help);
            out.sample(name, &[], sum(counter));
        }

        let by_state: Vec<i64> = (0..STATES.len())
            .map(|s| workers.iter().map(|w| w.metrics.connections[s].get()).sum())
            .collect();
        out.family(
            "looplight_connections",
            Kind::Gauge,
            "Open client connections, by state.",
        );
        for (state, count) in STATES.iter().zip(&by_state) {
            out.sample("looplight_connections", &[("state", state)], count);
        }
        out.family(
            "looplight_event_streams",
            Kind::Gauge,
            "Open event streams (server-sent events).",
        );
        out.sample(
            "looplight_event_streams",
            &[],
            by_state[ConnState::of(Activity::Streaming).0],
        );

        let caches = || workers.iter().flat_map(|w| w.caches.iter());
        out.family(
            "looplight_file_cache_hits_total",
            Kind::Counter,
            "Static file lookups answered from the file cache.",
        );
        out.sample(
            "looplight_file_cache_hits_total",
            &[],
            caches().map(|c| c.hits.get()).sum::<u64>(),
        );
        out.family(
            "looplight_file_cache_misses_total",
            Kind::Counter,
            "Static file lookups that went to the file system.",
        );
        out.sample(
            "looplight_file_cache_misses_total",
            &[],
            caches().map(|c| c.misses.get()).sum::<u64>(),
        );
        out.family(
            "looplight_file_cache_bytes",
            Kind::Gauge,
            "Bytes of files held in the file caches.",
        );
        out.sample(
            "looplight_file_cache_bytes",
            &[],
            caches().map(|c| c.bytes.get()).sum::<i64>(),
        );
        drop(workers);

        out.family(
            "looplight_chat_messages_published_total",
            Kind::Counter,
            "Chat messages published to the room.",
        );
        out.sample(
            "looplight_chat_messages_published_total",
            &[],
            PROCESS.chat_messages_published.get(),
        );
        out.family(
            "looplight_helper_queue_depth",
            Kind::Gauge,
            "Jobs waiting for a helper thread.",
        );
        out.sample(
            "looplight_helper_queue_depth",
            &[],
            PROCESS.helper_queue_depth.get(),
        );
        out.histogram(
            "looplight_helper_job_duration_seconds",
            "How long helper jobs ran (password hashing, SQL, compression, listings).",
            &[(&[], PROCESS.helper_job_seconds.snapshot())],
        );
        out.histogram(
            "looplight_db_write_duration_seconds",
            "How long each group commit of the SQLite writer took.",
            &[(&[], PROCESS.db_write_seconds.snapshot())],
        );
        out.family(
            "looplight_start_time_seconds",
            Kind::Gauge,
            "When the process started, in seconds since the Unix epoch.",
        );
        let started = self
            .started
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        out.sample("looplight_start_time_seconds", &[], started.as_secs_f64());
        out.finish()
    }
}

/// Where the metrics are served.
#[derive(Debug)]
pub struct Endpoint {
    registry: Arc<Registry>,
    /// `--metrics`: on the site's listeners too (else only on `--metrics-addr`'s).
    on_site_listeners: bool,
}

impl Endpoint {
    pub fn new(registry: Arc<Registry>, on_site_listeners: bool) -> Endpoint {
        Endpoint {
            registry,
            on_site_listeners,
        }
    }

    /// The answer to `request` if it is the metrics endpoint's to give: every request on the
    /// metrics listener (`metrics_listener`), and `/metrics` on the site's with `--metrics`.
    pub fn answer(&self, request: &Request<'_>, metrics_listener: bool) -> Option<Response> {
        let path = request.path();
        let ours = metrics_listener || (self.on_site_listeners && path == PATH);
        if !ours {
            return None;
        }
        Some(match (path, request.method()) {
            (PATH, Method::Get | Method::Head) => {
                Response::text(StatusCode::OK, self.registry.render())
                    .with_header("Content-Type", CONTENT_TYPE)
                    .with_header("Cache-Control", "no-store")
            }
            (PATH, _) => {
                Response::error(StatusCode::METHOD_NOT_ALLOWED).with_header("Allow", "GET, HEAD")
            }
            _ => Response::error(StatusCode::NOT_FOUND),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::conn::{HeaderFields, RequestLine};

    fn exchange(method: &str, status: StatusCode, took: Duration) -> Exchange<'_> {
        Exchange {
            request: Some(RequestLine {
                method: method.as_bytes(),
                target: b"/",
                version: "HTTP/1.1",
                fields: HeaderFields::new(b"", &[]),
            }),
            status,
            body_bytes: 0,
            duration: took,
        }
    }

    #[test]
    fn method_labels_are_in_the_order_of_the_index() {
        for (index, method) in METHODS.iter().enumerate() {
            assert_eq!(method_index(method.as_bytes()), index, "{method}");
        }
        assert_eq!(method_index(b"get"), 7, "methods are case-sensitive");
    }

    #[test]
    fn requests_are_counted_by_method_and_status_class_and_timed_by_kind() {
        let metrics = Arc::new(WorkerMetrics::default());
        let ms = Duration::from_millis(3);
        metrics.record(
            &exchange("GET", StatusCode::OK, Duration::ZERO),
            RequestKind::Static,
        );
        metrics.record(
            &exchange("POST", StatusCode::NOT_FOUND, ms),
            RequestKind::Api,
        );
        metrics.record(
            &exchange("BREW", StatusCode::NOT_IMPLEMENTED, Duration::ZERO),
            RequestKind::Static,
        );
        let rejected = Exchange {
            request: None,
            status: StatusCode::BAD_REQUEST,
            body_bytes: 0,
            duration: ms,
        };
        metrics.record(&rejected, RequestKind::Static);
        let registry = Registry::default();
        registry.register(Arc::clone(&metrics), Vec::new());
        registry.register(Arc::clone(&metrics), Vec::new()); // a second worker, same counts
        let text = registry.render();
        for line in [
            "looplight_http_requests_total{method=\"GET\",status=\"2xx\"} 2\n",
            "looplight_http_requests_total{method=\"POST\",status=\"4xx\"} 2\n",
            "looplight_http_requests_total{method=\"other\",status=\"5xx\"} 2\n",
            "looplight_http_requests_total{method=\"other\",status=\"4xx\"} 2\n",
            "looplight_http_requests_total{method=\"PUT\",status=\"2xx\"} 0\n",
            "looplight_http_request_duration_seconds_bucket{kind=\"static\",le=\"0.0001\"} 4\n",
            "looplight_http_request_duration_seconds_bucket{kind=\"api\",le=\"0.0025\"} 0\n",
            "looplight_http_request_duration_seconds_bucket{kind=\"api\",le=\"0.005\"} 2\n",
            "looplight_http_request_duration_seconds_count{kind=\"stream\"} 0\n",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }

    #[test]
    fn connections_are_counted_by_their_current_state() {
        let metrics = WorkerMetrics::default();
        let idle = ConnState::of(Activity::Idle);
        let streaming = ConnState::of(Activity::Streaming);
        metrics.track(None, Some(ConnState::HANDSHAKE));
        metrics.track(Some(ConnState::HANDSHAKE), Some(idle));
        metrics.track(None, Some(idle));
        metrics.track(Some(idle), Some(streaming));
        metrics.track(Some(idle), Some(idle));
        let registry = Registry::default();
        registry.register(Arc::new(metrics), Vec::new());
        let text = registry.render();
        assert!(text.contains("looplight_connections{state=\"handshake\"} 0\n"));
        assert!(text.contains("looplight_connections{state=\"idle\"} 1\n"));
        assert!(text.contains("looplight_connections{state=\"streaming\"} 1\n"));
        assert!(text.contains("looplight_event_streams 1\n"));
    }

    #[test]
    fn every_family_has_help_and_type_and_only_its_own_samples() {
        let text = Registry::default().render();
        let mut family = "";
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                family = rest.split(' ').next().unwrap();
                assert!(family.starts_with("looplight_"), "{line}");
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                assert!(rest.starts_with(family), "{line}");
            } else {
                let name = line.split(['{', ' ']).next().unwrap();
                let own = name == family
                    || ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|suffix| name.strip_suffix(suffix) == Some(family));
                assert!(own, "{line} under {family}");
            }
        }
    }
}
