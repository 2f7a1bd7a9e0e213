//! HTTPS: the certificate and key files, loaded into a rustls configuration (TLS 1.2 and
//! 1.3 only, rustls's default suites over the `ring` provider, ALPN `h2` and `http/1.1`), and
//! reloaded in place when the files change or on SIGHUP. A reload that fails keeps the
//! certificate in use and logs why; connections already open keep theirs either way.

use rustls::crypto::ring;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};
use tokio_rustls::TlsAcceptor;

/// Default time between looks at the certificate files' modification times.
pub const DEFAULT_TLS_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// Default `max-age` of `Strict-Transport-Security`: one year.
pub const DEFAULT_HSTS_MAX_AGE: Duration = Duration::from_secs(31_536_000);

/// Where the certificate chain and its private key are, and how HTTPS is served.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain, the server's certificate first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the first certificate.
    pub key_file: PathBuf,
    /// How often the files' modification times are compared, to reload them when they
    /// change; `Duration::ZERO` looks only on SIGHUP.
    pub reload_interval: Duration,
    /// `max-age` of the `Strict-Transport-Security` header every response carries;
    /// `Duration::ZERO` sends no header.
    pub hsts_max_age: Duration,
}

impl TlsFiles {
    /// Both files, with the default reload interval and HSTS `max-age`.
    pub fn new(cert_file: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> Self {
        Self {
            cert_file: cert_file.into(),
            key_file: key_file.into(),
            reload_interval: DEFAULT_TLS_RELOAD_INTERVAL,
            hsts_max_age: DEFAULT_HSTS_MAX_AGE,
        }
    }
}

impl TlsFiles {
    /// Whether the files can be served: the start refuses them otherwise.
    pub fn check(&self) -> Result<(), TlsError> {
        load(self).map(drop)
    }
}

/// Why the certificate files could not be used. Names the file and the reason, never the
/// key's contents.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct TlsError {
    file: String,
    reason: String,
}

impl TlsError {
    fn new(file: &Path, reason: impl std::fmt::Display) -> Self {
        Self {
            file: file.display().to_string(),
            reason: reason.to_string(),
        }
    }
}

/// Reads both files and builds the server configuration.
fn load(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| TlsError::new(path, format!("cannot read: {e}")))
    };
    let (cert_pem, key_pem) = (read(&files.cert_file)?, read(&files.key_file)?);
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            TlsError::new(
                &files.cert_file,
                format!("not a PEM certificate chain: {e}"),
            )
        })?;
    if certs.is_empty() {
        return Err(TlsError::new(
            &files.cert_file,
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        TlsError::new(
            &files.key_file,
            format!("not a PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
        )
    })?;
    let mut config =
        rustls::ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::new(&files.cert_file, e))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| {
                TlsError::new(
                    &files.key_file,
                    format!("cannot be used with {}: {e}", files.cert_file.display()),
                )
            })?;
    // HTTP/2 for clients that ask for it, else HTTP/1.1 (`crate::serve`).
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The modification times of both files (`None` for one that cannot be read).
type Stamps = (Option<SystemTime>, Option<SystemTime>);

fn stamps(files: &TlsFiles) -> Stamps {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (modified(&files.cert_file), modified(&files.key_file))
}

/// The TLS configuration new connections are accepted with, replaced on reload.
#[derive(Debug)]
pub(crate) struct Tls {
    files: TlsFiles,
    current: RwLock<Arc<rustls::ServerConfig>>,
    /// The files' modification times at the last load or attempt.
    seen: Mutex<Stamps>,
}

impl Tls {
    /// Loads the files: the start is refused when they cannot be used.
    pub(crate) fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let seen = stamps(&files);
        let config = load(&files)?;
        Ok(Self {
            files,
            current: RwLock::new(config),
            seen: Mutex::new(seen),
        })
    }

    /// An acceptor with the configuration in use now.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        let config = self.current.read().unwrap_or_else(PoisonError::into_inner);
        TlsAcceptor::from(Arc::clone(&config))
    }

    /// Loads the files again; on failure keeps the configuration in use and logs why.
    fn reload(&self, why: &'static str) {
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = stamps(&self.files);
        match load(&self.files) {
            Ok(config) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = config;
                tracing::info!(reason = why, "TLS certificate reloaded");
            }
            Err(e) => tracing::error!(
                reason = why,
                error = %e,
                "TLS certificate reload failed; the certificate in use is kept"
            ),
        }
    }

    /// Reloads when either file's modification time changed since the last look.
    fn reload_if_changed(&self) {
        let now = stamps(&self.files);
        let changed = *self.seen.lock().unwrap_or_else(PoisonError::into_inner) != now;
        if changed {
            self.reload("files changed");
        }
    }

    /// Watches for SIGHUP and, every `reload_interval`, for changed files, until aborted.
    /// SIGHUP is caught from the return on (not only once the task first runs).
    pub(crate) fn spawn_reloader(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let tls = Arc::clone(self);
        let mut hangup = hangups();
        tokio::spawn(async move {
            let interval = tls.files.reload_interval;
            loop {
                tokio::select! {
                    () = tokio::time::sleep(interval), if !interval.is_zero() => {
                        let tls = Arc::clone(&tls);
                        // File reads: off the async workers.
                        let _ = tokio::task::spawn_blocking(move || tls.reload_if_changed()).await;
                    }
                    Some(()) = next(&mut hangup) => {
                        let tls = Arc::clone(&tls);
                        let _ = tokio::task::spawn_blocking(move || tls.reload("SIGHUP")).await;
                    }
                    else => std::future::pending::<()>().await,
                }
            }
        })
    }
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = Option<()>;

#[cfg(unix)]
fn hangups() -> Hangups {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP; certificates reload on file changes only");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangups() -> Hangups {
    None
}

/// The next SIGHUP; never when there is no signal stream.
#[cfg(unix)]
async fn next(hangup: &mut Hangups) -> Option<()> {
    match hangup {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn next(_: &mut Hangups) -> Option<()> {
    std::future::pending().await
}
