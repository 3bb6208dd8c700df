//! The access log: one line per request (in the `--log-format`, see `log_format`), buffered in
//! memory and written once per loop tick, so logging costs a memcpy per request and a write
//! per tick. It goes to stdout, or to the `--access-log` file, reopened on SIGUSR1.
//!
//! Each worker has its own buffer and writes it itself; no worker waits for another, except
//! behind a line longer than a pipe writes whole:
//! - stdout: straight to file descriptor 1 with write(2), in pieces of whole lines of at most
//!   `PIPE_BUF` bytes. Such a write lands whole, never with another worker's bytes inside
//!   (POSIX for pipes; Linux serializes writes to a file), so lines from different workers
//!   never interleave mid-line. A line longer than that (a long URI or User-Agent) is written
//!   alone while no other worker writes (`STDOUT_WRITES`), since a pipe may split it.
//! - a file: each worker has its own descriptor, opened with O_APPEND, and writes its whole
//!   buffer in one call: each write is appended whole, at the end of the file.
//!
//! Reopening (logrotate renamed the file and sent SIGUSR1): the worker that receives the
//! signal counts it in `Control` and wakes the others; each loop compares that count with the
//! one its file was opened at once per tick ([`AccessLog::follow_reopens`]), writes what it
//! has buffered to the old file, and opens a new one at the path. A line is buffered, then
//! written whole to exactly one of the two files: none is lost or split by a rotation.

use std::fs::{File, OpenOptions};
use std::io;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use crate::config::Config;
use crate::http::conn::Exchange;
use crate::http::date::DateCache;
use crate::server::log_format::LogFormat;

/// Flush early if a tick produced this much log (a burst of pipelined requests).
const FLUSH_THRESHOLD: usize = 64 * 1024;
/// The most one write(2) to a pipe writes whole (POSIX `PIPE_BUF`, 4096 on Linux).
const WHOLE_WRITE_BYTES: usize = 4096;

/// Taken shared by every write to stdout of at most `WHOLE_WRITE_BYTES`, which lands whole
/// anyway, so writers of such pieces never wait for each other; taken exclusively to write one
/// longer line, which a pipe may split and interleave with other writes (when the pipe is
/// full: without it, 6 KB lines from two workers came out mixed in 2 of 3 runs of
/// `logs::long_lines_of_both_workers_on_stdout_stay_whole`). A worker takes it per write of a
/// flush, never per request.
static STDOUT_WRITES: RwLock<()> = RwLock::new(());

/// One loop's access log.
#[derive(Debug)]
pub struct AccessLog {
    format: LogFormat,
    output: Output,
    buf: Vec<u8>,
    /// Exchanges recorded (logged or not): the requests this loop served.
    exchanges: u64,
}

/// Where the lines go.
#[derive(Debug)]
enum Output {
    /// `--quiet`: nowhere.
    Off,
    Stdout,
    File {
        path: PathBuf,
        file: File,
        /// The reopen requests (SIGUSR1) counted when `file` was opened.
        reopens_seen: u64,
    },
}

impl AccessLog {
    /// The log `config` asks for: off with `--quiet`, else in `--log-format` to stdout or to
    /// the `--access-log` file (opened for appending, created if missing).
    pub fn for_config(config: &Config) -> io::Result<AccessLog> {
        let output = match (&config.access_log, config.quiet) {
            (_, true) => Output::Off,
            (None, false) => Output::Stdout,
            (Some(path), false) => Output::File {
                file: open_for_appending(path).map_err(|error| {
                    io::Error::new(
                        error.kind(),
                        format!("--access-log {}: {error}", path.display()),
                    )
                })?,
                path: path.clone(),
                reopens_seen: 0,
            },
        };
        Ok(AccessLog {
            format: config.log_format,
            output,
            buf: Vec::new(),
            exchanges: 0,
        })
    }

    /// Appends the line for `exchange` (from `peer`).
    pub fn record(&mut self, peer: IpAddr, date: &DateCache, exchange: &Exchange<'_>) {
        self.exchanges += 1;
        if matches!(self.output, Output::Off) {
            return;
        }
        self.format.write_line(&mut self.buf, peer, date, exchange);
        if self.buf.len() >= FLUSH_THRESHOLD {
            self.flush();
        }
    }

    /// Writes out what was buffered. A failing output loses log lines, never requests.
    pub fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        match &self.output {
            Output::Off => {}
            Output::Stdout => write_to_stdout(&self.buf),
            Output::File { file, .. } => write_to_file(file, &self.buf),
        }
        self.buf.clear();
    }

    /// Opens the file anew at its path if SIGUSR1 asked for it since it was opened
    /// (`reopens` is the count of those requests): what is buffered goes to the old file
    /// first. If the new file cannot be opened, the old one stays in use.
    pub fn follow_reopens(&mut self, reopens: u64) {
        let Output::File { reopens_seen, .. } = &self.output else {
            return;
        };
        if *reopens_seen == reopens {
            return;
        }
        self.flush();
        let Output::File {
            path,
            file,
            reopens_seen,
        } = &mut self.output
        else {
            return;
        };
        *reopens_seen = reopens;
        match open_for_appending(path) {
            Ok(new) => {
                *file = new;
                log::debug!("reopened the access log {}", path.display());
            }
            Err(error) => log::error!(
                "cannot reopen the access log {}, still writing to the old file: {error}",
                path.display()
            ),
        }
    }

    /// The exchanges recorded so far, logged or not.
    pub fn exchanges(&self) -> u64 {
        self.exchanges
    }
}

