//! The built-in application: the JSON API the binary serves next to www/.
//!
//! `mount` opens the store and registers every route. Handlers share one shape,
//! `fn(&Api, &Request) -> Result<Answer, HttpError>`, with checks in the order the contract
//! gives them, and almost none runs on the event loop: statements cost as much as the data
//! they touch (and a write may wait for the file's lock). So a route, on the loop, only copies
//! the request ([`Request::to_owned`]) and defers to the helper pool, where its handler runs.
//! Reads are made there, on the helper's own connection; a write is handed to the store's
//! writer thread (`Answer::Write`), which answers once its transaction commits.
//!
//! The exception is a handler made only of primary-key lookups (one post, the session's user):
//! bounded, and cheaper than the hand-off, it runs on the loop's own read-only connection.
//!
//! - `auth`: register, login (rate-limited), logout, me; sessions.
//! - `posts`: the blog (CRUD), and generated posts for load tests.
//! - `search`: full-text search over posts.
//! - `chat`: the group chat room, live over server-sent events.

pub mod auth;
pub mod chat;
pub mod posts;
pub mod search;

use std::borrow::Cow;
use std::sync::Arc;

use crate::events::{EventStream, Publisher};
use crate::http::request::Request;
use crate::http::response::Response;
use crate::http::status::StatusCode;
use crate::jobs::Responder;
use crate::json::{HttpError, Json, json_response};
use crate::metrics::PROCESS;
use crate::router::{App, Reply};
use crate::store::{self, AfterCommit, Db, Store, Target};
use crate::{Config, IntoResponse};

/// What the API needs from the command line.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    pub db: Target,
    pub max_json_body: usize,
    pub session_ttl_secs: u64,
    pub cors_origins: Vec<String>,
    /// Generated posts to insert on start (for load tests).
    pub seed_posts: u64,
}

impl From<&Config> for ApiSettings {
    fn from(config: &Config) -> Self {
        ApiSettings {
            db: config.db_target(),
            max_json_body: config.max_json_body,
            session_ttl_secs: config.session_ttl,
            cors_origins: config.cors_origin.clone(),
            seed_posts: config.seed_posts,
        }
    }
}

/// The API's state, shared by the helper threads its handlers run on.
pub struct Api {
    db: Db,
    settings: ApiSettings,
    publisher: Publisher,
}

