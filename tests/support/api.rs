//! Helpers for the JSON API tests: a request builder, an `Exchange` (the
//! request bytes plus the parsed response, so every failure message shows
//! exactly what was sent and received), assertions for the API contract
//! (JSON Content-Type, `{"error": ...}` bodies, the Post shape, RFC 3339
//! timestamps) and shorthands to register, log in and create posts.

use std::fmt::Write as _;

use super::json::{Json, js, json_obj};
use super::{Client, Response, Server, find, now_secs};

/// The password every helper-registered user gets (8–128 characters).
pub const PASSWORD: &str = "correct horse battery staple";

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// An HTTP/1.1 request to build and send. Keep-alive unless `close()`.
#[derive(Debug, Clone)]
pub struct Req {
    method: String,
    target: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
    chunked: bool,
}

impl Req {
    pub fn new(method: &str, target: &str) -> Req {
        Req {
            method: method.to_string(),
            target: target.to_string(),
            headers: vec![("Host".into(), b"localhost".to_vec())],
            body: None,
            chunked: false,
        }
    }

    pub fn get(target: &str) -> Req {
        Req::new("GET", target)
    }

    pub fn head(target: &str) -> Req {
        Req::new("HEAD", target)
    }

    pub fn post(target: &str) -> Req {
        Req::new("POST", target)
    }

    pub fn put(target: &str) -> Req {
        Req::new("PUT", target)
    }

    pub fn delete(target: &str) -> Req {
        Req::new("DELETE", target)
    }

    pub fn options(target: &str) -> Req {
        Req::new("OPTIONS", target)
    }

    /// Adds a header field (raw bytes allowed in the value).
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Req {
        self.headers
            .push((name.to_string(), value.as_ref().to_vec()));
        self
    }

    /// A body with `Content-Type: application/json`.
    pub fn json(self, body: impl AsRef<[u8]>) -> Req {
        self.header("Content-Type", "application/json").body(body)
    }

    /// A body with no Content-Type added (set one with `header`).
    pub fn body(mut self, body: impl AsRef<[u8]>) -> Req {
        self.body = Some(body.as_ref().to_vec());
        self
    }

    /// Send the body with `Transfer-Encoding: chunked` (in 100-byte chunks)
    /// instead of Content-Length.
    pub fn chunked(mut self) -> Req {
        self.chunked = true;
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Req {
        self.header("Authorization", format!("Bearer {token}"))
    }

    /// `Cookie: session=<token>`.
    pub fn cookie(self, token: &str) -> Req {
        self.header("Cookie", format!("session={token}"))
    }

    pub fn origin(self, origin: &str) -> Req {
        self.header("Origin", origin)
    }

    pub fn close(self) -> Req {
        self.header("Connection", "close")
    }

    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request on the wire.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.target).into_bytes();
        for (n, v) in &self.headers {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
        match &self.body {
            Some(body) if self.chunked => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                for piece in body.chunks(100) {
                    out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                    out.extend_from_slice(piece);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
            }
            Some(body) => {
                out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                out.extend_from_slice(body);
            }
            None => out.extend_from_slice(b"\r\n"),
        }
        out
    }

    /// Sends on a fresh connection and reads one response.
    pub fn send(&self, server: &Server) -> Exchange {
        let mut c = server.connect();
        self.send_on(&mut c)
    }

    /// Sends on an existing (keep-alive) connection and reads one response.
    pub fn send_on(&self, c: &mut Client) -> Exchange {
        let bytes = self.bytes();
        c.send(&bytes);
        let resp = c
            .try_read_response(self.method == "HEAD")
            .unwrap_or_else(|e| panic!("request:\n{}\nno valid response: {e}", show(&bytes)));
        Exchange {
            request: bytes,
            resp,
        }
    }
}

/// Printable form of raw request/response bytes for failure messages, long
/// runs shortened.
pub fn show(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.chars().count() <= 600 {
        return text.into_owned();
    }
    let head: String = text.chars().take(400).collect();
    let tail: String = {
        let v: Vec<char> = text.chars().collect();
        v[v.len() - 100..].iter().collect()
    };
    format!("{head}…[{} bytes in total]…{tail}", bytes.len())
}

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

/// One request and its response.
pub struct Exchange {
    pub request: Vec<u8>,
    pub resp: Response,
}

impl std::ops::Deref for Exchange {
    type Target = Response;
    fn deref(&self) -> &Response {
        &self.resp
    }
}

impl Exchange {
    /// Request and response, for failure messages.
    pub fn show(&self) -> String {
        format!(
            "--- request ---\n{}\n--- response ---\n{}\r\n\r\n{}",
            show(&self.request),
            self.resp.head,
            show(&self.resp.body)
        )
    }

