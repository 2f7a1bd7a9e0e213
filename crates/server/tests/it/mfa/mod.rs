//! TOTP second factor: enrol and confirm (recovery codes once), sign-in in two steps, the
//! replay guard, recovery codes single use, the second-step token (single use, bound to its
//! user, voided by five wrong codes, expiring), disable and new codes with the password and a
//! code, API keys and strangers refused, hostile bodies, and admins required to use it.
//! Codes are computed here with `totp-rs` from the secret the server hands out, at the time
//! of the manual clock the server goes by. The refusals (strangers, API keys, hostile
//! bodies) and the admins' requirement are in `attacks`.

mod attacks;
mod reset;

use crate::helpers::{PASSWORD, Resp, TestApp, WRONG_PASSWORD, assert_error, test_auth_config};
use plinth_server::AuthConfig;
use plinth_server::auth::ManualClock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, UNIX_EPOCH};
use totp_rs::{Algorithm, Builder, Secret};

const STEP: Duration = Duration::from_secs(30);

pub(super) struct Mfa {
    pub(super) app: TestApp,
    pub(super) clock: ManualClock,
}

impl Mfa {
    pub(super) async fn spawn(configure: impl FnOnce(&mut AuthConfig)) -> Self {
        let clock = ManualClock::new();
        let mut auth = test_auth_config();
        configure(&mut auth);
        let app = TestApp::spawn_clocked(auth, &clock).await;
        Self { app, clock }
    }

    /// The current code of `secret` by the server's clock (the next step's, moving the
    /// clock on first, so that no test reuses a step by accident).
    pub(super) fn next_code(&self, secret: &str) -> String {
        self.clock.advance(STEP);
        self.code_now(secret)
    }

    pub(super) fn code_now(&self, secret: &str) -> String {
        let bytes = Secret::try_from_base32(secret).expect("a base32 secret");
        let totp = Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(6)
            .with_step_duration(30)
            .with_secret(bytes)
            .build()
            .expect("totp");
        let now = self
            .clock
            .now()
            .duration_since(UNIX_EPOCH)
            .expect("after the epoch")
            .as_secs();
        totp.generate(now).to_string()
    }

    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        self.app.call_as(method, path, token, body.as_ref()).await
    }

    pub(super) async fn enrol(&self, token: &str) -> String {
        let r = self
            .call(Method::POST, "/api/v1/auth/mfa/totp", Some(token), None)
            .await;
        let data = r.data(StatusCode::OK);
        data["secret"].as_str().expect("a secret").to_owned()
    }

    pub(super) async fn confirm(&self, token: &str, code: &str) -> Resp {
        let body = json!({ "code": code });
        self.call(
            Method::POST,
            "/api/v1/auth/mfa/totp/confirm",
            Some(token),
            Some(body),
        )
        .await
    }

    /// Enrols and confirms: the secret and the recovery codes.
    pub(super) async fn turn_on(&self, token: &str) -> (String, Vec<String>) {
        let secret = self.enrol(token).await;
        let code = self.next_code(&secret);
        let r = self.confirm(token, &code).await;
        let codes = r.data(StatusCode::OK)["recovery_codes"]
            .as_array()
            .expect("recovery codes")
            .iter()
            .map(|c| c.as_str().expect("a code").to_owned())
            .collect();
        (secret, codes)
    }

    /// The first step: the mfa_token.
    pub(super) async fn first_step(&self, email: &str) -> String {
        let r = self.app.login(email, PASSWORD).await;
        let data = r.data(StatusCode::OK);
        assert_eq!(data["mfa_required"], json!(true), "{data}");
        assert!(data.get("access_token").is_none(), "no tokens yet: {data}");
        let token = data["mfa_token"].as_str().expect("an mfa token");
        assert!(token.starts_with("plm_") && token.len() > 40, "{token}");
        token.to_owned()
    }

    pub(super) async fn second_step(&self, mfa_token: &str, code: &str) -> Resp {
        let body = json!({ "mfa_token": mfa_token, "code": code });
        self.call(Method::POST, "/api/v1/auth/login/mfa", None, Some(body))
            .await
    }

    pub(super) async fn status(&self, token: &str) -> Value {
        let r = self
            .call(Method::GET, "/api/v1/auth/mfa", Some(token), None)
            .await;
        r.data(StatusCode::OK).clone()
    }

    pub(super) async fn actions(&self) -> Vec<(String, Value)> {
        self.app
            .state
            .store()
            .audit_list(0, 10_000)
            .await
            .expect("the audit")
            .into_iter()
            .filter(|e| e.action.starts_with("auth.mfa") || e.action.starts_with("auth.recovery"))
            .map(|e| (e.action, e.changes))
            .collect()
    }
}

