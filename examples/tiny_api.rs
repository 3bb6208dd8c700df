//! A tiny API built with looplight's router: a counter and a greeting, plus a slow endpoint that
//! runs on the helper pool.
//!
//! ```sh
//! cargo run --example tiny_api          # then:
//! curl http://127.0.0.1:8081/api/hello/world
//! curl -X POST http://127.0.0.1:8081/api/count
//! curl -X POST http://127.0.0.1:8081/api/slow
//! ```

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use looplight::{App, Config, HttpError, Json, Reply, Server};
use serde_json::json;

fn main() -> std::io::Result<()> {
    let mut app = App::new();
    // Errors under /api (404 for unknown paths included) are JSON.
    app.json_errors("/api");

    app.get("/api/hello/:name", |request| {
        let name = request.param("name").unwrap_or("world");
        Json(json!({ "hello": name }))
    });

    // Handlers run on the loop thread, so plain Rc/Cell state is fine.
    let count = Rc::new(Cell::new(0u64));
    app.post("/api/count", move |_request| {
        count.set(count.get() + 1);
        Json(json!({ "count": count.get() }))
    });

    app.get(
        "/api/divide/:a/:b",
        |request| -> Result<Json<serde_json::Value>, HttpError> {
            let number = |name| {
                request
                    .param(name)
                    .and_then(|value| value.parse::<i64>().ok())
                    .ok_or_else(|| HttpError::bad_request(format!("`{name}` must be an integer")))
            };
            let (a, b) = (number("a")?, number("b")?);
            let quotient = a
                .checked_div(b)
                .ok_or_else(|| HttpError::unprocessable("division by zero"))?;
            Ok(Json(json!({ "quotient": quotient })))
        },
    );

    // Work that takes milliseconds goes to the helper pool; the loop keeps serving.
    app.post("/api/slow", |_request| {
        Reply::later(|| {
            std::thread::sleep(Duration::from_millis(200));
            Json(json!({ "done": true }))
        })
    });

    let config = Config {
        addr: ([127, 0, 0, 1], 8081).into(),
        ..Config::defaults()
    };
    let server = Server::bind(config)?;
    println!("tiny_api listening on http://{}", server.local_addr());
    server.run(app)
}
