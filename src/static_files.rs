//! Serving files from a directory (`www/` by default), never anything outside it.
//!
//! The pipeline for one request:
//! 1. Method: GET and HEAD are served, OPTIONS is answered with `Allow`, the rest get 405.
//! 2. Sanitize the path segment by segment after percent-decoding: `..`, encoded slashes,
//!    backslashes and NUL are rejected (400); dotfiles are hidden (404).
//! 3. Open the file relative to the root directory with `openat2(RESOLVE_BENEATH)`: the kernel
//!    refuses any resolution, symlinks included, that would leave the root (403). Where the
//!    kernel lacks openat2 the same check is made on the canonical path.
//! 4. A directory is served through its `index.html`; one named without its trailing slash is
//!    redirected (301) to the slash form with a relative `Location`.
//! 5. The response carries Content-Type (from the extension), Last-Modified and an ETag, and
//!    the open file as its body; the connection decides whether to copy it or stream it.

use std::borrow::Cow;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use percent_encoding::percent_decode_str;
use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::http::request::Request;
use crate::http::response::{Body, Response};

/// The methods a static resource allows (RFC 9110 §10.2.1).
pub const ALLOW: &str = "GET, HEAD, OPTIONS";

/// How files are opened. O_NONBLOCK: a FIFO someone dropped into the root must not block the
/// loop on open.
const OPEN_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOCTTY)
    .union(OFlags::NONBLOCK);

/// The file served for a directory.
const INDEX_FILE: &str = "index.html";

/// A directory of files served read-only.
#[derive(Debug)]
pub struct StaticFiles {
    root: File,
    root_path: PathBuf,
    /// Set once openat2 turned out to be unavailable (old kernel or a seccomp filter).
    openat2_unavailable: AtomicBool,
}

