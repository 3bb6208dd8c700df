//! `--watch`, live reload for people editing a site: over raw sockets, HTML
//! pages get the reload script (and only with `--watch`, and only HTML), an
//! edit is served at once (the file cache forgets as soon as the watcher
//! sees it) and announced on the reload stream, directories created later
//! included; in Chromium, an open page shows an edit without a click, and
//! two tabs share one reload stream.

use std::time::{Duration, Instant};

use crate::support::webdriver::{Session, WebDriver};
use crate::support::*;

/// What `--watch` puts into HTML pages.
const SNIPPET: &str = "<script src=\"/_looplight/live-reload.js\"></script>";
const STREAM: &str = "/_looplight/reload";
const SCRIPT: &str = "/_looplight/live-reload.js";
const WORKER: &str = "/_looplight/shared-stream-worker.js";
/// A page with a `</body>`: the snippet goes right before it.
const PAGE: &[u8] =
    b"<!doctype html>\n<title>page</title>\n<p id=\"v\">one</p>\n</body>\n</html>\n";
/// Deadline for what should happen at once (never a measurement).
const WAIT: Duration = Duration::from_secs(30);

/// `PAGE` as served with `--watch`.
fn page_with_snippet() -> Vec<u8> {
    let text = std::str::from_utf8(PAGE).unwrap();
    text.replace("</body>", &format!("{SNIPPET}</body>"))
        .into_bytes()
}

fn get_ok(server: &Server, path: &str) -> Response {
    let response = server.get(path);
    assert_eq!(response.status, 200, "GET {path}:\n{}", response.head);
    response.assert_basics();
    response
}

#[test]
fn html_gets_the_reload_script_only_with_watch_and_nothing_else_changes() {
    let plain = Server::builder().file("page.html", PAGE).start();
    let watching = Server::builder()
        .file("page.html", PAGE)
        .args(&["--watch"])
        .start();

    // Without --watch: pages as they are, and nothing under /_looplight/.
    assert_eq!(get_ok(&plain, "/page.html").body, PAGE);
    assert_eq!(get_ok(&plain, "/index.html").body, INDEX_HTML);
    for path in [STREAM, SCRIPT, WORKER] {
        assert_eq!(plain.get(path).status, 404, "GET {path} without --watch");
    }

    // With it: before </body>, or at the end of a page without one, and
    // Content-Length counts it (assert_basics), for GET and HEAD alike.
    let page = get_ok(&watching, "/page.html");
    assert_eq!(
        page.body_str(),
        String::from_utf8(page_with_snippet()).unwrap()
    );
    let index = get_ok(&watching, "/index.html");
    assert_eq!(index.body, [INDEX_HTML, SNIPPET.as_bytes()].concat());
    let mut client = watching.connect();
    client.send(&head_close("/page.html"));
    let head = client.read_response_to_head();
    head.assert_basics_head();
    assert_eq!(head.content_length(), Some(page.body.len() as u64));
    // A range is of the page with the snippet.
    let mut client = watching.connect();
    client.send(b"GET /page.html HTTP/1.1\r\nHost: localhost\r\nRange: bytes=-16\r\n\r\n");
    let tail = client.read_response();
    assert_eq!(tail.status, 206, "{}", tail.head);
    assert_eq!(tail.body, &page.body[page.body.len() - 16..]);

    // Everything else, byte for byte.
    for (path, content) in default_files() {
        if path.ends_with(".html") {
            continue;
        }
        let served = get_ok(&watching, &format!("/{path}"));
        assert_eq!(served.body, content, "{path} with --watch");
        assert_eq!(served.content_length(), Some(content.len() as u64));
    }

    // Live reload's own resources.
    for path in [SCRIPT, WORKER] {
        let script = get_ok(&watching, path);
        assert_eq!(
            script.header("content-type"),
            Some("text/javascript; charset=utf-8"),
            "{path}"
        );
        assert!(script.body_str().contains("EventSource"), "{path}");
    }
}

/// The paths a `reload` event names, after checking its wire format.
fn reload_paths(event: &SseEvent) -> Vec<String> {
    assert_eq!(event.field("event"), Some("reload"), "{:?}", event.raw);
    assert_eq!(
        event.field("id"),
        None,
        "reload events have no id: {:?}",
        event.raw
    );
    let data = event.data().unwrap_or_default();
    let json = Json::parse(data.as_bytes())
        .unwrap_or_else(|e| panic!("reload data is not JSON ({e}): {:?}", event.raw));
    json.field("paths")
        .arr()
        .iter()
        .map(|path| path.str().to_string())
        .collect()
}

/// Reads the reload stream until an event names `path`.
fn wait_reload_naming(stream: &mut EventStream, path: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        match stream.next_item(deadline) {
            Ok(Some(SseItem::Event(event))) if event.is_retry_only() => {}
            Ok(Some(SseItem::Event(event))) => {
                if reload_paths(&event).iter().any(|named| named == path) {
                    return;
                }
            }
            Ok(Some(SseItem::Comment(_))) => {}
            Ok(None) => panic!("the reload stream ended\n{}", stream.context()),
            Err(e) => panic!("no reload event naming {path:?}: {e}"),
        }
    }
}

