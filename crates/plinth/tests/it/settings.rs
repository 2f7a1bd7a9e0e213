//! The settings table seen from outside: every file key has an environment variable, values
//! outside their range are refused naming the setting (never clamped), and the reference in
//! docs/configuration.md is the one the binary generates; and one setting followed into the
//! served store (the SQLite record cache, seen in `/metrics`).

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, Server, TestDir, log_field, refused, run_ok};
use reqwest::StatusCode;

/// `plinth config` parsed as TOML.
async fn effective(dir: &TestDir, envs: &[(&str, &str)]) -> toml::Table {
    let done = run_ok(dir, &["config"], envs).await;
    done.stdout
        .parse()
        .unwrap_or_else(|e| panic!("`plinth config` output is not TOML ({e}):\n{}", done.stdout))
}

fn integer(table: &toml::Table, key: &str) -> Option<i64> {
    let (table, key) = match key.split_once('.') {
        Some((t, k)) => (table.get(t).and_then(toml::Value::as_table)?, k),
        None => (table, key),
    };
    table.get(key).and_then(toml::Value::as_integer)
}

/// The file keys that had no environment variable, each with its new one.
const NEW_VARIABLES: &[(&str, &str, i64)] = &[
    (
        "read_your_writes_seconds",
        "PLINTH_READ_YOUR_WRITES_SECONDS",
        11,
    ),
    (
        "pg_connect_timeout_seconds",
        "PLINTH_PG_CONNECT_TIMEOUT_SECONDS",
        12,
    ),
    (
        "pg_statement_timeout_seconds",
        "PLINTH_PG_STATEMENT_TIMEOUT_SECONDS",
        13,
    ),
    (
        "auth.access_token_minutes",
        "PLINTH_AUTH_ACCESS_TOKEN_MINUTES",
        14,
    ),
    (
        "auth.refresh_token_days",
        "PLINTH_AUTH_REFRESH_TOKEN_DAYS",
        15,
    ),
    (
        "auth.argon2_memory_kib",
        "PLINTH_AUTH_ARGON2_MEMORY_KIB",
        20000,
    ),
    ("auth.argon2_iterations", "PLINTH_AUTH_ARGON2_ITERATIONS", 3),
    (
        "auth.argon2_parallelism",
        "PLINTH_AUTH_ARGON2_PARALLELISM",
        2,
    ),
    (
        "auth.login_attempts_per_account",
        "PLINTH_AUTH_LOGIN_ATTEMPTS_PER_ACCOUNT",
        6,
    ),
    (
        "auth.login_attempts_per_address",
        "PLINTH_AUTH_LOGIN_ATTEMPTS_PER_ADDRESS",
        21,
    ),
    (
        "auth.requests_per_minute",
        "PLINTH_AUTH_REQUESTS_PER_MINUTE",
        600,
    ),
];

#[tokio::test]
async fn each_file_key_can_be_set_from_its_environment_variable() {
    let dir = TestDir::new();
    // The file sets every one of them too: the environment wins.
    dir.write_config(
        "read_your_writes_seconds = 1\npg_connect_timeout_seconds = 1\n\
         pg_statement_timeout_seconds = 1\n\n[auth]\naccess_token_minutes = 1\n\
         refresh_token_days = 1\nargon2_memory_kib = 19456\nargon2_iterations = 1\n\
         argon2_parallelism = 1\nlogin_attempts_per_account = 1\n\
         login_attempts_per_address = 1\nrequests_per_minute = 1\n",
    );
    let values: Vec<String> = NEW_VARIABLES
        .iter()
        .map(|(_, _, v)| v.to_string())
        .collect();
    let envs: Vec<(&str, &str)> = NEW_VARIABLES
        .iter()
        .zip(&values)
        .map(|((_, name, _), value)| (*name, value.as_str()))
        .collect();
    let shown = effective(&dir, &envs).await;
    for (key, name, value) in NEW_VARIABLES {
        assert_eq!(
            integer(&shown, key),
            Some(*value),
            "{name} sets {key}: {shown:?}"
        );
    }
    // Each alone, too: none depends on another being set.
    for (key, name, value) in NEW_VARIABLES {
        let text = value.to_string();
        let shown = effective(&dir, &[(name, &text)]).await;
        assert_eq!(
            integer(&shown, key),
            Some(*value),
            "{name} alone: {shown:?}"
        );
    }
}

