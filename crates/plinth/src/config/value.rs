//! The types settings hold: how each reads from the environment or a flag (text), from the
//! config file (a TOML value), and how `plinth config` shows it.

use std::net::SocketAddr;
use std::path::PathBuf;

/// A type a setting can hold.
pub(crate) trait SettingValue: Sized {
    /// What a valid value looks like, for errors and the reference.
    const EXPECTED: &'static str;
    /// Whether the value is secret: never echoed in errors, masked when shown.
    const SECRET: bool = false;
    /// Parses the text of an environment variable or a flag.
    fn from_text(text: &str) -> Option<Self>;
    /// Reads a value from the config file.
    fn from_file(value: &toml::Value) -> Option<Self> {
        value.as_str().and_then(Self::from_text)
    }
    /// The value as `plinth config` shows it (secrets masked); `None` when unset.
    fn show(&self) -> Option<toml::Value>;
    /// The number a setting's range applies to.
    fn number(&self) -> Option<u64> {
        None
    }
}

macro_rules! whole_numbers {
    ($($ty:ty),*) => {$(
        impl SettingValue for $ty {
            const EXPECTED: &'static str = "a whole number";
            fn from_text(text: &str) -> Option<Self> {
                text.parse().ok()
            }
            fn from_file(value: &toml::Value) -> Option<Self> {
                value.as_integer().and_then(|n| n.try_into().ok())
            }
            fn show(&self) -> Option<toml::Value> {
                i64::try_from(*self).ok().map(toml::Value::Integer)
            }
            fn number(&self) -> Option<u64> {
                u64::try_from(*self).ok()
            }
        }
    )*};
}

whole_numbers!(u32, u64, usize);

impl SettingValue for bool {
    const EXPECTED: &'static str = "true or false";
    fn from_text(text: &str) -> Option<Self> {
        match text {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }
    fn from_file(value: &toml::Value) -> Option<Self> {
        value.as_bool()
    }
    fn show(&self) -> Option<toml::Value> {
        Some(toml::Value::Boolean(*self))
    }
}

impl SettingValue for String {
    const EXPECTED: &'static str = "text";
    fn from_text(text: &str) -> Option<Self> {
        Some(text.to_owned())
    }
    fn show(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.clone()))
    }
}

impl SettingValue for PathBuf {
    const EXPECTED: &'static str = "a path";
    fn from_text(text: &str) -> Option<Self> {
        Some(PathBuf::from(text))
    }
    fn show(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.display().to_string()))
    }
}

impl SettingValue for SocketAddr {
    const EXPECTED: &'static str = "an address like 127.0.0.1:8080";
    fn from_text(text: &str) -> Option<Self> {
        text.parse().ok()
    }
    fn show(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.to_string()))
    }
}

/// A list: comma-separated in the environment, an array in the file. Blank items are dropped.
impl SettingValue for Vec<String> {
    const EXPECTED: &'static str = "a list (comma-separated in the environment)";
    fn from_text(text: &str) -> Option<Self> {
        Some(
            text.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
        )
    }
    fn from_file(value: &toml::Value) -> Option<Self> {
        value
            .as_array()?
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect()
    }
    fn show(&self) -> Option<toml::Value> {
        Some(toml::Value::Array(
            self.iter().cloned().map(toml::Value::String).collect(),
        ))
    }
}

/// Unset unless a layer gives a value.
impl<T: SettingValue> SettingValue for Option<T> {
    const EXPECTED: &'static str = T::EXPECTED;
    const SECRET: bool = T::SECRET;
    fn from_text(text: &str) -> Option<Self> {
        T::from_text(text).map(Some)
    }
    fn from_file(value: &toml::Value) -> Option<Self> {
        T::from_file(value).map(Some)
    }
    fn show(&self) -> Option<toml::Value> {
        self.as_ref().and_then(T::show)
    }
    fn number(&self) -> Option<u64> {
        self.as_ref().and_then(T::number)
    }
}

/// Where Plinth runs; production refuses weak settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Environment {
    Development,
    Production,
}

impl SettingValue for Environment {
    const EXPECTED: &'static str = "production or development";
    fn from_text(text: &str) -> Option<Self> {
        match text {
            "production" => Some(Self::Production),
            "development" => Some(Self::Development),
            _ => None,
        }
    }
    fn show(&self) -> Option<toml::Value> {
        let name = match self {
            Self::Production => "production",
            Self::Development => "development",
        };
        Some(toml::Value::String(name.to_owned()))
    }
}

