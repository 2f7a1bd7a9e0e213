//! `plinth bench --fanout`, `--bulk`, `--rate`, `--soak` and `--scale`, small, against the
//! real server: every write reaches every subscriber exactly once, every bulk record is
//! written, the fixed-rate mode sends what it scheduled, the soak samples RSS and exits
//! non-zero past its limits, the ceiling probe serves alone, `--all-features` holds its
//! subscriber, and the scale mode measures each checkpoint and leaves no
//! server or directory behind. Behaviour only: no figure of speed is asserted.

use crate::helpers::{Finished, Proc, Server, TestDir, run, run_ok};
use reqwest::StatusCode;
use serde_json::json;

/// The fan-out flags of these tests: 3 subscribers, 20 writes (20 a second for 1 s).
const FANOUT: [&str; 9] = [
    "--requests",
    "0",
    "--fanout",
    "--subscribers",
    "3",
    "--write-rate",
    "20",
    "--duration",
    "1",
];

/// The report's row for `workload`: its columns after the name.
fn row<'a>(done: &'a Finished, workload: &str) -> Vec<&'a str> {
    let line = done
        .stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(workload))
        .unwrap_or_else(|| panic!("no {workload} row in the report:\n{}", done.stdout));
    line.split_whitespace().skip(1).collect()
}

/// A new API key of the server's admin, named `name`.
async fn api_key(server: &Server, name: &str) -> String {
    let key = server
        .post("/api/v1/auth/api-keys", &json!({ "name": name }))
        .await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.text);
    key.body["data"]["key"]
        .as_str()
        .expect("the key")
        .to_owned()
}

