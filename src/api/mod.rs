//! The built-in application: the JSON API the binary serves next to www/.
//!
//! `mount` opens the store and registers every route. Handlers here share one shape,
//! `fn(&Api, &Request) -> Result<Reply, HttpError>`: they validate and answer from the store on
//! the loop thread when that is fast, and defer to the helper pool (`Reply::later`) what is
//! slow — password hashing. Deferred jobs open their own `Store` on their helper thread.
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
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::events::Publisher;
use crate::http::request::Request;
use crate::json::{HttpError, Json};
use crate::router::{App, Reply};
use crate::store::{self, Store};
use crate::{Config, IntoResponse};

/// What the API needs from the command line.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    pub db_path: PathBuf,
    pub max_json_body: usize,
    pub session_ttl_secs: u64,
    pub cors_origins: Vec<String>,
    /// Generated posts to insert on start (for load tests).
    pub seed_posts: u64,
}

impl From<&Config> for ApiSettings {
    fn from(config: &Config) -> Self {
        ApiSettings {
            db_path: config.db.clone(),
            max_json_body: config.max_json_body,
            session_ttl_secs: config.session_ttl,
            cors_origins: config.cors_origin.clone(),
            seed_posts: config.seed_posts,
        }
    }
}

/// The API's state on the loop thread.
pub struct Api {
    store: Store,
    settings: ApiSettings,
    login_limiter: auth::LoginLimiter,
    publisher: Publisher,
}

type Handler = fn(&Api, &Request<'_>) -> Result<Reply, HttpError>;

/// Opens the store (applying migrations, seeding if asked) and registers the API's routes.
pub fn mount(app: &mut App, settings: ApiSettings) -> Result<(), store::Error> {
    let store = Store::open(&settings.db_path)?;
    if settings.seed_posts > 0 {
        posts::seed(&store, settings.seed_posts)?;
    }
    app.json_errors("/api").json_errors("/healthz");
    for origin in &settings.cors_origins {
        app.cors_origin(origin);
    }
    let api = Rc::new(Api {
        store,
        settings,
        login_limiter: auth::LoginLimiter::default(),
        publisher: app.publisher(),
    });
    let route = |handler: Handler| {
        let api = Rc::clone(&api);
        move |request: &Request<'_>| {
            handler(&api, request).unwrap_or_else(|error| Reply::Now(error.into_response()))
        }
    };
    app.get("/healthz", |_| Json(serde_json::json!({ "status": "ok" })));
    app.post("/api/auth/register", route(auth::register));
    app.post("/api/auth/login", route(auth::login));
    app.post("/api/auth/logout", route(auth::logout));
    app.get("/api/auth/me", route(auth::me));
    app.get("/api/posts", route(posts::list));
    app.post("/api/posts", route(posts::create));
    app.get("/api/posts/:id", route(posts::show));
    app.put("/api/posts/:id", route(posts::update));
    app.delete("/api/posts/:id", route(posts::delete));
    app.get("/api/search", route(search::get));
    app.post("/api/search", route(search::post));
    app.get("/api/chat/messages", route(chat::list));
    app.post("/api/chat/messages", route(chat::send));
    app.get("/api/chat/stream", route(chat::stream));
    Ok(())
}

/// Any store failure is the server's fault: a 500, and nothing half-written (every multi-row
/// write is one transaction).
impl From<store::Error> for HttpError {
    fn from(_: store::Error) -> Self {
        HttpError::new(500, "internal error")
    }
}

/// Runs `work` with this helper thread's own connection to the database at `path`.
fn with_helper_store<R>(
    path: &Path,
    work: impl FnOnce(&Store) -> Result<R, store::Error>,
) -> Result<R, store::Error> {
    thread_local! {
        static STORE: RefCell<Option<(PathBuf, Store)>> = const { RefCell::new(None) };
    }
    STORE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let reuse = matches!(&*slot, Some((open_path, _)) if open_path == path);
        if !reuse {
            *slot = Some((path.to_owned(), Store::open(path)?));
        }
        match &*slot {
            Some((_, store)) => work(store),
            None => Err(store::Error::InvalidPath(path.to_owned())),
        }
    })
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
