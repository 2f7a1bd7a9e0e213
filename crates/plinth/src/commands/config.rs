//! `plinth config`: the effective configuration, or the configuration reference.

use crate::cli::{ConfigArgs, GlobalArgs};
use crate::config::{Config, reference};

/// Prints the effective configuration (secrets masked), or with `--reference` the table of
/// every setting that docs/configuration.md holds.
pub(crate) fn run(global: &GlobalArgs, args: &ConfigArgs) -> anyhow::Result<()> {
    if args.reference {
        print!("{}", reference());
        return Ok(());
    }
    let config = Config::load(global, None)?;
    print!("{}", config.render());
    Ok(())
}
