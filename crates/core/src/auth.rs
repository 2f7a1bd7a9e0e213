//! Rules for accounts: email addresses, the password policy and role names. Pure checks;
//! hashing and tokens live in the HTTP layer, storage in `store`.

use crate::policy::Role;
use std::fmt;

/// Shortest accepted password, in characters.
pub const PASSWORD_MIN_CHARS: usize = 12;
/// Longest accepted password, in bytes (bounds the work a login request can ask for).
pub const PASSWORD_MAX_BYTES: usize = 1024;
/// Longest accepted email address, in bytes (RFC 5321 path limit).
pub const EMAIL_MAX_BYTES: usize = 254;

/// Passwords refused whatever their length: the most common choices that meet the minimum
/// length, compared case-insensitively.
const COMMON_PASSWORDS: &[&str] = &[
    "123456789012",
    "1234567890123",
    "12345678901234",
    "123456123456",
    "123123123123",
    "111111111111",
    "000000000000",
    "password1234",
    "password12345",
    "password123456",
    "passwordpassword",
    "password123!",
    "qwertyuiop12",
    "qwertyuiopasdf",
    "qwerty123456",
    "qwertyqwerty",
    "1q2w3e4r5t6y",
    "1qaz2wsx3edc",
    "zaq12wsxcde3",
    "asdfghjkl123",
    "iloveyou1234",
    "letmein12345",
    "welcome12345",
    "welcome123456",
    "administrator",
    "admin1234567",
    "adminadmin12",
    "changeme1234",
    "changemenow!",
    "trustno1trustno1",
    "football1234",
    "baseball1234",
    "sunshine1234",
    "princess1234",
    "dragon123456",
    "monkey123456",
    "abc123456789",
    "abcdefghijkl",
    "abcd12345678",
    "aaaaaaaaaaaa",
    "superman1234",
    "starwars1234",
    "correcthorsebatterystaple",
    "p@ssw0rd1234",
    "p@ssword1234",
    "passw0rd1234",
    "secret123456",
    "master123456",
    "whatever1234",
    "computer1234",
    "internet1234",
    "michael12345",
    "jennifer1234",
];

/// An email address, as given (for display) and normalised (trimmed, lowercase) for
/// uniqueness and lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    given: String,
    normalized: String,
}

impl Email {
    /// Validates an address: one `@`, non-empty local part and a dotted domain, no spaces or
    /// control characters, at most 254 characters.
    pub fn parse(s: &str) -> Result<Self, String> {
        let given = s.trim();
        let bad = || "must be an email address such as ada@example.com".to_owned();
        if given.is_empty() || given.len() > EMAIL_MAX_BYTES {
            return Err(bad());
        }
        if given.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = given.rsplit_once('@').ok_or_else(bad)?;
        if local.is_empty() || local.contains('@') || domain.len() < 3 || !domain.contains('.') {
            return Err(bad());
        }
        if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
            return Err(bad());
        }
        Ok(Self {
            given: given.to_owned(),
            normalized: given.to_lowercase(),
        })
    }

    /// The address as the user typed it (trimmed).
    pub fn as_str(&self) -> &str {
        &self.given
    }

    /// The lookup key: lowercase, so `Ada@Example.com` and `ada@example.com` are one account.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.given)
    }
}

/// Checks a new password against the policy: at least 12 characters, at most 1024 bytes, not
/// a well-known password, not the email address.
pub fn check_password(password: &str, email: Option<&Email>) -> Result<(), String> {
    if password.chars().count() < PASSWORD_MIN_CHARS {
        return Err(format!(
            "must be at least {PASSWORD_MIN_CHARS} characters long"
        ));
    }
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(format!("must be at most {PASSWORD_MAX_BYTES} bytes long"));
    }
    let lower = password.to_lowercase();
    if COMMON_PASSWORDS.contains(&lower.as_str()) {
        return Err("is too common; choose a passphrase of several unrelated words".to_owned());
    }
    if let Some(first) = lower.chars().next()
        && lower.chars().all(|c| c == first)
    {
        return Err("must not repeat a single character".to_owned());
    }
    if let Some(email) = email
        && (lower == email.normalized()
            || email.normalized().split('@').next() == Some(lower.as_str()))
    {
        return Err("must not be the email address".to_owned());
    }
    Ok(())
}

/// Parses a role name as used in the API and on the command line (`admin`, `user`).
pub fn parse_role(s: &str) -> Result<Role, String> {
    match s {
        "admin" => Ok(Role::Admin),
        "user" => Ok(Role::User),
        _ => Err("must be admin or user".to_owned()),
    }
}

/// The API spelling of a role.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::User => "user",
        Role::Guest => "guest",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        let e = Email::parse("  Ada.Lovelace@Example.COM ").expect("valid");
        assert_eq!(e.as_str(), "Ada.Lovelace@Example.COM");
        assert_eq!(e.normalized(), "ada.lovelace@example.com");
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@@example.com",
            "ada@.com.",
            "ada@ex..com",
            "ada\u{0}@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
        // The bounds themselves: 254 characters and a three-character domain are fine.
        let longest = format!("{}@example.com", "a".repeat(254 - 12));
        assert_eq!(longest.len(), 254);
        assert!(Email::parse(&longest).is_ok());
        assert!(Email::parse(&format!("a{longest}")).is_err());
        assert!(Email::parse("ada@a.b").is_ok());
        // A domain that only starts, or only ends, with a dot is refused too.
        for bad in ["ada@.example.com", "ada@example.com."] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(e.to_string(), "Ada.Lovelace@Example.COM");
    }

    #[test]
    fn password_policy() {
        assert_eq!(
            check_password("short", None),
            Err("must be at least 12 characters long".to_owned())
        );
        assert!(check_password("correct horse battery", None).is_ok());
        assert!(
            check_password("Password1234", None).is_err(),
            "common, any case"
        );
        assert!(check_password("zzzzzzzzzzzzzz", None).is_err());
        assert!(check_password(&"x".repeat(1025), None).is_err());
        // Exactly the byte limit is fine; one byte more is not.
        let longest = "ab".repeat(512);
        assert_eq!(check_password(&longest, None), Ok(()));
        assert_eq!(
            check_password(&format!("{longest}c"), None),
            Err("must be at most 1024 bytes long".to_owned())
        );
        let email = Email::parse("longusername@example.com").expect("valid");
        for same in ["LongUserName", "LongUserName@Example.com"] {
            assert_eq!(
                check_password(same, Some(&email)),
                Err("must not be the email address".to_owned()),
                "{same}"
            );
        }
        assert_eq!(
            check_password("correct horse battery", Some(&email)),
            Ok(())
        );
        assert_eq!(
            check_password("𝄞𝄞𝄞𝄞𝄞𝄞𝄞𝄞𝄞𝄞𝄞x", None),
            Ok(()),
            "counted in characters"
        );
    }

    #[test]
    fn roles() {
        assert_eq!(parse_role("admin"), Ok(Role::Admin));
        assert_eq!(parse_role("user"), Ok(Role::User));
        assert!(parse_role("guest").is_err());
        assert!(parse_role("Admin").is_err());
        assert_eq!(role_name(Role::User), "user");
    }
}
