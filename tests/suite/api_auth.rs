//! Accounts and sessions: `POST /api/auth/register`, `/login`, `/logout`
//! and `GET /api/auth/me`; username and password rules (lengths in Unicode
//! scalar values), case-insensitive uniqueness, argon2 hashes at rest, the
//! session token (64 hex, cookie or `Authorization: Bearer`, Bearer first,
//! expiry after `--session-ttl`), the exact `Set-Cookie` fields (RFC 6265),
//! and login rate limiting (5 failures a minute → 429 with `Retry-After`).
//!
//! Every successful register/login runs argon2, so tests reuse their users.

use std::time::Duration;

use crate::support::*;

/// Several credential bodies that must each be refused with `status` by
/// `path`.
fn assert_all(server: &Server, path: &str, bodies: &[String], status: u16) {
    for body in bodies {
        Req::post(path).json(body).send(server).expect_error(status);
    }
}

// ---------------------------------------------------------------------------
// Register
// ---------------------------------------------------------------------------

#[test]
fn register_returns_201_with_the_username_only() {
    // Contract: 201 {"username"}; passwords are never echoed.
    let server = Server::start(&[]);
    let password = "Echo-Canary-3b1d-secret";
    let x = register_req("alice_01", password).send(&server);
    let j = x.expect(201);
    j.assert_keys(&["username"]);
    assert_eq!(j.field("username").str(), "alice_01");
    for leak in [password.as_bytes(), b"argon2".as_slice()] {
        assert!(!bytes_contain(&x.body, leak), "{}", x.show());
    }
}

#[test]
fn username_must_be_3_to_32_word_characters() {
    // Contract: username 3–32 chars of [A-Za-z0-9_]; invalid → 422.
    let server = Server::start(&[]);
    for ok in ["abc", &"Z".repeat(32), "A_b_9", "___"] {
        register(&server, ok, PASSWORD);
    }
    let mut bad: Vec<String> = [
        "",
        "ab",
        &"a".repeat(33),
        "ali ce",
        " alice",
        "alice ",
        "alice!",
        "al-ce",
        "al.ce",
        "al@ce",
        "ålice",
        "alicé",
        "😀😀😀",
        "ａｂｃ",
        "abc\u{0}",
        "abc\n",
        "abc\t",
        "abc\u{200b}",
        "abc/../x",
    ]
    .iter()
    .map(|u| credentials(u, PASSWORD))
    .collect();
    bad.extend(HOSTILE_STRINGS.iter().map(|u| credentials(u, PASSWORD)));
    // Wrong types and missing fields.
    let pw = js(PASSWORD);
    for v in ["123", "null", "true", "[]", "[\"abcdef\"]", "{}", "12.5"] {
        bad.push(json_obj(&[("username", v), ("password", &pw)]));
    }
    bad.push(json_obj(&[("password", &pw)]));
    assert_all(&server, "/api/auth/register", &bad, 422);
    // None of them was created: logging in as one fails.
    login_req("' OR 1=1 --", PASSWORD)
        .send(&server)
        .expect_error_in(&[401, 422]);
}

#[test]
fn password_must_be_8_to_128_characters_counted_as_scalar_values() {
    // Contract: password 8–128 chars; lengths count Unicode scalar values,
    // not bytes (and not grapheme clusters).
    let server = Server::start(&[]);
    let emoji = |n: usize| "😀".repeat(n); // 4 bytes each
    let combining = "e\u{301}".repeat(4); // 8 scalar values, 4 graphemes
    let valid = [
        ("pw_ascii8", "12345678".to_string()),
        ("pw_ascii128", "p".repeat(128)),
        ("pw_emoji8", emoji(8)),
        ("pw_emoji128", emoji(128)),
        ("pw_combining", combining),
    ];
    for (user, pw) in &valid {
        register(&server, user, pw);
    }
    let token = login(&server, "pw_emoji128", &emoji(128));
    assert_eq!(whoami(&server, &token).as_deref(), Some("pw_emoji128"));

    let mut bad: Vec<String> = [
        String::new(),
        "1234567".into(),
        "p".repeat(129),
        emoji(7),   // 28 bytes: too short although ≥ 8 bytes
        emoji(129), // too long
        "é".repeat(7),
    ]
    .iter()
    .enumerate()
    .map(|(i, pw)| credentials(&format!("badpw{i}"), pw))
    .collect();
    for v in ["12345678", "null", "true", "[\"12345678\"]", "{}"] {
        bad.push(json_obj(&[("username", &js("badpw_t")), ("password", v)]));
    }
    bad.push(json_obj(&[("username", &js("badpw_m"))]));
    assert_all(&server, "/api/auth/register", &bad, 422);
}

