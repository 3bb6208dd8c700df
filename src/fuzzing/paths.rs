//! Fuzz target `paths`: URL path sanitizing (`static_files::sanitize`) and opening beneath the
//! root (`root::Root::open_beneath`), on a fixture tree with symlinks that stay inside, leave
//! it (relative and absolute, to files and directories), loop, and point at the root's parent.
//!
//! Input: the URL path after its leading `/` (bytes that are not UTF-8 become U+FFFD, as only
//! UTF-8 reaches the server's router).
//!
//! Properties:
//! 1. `sanitize` agrees with a reference sanitizer written from its documented rules:
//!    percent-decode each segment; skip empty and `.`; refuse `..`, `/`, `\` and NUL with 400;
//!    hide names starting with `.` with 404; the first segment that fails decides.
//! 2. What it returns is a plain relative path: no root, no `..`, no `.`.
//! 3. Opening it, with openat2 and with the canonical-path fallback, succeeds exactly when the
//!    canonicalize-based reference finds the target and finds it inside the root, and what is
//!    opened is that target (`/proc/self/fd`); anything outside is refused with 403.

use std::borrow::Cow;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::Ordering;

use crate::http::status::StatusCode;
use crate::static_files::root::{Root, sanitize, status_for};

pub fn run(data: &[u8]) {
    let path = format!("/{}", String::from_utf8_lossy(data));
    let sanitized = sanitize(&path).map(Cow::into_owned);
    assert_eq!(sanitized, reference_sanitize(&path), "sanitize({path:?})");
    let Ok(relative) = sanitized else {
        return;
    };
    for component in relative.components() {
        assert!(
            matches!(component, Component::Normal(_)),
            "{component:?} in {relative:?}"
        );
    }
    FIXTURE.with(|fixture| fixture.check_open(&relative));
}

/// The documented rules, segment by segment.
fn reference_sanitize(path: &str) -> Result<PathBuf, StatusCode> {
    let mut relative = PathBuf::new();
    for segment in path.split('/') {
        let decoded = percent_decode(segment.as_bytes());
        if decoded.is_empty() || decoded == b"." {
            continue;
        }
        if decoded == b".." || decoded.iter().any(|b| matches!(b, b'/' | b'\\' | 0)) {
            return Err(StatusCode::BAD_REQUEST);
        }
        if decoded[0] == b'.' {
            return Err(StatusCode::NOT_FOUND);
        }
        relative.push(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&decoded));
    }
    Ok(relative)
}

/// `%XX` with two hex digits is a byte; any other `%` stands for itself (RFC 3986 §2.1).
fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[at] == b'%'
            && let (Some(high), Some(low)) = (
                bytes.get(at + 1).and_then(|&b| hex(b)),
                bytes.get(at + 2).and_then(|&b| hex(b)),
            )
        {
            out.push((high * 16 + low) as u8);
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    out
}

thread_local! {
    static FIXTURE: Fixture = Fixture::new();
}

/// A temporary directory with `outside/` (a secret) and `root/` (the served tree).
struct Fixture {
    /// The root, opened as the server opens it, and the same with the fallback forced.
    root: Root,
    fallback: Root,
    /// The root's canonical path.
    root_path: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = super::fixture_dir(&std::env::temp_dir(), "paths");
        let base = dir.canonicalize().expect("its canonical path");
        let outside = base.join("outside");
        let root = base.join("root");
        for folder in [&outside, &outside.join("dir"), &root, &root.join("dir/sub")] {
            std::fs::create_dir_all(folder).expect("a fixture folder");
        }
        std::fs::create_dir_all(root.join(".hidden")).expect("a fixture folder");
        let files = [
            "outside/secret.txt",
            "outside/dir/file",
            "root/index.html",
            "root/a.txt",
            "root/dir/b.txt",
            "root/dir/sub/c.txt",
            "root/.env",
            "root/.hidden/h.txt",
            "root/sp ace.txt",
            "root/per%cent.txt",
            "root/ü.txt",
            "root/back\\slash",
        ];
        for file in files {
            std::fs::write(base.join(file), file).expect("a fixture file");
        }
        let links: [(&str, PathBuf); 13] = [
            ("root/link-in", "a.txt".into()),
            ("root/link-dir", "dir".into()),
            ("root/link-abs-in", root.join("a.txt")),
            ("root/link-abs-dir", root.join("dir")),
            ("root/link-out", "../outside/secret.txt".into()),
            ("root/link-out-dir", "../outside".into()),
            ("root/link-abs-out", outside.join("secret.txt")),
            ("root/dir/link-up", "../../outside/secret.txt".into()),
            ("root/dir/link-parent", "..".into()),
            ("root/dir/link-grandparent", "../..".into()),
            ("root/loop1", "loop2".into()),
            ("root/loop2", "loop1".into()),
            ("root/link-etc", "/etc/passwd".into()),
        ];
        for (name, target) in links {
            std::os::unix::fs::symlink(target, base.join(name)).expect("a fixture symlink");
        }
        let fallback = Root::open(&root).expect("the root");
        fallback.openat2_unavailable.store(true, Ordering::Relaxed);
        Fixture {
            root: Root::open(&root).expect("the root"),
            fallback,
            root_path: root,
        }
    }

    /// Property 3.
    fn check_open(&self, relative: &Path) {
        let target = self.root_path.join(relative);
        // The reference: resolve every symlink, then look where it landed.
        let reference = target.canonicalize();
        for (name, root) in [("openat2", &self.root), ("fallback", &self.fallback)] {
            let opened = root.open_beneath(relative);
            match (&reference, opened) {
                (Ok(real), Ok(file)) => {
                    assert!(
                        real.starts_with(&self.root_path),
                        "{name} opened {relative:?}, which is {real:?}, outside the root"
                    );
                    assert_eq!(&opened_path(&file), real, "{name} opened something else");
                }
                (Ok(real), Err(error)) => {
                    let status = status_for(&error);
                    if real.starts_with(&self.root_path) {
                        panic!("{name} refused {relative:?} ({error}), inside at {real:?}");
                    }
                    assert_eq!(
                        status,
                        StatusCode::FORBIDDEN,
                        "{name}: {relative:?}: {error}"
                    );
                }
                (Err(_), Ok(file)) => panic!(
                    "{name} opened {relative:?} ({:?}), which does not resolve",
                    opened_path(&file)
                ),
                (Err(_), Err(error)) => {
                    let status = status_for(&error);
                    assert!(
                        status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN,
                        "{name}: {relative:?}: {error} is a {status}"
                    );
                }
            }
        }
    }
}

/// Where an open file really is.
fn opened_path(file: &File) -> PathBuf {
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .expect("/proc/self/fd of an open file")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_behaves_as_the_reference_says() {
        for path in [
            "",
            "a.txt",
            "link-in",
            "link-abs-in",
            "link-dir/b.txt",
            "link-out",
            "link-abs-out",
            "link-out-dir/secret.txt",
            "dir/link-up",
            "dir/link-parent/a.txt",
            "dir/link-grandparent/outside/secret.txt",
            "loop1",
            "link-etc",
            "%2e%2e/x",
            "a.txt/x",
            "dir/",
            "sp%20ace.txt",
            "per%25cent.txt",
            "%C3%BC.txt",
        ] {
            run(path.as_bytes());
        }
    }
}
