//! The PostgreSQL backend: schema, migrations and every query on a server that several
//! looplight instances share.
//!
//! - **Connections**: a bounded pool (r2d2), taken by the helper thread that runs the query,
//!   never by the event loop. A broken connection is replaced on checkout, so the pool recovers
//!   by itself when the server comes back; until then, taking one fails after
//!   [`CONNECT_TIMEOUT`] with [`Error::Unavailable`] (the API's 503).
//! - **Reads** are single statements on a pooled connection (a page and its total come from
//!   one statement, so they agree), sent with their parameter types (`query_typed`): one
//!   round trip each, with no separate prepare; **writes** run in a transaction of their own, answered
//!   after the commit.
//! - **Migrations** are numbered scripts tracked in `looplight_schema`, applied at start in
//!   one transaction under an advisory lock: two instances starting at once apply each once.
//! - **Search**: a generated `tsvector` (titles weighted above bodies) with a GIN index,
//!   matched by `plainto_tsquery` (the user's words are a parameter, never query syntax),
//!   ranked by `ts_rank`, snippets by `ts_headline` without markup.
//! - **Chat across instances**: inserting a message takes a transaction-level advisory lock,
//!   so ids commit in id order, and notifies the channel `looplight_chat`. Every instance
//!   keeps one connection listening (on a thread of its own, [`PgPool::watch_messages`]); on a
//!   notification it reads the messages after the last one it delivered: each message reaches
//!   each instance once, in id order, even after the listener had to reconnect.
//! - **Failed logins** are rows, so the throttle counts failures from every instance.
//! - **U+0000**, which PostgreSQL's text cannot hold, is escaped in what users write (see
//!   [`to_text`]): titles, bodies and messages come back exactly as sent.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::Type;
use postgres::{GenericClient, NoTls, Row};
use r2d2_postgres::PostgresConnectionManager;

use super::throttle::{FAILURE_WINDOW, MAX_FAILURES};
use super::{Credentials, Error, Message, Post, SearchHit, Store, User, UsernameTaken, WriteTask};

/// Most connections one instance holds.
pub const POOL_SIZE: u32 = 8;
/// How long to wait for a connection (new or from the pool) before answering 503.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the listener waits before connecting again after losing its connection.
const LISTENER_RETRY: Duration = Duration::from_secs(1);
/// Advisory lock keys: migrations, and the order of chat messages.
const MIGRATION_LOCK: i64 = 0x6c6f_6f70_6c69_0001;
const CHAT_LOCK: i64 = 0x6c6f_6f70_6c69_0002;
/// The channel every instance listens on for new chat messages.
const CHAT_CHANNEL: &str = "looplight_chat";
/// Messages read per query while catching up.
const CATCH_UP_BATCH: u32 = 1000;

/// Schema versions, in order; version n is the n-th script.
const MIGRATIONS: &[&str] = &[
    // 1: users, sessions, posts and their search, the chat room, failed logins.
    r#"CREATE FUNCTION looplight_now() RETURNS text LANGUAGE sql STABLE
        AS $$ SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') $$;
    CREATE TABLE users (
        id BIGSERIAL PRIMARY KEY,
        username TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT looplight_now()
    );
    CREATE UNIQUE INDEX users_by_name ON users (lower(username));
    CREATE TABLE sessions (
        token_hash BYTEA PRIMARY KEY,
        user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        expires_at BIGINT NOT NULL
    );
    CREATE INDEX sessions_by_expiry ON sessions (expires_at);
    CREATE TABLE posts (
        id BIGSERIAL PRIMARY KEY,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        author_id BIGINT NOT NULL REFERENCES users(id),
        created_at TEXT NOT NULL DEFAULT looplight_now(),
        updated_at TEXT NOT NULL DEFAULT looplight_now(),
        search TSVECTOR GENERATED ALWAYS AS (
            setweight(to_tsvector('simple', title), 'A') ||
            setweight(to_tsvector('simple', body), 'B')
        ) STORED
    );
    CREATE INDEX posts_search ON posts USING GIN (search);
    CREATE TABLE messages (
        id BIGSERIAL PRIMARY KEY,
        user_id BIGINT NOT NULL REFERENCES users(id),
        text TEXT NOT NULL,
        sent_at TEXT NOT NULL DEFAULT looplight_now()
    );
    CREATE TABLE login_failures (
        username TEXT NOT NULL,
        failed_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX login_failures_by_name ON login_failures (username, failed_at);"#,
];

type Manager = PostgresConnectionManager<NoTls>;

/// The pool of connections to one PostgreSQL database: cheap to clone.
#[derive(Clone)]
pub struct PgPool {
    pool: r2d2::Pool<Manager>,
    /// For the listener's own connection.
    config: Arc<postgres::Config>,
}

impl fmt::Debug for PgPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgPool")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .finish_non_exhaustive()
    }
}