#[test]
fn usernames_are_unique_case_insensitively_and_keep_their_case() {
    // Contract: taken → 409. Decision: uniqueness ignores case; the stored
    // and returned username keeps its original case.
    let server = Server::start(&[]);
    let x = register_req("AlIcE", PASSWORD).send(&server);
    assert_eq!(x.expect(201).field("username").str(), "AlIcE");
    for name in ["AlIcE", "alice", "ALICE", "Alice"] {
        register_req(name, "another password")
            .send(&server)
            .expect_error(409);
    }
    // The original account is untouched by the refused attempts.
    login_req("AlIcE", "another password")
        .send(&server)
        .expect_error(401);
    let x = login_req("AlIcE", PASSWORD).send(&server);
    let j = x.expect(200);
    assert_eq!(j.field("username").str(), "AlIcE", "{}", x.show());
    let token = j.field("token").str();
    assert_eq!(whoami(&server, token).as_deref(), Some("AlIcE"));
}

#[test]
fn register_ignores_unknown_fields() {
    // Decision: unknown extra fields are ignored.
    let server = Server::start(&[]);
    let body = json_obj(&[
        ("username", &js("extra_fields")),
        ("password", &js(PASSWORD)),
        ("admin", "true"),
        ("role", &js("admin")),
        ("id", "1"),
    ]);
    let x = Req::post("/api/auth/register").json(body).send(&server);
    assert_eq!(x.expect(201).field("username").str(), "extra_fields");
}

#[test]
fn non_utf8_credentials_are_400() {
    // RFC 8259 §8.1: JSON text is UTF-8; anything else is malformed.
    let server = Server::start(&[]);
    for body in [
        &b"{\"username\":\"bad\xffname\",\"password\":\"12345678\"}"[..],
        b"{\"username\":\"badname\",\"password\":\"1234\xfe5678\"}",
        b"{\"username\":\"badname\",\"password\":\"\xed\xa0\x80xxxxxxxx\"}", // UTF-8-encoded surrogate
    ] {
        Req::post("/api/auth/register")
            .json(body)
            .send(&server)
            .expect_error(400);
        Req::post("/api/auth/login")
            .json(body)
            .send(&server)
            .expect_error(400);
    }
}

#[test]
fn passwords_are_stored_as_argon2_hashes() {
    if skip_on_postgres("it reads the SQLite database files") {
        return;
    }
    // Contract: passwords hashed with argon2. The database file (and its
    // journal/WAL, if any) holds a PHC string `$argon2…$`, never the
    // plaintext.
    let server = Server::start(&[]);
    let password = "Plaintext-Canary-7f3a9c-pw";
    register(&server, "hashcheck", password);
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(server.outside_dir()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().starts_with(DB_FILE) {
            bytes.extend(std::fs::read(entry.path()).unwrap());
        }
    }
    assert!(
        bytes_contain(&bytes, b"$argon2"),
        "no argon2 PHC hash in the database files"
    );
    assert!(
        !bytes_contain(&bytes, password.as_bytes()),
        "the plaintext password is stored in the database"
    );
}

// ---------------------------------------------------------------------------
// Login, tokens, cookies
// ---------------------------------------------------------------------------

#[test]
fn login_returns_the_token_and_the_session_cookie() {
    // Contract: 200 {"username","token"} and `Set-Cookie: session=<token>;
    // Path=/; HttpOnly; SameSite=Lax; Max-Age=<seconds>` (no Secure over
    // plain HTTP). Decision: token is 64 lowercase hex, Max-Age defaults to
    // 604800 (`--session-ttl`).
    let server = Server::start(&[]);
    register(&server, "Cookie_Monster", PASSWORD);
    let x = login_req("Cookie_Monster", PASSWORD).send(&server);
    let j = x.expect(200);
    j.assert_keys(&["token", "username"]);
    assert_eq!(j.field("username").str(), "Cookie_Monster");
    let token = j.field("token").str().to_string();
    assert_token_syntax(&token);
    assert_session_cookie(&x, &token, 604_800);
    assert!(!bytes_contain(&x.body, PASSWORD.as_bytes()), "{}", x.show());

    // Each login is a new session; both work.
    let token2 = login(&server, "Cookie_Monster", PASSWORD);
    assert_ne!(token, token2);
    for t in [&token, &token2] {
        assert_eq!(whoami(&server, t).as_deref(), Some("Cookie_Monster"));
    }
}

