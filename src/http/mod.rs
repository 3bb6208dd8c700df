//! HTTP/1.1 without any I/O: pure functions and types over byte slices, easy to test and fuzz.
//!
//! Bytes → parse → request → (the app) → response → bytes, each stage in one file:
//! - `conn`: one connection's state machine, tying the stages together (bytes in, requests
//!   out, responses in, bytes and file slices out, deadlines reported);
//! - `parse`: a request head and its framing; `chunked`: chunked bodies;
//! - `request`: the view handlers get; `response`: building and encoding answers;
//! - `method` and `status`: the typed vocabulary (`Method`, `StatusCode`);
//! - `accept`: the weighted lists of `Accept` and `Accept-Encoding`;
//! - `read_buf` and `buffers`: the connection's input buffer, and the pool idle connections
//!   give their buffers back to; `date`: the cached `Date` header.

pub mod accept;
pub mod buffers;
pub mod chunked;
pub mod conn;
pub mod date;
pub mod method;
pub mod parse;
pub mod read_buf;
pub mod request;
pub mod response;
pub mod status;
