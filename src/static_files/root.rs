//! The root directory, and the guarantee that nothing outside it is ever served.
//!
//! 1. `sanitize` turns a URL path into a relative path, segment by segment after
//!    percent-decoding: `..`, encoded slashes, backslashes and NUL are refused (400), dotfiles
//!    are hidden (404).
//! 2. `Root::open_beneath` opens it with `openat2(RESOLVE_BENEATH)`: the kernel refuses any
//!    resolution, symlinks included, that would leave the root (403). An absolute symlink that
//!    points inside is resolved here and opened beneath the root again; where the kernel lacks
//!    openat2 the same check is made on the canonical path.

use std::borrow::Cow;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use percent_encoding::percent_decode_str;
use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::http::status::StatusCode;

/// How files are opened. O_NONBLOCK: a FIFO someone dropped into the root must not block the
/// loop on open.
const OPEN_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOCTTY)
    .union(OFlags::NONBLOCK);

/// An open root directory.
#[derive(Debug)]
pub struct Root {
    dir: File,
    path: PathBuf,
    /// Set once openat2 turned out to be unavailable (old kernel or a seccomp filter). The
    /// `paths` fuzz target sets it to check the fallback too.
    pub(crate) openat2_unavailable: AtomicBool,
}

impl Root {
    /// Opens `path`; it must be a directory.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Root> {
        let path = path.as_ref().canonicalize()?;
        let fd = rustix::fs::open(
            &path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root {
            dir: File::from(fd),
            path,
            openat2_unavailable: AtomicBool::new(false),
        })
    }

    /// The canonical path of the root directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn open_with_metadata(&self, relative: &Path) -> io::Result<(File, Metadata)> {
        let file = self.open_beneath(relative)?;
        let metadata = file.metadata()?;
        Ok((file, metadata))
    }

    /// Opens `relative` (no leading slash) without ever resolving outside the root.
    pub fn open_beneath(&self, relative: &Path) -> io::Result<File> {
        let target: &Path = if relative.as_os_str().is_empty() {
            Path::new(".")
        } else {
            relative
        };
        if self.openat2_unavailable.load(Ordering::Relaxed) {
            return self.open_canonical(target);
        }
        match self.openat2_beneath(target) {
            Ok(file) => Ok(file),
            // An absolute symlink is refused by RESOLVE_BENEATH even when it points inside the
            // root; resolve it ourselves and let the kernel check the result again.
            Err(rustix::io::Errno::XDEV) => self.open_canonical(target),
            Err(rustix::io::Errno::NOSYS) | Err(rustix::io::Errno::PERM) => {
                self.openat2_unavailable.store(true, Ordering::Relaxed);
                self.open_canonical(target)
            }
            Err(errno) => Err(errno.into()),
        }
    }

    fn openat2_beneath(&self, target: &Path) -> rustix::io::Result<File> {
        let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        rustix::fs::openat2(&self.dir, target, OPEN_FLAGS, Mode::empty(), resolve).map(File::from)
    }

    /// The slow path: resolve every symlink, check containment, then open the resolved path
    /// (beneath the root again where openat2 exists, so a symlink swapped in between is caught).
    fn open_canonical(&self, target: &Path) -> io::Result<File> {
        let canonical = self.path.join(target).canonicalize()?;
        let Ok(inside) = canonical.strip_prefix(&self.path) else {
            return Err(io::Error::from_raw_os_error(
                rustix::io::Errno::XDEV.raw_os_error(),
            ));
        };
        if self.openat2_unavailable.load(Ordering::Relaxed) {
            return Ok(File::from(rustix::fs::open(
                &canonical,
                OPEN_FLAGS,
                Mode::empty(),
            )?));
        }
        let inside = if inside.as_os_str().is_empty() {
            Path::new(".")
        } else {
            inside
        };
        Ok(self.openat2_beneath(inside)?)
    }
}

/// Turns the URL path into a relative filesystem path, or the status to refuse it with. A
/// path that needs no decoding and no normalizing (the usual case) is borrowed as it is; any
/// other is rebuilt segment by segment.
pub fn sanitize(path: &str) -> Result<Cow<'_, Path>, StatusCode> {
    match path.strip_prefix('/') {
        // The root, a site's most requested path.
        Some("") => Ok(Cow::Borrowed(Path::new(""))),
        Some(inside) if is_plain(inside) => Ok(Cow::Borrowed(Path::new(inside))),
        _ => sanitize_segments(path).map(Cow::Owned),
    }
}