#[test]
fn session_ttl_sets_the_cookie_max_age() {
    // Decision: Max-Age equals `--session-ttl`.
    let server = Server::start(&["--session-ttl", "3600"]);
    register(&server, "ttl_user", PASSWORD);
    let x = login_req("ttl_user", PASSWORD).send(&server);
    let token = x.expect(200).field("token").str().to_string();
    assert_session_cookie(&x, &token, 3600);
}

#[test]
fn an_expired_session_is_401() {
    // Contract: expired → 401. With `--session-ttl 3` the token works at
    // once, still works in a later second than the login was sent in (by the
    // server's own Date, so a loaded machine cannot make it look early), and
    // is then refused: polled until the server says so, nothing timed here.
    let server = Server::start(&["--session-ttl", "3"]);
    let x = register_req("shortlived", PASSWORD).send(&server);
    x.expect(201);
    let before_login = parse_imf_fixdate(x.header("date").unwrap_or(""))
        .unwrap_or_else(|| panic!("Date of the register response\n{}", x.show()));
    let x = login_req("shortlived", PASSWORD).send(&server);
    let token = x.expect(200).field("token").str().to_string();
    assert_session_cookie(&x, &token, 3);
    assert_eq!(whoami(&server, &token).as_deref(), Some("shortlived"));
    let mut last_valid = before_login;
    wait_for_every(
        "the 3-second session to be refused",
        PATIENCE,
        Duration::from_millis(20),
        || {
            let x = Req::get("/api/auth/me").bearer(&token).send(&server);
            match x.status {
                401 => {
                    x.expect_error(401);
                    Ok(())
                }
                200 => {
                    assert_eq!(x.expect(200).field("username").str(), "shortlived");
                    let date = parse_imf_fixdate(x.header("date").unwrap_or(""))
                        .unwrap_or_else(|| panic!("Date\n{}", x.show()));
                    last_valid = last_valid.max(date);
                    Err(format!("still valid at {}", imf_fixdate(date)))
                }
                _ => panic!("GET /api/auth/me: 200 or 401 expected\n{}", x.show()),
            }
        },
    );
    assert!(
        last_valid > before_login,
        "valid within the TTL: the token was last accepted at {}, in the second the login \
         was sent ({})",
        imf_fixdate(last_valid),
        imf_fixdate(before_login)
    );
    // Expired for writes too, and via the cookie.
    Req::post("/api/posts")
        .bearer(&token)
        .json(post_body("late", ""))
        .send(&server)
        .expect_error(401);
    Req::get("/api/auth/me")
        .cookie(&token)
        .send(&server)
        .expect_error(401);
}

#[test]
fn the_token_works_as_cookie_or_bearer() {
    // Contract: `Cookie: session=<token>` or `Authorization: Bearer
    // <token>`. Decision: a Cookie header with several cookies works
    // (RFC 6265 §5.4: pairs separated by "; ").
    let server = Server::start(&[]);
    let token = user_token(&server, "both_ways");
    let cookie_lists = [
        format!("session={token}"),
        format!("a=1; session={token}; b=2"),
        format!("a=1; session={token}"),
        format!("session={token}; b=2"),
    ];
    let mut reqs: Vec<Req> = cookie_lists
        .iter()
        .map(|c| Req::get("/api/auth/me").header("Cookie", c))
        .collect();
    reqs.push(Req::get("/api/auth/me").bearer(&token));
    for r in reqs {
        let x = r.send(&server);
        let j = x.expect(200);
        j.assert_keys(&["username"]);
        assert_eq!(j.field("username").str(), "both_ways", "{}", x.show());
    }
}

#[test]
fn missing_or_invalid_tokens_are_401() {
    // Contract: missing or invalid → 401 with a JSON error.
    let server = Server::start(&[]);
    let token = user_token(&server, "realuser");
    let mut bad: Vec<Req> = vec![Req::get("/api/auth/me")];
    let header_values = [
        "Bearer".to_string(),
        "Bearer ".to_string(),
        format!("Bearer {}", "0".repeat(64)),
        format!("Bearer {}", "f".repeat(64)),
        format!("Bearer {}x", token),
        format!("Bearer {}", &token[..63]),
        format!("Bearer  x{token}"),
        token.clone(), // no scheme
        format!("Basic {token}"),
        "Basic cmVhbHVzZXI6Y29ycmVjdCBob3JzZSBiYXR0ZXJ5IHN0YXBsZQ==".to_string(),
        "Bearer ' OR 1=1 --".to_string(),
        "Bearer ' OR '1'='1".to_string(),
        "Bearer \"); DROP TABLE sessions; --".to_string(),
        "Bearer *".to_string(),
        "Bearer %".to_string(),
    ];
    for v in &header_values {
        bad.push(Req::get("/api/auth/me").header("Authorization", v));
    }
    let cookies = [
        "session=".to_string(),
        "session".to_string(),
        format!("session={}", "0".repeat(64)),
        "session=' OR '1'='1".to_string(),
        "session=\"); DROP TABLE sessions; --".to_string(),
        format!("sessionx={token}"),
        format!("xsession={token}"),
        format!("token={token}"),
    ];
    for c in &cookies {
        bad.push(Req::get("/api/auth/me").header("Cookie", c));
    }
    for r in bad {
        r.send(&server).expect_error(401);
    }
    // Non-UTF-8 bytes in the credentials (obs-text, RFC 9110 §5.5): refused,
    // never accepted; a framing-level 400 is acceptable too.
    for r in [
        Req::get("/api/auth/me").header("Authorization", b"Bearer \xff\xfe\xfd"),
        Req::get("/api/auth/me").header("Cookie", b"session=\xff\xfe"),
    ] {
        r.send(&server).expect_error_in(&[400, 401]);
    }
    // The real token still works afterwards.
    assert_eq!(whoami(&server, &token).as_deref(), Some("realuser"));
}

