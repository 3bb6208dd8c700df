//! A small W3C WebDriver client (https://www.w3.org/TR/webdriver2/) for
//! Debian's `chromedriver` driving Debian's headless `chromium`, over plain
//! `std::net::TcpStream` and the harness's HTTP response parser and strict
//! JSON parser. Only what the browser tests need: sessions, navigation,
//! finding elements by CSS selector, typing, clicking, reading text,
//! running scripts, and tabs (new, switch, close). Every command has a
//! timeout; dropping a `Session` deletes it (closing its browser) and
//! dropping the `WebDriver` kills chromedriver.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::Client;
use super::json::{Json, js, json_obj};
use super::wait::{PATIENCE, try_wait_for};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM_BIN: &str = "/usr/bin/chromium";

/// The W3C web element identifier key.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long one WebDriver command may take (starting a browser is the
/// slowest).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
const NEW_SESSION_TIMEOUT: Duration = Duration::from_secs(60);

/// A running chromedriver. Dropping it kills the process.
pub struct WebDriver {
    child: Child,
    pub addr: SocketAddr,
    log_dir: TempDir,
}

/// A port that was free a moment ago (bind 127.0.0.1:0, read, close).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// One HTTP/1.1 request to chromedriver (fresh connection, `Connection:
/// close`); returns the status and the parsed JSON body.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    timeout: Duration,
) -> Result<(u16, Json), String> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect to chromedriver at {addr}: {e}"))?;
    let mut c = Client::from_stream(stream);
    c.set_read_timeout(timeout);
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n"
    );
    if let Some(body) = body {
        req.push_str(&format!(
            "Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or(""));
    c.try_send(req.as_bytes())
        .map_err(|e| format!("{method} {path}: send: {e}"))?;
    let resp = c
        .try_read_response(false)
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let json = Json::parse(&resp.body).map_err(|e| {
        format!(
            "{method} {path}: chromedriver answered non-JSON ({e}): {}\n{}",
            resp.head,
            resp.body_str()
        )
    })?;
    Ok((resp.status, json))
}

impl WebDriver {
    /// Starts `chromedriver --port=<free port>` and waits until `GET
    /// /status` says it is ready. Panics with a clear message when
    /// chromedriver or chromium is not installed.
    pub fn start() -> WebDriver {
        assert!(
            Path::new(CHROMEDRIVER).exists(),
            "{CHROMEDRIVER} is required for the browser chat test: install Debian's \
             chromium-driver package (apt-get install chromium-driver; .ci/run installs it)"
        );
        assert!(
            Path::new(CHROMIUM_BIN).exists(),
            "{CHROMIUM_BIN} is required for the browser chat test: install Debian's \
             chromium package (.ci/run installs it)"
        );
        let log_dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(log_dir.path().join("chromedriver.log")).unwrap();
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {CHROMEDRIVER}: {e}"));
        let mut wd = WebDriver {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log_dir,
        };
        let ready = try_wait_for(PATIENCE, Duration::from_millis(50), || {
            if let Ok((200, j)) = http(wd.addr, "GET", "/status", None, Duration::from_secs(2))
                && j.get("value").and_then(|v| v.get("ready")) == Some(&Json::Bool(true))
            {
                return Ok(());
            }
            if let Ok(Some(status)) = wd.child.try_wait() {
                panic!("chromedriver exited at start ({status}):\n{}", wd.log());
            }
            Err(String::new())
        });
        if ready.is_err() {
            panic!(
                "chromedriver did not answer GET /status within {PATIENCE:?}:\n{}",
                wd.log()
            );
        }
        wd
    }

    /// chromedriver's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_dir.path().join("chromedriver.log")).unwrap_or_default()
    }

    /// A new session: a fresh headless Chromium with its own profile dir.
    pub fn new_session(&self) -> Session {
        let profile = tempfile::tempdir().unwrap();
        let args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ]
        .iter()
        .map(|a| js(a))
        .chain([js(&format!("--user-data-dir={}", profile.path().display()))])
        .collect();
        let options = json_obj(&[
            ("binary", &js(CHROMIUM_BIN)),
            ("args", &format!("[{}]", args.join(","))),
        ]);
        let always = json_obj(&[
            ("browserName", &js("chrome")),
            ("goog:chromeOptions", &options),
        ]);
        let caps = json_obj(&[("capabilities", &json_obj(&[("alwaysMatch", &always)]))]);
        let (status, j) = http(
            self.addr,
            "POST",
            "/session",
            Some(&caps),
            NEW_SESSION_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("new session: {e}\nchromedriver log:\n{}", self.log()));
        assert_eq!(
            status,
            200,
            "new session failed: {j}\nchromedriver log:\n{}",
            self.log()
        );
        let id = j.field("value").field("sessionId").str().to_string();
        Session {
            addr: self.addr,
            id,
            _profile: profile,
            deleted: false,
        }
    }
}

