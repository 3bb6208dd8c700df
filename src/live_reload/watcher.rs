//! The thread that watches a site's root (`--watch`): inotify through `notify`, recursively,
//! directories created later included (`notify` watches each as it appears).
//!
//! For every change it is told of, in order:
//! 1. it moves the file caches' [`ChangeCounter`] at once: every worker's cache forgets what
//!    it knew at its next lookup, so the next request reads the disk;
//! 2. if the change is to something a page may show (not a dotfile, which is never served,
//!    nor an editor's scratch file, see [`is_scratch`]), it joins the burst under way
//!    ([`Debounce`]);
//! 3. once the burst is due, one `reload` event naming the paths changed is published to
//!    [`TOPIC`], for the stream of every open page.
//!
//! Opening and reading files (the server's own requests among them) are not changes.

use std::collections::BTreeSet;
use std::io;
use std::path::{Component, Path};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use super::TOPIC;
use super::debounce::Debounce;
use crate::events::{Publisher, encode_event};
use crate::static_files::ChangeCounter;

/// A burst of changes is over after this long without another: an editor's save takes a few
/// milliseconds, a formatter or build step run on save a little longer.
const QUIET: Duration = Duration::from_millis(100);
/// A burst that never goes quiet (a tool writing on and on) still reloads pages this often.
const MAX_DELAY: Duration = Duration::from_secs(1);
/// Paths named in one reload event, at most (the event is informative; pages reload anyway).
const MAX_PATHS_NAMED: usize = 16;

/// Starts watching `root` and the thread that acts on what the watcher reports. The thread
/// ends when the returned watcher is dropped.
pub(super) fn start(
    root: &Path,
    changes: ChangeCounter,
    publisher: Publisher,
) -> io::Result<RecommendedWatcher> {
    let root = root.canonicalize()?;
    let (sender, events) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(sender).map_err(io::Error::other)?;
    watcher
        .watch(&root, RecursiveMode::Recursive)
        .map_err(io::Error::other)?;
    std::thread::Builder::new()
        .name("looplight-watch".to_owned())
        .spawn(move || run(&root, &events, &changes, &publisher))?;
    Ok(watcher)
}