    pub fn assert_status(&self, status: u16) {
        assert_eq!(
            self.resp.status,
            status,
            "expected status {status}\n{}",
            self.show()
        );
    }

    /// Asserts an API response with `status` (which must allow a body): the
    /// harness basics (Date, Server, Content-Length), `Content-Type:
    /// application/json`, and a body that parses as JSON, which is returned.
    pub fn expect(&self, status: u16) -> Json {
        self.assert_status(status);
        self.json()
    }

    /// Basics + JSON Content-Type + parsed body, whatever the status.
    pub fn json(&self) -> Json {
        self.resp.assert_basics();
        self.assert_json_content_type();
        Json::parse(&self.resp.body)
            .unwrap_or_else(|e| panic!("response body is not JSON: {e}\n{}", self.show()))
    }

    /// Contract: "Every API response has Content-Type: application/json
    /// (except 204)". Media type compared case-insensitively (RFC 9110
    /// §8.3.1); parameters such as charset would be tolerated.
    pub fn assert_json_content_type(&self) {
        let ct = self
            .resp
            .header("content-type")
            .unwrap_or_else(|| panic!("API response without Content-Type\n{}", self.show()));
        let media = ct.split(';').next().unwrap().trim();
        assert!(
            media.eq_ignore_ascii_case("application/json"),
            "API response Content-Type must be application/json, got {ct:?}\n{}",
            self.show()
        );
        assert_eq!(
            self.resp.headers_all("content-type").len(),
            1,
            "one Content-Type\n{}",
            self.show()
        );
    }

    /// Contract: errors have the body `{"error": "<human-readable
    /// message>"}`. Returns the message.
    pub fn expect_error(&self, status: u16) -> String {
        let j = self.expect(status);
        self.error_message(&j)
    }

    /// Like `expect_error` for a status out of a set of acceptable ones
    /// (where the contract allows a choice).
    pub fn expect_error_in(&self, statuses: &[u16]) -> String {
        assert!(
            statuses.contains(&self.resp.status),
            "expected one of {statuses:?}\n{}",
            self.show()
        );
        let j = self.json();
        self.error_message(&j)
    }

    fn error_message(&self, j: &Json) -> String {
        match j {
            Json::Obj(m) if m.len() == 1 && m[0].0 == "error" => match &m[0].1 {
                Json::Str(s) if !s.trim().is_empty() => s.clone(),
                _ => panic!(
                    "\"error\" must be a non-empty string message\n{}",
                    self.show()
                ),
            },
            _ => panic!(
                "error body must be exactly {{\"error\": \"<message>\"}}\n{}",
                self.show()
            ),
        }
    }

    /// A 204: no body, no Content-Length, no Content-Type required.
    pub fn expect_204(&self) {
        self.assert_status(204);
        self.resp.assert_basics();
        assert!(self.resp.body.is_empty(), "{}", self.show());
    }

    /// Asserts the response carries no `Access-Control-*` field at all.
    pub fn assert_no_cors(&self) {
        let cors: Vec<_> = self
            .resp
            .headers
            .iter()
            .filter(|(n, _)| n.to_ascii_lowercase().starts_with("access-control-"))
            .collect();
        assert!(
            cors.is_empty(),
            "unexpected CORS fields {cors:?}\n{}",
            self.show()
        );
    }
}

/// Collects status mismatches over many cases, so one test reports every
/// failing case at once instead of stopping at the first.
#[derive(Default)]
pub struct Failures(Vec<String>);

impl Failures {
    /// Expects an API error with one of `statuses`; a different status is
    /// recorded, a wrong error shape panics at once.
    pub fn check_error(&mut self, x: &Exchange, statuses: &[u16]) {
        if statuses.contains(&x.status) {
            x.expect_error_in(statuses);
        } else {
            self.0
                .push(format!("expected status {statuses:?}\n{}", x.show()));
        }
    }

    pub fn assert_none(self, cases: usize) {
        assert!(
            self.0.is_empty(),
            "{} of {cases} cases failed:\n\n{}",
            self.0.len(),
            self.0.join("\n\n")
        );
    }
}

// ---------------------------------------------------------------------------
// Users and sessions
// ---------------------------------------------------------------------------

pub fn credentials(username: &str, password: &str) -> String {
    json_obj(&[("username", &js(username)), ("password", &js(password))])
}

pub fn register_req(username: &str, password: &str) -> Req {
    Req::post("/api/auth/register").json(credentials(username, password))
}