/// An `[auth]` setting from the environment reaches the running server, and its variable is
/// known (no "unknown variable" warning).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auth_setting_from_the_environment_reaches_the_server() {
    let dir = TestDir::new();
    let name = "PLINTH_AUTH_ACCESS_TOKEN_MINUTES";
    let server = Server::start_with(&dir, &[], &[(name, "5")]).await;
    let login = server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    assert_eq!(login.body["data"]["expires_in"], 300, "{}", login.text);
    let proc = server.stop().await;
    let warned = proc
        .logs()
        .into_iter()
        .any(|l| log_field(&l, "variable") == Some(&serde_json::json!(name)));
    assert!(!warned, "{name} is reported unknown\n{}", proc.describe());
}

/// A refused setting from the file, the environment or a flag: the message names the
/// setting, where the value came from, and what is allowed.
#[tokio::test]
async fn out_of_range_values_are_refused_naming_the_setting() {
    struct Case {
        file: &'static str,
        env: &'static [(&'static str, &'static str)],
        flags: &'static [&'static str],
        needles: &'static [&'static str],
    }
    let cases = [
        Case {
            file: "pg_pool_size = 0\n",
            env: &[],
            flags: &[],
            needles: &[
                "plinth.toml line 1",
                "pg_pool_size = 0",
                "allowed 1 to 1000",
            ],
        },
        Case {
            file: "# timeouts\npg_connect_timeout_seconds = 0\n",
            env: &[],
            flags: &[],
            needles: &[
                "plinth.toml line 2",
                "pg_connect_timeout_seconds = 0",
                "allowed 1 to 300",
            ],
        },
        Case {
            file: "pg_statement_timeout_seconds = 7200\n",
            env: &[],
            flags: &[],
            needles: &["pg_statement_timeout_seconds = 7200", "allowed 1 to 3600"],
        },
        Case {
            file: "read_your_writes_seconds = 3601\n",
            env: &[],
            flags: &[],
            needles: &["read_your_writes_seconds = 3601", "allowed 0 to 3600"],
        },
        Case {
            file: "[auth]\nrefresh_token_days = 400\n",
            env: &[],
            flags: &[],
            needles: &["auth.refresh_token_days = 400", "allowed 1 to 365"],
        },
        Case {
            file: "",
            env: &[("PLINTH_SQLITE_READERS", "100000")],
            flags: &[],
            needles: &[
                "PLINTH_SQLITE_READERS=\"100000\"",
                "sqlite_readers",
                "allowed 1 to 64",
            ],
        },
        Case {
            file: "",
            env: &[("PLINTH_BODY_LIMIT", "67108865")],
            flags: &[],
            needles: &["PLINTH_BODY_LIMIT", "body_limit", "allowed 1 to 67108864"],
        },
        Case {
            // The environment is checked even where the file holds a good value.
            file: "pg_connect_timeout_seconds = 5\n",
            env: &[("PLINTH_PG_CONNECT_TIMEOUT_SECONDS", "301")],
            flags: &[],
            needles: &[
                "PLINTH_PG_CONNECT_TIMEOUT_SECONDS=\"301\"",
                "pg_connect_timeout_seconds",
                "allowed 1 to 300",
            ],
        },
        Case {
            file: "",
            env: &[("PLINTH_AUTH_ACCESS_TOKEN_MINUTES", "0")],
            flags: &[],
            needles: &[
                "PLINTH_AUTH_ACCESS_TOKEN_MINUTES=\"0\"",
                "auth.access_token_minutes",
                "allowed 1 to 1440",
            ],
        },
        Case {
            file: "",
            env: &[("LOG_LEVEL", "info")],
            flags: &["--log-level", "plinth=loud"],
            needles: &["--log-level \"plinth=loud\"", "log_level"],
        },
    ];
    for case in cases {
        let dir = TestDir::new();
        dir.write_config(case.file);
        let mut args = vec!["config"];
        args.extend_from_slice(case.flags);
        let done = refused(&dir, &args, case.env).await;
        for needle in case.needles {
            assert!(
                done.stderr.contains(needle),
                "{:?} {:?} {:?}: no {needle:?} in\n{}",
                case.file,
                case.env,
                case.flags,
                done.stderr
            );
        }
    }
}