/// Three subscribers, twenty writes: sixty deliveries, none missing, none twice.
fn assert_everything_delivered_once(done: &Finished) {
    let summary = "fan-out: 3 subscribers, 20 writes/s for 1 s: 60 events expected, \
                   60 received, 0 missing, 0 duplicates";
    assert!(
        done.stdout.contains(summary),
        "expected `{summary}` in the report:\n{}\n--- stderr ---\n{}",
        done.stdout,
        done.stderr
    );
    assert!(
        !done.stdout.contains("ended early"),
        "a stream ended early:\n{}",
        done.stdout
    );
    // The errors column: failed writes, then missing + duplicates + streams cut.
    assert_eq!(row(done, "fan_write").last(), Some(&"0"), "{}", done.stdout);
    assert_eq!(row(done, "fan_event").last(), Some(&"0"), "{}", done.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_fanout_delivers_every_write_to_every_subscriber_once() {
    let dir = TestDir::new();
    let mut args = vec!["bench", "--seed", "1"];
    args.extend(FANOUT);
    let done = run_ok(&dir, &args, &[]).await;
    assert_everything_delivered_once(&done);
    // `--requests 0`: the request workloads did not run.
    assert!(
        !done.stdout.contains("get_one"),
        "unexpected workloads:\n{}",
        done.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fanout_against_a_running_server_uses_the_bench_credential() {
    let dir = TestDir::new();
    let server = Server::start(&dir).await;
    let key = api_key(&server, "fan-out bench").await;
    let url = server.url("");
    let mut args = vec!["bench", "--url", url.trim_end_matches('/'), "--seed", "1"];
    args.extend(FANOUT);
    let done = run_ok(&dir, &args, &[("PLINTH_BENCH_TOKEN", &key)]).await;
    assert_everything_delivered_once(&done);
    // The writes are real records on that server: one of them reads back.
    let listed = server.get("/api/v1/resource?name=fanout-19").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(1));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bulk_workload_inserts_every_record_through_batches() {
    let dir = TestDir::new();
    let server = Server::start(&dir).await;
    let key = api_key(&server, "bulk bench").await;
    let url = server.url("");
    let args = [
        "bench",
        "--url",
        url.trim_end_matches('/'),
        "--seed",
        "1",
        "--requests",
        "0",
        "--bulk",
        "--bulk-records",
        "2000",
        "--batch-size",
        "300",
        "--bulk-concurrency",
        "3",
    ];
    let done = run_ok(&dir, &args, &[("PLINTH_BENCH_TOKEN", &key)]).await;
    let summary = "bulk: 2000 records in 7 batches of 300 (3 in flight): 2000 written in";
    assert!(
        done.stdout.contains(summary) && done.stdout.contains("records/s, 0 batches failed"),
        "expected `{summary}` in the report:\n{}\n--- stderr ---\n{}",
        done.stdout,
        done.stderr
    );
    // The records are really there: the last batch's last (the 2000th, a short batch of 200).
    let listed = server.get("/api/v1/resource?name=bulk-6-199").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(1));
    let past = server.get("/api/v1/resource?name=bulk-6-200").await;
    assert_eq!(past.body["data"].as_array().map(Vec::len), Some(0));
    server.stop().await;
}

/// `--ceiling`: the probe answers every get of its own rows (no error), beside Plinth's
/// get_one in the same report, with get_one's share of it.
/// `--all-features`: the embedded server serves the bench's configuration (a create that
/// fills the sealed field is answered 2xx), and the live subscriber receives every create.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_features_fill_the_sealed_field_and_hold_a_live_subscriber() {
    let dir = TestDir::new();
    let args = ["bench", "--all-features", "--seed", "5", "--requests", "20"];
    let done = run_ok(&dir, &args, &[]).await;
    for workload in ["get_one", "list", "create", "update", "mixed"] {
        assert_eq!(row(&done, workload).get(3), Some(&"0"), "{}", done.stdout);
    }
    // 5 seeded, 20 creates, and the mix's creates: at least 25 events, all of them seen.
    let line = done
        .stdout
        .lines()
        .find(|l| l.starts_with("live subscriber: held for the whole run, "))
        .unwrap_or_else(|| panic!("no live subscriber line:\n{}", done.stdout));
    let events: u64 = line
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .expect("a count");
    assert!(events >= 25, "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ceiling_probe_is_measured_beside_get_one_without_errors() {
    let dir = TestDir::new();
    let args = [
        "bench",
        "--requests",
        "200",
        "--concurrency",
        "4",
        "--seed",
        "20",
        "--ceiling",
    ];
    let done = run_ok(&dir, &args, &[]).await;
    assert_eq!(row(&done, "get_one").last(), Some(&"0"), "{}", done.stdout);
    assert_eq!(row(&done, "ceiling").last(), Some(&"0"), "{}", done.stdout);
    assert!(
        done.stdout.contains("get_one reached ") && done.stdout.contains(" % of the ceiling probe"),
        "{}",
        done.stdout
    );
}

/// `--rate`: each chosen workload sends rate × duration requests, reported with reads and
/// writes apart for the mix and with how late the bench sent them, and nothing fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixed_rate_mode_sends_every_scheduled_request() {
    let dir = TestDir::new();
    let args = [
        "bench",
        "--seed",
        "5",
        "--rate",
        "40",
        "--duration",
        "1",
        "--workloads",
        "get_one,read_write",
    ];
    let done = run_ok(&dir, &args, &[]).await;
    assert!(
        done.stdout
            .contains("at 40 req/s for 1 s per workload, open loop"),
        "{}",
        done.stdout
    );
    for name in ["get_one", "read_write"] {
        let cols = row(&done, name);
        assert_eq!(cols.first(), Some(&"40"), "sent: {}", done.stdout);
        assert_eq!(cols.get(7), Some(&"0"), "errors: {}", done.stdout);
        let lag = format!("{name}: the bench sent behind its schedule by p50 ");
        assert!(done.stdout.contains(&lag), "its send lag: {}", done.stdout);
    }
    let count = |name| -> u64 { row(&done, name)[0].parse().expect("a count") };
    let (reads, writes) = (count("read_write.reads"), count("read_write.writes"));
    assert_eq!(reads + writes, 40, "{}", done.stdout);
    assert!(writes > 0, "{}", done.stdout);
    // Only the workloads asked for ran.
    assert!(
        !done.stdout.lines().any(|l| l.starts_with("list ")),
        "{}",
        done.stdout
    );
    let bad = run(&dir, &["bench", "--rate", "10", "--workloads", "nope"], &[]).await;
    assert_ne!(bad.status.code(), Some(0));
    assert!(
        bad.stderr.contains("unknown workload \"nope\""),
        "{}",
        bad.stderr
    );
}

/// `--soak`: RSS sampled from the server's /metrics into the CSV, a pass within the limits,
/// and a non-zero exit naming the limit when RSS growth is past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_soak_samples_rss_and_fails_past_its_limits() {
    let dir = TestDir::new();
    let csv = dir.path().join("rss.csv");
    let csv_arg = csv.to_str().expect("a UTF-8 path");
    let latency = dir.path().join("latency.csv");
    let latency_arg = latency.to_str().expect("a UTF-8 path");
    let soak = [
        "bench",
        "--seed",
        "5",
        "--soak",
        "--rate",
        "40",
        "--duration",
        "3",
        "--warmup",
        "1",
        "--rss-every",
        "1",
        "--rss-csv",
        csv_arg,
        "--latency-csv",
        latency_arg,
    ];
    let done = run_ok(&dir, &soak, &[]).await;
    assert!(
        done.stdout.contains("errors: 0 of 120 (0.000 %"),
        "{}",
        done.stdout
    );
    assert!(
        done.stdout.contains("rss growth after warm-up: "),
        "{}",
        done.stdout
    );
    let text = std::fs::read_to_string(&csv).expect("the CSV");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("seconds,rss_bytes"));
    let samples: Vec<(f64, u64)> = lines
        .map(|l| {
            let (t, b) = l.split_once(',').expect("two columns");
            (t.parse().expect("seconds"), b.parse().expect("bytes"))
        })
        .collect();
    assert!(samples.len() >= 3, "{text}");
    assert!(samples.iter().all(|(_, b)| *b > 0), "{text}");
    assert!(samples.windows(2).all(|w| w[0].0 < w[1].0), "{text}");
    // Every answered request is in the latency distribution once: 120 sent, 0 errors.
    let text = std::fs::read_to_string(&latency).expect("the latency CSV");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("side,upto_ms,count"));
    let counted: u64 = lines
        .map(|l| {
            l.rsplit(',')
                .next()
                .expect("a count")
                .parse::<u64>()
                .expect("a number")
        })
        .sum();
    assert_eq!(counted, 120, "{text}");
    assert!(
        text.contains("\nread,") && text.contains("\nwrite,"),
        "{text}"
    );

    // Growth is at least -100 %: a limit of -1000 % always fails.
    let mut strict = soak.to_vec();
    strict.push("--max-rss-growth=-1000");
    // A database of its own: on PostgreSQL the first run's admin is still there.
    let failed = run(&TestDir::new(), &strict, &[]).await;
    assert_ne!(failed.status.code(), Some(0), "{}", failed.stdout);
    assert!(
        failed.stderr.contains("the soak failed: RSS grew"),
        "{}",
        failed.stderr
    );
}

