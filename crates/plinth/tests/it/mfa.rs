//! TOTP in a real process: the secret, the recovery codes, the second-step token and the
//! codes themselves never reach a log line at `debug`, nor any answer but the one that hands
//! each out, and the flow's security events are there; a sealed TOTP secret keeps a key in
//! use until `plinth keys rotate` re-seals it, and still works after the old key is retired;
//! it moves by `plinth export`/`import` to a database with other keys.

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, Reply, Server, TestDir, Tokens, bearer_client, log_field, refused,
    run_ok,
};
use reqwest::StatusCode;
use serde_json::json;
use std::time::{SystemTime, UNIX_EPOCH};
use totp_rs::{Algorithm, Builder, Secret};

/// The code of `secret` `steps` steps from now.
fn code(secret: &str, steps: u64) -> String {
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_secret(Secret::try_from_base32(secret).expect("base32"))
        .build()
        .expect("totp");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs();
    totp.generate(now + 30 * steps).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_secrets_and_codes_never_reach_the_logs() {
    let dir = TestDir::new();
    let server = Server::start_with(&dir, &[], &[("LOG_LEVEL", "debug")]).await;
    let (guest, url) = (server.guest(), |p: &str| server.url(p));
    let session = Tokens::from_reply(&server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await);
    let admin = bearer_client(&session.access_token);
    // (what, value) of every secret; (label, answer, the secrets it may show) of every answer.
    let mut secrets: Vec<(String, String)> = Vec::new();
    let mut replies: Vec<(&str, Reply, Vec<String>)> = Vec::new();

    let enrol = server.send(admin.post(url("/api/v1/auth/mfa/totp"))).await;
    assert_eq!(enrol.status, StatusCode::OK, "{}", enrol.text);
    let secret = enrol.body["data"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    secrets.push(("TOTP secret".into(), secret.clone()));
    let confirm_code = code(&secret, 0);
    let confirm = server
        .send(
            admin
                .post(url("/api/v1/auth/mfa/totp/confirm"))
                .json(&json!({"code": confirm_code})),
        )
        .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.text);
    let recovery: Vec<String> = confirm.body["data"]["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect();
    for (i, c) in recovery.iter().enumerate() {
        secrets.push((format!("recovery code {i}"), c.clone()));
        secrets.push((format!("recovery code {i}, compact"), c.replace('-', "")));
    }
    replies.push(("enrol", enrol, vec![secret.clone()]));
    replies.push(("confirm", confirm, recovery.clone()));

    let second = |token: &str, code: &str| {
        guest
            .post(url("/api/v1/auth/login/mfa"))
            .json(&json!({"mfa_token": token, "code": code}))
    };
    let first = server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let mfa_token = first.body["data"]["mfa_token"]
        .as_str()
        .expect("mfa token")
        .to_owned();
    secrets.push(("mfa token".into(), mfa_token.clone()));
    replies.push(("first step", first, vec![mfa_token.clone()]));
    let wrong = server.send(second(&mfa_token, "000000")).await;
    wrong.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    replies.push(("wrong code", wrong, vec![]));
    let login_code = code(&secret, 1);
    let done = server.send(second(&mfa_token, &login_code)).await;
    let pair = Tokens::from_reply(&done);
    replies.push(("second step", done, vec![]));

    let first = server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let token2 = first.body["data"]["mfa_token"]
        .as_str()
        .expect("mfa token")
        .to_owned();
    secrets.push(("second mfa token".into(), token2.clone()));
    replies.push(("first step again", first, vec![token2.clone()]));
    let by_recovery = server.send(second(&token2, &recovery[0])).await;
    Tokens::from_reply(&by_recovery);
    replies.push(("recovery sign-in", by_recovery, vec![]));

    let disable = server
        .send(
            bearer_client(&pair.access_token)
                .delete(url("/api/v1/auth/mfa/totp"))
                .json(&json!({"password": ADMIN_PASSWORD, "code": recovery[1]})),
        )
        .await;
    assert_eq!(disable.status, StatusCode::NO_CONTENT, "{}", disable.text);

    let proc = server.stop().await;
    for (label, reply, allowed) in &replies {
        for (what, value) in &secrets {
            assert!(
                allowed.contains(value) || !reply.text.contains(value.as_str()),
                "the {label} answer shows the {what}: {}",
                reply.text
            );
        }
    }
    // Six digits are too short to look for everywhere: the codes are looked for as the
    // values of log fields.
    let codes = [confirm_code.as_str(), login_code.as_str(), "000000"];
    let lines = proc.stdout_lines().into_iter().chain(proc.stderr_lines());
    for line in lines {
        for (what, value) in &secrets {
            assert!(
                !line.contains(value.as_str()),
                "the {what} is in the logs: {line}"
            );
        }
        for c in codes {
            assert!(
                !line.contains(&format!("\"{c}\"")),
                "a TOTP code is in the logs: {line}"
            );
        }
    }
    for event in [
        "mfa_enrol",
        "mfa_enabled",
        "mfa_required",
        "mfa_failed",
        "recovery_code_used",
        "mfa_disabled",
    ] {
        assert!(
            proc.logs()
                .iter()
                .any(|l| log_field(l, "event") == Some(&json!(event))),
            "no {event} event\n{}",
            proc.describe()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_totp_secret_is_resealed_by_a_rotation_and_outlives_the_old_key() {
    let dir = TestDir::new();
    let data = dir.data_arg();
    let server = Server::start(&dir).await;
    let admin = bearer_client(&server.tokens().access_token);
    let (email, password) = ("tess@plinth.test", "tess-has-two-factors-7");
    let made = server
        .send(admin.post(server.url("/api/v1/users")).json(&json!({
            "email": email, "password": password, "role": "user"
        })))
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    let tess =
        bearer_client(&Tokens::from_reply(&server.login(email, password).await).access_token);
    let enrol = server
        .send(tess.post(server.url("/api/v1/auth/mfa/totp")))
        .await;
    let secret = enrol.body["data"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let confirm = server
        .send(
            tess.post(server.url("/api/v1/auth/mfa/totp/confirm"))
                .json(&json!({"code": code(&secret, 0)})),
        )
        .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.text);
    server.stop().await;

    // A second key: k1 no longer seals, and retiring it is refused while the secret uses it.
    let keys = dir.data_dir().join("encryption.keys");
    let text = std::fs::read_to_string(&keys).expect("keys");
    std::fs::write(
        &keys,
        format!("{text}k2=QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=\n"),
    )
    .expect("write keys");
    let done = refused(&dir, &["keys", "retire", "k1", "--data-dir", &data], &[]).await;
    assert!(
        done.stderr.contains("_plinth_totp.secret"),
        "{}",
        done.stderr
    );
    run_ok(
        &dir,
        &["keys", "rotate", "--reseal-only", "--data-dir", &data],
        &[],
    )
    .await;
    let done = run_ok(&dir, &["keys", "retire", "k1", "--data-dir", &data], &[]).await;
    assert!(done.stdout.contains("removed it"), "{}", done.stdout);

    // Without k1, Tess signs in with a code from the same secret.
    let server = Server::start(&dir).await;
    let first = server.login(email, password).await;
    let token = first.body["data"]["mfa_token"]
        .as_str()
        .expect("mfa token")
        .to_owned();
    let done = server
        .send(
            server
                .guest()
                .post(server.url("/api/v1/auth/login/mfa"))
                .json(&json!({"mfa_token": token, "code": code(&secret, 1)})),
        )
        .await;
    Tokens::from_reply(&done);
    server.stop().await;
}

/// A user with TOTP on moves by `plinth export` and `plinth import` to a database with
/// other keys and signs in there with a code of the same secret; a code of a step spent on
/// the source is refused there, and the account keeps its recovery codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_factor_survives_export_and_import_under_other_keys() {
    let source = TestDir::sqlite();
    let server = Server::start(&source).await;
    let admin = bearer_client(&server.tokens().access_token);
    let (email, password) = ("tess@plinth.test", "tess-has-two-factors-7");
    let made = server
        .send(admin.post(server.url("/api/v1/users")).json(&json!({
            "email": email, "password": password, "role": "user"
        })))
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    let tess =
        bearer_client(&Tokens::from_reply(&server.login(email, password).await).access_token);
    let enrol = server
        .send(tess.post(server.url("/api/v1/auth/mfa/totp")))
        .await;
    let secret = enrol.body["data"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    // Replayed on the target below: the same code, whatever step the clock has reached by
    // then (a code computed again there could belong to a later, unspent step).
    let confirmed = code(&secret, 0);
    let confirm = server
        .send(
            tess.post(server.url("/api/v1/auth/mfa/totp/confirm"))
                .json(&json!({"code": confirmed})),
        )
        .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.text);
    server.stop().await;

    let dump = source.path().join("dump.jsonl");
    let (data, dump_arg) = (source.data_arg(), dump.display().to_string());
    let done = run_ok(
        &source,
        &["export", "--data-dir", &data, "--output", &dump_arg],
        &[],
    )
    .await;
    assert!(
        done.stderr.contains("1 TOTP second factor(s)"),
        "{}",
        done.stderr
    );
    assert!(!done.stderr.contains("WARNING"), "{}", done.stderr);
    let target = TestDir::new();
    let (target_data, input) = (target.data_arg(), dump_arg.clone());
    let done = run_ok(
        &target,
        &["import", "--data-dir", &target_data, "--input", &input],
        &[],
    )
    .await;
    assert!(
        done.stderr.contains("1 TOTP second factor(s)"),
        "{}",
        done.stderr
    );
    let keys = |d: &TestDir| {
        std::fs::read_to_string(d.data_dir().join("encryption.keys")).expect("the keys file")
    };
    assert_ne!(keys(&source), keys(&target), "the target has other keys");

    let server = Server::start(&target).await;
    let first = server.login(email, password).await;
    let token = first.body["data"]["mfa_token"]
        .as_str()
        .expect("TOTP still on: a second step")
        .to_owned();
    let second = |c: String| {
        server
            .guest()
            .post(server.url("/api/v1/auth/login/mfa"))
            .json(&json!({"mfa_token": token, "code": c}))
    };
    // The confirming code's step was spent on the source.
    let replay = server.send(second(confirmed.clone())).await;
    assert_ne!(replay.status, StatusCode::OK, "{}", replay.text);
    let done = server.send(second(code(&secret, 1))).await;
    let tess = bearer_client(&Tokens::from_reply(&done).access_token);
    let status = server.send(tess.get(server.url("/api/v1/auth/mfa"))).await;
    assert_eq!(
        status.body["data"]["recovery_codes_left"], 10,
        "{}",
        status.text
    );
    server.stop().await;
}
