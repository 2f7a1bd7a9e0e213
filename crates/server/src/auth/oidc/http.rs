//! The OpenID client's HTTP: one HTTP/1.1 request per connection over hyper, with rustls
//! (ring, the system's roots) for `https://`, as the bucket client and the alert webhook
//! do; every exchange is bounded in time and in response size.

use axum::body::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::crypto::ring as provider;
use rustls_pki_types::ServerName;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// The longest one exchange with a provider may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest response read from a provider.
const MAX_BODY: usize = 256 * 1024;

/// Connects to providers. The TLS configuration (the system's roots) is built at the first
/// `https://` request, so a server without providers never reads the roots for it.
#[derive(Default)]
pub(super) struct Http {
    tls: OnceLock<Option<Arc<tokio_rustls::TlsConnector>>>,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Http")
    }
}

fn tls_connector() -> Option<Arc<tokio_rustls::TlsConnector>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    rustls::ClientConfig::builder_with_provider(Arc::new(provider::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .ok()
        .map(|b| {
            let config = b.with_root_certificates(roots).with_no_client_auth();
            Arc::new(tokio_rustls::TlsConnector::from(Arc::new(config)))
        })
}

impl Http {
    /// `GET url`: the status and body.
    pub(super) async fn get(&self, url: &str) -> Result<(StatusCode, Bytes), String> {
        let req = Request::get(url)
            .header(hyper::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        self.send(req).await
    }

    /// `POST url` with a form body and an `Authorization` header.
    pub(super) async fn post_form(
        &self,
        url: &str,
        authorization: &str,
        form: String,
    ) -> Result<(StatusCode, Bytes), String> {
        let req = Request::post(url)
            .header(hyper::header::ACCEPT, "application/json")
            .header(
                hyper::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(hyper::header::AUTHORIZATION, authorization)
            .body(Full::new(Bytes::from(form)))
            .map_err(|e| e.to_string())?;
        self.send(req).await
    }

    async fn send(&self, req: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), String> {
        tokio::time::timeout(TIMEOUT, self.exchange(req))
            .await
            .map_err(|_| format!("no answer within {}s", TIMEOUT.as_secs()))?
    }

    async fn exchange(&self, req: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), String> {
        let uri = req.uri().clone();
        let host = uri
            .host()
            .ok_or("no host in the URL")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err("not an http(s) URL".to_owned()),
        };
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        if https {
            let tls = self
                .tls
                .get_or_init(tls_connector)
                .as_ref()
                .ok_or("TLS is not available")?;
            let name = ServerName::try_from(host).map_err(|e| e.to_string())?;
            let stream = tls
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            round_trip(stream, req).await
        } else {
            round_trip(tcp, req).await
        }
    }
}

async fn round_trip<S>(stream: S, req: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let (mut parts, body) = req.into_parts();
    let authority = parts.uri.authority().map(|a| a.as_str().to_owned());
    parts.uri = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| e.to_string())?;
    if let Some(authority) = authority {
        let value = authority
            .parse()
            .map_err(|e: hyper::header::InvalidHeaderValue| e.to_string())?;
        parts.headers.insert(hyper::header::HOST, value);
    }
    let res = sender
        .send_request(Request::from_parts(parts, body))
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status();
    let body = Limited::new(res.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("response body: {e}"))?
        .to_bytes();
    Ok((status, body))
}
