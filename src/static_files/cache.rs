//! The file cache: what each path resolved to, and the bytes of small files, kept in memory
//! within a size budget so that a hot small file never touches the disk on the hot path.
//!
//! - An entry is trusted for [`REVALIDATE_AFTER`]; after that the next request re-opens the
//!   file beneath the root and compares its identity (device, inode, size, mtime). Unchanged:
//!   the entry is kept; changed: re-read. A file changed on disk is served fresh within a second.
//! - Misses are cached too (for the same second), so probing for `.br`/`.gz` sidecars or a
//!   missing path costs a hash lookup, not a syscall. Server-side failures (out of
//!   descriptors) are not: the next request tries again.
//! - Files larger than [`MAX_CACHED_FILE`] are never cached; they are opened per request and
//!   sent with sendfile.
//! - Over budget, the least recently used entries go, down to 90% of the budget.
//! - With a [`ChangeCounter`] (`--watch`), every entry is forgotten as soon as the counter
//!   moves: an edit is served at once, not within the second. Looking costs one atomic load
//!   per lookup, and nothing at all without one.
//! - With an HTML snippet (`--watch`: live reload's script tag), a page is held with the
//!   snippet in it (`inject`): its length, validator, ranges and compressed copies are those of
//!   the bytes sent. A page too large to cache is sent as it is.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::encoding::{Coding, Compressed};
use super::inject;
use super::root::{Root, status_for};
use crate::http::status::StatusCode;
use crate::metrics::{Counter, Gauge, OneWriter};

/// How long a cached answer is trusted without looking at the disk.
pub const REVALIDATE_AFTER: Duration = Duration::from_secs(1);
/// Largest file whose bytes are kept in memory.
pub const MAX_CACHED_FILE: u64 = 256 * 1024;
/// What a cached miss or directory is charged against the budget.
const ENTRY_OVERHEAD: usize = 256;

/// A regular file's metadata and, when small, its contents.
#[derive(Debug)]
pub struct FileInfo {
    /// The media type, by the file's extension.
    pub content_type: Cow<'static, str>,
    pub len: u64,
    /// Last modification, whole seconds since the epoch.
    pub modified_secs: u64,
    /// Strong validator: `"<mtime secs hex>.<mtime nanos hex>-<len hex>"`.
    pub etag: Arc<str>,
    pub last_modified: Arc<str>,
    identity: (u64, u64, i64, i64, u64),
    /// The whole file, if it is small enough to cache (with the HTML snippet in it, if any).
    pub bytes: Option<Arc<[u8]>>,
    /// Whether `bytes` has the HTML snippet in it: its pre-compressed sidecars (made from the
    /// file as it is) are not this representation, and are not served.
    pub injected: bool,
    /// Compressed copies of `bytes`, made once on first demand (off the loop).
    pub compressed: Arc<Compressed>,
    /// The header fields of a whole 200 of this file, encoded on first use: (whether they
    /// include `Vary: Accept-Encoding`, the bytes). See [`FileInfo::whole_fields`].
    whole_fields: RefCell<Option<(bool, Arc<[u8]>)>>,
    /// This file's pre-compressed sidecars as last resolved, and until when they are trusted. See
    /// [`FileInfo::known_sidecars`].
    sidecars: RefCell<Option<(Instant, RememberedSidecars)>>,
}

/// Sidecars by coding, held weakly: they stay the cache's to evict.
type RememberedSidecars = [Option<Weak<FileInfo>>; Coding::ALL.len()];

/// A file's pre-compressed sidecars by coding ([`Coding::index`]): each with the file the
/// lookup opened, if its bytes are not in memory.
pub type Sidecars = [Option<(Rc<FileInfo>, Option<File>)>; Coding::ALL.len()];

