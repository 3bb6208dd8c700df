//! Serving files from a directory (`www/` by default), never anything outside it.
//!
//! The pipeline for one request:
//! 1. Method: GET and HEAD are served, OPTIONS is answered with `Allow`, the rest get 405.
//! 2. Path: sanitized and opened beneath the root (`root`), through the file cache (`cache`):
//!    a hot small file is answered from memory without a syscall.
//! 3. Directories: served through `index.html`; one named without its trailing slash is
//!    redirected (301) with a relative `Location`; without an index, listed if `--list-dirs`.
//! 4. Not found: `--spa` answers extension-less paths with `/index.html`; a `404.html` in the
//!    root is the body of every 404.
//! 5. Representation: a pre-compressed sidecar (`file.br`, `file.gz`) or, with `--compress`, a
//!    compressed copy made once, when the client accepts the coding (`encoding`).
//! 6. Preconditions (`conditional`, RFC 9110 §13.2.2): 304 or 412.
//! 7. Ranges (`range`, RFC 9110 §14): 206, multipart 206, or 416.
//! 8. The response: validators, `Cache-Control`, `Vary`, and the body as shared bytes (cached)
//!    or an open file (the connection sends it with sendfile).

mod cache;
mod conditional;
mod encoding;
mod listing;
mod range;
mod root;

use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use crate::http::request::Request;
use crate::http::response::{Body, Response};
use cache::{FileCache, FileInfo, Lookup, Resolved, content_type};
use conditional::{Precondition, Validators};
use encoding::Coding;
use range::RangeReply;
use root::{Root, sanitize};

/// The methods a static resource allows (RFC 9110 §10.2.1).
pub const ALLOW: &str = "GET, HEAD, OPTIONS";

/// The file served for a directory.
const INDEX_FILE: &str = "index.html";
/// The body of 404 responses, when the root has one.
const NOT_FOUND_FILE: &str = "404.html";
/// `Cache-Control` for fingerprinted names with `--immutable-fingerprinted`.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Files smaller than this are not worth compressing on the fly.
const MIN_COMPRESS_BYTES: u64 = 1024;
/// A multipart/byteranges body is built in memory only up to this size; beyond it the whole
/// file is sent instead (allowed by RFC 9110 §14.2).
const MAX_MULTIPART_BYTES: u64 = 4 * 1024 * 1024;

/// How a directory is served; the defaults are the binary's.
#[derive(Clone, Debug)]
pub struct StaticOptions {
    /// `Cache-Control` of every file response.
    pub cache_control: String,
    /// Long-lived immutable caching for names with a content hash (`app.3f2a9c1b.js`).
    pub immutable_fingerprinted: bool,
    /// Compress text files on the fly (once each) for clients that accept br or gzip.
    pub compress: bool,
    /// Memory for cached file bytes and lookups.
    pub cache_bytes: usize,
    /// List directories that have no index.html.
    pub list_dirs: bool,
    /// Answer unknown extension-less paths with /index.html (single-page apps).
    pub spa: bool,
}

impl Default for StaticOptions {
    fn default() -> Self {
        StaticOptions {
            cache_control: "no-cache".to_owned(),
            immutable_fingerprinted: false,
            compress: false,
            cache_bytes: 64 * 1024 * 1024,
            list_dirs: false,
            spa: false,
        }
    }
}

/// A directory of files served read-only.
pub struct StaticFiles {
    root: Root,
    options: StaticOptions,
    cache: RefCell<FileCache>,
}

impl std::fmt::Debug for StaticFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticFiles")
            .field("root", &self.root.path())
            .field("options", &self.options)
            .finish()
    }
}

/// The representation chosen for a response: identity, or one content coding.
struct Variant {
    data: Data,
    len: u64,
    etag: String,
    coding: Option<Coding>,
}

enum Data {
    Bytes(Arc<[u8]>),
    File(File),
}

impl StaticFiles {
    /// Opens `root` (a directory) with the default options.
    pub fn new(root: impl AsRef<Path>) -> io::Result<StaticFiles> {
        StaticFiles::with_options(root, StaticOptions::default())
    }

    pub fn with_options(root: impl AsRef<Path>, options: StaticOptions) -> io::Result<StaticFiles> {
        Ok(StaticFiles {
            root: Root::open(root)?,
            cache: RefCell::new(FileCache::new(options.cache_bytes)),
            options,
        })
    }