#[test]
fn bearer_takes_precedence_over_the_cookie() {
    // Decision: with both a cookie and a Bearer token, the Bearer one is
    // used — also when it is invalid.
    let server = Server::start(&[]);
    let a = user_token(&server, "cookie_user");
    let b = user_token(&server, "bearer_user");
    let x = Req::get("/api/auth/me").cookie(&a).bearer(&b).send(&server);
    assert_eq!(x.expect(200).field("username").str(), "bearer_user");
    let x = Req::get("/api/auth/me").bearer(&b).cookie(&a).send(&server);
    assert_eq!(x.expect(200).field("username").str(), "bearer_user");
    Req::get("/api/auth/me")
        .cookie(&a)
        .bearer(&"0".repeat(64))
        .send(&server)
        .expect_error(401);
}

#[test]
fn logout_ends_the_session_and_clears_the_cookie() {
    // Contract: POST /api/auth/logout → 204; the token stops working; the
    // cookie is cleared. Decision: `Set-Cookie: session=; Path=/; HttpOnly;
    // SameSite=Lax; Max-Age=0`; without a valid session → 401. Logout has
    // no body (Content-Length: 0, no Content-Type).
    let server = Server::start(&[]);
    register(&server, "leaver", PASSWORD);
    let t1 = login(&server, "leaver", PASSWORD);
    let t2 = login(&server, "leaver", PASSWORD);

    // Without a session.
    let logout = || Req::post("/api/auth/logout").body("");
    logout().send(&server).expect_error(401);
    logout()
        .bearer(&"0".repeat(64))
        .send(&server)
        .expect_error(401);

    // With a Bearer token.
    let x = logout().bearer(&t1).send(&server);
    x.expect_204();
    assert_session_cookie(&x, "", 0);
    assert_eq!(whoami(&server, &t1), None, "token works after logout");
    logout().bearer(&t1).send(&server).expect_error(401);
    Req::post("/api/posts")
        .bearer(&t1)
        .json(post_body("after logout", ""))
        .send(&server)
        .expect_error(401);

    // With the cookie.
    let x = logout().cookie(&t2).send(&server);
    x.expect_204();
    assert_session_cookie(&x, "", 0);
    assert_eq!(whoami(&server, &t2), None);

    // Logging in again works.
    let t3 = login(&server, "leaver", PASSWORD);
    assert_eq!(whoami(&server, &t3).as_deref(), Some("leaver"));
}

#[test]
fn me_without_a_session_is_401() {
    // Contract: GET /api/auth/me → 200 {"username"} or 401.
    let server = Server::start(&[]);
    let x = Req::get("/api/auth/me").send(&server);
    x.expect_error(401);
    assert!(x.header("set-cookie").is_none(), "{}", x.show());
}

// ---------------------------------------------------------------------------
// Login failures and rate limiting
// ---------------------------------------------------------------------------

#[test]
fn login_failure_is_401_with_the_same_message_for_unknown_user_and_wrong_password() {
    // Contract: wrong password or unknown user → 401 with the same message
    // (no user enumeration).
    let server = Server::start(&[]);
    register(&server, "known_user", PASSWORD);
    let wrong_pw = login_req("known_user", "wrong password!").send(&server);
    let unknown = login_req("unknown_user", PASSWORD).send(&server);
    let m1 = wrong_pw.expect_error(401);
    let m2 = unknown.expect_error(401);
    assert_eq!(m1, m2, "different messages leak which usernames exist");
    for x in [&wrong_pw, &unknown] {
        assert!(x.header("set-cookie").is_none(), "{}", x.show());
    }
    // Login validation: missing fields and wrong types → 422.
    let pw = js(PASSWORD);
    let user = js("known_user");
    let bad = vec![
        json_obj(&[("username", &user)]),
        json_obj(&[("password", &pw)]),
        json_obj(&[("username", "42"), ("password", &pw)]),
        json_obj(&[("username", &user), ("password", "12345678")]),
        json_obj(&[("username", "null"), ("password", &pw)]),
        json_obj(&[("username", &user), ("password", "[\"x\"]")]),
        json_obj(&[("username", "{}"), ("password", &pw)]),
    ];
    assert_all(&server, "/api/auth/login", &bad, 422);
}

