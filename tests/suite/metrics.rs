//! `GET /metrics`: the Prometheus text exposition, checked by Prometheus's own tools (`promtool
//! check metrics`, and the parser of the `prometheus_client` Python package for the values),
//! with exact counts after known traffic on two workers.
//!
//! Every request here goes on a connection of its own with `Connection: close`, and is read to
//! the end, so the test knows to the byte what the server received and sent; the scrapes are
//! requests too, and are counted like the others.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::json::Json;
use crate::support::wait::{PATIENCE, wait_for};
use crate::support::{HELLO, Server};

const TIMEOUT: Duration = Duration::from_secs(10);

/// One sample as the Python parser read it: name and sorted labels → value.
type Samples = BTreeMap<(String, Vec<(String, String)>), f64>;

/// What the test sent and got back, to compare with the server's counters.
#[derive(Default)]
struct Traffic {
    connections: u64,
    sent: u64,
    received: u64,
}

impl Traffic {
    /// Sends `request` on a new connection and reads the response to the end (the request
    /// asks the server to close). Returns the raw response.
    fn exchange(&mut self, addr: SocketAddr, request: &[u8]) -> Vec<u8> {
        let mut socket = TcpStream::connect(addr).expect("connect");
        socket.set_read_timeout(Some(TIMEOUT)).unwrap();
        socket.set_write_timeout(Some(TIMEOUT)).unwrap();
        socket.write_all(request).expect("send the request");
        let mut response = Vec::new();
        socket
            .read_to_end(&mut response)
            .expect("read the response to the end");
        self.connections += 1;
        self.sent += request.len() as u64;
        self.received += response.len() as u64;
        response
    }

    fn get(&mut self, addr: SocketAddr, method: &str, path: &str) -> Vec<u8> {
        let request = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        self.exchange(addr, request.as_bytes())
    }

    /// Scrapes `addr` (counted like any request) and returns the body.
    fn scrape(&mut self, addr: SocketAddr) -> String {
        let response = self.get(addr, "GET", "/metrics");
        let text = String::from_utf8(response).expect("UTF-8 metrics");
        let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        assert!(
            head.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8"),
            "{head}"
        );
        body.to_owned()
    }
}

fn status_of(response: &[u8]) -> &str {
    std::str::from_utf8(&response[9..12]).unwrap()
}

/// Runs `program` with `text` on its standard input; fails the test (showing `text`) unless
/// it succeeds. Returns what it printed.
fn feed(program: &str, args: &[&str], text: &str, what: &str) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("{program} ({what}; .ci/run installs it): {error}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{program} refused the scrape:\n{}{}\n--- scrape ---\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// `promtool check metrics`: Prometheus's own parser and linter (naming conventions, help
/// texts, units). Fails the test with its complaints.
fn promtool_accepts(text: &str) {
    feed(
        "promtool",
        &["check", "metrics"],
        text,
        "Debian's prometheus package",
    );
}

/// The samples, as the `prometheus_client` package's parser reads them.
fn parse(text: &str) -> Samples {
    const SCRIPT: &str = "import json, sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        for family in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   for s in family.samples:\n\
        \x20       print(json.dumps([s.name, sorted(s.labels.items()), s.value]))\n";
    // Debian's interpreter, which has Debian's python3-prometheus-client.
    let printed = feed(
        "/usr/bin/python3",
        &["-c", SCRIPT],
        text,
        "with Debian's python3-prometheus-client",
    );
    String::from_utf8(printed)
        .unwrap()
        .lines()
        .map(|line| {
            let (name, labels, value): (String, Vec<(String, String)>, f64) =
                parse_sample_line(line);
            ((name, labels), value)
        })
        .collect()
}

/// `["name", [["label", "value"], …], value]`, as the script prints it.
fn parse_sample_line(line: &str) -> (String, Vec<(String, String)>, f64) {
    let json = Json::parse(line.as_bytes()).unwrap_or_else(|error| panic!("{error}: {line}"));
    let items = json.arr();
    let labels = items[1]
        .arr()
        .iter()
        .map(|pair| {
            (
                pair.arr()[0].str().to_owned(),
                pair.arr()[1].str().to_owned(),
            )
        })
        .collect();
    let Json::Num(value) = &items[2] else {
        panic!("not a number: {line}");
    };
    let value = value
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {line}"));
    (items[0].str().to_owned(), labels, value)
}

fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    labels.sort();
    *samples
        .get(&(name.to_owned(), labels.clone()))
        .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
}

