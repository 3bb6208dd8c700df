//! The SQLite backend: schema, migrations and every query on a local file.
//!
//! One `Sqlite` is one connection. Statements cost as much as the data they touch, and a write
//! may wait for the file's lock, so SQL stays off the event loop but for primary-key lookups.
//! How the API reaches the file (`db`):
//! - **reads** run on the helper threads, each with its own read-only connection. The file is
//!   in WAL mode, so readers never wait for the writer, nor it for them.
//! - **primary-key lookups** (one post, the session's user) run on the loop thread, on its own
//!   read-only connection: a few B-tree pages, ~10 us, cheaper than the hand-off (see `api`).
//! - **writes** go to one writer thread with the only read-write connection. SQLite lets one
//!   writer in at a time anyway; one thread holding the lock beats N threads fighting for it
//!   (and sleeping in `busy_timeout`). The writer commits whatever has queued up as one
//!   transaction (group commit, `writer`), each write in a savepoint of its own so that one
//!   failing write undoes only itself; answers go out only after the commit.
//! - `synchronous = NORMAL`: a commit is not fsynced; it survives a crash of the process at
//!   once, and a power loss once the WAL is checkpointed. Checkpoints (and their fsyncs) run on
//!   the writer thread, at a commit that fills the WAL: read-only connections never checkpoint.
//!
//! Migrations are numbered SQL scripts applied in order on open, in one transaction, tracked by
//! `PRAGMA user_version`. Every write that touches several rows is atomic (a savepoint).

use std::path::Path;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};

use super::{Credentials, Error, Message, Post, SearchHit, Store, User, UsernameTaken};

/// Schema versions, in order; the index + 1 is the `user_version` after applying it.
const MIGRATIONS: &[&str] = &[
    // 1: users, sessions, posts, and full-text search over posts.
    "CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
    );
    CREATE TABLE sessions (
        token_hash BLOB PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        expires_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX sessions_by_expiry ON sessions(expires_at);
    CREATE TABLE posts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        author_id INTEGER NOT NULL REFERENCES users(id),
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
    );
    CREATE VIRTUAL TABLE posts_fts USING fts5(
        title, body, content='posts', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER posts_fts_insert AFTER INSERT ON posts BEGIN
        INSERT INTO posts_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
    END;
    CREATE TRIGGER posts_fts_delete AFTER DELETE ON posts BEGIN
        INSERT INTO posts_fts(posts_fts, rowid, title, body)
            VALUES ('delete', old.id, old.title, old.body);
    END;
    CREATE TRIGGER posts_fts_update AFTER UPDATE OF title, body ON posts BEGIN
        INSERT INTO posts_fts(posts_fts, rowid, title, body)
            VALUES ('delete', old.id, old.title, old.body);
        INSERT INTO posts_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
    END;",
    // 2: the chat room.
    "CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id INTEGER NOT NULL REFERENCES users(id),
        text TEXT NOT NULL,
        sent_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
    );",
];

/// How long a connection waits for a lock another process holds (only the writer and
/// start-up write; readers wait only while a WAL file is being recovered).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of the database file a reader maps into memory (the file's size, up to this).
const READER_MMAP_BYTES: i64 = 256 * 1024 * 1024;

/// `SELECT` of a post's columns (as [`post_from_row`] reads them), to be completed by a
/// `WHERE` or `ORDER BY`: a macro, so that each statement is one literal (no `format!` per call).
macro_rules! select_posts {
    ($rest:literal) => {
        concat!(
            "SELECT p.id, p.title, p.body, u.username, p.created_at, p.updated_at
             FROM posts p JOIN users u ON u.id = p.author_id ",
            $rest
        )
    };
}

/// `SELECT` of a chat message's columns (as [`message_from_row`] reads them), to be completed.
macro_rules! select_messages {
    ($rest:literal) => {
        concat!(
            "SELECT m.id, u.username, m.text, m.sent_at FROM messages m JOIN users u ON u.id = m.user_id ",
            $rest
        )
    };
}

const POST_BY_ID: &str = select_posts!("WHERE p.id = ?1");
const SESSION_USER: &str =
    "SELECT u.id, u.username FROM sessions s JOIN users u ON u.id = s.user_id
                            WHERE s.token_hash = ?1 AND s.expires_at > unixepoch()";