#[test]
fn sql_and_nul_in_passwords_are_plain_data() {
    // Hostile input: SQL in passwords is stored and compared as data; a NUL
    // inside a password is part of it (no C-string truncation); SQL in the
    // login username never logs anyone in.
    let server = Server::start(&[]);
    let sql_pw = "' OR 1=1 --";
    let drop_pw = "\"); DROP TABLE users; --";
    let nul_pw = "pass\u{0}word-123";
    register(&server, "sql_pw", sql_pw);
    register(&server, "drop_pw", drop_pw);
    register(&server, "nul_pw", nul_pw);
    for wrong in ["' OR '1'='1", "' OR 1=1 -- ", "anything' --"] {
        login_req("sql_pw", wrong).send(&server).expect_error(401);
    }
    login_req("nul_pw", "pass").send(&server).expect_error(401);
    for user in ["' OR 1=1 --", "sql_pw' --", "sql_pw'; --", "\" OR \"\"=\""] {
        let x = login_req(user, sql_pw).send(&server);
        x.expect_error_in(&[401, 422]);
    }
    // All three accounts still exist and work.
    for (user, pw) in [("sql_pw", sql_pw), ("drop_pw", drop_pw), ("nul_pw", nul_pw)] {
        let t = login(&server, user, pw);
        assert_eq!(whoami(&server, &t).as_deref(), Some(user));
    }
}

fn assert_429(x: &Exchange) {
    x.expect_error(429);
    // RFC 9110 §10.2.3: Retry-After as delay-seconds.
    let ra = x
        .header("retry-after")
        .unwrap_or_else(|| panic!("429 without Retry-After\n{}", x.show()));
    let secs: u64 = ra.parse().unwrap_or_else(|_| {
        panic!(
            "Retry-After must be integer seconds, got {ra:?}\n{}",
            x.show()
        )
    });
    assert!((1..=60).contains(&secs), "Retry-After {secs}\n{}", x.show());
    assert!(x.header("set-cookie").is_none(), "{}", x.show());
}

#[test]
fn five_failed_logins_for_a_username_then_429_with_retry_after() {
    // Contract: 5 failures for one username within a minute → 429 with
    // Retry-After. Decision: from then on even the right password gets 429;
    // other usernames are unaffected.
    let server = Server::start(&[]);
    register(&server, "victim", PASSWORD);
    register(&server, "bystander", PASSWORD);
    for i in 1..=5 {
        let x = login_req("victim", &format!("wrong password {i}")).send(&server);
        x.expect_error(401);
    }
    assert_429(&login_req("victim", PASSWORD).send(&server));
    assert_429(&login_req("victim", "wrong again!").send(&server));
    // Others are unaffected.
    login_req("bystander", "wrong password")
        .send(&server)
        .expect_error(401);
    let t = login(&server, "bystander", PASSWORD);
    assert_eq!(whoami(&server, &t).as_deref(), Some("bystander"));
}

#[test]
fn unknown_usernames_are_rate_limited_too() {
    // Contract: "repeated failures for one username" — an unknown username
    // fails the same way, so it is limited the same way (otherwise 429 vs
    // 401 would reveal which accounts exist).
    let server = Server::start(&[]);
    for _ in 0..5 {
        login_req("ghost_user", PASSWORD)
            .send(&server)
            .expect_error(401);
    }
    assert_429(&login_req("ghost_user", PASSWORD).send(&server));
}

#[test]
fn a_successful_login_resets_the_failure_count() {
    // Decision: a successful login before reaching 5 resets the count.
    let server = Server::start(&[]);
    register(&server, "forgetful", PASSWORD);
    for _ in 0..4 {
        login_req("forgetful", "not my password")
            .send(&server)
            .expect_error(401);
    }
    login(&server, "forgetful", PASSWORD);
    for _ in 0..4 {
        login_req("forgetful", "not my password")
            .send(&server)
            .expect_error(401);
    }
    login(&server, "forgetful", PASSWORD);
}