impl Drop for WebDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A web element reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Element(pub String);

impl Element {
    /// As a script argument / JSON value.
    pub fn to_json(&self) -> String {
        json_obj(&[(ELEMENT_KEY, &js(&self.0))])
    }
}

/// One browser session. Dropping it deletes the session (best effort).
pub struct Session {
    addr: SocketAddr,
    pub id: String,
    _profile: TempDir,
    deleted: bool,
}

impl Session {
    /// Runs a command; Ok(value) on success, Err("error: message") for a
    /// WebDriver error.
    pub fn try_cmd(&self, method: &str, path: &str, body: Option<&str>) -> Result<Json, String> {
        let full = format!("/session/{}{path}", self.id);
        let (status, j) = http(self.addr, method, &full, body, COMMAND_TIMEOUT)?;
        let value = j.get("value").cloned().unwrap_or(Json::Null);
        if status == 200 {
            Ok(value)
        } else {
            let error = value.get("error").and_then(Json::as_str).unwrap_or("?");
            let message = value.get("message").and_then(Json::as_str).unwrap_or("");
            Err(format!("{method} {full} → {status} {error}: {message}"))
        }
    }

    pub fn cmd(&self, method: &str, path: &str, body: Option<&str>) -> Json {
        self.try_cmd(method, path, body)
            .unwrap_or_else(|e| panic!("WebDriver command failed: {e}"))
    }

    pub fn navigate(&self, url: &str) {
        self.cmd("POST", "/url", Some(&json_obj(&[("url", &js(url))])));
    }

    pub fn current_url(&self) -> String {
        self.cmd("GET", "/url", None).str().to_string()
    }

    fn element_from(value: &Json) -> Element {
        Element(value.field(ELEMENT_KEY).str().to_string())
    }

    /// The first element matching a CSS selector, if any.
    pub fn try_find(&self, css: &str) -> Option<Element> {
        let body = json_obj(&[("using", &js("css selector")), ("value", &js(css))]);
        match self.try_cmd("POST", "/element", Some(&body)) {
            Ok(v) => Some(Self::element_from(&v)),
            Err(e) if e.contains("no such element") => None,
            Err(e) => panic!("find {css:?}: {e}"),
        }
    }

    /// The first element matching a CSS selector; panics if there is none.
    pub fn find(&self, css: &str) -> Element {
        self.try_find(css)
            .unwrap_or_else(|| panic!("no element matches {css:?} on {}", self.current_url()))
    }

    /// Every element matching a CSS selector.
    pub fn find_all(&self, css: &str) -> Vec<Element> {
        let body = json_obj(&[("using", &js("css selector")), ("value", &js(css))]);
        self.cmd("POST", "/elements", Some(&body))
            .arr()
            .iter()
            .map(Self::element_from)
            .collect()
    }

    /// Types `text` into the element (W3C Element Send Keys).
    pub fn send_keys(&self, el: &Element, text: &str) {
        let body = json_obj(&[("text", &js(text))]);
        self.cmd("POST", &format!("/element/{}/value", el.0), Some(&body));
    }

    pub fn clear(&self, el: &Element) {
        self.cmd("POST", &format!("/element/{}/clear", el.0), Some("{}"));
    }

