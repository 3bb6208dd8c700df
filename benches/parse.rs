//! Criterion benchmarks for the HTTP head parser.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

use looplight::http::parse::{ParseLimits, parse_head};

const WRK_GET: &[u8] = b"GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

const BROWSER_GET: &[u8] = b"GET /style.css HTTP/1.1\r\n\
Host: localhost:8080\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/css,*/*;q=0.1\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Connection: keep-alive\r\n\
Referer: http://localhost:8080/\r\n\
Sec-Fetch-Dest: style\r\n\
Sec-Fetch-Mode: no-cors\r\n\
Sec-Fetch-Site: same-origin\r\n\
If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
If-None-Match: \"5f3a2b1c.0-c\"\r\n\
Priority: u=2\r\n\r\n";

fn bench_parse(c: &mut Criterion) {
    let limits = ParseLimits::default();
    let mut headers = Vec::with_capacity(32);
    let mut group = c.benchmark_group("parse_head");
    for (name, input) in [("wrk_get", WRK_GET), ("browser_get", BROWSER_GET)] {
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| parse_head(black_box(input), &limits, &mut headers))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
