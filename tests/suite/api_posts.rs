//! Posts: the Post shape (integer id, RFC 3339 UTC timestamps), create
//! (201 + `Location`), read, list (newest first, `total`, `limit`/`offset`
//! with default 20, clamp at 100, 400 for invalid values), full-replace PUT
//! and DELETE with 401/403/404, title/body validation with lengths in
//! Unicode scalar values, wrong JSON types, ignored extra fields, and SQL /
//! FTS syntax, NUL and emoji stored verbatim.

use crate::support::*;

/// A server with two users; returns (server, token of `author`, token of
/// `other`).
fn two_users(args: &[&str]) -> (Server, String, String) {
    let server = Server::start(args);
    let a = user_token(&server, "author");
    let b = user_token(&server, "other");
    (server, a, b)
}

fn post_req(token: &str, body: impl AsRef<[u8]>) -> Req {
    Req::post("/api/posts").bearer(token).json(body)
}

// ---------------------------------------------------------------------------
// Create and read
// ---------------------------------------------------------------------------

#[test]
fn create_returns_201_with_location_and_the_post() {
    // Contract: POST /api/posts → 201 Post with `Location: /api/posts/<id>`;
    // GET /api/posts/:id → 200 Post. Decision: timestamps are RFC 3339 UTC
    // like `2026-11-22T02:45:00Z`.
    let server = Server::start(&[]);
    let token = user_token(&server, "Poster_1");
    let x = post_req(&token, post_body("Hello", "World\nsecond line")).send(&server);
    let p = Post::from_json(&x.expect(201));
    assert_eq!(
        x.header("location"),
        Some(format!("/api/posts/{}", p.id).as_str()),
        "{}",
        x.show()
    );
    assert_eq!(p.title, "Hello");
    assert_eq!(p.body, "World\nsecond line");
    assert_eq!(p.author, "Poster_1", "author is the logged-in user");
    assert_rfc3339_near_now(&p.created_at);
    assert_rfc3339_near_now(&p.updated_at);

    let got = Req::get(x.header("location").unwrap()).send(&server);
    assert_eq!(Post::from_json(&got.expect(200)), p, "{}", got.show());
    // Reading is public: with a cookie session as well as without any.
    let got = Req::get(&format!("/api/posts/{}", p.id))
        .cookie(&token)
        .send(&server);
    assert_eq!(Post::from_json(&got.expect(200)), p);

    // A second post gets another id.
    let q = create_post(&server, &token, "Second", "");
    assert_ne!(q.id, p.id);
}

#[test]
fn writes_with_the_session_cookie_work() {
    // Contract: the token may be sent as cookie `session=<token>`.
    let server = Server::start(&[]);
    let token = user_token(&server, "cookie_writer");
    let x = Req::post("/api/posts")
        .cookie(&token)
        .json(post_body("via cookie", "b"))
        .send(&server);
    let p = Post::from_json(&x.expect(201));
    assert_eq!(p.author, "cookie_writer");
    let path = format!("/api/posts/{}", p.id);
    Req::put(&path)
        .cookie(&token)
        .json(post_body("via cookie 2", "b2"))
        .send(&server)
        .expect(200);
    Req::delete(&path).cookie(&token).send(&server).expect_204();
    assert_eq!(fetch_post(&server, p.id), None);
}

#[test]
fn creating_requires_a_valid_session() {
    // Contract: login required; missing, invalid or expired → 401.
    let server = Server::start(&[]);
    let token = user_token(&server, "loggedout");
    let body = post_body("t", "b");
    Req::post("/api/posts")
        .json(&body)
        .send(&server)
        .expect_error(401);
    post_req(&"0".repeat(64), &body)
        .send(&server)
        .expect_error(401);
    Req::post("/api/posts")
        .header("Cookie", "session=' OR 1=1 --")
        .json(&body)
        .send(&server)
        .expect_error(401);
    Req::post("/api/auth/logout")
        .bearer(&token)
        .body("")
        .send(&server)
        .expect_204();
    post_req(&token, &body).send(&server).expect_error(401);
    assert_eq!(list_posts(&server, ""), (vec![], 0), "nothing was created");
}

