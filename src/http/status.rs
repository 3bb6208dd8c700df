//! Response status codes (RFC 9110 §15): the [`StatusCode`] type, a name for every status
//! looplight sends, their reason phrases, and the rules that depend on the status alone (which
//! responses may carry content, which class a status is in).
//!
//! The reason phrases live in one list below, next to the names; the same list yields the whole
//! HTTP/1.1 status line the encoder copies in one go.

use std::fmt;

/// A response status: a three-digit integer from 100 to 599 (RFC 9110 §15).
///
/// The named constants are the statuses looplight sends; any other valid code can be made
/// with [`StatusCode::from_u16`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatusCode(u16);

impl StatusCode {
    /// `code` as a status, if it is one (RFC 9110 §15: 100 to 599 inclusive).
    pub const fn from_u16(code: u16) -> Option<StatusCode> {
        if code >= 100 && code <= 599 {
            Some(StatusCode(code))
        } else {
            None
        }
    }

    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// Whether a response with this status may carry content, and so `Content-Length`:
    /// 1xx, 204 and 304 never do (RFC 9110 §15.2, §15.3.5, §15.4.5; RFC 9112 §6.3).
    pub const fn allows_body(self) -> bool {
        !self.is_informational()
            && self.0 != StatusCode::NO_CONTENT.0
            && self.0 != StatusCode::NOT_MODIFIED.0
    }

    /// 1xx: interim, the final response follows (RFC 9110 §15.2).
    pub const fn is_informational(self) -> bool {
        self.0 < 200
    }

    /// 2xx: the request succeeded (RFC 9110 §15.3).
    pub const fn is_success(self) -> bool {
        self.0 >= 200 && self.0 < 300
    }

    /// 3xx: further action is needed, usually a redirect (RFC 9110 §15.4).
    pub const fn is_redirection(self) -> bool {
        self.0 >= 300 && self.0 < 400
    }

    /// 4xx: the client's request was wrong (RFC 9110 §15.5).
    pub const fn is_client_error(self) -> bool {
        self.0 >= 400 && self.0 < 500
    }

    /// 5xx: the server failed (RFC 9110 §15.6).
    pub const fn is_server_error(self) -> bool {
        self.0 >= 500
    }
}

/// The three digits.
impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<StatusCode> for u16 {
    fn from(status: StatusCode) -> u16 {
        status.0
    }
}

