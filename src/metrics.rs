//! Counting what the server does, cheaply, and writing it out in Prometheus's text exposition
//! format (version 0.0.4) when scraped.
//!
//! Counters live where the work happens and are only summed when someone asks:
//! - Each worker's loop owns its counters ([`server::metrics`](crate::server::metrics)) and is
//!   the only thread that writes them: an increment is a plain load and store ([`OneWriter`]),
//!   no locked instruction and no cache line that two cores write. A scrape reads them from
//!   another thread; a value may be a few increments behind, never torn.
//! - Work off the loops (helper jobs, the database writer, chat) counts in [`PROCESS`] with
//!   atomic adds ([`ManyWriters`]), a few per job.
//!
//! Names follow Prometheus's conventions: a `looplight_` prefix, base units (seconds, bytes),
//! `_total` on counters, and labels only from small fixed sets (never a client's Host or path),
//! so the number of series is bounded.

use std::fmt::{self, Write as _};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// How a metric's cell is updated: by one thread, or by any.
pub trait Writers {
    fn add(cell: &AtomicU64, n: u64);
}

/// Only one thread ever writes the metric (a worker's loop): load, add, store.
#[derive(Debug)]
pub enum OneWriter {}

impl Writers for OneWriter {
    #[inline]
    fn add(cell: &AtomicU64, n: u64) {
        cell.store(cell.load(Relaxed).wrapping_add(n), Relaxed);
    }
}

/// Any thread may write the metric: an atomic add.
#[derive(Debug)]
pub enum ManyWriters {}

impl Writers for ManyWriters {
    #[inline]
    fn add(cell: &AtomicU64, n: u64) {
        cell.fetch_add(n, Relaxed);
    }
}

/// A count that only goes up.
#[derive(Debug)]
pub struct Counter<W: Writers> {
    value: AtomicU64,
    writers: PhantomData<W>,
}

impl<W: Writers> Counter<W> {
    pub const fn new() -> Self {
        Counter {
            value: AtomicU64::new(0),
            writers: PhantomData,
        }
    }

    #[inline]
    pub fn inc(&self) {
        W::add(&self.value, 1);
    }

    #[inline]
    pub fn add(&self, n: u64) {
        W::add(&self.value, n);
    }

    pub fn get(&self) -> u64 {
        self.value.load(Relaxed)
    }
}

impl<W: Writers> Default for Counter<W> {
    fn default() -> Self {
        Self::new()
    }
}

/// A value that goes up and down (kept as two's complement in a u64).
#[derive(Debug)]
pub struct Gauge<W: Writers> {
    value: AtomicU64,
    writers: PhantomData<W>,
}

impl<W: Writers> Gauge<W> {
    pub const fn new() -> Self {
        Gauge {
            value: AtomicU64::new(0),
            writers: PhantomData,
        }
    }

    #[inline]
    pub fn add(&self, delta: i64) {
        W::add(&self.value, delta as u64);
    }

    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    #[inline]
    pub fn dec(&self) {
        self.add(-1);
    }

    pub fn get(&self) -> i64 {
        self.value.load(Relaxed) as i64
    }
}

impl Gauge<OneWriter> {
    /// Sets the value (only a gauge with one writer can: with several, a set between another
    /// thread's load and store would be lost).
    #[inline]
    pub fn set(&self, value: i64) {
        self.value.store(value as u64, Relaxed);
    }
}

impl<W: Writers> Default for Gauge<W> {
    fn default() -> Self {
        Self::new()
    }
}

/// Upper bounds of the duration histograms' buckets, in seconds: from 100 µs (a cached file
/// answered on the loop) to 10 s (a slow helper job), about three per decade.
pub const DURATION_BOUNDS: [f64; 15] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0,
];

/// The same bounds in nanoseconds, for comparing without floating point.
const DURATION_BOUNDS_NANOS: [u64; 15] = {
    let mut nanos = [0; 15];
    let mut i = 0;
    while i < nanos.len() {
        nanos[i] = (DURATION_BOUNDS[i] * 1e9) as u64;
        i += 1;
    }
    nanos
};

