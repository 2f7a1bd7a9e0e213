//! Configuration: defaults → config file → environment → command-line flags, validated
//! once at start. Every setting is declared once, in [`settings`]; loading, validation,
//! `plinth config` and the reference in docs/configuration.md all derive from it.

mod auth;
mod encryption;
mod files;
mod layers;
mod oidc;
mod reference;
mod settings;
mod value;

use crate::cli::{GlobalArgs, ServeArgs};
use anyhow::{Context, bail};
pub(crate) use auth::{KeySource, generate_key_text};
pub(crate) use encryption::EncryptionSource;
use layers::{FileLayer, Layers};
use plinth_core::schema::DeclError;
use plinth_core::{ModelDecl, Schema};
use plinth_server::auth::TrustedProxies;
pub(crate) use reference::{flag_help, reference};
use serde::{Deserialize, Serialize};
pub(crate) use settings::{SETTINGS, Settings, env, setting};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
#[cfg(test)]
use value::mask_url;
pub(crate) use value::{Environment, Secret, SecretUrl};

/// Where the data lives.
#[derive(Debug, Clone)]
pub(crate) enum Database {
    /// An embedded SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL server shared by any number of instances.
    Postgres(SecretUrl),
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) settings: Settings,
    /// The config file read, if any.
    pub(crate) config_file: Option<PathBuf>,
    /// Where the token-signing key comes from.
    pub(crate) key: KeySource,
    /// Where the keys sealing personal data come from.
    pub(crate) encryption: EncryptionSource,
    pub(crate) models: Vec<ModelDecl>,
    /// The OpenID Connect providers (`[[auth.oidc]]`).
    pub(crate) oidc: Vec<oidc::OidcDecl>,
    /// The validated models.
    pub(crate) schema: Schema,
}

/// The `[[models]]` of the config file, with their positions for error messages.
#[derive(Debug, Default, Deserialize)]
struct FileModels {
    #[serde(default)]
    models: Vec<toml::Spanned<ModelDecl>>,
}

impl Config {
    /// Loads and validates the configuration. `listen` is the `serve --listen` flag.
    pub(crate) fn load(args: &GlobalArgs, listen: Option<SocketAddr>) -> anyhow::Result<Self> {
        Self::load_from(args, listen, |k| std::env::var(k).ok())
    }

    /// Loads and validates the configuration of `plinth serve`, with its flags.
    pub(crate) fn load_serve(args: &GlobalArgs, serve: &ServeArgs) -> anyhow::Result<Self> {
        let mut flags = flags(args, serve.listen)?;
        flags.extend(path_flag("--tls-cert", serve.tls_cert.as_ref())?);
        flags.extend(path_flag("--tls-key", serve.tls_key.as_ref())?);
        Self::load_flags(flags, |k| std::env::var(k).ok())
    }

    pub(crate) fn load_from(
        args: &GlobalArgs,
        listen: Option<SocketAddr>,
        var: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        Self::load_flags(flags(args, listen)?, var)
    }

