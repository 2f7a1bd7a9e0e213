//! A small OpenID provider of the tests' own, on a random loopback port: discovery, a key
//! set, an authorization endpoint that consents at once, and a token endpoint that really
//! checks the client's credentials, that a code is used once, its redirect URI, and the
//! PKCE verifier against the challenge. ID tokens are ES256, signed with a P-256 key made at
//! start. [`NextLogin`] shapes the next login (claims, or a flaw to test a refusal with).

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// What the next login through the provider looks like.
#[derive(Debug, Clone)]
pub struct NextLogin {
    /// `sub`.
    pub sub: String,
    /// `email`, if any.
    pub email: Option<String>,
    /// `email_verified`, if sent.
    pub email_verified: Option<bool>,
    /// Sends another `nonce` than the one asked for.
    pub wrong_nonce: bool,
    /// Signs with a key not in the key set (same `kid`): a bad signature.
    pub foreign_key: bool,
    /// Names another client in `aud`.
    pub wrong_audience: bool,
    /// Issues a token that expired an hour ago.
    pub expired: bool,
    /// Answers the authorization request with this `error` instead of a code.
    pub error: Option<String>,
    /// Records another PKCE challenge than the one sent, so the right verifier fails.
    pub wrong_challenge: bool,
    /// Names a `kid` the key set never has.
    pub unknown_kid: bool,
}

impl NextLogin {
    /// A login as `sub` with a verified `email`.
    pub fn verified(sub: &str, email: &str) -> Self {
        Self {
            sub: sub.to_owned(),
            email: Some(email.to_owned()),
            email_verified: Some(true),
            wrong_nonce: false,
            foreign_key: false,
            wrong_audience: false,
            expired: false,
            error: None,
            wrong_challenge: false,
            unknown_kid: false,
        }
    }
}

struct Grant {
    challenge: String,
    nonce: String,
    redirect_uri: String,
    login: NextLogin,
}

struct Inner {
    issuer: String,
    client_id: String,
    client_secret: String,
    redirect_uri: Mutex<Option<String>>,
    next: Mutex<NextLogin>,
    codes: Mutex<HashMap<String, Grant>>,
    /// The signing key and its `kid`.
    key: Mutex<(String, EncodingKey)>,
    foreign: EncodingKey,
    jwks: Mutex<Value>,
    /// How many times the key set was fetched.
    jwks_fetches: Mutex<usize>,
    refused: Mutex<Vec<String>>,
}

/// The running provider; stops when dropped.
pub struct TestProvider {
    inner: Arc<Inner>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for TestProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestProvider")
            .field("issuer", &self.inner.issuer)
            .finish_non_exhaustive()
    }
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn random(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).expect("randomness");
    b
}

/// A new P-256 key: its signing key and its JWK.
fn new_key(kid: &str) -> (EncodingKey, Value) {
    let secret = loop {
        if let Ok(k) = p256::SecretKey::from_slice(&random(32)) {
            break k;
        }
    };
    let der = secret.to_pkcs8_der().expect("PKCS#8");
    let point = p256::Sec1Point::from(secret.public_key());
    let (x, y) = (
        point.x().expect("x").as_slice(),
        point.y().expect("y").as_slice(),
    );
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
    });
    (EncodingKey::from_ec_der(der.as_bytes()), jwk)
}

impl TestProvider {
    /// Starts a provider for one client on `127.0.0.1:0`.
    pub async fn start(client_id: &str, client_secret: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the provider");
        let addr: SocketAddr = listener.local_addr().expect("its address");
        let (key, jwk) = new_key("k1");
        let (foreign, _) = new_key("k1");
        let inner = Arc::new(Inner {
            issuer: format!("http://{addr}"),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            redirect_uri: Mutex::new(None),
            next: Mutex::new(NextLogin::verified("subject-1", "user@example.com")),
            codes: Mutex::new(HashMap::new()),
            key: Mutex::new(("k1".to_owned(), key)),
            foreign,
            jwks: Mutex::new(json!({ "keys": [jwk] })),
            jwks_fetches: Mutex::new(0),
            refused: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(Arc::clone(&inner));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { inner, task }
    }

    /// The issuer URL (`http://127.0.0.1:PORT`).
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The only redirect URI the authorization endpoint accepts.
    pub fn register_redirect_uri(&self, uri: &str) {
        *lock(&self.inner.redirect_uri) = Some(uri.to_owned());
    }

    /// Shapes the next logins (until changed again).
    pub fn next_login(&self, login: NextLogin) {
        *lock(&self.inner.next) = login;
    }

    /// Signs from now on with a new key under a new `kid`, published in place of the old
    /// one (a provider's key rotation).
    pub fn rotate_key(&self, kid: &str) {
        let (key, jwk) = new_key(kid);
        *lock(&self.inner.key) = (kid.to_owned(), key);
        *lock(&self.inner.jwks) = json!({ "keys": [jwk] });
    }

    /// How many times the key set was fetched.
    pub fn jwks_fetches(&self) -> usize {
        *lock(&self.inner.jwks_fetches)
    }

    /// Why the provider refused requests so far (`invalid_client`, `invalid_grant: …`).
    pub fn refusals(&self) -> Vec<String> {
        lock(&self.inner.refused).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn discovery(State(p): State<Arc<Inner>>) -> Response {
    let i = &p.issuer;
    axum::Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "jwks_uri": format!("{i}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
    }))
    .into_response()
}

async fn jwks(State(p): State<Arc<Inner>>) -> Response {
    *lock(&p.jwks_fetches) += 1;
    axum::Json(lock(&p.jwks).clone()).into_response()
}

fn bad_request(why: &str) -> Response {
    (StatusCode::BAD_REQUEST, why.to_owned()).into_response()
}

fn redirect(to: &str, params: &[(&str, &str)]) -> Response {
    let query = serde_urlencoded::to_string(params).expect("a query");
    let joiner = if to.contains('?') { '&' } else { '?' };
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("{to}{joiner}{query}"))],
    )
        .into_response()
}

