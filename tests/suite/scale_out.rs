//! Scale-out (DESIGN §4): identical instances behind a standard balancer, sharing PostgreSQL.
//! Two looplight processes on one database (started at once: the migrations run once, under
//! their advisory lock), behind a real nginx balancing round robin (`support/nginx.rs`):
//!
//! - requests through the balancer alternate instances, and every one works: what one
//!   instance wrote, the other reads (users, sessions, posts, search, chat);
//! - a chat message posted on either instance reaches the streams held on both, once each,
//!   in id order (LISTEN/NOTIFY);
//! - the login throttle counts failures from both instances;
//! - PostgreSQL stopped: API requests get 503 with Retry-After, `/healthz` says degraded,
//!   static files are served as ever; PostgreSQL started again: everything works again,
//!   without restarting looplight, and streams held across the outage get new messages.
//!
//! Which instance answered a request is nginx's knowledge: it adds `X-Upstream`; the
//! instances' access logs agree.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use crate::support::nginx::Nginx;
use crate::support::postgres::{self as pg, Cluster, Database};
use crate::support::*;

/// Generous bound for a chat event that should arrive at once.
const PROMPT: Duration = Duration::from_secs(5);
/// How long instances may take to notice that PostgreSQL is back (their pools reconnect on
/// the next request; the chat listener retries every second).
const RECOVERY: Duration = Duration::from_secs(30);

/// Two instances on one database, and nginx in front of them.
struct Site {
    a: Server,
    b: Server,
    balancer: Nginx,
    /// Dropped last, once no instance uses it.
    _database: Database,
}

impl Site {
    /// A fresh database on `cluster`, two instances started on it at once, and the balancer.
    fn start(cluster: &Cluster) -> Site {
        let database = cluster.create_database();
        let url = database.url.as_str();
        let (a, b) = thread::scope(|scope| {
            let a = scope.spawn(|| instance(url));
            let b = instance(url);
            let a = a
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (a, b)
        });
        let balancer = Nginx::balance(&[a.addr, b.addr]);
        Site {
            a,
            b,
            balancer,
            _database: database,
        }
    }

    /// Sends `req` through the balancer; returns the exchange and the instance that answered.
    fn send(&self, req: &Req) -> (Exchange, SocketAddr) {
        let x = send_to(self.balancer.addr, req);
        let upstream = x
            .header("x-upstream")
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "no X-Upstream from nginx\n{}\nnginx error log:\n{}",
                    x.show(),
                    self.balancer.error_log()
                )
            });
        assert!(
            upstream == self.a.addr || upstream == self.b.addr,
            "X-Upstream {upstream} is neither instance\n{}",
            x.show()
        );
        (x, upstream)
    }

    /// Registers `username` and logs in, through the balancer; returns the token.
    fn user_token(&self, username: &str) -> String {
        self.send(&register_req(username, PASSWORD)).0.expect(201);
        let (x, _) = self.send(&login_req(username, PASSWORD));
        x.expect(200).field("token").str().to_owned()
    }
}

/// A looplight instance on the database at `url`, its access log kept.
fn instance(url: &str) -> Server {
    Server::builder().db(url).with_log().start()
}

/// `req` on a fresh connection to `addr`.
fn send_to(addr: SocketAddr, req: &Req) -> Exchange {
    req.send_on(&mut Client::connect(addr))
}

/// The answer while the database is unreachable: 503 with `Retry-After`, a JSON error.
fn assert_unavailable(x: &Exchange) {
    x.expect_error(503);
    assert_retry_after(x);
}

/// `Retry-After` in whole seconds, at least one.
fn assert_retry_after(x: &Exchange) -> u64 {
    let retry_after = x
        .header("retry-after")
        .unwrap_or_else(|| panic!("{} without Retry-After\n{}", x.status, x.show()));
    let secs: u64 = retry_after
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After must be seconds\n{}", x.show()));
    assert!(secs >= 1, "Retry-After {secs}\n{}", x.show());
    secs
}