    fn load_flags(
        flags: Vec<(&'static str, String)>,
        var: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let mut errors = Vec::new();
        let no_file = FileLayer::default();
        let named = Layers {
            flags: &flags,
            var: &var,
            file: &no_file,
        }
        .value::<Option<PathBuf>>(&setting::config, &mut errors)
        .flatten();
        let (path, text) = read_file(named)?;
        let (file, models) = match &path {
            Some(p) => (FileLayer::parse(p, &text)?, parse_models(p, &text)?),
            None => (FileLayer::default(), Vec::new()),
        };
        let layers = Layers {
            flags: &flags,
            var: &var,
            file: &file,
        };
        let settings = Settings::resolve(&layers, &mut errors);
        errors.extend(cross_checks(&settings));
        match errors.as_slice() {
            [] => {}
            [one] => bail!("{one}"),
            several => bail!("invalid settings:\n  {}", several.join("\n  ")),
        }
        let oidc = match &path {
            Some(p) => oidc::parse(p, &text, &settings, &var)?,
            None => Vec::new(),
        };
        let key = KeySource::resolve(&settings)?;
        let encryption = EncryptionSource::resolve(&settings)?;
        let decls: Vec<ModelDecl> = models.iter().map(|m| m.get_ref().clone()).collect();
        let schema = Schema::from_decls(&decls)
            .map_err(|errors| decl_errors(&errors, &models, path.as_deref(), &text))?;
        Ok(Self {
            settings,
            config_file: path,
            key,
            encryption,
            models: decls,
            oidc,
            schema,
        })
    }

    /// The database: a SQLite file (the default, under the data directory) or a PostgreSQL
    /// server (`DATABASE_URL=postgres://…`).
    pub(crate) fn database(&self) -> anyhow::Result<Database> {
        let needs_postgres = || {
            anyhow::anyhow!(
                "{} needs a PostgreSQL {}",
                env::DATABASE_READ_URL,
                env::DATABASE_URL
            )
        };
        let read_url = &self.settings.database_read_url;
        let Some(url) = &self.settings.database_url else {
            if read_url.is_some() {
                return Err(needs_postgres());
            }
            return Ok(Database::Sqlite(self.settings.data_dir.join("plinth.db")));
        };
        let text = url.expose();
        if let Some(path) = text
            .strip_prefix("sqlite://")
            .or_else(|| text.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                bail!("{}={text:?} names no file", env::DATABASE_URL);
            }
            if read_url.is_some() {
                return Err(needs_postgres());
            }
            return Ok(Database::Sqlite(PathBuf::from(path)));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Database::Postgres(url.clone()));
        }
        if read_url.is_some() {
            return Err(needs_postgres());
        }
        let scheme = text.split_once("://").map_or("", |(s, _)| s);
        bail!(
            "{}: the {scheme:?} scheme is not supported; use postgres://…, sqlite://PATH, or leave it unset for {}/plinth.db",
            env::DATABASE_URL,
            self.settings.data_dir.display()
        )
    }

    /// Unknown `PLINTH_*` variables, most likely typos.
    pub(crate) fn unknown_env_vars() -> Vec<String> {
        std::env::vars()
            .map(|(k, _)| k)
            .filter(|k| k.starts_with("PLINTH_") && !SETTINGS.iter().any(|s| s.env == k))
            .collect()
    }

    /// The effective configuration as TOML, secrets masked: every setting the file can
    /// hold, then the database in use, the file read, the signing key's source and the
    /// models.
    pub(crate) fn render(&self) -> String {
        let mut top = String::new();
        let mut tables: Vec<(&str, String)> = Vec::new();
        let database = match (&self.settings.database_url, self.database()) {
            (Some(url), _) => format!("{url:?}"),
            (None, Ok(Database::Sqlite(path))) => format!("sqlite://{}", path.display()),
            (None, Ok(Database::Postgres(_))) => String::new(),
            (None, Err(e)) => e.to_string(),
        };
        for (setting, value) in self.settings.shown() {
            let (Some(key), Some(value)) = (setting.key, value) else {
                continue;
            };
            let (table, key) = key.split_once('.').unwrap_or(("", key));
            section(&mut top, &mut tables, table, &format!("{key} = {value}\n"));
        }
        let mut extra = vec![("", "database", database)];
        if let Some(file) = &self.config_file {
            extra.push(("", "config_file", file.display().to_string()));
        }
        extra.push(("auth", "signing_key", format!("{:?}", self.key)));
        extra.push(("encryption", "keys", format!("{:?}", self.encryption)));
        for (table, key, text) in extra {
            let line = format!("{key} = {}\n", toml::Value::String(text));
            section(&mut top, &mut tables, table, &line);
        }
        for (name, body) in tables {
            top.push_str(&format!("\n[{name}]\n{body}"));
        }
        top.push_str(&oidc::render(&self.oidc));
        #[derive(Serialize)]
        struct Models<'a> {
            models: &'a [ModelDecl],
        }
        let defaults = [ModelDecl::default_resource()];
        let models = Models {
            models: if self.models.is_empty() {
                &defaults
            } else {
                &self.models
            },
        };
        match toml::to_string_pretty(&models) {
            Ok(text) => top.push_str(&format!("\n{text}")),
            Err(e) => top.push_str(&format!("# cannot render the models: {e}\n")),
        }
        top
    }
}

/// Appends `line` to the top level, or to `table`'s section.
fn section<'a>(top: &mut String, tables: &mut Vec<(&'a str, String)>, table: &'a str, line: &str) {
    if table.is_empty() {
        top.push_str(line);
    } else if let Some((_, body)) = tables.iter_mut().find(|(t, _)| *t == table) {
        body.push_str(line);
    } else {
        tables.push((table, line.to_owned()));
    }
}

/// The flags that set settings, as text like the environment's.
fn flags(
    args: &GlobalArgs,
    listen: Option<SocketAddr>,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    let flags = [
        path_flag("--config", args.config.as_ref())?,
        path_flag("--data-dir", args.data_dir.as_ref())?,
        args.log_level.clone().map(|l| ("--log-level", l)),
        listen.map(|l| ("--listen", l.to_string())),
    ];
    Ok(flags.into_iter().flatten().collect())
}

/// A path flag, as text like the environment's.
fn path_flag(
    flag: &'static str,
    path: Option<&PathBuf>,
) -> anyhow::Result<Option<(&'static str, String)>> {
    path.map(|p| {
        p.to_str()
            .map(|s| (flag, s.to_owned()))
            .with_context(|| format!("{flag} {}: not valid UTF-8", p.display()))
    })
    .transpose()
}

/// The shortest metrics token production accepts.
const MIN_METRICS_TOKEN_CHARS: usize = 32;

