//! Fuzz target `api`: JSON API requests through the router (`App::handle`, with the routes
//! `api::mount` registers) into a temporary SQLite store, jobs and writes included.
//!
//! Input: one byte picks the route (method and path, modulo the table below); one byte of
//! flags (bit 0: send the session cookie of a logged-in user; bit 1: a `Content-Type` other
//! than JSON; bit 2: the target's id segment and query come from the input); then the rest:
//! for a route with `:id` the id segment up to the first newline (with bit 2), and after it
//! the body of a POST or PUT, or the query string of a GET (percent-encoded as needed: what
//! a client could put in a request-target).
//!
//! Properties: never a panic, and never a 5xx (the store is local: a 5xx is a bug, not an
//! outage); every response with a body is JSON.
//!
//! The app and its store are built once per thread; the store keeps what the inputs wrote,
//! so later inputs meet earlier ones' users, posts and messages.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use mio::{Poll, Token, Waker};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::Choices;
use crate::api::{self, ApiSettings};
use crate::http::parse::{ParseLimits, parse_head};
use crate::http::request::Request;
use crate::http::response::Body;
use crate::jobs::{Outcome, Responder};
use crate::router::{App, Reply};
use crate::server::conn::ConnId;
use crate::store::Target;

/// The routes, as (method, path with `{id}` for an id segment).
const ROUTES: [(&str, &str); 15] = [
    ("POST", "/api/auth/register"),
    ("POST", "/api/auth/login"),
    ("POST", "/api/auth/logout"),
    ("GET", "/api/auth/me"),
    ("GET", "/api/posts"),
    ("POST", "/api/posts"),
    ("GET", "/api/posts/{id}"),
    ("PUT", "/api/posts/{id}"),
    ("DELETE", "/api/posts/{id}"),
    ("GET", "/api/search"),
    ("POST", "/api/search"),
    ("GET", "/api/chat/messages"),
    ("POST", "/api/chat/messages"),
    ("GET", "/api/chat/stream"),
    ("GET", "/healthz"),
];

/// How long a job may take to answer (a write waits for the writer thread's commit).
const JOB_TIMEOUT: Duration = Duration::from_secs(60);

/// Bytes a query string or id may hold as they are; everything else is percent-encoded.
const QUERY_KEEPS: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'=')
    .remove(b'&')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'%')
    .remove(b'+');

pub fn run(data: &[u8]) {
    let mut choices = Choices::new(data);
    let (method, pattern) = ROUTES[choices.below(ROUTES.len())];
    let flags = choices.byte();
    let rest = choices.rest();
    let (id_part, payload) = match rest.iter().position(|&b| b == b'\n') {
        Some(newline) if flags & 4 != 0 => (&rest[..newline], &rest[newline + 1..]),
        _ => (&b"1"[..], rest),
    };
    let id = utf8_percent_encode(&String::from_utf8_lossy(id_part), QUERY_KEEPS).to_string();
    let mut target = pattern.replace("{id}", &id);
    let body: &[u8] = if method == "GET" || method == "DELETE" {
        if !payload.is_empty() {
            target.push('?');
            target.extend(utf8_percent_encode(
                &String::from_utf8_lossy(payload),
                QUERY_KEEPS,
            ));
        }
        b""
    } else {
        payload
    };
    RIG.with(|rig| {
        let content_type = if flags & 2 == 0 {
            "application/json"
        } else {
            "text/plain"
        };
        let cookie = (flags & 1 != 0).then_some(rig.cookie.as_str());
        let head = request_head(method, &target, content_type, cookie, body.len());
        let (status, body_bytes, content_type) = rig.answer(&head, body);
        assert!(
            status < 500,
            "{status} for {method} {target} {:?}: {}",
            String::from_utf8_lossy(body),
            String::from_utf8_lossy(&body_bytes)
        );
        if !body_bytes.is_empty() {
            assert_eq!(content_type.as_deref(), Some(crate::json::CONTENT_TYPE));
            assert!(
                serde_json::from_slice::<serde_json::Value>(&body_bytes).is_ok(),
                "{status} for {method} {target} is not JSON: {:?}",
                String::from_utf8_lossy(&body_bytes)
            );
        }
    });
}