/// Whether `inside` (a URL path without its leading slash) is already what
/// [`sanitize_segments`] would make of it: segments of unreserved URL characters (RFC 3986
/// §2.3; no `%`, so nothing to decode), none empty and none starting with a dot (so no `.`,
/// `..` or dotfile). Anything else takes the long way.
fn is_plain(inside: &str) -> bool {
    // One pass over the bytes (every request for a file takes it): a table lookup each, and
    // no branch but the loop's. After a slash (or at the start) only an unreserved byte other
    // than the dot may come.
    let mut plain = true;
    let mut allowed = SEGMENT_START;
    for &b in inside.as_bytes() {
        let class = PLAIN_CLASS[usize::from(b)];
        plain &= class & allowed != 0;
        allowed = if class == SLASH {
            SEGMENT_START
        } else {
            ANYWHERE
        };
    }
    // Not empty, and not ending with an empty segment.
    plain && allowed != SEGMENT_START
}

/// Where a byte may stand in a plain path, as flags (see [`is_plain`]): anywhere in a
/// segment, or also at its start. 0 is neither: the long way.
const ANYWHERE: u8 = 1;
const SEGMENT_START: u8 = 2;
/// Unreserved (RFC 3986 §2.3) other than the dot.
const UNRESERVED: u8 = ANYWHERE | SEGMENT_START;
const DOT: u8 = ANYWHERE;
/// A slash ends a segment: its class is its own, not a combination of the others.
const SLASH: u8 = ANYWHERE | 4;

/// [`is_plain`]'s flags for every byte.
const PLAIN_CLASS: [u8; 256] = {
    let mut class = [0; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        class[b] = match byte {
            b'/' => SLASH,
            b'.' => DOT,
            b'-' | b'_' | b'~' => UNRESERVED,
            _ if byte.is_ascii_alphanumeric() => UNRESERVED,
            _ => 0,
        };
        b += 1;
    }
    class
};

/// The general case of [`sanitize`]: every segment percent-decoded and checked.
fn sanitize_segments(path: &str) -> Result<PathBuf, StatusCode> {
    let mut relative = PathBuf::new();
    for raw_segment in path.split('/') {
        let segment: Cow<'_, [u8]> = percent_decode_str(raw_segment).into();
        match &*segment {
            b"" | b"." => continue,
            b".." => return Err(StatusCode::BAD_REQUEST),
            bytes if bytes.iter().any(|&b| b == b'/' || b == b'\\' || b == 0) => {
                return Err(StatusCode::BAD_REQUEST);
            }
            // Dotfiles (.env, .git) are private: not found, rather than revealing they exist.
            [b'.', ..] => return Err(StatusCode::NOT_FOUND),
            bytes => relative.push(std::ffi::OsStr::from_bytes(bytes)),
        }
    }
    Ok(relative)
}

/// The status for a failed open.
pub fn status_for(error: &io::Error) -> StatusCode {
    match error.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => StatusCode::NOT_FOUND,
        io::ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        _ => match error.raw_os_error() {
            // EXDEV: the path escapes the root; ELOOP: a symlink loop or a magic link.
            Some(code)
                if code == rustix::io::Errno::XDEV.raw_os_error()
                    || code == rustix::io::Errno::LOOP.raw_os_error() =>
            {
                StatusCode::FORBIDDEN
            }
            Some(code) if code == rustix::io::Errno::NAMETOOLONG.raw_os_error() => {
                StatusCode::NOT_FOUND
            }
            // Out of descriptors or memory: the file is fine, the server is busy; ask the
            // client to come back (RFC 9110 §15.6.4) rather than report a fault.
            Some(code) if is_resource_exhaustion(code) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
    }
}

