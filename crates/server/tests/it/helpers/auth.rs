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

impl TestApp {
    /// Checks the refusals of an admins-only `GET path` that takes no parameters: a guest
    /// and a forged token 401, a user's token and key 403, an admin's key 200 until it is
    /// revoked and 401 after, any query parameter 400, a `POST` 405; every one the envelope.
    pub(crate) async fn assert_admin_only(&self, path: &str) {
        use crate::helpers::assert_error;
        let get = |credential: Option<String>, path: String| async move {
            self.call_as(Method::GET, &path, credential.as_deref(), None)
                .await
        };
        let p = || path.to_owned();
        assert_error(
            &get(None, p()).await,
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
        );
        assert_error(
            &get(Some("not.a.token".to_owned()), p()).await,
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
        );
        let email = format!("user-{}@example.com", uuid::Uuid::now_v7().simple());
        let (_, token) = self.user(&email).await;
        assert_error(
            &get(Some(token.clone()), p()).await,
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
        );
        let key = self.create_key(&token, &json!({"name": "k"})).await;
        let key = key.data(StatusCode::CREATED)["key"]
            .as_str()
            .expect("a key")
            .to_owned();
        assert_error(
            &get(Some(key), p()).await,
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
        );
        let made = self
            .create_key(&self.admin_token, &json!({"name": "console"}))
            .await;
        let made = made.data(StatusCode::CREATED);
        let (key_id, key) = (
            made["id"].as_str().expect("an id").to_owned(),
            made["key"].as_str().expect("a key").to_owned(),
        );
        get(Some(key.clone()), p()).await.data(StatusCode::OK);
        let revoked = self
            .call_as(
                Method::DELETE,
                &format!("/api/v1/auth/api-keys/{key_id}"),
                Some(&self.admin_token),
                None,
            )
            .await;
        assert_eq!(revoked.status, StatusCode::NO_CONTENT);
        assert_error(
            &get(Some(key), p()).await,
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
        );
        let admin = Some(self.admin_token.clone());
        for query in ["x=1", "limit=5", "%zz=%00", "intact"] {
            let r = get(admin.clone(), format!("{path}?{query}")).await;
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
        }
        let post = self
            .call_as(
                Method::POST,
                path,
                Some(&self.admin_token),
                Some(&json!({})),
            )
            .await;
        assert_error(&post, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    }
}
