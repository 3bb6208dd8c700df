//! Criterion benchmarks for the pieces of the request path the head parser does not cover:
//! encoding a response head, and turning a URL path into a file path (the fast, borrowed way
//! and the general one). `benches/request_path.rs` measures them together, in process.

use std::hint::black_box;
use std::time::{Duration, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};

use looplight::StatusCode;
use looplight::http::date::DateCache;
use looplight::http::response::{
    BodyFraming, ConnectionHeader, Fields, HeaderValue, encode_fields, encode_head,
};
use looplight::static_files::sanitize;

fn bench_encode_head(c: &mut Criterion) {
    let mut date = DateCache::new();
    date.refresh(UNIX_EPOCH + Duration::from_secs(784_111_777));
    // What a cached static file's 200 carries.
    let headers: Vec<(&'static str, HeaderValue)> = vec![
        ("Content-Type", "text/plain; charset=utf-8".into()),
        (
            "Last-Modified",
            HeaderValue::Shared("Sun, 06 Nov 1994 08:49:37 GMT".into()),
        ),
        ("Accept-Ranges", "bytes".into()),
        ("ETag", HeaderValue::Shared("\"5f3a2b1c.0-c\"".into())),
        ("Cache-Control", HeaderValue::Shared("no-cache".into())),
    ];
    let mut out = Vec::with_capacity(1024);
    let mut encoded = Vec::new();
    encode_fields(&mut encoded, &headers);
    for (name, fields) in [
        (
            "static_200_list",
            Fields {
                list: headers.into(),
                encoded: None,
            },
        ),
        (
            "static_200_encoded_once",
            Fields {
                list: Default::default(),
                encoded: Some(encoded.into()),
            },
        ),
    ] {
        c.bench_function(&format!("encode_head/{name}"), |b| {
            b.iter(|| {
                out.clear();
                encode_head(
                    &mut out,
                    StatusCode::OK,
                    black_box(&fields),
                    BodyFraming::Length(12),
                    date.imf_fixdate(),
                    ConnectionHeader::Omit,
                );
                out.len()
            })
        });
    }
}

fn bench_sanitize(c: &mut Criterion) {
    let mut group = c.benchmark_group("sanitize");
    for (name, path) in [
        ("plain", "/assets/css/site.min.css"),
        ("percent_encoded", "/assets/my%20notes/./site.css"),
    ] {
        group.bench_function(name, |b| b.iter(|| sanitize(black_box(path)).is_ok()));
    }
    group.finish();
}

criterion_group!(benches, bench_encode_head, bench_sanitize);
criterion_main!(benches);
