//! `App`: what the server does with a parsed request — a small Flask-like router in front of
//! static directories.
//!
//! For one request:
//! 1. Extension methods (any token but the nine [`Method`] names) get 501: nobody here
//!    implements one (RFC 9110 §9.1, §15.6.2).
//! 2. Targets that are not paths: `OPTIONS *` is answered for the whole server; CONNECT and
//!    authority-form targets are not for an origin server.
//! 3. Routes, in registration order: a path pattern with `:name` segments picks the resource,
//!    the method picks its handler. HEAD runs the GET handler (the connection drops the body),
//!    OPTIONS is answered from the route table (or as a CORS preflight), any other method is a
//!    405 with `Allow`.
//! 4. Static directories, longest mount prefix first; nothing matched is a 404.
//!
//! With HTTPS configured, a plain-HTTP request may be redirected to HTTPS first
//! ([`App::redirect_to_https`]; `/healthz` stays reachable so load balancers can probe), and
//! responses over TLS may carry `Strict-Transport-Security` ([`App::hsts`]).
//!
//! Under a JSON prefix (`json_errors("/api")`) every error, a 404 for an unknown path included,
//! is a JSON body, and configured CORS origins get their headers.
//!
//! ```no_run
//! use looplight::{App, Config, Json, Reply, Server};
//!
//! let mut app = App::new();
//! app.json_errors("/api");
//! app.get("/api/hello/:name", |request| {
//!     let name = request.param("name").unwrap_or("world").to_owned();
//!     Json(serde_json::json!({ "hello": name }))
//! });
//! // Slow work runs on the helper pool; the connection waits without blocking the loop.
//! app.post("/api/slow", |_request| Reply::later(|| Json("done")));
//! app.static_dir("/", "www")?;
//! Server::bind(Config::defaults())?.run(app)?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::borrow::Cow;
use std::cell::Cell;
use std::io;
use std::path::Path;
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use smallvec::SmallVec;

use crate::events::{EventStream, Publisher};
use crate::http::method::Method;
use crate::http::request::Request;
use crate::http::response::{IntoResponse, Response};
use crate::http::status::StatusCode;
use crate::jobs::{Job, Responder};
use crate::json::HttpError;
use crate::static_files::{self, CacheStats, StaticFiles, StaticOptions};

/// How long a browser may cache a CORS preflight answer, in seconds.
const CORS_MAX_AGE: &str = "600";

/// What a handler returns: a response now, a job whose response comes later, an event stream
/// that keeps the connection open for published events, or a job that prepares something
/// before the request is handled again.
pub enum Reply {
    Now(Response),
    /// Runs on the helper pool and answers through its [`Responder`] (see `jobs`): for work
    /// whose cost grows with data or that waits (password hashing, SQL, listings).
    Later(Job),
    /// Boxed: a stream is rare, and a `Reply` is moved through every layer between handler
    /// and connection, so it is kept as small as a `Response`.
    Stream(Box<EventStream>),
    /// Runs the work on the helper pool, then handles the request again on the loop with
    /// [`Request::prepared`] true: for work that fills a cache the loop then answers from (a
    /// compressed copy of a file). Asked again, a handler must answer without preparing.
    Prepare(Box<dyn FnOnce() + Send + 'static>),
}

impl Reply {
    /// Runs `work` on the helper pool; the connection waits, the loop does not.
    pub fn later<R: IntoResponse>(work: impl FnOnce() -> R + Send + 'static) -> Reply {
        Reply::Later(Box::new(move |responder: Responder| {
            responder.respond(work())
        }))
    }

    /// Runs `work` on the helper pool with the request's [`Responder`], which it may hand on
    /// to another thread that answers later.
    pub fn later_with(work: impl FnOnce(Responder) + Send + 'static) -> Reply {
        Reply::Later(Box::new(work))
    }

    /// Runs `work` on the helper pool, then handles the request again (see [`Reply::Prepare`]).
    pub fn prepare(work: impl FnOnce() + Send + 'static) -> Reply {
        Reply::Prepare(Box::new(work))
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Now(response) => f.debug_tuple("Now").field(response).finish(),
            Reply::Later(_) => f.write_str("Later(..)"),
            Reply::Stream(stream) => f.debug_tuple("Stream").field(stream).finish(),
            Reply::Prepare(_) => f.write_str("Prepare(..)"),
        }
    }
}

