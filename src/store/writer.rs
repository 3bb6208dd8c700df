//! The writer thread: the one read-write connection, and group commit.
//!
//! Every write the API makes is a [`WriteTask`] sent here. The thread:
//! 1. waits for a task, then takes every task already queued behind it (at most
//!    [`MAX_GROUP`]): under load, many writes share one transaction and one WAL append;
//! 2. opens one `BEGIN IMMEDIATE` transaction for the group;
//! 3. runs each task in a savepoint of its own: a task that fails (or panics) rolls back its
//!    savepoint, and only its own writes are undone;
//! 4. commits, then calls each task's [`AfterCommit`] with whether the group committed — only
//!    then may a client hear that its write happened, or others see it published. A failed
//!    commit reports `false` to everyone: nothing is half-written.
//!
//! A task dropped unrun (the transaction could not begin) drops the responder it captured,
//! which answers 500 (see `jobs`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::time::Instant;

use super::sqlite::Sqlite;
use super::{Error, Store};
use crate::metrics::PROCESS;

/// Most writes committed in one transaction.
pub const MAX_GROUP: usize = 64;

/// A write: runs inside a transaction (on the writer thread, in the group's, for SQLite).
/// `Ok` keeps its changes, `Err` undoes them; either way it says what to do once the
/// transaction's fate is known. It is given the error instead of a store when the database
/// cannot be reached, so that it can answer with it.
pub type WriteTask =
    Box<dyn FnOnce(Result<&mut dyn Store, Error>) -> Result<AfterCommit, AfterCommit> + Send>;

/// What a write does after the commit (answer its client, publish), told whether the group
/// was committed.
pub type AfterCommit = Box<dyn FnOnce(bool) + Send>;

/// Runs the writer until every sender of `tasks` is gone. `commits` counts the groups
/// committed, each before any of its tasks is told: a reader that keeps a snapshot compares
/// it to see whether there is anything newer (see `db::Db::sharing_snapshot`).
pub fn run(store: &mut Sqlite, tasks: &Receiver<WriteTask>, commits: &AtomicU64) {
    while let Ok(first) = tasks.recv() {
        let mut group = vec![first];
        group.extend(tasks.try_iter().take(MAX_GROUP - 1));
        commit_group(store, group, commits);
    }
}

/// Steps 2–4 for one group.
fn commit_group(store: &mut Sqlite, group: Vec<WriteTask>, commits: &AtomicU64) {
    let started = Instant::now();
    if store.conn.execute_batch("BEGIN IMMEDIATE").is_err() {
        return; // Dropped unrun: each task's responder answers 500.
    }
    let mut after_commit = Vec::with_capacity(group.len());
    for task in group {
        if store.conn.execute_batch("SAVEPOINT task").is_err() {
            continue;
        }
        match catch_unwind(AssertUnwindSafe(|| task(Ok(&mut *store)))) {
            Ok(Ok(after)) => {
                if store.conn.execute_batch("RELEASE task").is_ok() {
                    after_commit.push(after);
                } else {
                    store.undo_savepoint("task");
                }
            }
            Ok(Err(after)) => {
                store.undo_savepoint("task");
                after_commit.push(after);
            }
            // The task's captured values (its responder) were dropped while unwinding.
            Err(_) => store.undo_savepoint("task"),
        }
    }
    let committed = store.conn.execute_batch("COMMIT").is_ok();
    if committed {
        commits.fetch_add(1, Ordering::Release);
    } else {
        let _ = store.conn.execute_batch("ROLLBACK");
    }
    PROCESS.db_write_seconds.observe(started.elapsed());
    for after in after_commit {
        after(committed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};

    /// A task that creates user `name` and records, after the commit, what happened.
    fn create(name: &'static str, log: &Arc<Mutex<Vec<String>>>) -> WriteTask {
        let log = Arc::clone(log);
        Box::new(move |store: Result<&mut dyn Store, Error>| {
            let created = matches!(
                store.map(|store| store.create_user(name, "hash")),
                Ok(Ok(Ok(_)))
            );
            let after: AfterCommit = Box::new(move |committed| {
                let what = if created { "created" } else { "refused" };
                log.lock()
                    .unwrap()
                    .push(format!("{name} {what}, committed={committed}"));
            });
            if created { Ok(after) } else { Err(after) }
        })
    }

    #[test]
    fn a_group_commits_together_and_a_failed_write_undoes_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let mut store = Sqlite::open(&path).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let failing: WriteTask = Box::new(|store: Result<&mut dyn Store, Error>| {
            // Writes, then fails: its write must be undone, the others kept.
            let _ = store.map(|store| store.create_user("undone", "hash"));
            Err(Box::new(|_| {}))
        });
        let panicking: WriteTask = Box::new(|store: Result<&mut dyn Store, Error>| {
            let _ = store.map(|store| store.create_user("also_undone", "hash"));
            panic!("a bug in one write");
        });
        let (sender, receiver) = mpsc::channel();
        for task in [
            create("ann", &log),
            failing,
            panicking,
            create("ann", &log), // taken by the first: fails alone
            create("bob", &log),
        ] {
            sender.send(task).unwrap();
        }
        drop(sender);
        let commits = AtomicU64::new(0);
        run(&mut store, &receiver, &commits);
        assert_eq!(
            commits.load(Ordering::Acquire),
            1,
            "one group, one commit counted"
        );
        assert_eq!(
            *log.lock().unwrap(),
            [
                "ann created, committed=true",
                "ann refused, committed=true",
                "bob created, committed=true"
            ]
        );
        let mut reader = Sqlite::open_read_only(&path).unwrap();
        for (name, exists) in [
            ("ann", true),
            ("bob", true),
            ("undone", false),
            ("also_undone", false),
        ] {
            assert_eq!(reader.username_exists(name).unwrap(), exists, "{name}");
        }
    }
}
