//! The configuration reference, generated from the settings table: what
//! `plinth config --reference` prints and docs/configuration.md holds between its markers.

use super::settings::{Setting, Settings};
use super::value::{SettingValue, Span};

/// One Markdown table row per setting: file key, environment variable, flag, default,
/// allowed values and meaning.
pub(crate) fn reference() -> String {
    let mut out = String::from(
        "| Key | Environment | Flag | Default | Allowed | Meaning |\n\
         |-----|-------------|------|---------|---------|---------|\n",
    );
    for (setting, default) in Settings::defaults().shown() {
        let code = |text: &str| format!("`{text}`");
        let key = setting.key.map_or_else(|| "–".to_owned(), code);
        let flag = setting.flag.map_or_else(|| "–".to_owned(), code);
        let default = default.map_or_else(|| "unset".to_owned(), |v| code(&v.to_string()));
        let allowed = match setting.range {
            // A span's range is in seconds; its value is written with a unit.
            Some((low, high)) if setting.expected == <Span as SettingValue>::EXPECTED => {
                format!("{} ({low} to {high} s)", setting.expected)
            }
            Some((low, high)) => format!("{low} to {high}"),
            None => setting.expected.to_owned(),
        };
        let allowed = if setting.secret {
            format!("{allowed} (secret: masked, never echoed)")
        } else {
            allowed
        };
        out.push_str(&format!(
            "| {key} | `{}` | {flag} | {default} | {allowed} | {} |\n",
            setting.env, setting.help
        ));
    }
    out
}

/// A flag's help: the setting's help with its variable and default, as `--help` shows it.
pub(crate) fn flag_help(setting: &Setting) -> String {
    let default = Settings::defaults()
        .shown()
        .into_iter()
        .find(|(s, _)| s.env == setting.env)
        .and_then(|(_, shown)| shown);
    let default = match default {
        Some(toml::Value::String(text)) => format!(" [default: {text}]"),
        Some(other) => format!(" [default: {other}]"),
        None => String::new(),
    };
    format!("{} [env: {}]{default}", setting.help, setting.env)
}
