//! JSON in and out of handlers (serde), and the JSON error every API failure becomes.
//!
//! Reading a body classifies failures the way API clients expect:
//! 1. `Content-Type` not `application/json` → 415;
//! 2. body larger than the limit → 413;
//! 3. not JSON at all (syntax, truncation, trailing bytes, nesting deeper than serde_json's
//!    limit, bad UTF-8 anywhere) → 400;
//! 4. JSON of the wrong shape (missing field, wrong type) → 422.
//!
//! Further validation (lengths, formats) is the handler's, and is also a 422.

use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::http::request::Request;
use crate::http::response::{Body, IntoResponse, Response};
use crate::http::status::StatusCode;

/// The `Content-Type` of JSON responses: no `charset` parameter, since JSON is UTF-8 (RFC 8259
/// §8.1) and its media type defines none (§11).
pub const CONTENT_TYPE: &str = "application/json";

/// A value sent as a JSON response body with status 200; `(status, Json(value))` for others.
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        (StatusCode::OK, self).into_response()
    }
}

impl<T: Serialize> IntoResponse for (StatusCode, Json<T>) {
    fn into_response(self) -> Response {
        let (status, Json(value)) = self;
        match serde_json::to_vec(&value) {
            Ok(bytes) => json_response(status, bytes),
            Err(_) => HttpError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "response could not be encoded",
            )
            .into_response(),
        }
    }
}

/// A failed request: its status and a message for humans, sent as `{"error": message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    pub status: StatusCode,
    pub message: Cow<'static, str>,
    /// Seconds for a `Retry-After` header (a 503 or 429 the client should retry).
    pub retry_after: Option<u64>,
}

impl HttpError {
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> HttpError {
        HttpError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error, telling the client to retry after `seconds` (RFC 9110 §10.2.3).
    pub fn with_retry_after(self, seconds: u64) -> HttpError {
        HttpError {
            retry_after: Some(seconds),
            ..self
        }
    }

    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> HttpError {
        HttpError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unprocessable(message: impl Into<Cow<'static, str>>) -> HttpError {
        HttpError::new(StatusCode::UNPROCESSABLE_CONTENT, message)
    }

    pub fn not_found() -> HttpError {
        HttpError::new(StatusCode::NOT_FOUND, "not found")
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct ErrorBody<'a> {
            error: &'a str,
        }
        let bytes = serde_json::to_vec(&ErrorBody {
            error: &self.message,
        })
        .unwrap_or_else(|_| b"{\"error\":\"error\"}".to_vec());
        let response = json_response(self.status, bytes);
        match self.retry_after {
            Some(seconds) => response.with_header("Retry-After", seconds.to_string()),
            None => response,
        }
    }
}

impl<T: IntoResponse, E: IntoResponse> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(ok) => ok.into_response(),
            Err(error) => error.into_response(),
        }
    }
}

/// Parses the request body as JSON into `T`, enforcing `max_bytes` (see the module docs).
pub fn read_json<T: DeserializeOwned>(
    request: &Request<'_>,
    max_bytes: usize,
) -> Result<T, HttpError> {
    if !is_json_content_type(request.header("content-type")) {
        return Err(HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be application/json",
        ));
    }
    if request.body().len() > max_bytes {
        return Err(HttpError::new(
            StatusCode::CONTENT_TOO_LARGE,
            "the body is too large",
        ));
    }
    // Two steps, so that a shape error early in the text cannot hide a syntax error later on:
    // the whole body must be JSON (400) before its shape is judged (422).
    let value: serde_json::Value = serde_json::from_slice(request.body())
        .map_err(|error| HttpError::bad_request(format!("malformed JSON: {error}")))?;
    serde_json::from_value(value).map_err(|error| HttpError::unprocessable(error.to_string()))
}

/// `application/json`, case-insensitive, parameters (`; charset=utf-8`) allowed.
fn is_json_content_type(value: Option<&[u8]>) -> bool {
    let Some(value) = value else {
        return false;
    };
    let essence = value.split(|&b| b == b';').next().unwrap_or(value);
    essence
        .trim_ascii()
        .eq_ignore_ascii_case(CONTENT_TYPE.as_bytes())
}

/// A JSON response whose body is encoded already (a constant answer costs no encoding).
pub fn json_response(status: StatusCode, bytes: impl Into<Cow<'static, [u8]>>) -> Response {
    Response::empty(status)
        .with_header("Content-Type", CONTENT_TYPE)
        .with_body(Body::Bytes(bytes.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_matching() {
        assert!(is_json_content_type(Some(b"application/json")));
        assert!(is_json_content_type(Some(
            b"Application/JSON; charset=utf-8"
        )));
        assert!(!is_json_content_type(Some(b"text/plain")));
        assert!(!is_json_content_type(Some(b"application/jsonx")));
        assert!(!is_json_content_type(None));
    }

    #[test]
    fn error_body_is_json() {
        let response = HttpError::new(StatusCode::NOT_FOUND, "no \"such\" post").into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.header("content-type"), Some(CONTENT_TYPE));
        let Body::Bytes(bytes) = response.body() else {
            panic!("{:?}", response.body());
        };
        assert_eq!(&bytes[..], br#"{"error":"no \"such\" post"}"#);
    }
}