/// `--soak --url`: the running server's /metrics answers the sampler (sent without the API
/// key, which /metrics would refuse), and the load is real records on that server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_soak_against_a_running_server_samples_its_rss() {
    let dir = TestDir::new();
    let server = Server::start(&dir).await;
    let key = api_key(&server, "soak bench").await;
    let url = server.url("");
    let args = [
        "bench",
        "--url",
        url.trim_end_matches('/'),
        "--seed",
        "3",
        "--soak",
        "--rate",
        "30",
        "--duration",
        "2",
        "--warmup",
        "1",
    ];
    let done = run_ok(&dir, &args, &[("PLINTH_BENCH_TOKEN", &key)]).await;
    assert!(
        done.stdout.contains("errors: 0 of 60 (0.000 %"),
        "{}",
        done.stdout
    );
    let rss = done
        .stdout
        .lines()
        .find(|l| l.starts_with("rss_mb"))
        .unwrap_or_default();
    // At the start, at the end of the warm-up and at the end.
    assert_eq!(rss.split_whitespace().count(), 4, "{}", done.stdout);
    assert!(!done.stdout.contains("samples failed"), "{}", done.stdout);
    let listed = server.get("/api/v1/resource?name=bench-0").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    server.stop().await;
}

/// The processes whose command line names `path` (the scale mode's server names its
/// temporary directory in `--config`).
fn processes_naming(path: &std::path::Path) -> Vec<String> {
    let needle = path.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) {
            found.push(cmdline);
        }
    }
    found
}

