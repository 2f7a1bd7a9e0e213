//! The OpenID Connect client: providers declared in `plinth.toml` (`[[auth.oidc]]`), their
//! discovery documents and signing keys (cached, refetched once on an unknown `kid`, at most
//! once a minute), the authorization-code exchange (`client_secret_basic`, PKCE) and the ID
//! token's checks (`verify`).
//!
//! - `http`: the bounded HTTP client (hyper + rustls, as the rest of the server);
//! - `verify`: the ID token's signature and claims.

mod http;
mod verify;

pub(crate) use verify::{IdClaims, TokenProblem};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::Http;
use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a discovery document and a key set are trusted before they are fetched again.
const CACHE_TTL: Duration = Duration::from_secs(3600);
/// The least time between two fetches of a key set caused by an unknown `kid`.
const REFETCH_EVERY: Duration = Duration::from_secs(60);

/// One provider, as configured.
#[derive(Clone)]
pub struct OidcProvider {
    /// Its name in URLs (`[a-z0-9_-]{1,32}`).
    pub name: String,
    /// The issuer URL; its discovery document must name exactly this issuer.
    pub issuer: String,
    /// The client id Plinth is registered under.
    pub client_id: String,
    /// The client secret (read from the environment variable the file names).
    pub client_secret: String,
    /// The scopes asked for, space-separated.
    pub scopes: String,
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"****")
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// What a provider's discovery document says (the parts used).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Discovery {
    issuer: String,
    pub(crate) authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

#[derive(Debug, Default)]
struct Cached {
    discovery: Option<(Instant, Discovery)>,
    keys: Option<(Instant, JwkSet)>,
    last_refetch: Option<Instant>,
}

/// Why talking to a provider failed: it could not be reached or answered nonsense (503),
/// or it refused (401).
#[derive(Debug)]
pub(crate) enum OidcError {
    /// The provider is unreachable or its answer unusable; the detail is for logs only.
    Unavailable(String),
    /// The provider refused the authorization code.
    CodeRefused,
    /// The ID token failed a check.
    Token(TokenProblem),
}

/// The OpenID client of every configured provider.
#[derive(Debug)]
pub struct Oidc {
    providers: Vec<OidcProvider>,
    http: Http,
    cache: Mutex<HashMap<String, Cached>>,
}