/// A handler: runs on a helper thread.
type Handler = fn(&Api, &Request<'_>) -> Result<Answer, HttpError>;

/// What a handler decided.
pub enum Answer {
    /// The response, computed from reads.
    Response(Response),
    /// An event stream (the replay was read).
    Stream(EventStream),
    /// A write for the writer thread: its response is sent, and its event published, only
    /// once its transaction has committed.
    Write(Write),
}

/// A write's work, run on the writer thread inside its transaction.
type Write = Box<dyn FnOnce(&mut dyn Store) -> Result<Written, HttpError> + Send>;

/// What a write produced.
pub struct Written {
    response: Response,
    /// An event for the streams of a topic: (topic, id, encoded event).
    publish: Option<(&'static str, u64, Vec<u8>)>,
}

impl Answer {
    /// A response now.
    fn respond(response: impl IntoResponse) -> Answer {
        Answer::Response(response.into_response())
    }

    /// A write whose response is sent after the commit.
    fn write(
        work: impl FnOnce(&mut dyn Store) -> Result<Response, HttpError> + Send + 'static,
    ) -> Answer {
        Answer::Write(Box::new(move |store| {
            work(store).map(|response| Written {
                response,
                publish: None,
            })
        }))
    }

    /// A write whose response is sent, and whose event is published, after the commit.
    fn write_and_publish(
        work: impl FnOnce(&mut dyn Store) -> Result<(Response, (&'static str, u64, Vec<u8>)), HttpError>
        + Send
        + 'static,
    ) -> Answer {
        Answer::Write(Box::new(move |store| {
            work(store).map(|(response, event)| Written {
                response,
                publish: Some(event),
            })
        }))
    }
}

impl Api {
    /// Sends the handler's answer through `responder`: now, or after the writer's commit.
    fn finish(&self, answer: Result<Answer, HttpError>, responder: Responder) {
        let work = match answer {
            Ok(Answer::Response(response)) => return responder.respond(response),
            Ok(Answer::Stream(stream)) => return responder.stream(stream),
            Err(error) => return responder.respond(error),
            Ok(Answer::Write(work)) => work,
        };
        // A shared database tells every instance (this one too) about new chat messages.
        let publisher = (!self.db.is_shared()).then(|| self.publisher.clone());
        self.db.write(Box::new(move |store| {
            match store.map_err(HttpError::from).and_then(work) {
                Ok(written) => {
                    let after: AfterCommit = Box::new(move |committed| {
                        if !committed {
                            return responder.respond(internal_error());
                        }
                        if let (Some(publisher), Some((topic, id, event))) =
                            (publisher, written.publish)
                        {
                            if topic == chat::TOPIC {
                                PROCESS.chat_messages_published.inc();
                            }
                            publisher.publish(topic, Some(id), event);
                        }
                        responder.respond(written.response);
                    });
                    Ok(after)
                }
                Err(error) => Err(Box::new(move |_| responder.respond(error))),
            }
        }));
    }
}

/// Opens the store (applying migrations, seeding if asked), starts its writer thread, and
/// registers the API's routes: [`open`] then [`mount_routes`], for a server with one app.
pub fn mount(app: &mut App, settings: ApiSettings) -> std::io::Result<()> {
    let api = open(settings, app.publisher())?;
    mount_routes(app, &api);
    Ok(())
}

/// Opens the store (applying migrations, seeding if asked) and starts its writer thread: the
/// API's state, opened once and shared by the apps of every worker (one store, one login
/// throttle). Chat messages are published through `publisher`.
pub fn open(settings: ApiSettings, publisher: Publisher) -> std::io::Result<Arc<Api>> {
    let seed_posts = settings.seed_posts;
    let db = Db::open(&settings.db, |store| match seed_posts {
        0 => Ok(()),
        count => posts::seed(store, count),
    })
    .map_err(std::io::Error::other)?;
    let watcher = publisher.clone();
    db.watch_messages(move |messages| chat::publish(&watcher, &messages))
        .map_err(std::io::Error::other)?;
    Ok(Arc::new(Api {
        db,
        settings,
        publisher,
    }))
}

/// Registers the API's routes on `app`, whose publisher should be the one `api` was opened
/// with (see [`App::with_publisher`]).
pub fn mount_routes(app: &mut App, api: &Arc<Api>) {
    if !api.db.is_local() {
        // Each statement waits on a round trip, not on a CPU: one thread per pooled
        // connection keeps the database busy (helpers still run below the loop's priority).
        app.needs_helpers(store::postgres::POOL_SIZE as usize);
    }
    app.json_errors("/api").json_errors("/healthz");
    for origin in &api.settings.cors_origins {
        app.cors_origin(origin);
    }
    let route = |handler: Handler| {
        let api = Arc::clone(api);
        move |request: &Request<'_>| {
            // On the loop: one copy of the request (bounded by the head and body limits).
            let request = request.to_owned();
            let api = Arc::clone(&api);
            Reply::later_with(move |responder| {
                let answer = request
                    .with(|request| handler(&api, request))
                    .unwrap_or_else(|| Err(HttpError::bad_request("malformed request")));
                api.finish(answer, responder);
            })
        }
    };
    // Handlers whose every statement is a primary-key lookup (a few B-tree pages, read from
    // the mapped file) run on the loop, on its own read-only connection: a lookup costs ~2 us
    // (benches/request_path), far less than the hand-off to a helper and back (~25 us on one
    // core; GET /api/posts/:id went from 33k to 18k req/s with it, benches/load/api.sh). Anything else, or a handler
    // that turns out to need a write, is not for this.
    // With a networked database every statement is a round trip: then they go to a helper
    // like the rest.
    // Their reads share one snapshot per tick of the loop (see `Db::sharing_snapshot`),
    // which the loop ends before it waits for events again.
    let local = api.db.is_local();
    if local {
        app.on_tick_end(store::db::release_read_snapshot);
    }
    let point_lookup = |handler: Handler| {
        let api = Arc::clone(api);
        let on_helper = route(handler);
        move |request: &Request<'_>| {
            if !local {
                return on_helper(request);
            }
            match api.db.sharing_snapshot(|| handler(&api, request)) {
                Ok(Answer::Response(response)) => Reply::Now(response),
                Err(error) => Reply::Now(error.into_response()),
                Ok(_) => Reply::Now(internal_error().into_response()),
            }
        }
    };
    app.get("/healthz", point_lookup(health));
    app.post("/api/auth/register", route(auth::register));
    app.post("/api/auth/login", route(auth::login));
    app.post("/api/auth/logout", route(auth::logout));
    app.get("/api/auth/me", point_lookup(auth::me));
    app.get("/api/posts", route(posts::list));
    app.post("/api/posts", route(posts::create));
    app.get("/api/posts/:id", point_lookup(posts::show));
    app.put("/api/posts/:id", route(posts::update));
    app.delete("/api/posts/:id", route(posts::delete));
    app.get("/api/search", route(search::get));
    app.post("/api/search", route(search::post));
    app.get("/api/chat/messages", route(chat::list));
    app.post("/api/chat/messages", route(chat::send));
    app.get("/api/chat/stream", route(chat::stream));
}

/// GET /healthz → `{"status":"ok"}`, or 503 `{"status":"degraded",...}` while the database
/// cannot be reached (static files are still served).
fn health(api: &Api, _request: &Request<'_>) -> Result<Answer, HttpError> {
    if api.db.is_reachable() {
        // Probed every few seconds by every balancer: a constant, not encoded per request.
        const HEALTHY: &[u8] = br#"{"status":"ok"}"#;
        return Ok(Answer::respond(json_response(StatusCode::OK, HEALTHY)));
    }
    let body = serde_json::json!({ "status": "degraded", "database": "unreachable" });
    let response = (StatusCode::SERVICE_UNAVAILABLE, Json(body))
        .into_response()
        .with_header("Retry-After", RETRY_AFTER_SECS.to_string());
    Ok(Answer::respond(response))
}

/// Seconds a client is asked to wait while the database is unreachable.
const RETRY_AFTER_SECS: u64 = 5;

/// A database that cannot be reached is a 503 with `Retry-After`; any other store failure is
/// the server's fault: a 500, and nothing half-written (every write is atomic).
impl From<store::Error> for HttpError {
    fn from(error: store::Error) -> Self {
        if error.is_unavailable() {
            return HttpError::new(StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
                .with_retry_after(RETRY_AFTER_SECS);
        }
        internal_error()
    }
}

fn internal_error() -> HttpError {
    HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

/// A non-negative integer query parameter, `default` when absent; anything else is a 400.
fn count_param(request: &Request<'_>, name: &str, default: u64) -> Result<u64, HttpError> {
    match request.query_param(name) {
        None => Ok(default),
        Some(value) => value
            .parse::<u64>()
            .ok()
            .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                HttpError::bad_request(format!("`{name}` must be a non-negative integer"))
            }),
    }
}

/// The `limit` query parameter: default 20, clamped to 100.
fn limit_param(request: &Request<'_>) -> Result<u32, HttpError> {
    Ok(clamp_limit(count_param(
        request,
        "limit",
        DEFAULT_LIMIT.into(),
    )?))
}

const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 100;

fn clamp_limit(limit: u64) -> u32 {
    u32::try_from(limit).unwrap_or(MAX_LIMIT).min(MAX_LIMIT)
}

/// Length in characters (Unicode scalar values), as the contract counts.
fn char_len(text: &str) -> usize {
    text.chars().count()
}

/// `Cow` message for a length rule.
fn length_error(field: &str, min: usize, max: usize) -> HttpError {
    HttpError::unprocessable(Cow::Owned(format!(
        "`{field}` must be {min} to {max} characters"
    )))
}