/// What is left in the directory the bench was given as `TMPDIR`.
fn left_in(tmp: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(tmp)
        .expect("the bench's TMPDIR")
        .map(|e| e.expect("an entry").path())
        .collect()
}

/// `--scale`: a row of numbers per checkpoint, plans that name the model's indexes, the cold
/// start of the restarted server; then no server process and no temporary directory left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scale_mode_measures_each_checkpoint_then_leaves_nothing_behind() {
    let dir = TestDir::new();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).expect("a TMPDIR");
    let tmp_arg = tmp.to_str().expect("a UTF-8 path");
    let args = [
        "bench",
        "--scale",
        "3000",
        "--checkpoints",
        "1000",
        "--samples",
        "3",
    ];
    let done = run_ok(&dir, &args, &[("TMPDIR", tmp_arg)]).await;
    let report = format!("{}\n--- stderr ---\n{}", done.stdout, done.stderr);
    for records in ["1000", "3000"] {
        let cols = row(&done, records);
        // RSS, then first, deep and ratio for each of the three lists.
        assert_eq!(cols.len(), 10, "{report}");
        for col in cols {
            let n: f64 = col.parse().unwrap_or_else(|_| panic!("{col:?}: {report}"));
            assert!(n > 0.0, "{report}");
        }
    }
    // 90 % of each list: all records, and the active half for the filtered list.
    assert!(
        done.stdout.contains("at 3000: seeded 2000 in ")
            && done.stdout.contains("2700 of 3000 (default,")
            && done.stdout.contains("2700 of 3000 (rank,")
            && done.stdout.contains("1350 of 1500 (filtered,"),
        "{report}"
    );
    // Four plans (the indexed sort and the filtered list, first and deep page), each walking
    // an index of resource that gives the sort's order, none reading the table or sorting.
    // (With statistics, PostgreSQL walks `resource__created` for the filtered list and
    // filters the status, which half the records match; SQLite seeks
    // `resource__status_created`.)
    let plans: Vec<&str> = done.stdout.split("\nplan of ").skip(1).collect();
    assert_eq!(plans.len(), 4, "{report}");
    for (plan, list) in plans.iter().zip(["rank", "rank", "filtered", "filtered"]) {
        assert!(plan.starts_with(list), "{report}");
        let indexes: &[&str] = if list == "rank" {
            &["resource__rank"]
        } else {
            &["resource__status_created", "resource__created "]
        };
        assert!(
            plan.lines()
                .skip(1)
                .any(|l| indexes.iter().any(|index| l.contains(index))),
            "the plan names none of {indexes:?}: {plan}\n{report}"
        );
        let reads_or_sorts = |l: &str| {
            l.contains("Seq Scan")
                || l.contains("Sort")
                || l.contains("TEMP B-TREE")
                || (l.contains("SCAN resource") && !l.contains("USING"))
        };
        assert!(
            !plan.lines().any(reads_or_sorts),
            "the plan reads the table or sorts: {plan}\n{report}"
        );
    }
    assert!(
        done.stdout.contains("\ncold start at 3000 records: ")
            && done
                .stdout
                .contains(" s from spawn to the first 200 of /readyz; rss "),
        "{report}"
    );
    assert_eq!(processes_naming(&tmp), Vec::<String>::new(), "{report}");
    assert_eq!(left_in(&tmp), Vec::<std::path::PathBuf>::new(), "{report}");
}

