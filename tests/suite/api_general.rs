//! The JSON API's general rules: `Content-Type: application/json` and
//! `{"error": ...}` bodies on every API response, request bodies (415 for a
//! non-JSON Content-Type, 400 for malformed JSON, 422 for the wrong shape,
//! 413 over `--max-json-body`), deeply nested and non-UTF-8 input, the
//! router (404 for unknown `/api/...` paths, 405 with `Allow`, HEAD and
//! OPTIONS on API routes, static files next to the API), framing errors on
//! `/api` paths with JSON bodies, `GET /healthz`, CORS (`--cors-origin`),
//! SQLite persistence across a restart (`--db`), `--seed-posts`, and proof
//! that argon2 password hashing runs off the event loop.
//!
//! "The contract" below is the API issue; "decision" marks a rule the
//! implementation chose where the issue is silent.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// Every API route with its methods (GET routes include HEAD).
const ROUTES: &[(&str, &[&str])] = &[
    ("/api/auth/register", &["POST"]),
    ("/api/auth/login", &["POST"]),
    ("/api/auth/logout", &["POST"]),
    ("/api/auth/me", &["GET", "HEAD"]),
    ("/api/posts", &["GET", "HEAD", "POST"]),
    ("/api/posts/1", &["GET", "HEAD", "PUT", "DELETE"]),
    ("/api/search", &["GET", "HEAD", "POST"]),
    ("/healthz", &["GET", "HEAD"]),
];

/// The methods in `Allow`, OPTIONS left out (whether a route lists OPTIONS
/// is the server's choice; RFC 9110 §10.2.1).
fn allowed(x: &Exchange) -> BTreeSet<String> {
    let list = x.allow();
    assert!(!list.is_empty(), "response must carry Allow\n{}", x.show());
    list.into_iter().filter(|m| m != "OPTIONS").collect()
}

fn set(methods: &[&str]) -> BTreeSet<String> {
    methods.iter().map(|m| m.to_string()).collect()
}

/// A server with one logged-in user and one post by that user.
fn server_with_post(args: &[&str]) -> (Server, String, Post) {
    let server = Server::start(args);
    let token = user_token(&server, "writer");
    let post = create_post(&server, &token, "First post", "Hello from the API tests");
    (server, token, post)
}

// ---------------------------------------------------------------------------
// Flags, /healthz, the database file
// ---------------------------------------------------------------------------

#[test]
fn help_documents_the_api_flags() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_looplight"));
    command.arg("--help");
    let output = run_with_deadline(command, Duration::from_secs(5));
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "--help exit status {}",
        output.status
    );
    for flag in [
        "--db",
        "--max-json-body",
        "--cors-origin",
        "--session-ttl",
        "--seed-posts",
    ] {
        assert!(
            help.contains(flag),
            "--help does not document {flag}:\n{help}"
        );
    }
}

#[test]
fn healthz_is_200_with_status_ok() {
    // Contract: GET /healthz → 200 {"status":"ok"}.
    let server = Server::start(&[]);
    let x = Req::get("/healthz").send(&server);
    let j = x.expect(200);
    assert_eq!(
        j,
        Json::Obj(vec![("status".into(), Json::Str("ok".into()))]),
        "{}",
        x.show()
    );
}

#[test]
fn data_lives_in_the_sqlite_file_given_by_db() {
    if skip_on_postgres("it reads the SQLite database file") {
        return;
    }
    // Contract: all data lives in SQLite. The harness passes
    // `--db TMP/looplight.db`; after a write that file is an SQLite 3
    // database (file header "SQLite format 3\0", sqlite.org/fileformat.html).
    let server = Server::start(&[]);
    register(&server, "dbcheck", PASSWORD);
    let header = std::fs::read(server.db_path())
        .unwrap_or_else(|e| panic!("--db {}: {e}", server.db_path().display()));
    assert!(
        header.starts_with(b"SQLite format 3\0"),
        "{} is not an SQLite database",
        server.db_path().display()
    );
}