/// Anything a handler may return.
pub trait IntoReply {
    fn into_reply(self) -> Reply;
}

impl IntoReply for Reply {
    fn into_reply(self) -> Reply {
        self
    }
}

impl<T: IntoResponse> IntoReply for T {
    fn into_reply(self) -> Reply {
        Reply::Now(self.into_response())
    }
}

type Handler = Box<dyn Fn(&Request<'_>) -> Reply>;

enum Segment {
    Literal(String),
    Param(String),
}

/// A matched route's parameters, (name, percent-decoded value): held inline for the usual
/// one or two, so that routing allocates nothing.
type Params<'r, 'p> = SmallVec<[(&'r str, Cow<'p, str>); 2]>;

/// One path pattern and the handlers for its methods.
struct Resource {
    pattern: Vec<Segment>,
    handlers: Vec<(Method<'static>, Handler)>,
    /// The `Allow` value: the methods above, HEAD with GET, and OPTIONS.
    allow: String,
}

impl Resource {
    /// The route parameters if `path` matches, percent-decoded.
    fn matches<'p>(&self, path: &'p str) -> Option<Params<'_, 'p>> {
        let mut segments = path.strip_prefix('/')?.split('/');
        let mut params = Params::new();
        for part in &self.pattern {
            let segment = segments.next()?;
            match part {
                Segment::Literal(literal) if literal == segment => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => {
                    let value = percent_decode_str(segment).decode_utf8().ok()?;
                    params.push((name.as_str(), value));
                }
            }
        }
        segments.next().is_none().then_some(params)
    }

    fn handler(&self, method: Method<'_>) -> Option<&Handler> {
        self.handlers
            .iter()
            .find(|(allowed, _)| *allowed == method)
            .map(|(_, handler)| handler)
    }

    fn update_allow(&mut self) {
        let has_get = self
            .handlers
            .iter()
            .any(|(method, _)| *method == Method::Get);
        let mut methods: Vec<&str> = self
            .handlers
            .iter()
            .map(|(method, _)| method.as_str())
            .collect();
        if has_get {
            methods.push(Method::Head.as_str());
        }
        methods.push(Method::Options.as_str());
        self.allow = methods.join(", ");
    }
}

/// What answered a request: a route's handler (or its 405/OPTIONS), or everything else (static
/// files, and the errors the router gives itself).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AnsweredBy {
    Route,
    #[default]
    Static,
}

/// The application: routes, static directories, and the rules for errors and CORS.
#[derive(Default)]
pub struct App {
    resources: Vec<Resource>,
    /// Which resources can match a path, by the path's first segment (see [`RouteIndex`]).
    index: RouteIndex,
    /// (mount prefix without trailing slash, files), longest prefix first.
    static_dirs: Vec<(String, StaticFiles)>,
    /// Path prefixes whose errors are JSON.
    json_prefixes: Vec<String>,
    /// Origins allowed to call the JSON prefixes from a browser.
    cors_origins: Vec<String>,
    publisher: Publisher,
    /// Plain-HTTP requests are redirected to HTTPS on this port.
    https_redirect: Option<HttpsRedirect>,
    /// The `Strict-Transport-Security` value for responses over TLS.
    hsts: Option<String>,
    /// What answered the last request (see [`App::answered_by`]).
    answered_by: Cell<AnsweredBy>,
    /// Helper threads the handlers' jobs need at least (see [`App::needs_helpers`]).
    helpers: usize,
    /// Run at the end of every tick of the event loop (see [`App::on_tick_end`]).
    tick_end: Vec<Box<dyn Fn()>>,
}

/// The resources a path can match, found by its first segment: a request looks only at routes
/// that could be its own, so `/hello.txt` reaches the static files without trying the API's
/// routes one by one.
#[derive(Default)]
struct RouteIndex {
    /// (literal first segment, resources whose pattern starts with it or with a parameter, in
    /// registration order), sorted by [`segment_order`].
    by_first_segment: Vec<(String, Vec<usize>)>,
    /// Resources whose pattern starts with a parameter: the candidates for any other segment.
    param_first: Vec<usize>,
}