impl PgPool {
    /// Connects to the database at `url` and brings its schema up to date.
    pub fn open(url: &str) -> Result<PgPool, Error> {
        let mut config: postgres::Config = url.parse()?;
        config.connect_timeout(CONNECT_TIMEOUT);
        config.application_name("looplight");
        let manager = PostgresConnectionManager::new(config.clone(), NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(0))
            .connection_timeout(CONNECT_TIMEOUT)
            .build(manager)
            .map_err(|error| Error::Unavailable(error.to_string()))?;
        let pg = PgPool {
            pool,
            config: Arc::new(config),
        };
        pg.migrate()?;
        Ok(pg)
    }

    fn connection(&self) -> Result<r2d2::PooledConnection<Manager>, Error> {
        self.pool
            .get()
            .map_err(|error| Error::Unavailable(error.to_string()))
    }

    /// Applies the migrations the database has not seen yet, under an advisory lock.
    fn migrate(&self) -> Result<(), Error> {
        let mut conn = self.connection()?;
        let mut tx = conn.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS looplight_schema (version INT NOT NULL)")?;
        let applied: i64 = tx
            .query_one("SELECT count(*) FROM looplight_schema", &[])?
            .get(0);
        let applied = usize::try_from(applied).unwrap_or(0);
        for (version, script) in (1i32..).zip(MIGRATIONS).skip(applied) {
            tx.batch_execute(script)?;
            tx.execute(
                "INSERT INTO looplight_schema (version) VALUES ($1)",
                &[&version],
            )?;
        }
        Ok(tx.commit()?)
    }

    /// Runs `work` on a pooled connection, each statement on its own: a read that needs one
    /// snapshot makes it one statement (see `list_posts`). No BEGIN and COMMIT: a lookup is
    /// one round trip, not three.
    pub fn read<R>(
        &self,
        work: impl FnOnce(&mut dyn Store) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let mut conn = self.connection()?;
        work(&mut Pg { client: &mut *conn })
    }

    /// Runs `work` in a transaction, committed if it succeeds (preparing the database at
    /// start: seeding).
    pub fn write_now<R>(
        &self,
        work: impl FnOnce(&mut dyn Store) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let mut conn = self.connection()?;
        let mut tx = conn.transaction()?;
        let result = work(&mut Pg { client: &mut tx })?;
        tx.commit()?;
        Ok(result)
    }