impl FileInfo {
    /// The file `relative` as `metadata` describes it, with its `bytes` if they were read; an
    /// HTML page read whole gets `html_snippet` put into it.
    fn new(
        relative: &Path,
        metadata: &Metadata,
        bytes: Option<Arc<[u8]>>,
        html_snippet: Option<&str>,
    ) -> FileInfo {
        let modified = UNIX_EPOCH
            + Duration::new(
                metadata.mtime().max(0).unsigned_abs(),
                u32::try_from(metadata.mtime_nsec()).unwrap_or(0),
            );
        let content_type = content_type(relative);
        let (bytes, injected) = match (bytes, html_snippet) {
            (Some(page), Some(snippet)) if inject::is_html(&content_type) => {
                (Some(inject::inject(&page, snippet.as_bytes()).into()), true)
            }
            (bytes, _) => (bytes, false),
        };
        // The length of what is sent: the validator below changes with it, so a page with the
        // snippet never shares an ETag with the same file without it.
        let len = bytes
            .as_ref()
            .map_or(metadata.len(), |bytes| bytes.len() as u64);
        FileInfo {
            content_type,
            len,
            modified_secs: metadata.mtime().max(0).unsigned_abs(),
            etag: format!(
                "\"{:x}.{:x}-{:x}\"",
                metadata.mtime(),
                metadata.mtime_nsec(),
                len
            )
            .into(),
            last_modified: httpdate::fmt_http_date(modified).into(),
            identity: identity(metadata),
            bytes,
            injected,
            compressed: Arc::default(),
            whole_fields: RefCell::new(None),
            sidecars: RefCell::new(None),
        }
    }

    /// The sidecars remembered by [`FileInfo::remember_sidecars`] less than
    /// [`REVALIDATE_AFTER`] ago, if each is still cached: the usual request for a file costs
    /// no lookup of its `.br` and `.gz` names. `None`: look them up.
    pub fn known_sidecars(&self, now: Instant) -> Option<Sidecars> {
        let known = self.sidecars.borrow();
        let (fresh_until, sidecars) = known.as_ref()?;
        if now >= *fresh_until {
            return None;
        }
        let mut found = Sidecars::default();
        for (slot, sidecar) in found.iter_mut().zip(sidecars) {
            if let Some(sidecar) = sidecar {
                // Evicted since: its bytes are gone, look it up again.
                *slot = Some((sidecar.upgrade()?, None));
            }
        }
        Some(found)
    }

    /// Remembers the sidecars just looked up, if every one is held in memory (one that is
    /// not must be opened per request anyway). Weakly: they stay the cache's to evict.
    pub fn remember_sidecars(&self, now: Instant, sidecars: &Sidecars) {
        let in_memory = sidecars
            .iter()
            .flatten()
            .all(|(sidecar, _)| sidecar.bytes.is_some());
        let remembered = in_memory.then(|| {
            let weak = sidecars
                .each_ref()
                .map(|sidecar| sidecar.as_ref().map(|(sidecar, _)| Rc::downgrade(sidecar)));
            (now + REVALIDATE_AFTER, weak)
        });
        *self.sidecars.borrow_mut() = remembered;
    }

    /// The encoded header fields of a whole 200 of this file, made by `encode` the first time
    /// (and again if whether the file has alternatives, hence `Vary`, changed): every other
    /// response reuses the bytes.
    pub fn whole_fields(&self, with_vary: bool, encode: impl FnOnce() -> Vec<u8>) -> Arc<[u8]> {
        let mut cached = self.whole_fields.borrow_mut();
        match &*cached {
            Some((vary, fields)) if *vary == with_vary => Arc::clone(fields),
            _ => {
                let fields: Arc<[u8]> = encode().into();
                *cached = Some((with_vary, Arc::clone(&fields)));
                fields
            }
        }
    }
}

/// What a relative path is.
#[derive(Clone, Debug)]
pub enum Resolved {
    File(Rc<FileInfo>),
    Dir,
    /// Not servable: the status to answer with (404, 403, …).
    Missing(StatusCode),
}

/// A lookup's result: for a file not held in memory, the file opened by the lookup.
pub struct Lookup {
    pub resolved: Resolved,
    pub file: Option<File>,
}

struct Entry {
    resolved: Resolved,
    /// Trusted without a look at the disk until then ([`REVALIDATE_AFTER`] after the look).
    fresh_until: Instant,
    last_used: u64,
    cost: usize,
}

/// A count of the changes seen under a root, shared by whoever watches it (the `--watch`
/// thread moves it) and the file caches of every worker (each forgets everything when it
/// moved). Cheap to clone; reading it is one atomic load, and no lock.
#[derive(Clone, Debug, Default)]
pub struct ChangeCounter(Arc<AtomicU64>);

impl ChangeCounter {
    /// Something under the root changed: every cache forgets what it knew at its next lookup.
    pub fn bump(&self) {
        // Release: whoever sees the new count also sees what the bumping thread saw before.
        self.0.fetch_add(1, Ordering::Release);
    }

