//! The settings table itself: unique names, a variable for every file key, defaults in
//! range, ranges enforced from every layer, cross-checks, and secrets kept out of refusals.

use super::*;

/// The settings table itself: names are unique, and every file key's variable is
/// `PLINTH_<KEY>` (dots as underscores) unless scripts already rely on another name.
#[test]
fn every_file_key_has_its_environment_variable() {
    let legacy = [
        ("database_url", "DATABASE_URL"),
        ("database_read_url", "DATABASE_READ_URL"),
        ("log_level", "LOG_LEVEL"),
        ("auth.jwt_secret_file", "PLINTH_JWT_SECRET_FILE"),
    ];
    for s in SETTINGS {
        let Some(key) = s.key else { continue };
        let expected = legacy.iter().find(|(k, _)| *k == key).map_or_else(
            || format!("PLINTH_{}", key.replace('.', "_").to_uppercase()),
            |(_, env)| (*env).to_owned(),
        );
        assert_eq!(s.env, expected, "{key}");
    }
    let names = |f: fn(&Setting) -> Option<&'static str>| {
        let mut all: Vec<&str> = SETTINGS.iter().filter_map(|s| f(s)).collect();
        let count = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), count, "a name is declared twice: {all:?}");
    };
    names(|s| s.key);
    names(|s| Some(s.env));
    names(|s| s.flag);
}

/// Every default is a valid value: inside its range, and what an empty file loads.
#[test]
fn defaults_are_in_range_and_load() {
    let defaults = Settings::defaults();
    for (s, shown) in defaults.shown() {
        if let (Some((low, high)), Some(toml::Value::Integer(n))) = (s.range, &shown) {
            let n = u64::try_from(*n).expect("a non-negative default");
            assert!((low..=high).contains(&n), "{}: default {n}", s.name());
        }
    }
    let f = file("");
    let loaded = load_ok(&args(&f), None, &[]);
    let shown = |s: &Settings| -> Vec<String> {
        s.shown()
            .into_iter()
            .filter(|(s, _)| s.key.is_some())
            .map(|(s, v)| format!("{} {v:?}", s.name()))
            .collect()
    };
    assert_eq!(shown(&loaded.settings), shown(&defaults));
}

/// A value for a file key, as the file writes it (`[table]` for dotted keys).
fn file_text(key: &str, value: &str) -> String {
    match key.split_once('.') {
        Some((table, key)) => format!("[{table}]\n{key} = {value}\n"),
        None => format!("{key} = {value}\n"),
    }
}

/// Each ranged setting takes its bounds, and refuses one past them, from the environment
/// and from the file alike, naming the setting, the source and the range.
#[test]
fn ranges_are_enforced_from_every_layer_never_clamped() {
    let ranged: Vec<&Setting> = SETTINGS
        .iter()
        .copied()
        .filter(|s| s.range.is_some())
        .collect();
    assert!(ranged.len() >= 15, "{ranged:?}");
    for s in ranged {
        let (low, high) = s.range.expect("ranged");
        let key = s.key.expect("ranged settings are file keys");
        // argon2 memory must cover 8 KiB per lane, which its lower bound does.
        for ok in [low, high] {
            let f = file("");
            load(&args(&f), None, &[(s.env, &ok.to_string())])
                .unwrap_or_else(|e| panic!("{}={ok} is in range: {e:#}", s.env));
            let f = file(&file_text(key, &ok.to_string()));
            load(&args(&f), None, &[])
                .unwrap_or_else(|e| panic!("{key} = {ok} is in range: {e:#}"));
        }
        let allowed = format!("allowed {low} to {high}");
        let mut outside = vec![high + 1];
        if low > 0 {
            outside.push(low - 1);
        }
        for bad in outside {
            let f = file("");
            let err = load_err(&args(&f), &[(s.env, &bad.to_string())]);
            assert!(
                err.contains(&format!("{}=\"{bad}\"", s.env))
                    && err.contains(key)
                    && err.contains(&allowed),
                "{}={bad}: {err}",
                s.env
            );
            let f = file(&file_text(key, &bad.to_string()));
            let err = load_err(&args(&f), &[]);
            assert!(
                err.contains(&format!("{key} = {bad}"))
                    && err.contains(&f.path.display().to_string())
                    && err.contains(&allowed),
                "{key} = {bad}: {err}"
            );
        }
    }
}