pub(super) fn refused(r: &Resp) {
    assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

pub(super) fn access_of(r: &Resp) -> String {
    let data = r.data(StatusCode::OK);
    assert!(
        data["refresh_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("plr_")),
        "{data}"
    );
    data["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

#[tokio::test]
pub(super) async fn enrol_confirm_then_sign_in_takes_two_steps_and_refuses_a_replay() {
    let m = Mfa::spawn(|_| {}).await;
    let (_, token) = m.app.user("ann@example.com").await;
    assert_eq!(m.status(&token).await["totp_enabled"], json!(false));

    let r = m
        .call(Method::POST, "/api/v1/auth/mfa/totp", Some(&token), None)
        .await;
    let data = r.data(StatusCode::OK).clone();
    let secret = data["secret"].as_str().expect("secret").to_owned();
    assert_eq!(secret.len(), 32, "160 bits, base32");
    let url = data["otpauth_url"].as_str().expect("url");
    assert!(
        url.starts_with("otpauth://totp/Plinth:ann%40example.com?"),
        "{url}"
    );
    assert!(
        url.contains(&format!("secret={secret}")) && url.contains("issuer=Plinth"),
        "{url}"
    );
    // Re-posting before confirmation replaces the pending secret: the old one's code fails.
    let secret2 = m.enrol(&token).await;
    assert_ne!(secret, secret2);
    let stale = m.next_code(&secret);
    let fields = assert_error(
        &m.confirm(&token, &stale).await,
        StatusCode::BAD_REQUEST,
        "INVALID_INPUT",
    );
    assert_eq!(fields, ["code"]);
    assert_eq!(m.status(&token).await["totp_enabled"], json!(false));
    // Not yet on: a password login still gives a pair.
    access_of(&m.app.login("ann@example.com", PASSWORD).await);

    let code = m.code_now(&secret2);
    let r = m.confirm(&token, &code).await;
    let codes = r.data(StatusCode::OK)["recovery_codes"]
        .as_array()
        .expect("codes")
        .clone();
    assert_eq!(codes.len(), 10);
    let mut distinct: Vec<_> = codes
        .iter()
        .map(|c| c.as_str().expect("str").to_owned())
        .collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 10);
    assert!(
        distinct
            .iter()
            .all(|c| c.len() == 19 && c.split('-').count() == 4),
        "{distinct:?}"
    );
    let status = m.status(&token).await;
    assert_eq!(status["totp_enabled"], json!(true));
    assert_eq!(status["recovery_codes_left"], json!(10));
    // On: enrolling again, or confirming again, is a conflict.
    let r = m
        .call(Method::POST, "/api/v1/auth/mfa/totp", Some(&token), None)
        .await;
    assert_error(&r, StatusCode::CONFLICT, "CONFLICT");
    assert_error(
        &m.confirm(&token, &code).await,
        StatusCode::CONFLICT,
        "CONFLICT",
    );

    // The confirming code's step is spent: the same code cannot finish a sign-in.
    let mfa_token = m.first_step("ann@example.com").await;
    refused(&m.second_step(&mfa_token, &code).await);
    let fresh = m.next_code(&secret2);
    let access = access_of(&m.second_step(&mfa_token, &fresh).await);
    m.app.me(Some(&access)).await.data(StatusCode::OK);
    // The same code again, on a new sign-in in the same step: a replay.
    let again = m.first_step("ann@example.com").await;
    refused(&m.second_step(&again, &fresh).await);
    // A step later that code is still within the skew, and still spent.
    m.clock.advance(STEP);
    refused(&m.second_step(&again, &fresh).await);
    let next = m.code_now(&secret2);
    access_of(&m.second_step(&again, &next).await);

    let actions: Vec<_> = m.actions().await;
    let names: Vec<&str> = actions.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        names,
        [
            "auth.mfa_enrol",
            "auth.mfa_enrol",
            "auth.mfa_failed",
            "auth.mfa_enabled",
            "auth.mfa_failed",
            "auth.mfa_failed",
            "auth.mfa_failed"
        ]
    );
    assert_eq!(actions[4].1, json!({"reason": "replayed"}));
    let audit = format!("{actions:?}");
    assert!(
        !audit.contains(&secret2) && !audit.contains(&fresh),
        "{audit}"
    );
}

#[tokio::test]
async fn a_recovery_code_signs_in_once() {
    let m = Mfa::spawn(|_| {}).await;
    let (_, token) = m.app.user("bo@example.com").await;
    let (_, codes) = m.turn_on(&token).await;
    // Any case, without dashes, is the same code.
    let sloppy = codes[3].replace('-', "").to_lowercase();
    let t = m.first_step("bo@example.com").await;
    let access = access_of(&m.second_step(&t, &sloppy).await);
    m.app.me(Some(&access)).await.data(StatusCode::OK);
    let t = m.first_step("bo@example.com").await;
    refused(&m.second_step(&t, &codes[3]).await);
    access_of(&m.second_step(&t, &codes[4]).await);
    assert_eq!(m.status(&token).await["recovery_codes_left"], json!(8));
    let used = m
        .actions()
        .await
        .iter()
        .filter(|(a, _)| a == "auth.recovery_code_used")
        .count();
    assert_eq!(used, 2);
}

#[tokio::test]
async fn five_wrong_codes_void_the_sign_in_token() {
    // Limits high enough that only the token's own count applies.
    let m = Mfa::spawn(|c| {
        c.login_per_account_address = 100;
        c.login_per_address = 100;
    })
    .await;
    let (_, token) = m.app.user("cy@example.com").await;
    let (secret, codes) = m.turn_on(&token).await;
    let t = m.first_step("cy@example.com").await;
    for wrong in ["000000", "12345", "abcd", "0000-0000-0000-0000", "999999"] {
        refused(&m.second_step(&t, wrong).await);
    }
    let code = m.next_code(&secret);
    refused(&m.second_step(&t, &code).await);
    refused(&m.second_step(&t, &codes[0]).await);
    // The code and the recovery code were not spent by the void token's refusals.
    let t = m.first_step("cy@example.com").await;
    access_of(&m.second_step(&t, &code).await);
    assert_eq!(m.status(&token).await["recovery_codes_left"], json!(10));
}

#[tokio::test]
async fn wrong_codes_count_against_the_login_limits() {
    let m = Mfa::spawn(|_| {}).await;
    let (_, token) = m.app.user("dee@example.com").await;
    let (secret, _) = m.turn_on(&token).await;
    // Five attempts per account and address: the password, then four wrong codes…
    let t = m.first_step("dee@example.com").await;
    for _ in 0..4 {
        refused(&m.second_step(&t, "000000").await);
    }
    // …and the right code is throttled, as a sixth login attempt would be.
    let code = m.next_code(&secret);
    let r = m.second_step(&t, &code).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    assert!(r.header("retry-after").is_some());
    m.clock.advance(Duration::from_secs(61));
    let code = m.next_code(&secret);
    access_of(&m.second_step(&t, &code).await);
}

#[tokio::test]
async fn the_sign_in_token_is_single_use_bound_to_its_user_and_expires() {
    let m = Mfa::spawn(|_| {}).await;
    let (_, ann) = m.app.user("ann@example.com").await;
    let (_, bob) = m.app.user("bob@example.com").await;
    let (ann_secret, _) = m.turn_on(&ann).await;
    let (bob_secret, _) = m.turn_on(&bob).await;
    // Used once, never again.
    let t = m.first_step("ann@example.com").await;
    access_of(&m.second_step(&t, &m.next_code(&ann_secret)).await);
    refused(&m.second_step(&t, &m.next_code(&ann_secret)).await);
    // Bob's token with Ann's code: refused (the code is checked against Bob's secret).
    let bobs = m.first_step("bob@example.com").await;
    refused(&m.second_step(&bobs, &m.next_code(&ann_secret)).await);
    access_of(&m.second_step(&bobs, &m.code_now(&bob_secret)).await);
    // Unknown, forged and refresh tokens.
    for forged in ["plm_nope", "plr_abc", "", "x"] {
        refused(&m.second_step(forged, &m.code_now(&ann_secret)).await);
    }
    // Expired after five minutes.
    let t = m.first_step("ann@example.com").await;
    m.clock.advance(Duration::from_secs(5 * 60 + 1));
    refused(&m.second_step(&t, &m.code_now(&ann_secret)).await);
    // An mfa token is no Bearer credential.
    let t = m.first_step("ann@example.com").await;
    refused(&m.app.me(Some(&t)).await);
}

#[tokio::test]
async fn disable_and_new_codes_need_the_password_and_a_code() {
    let m = Mfa::spawn(|c| c.login_per_account_address = 100).await;
    let (_, token) = m.app.user("eve@example.com").await;
    let (secret, codes) = m.turn_on(&token).await;
    let disable = |password: &str, code: &str| json!({ "password": password, "code": code });
    let path = "/api/v1/auth/mfa/totp";
    let r = m
        .call(
            Method::DELETE,
            path,
            Some(&token),
            Some(disable(WRONG_PASSWORD, &m.next_code(&secret))),
        )
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["password"]
    );
    let r = m
        .call(
            Method::DELETE,
            path,
            Some(&token),
            Some(disable(PASSWORD, "123456")),
        )
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["code"]
    );
    let r = m
        .call(
            Method::DELETE,
            path,
            Some(&token),
            Some(json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["code"]
    );
    assert_eq!(m.status(&token).await["totp_enabled"], json!(true));

    // New recovery codes: the old ones are void.
    let r = m
        .call(
            Method::POST,
            "/api/v1/auth/mfa/recovery-codes",
            Some(&token),
            Some(disable(PASSWORD, &codes[0])),
        )
        .await;
    let fresh = r.data(StatusCode::OK)["recovery_codes"]
        .as_array()
        .expect("codes")
        .clone();
    assert_eq!(fresh.len(), 10);
    let t = m.first_step("eve@example.com").await;
    refused(&m.second_step(&t, &codes[1]).await);
    access_of(&m.second_step(&t, fresh[0].as_str().expect("code")).await);

    let r = m
        .call(
            Method::DELETE,
            path,
            Some(&token),
            Some(disable(PASSWORD, &m.next_code(&secret))),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let status = m.status(&token).await;
    assert_eq!(status["totp_enabled"], json!(false));
    assert_eq!(status["recovery_codes_left"], json!(0));
    // Off: a password signs in alone; disabling again is a conflict.
    access_of(&m.app.login("eve@example.com", PASSWORD).await);
    let r = m
        .call(
            Method::DELETE,
            path,
            Some(&token),
            Some(disable(PASSWORD, "123456")),
        )
        .await;
    assert_error(&r, StatusCode::CONFLICT, "CONFLICT");
    let names: Vec<String> = m.actions().await.into_iter().map(|(a, _)| a).collect();
    assert!(names.contains(&"auth.mfa_disabled".to_owned()), "{names:?}");
    assert!(
        names.contains(&"auth.recovery_codes_replaced".to_owned()),
        "{names:?}"
    );
}