pub fn login_req(username: &str, password: &str) -> Req {
    Req::post("/api/auth/login").json(credentials(username, password))
}

/// Registers (expects 201 `{"username"}`).
pub fn register(server: &Server, username: &str, password: &str) {
    let x = register_req(username, password).send(server);
    let j = x.expect(201);
    assert_eq!(j.field("username").str(), username, "{}", x.show());
}

/// Logs in (expects 200) and returns the session token.
pub fn login(server: &Server, username: &str, password: &str) -> String {
    let x = login_req(username, password).send(server);
    let j = x.expect(200);
    let token = j.field("token").str().to_string();
    assert_token_syntax(&token);
    token
}

/// Registers `username` with `PASSWORD` and logs in; returns the token.
pub fn user_token(server: &Server, username: &str) -> String {
    register(server, username, PASSWORD);
    login(server, username, PASSWORD)
}

/// Decision: a token is 64 lowercase hex characters.
pub fn assert_token_syntax(token: &str) {
    assert!(
        token.len() == 64
            && token
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "token must be 64 lowercase hex characters, got {token:?}"
    );
}

/// `GET /api/auth/me` with a bearer token: Some(username) on 200, None on 401.
pub fn whoami(server: &Server, token: &str) -> Option<String> {
    let x = Req::get("/api/auth/me").bearer(token).send(server);
    match x.status {
        200 => Some(x.expect(200).field("username").str().to_string()),
        401 => {
            x.expect_error(401);
            None
        }
        _ => panic!("/api/auth/me: expected 200 or 401\n{}", x.show()),
    }
}

/// A parsed `Set-Cookie` field: the name=value pair and the attributes
/// (names lower-cased, values as sent), RFC 6265 §4.1.
#[derive(Debug)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    pub attrs: Vec<(String, Option<String>)>,
}

impl SetCookie {
    pub fn parse(field: &str) -> SetCookie {
        let mut parts = field.split(';');
        let pair = parts.next().unwrap().trim();
        let (name, value) = pair
            .split_once('=')
            .unwrap_or_else(|| panic!("Set-Cookie without name=value: {field:?}"));
        let attrs = parts
            .map(|a| {
                let a = a.trim();
                match a.split_once('=') {
                    Some((n, v)) => (n.trim().to_ascii_lowercase(), Some(v.trim().to_string())),
                    None => (a.to_ascii_lowercase(), None),
                }
            })
            .collect();
        SetCookie {
            name: name.trim().to_string(),
            value: value.trim().to_string(),
            attrs,
        }
    }

    /// Attribute names (lower case), sorted, each with its value.
    pub fn sorted_attrs(&self) -> Vec<(String, Option<String>)> {
        let mut a = self.attrs.clone();
        a.sort();
        a
    }
}

/// Asserts the exact session cookie of the contract: `session=<value>;
/// Path=/; HttpOnly; SameSite=Lax; Max-Age=<max_age>` (attribute order and
/// attribute-name case free, RFC 6265 §5.2), no `Secure` over plain HTTP.
pub fn assert_session_cookie(x: &Exchange, value: &str, max_age: u64) {
    let fields = x.headers_all("set-cookie");
    assert_eq!(fields.len(), 1, "exactly one Set-Cookie\n{}", x.show());
    let c = SetCookie::parse(fields[0]);
    assert_eq!(c.name, "session", "{}", x.show());
    assert_eq!(c.value, value, "cookie value\n{}", x.show());
    let mut want = vec![
        ("httponly".to_string(), None),
        ("max-age".to_string(), Some(max_age.to_string())),
        ("path".to_string(), Some("/".to_string())),
        ("samesite".to_string(), Some("Lax".to_string())),
    ];
    want.sort();
    assert_eq!(
        c.sorted_attrs(),
        want,
        "Set-Cookie must be `session=…; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}`\n{}",
        x.show()
    );
}

// ---------------------------------------------------------------------------
// Posts
// ---------------------------------------------------------------------------

/// A Post as returned by the API, after its shape was checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Post {
    pub id: i64,
    pub title: String,
    pub body: String,
    pub author: String,
    pub created_at: String,
    pub updated_at: String,
}