#[test]
fn requests_through_the_balancer_alternate_instances_and_all_work() {
    let site = Site::start(pg::shared());
    let mut served: Vec<(Req, SocketAddr)> = Vec::new();
    let mut send = |req: Req| {
        let (x, upstream) = site.send(&req);
        served.push((req, upstream));
        x
    };

    // Registered on one instance, logged in on the other.
    send(register_req("roamer", PASSWORD)).expect(201);
    let token = send(login_req("roamer", PASSWORD))
        .expect(200)
        .field("token")
        .str()
        .to_owned();
    assert_eq!(
        send(Req::get("/api/auth/me").bearer(&token))
            .expect(200)
            .field("username")
            .str(),
        "roamer"
    );
    // A post written on one instance is read, changed, found and deleted on the others.
    let x = send(Req::post("/api/posts").bearer(&token).json(post_body(
        "Shared",
        "written on one instance, read on another",
    )));
    let post = Post::from_json(&x.expect(201));
    let path = format!("/api/posts/{}", post.id);
    assert_eq!(Post::from_json(&send(Req::get(&path)).expect(200)), post);
    let x = send(
        Req::put(&path)
            .bearer(&token)
            .json(post_body("Shared", "changed by the other instance, quince")),
    );
    assert_eq!(
        Post::from_json(&x.expect(200)).body,
        "changed by the other instance, quince"
    );
    let list = send(Req::get("/api/posts")).expect(200);
    assert_eq!(list.field("total").int(), 1);
    let found = send(Req::get("/api/search?q=quince")).expect(200);
    let ids: Vec<i64> = found
        .field("results")
        .arr()
        .iter()
        .map(|hit| hit.field("id").int())
        .collect();
    assert_eq!(ids, [post.id]);
    // The chat room is one room.
    let x = send(send_req(&token, text_body("hello from somewhere")));
    let message = ChatMessage::from_json(&x.expect(201));
    let x = send(Req::get(MESSAGES).bearer(&token));
    let messages: Vec<ChatMessage> = x
        .expect(200)
        .field("messages")
        .arr()
        .iter()
        .map(ChatMessage::from_json)
        .collect();
    assert_eq!(messages, [message]);
    // Static files and the health check, from either.
    let x = send(Req::get("/hello.txt"));
    x.assert_status(200);
    assert_eq!(x.body, HELLO);
    assert_eq!(
        send(Req::get("/healthz")).expect(200).field("status").str(),
        "ok"
    );
    send(Req::delete(&path).bearer(&token)).expect_204();
    send(Req::get(&path)).expect_error(404);
    send(Req::post("/api/auth/logout").bearer(&token)).expect_204();

    // Round robin: the instances took turns.
    let upstreams: Vec<SocketAddr> = served.iter().map(|(_, upstream)| *upstream).collect();
    assert_eq!(
        upstreams.iter().collect::<BTreeSet<_>>(),
        [site.a.addr, site.b.addr].iter().collect(),
        "both instances answered"
    );
    assert!(
        upstreams.windows(2).all(|pair| pair[0] != pair[1]),
        "round robin alternates instances: {upstreams:?}"
    );
    // And each instance's access log shows exactly the requests nginx says it sent there.
    for server in [&site.a, &site.b] {
        let expected: Vec<String> = served
            .iter()
            .filter(|(_, upstream)| *upstream == server.addr)
            .map(|(req, _)| request_line(req))
            .collect();
        wait_until("the access log", PROMPT, || {
            server.log_lines().len() >= expected.len()
        });
        let log = server.log_lines();
        assert_eq!(
            log.len(),
            expected.len(),
            "access log of {}:\n{}",
            server.addr,
            log.join("\n")
        );
        for (line, request) in log.iter().zip(&expected) {
            assert!(
                line.contains(&format!("\"{request}\"")),
                "{}: access log line {line:?}, expected request {request:?}",
                server.addr
            );
        }
    }
    // Logged out on one instance: the session is gone on both.
    for server in [&site.a, &site.b] {
        assert_eq!(whoami(server, &token), None);
    }
}

/// `METHOD target HTTP/1.1`, as an access log quotes it.
fn request_line(req: &Req) -> String {
    let bytes = req.bytes();
    let text = String::from_utf8_lossy(&bytes);
    text.split("\r\n").next().unwrap_or_default().to_owned()
}

#[test]
fn a_chat_message_reaches_the_streams_on_both_instances_once_each_in_id_order() {
    let site = Site::start(pg::shared());
    let token = site.user_token("chatter");
    let mut streams = [
        ("A", open_stream(&site.a, &token, "")),
        ("B", open_stream(&site.b, &token, "")),
    ];
    let mut sent = Vec::new();
    let mut via = BTreeSet::new();
    for i in 0..6 {
        let (x, upstream) = site.send(&send_req(&token, text_body(&format!("message {i}"))));
        sent.push(ChatMessage::from_json(&x.expect(201)));
        via.insert(upstream);
    }
    assert_eq!(via.len(), 2, "posted on both instances");
    assert!(
        sent.windows(2).all(|pair| pair[0].id < pair[1].id),
        "{sent:?}"
    );
    for (name, stream) in &mut streams {
        // Exactly these, in this order: a repeat or a gap shows up as a mismatch.
        let got = stream.next_messages(sent.len(), PROMPT);
        assert_eq!(got, sent, "the stream held on instance {name}");
    }
    // A stream opened after those were answered does not get them (they are history): only
    // what follows, posted on the other instance.
    let mut late = open_stream(&site.b, &token, "");
    let next = send_message(&site.a, &token, "after the late stream opened");
    assert_eq!(late.next_message(PROMPT), next);
    for (name, stream) in &mut streams {
        assert_eq!(stream.next_message(PROMPT), next, "instance {name}");
    }
}