#[test]
fn default_db_is_looplight_db_in_the_working_directory() {
    if skip_on_postgres("the default database is a SQLite file, whatever the backend") {
        return;
    }
    // Decision: `--db PATH` defaults to `looplight.db` (relative to the
    // working directory, which the harness sets to the server's temp dir).
    let server = Server::builder().default_db().start();
    register(&server, "defaultdb", PASSWORD);
    let path = server.outside_dir().join("looplight.db");
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("default database {}: {e}", path.display()));
    assert!(bytes.starts_with(b"SQLite format 3\0"));
}

#[test]
fn data_survives_a_restart() {
    // Contract: users, sessions and posts survive a restart.
    let server = Server::start(&[]);
    let token = user_token(&server, "Persistent");
    let post = create_post(
        &server,
        &token,
        "Durable title",
        "Durable body with kumquat",
    );
    let dir = server.stop();

    let server = Server::builder().reuse_dir(dir).start();
    // The post, unchanged.
    assert_eq!(fetch_post(&server, post.id), Some(post.clone()));
    let (posts, total) = list_posts(&server, "");
    assert_eq!((posts, total), (vec![post.clone()], 1));
    // The session.
    assert_eq!(whoami(&server, &token).as_deref(), Some("Persistent"));
    // The user (and its password hash): login works, the name is taken.
    let token2 = login(&server, "Persistent", PASSWORD);
    assert_eq!(whoami(&server, &token2).as_deref(), Some("Persistent"));
    register_req("persistent", PASSWORD)
        .send(&server)
        .expect_error(409);
    // The search index.
    let x = Req::get("/api/search?q=kumquat").send(&server);
    let ids: Vec<i64> = x
        .expect(200)
        .field("results")
        .arr()
        .iter()
        .map(|r| r.field("id").int())
        .collect();
    assert_eq!(ids, [post.id], "{}", x.show());
}

#[test]
fn seed_posts_inserts_n_posts_by_seed() {
    // Decision: `--seed-posts N` inserts N posts authored by `seed` on start.
    let server = Server::start(&["--seed-posts", "25"]);
    let (first, total) = list_posts(&server, "");
    assert_eq!(total, 25);
    assert_eq!(first.len(), 20, "default limit is 20");
    let (rest, total) = list_posts(&server, "?offset=20");
    assert_eq!(total, 25);
    assert_eq!(rest.len(), 5);
    let all: Vec<Post> = first.into_iter().chain(rest).collect();
    assert!(all.iter().all(|p| p.author == "seed"), "{all:?}");
    assert!(
        all.windows(2).all(|w| w[0].id > w[1].id),
        "newest (highest id) first"
    );

    let server = Server::start(&["--seed-posts", "0"]);
    assert_eq!(list_posts(&server, ""), (vec![], 0));
}

// ---------------------------------------------------------------------------
// Router: 404, 405, HEAD, OPTIONS, static files
// ---------------------------------------------------------------------------

#[test]
fn unknown_api_paths_are_404_with_a_json_error() {
    // Contract: unknown /api/... path → 404 (JSON).
    let server = Server::start(&[]);
    for path in [
        "/api/",
        "/api/nope",
        "/api/auth",
        "/api/auth/",
        "/api/auth/whoami",
        "/api/postsx",
        "/api/posts/1/comments",
        "/api/search/x",
        "/api/users",
        "/api/nope?x=1",
        "/api/%27%20OR%201=1%20--",
    ] {
        Req::get(path).send(&server).expect_error(404);
    }
    // Whatever the method or body.
    Req::post("/api/nope")
        .json("{}")
        .send(&server)
        .expect_error(404);
    Req::delete("/api/users/1").send(&server).expect_error(404);
}

