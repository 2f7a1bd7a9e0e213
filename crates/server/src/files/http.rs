//! The bucket client's HTTP: one HTTP/1.1 connection per request over hyper, with rustls
//! (ring, the system's roots) for `https://` endpoints, as the alert webhook does. Plinth
//! thus needs no second HTTP client stack (reqwest would bring aws-lc-rs, which needs
//! cmake, or a process-wide crypto provider).

use http_body_util::BodyExt;
use hyper::Request;
use hyper_util::rt::TokioIo;
use object_store::ClientOptions;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse,
    HttpResponseBody, HttpService,
};
use rustls::crypto::ring as provider;
use rustls_pki_types::ServerName;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Connects the bucket client.
#[derive(Clone)]
pub(super) struct Connector {
    tls: Arc<tokio_rustls::TlsConnector>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connector")
    }
}

impl Connector {
    pub(super) fn new() -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        let config =
            rustls::ClientConfig::builder_with_provider(Arc::new(provider::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .map_err(|e| format!("files.s3 TLS: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
        Ok(Self {
            tls: Arc::new(tokio_rustls::TlsConnector::from(Arc::new(config))),
        })
    }
}

impl HttpConnector for Connector {
    fn connect(&self, _: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(self.clone()))
    }
}

fn connect_error(e: impl std::error::Error + Send + Sync + 'static) -> HttpError {
    HttpError::new(HttpErrorKind::Connect, e)
}

#[async_trait::async_trait]
impl HttpService for Connector {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let uri = req.uri().clone();
        let host = uri
            .host()
            .ok_or_else(|| connect_error(std::io::Error::other("no host in the URL")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let https = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(connect_error)?;
        if https {
            let name = ServerName::try_from(host.clone()).map_err(connect_error)?;
            let stream = self.tls.connect(name, tcp).await.map_err(connect_error)?;
            exchange(stream, req).await
        } else {
            exchange(tcp, req).await
        }
    }
}

/// Sends `req` on `stream` (origin-form target, `Host` set) and answers with its response,
/// whose body streams from the connection.
async fn exchange<S>(stream: S, req: HttpRequest) -> Result<HttpResponse, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(connect_error)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let (mut parts, body) = req.into_parts();
    let authority = parts.uri.authority().map(|a| a.as_str().to_owned());
    let target = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()
        .map_err(|e| HttpError::new(HttpErrorKind::Request, e))?;
    parts.uri = target;
    if let Some(authority) = authority
        && !parts.headers.contains_key(hyper::header::HOST)
    {
        let value = authority
            .parse()
            .map_err(|e| HttpError::new(HttpErrorKind::Request, e))?;
        parts.headers.insert(hyper::header::HOST, value);
    }
    let res = sender
        .send_request(Request::from_parts(parts, body))
        .await
        .map_err(|e| HttpError::new(HttpErrorKind::Request, e))?;
    Ok(res.map(|body| {
        HttpResponseBody::new(body.map_err(|e| HttpError::new(HttpErrorKind::Decode, e)))
    }))
}