#[test]
fn keys_without_a_variable_before_now_take_one_over_the_file() {
    let f = file(
        "read_your_writes_seconds = 1\npg_connect_timeout_seconds = 2\n\
         pg_statement_timeout_seconds = 3\n\n[auth]\naccess_token_minutes = 4\n",
    );
    let env = [
        (env::READ_YOUR_WRITES_SECONDS, "11"),
        (env::PG_CONNECT_TIMEOUT_SECONDS, "12"),
        (env::PG_STATEMENT_TIMEOUT_SECONDS, "13"),
        (env::AUTH_ACCESS_TOKEN_MINUTES, "14"),
        (env::AUTH_REFRESH_TOKEN_DAYS, "15"),
        (env::AUTH_ARGON2_MEMORY_KIB, "16000"),
        (env::AUTH_ARGON2_ITERATIONS, "3"),
        (env::AUTH_ARGON2_PARALLELISM, "2"),
        (env::AUTH_LOGIN_ATTEMPTS_PER_ACCOUNT, "0"),
        (env::AUTH_LOGIN_ATTEMPTS_PER_ADDRESS, "17"),
        (env::AUTH_LOGIN_REMEMBER_DAYS, "0"),
        (env::AUTH_REQUESTS_PER_MINUTE, "18"),
        // An explicit key, so building the auth settings writes no key file.
        (
            env::JWT_SECRET,
            "q1W8m0pX3r9ZkT2vL7cN5bY4hJ6gF0dS8aE2uI1oP9lK3jH",
        ),
    ];
    let file_only = load_ok(&args(&f), None, &[]);
    assert_eq!(file_only.settings.read_your_writes_seconds, 1);
    assert_eq!(file_only.settings.auth_access_token_minutes, 4);
    let c = load_ok(&args(&f), None, &env);
    let s = &c.settings;
    assert_eq!(s.read_your_writes_seconds, 11);
    assert_eq!(s.pg_connect_timeout_seconds, 12);
    assert_eq!(s.pg_statement_timeout_seconds, 13);
    let auth = c.auth_config().expect("auth settings");
    assert_eq!(auth.access_ttl, Duration::from_secs(14 * 60));
    assert_eq!(auth.refresh_ttl, Duration::from_secs(15 * 24 * 3600));
    assert_eq!(auth.hash_cost.memory_kib, 16000);
    assert_eq!(auth.hash_cost.iterations, 3);
    assert_eq!(auth.hash_cost.parallelism, 2);
    assert_eq!(auth.login_per_account, 0);
    assert_eq!(auth.login_per_address, 17);
    assert_eq!(auth.login_remember, Duration::ZERO);
    assert_eq!(auth.requests_per_minute, 18);
}

#[test]
fn argon2_settings_are_checked_together() {
    let f = file("[auth]\nargon2_memory_kib = 15\nargon2_parallelism = 2\n");
    let err = load_err(&args(&f), &[]);
    assert!(
        err.contains("auth.argon2_memory_kib") && err.contains("auth.argon2_parallelism"),
        "{err}"
    );
    let f = file("env = \"production\"\n[auth]\nargon2_memory_kib = 19455\n");
    let strong = "q1W8m0pX3r9ZkT2vL7cN5bY4hJ6gF0dS8aE2uI1oP9lK3jH";
    let err = load_err(&args(&f), &[(env::JWT_SECRET, strong)]);
    assert!(
        err.contains("auth.argon2_memory_kib") && err.contains("production"),
        "{err}"
    );
}

#[test]
fn a_bad_flag_value_names_the_flag_and_the_setting() {
    let f = file("");
    let flags = GlobalArgs {
        log_level: Some("plinth=loud".to_owned()),
        ..args(&f)
    };
    let err = format!("{:#}", load(&flags, None, &[]).expect_err("a bad filter"));
    assert!(
        err.contains("--log-level \"plinth=loud\"") && err.contains("log_level"),
        "{err}"
    );
}

#[test]
fn secrets_never_appear_in_refusals() {
    let f = file("");
    let err = load_err(
        &args(&f),
        &[
            (env::JWT_SECRET, "secretsecret"),
            (env::DATABASE_READ_URL, "postgres://u:secretpw@h/db"),
        ],
    );
    assert!(
        !err.contains("secretsecret") && !err.contains("secretpw"),
        "{err}"
    );
    let c = load_ok(
        &args(&f),
        None,
        &[
            (env::ADMIN_PASSWORD, "secretadmin"),
            (env::BENCH_TOKEN, "secrettoken"),
        ],
    );
    let shown = format!("{c:?}{}", c.render());
    assert!(
        !shown.contains("secretadmin") && !shown.contains("secrettoken"),
        "{shown}"
    );
}

#[test]
fn the_reference_has_one_row_per_setting() {
    let text = reference();
    let rows: Vec<&str> = text.lines().skip(2).collect();
    assert_eq!(rows.len(), SETTINGS.len(), "{text}");
    for (row, s) in rows.iter().zip(SETTINGS) {
        assert!(row.contains(&format!("`{}`", s.env)), "{row}");
        if let Some((low, high)) = s.range {
            assert!(row.contains(&format!("{low} to {high}")), "{row}");
        }
    }
}

