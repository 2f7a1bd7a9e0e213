//! Unit tests of `Config::load_from`: the layers, validation and masking, with the
//! environment given as a map so the process environment is never touched.
//!
//! Every test names a config file (an empty one for "no settings") so a `plinth.toml` in the
//! current directory cannot change an outcome.

use super::*;
use settings::Setting;
use std::collections::HashMap;
use std::time::Duration;

/// A config file in its own temporary directory, kept alive with the test.
struct File {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn file(text: &str) -> File {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("plinth.toml");
    std::fs::write(&path, text).expect("write the config file");
    File { _dir: dir, path }
}

fn args(file: &File) -> GlobalArgs {
    GlobalArgs {
        config: Some(file.path.clone()),
        ..GlobalArgs::default()
    }
}

fn load(
    args: &GlobalArgs,
    listen: Option<SocketAddr>,
    env: &[(&str, &str)],
) -> anyhow::Result<Config> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Config::load_from(args, listen, |k| env.get(k).cloned())
}

fn load_ok(args: &GlobalArgs, listen: Option<SocketAddr>, env: &[(&str, &str)]) -> Config {
    load(args, listen, env).expect("the configuration loads")
}

/// The full error chain, as `main` prints it.
fn load_err(args: &GlobalArgs, env: &[(&str, &str)]) -> String {
    match load(args, None, env) {
        Ok(config) => panic!("expected a refusal, got {config:?}"),
        Err(e) => format!("{e:#}"),
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("a socket address")
}

#[test]
fn an_empty_file_gives_the_documented_defaults() {
    let f = file("");
    let c = load_ok(&args(&f), None, &[]);
    assert_eq!(c.settings.env, Environment::Development);
    assert_eq!(c.settings.listen, addr("127.0.0.1:8080"));
    assert_eq!(c.settings.data_dir, PathBuf::from("plinth-data"));
    assert!(c.settings.database_url.is_none());
    assert_eq!(c.settings.log_level.as_str(), "info");
    assert_eq!(c.settings.body_limit, 1 << 20);
    assert!(c.settings.cors_origins.is_empty());
    assert_eq!(c.settings.drain_seconds, 0);
    assert_eq!(c.settings.sqlite_readers, 4);
    assert_eq!(c.config_file.as_deref(), Some(f.path.as_path()));
    assert!(c.models.is_empty());
    let names: Vec<&str> = c
        .schema
        .models()
        .iter()
        .map(|m| m.name().as_str())
        .collect();
    assert_eq!(names, ["resource"]);
    assert_eq!(sqlite_file(&c), PathBuf::from("plinth-data/plinth.db"));
}

#[test]
fn file_settings_apply() {
    let f = file(
        "env = \"development\"\nlisten = \"127.0.0.1:7001\"\ndata_dir = \"/srv/plinth\"\n\
         log_level = \"debug\"\nbody_limit = 2048\ncors_origins = [\"https://a.example\"]\n\
         drain_seconds = 7\nsqlite_readers = 2\n",
    );
    let c = load_ok(&args(&f), None, &[]);
    assert_eq!(c.settings.listen, addr("127.0.0.1:7001"));
    assert_eq!(c.settings.data_dir, PathBuf::from("/srv/plinth"));
    assert_eq!(c.settings.log_level.as_str(), "debug");
    assert_eq!(c.settings.body_limit, 2048);
    assert_eq!(c.settings.cors_origins, ["https://a.example"]);
    assert_eq!(c.settings.drain_seconds, 7);
    assert_eq!(c.settings.sqlite_readers, 2);
    assert_eq!(sqlite_file(&c), PathBuf::from("/srv/plinth/plinth.db"));
}

#[test]
fn environment_beats_file_and_flags_beat_environment() {
    let f = file(
        "listen = \"127.0.0.1:7001\"\ndata_dir = \"file-dir\"\nlog_level = \"debug\"\nbody_limit = 10\n",
    );
    let env = [
        (env::LISTEN, "127.0.0.1:7002"),
        (env::DATA_DIR, "env-dir"),
        (env::LOG_LEVEL, "warn"),
        (env::BODY_LIMIT, "20"),
        (env::DRAIN_SECONDS, "3"),
        (env::SQLITE_READERS, "8"),
        (env::CORS_ORIGINS, " https://a.example , ,https://b.example"),
    ];
    let c = load_ok(&args(&f), None, &env);
    assert_eq!(c.settings.listen, addr("127.0.0.1:7002"));
    assert_eq!(c.settings.data_dir, PathBuf::from("env-dir"));
    assert_eq!(c.settings.log_level.as_str(), "warn");
    assert_eq!(c.settings.body_limit, 20);
    assert_eq!(c.settings.drain_seconds, 3);
    assert_eq!(c.settings.sqlite_readers, 8);
    assert_eq!(
        c.settings.cors_origins,
        ["https://a.example", "https://b.example"]
    );

    let flags = GlobalArgs {
        data_dir: Some(PathBuf::from("flag-dir")),
        log_level: Some("error".to_owned()),
        ..args(&f)
    };
    let c = load_ok(&flags, Some(addr("127.0.0.1:7003")), &env);
    assert_eq!(c.settings.listen, addr("127.0.0.1:7003"));
    assert_eq!(c.settings.data_dir, PathBuf::from("flag-dir"));
    assert_eq!(c.settings.log_level.as_str(), "error");
}

#[test]
fn empty_environment_values_count_as_unset() {
    let f = file("listen = \"127.0.0.1:7001\"\ndata_dir = \"file-dir\"\n");
    let env = [
        (env::LISTEN, ""),
        (env::DATA_DIR, ""),
        (env::ENV, ""),
        (env::LOG_LEVEL, ""),
        (env::DATABASE_URL, ""),
    ];
    let c = load_ok(&args(&f), None, &env);
    assert_eq!(c.settings.listen, addr("127.0.0.1:7001"));
    assert_eq!(c.settings.data_dir, PathBuf::from("file-dir"));
    assert_eq!(c.settings.env, Environment::Development);
    assert_eq!(c.settings.log_level.as_str(), "info");
    assert!(c.settings.database_url.is_none());
}

#[test]
fn config_flag_beats_config_env() {
    let named = file("log_level = \"trace\"\n");
    let other = file("log_level = \"warn\"\n");
    let by_env = GlobalArgs::default();
    let other_path = other.path.display().to_string();
    let c = load_ok(&by_env, None, &[(env::CONFIG, &other_path)]);
    assert_eq!(c.settings.log_level.as_str(), "warn");
    assert_eq!(c.config_file.as_deref(), Some(other.path.as_path()));
    let c = load_ok(&args(&named), None, &[(env::CONFIG, &other_path)]);
    assert_eq!(c.settings.log_level.as_str(), "trace");
}

#[test]
fn environment_modes() {
    let f = file("env = \"development\"\n");
    let err = load_err(&args(&f), &[(env::ENV, "bogus")]);
    assert!(err.contains("PLINTH_ENV") && err.contains("bogus"), "{err}");
    // Production refuses to start without an explicit signing key, and says how to make one.
    let err = load_err(&args(&f), &[(env::ENV, "production")]);
    assert!(
        err.contains("PLINTH_ENV=production")
            && err.contains("PLINTH_JWT_SECRET")
            && err.contains("plinth keys generate"),
        "{err}"
    );
    let from_file = file("env = \"production\"\n");
    let err = load_err(&args(&from_file), &[]);
    assert!(err.contains("signing key"), "{err}");
    // A weak key is refused, in any mode.
    let err = load_err(
        &args(&f),
        &[(
            env::JWT_SECRET,
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        )],
    );
    assert!(
        err.contains("PLINTH_JWT_SECRET") && err.contains("entropy"),
        "{err}"
    );
    let err = load_err(&args(&f), &[(env::JWT_SECRET, "short")]);
    assert!(err.contains("at least 32 bytes"), "{err}");
    let strong = "q1W8m0pX3r9ZkT2vL7cN5bY4hJ6gF0dS8aE2uI1oP9lK3jH";
    // Production also refuses to start without explicit encryption keys.
    let err = load_err(&args(&from_file), &[(env::JWT_SECRET, strong)]);
    assert!(
        err.contains("PLINTH_ENCRYPTION_KEYS") && err.contains("plinth keys encryption"),
        "{err}"
    );
    let keys = "index=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\nk1=ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
    let c = load_ok(
        &args(&from_file),
        None,
        &[(env::JWT_SECRET, strong), (env::ENCRYPTION_KEYS, keys)],
    );
    assert_eq!(c.settings.env, Environment::Production);
    for secret in [strong, "AAECAwQF", "ICEiIyQl"] {
        assert!(!format!("{c:?}").contains(secret), "a key printed");
        assert!(!c.render().contains(secret), "a key printed");
    }
    let c = load_ok(&args(&from_file), None, &[(env::ENV, "development")]);
    assert_eq!(
        c.settings.env,
        Environment::Development,
        "the environment beats the file"
    );
}

#[test]
fn malformed_environment_values_name_the_variable() {
    let f = file("");
    for (name, value) in [
        (env::LISTEN, "localhost"),
        (env::BODY_LIMIT, "1MB"),
        (env::DRAIN_SECONDS, "-1"),
        (env::SQLITE_READERS, "many"),
    ] {
        let err = load_err(&args(&f), &[(name, value)]);
        assert!(
            err.contains(name) && err.contains(value),
            "{name}={value}: {err}"
        );
    }
}

#[test]
fn out_of_range_numbers_are_refused() {
    let f = file("");
    for (name, value, needle) in [
        (env::BODY_LIMIT, "0", "body_limit"),
        (env::BODY_LIMIT, "67108865", "body_limit"),
        (env::DRAIN_SECONDS, "301", "drain_seconds"),
        (env::SQLITE_READERS, "0", "sqlite_readers"),
        (env::SQLITE_READERS, "65", "sqlite_readers"),
    ] {
        let err = load_err(&args(&f), &[(name, value)]);
        assert!(err.contains(needle), "{name}={value}: {err}");
    }
    for (name, value) in [
        (env::BODY_LIMIT, "67108864"),
        (env::DRAIN_SECONDS, "300"),
        (env::SQLITE_READERS, "64"),
    ] {
        load(&args(&f), None, &[(name, value)])
            .unwrap_or_else(|e| panic!("{name}={value} is in range: {e:#}"));
    }
}

#[test]
fn file_errors_name_the_file_and_line() {
    let f = file("listen = \"127.0.0.1:1\"\n\nlisten_port = 3\n");
    let err = load_err(&args(&f), &[]);
    let name = f.path.display().to_string();
    assert!(
        err.contains(&name) && err.contains("line 3") && err.contains("listen_port"),
        "{err}"
    );

    let f = file("data_dir = [\n");
    let err = load_err(&args(&f), &[]);
    assert!(
        err.contains(&f.path.display().to_string()) && err.contains("line"),
        "{err}"
    );

    let f = file("listen = \"not an address\"\n");
    let err = load_err(&args(&f), &[]);
    assert!(err.contains("line 1"), "{err}");
}

#[test]
fn a_missing_named_file_is_refused() {
    let args = GlobalArgs {
        config: Some(PathBuf::from("/nonexistent/plinth-missing.toml")),
        ..GlobalArgs::default()
    };
    let err = load_err(&args, &[]);
    assert!(
        err.contains("cannot read config file /nonexistent/plinth-missing.toml"),
        "{err}"
    );
}

#[test]
fn model_errors_name_the_file_line_and_field() {
    let f = file(
        "log_level = \"info\"\n\n[[models]]\nname = \"good\"\n\n[[models]]\nname = \"book\"\n\n\
         [[models.fields]]\nname = \"Bad-Name\"\ntype = \"string\"\n\n[[models.fields]]\n\
         name = \"by\"\ntype = \"reference\"\nmodel = \"ghost\"\n",
    );
    let err = load_err(&args(&f), &[]);
    let name = f.path.display().to_string();
    assert!(err.starts_with("invalid model declarations"), "{err}");
    let lines: Vec<&str> = err.lines().skip(1).map(str::trim).collect();
    assert_eq!(lines.len(), 2, "one line per error: {err}");
    for line in &lines {
        let rest = line
            .strip_prefix(&format!("{name}:"))
            .unwrap_or_else(|| panic!("no file prefix: {line}"));
        let number: usize = rest
            .split(':')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a line number");
        assert!(
            (6..=16).contains(&number),
            "line {number} is outside the book model: {line}"
        );
    }
    assert!(lines.iter().any(|l| l.contains("Bad-Name")), "{err}");
    assert!(lines.iter().any(|l| l.contains("ghost")), "{err}");
}

#[test]
fn declared_models_replace_the_default() {
    let f = file(
        "[[models]]\nname = \"customer\"\nguest_read = false\n\n[[models.fields]]\n\
         name = \"tier\"\ntype = \"enum\"\nvalues = [\"free\", \"pro\"]\nindexed = true\n",
    );
    let c = load_ok(&args(&f), None, &[]);
    assert_eq!(c.models.len(), 1);
    assert_eq!(c.models[0].name, "customer");
    assert!(!c.models[0].guest_read);
    let names: Vec<&str> = c
        .schema
        .models()
        .iter()
        .map(|m| m.name().as_str())
        .collect();
    assert_eq!(names, ["customer"]);
    let rendered = c.render();
    assert!(rendered.contains("name = \"customer\""), "{rendered}");
    assert!(!rendered.contains("\"resource\""), "{rendered}");
}

#[test]
fn database_urls() {
    let f = file("");
    let c = load_ok(
        &args(&f),
        None,
        &[(env::DATABASE_URL, "sqlite:///var/lib/plinth/x.db")],
    );
    assert_eq!(sqlite_file(&c), PathBuf::from("/var/lib/plinth/x.db"));
    let c = load_ok(
        &args(&f),
        None,
        &[(env::DATABASE_URL, "sqlite:relative.db")],
    );
    assert_eq!(sqlite_file(&c), PathBuf::from("relative.db"));
    let c = load_ok(&args(&f), None, &[(env::DATABASE_URL, "sqlite://")]);
    let err = c.database().expect_err("no file named").to_string();
    assert!(err.contains("DATABASE_URL"), "{err}");

    let c = load_ok(
        &args(&f),
        None,
        &[(env::DATABASE_URL, "postgres://u:secretpw@h/db")],
    );
    match c.database().expect("postgres is supported") {
        Database::Postgres(url) => {
            assert_eq!(url.expose(), "postgres://u:secretpw@h/db");
            assert!(!format!("{url:?}").contains("secretpw"), "masked in Debug");
        }
        other => panic!("expected PostgreSQL, got {other:?}"),
    }
    let c = load_ok(
        &args(&f),
        None,
        &[(env::DATABASE_URL, "mysql://u:secretpw@h/db")],
    );
    let err = format!("{:#}", c.database().expect_err("mysql is not supported"));
    assert!(
        err.contains("DATABASE_URL") && err.contains("mysql"),
        "{err}"
    );
    assert!(!err.contains("secretpw"), "{err}");

    let from_file = file("database_url = \"sqlite:///from/file.db\"\n");
    let c = load_ok(&args(&from_file), None, &[]);
    assert_eq!(sqlite_file(&c), PathBuf::from("/from/file.db"));
    let c = load_ok(
        &args(&from_file),
        None,
        &[(env::DATABASE_URL, "sqlite:///from/env.db")],
    );
    assert_eq!(sqlite_file(&c), PathBuf::from("/from/env.db"));
}

#[test]
fn secrets_are_masked_in_debug_and_render() {
    let f = file("");
    let c = load_ok(
        &args(&f),
        None,
        &[(env::DATABASE_URL, "postgres://admin:secretpw@db:5432/app")],
    );
    let debug = format!("{c:?}");
    assert!(!debug.contains("secretpw"), "{debug}");
    let rendered = c.render();
    assert!(!rendered.contains("secretpw"), "{rendered}");
    assert!(
        rendered.contains("database = \"postgres://admin:****@db:5432/app\""),
        "{rendered}"
    );
    assert_eq!(
        c.settings.database_url.as_ref().map(SecretUrl::expose),
        Some("postgres://admin:secretpw@db:5432/app"),
        "the real value stays usable"
    );
}

#[test]
fn mask_url_hides_only_the_password() {
    assert_eq!(mask_url("postgres://u:p@h/db"), "postgres://u:****@h/db");
    assert_eq!(mask_url("postgres://u:p:q@h/db"), "postgres://u:****@h/db");
    assert_eq!(mask_url("postgres://u:p@ss@h/db"), "postgres://u:****@h/db");
    assert_eq!(mask_url("postgres://u@h/db"), "postgres://u@h/db");
    assert_eq!(mask_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    assert_eq!(mask_url("not a url"), "not a url");
}

#[test]
fn render_is_toml_with_the_effective_values() {
    let f = file("drain_seconds = 4\n");
    let c = load_ok(
        &args(&f),
        Some(addr("127.0.0.1:9")),
        &[(env::LOG_LEVEL, "debug")],
    );
    let shown: toml::Table = c.render().parse().expect("render is TOML");
    assert_eq!(shown["listen"].as_str(), Some("127.0.0.1:9"));
    assert_eq!(shown["log_level"].as_str(), Some("debug"));
    assert_eq!(shown["drain_seconds"].as_integer(), Some(4));
    assert_eq!(
        shown["database"].as_str(),
        Some("sqlite://plinth-data/plinth.db")
    );
    assert_eq!(shown["env"].as_str(), Some("development"));
    assert_eq!(shown["models"][0]["name"].as_str(), Some("resource"));
}

fn sqlite_file(c: &Config) -> PathBuf {
    match c.database().expect("a database") {
        Database::Sqlite(path) => path,
        other => panic!("expected SQLite, got {other:?}"),
    }
}

mod oidc;
mod realtime;
mod table;
