//! The request as handlers see it: a borrowed view over the connection's read buffer.
//!
//! Nothing is copied: target and header fields are slices of the head bytes the parser
//! validated, the method is a [`Method`] (an extension method borrows its token), and the body
//! is the (decoded) slice that follows the head. A handler that defers its work to a helper
//! thread takes an [`OwnedRequest`] along: one copy of the head and body.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Instant;

use crate::http::method::Method;
use crate::http::parse::{Head, HeaderSpan, TargetForm, Version};

/// One HTTP request, valid for the duration of the handler call.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The parsed head `head` was parsed into (for [`Request::to_owned`]).
    parsed: Head,
    method: Method<'a>,
    target: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    version: Version,
    head: &'a [u8],
    headers: &'a [HeaderSpan],
    body: &'a [u8],
    peer: SocketAddr,
    /// The request arrived over TLS.
    secure: bool,
    /// Route parameters (`:name` segments), percent-decoded; set by the router.
    params: &'a [(&'a str, Cow<'a, str>)],
    /// A job prepared something for this request, which is being handled again.
    prepared: bool,
    /// The server's clock when it handed the request out (see [`Request::now`]).
    now: Option<Instant>,
}

impl<'a> Request<'a> {
    /// Builds the view from a parsed head. `head_bytes` is the buffer `head` was parsed from
    /// (at least `head.len` bytes; the head's spans index it).
    /// Fails only if the method is not a token or the target is not UTF-8, which httparse
    /// already rules out for every byte it accepts.
    pub(crate) fn new(
        head: &Head,
        head_bytes: &'a [u8],
        headers: &'a [HeaderSpan],
        body: &'a [u8],
        peer: SocketAddr,
        secure: bool,
    ) -> Option<Request<'a>> {
        Request::new_at(head, head_bytes, headers, body, peer, secure, None)
    }

    /// [`Request::new`], handed out when the server's clock read `now` (if it has one at
    /// hand; see [`Request::now`]). Inlined into the connection, which builds every request
    /// in place this way.
    #[inline]
    pub(crate) fn new_at(
        head: &Head,
        head_bytes: &'a [u8],
        headers: &'a [HeaderSpan],
        body: &'a [u8],
        peer: SocketAddr,
        secure: bool,
        now: Option<Instant>,
    ) -> Option<Request<'a>> {
        let method = Method::from_bytes(head.method.of(head_bytes))?;
        let target = std::str::from_utf8(head.target.of(head_bytes)).ok()?;
        let path_and_query = match head.target_form {
            TargetForm::Origin | TargetForm::Asterisk | TargetForm::Authority => target,
            TargetForm::Absolute { path } => {
                let rest = std::str::from_utf8(path.of(head_bytes)).ok()?;
                if rest.starts_with('/') { rest } else { "/" }
            }
        };
        // The query starts at the first '?'; a fragment (never sent by conforming clients) at
        // the first '#' is dropped. One scan finds whichever comes first: a plain loop, as
        // paths are too short for memchr's vector setup to pay off.
        let (path, query) = match path_and_query.bytes().position(|b| b == b'?' || b == b'#') {
            Some(at) if path_and_query.as_bytes()[at] == b'?' => {
                let query = &path_and_query[at + 1..];
                let query_end = memchr::memchr(b'#', query.as_bytes()).unwrap_or(query.len());
                (&path_and_query[..at], Some(&query[..query_end]))
            }
            Some(fragment) => (&path_and_query[..fragment], None),
            None => (path_and_query, None),
        };
        Some(Request {
            parsed: *head,
            method,
            target,
            path,
            query,
            version: head.version,
            head: head_bytes,
            headers,
            body,
            peer,
            secure,
            params: &[],
            prepared: false,
            now,
        })
    }

    /// The time, as the server reads it for this request: on the event loop, its clock at
    /// the start of the current tick (read once for every request the tick answers, so that
    /// handlers need no clock reads of their own); elsewhere, the clock now.
    pub fn now(&self) -> Instant {
        self.now.unwrap_or_else(Instant::now)
    }

    /// Marks the request as handled again after a job prepared for it
    /// (see [`Reply::Prepare`](crate::Reply::Prepare)).
    pub(crate) fn mark_prepared(&mut self) {
        self.prepared = true;
    }

    /// Whether this request is handled a second time, after a job it asked for
    /// ([`Reply::Prepare`](crate::Reply::Prepare)) has run: the handler must answer now.
    pub fn prepared(&self) -> bool {
        self.prepared
    }

    /// Copies the request (head, body, route parameters) for a job on another thread. The
    /// head is at most `--max-head-bytes`; the body at most `--max-body-bytes`.
    pub fn to_owned(&self) -> OwnedRequest {
        OwnedRequest {
            parsed: self.parsed,
            head: self.head[..self.parsed.len.min(self.head.len())].into(),
            headers: self.headers.into(),
            body: self.body.into(),
            peer: self.peer,
            secure: self.secure,
            params: self
                .params
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.clone().into_owned()))
                .collect(),
        }
    }

    /// The same request with the route parameters the router matched.
    pub fn with_params<'b>(&self, params: &'b [(&'b str, Cow<'b, str>)]) -> Request<'b>
    where
        'a: 'b,
    {
        Request { params, ..*self }
    }

    /// The route parameter `name` (`/posts/:id` → `param("id")`), percent-decoded.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(param, _)| *param == name)
            .map(|(_, value)| value.as_ref())
    }

    /// The value of query parameter `name` (`application/x-www-form-urlencoded` decoding), if
    /// present.
    pub fn query_param(&self, name: &str) -> Option<Cow<'a, str>> {
        form_urlencoded::parse(self.query?.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    /// The method (case-sensitive, RFC 9110 §9.1: `get` is an extension method, not GET).
    pub fn method(&self) -> Method<'a> {
        self.method
    }

    /// The request-target exactly as sent.
    pub fn target(&self) -> &'a str {
        self.target
    }

    /// The path, still percent-encoded (`/` for absolute-form targets without one).
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The query string after `?`, still percent-encoded.
    pub fn query(&self) -> Option<&'a str> {
        self.query
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// The first value of the header field `name` (case-insensitive).
    #[inline]
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers_named(name).next()
    }

    /// Every value of the header field `name`, in order.
    pub fn headers_named<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + 'n
    where
        'a: 'n,
    {
        let head = self.head;
        let fields = if self.parsed.name_lengths.may_contain(name.len()) {
            self.headers
        } else {
            &[]
        };
        fields
            .iter()
            .filter(move |field| {
                // Lengths first: most fields are told apart without looking at their bytes.
                field.name.len() == name.len()
                    && field.name.of(head).eq_ignore_ascii_case(name.as_bytes())
            })
            .map(move |field| field.value.of(head))
    }

    /// All header fields as (name, value) pairs, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let head = self.head;
        self.headers
            .iter()
            .map(move |field| (field.name.of(head), field.value.of(head)))
    }

    /// The request body, already de-chunked.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Whether the request arrived over TLS (HTTPS).
    pub fn is_secure(&self) -> bool {
        self.secure
    }
}

