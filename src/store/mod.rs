//! The data the API keeps — users, sessions, posts and their search, chat messages, failed
//! logins — behind one interface ([`Store`]) with two backends, the only code that writes SQL:
//!
//! - **SQLite** (`sqlite`, the default): one local file, nothing to install. Reads run on the
//!   calling thread's own read-only connection; writes go to one writer thread that commits
//!   them in groups (`writer`). Failed logins are counted in memory (`throttle`): one process
//!   owns the file.
//! - **PostgreSQL** (`postgres`, `--db postgres://…`): shared by identical instances behind a
//!   balancer. Every statement is a network round trip, so none runs on the event loop; reads
//!   and writes take a connection from a bounded pool on the helper thread that asks. Failed
//!   logins are rows, counted by every instance; chat messages reach the other instances
//!   through LISTEN/NOTIFY (`listener`).
//!
//! Handlers see [`Db`] and `&mut dyn Store` only and never know which backend they have. A
//! backend that cannot be reached reports [`Error::Unavailable`], which the API answers with
//! 503 and `Retry-After`.

pub mod db;
pub mod postgres;
pub mod sqlite;
mod throttle;
mod writer;

pub use db::{Db, Target};
pub use writer::{AfterCommit, WriteTask};

use std::fmt;

use serde::Serialize;

/// A user as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
}

/// What login needs to check a password.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub user: User,
    /// PHC string (`$argon2id$…`).
    pub password_hash: String,
}

/// A blog post, serialized exactly as the API contract's Post: owned, or (`Post<&str>`)
/// borrowing the row it was read from, to be encoded without copying its text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Post<Text = String> {
    pub id: i64,
    pub title: Text,
    pub body: Text,
    pub author: Text,
    pub created_at: Text,
    pub updated_at: Text,
}

impl Post {
    /// The post as borrowed text.
    pub fn as_borrowed(&self) -> Post<&str> {
        Post {
            id: self.id,
            title: &self.title,
            body: &self.body,
            author: &self.author,
            created_at: &self.created_at,
            updated_at: &self.updated_at,
        }
    }
}

impl Post<&str> {
    /// The post with its text copied out of the row.
    pub fn to_owned(&self) -> Post {
        Post {
            id: self.id,
            title: self.title.to_owned(),
            body: self.body.to_owned(),
            author: self.author.to_owned(),
            created_at: self.created_at.to_owned(),
            updated_at: self.updated_at.to_owned(),
        }
    }
}

/// One full-text search result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SearchHit {
    pub id: i64,
    pub title: String,
    pub snippet: String,
}

/// A chat message, serialized exactly as the chat contract's Message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Message {
    pub id: i64,
    pub user: String,
    pub text: String,
    pub sent_at: String,
}

/// Creating a user whose name is taken.
#[derive(Debug, PartialEq, Eq)]
pub struct UsernameTaken;

/// Every query the API makes, on one connection (inside the writer's transaction, for a
/// write). Timestamps are UTC, formatted `YYYY-MM-DDTHH:MM:SSZ` by the database.
pub trait Store {
    /// Creates a user; `Ok(Err(UsernameTaken))` if the name is taken (case-insensitively).
    fn create_user(
        &mut self,
        username: &str,
        password_hash: &str,
    ) -> Result<Result<User, UsernameTaken>, Error>;
    /// Whether `username` is taken (case-insensitively).
    fn username_exists(&mut self, username: &str) -> Result<bool, Error>;
    fn credentials(&mut self, username: &str) -> Result<Option<Credentials>, Error>;
    /// Finds or creates a user that cannot log in (its hash matches no password).
    fn system_user(&mut self, username: &str) -> Result<User, Error>;

    /// Stores a session (only the token's hash is kept) valid for `ttl_secs`, and drops
    /// expired ones.
    fn create_session(
        &mut self,
        user_id: i64,
        token_hash: &[u8],
        ttl_secs: u64,
    ) -> Result<(), Error>;
    /// The user of an unexpired session.
    fn session_user(&mut self, token_hash: &[u8]) -> Result<Option<User>, Error>;
    fn delete_session(&mut self, token_hash: &[u8]) -> Result<(), Error>;

    /// One page of posts, newest first, and the number of all posts.
    fn list_posts(&mut self, limit: u32, offset: u64) -> Result<(Vec<Post>, u64), Error>;
    /// Hands post `id` to `read` as it lies in the row, without copying it (the hot
    /// `GET /api/posts/:id` encodes it straight into the response); false if there is none.
    fn read_post(&mut self, id: i64, read: &mut dyn FnMut(&Post<&str>)) -> Result<bool, Error>;
    /// Post `id`, copied out.
    fn post(&mut self, id: i64) -> Result<Option<Post>, Error> {
        let mut post = None;
        self.read_post(id, &mut |found| post = Some(found.to_owned()))?;
        Ok(post)
    }
    /// The author's user id of post `id`.
    fn post_author(&mut self, id: i64) -> Result<Option<i64>, Error>;
    fn create_post(&mut self, author_id: i64, title: &str, body: &str) -> Result<Post, Error>;
    /// Replaces title and body of post `id`; `None` if it does not exist.
    fn update_post(&mut self, id: i64, title: &str, body: &str) -> Result<Option<Post>, Error>;
    /// Deletes post `id`; false if it did not exist.
    fn delete_post(&mut self, id: i64) -> Result<bool, Error>;
    /// Inserts `posts` (title, body) by `author_id`, all or none.
    fn insert_posts(&mut self, author_id: i64, posts: &[(&str, &str)]) -> Result<(), Error>;
    /// Posts containing every one of `words` (letters and digits only), best first, with a
    /// plain-text snippet of the body (the title is shown next to it anyway).
    fn search(&mut self, words: &[&str], limit: u32) -> Result<Vec<SearchHit>, Error>;

    fn insert_message(&mut self, user_id: i64, text: &str) -> Result<Message, Error>;
    /// Up to `limit` messages with an id above `after`, oldest first.
    fn messages_after(&mut self, after: i64, limit: u32) -> Result<Vec<Message>, Error>;
    /// The latest `limit` messages, oldest first.
    fn recent_messages(&mut self, limit: u32) -> Result<Vec<Message>, Error>;
}

/// Why a query failed.
#[derive(Debug)]
pub enum Error {
    Sqlite(rusqlite::Error),
    Postgres(::postgres::Error),
    /// The database cannot be reached (no connection from the pool in time, or it broke).
    Unavailable(String),
    /// A query returned something the code does not expect (a bug, or a changed schema).
    Unexpected(&'static str),
}

impl Error {
    /// Whether the database could not be reached (rather than refusing a query).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Unavailable(_) => true,
            // No SQLSTATE: the failure was the connection's, not the statement's.
            Error::Postgres(error) => error.is_closed() || error.code().is_none(),
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sqlite(error) => write!(f, "SQLite: {error}"),
            // The server's own words ("db error" alone says nothing).
            Error::Postgres(error) => match error.as_db_error() {
                Some(db_error) => write!(f, "PostgreSQL: {db_error}"),
                None => write!(f, "PostgreSQL: {error}"),
            },
            Error::Unavailable(why) => write!(f, "database unavailable: {why}"),
            Error::Unexpected(what) => write!(f, "unexpected result: {what}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(error: rusqlite::Error) -> Self {
        Error::Sqlite(error)
    }
}

impl From<::postgres::Error> for Error {
    fn from(error: ::postgres::Error) -> Self {
        Error::Postgres(error)
    }
}
