//! `plinth serve` refuses unsafe or invalid settings at start, with a message naming the
//! problem, before serving anything (and, for settings, before touching the data).

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, ENCRYPTION_KEYS, TestDir, refused};

/// `serve` on a loopback port with the test's data dir, plus `extra` flags.
async fn serve_refused(dir: &TestDir, extra: &[&str], envs: &[(&str, &str)]) -> String {
    let data = dir.data_arg();
    let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--data-dir", &data];
    args.extend_from_slice(extra);
    refused(dir, &args, envs).await.stderr
}

/// The line number in a `FILE:LINE:` prefix of `message`.
fn line_of(message: &str, file: &str) -> usize {
    let prefix = format!("{file}:");
    let at = message
        .find(&prefix)
        .unwrap_or_else(|| panic!("no {prefix}LINE in {message:?}"));
    message[at + prefix.len()..]
        .split(':')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no line number after {prefix} in {message:?}"))
}

/// Asserts the refusal explains how to make a key, and that nothing was created first: a
/// refused start must not touch the data (with `--allow-destructive` it could otherwise drop
/// columns first and refuse afterwards).
fn assert_key_refusal(dir: &TestDir, stderr: &str) {
    assert!(stderr.contains("PLINTH_JWT_SECRET"), "{stderr}");
    assert!(
        stderr.contains("plinth keys generate"),
        "the message should say how to make a key: {stderr}"
    );
    assert!(
        !dir.db().exists(),
        "the database was created before the refusal: {stderr}"
    );
    assert!(
        !dir.data_dir().join("jwt.key").exists(),
        "a refused start generated a signing key: {stderr}"
    );
}

