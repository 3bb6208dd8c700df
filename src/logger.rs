//! Operator messages (start, reloads, rotations, errors): the small backend behind the `log`
//! facade that the binary installs. One line per message on stderr,
//!
//! ```text
//! 2026-05-01T12:00:00.123Z INFO reloaded /etc/looplight/cert.pem (SHA-256 …)
//! ```
//!
//! the time in RFC 3339 (UTC, to the millisecond), the level, then the message; a message from
//! another crate (a database driver, say) names its module first (`WARN r2d2: …`). A line
//! break inside a message is written as `\n`, so each message stays one line. `--log-level`
//! sets the least severe level written. The access log is not here: it has its own path
//! (`server::access_log`), buffered per loop.

use std::io::Write;
use std::time::SystemTime;

use log::{LevelFilter, Log, Metadata, Record};
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;

/// Installs the logger for the whole process, writing messages at `level` and more severe.
/// Fails if a logger is installed already.
pub fn init(level: LevelFilter) -> Result<(), log::SetLoggerError> {
    log::set_logger(&STDERR_LOGGER)?;
    log::set_max_level(level);
    Ok(())
}

/// Writes each message as one line on stderr.
struct StderrLogger;

static STDERR_LOGGER: StderrLogger = StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_line(SystemTime::now(), record);
        // One write of the whole line, under stderr's lock: lines from several threads never
        // mix. Nothing is left to do if stderr is gone.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// `TIME LEVEL [target: ]message\n`
fn format_line(now: SystemTime, record: &Record<'_>) -> String {
    let mut line = timestamp(now);
    line.push(' ');
    line.push_str(record.level().as_str());
    line.push(' ');
    let target = record.target();
    if target != "looplight" && !target.starts_with("looplight::") {
        line.push_str(target);
        line.push_str(": ");
    }
    for char in record.args().to_string().chars() {
        match char {
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            char => line.push(char),
        }
    }
    line.push('\n');
    line
}

/// `2026-05-01T12:00:00.123Z`: RFC 3339, UTC, milliseconds.
fn timestamp(now: SystemTime) -> String {
    // Parsed at compile time: nothing to parse (or to fail) at run time.
    const FORMAT: &[BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    OffsetDateTime::from(now)
        .format(FORMAT)
        .unwrap_or_else(|error| format!("(no time: {error})"))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use log::Level;

    use super::*;

    fn line(level: Level, target: &str, message: std::fmt::Arguments<'_>) -> String {
        let now = UNIX_EPOCH + Duration::from_millis(784_111_777_250);
        let record = Record::builder()
            .level(level)
            .target(target)
            .args(message)
            .build();
        format_line(now, &record)
    }

    #[test]
    fn a_line_is_the_time_the_level_and_the_message() {
        let path = "/etc/looplight/cert.pem";
        assert_eq!(
            line(
                Level::Info,
                "looplight::server",
                format_args!("reloaded {path}")
            ),
            "1994-11-06T08:49:37.250Z INFO reloaded /etc/looplight/cert.pem\n"
        );
        assert_eq!(
            line(
                Level::Error,
                "looplight",
                format_args!("--db x: no such file")
            ),
            "1994-11-06T08:49:37.250Z ERROR --db x: no such file\n"
        );
        assert_eq!(
            line(Level::Trace, "looplight", format_args!("x")),
            "1994-11-06T08:49:37.250Z TRACE x\n"
        );
    }

    #[test]
    fn another_crates_message_names_its_module() {
        assert_eq!(
            line(Level::Warn, "r2d2", format_args!("connection failed")),
            "1994-11-06T08:49:37.250Z WARN r2d2: connection failed\n"
        );
        // Not fooled by a name that only starts like ours.
        assert!(line(Level::Warn, "looplightish", format_args!("x")).contains(" looplightish: "));
    }

    #[test]
    fn a_message_stays_on_one_line() {
        assert_eq!(
            line(Level::Warn, "looplight", format_args!("one\ntwo\r\nthree")),
            "1994-11-06T08:49:37.250Z WARN one\\ntwo\\r\\nthree\n"
        );
    }

    #[test]
    fn whole_seconds_keep_three_digits() {
        assert_eq!(
            timestamp(UNIX_EPOCH + Duration::from_secs(784_111_777)),
            "1994-11-06T08:49:37.000Z"
        );
    }
}