/// GETs on fresh connections: with two workers, the kernel spreads them over
/// both, so both file caches are asked.
const GETS: usize = 8;

#[test]
fn an_edit_is_served_at_once_and_announced_on_the_reload_stream() {
    let server = Server::builder()
        .file("page.html", PAGE)
        .args(&["--watch", "--workers", "2"])
        .start();
    let mut stream = EventStream::open(&server, &Req::get(STREAM));
    let first = stream
        .next_item(Instant::now() + WAIT)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(&first, Some(SseItem::Event(event)) if event.raw == "retry: 1000\n\n"),
        "the stream starts with its reconnection time: {first:?}"
    );

    // Cached now, in both workers; the edit keeps the length (and maybe the
    // mtime): only the watcher can tell the caches.
    for _ in 0..GETS {
        assert_eq!(get_ok(&server, "/page.html").body, page_with_snippet());
    }
    let edited = std::str::from_utf8(PAGE).unwrap().replace("one", "two");
    std::fs::write(server.root().join("page.html"), &edited).unwrap();
    wait_reload_naming(&mut stream, "page.html");
    // Pages reload when they hear it: what they fetch then is the edit, from
    // every worker at once (no retrying; a cache trusts its copy for a second).
    for _ in 0..GETS {
        let after = get_ok(&server, "/page.html");
        assert!(
            after.body_str().contains("<p id=\"v\">two</p>"),
            "{}",
            after.body_str()
        );
    }

    // A directory made after the start is watched too. Its creation is
    // announced; a change elsewhere, announced after that, proves the
    // watcher has caught up with it (it watches a new directory before it
    // reads on); then a file written in it is announced and served.
    std::fs::create_dir(server.root().join("blog")).unwrap();
    wait_reload_naming(&mut stream, "blog");
    std::fs::write(server.root().join("hello.txt"), "changed\n").unwrap();
    wait_reload_naming(&mut stream, "hello.txt");
    std::fs::write(server.root().join("blog/post.html"), "<p>new post</p>").unwrap();
    wait_reload_naming(&mut stream, "blog/post.html");
    let post = get_ok(&server, "/blog/post.html");
    assert_eq!(post.body, [b"<p>new post</p>", SNIPPET.as_bytes()].concat());
}

// ---- in Chromium ----------------------------------------------------------

/// Access-log lines of requests for the reload stream.
fn reload_streams(server: &Server) -> Vec<String> {
    server
        .log_lines()
        .into_iter()
        .filter(|line| line.contains(&format!("\"GET {STREAM} ")))
        .collect()
}

/// Waits until the page's live-reload stream is open.
fn wait_listening(s: &Session, who: &str) {
    s.wait_for(
        &format!("{who}: the live-reload stream open"),
        WAIT,
        "return !!window.looplightLiveReload && window.looplightLiveReload.readyState === 1;",
        &[],
    );
}

fn wait_text(s: &Session, who: &str, text: &str) {
    s.wait_for(
        &format!("{who}: #v to read {text:?}"),
        WAIT,
        "const v = document.getElementById('v'); return !!v && v.textContent === arguments[0];",
        &[js(text)],
    );
}

#[test]
fn open_pages_show_an_edit_without_a_click_over_one_shared_stream() {
    let server = Server::builder()
        .file("page.html", PAGE)
        .args(&["--watch"])
        .with_log()
        .start();
    let url = server.url("/page.html");
    let driver = WebDriver::start();
    let s = driver.new_session();
    s.navigate(&url);
    wait_text(&s, "tab 1", "one");
    wait_listening(&s, "tab 1");
    let first = s.window_handle();
    let second = s.new_tab();
    s.switch_to(&second);
    s.navigate(&url);
    wait_text(&s, "tab 2", "one");
    wait_listening(&s, "tab 2");
    assert_eq!(
        s.execute("return window.looplightLiveReload.shared;", &[]),
        Json::Bool(true),
        "the stream is the SharedWorker's"
    );
    // Every line logged before this request's has been read once its own
    // has: the tabs' streams were open before it was sent.
    let marker = get_ok(&server, "/hello.txt?marker");
    assert_eq!(marker.body, HELLO);
    wait_until("the marker request in the access log", WAIT, || {
        server
            .log_lines()
            .iter()
            .any(|line| line.contains("/hello.txt?marker"))
    });
    assert_eq!(
        reload_streams(&server).len(),
        1,
        "two tabs, one stream: {:?}",
        reload_streams(&server)
    );

    let edited = std::str::from_utf8(PAGE).unwrap().replace("one", "two");
    std::fs::write(server.root().join("page.html"), edited).unwrap();
    wait_text(&s, "tab 2", "two");
    s.switch_to(&first);
    wait_text(&s, "tab 1", "two");

    s.delete();
    drop(driver);
}

/// `HEAD path` with `Connection: close`.
fn head_close(path: &str) -> Vec<u8> {
    format!("HEAD {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").into_bytes()
}