impl RouteIndex {
    fn build(resources: &[Resource]) -> RouteIndex {
        let mut index = RouteIndex::default();
        for (position, resource) in resources.iter().enumerate() {
            match resource.pattern.first() {
                Some(Segment::Literal(first)) => {
                    match index
                        .by_first_segment
                        .binary_search_by(|(s, _)| segment_order(s, first))
                    {
                        Ok(at) => index.by_first_segment[at].1.push(position),
                        Err(at) => index
                            .by_first_segment
                            .insert(at, (first.clone(), vec![position])),
                    }
                }
                Some(Segment::Param(_)) | None => index.param_first.push(position),
            }
        }
        for (_, positions) in &mut index.by_first_segment {
            positions.extend(&index.param_first);
            positions.sort_unstable();
        }
        index
    }

    /// The positions of the resources that may match `path`, in registration order.
    fn candidates(&self, path: &str) -> &[usize] {
        let rest = path.strip_prefix('/').unwrap_or(path);
        // A plain loop: a first segment is a few bytes, too short for memchr's vector setup
        // to pay off.
        let first = rest
            .bytes()
            .position(|b| b == b'/')
            .map_or(rest, |end| &rest[..end]);
        match self
            .by_first_segment
            .binary_search_by(|(segment, _)| segment_order(segment, first))
        {
            Ok(at) => &self.by_first_segment[at].1,
            Err(_) => &self.param_first,
        }
    }
}

/// The order of the index's segments: by length, then by bytes. Most lookups (a file name
/// beside `api`) are then settled by comparing lengths, without comparing bytes.
fn segment_order(segment: &str, other: &str) -> std::cmp::Ordering {
    segment
        .len()
        .cmp(&other.len())
        .then_with(|| segment.cmp(other))
}

/// Where plain-HTTP requests are sent instead (see [`App::redirect_to_https`]).
#[derive(Debug, Clone)]
struct HttpsRedirect {
    port: u16,
    /// The host for requests without one (HTTP/1.0 without `Host`).
    fallback_host: String,
}

/// The one path a plain-HTTP request reaches while redirecting: health probes often cannot
/// follow a redirect or speak TLS.
const HEALTH_PATH: &str = "/healthz";

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("routes", &self.resources.len())
            .field("static_dirs", &self.static_dirs)
            .field("json_prefixes", &self.json_prefixes)
            .finish()
    }
}

impl App {
    pub fn new() -> App {
        App::default()
    }

    /// An app whose handlers publish through `publisher`: the apps of several workers (see
    /// [`Server::run_workers`](crate::Server::run_workers)) share one, so that an event
    /// published on any worker reaches the streams of all.
    pub fn with_publisher(publisher: Publisher) -> App {
        App {
            publisher,
            ..App::default()
        }
    }