#[test]
fn wrong_method_is_405_with_allow_and_a_json_error() {
    // Contract: known path, wrong method → 405 with Allow (RFC 9110
    // §15.5.6: the origin server MUST generate Allow). Decision: GET routes
    // list HEAD too; the body is a JSON error.
    let server = Server::start(&[]);
    for (path, methods) in ROUTES {
        for wrong in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            if methods.contains(&wrong) {
                continue;
            }
            let x = Req::new(wrong, path).send(&server);
            x.expect_error(405);
            assert_eq!(allowed(&x), set(methods), "Allow for {path}\n{}", x.show());
        }
        // HEAD on a route without GET: the same 405, without the body.
        if !methods.contains(&"HEAD") {
            let x = Req::head(path).send(&server);
            x.assert_status(405);
            x.assert_basics_head();
            x.assert_json_content_type();
            assert_eq!(allowed(&x), set(methods), "Allow for {path}\n{}", x.show());
        }
    }
}

#[test]
fn options_on_api_routes_is_204_with_allow() {
    // Decision: OPTIONS on an API route → 204 with Allow, no body.
    let server = Server::start(&[]);
    for (path, methods) in ROUTES {
        let x = Req::options(path).send(&server);
        x.expect_204();
        assert_eq!(allowed(&x), set(methods), "Allow for {path}\n{}", x.show());
    }
}

#[test]
fn head_on_api_get_routes_matches_get_without_a_body() {
    // Decision (RFC 9110 §9.3.2): HEAD on an API GET route → the same
    // status and header fields as GET, no body. HEAD then GET on one
    // keep-alive connection, so a body sent after the HEAD response would
    // corrupt the next response.
    let (server, token, post) = server_with_post(&[]);
    let post_path = format!("/api/posts/{}", post.id);
    let cases: Vec<(String, Option<&str>, u16)> = vec![
        ("/healthz".into(), None, 200),
        ("/api/posts".into(), None, 200),
        ("/api/posts?limit=1".into(), None, 200),
        (post_path, None, 200),
        ("/api/posts/999999".into(), None, 404),
        ("/api/search?q=hello".into(), None, 200),
        ("/api/search".into(), None, 400),
        ("/api/auth/me".into(), None, 401),
        ("/api/auth/me".into(), Some(token.as_str()), 200),
    ];
    for (path, tok, status) in cases {
        let mut c = server.connect();
        let with_auth = |r: Req| match tok {
            Some(t) => r.bearer(t),
            None => r,
        };
        let h = with_auth(Req::head(&path)).send_on(&mut c);
        let g = with_auth(Req::get(&path)).send_on(&mut c);
        g.expect(status);
        h.assert_status(status);
        h.assert_basics_head();
        for field in ["content-type", "content-length", "allow"] {
            assert_eq!(
                h.header(field),
                g.header(field),
                "HEAD and GET {path} differ in {field}\nHEAD:\n{}\nGET:\n{}",
                h.show(),
                g.show()
            );
        }
    }
}

#[test]
fn static_files_still_work_next_to_the_api() {
    // Decision: static files keep working next to the API.
    let server = Server::start(&[]);
    assert_hello(&server.get("/hello.txt"));
    let x = Req::get("/").send(&server);
    x.assert_status(200);
    assert_eq!(x.body, INDEX_HTML);
}

#[test]
fn api_calls_share_one_keep_alive_connection() {
    // RFC 9112 §9.3: persistent connections. A whole session on one
    // connection, including application-level errors in between.
    let server = Server::start(&[]);
    let mut c = server.connect();
    register_req("keepalive", PASSWORD)
        .send_on(&mut c)
        .expect(201);
    let token = login_req("keepalive", PASSWORD)
        .send_on(&mut c)
        .expect(200)
        .field("token")
        .str()
        .to_string();
    Req::get("/api/auth/me")
        .bearer(&token)
        .send_on(&mut c)
        .expect(200);
    let created = Req::post("/api/posts")
        .bearer(&token)
        .json(post_body("t", "b"))
        .send_on(&mut c);
    let id = Post::from_json(&created.expect(201)).id;
    Req::get(&format!("/api/posts/{id}"))
        .send_on(&mut c)
        .expect(200);
    Req::get("/api/nope").send_on(&mut c).expect_error(404);
    Req::get("/healthz").send_on(&mut c).expect(200);
    Req::delete(&format!("/api/posts/{id}"))
        .bearer(&token)
        .send_on(&mut c)
        .expect_204();
    Req::get("/api/posts").close().send_on(&mut c).expect(200);
}