/// Declares the named constants, their reason phrases and their status lines from one list, so
/// a name, its phrase and its line can never disagree. The lookups are `match`es: a jump table,
/// no search, for every response encoded.
macro_rules! statuses {
    ($($(#[$doc:meta])* $name:ident = $code:literal $reason:literal,)*) => {
        impl StatusCode {
            $(
                $(#[$doc])*
                pub const $name: StatusCode = StatusCode($code);
            )*

            /// The reason phrase looplight sends with this status, if it has one (RFC 9112 §4:
            /// the phrase is optional, and clients ignore it).
            pub fn reason_phrase(self) -> Option<&'static str> {
                match self.0 {
                    $($code => Some($reason),)*
                    _ => None,
                }
            }

            /// The whole status line (`HTTP/1.1 200 OK\r\n`, RFC 9112 §4) for statuses with a
            /// reason phrase, so encoding the common ones is a single copy.
            pub(crate) fn status_line(self) -> Option<&'static str> {
                match self.0 {
                    $($code => Some(concat!("HTTP/1.1 ", $code, " ", $reason, "\r\n")),)*
                    _ => None,
                }
            }
        }

        /// Every named status, in the order declared (numeric).
        #[cfg(test)]
        const NAMED: &[StatusCode] = &[$(StatusCode::$name,)*];
    };
}

statuses! {
    /// RFC 9110 §15.2.1.
    CONTINUE = 100 "Continue",
    /// RFC 9110 §15.3.1.
    OK = 200 "OK",
    /// RFC 9110 §15.3.2.
    CREATED = 201 "Created",
    /// RFC 9110 §15.3.5.
    NO_CONTENT = 204 "No Content",
    /// RFC 9110 §15.3.7.
    PARTIAL_CONTENT = 206 "Partial Content",
    /// RFC 9110 §15.4.2.
    MOVED_PERMANENTLY = 301 "Moved Permanently",
    /// RFC 9110 §15.4.3.
    FOUND = 302 "Found",
    /// RFC 9110 §15.4.4.
    SEE_OTHER = 303 "See Other",
    /// RFC 9110 §15.4.5.
    NOT_MODIFIED = 304 "Not Modified",
    /// RFC 9110 §15.4.8.
    TEMPORARY_REDIRECT = 307 "Temporary Redirect",
    /// RFC 9110 §15.4.9.
    PERMANENT_REDIRECT = 308 "Permanent Redirect",
    /// RFC 9110 §15.5.1.
    BAD_REQUEST = 400 "Bad Request",
    /// RFC 9110 §15.5.2.
    UNAUTHORIZED = 401 "Unauthorized",
    /// RFC 9110 §15.5.4.
    FORBIDDEN = 403 "Forbidden",
    /// RFC 9110 §15.5.5.
    NOT_FOUND = 404 "Not Found",
    /// RFC 9110 §15.5.6.
    METHOD_NOT_ALLOWED = 405 "Method Not Allowed",
    /// RFC 9110 §15.5.9.
    REQUEST_TIMEOUT = 408 "Request Timeout",
    /// RFC 9110 §15.5.10.
    CONFLICT = 409 "Conflict",
    /// RFC 9110 §15.5.12.
    LENGTH_REQUIRED = 411 "Length Required",
    /// RFC 9110 §15.5.13.
    PRECONDITION_FAILED = 412 "Precondition Failed",
    /// RFC 9110 §15.5.14.
    CONTENT_TOO_LARGE = 413 "Content Too Large",
    /// RFC 9110 §15.5.15.
    URI_TOO_LONG = 414 "URI Too Long",
    /// RFC 9110 §15.5.16.
    UNSUPPORTED_MEDIA_TYPE = 415 "Unsupported Media Type",
    /// RFC 9110 §15.5.17.
    RANGE_NOT_SATISFIABLE = 416 "Range Not Satisfiable",
    /// RFC 9110 §15.5.18.
    EXPECTATION_FAILED = 417 "Expectation Failed",
    /// RFC 9110 §15.5.21.
    UNPROCESSABLE_CONTENT = 422 "Unprocessable Content",
    /// RFC 6585 §4.
    TOO_MANY_REQUESTS = 429 "Too Many Requests",
    /// RFC 6585 §5.
    REQUEST_HEADER_FIELDS_TOO_LARGE = 431 "Request Header Fields Too Large",
    /// RFC 9110 §15.6.1.
    INTERNAL_SERVER_ERROR = 500 "Internal Server Error",
    /// RFC 9110 §15.6.2.
    NOT_IMPLEMENTED = 501 "Not Implemented",
    /// RFC 9110 §15.6.4.
    SERVICE_UNAVAILABLE = 503 "Service Unavailable",
    /// RFC 9110 §15.6.6.
    HTTP_VERSION_NOT_SUPPORTED = 505 "HTTP Version Not Supported",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_three_digit_codes_from_100_to_599_are_statuses() {
        let cases = [
            (0, None),
            (99, None),
            (100, Some(100)),
            (299, Some(299)),
            (599, Some(599)),
            (600, None),
            (999, None),
            (u16::MAX, None),
        ];
        for (code, expected) in cases {
            assert_eq!(
                StatusCode::from_u16(code).map(StatusCode::as_u16),
                expected,
                "{code}"
            );
        }
    }

    #[test]
    fn reason_phrases_and_status_lines() {
        let cases = [
            (StatusCode::OK, Some("OK"), Some("HTTP/1.1 200 OK\r\n")),
            (
                StatusCode::NOT_FOUND,
                Some("Not Found"),
                Some("HTTP/1.1 404 Not Found\r\n"),
            ),
            (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                Some("Request Header Fields Too Large"),
                Some("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            ),
            (
                StatusCode::HTTP_VERSION_NOT_SUPPORTED,
                Some("HTTP Version Not Supported"),
                Some("HTTP/1.1 505 HTTP Version Not Supported\r\n"),
            ),
            // No phrase of ours: the encoder writes the digits alone.
            (StatusCode::from_u16(299).unwrap(), None, None),
            (StatusCode::from_u16(402).unwrap(), None, None),
        ];
        for (status, reason, line) in cases {
            assert_eq!(status.reason_phrase(), reason, "{status}");
            assert_eq!(status.status_line(), line, "{status}");
        }
    }

    #[test]
    fn every_named_status_has_its_phrase_in_its_line() {
        for pair in NAMED.windows(2) {
            assert!(pair[0] < pair[1], "{} {}", pair[0], pair[1]);
        }
        for &status in NAMED {
            assert!(StatusCode::from_u16(status.as_u16()).is_some(), "{status}");
            let reason = status.reason_phrase().unwrap();
            assert_eq!(
                status.status_line(),
                Some(format!("HTTP/1.1 {status} {reason}\r\n").as_str())
            );
        }
    }

    #[test]
    fn which_statuses_allow_a_body() {
        let cases = [
            (100, false),
            (101, false),
            (199, false),
            (200, true),
            (201, true),
            (204, false),
            (206, true),
            (301, true),
            (304, false),
            (404, true),
            (500, true),
        ];
        for (code, allows_body) in cases {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(status.allows_body(), allows_body, "{code}");
        }
    }

    #[test]
    fn classes() {
        // (code, informational, success, redirection, client error, server error)
        let cases = [
            (100, [true, false, false, false, false]),
            (204, [false, true, false, false, false]),
            (308, [false, false, true, false, false]),
            (404, [false, false, false, true, false]),
            (499, [false, false, false, true, false]),
            (503, [false, false, false, false, true]),
            (599, [false, false, false, false, true]),
        ];
        for (code, classes) in cases {
            let status = StatusCode::from_u16(code).unwrap();
            let seen = [
                status.is_informational(),
                status.is_success(),
                status.is_redirection(),
                status.is_client_error(),
                status.is_server_error(),
            ];
            assert_eq!(seen, classes, "{code}");
        }
    }

    #[test]
    fn displays_as_the_three_digits() {
        assert_eq!(StatusCode::OK.to_string(), "200");
        assert_eq!(StatusCode::NOT_IMPLEMENTED.to_string(), "501");
        assert_eq!(format!("{:>5}", StatusCode::NOT_FOUND), "  404");
        assert_eq!(u16::from(StatusCode::CREATED), 201);
    }
}