    /// Runs `task` in a transaction of its own and tells it whether it committed. Without a
    /// connection the task runs against none, so that it answers 503 itself.
    pub fn write(&self, task: WriteTask) {
        let mut conn = match self.connection() {
            Ok(conn) => conn,
            Err(error) => return run_unreachable(task, error),
        };
        let mut tx = match conn.transaction() {
            Ok(tx) => tx,
            Err(error) => return run_unreachable(task, error.into()),
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            task(Ok(&mut Pg { client: &mut tx }))
        }));
        match outcome {
            Ok(Ok(after)) => {
                let committed = tx.commit().is_ok();
                after(committed);
            }
            Ok(Err(after)) => {
                let _ = tx.rollback();
                after(false);
            }
            // The task's responder was dropped while unwinding (a 500); the transaction rolls
            // back as it is dropped.
            Err(_) => {}
        }
    }

    /// `Ok(Err(retry_after))` when `username` has had [`MAX_FAILURES`] failed logins within
    /// the last [`FAILURE_WINDOW`], on any instance.
    pub fn login_allowed(&self, username: &str) -> Result<Result<(), Duration>, Error> {
        let mut conn = self.connection()?;
        let window = FAILURE_WINDOW.as_secs_f64();
        let row = conn.query_one(
            "SELECT count(*), extract(epoch FROM min(failed_at) + make_interval(secs => $2)
                                                 - now())::float8
             FROM login_failures
             WHERE username = $1 AND failed_at > now() - make_interval(secs => $2)",
            &[&username, &window],
        )?;
        let failures: i64 = row.get(0);
        let wait: Option<f64> = row.get(1);
        if usize::try_from(failures).unwrap_or(usize::MAX) < MAX_FAILURES {
            return Ok(Ok(()));
        }
        let wait = wait.unwrap_or(0.0).clamp(0.0, window).ceil();
        Ok(Err(Duration::from_secs_f64(wait)))
    }

    /// Counts a failed login for `username` (and forgets its failures older than the window).
    pub fn login_failed(&self, username: &str) -> Result<(), Error> {
        let mut conn = self.connection()?;
        let window = FAILURE_WINDOW.as_secs_f64();
        conn.execute(
            "DELETE FROM login_failures
             WHERE username = $1 AND failed_at <= now() - make_interval(secs => $2)",
            &[&username, &window],
        )?;
        conn.execute(
            "INSERT INTO login_failures (username) VALUES ($1)",
            &[&username],
        )?;
        Ok(())
    }

    /// Forgets the failed logins of `username`.
    pub fn login_succeeded(&self, username: &str) -> Result<(), Error> {
        let mut conn = self.connection()?;
        conn.execute(
            "DELETE FROM login_failures WHERE username = $1",
            &[&username],
        )?;
        Ok(())
    }

    /// Whether the server answers now.
    pub fn is_reachable(&self) -> bool {
        self.connection()
            .and_then(|mut conn| Ok(conn.simple_query("SELECT 1")?))
            .is_ok()
    }

    /// Calls `deliver` with every chat message committed after now, by any instance, in id
    /// order and each once, from a thread that listens on [`CHAT_CHANNEL`].
    pub fn watch_messages(
        &self,
        mut deliver: impl FnMut(Vec<Message>) + Send + 'static,
    ) -> Result<(), Error> {
        let mut last =
            self.read(|store| Ok(store.recent_messages(1)?.first().map_or(0, |m| m.id)))?;
        let config = Arc::clone(&self.config);
        thread::Builder::new()
            .name("looplight-listener".to_owned())
            .spawn(move || {
                loop {
                    // Returns only when the connection fails; the next one catches up from
                    // `last`, so nothing committed meanwhile is lost.
                    let _ = listen(&config, &mut last, &mut deliver);
                    thread::sleep(LISTENER_RETRY);
                }
            })
            .map_err(|error| Error::Unavailable(error.to_string()))?;
        Ok(())
    }
}

/// Runs `task` for a database that cannot be reached: it sees the error and answers with it.
fn run_unreachable(task: WriteTask, error: Error) {
    match task(Err(error)) {
        Ok(after) | Err(after) => after(false),
    }
}

/// Listens on [`CHAT_CHANNEL`] and delivers messages after `last` as they are committed.
fn listen(
    config: &postgres::Config,
    last: &mut i64,
    deliver: &mut impl FnMut(Vec<Message>),
) -> Result<(), Error> {
    let mut client = config.connect(NoTls)?;
    client.batch_execute(&format!("LISTEN {CHAT_CHANNEL}"))?;
    loop {
        // Whatever was committed before (or while) we started listening.
        loop {
            let batch = Pg {
                client: &mut client,
            }
            .messages_after(*last, CATCH_UP_BATCH)?;
            let Some(newest) = batch.last() else {
                break;
            };
            *last = newest.id;
            deliver(batch);
        }
        // Wait for the next notification, then take any others already here: one read
        // catches up on all of them.
        let mut notifications = client.notifications();
        if notifications.blocking_iter().next()?.is_none() {
            return Err(Error::Unavailable(
                "the listening connection closed".to_owned(),
            ));
        }
        while notifications.iter().next()?.is_some() {}
    }
}

