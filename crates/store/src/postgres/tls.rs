//! TLS to PostgreSQL: the `sslmode` and `sslrootcert` of a database URL, read here (the
//! driver knows neither `verify-ca`, `verify-full` nor `sslrootcert`), and a rustls
//! connector (the `ring` provider, TLS 1.2 and 1.3) that every connection uses: the pools,
//! the LISTEN connection, the claim's connection and the cancel requests of lists.
//!
//! | `sslmode` | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | never | – |
//! | `prefer` (unset) | when the server offers it, else plain | not checked |
//! | `require` | always | not checked (checked as `verify-ca` when `sslrootcert` is given, as libpq does) |
//! | `verify-ca` | always | signed by the CA of `sslrootcert=FILE` (required) |
//! | `verify-full` | always | signed by a trusted root, and names the host connected to |
//!
//! Trusted roots: the PEM certificates of `sslrootcert=FILE`, or, with `verify-full` only,
//! the system's (`sslrootcert=system`, or unset). `allow` and any other mode are refused. SCRAM channel
//! binding is not offered (the password exchange works as without TLS).

use crate::StoreError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, WebPkiServerVerifier};
use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::borrow::Cow;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_postgres::{Config, Socket};

/// A database URL read: the driver's configuration (its `sslmode` set) and the TLS
/// connector for it.
pub(super) fn parse_url(url: &str) -> Result<(Config, PgTls), StoreError> {
    let invalid = |why: String| StoreError::Unavailable(format!("invalid PostgreSQL URL: {why}"));
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (mut mode, mut root) = (None, None);
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded = || {
            percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map(Cow::into_owned)
                .map_err(|_| invalid(format!("{key} is not UTF-8")))
        };
        match key {
            "sslmode" => mode = Some(decoded()?),
            "sslrootcert" => root = Some(decoded()?),
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    let mut config: Config = url.parse().map_err(|e| invalid(format!("{e}")))?;
    let root = root.as_deref().filter(|r| !r.is_empty());
    // The system's roots vouch for any publicly certified host, so they are trusted only
    // with the host name check, and `verify-ca` needs the file of its own CA (as libpq).
    if root == Some(SYSTEM) && mode.as_deref() != Some("verify-full") {
        return Err(invalid(
            "sslrootcert=system needs sslmode=verify-full (the system's roots vouch for any \
             publicly certified host)"
                .to_owned(),
        ));
    }
    let (ssl, verify) = match mode.as_deref() {
        Some("disable") => (SslMode::Disable, Verify::Nothing),
        None | Some("prefer") => (SslMode::Prefer, Verify::Nothing),
        Some("require") if root.is_some() => (SslMode::Require, Verify::Chain),
        Some("require") => (SslMode::Require, Verify::Nothing),
        Some("verify-ca") if root.is_some() => (SslMode::Require, Verify::Chain),
        Some("verify-ca") => {
            return Err(invalid(
                "sslmode=verify-ca needs sslrootcert=FILE, the PEM certificate of the CA that \
                 signs the server's; to trust the system's roots use sslmode=verify-full"
                    .to_owned(),
            ));
        }
        Some("verify-full") => (SslMode::Require, Verify::ChainAndName),
        Some(other) => {
            return Err(invalid(format!(
                "sslmode={other} is not supported; use disable, prefer, require, verify-ca or \
                 verify-full"
            )));
        }
    };
    config.ssl_mode(ssl);
    let tls = PgTls::new(verify, root)?;
    Ok((config, tls))
}

/// The `sslrootcert` that names the system's trusted roots.
const SYSTEM: &str = "system";

/// What is checked of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verify {
    Nothing,
    Chain,
    ChainAndName,
}

/// The TLS connector of one database URL (cheap to clone).
#[derive(Clone)]
pub(super) struct PgTls(tokio_rustls::TlsConnector);

impl std::fmt::Debug for PgTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgTls")
    }
}

impl PgTls {
    fn new(verify: Verify, root: Option<&str>) -> Result<Self, StoreError> {
        let provider = Arc::new(ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| StoreError::internal(format!("TLS to PostgreSQL: {e}")))?;
        let verifier: Arc<dyn ServerCertVerifier> = match verify {
            Verify::Nothing => Arc::new(Unchecked(provider)),
            Verify::Chain | Verify::ChainAndName => {
                let roots = Arc::new(roots(root)?);
                let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| {
                        StoreError::Unavailable(format!("sslrootcert: no usable root: {e}"))
                    })?;
                if verify == Verify::Chain {
                    Arc::new(AnyName(webpki))
                } else {
                    webpki
                }
            }
        };
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Self(tokio_rustls::TlsConnector::from(Arc::new(config))))
    }
}