/// `plinth serve` refuses an out-of-range value before it touches the data.
#[tokio::test]
async fn serve_refuses_an_out_of_range_value_before_touching_the_data() {
    let dir = TestDir::new();
    dir.write_config("read_your_writes_seconds = 86400\n");
    let data = dir.data_arg();
    let done = refused(
        &dir,
        &["serve", "--listen", "127.0.0.1:0", "--data-dir", &data],
        &[("PLINTH_SQLITE_READERS", "0")],
    )
    .await;
    for needle in [
        "read_your_writes_seconds = 86400",
        "allowed 0 to 3600",
        "PLINTH_SQLITE_READERS=\"0\"",
        "allowed 1 to 64",
    ] {
        assert!(
            done.stderr.contains(needle),
            "no {needle:?} in\n{}",
            done.stderr
        );
    }
    assert!(!dir.data_dir().exists(), "a refused start created {data}");
}

/// docs/configuration.md holds, between its markers, exactly what
/// `plinth config --reference` prints.
#[tokio::test]
async fn the_configuration_reference_in_the_docs_is_generated() {
    const BEGIN: &str =
        "<!-- BEGIN generated by `plinth config --reference`; do not edit by hand -->";
    const END: &str = "<!-- END generated reference -->";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
    let docs = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let start = docs.find(BEGIN).map(|i| i + BEGIN.len());
    let end = docs.find(END);
    let (Some(start), Some(end)) = (start, end) else {
        panic!("docs/configuration.md lacks the markers {BEGIN:?} … {END:?}");
    };
    let committed = docs[start..end].trim();
    let dir = TestDir::new();
    let generated = run_ok(&dir, &["config", "--reference"], &[]).await.stdout;
    assert!(
        committed == generated.trim(),
        "docs/configuration.md is out of date with the settings table. Regenerate it: \
         replace the lines between its markers with the output of \
         `cargo run -q -p plinth -- config --reference`.\n--- generated\n{generated}"
    );
}

/// `admin_console = false` (the file) or `PLINTH_ADMIN_CONSOLE=false` stops serving
/// `/admin`: the 404 envelope of any unknown path, while the API goes on. It is on by
/// default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_console_can_be_turned_off() {
    let dir = TestDir::new();
    let shown = effective(&dir, &[("PLINTH_ADMIN_CONSOLE", "false")]).await;
    assert_eq!(
        shown.get("admin_console").and_then(toml::Value::as_bool),
        Some(false),
        "{shown:?}"
    );
    let page = |server: &Server| {
        let req = server.guest().get(server.url("/admin/"));
        async move { req.send().await.expect("send the request") }
    };

    let server = Server::start(&dir).await;
    let on = page(&server).await;
    assert_eq!(on.status(), StatusCode::OK);
    assert!(
        on.headers()
            .get("content-security-policy")
            .is_some_and(|v| v
                .to_str()
                .is_ok_and(|v| v.starts_with("default-src 'none'")))
    );
    server.stop().await;

    let server = Server::start_with(&dir, &[], &[("PLINTH_ADMIN_CONSOLE", "false")]).await;
    for path in ["/admin", "/admin/", "/admin/js/app.js"] {
        let r = server.send(server.guest().get(server.url(path))).await;
        r.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    assert_eq!(server.get("/api/v1/models").await.status, StatusCode::OK);
    server.stop().await;

    dir.write_config("admin_console = false\n");
    let server = Server::start(&dir).await;
    let r = server.send(server.guest().get(server.url("/admin/"))).await;
    r.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    server.stop().await;
}

/// `plinth serve` on SQLite keeps records after gets as `sqlite_record_cache_mb` says: the
/// second get of a record is a hit in `/metrics`; at 0 the cache's figures are absent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_cache_setting_reaches_the_served_store() {
    for (mb, kept) in [("8", true), ("0", false)] {
        let dir = TestDir::sqlite();
        let server = Server::start_with(&dir, &[], &[("PLINTH_SQLITE_RECORD_CACHE_MB", mb)]).await;
        let record = server
            .create("resource", &serde_json::json!({"name": "kept"}))
            .await;
        let id = record["id"].as_str().expect("an id");
        server.read("resource", id).await;
        server.read("resource", id).await;
        let metrics = server
            .guest()
            .get(server.url("/metrics"))
            .send()
            .await
            .expect("scrape /metrics");
        assert_eq!(metrics.status(), StatusCode::OK);
        let text = metrics.text().await.expect("the metrics text");
        let hits = text
            .lines()
            .find_map(|l| l.strip_prefix("sqlite_record_cache_hits_total "))
            .map(|v| v.trim().parse::<f64>().expect("a count"));
        if kept {
            assert_eq!(hits, Some(1.0), "{text}");
        } else {
            assert_eq!(hits, None, "{text}");
        }
        server.stop().await;
    }
}
