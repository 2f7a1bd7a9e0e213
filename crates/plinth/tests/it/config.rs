//! `plinth config` and the configuration layers (defaults → file → environment → flags),
//! and the help texts.

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, Server, TestDir, log_field, log_message, refused, run_ok,
};
use reqwest::StatusCode;
use toml::Value;

/// `plinth config …` parsed as TOML.
async fn effective(dir: &TestDir, args: &[&str], envs: &[(&str, &str)]) -> toml::Table {
    let mut all = vec!["config"];
    all.extend_from_slice(args);
    let done = run_ok(dir, &all, envs).await;
    done.stdout
        .parse()
        .unwrap_or_else(|e| panic!("`plinth config` output is not TOML ({e}):\n{}", done.stdout))
}

fn text<'a>(table: &'a toml::Table, key: &str) -> &'a str {
    table
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string {key:?} in {table:?}"))
}

#[tokio::test]
async fn defaults_without_file_or_environment() {
    let dir = TestDir::new();
    let shown = effective(&dir, &[], &[]).await;
    assert_eq!(text(&shown, "env"), "development");
    assert_eq!(text(&shown, "listen"), "127.0.0.1:8080");
    assert_eq!(text(&shown, "data_dir"), "plinth-data");
    assert_eq!(text(&shown, "database"), "sqlite://plinth-data/plinth.db");
    assert_eq!(text(&shown, "log_level"), "info");
    assert_eq!(
        shown.get("body_limit").and_then(Value::as_integer),
        Some(1 << 20)
    );
    assert_eq!(
        shown.get("drain_seconds").and_then(Value::as_integer),
        Some(0)
    );
    assert!(
        shown.get("config_file").is_none(),
        "no file was read: {shown:?}"
    );
    let models = shown
        .get("models")
        .and_then(Value::as_array)
        .expect("models");
    assert_eq!(models.len(), 1);
    assert_eq!(
        models[0].get("name").and_then(Value::as_str),
        Some("resource")
    );
}

#[tokio::test]
async fn each_layer_overrides_the_one_below() {
    let dir = TestDir::new();
    dir.write_config(
        "listen = \"127.0.0.1:7001\"\ndata_dir = \"from-file\"\nlog_level = \"debug\"\n\
         drain_seconds = 5\n",
    );
    // File over defaults.
    let shown = effective(&dir, &[], &[]).await;
    assert_eq!(text(&shown, "config_file"), "plinth.toml");
    assert_eq!(text(&shown, "listen"), "127.0.0.1:7001");
    assert_eq!(text(&shown, "data_dir"), "from-file");
    assert_eq!(text(&shown, "database"), "sqlite://from-file/plinth.db");
    assert_eq!(text(&shown, "log_level"), "debug");
    assert_eq!(
        shown.get("drain_seconds").and_then(Value::as_integer),
        Some(5)
    );

    // Environment over file.
    let env = [
        ("PLINTH_LISTEN", "127.0.0.1:7002"),
        ("PLINTH_DATA_DIR", "from-env"),
        ("LOG_LEVEL", "warn"),
    ];
    let shown = effective(&dir, &[], &env).await;
    assert_eq!(text(&shown, "listen"), "127.0.0.1:7002");
    assert_eq!(text(&shown, "data_dir"), "from-env");
    assert_eq!(text(&shown, "log_level"), "warn");
    assert_eq!(
        shown.get("drain_seconds").and_then(Value::as_integer),
        Some(5)
    );

    // Flags over environment.
    let flags = ["--data-dir", "from-flag", "--log-level", "error"];
    let shown = effective(&dir, &flags, &env).await;
    assert_eq!(text(&shown, "data_dir"), "from-flag");
    assert_eq!(text(&shown, "log_level"), "error");
    assert_eq!(text(&shown, "listen"), "127.0.0.1:7002");
}

#[tokio::test]
async fn config_file_flag_beats_env_beats_local_file() {
    let dir = TestDir::new();
    dir.write_config("log_level = \"trace\"\n");
    dir.write("env.toml", "log_level = \"warn\"\n");
    dir.write("flag.toml", "log_level = \"error\"\n");
    let shown = effective(&dir, &[], &[]).await;
    assert_eq!(text(&shown, "log_level"), "trace");
    let env = [("PLINTH_CONFIG", "env.toml")];
    let shown = effective(&dir, &[], &env).await;
    assert_eq!(text(&shown, "log_level"), "warn");
    assert_eq!(text(&shown, "config_file"), "env.toml");
    let shown = effective(&dir, &["--config", "flag.toml"], &env).await;
    assert_eq!(text(&shown, "log_level"), "error");
    assert_eq!(text(&shown, "config_file"), "flag.toml");
}