/// A histogram of durations over [`DURATION_BOUNDS`]: one count per bucket (not cumulative;
/// summed when written out), the sum and the count.
#[derive(Debug)]
pub struct Histogram<W: Writers> {
    buckets: [Counter<W>; DURATION_BOUNDS.len()],
    sum_nanos: Counter<W>,
    count: Counter<W>,
}

impl<W: Writers> Histogram<W> {
    pub const fn new() -> Self {
        Histogram {
            buckets: [const { Counter::new() }; DURATION_BOUNDS.len()],
            sum_nanos: Counter::new(),
            count: Counter::new(),
        }
    }

    /// Counts one observation of `duration`.
    #[inline]
    pub fn observe(&self, duration: Duration) {
        let nanos = duration
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(duration.subsec_nanos()));
        if let Some(bucket) = DURATION_BOUNDS_NANOS
            .iter()
            .position(|&bound| nanos <= bound)
        {
            self.buckets[bucket].inc();
        }
        self.sum_nanos.add(nanos);
        self.count.inc();
    }

    /// What the histogram holds now.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut snapshot = HistogramSnapshot::default();
        snapshot.add(self);
        snapshot
    }
}

impl<W: Writers> Default for Histogram<W> {
    fn default() -> Self {
        Self::new()
    }
}

/// Histogram values, summed over several histograms (one per worker).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// Per bucket, not cumulative.
    buckets: [u64; DURATION_BOUNDS.len()],
    sum_nanos: u64,
    count: u64,
}

impl HistogramSnapshot {
    /// Adds `histogram`'s values.
    pub fn add<W: Writers>(&mut self, histogram: &Histogram<W>) {
        for (sum, bucket) in self.buckets.iter_mut().zip(&histogram.buckets) {
            *sum += bucket.get();
        }
        self.sum_nanos += histogram.sum_nanos.get();
        // Read last: the count is then never below the buckets' total (+Inf ≥ every `le`).
        self.count += histogram.count.get();
        let in_buckets: u64 = self.buckets.iter().sum();
        self.count = self.count.max(in_buckets);
    }

    pub fn count(&self) -> u64 {
        self.count
    }
}

/// The process's metrics that are not any one loop's: written by helper threads, the database
/// writer and the chat, read by scrapes.
#[derive(Debug)]
pub struct ProcessMetrics {
    /// Jobs queued for the helper pool and not started yet.
    pub helper_queue_depth: Gauge<ManyWriters>,
    /// How long each helper job ran.
    pub helper_job_seconds: Histogram<ManyWriters>,
    /// How long each group commit of the database writer took (SQLite).
    pub db_write_seconds: Histogram<ManyWriters>,
    /// Chat messages published to the room's subscribers.
    pub chat_messages_published: Counter<ManyWriters>,
}

/// This process's metrics (see [`ProcessMetrics`]).
pub static PROCESS: ProcessMetrics = ProcessMetrics {
    helper_queue_depth: Gauge::new(),
    helper_job_seconds: Histogram::new(),
    db_write_seconds: Histogram::new(),
    chat_messages_published: Counter::new(),
};

/// Prometheus's text exposition format, written family by family.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