const MESSAGES_AFTER: &str = select_messages!("WHERE m.id > ?1 ORDER BY m.id LIMIT ?2");

/// A connection to the database file.
pub struct Sqlite {
    pub(super) conn: Connection,
}

impl Sqlite {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date:
    /// the writer's connection (and the start-up code's, before it).
    pub fn open(path: impl AsRef<Path>) -> Result<Sqlite, Error> {
        let conn = Connection::open(path)?;
        configure(&conn)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let store = Sqlite { conn };
        store.migrate()?;
        Ok(store)
    }

    /// A read-only connection to an existing database (one per thread that reads: each helper,
    /// and each loop for its primary-key lookups).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Sqlite, Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        configure(&conn)?;
        // Pages are read straight from the OS page cache, shared by every reader, instead of
        // copied into a 2 MB cache per connection: searches over 20,000 posts went from
        // ~300 to ~520 per second (benches/load/api.sh, server on one core).
        conn.pragma_update(None, "mmap_size", READER_MMAP_BYTES)?;
        Ok(Sqlite { conn })
    }

    /// Runs `work` atomically: inside a savepoint, released if it succeeds and rolled back if
    /// it fails. Nests: inside the writer's group transaction, and as a transaction of its own
    /// outside one.
    pub fn atomically<R>(&self, work: impl FnOnce() -> Result<R, Error>) -> Result<R, Error> {
        self.conn.execute_batch("SAVEPOINT atomically")?;
        match work() {
            Ok(value) => {
                self.conn.execute_batch("RELEASE atomically")?;
                Ok(value)
            }
            Err(error) => {
                self.undo_savepoint("atomically");
                Err(error)
            }
        }
    }

    /// Rolls back to, and drops, the savepoint `name` (best effort: if even that fails, the
    /// enclosing transaction is rolled back by its owner).
    pub(super) fn undo_savepoint(&self, name: &str) {
        let _ = self
            .conn
            .execute_batch(&format!("ROLLBACK TO {name}; RELEASE {name}"));
    }

    /// Applies the migrations the file has not seen yet. The version is read inside an
    /// IMMEDIATE transaction, so two processes opening a new file at once cannot both apply
    /// the same migration.
    fn migrate(&self) -> Result<(), Error> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
        let applied = usize::try_from(version).unwrap_or(0);
        for (index, script) in (1i64..).zip(MIGRATIONS).skip(applied) {
            tx.execute_batch(script)?;
            tx.pragma_update(None, "user_version", index)?;
        }
        Ok(tx.commit()?)
    }
}

impl Store for Sqlite {
    // ---- users ------------------------------------------------------------------------

