//! The log file: one file per UTC day in the log directory, `plinth.YYYY-MM-DD.log`, created
//! with mode 0600, and the retention that deletes the files of that pattern older than N
//! days (and nothing else).
//!
//! `tracing-appender`'s rolling writer cannot set a file's mode and counts files rather than
//! days, so the rotation is this small writer, run behind `tracing-appender`'s non-blocking
//! worker thread. The day comes from a clock the writer is given, so tests pick the dates.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use time::{Date, Month};

const PREFIX: &str = "plinth.";
const SUFFIX: &str = ".log";

/// The name of the log file of `date`.
pub(crate) fn file_name(date: Date) -> String {
    format!(
        "{PREFIX}{:04}-{:02}-{:02}{SUFFIX}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// The date of a log file's name; `None` for any other name.
pub(crate) fn dated(name: &str) -> Option<Date> {
    let day = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let bytes = day.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = bytes.get(r)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let year = i32::try_from(digits(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(digits(5..7)?).ok()?).ok()?;
    let day = u8::try_from(digits(8..10)?).ok()?;
    Date::from_calendar_date(year, month, day).ok()
}

/// Deletes the log files in `dir` dated `days` or more days before `today`, keeping the last
/// `days` days (today's included); `days == 0` keeps every file. Only regular files whose
/// whole name is a log file's are touched. Returns the files deleted; a file that cannot be
/// deleted is skipped (and reported on stderr).
pub(crate) fn prune(dir: &Path, today: Date, days: u64) -> io::Result<Vec<PathBuf>> {
    let Some(oldest_kept) = i64::try_from(days)
        .ok()
        .filter(|d| *d > 0)
        .and_then(|d| today.checked_sub(time::Duration::days(d - 1)))
    else {
        return Ok(Vec::new());
    };
    let mut deleted = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(date) = entry.file_name().to_str().and_then(dated) else {
            continue;
        };
        if date >= oldest_kept || !entry.file_type()?.is_file() {
            continue;
        }
        let path = entry.path();
        match std::fs::remove_file(&path) {
            Ok(()) => deleted.push(path),
            Err(e) => eprintln!(
                "plinth: cannot delete the old log file {}: {e}",
                path.display()
            ),
        }
    }
    deleted.sort();
    Ok(deleted)
}

/// The clock that says which day it is (UTC).
pub(crate) type Today = Box<dyn FnMut() -> Date + Send>;

/// Today in UTC.
pub(crate) fn utc_today() -> Date {
    time::OffsetDateTime::now_utc().date()
}

/// Writes to the file of the day, opening the next day's (and pruning) when the day turns.
pub(crate) struct DailyFile {
    dir: PathBuf,
    retention_days: u64,
    today: Today,
    date: Date,
    file: BufWriter<File>,
}

impl std::fmt::Debug for DailyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DailyFile")
            .field("dir", &self.dir)
            .field("date", &self.date)
            .finish_non_exhaustive()
    }
}

impl DailyFile {
    /// Creates `dir` (mode 0700) if missing, prunes it and opens today's file. Returns the
    /// writer and the files pruned.
    pub(crate) fn open(
        dir: &Path,
        retention_days: u64,
        mut today: Today,
    ) -> io::Result<(Self, Vec<PathBuf>)> {
        if !dir.is_dir() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir)?;
        }
        let date = today();
        let pruned = prune(dir, date, retention_days)?;
        let file = open_day(dir, date)?;
        let writer = Self {
            dir: dir.to_owned(),
            retention_days,
            today,
            date,
            file,
        };
        Ok((writer, pruned))
    }

    /// Moves to the file of `date`. On failure the current file stays in use (and the
    /// failure is reported on stderr once, not for every line).
    fn roll(&mut self, date: Date) {
        self.date = date;
        let _ = self.file.flush();
        match open_day(&self.dir, date) {
            Ok(file) => self.file = file,
            Err(e) => eprintln!(
                "plinth: cannot open the log file {}: {e}; logging goes on in the previous one",
                self.dir.join(file_name(date)).display()
            ),
        }
        if let Err(e) = prune(&self.dir, date, self.retention_days) {
            eprintln!(
                "plinth: cannot prune the log directory {}: {e}",
                self.dir.display()
            );
        }
    }
}