    /// The changes counted so far.
    pub fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

pub struct FileCache {
    /// By relative path, as bytes: hashing an `OsStr` is one write, a `Path` one per component.
    /// Hashed with foldhash, seeded at random per cache: a tenth of SipHash's cost per lookup
    /// (benches/load/instructions.py), and an attacker who fills the cache with paths of his
    /// choosing cannot aim them at one bucket without the seed.
    entries: HashMap<OsString, Entry, foldhash::quality::RandomState>,
    budget: usize,
    used: usize,
    clock: u64,
    stats: Arc<CacheStats>,
    /// When this moves, every entry is forgotten (see [`FileCache::forget_on`]).
    changes: Option<ChangeCounter>,
    /// The count `entries` are from.
    seen_changes: u64,
    /// Put into every HTML page read whole (see [`FileCache::inject_into_html`]).
    html_snippet: Option<Arc<str>>,
}

/// What a file cache counts, for the metrics; only the cache's loop writes it.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Lookups answered from memory.
    pub hits: Counter<OneWriter>,
    /// Lookups that went to the file system.
    pub misses: Counter<OneWriter>,
    /// Memory charged against the budget: file bytes and entries.
    pub bytes: Gauge<OneWriter>,
}

/// The map key of `relative`. The root, an empty path, is keyed as `/`, which no path a
/// request is turned into can be: comparing an empty key calls memcmp on zero bytes, and
/// glibc's AVX-512 memcmp then does a masked load from the empty string's dangling pointer,
/// which takes a microcode assist (4% of the CPU time of requests for `/`, by perf).
fn key(relative: &Path) -> &OsStr {
    match relative.as_os_str() {
        root if root.is_empty() => OsStr::new("/"),
        key => key,
    }
}

impl FileCache {
    pub fn new(budget: usize) -> FileCache {
        FileCache {
            entries: HashMap::default(),
            budget,
            used: 0,
            clock: 0,
            stats: Arc::default(),
            changes: None,
            seen_changes: 0,
            html_snippet: None,
        }
    }

    /// The cache's counters.
    pub fn stats(&self) -> Arc<CacheStats> {
        Arc::clone(&self.stats)
    }

    /// Forgets every entry as soon as `changes` moves (instead of trusting each for up to
    /// [`REVALIDATE_AFTER`]).
    pub fn forget_on(mut self, changes: ChangeCounter) -> FileCache {
        self.seen_changes = changes.current();
        self.changes = Some(changes);
        self
    }

    /// Puts `snippet` into every HTML page held in memory, before `</body>` or at the end.
    pub fn inject_into_html(mut self, snippet: Arc<str>) -> FileCache {
        self.html_snippet = Some(snippet);
        self
    }

    /// Resolves `relative` beneath `root`, from memory when the entry is fresh.
    pub fn lookup(&mut self, root: &Root, relative: &Path, now: Instant) -> Lookup {
        self.forget_if_changed();
        self.clock += 1;
        if let Some(entry) = self.entries.get_mut(key(relative))
            && now < entry.fresh_until
        {
            entry.last_used = self.clock;
            self.stats.hits.inc();
            return Lookup {
                resolved: entry.resolved.clone(),
                file: None,
            };
        }
        self.stats.misses.inc();
        let (resolved, file) = self.check(root, relative);
        let cacheable = match &resolved {
            Resolved::File(info) => info.bytes.is_some(),
            Resolved::Dir => true,
            // A miss says something about the path (404, 403) and is kept; a failure of the
            // server's own (500, or 503 when out of descriptors) must not outlive its cause.
            Resolved::Missing(status) => !status.is_server_error(),
        };
        self.remove(key(relative));
        if cacheable && self.budget > 0 {
            let cost = ENTRY_OVERHEAD
                + key(relative).len()
                + match &resolved {
                    Resolved::File(info) => info.len as usize,
                    _ => 0,
                };
            self.used += cost;
            self.entries.insert(
                key(relative).to_owned(),
                Entry {
                    resolved: resolved.clone(),
                    fresh_until: now + REVALIDATE_AFTER,
                    last_used: self.clock,
                    cost,
                },
            );
            self.evict_if_over_budget();
        }
        self.stats.bytes.set(self.used as i64);
        Lookup {
            resolved,
            file: if cacheable { None } else { file },
        }
    }