#[tokio::test]
async fn database_url_is_shown_with_its_password_masked() {
    let dir = TestDir::new();
    let db = dir.path().join("elsewhere.db");
    let url = format!("sqlite://{}", db.display());
    let shown = effective(&dir, &[], &[("DATABASE_URL", &url)]).await;
    assert_eq!(text(&shown, "database"), url);

    let done = run_ok(
        &dir,
        &["config"],
        &[("DATABASE_URL", "postgres://u:secretpw@h/db")],
    )
    .await;
    assert!(
        !done.stdout.contains("secretpw"),
        "password shown:\n{}",
        done.stdout
    );
    assert!(
        !done.stderr.contains("secretpw"),
        "password shown:\n{}",
        done.stderr
    );
    let shown: toml::Table = done.stdout.parse().expect("TOML");
    assert_eq!(text(&shown, "database"), "postgres://u:****@h/db");

    dir.write_config("database_url = \"postgres://admin:filepw@db.internal:5432/plinth\"\n");
    let done = run_ok(&dir, &["config"], &[]).await;
    assert!(
        !done.stdout.contains("filepw"),
        "password shown:\n{}",
        done.stdout
    );
    assert!(
        done.stdout
            .contains("postgres://admin:****@db.internal:5432/plinth"),
        "{}",
        done.stdout
    );
}

#[tokio::test]
async fn declared_models_are_shown() {
    let dir = TestDir::new();
    dir.write_config(
        "[[models]]\nname = \"customer\"\nguest_read = false\n\n[[models.fields]]\n\
         name = \"email\"\ntype = \"string\"\nunique = true\n",
    );
    let shown = effective(&dir, &[], &[]).await;
    let models = shown
        .get("models")
        .and_then(Value::as_array)
        .expect("models");
    assert_eq!(
        models.len(),
        1,
        "the declared model replaces the default: {models:?}"
    );
    let model = models[0].as_table().expect("model table");
    assert_eq!(text(model, "name"), "customer");
    assert_eq!(
        model.get("guest_read").and_then(Value::as_bool),
        Some(false)
    );
    let fields = model
        .get("fields")
        .and_then(Value::as_array)
        .expect("fields");
    let field = fields[0].as_table().expect("field table");
    assert_eq!(text(field, "name"), "email");
    assert_eq!(text(field, "type"), "string");
    assert_eq!(field.get("unique").and_then(Value::as_bool), Some(true));
}

/// The `--listen` flag wins over a file and an environment that name addresses this host
/// cannot bind (documentation ranges), which would otherwise fail the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_listen_flag_beats_file_and_environment() {
    let dir = TestDir::new();
    dir.write_config("listen = \"192.0.2.1:9\"\n");
    let server = Server::start_with(&dir, &[], &[("PLINTH_LISTEN", "198.51.100.1:9")]).await;
    let listening = server
        .proc
        .logs()
        .into_iter()
        .find(|l| log_message(l) == Some("listening"))
        .expect("a listening line");
    let addr = log_field(&listening, "addr")
        .and_then(serde_json::Value::as_str)
        .expect("addr");
    assert!(addr.starts_with("127.0.0.1:"), "{listening}");
    let health = server.get("/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    let proc = server.stop().await;
    assert!(proc.logged("database closed"));
}

/// The `[auth]` table of the file reaches the running server: the access-token lifetime
/// is what login reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_settings_from_the_file_reach_the_server() {
    let dir = TestDir::new();
    dir.write_config("[auth]\naccess_token_minutes = 5\nrefresh_token_days = 2\n");
    let shown = effective(&dir, &[], &[]).await;
    let auth = shown
        .get("auth")
        .and_then(Value::as_table)
        .unwrap_or_else(|| panic!("no [auth] in {shown:?}"));
    assert_eq!(
        auth.get("access_token_minutes").and_then(Value::as_integer),
        Some(5)
    );
    assert_eq!(
        auth.get("refresh_token_days").and_then(Value::as_integer),
        Some(2)
    );
    let server = Server::start(&dir).await;
    let login = server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    assert_eq!(login.body["data"]["expires_in"], 300, "{}", login.text);

    dir.write_config("[auth]\naccess_token_minutes = 0\n");
    let data = dir.data_arg();
    let done = refused(&dir, &["config", "--data-dir", &data], &[]).await;
    assert!(
        done.stderr.contains("access_token_minutes"),
        "{}",
        done.stderr
    );
    dir.write_config("[auth]\njwt_secret = \"inline-secrets-are-not-read\"\n");
    let done = refused(&dir, &["config"], &[]).await;
    assert!(done.stderr.contains("jwt_secret"), "{}", done.stderr);
    assert!(done.stderr.contains("plinth.toml"), "{}", done.stderr);
}