/// EMFILE, ENFILE, ENOMEM: an open that fails for want of resources, not because of the file.
fn is_resource_exhaustion(code: i32) -> bool {
    use rustix::io::Errno;
    [Errno::MFILE, Errno::NFILE, Errno::NOMEM]
        .iter()
        .any(|errno| errno.raw_os_error() == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_accepts_plain_paths() {
        let sanitized = |path| sanitize(path).map(Cow::into_owned);
        assert_eq!(sanitized("/"), Ok(PathBuf::new()));
        assert_eq!(sanitized("/a/b.txt"), Ok(PathBuf::from("a/b.txt")));
        assert_eq!(sanitized("//a/./b%20c"), Ok(PathBuf::from("a/b c")));
    }

    #[test]
    fn the_borrowed_fast_path_agrees_with_the_general_one() {
        // Every path built from these pieces, two and three segments deep: whichever way
        // sanitize goes, it must give what the segment-by-segment sanitizer gives.
        let pieces = [
            "",
            ".",
            "..",
            "a",
            "b.txt",
            ".env",
            "a~b-c_d",
            "%2e",
            "%41",
            "a%2fb",
            "x y",
            "\\",
            "é",
            "a.",
            "..a",
            "index.html",
        ];
        let mut checked = 0;
        for first in pieces {
            for second in pieces {
                for third in ["", "c", ".", "..", "d.css"] {
                    for path in [
                        format!("/{first}/{second}/{third}"),
                        format!("/{first}/{second}"),
                        format!("/{first}"),
                    ] {
                        assert_eq!(
                            sanitize(&path).map(Cow::into_owned),
                            sanitize_segments(&path),
                            "{path:?}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 1000);
        assert!(matches!(sanitize("/a/b.txt"), Ok(Cow::Borrowed(_))));
        assert!(matches!(sanitize("/a//b.txt"), Ok(Cow::Owned(_))));
    }

    #[test]
    fn the_fast_path_takes_exactly_the_unreserved_bytes_and_slashes() {
        for byte in 0..0x80u8 {
            let c = char::from(byte);
            let unreserved = c.is_ascii_alphanumeric() || "-_.~".contains(c);
            assert_eq!(is_plain(&format!("a{c}b")), unreserved || c == '/', "{c:?}");
            assert_eq!(
                is_plain(&format!("{c}b")),
                unreserved && c != '.',
                "{c:?} first"
            );
        }
    }

    #[test]
    fn sanitize_rejects_escapes_and_hides_dotfiles() {
        let cases = [
            ("/../etc/passwd", StatusCode::BAD_REQUEST),
            ("/%2e%2e/etc/passwd", StatusCode::BAD_REQUEST),
            ("/%2E%2E/etc/passwd", StatusCode::BAD_REQUEST),
            ("/a/..%2f..%2fetc", StatusCode::BAD_REQUEST),
            ("/a%5c..%5cb", StatusCode::BAD_REQUEST),
            ("/a\\..\\b", StatusCode::BAD_REQUEST),
            ("/foo%00.txt", StatusCode::BAD_REQUEST),
            ("/.env", StatusCode::NOT_FOUND),
            ("/%2eenv", StatusCode::NOT_FOUND),
            ("/dir/.git/config", StatusCode::NOT_FOUND),
        ];
        for (path, status) in cases {
            assert_eq!(sanitize(path).map(Cow::into_owned), Err(status), "{path}");
        }
    }

    #[test]
    fn running_out_of_descriptors_is_a_503() {
        for errno in [rustix::io::Errno::MFILE, rustix::io::Errno::NFILE] {
            let error = io::Error::from_raw_os_error(errno.raw_os_error());
            assert_eq!(status_for(&error), StatusCode::SERVICE_UNAVAILABLE);
        }
        assert_eq!(
            status_for(&io::Error::from(io::ErrorKind::NotFound)),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status_for(&io::Error::other("?")),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    /// Both ways of opening (openat2, and the canonical-path fallback for kernels without it)
    /// serve symlinks that stay inside the root and refuse those that leave it.
    #[test]
    fn containment_holds_with_and_without_openat2() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "secret").unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("file"), "ok").unwrap();
        let link = |target: &Path, name: &str| {
            std::os::unix::fs::symlink(target, root.path().join(name)).unwrap();
        };
        link(&outside.path().join("secret"), "out");
        link(&root.path().join("file"), "in-absolute");
        link(Path::new("file"), "in-relative");
        link(Path::new("../../../../../../etc/passwd"), "up");

        for without_openat2 in [false, true] {
            let files = Root::open(root.path()).unwrap();
            files
                .openat2_unavailable
                .store(without_openat2, Ordering::Relaxed);
            for name in ["file", "in-absolute", "in-relative"] {
                assert!(files.open_beneath(Path::new(name)).is_ok(), "{name}");
            }
            for name in ["out", "up"] {
                let error = files.open_beneath(Path::new(name)).unwrap_err();
                assert_eq!(
                    status_for(&error),
                    StatusCode::FORBIDDEN,
                    "{name} without openat2: {without_openat2}"
                );
            }
        }
    }
}
