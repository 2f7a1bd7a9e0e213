//! The auth side of the configuration: where the signing key comes from, and the settings
//! of the auth service (token lifetimes, argon2 cost, rate limits).

use super::value::Secret;
use super::{Config, Environment, Settings, env};
use anyhow::{Context, bail};
use base64::Engine;
use plinth_server::auth::{AuthConfig, HashCost, SigningKey, TrustedProxies};
use plinth_server::mail::{MailConfig, SmtpTls};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the token-signing key comes from.
#[derive(Clone)]
pub(crate) enum KeySource {
    /// `PLINTH_JWT_SECRET`.
    Env(Secret),
    /// `PLINTH_JWT_SECRET_FILE` or `auth.jwt_secret_file`.
    File(PathBuf),
    /// Development only: generated once and kept in the data directory.
    Generated(PathBuf),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env(_) => write!(f, "env {} (****)", env::JWT_SECRET),
            Self::File(p) => write!(f, "file {}", p.display()),
            Self::Generated(p) => write!(f, "generated {}", p.display()),
        }
    }
}

const KEY_HELP: &str =
    "make one with `plinth keys generate > jwt.key` (or `openssl rand -base64 48`)";

impl KeySource {
    /// The first of `PLINTH_JWT_SECRET`, the key file, or (development only) a key generated
    /// in the data directory. A key given inline is checked now, so a weak one is refused
    /// before anything starts.
    pub(crate) fn resolve(settings: &Settings) -> anyhow::Result<Self> {
        let key = match (&settings.jwt_secret, &settings.auth_jwt_secret_file) {
            (Some(s), _) => Self::Env(s.clone()),
            (None, Some(p)) => Self::File(p.clone()),
            (None, None) if settings.env == Environment::Production => bail!(
                "{}=production needs an explicit token-signing key: set {} or {} (or auth.jwt_secret_file); {KEY_HELP}",
                env::ENV,
                env::JWT_SECRET,
                env::JWT_SECRET_FILE
            ),
            (None, None) => Self::Generated(settings.data_dir.join("jwt.key")),
        };
        if let Self::Env(s) = &key {
            decode_key(s.expose().as_bytes())
                .with_context(|| format!("{} is not usable", env::JWT_SECRET))?;
        }
        Ok(key)
    }
}

impl Config {
    /// The configured argon2id cost.
    fn hash_cost(&self) -> HashCost {
        HashCost {
            memory_kib: self.settings.auth_argon2_memory_kib,
            iterations: self.settings.auth_argon2_iterations,
            parallelism: self.settings.auth_argon2_parallelism,
        }
    }

    /// Settings for commands that hash passwords but sign nothing (`plinth user create`):
    /// the configured argon2 cost with a throwaway key, so they need no signing key.
    pub(crate) fn hashing_config(&self) -> anyhow::Result<AuthConfig> {
        let mut config = AuthConfig::new(SigningKey::generate().map_err(|e| anyhow::anyhow!(e))?);
        config.hash_cost = self.hash_cost();
        Ok(config)
    }

    /// Keeps a development key in `dir` instead (the embedded benchmark's temporary data
    /// directory); an explicit key stays as it is.
    pub(crate) fn generate_key_in(&mut self, dir: &Path) {
        if let KeySource::Generated(_) = self.key {
            self.key = KeySource::Generated(dir.join("jwt.key"));
        }
    }

    /// The file the signing key is read from (or generated into), if it comes from one.
    pub(crate) fn key_file(&self) -> Option<&Path> {
        match &self.key {
            KeySource::File(p) | KeySource::Generated(p) => Some(p),
            KeySource::Env(_) => None,
        }
    }

    /// Whether the key is the development key generated in the data directory.
    pub(crate) fn key_is_generated(&self) -> bool {
        matches!(self.key, KeySource::Generated(_))
    }