    /// The canonical path of the root directory.
    pub fn root(&self) -> &Path {
        self.root.path()
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
        // 2. Path.
        let relative = match sanitize(path) {
            Ok(relative) => relative,
            Err(404) => return self.not_found(request, path),
            Err(status) => return Response::error(status),
        };
        match self.lookup(&relative) {
            Lookup {
                resolved: Resolved::File(info),
                file,
            } => {
                // A file named with a trailing slash does not exist (as in POSIX).
                if path.ends_with('/') {
                    return self.not_found(request, path);
                }
                self.serve_file(request, &relative, &info, file)
            }
            // 3. Directories.
            Lookup {
                resolved: Resolved::Dir,
                ..
            } => {
                if !path.ends_with('/') {
                    return redirect_to_slash(request);
                }
                let index = relative.join(INDEX_FILE);
                match self.lookup(&index) {
                    Lookup {
                        resolved: Resolved::File(info),
                        file,
                    } => self.serve_file(request, &index, &info, file),
                    Lookup {
                        resolved: Resolved::Missing(404),
                        ..
                    } if self.options.list_dirs => match self.root.open_beneath(&relative) {
                        Ok(dir) => listing::listing(request, dir, request.path()),
                        Err(_) => Response::error(500),
                    },
                    Lookup {
                        resolved: Resolved::Missing(404) | Resolved::Dir,
                        ..
                    } => self.not_found(request, path),
                    Lookup {
                        resolved: Resolved::Missing(status),
                        ..
                    } => Response::error(status),
                }
            }
            Lookup {
                resolved: Resolved::Missing(404),
                ..
            } => self.not_found(request, path),
            Lookup {
                resolved: Resolved::Missing(status),
                ..
            } => Response::error(status),
        }
    }

    fn lookup(&self, relative: &Path) -> Lookup {
        self.cache
            .borrow_mut()
            .lookup(&self.root, relative, Instant::now())
    }

    /// 4. The SPA fallback, the custom 404 page, or the plain 404.
    fn not_found(&self, request: &Request<'_>, path: &str) -> Response {
        let last_segment = path.rsplit('/').next().unwrap_or_default();
        if self.options.spa && !last_segment.contains('.') {
            let index = Path::new(INDEX_FILE);
            if let Lookup {
                resolved: Resolved::File(info),
                file,
            } = self.lookup(index)
            {
                return self.serve_file(request, index, &info, file);
            }
        }
        let page = Path::new(NOT_FOUND_FILE);
        if let Lookup {
            resolved: Resolved::File(info),
            file,
        } = self.lookup(page)
        {
            let body = match (&info.bytes, file) {
                (Some(bytes), _) => Body::shared(Arc::clone(bytes)),
                (None, Some(file)) => Body::File {
                    file,
                    offset: 0,
                    len: info.len,
                },
                (None, None) => return Response::error(404),
            };
            return Response::empty(404)
                .with_header("Content-Type", content_type(page))
                .with_header("Cache-Control", "no-cache")
                .with_body(body);
        }
        Response::error(404)
    }

    /// Steps 5–8 for a regular file.
    fn serve_file(
        &self,
        request: &Request<'_>,
        relative: &Path,
        info: &Rc<FileInfo>,
        file: Option<File>,
    ) -> Response {
        let content_type = content_type(relative);
        // 5. Representation.
        let (variant, alternatives) =
            match self.choose_variant(request, relative, info, file, &content_type) {
                Some(chosen) => chosen,
                None => return Response::error(500),
            };
        let cache_control = if self.options.immutable_fingerprinted && is_fingerprinted(relative) {
            IMMUTABLE.to_owned()
        } else {
            self.options.cache_control.clone()
        };
        let with_cache_headers = |response: Response| {
            let response = response
                .with_header("ETag", variant.etag.clone())
                .with_header("Cache-Control", cache_control.clone());
            if alternatives {
                response.with_header("Vary", "Accept-Encoding")
            } else {
                response
            }
        };
        // 6. Preconditions.
        let validators = Validators {
            etag: &variant.etag,
            modified_secs: info.modified_secs,
        };
        let range_allowed = match conditional::evaluate(request, validators) {
            // RFC 9110 §15.4.5: the 304 carries the fields a 200 would have for caching.
            Precondition::NotModified => return with_cache_headers(Response::empty(304)),
            Precondition::Failed => return Response::error(412),
            Precondition::Proceed { range_allowed } => range_allowed,
        };
        // 7. Ranges: GET only (RFC 9110 §14.2).
        let range_header = request
            .header("range")
            .filter(|_| range_allowed && request.method() == "GET");
        let reply = range_header.map_or(RangeReply::Whole, |header| {
            range::resolve(header, variant.len)
        });
        let reply = match reply {
            RangeReply::Multiple(ranges)
                if ranges.iter().map(|r| r.end - r.start).sum::<u64>() > MAX_MULTIPART_BYTES =>
            {
                let _ = ranges;
                RangeReply::Whole
            }
            other => other,
        };
        // 8. The response.
        let mut response = match reply {
            RangeReply::Unsatisfiable => {
                return Response::error(416)
                    .with_header("Content-Range", format!("bytes */{}", variant.len))
                    .with_header("Accept-Ranges", "bytes");
            }
            RangeReply::Whole => Response::empty(200)
                .with_header("Content-Type", content_type.clone())
                .with_body(variant.data.body(0..variant.len)),
            RangeReply::Single(range) => Response::empty(206)
                .with_header("Content-Type", content_type.clone())
                .with_header("Content-Range", range::content_range(&range, variant.len))
                .with_body(variant.data.body(range)),
            RangeReply::Multiple(ranges) => {
                let Some(bytes) = variant.data.read_all(variant.len) else {
                    return Response::error(500);
                };
                let body = range::multipart_body(&bytes, &ranges, &content_type);
                Response::empty(206)
                    .with_header(
                        "Content-Type",
                        format!("multipart/byteranges; boundary={}", range::BOUNDARY),
                    )
                    .with_body(Body::Bytes(body.into()))
            }
        };
        response = response
            .with_header("Last-Modified", info.last_modified.clone())
            .with_header("Accept-Ranges", "bytes");
        if let Some(coding) = variant.coding {
            response = response.with_header("Content-Encoding", coding.token());
        }
        with_cache_headers(response)
    }

