//! `plinth user create`.

use super::serve;
use crate::cli::{GlobalArgs, UserCreateArgs};
use crate::config::Config;
use crate::logging;
use anyhow::Context;

/// `plinth user create`.
pub(crate) fn run_create(global: &GlobalArgs, args: UserCreateArgs) -> anyhow::Result<()> {
    let config = Config::load(global, None)?;
    logging::init("warn")?;
    super::runtime()?.block_on(create_user(&config, args))
}

/// Reads the password, then creates the account.
async fn create_user(config: &Config, args: UserCreateArgs) -> anyhow::Result<()> {
    let role =
        plinth_core::auth::parse_role(&args.role).map_err(|e| anyhow::anyhow!("--role {e}"))?;
    let password = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
        let again =
            rpassword::prompt_password("Password again: ").context("cannot read the password")?;
        anyhow::ensure!(first == again, "the passwords differ");
        first
    };
    let auth =
        plinth_server::Auth::new(config.hashing_config()?).map_err(|e| anyhow::anyhow!(e))?;
    let store = serve::open_store(config).await?;
    let result = serve::create_user(store.as_ref(), &auth, &args.email, &password, role).await;
    store.close().await;
    let user = result?;
    println!(
        "created {} {} ({})",
        plinth_core::auth::role_name(user.role),
        user.id,
        user.email
    );
    Ok(())
}
