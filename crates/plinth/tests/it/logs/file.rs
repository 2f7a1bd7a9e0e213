//! The log directory: the day's file (mode 0600) holds the JSON lines instead of stdout, and
//! the retention deletes older files of that name only.

use super::{access_line, is_hex};
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, Server, TestDir, log_field, refused};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_writes_its_log_file_and_prunes_only_old_log_files() {
    let dir = TestDir::new();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("make the log directory");
    let today = time::OffsetDateTime::now_utc().date();
    let name = |date: time::Date| {
        format!(
            "plinth.{:04}-{:02}-{:02}.log",
            date.year(),
            u8::from(date.month()),
            date.day()
        )
    };
    let day = |back: i64| today - time::Duration::days(back);
    let old = [name(day(3)), name(day(40))];
    let kept = [
        name(day(1)),
        name(day(2)),
        format!("{}.gz", name(day(40))),
        "notes.txt".to_owned(),
    ];
    for file in old.iter().chain(&kept) {
        std::fs::write(logs.join(file), "before\n").expect("seed a file");
    }
    let log_dir = logs.display().to_string();
    let server = Server::start_quiet(
        &dir,
        &[
            ("PLINTH_LOG_DIR", log_dir.as_str()),
            ("PLINTH_LOG_RETENTION_DAYS", "3"),
        ],
    )
    .await;
    let created = server
        .send(
            server
                .client()
                .post(server.url("/api/v1/resource"))
                .header("x-request-id", "file-create")
                .json(&json!({"name": "in a file"})),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    let proc = server.stop().await;

    assert!(
        proc.stdout_lines().is_empty(),
        "with log.dir nothing goes to stdout\n{}",
        proc.describe()
    );
    for file in &old {
        assert!(!logs.join(file).exists(), "{file} is past three days");
    }
    for file in &kept {
        assert!(logs.join(file).exists(), "{file} was deleted");
    }
    let path = logs.join(name(today));
    let text = std::fs::read_to_string(&path).expect("today's log file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let started = lines
        .iter()
        .find(|l| l["fields"]["message"] == "logging to files")
        .unwrap_or_else(|| panic!("no start line: {text}"));
    assert_eq!(log_field(started, "pruned"), Some(&json!(2)), "{started}");
    let access: Vec<Value> = lines
        .iter()
        .filter(|l| l["target"] == "plinth::access")
        .cloned()
        .collect();
    let line = access_line(&access, "file-create");
    assert_eq!(log_field(&line, "status"), Some(&json!(201)), "{line}");
    let trace = log_field(&line, "trace_id")
        .and_then(Value::as_str)
        .unwrap_or("");
    assert!(is_hex(trace, 32), "{line}");
    assert!(
        lines.iter().any(|l| l["fields"]["message"] == "stopped"),
        "the last lines are written out at exit: {text}"
    );
    for secret in [ADMIN_EMAIL, ADMIN_PASSWORD] {
        assert!(!text.contains(secret), "{secret:?} reached the log file");
    }
}

/// A log directory that cannot be made (a file is in the way) refuses the start, saying
/// where, before anything listens or touches the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_directory_that_cannot_be_made_refuses_the_start() {
    let dir = TestDir::new();
    let in_the_way = dir.write("logs", "not a directory");
    let log_dir = in_the_way.display().to_string();
    let data = dir.data_arg();
    let done = refused(
        &dir,
        &["serve", "--listen", "127.0.0.1:0", "--data-dir", &data],
        &[("PLINTH_LOG_DIR", log_dir.as_str())],
    )
    .await;
    assert!(
        done.stderr.contains("cannot open a log file in") && done.stderr.contains(&log_dir),
        "{}",
        done.stderr
    );
    assert!(!dir.db().exists(), "the database was made");
    assert_eq!(
        std::fs::read_to_string(&in_the_way).expect("the file"),
        "not a directory"
    );
}
