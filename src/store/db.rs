//! [`Db`]: the database as the API uses it, whichever backend holds the data.
//!
//! - SQLite: reads run on the calling thread's own read-only connection (a helper's, or the
//!   loop's for primary-key lookups, the only reads bounded enough for the loop); writes are
//!   queued for the writer thread (see `writer`) and answered after their group commits.
//! - PostgreSQL: reads and writes take a connection from the pool on the calling (helper)
//!   thread; a write is one transaction, answered after its commit.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Sender};
use std::thread;
use std::time::Duration;

use super::postgres::PgPool;
use super::sqlite::Sqlite;
use super::throttle::LoginThrottle;
use super::writer::{self, WriteTask};
use super::{Error, Message, Store};

/// Scheduling niceness of the writer thread: below the loop's, like the helpers'.
const WRITER_NICENESS: i32 = 10;

/// Where the data lives: the `--db` flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A SQLite file (created if missing).
    Sqlite(PathBuf),
    /// A PostgreSQL server: `postgres://USER[:PASS]@HOST[:PORT]/NAME` (or `postgresql://`).
    Postgres(String),
}

impl Target {
    /// A `postgres://` or `postgresql://` URL selects PostgreSQL; anything else is a path.
    pub fn parse(text: &str) -> Target {
        let is_url = ["postgres://", "postgresql://"].iter().any(|scheme| {
            text.get(..scheme.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
        });
        if is_url {
            Target::Postgres(text.to_owned())
        } else {
            Target::Sqlite(PathBuf::from(text))
        }
    }
}

/// A handle to the database: cheap to clone, usable from any thread.
#[derive(Clone, Debug)]
pub struct Db {
    backend: Backend,
}

#[derive(Clone, Debug)]
enum Backend {
    Sqlite {
        path: Arc<PathBuf>,
        writes: Sender<WriteTask>,
        throttle: LoginThrottle,
    },
    Postgres(PgPool),
}

impl Db {
    /// Opens the database at `target`, brings its schema up to date, runs `prepare` on it
    /// (seeding), and starts what serves it: SQLite's writer thread, or PostgreSQL's pool.
    pub fn open(
        target: &Target,
        prepare: impl FnOnce(&mut dyn Store) -> Result<(), Error>,
    ) -> Result<Db, Error> {
        let backend = match target {
            Target::Sqlite(path) => {
                let mut store = Sqlite::open(path)?;
                prepare(&mut store)?;
                start_sqlite(store, path).map_err(|error| Error::Unavailable(error.to_string()))?
            }
            Target::Postgres(url) => {
                let pool = PgPool::open(url)?;
                // Seeding writes: not in a read-only transaction.
                pool.read_write(prepare)?;
                Backend::Postgres(pool)
            }
        };
        Ok(Db { backend })
    }

    /// Whether the data is in a local file: reads that touch a few pages are cheap enough to
    /// run on the event loop. With a networked database every statement is a round trip.
    pub fn is_local(&self) -> bool {
        matches!(self.backend, Backend::Sqlite { .. })
    }

    /// Whether several instances may share the data: then chat messages reach the streams of
    /// this instance from the database ([`Db::watch_messages`]), not from its own writes.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// Runs `work` on a connection for reading.
    pub fn read<R>(
        &self,
        work: impl FnOnce(&mut dyn Store) -> Result<R, Error>,
    ) -> Result<R, Error> {
        match &self.backend {
            Backend::Sqlite { path, .. } => read_sqlite(path, work),
            Backend::Postgres(pool) => pool.read(work),
        }
    }

    /// Runs a write: queued for SQLite's writer thread, or at once on a pooled PostgreSQL
    /// connection in a transaction of its own. Its `AfterCommit` runs once the outcome is
    /// known; if the write never runs (the writer is gone, or the database unreachable), the
    /// task is dropped, and with it the responder it holds (a 500).
    pub fn write(&self, task: WriteTask) {
        match &self.backend {
            Backend::Sqlite { writes, .. } => {
                let _ = writes.send(task);
            }
            Backend::Postgres(pool) => pool.write(task),
        }
    }

    /// `Ok(Err(retry_after))` when `username` (lower-cased) failed to log in too often lately.
    pub fn login_allowed(&self, username: &str) -> Result<Result<(), Duration>, Error> {
        match &self.backend {
            Backend::Sqlite { throttle, .. } => Ok(throttle.check(username)),
            Backend::Postgres(pool) => pool.login_allowed(username),
        }
    }

