//! The fuzz targets' bodies: for each target, a `run(data)` that feeds the bytes to one part of
//! the server and panics when a property fails, with the reference models the properties are
//! checked against. A panic is the failure signal, so `unwrap` and `assert!` are at home here.
//!
//! The cargo-fuzz crate in `fuzz/` (nightly, libFuzzer) calls these functions from three-line
//! targets; `cargo test` (stable) calls the same functions on every checked-in corpus file and
//! crash reproducer (`replay` below), so CI runs them without nightly. Living in the library
//! lets the checks reach crate internals without making them public API: this module exists
//! only under `cfg(test)` or the `fuzzing` feature.
//!
//! One module per target, each documenting its input layout and its properties:
//! - `head`: the request-head parser (`http::parse`);
//! - `chunked`: the chunked body decoder (`http::chunked`);
//! - `conn`: the sans-I/O connection state machine (`http::conn`);
//! - `headers`: `Range`, the preconditions and `Accept-Encoding` (`static_files`);
//! - `paths`: URL path sanitizing and containment beneath the root (`static_files::root`);
//! - `api`: JSON API bodies through the router into a temporary SQLite store (`api`);
//! - `tls`: arbitrary bytes at the TLS port (`server::conn` over `server::transport`).
//!
//! Inputs that need several decisions take them from their first bytes (a split seed, a few
//! flags), so that libFuzzer mutates decisions and payload alike without `arbitrary`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

pub mod api;
pub mod chunked;
pub mod conn;
pub mod head;
pub mod headers;
pub mod paths;
pub mod tls;

#[cfg(test)]
mod seeds;

/// A target's body: panics when a property fails.
pub type Target = fn(&[u8]);

/// The targets by name, as `fuzz/fuzz_targets/<name>.rs` and the corpus folders name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("head", head::run),
    ("chunked", chunked::run),
    ("conn", conn::run),
    ("headers", headers::run),
    ("paths", paths::run),
    ("api", api::run),
    ("tls", tls::run),
];

/// Where to cut `len` bytes into the pieces a peer might send them in: increasing positions
/// strictly between 0 and `len`. The same seed always gives the same cuts; seed 0 gives none
/// (the bytes arrive whole). The low two bits pick the typical piece size (1, up to 8, up to
/// 64, up to 1024 bytes), the rest seeds the sizes.
pub fn cuts(seed: u8, len: usize) -> Vec<usize> {
    if seed == 0 {
        return Vec::new();
    }
    let max_piece = [1, 8, 64, 1024][usize::from(seed & 3)];
    let mut random = SplitMix::new(u64::from(seed));
    let mut cuts = Vec::new();
    let mut at = 0;
    loop {
        at += 1 + random.below(max_piece);
        if at >= len {
            return cuts;
        }
        cuts.push(at);
    }
}

/// `data` cut at `cuts` (see [`cuts`]): the pieces, in order, none empty unless `data` is.
pub fn pieces<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::with_capacity(cuts.len() + 1);
    let mut from = 0;
    for &cut in cuts {
        pieces.push(&data[from..cut]);
        from = cut;
    }
    pieces.push(&data[from..]);
    pieces
}

/// A fresh directory for one rig's fixtures: `looplight-fuzz-<what>-<pid>-<n>` in `parent`.
/// A libFuzzer process exits without running destructors, and so may a test thread that the
/// test harness outlives, so a rig cannot count on removing its directory: instead, those
/// of processes that are gone are removed here, before a new one is made.
pub fn fixture_dir(parent: &Path, what: &str) -> PathBuf {
    static MADE: AtomicUsize = AtomicUsize::new(0);
    let prefix = format!("looplight-fuzz-{what}-");
    if let Ok(entries) = std::fs::read_dir(parent) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let pid = name
                .to_str()
                .and_then(|name| name.strip_prefix(&prefix))
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok());
            if let Some(pid) = pid
                && !Path::new(&format!("/proc/{pid}")).exists()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let n = MADE.fetch_add(1, Ordering::Relaxed);
    let dir = parent.join(format!("{prefix}{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a fixture directory");
    dir
}

/// A small deterministic generator (SplitMix64) for choices derived from a seed.
#[derive(Clone, Debug)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }
}

/// Reads the fuzzer's decisions from the front of an input, one byte at a time; an input that
/// runs out decides 0 for everything left.
#[derive(Clone, Debug)]
pub struct Choices<'a> {
    data: &'a [u8],
}

impl<'a> Choices<'a> {
    pub fn new(data: &'a [u8]) -> Choices<'a> {
        Choices { data }
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&first, rest)) => {
                self.data = rest;
                first
            }
            None => 0,
        }
    }

    /// A number in `0..bound` (`bound` > 0) from one byte.
    pub fn below(&mut self, bound: usize) -> usize {
        usize::from(self.byte()) % bound
    }

    /// A number from up to eight bytes, big-endian.
    pub fn number(&mut self, bytes: usize) -> u64 {
        (0..bytes).fold(0, |acc, _| (acc << 8) | u64::from(self.byte()))
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// What is left, taken whole.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

#[cfg(test)]
mod replay {
    //! Every checked-in corpus file and crash reproducer, through the same `run` the fuzzer
    //! calls: `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`. A folder that is
    //! missing or empty fails the test, so a renamed target cannot silently replay nothing.

    use super::*;

    fn files_in(folder: &Path) -> Vec<PathBuf> {
        let entries = std::fs::read_dir(folder)
            .unwrap_or_else(|error| panic!("{}: {error}", folder.display()));
        let mut files: Vec<PathBuf> = entries
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{} holds no input", folder.display());
        files
    }

    fn replay(target: &str, kind: &str) {
        let (_, run) = TARGETS
            .iter()
            .find(|(name, _)| *name == target)
            .unwrap_or_else(|| panic!("no target {target}"));
        let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz")
            .join(kind)
            .join(target);
        for file in files_in(&folder) {
            // A stack overflow aborts without a panic message: LOOPLIGHT_FUZZ_DEBUG=1 (with
            // --nocapture) names each file before it runs.
            if std::env::var_os("LOOPLIGHT_FUZZ_DEBUG").is_some() {
                eprintln!("{}", file.display());
            }
            let data = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&data));
            if let Err(panic) = outcome {
                let message = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)");
                panic!("{} failed: {message}", file.display());
            }
        }
    }

    macro_rules! replay_tests {
        ($($target:ident),*) => {
            $(
                mod $target {
                    #[test]
                    fn corpus() {
                        super::replay(stringify!($target), "corpus");
                    }

                    #[test]
                    fn regressions() {
                        super::replay(stringify!($target), "regressions");
                    }
                }
            )*

            #[test]
            fn every_target_is_replayed() {
                let replayed = [$(stringify!($target)),*];
                let names: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
                assert_eq!(names, replayed);
            }
        };
    }

    replay_tests!(head, chunked, conn, headers, paths, api, tls);

    #[test]
    fn cuts_are_inside_and_increasing_and_seed_zero_is_whole() {
        assert!(cuts(0, 100).is_empty());
        for seed in 1..=255 {
            let cuts = cuts(seed, 300);
            assert!(cuts.windows(2).all(|pair| pair[0] < pair[1]), "{seed}");
            assert!(cuts.iter().all(|&cut| cut > 0 && cut < 300), "{seed}");
            let rejoined: Vec<u8> = pieces(&[7; 300], &cuts).concat();
            assert_eq!(rejoined.len(), 300);
        }
        assert_eq!(cuts(4, 5), [1, 2, 3, 4], "seed 4: one byte at a time");
    }
}