/// Refusals that involve more than one setting.
fn cross_checks(s: &Settings) -> Vec<String> {
    let mut errors = Vec::new();
    if s.env == Environment::Production && s.auth_argon2_memory_kib < 19 * 1024 {
        errors.push(format!(
            "auth.argon2_memory_kib = {} ({}) below 19456 (the OWASP minimum) is refused in production",
            s.auth_argon2_memory_kib,
            env::AUTH_ARGON2_MEMORY_KIB
        ));
    }
    if u64::from(s.auth_argon2_memory_kib) < 8 * u64::from(s.auth_argon2_parallelism) {
        errors.push(format!(
            "auth.argon2_memory_kib = {} ({}) is less than 8 KiB per lane of auth.argon2_parallelism = {} ({})",
            s.auth_argon2_memory_kib,
            env::AUTH_ARGON2_MEMORY_KIB,
            s.auth_argon2_parallelism,
            env::AUTH_ARGON2_PARALLELISM
        ));
    }
    if s.tls_cert_file.is_some() != s.tls_key_file.is_some() {
        errors.push(format!(
            "set both tls.cert_file ({} or --tls-cert) and tls.key_file ({} or --tls-key) to serve HTTPS, or neither",
            env::TLS_CERT_FILE,
            env::TLS_KEY_FILE
        ));
    }
    if s.tls_redirect_from.is_some() && s.tls_cert_file.is_none() {
        errors.push(format!(
            "tls.redirect_from ({}) redirects to HTTPS, which needs tls.cert_file and tls.key_file",
            env::TLS_REDIRECT_FROM
        ));
    }
    if s.env == Environment::Production
        && s.metrics_token
            .as_ref()
            .is_some_and(|t| t.expose().chars().count() < MIN_METRICS_TOKEN_CHARS)
    {
        errors.push(format!(
            "{} shorter than {MIN_METRICS_TOKEN_CHARS} characters is refused in production (make one with `openssl rand -base64 32`)",
            env::METRICS_TOKEN
        ));
    }
    errors.extend(files::checks(s));
    errors.extend(auth::mail_checks(s));
    if let Some(url) = &s.public_url {
        let scheme = url.split_once("://").map(|(s, _)| s);
        let host = url.split_once("://").map_or("", |(_, rest)| rest);
        if !matches!(scheme, Some("http" | "https"))
            || host.is_empty()
            || host.starts_with('/')
            || url.contains(['?', '#', ' '])
        {
            errors.push(format!(
                "public_url ({}) must be an http or https address such as https://api.example.com, without a query or fragment",
                env::PUBLIC_URL
            ));
        } else if s.env == Environment::Production && scheme != Some("https") {
            errors.push(format!(
                "public_url ({}) must be https in production: links in messages and sign-in redirects carry tokens",
                env::PUBLIC_URL
            ));
        }
    }
    for d in &s.auth_signup_domains {
        let d = d.trim().trim_start_matches('@');
        if d.is_empty() || !d.contains('.') || d.contains(['@', '/', ' ']) {
            errors.push(format!(
                "auth.signup_domains ({}): {d:?} is not a domain such as example.com",
                env::AUTH_SIGNUP_DOMAINS
            ));
        }
    }
    if let Err(e) = TrustedProxies::parse(&s.trusted_proxies) {
        errors.push(format!("trusted_proxies ({}): {e}", env::TRUSTED_PROXIES));
    }
    errors
}

/// Reads the named config file (which must exist), or `./plinth.toml` if present.
fn read_file(named: Option<PathBuf>) -> anyhow::Result<(Option<PathBuf>, String)> {
    let path = match named {
        Some(p) => p,
        None if Path::new("plinth.toml").exists() => PathBuf::from("plinth.toml"),
        None => return Ok((None, String::new())),
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    Ok((Some(path), text))
}

fn parse_models(path: &Path, text: &str) -> anyhow::Result<Vec<toml::Spanned<ModelDecl>>> {
    let file: FileModels =
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(file.models)
}

fn decl_errors(
    errors: &[DeclError],
    spans: &[toml::Spanned<ModelDecl>],
    path: Option<&Path>,
    text: &str,
) -> anyhow::Error {
    let file = path.map_or_else(|| "config".to_owned(), |p| p.display().to_string());
    let lines: Vec<String> = errors
        .iter()
        .map(|e| {
            let line = spans
                .get(e.model_index)
                .map(|s| text[..s.span().start.min(text.len())].matches('\n').count() + 1);
            match line {
                Some(line) => format!("{file}:{line}: {}: {}", e.location, e.reason),
                None => format!("{file}: {}: {}", e.location, e.reason),
            }
        })
        .collect();
    anyhow::anyhow!("invalid model declarations:\n  {}", lines.join("\n  "))
}

#[cfg(test)]
mod tests;