/// `--scale` when the server cannot start (its certificate files are missing): a non-zero
/// exit showing the server's own log, and nothing left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scale_mode_fails_with_the_servers_log_and_cleans_up() {
    let dir = TestDir::new();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).expect("a TMPDIR");
    let tmp_arg = tmp.to_str().expect("a UTF-8 path");
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().expect("a UTF-8 path");
    let envs = [
        ("TMPDIR", tmp_arg),
        ("PLINTH_TLS_CERT_FILE", missing),
        ("PLINTH_TLS_KEY_FILE", missing),
    ];
    let failed = run(&dir, &["bench", "--scale", "10"], &envs).await;
    assert_ne!(failed.status.code(), Some(0), "{}", failed.stdout);
    assert!(
        failed.stderr.contains("the server exited")
            && failed.stderr.contains("the end of its log:")
            && failed.stderr.contains("cannot serve HTTPS"),
        "{}",
        failed.stderr
    );
    assert_eq!(processes_naming(&tmp), Vec::<String>::new());
    assert_eq!(left_in(&tmp), Vec::<std::path::PathBuf>::new());
}

/// `--scale` stopped by SIGTERM while it seeds: the server it started is killed and its
/// directory removed before it exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scale_mode_stopped_midway_leaves_nothing_behind() {
    let dir = TestDir::new();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).expect("a TMPDIR");
    let tmp_arg = tmp.to_str().expect("a UTF-8 path");
    let args = ["bench", "--scale", "100000000"];
    let mut bench = Proc::spawn(dir.command(&args, &[("TMPDIR", tmp_arg)]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !bench.stderr().contains("scale: seeding to ") {
        assert!(
            std::time::Instant::now() < deadline,
            "the bench did not start seeding: {}",
            bench.describe()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(processes_naming(&tmp).len(), 1, "{}", bench.describe());
    bench.signal("TERM");
    let status = bench.wait_exit().await;
    assert_ne!(status.code(), Some(0), "{}", bench.describe());
    assert!(
        bench.stderr().contains("terminated"),
        "{}",
        bench.describe()
    );
    assert_eq!(processes_naming(&tmp), Vec::<String>::new());
    assert_eq!(left_in(&tmp), Vec::<std::path::PathBuf>::new());
}

/// `--serve-ceiling`: the probe alone on the address given, its ids in the file, each
/// answered in the envelope; interrupted, it exits 0 and removes its database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ceiling_probe_serves_alone_until_interrupted() {
    let dir = TestDir::new();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).expect("a TMPDIR");
    let tmp_arg = tmp.to_str().expect("a UTF-8 path");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let (addr, ids) = (format!("127.0.0.1:{port}"), dir.path().join("ids.txt"));
    let ids_arg = ids.to_str().expect("a UTF-8 path");
    let args = [
        "bench",
        "--serve-ceiling",
        &addr,
        "--seed",
        "4",
        "--ids-file",
        ids_arg,
    ];
    let mut probe = Proc::spawn(dir.command(&args, &[("TMPDIR", tmp_arg)]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !probe.stdout().contains("ceiling probe: 4 rows at ") {
        assert!(std::time::Instant::now() < deadline, "{}", probe.describe());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let text = std::fs::read_to_string(&ids).expect("the ids file");
    let ids: Vec<&str> = text.lines().collect();
    assert_eq!(ids.len(), 4, "{text}");
    let client = reqwest::Client::new();
    for id in &ids {
        let res = client
            .get(format!("http://{addr}/api/v1/resource/{id}"))
            .send()
            .await
            .expect("an answer");
        assert_eq!(res.status(), StatusCode::OK);
        let body: serde_json::Value = res.json().await.expect("JSON");
        assert_eq!(body["data"]["id"], json!(id));
    }
    probe.signal("INT");
    let status = probe.wait_exit().await;
    assert_eq!(status.code(), Some(0), "{}", probe.describe());
    assert_eq!(left_in(&tmp), Vec::<std::path::PathBuf>::new());
}