/// The address `--metrics-addr` got, from the stdout line that announces it.
fn metrics_addr(server: &Server) -> SocketAddr {
    let line = server
        .wait_for_log_line(PATIENCE, |line| line.starts_with("looplight metrics on "))
        .expect("the metrics address announced on stdout");
    line.trim_start_matches("looplight metrics on http://")
        .trim_end_matches("/metrics")
        .parse()
        .unwrap_or_else(|_| panic!("bad metrics line {line:?}"))
}

#[test]
fn a_scrape_after_known_traffic_has_exact_counts_summed_over_the_workers() {
    let server = Server::start(&["--workers", "2", "--metrics-addr", "127.0.0.1:0"]);
    let metrics = metrics_addr(&server);
    let mut traffic = Traffic::default();
    // Many connections, so that both workers serve some (the kernel spreads them by port).
    for _ in 0..20 {
        let response = traffic.get(server.addr, "GET", "/hello.txt");
        assert_eq!(status_of(&response), "200");
        assert!(response.ends_with(HELLO));
    }
    for _ in 0..3 {
        assert_eq!(status_of(&traffic.get(server.addr, "GET", "/nope")), "404");
    }
    for _ in 0..2 {
        assert_eq!(
            status_of(&traffic.get(server.addr, "HEAD", "/hello.txt")),
            "200"
        );
    }
    assert_eq!(
        status_of(&traffic.get(server.addr, "POST", "/hello.txt")),
        "405"
    );
    assert_eq!(
        status_of(&traffic.get(server.addr, "GET", "/healthz")),
        "200"
    );
    assert_eq!(
        status_of(&traffic.exchange(server.addr, b"\x01\x02\r\n\r\n")),
        "400"
    );

    // A scrape also counts connections that are still closing; wait until all but its own
    // have gone (each scrape is counted, and accounted for below).
    let mut scrapes = 0;
    let samples = wait_for("every test connection closed", PATIENCE, || {
        let text = traffic.scrape(metrics);
        scrapes += 1;
        let samples = parse(&text);
        let open: f64 = [
            "handshake",
            "idle",
            "reading",
            "waiting",
            "writing",
            "streaming",
        ]
        .iter()
        .map(|state| value(&samples, "looplight_connections", &[("state", state)]))
        .sum();
        // The scrape's own connection is open while it is rendered.
        if open == 1.0 {
            Ok((text, samples))
        } else {
            Err(format!("{open} connections open"))
        }
    });
    let (text, samples) = samples;
    promtool_accepts(&text);

    let requests = |method, status| {
        value(
            &samples,
            "looplight_http_requests_total",
            &[("method", method), ("status", status)],
        )
    };
    // The scrapes before the last were answered (and counted) before it was rendered.
    assert_eq!(requests("GET", "2xx"), 20.0 + 1.0 + (scrapes - 1) as f64);
    assert_eq!(requests("GET", "4xx"), 3.0);
    assert_eq!(requests("HEAD", "2xx"), 2.0);
    assert_eq!(requests("POST", "4xx"), 1.0);
    assert_eq!(
        requests("other", "4xx"),
        1.0,
        "input that was not a request"
    );
    assert_eq!(requests("PUT", "2xx"), 0.0);
    let count = |kind| {
        value(
            &samples,
            "looplight_http_request_duration_seconds_count",
            &[("kind", kind)],
        )
    };
    assert_eq!(count("static"), 26.0 + (scrapes - 1) as f64);
    assert_eq!(count("api"), 1.0, "/healthz");
    assert_eq!(count("stream"), 0.0);
    let inf = value(
        &samples,
        "looplight_http_request_duration_seconds_bucket",
        &[("kind", "static"), ("le", "+Inf")],
    );
    assert_eq!(inf, count("static"));

    // Everything the test sent was received before the last scrape was rendered, and
    // everything it got back was sent, but for the last scrape's own response.
    let last_response = text.len() as u64;
    assert_eq!(
        value(&samples, "looplight_http_received_bytes_total", &[]),
        traffic.sent as f64
    );
    let sent = value(&samples, "looplight_http_sent_bytes_total", &[]);
    assert!(
        sent < (traffic.received - last_response) as f64
            && sent > (traffic.received - last_response - 512) as f64,
        "sent {sent}, the test received {} before the last scrape's response (head and body)",
        traffic.received - last_response
    );
    assert_eq!(
        value(&samples, "looplight_connections_accepted_total", &[]),
        traffic.connections as f64
    );
    assert_eq!(
        value(&samples, "looplight_connections_refused_total", &[]),
        0.0
    );
    assert_eq!(value(&samples, "looplight_event_streams", &[]), 0.0);
    // At least one lookup per file request (a 404 also looks for 404.html, a first request
    // for sidecars); each worker that served /hello.txt missed it once, then hit it.
    let hits = value(&samples, "looplight_file_cache_hits_total", &[]);
    let misses = value(&samples, "looplight_file_cache_misses_total", &[]);
    assert!(hits + misses >= 25.0, "{hits} hits, {misses} misses");
    assert!(hits >= 1.0 && misses >= 2.0, "{hits} hits, {misses} misses");
    assert!(value(&samples, "looplight_file_cache_bytes", &[]) >= HELLO.len() as f64);
}