/// Steps 1–3 of the module docs, until the watcher is dropped.
fn run(
    root: &Path,
    events: &Receiver<notify::Result<Event>>,
    changes: &ChangeCounter,
    publisher: &Publisher,
) {
    let mut burst = Debounce::new(QUIET, MAX_DELAY);
    let mut changed = BTreeSet::new();
    loop {
        let received = match burst.deadline() {
            Some(deadline) => {
                events.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            }
            None => events.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(Ok(event)) if is_change(&event) => {
                // 1. The caches forget.
                changes.bump();
                // 2. The burst.
                let shown: Vec<String> = event
                    .paths
                    .iter()
                    .filter_map(|path| shown_path(root, path))
                    .collect();
                // Events were lost (the kernel's queue overflowed): anything may have changed.
                if !shown.is_empty() || event.need_rescan() {
                    burst.record(Instant::now());
                }
                for path in shown {
                    if changed.len() < MAX_PATHS_NAMED {
                        changed.insert(path);
                    }
                }
            }
            Ok(Ok(_not_a_change)) => {}
            Ok(Err(error)) => {
                // Say it (a directory that could not be watched, say), and trust nothing
                // cached.
                log::error!("--watch: {error}");
                changes.bump();
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // 3. The reload, once the burst is over.
        if burst.take_due(Instant::now()) {
            publisher.publish(TOPIC, None, reload_event(&std::mem::take(&mut changed)));
        }
    }
}

/// Whether `event` may change what is served: not opening or reading a file, but closing one
/// written, and anything else (creating, writing, renaming, removing, metadata, lost events).
fn is_change(event: &Event) -> bool {
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => event.need_rescan(),
        _ => true,
    }
}

/// `path` relative to `root`, as a page would name it, if a page may show it: not beneath a
/// dotfile or dot-directory (never served) and not an editor's scratch file.
fn shown_path(root: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let hidden = relative.components().any(|component| match component {
        Component::Normal(name) => name.as_encoded_bytes().starts_with(b"."),
        _ => false,
    });
    if hidden || is_scratch(relative) {
        return None;
    }
    Some(relative.to_string_lossy().into_owned())
}

/// Files editors write beside the one being saved: backups (`page.html~`), Emacs' auto-saves
/// (`#page.html#`), Vim's probe for a writable directory (`4913`), JetBrains' safe-write
/// copies. (Swap and lock files are dotfiles already.)
fn is_scratch(relative: &Path) -> bool {
    let Some(name) = relative.file_name().map(|name| name.to_string_lossy()) else {
        return false;
    };
    name.ends_with('~')
        || (name.len() > 1 && name.starts_with('#') && name.ends_with('#'))
        || name == "4913"
        || name.ends_with("___jb_tmp___")
        || name.ends_with("___jb_old___")
}

/// `event: reload` with the paths changed: `data: {"paths":["index.html"]}`.
fn reload_event(paths: &BTreeSet<String>) -> Vec<u8> {
    let data = serde_json::json!({ "paths": paths }).to_string();
    let mut event = Vec::with_capacity(data.len() + 32);
    encode_event(&mut event, None, "reload", &data);
    event
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use notify::event::{CreateKind, DataChange, Flag, ModifyKind, RemoveKind};

    use std::path::PathBuf;

    use super::*;

    /// (root, the path of `relative` under it), as the watcher is told of it.
    fn under(root: &str, relative: &str) -> (PathBuf, PathBuf) {
        (PathBuf::from(root), Path::new(root).join(relative))
    }

    #[test]
    fn opening_and_reading_are_not_changes_closing_a_written_file_is() {
        let event = |kind| Event::new(kind).add_path(PathBuf::from("/site/a.html"));
        let changes = [
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Modify(ModifyKind::Any),
            EventKind::Remove(RemoveKind::Folder),
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Any,
            EventKind::Other,
        ];
        for kind in changes {
            assert!(is_change(&event(kind)), "{kind:?}");
        }
        let not_changes = [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Read),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
        ];
        for kind in not_changes {
            assert!(!is_change(&event(kind)), "{kind:?}");
        }
        let overflow = Event::new(EventKind::Access(AccessKind::Any)).set_flag(Flag::Rescan);
        assert!(
            is_change(&overflow),
            "events were lost: anything may have changed"
        );
    }

    #[test]
    fn pages_reload_for_what_they_may_show_not_for_dotfiles_or_scratch_files() {
        let shown = [
            ("index.html", "index.html"),
            ("css/site.css", "css/site.css"),
            ("new-dir", "new-dir"),
            ("a/b/c.png", "a/b/c.png"),
        ];
        for (relative, expected) in shown {
            let (root, path) = under("/site", relative);
            assert_eq!(shown_path(&root, &path).as_deref(), Some(expected));
        }
        let hidden = [
            ".index.html.swp",
            ".git/index",
            "blog/.#post.html",
            "blog/post.html~",
            "#notes.html#",
            "4913",
            "blog/4913",
            "page.html___jb_tmp___",
            "page.html___jb_old___",
        ];
        for relative in hidden {
            let (root, path) = under("/site", relative);
            assert_eq!(shown_path(&root, &path), None, "{relative}");
        }
        // `#` alone or inside a name is an ordinary name.
        for relative in ["#", "a#b.html", "#top.html"] {
            let (root, path) = under("/site", relative);
            assert!(shown_path(&root, &path).is_some(), "{relative}");
        }
    }

    #[test]
    fn a_reload_event_names_the_paths() {
        let paths = BTreeSet::from(["b/c.css".to_owned(), "a.html".to_owned()]);
        assert_eq!(
            String::from_utf8(reload_event(&paths)).unwrap(),
            "event: reload\ndata: {\"paths\":[\"a.html\",\"b/c.css\"]}\n\n"
        );
    }

    #[test]
    fn changes_move_the_counter_and_are_published_as_reload_events() {
        let dir = tempfile::tempdir().unwrap();
        let publisher = Publisher::default();
        let mut poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let inbox = publisher.subscribe(waker);
        let changes = ChangeCounter::default();
        let watcher = start(dir.path(), changes.clone(), publisher).unwrap();

        // A directory made after the start, a page written beside it, and a dotfile.
        std::fs::create_dir(dir.path().join("blog")).unwrap();
        std::fs::write(dir.path().join("index.html"), "<p>one</p>").unwrap();
        std::fs::write(dir.path().join(".hidden"), "x").unwrap();
        // Woken by each publish, until one names the page (under load, a burst may be split).
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut events = mio::Events::with_capacity(4);
        let mut seen = Vec::new();
        while !seen
            .iter()
            .any(|event: &String| event.contains("\"index.html\""))
        {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no reload event names index.html: {seen:?}"
            );
            poll.poll(&mut events, Some(left)).unwrap();
            for published in inbox.take() {
                assert_eq!(&*published.topic, TOPIC);
                assert_eq!(published.id, None);
                seen.push(String::from_utf8(published.event.to_vec()).unwrap());
            }
        }
        assert!(changes.current() >= 2, "a move per change, at least");
        for event in &seen {
            assert!(
                event.starts_with("event: reload\ndata: {\"paths\":["),
                "{event}"
            );
            assert!(!event.contains(".hidden"), "{event}");
        }
        drop(watcher);
    }
}
