//! Scheduled backups: a background task of a running server that takes a backup
//! (`Store::backup_to`) every `interval` into one directory, under a name of its own
//! pattern, `plinth-backup-<UTC time>.backup` (the time as `20261130T121500.123456Z`, so
//! names sort like the times), and then deletes the oldest of those beyond `keep`, each
//! with its `.sha256` sidecar. Files of any other name are never touched.
//!
//! A backup is one committed state taken beside the writes going on (see
//! `plinth_store::backup`); a failed one is logged and tried again at the next interval.
//! The first backup is taken one interval after the start.

use crate::config::BackupSchedule;
use crate::state::AppState;
use plinth_core::Timestamp;
use std::path::{Path, PathBuf};
use tokio::task::JoinHandle;

/// The start of a scheduled backup's file name.
const PREFIX: &str = "plinth-backup-";
/// The end of a scheduled backup's file name.
const SUFFIX: &str = ".backup";

/// Starts taking backups on `schedule`.
pub(crate) fn spawn(state: AppState, schedule: BackupSchedule) -> JoinHandle<()> {
    tracing::info!(
        dir = %schedule.dir.display(),
        interval_seconds = schedule.interval.as_secs(),
        keep = schedule.keep,
        "scheduled backups on; the encryption keys are not in them: back those up separately"
    );
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(schedule.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            take_one(&state, &schedule).await;
        }
    })
}

/// One backup, then the retention.
async fn take_one(state: &AppState, schedule: &BackupSchedule) {
    // Private, as the backups in it are: their names say when each was taken.
    let mut dir = std::fs::DirBuilder::new();
    dir.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
    if let Err(e) = dir.create(&schedule.dir) {
        tracing::warn!(dir = %schedule.dir.display(), error = %e, "cannot create the backup directory; trying again at the next interval");
        return;
    }
    let now = Timestamp::from_system(std::time::SystemTime::now());
    let file = schedule.dir.join(name_at(now));
    match state.store().backup_to(&file).await {
        Ok(taken) => tracing::info!(
            file = %file.display(),
            bytes = taken.bytes,
            sha256 = %taken.sha256,
            "backup taken"
        ),
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "the scheduled backup failed; trying again at the next interval");
            return;
        }
    }
    let dir = schedule.dir.clone();
    let keep = schedule.keep;
    let pruned = tokio::task::spawn_blocking(move || prune(&dir, keep)).await;
    match pruned {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::info!(removed = n, keep, "removed the oldest scheduled backups"),
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot remove old scheduled backups"),
        Err(e) => tracing::warn!(error = %e, "removing old scheduled backups failed"),
    }
}

/// The file name of a backup taken at `at`.
fn name_at(at: Timestamp) -> String {
    let time: String = at
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    format!("{PREFIX}{time}{SUFFIX}")
}

/// Whether `name` is one [`name_at`] makes: `plinth-backup-YYYYMMDDTHHMMSS.ffffffZ.backup`.
fn is_scheduled(name: &str) -> bool {
    let Some(time) = name
        .strip_prefix(PREFIX)
        .and_then(|n| n.strip_suffix(SUFFIX))
    else {
        return false;
    };
    let b = time.as_bytes();
    b.len() == 23
        && b.iter().enumerate().all(|(i, c)| match i {
            8 => *c == b'T',
            15 => *c == b'.',
            22 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Deletes the oldest scheduled backups in `dir` beyond the newest `keep`, with their
/// sidecars, and what backups cut short (by a shutdown) left under their temporary names;
/// how many backups.
fn prune(dir: &Path, keep: usize) -> std::io::Result<usize> {
    let all: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    for name in &all {
        let cut_short = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".partial"))
            .and_then(|n| n.strip_suffix(".sha256").or(Some(n)))
            .is_some_and(is_scheduled);
        // One that cannot go (a directory of that name, say) does not stop the rest.
        if cut_short && let Err(e) = std::fs::remove_file(dir.join(name)) {
            tracing::warn!(file = %name, error = %e, "cannot remove a backup cut short");
        }
    }
    let mut names: Vec<&String> = all.iter().filter(|n| is_scheduled(n)).collect();
    names.sort();
    let excess = names.len().saturating_sub(keep);
    for name in &names[..excess] {
        let file: PathBuf = dir.join(name.as_str());
        std::fs::remove_file(&file)?;
        match std::fs::remove_file(dir.join(format!("{name}.sha256"))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(excess)
}

#[cfg(test)]
mod tests {
    use super::{is_scheduled, name_at, prune};
    use plinth_core::Timestamp;

    #[test]
    fn pruning_keeps_the_newest_and_touches_no_other_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let at =
            |i: i64| name_at(Timestamp::from_micros(1_764_505_304_000_000 + i).expect("a time"));
        for i in 0..4 {
            std::fs::write(dir.path().join(at(i)), "b").expect("write");
            std::fs::write(dir.path().join(format!("{}.sha256", at(i))), "s").expect("write");
        }
        let others = [
            "notes.txt".to_owned(),
            format!("{}.old", at(0)),
            ".other.partial".to_owned(),
        ];
        for name in &others {
            std::fs::write(dir.path().join(name), "o").expect("write");
        }
        std::fs::write(dir.path().join(format!(".{}.partial", at(9))), "p").expect("write");
        assert_eq!(prune(dir.path(), 2).expect("prune"), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("read")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
            .collect();
        left.sort();
        let mut expected = vec![
            at(2),
            format!("{}.sha256", at(2)),
            at(3),
            format!("{}.sha256", at(3)),
        ];
        expected.extend(others);
        expected.sort();
        assert_eq!(left, expected);
    }

    #[test]
    fn a_partial_file_that_cannot_be_removed_does_not_stop_the_pruning() {
        let dir = tempfile::tempdir().expect("temp dir");
        let at =
            |i: i64| name_at(Timestamp::from_micros(1_764_505_304_000_000 + i).expect("a time"));
        for i in 0..3 {
            std::fs::write(dir.path().join(at(i)), "b").expect("write");
        }
        // A directory named as a backup cut short: `remove_file` refuses it.
        let stuck = format!(".{}.partial", at(9));
        std::fs::create_dir(dir.path().join(&stuck)).expect("mkdir");
        assert_eq!(prune(dir.path(), 1).expect("prune"), 2);
        assert!(dir.path().join(&stuck).is_dir());
        assert!(dir.path().join(at(2)).exists() && !dir.path().join(at(0)).exists());
    }

    #[test]
    fn names_are_recognised_and_sort_like_their_times() {
        let a = name_at(Timestamp::from_micros(1_764_505_304_000_000).expect("a time"));
        let b = name_at(Timestamp::from_micros(1_764_505_304_000_001).expect("a time"));
        assert_eq!(a, "plinth-backup-20251130T122144.000000Z.backup");
        assert!(a < b);
        assert!(is_scheduled(&a) && is_scheduled(&b));
        for other in [
            "plinth-backup-20251130T122144.000000Z.backup.sha256",
            "plinth-backup-latest.backup",
            "plinth-backup-20251130T122144.00000xZ.backup",
            "my-plinth-backup-20251130T122144.000000Z.backup",
            "notes.txt",
        ] {
            assert!(!is_scheduled(other), "{other}");
        }
    }
}