    /// Counts a failed login for `username` (lower-cased).
    pub fn login_failed(&self, username: &str) -> Result<(), Error> {
        match &self.backend {
            Backend::Sqlite { throttle, .. } => {
                throttle.record_failure(username);
                Ok(())
            }
            Backend::Postgres(pool) => pool.login_failed(username),
        }
    }

    /// Forgets the failed logins of `username` (lower-cased), who just logged in.
    pub fn login_succeeded(&self, username: &str) -> Result<(), Error> {
        match &self.backend {
            Backend::Sqlite { throttle, .. } => {
                throttle.forget(username);
                Ok(())
            }
            Backend::Postgres(pool) => pool.login_succeeded(username),
        }
    }

    /// Whether the database answers now.
    pub fn is_reachable(&self) -> bool {
        match &self.backend {
            Backend::Sqlite { .. } => true,
            Backend::Postgres(pool) => pool.is_reachable(),
        }
    }

    /// For a shared database: calls `deliver` with every chat message committed from now on,
    /// by any instance, in id order, each once (LISTEN/NOTIFY, on a thread of its own). A
    /// local database delivers nothing here: its writes publish their own messages.
    pub fn watch_messages(
        &self,
        deliver: impl FnMut(Vec<Message>) + Send + 'static,
    ) -> Result<(), Error> {
        match &self.backend {
            Backend::Sqlite { .. } => Ok(()),
            Backend::Postgres(pool) => pool.watch_messages(deliver),
        }
    }
}

/// Starts the writer thread with `store`, the read-write connection to the file at `path`
/// (opened, migrated and seeded already). The thread ends once every `Db` is dropped.
fn start_sqlite(mut store: Sqlite, path: &Path) -> std::io::Result<Backend> {
    let (writes, tasks) = mpsc::channel::<WriteTask>();
    thread::Builder::new()
        .name("looplight-writer".to_owned())
        .spawn(move || {
            let _ = rustix::process::setpriority_process(
                Some(rustix::thread::gettid()),
                WRITER_NICENESS,
            );
            writer::run(&mut store, &tasks);
        })?;
    Ok(Backend::Sqlite {
        path: Arc::new(path.to_owned()),
        writes,
        throttle: LoginThrottle::default(),
    })
}

/// Runs `work` with this thread's read-only connection to `path` (opened on first use).
fn read_sqlite<R>(
    path: &Path,
    work: impl FnOnce(&mut dyn Store) -> Result<R, Error>,
) -> Result<R, Error> {
    thread_local! {
        static READER: RefCell<Option<(PathBuf, Sqlite)>> = const { RefCell::new(None) };
    }
    READER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let open = matches!(&*slot, Some((open_path, _)) if open_path == path);
        if !open {
            *slot = Some((path.to_path_buf(), Sqlite::open_read_only(path)?));
        }
        match &mut *slot {
            Some((_, store)) => work(store),
            None => Err(Error::Unexpected("no reader connection")),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_postgres_url_selects_postgres_and_anything_else_is_a_path() {
        for url in [
            "postgres://u:p@h:5432/d",
            "postgresql://h/d",
            "POSTGRES://h/d",
        ] {
            assert_eq!(Target::parse(url), Target::Postgres(url.to_owned()));
        }
        for path in [
            "looplight.db",
            "/var/lib/site.db",
            "postgres.db",
            "postgres:/x",
        ] {
            assert_eq!(Target::parse(path), Target::Sqlite(PathBuf::from(path)));
        }
    }

    #[test]
    fn reads_see_what_the_writer_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.db");
        let db = Db::open(&Target::Sqlite(path), |_| Ok(())).unwrap();
        let (done, committed) = mpsc::channel();
        db.write(Box::new(move |store| {
            store.unwrap().create_user("zoe", "hash").unwrap().unwrap();
            Ok(Box::new(move |ok| done.send(ok).unwrap()))
        }));
        assert_eq!(committed.recv_timeout(Duration::from_secs(5)), Ok(true));
        let reader = db.clone();
        let exists = thread::spawn(move || reader.read(|store| store.username_exists("zoe")))
            .join()
            .unwrap();
        assert!(matches!(exists, Ok(true)), "{exists:?}");
        // A reader cannot write.
        let refused = db.read(|store| store.create_user("amy", "hash"));
        assert!(refused.is_err(), "{refused:?}");
    }
}