/// Opens `path` for appending, creating it (mode 0644, less the umask) if missing.
fn open_for_appending(path: &Path) -> io::Result<File> {
    OpenOptions::new().append(true).create(true).open(path)
}

/// Writes whole lines to stdout: pieces of at most `WHOLE_WRITE_BYTES`, or one longer line
/// alone (see `STDOUT_WRITES`).
fn write_to_stdout(lines: &[u8]) {
    let stdout = io::stdout();
    let mut rest = lines;
    while !rest.is_empty() {
        let piece = whole_lines_within(rest, WHOLE_WRITE_BYTES);
        let written = if piece.len() <= WHOLE_WRITE_BYTES {
            let _shared = STDOUT_WRITES
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            write_all(stdout.as_fd(), piece)
        } else {
            let _alone = STDOUT_WRITES
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            write_all(stdout.as_fd(), piece)
        };
        if written.is_err() {
            return;
        }
        rest = &rest[piece.len()..];
    }
}

/// Appends the whole buffer with one write (a short write, only on errors such as a full
/// disk, goes on with the rest).
fn write_to_file(file: &File, lines: &[u8]) {
    let _ = write_all(file.as_fd(), lines);
}

/// write(2) until all of `bytes` is written, retrying on EINTR.
fn write_all(fd: std::os::fd::BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => bytes = &bytes[written..],
            Err(rustix::io::Errno::INTR) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

/// The longest start of `bytes` made of whole lines and at most `limit` bytes long; a first line
/// longer than `limit` alone.
fn whole_lines_within(bytes: &[u8], limit: usize) -> &[u8] {
    if bytes.len() <= limit {
        return bytes;
    }
    let end = memchr::memrchr(b'\n', &bytes[..limit])
        .or_else(|| memchr::memchr(b'\n', bytes))
        .map_or(bytes.len(), |newline| newline + 1);
    &bytes[..end]
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use clap::Parser;

    use super::*;
    use crate::http::status::StatusCode;

    #[test]
    fn writes_are_whole_lines_within_the_limit() {
        let lines = b"aaa\nbb\ncccc\n";
        assert_eq!(whole_lines_within(lines, 100), lines);
        assert_eq!(whole_lines_within(lines, 7), b"aaa\nbb\n");
        assert_eq!(whole_lines_within(lines, 6), b"aaa\n");
        // A line longer than the limit goes alone.
        assert_eq!(whole_lines_within(lines, 2), b"aaa\n");
        assert_eq!(whole_lines_within(b"aaaa", 2), b"aaaa");
    }

    fn config(args: &[&str]) -> Config {
        Config::parse_from(["looplight"].iter().chain(args))
    }

    /// A line per call, in the configured format.
    fn record(log: &mut AccessLog, status: StatusCode) {
        let mut date = DateCache::new();
        date.refresh(UNIX_EPOCH + Duration::from_secs(784_111_777));
        let exchange = Exchange {
            request: None,
            status,
            body_bytes: 0,
            duration: Duration::ZERO,
        };
        log.record([127, 0, 0, 1].into(), &date, &exchange);
    }

    #[test]
    fn quiet_counts_exchanges_and_logs_nothing() {
        let mut log = AccessLog::for_config(&config(&["--quiet"])).unwrap();
        record(&mut log, StatusCode::OK);
        assert_eq!(log.exchanges(), 1);
        assert!(log.buf.is_empty());
    }

    #[test]
    fn a_file_is_appended_to_and_reopened_at_its_path_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        std::fs::write(&path, "kept\n").unwrap();
        let path_arg = path.to_str().unwrap();
        let mut log = AccessLog::for_config(&config(&["--access-log", path_arg])).unwrap();
        record(&mut log, StatusCode::OK);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "kept\n",
            "buffered"
        );
        log.follow_reopens(0);
        log.flush();
        let first = "127.0.0.1 - - [06/Nov/1994:08:49:37 +0000] \"-\" 200 -\n";
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("kept\n{first}")
        );

        // logrotate: rename, then SIGUSR1. The line buffered before goes to the old file.
        let rotated = dir.path().join("access.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        record(&mut log, StatusCode::CREATED);
        log.follow_reopens(1);
        record(&mut log, StatusCode::NO_CONTENT);
        log.follow_reopens(1);
        log.flush();
        let second = first.replace("200", "201");
        let third = first.replace("200", "204");
        assert_eq!(
            std::fs::read_to_string(&rotated).unwrap(),
            format!("kept\n{first}{second}")
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), third);
    }

    #[test]
    fn a_file_that_cannot_be_reopened_leaves_the_old_one_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("logs");
        std::fs::create_dir(&sub).unwrap();
        let path = sub.join("access.log");
        let path_arg = path.to_str().unwrap();
        let mut log = AccessLog::for_config(&config(&["--access-log", path_arg])).unwrap();
        let moved = dir.path().join("moved");
        std::fs::rename(&sub, &moved).unwrap();
        log.follow_reopens(1);
        record(&mut log, StatusCode::OK);
        log.flush();
        let old = std::fs::read_to_string(moved.join("access.log")).unwrap();
        assert!(old.ends_with(" 200 -\n"), "{old:?}");
        assert!(!path.exists());
    }

    #[test]
    fn a_file_that_cannot_be_opened_is_an_error_naming_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("access.log");
        let args = ["--access-log", path.to_str().unwrap()];
        let error = AccessLog::for_config(&config(&args)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert!(error.to_string().contains("--access-log"), "{error}");
    }
}