fn open_day(dir: &Path, date: Date) -> io::Result<BufWriter<File>> {
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    Ok(BufWriter::new(options.open(dir.join(file_name(date)))?))
}

impl Write for DailyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let date = (self.today)();
        if date != self.date {
            self.roll(date);
        }
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use time::macros::date;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("read the directory")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn file_names_round_trip_and_nothing_else_is_a_log_file() {
        assert_eq!(file_name(date!(2026 - 03 - 07)), "plinth.2026-03-07.log");
        assert_eq!(dated("plinth.2026-03-07.log"), Some(date!(2026 - 03 - 07)));
        for other in [
            "plinth.2026-02-30.log",
            "plinth.2026-3-07.log",
            "plinth.2026-03-07.log.gz",
            "plinth.2026-03-07.txt",
            "Plinth.2026-03-07.log",
            "other.2026-03-07.log",
            "plinth.+202-03-07.log",
            "plinth.2026-03-07 .log",
            "plinth.log",
            "plinth.db",
        ] {
            assert_eq!(dated(other), None, "{other}");
        }
    }

    #[test]
    fn retention_deletes_only_old_log_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let keep = [
            "plinth.2026-03-05.log",
            "plinth.2026-03-06.log",
            "plinth.2026-03-07.log",
            "plinth.2026-03-09.log", // a day ahead (a clock that was wrong): kept
            "plinth.2026-02-01.log.gz",
            "notes.2026-02-01.log",
            "plinth.db",
        ];
        let old = ["plinth.2025-12-31.log", "plinth.2026-03-04.log"];
        for name in keep.iter().chain(&old) {
            std::fs::write(dir.path().join(name), "x").expect("write");
        }
        // A directory with a log file's name is not a log file.
        std::fs::create_dir(dir.path().join("plinth.2026-01-01.log")).expect("mkdir");

        let today = date!(2026 - 03 - 07);
        assert_eq!(
            prune(dir.path(), today, 0).expect("prune"),
            Vec::<PathBuf>::new()
        );
        let deleted = prune(dir.path(), today, 3).expect("prune");
        let expected: Vec<PathBuf> = old.iter().map(|n| dir.path().join(n)).collect();
        assert_eq!(deleted, expected);
        let mut left: Vec<&str> = keep.to_vec();
        left.push("plinth.2026-01-01.log");
        left.sort_unstable();
        assert_eq!(names(dir.path()), left);

        assert_eq!(
            prune(dir.path(), today, 1).expect("prune"),
            [5, 6].map(|d| dir.path().join(format!("plinth.2026-03-0{d}.log")))
        );
    }

    #[test]
    fn the_writer_rolls_to_the_next_day_and_prunes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let logs = dir.path().join("logs");
        std::fs::create_dir(&logs).expect("mkdir");
        std::fs::write(logs.join("plinth.2026-03-05.log"), "old\n").expect("write");
        std::fs::write(logs.join("keep.txt"), "mine\n").expect("write");
        let now = Arc::new(Mutex::new(date!(2026 - 03 - 06)));
        let clock = Arc::clone(&now);
        let today: Today = Box::new(move || *clock.lock().expect("clock"));

        let (mut writer, pruned) = DailyFile::open(&logs, 2, today).expect("open");
        assert!(pruned.is_empty(), "{pruned:?}");
        writer.write_all(b"first\n").expect("write");
        *now.lock().expect("clock") = date!(2026 - 03 - 07);
        writer.write_all(b"second\n").expect("write");
        writer.flush().expect("flush");

        assert_eq!(
            names(&logs),
            ["keep.txt", "plinth.2026-03-06.log", "plinth.2026-03-07.log"],
            "the 5th is past two days once the 7th begins"
        );
        let read = |name: &str| std::fs::read_to_string(logs.join(name)).expect("read");
        assert_eq!(read("plinth.2026-03-06.log"), "first\n");
        assert_eq!(read("plinth.2026-03-07.log"), "second\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(logs.join("plinth.2026-03-07.log"))
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_missing_directory_is_made_private() {
        let dir = tempfile::tempdir().expect("temp dir");
        let logs = dir.path().join("a/b");
        let (writer, _) =
            DailyFile::open(&logs, 0, Box::new(|| date!(2026 - 03 - 07))).expect("open");
        drop(writer);
        assert_eq!(names(&logs), ["plinth.2026-03-07.log"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&logs)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }
}