// ---------------------------------------------------------------------------
// Request bodies: 415, 400, 422, 413
// ---------------------------------------------------------------------------

/// (method, path, a valid body, the success status) for every route with a
/// JSON body; PUT targets `post_id`.
fn body_routes(post_id: i64) -> Vec<(&'static str, String, String, u16)> {
    vec![
        (
            "POST",
            "/api/auth/register".into(),
            credentials("newuser", PASSWORD),
            201,
        ),
        (
            "POST",
            "/api/auth/login".into(),
            credentials("writer", PASSWORD),
            200,
        ),
        ("POST", "/api/posts".into(), post_body("t", "b"), 201),
        (
            "PUT",
            format!("/api/posts/{post_id}"),
            post_body("t2", "b2"),
            200,
        ),
        (
            "POST",
            "/api/search".into(),
            json_obj(&[("q", &js("hello"))]),
            200,
        ),
    ]
}

#[test]
fn non_json_content_type_is_415() {
    // Contract: POST/PUT bodies must be JSON; other Content-Type → 415.
    // Decision: a missing Content-Type is 415 too (RFC 9110 §15.5.16).
    let (server, token, post) = server_with_post(&[]);
    for (method, path, body, _) in body_routes(post.id) {
        let base = || Req::new(method, &path).bearer(&token).body(&body);
        base().send(&server).expect_error(415);
        for ct in [
            "text/plain",
            "text/plain; charset=utf-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/json",
            "application/jsonp",
            "application/json-patch+json",
            "application/xml",
            "",
        ] {
            base()
                .header("Content-Type", ct)
                .send(&server)
                .expect_error(415);
        }
    }
}

#[test]
fn json_content_type_parameters_and_case_are_accepted() {
    // Decision: `application/json; charset=utf-8` is fine; the type is
    // matched case-insensitively (RFC 9110 §8.3.1).
    let (server, token, _) = server_with_post(&[]);
    for ct in [
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "Application/Json;charset=UTF-8",
    ] {
        let search = Req::post("/api/search")
            .header("Content-Type", ct)
            .body(json_obj(&[("q", &js("hello"))]))
            .send(&server);
        search.expect(200);
        let created = Req::post("/api/posts")
            .bearer(&token)
            .header("Content-Type", ct)
            .body(post_body("ct", "ok"))
            .send(&server);
        created.expect(201);
    }
    let reg = Req::post("/api/auth/register")
        .header("Content-Type", "application/json; charset=utf-8")
        .body(credentials("charset_user", PASSWORD))
        .send(&server);
    reg.expect(201);
}

/// Bodies that are not JSON text (RFC 8259 grammar, UTF-8 per §8.1).
fn malformed_bodies() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        "",
        " ",
        "{",
        "}",
        "{\"username\":\"abc\",\"password\":}",
        "{'username':'abcdef','password':'12345678'}",
        "{\"username\":\"abcdef\",\"password\":\"12345678\",}",
        "{\"username\" \"abcdef\"}",
        "{\"username\":\"abcdef\"} trailing",
        "{}{}",
        "nul",
        "[1,2",
        "{\"title\":\"unterminated}",
        "{\"title\":\"bad \\x escape\",\"body\":\"\"}",
        "{\"title\":01,\"body\":\"\"}",
        "{\"title\":NaN}",
        "{\"q\":.5}",
        "/* comment */ {}",
        "{\"q\":\"raw\u{1}control\"}",
        "\"",
        "(",
        "NEAR(",
        "' OR 1=1 --",
        "\"); DROP TABLE posts; --",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    // Not UTF-8: a raw 0xFF/0xFE in a string, a lone continuation byte, an
    // overlong encoding, and UTF-16LE with a BOM.
    v.push(b"{\"username\":\"ab\xff\xfecd\",\"password\":\"12345678\"}".to_vec());
    v.push(b"{\"title\":\"\x80\",\"body\":\"\",\"q\":\"\x80\"}".to_vec());
    v.push(b"{\"title\":\"\xc0\xaf\",\"body\":\"\",\"q\":\"\xc0\xaf\"}".to_vec());
    v.push(b"\xff\xfe{\0}\0".to_vec());
    v
}