async fn authorize(
    State(p): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    if get("client_id") != p.client_id {
        return bad_request("unknown client_id");
    }
    let registered = lock(&p.redirect_uri).clone();
    if registered.as_deref() != Some(get("redirect_uri")) {
        return bad_request("redirect_uri is not registered");
    }
    if get("response_type") != "code"
        || get("code_challenge_method") != "S256"
        || get("code_challenge").len() < 43
        || !get("scope").split(' ').any(|s| s == "openid")
        || get("state").is_empty()
        || get("nonce").is_empty()
    {
        return bad_request("not an OpenID authorization-code request with S256 PKCE");
    }
    let login = lock(&p.next).clone();
    if let Some(error) = &login.error {
        return redirect(
            get("redirect_uri"),
            &[("error", error), ("state", get("state"))],
        );
    }
    let code = URL_SAFE_NO_PAD.encode(random(24));
    let challenge = if login.wrong_challenge {
        URL_SAFE_NO_PAD.encode(Sha256::digest(b"another verifier"))
    } else {
        get("code_challenge").to_owned()
    };
    lock(&p.codes).insert(
        code.clone(),
        Grant {
            challenge,
            nonce: get("nonce").to_owned(),
            redirect_uri: get("redirect_uri").to_owned(),
            login,
        },
    );
    redirect(
        get("redirect_uri"),
        &[("code", &code), ("state", get("state"))],
    )
}

fn token_error(p: &Inner, status: StatusCode, error: &str, why: &str) -> Response {
    lock(&p.refused).push(format!("{error}: {why}"));
    (status, axum::Json(json!({ "error": error }))).into_response()
}

async fn token(State(p): State<Arc<Inner>>, headers: HeaderMap, body: String) -> Response {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| STANDARD.decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok());
    let expected = format!("{}:{}", p.client_id, p.client_secret);
    if basic.as_deref() != Some(expected.as_str()) {
        return token_error(
            &p,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "bad client credentials",
        );
    }
    let Ok(form) = serde_urlencoded::from_str::<HashMap<String, String>>(&body) else {
        return token_error(&p, StatusCode::BAD_REQUEST, "invalid_request", "not a form");
    };
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if get("grant_type") != "authorization_code" {
        return token_error(
            &p,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant",
        );
    }
    // Single use: the code is gone whatever happens next.
    let Some(grant) = lock(&p.codes).remove(get("code")) else {
        return token_error(
            &p,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "unknown or used code",
        );
    };
    if grant.redirect_uri != get("redirect_uri") {
        return token_error(&p, StatusCode::BAD_REQUEST, "invalid_grant", "redirect_uri");
    }
    if URL_SAFE_NO_PAD.encode(Sha256::digest(get("code_verifier").as_bytes())) != grant.challenge {
        return token_error(
            &p,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "PKCE verifier",
        );
    }
    let l = &grant.login;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (iat, exp) = if l.expired {
        (now - 7200, now - 3600)
    } else {
        (now, now + 300)
    };
    let mut claims = json!({
        "iss": p.issuer,
        "sub": l.sub,
        "aud": if l.wrong_audience { "another-client" } else { p.client_id.as_str() },
        "iat": iat,
        "exp": exp,
        "nonce": if l.wrong_nonce { "not-the-nonce".to_owned() } else { grant.nonce.clone() },
    });
    if let Some(email) = &l.email {
        claims["email"] = json!(email);
    }
    if let Some(v) = l.email_verified {
        claims["email_verified"] = json!(v);
    }
    let mut header = Header::new(Algorithm::ES256);
    let signer = lock(&p.key);
    header.kid = Some(if l.unknown_kid {
        "no-such-kid".to_owned()
    } else {
        signer.0.clone()
    });
    let key = if l.foreign_key { &p.foreign } else { &signer.1 };
    let id_token = jsonwebtoken::encode(&header, &claims, key).expect("sign the ID token");
    drop(signer);
    axum::Json(json!({
        "access_token": URL_SAFE_NO_PAD.encode(random(16)),
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
    .into_response()
}