impl Oidc {
    pub(crate) fn new(providers: Vec<OidcProvider>) -> Self {
        Self {
            providers,
            http: Http::default(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// A provider by name.
    pub(crate) fn provider(&self, name: &str) -> Option<&OidcProvider> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// Every configured provider's name.
    pub(crate) fn names(&self) -> Vec<&str> {
        self.providers.iter().map(|p| p.name.as_str()).collect()
    }

    fn with_cache<T>(&self, name: &str, f: impl FnOnce(&mut Cached) -> T) -> T {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        f(cache.entry(name.to_owned()).or_default())
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(&self, url: &str) -> Result<T, OidcError> {
        let (status, body) = self.http.get(url).await.map_err(OidcError::Unavailable)?;
        if !status.is_success() {
            return Err(OidcError::Unavailable(format!("{url} answered {status}")));
        }
        serde_json::from_slice(&body)
            .map_err(|e| OidcError::Unavailable(format!("{url}: unusable answer: {e}")))
    }

    /// The provider's discovery document, from the cache while it is fresh.
    pub(crate) async fn discovery(&self, p: &OidcProvider) -> Result<Discovery, OidcError> {
        let fresh = self.with_cache(&p.name, |c| {
            c.discovery
                .as_ref()
                .filter(|(at, _)| at.elapsed() < CACHE_TTL)
                .map(|(_, d)| d.clone())
        });
        if let Some(d) = fresh {
            return Ok(d);
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            p.issuer.trim_end_matches('/')
        );
        let d: Discovery = self.get_json(&url).await?;
        if d.issuer != p.issuer {
            return Err(OidcError::Unavailable(format!(
                "the discovery document names issuer {:?}, not {:?}",
                d.issuer, p.issuer
            )));
        }
        let secure = p.issuer.starts_with("https://");
        for url in [&d.authorization_endpoint, &d.token_endpoint, &d.jwks_uri] {
            if secure && !url.starts_with("https://") {
                return Err(OidcError::Unavailable(format!(
                    "the discovery document names a non-https endpoint {url:?}"
                )));
            }
        }
        self.with_cache(&p.name, |c| {
            c.discovery = Some((Instant::now(), d.clone()));
        });
        Ok(d)
    }

    /// The provider's keys; `refetch` (an unknown `kid`) fetches them again unless that was
    /// done less than a minute ago.
    async fn keys(
        &self,
        p: &OidcProvider,
        d: &Discovery,
        refetch: bool,
    ) -> Result<JwkSet, OidcError> {
        let cached = self.with_cache(&p.name, |c| {
            let fresh = c
                .keys
                .as_ref()
                .filter(|(at, _)| at.elapsed() < CACHE_TTL)
                .map(|(_, k)| k.clone());
            match fresh {
                Some(k) if !refetch => Some(k),
                Some(k) if c.last_refetch.is_some_and(|t| t.elapsed() < REFETCH_EVERY) => Some(k),
                _ => {
                    if refetch {
                        c.last_refetch = Some(Instant::now());
                    }
                    None
                }
            }
        });
        if let Some(k) = cached {
            return Ok(k);
        }
        let keys: JwkSet = self.get_json(&d.jwks_uri).await?;
        self.with_cache(&p.name, |c| c.keys = Some((Instant::now(), keys.clone())));
        Ok(keys)
    }

    /// Exchanges `code` at the token endpoint and checks the ID token it answers with.
    pub(crate) async fn exchange(
        &self,
        p: &OidcProvider,
        redirect_uri: &str,
        code: &str,
        verifier: &str,
        nonce: &str,
    ) -> Result<IdClaims, OidcError> {
        let d = self.discovery(p).await?;
        let form = serde_urlencoded::to_string([
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ])
        .map_err(|e| OidcError::Unavailable(e.to_string()))?;
        // RFC 6749 §2.3.1: both parts form-encoded before they are joined.
        let user = serde_urlencoded::to_string([("", p.client_id.as_str())])
            .map_err(|e| OidcError::Unavailable(e.to_string()))?;
        let pass = serde_urlencoded::to_string([("", p.client_secret.as_str())])
            .map_err(|e| OidcError::Unavailable(e.to_string()))?;
        let basic = STANDARD.encode(format!("{}:{}", &user[1..], &pass[1..]));
        let (status, body) = self
            .http
            .post_form(&d.token_endpoint, &format!("Basic {basic}"), form)
            .await
            .map_err(OidcError::Unavailable)?;
        if status.is_client_error() {
            return Err(OidcError::CodeRefused);
        }
        if !status.is_success() {
            return Err(OidcError::Unavailable(format!(
                "the token endpoint answered {status}"
            )));
        }
        #[derive(Deserialize)]
        struct TokenAnswer {
            id_token: Option<String>,
        }
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| OidcError::Unavailable(format!("token endpoint: {e}")))?;
        let id_token = answer
            .id_token
            .ok_or(OidcError::Token(TokenProblem::Missing))?;
        let kid = jsonwebtoken::decode_header(&id_token)
            .map_err(|_| OidcError::Token(TokenProblem::Malformed))?
            .kid;
        let mut keys = self.keys(p, &d, false).await?;
        if kid.as_deref().is_some_and(|k| keys.find(k).is_none()) {
            keys = self.keys(p, &d, true).await?;
        }
        verify::check(&id_token, &keys, p, nonce).map_err(OidcError::Token)
    }
}

/// A random URL-safe string of `bytes` random bytes.
pub(crate) fn random_text(bytes: usize) -> Result<String, String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| format!("no randomness available: {e}"))?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

/// The PKCE S256 challenge of `verifier`.
pub(crate) fn challenge(verifier: &str) -> String {
    use sha2::Digest as _;
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}