#[test]
fn malformed_json_is_400() {
    // Contract: malformed JSON → 400.
    let (server, token, post) = server_with_post(&[]);
    let mut failures = Failures::default();
    let mut cases = 0;
    for (method, path, valid, _) in body_routes(post.id) {
        let mut bodies = malformed_bodies();
        // A complete, valid body spoiled afterwards: trailing bytes, or
        // non-UTF-8 bytes inside an extra (otherwise ignored) member.
        let open = valid.strip_suffix('}').unwrap();
        bodies.push(format!("{valid} trailing").into_bytes());
        bodies.push(format!("{valid}}}").into_bytes());
        let mut bad_utf8 = format!("{open},\"extra\":\"").into_bytes();
        bad_utf8.extend_from_slice(b"\xff\xfe\"}");
        bodies.push(bad_utf8);
        for body in bodies {
            let x = Req::new(method, &path)
                .bearer(&token)
                .json(&body)
                .send(&server);
            failures.check_error(&x, &[400]);
            cases += 1;
        }
    }
    failures.assert_none(cases);
    // Nothing was changed by any of them.
    assert_eq!(fetch_post(&server, post.id), Some(post));
}

#[test]
fn valid_json_of_the_wrong_shape_is_422() {
    // Contract: valid JSON with missing or invalid fields → 422. Register,
    // login and posts here; search's own rule (missing q → 400) is in
    // api_search.
    let (server, token, post) = server_with_post(&[]);
    for (method, path, _, _) in body_routes(post.id).into_iter().take(4) {
        for body in [
            "[]",
            "\"text\"",
            "42",
            "null",
            "true",
            "{}",
            "[{}]",
            "{\"x\":1}",
        ] {
            Req::new(method, &path)
                .bearer(&token)
                .json(body)
                .send(&server)
                .expect_error(422);
        }
    }
    assert_eq!(fetch_post(&server, post.id), Some(post));
}

#[test]
fn deeply_nested_json_is_rejected_without_crashing() {
    // RFC 8259 §9: parsers may limit nesting depth. 100000 unclosed `[` is
    // malformed (400); balanced deep nesting where a string is expected is
    // refused as 400 or 422; deep nesting in an unknown (ignored) field may
    // be accepted or refused. The server must survive (no stack overflow)
    // and keep serving.
    let (mut server, token, post) = server_with_post(&[]);
    let nest = |n: usize| format!("{}\"x\"{}", "[".repeat(n), "]".repeat(n));
    let open = "[".repeat(100_000);
    let balanced = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    let deep_obj = format!("{}1{}", "{\"a\":".repeat(30_000), "}".repeat(30_000));
    let mut failures = Failures::default();
    let mut cases = 0;
    for (method, path, valid, success) in body_routes(post.id) {
        let send = |body: &str| {
            Req::new(method, &path)
                .bearer(&token)
                .json(body)
                .send(&server)
        };
        let known = match path.as_str() {
            "/api/auth/register" | "/api/auth/login" => "username",
            "/api/search" => "q",
            _ => "title",
        };
        let in_known_field = json_obj(&[(known, &nest(40_000))]);
        let in_unknown_field = format!(
            "{},\"extra\":{}}}",
            valid.strip_suffix('}').unwrap(),
            nest(40_000)
        );
        failures.check_error(&send(&open), &[400]);
        failures.check_error(&send(&balanced), &[400, 422]);
        failures.check_error(&send(&deep_obj), &[400, 422]);
        failures.check_error(&send(&in_known_field), &[400, 422]);
        let x = send(&in_unknown_field);
        assert!(
            [success, 400, 422].contains(&x.status),
            "deep nesting in an ignored field\n{}",
            x.show()
        );
        x.json();
        cases += 5;
        server.assert_running();
    }
    Req::get("/healthz").send(&server).expect(200);
    list_posts(&server, "");
    failures.assert_none(cases);
}

