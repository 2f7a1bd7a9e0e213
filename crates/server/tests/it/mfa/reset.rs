//! A password reset of a TOTP user: the second step begun with the old password is void
//! (it proved a password that no longer holds), and the new password still needs the code.

use super::{Mfa, access_of, refused};
use crate::helpers::NEW_PASSWORD;
use crate::signup::{clocked_mail_app, post, token_to};
use plinth_server::auth::ManualClock;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_reset_voids_pending_second_steps_and_the_second_factor_stays_required() {
    let clock = ManualClock::new();
    let (app, sink) = clocked_mail_app(&clock).await;
    let m = Mfa { app, clock };
    let (_, token) = m.app.user("ada@example.com").await;
    let (secret, _) = m.turn_on(&token).await;
    // Someone with the old password passed the first step and waits for a code.
    let pending = m.first_step("ada@example.com").await;

    let r = post(
        &m.app,
        "/api/v1/auth/password-reset",
        &json!({"email": "ada@example.com"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let reset = token_to(&sink, "ada@example.com").await;
    let body = json!({"token": reset, "password": NEW_PASSWORD});
    let r = post(&m.app, "/api/v1/auth/password-reset/confirm", &body).await;
    r.data(StatusCode::OK);

    refused(&m.second_step(&pending, &m.next_code(&secret)).await);

    let r = m.app.login("ada@example.com", NEW_PASSWORD).await;
    let data = r.data(StatusCode::OK);
    assert_eq!(data["mfa_required"], json!(true), "{data}");
    assert!(data.get("access_token").is_none(), "{data}");
    let mfa_token = data["mfa_token"].as_str().expect("an mfa token").to_owned();
    let access = access_of(&m.second_step(&mfa_token, &m.next_code(&secret)).await);
    assert_eq!(m.status(&access).await["totp_enabled"], json!(true));
}