    fn create_user(
        &mut self,
        username: &str,
        password_hash: &str,
    ) -> Result<Result<User, UsernameTaken>, Error> {
        let inserted = self.conn.execute(
            "INSERT INTO users (username, password_hash) VALUES (?1, ?2)",
            params![username, password_hash],
        );
        match inserted {
            Ok(_) => Ok(Ok(User {
                id: self.conn.last_insert_rowid(),
                username: username.to_owned(),
            })),
            Err(rusqlite::Error::SqliteFailure(error, _))
                if error.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                Ok(Err(UsernameTaken))
            }
            Err(error) => Err(error.into()),
        }
    }

    fn username_exists(&mut self, username: &str) -> Result<bool, Error> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM users WHERE username = ?1")?
            .exists([username])?)
    }

    fn credentials(&mut self, username: &str) -> Result<Option<Credentials>, Error> {
        Ok(self
            .conn
            .prepare_cached("SELECT id, username, password_hash FROM users WHERE username = ?1")?
            .query_row([username], |row| {
                Ok(Credentials {
                    user: User {
                        id: row.get(0)?,
                        username: row.get(1)?,
                    },
                    password_hash: row.get(2)?,
                })
            })
            .optional()?)
    }

    fn system_user(&mut self, username: &str) -> Result<User, Error> {
        self.conn.execute(
            "INSERT INTO users (username, password_hash) VALUES (?1, '!') ON CONFLICT DO NOTHING",
            [username],
        )?;
        Ok(self.conn.query_row(
            "SELECT id, username FROM users WHERE username = ?1",
            [username],
            |row| {
                Ok(User {
                    id: row.get(0)?,
                    username: row.get(1)?,
                })
            },
        )?)
    }

    // ---- sessions -----------------------------------------------------------------------

    fn create_session(
        &mut self,
        user_id: i64,
        token_hash: &[u8],
        ttl_secs: u64,
    ) -> Result<(), Error> {
        self.atomically(|| {
            self.conn
                .prepare_cached("DELETE FROM sessions WHERE expires_at <= unixepoch()")?
                .execute([])?;
            self.conn
                .prepare_cached(
                    "INSERT INTO sessions (token_hash, user_id, expires_at)
                     VALUES (?1, ?2, unixepoch() + ?3)",
                )?
                .execute(params![
                    token_hash,
                    user_id,
                    i64::try_from(ttl_secs).unwrap_or(i64::MAX)
                ])?;
            Ok(())
        })
    }

    fn session_user(&mut self, token_hash: &[u8]) -> Result<Option<User>, Error> {
        Ok(self
            .conn
            .prepare_cached(SESSION_USER)?
            .query_row([token_hash], |row| {
                Ok(User {
                    id: row.get(0)?,
                    username: row.get(1)?,
                })
            })
            .optional()?)
    }

    fn delete_session(&mut self, token_hash: &[u8]) -> Result<(), Error> {
        self.conn
            .prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")?
            .execute([token_hash])?;
        Ok(())
    }

    // ---- posts --------------------------------------------------------------------------

    fn list_posts(&mut self, limit: u32, offset: u64) -> Result<(Vec<Post>, u64), Error> {
        let total: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM posts")?
            .query_row([], |row| row.get(0))?;
        let total = u64::try_from(total).unwrap_or(0);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let posts = self
            .conn
            .prepare_cached(select_posts!("ORDER BY p.id DESC LIMIT ?1 OFFSET ?2"))?
            .query_map(params![limit, offset], post_from_row)?
            .collect::<Result<_, _>>()?;
        Ok((posts, total))
    }

    fn read_post(&mut self, id: i64, read: &mut dyn FnMut(&Post<&str>)) -> Result<bool, Error> {
        Ok(self
            .conn
            .prepare_cached(POST_BY_ID)?
            .query_row([id], |row| {
                let text = |index| -> rusqlite::Result<&str> { Ok(row.get_ref(index)?.as_str()?) };
                read(&Post {
                    id: row.get(0)?,
                    title: text(1)?,
                    body: text(2)?,
                    author: text(3)?,
                    created_at: text(4)?,
                    updated_at: text(5)?,
                });
                Ok(())
            })
            .optional()?
            .is_some())
    }

    fn post_author(&mut self, id: i64) -> Result<Option<i64>, Error> {
        Ok(self
            .conn
            .prepare_cached("SELECT author_id FROM posts WHERE id = ?1")?
            .query_row([id], |row| row.get(0))
            .optional()?)
    }

    fn create_post(&mut self, author_id: i64, title: &str, body: &str) -> Result<Post, Error> {
        self.conn
            .prepare_cached("INSERT INTO posts (title, body, author_id) VALUES (?1, ?2, ?3)")?
            .execute(params![title, body, author_id])?;
        let id = self.conn.last_insert_rowid();
        self.post(id)?
            .ok_or(Error::Unexpected("the inserted post is missing"))
    }

    fn update_post(&mut self, id: i64, title: &str, body: &str) -> Result<Option<Post>, Error> {
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE posts SET title = ?2, body = ?3,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?1",
            )?
            .execute(params![id, title, body])?;
        if changed == 0 {
            return Ok(None);
        }
        self.post(id)
    }

    fn delete_post(&mut self, id: i64) -> Result<bool, Error> {
        let deleted = self
            .conn
            .prepare_cached("DELETE FROM posts WHERE id = ?1")?
            .execute([id])?;
        Ok(deleted > 0)
    }

    fn search(&mut self, words: &[&str], limit: u32) -> Result<Vec<SearchHit>, Error> {
        // Each word a quoted phrase, the phrases ANDed: nothing the user typed is FTS5 syntax.
        let match_expression = words
            .iter()
            .map(|word| format!("\"{word}\""))
            .collect::<Vec<_>>()
            .join(" ");
        Ok(self
            .conn
            .prepare_cached(
                "SELECT p.id, p.title, snippet(posts_fts, 1, '', '', '…', 16)
                 FROM posts_fts JOIN posts p ON p.id = posts_fts.rowid
                 WHERE posts_fts MATCH ?1 ORDER BY bm25(posts_fts, 2.0, 1.0) LIMIT ?2",
            )?
            .query_map(params![match_expression, limit], |row| {
                Ok(SearchHit {
                    id: row.get(0)?,
                    title: row.get(1)?,
                    snippet: row.get(2)?,
                })
            })?
            .collect::<Result<_, _>>()?)
    }

    fn insert_posts(&mut self, author_id: i64, posts: &[(&str, &str)]) -> Result<(), Error> {
        self.atomically(|| {
            let mut insert = self
                .conn
                .prepare_cached("INSERT INTO posts (title, body, author_id) VALUES (?1, ?2, ?3)")?;
            for (title, body) in posts {
                insert.execute(params![title, body, author_id])?;
            }
            Ok(())
        })
    }

    // ---- chat ---------------------------------------------------------------------------

    fn insert_message(&mut self, user_id: i64, text: &str) -> Result<Message, Error> {
        self.conn
            .prepare_cached("INSERT INTO messages (user_id, text) VALUES (?1, ?2)")?
            .execute(params![user_id, text])?;
        let id = self.conn.last_insert_rowid();
        Ok(self
            .conn
            .prepare_cached(select_messages!("WHERE m.id = ?1"))?
            .query_row([id], message_from_row)?)
    }

    fn messages_after(&mut self, after: i64, limit: u32) -> Result<Vec<Message>, Error> {
        Ok(self
            .conn
            .prepare_cached(MESSAGES_AFTER)?
            .query_map(params![after, limit], message_from_row)?
            .collect::<Result<_, _>>()?)
    }

    fn recent_messages(&mut self, limit: u32) -> Result<Vec<Message>, Error> {
        let mut messages: Vec<Message> = self
            .conn
            .prepare_cached(select_messages!("ORDER BY m.id DESC LIMIT ?1"))?
            .query_map([limit], message_from_row)?
            .collect::<Result<_, _>>()?;
        messages.reverse();
        Ok(messages)
    }
}