#[test]
fn title_and_body_lengths_count_characters() {
    // Decision: title a string of 1–200 characters, body 0–100000
    // characters, counted as Unicode scalar values (200 emoji is a valid
    // title, 201 is 422).
    let server = Server::start(&[]);
    let token = user_token(&server, "lengths");
    let emoji = |n: usize| "😀".repeat(n);
    let valid = [
        ("x".to_string(), String::new()),
        ("t".repeat(200), "b".to_string()),
        (emoji(200), emoji(3)),
        ("e\u{301}".repeat(100), String::new()), // 200 scalar values
        ("body max".to_string(), "b".repeat(100_000)),
        ("body max, 2-byte".to_string(), "é".repeat(100_000)),
        ("body max, emoji".to_string(), emoji(100_000)),
    ];
    for (title, body) in &valid {
        let p = create_post(&server, &token, title, body);
        let got = fetch_post(&server, p.id).expect("created post");
        assert_eq!(
            (got.title.as_str(), got.body.as_str()),
            (title.as_str(), body.as_str())
        );
    }
    let invalid = [
        (String::new(), "b".to_string()),
        ("t".repeat(201), String::new()),
        (emoji(201), String::new()),
        ("e\u{301}".repeat(101), String::new()),
        ("x".to_string(), "b".repeat(100_001)),
        ("x".to_string(), emoji(100_001)),
    ];
    for (title, body) in &invalid {
        post_req(&token, post_body(title, body))
            .send(&server)
            .expect_error(422);
    }
    assert_eq!(list_posts(&server, "").1, valid.len() as i64);
}

#[test]
fn missing_fields_and_wrong_types_are_422() {
    // Decision: missing fields, null, numbers, arrays (and other non-string
    // values) → 422.
    let server = Server::start(&[]);
    let token = user_token(&server, "types");
    let t = js("title");
    let b = js("body");
    let mut bodies = vec![
        json_obj(&[("title", &t)]),
        json_obj(&[("body", &b)]),
        "{}".to_string(),
    ];
    for v in [
        "null",
        "42",
        "-1",
        "1.5",
        "true",
        "false",
        "[]",
        "[\"x\"]",
        "{}",
        "{\"a\":\"x\"}",
    ] {
        bodies.push(json_obj(&[("title", v), ("body", &b)]));
        bodies.push(json_obj(&[("title", &t), ("body", v)]));
    }
    for body in &bodies {
        post_req(&token, body).send(&server).expect_error(422);
    }
    assert_eq!(list_posts(&server, "").1, 0);
}

#[test]
fn extra_fields_are_ignored_and_cannot_spoof_server_fields() {
    // Decision: unknown extra fields are ignored — including attempts to
    // set id, author or the timestamps.
    let server = Server::start(&[]);
    let token = user_token(&server, "honest");
    let body = json_obj(&[
        ("title", &js("spoof")),
        ("body", &js("b")),
        ("id", "999"),
        ("author", &js("mallory")),
        ("created_at", &js("1999-01-01T00:00:00Z")),
        ("updated_at", &js("1999-01-01T00:00:00Z")),
        ("admin", "true"),
    ]);
    let x = post_req(&token, body).send(&server);
    let p = Post::from_json(&x.expect(201));
    assert_eq!(p.author, "honest", "{}", x.show());
    assert_ne!(p.id, 999, "{}", x.show());
    assert_rfc3339_near_now(&p.created_at);
    assert_rfc3339_near_now(&p.updated_at);
    assert_eq!(fetch_post(&server, 999), None);
}

