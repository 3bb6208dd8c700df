//! looplight: a small HTTP/1.1 server on single-threaded, non-blocking event loops (one per
//! worker thread), with a Flask-like router for JSON APIs.
//!
//! Bytes flow one way: the socket's bytes are buffered by a connection ([`server`]), parsed
//! into a request head and body ([`http::parse`], [`http::chunked`]), answered by the
//! [`App`] (routes, then static files from a directory, [`static_files`]), and encoded back
//! into the connection's write buffer ([`http::response`]). The loop never waits: handlers
//! whose work grows with data or waits (password hashing, SQL, compression) return
//! [`Reply::later`], and the job runs on a helper thread while the loop goes on serving
//! everyone else; its [`Responder`] answers when it is done (see [`jobs`]).
//!
//! # Quick start
//!
//! ```no_run
//! use looplight::{App, Config, HttpError, Json, Reply, Server};
//! use serde_json::json;
//!
//! fn main() -> std::io::Result<()> {
//!     let mut app = App::new();
//!     app.json_errors("/api"); // errors under /api, 404s included, are {"error": "..."}
//!     app.get("/api/hello/:name", |request| {
//!         Json(json!({ "hello": request.param("name") }))
//!     });
//!     app.post("/api/echo", |request| -> Result<Json<serde_json::Value>, HttpError> {
//!         let value: serde_json::Value = looplight::json::read_json(request, 64 * 1024)?;
//!         Ok(Json(value))
//!     });
//!     app.post("/api/slow", |_request| Reply::later(|| Json("computed off the loop")));
//!     app.static_dir("/", "www")?;
//!
//!     let config = Config { addr: ([127, 0, 0, 1], 8080).into(), ..Config::defaults() };
//!     let server = Server::bind(config)?;
//!     println!("listening on http://{}", server.local_addr());
//!     server.run(app)
//! }
//! ```
//!
//! `examples/tiny_api.rs` is a complete program along these lines; the binary's own API (blog,
//! search, login) is in [`api`].
//!
//! [`Server::run`] serves one app on one loop. [`Server::run_workers`] runs `--workers` loops,
//! one per thread, each with an app of its own made by a closure (an [`App`] is neither `Send`
//! nor `Sync`); state meant to be shared goes into the closure behind an `Arc`, and the apps
//! share one [`Publisher`] ([`App::with_publisher`]) so that events reach every loop's streams.

#![forbid(unsafe_code)]

pub mod api;
pub mod config;
pub mod config_file;
pub mod events;
/// The fuzz targets' properties and reference models (`fuzz/` runs them; `cargo test` replays
/// their corpora).
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod http;
pub mod jobs;
pub mod json;
pub mod live_reload;
pub mod logger;
pub mod metrics;
pub mod privileges;
pub mod router;
pub mod server;
pub mod static_files;
pub mod store;

pub use config::Config;
pub use events::{EventStream, Publisher};
pub use http::method::Method;
pub use http::request::{OwnedRequest, Request};
pub use http::response::{Body, IntoResponse, Response};
pub use http::status::StatusCode;
pub use jobs::Responder;
pub use json::{HttpError, Json};
pub use router::{App, IntoReply, Reply};
pub use server::Server;
pub use static_files::{StaticFiles, StaticOptions};
