//! looplight: a small HTTP/1.1 server on a single-threaded, non-blocking event loop.
//!
//! Bytes flow one way: the socket's bytes are buffered by a connection ([`server`]), parsed
//! into a request head and body ([`http::parse`], [`http::chunked`]), answered by the
//! [`App`] (static files from a directory, [`static_files`]), and encoded back into the
//! connection's write buffer ([`http::response`]).
//!
//! # Quick start
//!
//! ```no_run
//! use looplight::{App, Config, Server};
//!
//! fn main() -> std::io::Result<()> {
//!     let mut app = App::new();
//!     app.static_dir("/", "www")?;
//!     let config = Config { addr: ([127, 0, 0, 1], 8080).into(), ..Config::defaults() };
//!     let server = Server::bind(config)?;
//!     println!("listening on http://{}", server.local_addr());
//!     server.run(app)
//! }
//! ```

#![forbid(unsafe_code)]

pub mod api;
pub mod config;
pub mod http;
pub mod json;
pub mod router;
pub mod server;
pub mod static_files;
pub mod store;

pub use config::Config;
pub use http::request::Request;
pub use http::response::{Body, IntoResponse, Response};
pub use json::{HttpError, Json};
pub use router::{App, IntoReply, Reply};
pub use server::Server;
