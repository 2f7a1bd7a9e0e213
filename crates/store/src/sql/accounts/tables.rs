//! The tables of end-user accounts, made by version 8 of Plinth's own tables
//! (`sql::versions`): the one-time tokens, second factors and OpenID Connect rows the
//! files beside this one read and write.

/// Version 8's tables. Tokens and codes are stored as SHA-256 digests; a TOTP secret and a
/// pending OpenID login's PKCE verifier are sealed (`crate::seal`), never in the clear.
///
/// - `_plinth_account_tokens`: one-time tokens mailed or handed out (`purpose`), single
///   use (`used_at`); `email` holds the sealed new address of an email change.
/// - `_plinth_totp`: a user's TOTP secret, on once `confirmed_at` is set; `last_step` is
///   the newest time step accepted, so a code is never accepted twice.
/// - `_plinth_recovery_codes`: ten per confirmed enrolment, each single use.
/// - `_plinth_oidc_identities`: which provider subject signs in as which user.
/// - `_plinth_oidc_logins`: a started OpenID login, by the digest of its `state`, so the
///   callback may reach any instance; single use, short-lived.
pub(crate) const ACCOUNTS_V8: &str = "
    CREATE TABLE IF NOT EXISTS _plinth_account_tokens (
        token_hash TEXT NOT NULL PRIMARY KEY,
        purpose TEXT NOT NULL CHECK (purpose = 'verify_email' OR purpose = 'password_reset'
            OR purpose = 'email_change' OR purpose = 'mfa_login'),
        user_id {uuid} NOT NULL,
        email TEXT,
        expires_at {time} NOT NULL,
        used_at {time},
        created_at {time} NOT NULL
    );
    CREATE INDEX IF NOT EXISTS _plinth_account_tokens_user ON _plinth_account_tokens (user_id, purpose);
    CREATE INDEX IF NOT EXISTS _plinth_account_tokens_expires ON _plinth_account_tokens (expires_at);
    CREATE TABLE IF NOT EXISTS _plinth_totp (
        user_id {uuid} NOT NULL PRIMARY KEY,
        secret TEXT NOT NULL,
        confirmed_at {time},
        last_step {int},
        created_at {time} NOT NULL
    );
    CREATE TABLE IF NOT EXISTS _plinth_recovery_codes (
        user_id {uuid} NOT NULL,
        code_hash TEXT NOT NULL,
        used_at {time},
        created_at {time} NOT NULL,
        PRIMARY KEY (user_id, code_hash)
    );
    CREATE TABLE IF NOT EXISTS _plinth_oidc_identities (
        provider TEXT NOT NULL,
        subject TEXT NOT NULL,
        user_id {uuid} NOT NULL,
        created_at {time} NOT NULL,
        PRIMARY KEY (provider, subject)
    );
    CREATE INDEX IF NOT EXISTS _plinth_oidc_identities_user ON _plinth_oidc_identities (user_id);
    CREATE TABLE IF NOT EXISTS _plinth_oidc_logins (
        state_hash TEXT NOT NULL PRIMARY KEY,
        provider TEXT NOT NULL,
        nonce TEXT NOT NULL,
        verifier TEXT NOT NULL,
        expires_at {time} NOT NULL,
        created_at {time} NOT NULL
    );
    CREATE INDEX IF NOT EXISTS _plinth_oidc_logins_expires ON _plinth_oidc_logins (expires_at);";
