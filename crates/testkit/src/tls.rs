//! TLS test support: a self-signed `localhost` certificate made at run time, and a rustls
//! client that trusts exactly the certificates it is given.

use rustls::pki_types::CertificateDer;
use std::sync::Arc;
use tokio_rustls::TlsConnector;

/// A self-signed certificate for `localhost` and its key, as PEM, and the certificate's DER.
#[derive(Debug)]
pub struct SelfSigned {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM.
    pub key_pem: String,
    /// The certificate, DER (what a client trusts).
    pub der: CertificateDer<'static>,
}

impl SelfSigned {
    /// A new certificate, with a new key, for `localhost`.
    pub fn localhost() -> Self {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("make a certificate");
        Self {
            cert_pem: made.cert.pem(),
            key_pem: made.signing_key.serialize_pem(),
            der: made.cert.der().clone(),
        }
    }
}

/// A client offering `versions` and ALPN `http/1.1`, trusting exactly `trusted`.
pub fn connector(
    trusted: &[&SelfSigned],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> TlsConnector {
    connector_alpn(trusted, versions, &[b"http/1.1"])
}

/// A client offering `versions` and the ALPN protocols `alpn` (none when empty), trusting
/// exactly `trusted`.
pub fn connector_alpn(
    trusted: &[&SelfSigned],
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for c in trusted {
        roots.add(c.der.clone()).expect("trust the certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}