#[test]
fn body_over_max_json_body_is_413_and_the_limit_itself_is_fine() {
    // Contract: a body over the configured limit (`--max-json-body`) → 413.
    // Padding is JSON whitespace (RFC 8259 §2), so the text stays valid.
    let (server, token, post) = server_with_post(&["--max-json-body", "1000"]);
    let pad = |json: String, len: usize| {
        assert!(json.len() <= len);
        format!("{json}{}", " ".repeat(len - json.len()))
    };
    // Exactly the limit: accepted.
    Req::post("/api/auth/register")
        .json(pad(credentials("limit_ok", PASSWORD), 1000))
        .send(&server)
        .expect(201);
    Req::post("/api/posts")
        .bearer(&token)
        .json(pad(post_body("at limit", "x"), 1000))
        .send(&server)
        .expect(201);
    // One byte over, on every route with a body.
    for (method, path, body, _) in body_routes(post.id) {
        Req::new(method, &path)
            .bearer(&token)
            .json(pad(body, 1001))
            .send(&server)
            .expect_error(413);
    }
    // Chunked bodies count after decoding.
    Req::post("/api/posts")
        .bearer(&token)
        .json(pad(post_body("chunked", "x"), 1500))
        .chunked()
        .send(&server)
        .expect_error(413);
    // Large but not deep: a 1001-byte string in a field.
    Req::post("/api/posts")
        .bearer(&token)
        .json(post_body("big", &"b".repeat(1000)))
        .send(&server)
        .expect_error(413);
    assert_eq!(
        list_posts(&server, "").1,
        2,
        "only the two posts within the limit"
    );
}

#[test]
fn default_json_limit_is_one_mebibyte() {
    // Contract: default limit 1 MiB. Exactly 1048576 bytes is accepted;
    // a Content-Length of 1048577 is refused from the head alone.
    let server = Server::start(&[]);
    let json = json_obj(&[("q", &js("hello"))]);
    let body = format!("{json}{}", " ".repeat(1_048_576 - json.len()));
    Req::post("/api/search")
        .json(body)
        .send(&server)
        .expect(200);

    let mut c = server.connect();
    let head = b"POST /api/search HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1048577\r\n\r\n";
    c.send(head);
    let resp = c.read_response();
    let x = Exchange {
        request: head.to_vec(),
        resp,
    };
    x.expect_error(413);
}

#[test]
fn framing_errors_on_api_paths_get_json_bodies() {
    // Decision: errors raised at the HTTP framing level on /api paths whose
    // head was readable also get a JSON error body; the connection then
    // closes as for any framing error (RFC 9112 §9.6).
    let server = Server::start(&["--max-body-bytes", "5000"]);
    let cases: [(&[u8], u16); 3] = [
        (
            b"POST /api/posts HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 6000\r\n\r\n",
            413,
        ),
        (
            b"POST /api/search HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            413,
        ),
        (
            b"POST /api/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}",
            400,
        ),
    ];
    for (raw, status) in cases {
        let mut c = server.connect();
        c.send(raw);
        let resp = c.read_response();
        let x = Exchange {
            request: raw.to_vec(),
            resp,
        };
        if status == 413 {
            // RFC 9110 §8.6: an overflowing Content-Length may be 400 too.
            x.expect_error_in(&[400, 413]);
        } else {
            x.expect_error(status);
        }
        assert!(x.has_token("connection", "close"), "{}", x.show());
        c.assert_closed();
    }
}

#[test]
fn chunked_json_bodies_are_accepted() {
    // RFC 9112 §7.1: the framing of the body does not matter to the API.
    let (server, token, _) = server_with_post(&[]);
    Req::post("/api/posts")
        .bearer(&token)
        .json(post_body("chunked title", &"c".repeat(450)))
        .chunked()
        .send(&server)
        .expect(201);
    Req::post("/api/search")
        .json(json_obj(&[("q", &js("chunked"))]))
        .chunked()
        .send(&server)
        .expect(200);
}