fn request_head(
    method: &str,
    target: &str,
    content_type: &str,
    cookie: Option<&str>,
    body_len: usize,
) -> Vec<u8> {
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: fuzz\r\nContent-Type: {content_type}\r\n\
         Content-Length: {body_len}\r\n"
    );
    if let Some(cookie) = cookie {
        head.push_str(&format!("Cookie: {cookie}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

thread_local! {
    static RIG: Rig = Rig::new();
}

/// The app with the API mounted on a store in a temporary directory, and what answering a
/// deferred request needs: a channel for job outcomes and a waker (which nobody polls).
struct Rig {
    app: App,
    results: Sender<(ConnId, Outcome)>,
    outcomes: Receiver<(ConnId, Outcome)>,
    waker: Arc<Waker>,
    /// `session=...` of a user registered and logged in when the rig was built.
    cookie: String,
    _poll: Poll,
}

impl Rig {
    fn new() -> Rig {
        // tmpfs where there is one: the store syncs on commit, and the target writes a lot.
        let shm = std::path::Path::new("/dev/shm");
        let parent = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = super::fixture_dir(&parent, "api");
        let mut app = App::new();
        let settings = ApiSettings {
            db: Target::Sqlite(dir.join("fuzz.db")),
            max_json_body: 64 * 1024,
            session_ttl_secs: 3600,
            cors_origins: vec!["https://fuzz.example".to_owned()],
            seed_posts: 20,
        };
        api::mount(&mut app, settings).expect("the API on a fresh store");
        let poll = Poll::new().expect("a poller");
        let waker = Arc::new(Waker::new(poll.registry(), Token(0)).expect("a waker"));
        let (results, outcomes) = mpsc::channel();
        let mut rig = Rig {
            app,
            results,
            outcomes,
            waker,
            cookie: String::new(),
            _poll: poll,
        };
        let credentials = br#"{"username":"fuzzer","password":"fuzzing-password"}"#;
        for path in ["/api/auth/register", "/api/auth/login"] {
            let head = request_head("POST", path, "application/json", None, credentials.len());
            let (status, body, _) = rig.answer(&head, credentials);
            assert!(
                status < 300,
                "{path}: {status} {}",
                String::from_utf8_lossy(&body)
            );
            if path.ends_with("login") {
                let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
                let token = body["token"].as_str().expect("a token");
                rig.cookie = format!("session={token}");
            }
        }
        rig
    }

    /// Handles the request (`head` then `body`) as the server would: now, or through a job
    /// run here whose answer may come from the writer thread. Returns the status, the body
    /// and its `Content-Type`.
    fn answer(&self, head: &[u8], body: &[u8]) -> (u16, Vec<u8>, Option<String>) {
        let mut spans = Vec::new();
        let limits = ParseLimits::default();
        // A built head can still be refused: the target the input asks for may pass the
        // server's limit (found by the target: 414). The server answers that itself.
        let parsed = match parse_head(head, &limits, &mut spans) {
            Ok(parsed) => parsed.expect("the head we built is complete"),
            Err(error) => return (error.status().as_u16(), Vec::new(), None),
        };
        let peer = SocketAddr::from(([127, 0, 0, 1], 40000));
        let request = Request::new(&parsed, head, &spans, body, peer, false)
            .expect("the head we built is a request");
        let response = match self.app.handle(&request) {
            Reply::Now(response) => response,
            Reply::Stream(stream) => stream.response,
            Reply::Later(job) => {
                let key = ConnId { slot: 1, serial: 1 };
                job(Responder::new(
                    key,
                    self.results.clone(),
                    Arc::clone(&self.waker),
                ));
                match self.outcomes.recv_timeout(JOB_TIMEOUT) {
                    Ok((_, Outcome::Response(response))) => response,
                    Ok((_, Outcome::Stream(stream))) => stream.response,
                    Ok((_, Outcome::Retry)) => panic!("an API job asked to be handled again"),
                    Err(error) => panic!("no answer from the job: {error}"),
                }
            }
            Reply::Prepare(_) => panic!("an API route asked to prepare"),
        };
        let status = response.status().as_u16();
        let content_type = response.header("content-type").map(str::to_owned);
        let body = match response.body() {
            Body::Empty => Vec::new(),
            Body::Bytes(bytes) => bytes.to_vec(),
            other => panic!("an API body that is not bytes: {other:?}"),
        };
        (status, body, content_type)
    }
}

impl std::fmt::Debug for Rig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rig").field("app", &self.app).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typical_requests_get_no_server_error() {
        run(b"\x05\x01{\"title\":\"t\",\"body\":\"b\"}");
        run(b"\x04\x04x\nlimit=5&offset=1");
        run(b"\x07\x05x\n{\"title\":\"\",\"body\":1}");
        run(b"\x0a\x00{\"q\":\"loop socket\"}");
        run(b"\x0c\x03{\"text\":\"hi\"}");
        run(b"\x00\x00[1,2");
    }
}
