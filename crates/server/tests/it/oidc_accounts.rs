//! OpenID Connect sign-ins meeting the rest of the accounts work: a TOTP user signing in
//! through a provider gets the second step (and completes it at `/auth/login/mfa`), and the
//! callback's OpenAPI answer says so.

use crate::helpers::{PASSWORD, Resp, Tokens, make_user};
use crate::oidc::flow;
use plinth_core::Role;
use plinth_server::auth::Signup;
use plinth_testkit::oidc::NextLogin;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};
use totp_rs::{Algorithm, Builder, Secret};

/// The code of `secret` now, by the wall clock the server goes by.
fn code_now(secret: &str) -> String {
    let bytes = Secret::try_from_base32(secret).expect("a base32 secret");
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(bytes)
        .build()
        .expect("totp");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs();
    totp.generate(now).to_string()
}

fn data(r: &Resp) -> Value {
    r.data(StatusCode::OK).clone()
}

#[tokio::test]
async fn a_totp_user_signing_in_through_a_provider_gets_the_second_step() {
    let f = flow(Signup::Off).await;
    let (ada, _) = make_user(&f.app.state, "ada@example.com", Role::User).await;
    let tokens = f.app.login_ok("ada@example.com", PASSWORD).await;
    let enrol = f
        .app
        .call_as(
            Method::POST,
            "/api/v1/auth/mfa/totp",
            Some(&tokens.access),
            None,
        )
        .await;
    let secret = data(&enrol)["secret"]
        .as_str()
        .expect("a secret")
        .to_owned();
    let body = json!({ "code": code_now(&secret) });
    let confirm = f
        .app
        .call_as(
            Method::POST,
            "/api/v1/auth/mfa/totp/confirm",
            Some(&tokens.access),
            Some(&body),
        )
        .await;
    let codes = data(&confirm)["recovery_codes"].clone();
    let recovery = codes[0].as_str().expect("a recovery code").to_owned();

    let r = f
        .sign_in(NextLogin::verified("sub-ada", "ada@example.com"))
        .await;
    let challenge = data(&r);
    assert_eq!(challenge["mfa_required"], json!(true), "{challenge}");
    assert!(
        challenge.get("access_token").is_none() && challenge.get("refresh_token").is_none(),
        "no tokens before the second factor: {challenge}"
    );
    let mfa_token = challenge["mfa_token"].as_str().expect("an mfa token");
    // A wrong code does not complete it.
    let body = json!({ "mfa_token": mfa_token, "code": "000000x" });
    let wrong = f
        .app
        .call_as(Method::POST, "/api/v1/auth/login/mfa", None, Some(&body))
        .await;
    assert_ne!(wrong.status, StatusCode::OK, "{}", wrong.body);
    // The recovery code does (the TOTP step of now was spent by the confirmation).
    let body = json!({ "mfa_token": mfa_token, "code": recovery });
    let done = f
        .app
        .call_as(Method::POST, "/api/v1/auth/login/mfa", None, Some(&body))
        .await;
    let pair = Tokens::from_resp(&done);
    let me = f.app.me(Some(&pair.access)).await;
    assert_eq!(data(&me)["id"], ada.id.to_string());
}

#[tokio::test]
async fn the_callback_is_documented_with_the_second_step_and_the_verified_address_refusal() {
    let f = flow(Signup::Off).await;
    let r = f
        .app
        .send(f.app.request_as(Method::GET, "/api/v1/openapi.json", None))
        .await;
    let doc = &r.body;
    let of = |path: &str| doc["paths"][path]["get"]["responses"].clone();
    let callback = of("/api/v1/auth/oidc/{provider}/callback");
    let login = doc["paths"]["/api/v1/auth/login"]["post"]["responses"].clone();
    assert_eq!(
        callback["200"]["content"], login["200"]["content"],
        "the callback answers what a password login answers"
    );
    assert!(
        callback["200"].to_string().contains("SignIn"),
        "{}",
        callback["200"]
    );
    let forbidden = callback["403"]["description"].as_str().unwrap_or_default();
    assert!(forbidden.contains("verified first"), "{forbidden}");
}

/// Anyone may sign up with someone else's address (it stays unverified); when its real
/// owner then signs in through a provider that proves the address, the account is linked,
/// but nothing of whoever set its password keeps working: not the password, not a session,
/// not an API key.
#[tokio::test]
async fn linking_an_unverified_account_ends_the_squatters_password_sessions_and_keys() {
    let f = flow(Signup::Open).await;
    let squatter_password = "the squatter's own long password";
    let body = json!({ "email": "victim@example.com", "password": squatter_password });
    let r = f
        .app
        .call_as(Method::POST, "/api/v1/auth/signup", None, Some(&body))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let squat = f
        .app
        .login_ok("victim@example.com", squatter_password)
        .await;
    let key = f.app.create_key(&squat.access, &json!({"name": "k"})).await;
    let key = key.data(StatusCode::CREATED)["key"]
        .as_str()
        .expect("a key")
        .to_owned();
    let with_key = || {
        f.app.send(
            f.app
                .request_as(Method::GET, "/api/v1/auth/me", None)
                .header("x-api-key", &key),
        )
    };
    assert_eq!(with_key().await.status, StatusCode::OK);

    let r = f
        .sign_in(NextLogin::verified("sub-victim", "victim@example.com"))
        .await;
    let victim = Tokens::from_resp(&r);
    let me = data(&f.app.me(Some(&victim.access)).await);
    assert_eq!(me["email"], "victim@example.com");
    assert_eq!(me["email_verified"], true, "the provider proved it: {me}");

    let login = f.app.login("victim@example.com", squatter_password).await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED, "{}", login.body);
    let refresh = f.app.refresh(&squat.refresh).await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED, "{}", refresh.body);
    assert_eq!(with_key().await.status, StatusCode::UNAUTHORIZED);
    let actions = f.audit_actions().await;
    for action in [
        "auth.oidc_claim",
        "auth.oidc_link",
        "account.email_verified",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
    // The owner's own session is untouched by it, and the next sign-in changes nothing.
    f.app.refresh(&victim.refresh).await.data(StatusCode::OK);
    let again = f
        .sign_in(NextLogin::verified("sub-victim", "victim@example.com"))
        .await;
    Tokens::from_resp(&again);
    let claims = f.audit_actions().await;
    assert_eq!(
        claims.iter().filter(|a| *a == "auth.oidc_claim").count(),
        1,
        "{claims:?}"
    );
}
