//! The single integration-test binary for looplight.
//!
//! Every test starts its own server process (the real `looplight` binary on
//! an ephemeral port with a temporary document root), so tests are
//! independent and run in parallel.
//!
//! The test modules live in `tests/suite/` and are pulled in with `#[path]`:
//! Cargo auto-discovers every `tests/*.rs` file as a separate test target,
//! so module files placed directly in `tests/` would each be compiled a
//! second time as a stand-alone crate (where `crate::support` does not exist).
//!
//! The API and chat suites run twice: as themselves on SQLite, and under
//! `postgres::` on PostgreSQL (the harness sees the test's thread name, see
//! `support/postgres.rs`). `scale_out` runs two servers on one PostgreSQL
//! database behind nginx.

mod support;

#[path = "suite/api_auth.rs"]
mod api_auth;
#[path = "suite/api_chat.rs"]
mod api_chat;
#[path = "suite/api_general.rs"]
mod api_general;
#[path = "suite/api_posts.rs"]
mod api_posts;
#[path = "suite/api_search.rs"]
mod api_search;
#[path = "suite/browser_chat.rs"]
mod browser_chat;
#[path = "suite/chat_load.rs"]
mod chat_load;
#[path = "suite/config_file.rs"]
mod config_file;
#[path = "suite/curl.rs"]
mod curl;
#[path = "suite/http1.rs"]
mod http1;
#[path = "suite/isolation.rs"]
mod isolation;
#[path = "suite/lifecycle.rs"]
mod lifecycle;
#[path = "suite/limits.rs"]
mod limits;
#[path = "suite/live_reload.rs"]
mod live_reload;
#[path = "suite/logs.rs"]
mod logs;
#[path = "suite/metrics.rs"]
mod metrics;
#[path = "suite/pages.rs"]
mod pages;
#[path = "suite/privileges.rs"]
mod privileges;
#[path = "suite/scale_out.rs"]
mod scale_out;
#[path = "suite/static_files.rs"]
mod static_files;
#[path = "suite/static_rfc.rs"]
mod static_rfc;
#[path = "suite/tls.rs"]
mod tls;
#[path = "suite/workers.rs"]
mod workers;

/// The same suites against PostgreSQL: every server these tests start gets a
/// fresh database on a throwaway cluster (`support/postgres.rs`).
/// `#[path]` on an inline module names the directory its modules are in.
/// Loading each file a second time is the point, hence the `allow`.
#[path = "suite"]
#[allow(clippy::duplicate_mod)]
mod postgres {
    mod api_auth;
    mod api_chat;
    mod api_general;
    mod api_posts;
    mod api_search;
    mod chat_load;
}
