//! Live reload for people editing a site (`--watch`; for development, not production).
//!
//! 1. A thread of its own watches the root (`watcher`, inotify through `notify`, recursively).
//! 2. Every change moves a [`ChangeCounter`] the file cache of every worker reads (one atomic
//!    load per lookup, no lock): the cache forgets what it knew, and the next request is
//!    served from the disk. A page fetched after an edit is the edited page.
//! 3. A burst of changes (an editor's save is several events) becomes one `reload` event
//!    (`debounce`), published to [`TOPIC`].
//! 4. Every HTML page the file cache holds gets [`SNIPPET`] before `</body>` (or at its
//!    end): a script ([`SCRIPT_PATH`]) that listens on the event stream at [`STREAM_PATH`]
//!    and reloads the page on `reload`, or when the stream comes back after the server
//!    restarted. The stream is shared by every tab of a browser (`www/shared-stream.js`: a
//!    SharedWorker owns it), so any number of open pages hold one connection.
//!
//! Everything lives under [`PREFIX`] (`/_looplight/`), served by routes that take precedence
//! over the root's files; without `--watch` none of it exists and no response changes by a
//! byte.

mod debounce;
mod watcher;

use std::borrow::Cow;
use std::io;
use std::path::Path;
use std::sync::Arc;

use notify::RecommendedWatcher;

use crate::events::{EventStream, Publisher};
use crate::http::response::{Body, Response};
use crate::http::status::StatusCode;
use crate::router::{App, Reply};
use crate::static_files::{ChangeCounter, StaticOptions};

/// Where live reload's own resources are served: a name no site is likely to use.
pub const PREFIX: &str = "/_looplight/";
/// The event stream of reloads (server-sent events: `event: reload`).
pub const STREAM_PATH: &str = "/_looplight/reload";
/// The script every HTML page loads: the shared-stream helper, then the live-reload client.
pub const SCRIPT_PATH: &str = "/_looplight/live-reload.js";
/// The SharedWorker that holds one stream for every tab.
pub const WORKER_PATH: &str = "/_looplight/shared-stream-worker.js";
/// What goes into HTML pages.
pub const SNIPPET: &str = "<script src=\"/_looplight/live-reload.js\"></script>";
/// The topic reload events are published to.
pub const TOPIC: &str = "looplight-reload";

/// [`SCRIPT_PATH`]: the site's shared-stream helper (the chat page uses it too), then the
/// client that reloads the page.
const SCRIPT: &str = concat!(
    include_str!("../../www/shared-stream.js"),
    include_str!("live-reload.js")
);
/// [`WORKER_PATH`]: the site's SharedWorker for shared streams.
const WORKER: &str = include_str!("../../www/shared-stream-worker.js");
/// The stream's first bytes: reconnect a second after losing the server (a restart), not the
/// browser's default three.
const RETRY: &[u8] = b"retry: 1000\n\n";

/// Live reload, running: the watcher's thread stops when this is dropped.
pub struct LiveReload {
    changes: ChangeCounter,
    _watcher: RecommendedWatcher,
}

impl std::fmt::Debug for LiveReload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveReload")
            .field("changes", &self.changes.current())
            .finish()
    }
}

impl LiveReload {
    /// Watches `root` (recursively): file caches made with [`LiveReload::static_options`]
    /// forget on every change, and reload events go out through `publisher` (the one the
    /// apps share, see [`App::with_publisher`]).
    pub fn start(root: &Path, publisher: Publisher) -> io::Result<LiveReload> {
        let changes = ChangeCounter::default();
        let watcher = watcher::start(root, changes.clone(), publisher)?;
        Ok(LiveReload {
            changes,
            _watcher: watcher,
        })
    }

    /// `options` for serving the watched root: its file cache forgets on every change, and
    /// its HTML pages load the live-reload script.
    pub fn static_options(&self, options: StaticOptions) -> StaticOptions {
        StaticOptions {
            changes: Some(self.changes.clone()),
            html_snippet: Some(Arc::from(SNIPPET)),
            ..options
        }
    }

    /// Registers the routes under [`PREFIX`]: the stream, the script and the worker.
    pub fn mount(&self, app: &mut App) {
        app.get(STREAM_PATH, |_| stream());
        app.get(SCRIPT_PATH, |_| javascript(SCRIPT));
        app.get(WORKER_PATH, |_| javascript(WORKER));
    }
}

/// GET [`STREAM_PATH`]: the reload events from now on.
fn stream() -> Reply {
    let response = Response::empty(StatusCode::OK)
        .with_header("Content-Type", "text/event-stream")
        .with_header("Cache-Control", "no-cache");
    Reply::Stream(Box::new(EventStream {
        topic: TOPIC.to_owned(),
        response,
        replay: RETRY.to_vec(),
        last_id: None,
    }))
}

/// A script compiled into the binary.
fn javascript(source: &'static str) -> Response {
    Response::empty(StatusCode::OK)
        .with_header("Content-Type", "text/javascript; charset=utf-8")
        .with_header("Cache-Control", "no-cache")
        .with_body(Body::Bytes(Cow::Borrowed(source.as_bytes())))
}
