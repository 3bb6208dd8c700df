//! Directory listings (`--list-dirs`, off by default): an HTML page, or JSON when the client
//! asks for `application/json`. Dotfiles are left out, like everywhere else; directories come
//! first, then files, each by name. Reading a directory costs as much as it has entries, so a
//! listing is made on a helper thread, never on the loop.

use std::borrow::Cow;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, UNIX_EPOCH};

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use rustix::fs::{AtFlags, Dir, FileType};
use serde::Serialize;

use crate::IntoResponse;
use crate::http::accept::{FULL_QUALITY, preferences};
use crate::http::response::Response;
use crate::http::status::StatusCode;
use crate::json::Json;

/// Entries listed at most; a larger directory is cut short (and says so).
const MAX_ENTRIES: usize = 10_000;

/// Characters escaped in a path segment of an `href` (RFC 3986 §3.3 pchar, conservatively).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|');

#[derive(Serialize)]
struct Entry {
    name: String,
    #[serde(rename = "type")]
    kind: EntryKind,
    size: u64,
    modified: String,
}

/// What an entry is, named in JSON as `"dir"`, `"file"` or `"link"`. A symbolic link is listed
/// as itself, not as what it points to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
enum EntryKind {
    #[serde(rename = "dir")]
    Directory,
    #[serde(rename = "file")]
    File,
    #[serde(rename = "link")]
    Symlink,
}

#[derive(Serialize)]
struct Listing<'a> {
    path: &'a str,
    entries: Vec<Entry>,
    truncated: bool,
}

