//! Serving files from a directory (`www/` by default), never anything outside it.
//!
//! The pipeline for one request:
//! 1. Method: GET and HEAD are served, OPTIONS is answered with `Allow`, the rest get 405.
//! 2. Path: sanitized and opened beneath the root (`root`), through the file cache (`cache`):
//!    a hot small file is answered from memory without a syscall.
//! 3. Directories: served through `index.html`; one named without its trailing slash is
//!    redirected (301) with a relative `Location`; without an index, listed if `--list-dirs`
//!    (on a helper thread: reading a directory costs as much as it has entries).
//! 4. Not found: `--spa` answers extension-less paths with `/index.html`; a `404.html` in the
//!    root is the body of every 404.
//! 5. Representation: a pre-compressed sidecar (`file.br`, `file.gz`) or, with `--compress`, a
//!    compressed copy made once, when the client accepts the coding (`encoding`). The copy is
//!    made on a helper thread ([`Reply::Prepare`]); the request is then handled again.
//! 6. Preconditions (`conditional`, RFC 9110 §13.2.2): 304 or 412.
//! 7. Ranges (`range`, RFC 9110 §14): 206, multipart 206 (streamed from the file), or 416.
//! 8. The response: validators, `Cache-Control`, `Vary`, and the body as shared bytes (cached)
//!    or an open file (the connection sends it with sendfile, in bounded steps).
//!
//! For `--watch` (live reload), two options change what the cache holds: a [`ChangeCounter`]
//! that makes every cache forget everything when a file changes, and a snippet put into every
//! HTML page held in memory (`inject`). Without them nothing here differs by a byte.
//!
//! On the loop this costs a cache lookup, or on a miss an open, an fstat and, for a file of
//! at most `MAX_CACHED_FILE` (256 KiB), one read into the cache: bounded steps, like one
//! sendfile call. Nothing here reads a file whose size is not bounded.

mod cache;
// Visible to the crate for the fuzz targets (`crate::fuzzing`).
pub(crate) mod conditional;
pub(crate) mod encoding;
mod inject;
mod listing;
pub(crate) mod range;
pub(crate) mod root;

/// What the file cache counts (for the metrics).
pub use cache::CacheStats;
pub use cache::ChangeCounter;
/// URL path → relative file path (public for the benches).
pub use root::sanitize;

use std::borrow::Cow;
use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use smallvec::smallvec;

use crate::http::method::Method;
use crate::http::request::Request;
use crate::http::response::{Body, HeaderFields, HeaderValue, Response, encode_fields};
use crate::http::status::StatusCode;
use crate::router::Reply;
use cache::{FileCache, FileInfo, Lookup, Resolved, Sidecars};
use conditional::{Precondition, Validators};
use encoding::Coding;
use range::RangeReply;
use root::{Root, status_for};

/// The methods a static resource allows (RFC 9110 §10.2.1).
pub const ALLOW: &str = "GET, HEAD, OPTIONS";

/// The file served for a directory.
const INDEX_FILE: &str = "index.html";
/// The body of 404 responses, when the root has one.
const NOT_FOUND_FILE: &str = "404.html";
/// `Cache-Control` for fingerprinted names with `--immutable-fingerprinted`.
static IMMUTABLE: HeaderValue = HeaderValue::Static("public, max-age=31536000, immutable");
/// Files smaller than this are not worth compressing on the fly.
const MIN_COMPRESS_BYTES: u64 = 1024;
/// `Retry-After` (seconds) when the server is out of descriptors (503).
const RETRY_AFTER_SECS: &str = "1";

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
    /// Files may change under the root while it is served: whenever this counter moves, the
    /// file cache forgets everything it knew (`--watch` moves it on every change it sees).
    pub changes: Option<ChangeCounter>,
    /// Put into every HTML page held in the file cache, before `</body>` or at the end
    /// (`--watch`: live reload's script tag). Larger pages are sent as they are.
    pub html_snippet: Option<Arc<str>>,
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
            changes: None,
            html_snippet: None,
        }
    }
}

/// A directory of files served read-only.
pub struct StaticFiles {
    root: Root,
    options: StaticOptions,
    /// `options.cache_control`, shared by every response instead of copied into each.
    cache_control: HeaderValue,
    cache: RefCell<FileCache>,
    /// Room for a sidecar's name (`<path>.br`), reused so that looking for sidecars costs no
    /// allocation per request.
    sidecar_name: RefCell<PathBuf>,
    /// Room for a directory's index name (`<path>/index.html`), reused the same way.
    index_name: RefCell<PathBuf>,
}