    /// Clicks the element (W3C Element Click). The element is first
    /// scrolled into the middle of the viewport at once: with the site's
    /// `scroll-behavior: smooth`, chromedriver's own scroll is still moving
    /// when it computes the click point ("element click intercepted"). A
    /// click still intercepted (layout settling) is retried until it lands,
    /// for up to `PATIENCE`.
    pub fn click(&self, el: &Element) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            self.execute(
                "arguments[0].scrollIntoView({block: 'center', inline: 'center', behavior: 'instant'});",
                &[el.to_json()],
            );
            match self.try_cmd("POST", &format!("/element/{}/click", el.0), Some("{}")) {
                Ok(_) => return,
                Err(e) if e.contains("element click intercepted") && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("WebDriver click failed: {e}\n{}", self.page_state()),
            }
        }
    }

    /// The element's rendered text (W3C Get Element Text).
    pub fn text(&self, el: &Element) -> String {
        self.cmd("GET", &format!("/element/{}/text", el.0), None)
            .str()
            .to_string()
    }

    /// Runs `script` (a function body; `arguments` holds `args`, raw JSON
    /// values) and returns its result.
    pub fn execute(&self, script: &str, args: &[String]) -> Json {
        let body = json_obj(&[
            ("script", &js(script)),
            ("args", &format!("[{}]", args.join(","))),
        ]);
        self.cmd("POST", "/execute/sync", Some(&body))
    }

    /// Polls `script` every 50 ms until it returns something other than
    /// null/false; returns that. Panics after `timeout` with `what` and the
    /// page's state.
    pub fn wait_for(&self, what: &str, timeout: Duration, script: &str, args: &[String]) -> Json {
        try_wait_for(timeout, Duration::from_millis(50), || {
            let v = self.execute(script, args);
            if matches!(v, Json::Null | Json::Bool(false)) {
                Err(String::new())
            } else {
                Ok(v)
            }
        })
        .unwrap_or_else(|_| {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                self.page_state()
            )
        })
    }

    /// URL, body data attributes and the start of the body's HTML, for
    /// failure messages.
    pub fn page_state(&self) -> String {
        let v = self.try_cmd(
            "POST",
            "/execute/sync",
            Some(&json_obj(&[
                (
                    "script",
                    &js("return location.href + '\\nbody dataset: ' + \
                         JSON.stringify(Object.assign({}, document.body && document.body.dataset)) + \
                         '\\n' + (document.body ? document.body.outerHTML.slice(0, 4000) : '(no body)');"),
                ),
                ("args", "[]"),
            ])),
        );
        match v {
            Ok(Json::Str(s)) => s,
            Ok(other) => other.to_string(),
            Err(e) => format!("(page state unavailable: {e})"),
        }
    }

    /// The current window's handle (W3C Get Window Handle).
    pub fn window_handle(&self) -> String {
        self.cmd("GET", "/window", None).str().to_string()
    }

    /// Opens a new tab in this browser (W3C New Window) and returns its
    /// handle; the current window stays current (see `switch_to`).
    pub fn new_tab(&self) -> String {
        let body = json_obj(&[("type", &js("tab"))]);
        self.cmd("POST", "/window/new", Some(&body))
            .field("handle")
            .str()
            .to_string()
    }

    /// Makes the window `handle` current (W3C Switch To Window): later
    /// commands act on it.
    pub fn switch_to(&self, handle: &str) {
        let body = json_obj(&[("handle", &js(handle))]);
        self.cmd("POST", "/window", Some(&body));
    }

    /// Closes the current window (W3C Close Window) and returns the handles
    /// of the windows left; switch to one before the next command.
    pub fn close_window(&self) -> Vec<String> {
        self.cmd("DELETE", "/window", None)
            .arr()
            .iter()
            .map(|handle| handle.str().to_string())
            .collect()
    }

    /// Ends the session (closes the browser).
    pub fn delete(mut self) {
        self.deleted = true;
        self.cmd("DELETE", "", None);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.deleted {
            let path = format!("/session/{}", self.id);
            let _ = http(self.addr, "DELETE", &path, None, Duration::from_secs(10));
        }
    }
}
