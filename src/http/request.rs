//! The request as handlers see it: a borrowed view over the connection's read buffer.
//!
//! Nothing is copied: method, target and header fields are slices of the head bytes the parser
//! validated, and the body is the (decoded) slice that follows it.

use std::borrow::Cow;
use std::net::SocketAddr;

use crate::http::parse::{Head, HeaderSpan, TargetForm, Version};

/// One HTTP request, valid for the duration of the handler call.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    method: &'a str,
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
}

impl<'a> Request<'a> {
    /// Builds the view from a parsed head. `head_bytes` is the buffer `head` was parsed from.
    /// Fails only if the method or target is not UTF-8, which httparse already rules out for
    /// every byte it accepts.
    pub(crate) fn new(
        head: &Head,
        head_bytes: &'a [u8],
        headers: &'a [HeaderSpan],
        body: &'a [u8],
        peer: SocketAddr,
        secure: bool,
    ) -> Option<Request<'a>> {
        let method = std::str::from_utf8(head.method.of(head_bytes)).ok()?;
        let target = std::str::from_utf8(head.target.of(head_bytes)).ok()?;
        let path_and_query = match head.target_form {
            TargetForm::Origin | TargetForm::Asterisk | TargetForm::Authority => target,
            TargetForm::Absolute { path } => {
                let rest = std::str::from_utf8(path.of(head_bytes)).ok()?;
                if rest.starts_with('/') { rest } else { "/" }
            }
        };
        // A fragment is never sent by conforming clients; drop one if it is.
        let path_and_query = path_and_query
            .split_once('#')
            .map_or(path_and_query, |(before, _)| before);
        let (path, query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path_and_query, None),
        };
        Some(Request {
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
        })
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

    /// The method token, case-sensitive (RFC 9110 §9.1).
    pub fn method(&self) -> &'a str {
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
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers_named(name).next()
    }

    /// Every value of the header field `name`, in order.
    pub fn headers_named<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + 'n
    where
        'a: 'n,
    {
        let head = self.head;
        self.headers
            .iter()
            .filter(move |field| field.name.of(head).eq_ignore_ascii_case(name.as_bytes()))
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
    fn splits_path_and_query_and_finds_headers() {
        let input = b"GET /a/b?x=1&y HTTP/1.1\r\nHost: h\r\nAccept: a\r\naccept: b\r\n\r\nbody";
        with_request(input, |request| {
            assert_eq!(request.method(), "GET");
            assert_eq!(request.path(), "/a/b");
            assert_eq!(request.query(), Some("x=1&y"));
            assert_eq!(request.header("ACCEPT"), Some(&b"a"[..]));
            assert_eq!(request.headers_named("accept").count(), 2);
            assert_eq!(request.body(), b"body");
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