impl std::fmt::Debug for StaticFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticFiles")
            .field("root", &self.root.path())
            .field("options", &self.options)
            .finish()
    }
}

/// What step 5 decided.
enum Choice<'i> {
    Variant {
        variant: Variant<'i>,
        /// Whether the response varies by `Accept-Encoding` at all.
        alternatives: bool,
    },
    /// The best coding's copy must be made first (off the loop).
    Compress {
        coding: Coding,
        bytes: Arc<[u8]>,
        copies: Arc<encoding::Compressed>,
    },
}

/// The representation chosen for a response: identity, or one content coding.
struct Variant<'i> {
    data: Data,
    len: u64,
    /// Borrowed from the file's info for the identity (no reference count touched per
    /// request), made for a coding.
    etag: Cow<'i, Arc<str>>,
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
        let mut cache = FileCache::new(options.cache_bytes);
        if let Some(changes) = &options.changes {
            cache = cache.forget_on(changes.clone());
        }
        if let Some(snippet) = &options.html_snippet {
            cache = cache.inject_into_html(Arc::clone(snippet));
        }
        Ok(StaticFiles {
            root: Root::open(root)?,
            cache: RefCell::new(cache),
            cache_control: HeaderValue::Shared(options.cache_control.as_str().into()),
            sidecar_name: RefCell::default(),
            index_name: RefCell::default(),
            options,
        })
    }

    /// The file cache's counters.
    pub fn cache_stats(&self) -> Arc<CacheStats> {
        self.cache.borrow().stats()
    }

    /// The canonical path of the root directory.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Answers `request` for the URL path `path` (relative to where the directory is mounted,
    /// still percent-encoded, starting with `/`).
    pub fn serve(&self, request: &Request<'_>, path: &str) -> Reply {
        // 1. Method.
        match request.method() {
            Method::Get | Method::Head => {}
            Method::Options => {
                return Reply::Now(Response::empty(StatusCode::OK).with_header("Allow", ALLOW));
            }
            _ => {
                return Reply::Now(
                    Response::error(StatusCode::METHOD_NOT_ALLOWED).with_header("Allow", ALLOW),
                );
            }
        }
        // 2. Path.
        let relative = match sanitize(path) {
            Ok(relative) => relative,
            Err(StatusCode::NOT_FOUND) => return self.not_found(request, path),
            Err(status) => return Reply::Now(refusal(status)),
        };
        let Lookup { resolved, file } = self.lookup(&relative, request.now());
        let info = match resolved {
            // A file named with a trailing slash does not exist (as in POSIX).
            Resolved::File(_) if path.ends_with('/') => {
                return self.not_found(request, path);
            }
            Resolved::File(info) => info,
            Resolved::Dir => return self.serve_dir(request, path, &relative),
            Resolved::Missing(StatusCode::NOT_FOUND) => return self.not_found(request, path),
            Resolved::Missing(status) => return Reply::Now(refusal(status)),
        };
        self.serve_file(request, &relative, &info, file)
    }

    /// 3. A directory: its index, a redirect to the name with a slash, or its listing.
    fn serve_dir(&self, request: &Request<'_>, path: &str, relative: &Path) -> Reply {
        if !path.ends_with('/') {
            return Reply::Now(redirect_to_slash(request));
        }
        let mut index = self.index_name.borrow_mut();
        index.as_mut_os_string().clear();
        index.push(relative);
        index.push(INDEX_FILE);
        let Lookup { resolved, file } = self.lookup(&index, request.now());
        match resolved {
            Resolved::File(info) => self.serve_file(request, &index, &info, file),
            Resolved::Missing(StatusCode::NOT_FOUND) if self.options.list_dirs => {
                match self.root.open_beneath(relative) {
                    Ok(dir) => {
                        let wants_json =
                            request.header("accept").is_some_and(listing::prefers_json);
                        let url_path = request.path().to_owned();
                        Reply::later(move || listing::listing(dir, &url_path, wants_json))
                    }
                    Err(error) => Reply::Now(refusal(status_for(&error))),
                }
            }
            Resolved::Missing(StatusCode::NOT_FOUND) | Resolved::Dir => {
                self.not_found(request, path)
            }
            Resolved::Missing(status) => Reply::Now(refusal(status)),
        }
    }

    /// The pre-compressed sidecars (`<file>.br`, `<file>.gz`) of `relative` that are at least
    /// as new as the file they compress: remembered by the file's cache entry for a second,
    /// so a request usually looks up none of their names. A page with the HTML snippet has
    /// none: they were made from the file without it.
    fn sidecars(&self, relative: &Path, info: &FileInfo, now: Instant) -> Sidecars {
        if info.injected {
            return Sidecars::default();
        }
        if let Some(known) = info.known_sidecars(now) {
            return known;
        }
        let mut sidecars = Sidecars::default();
        for coding in Coding::ALL {
            let lookup = {
                let mut name = self.sidecar_name.borrow_mut();
                let name = name.as_mut_os_string();
                name.clear();
                name.push(relative.as_os_str());
                name.push(".");
                name.push(coding.extension());
                self.lookup(Path::new(name.as_os_str()), now)
            };
            if let Lookup {
                resolved: Resolved::File(sidecar),
                file,
            } = lookup
                && sidecar.modified_secs >= info.modified_secs
            {
                sidecars[coding.index()] = Some((sidecar, file));
            }
        }
        info.remember_sidecars(now, &sidecars);
        sidecars
    }

    /// Looks `relative` up through the cache, at the request's time `now`.
    fn lookup(&self, relative: &Path, now: Instant) -> Lookup {
        self.cache.borrow_mut().lookup(&self.root, relative, now)
    }

    /// 4. The SPA fallback, the custom 404 page, or the plain 404.
    fn not_found(&self, request: &Request<'_>, path: &str) -> Reply {
        let last_segment = path.rsplit('/').next().unwrap_or_default();
        if self.options.spa && !last_segment.contains('.') {
            let index = Path::new(INDEX_FILE);
            if let Lookup {
                resolved: Resolved::File(info),
                file,
            } = self.lookup(index, request.now())
            {
                return self.serve_file(request, index, &info, file);
            }
        }
        let page = Path::new(NOT_FOUND_FILE);
        if let Lookup {
            resolved: Resolved::File(info),
            file,
        } = self.lookup(page, request.now())
        {
            let body = match (&info.bytes, file) {
                (Some(bytes), _) => Body::shared(Arc::clone(bytes)),
                (None, Some(file)) => Body::File {
                    file,
                    offset: 0,
                    len: info.len,
                },
                (None, None) => return Reply::Now(Response::error(StatusCode::NOT_FOUND)),
            };
            return Reply::Now(
                Response::empty(StatusCode::NOT_FOUND)
                    .with_header("Content-Type", info.content_type.clone())
                    .with_header("Cache-Control", "no-cache")
                    .with_body(body),
            );
        }
        Reply::Now(Response::error(StatusCode::NOT_FOUND))
    }

    /// Steps 5–8 for a regular file.
    fn serve_file(
        &self,
        request: &Request<'_>,
        relative: &Path,
        info: &Rc<FileInfo>,
        file: Option<File>,
    ) -> Reply {
        let content_type = &info.content_type;
        // 5. Representation.
        let (variant, alternatives) =
            match self.choose_variant(request, relative, info, file, content_type) {
                Some(Choice::Variant {
                    variant,
                    alternatives,
                }) => (variant, alternatives),
                Some(Choice::Compress {
                    coding,
                    bytes,
                    copies,
                }) => {
                    return Reply::prepare(move || {
                        copies.make(coding, &bytes);
                    });
                }
                None => return Reply::Now(Response::error(StatusCode::INTERNAL_SERVER_ERROR)),
            };
        let cache_control = if self.options.immutable_fingerprinted && is_fingerprinted(relative) {
            &IMMUTABLE
        } else {
            &self.cache_control
        };
        let with_cache_headers = |response: Response| {
            let response = response
                .with_header("ETag", &*variant.etag)
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
            Precondition::NotModified => {
                return Reply::Now(with_cache_headers(Response::empty(
                    StatusCode::NOT_MODIFIED,
                )));
            }
            Precondition::Failed => {
                return Reply::Now(Response::error(StatusCode::PRECONDITION_FAILED));
            }
            Precondition::Proceed { range_allowed } => range_allowed,
        };
        // 7. Ranges: GET only (RFC 9110 §14.2).
        let range_header = request
            .header("range")
            .filter(|_| range_allowed && request.method() == Method::Get);
        let reply = range_header.map_or(RangeReply::Whole, |header| {
            range::resolve(header, variant.len)
        });
        // 8. The response. The usual one, a whole file as it is, reuses its header fields
        // encoded once per cached file (only Date and Content-Length are written per request).
        if let (RangeReply::Whole, None) = (&reply, variant.coding) {
            let fields = info.whole_fields(alternatives, || {
                let mut fields = Vec::new();
                let mut list: HeaderFields = smallvec![
                    ("Content-Type", content_type.clone().into()),
                    ("Last-Modified", (&info.last_modified).into()),
                    ("Accept-Ranges", "bytes".into()),
                    ("ETag", (&*variant.etag).into()),
                    ("Cache-Control", cache_control.clone()),
                ];
                if alternatives {
                    list.push(("Vary", "Accept-Encoding".into()));
                }
                encode_fields(&mut fields, &list);
                fields
            });
            return Reply::Now(
                Response::empty(StatusCode::OK)
                    .with_encoded_fields(fields)
                    .with_body(variant.data.body(0..variant.len)),
            );
        }
        let mut response = match reply {
            RangeReply::Unsatisfiable => {
                return Reply::Now(
                    Response::error(StatusCode::RANGE_NOT_SATISFIABLE)
                        .with_header("Content-Range", format!("bytes */{}", variant.len))
                        .with_header("Accept-Ranges", "bytes"),
                );
            }
            RangeReply::Whole => Response::empty(StatusCode::OK)
                .with_header("Content-Type", content_type.clone())
                .with_body(variant.data.body(0..variant.len)),
            RangeReply::Single(range) => Response::empty(StatusCode::PARTIAL_CONTENT)
                .with_header("Content-Type", content_type.clone())
                .with_header("Content-Range", range::content_range(&range, variant.len))
                .with_body(variant.data.body(range)),
            RangeReply::Multiple(ranges) => Response::empty(StatusCode::PARTIAL_CONTENT)
                .with_header(
                    "Content-Type",
                    format!("multipart/byteranges; boundary={}", range::BOUNDARY),
                )
                .with_body(variant.data.multipart(&ranges, variant.len, content_type)),
        };
        response = response
            .with_header("Last-Modified", &info.last_modified)
            .with_header("Accept-Ranges", "bytes");
        if let Some(coding) = variant.coding {
            response = response.with_header("Content-Encoding", coding.token());
        }
        Reply::Now(with_cache_headers(response))
    }

    /// Picks identity or a coding the client accepts, preferring a sidecar to compressing.
    /// A compressed copy not made yet is asked for ([`Choice::Compress`]) unless the request
    /// was prepared already (then the file changed meanwhile: the next coding, or identity).
    fn choose_variant<'i>(
        &self,
        request: &Request<'_>,
        relative: &Path,
        info: &'i Rc<FileInfo>,
        file: Option<File>,
        content_type: &str,
    ) -> Option<Choice<'i>> {
        let mut sidecars = self.sidecars(relative, info, request.now());
        let on_the_fly = self.options.compress
            && encoding::is_compressible(content_type)
            && info.len >= MIN_COMPRESS_BYTES;
        let compressible = info.bytes.as_ref().filter(|_| on_the_fly);
        let alternatives = compressible.is_some() || sidecars.iter().any(Option::is_some);

        for coding in encoding::accepted(request.header("accept-encoding")) {
            if let Some((sidecar, file)) = sidecars[coding.index()].take() {
                let data = Data::of(&sidecar, file)?;
                let variant = Variant {
                    data,
                    len: sidecar.len,
                    // The sidecar's own validator, marked so it never equals the identity's.
                    etag: Cow::Owned(coded_etag(&sidecar.etag, coding)),
                    coding: Some(coding),
                };
                return Some(Choice::Variant {
                    variant,
                    alternatives,
                });
            }
            let Some(bytes) = compressible else {
                continue;
            };
            match info.compressed.get(coding) {
                // Not worth it when it does not shrink: try the next coding.
                Some(copy) if copy.len() as u64 >= info.len => {}
                Some(copy) => {
                    let variant = Variant {
                        len: copy.len() as u64,
                        data: Data::Bytes(Arc::clone(copy)),
                        // The same file, another representation: its own strong validator.
                        etag: Cow::Owned(coded_etag(&info.etag, coding)),
                        coding: Some(coding),
                    };
                    return Some(Choice::Variant {
                        variant,
                        alternatives,
                    });
                }
                None if !request.prepared() => {
                    return Some(Choice::Compress {
                        coding,
                        bytes: Arc::clone(bytes),
                        copies: Arc::clone(&info.compressed),
                    });
                }
                None => {}
            }
        }
        let variant = Variant {
            data: Data::of(info, file)?,
            len: info.len,
            etag: Cow::Borrowed(&info.etag),
            coding: None,
        };
        Some(Choice::Variant {
            variant,
            alternatives,
        })
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

    /// The `multipart/byteranges` body for `ranges` of a representation of `len` bytes:
    /// built from the cached bytes, or framing around ranges streamed from the file.
    fn multipart(self, ranges: &[std::ops::Range<u64>], len: u64, content_type: &str) -> Body {
        match self {
            Data::Bytes(bytes) => {
                Body::Bytes(range::multipart_body(&bytes, ranges, content_type).into())
            }
            Data::File(file) => Body::FileParts {
                file,
                parts: range::multipart_parts(ranges, len, content_type).into(),
            },
        }
    }
}