/// `plinth config` says where the signing key comes from, never what it is.
#[tokio::test]
async fn config_shows_the_key_source_but_never_the_key() {
    let dir = TestDir::new();
    let key = run_ok(&dir, &["keys", "generate"], &[]).await.stdout;
    let key = key.trim();
    let envs = [
        ("PLINTH_JWT_SECRET", key),
        ("PLINTH_ADMIN_EMAIL", ADMIN_EMAIL),
        ("PLINTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
    ];
    let done = run_ok(&dir, &["config"], &envs).await;
    for secret in [key, ADMIN_PASSWORD] {
        assert!(
            !done.stdout.contains(secret) && !done.stderr.contains(secret),
            "a secret is shown:\n{}\n{}",
            done.stdout,
            done.stderr
        );
    }
    let shown: toml::Table = done.stdout.parse().expect("TOML");
    let source = shown
        .get("auth")
        .and_then(|a| a.get("signing_key"))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no auth.signing_key in\n{}", done.stdout));
    assert!(source.contains("PLINTH_JWT_SECRET"), "{source}");
    assert!(source.contains("****"), "{source}");

    let shown = effective(&dir, &[], &[]).await;
    let source = shown
        .get("auth")
        .and_then(|a| a.get("signing_key"))
        .and_then(Value::as_str)
        .expect("auth.signing_key");
    assert!(
        source.contains("jwt.key"),
        "development generates a key: {source}"
    );
    assert!(
        !dir.path().join("plinth-data").exists(),
        "`plinth config` only shows; it creates nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_uses_the_sqlite_file_named_by_database_url() {
    let dir = TestDir::new();
    let db = dir.path().join("custom.db");
    let url = format!("sqlite://{}", db.display());
    let server = Server::start_with(&dir, &[], &[("DATABASE_URL", &url)]).await;
    let created = server
        .post(
            "/api/v1/resource",
            &serde_json::json!({"name": "elsewhere"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    server.stop().await;
    assert!(db.exists(), "DATABASE_URL names the database file");
    assert!(
        !dir.db().exists(),
        "the data dir default is not used when DATABASE_URL is set"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_plinth_variables_are_warned_about() {
    let dir = TestDir::new();
    let server = Server::start_with(&dir, &[], &[("PLINTH_LISTN", "127.0.0.1:1")]).await;
    let proc = server.stop().await;
    let warning = proc
        .logs()
        .into_iter()
        .find(|l| log_field(l, "variable") == Some(&serde_json::json!("PLINTH_LISTN")))
        .unwrap_or_else(|| panic!("no warning about PLINTH_LISTN\n{}", proc.describe()));
    assert_eq!(warning["level"], "WARN");
}

#[tokio::test]
async fn help_texts_name_the_key_options() {
    let dir = TestDir::new();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--help"],
            &[
                "serve",
                "migrate",
                "config",
                "user",
                "keys",
                "bench",
                "--config",
                "--data-dir",
            ],
        ),
        (
            &["user", "create", "--help"],
            &["--email", "--role", "--password-stdin", "admin"],
        ),
        (&["keys", "generate", "--help"], &["PLINTH_JWT_SECRET"]),
        (
            &["serve", "--help"],
            &[
                "--listen",
                "--data-dir",
                "--config",
                "--allow-destructive",
                "PLINTH_LISTEN",
            ],
        ),
        (
            &["migrate", "--help"],
            &["--dry-run", "--allow-destructive", "--config", "--data-dir"],
        ),
        (
            &["config", "--help"],
            &["--config", "--data-dir", "--log-level"],
        ),
        (
            &["bench", "--help"],
            &["--url", "--requests", "--concurrency"],
        ),
    ];
    for (args, needles) in cases {
        let done = run_ok(&dir, args, &[]).await;
        for needle in *needles {
            assert!(
                done.stdout.contains(needle),
                "`plinth {args:?}` does not mention {needle}:\n{}",
                done.stdout
            );
        }
    }
    let version = run_ok(&dir, &["--version"], &[]).await;
    assert!(version.stdout.starts_with("plinth "), "{}", version.stdout);
}