#[test]
fn hostile_strings_are_stored_verbatim() {
    // SQL and FTS syntax, NUL, control characters, escapes, emoji and
    // astral characters as surrogate-pair escapes: stored and returned
    // byte for byte, and the posts table survives.
    let server = Server::start(&[]);
    let token = user_token(&server, "hostile");
    let mut strings: Vec<String> = HOSTILE_STRINGS.iter().map(|s| s.to_string()).collect();
    strings.extend(
        [
            "Robert'); DROP TABLE posts;--",
            "1; DELETE FROM posts",
            "\"quoted\" 'single' `back`",
            "tab\tnewline\nreturn\rbackslash\\slash/",
            "\u{1}\u{1f}\u{7f}",
            "<script>alert(1)</script>",
            "emoji 😀👍🏽 and 中文 and עברית",
            "\u{feff}bom",
            "NEAR(a b, 2) OR title:* AND -x ^y {title}: z",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let mut ids = Vec::new();
    for s in &strings {
        let p = create_post(&server, &token, s, s);
        ids.push(p.id);
        assert_eq!(fetch_post(&server, p.id), Some(p));
    }
    // A body sent with JSON escapes (surrogate pair, \u0000, \/) decodes to
    // the same characters.
    let x = post_req(
        &token,
        r#"{"title":"\ud83d\ude00 \u0041\/","body":"a\u0000b"}"#,
    )
    .send(&server);
    let p = Post::from_json(&x.expect(201));
    assert_eq!(p.title, "😀 A/", "{}", x.show());
    assert_eq!(p.body, "a\u{0}b", "{}", x.show());
    ids.push(p.id);

    let (posts, total) = list_posts(&server, "?limit=100");
    assert_eq!(total as usize, ids.len(), "the posts table is intact");
    let mut listed: Vec<i64> = posts.iter().map(|p| p.id).collect();
    listed.sort_unstable();
    ids.sort_unstable();
    assert_eq!(listed, ids);
    // Non-UTF-8 in a field is malformed JSON (RFC 8259 §8.1).
    post_req(&token, b"{\"title\":\"ab\xffcd\",\"body\":\"\"}".as_slice())
        .send(&server)
        .expect_error(400);
    // Lone surrogates are not Unicode scalar values: refused, never stored.
    post_req(&token, r#"{"title":"\ud800","body":""}"#)
        .send(&server)
        .expect_error_in(&[400, 422]);
    assert_eq!(list_posts(&server, "").1 as usize, ids.len());
}

// ---------------------------------------------------------------------------
// Get by id
// ---------------------------------------------------------------------------

#[test]
fn get_by_id_404s() {
    // Contract: 404 for a missing post (a non-numeric id: 404 or 400).
    // Decision: `/api/posts/abc` and `/api/posts/999999` → 404.
    let server = Server::start(&[]);
    let token = user_token(&server, "ids");
    let p = create_post(&server, &token, "only", "post");
    for path in ["/api/posts/999999", "/api/posts/abc", "/api/posts/0"] {
        Req::get(path).send(&server).expect_error(404);
    }
    for path in [
        "/api/posts/-1",
        "/api/posts/1.5",
        "/api/posts/1abc",
        "/api/posts/%31",
        "/api/posts/1e3",
        "/api/posts/0x1",
        "/api/posts/99999999999999999999999999",
        "/api/posts/-9223372036854775808",
        "/api/posts/1%20OR%201=1",
        "/api/posts/1%27%20OR%20%271%27=%271",
        "/api/posts/1;DROP%20TABLE%20posts",
        "/api/posts/%00",
        "/api/posts/%FF",
    ] {
        let x = Req::get(path).send(&server);
        // `%31` is "1" percent-encoded; serving post 1 there is fine too.
        if path == "/api/posts/%31" && x.status == 200 {
            assert_eq!(Post::from_json(&x.expect(200)), p);
            continue;
        }
        x.expect_error_in(&[400, 404]);
    }
    assert_eq!(fetch_post(&server, p.id), Some(p));
}

// ---------------------------------------------------------------------------
// List
// ---------------------------------------------------------------------------

#[test]
fn list_is_newest_first_with_total_and_paging() {
    // Contract: {"posts":[Post…], "total": int}, newest first; public.
    // Decision: newest = highest id; offset past the end → [] with the
    // right total; limit=0 → [].
    let server = Server::start(&[]);
    assert_eq!(list_posts(&server, ""), (vec![], 0), "empty list");
    let token = user_token(&server, "lister");
    let created: Vec<Post> = (1..=5)
        .map(|i| create_post(&server, &token, &format!("post {i}"), &format!("body {i}")))
        .collect();
    let newest_first: Vec<Post> = created.iter().rev().cloned().collect();
    assert!(newest_first.windows(2).all(|w| w[0].id > w[1].id));

    assert_eq!(list_posts(&server, ""), (newest_first.clone(), 5));
    assert_eq!(
        list_posts(&server, "?limit=2"),
        (newest_first[..2].to_vec(), 5)
    );
    assert_eq!(
        list_posts(&server, "?limit=2&offset=2"),
        (newest_first[2..4].to_vec(), 5)
    );
    assert_eq!(
        list_posts(&server, "?offset=2&limit=2"),
        (newest_first[2..4].to_vec(), 5)
    );
    assert_eq!(
        list_posts(&server, "?offset=4"),
        (newest_first[4..].to_vec(), 5)
    );
    assert_eq!(list_posts(&server, "?offset=5"), (vec![], 5));
    assert_eq!(list_posts(&server, "?offset=1000"), (vec![], 5));
    assert_eq!(list_posts(&server, "?limit=0"), (vec![], 5));
    assert_eq!(
        list_posts(&server, "?limit=100&offset=0"),
        (newest_first.clone(), 5)
    );

    // `total` counts all posts, and follows deletes.
    Req::delete(&format!("/api/posts/{}", created[4].id))
        .bearer(&token)
        .send(&server)
        .expect_204();
    assert_eq!(
        list_posts(&server, "?limit=1"),
        (newest_first[1..2].to_vec(), 4)
    );
}

#[test]
fn list_limit_defaults_to_20_and_is_clamped_to_100() {
    // Contract: limit default 20, at most 100. Decision: larger limits are
    // clamped to 100.
    let server = Server::start(&["--seed-posts", "130"]);
    let (page, total) = list_posts(&server, "");
    assert_eq!((page.len(), total), (20, 130));
    for q in [
        "?limit=100",
        "?limit=101",
        "?limit=1000",
        "?limit=4294967296",
    ] {
        let (page, total) = list_posts(&server, q);
        assert_eq!((page.len(), total), (100, 130), "{q}");
        assert!(
            page.windows(2).all(|w| w[0].id > w[1].id),
            "newest first for {q}"
        );
    }
    let (tail, _) = list_posts(&server, "?limit=100&offset=120");
    assert_eq!(tail.len(), 10);
    let (all_but_tail, _) = list_posts(&server, "?limit=100&offset=20");
    assert!(all_but_tail.last().unwrap().id > tail[0].id);
}

#[test]
fn invalid_limit_or_offset_is_400() {
    // Contract: a non-numeric or negative limit or offset → 400. Decision:
    // `limit=` (empty) and `limit=1.5` too.
    let server = Server::start(&["--seed-posts", "3"]);
    for q in [
        "limit=",
        "limit=abc",
        "limit=-1",
        "limit=1.5",
        "limit=1e2",
        "limit=0x10",
        "limit=%20",
        "limit=1%20",
        "limit=' OR 1=1 --",
        "limit=1;DROP TABLE posts",
        "offset=",
        "offset=-1",
        "offset=abc",
        "offset=1.5",
        "offset=-0.5",
        "limit=10&offset=-3",
        "limit=-100&offset=0",
    ] {
        let target = format!("/api/posts?{}", q.replace(' ', "%20"));
        Req::get(&target).send(&server).expect_error(400);
    }
    // Huge numerals are not a 500: clamped (limit) or an empty page
    // (offset), or refused.
    for q in [
        "limit=99999999999999999999999",
        "offset=99999999999999999999999",
    ] {
        let x = Req::get(&format!("/api/posts?{q}")).send(&server);
        if x.status == 400 {
            x.expect_error(400);
        } else {
            let j = x.expect(200);
            assert!(j.field("posts").arr().len() <= 3);
            assert_eq!(j.field("total").int(), 3);
        }
    }
    assert_eq!(list_posts(&server, "").1, 3);
}

// ---------------------------------------------------------------------------
// Update
// ---------------------------------------------------------------------------

#[test]
fn put_replaces_title_and_body_and_keeps_id_author_created_at() {
    // Contract: PUT /api/posts/:id (same body, full replace) → 200 Post.
    // Decision: keeps id, author and created_at, sets updated_at.
    let (server, a, _) = two_users(&[]);
    let p = create_post(&server, &a, "Before", "old body");
    // Whole seconds: wait until the server's clock has left created_at's
    // second, so a second-resolution updated_at must change.
    let created = rfc3339_utc(&p.created_at).expect("created_at");
    wait_for_server_clock_past(&server, created);
    let x = Req::put(&format!("/api/posts/{}", p.id))
        .bearer(&a)
        .json(post_body("After", ""))
        .send(&server);
    let q = Post::from_json(&x.expect(200));
    assert_eq!(
        (q.id, q.author.as_str(), q.created_at.as_str()),
        (p.id, "author", p.created_at.as_str()),
        "{}",
        x.show()
    );
    assert_eq!(
        (q.title.as_str(), q.body.as_str()),
        ("After", ""),
        "{}",
        x.show()
    );
    assert!(
        rfc3339_utc(&q.updated_at) > rfc3339_utc(&p.created_at),
        "updated_at must move forward\n{}",
        x.show()
    );
    assert_rfc3339_near_now(&q.updated_at);
    assert_eq!(fetch_post(&server, p.id), Some(q.clone()));
    assert_eq!(list_posts(&server, ""), (vec![q], 1));
}

#[test]
fn put_errors_401_403_404_422() {
    // Contract: PUT → 404; 401; 403 if not the author. Full replace, so a
    // missing field is 422 like on create.
    let (server, a, b) = two_users(&[]);
    let p = create_post(&server, &a, "Mine", "hands off");
    let path = format!("/api/posts/{}", p.id);
    let body = post_body("Hijacked", "by other");
    Req::put(&path).json(&body).send(&server).expect_error(401);
    Req::put(&path)
        .bearer(&"0".repeat(64))
        .json(&body)
        .send(&server)
        .expect_error(401);
    Req::put(&path)
        .bearer(&b)
        .json(&body)
        .send(&server)
        .expect_error(403);
    Req::put(&path)
        .cookie(&b)
        .json(&body)
        .send(&server)
        .expect_error(403);
    Req::put("/api/posts/999999")
        .bearer(&a)
        .json(&body)
        .send(&server)
        .expect_error(404);
    Req::put("/api/posts/abc")
        .bearer(&a)
        .json(&body)
        .send(&server)
        .expect_error_in(&[400, 404]);
    for bad in [
        json_obj(&[("title", &js("only title"))]),
        json_obj(&[("body", &js("only body"))]),
        post_body("", "b"),
        post_body(&"t".repeat(201), "b"),
        json_obj(&[("title", "null"), ("body", &js("b"))]),
        json_obj(&[("title", &js("t")), ("body", "7")]),
    ] {
        Req::put(&path)
            .bearer(&a)
            .json(bad)
            .send(&server)
            .expect_error(422);
    }
    assert_eq!(fetch_post(&server, p.id), Some(p), "the post is unchanged");
}

// ---------------------------------------------------------------------------
// Delete
// ---------------------------------------------------------------------------

#[test]
fn delete_is_204_then_404() {
    // Contract: DELETE /api/posts/:id → 204; 404; 401; 403 if not the author.
    let (server, a, b) = two_users(&[]);
    let keep = create_post(&server, &a, "Keep", "k");
    let p = create_post(&server, &a, "Doomed", "d");
    let path = format!("/api/posts/{}", p.id);
    Req::delete(&path).send(&server).expect_error(401);
    Req::delete(&path)
        .bearer(&"f".repeat(64))
        .send(&server)
        .expect_error(401);
    Req::delete(&path)
        .bearer(&b)
        .send(&server)
        .expect_error(403);
    assert_eq!(
        fetch_post(&server, p.id),
        Some(p.clone()),
        "still there after 401/403"
    );
    Req::delete("/api/posts/999999")
        .bearer(&a)
        .send(&server)
        .expect_error(404);
    Req::delete("/api/posts/abc")
        .bearer(&a)
        .send(&server)
        .expect_error_in(&[400, 404]);

    let x = Req::delete(&path).bearer(&a).send(&server);
    x.expect_204();
    assert_eq!(fetch_post(&server, p.id), None);
    Req::delete(&path)
        .bearer(&a)
        .send(&server)
        .expect_error(404);
    Req::put(&path)
        .bearer(&a)
        .json(post_body("zombie", ""))
        .send(&server)
        .expect_error(404);
    assert_eq!(list_posts(&server, ""), (vec![keep], 1));
}
