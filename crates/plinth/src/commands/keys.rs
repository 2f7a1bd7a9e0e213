//! `plinth keys generate` and `plinth keys encryption`.

use crate::config::generate_key_text;

/// Prints a new random token-signing key.
pub(crate) fn generate() -> anyhow::Result<()> {
    println!("{}", generate_key_text()?);
    Ok(())
}

/// Prints a new set of encryption keys: `index=` and `k1=`.
pub(crate) fn encryption() -> anyhow::Result<()> {
    print!("{}", plinth_store::Keyring::generate_text()?);
    Ok(())
}