/// A request copied out of the connection's buffer, for a job on a helper thread.
#[derive(Clone, Debug)]
pub struct OwnedRequest {
    parsed: Head,
    head: Box<[u8]>,
    headers: Box<[HeaderSpan]>,
    body: Box<[u8]>,
    peer: SocketAddr,
    secure: bool,
    params: Vec<(String, String)>,
}

impl OwnedRequest {
    /// Runs `f` with a view of the copied request; `None` only if the copy is not a request
    /// (it was one when copied, so this does not happen).
    pub fn with<R>(&self, f: impl FnOnce(&Request<'_>) -> R) -> Option<R> {
        let params: Vec<(&str, Cow<'_, str>)> = self
            .params
            .iter()
            .map(|(name, value)| (name.as_str(), Cow::Borrowed(value.as_str())))
            .collect();
        let request = Request::new(
            &self.parsed,
            &self.head,
            &self.headers,
            &self.body,
            self.peer,
            self.secure,
        )?;
        Some(f(&request.with_params(&params)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse::{ParseLimits, parse_head};

    fn with_request(input: &[u8], check: impl FnOnce(Request<'_>)) {
        let mut headers = Vec::new();
        let head = parse_head(input, &ParseLimits::default(), &mut headers)
            .unwrap()
            .unwrap();
        let peer = SocketAddr::from(([127, 0, 0, 1], 9));
        let request =
            Request::new(&head, input, &headers, &input[head.len..], peer, false).unwrap();
        check(request);
    }

    #[test]
    fn the_time_is_the_servers_when_it_has_one_and_the_clock_otherwise() {
        let input = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        let mut headers = Vec::new();
        let head = parse_head(input, &ParseLimits::default(), &mut headers)
            .unwrap()
            .unwrap();
        let peer = SocketAddr::from(([127, 0, 0, 1], 9));
        let tick = Instant::now() - std::time::Duration::from_secs(5);
        let handed_out =
            Request::new_at(&head, input, &headers, &[], peer, false, Some(tick)).unwrap();
        assert_eq!(handed_out.now(), tick);
        let before = Instant::now();
        with_request(input, |request| {
            let now = request.now();
            assert!(now >= before && now <= Instant::now());
        });
    }

    #[test]
    fn splits_path_and_query_and_finds_headers() {
        let input = b"GET /a/b?x=1&y HTTP/1.1\r\nHost: h\r\nAccept: a\r\naccept: b\r\n\r\nbody";
        with_request(input, |request| {
            assert_eq!(request.method(), Method::Get);
            assert_eq!(request.path(), "/a/b");
            assert_eq!(request.query(), Some("x=1&y"));
            assert_eq!(request.header("ACCEPT"), Some(&b"a"[..]));
            assert_eq!(request.headers_named("accept").count(), 2);
            assert_eq!(request.body(), b"body");
        });
    }

    #[test]
    fn lookups_by_length_find_every_field_and_only_those() {
        // 70 bytes: the same length as `Origin` modulo 64, so the length set cannot tell the
        // two apart and the names are compared.
        let long = "x".repeat(70);
        let input = format!("GET / HTTP/1.1\r\nHost: h\r\n{long}: l\r\nRange: r\r\n\r\n");
        with_request(input.as_bytes(), |request| {
            assert_eq!(request.header(&long), Some(&b"l"[..]));
            assert_eq!(request.header("range"), Some(&b"r"[..]));
            assert_eq!(request.header("host"), Some(&b"h"[..]));
            assert_eq!(request.header("origin"), None);
            assert_eq!(request.header("accept"), None);
            assert_eq!(request.header("if-none-match"), None);
            assert_eq!(request.headers_named("if-none-match").count(), 0);
            assert_eq!(request.header(&"x".repeat(6)), None);
        });
    }

    #[test]
    fn the_query_ends_at_a_fragment_and_a_fragment_is_dropped() {
        let cases = [
            ("/", "/", None),
            ("/a?", "/a", Some("")),
            ("/a?b#c", "/a", Some("b")),
            ("/a?b?c#d?e", "/a", Some("b?c")),
            ("/a#b?c", "/a", None),
            ("/a#", "/a", None),
            ("/a/b.txt", "/a/b.txt", None),
        ];
        for (target, path, query) in cases {
            let input = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
            with_request(input.as_bytes(), |request| {
                assert_eq!((request.path(), request.query()), (path, query), "{target}");
            });
        }
    }

    #[test]
    fn methods_are_typed_and_extension_methods_kept_as_sent() {
        let cases: &[(&[u8], Method<'_>)] = &[
            (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", Method::Get),
            (b"PATCH / HTTP/1.1\r\nHost: h\r\n\r\n", Method::Patch),
            (
                b"get / HTTP/1.1\r\nHost: h\r\n\r\n",
                Method::Extension("get"),
            ),
            (
                b"PROPFIND / HTTP/1.1\r\nHost: h\r\n\r\n",
                Method::Extension("PROPFIND"),
            ),
        ];
        for (input, method) in cases {
            with_request(input, |request| assert_eq!(request.method(), *method));
        }
    }

    #[test]
    fn an_owned_copy_reads_the_same() {
        let input = b"POST /p/7?x=1 HTTP/1.1\r\nHost: h\r\nX-A: b\r\n\r\nbody+more";
        with_request(input, |request| {
            let params = [("id", Cow::Borrowed("7"))];
            let request = request.with_params(&params);
            let owned = request.to_owned();
            let seen = owned.with(|copy| {
                assert_eq!(copy.method(), Method::Post);
                assert_eq!(copy.path(), "/p/7");
                assert_eq!(copy.query_param("x").as_deref(), Some("1"));
                assert_eq!(copy.header("x-a"), Some(&b"b"[..]));
                assert_eq!(copy.param("id"), Some("7"));
                assert!(!copy.prepared());
                copy.body().to_vec()
            });
            assert_eq!(seen.as_deref(), Some(&b"body+more"[..]));
        });
    }

    #[test]
    fn absolute_form_uses_the_path_of_the_target() {
        with_request(
            b"GET http://x.test HTTP/1.1\r\nHost: h\r\n\r\n",
            |request| {
                assert_eq!(request.path(), "/");
            },
        );
        with_request(
            b"GET http://x.test/p?q HTTP/1.1\r\nHost: h\r\n\r\n",
            |request| {
                assert_eq!(request.path(), "/p");
                assert_eq!(request.query(), Some("q"));
            },
        );
    }
}
