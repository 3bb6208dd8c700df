//! [`Db`]: the database as the API uses it, whichever backend holds the data.
//!
//! - SQLite: reads run on the calling thread's own read-only connection (a helper's, or the
//!   loop's for primary-key lookups, the only reads bounded enough for the loop); writes are
//!   queued for the writer thread (see `writer`) and answered after their group commits.
//! - PostgreSQL: reads and writes take a connection from the pool on the calling (helper)
//!   thread; a write is one transaction, answered after its commit.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
        /// Groups the writer has committed (see [`Db::sharing_snapshot`]).
        commits: Arc<AtomicU64>,
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
                pool.write_now(prepare)?;
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
            Backend::Sqlite { path, commits, .. } => read_sqlite(path, commits, work),
            Backend::Postgres(pool) => pool.read(work),
        }
    }

    /// Runs `work`, whose SQLite reads on this thread may share one read transaction (one
    /// snapshot) with the reads before and after it, until [`release_read_snapshot`] or
    /// until the writer commits anything newer: for the event loop's primary-key lookups.
    ///
    /// A read transaction of its own costs every lookup two `fcntl` calls (SQLite takes and
    /// drops its WAL read lock on the `-shm` file), sixteen times the network's syscalls on a
    /// pipelined load. Sharing one keeps what a client is told consistent: a write is counted
    /// as committed before anyone is answered for it, and a read that sees a newer count
    /// starts a new snapshot, so no client that was told of a write can read past it.
    pub fn sharing_snapshot<R>(&self, work: impl FnOnce() -> R) -> R {
        /// Puts the thread's mode back, also when `work` panics (the loop survives that).
        struct Restore(bool);
        impl Drop for Restore {
            fn drop(&mut self) {
                SHARE_SNAPSHOT.set(self.0);
            }
        }
        let _restore = Restore(SHARE_SNAPSHOT.replace(true));
        work()
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
    let commits = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&commits);
    thread::Builder::new()
        .name("looplight-writer".to_owned())
        .spawn(move || {
            let _ = rustix::process::setpriority_process(
                Some(rustix::thread::gettid()),
                WRITER_NICENESS,
            );
            writer::run(&mut store, &tasks, &counted);
        })?;
    Ok(Backend::Sqlite {
        path: Arc::new(path.to_owned()),
        writes,
        commits,
        throttle: LoginThrottle::default(),
    })
}

thread_local! {
    /// This thread's read-only connection, opened on first use.
    static READER: RefCell<Option<Reader>> = const { RefCell::new(None) };
    /// Whether this thread's reads may share a snapshot now (see [`Db::sharing_snapshot`]).
    static SHARE_SNAPSHOT: Cell<bool> = const { Cell::new(false) };
}

/// A thread's read-only connection to one database file.
struct Reader {
    path: PathBuf,
    store: Sqlite,
    /// While a shared read transaction is open: the writer's commit count when it began.
    snapshot: Option<u64>,
}

impl Reader {
    /// Ends the shared read transaction, if one is open.
    fn end_snapshot(&mut self) {
        if self.snapshot.take().is_some() && !self.store.conn.is_autocommit() {
            let _ = self.store.conn.execute_batch("COMMIT");
        }
    }
}

/// Ends this thread's shared read snapshot, if it has one: the event loop's at the end of
/// every tick, before it waits for events (an open read transaction would keep SQLite from
/// checkpointing the WAL past it).
pub fn release_read_snapshot() {
    READER.with(|cell| {
        if let Some(reader) = cell.borrow_mut().as_mut() {
            reader.end_snapshot();
        }
    });
}

/// Runs `work` with this thread's read-only connection to `path`: in a shared snapshot if
/// the caller asked for one ([`Db::sharing_snapshot`]) and nothing was committed since it
/// began, else in a transaction of its own.
fn read_sqlite<R>(
    path: &Path,
    commits: &AtomicU64,
    work: impl FnOnce(&mut dyn Store) -> Result<R, Error>,
) -> Result<R, Error> {
    READER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let open = matches!(&*slot, Some(reader) if reader.path == path);
        if !open {
            *slot = Some(Reader {
                path: path.to_path_buf(),
                store: Sqlite::open_read_only(path)?,
                snapshot: None,
            });
        }
        let Some(reader) = slot.as_mut() else {
            return Err(Error::Unexpected("no reader connection"));
        };
        let share = SHARE_SNAPSHOT.get();
        let committed = commits.load(Ordering::Acquire);
        if reader
            .snapshot
            .is_some_and(|began| !share || began != committed)
        {
            reader.end_snapshot();
        }
        if share && reader.snapshot.is_none() {
            // Deferred: the snapshot is taken by the first read, after the count was.
            reader.store.conn.execute_batch("BEGIN")?;
            reader.snapshot = Some(committed);
        }
        let result = work(&mut reader.store);
        if result.is_err() {
            reader.end_snapshot();
        }
        result
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

    /// Whether this thread's reader has a read transaction open.
    fn snapshot_open() -> bool {
        READER.with(|cell| {
            cell.borrow()
                .as_ref()
                .is_some_and(|reader| !reader.store.conn.is_autocommit())
        })
    }

    /// Runs `task` on the writer and waits until its group has committed.
    fn commit(db: &Db, task: impl FnOnce(&mut dyn Store) + Send + 'static) {
        let (done, committed) = mpsc::channel();
        db.write(Box::new(move |store| {
            task(store.unwrap());
            Ok(Box::new(move |ok| done.send(ok).unwrap()))
        }));
        assert_eq!(committed.recv_timeout(Duration::from_secs(5)), Ok(true));
    }

    #[test]
    fn a_shared_snapshot_lasts_until_a_commit_or_its_release() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&Target::Sqlite(dir.path().join("db.db")), |_| Ok(())).unwrap();
        let exists = |name: &'static str| {
            db.sharing_snapshot(|| db.read(|store| store.username_exists(name)))
                .unwrap()
        };
        assert!(!exists("zoe"));
        assert!(snapshot_open(), "the snapshot is kept for the next read");
        assert!(!exists("zoe"));
        assert!(snapshot_open());

        // A commit makes the next read start a snapshot that has it.
        commit(&db, |store| {
            store.create_user("zoe", "hash").unwrap().unwrap();
        });
        assert!(exists("zoe"), "a read after a commit sees it");

        // The end of the loop's tick ends the snapshot.
        release_read_snapshot();
        assert!(!snapshot_open());

        // A read outside `sharing_snapshot` ends one left open and keeps none.
        assert!(exists("zoe"));
        assert!(snapshot_open());
        assert!(db.read(|store| store.username_exists("zoe")).unwrap());
        assert!(!snapshot_open());
    }

    #[test]
    fn reads_see_what_the_writer_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.db");
        let db = Db::open(&Target::Sqlite(path), |_| Ok(())).unwrap();
        commit(&db, |store| {
            store.create_user("zoe", "hash").unwrap().unwrap();
        });
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