#[test]
fn the_sent_bytes_are_exact_once_the_scrape_is_itself_counted() {
    // The last scrape's own response is not in its own figures: a second scrape sees it.
    let server = Server::start(&["--workers", "1", "--metrics"]);
    let mut traffic = Traffic::default();
    let first = traffic.scrape(server.addr);
    let before_second = traffic.received;
    let samples = parse(&traffic.scrape(server.addr));
    assert_eq!(
        value(&samples, "looplight_http_sent_bytes_total", &[]),
        before_second as f64,
        "the first scrape's whole response, {} bytes of body",
        first.len()
    );
}

#[test]
fn metrics_are_off_by_default_and_only_where_asked_for() {
    let mut traffic = Traffic::default();
    let plain = Server::start(&[]);
    assert_eq!(
        status_of(&traffic.get(plain.addr, "GET", "/metrics")),
        "404"
    );

    // --metrics-addr alone: not on the site's address; only /metrics on its own.
    let apart = Server::start(&["--metrics-addr", "127.0.0.1:0"]);
    let metrics = metrics_addr(&apart);
    assert_eq!(
        status_of(&traffic.get(apart.addr, "GET", "/metrics")),
        "404"
    );
    assert_eq!(status_of(&traffic.get(metrics, "GET", "/hello.txt")), "404");
    let refused = traffic.get(metrics, "POST", "/metrics");
    assert_eq!(status_of(&refused), "405");
    let refused = String::from_utf8_lossy(&refused);
    assert!(refused.contains("\r\nAllow: GET, HEAD\r\n"), "{refused}");
    let head = traffic.get(metrics, "HEAD", "/metrics");
    assert_eq!(status_of(&head), "200");
    assert!(head.ends_with(b"\r\n\r\n"), "HEAD has no body");
    promtool_accepts(&traffic.scrape(metrics));

    // --metrics: on the site's address.
    let public = Server::start(&["--metrics"]);
    promtool_accepts(&traffic.scrape(public.addr));
}

#[test]
fn tls_handshakes_event_streams_and_chat_messages_are_counted() {
    let server = Server::builder().tls().args(&["--metrics"]).start();
    let tls_addr = server.https_addr();
    // One handshake that completes, and one client that speaks plain HTTP to the TLS port.
    let response = server.get_tls("/hello.txt");
    assert_eq!(response.status, 200);
    let mut traffic = Traffic::default();
    assert_eq!(
        status_of(&traffic.get(tls_addr, "GET", "/hello.txt")),
        "400"
    );

    let token = crate::support::api::user_token(&server, "metrics_user");
    let mut stream = crate::support::chat::open_stream(&server, &token, "");
    crate::support::chat::send_message(&server, &token, "counted");
    stream.next_message(PATIENCE);

    let samples = wait_for("the handshakes counted", PATIENCE, || {
        let samples = parse(&traffic.scrape(server.addr));
        let done = value(&samples, "looplight_tls_handshakes_total", &[]);
        let failed = value(&samples, "looplight_tls_handshake_failures_total", &[]);
        if (done, failed) == (1.0, 1.0) {
            Ok(samples)
        } else {
            Err(format!("{done} handshakes, {failed} failures"))
        }
    });
    assert_eq!(value(&samples, "looplight_event_streams", &[]), 1.0);
    assert_eq!(
        value(&samples, "looplight_connections", &[("state", "streaming")]),
        1.0
    );
    assert_eq!(
        value(&samples, "looplight_chat_messages_published_total", &[]),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "looplight_http_request_duration_seconds_count",
            &[("kind", "stream")]
        ),
        1.0
    );
    // Registering and logging in hashed passwords on the helpers; the message was written.
    assert!(value(&samples, "looplight_helper_job_duration_seconds_count", &[]) >= 2.0);
    assert!(value(&samples, "looplight_db_write_duration_seconds_count", &[]) >= 2.0);
    assert_eq!(value(&samples, "looplight_helper_queue_depth", &[]), 0.0);
}