// ---------------------------------------------------------------------------
// argon2 off the event loop
// ---------------------------------------------------------------------------

#[test]
fn password_hashing_does_not_block_the_event_loop() {
    // LOGINS logins (each an argon2 verification, tens of ms) on as many
    // connections, then GET /healthz on another: the health check must be
    // answered before the last login, i.e. the loop kept serving while the
    // hashes ran elsewhere. A loop that hashed inline would handle the
    // already-received logins first. No wait is needed for the logins to be
    // ahead: on loopback a request is in the server's socket before `send`
    // returns, and the loop takes ready sockets (and accepts connections) in
    // the order they became ready. The moment the health check's response
    // is in, each login socket is peeked without blocking: at least one must
    // still be waiting for its response. Twelve logins keep the two helper
    // threads busy for several hash-times, far longer than one request.
    const LOGINS: usize = 12;
    let server = Server::start(&[]);
    register(&server, "hasher", PASSWORD);
    let login_bytes = login_req("hasher", PASSWORD).bytes();
    let mut logins: Vec<Client> = (0..LOGINS).map(|_| server.connect()).collect();
    let mut health = server.connect();
    for c in &mut logins {
        c.send(&login_bytes);
    }
    health.send(&get("/healthz"));
    let h = health.read_response();
    let pending = logins
        .iter()
        .filter(|c| {
            c.stream.set_nonblocking(true).unwrap();
            let mut b = [0u8; 1];
            let r = c.stream.peek(&mut b);
            c.stream.set_nonblocking(false).unwrap();
            matches!(r, Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock)
        })
        .count();
    assert_eq!(h.status, 200, "{}", h.head);
    for c in &mut logins {
        let r = c.read_response();
        assert_eq!(r.status, 200, "login: {}\n{}", r.head, r.body_str());
    }
    assert!(
        pending > 0,
        "GET /healthz, sent after {LOGINS} logins, was answered only after all of them were: \
         argon2 blocks the event loop"
    );
}

// ---------------------------------------------------------------------------
// CORS
// ---------------------------------------------------------------------------

fn preflight(path: &str, origin: &str, method: &str) -> Req {
    Req::options(path)
        .origin(origin)
        .header("Access-Control-Request-Method", method)
        .header(
            "Access-Control-Request-Headers",
            "content-type, authorization",
        )
}

fn list_contains(x: &Exchange, field: &str, item: &str) -> bool {
    x.headers_all(field)
        .iter()
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(item))
}

/// The headers a normal API response to an allowed `origin` carries.
fn assert_cors_for(x: &Exchange, origin: &str) {
    assert_eq!(
        x.headers_all("access-control-allow-origin"),
        [origin],
        "{}",
        x.show()
    );
    assert_eq!(
        x.header("access-control-allow-credentials"),
        Some("true"),
        "{}",
        x.show()
    );
    assert!(
        list_contains(x, "vary", "origin"),
        "Vary: Origin\n{}",
        x.show()
    );
}

#[test]
fn cors_is_off_by_default() {
    // Contract: CORS is off by default — no Access-Control-* ever.
    let (server, token, post) = server_with_post(&[]);
    let origin = "http://a.test";
    let x = preflight("/api/posts", origin, "POST").send(&server);
    x.expect_204();
    x.assert_no_cors();
    let reqs = [
        Req::get("/api/posts"),
        Req::get(&format!("/api/posts/{}", post.id)),
        Req::get("/api/auth/me"),
        Req::get("/api/nope"),
        Req::post("/api/posts")
            .bearer(&token)
            .json(post_body("t", "b")),
    ];
    for r in reqs {
        let x = r.origin(origin).send(&server);
        assert!(x.status < 500, "{}", x.show());
        x.assert_no_cors();
    }
}

