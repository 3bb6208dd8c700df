//! The request path in process, without sockets: pipelined requests go through the sans-I/O
//! connection (`http::Conn`: parse, dispatch), the app (`App::handle`: route, static file
//! cache or API) and back (encode), exactly as the server drives them, minus the syscalls.
//!
//! Besides criterion's time per request, it prints the heap allocations per request, counted
//! by a global allocator wrapper: the cached static path is meant to allocate nothing per
//! request (issue 12), and this is where that is shown.
//!
//!     cargo bench --bench request_path

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use tempfile::TempDir;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use looplight::api::ApiSettings;
use looplight::http::buffers::BufferPool;
use looplight::http::conn::{Conn, Env, Input, Next, Settings};
use looplight::http::date::DateCache;
use looplight::http::response::BodySlice;
use looplight::store::Target;
use looplight::{App, Config, Reply, Response, StatusCode};

/// The system allocator, counting allocations (and reallocations).
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator, which upholds the
// GlobalAlloc contract; the wrapper only increments a counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's layout obligations are passed on as they are.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout (through `alloc` above).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `dealloc`, and `new_size` is the caller's to vouch for.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Requests per batch (one "read"), as wrk's pipelining script sends them.
const PIPELINE: usize = 16;

/// One connection and everything the loop lends it.
struct Harness {
    app: App,
    conn: Conn,
    settings: Settings,
    date: DateCache,
    buffers: BufferPool,
    /// Where the output goes (a socket would take it).
    sink: Vec<u8>,
}

impl Harness {
    fn new(app: App) -> Harness {
        let mut date = DateCache::new();
        date.refresh(SystemTime::now());
        Harness {
            app,
            conn: Conn::new(([127, 0, 0, 1], 40000).into(), false, Instant::now()),
            settings: Config::defaults().connection_settings(),
            date,
            buffers: BufferPool::default(),
            sink: Vec::with_capacity(1 << 20),
        }
    }

    /// Feeds `input` (complete requests) and answers them all; returns the bytes sent.
    fn serve(&mut self, input: &[u8]) -> usize {
        let now = Instant::now();
        let mut input = input;
        let mut sent = 0;
        while !input.is_empty() || self.conn.has_output() {
            if self.conn.wants_input() == Input::Request
                && let Some(space) = self.conn.read_space(&self.settings, &mut self.buffers)
            {
                let n = space.len().min(input.len());
                space[..n].copy_from_slice(&input[..n]);
                input = &input[n..];
                self.conn.received(n, now);
            }
            loop {
                let mut env = Env {
                    now,
                    settings: &self.settings,
                    date: &self.date,
                    buffers: &mut self.buffers,
                };
                let response = match self.conn.next(&mut env) {
                    Next::Nothing { .. } => break,
                    Next::Request(request) => match self.app.handle(&request) {
                        Reply::Now(response) => response,
                        other => panic!("the bench expects answers now, got {other:?}"),
                    },
                    Next::Reject(rejection) => panic!("rejected: {rejection:?}"),
                };
                self.conn.respond(response, &mut env, |_| {});
            }
            let output = self.conn.output();
            let n = output.bytes.len();
            self.sink.clear();
            self.sink.extend_from_slice(output.bytes);
            let body = match output.body {
                None => 0,
                Some(BodySlice::Bytes(body)) => {
                    self.sink.extend_from_slice(body);
                    body.len()
                }
                Some(BodySlice::File { .. }) => panic!("the bench serves cached files only"),
            };
            self.conn.sent(n + body, now);
            sent += n + body;
        }
        sent
    }
}

/// Builds an app, and the temporary directory of its store if it has one.
type MakeApp = fn() -> (App, Option<TempDir>);

fn static_app() -> (App, Option<TempDir>) {
    let mut app = App::new();
    app.static_dir("/", concat!(env!("CARGO_MANIFEST_DIR"), "/www"))
        .expect("www/ is in the repository");
    (app, None)
}

