//! Encryption at rest of personal data: values of `pii` fields and account emails are
//! stored sealed with AES-256-GCM, and looked up for equality through a blind index
//! (HMAC-SHA-256 under a separate key), never by opening every row.
//!
//! - [`Keyring`]: the keys themselves, parsed from the key text: one `id=<base64 of 32
//!   bytes>` entry per line (or separated by commas or spaces, as an environment variable
//!   holds them). The entry `index` is the blind-index key; every other entry is a sealing
//!   key, the last one listed sealing new values, all of them opening.
//! - [`Keys`]: the keyring a store uses, shared by its connections; one read from a file is
//!   re-read when the file changes (checked at most once per [`RECHECK`] while sealing) or
//!   at once when a value names a key it does not hold (at most once per
//!   [`FORCED_RELOAD`]), so running servers pick up `plinth keys rotate`.
//!
//! A sealed value is the text `v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>`, with a
//! fresh random 96-bit nonce, and the table, column and row id as associated data: copied
//! to another row or column it no longer opens.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use plinth_core::Schema;
use plinth_core::schema::{FieldDef, ModelDef};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The version tag of the sealed format.
const VERSION: &str = "v1";

/// The id of the blind-index key in the key text.
pub const INDEX_KEY_ID: &str = "index";

/// How long a key file is trusted before its modification time is checked again.
pub const RECHECK: Duration = Duration::from_secs(1);

/// The least time between two re-reads of a key file forced by a value under a key not
/// held (such values come from the database, but a flood of them must not become a flood
/// of reads).
pub const FORCED_RELOAD: Duration = Duration::from_millis(100);

/// The longest key id.
const MAX_ID_LEN: usize = 16;

/// Key material that cannot be used: the message says why, never the key.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

impl KeyError {
    fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

/// The blind-index key and the sealing keys, by id.
pub struct Keyring {
    index: hmac::Key,
    /// Sealing keys in the order listed; the last one seals.
    keys: Vec<(String, LessSafeKey)>,
    rng: SystemRandom,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("keys", &self.ids().collect::<Vec<_>>())
            .field("active", &self.active())
            .finish_non_exhaustive()
    }
}

/// The `id=value` entries of key text, in order (comments start with `#`).
fn entries(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.split([',', ' ', '\t']))
        .map(str::trim)
        .filter(|e| !e.is_empty())
}

/// A key id: 1 to 16 lowercase ASCII letters and digits.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// The 32 bytes of an entry's value; `at` names the entry (never its text).
fn decode_key(at: &str, value: &str) -> Result<[u8; 32], KeyError> {
    let bytes = STANDARD
        .decode(value)
        .or_else(|_| URL_SAFE_NO_PAD.decode(value))
        .map_err(|_| KeyError::new(format!("{at}: the key is not base64")))?;
    bytes
        .try_into()
        .map_err(|_| KeyError::new(format!("{at}: the key is not 32 bytes")))
}

fn random_key(rng: &SystemRandom) -> Result<String, KeyError> {
    let mut bytes = [0u8; 32];
    rng.fill(&mut bytes)
        .map_err(|_| KeyError::new("the system random generator failed"))?;
    Ok(STANDARD.encode(bytes))
}

