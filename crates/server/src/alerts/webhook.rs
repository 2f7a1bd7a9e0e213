//! The alert webhook: each state change is POSTed as JSON to one URL, over HTTP or HTTPS,
//! from a task of its own (requests never wait for it), in order, with retries.
//!
//! A delivery is bounded: at most [`ATTEMPTS`] attempts of at most [`ATTEMPT_TIMEOUT`]
//! each, [`BACKOFF`] before the second and twice that before the third. Changes queue in a
//! channel of [`QUEUE`]; past it a change is dropped with a warning rather than held.
//! With a secret, each request is signed (`X-Plinth-Signature`); the secret is never
//! logged, and neither is the URL (which may carry a token): only its host.

use axum::body::Body;
use axum::http::{Request, Uri, header};
use hyper_util::rt::TokioIo;
use rustls::crypto::ring as provider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Attempts per notification.
pub(crate) const ATTEMPTS: u32 = 3;
/// The bound on one attempt: connecting, the TLS handshake, sending, the answer's head.
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// The pause before the second attempt; it doubles before each next one.
pub(crate) const BACKOFF: Duration = Duration::from_millis(500);
/// Notifications waiting for delivery; a burst past it is dropped (the audit trail keeps
/// every change).
const QUEUE: usize = 64;

/// The header of the signature: `t=<unix seconds>,v1=<hex HMAC-SHA-256 of "<t>.<body>">`.
pub const SIGNATURE_HEADER: &str = "x-plinth-signature";

/// Where state changes are sent.
#[derive(Clone)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL.
    pub url: String,
    /// The key of the HMAC signature; `None` sends no signature.
    pub secret: Option<String>,
    /// PEM certificates to trust for an `https://` URL instead of the system's roots.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("host", &Target::parse(&self.url).map(|t| t.host).ok())
            .field("secret", &self.secret.as_ref().map(|_| "****"))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// A parsed webhook URL.
#[derive(Debug, Clone)]
struct Target {
    uri: Uri,
    host: String,
    port: u16,
    tls: bool,
}

impl Target {
    fn parse(url: &str) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|_| "the alert webhook URL is not a URL".to_owned())?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err("the alert webhook URL must be http:// or https://".to_owned()),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| "the alert webhook URL has no host".to_owned())?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Self {
            uri,
            host,
            port,
            tls,
        })
    }
}

/// The sending side: hands changes to the delivery task.
#[derive(Debug)]
pub(crate) struct Notifier {
    queue: mpsc::Sender<Vec<u8>>,
}

impl Notifier {
    /// Checks the settings (URL, CA file) and starts the delivery task.
    pub(crate) fn start(config: &WebhookConfig) -> Result<Self, String> {
        let target = Target::parse(&config.url)?;
        let tls = if target.tls {
            Some(connector(config.ca_file.as_ref())?)
        } else {
            None
        };
        let (queue, mut rx) = mpsc::channel::<Vec<u8>>(QUEUE);
        let delivery = Delivery {
            target,
            tls,
            secret: config.secret.clone().map(String::into_bytes),
        };
        tokio::spawn(async move {
            while let Some(body) = rx.recv().await {
                delivery.deliver(body).await;
            }
        });
        Ok(Self { queue })
    }

    /// Queues one notification (a JSON body) without waiting.
    pub(crate) fn notify(&self, body: Vec<u8>) {
        if self.queue.try_send(body).is_err() {
            tracing::warn!("the alert webhook is behind: a notification was dropped");
        }
    }
}

/// Checks the settings as [`Notifier::start`] would, without starting anything.
pub(crate) fn check(config: &WebhookConfig) -> Result<(), String> {
    let target = Target::parse(&config.url)?;
    if target.tls {
        connector(config.ca_file.as_ref())?;
    }
    Ok(())
}

/// The TLS client: the CA file's certificates, or the system's roots.
fn connector(ca_file: Option<&PathBuf>) -> Result<tokio_rustls::TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let refused = |why: String| format!("alert webhook CA file {}: {why}", path.display());
            let pem = std::fs::read(path).map_err(|e| refused(format!("cannot read: {e}")))?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| refused(format!("not PEM certificates: {e}")))?;
            roots.add_parsable_certificates(certs);
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    if roots.is_empty() {
        return Err(
            "the alert webhook is https:// but no trusted root certificate was found: \
                    name a CA file"
                .to_owned(),
        );
    }
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(provider::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("alert webhook TLS: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

struct Delivery {
    target: Target,
    tls: Option<tokio_rustls::TlsConnector>,
    secret: Option<Vec<u8>>,
}

impl Delivery {
    /// Sends `body`, retrying with backoff; logs how it ended.
    async fn deliver(&self, body: Vec<u8>) {
        let mut pause = BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let outcome = tokio::time::timeout(ATTEMPT_TIMEOUT, self.attempt(&body)).await;
            let failure = match outcome {
                Ok(Ok(status)) if (200..300).contains(&status) => {
                    tracing::info!(host = %self.target.host, attempt, status, "alert webhook delivered");
                    return;
                }
                Ok(Ok(status)) => format!("answered {status}"),
                Ok(Err(e)) => e,
                Err(_) => format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()),
            };
            if attempt == ATTEMPTS {
                tracing::warn!(host = %self.target.host, attempt, failure, "alert webhook failed; giving up on this notification");
                return;
            }
            tracing::warn!(host = %self.target.host, attempt, failure, "alert webhook failed; retrying");
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    }

    /// One attempt: the answer's status.
    async fn attempt(&self, body: &[u8]) -> Result<u16, String> {
        let t = &self.target;
        let tcp = TcpStream::connect((t.host.as_str(), t.port))
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        match &self.tls {
            None => self.exchange(tcp, body).await,
            Some(tls) => {
                let name = ServerName::try_from(t.host.clone())
                    .map_err(|_| "not a valid TLS server name".to_owned())?;
                let stream = tls
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS handshake failed: {e}"))?;
                self.exchange(stream, body).await
            }
        }
    }

    async fn exchange<S>(&self, stream: S, body: &[u8]) -> Result<u16, String>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake failed: {e}"))?;
        // The connection runs until the answer's head is read and the sender is dropped.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let t = &self.target;
        let path = t.uri.path_and_query().map_or("/", |p| p.as_str());
        // The authority without any `user:password@`.
        let authority = t
            .uri
            .authority()
            .and_then(|a| a.as_str().rsplit('@').next())
            .unwrap_or(t.host.as_str());
        let mut req = Request::post(path)
            .header(header::HOST, authority)
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::USER_AGENT,
                concat!("plinth/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(secret) = &self.secret {
            req = req.header(SIGNATURE_HEADER, sign(secret, unix_now(), body));
        }
        let req = req
            .body(Body::from(body.to_vec()))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let res = sender
            .send_request(req)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        Ok(res.status().as_u16())
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `t=<at>,v1=<hex HMAC-SHA-256(secret, "<at>.<body>")>`: the time is signed with the body,
/// so a receiver can refuse a replayed notification.
pub(crate) fn sign(secret: &[u8], at: u64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(at.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    let tag = ctx.sign();
    let mut hex = String::with_capacity(64);
    for b in tag.as_ref() {
        hex.push_str(&format!("{b:02x}"));
    }
    format!("t={at},v1={hex}")
}