/// What every connection (the writer's, each reader's) is set to.
///
/// The query planner stability guarantee (QPSG) keeps each plan independent of the values
/// bound to it. Without it, SQLite (built with STAT4, as the bundled library is) marks a
/// parameter whose value a plan might use — `p.id = ?1` in a join, through constant
/// propagation — and recompiles the statement whenever a new value is bound: every call.
/// `GET /api/posts/:id` took 10.7 us in process, most of it re-compiling its SQL; 2.2 us
/// with the guarantee (benches/request_path). Our plans never depend on a value (primary
/// keys, unique indexes, FTS), so nothing is lost.
fn configure(conn: &Connection) -> Result<(), Error> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

fn message_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: row.get(0)?,
        user: row.get(1)?,
        text: row.get(2)?,
        sent_at: row.get(3)?,
    })
}

fn post_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Post> {
    Ok(Post {
        id: row.get(0)?,
        title: row.get(1)?,
        body: row.get(2)?,
        author: row.get(3)?,
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Sqlite) {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(dir.path().join("test.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn migrations_apply_once_and_data_survives_reopening() {
        let (dir, mut store) = store();
        let user = store.create_user("Alice", "hash").unwrap().unwrap();
        store.create_post(user.id, "t", "b").unwrap();
        drop(store);
        let mut store = Sqlite::open(dir.path().join("test.db")).unwrap();
        assert_eq!(store.list_posts(10, 0).unwrap().1, 1);
        assert_eq!(store.create_user("alice", "x").unwrap(), Err(UsernameTaken));
    }

    #[test]
    fn sessions_expire_and_can_be_deleted() {
        let (_dir, mut store) = store();
        let user = store.create_user("bob", "hash").unwrap().unwrap();
        store.create_session(user.id, b"token", 60).unwrap();
        assert_eq!(store.session_user(b"token").unwrap(), Some(user));
        store.delete_session(b"token").unwrap();
        assert_eq!(store.session_user(b"token").unwrap(), None);
        store.create_session(1, b"old", 0).unwrap();
        assert_eq!(store.session_user(b"old").unwrap(), None);
    }

    #[test]
    fn chat_messages_in_id_order_after_an_id_or_the_latest() {
        let (_dir, mut store) = store();
        let user = store.create_user("dave", "hash").unwrap().unwrap();
        for n in 1..=5 {
            store.insert_message(user.id, &format!("m{n}")).unwrap();
        }
        let texts =
            |messages: Vec<Message>| messages.into_iter().map(|m| m.text).collect::<Vec<_>>();
        assert_eq!(texts(store.messages_after(2, 2).unwrap()), ["m3", "m4"]);
        assert_eq!(texts(store.recent_messages(2).unwrap()), ["m4", "m5"]);
        assert_eq!(store.recent_messages(1).unwrap()[0].user, "dave");
    }

    #[test]
    fn search_follows_inserts_updates_and_deletes() {
        let (_dir, mut store) = store();
        let user = store.create_user("carol", "hash").unwrap().unwrap();
        let post = store
            .create_post(user.id, "Event loops", "mio and epoll")
            .unwrap();
        assert_eq!(store.search(&["epoll"], 10).unwrap().len(), 1);
        store.update_post(post.id, "Threads", "a pool").unwrap();
        assert!(store.search(&["epoll"], 10).unwrap().is_empty());
        assert_eq!(store.search(&["pool"], 10).unwrap()[0].id, post.id);
        assert!(store.delete_post(post.id).unwrap());
        assert!(store.search(&["pool"], 10).unwrap().is_empty());
    }

    #[test]
    fn sqlite_is_built_with_the_options_of_cargo_config() {
        // .cargo/config.toml's LIBSQLITE3_FLAGS: a renamed variable or a lost file would
        // silently bring back the page cache's first block and the memory statistics' mutex.
        let (_dir, store) = store();
        let mut statement = store.conn.prepare("PRAGMA compile_options").unwrap();
        let options: Vec<String> = statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let built_with = |option: &str| options.iter().any(|o| o == option);
        for wanted in [
            "DEFAULT_MEMSTATUS=0",
            "DEFAULT_PCACHE_INITSZ=0",
            "ENABLE_FTS5",
        ] {
            assert!(built_with(wanted), "{wanted} not in {options:?}");
        }
        for unwanted in [
            "ENABLE_FTS3",
            "ENABLE_RTREE",
            "ENABLE_DBSTAT_VTAB",
            "SOUNDEX",
        ] {
            assert!(!built_with(unwanted), "{unwanted} in {options:?}");
        }
    }

    #[test]
    fn hot_reads_are_compiled_once_whatever_their_parameters() {
        let (dir, mut writer) = store();
        let user = writer.create_user("erin", "hash").unwrap().unwrap();
        for n in 0..3 {
            writer.create_post(user.id, &format!("t{n}"), "b").unwrap();
            writer.insert_message(user.id, "hi").unwrap();
            writer.create_session(user.id, &[n], 60).unwrap();
        }
        let mut reader = Sqlite::open_read_only(dir.path().join("test.db")).unwrap();
        for store in [&mut writer, &mut reader] {
            for n in 1..=3 {
                assert_eq!(store.post(n).unwrap().unwrap().id, n);
                assert!(store.session_user(&[n as u8 - 1]).unwrap().is_some());
                assert_eq!(store.messages_after(n - 1, 1).unwrap()[0].id, n);
            }
            for sql in [POST_BY_ID, SESSION_USER, MESSAGES_AFTER] {
                let statement = store.conn.prepare_cached(sql).unwrap();
                let recompiled = statement.get_status(rusqlite::StatementStatus::RePrepare);
                assert_eq!(recompiled, 0, "re-prepared {recompiled} times: {sql}");
            }
        }
    }
}
