//! File fields: the rules a declared `file` field puts on its uploads (size, sniffed
//! type, count), and the shape of a stored file's name.

use super::FieldDecl;
use crate::record::Value;

/// `max_size` of a file field that declares none: 10 MiB.
pub const DEFAULT_FILE_MAX_SIZE: u64 = 10 << 20;
/// The largest `max_size` a declaration may ask for: 4 GiB (a server may accept less).
pub const FILE_MAX_SIZE_CAP: u64 = 4 << 30;
/// `max_files` of a `multiple` file field that declares none.
pub const DEFAULT_MAX_FILES: u32 = 10;
/// The most files a `multiple` field may hold.
const MAX_FILES_CAP: u32 = 100;
/// The longest stored file name.
pub const FILE_NAME_MAX: usize = 100;

/// The rules of a `file` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRules {
    /// Largest accepted file, in bytes.
    pub max_size: u64,
    /// Accepted sniffed types (`image/png`, or `image/*`); empty accepts any.
    pub mime_types: Vec<String>,
    /// A list of files rather than one.
    pub multiple: bool,
    /// Most files a `multiple` field holds (1 otherwise).
    pub max_files: u32,
}

impl FileRules {
    /// Whether a file sniffed as `mime` may be stored.
    pub fn accepts(&self, mime: &str) -> bool {
        self.mime_types.is_empty()
            || self.mime_types.iter().any(|m| match m.strip_suffix("/*") {
                Some(top) => mime
                    .split_once('/')
                    .is_some_and(|(t, _)| t.eq_ignore_ascii_case(top)),
                None => m.eq_ignore_ascii_case(mime),
            })
    }
}

/// Checks the file attributes of a declaration of type `file`.
pub(super) fn file_rules(f: &FieldDecl) -> Result<FileRules, String> {
    if f.pii {
        return Err("a file field cannot be pii".to_owned());
    }
    if f.unique.is_some() || f.indexed {
        return Err("a file field cannot be unique or indexed".to_owned());
    }
    if f.default.is_some() {
        return Err("a file field cannot have a default".to_owned());
    }
    let max_size = f.max_size.unwrap_or(DEFAULT_FILE_MAX_SIZE);
    if max_size == 0 || max_size > FILE_MAX_SIZE_CAP {
        return Err(format!(
            "max_size must be between 1 and {FILE_MAX_SIZE_CAP} bytes"
        ));
    }
    let mime_types = f.mime_types.clone().unwrap_or_default();
    for m in &mime_types {
        if !mime_pattern(m) {
            return Err(format!(
                "mime_types entry {m:?} is not a type like \"image/png\" or \"image/*\""
            ));
        }
    }
    if f.max_files.is_some() && !f.multiple {
        return Err("max_files applies to a multiple file field".to_owned());
    }
    let max_files = if f.multiple {
        f.max_files.unwrap_or(DEFAULT_MAX_FILES)
    } else {
        1
    };
    if max_files == 0 || max_files > MAX_FILES_CAP {
        return Err(format!("max_files must be between 1 and {MAX_FILES_CAP}"));
    }
    Ok(FileRules {
        max_size,
        mime_types,
        multiple: f.multiple,
        max_files,
    })
}

/// `type/subtype` or `type/*`, in the token characters MIME names use.
fn mime_pattern(m: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match m.split_once('/') {
        Some((top, "*")) => token(top),
        Some((top, sub)) => token(top) && token(sub),
        None => false,
    }
}

/// A file field's value as a write sends it: a name the record holds (or null); with
/// `multiple`, a list of distinct names (the ones to keep), at most `max_files`. Whether
/// the record holds each name is the store's check, in the write's transaction.
pub(crate) fn validate(rules: &FileRules, v: &serde_json::Value) -> Result<Value, String> {
    let name = |v: &serde_json::Value| match v.as_str() {
        Some(s) if is_file_name(s) => Ok(Value::Text(s.to_owned())),
        _ => {
            Err("must name a file of this record; upload files with multipart/form-data".to_owned())
        }
    };
    if !rules.multiple {
        return name(v);
    }
    let list = v
        .as_array()
        .ok_or("must be a list of names of this record's files")?;
    if list.len() > rules.max_files as usize {
        return Err(format!("holds at most {} files", rules.max_files));
    }
    let names = list.iter().map(name).collect::<Result<Vec<_>, _>>()?;
    if names
        .iter()
        .enumerate()
        .any(|(i, n)| names[..i].contains(n))
    {
        return Err("names a file twice".to_owned());
    }
    Ok(Value::Array(names))
}

/// Whether `name` has the shape of a stored file's name: 1 to [`FILE_NAME_MAX`] characters
/// of `[a-z0-9._-]`, not starting with a dot.
pub fn is_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= FILE_NAME_MAX
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(types: &[&str]) -> FileRules {
        FileRules {
            max_size: 1,
            mime_types: types.iter().map(|s| (*s).to_owned()).collect(),
            multiple: false,
            max_files: 1,
        }
    }

    #[test]
    fn mime_types_match_exactly_or_by_wildcard() {
        assert!(rules(&[]).accepts("text/html"));
        assert!(rules(&["image/png"]).accepts("image/png"));
        assert!(!rules(&["image/png"]).accepts("image/jpeg"));
        assert!(rules(&["image/*"]).accepts("image/jpeg"));
        assert!(!rules(&["image/*"]).accepts("text/html"));
        assert!(!rules(&["image/*"]).accepts("imagex/png"));
    }

    #[test]
    fn mime_patterns_are_checked() {
        assert!(mime_pattern("image/png"));
        assert!(mime_pattern("image/*"));
        assert!(mime_pattern("application/vnd.ms-excel"));
        for bad in [
            "image",
            "*/*",
            "image/",
            "/png",
            "image/png; x=1",
            "im age/png",
        ] {
            assert!(!mime_pattern(bad), "{bad}");
        }
    }

    #[test]
    fn file_names_are_safe_path_segments() {
        assert!(is_file_name("photo_k3f9x2a1.png"));
        for bad in [
            "",
            ".hidden",
            "../etc",
            "a/b",
            "A.png",
            "a b",
            "a\0b",
            &"a".repeat(101),
        ] {
            assert!(!is_file_name(bad), "{bad:?}");
        }
    }
}