#[test]
fn failed_logins_on_both_instances_count_together() {
    let site = Site::start(pg::shared());
    site.send(&register_req("target", PASSWORD)).0.expect(201);
    let mut via = BTreeSet::new();
    for i in 1..=5 {
        let (x, upstream) = site.send(&login_req("target", &format!("wrong password {i}")));
        x.expect_error(401);
        via.insert(upstream);
    }
    assert_eq!(via.len(), 2, "the failures were spread over both instances");
    // The sixth attempt, on either instance, even with the right password.
    let (x, _) = site.send(&login_req("target", "wrong password 6"));
    assert_too_many(&x);
    for server in [&site.a, &site.b] {
        assert_too_many(&login_req("target", PASSWORD).send(server));
    }
}

/// 429 with `Retry-After` within the minute the failures count.
fn assert_too_many(x: &Exchange) {
    x.expect_error(429);
    let secs = assert_retry_after(x);
    assert!(secs <= 60, "Retry-After {secs}\n{}", x.show());
}

#[test]
fn a_postgres_outage_is_503_with_retry_after_and_heals_without_a_restart() {
    // A cluster of its own: stopping it must not disturb the other tests.
    let cluster = Cluster::start_new();
    let site = Site::start(&cluster);
    let token = site.user_token("survivor");
    let (x, _) = site.send(
        &Req::post("/api/posts")
            .bearer(&token)
            .json(post_body("Before", "written before the outage")),
    );
    let post = Post::from_json(&x.expect(201));
    // Streams held on both instances through the outage.
    let mut streams = [
        ("A", open_stream(&site.a, &token, "")),
        ("B", open_stream(&site.b, &token, "")),
    ];

    cluster.stop();
    let token = token.as_str();
    // Each instance, two requests at a time (it has two helper threads, and each request
    // holds one for the pool's connect timeout); static files are served meanwhile.
    thread::scope(|scope| {
        for addr in [site.a.addr, site.b.addr] {
            scope.spawn(move || {
                assert_unavailable(&send_to(addr, &Req::get("/api/posts")));
                assert_unavailable(&send_to(addr, &login_req("survivor", PASSWORD)));
            });
            scope.spawn(move || {
                let req = Req::post("/api/posts")
                    .bearer(token)
                    .json(post_body("During", "the outage"));
                assert_unavailable(&send_to(addr, &req));
                // The health check says so too.
                let x = send_to(addr, &Req::get("/healthz"));
                x.assert_status(503);
                assert_retry_after(&x);
                assert_eq!(x.json().field("status").str(), "degraded", "{}", x.show());
            });
        }
        scope.spawn(|| {
            let mut upstreams = BTreeSet::new();
            for _ in 0..2 {
                let (x, upstream) = site.send(&Req::get("/hello.txt"));
                x.assert_status(200);
                assert_eq!(x.body, HELLO, "{}", x.show());
                upstreams.insert(upstream);
            }
            assert_eq!(upstreams.len(), 2, "static files from both instances");
        });
    });
    // Through the balancer, on both instances.
    let mut upstreams = BTreeSet::new();
    for _ in 0..2 {
        let (x, upstream) = site.send(&send_req(token, text_body("lost?")));
        assert_unavailable(&x);
        upstreams.insert(upstream);
    }
    assert_eq!(upstreams.len(), 2, "503 from both instances");

    cluster.start();
    // Each instance finds the database again by itself.
    for server in [&site.a, &site.b] {
        wait_until("the API working again", RECOVERY, || {
            Req::get("/api/posts").send(server).status == 200
        });
        assert_eq!(list_posts(server, ""), (vec![post.clone()], 1));
        assert_eq!(whoami(server, token).as_deref(), Some("survivor"));
        Req::get("/healthz").send(server).expect(200);
    }
    for _ in 0..2 {
        site.send(
            &Req::post("/api/posts")
                .bearer(token)
                .json(post_body("After", "the outage")),
        )
        .0
        .expect(201);
    }
    // The chat listeners reconnected: messages posted on either instance reach the streams
    // that were open all along, on both.
    let sent = [
        send_message(&site.a, token, "back on A"),
        send_message(&site.b, token, "back on B"),
    ];
    for (name, stream) in &mut streams {
        let got = stream.next_messages(sent.len(), RECOVERY);
        assert_eq!(got, sent, "the stream held on instance {name}");
    }
}