impl Keyring {
    /// Parses key text: exactly one `index` entry, at least one sealing key, ids unique.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let mut index = None;
        let mut keys: Vec<(String, LessSafeKey)> = Vec::new();
        // Errors name an entry by its position and by its id once the id is valid: a
        // rejected id or value may be key material (a bare base64 key ends in `=`).
        for (n, entry) in entries(text).enumerate() {
            let n = n + 1;
            let Some((id, value)) = entry.split_once('=') else {
                return Err(KeyError::new(format!(
                    "entry {n} is not `id=<base64 of 32 bytes>`"
                )));
            };
            let (id, value) = (id.trim(), value.trim());
            if !valid_id(id) {
                return Err(KeyError::new(format!(
                    "entry {n}: a key id must be 1 to {MAX_ID_LEN} lowercase letters and digits (each entry is `id=<base64 of 32 bytes>`)"
                )));
            }
            let at = format!("entry {n} ({id})");
            let bytes = decode_key(&at, value)?;
            if id == INDEX_KEY_ID {
                if index.is_some() {
                    return Err(KeyError::new(format!(
                        "{at}: the `index` key is listed twice"
                    )));
                }
                index = Some(hmac::Key::new(hmac::HMAC_SHA256, &bytes));
                continue;
            }
            if keys.iter().any(|(k, _)| k == id) {
                return Err(KeyError::new(format!("{at}: the key id is listed twice")));
            }
            let key = UnboundKey::new(&AES_256_GCM, &bytes)
                .map_err(|_| KeyError::new(format!("{at}: not an AES-256 key")))?;
            keys.push((id.to_owned(), LessSafeKey::new(key)));
        }
        let index = index.ok_or_else(|| {
            KeyError::new("no `index=` entry (the blind-index key, kept for good)")
        })?;
        if keys.is_empty() {
            return Err(KeyError::new("no sealing key (an entry such as `k1=`)"));
        }
        Ok(Self {
            index,
            keys,
            rng: SystemRandom::new(),
        })
    }

    /// A new random keyring (tests, and throwaway stores).
    pub fn generate() -> Result<Self, KeyError> {
        Self::parse(&Self::generate_text()?)
    }

    /// New key text: a blind-index key and one sealing key, `k1`.
    pub fn generate_text() -> Result<String, KeyError> {
        let rng = SystemRandom::new();
        Ok(format!(
            "{INDEX_KEY_ID}={}\nk1={}\n",
            random_key(&rng)?,
            random_key(&rng)?
        ))
    }

    /// `text` with a new sealing key appended (so it seals from now on), and its id: `k`
    /// and one more than the largest number of a `k<number>` id.
    pub fn add_key(text: &str) -> Result<(String, String), KeyError> {
        let ring = Self::parse(text)?;
        let next = ring
            .ids()
            .filter_map(|id| id.strip_prefix('k')?.parse::<u32>().ok())
            .max()
            .unwrap_or(0)
            + 1;
        let id = format!("k{next}");
        let mut out = text.trim_end().to_owned();
        out.push_str(&format!("\n{id}={}\n", random_key(&ring.rng)?));
        Self::parse(&out)?;
        Ok((id, out))
    }

    /// `text` without the sealing key `id`; refused for the key that seals, and for the
    /// blind-index key.
    pub fn remove_key(text: &str, id: &str) -> Result<String, KeyError> {
        let ring = Self::parse(text)?;
        if id == INDEX_KEY_ID {
            return Err(KeyError::new(
                "the `index` key cannot be retired: every blind index is made with it",
            ));
        }
        if !ring.ids().any(|k| k == id) {
            return Err(KeyError::new("there is no key by that id"));
        }
        if ring.active() == id {
            return Err(KeyError::new(format!(
                "key {id:?} seals new values; rotate to a new key first"
            )));
        }
        let prefix = format!("{id}=");
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with(&prefix))
            .collect();
        let out = format!("{}\n", kept.join("\n").trim_end());
        let after = Self::parse(&out)?;
        if after.ids().any(|k| k == id) {
            return Err(KeyError::new(format!(
                "key {id:?} is not on a line of its own; edit the key text by hand"
            )));
        }
        Ok(out)
    }

    /// The ids of the sealing keys, in the order listed.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(id, _)| id.as_str())
    }

    /// The id of the key that seals new values.
    pub fn active(&self) -> &str {
        self.keys.last().map_or("", |(id, _)| id.as_str())
    }

    fn has(&self, id: &str) -> bool {
        self.keys.iter().any(|(k, _)| k == id)
    }

    /// Seals `plaintext` under the active key, bound to `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &str) -> Result<String, KeyError> {
        let Some((id, key)) = self.keys.last() else {
            return Err(KeyError::new("no sealing key"));
        };
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| KeyError::new("the system random generator failed"))?;
        let mut buf = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
        buf.extend_from_slice(&nonce);
        buf.extend_from_slice(plaintext.as_bytes());
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf[NONCE_LEN..],
            )
            .map_err(|_| KeyError::new("sealing failed"))?;
        buf.extend_from_slice(tag.as_ref());
        let mut out = String::with_capacity(VERSION.len() + id.len() + 2 + buf.len() * 4 / 3 + 4);
        out.push_str(VERSION);
        out.push(':');
        out.push_str(id);
        out.push(':');
        URL_SAFE_NO_PAD.encode_string(&buf, &mut out);
        Ok(out)
    }

    /// Opens a value [`Keyring::seal`] made with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &str) -> Result<String, KeyError> {
        let (id, body) = split(sealed)
            .filter(|(id, _)| valid_id(id))
            .ok_or_else(|| KeyError::new("is not a sealed value"))?;
        let (_, key) = self
            .keys
            .iter()
            .find(|(k, _)| k == id)
            .ok_or_else(|| KeyError::new(format!("names key {id:?}, which is not held")))?;
        let mut buf = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| KeyError::new("is not a sealed value"))?;
        if buf.len() < NONCE_LEN + 16 {
            return Err(KeyError::new("is not a sealed value"));
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&buf[..NONCE_LEN]);
        let plain = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf[NONCE_LEN..],
            )
            .map_err(|_| {
                KeyError::new(format!(
                    "does not open under key {id:?}: altered, or moved from another row or column"
                ))
            })?;
        let len = plain.len();
        buf.copy_within(NONCE_LEN..NONCE_LEN + len, 0);
        buf.truncate(len);
        String::from_utf8(buf).map_err(|_| KeyError::new("opens to text that is not UTF-8"))
    }

    /// The blind index of `value` in the column `label`: base64url of its HMAC-SHA-256.
    pub fn blind(&self, label: &str, value: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.index);
        ctx.update(label.as_bytes());
        ctx.update(&[0]);
        ctx.update(value.as_bytes());
        URL_SAFE_NO_PAD.encode(ctx.sign().as_ref())
    }
}

