//! Accounts at the process level: the first admin (from the environment or
//! `plinth user create`), signing keys (`plinth keys generate`, production), and secret
//! hygiene of a whole session in the logs and the responses.

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, ENCRYPTION_KEYS, Finished, Proc, Server, TestDir, bearer_client,
    log_field, log_message, refused, refused_fed, run, run_fed, run_ok,
};
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Exactly the fields `/auth/me` and `/users` may show of an account.
pub(crate) const USER_FIELDS: [&str; 7] = [
    "created_at",
    "email",
    "email_verified",
    "id",
    "role",
    "updated_at",
    "version",
];

pub(crate) fn keys_of(v: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// `plinth user create --email … --role … --password-stdin` with `password` on stdin.
async fn user_create(dir: &TestDir, email: &str, role: &str, password: &str) -> Finished {
    let data = dir.data_arg();
    let args = [
        "--data-dir",
        &data,
        "user",
        "create",
        "--email",
        email,
        "--role",
        role,
        "--password-stdin",
    ];
    run_fed(dir, &args, &[], Some(&format!("{password}\n"))).await
}

/// The log line with this message, or a failure showing all output.
pub(crate) fn line_with(proc: &Proc, message: &str) -> Value {
    proc.logs()
        .into_iter()
        .find(|l| log_message(l) == Some(message))
        .unwrap_or_else(|| panic!("no {message:?} line\n{}", proc.describe()))
}

/// `plinth keys generate`, checked: one line of standard base64 holding at least 32 bytes.
async fn generate_key(dir: &TestDir) -> String {
    let done = run_ok(dir, &["keys", "generate"], &[]).await;
    assert_eq!(done.stdout.lines().count(), 1, "{}", done.stdout);
    let key = done.stdout.trim().to_owned();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&key)
        .unwrap_or_else(|e| panic!("not base64 ({e}): {key}"));
    assert!(bytes.len() >= 32, "{} bytes: {key}", bytes.len());
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_creates_exactly_one_admin_who_can_log_in() {
    let dir = TestDir::new();
    let server = Server::start(&dir).await;
    let created = line_with(&server.proc, "first admin created");
    assert_eq!(created["target"], "plinth::security", "{created}");
    assert_eq!(
        log_field(&created, "event"),
        Some(&json!("first_admin_created"))
    );

    assert!(
        !server
            .proc
            .logs()
            .iter()
            .any(|l| log_message(l).is_some_and(|m| m.contains("unknown PLINTH_"))),
        "the first admin's variables are known names\n{}",
        server.proc.describe()
    );
    let me = server.get("/api/v1/auth/me").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(keys_of(&me.body["data"]), USER_FIELDS, "{}", me.text);
    assert_eq!(me.body["data"]["email"], ADMIN_EMAIL);
    assert_eq!(me.body["data"]["role"], "admin");
    let admin_id = me.body["data"]["id"].as_str().expect("id").to_owned();
    let users = server.get("/api/v1/users").await;
    assert_eq!(users.status, StatusCode::OK, "{}", users.text);
    let list = users.body["data"].as_array().expect("a list of users");
    assert_eq!(list.len(), 1, "exactly one account: {}", users.text);
    assert_eq!(list[0]["id"], json!(admin_id));

    // A wrong password and an unknown email get the same answer.
    let wrong = server.login(ADMIN_EMAIL, "not-the-admin-password").await;
    wrong.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let unknown = server.login("nobody@plinth.test", ADMIN_PASSWORD).await;
    unknown.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    assert_eq!(
        wrong.body["error"]["message"],
        unknown.body["error"]["message"]
    );
    let old_token = server.tokens().access_token.clone();
    server.stop().await;

    // The development key is kept, private, in the data dir.
    let key_file = dir.data_dir().join("jwt.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_file)
            .expect("data/jwt.key exists")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "jwt.key mode {mode:o}");

    // Restarted with other admin variables: an admin exists, so they are ignored.
    let other = [
        ("PLINTH_ADMIN_EMAIL", "second@plinth.test"),
        ("PLINTH_ADMIN_PASSWORD", "second-admin-staple-horse"),
    ];
    let server = Server::start_with(&dir, &[], &other).await;
    assert!(
        server
            .proc
            .logs()
            .iter()
            .filter_map(log_message)
            .any(|m| m.contains("PLINTH_ADMIN_EMAIL") && m.contains("ignored")),
        "{}",
        server.proc.describe()
    );
    assert!(!server.proc.logged("first admin created"));
    let second = server
        .login("second@plinth.test", "second-admin-staple-horse")
        .await;
    second.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let users = server.get("/api/v1/users").await;
    assert_eq!(
        users.body["data"].as_array().map(Vec::len),
        Some(1),
        "{}",
        users.text
    );
    // The token issued before the restart is still good: same key, same admin.
    let me = server
        .send(bearer_client(&old_token).get(server.url("/api/v1/auth/me")))
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["data"]["id"], json!(admin_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weak_first_admin_password_refuses_to_start() {
    let dir = TestDir::new();
    let data = dir.data_arg();
    let serve = ["serve", "--listen", "127.0.0.1:0", "--data-dir", &data];
    let cases = [
        ("short-pw-1", "at least 12 characters"),
        ("Password1234", "too common"),
        ("admin@plinth.test", "email"),
    ];
    for (weak, reason) in cases {
        let envs = [
            ("PLINTH_ADMIN_EMAIL", ADMIN_EMAIL),
            ("PLINTH_ADMIN_PASSWORD", weak),
        ];
        let done = refused(&dir, &serve, &envs).await;
        assert!(done.stderr.contains("first admin"), "{}", done.stderr);
        assert!(done.stderr.contains("PLINTH_ADMIN_"), "{}", done.stderr);
        assert!(done.stderr.contains("password"), "{}", done.stderr);
        assert!(done.stderr.contains(reason), "{}", done.stderr);
        if weak != ADMIN_EMAIL {
            assert!(
                !done.stdout.contains(weak) && !done.stderr.contains(weak),
                "the refused password was echoed\n{}\n{}",
                done.stdout,
                done.stderr
            );
        }
    }
    // One variable without the other is refused, naming both.
    for envs in [
        [("PLINTH_ADMIN_EMAIL", ADMIN_EMAIL)],
        [("PLINTH_ADMIN_PASSWORD", ADMIN_PASSWORD)],
    ] {
        let stderr = refused(&dir, &serve, &envs).await.stderr;
        assert!(stderr.contains("PLINTH_ADMIN_EMAIL"), "{stderr}");
        assert!(stderr.contains("PLINTH_ADMIN_PASSWORD"), "{stderr}");
    }
    let envs = [
        ("PLINTH_ADMIN_EMAIL", "not-an-email"),
        ("PLINTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
    ];
    let stderr = refused(&dir, &serve, &envs).await.stderr;
    assert!(stderr.contains("email"), "{stderr}");

    // Nothing was created by the refusals: the next start has no admin.
    let server = Server::spawn(&dir, &[], &[]).await;
    let login = server.login(ADMIN_EMAIL, "short-pw-1").await;
    login.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    assert!(
        server.proc.logs().iter().any(|l| l["level"] == "WARN"
            && log_message(l).is_some_and(|m| m.contains("no admin account exists"))),
        "{}",
        server.proc.describe()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_admin_the_server_starts_and_says_how_to_make_one() {
    let dir = TestDir::new();
    let server = Server::spawn(&dir, &[], &[]).await;
    // Not necessarily the first warning: on PostgreSQL, a generated signing key is warned
    // about too.
    let warning = server
        .proc
        .logs()
        .into_iter()
        .find(|l| l["level"] == "WARN" && log_message(l).is_some_and(|m| m.contains("no admin")))
        .unwrap_or_else(|| panic!("no warning\n{}", server.proc.describe()));
    let message = log_message(&warning).expect("a message");
    assert!(message.contains("no admin"), "{warning}");
    assert!(message.contains("plinth user create --email"), "{warning}");
    assert!(message.contains("--role admin"), "{warning}");
    assert!(message.contains("PLINTH_ADMIN_EMAIL"), "{warning}");
    assert!(message.contains("PLINTH_ADMIN_PASSWORD"), "{warning}");

    // Guests may read, nothing more.
    let list = server.get("/api/v1/resource").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.body["data"], json!([]));
    let write = server
        .post("/api/v1/resource", &json!({"name": "guest"}))
        .await;
    write.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let users = server.get("/api/v1/users").await;
    users.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let me = server.get("/api/v1/auth/me").await;
    me.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    server.stop().await;
    assert_eq!(
        Server::spawn(&dir, &[], &[])
            .await
            .get("/api/v1/resource")
            .await
            .body["data"],
        json!([]),
        "the refused write left nothing behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_create_takes_the_password_from_stdin_only() {
    let dir = TestDir::new();
    let data = dir.data_arg();
    let password = "ada-lovelace-engine-1843";
    let done = user_create(&dir, "Ada@Example.com", "admin", password).await;
    assert_eq!(
        done.status.code(),
        Some(0),
        "{}\n{}",
        done.stdout,
        done.stderr
    );
    assert!(done.stdout.contains("created admin"), "{}", done.stdout);
    for out in [&done.stdout, &done.stderr] {
        assert!(!out.contains(password), "the password was echoed: {out}");
        assert!(!out.contains("$argon2"), "a hash was printed: {out}");
    }

    // The same address in other case is a duplicate.
    let dup = user_create(&dir, "ada@EXAMPLE.com", "user", "another-long-passphrase").await;
    assert_eq!(dup.status.code(), Some(1), "{}\n{}", dup.stdout, dup.stderr);
    assert!(dup.stderr.contains("already exists"), "{}", dup.stderr);

    // Weak passwords, a bad role and a bad email are refused; so is an empty stdin.
    let args = |email: &'static str, role: &'static str| {
        vec![
            "--data-dir".to_owned(),
            data.clone(),
            "user".to_owned(),
            "create".to_owned(),
            "--email".to_owned(),
            email.to_owned(),
            "--role".to_owned(),
            role.to_owned(),
            "--password-stdin".to_owned(),
        ]
    };
    let cases: [(Vec<String>, Option<&str>, &str); 5] = [
        (
            args("bob@example.com", "user"),
            Some("tooshort\n"),
            "at least 12 characters",
        ),
        (
            args("bob@example.com", "user"),
            Some("password1234\n"),
            "too common",
        ),
        (
            args("bob@example.com", "root"),
            Some("bob-builds-bridges-42\n"),
            "--role",
        ),
        (
            args("not-an-email", "user"),
            Some("bob-builds-bridges-42\n"),
            "email",
        ),
        (args("bob@example.com", "user"), None, "password"),
    ];
    for (args, input, reason) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let done = refused_fed(&dir, &args, &[], input).await;
        assert!(done.stderr.contains(reason), "{args:?}: {}", done.stderr);
    }

    // There is no way to pass a password as an argument.
    let secret = "argument-password-123";
    let done = run(
        &dir,
        &[
            "--data-dir",
            &data,
            "user",
            "create",
            "--email",
            "carol@example.com",
            "--password",
            secret,
        ],
        &[],
    )
    .await;
    assert_eq!(
        done.status.code(),
        Some(2),
        "a usage error: {}",
        done.stderr
    );
    assert!(
        done.stderr.contains("unexpected argument '--password'"),
        "{}",
        done.stderr
    );

    let bob = user_create(&dir, "bob@example.com", "user", "bob-builds-bridges-42").await;
    assert_eq!(bob.status.code(), Some(0), "{}", bob.stderr);
    assert!(bob.stdout.contains("created user"), "{}", bob.stdout);

    // The server sees both accounts; no first-admin warning, since one exists.
    let mut server = Server::spawn(&dir, &[], &[]).await;
    assert!(
        !server
            .proc
            .logs()
            .iter()
            .any(|l| log_message(l).is_some_and(|m| m.contains("no admin"))),
        "{}",
        server.proc.describe()
    );
    server.sign_in("ada@example.com", password).await;
    let me = server.get("/api/v1/auth/me").await;
    assert_eq!(me.body["data"]["role"], "admin", "{}", me.text);
    let users = server.get("/api/v1/users").await;
    let mut roles: Vec<(String, String)> = users.body["data"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| {
            (
                u["email"].as_str().expect("email").to_lowercase(),
                u["role"].as_str().expect("role").to_owned(),
            )
        })
        .collect();
    roles.sort();
    assert_eq!(
        roles,
        [
            ("ada@example.com".to_owned(), "admin".to_owned()),
            ("bob@example.com".to_owned(), "user".to_owned())
        ],
        "{}",
        users.text
    );
    assert!(
        !users.text.contains("carol@example.com"),
        "the refused invocations created nothing: {}",
        users.text
    );
    server
        .sign_in("BOB@example.com", "bob-builds-bridges-42")
        .await;
    let forbidden = server.get("/api/v1/users").await;
    forbidden.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_starts_only_with_the_key_it_is_given() {
    let dir = TestDir::new();
    let (key, other_key) = (generate_key(&dir).await, generate_key(&dir).await);
    assert_ne!(key, other_key, "each key is new");

    let envs = [
        ("PLINTH_ENV", "production"),
        ("PLINTH_JWT_SECRET", &key),
        ("PLINTH_ENCRYPTION_KEYS", ENCRYPTION_KEYS),
    ];
    let server = Server::start_with(&dir, &[], &envs).await;
    let listening = line_with(&server.proc, "listening");
    assert_eq!(log_field(&listening, "env"), Some(&json!("Production")));
    server
        .create("resource", &json!({"name": "signed-in-production"}))
        .await;
    let token = server.tokens().access_token.clone();
    let proc = server.stop().await;
    assert!(
        !dir.data_dir().join("jwt.key").exists(),
        "production must not generate a key"
    );
    assert!(
        !proc.stdout().contains(&key) && !proc.stderr().contains(&key),
        "the key reached the logs\n{}",
        proc.describe()
    );

    // The same key from a file verifies the token issued before.
    let file = dir.write("jwt.key", &format!("{key}\n"));
    let file = file.display().to_string();
    let envs = [
        ("PLINTH_ENV", "production"),
        ("PLINTH_JWT_SECRET_FILE", &file),
        ("PLINTH_ENCRYPTION_KEYS", ENCRYPTION_KEYS),
    ];
    let server = Server::start_with(&dir, &[], &envs).await;
    let me = server
        .send(bearer_client(&token).get(server.url("/api/v1/auth/me")))
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    server.stop().await;

    // Another key refuses it.
    let envs = [
        ("PLINTH_ENV", "production"),
        ("PLINTH_JWT_SECRET", &other_key),
        ("PLINTH_ENCRYPTION_KEYS", ENCRYPTION_KEYS),
    ];
    let server = Server::start_with(&dir, &[], &envs).await;
    let me = server
        .send(bearer_client(&token).get(server.url("/api/v1/auth/me")))
        .await;
    me.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let me = server.get("/api/v1/auth/me").await;
    assert_eq!(
        me.status,
        StatusCode::OK,
        "a fresh login works: {}",
        me.text
    );
}

/// The loopback-only restriction of the unauthenticated era is gone: any address serves,
/// and credentials are required to write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_interface_serves_with_credentials_required() {
    let dir = TestDir::new();
    let server = Server::start_with(&dir, &["--listen", "0.0.0.0:0"], &[]).await;
    let listening = line_with(&server.proc, "listening");
    let addr = log_field(&listening, "addr")
        .and_then(Value::as_str)
        .expect("addr");
    assert!(addr.starts_with("0.0.0.0:"), "{listening}");
    let guest = server
        .send(
            server
                .guest()
                .post(server.url("/api/v1/resource"))
                .json(&json!({"name": "guest"})),
        )
        .await;
    guest.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let forged = server
        .send(
            bearer_client("not-a-token")
                .post(server.url("/api/v1/resource"))
                .json(&json!({"name": "forged"})),
        )
        .await;
    forged.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let made = server
        .create("resource", &json!({"name": "admin-made"}))
        .await;
    let list = server
        .send(server.guest().get(server.url("/api/v1/resource")))
        .await;
    assert_eq!(list.status, StatusCode::OK, "guests read: {}", list.text);
    let names: Vec<&Value> = list.body["data"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| &r["name"])
        .collect();
    assert_eq!(names, [&made["name"]], "only the admin's write landed");
}