/// Queries on one PostgreSQL connection or transaction.
struct Pg<'a, C: GenericClient> {
    client: &'a mut C,
}

const POST_SELECT: &str = "SELECT p.id, p.title, p.body, u.username, p.created_at, p.updated_at
     FROM posts p JOIN users u ON u.id = p.author_id";
const MESSAGE_SELECT: &str =
    "SELECT m.id, u.username, m.text, m.sent_at FROM messages m JOIN users u ON u.id = m.user_id";

impl<C: GenericClient> Store for Pg<'_, C> {
    fn create_user(
        &mut self,
        username: &str,
        password_hash: &str,
    ) -> Result<Result<User, UsernameTaken>, Error> {
        let inserted = self.client.query_opt(
            "INSERT INTO users (username, password_hash) VALUES ($1, $2)
             ON CONFLICT DO NOTHING RETURNING id",
            &[&username, &password_hash],
        )?;
        Ok(match inserted {
            Some(row) => Ok(User {
                id: row.get(0),
                username: username.to_owned(),
            }),
            None => Err(UsernameTaken),
        })
    }

    fn username_exists(&mut self, username: &str) -> Result<bool, Error> {
        let row = self.client.query_typed_opt(
            "SELECT 1 FROM users WHERE lower(username) = lower($1)",
            &[(&username, Type::TEXT)],
        )?;
        Ok(row.is_some())
    }

    fn credentials(&mut self, username: &str) -> Result<Option<Credentials>, Error> {
        let row = self.client.query_typed_opt(
            "SELECT id, username, password_hash FROM users WHERE lower(username) = lower($1)",
            &[(&username, Type::TEXT)],
        )?;
        Ok(row.map(|row| Credentials {
            user: User {
                id: row.get(0),
                username: row.get(1),
            },
            password_hash: row.get(2),
        }))
    }

    fn system_user(&mut self, username: &str) -> Result<User, Error> {
        self.client.execute(
            "INSERT INTO users (username, password_hash) VALUES ($1, '!') ON CONFLICT DO NOTHING",
            &[&username],
        )?;
        let row = self.client.query_one(
            "SELECT id, username FROM users WHERE lower(username) = lower($1)",
            &[&username],
        )?;
        Ok(User {
            id: row.get(0),
            username: row.get(1),
        })
    }

    fn create_session(
        &mut self,
        user_id: i64,
        token_hash: &[u8],
        ttl_secs: u64,
    ) -> Result<(), Error> {
        // Far beyond any real TTL, and far from overflowing BIGINT when added to now.
        let ttl = i64::try_from(ttl_secs)
            .unwrap_or(i64::MAX)
            .min(i64::MAX / 2);
        self.client.execute(
            "DELETE FROM sessions WHERE expires_at <= extract(epoch FROM now())::bigint",
            &[],
        )?;
        self.client.execute(
            "INSERT INTO sessions (token_hash, user_id, expires_at)
             VALUES ($1, $2, extract(epoch FROM now())::bigint + $3)",
            &[&token_hash, &user_id, &ttl],
        )?;
        Ok(())
    }

    fn session_user(&mut self, token_hash: &[u8]) -> Result<Option<User>, Error> {
        let row = self.client.query_typed_opt(
            "SELECT u.id, u.username FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1 AND s.expires_at > extract(epoch FROM now())::bigint",
            &[(&token_hash, Type::BYTEA)],
        )?;
        Ok(row.map(|row| User {
            id: row.get(0),
            username: row.get(1),
        }))
    }

    fn delete_session(&mut self, token_hash: &[u8]) -> Result<(), Error> {
        self.client
            .execute("DELETE FROM sessions WHERE token_hash = $1", &[&token_hash])?;
        Ok(())
    }

    fn list_posts(&mut self, limit: u32, offset: u64) -> Result<(Vec<Post>, u64), Error> {
        // The page and the total in one statement: one snapshot, one round trip.
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let rows = self.client.query_typed(
            "SELECT p.id, p.title, p.body, u.username, p.created_at, p.updated_at,
                    (SELECT count(*) FROM posts)
             FROM posts p JOIN users u ON u.id = p.author_id
             ORDER BY p.id DESC LIMIT $1 OFFSET $2",
            &[(&i64::from(limit), Type::INT8), (&offset, Type::INT8)],
        )?;
        let total: i64 = match rows.first() {
            Some(row) => row.get(6),
            // Past the last page: no row carries the total.
            None => self
                .client
                .query_one("SELECT count(*) FROM posts", &[])?
                .get(0),
        };
        let posts = rows.iter().map(post_from_row).collect();
        Ok((posts, u64::try_from(total).unwrap_or(0)))
    }

    fn read_post(&mut self, id: i64, read: &mut dyn FnMut(&Post<&str>)) -> Result<bool, Error> {
        // A round trip costs far more than copying the row: no borrowed path here.
        let post = self.post(id)?;
        if let Some(post) = &post {
            read(&post.as_borrowed());
        }
        Ok(post.is_some())
    }

    fn post(&mut self, id: i64) -> Result<Option<Post>, Error> {
        let row = self.client.query_typed_opt(
            &format!("{POST_SELECT} WHERE p.id = $1"),
            &[(&id, Type::INT8)],
        )?;
        Ok(row.as_ref().map(post_from_row))
    }

    fn post_author(&mut self, id: i64) -> Result<Option<i64>, Error> {
        let row = self.client.query_typed_opt(
            "SELECT author_id FROM posts WHERE id = $1",
            &[(&id, Type::INT8)],
        )?;
        Ok(row.map(|row| row.get(0)))
    }

    fn create_post(&mut self, author_id: i64, title: &str, body: &str) -> Result<Post, Error> {
        let id: i64 = self
            .client
            .query_one(
                "INSERT INTO posts (title, body, author_id) VALUES ($1, $2, $3) RETURNING id",
                &[&to_text(title), &to_text(body), &author_id],
            )?
            .get(0);
        self.post(id)?
            .ok_or(Error::Unexpected("the inserted post is missing"))
    }

    fn update_post(&mut self, id: i64, title: &str, body: &str) -> Result<Option<Post>, Error> {
        let changed = self.client.execute(
            "UPDATE posts SET title = $2, body = $3, updated_at = looplight_now() WHERE id = $1",
            &[&id, &to_text(title), &to_text(body)],
        )?;
        if changed == 0 {
            return Ok(None);
        }
        self.post(id)
    }

    fn delete_post(&mut self, id: i64) -> Result<bool, Error> {
        let deleted = self
            .client
            .execute("DELETE FROM posts WHERE id = $1", &[&id])?;
        Ok(deleted > 0)
    }

    fn insert_posts(&mut self, author_id: i64, posts: &[(&str, &str)]) -> Result<(), Error> {
        let insert = self
            .client
            .prepare("INSERT INTO posts (title, body, author_id) VALUES ($1, $2, $3)")?;
        for (title, body) in posts {
            self.client
                .execute(&insert, &[&to_text(title), &to_text(body), &author_id])?;
        }
        Ok(())
    }

    fn search(&mut self, words: &[&str], limit: u32) -> Result<Vec<SearchHit>, Error> {
        // plainto_tsquery ANDs the words and reads no operators: the text is only a value.
        let rows = self.client.query_typed(
            "SELECT p.id, p.title,
                    ts_headline('simple', p.body, q,
                        'StartSel=\"\", StopSel=\"\", MaxWords=16, MinWords=8, ShortWord=0,
                         MaxFragments=1, FragmentDelimiter=…')
             FROM posts p, plainto_tsquery('simple', $1) q
             WHERE p.search @@ q
             ORDER BY ts_rank(p.search, q) DESC, p.id
             LIMIT $2",
            &[
                (&words.join(" "), Type::TEXT),
                (&i64::from(limit), Type::INT8),
            ],
        )?;
        Ok(rows
            .iter()
            .map(|row| SearchHit {
                id: row.get(0),
                title: from_text(row.get(1)),
                snippet: from_text(row.get(2)),
            })
            .collect())
    }

    fn insert_message(&mut self, user_id: i64, text: &str) -> Result<Message, Error> {
        // One writer at a time: ids commit in id order, so a listener that has delivered
        // message n never sees a smaller id commit later.
        self.client
            .execute("SELECT pg_advisory_xact_lock($1)", &[&CHAT_LOCK])?;
        let id: i64 = self
            .client
            .query_one(
                "INSERT INTO messages (user_id, text) VALUES ($1, $2) RETURNING id",
                &[&user_id, &to_text(text)],
            )?
            .get(0);
        // Delivered to every listener when (and only if) the transaction commits.
        self.client.execute(
            "SELECT pg_notify($1, $2)",
            &[&CHAT_CHANNEL, &id.to_string()],
        )?;
        let row = self
            .client
            .query_one(&format!("{MESSAGE_SELECT} WHERE m.id = $1"), &[&id])?;
        Ok(message_from_row(&row))
    }

    fn messages_after(&mut self, after: i64, limit: u32) -> Result<Vec<Message>, Error> {
        let rows = self.client.query_typed(
            &format!("{MESSAGE_SELECT} WHERE m.id > $1 ORDER BY m.id LIMIT $2"),
            &[(&after, Type::INT8), (&i64::from(limit), Type::INT8)],
        )?;
        Ok(rows.iter().map(message_from_row).collect())
    }

    fn recent_messages(&mut self, limit: u32) -> Result<Vec<Message>, Error> {
        let rows = self.client.query_typed(
            &format!("{MESSAGE_SELECT} ORDER BY m.id DESC LIMIT $1"),
            &[(&i64::from(limit), Type::INT8)],
        )?;
        let mut messages: Vec<Message> = rows.iter().map(message_from_row).collect();
        messages.reverse();
        Ok(messages)
    }
}