impl SettingValue for plinth_server::auth::Signup {
    const EXPECTED: &'static str = "off or open";
    fn from_text(text: &str) -> Option<Self> {
        match text {
            "off" => Some(Self::Off),
            "open" => Some(Self::Open),
            _ => None,
        }
    }
    fn show(&self) -> Option<toml::Value> {
        let name = match self {
            Self::Off => "off",
            Self::Open => "open",
        };
        Some(toml::Value::String(name.to_owned()))
    }
}

/// A `tracing` filter such as `info` or `plinth=debug,info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogFilter(String);

impl LogFilter {
    pub(crate) fn new(text: &str) -> Self {
        Self(text.to_owned())
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl SettingValue for LogFilter {
    const EXPECTED: &'static str = "a log filter such as info, warn or plinth=debug,info";
    fn from_text(text: &str) -> Option<Self> {
        tracing_subscriber::EnvFilter::try_new(text)
            .ok()
            .map(|_| Self::new(text))
    }
    fn show(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.0.clone()))
    }
}

/// A secret, such as a password or a key: never shown.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn new(text: &str) -> Self {
        Self(text.to_owned())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("****")
    }
}

impl SettingValue for Secret {
    const EXPECTED: &'static str = "text";
    const SECRET: bool = true;
    fn from_text(text: &str) -> Option<Self> {
        Some(Self::new(text))
    }
    fn show(&self) -> Option<toml::Value> {
        Some(toml::Value::String("****".to_owned()))
    }
}

/// A database URL that may hold a password: shown with the password masked.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SecretUrl(String);

impl SecretUrl {
    pub(crate) fn new(text: &str) -> Self {
        Self(text.to_owned())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&mask_url(&self.0))
    }
}

impl SettingValue for SecretUrl {
    const EXPECTED: &'static str = "a URL";
    const SECRET: bool = true;
    fn from_text(text: &str) -> Option<Self> {
        Some(Self::new(text))
    }
    fn show(&self) -> Option<toml::Value> {
        Some(toml::Value::String(mask_url(&self.0)))
    }
}

/// `scheme://user:password@host/db` → `scheme://user:****@host/db`.
pub(crate) fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((auth, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:****@{host}"),
        None => url.to_owned(),
    }
}

/// A span of time written with its unit (`90s`, `30m`, `24h`, `7d`) or as whole seconds.
/// Its range is checked in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span(u64);

impl Span {
    /// `hours` hours.
    pub(crate) const fn hours(hours: u64) -> Self {
        Self(hours * 3600)
    }

    /// `seconds` seconds.
    pub(crate) const fn seconds(seconds: u64) -> Self {
        Self(seconds)
    }

    /// The span as a `Duration`.
    pub(crate) fn duration(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.0)
    }
}

/// The units a [`Span`] may be written in, largest first, with their seconds.
const SPAN_UNITS: [(char, u64); 4] = [('d', 86_400), ('h', 3600), ('m', 60), ('s', 1)];

impl SettingValue for Span {
    const EXPECTED: &'static str = "a span of time such as 90s, 30m, 24h or 7d, or whole seconds";
    fn from_text(text: &str) -> Option<Self> {
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text.parse().ok().map(Self);
        }
        let unit = text.chars().last()?;
        let (_, seconds) = SPAN_UNITS.iter().find(|(u, _)| *u == unit)?;
        let number = text.strip_suffix(unit)?;
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        number.parse::<u64>().ok()?.checked_mul(*seconds).map(Self)
    }
    fn from_file(value: &toml::Value) -> Option<Self> {
        match value {
            toml::Value::Integer(n) => u64::try_from(*n).ok().map(Self),
            other => other.as_str().and_then(Self::from_text),
        }
    }
    fn show(&self) -> Option<toml::Value> {
        let (unit, seconds) = SPAN_UNITS
            .iter()
            // Days from two on: a day is shown as `24h`.
            .find(|(u, s)| {
                self.0.is_multiple_of(*s) && self.0 > 0 && (*u != 'd' || self.0 >= 2 * s)
            })
            .copied()
            .unwrap_or(('s', 1));
        Some(toml::Value::String(format!("{}{unit}", self.0 / seconds)))
    }
    fn number(&self) -> Option<u64> {
        Some(self.0)
    }
}
