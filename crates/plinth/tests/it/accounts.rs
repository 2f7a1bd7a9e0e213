//! Accounts at the process level: the first admin (from the environment or
//! `plinth user create`), signing keys (`plinth keys generate`, production), and secret
//! hygiene of a whole session in the logs and the responses.

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, Finished, Proc, Reply, Server, TestDir, Tokens, bearer_client,
    log_field, log_message, refused, refused_fed, run, run_fed, run_ok,
};
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Exactly the fields `/auth/me` and `/users` may show of an account.
const USER_FIELDS: [&str; 6] = ["created_at", "email", "id", "role", "updated_at", "version"];

fn keys_of(v: &Value) -> Vec<&str> {
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
fn line_with(proc: &Proc, message: &str) -> Value {
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
    let warning = server
        .proc
        .logs()
        .into_iter()
        .find(|l| l["level"] == "WARN")
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

    let envs = [("PLINTH_ENV", "production"), ("PLINTH_JWT_SECRET", &key)];
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

/// Every secret of a session and what each answer may show.
#[derive(Debug, Default)]
struct Ledger {
    /// (label, value) of every secret seen.
    secrets: Vec<(String, String)>,
    /// (label, body, the secrets this answer is allowed to carry).
    replies: Vec<(String, String, Vec<String>)>,
}

impl Ledger {
    fn secret(&mut self, label: &str, value: &str) {
        assert!(value.len() >= 12, "{label} is not a secret: {value:?}");
        self.secrets.push((label.to_owned(), value.to_owned()));
    }

    fn tokens(&mut self, label: &str, tokens: &Tokens) {
        self.secret(&format!("{label} access token"), &tokens.access_token);
        self.secret(&format!("{label} refresh token"), &tokens.refresh_token);
    }

    /// Records an answer that may carry only `allowed`.
    fn reply(&mut self, label: &str, r: &Reply, allowed: &[&str]) {
        self.replies.push((
            label.to_owned(),
            r.text.clone(),
            allowed.iter().map(|s| (*s).to_owned()).collect(),
        ));
    }

    /// No answer carries a secret it may not, nor a password hash.
    fn check_replies(&self) {
        for (label, body, allowed) in &self.replies {
            assert!(!body.contains("$argon2"), "{label} shows a hash: {body}");
            assert!(
                !body.contains("password_hash"),
                "{label} shows a hash field: {body}"
            );
            for (what, secret) in &self.secrets {
                assert!(
                    allowed.contains(secret) || !body.contains(secret.as_str()),
                    "{label} shows the {what}: {body}"
                );
            }
        }
    }

    /// No line the process wrote carries a secret, a hash or any of `also`.
    fn check_output(&self, proc: &Proc, also: &[(&str, &str)]) {
        let lines = proc.stdout_lines().into_iter().chain(proc.stderr_lines());
        for line in lines {
            assert!(!line.contains("$argon2"), "a hash in the logs: {line}");
            let named = self
                .secrets
                .iter()
                .map(|(l, s)| (l.as_str(), s.as_str()))
                .chain(also.iter().copied());
            for (what, secret) in named {
                assert!(!line.contains(secret), "the {what} is in the logs: {line}");
            }
        }
    }
}

/// A whole session: login, refresh (and a replayed refresh token), a user made by the
/// admin, an API key made and used, a password change, a failed login and a logout.
/// Afterwards no log line holds a password, a token, a key or a hash, and no answer holds
/// one except where the contract returns it.
async fn session(level: &str) {
    let dir = TestDir::new();
    let server = Server::start_with(&dir, &[], &[("LOG_LEVEL", level)]).await;
    let (guest, url) = (server.guest(), |p: &str| server.url(p));
    let mut ledger = Ledger::default();
    ledger.secret("admin password", ADMIN_PASSWORD);
    ledger.tokens("harness", server.tokens());

    let login = server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let first = Tokens::from_reply(&login);
    ledger.tokens("first", &first);
    ledger.reply(
        "login",
        &login,
        &[&first.access_token, &first.refresh_token],
    );

    let refresh = |token: &str| {
        guest
            .post(url("/api/v1/auth/refresh"))
            .json(&json!({ "refresh_token": token }))
    };
    let refreshed = server.send(refresh(&first.refresh_token)).await;
    let second = Tokens::from_reply(&refreshed);
    ledger.tokens("refreshed", &second);
    ledger.reply(
        "refresh",
        &refreshed,
        &[&second.access_token, &second.refresh_token],
    );
    assert_ne!(second.refresh_token, first.refresh_token, "refresh rotates");
    // The spent token again: refused, and its family (the new token too) revoked.
    let replayed = server.send(refresh(&first.refresh_token)).await;
    replayed.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    ledger.reply("replayed refresh", &replayed, &[]);
    let revoked = server.send(refresh(&second.refresh_token)).await;
    revoked.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    ledger.reply("refresh of a revoked family", &revoked, &[]);

    let admin = bearer_client(&second.access_token);
    let bob_password = "bob-builds-bridges-42";
    ledger.secret("bob's password", bob_password);
    let bob = server
        .send(admin.post(url("/api/v1/users")).json(&json!({
            "email": "bob@plinth.test", "password": bob_password, "role": "user"
        })))
        .await;
    assert_eq!(bob.status, StatusCode::CREATED, "{}", bob.text);
    assert_eq!(keys_of(&bob.body["data"]), USER_FIELDS, "{}", bob.text);
    ledger.reply("user create", &bob, &[]);
    let bob_id = bob.body["data"]["id"].as_str().expect("id").to_owned();

    let made = server
        .send(
            admin
                .post(url("/api/v1/auth/api-keys"))
                .json(&json!({"name": "ci"})),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    let key = made.body["data"]["key"]
        .as_str()
        .expect("the key, shown once")
        .to_owned();
    let prefix = made.body["data"]["prefix"]
        .as_str()
        .expect("prefix")
        .to_owned();
    assert!(key.starts_with(&prefix), "{key} / {prefix}");
    assert!(key.len() > prefix.len() + 16, "{key}");
    ledger.secret("API key", &key);
    ledger.reply("API key create", &made, &[&key]);
    let key_id = made.body["data"]["id"].as_str().expect("id").to_owned();
    let listed = server.send(admin.get(url("/api/v1/auth/api-keys"))).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert!(listed.text.contains(&prefix), "{}", listed.text);
    ledger.reply("API key list", &listed, &[]);
    let one = server
        .send(admin.get(url(&format!("/api/v1/auth/api-keys/{key_id}"))))
        .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.text);
    ledger.reply("API key read", &one, &[]);

    // The key at work, both ways it may be sent.
    let by_key = server
        .send(
            bearer_client(&key)
                .post(url("/api/v1/resource"))
                .json(&json!({"name": "made-by-key"})),
        )
        .await;
    assert_eq!(by_key.status, StatusCode::CREATED, "{}", by_key.text);
    ledger.reply("create with the key", &by_key, &[]);
    let record = by_key.body["data"]["id"].as_str().expect("id").to_owned();
    let read = server
        .send(
            guest
                .get(url(&format!("/api/v1/resource/{record}")))
                .header("x-api-key", &key),
        )
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    ledger.reply("read with X-API-Key", &read, &[]);

    // A password change ends the sessions made with the old one.
    let third = Tokens::from_reply(&server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await);
    ledger.tokens("third", &third);
    let new_password = "a-brand-new-admin-passphrase";
    ledger.secret("new admin password", new_password);
    let changed = server
        .send(admin.patch(url("/api/v1/auth/me")).json(&json!({
            "current_password": ADMIN_PASSWORD, "new_password": new_password
        })))
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(
        keys_of(&changed.body["data"]),
        USER_FIELDS,
        "{}",
        changed.text
    );
    ledger.reply("password change", &changed, &[]);
    let stale = server.send(refresh(&third.refresh_token)).await;
    stale.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    ledger.reply("refresh after a password change", &stale, &[]);
    let old = server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    old.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    ledger.reply("login with the old password", &old, &[]);
    let wrong_password = "a-guess-that-is-wrong";
    ledger.secret("wrong password", wrong_password);
    let wrong = server.login(ADMIN_EMAIL, wrong_password).await;
    wrong.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    ledger.reply("failed login", &wrong, &[]);
    let login = server.login(ADMIN_EMAIL, new_password).await;
    let fourth = Tokens::from_reply(&login);
    ledger.tokens("fourth", &fourth);
    ledger.reply(
        "login with the new password",
        &login,
        &[&fourth.access_token, &fourth.refresh_token],
    );

    let admin = bearer_client(&fourth.access_token);
    for path in [
        "/api/v1/auth/me".to_owned(),
        "/api/v1/users".to_owned(),
        format!("/api/v1/users/{bob_id}"),
    ] {
        let r = server.send(admin.get(url(&path))).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        ledger.reply(&path, &r, &[]);
    }

    let logout = server
        .send(
            guest
                .post(url("/api/v1/auth/logout"))
                .json(&json!({"refresh_token": fourth.refresh_token})),
        )
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT, "{}", logout.text);
    let after = server.send(refresh(&fourth.refresh_token)).await;
    after.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    ledger.reply("refresh after logout", &after, &[]);
    let revoke = server
        .send(admin.delete(url(&format!("/api/v1/auth/api-keys/{key_id}"))))
        .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT, "{}", revoke.text);
    let refused_key = server
        .send(bearer_client(&key).get(url("/api/v1/auth/me")))
        .await;
    refused_key.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    ledger.reply("revoked key", &refused_key, &[]);

    let proc = server.stop().await;
    ledger.check_replies();
    let signing_key = std::fs::read_to_string(dir.data_dir().join("jwt.key"))
        .expect("the development signing key");
    ledger.check_output(
        &proc,
        &[
            ("signing key", signing_key.trim()),
            ("admin email", ADMIN_EMAIL),
            ("bob's email", "bob@plinth.test"),
        ],
    );
    // The capture saw the session: the security events are there, naming the key by prefix.
    let made = line_with(&proc, "API key created");
    assert_eq!(log_field(&made, "key"), Some(&json!(prefix)), "{made}");
    for event in [
        "login",
        "login_failed",
        "refresh_token_reuse",
        "user_created",
        "password_changed",
        "api_key_revoked",
    ] {
        assert!(
            proc.logs()
                .iter()
                .any(|l| log_field(l, "event") == Some(&json!(event))),
            "no {event} event at LOG_LEVEL={level}\n{}",
            proc.describe()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_logs_or_other_answers() {
    session("info").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_logs_at_trace() {
    session("trace").await;
}