/// The trusted roots: the file's, or the system's (only ever with `verify-full`).
fn roots(root: Option<&str>) -> Result<RootCertStore, StoreError> {
    let mut store = RootCertStore::empty();
    match root {
        Some(path) if path != SYSTEM => {
            let refused =
                |why: String| StoreError::Unavailable(format!("sslrootcert {path}: {why}"));
            let pem = std::fs::read(path).map_err(|e| refused(format!("cannot read: {e}")))?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| refused(format!("not PEM certificates: {e}")))?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(refused("holds no usable certificate".to_owned()));
            }
        }
        _ => {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "a system root certificate could not be read");
            }
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err(StoreError::Unavailable(
                    "sslmode needs trusted roots: no system root certificates were found; \
                     name a file with sslrootcert"
                        .to_owned(),
                ));
            }
        }
    }
    Ok(store)
}

/// Accepts any certificate (`prefer`, `require`): the connection is encrypted, against a
/// passive listener only. The handshake's signatures are still checked.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the name is not compared.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

impl MakeTlsConnect<Socket> for PgTls {
    type Stream = PgTlsStream;
    type TlsConnect = PgTlsConnect;
    type Error = io::Error;

    /// Asked for every connection before it is known whether TLS is used, so a host that is
    /// no TLS server name fails only a handshake, not the connection. Over a Unix socket
    /// the driver passes an empty name and never calls the handshake (the server offers no
    /// TLS there; with `require` the driver refuses the connection itself).
    fn make_tls_connect(&mut self, domain: &str) -> Result<PgTlsConnect, io::Error> {
        Ok(PgTlsConnect {
            connector: self.0.clone(),
            name: ServerName::try_from(domain.to_owned())
                .map_err(|e| format!("{domain:?} is not a TLS server name: {e}")),
        })
    }
}

/// One handshake, with the host name the connection is for.
pub(super) struct PgTlsConnect {
    connector: tokio_rustls::TlsConnector,
    name: Result<ServerName<'static>, String>,
}

impl TlsConnect<Socket> for PgTlsConnect {
    type Stream = PgTlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<PgTlsStream>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            let name = self
                .name
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let stream = self.connector.connect(name, stream).await?;
            Ok(PgTlsStream(Box::new(stream)))
        })
    }
}

/// A TLS connection to PostgreSQL.
pub(super) struct PgTlsStream(Box<tokio_rustls::client::TlsStream<Socket>>);

impl tokio_postgres::tls::TlsStream for PgTlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl AsyncRead for PgTlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for PgTlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_url;
    use tokio_postgres::config::SslMode;

    #[test]
    fn sslmodes_are_read_and_unknown_ones_refused() {
        for (url, mode) in [
            ("postgres://u@h/db", SslMode::Prefer),
            ("postgres://u@h/db?sslmode=disable", SslMode::Disable),
            ("postgres://u@h/db?sslmode=prefer", SslMode::Prefer),
            (
                "postgres://u@h/db?application_name=x&sslmode=require",
                SslMode::Require,
            ),
        ] {
            let (config, _) = parse_url(url).expect(url);
            assert_eq!(config.get_ssl_mode(), mode, "{url}");
        }
        let (config, _) =
            parse_url("postgres://u@h/db?sslmode=require&application_name=x").expect("parsed");
        assert_eq!(config.get_application_name(), Some("x"));
        for (url, expected) in [
            (
                "postgres://u:secret@h/db?sslmode=allow",
                "sslmode=allow is not supported",
            ),
            (
                "postgres://u:secret@h/db?sslmode=verify",
                "sslmode=verify is not supported",
            ),
            (
                "postgres://u:secret@h/db?sslmode=verify-full&sslrootcert=/no/such/file",
                "sslrootcert /no/such/file: cannot read",
            ),
            (
                "postgres://u:secret@h/db?sslmode=verify-ca&sslrootcert=%FF",
                "not UTF-8",
            ),
        ] {
            let refused = parse_url(url).expect_err(url).to_string();
            assert!(refused.contains(expected), "{url}: {refused}");
            assert!(!refused.contains("secret"), "{refused}");
        }
    }

    /// The system's roots vouch for any publicly certified host: they are trusted only
    /// together with the host name check (`verify-full`), as libpq does.
    #[test]
    fn system_roots_are_trusted_only_with_verify_full() {
        for (url, expected) in [
            (
                "postgres://u:secret@h/db?sslmode=verify-ca",
                "sslmode=verify-ca needs sslrootcert=FILE",
            ),
            (
                "postgres://u:secret@h/db?sslmode=verify-ca&sslrootcert=",
                "sslmode=verify-ca needs sslrootcert=FILE",
            ),
            (
                "postgres://u:secret@h/db?sslmode=verify-ca&sslrootcert=system",
                "sslrootcert=system needs sslmode=verify-full",
            ),
            (
                "postgres://u:secret@h/db?sslmode=require&sslrootcert=system",
                "sslrootcert=system needs sslmode=verify-full",
            ),
            (
                "postgres://u:secret@h/db?sslrootcert=system",
                "sslrootcert=system needs sslmode=verify-full",
            ),
            (
                "postgres://u:secret@h/db?sslmode=disable&sslrootcert=system",
                "sslrootcert=system needs sslmode=verify-full",
            ),
        ] {
            let refused = parse_url(url).expect_err(url).to_string();
            assert!(refused.contains(expected), "{url}: {refused}");
            assert!(!refused.contains("secret"), "{refused}");
        }
    }
}