/// The content type of [`Exposition::finish`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Exposition {
    /// Starts the family `name`: its help and type lines.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        // Help texts are ours and never hold a backslash or a line break.
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl fmt::Display) {
        self.text.push_str(name);
        self.labels(labels, None);
        let _ = writeln!(self.text, " {value}");
    }

    /// A whole histogram family with one series per label set: the cumulative buckets, the
    /// sum (in seconds) and the count.
    pub fn histogram(
        &mut self,
        name: &str,
        help: &str,
        series: &[(&[(&str, &str)], HistogramSnapshot)],
    ) {
        self.family(name, Kind::Histogram, help);
        for (labels, snapshot) in series {
            let mut cumulative = 0;
            for (bound, count) in DURATION_BOUNDS.iter().zip(&snapshot.buckets) {
                cumulative += count;
                let _ = write!(self.text, "{name}_bucket");
                self.labels(labels, Some(&bound.to_string()));
                let _ = writeln!(self.text, " {cumulative}");
            }
            let _ = write!(self.text, "{name}_bucket");
            self.labels(labels, Some("+Inf"));
            let _ = writeln!(self.text, " {}", snapshot.count);
            let _ = write!(self.text, "{name}_sum");
            self.labels(labels, None);
            let _ = writeln!(self.text, " {}", snapshot.sum_nanos as f64 / 1e9);
            let _ = write!(self.text, "{name}_count");
            self.labels(labels, None);
            let _ = writeln!(self.text, " {}", snapshot.count);
        }
    }

    /// `{a="x",b="y"}` with `le` last, or nothing without labels. Label values are ours
    /// (fixed sets), never a client's: no escaping is needed.
    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.text.push('{');
        let le = le.map(|le| ("le", le));
        for (i, (label, value)) in labels.iter().chain(le.as_ref()).enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            let _ = write!(self.text, "{label}=\"{value}\"");
        }
        self.text.push('}');
    }

    /// The text to send.
    pub fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_count_with_either_writer_policy() {
        let one: Counter<OneWriter> = Counter::new();
        one.inc();
        one.add(41);
        assert_eq!(one.get(), 42);
        let many: Counter<ManyWriters> = Counter::new();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| (0..1000).for_each(|_| many.inc()));
            }
        });
        assert_eq!(many.get(), 4000);
        let gauge: Gauge<ManyWriters> = Gauge::new();
        gauge.inc();
        gauge.dec();
        gauge.dec();
        assert_eq!(gauge.get(), -1);
    }

    #[test]
    fn a_duration_lands_in_the_first_bucket_that_holds_it() {
        let histogram: Histogram<OneWriter> = Histogram::new();
        histogram.observe(Duration::ZERO);
        histogram.observe(Duration::from_micros(100)); // on the bound: `le` is inclusive
        histogram.observe(Duration::from_micros(101));
        histogram.observe(Duration::from_secs(60)); // past the last bound: only +Inf
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.buckets[0], 2);
        assert_eq!(snapshot.buckets[1], 1);
        assert_eq!(snapshot.buckets.iter().sum::<u64>(), 3);
        assert_eq!(snapshot.count(), 4);
        assert_eq!(snapshot.sum_nanos, 60_000_201_000);
    }

    #[test]
    fn histograms_are_written_with_cumulative_buckets_sum_and_count() {
        let histogram: Histogram<OneWriter> = Histogram::new();
        histogram.observe(Duration::from_micros(50));
        histogram.observe(Duration::from_millis(2));
        let mut out = Exposition::default();
        out.histogram(
            "t_seconds",
            "Test.",
            &[(&[("kind", "api")], histogram.snapshot())],
        );
        let text = out.finish();
        assert!(text.starts_with("# HELP t_seconds Test.\n# TYPE t_seconds histogram\n"));
        assert!(text.contains("t_seconds_bucket{kind=\"api\",le=\"0.0001\"} 1\n"));
        assert!(text.contains("t_seconds_bucket{kind=\"api\",le=\"0.001\"} 1\n"));
        assert!(text.contains("t_seconds_bucket{kind=\"api\",le=\"0.0025\"} 2\n"));
        assert!(text.contains("t_seconds_bucket{kind=\"api\",le=\"10\"} 2\n"));
        assert!(text.contains("t_seconds_bucket{kind=\"api\",le=\"+Inf\"} 2\n"));
        assert!(text.contains("t_seconds_sum{kind=\"api\"} 0.00205\n"));
        assert!(text.contains("t_seconds_count{kind=\"api\"} 2\n"));
    }

    #[test]
    fn samples_without_labels_have_no_braces() {
        let mut out = Exposition::default();
        out.family("x_total", Kind::Counter, "X.");
        out.sample("x_total", &[], 3);
        out.sample("x_total", &[("a", "1"), ("b", "2")], 4);
        assert_eq!(
            out.finish(),
            "# HELP x_total X.\n# TYPE x_total counter\nx_total 3\nx_total{a=\"1\",b=\"2\"} 4\n"
        );
    }
}