/// PostgreSQL's `text` cannot hold U+0000, which the API stores like any other character.
/// Text from users goes in with NUL written as [`ESCAPE`] `0` and [`ESCAPE`] itself doubled,
/// and comes out decoded ([`from_text`]); text with neither (nearly all) is stored unchanged.
const ESCAPE: char = '\u{F8FF}';

fn to_text(text: &str) -> Cow<'_, str> {
    if !text.contains(['\0', ESCAPE]) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\0' => escaped.extend([ESCAPE, '0']),
            ESCAPE => escaped.extend([ESCAPE, ESCAPE]),
            c => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
}

/// The inverse of [`to_text`]; a lone [`ESCAPE`] (a snippet cut between the two) is kept.
fn from_text(text: String) -> String {
    if !text.contains(ESCAPE) {
        return text;
    }
    let mut decoded = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            (ESCAPE, Some('0')) => {
                chars.next();
                decoded.push('\0');
            }
            (ESCAPE, Some(&ESCAPE)) => {
                chars.next();
                decoded.push(ESCAPE);
            }
            (c, _) => decoded.push(c),
        }
    }
    decoded
}

fn post_from_row(row: &Row) -> Post {
    Post {
        id: row.get(0),
        title: from_text(row.get(1)),
        body: from_text(row.get(2)),
        author: row.get(3),
        created_at: row.get(4),
        updated_at: row.get(5),
    }
}

fn message_from_row(row: &Row) -> Message {
    Message {
        id: row.get(0),
        user: row.get(1),
        text: from_text(row.get(2)),
        sent_at: row.get(3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_without_nul_or_the_escape_is_stored_as_it_is_and_the_rest_round_trips() {
        assert!(matches!(
            to_text("plain, ünïcode \\ text"),
            Cow::Borrowed(_)
        ));
        for text in [
            "\0",
            "a\0b",
            "\u{F8FF}",
            "\u{F8FF}0",
            "\u{F8FF}\0\u{F8FF}\u{F8FF}",
            "0\0\0",
        ] {
            let stored = to_text(text).into_owned();
            assert!(!stored.contains('\0'), "{stored:?}");
            assert_eq!(from_text(stored), text);
        }
        // A snippet may end between the escape and what it escapes.
        assert_eq!(from_text("cut \u{F8FF}".to_owned()), "cut \u{F8FF}");
    }
}
