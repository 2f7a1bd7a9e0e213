//! Where a setting's value comes from: command-line flags, then the environment, then the
//! config file. Values are parsed and range-checked here, and a refusal names the setting,
//! where its value came from and what is allowed.

use super::settings::{SETTINGS, Setting};
use super::value::SettingValue;
use std::collections::HashMap;
use std::path::Path;

/// A value in the config file, with the line it is on.
#[derive(Debug)]
struct FileValue {
    line: usize,
    value: toml::Value,
}

/// The config file's settings, by key (`table.key` inside a table).
#[derive(Debug, Default)]
pub(super) struct FileLayer {
    path: String,
    values: HashMap<String, FileValue>,
}

/// Tables of the file that are not settings (read elsewhere).
const OTHER_TABLES: &[&str] = &["models", "auth.oidc"];

impl FileLayer {
    /// Reads the settings of a config file, refusing keys that are not settings.
    pub(super) fn parse(path: &Path, text: &str) -> anyhow::Result<Self> {
        let path = path.display().to_string();
        let document = toml::de::DeTable::parse(text).map_err(|mut e| {
            e.set_input(Some(text));
            anyhow::anyhow!("{path}: {e}")
        })?;
        let mut layer = Self {
            path,
            values: HashMap::new(),
        };
        let mut errors = Vec::new();
        layer.collect("", document.into_inner(), text, &mut errors);
        if !errors.is_empty() {
            anyhow::bail!("{}", errors.join("\n"));
        }
        Ok(layer)
    }

    fn collect(
        &mut self,
        prefix: &str,
        table: toml::de::DeTable<'_>,
        text: &str,
        errors: &mut Vec<String>,
    ) {
        for (key, value) in table {
            let name = format!("{prefix}{}", key.get_ref());
            let line = line_of(text, key.span().start);
            if OTHER_TABLES.contains(&name.as_str()) {
                continue;
            }
            let is_setting = SETTINGS.iter().any(|s| s.key == Some(name.as_str()));
            let table_prefix = format!("{name}.");
            let is_table = SETTINGS
                .iter()
                .any(|s| s.key.is_some_and(|k| k.starts_with(&table_prefix)));
            match value.into_inner() {
                toml::de::DeValue::Table(inner) if is_table => {
                    self.collect(&table_prefix, inner, text, errors);
                }
                value if is_setting => {
                    let span = toml::Spanned::new(0..0, value);
                    match serde::Deserialize::deserialize(toml::de::ValueDeserializer::from(span)) {
                        Ok(value) => {
                            self.values.insert(name, FileValue { line, value });
                        }
                        Err(e) => errors.push(format!(
                            "{} line {line}: {name}: {}",
                            self.path,
                            e.message()
                        )),
                    }
                }
                _ if is_table => errors.push(format!(
                    "{} line {line}: {name} must be a table ([{name}])",
                    self.path
                )),
                _ => errors.push(format!("{} line {line}: unknown key {name:?}", self.path)),
            }
        }
    }
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

/// The layers above the defaults.
pub(super) struct Layers<'a> {
    /// `(flag, value)` pairs given on the command line.
    pub(super) flags: &'a [(&'static str, String)],
    /// The environment; empty values count as unset.
    pub(super) var: &'a dyn Fn(&str) -> Option<String>,
    pub(super) file: &'a FileLayer,
}

/// Where a value came from.
enum Origin<'a> {
    Flag(&'static str, &'a str),
    Env(&'static str, &'a str),
    File(&'a str, &'a FileValue),
}

impl Layers<'_> {
    /// The value of `setting` from the highest layer that sets it, or `None` when none does
    /// or the value is refused (the refusal is added to `errors`).
    pub(super) fn value<T: SettingValue>(
        &self,
        setting: &Setting,
        errors: &mut Vec<String>,
    ) -> Option<T> {
        let env = (self.var)(setting.env).filter(|v| !v.is_empty());
        let flag = setting.flag.and_then(|name| {
            self.flags
                .iter()
                .find(|(f, _)| *f == name)
                .map(|(f, v)| (*f, v.as_str()))
        });
        let file = setting.key.and_then(|k| self.file.values.get(k));
        let (origin, parsed) = if let Some((name, text)) = flag {
            (Origin::Flag(name, text), T::from_text(text))
        } else if let Some(text) = env.as_deref() {
            (Origin::Env(setting.env, text), T::from_text(text))
        } else if let Some(value) = file {
            (
                Origin::File(&self.file.path, value),
                T::from_file(&value.value),
            )
        } else {
            return None;
        };
        let Some(value) = parsed else {
            errors.push(refusal(
                setting,
                &origin,
                &format!("is not {}", setting.expected),
            ));
            return None;
        };
        if let (Some((low, high)), Some(n)) = (setting.range, value.number())
            && !(low..=high).contains(&n)
        {
            errors.push(refusal(
                setting,
                &origin,
                &format!("is out of range: allowed {low} to {high}"),
            ));
            return None;
        }
        Some(value)
    }
}

/// `SUBJECT PROBLEM`, where the subject names the setting and where its value came from,
/// without the value of a secret.
fn refusal(setting: &Setting, origin: &Origin<'_>, problem: &str) -> String {
    let shown = |text: &str| {
        if setting.secret {
            "****".to_owned()
        } else {
            format!("{text:?}")
        }
    };
    let subject = match origin {
        Origin::Flag(flag, text) => format!("{flag} {}", shown(text)),
        Origin::Env(name, text) => format!("{name}={}", shown(text)),
        Origin::File(path, value) => {
            let text = if setting.secret {
                "****".to_owned()
            } else {
                value.value.to_string()
            };
            return format!(
                "{path} line {}: {} = {text} {problem}",
                value.line,
                setting.name()
            );
        }
    };
    match setting.key {
        Some(key) => format!("{subject} {problem} (setting {key})"),
        None => format!("{subject} {problem}"),
    }
}