/// The listing of the open directory `dir`, shown at URL `url_path` (ending in `/`), as JSON
/// or HTML. Its cost grows with the directory: it runs on a helper thread.
pub fn listing(dir: File, url_path: &str, wants_json: bool) -> Response {
    let Ok((entries, truncated)) = read_entries(dir) else {
        return Response::error(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let listing = Listing {
        path: url_path,
        entries,
        truncated,
    };
    if wants_json {
        return Json(listing).into_response().with_header("Vary", "Accept");
    }
    Response::html(StatusCode::OK, html(&listing)).with_header("Vary", "Accept")
}

/// Whether `Accept` (RFC 9110 §12.5.1) weighs `application/json` above zero and at least as
/// high as HTML (`text/html`, `text/*` or `*/*`).
pub fn prefers_json(accept: &[u8]) -> bool {
    let mut json = 0;
    let mut html = 0;
    for preference in preferences(accept) {
        // A weight that is not a qvalue counts as none (q=1): at worst, a listing in the
        // format the client named.
        let q = preference.quality.unwrap_or(FULL_QUALITY);
        let range = preference.name;
        if range.eq_ignore_ascii_case(b"application/json") {
            json = json.max(q);
        } else if [&b"text/html"[..], b"text/*", b"*/*"]
            .iter()
            .any(|html_range| range.eq_ignore_ascii_case(html_range))
        {
            html = html.max(q);
        }
    }
    json > 0 && json >= html
}

fn read_entries(dir: File) -> rustix::io::Result<(Vec<Entry>, bool)> {
    let mut entries = Vec::new();
    let mut truncated = false;
    for entry in Dir::read_from(&dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name.first() == Some(&b'.') {
            continue;
        }
        if entries.len() == MAX_ENTRIES {
            truncated = true;
            break;
        }
        let Ok(stat) = rustix::fs::statat(&dir, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW)
        else {
            continue;
        };
        let kind = match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory => EntryKind::Directory,
            FileType::RegularFile => EntryKind::File,
            FileType::Symlink => EntryKind::Symlink,
            _ => continue,
        };
        let modified = UNIX_EPOCH + Duration::from_secs(stat.st_mtime.max(0).unsigned_abs());
        entries.push(Entry {
            name: String::from_utf8_lossy(std::ffi::OsStr::from_bytes(name).as_bytes())
                .into_owned(),
            kind,
            size: u64::try_from(stat.st_size).unwrap_or(0),
            modified: httpdate::fmt_http_date(modified),
        });
    }
    entries.sort_by(|a, b| listing_order(a).cmp(&listing_order(b)));
    Ok((entries, truncated))
}

/// Directories first, then the rest; each by name.
fn listing_order(entry: &Entry) -> (bool, &str) {
    (entry.kind != EntryKind::Directory, &entry.name)
}

fn html(listing: &Listing<'_>) -> String {
    let title = escape(listing.path);
    let mut page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Index of {title}</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}}\
         td{{padding:.15rem 1rem .15rem 0}}td.n{{text-align:right}}</style></head>\
         <body><h1>Index of {title}</h1><table><tbody>\
         <tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>"
    );
    for entry in &listing.entries {
        let is_directory = entry.kind == EntryKind::Directory;
        let slash = if is_directory { "/" } else { "" };
        let href = utf8_percent_encode(&entry.name, SEGMENT);
        page.push_str(&format!(
            "<tr><td><a href=\"./{href}{slash}\">{}{slash}</a></td><td class=\"n\">{}</td><td>{}</td></tr>",
            escape(&entry.name),
            if is_directory { Cow::Borrowed("") } else { Cow::Owned(entry.size.to_string()) },
            escape(&entry.modified),
        ));
    }
    page.push_str("</tbody></table>");
    if listing.truncated {
        page.push_str("<p>(listing cut short)</p>");
    }
    page.push_str("</body></html>\n");
    page
}

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_weights_pick_json_or_html() {
        let cases: &[(&str, bool)] = &[
            ("application/json", true),
            ("application/json, text/html;q=0.5", true),
            ("text/html, application/json;q=0", false),
            ("application/json;q=0, text/html", false),
            ("text/html,application/xhtml+xml,*/*;q=0.8", false),
            ("*/*", false),
            // Case, whitespace and media-type parameters do not matter.
            ("APPLICATION/JSON", true),
            (" application/json ", true),
            ("application/json;charset=utf-8", true),
            ("application/json; q=0.5", true),
            ("application/json;Q=0", false),
            // Ties go to JSON; the highest weight of repeated ranges counts.
            ("application/json;q=0.5, text/html;q=0.5", true),
            ("application/json;q=0.4, text/html;q=0.5", false),
            ("text/*;q=0.5, application/json;q=0.6", true),
            ("application/json;q=0.6, */*", false),
            ("application/json;q=0.5, application/json;q=0.2", true),
            (
                "text/html;q=0.9, text/html;q=0.1, application/json;q=0.5",
                false,
            ),
            ("application/json;level=1;q=0.3, text/html;q=0.2", true),
            // `q =` is not a weight; the first `q` is the weight, and a malformed one counts as
            // none (q=1).
            ("application/json;q =0, text/html", true),
            ("application/json;q=2", true),
            ("application/json;q=abc, text/html", true),
            ("application/json;q=x;q=0", true),
            // Nothing weighs JSON: HTML.
            ("", false),
            ("application/jsonx", false),
            ("application/*", false),
            ("text/html", false),
        ];
        for (accept, want) in cases {
            assert_eq!(prefers_json(accept.as_bytes()), *want, "{accept}");
        }
    }

    #[test]
    fn entries_in_json_say_their_type() {
        let listing = Listing {
            path: "/a/",
            entries: vec![
                Entry {
                    name: "sub".to_owned(),
                    kind: EntryKind::Directory,
                    size: 4096,
                    modified: "Sun, 06 Nov 1994 08:49:37 GMT".to_owned(),
                },
                Entry {
                    name: "a.txt".to_owned(),
                    kind: EntryKind::File,
                    size: 3,
                    modified: "Sun, 06 Nov 1994 08:49:37 GMT".to_owned(),
                },
                Entry {
                    name: "l".to_owned(),
                    kind: EntryKind::Symlink,
                    size: 5,
                    modified: "Sun, 06 Nov 1994 08:49:37 GMT".to_owned(),
                },
            ],
            truncated: false,
        };
        assert_eq!(
            serde_json::to_string(&listing).unwrap(),
            "{\"path\":\"/a/\",\"entries\":[\
             {\"name\":\"sub\",\"type\":\"dir\",\"size\":4096,\"modified\":\"Sun, 06 Nov 1994 08:49:37 GMT\"},\
             {\"name\":\"a.txt\",\"type\":\"file\",\"size\":3,\"modified\":\"Sun, 06 Nov 1994 08:49:37 GMT\"},\
             {\"name\":\"l\",\"type\":\"link\",\"size\":5,\"modified\":\"Sun, 06 Nov 1994 08:49:37 GMT\"}],\
             \"truncated\":false}"
        );
        // In HTML a directory links with a trailing slash and shows no size.
        let page = html(&listing);
        assert!(
            page.contains("<a href=\"./sub/\">sub/</a></td><td class=\"n\"></td>"),
            "{page}"
        );
        assert!(
            page.contains("<a href=\"./a.txt\">a.txt</a></td><td class=\"n\">3</td>"),
            "{page}"
        );
        assert!(
            page.contains("<a href=\"./l\">l</a></td><td class=\"n\">5</td>"),
            "{page}"
        );
    }

    #[test]
    fn directories_come_first_then_names_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for file in ["b.txt", "a.txt", ".hidden"] {
            std::fs::write(dir.path().join(file), "x").unwrap();
        }
        for sub in ["z", "c"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        std::os::unix::fs::symlink("a.txt", dir.path().join("aa")).unwrap();
        let (entries, truncated) = read_entries(File::open(dir.path()).unwrap()).unwrap();
        let seen: Vec<(&str, EntryKind)> = entries
            .iter()
            .map(|entry| (entry.name.as_str(), entry.kind))
            .collect();
        assert_eq!(
            seen,
            [
                ("c", EntryKind::Directory),
                ("z", EntryKind::Directory),
                ("a.txt", EntryKind::File),
                ("aa", EntryKind::Symlink),
                ("b.txt", EntryKind::File),
            ]
        );
        assert!(!truncated);
    }

    #[test]
    fn names_are_escaped_in_text_and_encoded_in_links() {
        let listing = Listing {
            path: "/a/",
            entries: vec![Entry {
                name: "<b>&\"x y\".txt".to_owned(),
                kind: EntryKind::File,
                size: 3,
                modified: "Sun, 06 Nov 1994 08:49:37 GMT".to_owned(),
            }],
            truncated: false,
        };
        let page = html(&listing);
        assert!(
            page.contains("href=\"./%3Cb%3E&%22x%20y%22.txt\""),
            "{page}"
        );
        assert!(
            page.contains(">&lt;b&gt;&amp;&quot;x y&quot;.txt<"),
            "{page}"
        );
    }
}