/// The key id and body of a sealed value.
fn split(sealed: &str) -> Option<(&str, &str)> {
    let rest = sealed.strip_prefix(VERSION)?.strip_prefix(':')?;
    rest.split_once(':')
}

/// The id of the key a stored value was sealed under, if it is a sealed value.
pub fn sealed_key_id(sealed: &str) -> Option<&str> {
    split(sealed).map(|(id, _)| id)
}

/// Whether a stored value is a sealed value in form: `v1:`, a valid key id, and a body of
/// base64url at least a nonce and a tag long. Plaintext never is: an email holds an `@`,
/// which base64url does not, whatever its local part starts with.
pub fn is_sealed(stored: &str) -> bool {
    split(stored).is_some_and(|(id, body)| {
        valid_id(id)
            && URL_SAFE_NO_PAD
                .decode(body)
                .is_ok_and(|b| b.len() >= NONCE_LEN + 16)
    })
}

/// The associated data binding a sealed value to its table, column and row.
pub(crate) fn aad(table: &str, column: &str, id: &Uuid) -> Vec<u8> {
    let mut out = Vec::with_capacity(table.len() + column.len() + 18);
    out.extend_from_slice(table.as_bytes());
    out.push(0);
    out.extend_from_slice(column.as_bytes());
    out.push(0);
    out.extend_from_slice(id.as_bytes());
    out
}

mod keys;
pub use keys::Keys;

#[cfg(test)]
mod tests;

/// Where sealed values are stored: the pii columns of a model's table, the accounts'
/// emails, or their TOTP secrets. What `plinth keys rotate` re-seals and `plinth keys
/// retire` counts.
#[derive(Debug, Clone)]
pub enum SealedTable {
    /// A model with at least one pii field.
    Model(Arc<ModelDef>),
    /// `_plinth_users.email`.
    Emails,
    /// `_plinth_totp.secret`: users' TOTP secrets (rows keyed by `user_id`).
    TotpSecrets,
}

impl SealedTable {
    /// Every place sealed values are kept under `schema`: its models with pii fields, then
    /// the emails, then the TOTP secrets.
    pub fn all(schema: &Schema) -> Vec<Self> {
        let mut out: Vec<Self> = schema
            .models()
            .iter()
            .filter(|m| m.fields().iter().any(FieldDef::pii))
            .map(|m| Self::Model(Arc::clone(m)))
            .collect();
        out.push(Self::Emails);
        out.push(Self::TotpSecrets);
        out
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Model(m) => m.name().as_str(),
            Self::Emails => crate::sql::accounts::EMAIL_TABLE,
            Self::TotpSecrets => crate::sql::accounts::mfa::TOTP_TABLE,
        }
    }

    /// The column that identifies a row (the id its sealed values are bound to).
    pub fn id_column(&self) -> &'static str {
        match self {
            Self::Model(_) | Self::Emails => "id",
            Self::TotpSecrets => "user_id",
        }
    }

    /// Its sealed columns.
    pub fn columns(&self) -> Vec<&str> {
        match self {
            Self::Model(m) => m
                .fields()
                .iter()
                .filter(|f| f.pii())
                .map(|f| f.name().as_str())
                .collect(),
            Self::Emails => vec![crate::sql::accounts::EMAIL_COLUMN],
            Self::TotpSecrets => vec![crate::sql::accounts::mfa::TOTP_COLUMN],
        }
    }
}