impl StaticFiles {
    /// Opens `root`; it must be a directory.
    pub fn new(root: impl AsRef<Path>) -> io::Result<StaticFiles> {
        let root_path = root.as_ref().canonicalize()?;
        let fd = rustix::fs::open(
            &root_path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(StaticFiles {
            root: File::from(fd),
            root_path,
            openat2_unavailable: AtomicBool::new(false),
        })
    }

    /// The canonical path of the root directory.
    pub fn root(&self) -> &Path {
        &self.root_path
    }

    /// Answers `request` for the URL path `path` (relative to where the directory is mounted,
    /// still percent-encoded, starting with `/`).
    pub fn serve(&self, request: &Request<'_>, path: &str) -> Response {
        // 1. Method.
        match request.method() {
            "GET" | "HEAD" => {}
            "OPTIONS" => return Response::empty(200).with_header("Allow", ALLOW),
            _ => return Response::error(405).with_header("Allow", ALLOW),
        }
        // 2. Sanitize.
        let relative = match sanitize(path) {
            Ok(relative) => relative,
            Err(status) => return Response::error(status),
        };
        // 3. Open beneath the root.
        let (file, metadata) = match self.open_with_metadata(&relative) {
            Ok(opened) => opened,
            Err(error) => return Response::error(status_for(&error)),
        };
        // 4. Directories; a file named with a trailing slash does not exist (as in POSIX).
        if metadata.is_dir() {
            if !path.ends_with('/') {
                return redirect_to_slash(request);
            }
            let index = relative.join(INDEX_FILE);
            return match self.open_with_metadata(&index) {
                Ok((file, metadata)) => file_response(file, &metadata, &index),
                Err(error) => Response::error(status_for(&error)),
            };
        }
        if path.ends_with('/') {
            return Response::error(404);
        }
        file_response(file, &metadata, &relative)
    }

    fn open_with_metadata(&self, relative: &Path) -> io::Result<(File, Metadata)> {
        let file = self.open_beneath(relative)?;
        let metadata = file.metadata()?;
        Ok((file, metadata))
    }

    /// Opens `relative` (no leading slash) without ever resolving outside the root.
    fn open_beneath(&self, relative: &Path) -> io::Result<File> {
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
        rustix::fs::openat2(&self.root, target, OPEN_FLAGS, Mode::empty(), resolve).map(File::from)
    }

    /// The slow path: resolve every symlink, check containment, then open the resolved path
    /// (beneath the root again where openat2 exists, so a symlink swapped in between is caught).
    fn open_canonical(&self, target: &Path) -> io::Result<File> {
        let canonical = self.root_path.join(target).canonicalize()?;
        let Ok(inside) = canonical.strip_prefix(&self.root_path) else {
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

/// Turns the URL path into a relative filesystem path, or the status to refuse it with.
fn sanitize(path: &str) -> Result<PathBuf, u16> {
    let mut relative = PathBuf::new();
    for raw_segment in path.split('/') {
        let segment: Cow<'_, [u8]> = percent_decode_str(raw_segment).into();
        match &*segment {
            b"" | b"." => continue,
            b".." => return Err(400),
            bytes if bytes.iter().any(|&b| b == b'/' || b == b'\\' || b == 0) => return Err(400),
            // Dotfiles (.env, .git) are private: not found, rather than revealing they exist.
            [b'.', ..] => return Err(404),
            bytes => relative.push(std::ffi::OsStr::from_bytes(bytes)),
        }
    }
    Ok(relative)
}

/// The status for a failed open.
fn status_for(error: &io::Error) -> u16 {
    match error.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => 404,
        io::ErrorKind::PermissionDenied => 403,
        _ => match error.raw_os_error() {
            // EXDEV: the path escapes the root; ELOOP: a symlink loop or a magic link.
            Some(code)
                if code == rustix::io::Errno::XDEV.raw_os_error()
                    || code == rustix::io::Errno::LOOP.raw_os_error() =>
            {
                403
            }
            Some(code) if code == rustix::io::Errno::NAMETOOLONG.raw_os_error() => 404,
            _ => 500,
        },
    }
}

/// 301 to the same path with a trailing slash, as a relative reference (RFC 9110 §10.2.2):
/// the last segment plus `/`, and the query kept.
fn redirect_to_slash(request: &Request<'_>) -> Response {
    let last_segment = request.path().rsplit('/').next().unwrap_or_default();
    let mut location = String::with_capacity(last_segment.len() + 4);
    // RFC 3986 §4.2: a first segment with a colon would read as a scheme (`a:b/`).
    if last_segment.contains(':') {
        location.push_str("./");
    }
    location.push_str(last_segment);
    location.push('/');
    if let Some(query) = request.query() {
        location.push('?');
        location.push_str(query);
    }
    Response::redirect(301, location)
}

/// A 200 response carrying `file`, with its type and validators.
fn file_response(file: File, metadata: &Metadata, path: &Path) -> Response {
    if !metadata.is_file() {
        return Response::error(404);
    }
    let modified = UNIX_EPOCH
        + Duration::new(
            metadata.mtime().max(0).unsigned_abs(),
            u32::try_from(metadata.mtime_nsec()).unwrap_or(0),
        );
    let len = metadata.len();
    Response::empty(200)
        .with_header("Content-Type", content_type(path))
        .with_header("Last-Modified", httpdate::fmt_http_date(modified))
        .with_header("ETag", entity_tag(metadata))
        .with_body(Body::File { file, len })
}

/// A strong validator from what changes when the file does: modification time and size.
fn entity_tag(metadata: &Metadata) -> String {
    format!(
        "\"{:x}.{:x}-{:x}\"",
        metadata.mtime(),
        metadata.mtime_nsec(),
        metadata.len()
    )
}

/// The media type for `path` by extension; text types are declared UTF-8.
fn content_type(path: &Path) -> Cow<'static, str> {
    let Some(essence) = mime_guess::from_path(path).first_raw() else {
        return Cow::Borrowed("application/octet-stream");
    };
    let textual = essence.starts_with("text/")
        || matches!(
            essence,
            "application/javascript" | "application/json" | "application/xml" | "image/svg+xml"
        );
    match essence {
        "text/html" => Cow::Borrowed("text/html; charset=utf-8"),
        "text/css" => Cow::Borrowed("text/css; charset=utf-8"),
        "text/plain" => Cow::Borrowed("text/plain; charset=utf-8"),
        "text/javascript" | "application/javascript" => {
            Cow::Borrowed("text/javascript; charset=utf-8")
        }
        _ if textual => Cow::Owned(format!("{essence}; charset=utf-8")),
        _ => Cow::Borrowed(essence),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_accepts_plain_paths() {
        assert_eq!(sanitize("/"), Ok(PathBuf::new()));
        assert_eq!(sanitize("/a/b.txt"), Ok(PathBuf::from("a/b.txt")));
        assert_eq!(sanitize("//a/./b%20c"), Ok(PathBuf::from("a/b c")));
    }

    #[test]
    fn sanitize_rejects_escapes_and_hides_dotfiles() {
        let cases = [
            ("/../etc/passwd", 400),
            ("/%2e%2e/etc/passwd", 400),
            ("/%2E%2E/etc/passwd", 400),
            ("/a/..%2f..%2fetc", 400),
            ("/a%5c..%5cb", 400),
            ("/a\\..\\b", 400),
            ("/foo%00.txt", 400),
            ("/.env", 404),
            ("/%2eenv", 404),
            ("/dir/.git/config", 404),
        ];
        for (path, status) in cases {
            assert_eq!(sanitize(path), Err(status), "{path}");
        }
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
            let files = StaticFiles::new(root.path()).unwrap();
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
                    403,
                    "{name} without openat2: {without_openat2}"
                );
            }
        }
    }

    #[test]
    fn text_types_are_utf8() {
        assert_eq!(
            content_type(Path::new("a.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("a.js")),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("a.svg")),
            "image/svg+xml; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("a.png")), "image/png");
        assert_eq!(
            content_type(Path::new("a.unknownext")),
            "application/octet-stream"
        );
    }
}
