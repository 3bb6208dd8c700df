//! [`Db`]: the database as the API uses it. Reads run on the calling thread's own read-only
//! connection: a helper's, or the loop's for primary-key lookups, the only reads bounded enough
//! for the loop (see `api`). Writes are queued for the writer thread (see `writer`) and
//! answered after their group commits.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Sender};
use std::thread;

use super::writer::{self, WriteTask};
use super::{Error, Store};

/// Scheduling niceness of the writer thread: below the loop's, like the helpers'.
const WRITER_NICENESS: i32 = 10;

/// A handle to one database file: cheap to clone, usable from any thread.
#[derive(Clone, Debug)]
pub struct Db {
    path: Arc<PathBuf>,
    writes: Sender<WriteTask>,
}

impl Db {
    /// Starts the writer thread with `store`, the read-write connection to the file at `path`
    /// (opened, migrated and seeded already). The thread ends once every `Db` is dropped.
    pub fn start(store: Store, path: &Path) -> std::io::Result<Db> {
        let (writes, tasks) = mpsc::channel::<WriteTask>();
        thread::Builder::new()
            .name("looplight-writer".to_owned())
            .spawn(move || {
                let _ = rustix::process::setpriority_process(
                    Some(rustix::thread::gettid()),
                    WRITER_NICENESS,
                );
                writer::run(&store, &tasks);
            })?;
        Ok(Db {
            path: Arc::new(path.to_owned()),
            writes,
        })
    }

    /// Runs `work` with this thread's read-only connection (opened on first use).
    pub fn read<R>(&self, work: impl FnOnce(&Store) -> Result<R, Error>) -> Result<R, Error> {
        thread_local! {
            static READER: RefCell<Option<(PathBuf, Store)>> = const { RefCell::new(None) };
        }
        READER.with(|cell| {
            let mut slot = cell.borrow_mut();
            let open = matches!(&*slot, Some((path, _)) if path == &*self.path);
            if !open {
                *slot = Some((self.path.to_path_buf(), Store::open_read_only(&*self.path)?));
            }
            match &*slot {
                Some((_, store)) => work(store),
                None => Err(Error::InvalidPath(self.path.to_path_buf())),
            }
        })
    }

    /// Queues a write for the writer thread. If the writer is gone (it never stops while a
    /// `Db` exists), the task is dropped, and with it the responder it holds (a 500).
    pub fn write(&self, task: WriteTask) {
        let _ = self.writes.send(task);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn reads_see_what_the_writer_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.db");
        let db = Db::start(Store::open(&path).unwrap(), &path).unwrap();
        let (done, committed) = mpsc::channel();
        db.write(Box::new(move |store: &Store| {
            store.create_user("zoe", "hash").unwrap().unwrap();
            Ok(Box::new(move |ok| done.send(ok).unwrap()))
        }));
        assert_eq!(
            committed.recv_timeout(std::time::Duration::from_secs(5)),
            Ok(true)
        );
        let reader = db.clone();
        let exists = thread::spawn(move || reader.read(|store| store.username_exists("zoe")))
            .join()
            .unwrap();
        assert_eq!(exists, Ok(true));
        // A reader cannot write.
        let refused = db.read(|store| store.create_user("amy", "hash"));
        assert!(refused.is_err(), "{refused:?}");
    }
}