#[tokio::test]
async fn production_without_a_signing_key_is_refused() {
    let dir = TestDir::new();
    let stderr = serve_refused(
        &dir,
        &["--allow-destructive"],
        &[("PLINTH_ENV", "production")],
    )
    .await;
    assert!(stderr.contains("PLINTH_ENV=production"), "{stderr}");
    assert!(stderr.contains("PLINTH_JWT_SECRET_FILE"), "{stderr}");
    assert_key_refusal(&dir, &stderr);

    // The first admin's variables do not stand in for a key.
    let stderr = serve_refused(
        &dir,
        &[],
        &[
            ("PLINTH_ENV", "production"),
            ("PLINTH_ADMIN_EMAIL", ADMIN_EMAIL),
            ("PLINTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ],
    )
    .await;
    assert_key_refusal(&dir, &stderr);
}

#[tokio::test]
async fn production_without_encryption_keys_is_refused() {
    let dir = TestDir::new();
    let jwt = "a-strong-signing-key-for-this-test-only-0123456789abcdef";
    let prod = [("PLINTH_ENV", "production"), ("PLINTH_JWT_SECRET", jwt)];
    let stderr = serve_refused(&dir, &[], &prod).await;
    assert!(stderr.contains("PLINTH_ENCRYPTION_KEYS"), "{stderr}");
    assert!(stderr.contains("plinth keys encryption"), "{stderr}");
    assert!(!dir.db().exists(), "{stderr}");
    assert!(
        !dir.data_dir().join("encryption.keys").exists(),
        "production generated encryption keys: {stderr}"
    );
    // Unusable keys are refused, naming the variable but never echoing a key.
    let short = "index=AAAA,k1=AAAA";
    let envs = [prod[0], prod[1], ("PLINTH_ENCRYPTION_KEYS", short)];
    let stderr = serve_refused(&dir, &[], &envs).await;
    assert!(
        stderr.contains("PLINTH_ENCRYPTION_KEYS is not usable"),
        "{stderr}"
    );
    assert!(stderr.contains("32 bytes"), "{stderr}");
    let no_index = ENCRYPTION_KEYS
        .split(',')
        .filter(|e| !e.starts_with("index="))
        .collect::<Vec<_>>()
        .join(",");
    let envs = [prod[0], prod[1], ("PLINTH_ENCRYPTION_KEYS", &no_index)];
    let stderr = serve_refused(&dir, &[], &envs).await;
    assert!(stderr.contains("index="), "{stderr}");
    assert!(!stderr.contains(&no_index[3..]), "{stderr}");
    // A bare key pasted as an entry (its trailing `=` would split it) is named by its
    // position, not echoed.
    let bare = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=";
    let pasted = format!("{ENCRYPTION_KEYS},{bare}");
    let envs = [prod[0], prod[1], ("PLINTH_ENCRYPTION_KEYS", &pasted)];
    let stderr = serve_refused(&dir, &[], &envs).await;
    assert!(stderr.contains("entry 3"), "{stderr}");
    assert!(!stderr.contains(&bare[..20]), "{stderr}");
    assert!(!dir.db().exists(), "{stderr}");
}

#[tokio::test]
async fn production_refuses_a_weak_signing_key() {
    let dir = TestDir::new();
    // Too short (27 bytes), then long enough but a single repeated character.
    let short = "short-weak-signing-key-1234";
    let repeated = "k".repeat(64);
    for weak in [short, repeated.as_str()] {
        let env = [("PLINTH_ENV", "production"), ("PLINTH_JWT_SECRET", weak)];
        let done = refused(
            &dir,
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                &dir.data_arg(),
            ],
            &env,
        )
        .await;
        assert_key_refusal(&dir, &done.stderr);
        assert!(
            !done.stderr.contains(weak) && !done.stdout.contains(weak),
            "the refused key was echoed\n{}\n{}",
            done.stdout,
            done.stderr
        );
    }
    let stderr = serve_refused(
        &dir,
        &[],
        &[("PLINTH_ENV", "production"), ("PLINTH_JWT_SECRET", short)],
    )
    .await;
    assert!(stderr.contains("at least 32 bytes"), "{stderr}");
    let stderr = serve_refused(
        &dir,
        &[],
        &[
            ("PLINTH_ENV", "production"),
            ("PLINTH_JWT_SECRET", &repeated),
        ],
    )
    .await;
    assert!(stderr.contains("entropy"), "{stderr}");

    // A weak key in a key file is refused too, naming the file.
    let file = dir.write("weak.key", &format!("{short}\n"));
    let file = file.display().to_string();
    let stderr = serve_refused(
        &dir,
        &[],
        &[
            ("PLINTH_ENV", "production"),
            ("PLINTH_JWT_SECRET_FILE", &file),
            ("PLINTH_ENCRYPTION_KEYS", ENCRYPTION_KEYS),
        ],
    )
    .await;
    assert!(stderr.contains("weak.key"), "{stderr}");
    assert!(stderr.contains("plinth keys generate"), "{stderr}");
    assert!(!dir.db().exists(), "{stderr}");
}

/// A weak explicit key is refused in development too: it would sign real tokens.
#[tokio::test]
async fn development_refuses_a_weak_explicit_key() {
    let dir = TestDir::new();
    let stderr = serve_refused(&dir, &[], &[("PLINTH_JWT_SECRET", "0123456789")]).await;
    assert_key_refusal(&dir, &stderr);
}

#[tokio::test]
async fn unknown_env_value_is_refused() {
    let dir = TestDir::new();
    let stderr = serve_refused(&dir, &[], &[("PLINTH_ENV", "bogus")]).await;
    assert!(stderr.contains("PLINTH_ENV"), "{stderr}");
    assert!(stderr.contains("bogus"), "{stderr}");
    assert!(stderr.contains("production or development"), "{stderr}");
}

#[tokio::test]
async fn config_syntax_error_names_file_and_line() {
    let dir = TestDir::new();
    dir.write_config("log_level = \"info\"\n\nlisten = 127.0.0.1:8080\n");
    let stderr = serve_refused(&dir, &[], &[]).await;
    assert!(stderr.contains("plinth.toml"), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
}

#[tokio::test]
async fn unknown_config_key_is_refused() {
    let dir = TestDir::new();
    dir.write_config("listen = \"127.0.0.1:0\"\nlistn_port = 9000\n");
    let stderr = serve_refused(&dir, &[], &[]).await;
    assert!(stderr.contains("plinth.toml"), "{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");
    assert!(stderr.contains("listn_port"), "{stderr}");
}

#[tokio::test]
async fn invalid_field_name_is_refused_with_file_and_line() {
    let dir = TestDir::new();
    // Lines 4–10 declare the model; the bad field is on line 9.
    dir.write_config(
        "# models\nlog_level = \"info\"\n\n[[models]]\nname = \"book\"\n\n\
         [[models.fields]]\ntype = \"string\"\nname = \"Bad-Name\"\n\n",
    );
    let stderr = serve_refused(&dir, &[], &[]).await;
    assert!(stderr.contains("Bad-Name"), "{stderr}");
    assert!(stderr.contains("book"), "{stderr}");
    let line = line_of(&stderr, "plinth.toml");
    assert!(
        (4..=9).contains(&line),
        "line {line} is outside the model's declaration: {stderr}"
    );
    assert!(
        !dir.db().exists(),
        "nothing should be created before the refusal"
    );
}

#[tokio::test]
async fn reference_to_undeclared_model_is_refused() {
    let dir = TestDir::new();
    dir.write_config(
        "[[models]]\nname = \"author\"\n\n[[models]]\nname = \"book\"\n\n\
         [[models.fields]]\nname = \"written_by\"\ntype = \"reference\"\nmodel = \"writer\"\n",
    );
    let stderr = serve_refused(&dir, &[], &[]).await;
    assert!(stderr.contains("writer"), "{stderr}");
    assert!(stderr.contains("written_by"), "{stderr}");
    let line = line_of(&stderr, "plinth.toml");
    assert!(
        (4..=10).contains(&line),
        "line {line} is outside the book model: {stderr}"
    );
}

#[tokio::test]
async fn sql_injection_in_model_name_is_refused() {
    let dir = TestDir::new();
    dir.write_config("[[models]]\nname = 'x\"; DROP TABLE _plinth_models; --'\n");
    let stderr = serve_refused(&dir, &[], &[]).await;
    assert!(stderr.contains("plinth.toml:1:"), "{stderr}");
    assert!(
        !dir.db().exists(),
        "nothing should be created before the refusal"
    );
}

#[tokio::test]
async fn missing_config_file_is_refused() {
    let dir = TestDir::new();
    let stderr = serve_refused(&dir, &["--config", "missing.toml"], &[]).await;
    assert!(stderr.contains("missing.toml"), "{stderr}");
    assert!(stderr.contains("cannot read config file"), "{stderr}");

    let stderr = serve_refused(&dir, &[], &[("PLINTH_CONFIG", "also-missing.toml")]).await;
    assert!(stderr.contains("also-missing.toml"), "{stderr}");
}

#[tokio::test]
async fn unreachable_postgres_and_unknown_schemes_are_refused_without_leaking_the_password() {
    let dir = TestDir::new();
    let data = dir.data_arg();
    let args = ["serve", "--listen", "127.0.0.1:0", "--data-dir", &data];
    // Nothing listens on port 1: the start fails fast and says why.
    let done = refused(
        &dir,
        &args,
        &[("DATABASE_URL", "postgres://u:secretpw@127.0.0.1:1/db")],
    )
    .await;
    assert!(done.stderr.contains("PostgreSQL"), "{}", done.stderr);
    for out in [&done.stderr, &done.stdout] {
        assert!(!out.contains("secretpw"), "password leaked: {out}");
    }
    let done = refused(&dir, &args, &[("DATABASE_URL", "mysql://u:secretpw@h/db")]).await;
    assert!(done.stderr.contains("DATABASE_URL"), "{}", done.stderr);
    assert!(
        done.stderr.contains("postgres://") && done.stderr.contains("sqlite://"),
        "the message should say what works: {}",
        done.stderr
    );
    for out in [&done.stderr, &done.stdout] {
        assert!(!out.contains("secretpw"), "password leaked: {out}");
    }
}

#[tokio::test]
async fn out_of_range_settings_are_refused_with_their_name() {
    let dir = TestDir::new();
    let stderr = serve_refused(&dir, &[], &[("PLINTH_DRAIN_SECONDS", "soon")]).await;
    assert!(stderr.contains("PLINTH_DRAIN_SECONDS"), "{stderr}");
    let stderr = serve_refused(&dir, &[], &[("PLINTH_BODY_LIMIT", "0")]).await;
    assert!(stderr.contains("body_limit"), "{stderr}");
    let stderr = serve_refused(&dir, &[], &[("LOG_LEVEL", "info,[[[")]).await;
    assert!(stderr.contains("log filter"), "{stderr}");
}

#[tokio::test]
async fn an_unusable_alert_webhook_is_refused_without_echoing_it() {
    let dir = TestDir::new();
    for url in ["ftp://hooks.example/t0ken-in-url", "http:///t0ken-in-url"] {
        let stderr = serve_refused(
            &dir,
            &[],
            &[
                ("PLINTH_ALERTS_WEBHOOK_URL", url),
                ("PLINTH_ALERTS_WEBHOOK_SECRET", "hook-s3cret"),
            ],
        )
        .await;
        assert!(stderr.contains("PLINTH_ALERTS_WEBHOOK_URL"), "{stderr}");
        assert!(stderr.contains("webhook"), "{stderr}");
        assert!(!stderr.contains("t0ken-in-url"), "the URL leaked: {stderr}");
        assert!(
            !stderr.contains("hook-s3cret"),
            "the secret leaked: {stderr}"
        );
        assert!(!dir.db().exists(), "the database was touched: {stderr}");
    }
}

#[tokio::test]
async fn a_busy_port_refuses_the_start_before_the_database_is_touched() {
    let dir = TestDir::new();
    let data = dir.data_arg();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = taken.local_addr().expect("address").to_string();
    let args = ["serve", "--listen", &addr, "--data-dir", &data];
    let done = refused(&dir, &args, &[]).await;
    assert!(
        done.stderr.contains(&format!("cannot listen on {addr}")),
        "{}",
        done.stderr
    );
    assert_eq!(
        done.stderr.matches("in use").count(),
        1,
        "the reason is given once: {}",
        done.stderr
    );
    assert!(!dir.db().exists(), "no database was created or migrated");
}