#[test]
fn trusted_proxies_are_checked_at_load_and_reach_the_auth_settings() {
    let f = file("trusted_proxies = [\"10.0.0.0/8\", \"not-an-address\"]\n");
    let err = load_err(&args(&f), &[]);
    assert!(
        err.contains("trusted_proxies") && err.contains("not-an-address"),
        "{err}"
    );
    let err = load_err(&args(&file("")), &[(env::TRUSTED_PROXIES, "10.0.0.0/33")]);
    assert!(err.contains(env::TRUSTED_PROXIES), "{err}");
    let f = file(
        "trusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n[auth]\nsession_max_days = 7\n\
         login_attempts_per_account_address = 3\n",
    );
    // An explicit key, so building the auth settings writes no key file.
    let key = [(
        env::JWT_SECRET,
        "q1W8m0pX3r9ZkT2vL7cN5bY4hJ6gF0dS8aE2uI1oP9lK3jH",
    )];
    let c = load_ok(&args(&f), None, &key);
    let auth = c.auth_config().expect("auth settings");
    assert_eq!(
        auth.trusted_proxies,
        plinth_server::auth::TrustedProxies::parse(&["10.0.0.0/8", "::1"]).expect("valid")
    );
    assert_eq!(auth.session_max, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(auth.login_per_account_address, 3);
    assert_eq!(auth.login_per_account, 100, "the ceiling's default");
    assert_eq!(auth.login_remember, Duration::from_secs(30 * 24 * 3600));
}

#[test]
fn metrics_settings_and_a_weak_metrics_token_in_production() {
    let f = file("[metrics]\nenabled = false\n");
    let c = load_ok(&args(&f), None, &[]);
    assert!(!c.settings.metrics_enabled);
    assert!(c.settings.metrics_token.is_none());
    let err = load_err(&args(&file("[metrics]\nenabled = \"no\"\n")), &[]);
    assert!(err.contains("metrics.enabled"), "{err}");
    // The token comes only from the environment.
    let err = load_err(&args(&file("[metrics]\ntoken = \"x\"\n")), &[]);
    assert!(err.contains("metrics.token"), "{err}");
    // Any token in development; production refuses a short one, without echoing it.
    let dev = load_ok(
        &args(&file("")),
        None,
        &[(env::METRICS_TOKEN, "short-token")],
    );
    assert!(dev.settings.metrics_token.is_some());
    let production = file("env = \"production\"\n");
    let strong = "q1W8m0pX3r9ZkT2vL7cN5bY4hJ6gF0dS8aE2uI1oP9lK3jH";
    let keys = "index=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\nk1=ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
    let base = [(env::JWT_SECRET, strong), (env::ENCRYPTION_KEYS, keys)];
    let weak = "only-31-characters-long-token-x";
    let err = load_err(
        &args(&production),
        &[base[0], base[1], (env::METRICS_TOKEN, weak)],
    );
    assert!(
        err.contains("PLINTH_METRICS_TOKEN") && err.contains("production") && !err.contains(weak),
        "{err}"
    );
    let good = "a-metrics-token-of-32-characters";
    let c = load_ok(
        &args(&production),
        None,
        &[base[0], base[1], (env::METRICS_TOKEN, good)],
    );
    assert!(
        !format!("{c:?}").contains(good) && !c.render().contains(good),
        "the token printed"
    );
}

#[test]
fn sign_up_domains_and_the_public_url() {
    let c = load_ok(&args(&file("")), None, &[]);
    assert_eq!(c.settings.auth_signup, plinth_server::auth::Signup::Off);
    let f = file(
        "public_url = \"https://api.example.com/\"\n[auth]\nsignup = \"open\"\nsignup_domains = [\"Example.COM\", \"@corp.example\"]\n",
    );
    let c = load_ok(&args(&f), None, &[]);
    assert_eq!(c.settings.auth_signup, plinth_server::auth::Signup::Open);
    let auth = c.auth_config().expect("auth config");
    assert_eq!(auth.signup_domains, ["example.com", "corp.example"]);
    assert_eq!(auth.public_url.as_deref(), Some("https://api.example.com"));
    let err = load_err(&args(&file("[auth]\nsignup = \"yes\"\n")), &[]);
    assert!(
        err.contains("auth.signup") && err.contains("off or open"),
        "{err}"
    );
    for bad in [
        "ftp://x.example",
        "https://",
        "api.example.com",
        "https://a.example/?x=1",
    ] {
        let err = load_err(&args(&file("")), &[(env::PUBLIC_URL, bad)]);
        assert!(err.contains("PLINTH_PUBLIC_URL"), "{bad}: {err}");
    }
    let err = load_err(
        &args(&file("")),
        &[(env::AUTH_SIGNUP_DOMAINS, "example.com,no domain")],
    );
    assert!(err.contains("auth.signup_domains"), "{err}");
    // Production: links carry tokens, so only https.
    let production = file("env = \"production\"\n");
    let strong = "q1W8m0pX3r9ZkT2vL7cN5bY4hJ6gF0dS8aE2uI1oP9lK3jH";
    let keys = "index=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\nk1=ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
    let base = [(env::JWT_SECRET, strong), (env::ENCRYPTION_KEYS, keys)];
    let err = load_err(
        &args(&production),
        &[
            base[0],
            base[1],
            (env::PUBLIC_URL, "http://api.example.com"),
        ],
    );
    assert!(err.contains("https in production"), "{err}");
    load_ok(
        &args(&production),
        None,
        &[
            base[0],
            base[1],
            (env::PUBLIC_URL, "https://api.example.com"),
        ],
    );
}

#[test]
fn mail_settings_and_their_checks() {
    let c = load_ok(&args(&file("")), None, &[]);
    assert!(!c.settings.auth_require_verified_email);
    let auth = c.auth_config().expect("auth config");
    assert!(auth.mail.is_none());
    assert_eq!(auth.password_reset_ttl.as_secs(), 30 * 60);
    assert_eq!(auth.verify_email_ttl.as_secs(), 24 * 3600);
    let f = file(
        "[auth]\nrequire_verified_email = true\npassword_reset_minutes = 15\n[smtp]\nfrom = \"Plinth <no-reply@example.com>\"\n",
    );
    let secret = "s3cret-smtp-pass";
    let url = format!("smtp://mailer:{secret}@mail.example.com?tls=required");
    let c = load_ok(&args(&f), None, &[(env::SMTP_URL, &url)]);
    let auth = c.auth_config().expect("auth config");
    assert!(auth.require_verified_email);
    assert_eq!(auth.password_reset_ttl.as_secs(), 15 * 60);
    let mail = auth.mail.expect("mail settings");
    assert_eq!((mail.host.as_str(), mail.port), ("mail.example.com", 587));
    assert_eq!(mail.tls, plinth_server::mail::SmtpTls::Required);
    // The password is masked wherever the configuration is shown.
    assert!(
        !format!("{c:?}").contains(secret) && !c.render().contains(secret),
        "the SMTP password printed"
    );
    // Requiring verified addresses without mail is refused at start.
    let err = load_err(&args(&file("[auth]\nrequire_verified_email = true\n")), &[]);
    assert!(
        err.contains("auth.require_verified_email") && err.contains("PLINTH_SMTP_URL"),
        "{err}"
    );
    // A relay without a sender, a sender without a relay, a bad URL.
    let err = load_err(
        &args(&file("")),
        &[(env::SMTP_URL, "smtp://127.0.0.1:2525")],
    );
    assert!(err.contains("smtp.from"), "{err}");
    let err = load_err(&args(&file("[smtp]\nfrom = \"a@example.com\"\n")), &[]);
    assert!(err.contains("PLINTH_SMTP_URL"), "{err}");
    let sender = [(env::SMTP_FROM, "a@example.com")];
    for bad in [
        "http://mail.example.com",
        "smtp://mail.example.com?tls=maybe",
        "smtp://mail.example.com?auth=plain",
        "smtp://",
    ] {
        let err = load_err(&args(&file("")), &[sender[0], (env::SMTP_URL, bad)]);
        assert!(err.contains("PLINTH_SMTP_URL"), "{bad}: {err}");
    }
    let err = load_err(
        &args(&file("")),
        &[
            (env::SMTP_FROM, "not an address"),
            (env::SMTP_URL, "smtp://127.0.0.1:2525"),
        ],
    );
    assert!(err.contains("PLINTH_SMTP_FROM"), "{err}");
    // Plain SMTP: to loopback anywhere, to another host only in development.
    let plain = [
        sender[0],
        (env::SMTP_URL, "smtp://mail.example.com?tls=none"),
    ];
    load_ok(&args(&file("")), None, &plain);
    let production = file("env = \"production\"\n");
    let strong = "q1W8m0pX3r9ZkT2vL7cN5bY4hJ6gF0dS8aE2uI1oP9lK3jH";
    let keys = "index=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\nk1=ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
    let base = [(env::JWT_SECRET, strong), (env::ENCRYPTION_KEYS, keys)];
    let err = load_err(&args(&production), &[base[0], base[1], plain[0], plain[1]]);
    assert!(
        err.contains("tls=none") && err.contains("production"),
        "{err}"
    );
    load_ok(
        &args(&production),
        None,
        &[
            base[0],
            base[1],
            sender[0],
            (env::SMTP_URL, "smtp://127.0.0.1:2525"),
        ],
    );
}
