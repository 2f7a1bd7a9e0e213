//! The auth side of the harness: calls with any credential (or none), the `/auth/*`
//! endpoints, a second user with a token, and the check that no secret ever leaves the server.

use super::{PASSWORD, Resp, TestApp, make_user};
use plinth_core::Role;
use plinth_store::User;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A second password the auth tests change to; checked like [`PASSWORD`].
pub(crate) const NEW_PASSWORD: &str = "another quite long passphrase";

/// A wrong password the auth tests try; it must never be echoed either.
pub(crate) const WRONG_PASSWORD: &str = "definitely not the password";

/// Text that must never appear in a response body: password hashes and the passwords the
/// tests use. [`TestApp::send`] checks every answer against it.
const NEVER_SENT: &[&str] = &["$argon2", PASSWORD, NEW_PASSWORD, WRONG_PASSWORD];

/// Panics if a response body carries a password hash or one of the test passwords.
pub(crate) fn assert_no_secrets(raw: &[u8]) {
    let text = String::from_utf8_lossy(raw);
    for secret in NEVER_SENT {
        assert!(
            !text.contains(secret),
            "a response leaked {secret:?}: {text}"
        );
    }
}

/// The pair a login or refresh returns.
#[derive(Debug, Clone)]
pub(crate) struct Tokens {
    pub(crate) access: String,
    pub(crate) refresh: String,
}

impl Tokens {
    /// The pair in a successful login or refresh answer, after checking its shape.
    pub(crate) fn from_resp(r: &Resp) -> Self {
        let data = r.data(StatusCode::OK);
        assert_eq!(data["token_type"], json!("Bearer"), "{data}");
        assert!(
            data["expires_in"].as_u64().is_some_and(|n| n > 0),
            "expires_in: {data}"
        );
        let access = data["access_token"].as_str().expect("an access token");
        let refresh = data["refresh_token"].as_str().expect("a refresh token");
        assert_eq!(access.split('.').count(), 3, "the access token is a JWT");
        assert!(
            refresh.starts_with("plr_"),
            "refresh token prefix: {refresh}"
        );
        Self {
            access: access.to_owned(),
            refresh: refresh.to_owned(),
        }
    }
}

impl TestApp {
    /// Any method on any path with a bearer credential (or none), and an optional JSON body.
    pub(crate) async fn call_as(
        &self,
        method: Method,
        path: &str,
        credential: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        let mut req = self.request_as(method, path, credential);
        if let Some(b) = body {
            req = req.json(b);
        }
        self.send(req).await
    }

    /// `POST /api/v1/auth/login` with `{"email", "password"}`.
    pub(crate) async fn login(&self, email: &str, password: &str) -> Resp {
        let body = json!({"email": email, "password": password});
        self.call_as(Method::POST, "/api/v1/auth/login", None, Some(&body))
            .await
    }

    /// A login that must succeed.
    pub(crate) async fn login_ok(&self, email: &str, password: &str) -> Tokens {
        Tokens::from_resp(&self.login(email, password).await)
    }

    /// `POST /api/v1/auth/refresh`.
    pub(crate) async fn refresh(&self, refresh_token: &str) -> Resp {
        let body = json!({ "refresh_token": refresh_token });
        self.call_as(Method::POST, "/api/v1/auth/refresh", None, Some(&body))
            .await
    }

    /// `POST /api/v1/auth/logout`.
    pub(crate) async fn logout(&self, refresh_token: &str) -> Resp {
        let body = json!({ "refresh_token": refresh_token });
        self.call_as(Method::POST, "/api/v1/auth/logout", None, Some(&body))
            .await
    }

    /// `GET /api/v1/auth/me` with a credential.
    pub(crate) async fn me(&self, credential: Option<&str>) -> Resp {
        self.call_as(Method::GET, "/api/v1/auth/me", credential, None)
            .await
    }

    /// `POST /api/v1/auth/api-keys` as `credential`.
    pub(crate) async fn create_key(&self, credential: &str, body: &Value) -> Resp {
        self.call_as(
            Method::POST,
            "/api/v1/auth/api-keys",
            Some(credential),
            Some(body),
        )
        .await
    }

    /// A user (role `user`) made directly in the store, with an access token.
    pub(crate) async fn user(&self, email: &str) -> (User, String) {
        make_user(&self.state, email, Role::User).await
    }

    /// Creates a record of `model` as `credential`; must succeed. Returns the record.
    pub(crate) async fn create_as(&self, model: &str, credential: &str, body: &Value) -> Value {
        let r = self
            .call_as(
                Method::POST,
                &format!("/api/v1/{model}"),
                Some(credential),
                Some(body),
            )
            .await;
        r.data(StatusCode::CREATED).clone()
    }
}