    /// Looks at the disk: opens beneath the root, and reuses the cached file if unchanged.
    fn check(&self, root: &Root, relative: &Path) -> (Resolved, Option<File>) {
        let (file, metadata) = match root.open_with_metadata(relative) {
            Ok(opened) => opened,
            Err(error) => return (Resolved::Missing(status_for(&error)), None),
        };
        if metadata.is_dir() {
            return (Resolved::Dir, None);
        }
        if !metadata.is_file() {
            return (Resolved::Missing(StatusCode::NOT_FOUND), None);
        }
        if let Some(Entry {
            resolved: Resolved::File(info),
            ..
        }) = self.entries.get(key(relative))
            && info.identity == identity(&metadata)
        {
            return (Resolved::File(Rc::clone(info)), None);
        }
        let bytes = (metadata.len() <= MAX_CACHED_FILE)
            .then(|| read_whole(&file, metadata.len()))
            .flatten();
        let info = FileInfo::new(relative, &metadata, bytes, self.html_snippet.as_deref());
        (Resolved::File(Rc::new(info)), Some(file))
    }

    /// Forgets every entry if the change counter moved since they were made.
    fn forget_if_changed(&mut self) {
        let Some(changes) = &self.changes else {
            return;
        };
        let current = changes.current();
        if current != self.seen_changes {
            self.seen_changes = current;
            self.entries.clear();
            self.used = 0;
        }
    }

    fn remove(&mut self, key: &OsStr) {
        if let Some(old) = self.entries.remove(key) {
            self.used -= old.cost;
        }
    }

    fn evict_if_over_budget(&mut self) {
        if self.used <= self.budget {
            return;
        }
        let mut by_age: Vec<(u64, OsString)> = self
            .entries
            .iter()
            .map(|(path, entry)| (entry.last_used, path.clone()))
            .collect();
        by_age.sort_unstable();
        let target = self.budget / 10 * 9;
        for (_, path) in by_age {
            if self.used <= target {
                break;
            }
            self.remove(&path);
        }
    }

    /// Bytes charged against the budget.
    #[cfg(test)]
    pub fn used(&self) -> usize {
        self.used
    }
}

/// Reads exactly `len` bytes from the start of `file`; `None` if it changed size meanwhile.
fn read_whole(file: &File, len: u64) -> Option<Arc<[u8]>> {
    let mut bytes = vec![0; usize::try_from(len).ok()?];
    file.read_exact_at(&mut bytes, 0).ok()?;
    Some(bytes.into())
}

fn identity(metadata: &Metadata) -> (u64, u64, i64, i64, u64) {
    (
        metadata.dev(),
        metadata.ino(),
        metadata.mtime(),
        metadata.mtime_nsec(),
        metadata.len(),
    )
}

/// The media type for `path` by extension; text types are declared UTF-8.
pub fn content_type(path: &Path) -> Cow<'static, str> {
    let Some(essence) = mime_guess::from_path(path).first_raw() else {
        return Cow::Borrowed("application/octet-stream");
    };
    match essence {
        "text/html" => Cow::Borrowed("text/html; charset=utf-8"),
        "text/css" => Cow::Borrowed("text/css; charset=utf-8"),
        "text/plain" => Cow::Borrowed("text/plain; charset=utf-8"),
        "text/javascript" | "application/javascript" => {
            Cow::Borrowed("text/javascript; charset=utf-8")
        }
        _ if is_textual(essence) => Cow::Owned(format!("{essence}; charset=utf-8")),
        _ => Cow::Borrowed(essence),
    }
}