    /// Picks identity or a coding the client accepts, preferring a sidecar to compressing.
    /// Also says whether the response varies by `Accept-Encoding` at all.
    fn choose_variant(
        &self,
        request: &Request<'_>,
        relative: &Path,
        info: &Rc<FileInfo>,
        file: Option<File>,
        content_type: &str,
    ) -> Option<(Variant, bool)> {
        // Sidecars count only if at least as new as the file they compress.
        let mut sidecars: Vec<(Coding, Rc<FileInfo>, Option<File>)> = Vec::new();
        for coding in Coding::ALL {
            let mut name = relative.as_os_str().to_owned();
            name.push(".");
            name.push(coding.extension());
            if let Lookup {
                resolved: Resolved::File(sidecar),
                file,
            } = self.lookup(&PathBuf::from(name))
                && sidecar.modified_secs >= info.modified_secs
            {
                sidecars.push((coding, sidecar, file));
            }
        }
        let on_the_fly = self.options.compress
            && encoding::is_compressible(content_type)
            && info.bytes.is_some()
            && info.len >= MIN_COMPRESS_BYTES;
        let alternatives = on_the_fly || !sidecars.is_empty();

        for coding in encoding::accepted(request.header("accept-encoding")) {
            if let Some(index) = sidecars.iter().position(|(c, _, _)| *c == coding) {
                let (_, sidecar, file) = sidecars.swap_remove(index);
                let data = Data::of(&sidecar, file)?;
                let variant = Variant {
                    data,
                    len: sidecar.len,
                    // The sidecar's own validator, marked so it never equals the identity's.
                    etag: coded_etag(&sidecar.etag, coding),
                    coding: Some(coding),
                };
                return Some((variant, alternatives));
            }
            if on_the_fly
                && let Some(bytes) = info
                    .compressed(coding)
                    .filter(|b| (b.len() as u64) < info.len)
            {
                let variant = Variant {
                    len: bytes.len() as u64,
                    data: Data::Bytes(bytes),
                    // The same file, another representation: its own strong validator.
                    etag: coded_etag(&info.etag, coding),
                    coding: Some(coding),
                };
                return Some((variant, alternatives));
            }
        }
        let variant = Variant {
            data: Data::of(info, file)?,
            len: info.len,
            etag: info.etag.clone(),
            coding: None,
        };
        Some((variant, alternatives))
    }
}

impl Data {
    /// The cached bytes, or the file the lookup opened; `None` if neither (a cached entry
    /// whose bytes were not kept cannot happen, but is not served blind).
    fn of(info: &FileInfo, file: Option<File>) -> Option<Data> {
        match (&info.bytes, file) {
            (Some(bytes), _) => Some(Data::Bytes(Arc::clone(bytes))),
            (None, Some(file)) => Some(Data::File(file)),
            (None, None) => None,
        }
    }

    fn body(self, range: std::ops::Range<u64>) -> Body {
        match self {
            Data::Bytes(bytes) => Body::Shared {
                bytes,
                range: range.start as usize..range.end as usize,
            },
            Data::File(file) => Body::File {
                file,
                offset: range.start,
                len: range.end - range.start,
            },
        }
    }

    fn read_all(&self, len: u64) -> Option<Arc<[u8]>> {
        match self {
            Data::Bytes(bytes) => Some(Arc::clone(bytes)),
            Data::File(file) => {
                let mut bytes = vec![0; usize::try_from(len).ok()?];
                file.read_exact_at(&mut bytes, 0).ok()?;
                Some(bytes.into())
            }
        }
    }
}

/// `"abc"` → `"abc-br"`: a validator per content coding.
fn coded_etag(etag: &str, coding: Coding) -> String {
    format!("{}-{}\"", etag.trim_end_matches('"'), coding.extension())
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

/// A file name with a content hash: a segment of 8+ hex digits after the first, split on `.`
/// and `-` (`app.3f2a9c1b.js`, `logo-5d41402a.png`; not `deadbeef.txt`).
fn is_fingerprinted(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
        return false;
    };
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    stem.split(['.', '-'])
        .skip(1)
        .any(|segment| segment.len() >= 8 && segment.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn fingerprinted_names() {
        for name in [
            "app.3f2a9c1b.js",
            "logo-5d41402a.png",
            "x.0123456789abcdef.css",
        ] {
            assert!(is_fingerprinted(Path::new(name)), "{name}");
        }
        for name in [
            "deadbeef.txt",
            "app.js",
            "app.3f2a9c1.js",
            "report-2026.pdf",
        ] {
            assert!(!is_fingerprinted(Path::new(name)), "{name}");
        }
    }
}