    /// Reads or creates the signing key and builds the auth service settings.
    pub(crate) fn auth_config(&self) -> anyhow::Result<AuthConfig> {
        let key = match &self.key {
            KeySource::Env(s) => decode_key(s.expose().as_bytes())?,
            KeySource::File(p) => {
                let bytes = std::fs::read(p)
                    .with_context(|| format!("cannot read the signing key {}", p.display()))?;
                decode_key(trim(&bytes))
                    .with_context(|| format!("the signing key in {} is not usable", p.display()))?
            }
            KeySource::Generated(p) => generated_key(p)?,
        };
        let s = &self.settings;
        let mut config = AuthConfig::new(key);
        config.access_ttl = Duration::from_secs(s.auth_access_token_minutes * 60);
        config.refresh_ttl = Duration::from_secs(s.auth_refresh_token_days * 24 * 3600);
        config.session_max = Duration::from_secs(s.auth_session_max_days * 24 * 3600);
        config.api_key_max_ttl = (s.auth_api_key_max_days > 0)
            .then(|| Duration::from_secs(s.auth_api_key_max_days * 24 * 3600));
        config.hash_cost = self.hash_cost();
        config.login_per_account_address = s.auth_login_attempts_per_account_address;
        config.login_per_account = s.auth_login_attempts_per_account;
        config.login_remember = Duration::from_secs(s.auth_login_remember_days * 24 * 3600);
        config.login_per_address = s.auth_login_attempts_per_address;
        config.requests_per_minute = s.auth_requests_per_minute;
        config.trusted_proxies =
            TrustedProxies::parse(&s.trusted_proxies).map_err(|e| anyhow::anyhow!(e))?;
        config.require_mfa_for_admins = s.auth_require_mfa_for_admins;
        config.signup = s.auth_signup;
        config.signup_domains = s
            .auth_signup_domains
            .iter()
            .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
            .collect();
        config.public_url = s
            .public_url
            .as_deref()
            .map(|u| u.trim_end_matches('/').to_owned());
        config.oidc = self.oidc.iter().map(|d| d.provider.clone()).collect();
        config.require_verified_email = s.auth_require_verified_email;
        config.verify_email_ttl = Duration::from_secs(s.auth_verify_email_hours * 3600);
        config.password_reset_ttl = Duration::from_secs(s.auth_password_reset_minutes * 60);
        config.mail = mail_config(s)?;
        Ok(config)
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

/// A key given as base64 (what `plinth keys generate` prints) is decoded; anything else is
/// taken as raw bytes. Either way it must pass [`SigningKey::new`].
fn decode_key(text: &[u8]) -> anyhow::Result<SigningKey> {
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
    ];
    let decoded = engines
        .iter()
        .find_map(|e| e.decode(text).ok())
        .filter(|d| d.len() >= 32);
    SigningKey::new(decoded.unwrap_or_else(|| text.to_vec()))
        .map_err(|e| anyhow::anyhow!("{e}; {KEY_HELP}"))
}

/// Development: the key kept in the data directory, created (mode 0600) on first start.
fn generated_key(path: &Path) -> anyhow::Result<SigningKey> {
    if let Ok(bytes) = std::fs::read(path) {
        return decode_key(trim(&bytes))
            .with_context(|| format!("the signing key in {} is not usable", path.display()));
    }
    let key = SigningKey::generate().map_err(|e| anyhow::anyhow!(e))?;
    let text = base64::engine::general_purpose::STANDARD.encode(key.expose());
    write_new_private(path, text.as_bytes())
        .with_context(|| format!("cannot write the signing key {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated a token-signing key for development");
    Ok(key)
}

/// Creates `path` (mode 0600, its directory 0700 if missing) holding `bytes`; an existing
/// file is never overwritten.
pub(crate) fn write_new_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(write_private(path, bytes)?)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// A new random key as base64, for `plinth keys generate`.
pub(crate) fn generate_key_text() -> anyhow::Result<String> {
    let key = SigningKey::generate().map_err(|e| anyhow::anyhow!(e))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(key.expose()))
}

/// The SMTP settings, if `PLINTH_SMTP_URL` is set (checked by `cross_checks` first).
pub(crate) fn mail_config(s: &Settings) -> anyhow::Result<Option<MailConfig>> {
    let Some(url) = &s.smtp_url else {
        return Ok(None);
    };
    let from = s.smtp_from.as_deref().unwrap_or_default();
    let mut mail = MailConfig::parse(url.expose(), from).map_err(|e| {
        if e.starts_with(env::SMTP_FROM) {
            anyhow::anyhow!(e)
        } else {
            anyhow::anyhow!("{} {e}", env::SMTP_URL)
        }
    })?;
    mail.templates_dir.clone_from(&s.smtp_templates_dir);
    Ok(Some(mail))
}

/// What is wrong with the mail settings, if anything.
pub(crate) fn mail_checks(s: &Settings) -> Vec<String> {
    let mut errors = Vec::new();
    match (&s.smtp_url, &s.smtp_from) {
        (Some(url), from) => {
            match MailConfig::parse(url.expose(), from.as_deref().unwrap_or_default()) {
                Err(e) if e.starts_with(env::SMTP_FROM) && from.is_some() => errors.push(e),
                Err(e) if e.starts_with(env::SMTP_FROM) => errors.push(format!(
                    "{} is set but smtp.from ({}) is not: set the sender, such as \"Plinth <no-reply@example.com>\"",
                    env::SMTP_URL,
                    env::SMTP_FROM
                )),
                Err(e) => errors.push(format!("{} {e}", env::SMTP_URL)),
                Ok(m) if m.tls == SmtpTls::None
                    && !m.is_loopback()
                    && s.env == Environment::Production =>
                {
                    errors.push(format!(
                        "{} sends plain SMTP (tls=none) to {}, which is not a loopback host: refused in production, use tls=required or smtps://",
                        env::SMTP_URL,
                        m.host
                    ));
                }
                Ok(_) => {}
            }
        }
        (None, Some(_)) => errors.push(format!(
            "smtp.from ({}) is set but {} is not: set the relay too, or neither",
            env::SMTP_FROM,
            env::SMTP_URL
        )),
        (None, None) => {}
    }
    if s.auth_require_verified_email && s.smtp_url.is_none() {
        errors.push(format!(
            "auth.require_verified_email ({}) needs email: set {} and {} (see docs/auth.md), or turn it off",
            env::AUTH_REQUIRE_VERIFIED_EMAIL,
            env::SMTP_URL,
            env::SMTP_FROM
        ));
    }
    if let Some(dir) = &s.smtp_templates_dir
        && !dir.is_dir()
    {
        errors.push(format!(
            "smtp.templates_dir ({}) {} is not a directory",
            env::SMTP_TEMPLATES_DIR,
            dir.display()
        ));
    }
    errors
}
