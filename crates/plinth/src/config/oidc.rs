//! `[[auth.oidc]]`: the OpenID Connect providers users may sign in with. The settings table
//! holds scalars only; this one array of tables is read here from the parsed file, checked
//! (names, unknown keys, duplicates, https issuers in production, the secret's variable)
//! and shown by `plinth config` with the secret never printed.

use super::{Environment, Settings, env};
use plinth_server::auth::oidc::OidcProvider;
use serde::Deserialize;
use std::path::Path;

/// The scopes asked for when a provider names none.
const DEFAULT_SCOPES: &str = "openid email profile";

/// One `[[auth.oidc]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    issuer: String,
    client_id: String,
    client_secret_env: String,
    #[serde(default)]
    scopes: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct FileAuth {
    #[serde(default)]
    oidc: Vec<Entry>,
}

#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(default)]
    auth: Option<toml::Table>,
}

/// A declared provider, with the name of the variable its secret came from.
#[derive(Debug, Clone)]
pub(crate) struct OidcDecl {
    pub(crate) provider: OidcProvider,
    pub(crate) secret_env: String,
}

fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The providers of the config file `text` (at `path`), their secrets read through `var`.
pub(crate) fn parse(
    path: &Path,
    text: &str,
    settings: &Settings,
    var: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Vec<OidcDecl>> {
    let file = path.display();
    let parsed: File = toml::from_str(text).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
    let Some(auth) = parsed.auth else {
        return Ok(Vec::new());
    };
    let Some(oidc) = auth.get("oidc") else {
        return Ok(Vec::new());
    };
    let table = toml::Table::from_iter([("oidc".to_owned(), oidc.clone())]);
    let entries: FileAuth = table
        .try_into()
        .map_err(|e| anyhow::anyhow!("{file}: [[auth.oidc]]: {e}"))?;
    let mut errors = Vec::new();
    let mut out: Vec<OidcDecl> = Vec::new();
    for (i, entry) in entries.oidc.into_iter().enumerate() {
        let e = entry;
        let at = format!("{file}: [[auth.oidc]] #{} ({:?})", i + 1, e.name);
        if !valid_name(&e.name) {
            errors.push(format!("{at}: name must be 1 to 32 of a-z, 0-9, _ and -"));
        }
        if out.iter().any(|d| d.provider.name == e.name) {
            errors.push(format!("{at}: name is declared twice"));
        }
        let scheme = e.issuer.split_once("://").map(|(s, _)| s);
        let host = e.issuer.split_once("://").map_or("", |(_, r)| r);
        if !matches!(scheme, Some("http" | "https"))
            || host.is_empty()
            || e.issuer.contains(['?', '#', ' '])
        {
            errors.push(format!(
                "{at}: issuer must be an https URL such as https://accounts.example.com"
            ));
        } else if settings.env == Environment::Production && scheme != Some("https") {
            errors.push(format!("{at}: issuer must be https in production"));
        }
        if e.client_id.is_empty() {
            errors.push(format!("{at}: client_id is empty"));
        }
        let secret = var(&e.client_secret_env).filter(|s| !s.is_empty());
        if secret.is_none() {
            errors.push(format!(
                "{at}: the environment variable {:?} named by client_secret_env is not set; it must hold the client secret",
                e.client_secret_env
            ));
        }
        let scopes = e.scopes.unwrap_or_else(|| DEFAULT_SCOPES.to_owned());
        if !scopes.split_whitespace().any(|s| s == "openid") {
            errors.push(format!("{at}: scopes must include openid"));
        }
        out.push(OidcDecl {
            provider: OidcProvider {
                name: e.name,
                issuer: e.issuer,
                client_id: e.client_id,
                client_secret: secret.unwrap_or_default(),
                scopes,
            },
            secret_env: e.client_secret_env,
        });
    }
    if !out.is_empty() && settings.public_url.is_none() {
        errors.push(format!(
            "{file}: [[auth.oidc]] needs public_url ({}): the redirect URI is {{public_url}}/api/v1/auth/oidc/{{name}}/callback",
            env::PUBLIC_URL
        ));
    }
    match errors.as_slice() {
        [] => Ok(out),
        [one] => anyhow::bail!("{one}"),
        several => anyhow::bail!("invalid [[auth.oidc]]:\n  {}", several.join("\n  ")),
    }
}

/// The providers as `plinth config` shows them: the secret's variable, never the secret.
pub(crate) fn render(decls: &[OidcDecl]) -> String {
    let mut out = String::new();
    for d in decls {
        let p = &d.provider;
        let s = |v: &str| toml::Value::String(v.to_owned()).to_string();
        out.push_str(&format!(
            "\n[[auth.oidc]]\nname = {}\nissuer = {}\nclient_id = {}\nclient_secret_env = {} # ****\nscopes = {}\n",
            s(&p.name),
            s(&p.issuer),
            s(&p.client_id),
            s(&d.secret_env),
            s(&p.scopes)
        ));
    }
    out
}
