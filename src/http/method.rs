//! Request methods (RFC 9110 §9): the [`Method`] type, read from a request line's method token.
//!
//! The methods RFC 9110 §9 defines, plus PATCH (RFC 5789), are variants of their own; any other
//! token a client sends is an [`Method::Extension`] borrowing the request's bytes, so reading a
//! method never allocates. Methods are case-sensitive (RFC 9110 §9.1): `get` is an extension
//! method, not GET.

use std::fmt;

use crate::http::parse;

/// A request method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method<'a> {
    /// RFC 9110 §9.3.1.
    Get,
    /// RFC 9110 §9.3.2: GET without the content.
    Head,
    /// RFC 9110 §9.3.3.
    Post,
    /// RFC 9110 §9.3.4.
    Put,
    /// RFC 9110 §9.3.5.
    Delete,
    /// RFC 9110 §9.3.6: a tunnel, for proxies.
    Connect,
    /// RFC 9110 §9.3.7.
    Options,
    /// RFC 9110 §9.3.8.
    Trace,
    /// RFC 5789.
    Patch,
    /// Any other method token, exactly as sent (RFC 9110 §9.1: a request may carry any
    /// token). looplight implements none of these: the router answers them 501
    /// (RFC 9110 §15.6.2), and no route can be registered for one.
    Extension(&'a str),
}

impl<'a> Method<'a> {
    /// The method a request line's method token names; `None` if `bytes` is not a token
    /// (RFC 9110 §9.1, §5.6.2). The standard methods are recognised by one comparison each;
    /// an extension method borrows `bytes`.
    pub fn from_bytes(bytes: &'a [u8]) -> Option<Method<'a>> {
        Some(match bytes {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"CONNECT" => Method::Connect,
            b"OPTIONS" => Method::Options,
            b"TRACE" => Method::Trace,
            b"PATCH" => Method::Patch,
            _ if parse::is_token(bytes) => Method::Extension(std::str::from_utf8(bytes).ok()?),
            _ => return None,
        })
    }

    /// The method token, as it appears on the request line.
    pub fn as_str(self) -> &'a str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Connect => "CONNECT",
            Method::Options => "OPTIONS",
            Method::Trace => "TRACE",
            Method::Patch => "PATCH",
            Method::Extension(token) => token,
        }
    }
}

impl fmt::Display for Method<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_tokens() {
        let cases: &[(&[u8], Option<Method<'_>>)] = &[
            (b"GET", Some(Method::Get)),
            (b"HEAD", Some(Method::Head)),
            (b"POST", Some(Method::Post)),
            (b"PUT", Some(Method::Put)),
            (b"DELETE", Some(Method::Delete)),
            (b"CONNECT", Some(Method::Connect)),
            (b"OPTIONS", Some(Method::Options)),
            (b"TRACE", Some(Method::Trace)),
            (b"PATCH", Some(Method::Patch)),
            // Case-sensitive (RFC 9110 §9.1).
            (b"get", Some(Method::Extension("get"))),
            (b"Get", Some(Method::Extension("Get"))),
            (b"PROPFIND", Some(Method::Extension("PROPFIND"))),
            (b"GETX", Some(Method::Extension("GETX"))),
            (b"M-SEARCH", Some(Method::Extension("M-SEARCH"))),
            (
                b"!#$%&'*+-.^_`|~09azAZ",
                Some(Method::Extension("!#$%&'*+-.^_`|~09azAZ")),
            ),
            // Not tokens.
            (b"", None),
            (b"GE T", None),
            (b"GET\r", None),
            (b"(GET)", None),
            (b"G\xc3\xa9T", None),
            (b"\xff", None),
        ];
        for (bytes, expected) in cases {
            assert_eq!(Method::from_bytes(bytes), *expected, "{bytes:?}");
        }
    }

    #[test]
    fn as_str_and_display_give_the_token_back() {
        for token in [
            "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "get",
            "PROPFIND",
        ] {
            let method = Method::from_bytes(token.as_bytes()).unwrap();
            assert_eq!(method.as_str(), token);
            assert_eq!(method.to_string(), token);
        }
    }
}
