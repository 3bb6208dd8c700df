//! HTTP/1.1 without any I/O: pure functions and types over byte slices, easy to test and fuzz.
//!
//! `parse` turns bytes into a request head and its framing, `chunked` decodes chunked bodies,
//! `request` is the view handlers get, `response` builds and encodes answers, `date` caches the
//! `Date` header; `method` and `status` are the typed vocabulary (`Method`, `StatusCode`).

pub mod chunked;
pub mod date;
pub mod method;
pub mod parse;
pub mod request;
pub mod response;
pub mod status;