/// The error response for a path that cannot be served; a 503 (out of descriptors) says when
/// to come back.
fn refusal(status: StatusCode) -> Response {
    let response = Response::error(status);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.with_header("Retry-After", RETRY_AFTER_SECS)
    } else {
        response
    }
}

/// `"abc"` → `"abc-br"`: a validator per content coding.
fn coded_etag(etag: &str, coding: Coding) -> Arc<str> {
    format!("{}-{}\"", etag.trim_end_matches('"'), coding.extension()).into()
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
    Response::redirect(StatusCode::MOVED_PERMANENTLY, location)
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
    use std::net::SocketAddr;

    use super::*;
    use crate::http::parse::{ParseLimits, parse_head};

    /// The response `files` give to the raw request `input` (answered at once).
    fn answer(files: &StaticFiles, input: &str) -> Response {
        let input = input.as_bytes();
        let mut headers = Vec::new();
        let head = parse_head(input, &ParseLimits::default(), &mut headers)
            .unwrap()
            .unwrap();
        let peer = SocketAddr::from(([127, 0, 0, 1], 9));
        let request =
            Request::new(&head, input, &headers, &input[head.len..], peer, false).unwrap();
        match files.serve(&request, request.path()) {
            Reply::Now(response) => response,
            other => panic!("expected an immediate response, got {other:?}"),
        }
    }

    fn body_of(response: &Response) -> Vec<u8> {
        match response.body() {
            Body::Shared { bytes, range } => bytes[range.clone()].to_vec(),
            Body::Bytes(bytes) => bytes.to_vec(),
            other => panic!("expected bytes in memory, got {other:?}"),
        }
    }

    #[test]
    fn pages_are_served_with_the_snippet_whole_in_ranges_and_never_as_their_sidecars() {
        const SNIPPET: &str = "<script src=\"/_r.js\"></script>";
        const PAGE: &[u8] = b"<!doctype html><p>hi</p></body></html>\n";
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("page.html"), PAGE).unwrap();
        // A sidecar made from the page without the snippet.
        std::fs::write(dir.path().join("page.html.gz"), b"gzip of the page").unwrap();
        std::fs::write(dir.path().join("style.css"), b"p{}").unwrap();
        let options = StaticOptions {
            html_snippet: Some(SNIPPET.into()),
            ..StaticOptions::default()
        };
        let files = StaticFiles::with_options(dir.path(), options).unwrap();
        let expected = [
            &PAGE[..PAGE.len() - "</body></html>\n".len()],
            SNIPPET.as_bytes(),
            b"</body></html>\n",
        ]
        .concat();

        let whole = answer(
            &files,
            "GET /page.html HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\n\r\n",
        );
        assert_eq!(whole.status(), StatusCode::OK);
        assert_eq!(
            body_of(&whole),
            expected,
            "the page with the snippet, not its sidecar"
        );
        // Content-Length is the body's length: the page's grown by the snippet.
        assert_eq!(whole.body().len(), (PAGE.len() + SNIPPET.len()) as u64);
        assert_eq!(whole.header("Content-Encoding"), None);

        let last = answer(
            &files,
            "GET /page.html HTTP/1.1\r\nHost: h\r\nRange: bytes=-15\r\n\r\n",
        );
        assert_eq!(last.status(), StatusCode::PARTIAL_CONTENT);
        let len = expected.len();
        assert_eq!(
            last.header("Content-Range"),
            Some(format!("bytes {}-{}/{len}", len - 15, len - 1).as_str())
        );
        assert_eq!(body_of(&last), &expected[len - 15..]);

        let css = answer(&files, "GET /style.css HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(body_of(&css), b"p{}", "not HTML: as it is");
    }

    #[test]
    fn without_a_snippet_pages_are_served_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("page.html"), b"<p>hi</p></body>").unwrap();
        let files = StaticFiles::new(dir.path()).unwrap();
        let response = answer(&files, "GET /page.html HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(body_of(&response), b"<p>hi</p></body>");
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