    /// Adds `handler` for `method` on `pattern` (segments starting with `:` are parameters,
    /// read with [`Request::param`]).
    ///
    /// # Panics
    ///
    /// If `method` is a [`Method::Extension`]: extension methods are answered 501 before
    /// routing (see the module docs), so the route could never run.
    pub fn route<R: IntoReply>(
        &mut self,
        method: Method<'static>,
        pattern: &str,
        handler: impl Fn(&Request<'_>) -> R + 'static,
    ) -> &mut Self {
        if let Method::Extension(token) = method {
            panic!("no route for extension method {token:?}: the router answers those 501");
        }
        let segments: Vec<Segment> = pattern
            .trim_start_matches('/')
            .split('/')
            .map(|segment| match segment.strip_prefix(':') {
                Some(name) => Segment::Param(name.to_owned()),
                None => Segment::Literal(segment.to_owned()),
            })
            .collect();
        let same_pattern = |resource: &&mut Resource| {
            resource.pattern.len() == segments.len()
                && resource
                    .pattern
                    .iter()
                    .zip(&segments)
                    .all(|pair| match pair {
                        (Segment::Literal(a), Segment::Literal(b)) => a == b,
                        (Segment::Param(_), Segment::Param(_)) => true,
                        _ => false,
                    })
        };
        let handler: Handler = Box::new(move |request| handler(request).into_reply());
        match self.resources.iter_mut().find(same_pattern) {
            Some(resource) => resource.handlers.push((method, handler)),
            None => self.resources.push(Resource {
                pattern: segments,
                handlers: vec![(method, handler)],
                allow: String::new(),
            }),
        }
        for resource in &mut self.resources {
            resource.update_allow();
        }
        self.index = RouteIndex::build(&self.resources);
        self
    }

    pub fn get<R: IntoReply>(
        &mut self,
        pattern: &str,
        handler: impl Fn(&Request<'_>) -> R + 'static,
    ) -> &mut Self {
        self.route(Method::Get, pattern, handler)
    }

    pub fn post<R: IntoReply>(
        &mut self,
        pattern: &str,
        handler: impl Fn(&Request<'_>) -> R + 'static,
    ) -> &mut Self {
        self.route(Method::Post, pattern, handler)
    }

    pub fn put<R: IntoReply>(
        &mut self,
        pattern: &str,
        handler: impl Fn(&Request<'_>) -> R + 'static,
    ) -> &mut Self {
        self.route(Method::Put, pattern, handler)
    }

    pub fn delete<R: IntoReply>(
        &mut self,
        pattern: &str,
        handler: impl Fn(&Request<'_>) -> R + 'static,
    ) -> &mut Self {
        self.route(Method::Delete, pattern, handler)
    }

    pub fn patch<R: IntoReply>(
        &mut self,
        pattern: &str,
        handler: impl Fn(&Request<'_>) -> R + 'static,
    ) -> &mut Self {
        self.route(Method::Patch, pattern, handler)
    }

    /// Serves the files under `dir` at URL prefix `mount` (e.g. `"/"`), after the routes.
    pub fn static_dir(&mut self, mount: &str, dir: impl AsRef<Path>) -> io::Result<&mut Self> {
        self.static_dir_with(mount, dir, StaticOptions::default())
    }

    /// [`App::static_dir`] with caching, compression, listing and fallback options.
    pub fn static_dir_with(
        &mut self,
        mount: &str,
        dir: impl AsRef<Path>,
        options: StaticOptions,
    ) -> io::Result<&mut Self> {
        let prefix = mount.trim_end_matches('/').to_owned();
        self.static_dirs
            .push((prefix, StaticFiles::with_options(dir, options)?));
        self.static_dirs
            .sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        Ok(self)
    }

    /// Makes every error under `prefix` (an unknown path included) a JSON `{"error": …}`.
    pub fn json_errors(&mut self, prefix: &str) -> &mut Self {
        self.json_prefixes
            .push(prefix.trim_end_matches('/').to_owned());
        self
    }

    /// Asks for at least `threads` helper threads: jobs that mostly wait (on a database
    /// server's round trips) need more threads than cores to keep it busy.
    pub fn needs_helpers(&mut self, threads: usize) -> &mut Self {
        self.helpers = self.helpers.max(threads);
        self
    }

    /// Runs `hook` on the event loop at the end of every tick, before it waits for events
    /// again: for what handlers keep between the requests of one tick (the store's shared
    /// read snapshot).
    pub fn on_tick_end(&mut self, hook: impl Fn() + 'static) -> &mut Self {
        self.tick_end.push(Box::new(hook));
        self
    }

    /// The end of a tick of the event loop: runs the hooks of [`App::on_tick_end`].
    pub fn end_tick(&self) {
        for hook in &self.tick_end {
            hook();
        }
    }

    /// What answered the request [`App::handle`] was last given.
    pub fn answered_by(&self) -> AnsweredBy {
        self.answered_by.get()
    }

    /// The counters of the static directories' file caches (for the metrics).
    pub fn file_cache_stats(&self) -> Vec<Arc<CacheStats>> {
        self.static_dirs
            .iter()
            .map(|(_, files)| files.cache_stats())
            .collect()
    }

    /// The helper threads asked for with [`App::needs_helpers`] (0 if none).
    pub fn helpers_needed(&self) -> usize {
        self.helpers
    }

    /// The handle handlers use to publish events to streaming connections.
    pub fn publisher(&self) -> Publisher {
        self.publisher.clone()
    }

    /// Lets browsers on `origin` call the JSON prefixes (CORS, with credentials).
    pub fn cors_origin(&mut self, origin: &str) -> &mut Self {
        self.cors_origins.push(origin.to_owned());
        self
    }

    /// Answers plain-HTTP requests (all but `/healthz`) with a 308 redirect to the same
    /// path and query on `https://HOST:port` (RFC 9110 §15.4.9: the method and body are
    /// kept). `fallback_host` stands in when a request names no host.
    pub fn redirect_to_https(&mut self, port: u16, fallback_host: &str) -> &mut Self {
        self.https_redirect = Some(HttpsRedirect {
            port,
            fallback_host: fallback_host.to_owned(),
        });
        self
    }

    /// Adds `Strict-Transport-Security: max-age=…` to every response sent over TLS (RFC 6797;
    /// browsers ignore it over plain HTTP, so it is not sent there).
    pub fn hsts(&mut self, max_age_seconds: u64) -> &mut Self {
        self.hsts = Some(format!("max-age={max_age_seconds}"));
        self
    }

    /// Produces the reply for `request` (see the module docs for the order of the rules).
    pub fn handle(&self, request: &Request<'_>) -> Reply {
        if let Some(redirect) = self.https_redirect_for(request) {
            return Reply::Now(redirect);
        }
        let reply = self.dispatch(request);
        match &self.hsts {
            Some(hsts) if request.is_secure() => {
                let hsts = hsts.clone();
                map_response(reply, move |mut response| {
                    response.set_header("Strict-Transport-Security", hsts);
                    response
                })
            }
            _ => reply,
        }
    }

    /// The redirect to HTTPS, if `request` came over plain HTTP and is to be redirected.
    fn https_redirect_for(&self, request: &Request<'_>) -> Option<Response> {
        let redirect = self.https_redirect.as_ref()?;
        let path = request.path();
        if request.is_secure() || path == HEALTH_PATH || !path.starts_with('/') {
            return None;
        }
        let host = request
            .header("host")
            .and_then(|host| std::str::from_utf8(host).ok())
            .map(host_without_port)
            .filter(|host| !host.is_empty())
            .unwrap_or(&redirect.fallback_host);
        let mut location = format!("https://{host}");
        if redirect.port != 443 {
            location.push_str(&format!(":{}", redirect.port));
        }
        location.push_str(path);
        if let Some(query) = request.query() {
            location.push('?');
            location.push_str(query);
        }
        Some(Response::redirect(StatusCode::PERMANENT_REDIRECT, location))
    }

    /// Routes to a handler or static directory (the numbered rules of the module docs).
    fn dispatch(&self, request: &Request<'_>) -> Reply {
        self.answered_by.set(AnsweredBy::Static);
        let path = request.path();
        let json = self.is_json_path(path);
        // 1. Extension methods.
        let method = request.method();
        if let Method::Extension(_) = method {
            return Reply::Now(self.error(StatusCode::NOT_IMPLEMENTED, json));
        }
        // 2. Non-path targets.
        if !path.starts_with('/') {
            return Reply::Now(match (method, path) {
                (Method::Options, "*") => {
                    Response::empty(StatusCode::OK).with_header("Allow", static_files::ALLOW)
                }
                (Method::Connect, _) => Response::error(StatusCode::METHOD_NOT_ALLOWED)
                    .with_header("Allow", static_files::ALLOW),
                _ => Response::error(StatusCode::BAD_REQUEST),
            });
        }
        // 3. Routes.
        let cors_origin = if json {
            self.cors_origin_of(request)
        } else {
            None
        };
        for &position in self.index.candidates(path) {
            let resource = &self.resources[position];
            let Some(params) = resource.matches(path) else {
                continue;
            };
            self.answered_by.set(AnsweredBy::Route);
            let request = request.with_params(&params);
            let lookup = if method == Method::Head {
                Method::Get
            } else {
                method
            };
            let reply = match resource.handler(lookup) {
                Some(handler) => handler(&request),
                None if method == Method::Options => Reply::Now(options_response(
                    &request,
                    &resource.allow,
                    cors_origin.is_some(),
                )),
                None => Reply::Now(
                    self.error(StatusCode::METHOD_NOT_ALLOWED, json)
                        .with_header("Allow", resource.allow.clone()),
                ),
            };
            return match cors_origin {
                Some(origin) => with_cors(reply, origin.to_owned()),
                None => reply,
            };
        }
        if json {
            let response = self.error(StatusCode::NOT_FOUND, true);
            return match cors_origin {
                Some(origin) => with_cors(Reply::Now(response), origin.to_owned()),
                None => Reply::Now(response),
            };
        }
        // 4. Static directories.
        for (prefix, files) in &self.static_dirs {
            if let Some(rest) = below(path, prefix) {
                let rest = if rest.is_empty() { "/" } else { rest };
                return files.serve(request, rest);
            }
        }
        Reply::Now(Response::error(StatusCode::NOT_FOUND))
    }

    /// The error response for `status` on `path` (JSON under a JSON prefix), for failures the
    /// connection detects itself (framing errors, timeouts, a panicking handler). Over TLS it
    /// carries HSTS like every other response.
    pub fn error_for_path(&self, status: StatusCode, path: Option<&str>, secure: bool) -> Response {
        let mut response = self.error(status, path.is_some_and(|path| self.is_json_path(path)));
        if let Some(hsts) = self.hsts.as_ref().filter(|_| secure) {
            response.set_header("Strict-Transport-Security", hsts.clone());
        }
        response
    }

    fn error(&self, status: StatusCode, json: bool) -> Response {
        if json {
            let message = status.reason_phrase().unwrap_or("error");
            HttpError::new(status, message.to_ascii_lowercase()).into_response()
        } else {
            Response::error(status)
        }
    }

    fn is_json_path(&self, path: &str) -> bool {
        self.json_prefixes
            .iter()
            .any(|prefix| below(path, prefix).is_some())
    }

    /// The request's `Origin`, if it is one of the configured CORS origins.
    fn cors_origin_of<'r>(&self, request: &Request<'r>) -> Option<&'r str> {
        let origin = std::str::from_utf8(request.header("origin")?).ok()?;
        self.cors_origins
            .iter()
            .any(|allowed| allowed == origin)
            .then_some(origin)
    }
}

/// OPTIONS on a route: a CORS preflight (Fetch standard §3.2.2) when the browser sent one from an
/// allowed origin, else the plain answer of RFC 9110 §9.3.7.
fn options_response(request: &Request<'_>, allow: &str, origin_allowed: bool) -> Response {
    let preflight = origin_allowed && request.header("access-control-request-method").is_some();
    let response = Response::empty(StatusCode::NO_CONTENT).with_header("Allow", allow.to_owned());
    if !preflight {
        return response;
    }
    response
        .with_header("Access-Control-Allow-Methods", allow.to_owned())
        .with_header(
            "Access-Control-Allow-Headers",
            "Content-Type, Authorization",
        )
        .with_header("Access-Control-Max-Age", CORS_MAX_AGE)
}

/// Adds the CORS response headers for an allowed `origin`.
fn with_cors(reply: Reply, origin: String) -> Reply {
    map_response(reply, move |mut response| {
        response.set_header("Access-Control-Allow-Origin", origin);
        response.set_header("Access-Control-Allow-Credentials", "true");
        response.set_header("Vary", "Origin");
        response
    })
}

/// Applies `change` to the reply's response: now, or when its job finishes. (A prepared
/// request is handled again, and changed then.)
fn map_response(reply: Reply, change: impl FnOnce(Response) -> Response + Send + 'static) -> Reply {
    match reply {
        Reply::Now(response) => Reply::Now(change(response)),
        Reply::Later(job) => Reply::Later(Box::new(move |responder: Responder| {
            job(responder.map(change))
        })),
        Reply::Stream(mut stream) => {
            stream.response = change(stream.response);
            Reply::Stream(stream)
        }
        Reply::Prepare(work) => Reply::Prepare(work),
    }
}

/// The rest of `path` if it is `prefix` or below it (`prefix` has no trailing slash; the rest
/// is empty or starts with one).
fn below<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    // Compared byte by byte, not with `strip_prefix`: prefixes are a few bytes, and every
    // request is compared with each. `strip_prefix` calls memcmp, whose AVX-512 version in
    // glibc does a masked load: for the site's root, the empty prefix, that load is from the
    // empty String's dangling pointer and takes a microcode assist. That one call was 9% of
    // the server's CPU time on small cached files (perf, pipelined load); the others, 1.6%.
    let (head, rest) = (
        path.as_bytes().get(..prefix.len())?,
        path.get(prefix.len()..)?,
    );
    let same = head.iter().zip(prefix.as_bytes()).all(|(a, b)| a == b);
    (same && (rest.is_empty() || rest.starts_with('/'))).then_some(rest)
}

/// `example.com:8080` → `example.com`, `[::1]:8080` → `[::1]` (the parser validated it).
fn host_without_port(host: &str) -> &str {
    match host.rfind(':') {
        Some(colon) if !host[colon..].contains(']') => &host[..colon],
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::http::parse::{ParseLimits, parse_head};
    use crate::http::response::Body;

    /// The response `app` gives to the raw request `input`, over TLS or not.
    fn answer(app: &App, input: &str, secure: bool) -> Response {
        let input = input.as_bytes();
        let mut headers = Vec::new();
        let head = parse_head(input, &ParseLimits::default(), &mut headers)
            .unwrap()
            .unwrap();
        let peer = SocketAddr::from(([127, 0, 0, 1], 9));
        let request =
            Request::new(&head, input, &headers, &input[head.len..], peer, secure).unwrap();
        match app.handle(&request) {
            Reply::Now(response) => response,
            other => panic!("expected an immediate response, got {other:?}"),
        }
    }

    fn app_with_https(port: u16) -> App {
        let mut app = App::new();
        app.get("/healthz", |_| Response::text(StatusCode::OK, "ok"));
        app.get("/page", |_| Response::text(StatusCode::OK, "page"));
        app.redirect_to_https(port, "127.0.0.1").hsts(600);
        app
    }

    #[test]
    fn below_a_prefix_is_the_prefix_itself_or_after_a_slash() {
        let cases = [
            ("/api", "/api", Some("")),
            ("/api/posts", "/api", Some("/posts")),
            ("/apis", "/api", None),
            ("/ap", "/api", None),
            ("/API", "/api", None),
            ("/x", "", Some("/x")),
            ("/", "", Some("/")),
            ("/\u{e9}", "/a", None),
            ("/\u{e9}/x", "/\u{e9}", Some("/x")),
        ];
        for (path, prefix, expected) in cases {
            assert_eq!(below(path, prefix), expected, "{path:?} below {prefix:?}");
        }
    }

    #[test]
    fn plain_requests_are_redirected_to_the_same_path_and_query() {
        let app = app_with_https(8443);
        let cases = [
            (
                "GET /page?a=1&b HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
                "https://example.com:8443/page?a=1&b",
            ),
            (
                "POST /api/x HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n",
                "https://example.com:8443/api/x",
            ),
            (
                "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
                "https://[::1]:8443/",
            ),
            (
                "GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n",
                "https://[::1]:8443/",
            ),
            // No host to name: the fallback.
            ("GET /page HTTP/1.0\r\n\r\n", "https://127.0.0.1:8443/page"),
            (
                "GET http://example.com/page HTTP/1.1\r\nHost: example.com\r\n\r\n",
                "https://example.com:8443/page",
            ),
        ];
        for (input, location) in cases {
            let response = answer(&app, input, false);
            assert_eq!(
                response.status(),
                StatusCode::PERMANENT_REDIRECT,
                "{input:?}"
            );
            assert_eq!(response.header("Location"), Some(location), "{input:?}");
            assert_eq!(response.header("Strict-Transport-Security"), None);
        }
        let on_443 = app_with_https(443);
        let response = answer(&on_443, "GET /p HTTP/1.1\r\nHost: h:80\r\n\r\n", false);
        assert_eq!(response.header("Location"), Some("https://h/p"));
    }

    #[test]
    fn health_checks_and_tls_requests_are_not_redirected() {
        let app = app_with_https(8443);
        let health = answer(&app, "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n", false);
        assert_eq!(health.status(), StatusCode::OK);
        assert_eq!(health.header("Strict-Transport-Security"), None);
        let secure = answer(&app, "GET /page HTTP/1.1\r\nHost: h\r\n\r\n", true);
        assert_eq!(secure.status(), StatusCode::OK);
        assert_eq!(
            secure.header("Strict-Transport-Security"),
            Some("max-age=600")
        );
        let missing = answer(&app, "GET /nothing HTTP/1.1\r\nHost: h\r\n\r\n", true);
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            missing.header("Strict-Transport-Security"),
            Some("max-age=600")
        );
    }

    #[test]
    fn methods_pick_the_handler_or_the_error() {
        let mut app = App::new();
        app.get("/r", |_| Response::text(StatusCode::OK, "get"));
        app.patch("/r", |_| Response::text(StatusCode::OK, "patch"));
        app.route(Method::Post, "/r", |_| {
            Response::text(StatusCode::OK, "post")
        });
        let route_allow = Some("GET, PATCH, POST, HEAD, OPTIONS");
        // (request line, status, Allow)
        let cases = [
            ("GET /r", StatusCode::OK, None),
            ("HEAD /r", StatusCode::OK, None),
            ("PATCH /r", StatusCode::OK, None),
            ("POST /r", StatusCode::OK, None),
            ("OPTIONS /r", StatusCode::NO_CONTENT, route_allow),
            ("PUT /r", StatusCode::METHOD_NOT_ALLOWED, route_allow),
            ("TRACE /r", StatusCode::METHOD_NOT_ALLOWED, route_allow),
            // Extension methods, lower-case standard names included (RFC 9110 §9.1).
            ("get /r", StatusCode::NOT_IMPLEMENTED, None),
            ("PROPFIND /r", StatusCode::NOT_IMPLEMENTED, None),
            ("PROPFIND /elsewhere", StatusCode::NOT_IMPLEMENTED, None),
            ("OPTIONS *", StatusCode::OK, Some(static_files::ALLOW)),
            (
                "CONNECT example.com:443",
                StatusCode::METHOD_NOT_ALLOWED,
                Some(static_files::ALLOW),
            ),
            ("GET /nothing", StatusCode::NOT_FOUND, None),
        ];
        for (line, status, allow) in cases {
            let input = format!("{line} HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
            let response = answer(&app, &input, false);
            assert_eq!(response.status(), status, "{line}");
            assert_eq!(response.header("Allow"), allow, "{line}");
        }
    }

    #[test]
    fn the_first_registered_route_that_matches_wins_whatever_its_first_segment() {
        let mut app = App::new();
        let text = |body: &'static str| move |_: &Request<'_>| Response::text(StatusCode::OK, body);
        app.get("/a/:x", text("a-param"));
        app.get("/:section/fixed", text("param-first"));
        app.get("/a/fixed", text("a-fixed (never: both above match first)"));
        app.get("/b", text("b"));
        app.get("/", text("root"));
        app.get("/:anything", text("one segment"));
        let cases = [
            ("/a/1", "a-param"),
            ("/a/fixed", "a-param"),
            ("/b/fixed", "param-first"),
            ("/zzz/fixed", "param-first"),
            ("/b", "b"),
            ("/", "root"),
            ("/zzz", "one segment"),
            ("/a", "one segment"),
        ];
        for (path, expected) in cases {
            let response = answer(
                &app,
                &format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n"),
                false,
            );
            let Body::Bytes(body) = response.body() else {
                panic!("{path}: {response:?}");
            };
            assert_eq!(std::str::from_utf8(body).unwrap(), expected, "{path}");
        }
        let missing = answer(&app, "GET /b/c/d HTTP/1.1\r\nHost: h\r\n\r\n", false);
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    #[should_panic(expected = "extension method")]
    fn extension_methods_cannot_be_routed() {
        App::new().route(Method::Extension("PROPFIND"), "/r", |_| {
            Response::empty(StatusCode::NO_CONTENT)
        });
    }

    #[test]
    fn ports_are_cut_from_hosts() {
        for (host, expected) in [
            ("example.com", "example.com"),
            ("example.com:8080", "example.com"),
            ("[::1]", "[::1]"),
            ("[::1]:80", "[::1]"),
            ("127.0.0.1:1", "127.0.0.1"),
            ("", ""),
        ] {
            assert_eq!(host_without_port(host), expected, "{host:?}");
        }
    }
}