impl Post {
    /// Contract: Post = {"id": int, "title": str, "body": str, "author":
    /// str, "created_at": RFC 3339, "updated_at": RFC 3339}, ids positive.
    pub fn from_json(j: &Json) -> Post {
        j.assert_keys(&["author", "body", "created_at", "id", "title", "updated_at"]);
        let p = Post {
            id: j.field("id").int(),
            title: j.field("title").str().to_string(),
            body: j.field("body").str().to_string(),
            author: j.field("author").str().to_string(),
            created_at: j.field("created_at").str().to_string(),
            updated_at: j.field("updated_at").str().to_string(),
        };
        assert!(p.id > 0, "post ids are positive integers: {j}");
        let c = rfc3339_utc(&p.created_at)
            .unwrap_or_else(|| panic!("created_at is not RFC 3339 UTC: {j}"));
        let u = rfc3339_utc(&p.updated_at)
            .unwrap_or_else(|| panic!("updated_at is not RFC 3339 UTC: {j}"));
        assert!(u >= c, "updated_at must not precede created_at: {j}");
        p
    }
}

pub fn post_body(title: &str, body: &str) -> String {
    json_obj(&[("title", &js(title)), ("body", &js(body))])
}

/// Creates a post (expects 201 with `Location: /api/posts/<id>`).
pub fn create_post(server: &Server, token: &str, title: &str, body: &str) -> Post {
    let x = Req::post("/api/posts")
        .bearer(token)
        .json(post_body(title, body))
        .send(server);
    let p = Post::from_json(&x.expect(201));
    assert_eq!(
        x.header("location"),
        Some(format!("/api/posts/{}", p.id).as_str()),
        "{}",
        x.show()
    );
    assert_eq!(
        (p.title.as_str(), p.body.as_str()),
        (title, body),
        "{}",
        x.show()
    );
    p
}

/// `GET /api/posts/<id>`: Some(post) on 200, None on 404.
pub fn fetch_post(server: &Server, id: i64) -> Option<Post> {
    let x = Req::get(&format!("/api/posts/{id}")).send(server);
    match x.status {
        200 => Some(Post::from_json(&x.expect(200))),
        404 => {
            x.expect_error(404);
            None
        }
        _ => panic!("expected 200 or 404\n{}", x.show()),
    }
}

/// `GET /api/posts?...` → (posts, total), shape checked.
pub fn list_posts(server: &Server, query: &str) -> (Vec<Post>, i64) {
    let x = Req::get(&format!("/api/posts{query}")).send(server);
    let j = x.expect(200);
    j.assert_keys(&["posts", "total"]);
    let posts = j.field("posts").arr().iter().map(Post::from_json).collect();
    (posts, j.field("total").int())
}

// ---------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------

/// Percent-encodes every byte except RFC 3986 unreserved characters.
pub fn pct(s: &str) -> String {
    pct_bytes(s.as_bytes())
}

pub fn pct_bytes(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses an RFC 3339 UTC timestamp `YYYY-MM-DDTHH:MM:SS[.frac]Z` (the
/// decided format, e.g. `2026-11-22T02:45:00Z`) into Unix seconds.
pub fn rfc3339_utc(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || !s.is_ascii() || *b.last()? != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let frac = &s[19..s.len() - 1];
    if !(frac.is_empty()
        || (frac.len() >= 2
            && frac.starts_with('.')
            && frac[1..].bytes().all(|c| c.is_ascii_digit())))
    {
        return None;
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

/// Asserts an RFC 3339 timestamp lies within a few seconds of now.
pub fn assert_rfc3339_near_now(s: &str) {
    let t = rfc3339_utc(s).unwrap_or_else(|| panic!("not RFC 3339 UTC: {s:?}"));
    let now = now_secs();
    assert!(
        (now - 10..=now + 2).contains(&t),
        "timestamp {s:?} is not close to now ({now})"
    );
}

/// Whether a whole byte string contains `needle`.
pub fn bytes_contain(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

/// SQL and FTS5 syntax every string field must survive (stored verbatim,
/// never a 500).
pub const HOSTILE_STRINGS: &[&str] = &[
    "' OR 1=1 --",
    "\"); DROP TABLE posts; --",
    "'; DROP TABLE users; --",
    "NEAR(",
    "\"",
    "*",
    "-",
    ":",
    "(",
    ")",
    "AND OR NOT",
    "title:x",
    "a\\b",
    "%_",
    "\u{0}",
];

#[test]
fn rfc3339_helper() {
    assert_eq!(rfc3339_utc("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(rfc3339_utc("2026-11-22T02:45:00Z"), Some(1_795_315_500));
    assert_eq!(rfc3339_utc("2026-11-22T02:45:00.123Z"), Some(1_795_315_500));
    assert_eq!(rfc3339_utc("2026-11-22 02:45:00Z"), None);
    assert_eq!(rfc3339_utc("2026-11-22T02:45:00+01:00"), None);
    assert_eq!(rfc3339_utc("2026-11-22T02:45:00"), None);
}