#[test]
fn cors_preflight_for_allowed_origins() {
    // Decision: with `--cors-origin`, a preflight (Fetch standard, CORS
    // protocol) → 204 with Allow-Origin echoing the origin, Allow-Methods,
    // Allow-Headers (Content-Type, Authorization), Allow-Credentials: true
    // and Vary: Origin. The flag is repeatable.
    let server = Server::start(&[
        "--cors-origin",
        "http://a.test",
        "--cors-origin",
        "http://b.test:8080",
    ]);
    for origin in ["http://a.test", "http://b.test:8080"] {
        for (path, method) in [
            ("/api/posts", "POST"),
            ("/api/posts/1", "PUT"),
            ("/api/posts/1", "DELETE"),
            ("/api/auth/login", "POST"),
            ("/api/search", "GET"),
        ] {
            let x = preflight(path, origin, method).send(&server);
            x.expect_204();
            assert_cors_for(&x, origin);
            assert!(
                list_contains(&x, "access-control-allow-methods", method),
                "Allow-Methods must contain {method}\n{}",
                x.show()
            );
            for h in ["content-type", "authorization"] {
                assert!(
                    list_contains(&x, "access-control-allow-headers", h),
                    "Allow-Headers must contain {h}\n{}",
                    x.show()
                );
            }
        }
    }
}

#[test]
fn cors_headers_on_api_responses_for_allowed_origins() {
    // Decision: API responses to a request from an allowed Origin carry
    // Allow-Origin, Allow-Credentials: true and Vary: Origin — successes and
    // errors alike.
    let origin = "http://a.test";
    let server = Server::start(&["--cors-origin", origin]);
    register(&server, "corsuser", PASSWORD);
    let login = login_req("corsuser", PASSWORD).origin(origin).send(&server);
    login.expect(200);
    assert_cors_for(&login, origin);
    let token = login.expect(200).field("token").str().to_string();
    let created = Req::post("/api/posts")
        .bearer(&token)
        .origin(origin)
        .json(post_body("cors", "body"))
        .send(&server);
    let id = Post::from_json(&created.expect(201)).id;
    assert_cors_for(&created, origin);
    let path = format!("/api/posts/{id}");
    let cases = [
        (Req::get("/api/posts"), 200),
        (Req::get(&path), 200),
        (Req::get("/api/search?q=cors"), 200),
        (Req::get("/api/auth/me").bearer(&token), 200),
        (Req::get("/api/auth/me"), 401),
        (Req::get("/api/posts/999999"), 404),
        (Req::get("/api/nope"), 404),
        (Req::post("/api/posts").bearer(&token).json("{"), 400),
        (Req::put("/api/posts"), 405),
    ];
    for (r, status) in cases {
        let x = r.origin(origin).send(&server);
        x.expect(status);
        assert_cors_for(&x, origin);
    }
    let deleted = Req::delete(&path)
        .bearer(&token)
        .origin(origin)
        .send(&server);
    deleted.expect_204();
    assert_cors_for(&deleted, origin);
}

#[test]
fn cors_ignores_origins_not_in_the_list() {
    // Decision: an Origin not in the list gets no Access-Control-* fields.
    // Origins are compared exactly (RFC 6454 §5: scheme, host and port).
    let server = Server::start(&["--cors-origin", "http://a.test"]);
    for origin in [
        "http://evil.test",
        "https://a.test",
        "http://a.test:8080",
        "http://a.test.evil.test",
        "http://sub.a.test",
        "http://a.tes",
        "null",
        "*",
        "http://a.test, http://evil.test",
    ] {
        let x = preflight("/api/posts", origin, "POST").send(&server);
        assert!(x.status < 500, "{}", x.show());
        x.assert_no_cors();
        let x = Req::get("/api/posts").origin(origin).send(&server);
        x.expect(200);
        x.assert_no_cors();
    }
    // No Origin at all: a same-origin or non-browser request.
    let x = Req::get("/api/posts").send(&server);
    x.expect(200);
    x.assert_no_cors();
}
