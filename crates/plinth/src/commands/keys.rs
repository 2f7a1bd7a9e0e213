//! `plinth keys generate`.

use crate::config::generate_key_text;

/// Prints a new random token-signing key.
pub(crate) fn generate() -> anyhow::Result<()> {
    println!("{}", generate_key_text()?);
    Ok(())
}
