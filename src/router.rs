//! `App`: what the server does with a parsed request.
//!
//! 1. Methods nobody here implements get 501 (RFC 9110 §9.1, §15.6.2).
//! 2. Targets that are not paths: `OPTIONS *` is answered for the whole server; CONNECT and
//!    authority-form targets are not for an origin server.
//! 3. Static directories, longest mount prefix first; nothing matched is a 404.

use std::io;
use std::path::Path;

use crate::http::request::Request;
use crate::http::response::Response;
use crate::static_files::{self, StaticFiles};

/// The methods defined by RFC 9110 §9 plus PATCH (RFC 5789): known, though maybe not allowed.
const KNOWN_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// The application the server runs: static directories for now.
#[derive(Debug, Default)]
pub struct App {
    /// (mount prefix without trailing slash, files), longest prefix first.
    static_dirs: Vec<(String, StaticFiles)>,
}

impl App {
    pub fn new() -> App {
        App::default()
    }

    /// Serves the files under `dir` at URL prefix `mount` (e.g. `"/"`).
    pub fn static_dir(&mut self, mount: &str, dir: impl AsRef<Path>) -> io::Result<&mut Self> {
        let prefix = mount.trim_end_matches('/').to_owned();
        self.static_dirs.push((prefix, StaticFiles::new(dir)?));
        self.static_dirs
            .sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        Ok(self)
    }

    /// Produces the response for `request`. HEAD is answered like GET; the connection drops
    /// the body.
    pub fn handle(&self, request: &Request<'_>) -> Response {
        // 1. Unknown methods.
        let method = request.method();
        if !KNOWN_METHODS.contains(&method) {
            return Response::error(501);
        }
        // 2. Non-path targets.
        let path = request.path();
        if !path.starts_with('/') {
            return match (method, path) {
                ("OPTIONS", "*") => Response::empty(200).with_header("Allow", static_files::ALLOW),
                ("CONNECT", _) => Response::error(405).with_header("Allow", static_files::ALLOW),
                _ => Response::error(400),
            };
        }
        // 3. Static directories.
        for (prefix, files) in &self.static_dirs {
            if let Some(rest) = path.strip_prefix(prefix.as_str())
                && (rest.is_empty() || rest.starts_with('/'))
            {
                let rest = if rest.is_empty() { "/" } else { rest };
                return files.serve(request, rest);
            }
        }
        Response::error(404)
    }
}