/// Fifteen API-like routes, then the static files: a request for the last route passes the
/// other fourteen first.
fn routed_app() -> (App, Option<TempDir>) {
    let mut app = App::new();
    for n in 0..14 {
        app.get(&format!("/api/r{n}/:id"), |_| {
            Response::empty(StatusCode::NO_CONTENT)
        });
    }
    app.get("/api/ping", |_| Response::text(StatusCode::OK, "pong"));
    app.static_dir("/", concat!(env!("CARGO_MANIFEST_DIR"), "/www"))
        .expect("www/ is in the repository");
    (app, None)
}

/// The binary's own app: the API on a SQLite file in a temporary directory (one generated
/// post), then www/.
fn api_app() -> (App, Option<TempDir>) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut settings = ApiSettings::from(&Config::defaults());
    settings.db = Target::Sqlite(dir.path().join("bench.db"));
    settings.seed_posts = 1;
    let mut app = App::new();
    looplight::api::mount(&mut app, settings).expect("the API mounts on a fresh SQLite file");
    app.static_dir("/", concat!(env!("CARGO_MANIFEST_DIR"), "/www"))
        .expect("www/ is in the repository");
    (app, Some(dir))
}

fn pipelined(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n")
        .repeat(PIPELINE)
        .into_bytes()
}

/// A request as Chromium sends it (its usual header fields, a cookie, Accept-Encoding).
fn pipelined_from_a_browser(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: keep-alive\r\n\
         sec-ch-ua: \"Chromium\";v=\"156\", \"Not-A.Brand\";v=\"24\"\r\n\
         sec-ch-ua-mobile: ?0\r\nsec-ch-ua-platform: \"Linux\"\r\n\
         Upgrade-Insecure-Requests: 1\r\n\
         User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
         Chrome/156.0.0.0 Safari/537.36\r\n\
         Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,\
         image/webp,image/apng,*/*;q=0.8\r\n\
         Sec-Fetch-Site: none\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-User: ?1\r\n\
         Sec-Fetch-Dest: document\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n\
         Accept-Language: en-US,en;q=0.9\r\nCookie: session=0123456789abcdef\r\n\r\n"
    )
    .repeat(PIPELINE)
    .into_bytes()
}

/// Heap allocations per request on `input`'s path, after a warm-up (caches filled).
fn allocations_per_request(harness: &mut Harness, input: &[u8]) -> f64 {
    for _ in 0..100 {
        harness.serve(input);
    }
    let batches = 1000;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..batches {
        black_box(harness.serve(input));
    }
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    (after - before) as f64 / (batches * PIPELINE) as f64
}

fn bench_request_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("request_path");
    group.throughput(Throughput::Elements(PIPELINE as u64));
    let cases: [(&str, Vec<u8>, MakeApp); 10] = [
        ("static_12_bytes", pipelined("/hello.txt"), static_app),
        ("static_index_html", pipelined("/index.html"), static_app),
        ("static_root_index", pipelined("/"), static_app),
        (
            "static_from_a_browser",
            pipelined_from_a_browser("/index.html"),
            static_app,
        ),
        ("not_found", pipelined("/no-such-file.txt"), static_app),
        ("route_15th", pipelined("/api/ping"), routed_app),
        (
            "static_after_15_routes",
            pipelined("/hello.txt"),
            routed_app,
        ),
        ("api_post_by_id", pipelined("/api/posts/1"), api_app),
        ("api_healthz", pipelined("/healthz"), api_app),
        ("api_app_static", pipelined("/hello.txt"), api_app),
    ];
    for (name, input, app) in cases {
        // The store's directory, if any, lives until this case is measured.
        let (app, _store_dir) = app();
        let mut harness = Harness::new(app);
        let per_request = allocations_per_request(&mut harness, &input);
        println!("request_path/{name}: {per_request:.2} heap allocations per request");
        group.bench_function(name, |b| b.iter(|| harness.serve(black_box(&input))));
    }
    group.finish();
}

criterion_group!(benches, bench_request_path);
criterion_main!(benches);