/// Whether a media type is text: served as UTF-8, and worth compressing. `essence` is the type
/// without parameters, in lower case (`text/html`, not `text/html; charset=utf-8`).
pub fn is_textual(essence: &str) -> bool {
    essence.starts_with("text/")
        || matches!(
            essence,
            "application/javascript" | "application/json" | "application/xml" | "image/svg+xml"
        )
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn whole_fields_are_encoded_once_and_again_when_vary_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        std::fs::write(&path, b"hello").unwrap();
        let info = FileInfo::new(&path, &std::fs::metadata(&path).unwrap(), None, None);
        let encoded = Cell::new(0);
        let encode = |text: &'static [u8]| {
            encoded.set(encoded.get() + 1);
            text.to_vec()
        };
        let first = info.whole_fields(false, || encode(b"A"));
        let again = info.whole_fields(false, || encode(b"B"));
        assert!(
            Arc::ptr_eq(&first, &again),
            "the same bytes, not encoded again"
        );
        assert_eq!(encoded.get(), 1);
        assert_eq!(&*info.whole_fields(true, || encode(b"C")), b"C");
        assert_eq!(encoded.get(), 2);
    }

    #[test]
    fn content_types_by_extension_with_utf8_for_text() {
        let cases: &[(&str, &str)] = &[
            ("a.html", "text/html; charset=utf-8"),
            ("a.css", "text/css; charset=utf-8"),
            ("a.txt", "text/plain; charset=utf-8"),
            ("a.js", "text/javascript; charset=utf-8"),
            ("a.csv", "text/csv; charset=utf-8"),
            ("a.md", "text/markdown; charset=utf-8"),
            ("a.json", "application/json; charset=utf-8"),
            ("a.xml", "text/xml; charset=utf-8"),
            ("a.svg", "image/svg+xml; charset=utf-8"),
            ("a.wasm", "application/wasm"),
            ("a.png", "image/png"),
            ("a.pdf", "application/pdf"),
            ("a.woff2", "font/woff2"),
            ("a.unknownext", "application/octet-stream"),
            ("no_extension", "application/octet-stream"),
        ];
        for (path, want) in cases {
            assert_eq!(content_type(Path::new(path)), *want, "{path}");
        }
    }

    #[test]
    fn sidecars_are_remembered_for_a_second_while_cached_and_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        std::fs::write(&path, b"hello").unwrap();
        let metadata = std::fs::metadata(&path).unwrap();
        let in_memory = |bytes: Option<&[u8]>| {
            Rc::new(FileInfo::new(&path, &metadata, bytes.map(Arc::from), None))
        };
        let file = in_memory(Some(b"hello"));
        let t0 = Instant::now();
        assert!(file.known_sidecars(t0).is_none(), "nothing remembered yet");

        let brotli = in_memory(Some(b"br bytes"));
        let mut found = Sidecars::default();
        found[Coding::Brotli.index()] = Some((Rc::clone(&brotli), None));
        file.remember_sidecars(t0, &found);
        let known = file.known_sidecars(t0 + REVALIDATE_AFTER / 2).unwrap();
        assert!(Rc::ptr_eq(
            &known[Coding::Brotli.index()].as_ref().unwrap().0,
            &brotli
        ));
        assert!(known[Coding::Gzip.index()].is_none());
        assert!(
            file.known_sidecars(t0 + REVALIDATE_AFTER).is_none(),
            "a second later"
        );

        // Evicted from the cache (the last strong reference gone): looked up again.
        drop((found, known));
        assert!(file.known_sidecars(t0).is_some());
        drop(brotli);
        assert!(file.known_sidecars(t0).is_none());

        // A sidecar too large for memory must be opened per request: never remembered.
        let mut found = Sidecars::default();
        found[Coding::Gzip.index()] = Some((in_memory(None), None));
        file.remember_sidecars(t0, &found);
        assert!(file.known_sidecars(t0).is_none());
    }

    #[test]
    fn hits_within_a_second_and_sees_changes_after() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "one").unwrap();
        let root = Root::open(dir.path()).unwrap();
        let mut cache = FileCache::new(1 << 20);
        let t0 = Instant::now();
        let bytes_of = |lookup: Lookup| match lookup.resolved {
            Resolved::File(info) => info.bytes.clone().unwrap().to_vec(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            bytes_of(cache.lookup(&root, Path::new("a.txt"), t0)),
            b"one"
        );
        std::fs::write(dir.path().join("a.txt"), "two!").unwrap();
        // Within the second: still the cached bytes, no disk access.
        assert_eq!(
            bytes_of(cache.lookup(&root, Path::new("a.txt"), t0)),
            b"one"
        );
        let later = t0 + REVALIDATE_AFTER;
        assert_eq!(
            bytes_of(cache.lookup(&root, Path::new("a.txt"), later)),
            b"two!"
        );
        // Misses are cached for the same second, then looked up again.
        assert!(matches!(
            cache.lookup(&root, Path::new("b.txt"), later).resolved,
            Resolved::Missing(StatusCode::NOT_FOUND)
        ));
        std::fs::write(dir.path().join("b.txt"), "b").unwrap();
        assert!(matches!(
            cache.lookup(&root, Path::new("b.txt"), later).resolved,
            Resolved::Missing(StatusCode::NOT_FOUND)
        ));
        let later = later + REVALIDATE_AFTER;
        assert!(matches!(
            cache.lookup(&root, Path::new("b.txt"), later).resolved,
            Resolved::File(_)
        ));
    }

    #[test]
    fn a_change_counted_forgets_every_entry_at_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "one").unwrap();
        let root = Root::open(dir.path()).unwrap();
        let changes = ChangeCounter::default();
        changes.bump(); // counted before the cache existed: nothing to forget
        let mut cache = FileCache::new(1 << 20).forget_on(changes.clone());
        let t0 = Instant::now();
        let bytes_of = |lookup: Lookup| match lookup.resolved {
            Resolved::File(info) => info.bytes.clone().unwrap().to_vec(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            bytes_of(cache.lookup(&root, Path::new("a.txt"), t0)),
            b"one"
        );
        assert!(matches!(
            cache.lookup(&root, Path::new("b.txt"), t0).resolved,
            Resolved::Missing(StatusCode::NOT_FOUND)
        ));
        // The same length, maybe the same mtime: only the counter can tell.
        std::fs::write(dir.path().join("a.txt"), "two").unwrap();
        std::fs::write(dir.path().join("b.txt"), "b").unwrap();
        assert_eq!(
            bytes_of(cache.lookup(&root, Path::new("a.txt"), t0)),
            b"one",
            "not counted yet: the entry is trusted"
        );
        changes.bump();
        assert_eq!(
            bytes_of(cache.lookup(&root, Path::new("a.txt"), t0)),
            b"two",
            "within the same instant, once counted"
        );
        assert!(matches!(
            cache.lookup(&root, Path::new("b.txt"), t0).resolved,
            Resolved::File(_)
        ));
        assert_eq!(cache.entries.len(), 2, "cached again after forgetting");
    }

    #[test]
    fn html_pages_in_memory_carry_the_snippet_and_its_length() {
        let dir = tempfile::tempdir().unwrap();
        let page = b"<p>page</p></body>\n";
        std::fs::write(dir.path().join("page.html"), page).unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"text </body>").unwrap();
        std::fs::write(
            dir.path().join("big.html"),
            vec![b'x'; MAX_CACHED_FILE as usize + 1],
        )
        .unwrap();
        let root = Root::open(dir.path()).unwrap();
        let info_of = |cache: &mut FileCache, name: &str| match cache
            .lookup(&root, Path::new(name), Instant::now())
            .resolved
        {
            Resolved::File(info) => info,
            other => panic!("{other:?}"),
        };
        let mut plain = FileCache::new(1 << 20);
        let mut injecting = FileCache::new(1 << 20).inject_into_html("<s></s>".into());

        let without = info_of(&mut plain, "page.html");
        let with = info_of(&mut injecting, "page.html");
        assert_eq!(
            &**with.bytes.as_ref().unwrap(),
            b"<p>page</p><s></s></body>\n"
        );
        assert_eq!(with.len, (page.len() + "<s></s>".len()) as u64);
        assert!(with.injected && !without.injected);
        assert_eq!(&**without.bytes.as_ref().unwrap(), page);
        assert_eq!(without.len, page.len() as u64);
        assert_ne!(
            with.etag, without.etag,
            "another representation, another validator"
        );

        let text = info_of(&mut injecting, "notes.txt");
        assert_eq!(&**text.bytes.as_ref().unwrap(), b"text </body>", "not HTML");
        assert!(!text.injected);
        let big = info_of(&mut injecting, "big.html");
        assert!(
            big.bytes.is_none() && !big.injected,
            "too large to hold: as it is"
        );
        assert_eq!(big.len, MAX_CACHED_FILE + 1);
    }

    #[test]
    fn large_files_are_not_cached_and_the_budget_holds() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("big"),
            vec![b'x'; MAX_CACHED_FILE as usize + 1],
        )
        .unwrap();
        for n in 0..20 {
            std::fs::write(dir.path().join(format!("f{n}")), vec![b'y'; 1000]).unwrap();
        }
        let root = Root::open(dir.path()).unwrap();
        let mut cache = FileCache::new(5000);
        let now = Instant::now();
        let lookup = cache.lookup(&root, Path::new("big"), now);
        assert!(
            lookup.file.is_some(),
            "a large file comes back open, for streaming"
        );
        assert_eq!(cache.used(), 0);
        for n in 0..20 {
            cache.lookup(&root, Path::new(&format!("f{n}")), now);
            assert!(cache.used() <= 5000, "{}", cache.used());
        }
        // The most recent survived.
        assert!(cache.entries.contains_key(OsStr::new("f19")));
    }
}
