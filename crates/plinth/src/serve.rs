//! Wiring: open the store, migrate, build the application, serve until a signal.

use crate::config::Config;
use anyhow::Context;
use plinth_server::{AppState, Application, AuthMode, ServerConfig};
use plinth_store::{SqliteOptions, SqliteStore, Store};
use std::sync::Arc;

/// Opens the configured database.
pub(crate) async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let path = config.sqlite_path()?;
    let mut opts = SqliteOptions::new(&path);
    opts.readers = config.sqlite_readers;
    let store = SqliteStore::open(opts)
        .await
        .with_context(|| format!("cannot open the database {}", path.display()))?;
    Ok(Arc::new(store))
}

/// Migrates the database to the declared models, then builds the bound application.
pub(crate) async fn build(config: &Config, allow_destructive: bool) -> anyhow::Result<Application> {
    // Refuse an unsafe address before touching the database, so a refused start changes nothing.
    plinth_server::app::check_listen(AuthMode::LocalAdmin, config.listen)?;
    let store = open_store(config).await?;
    let steps = store
        .migrate(&config.schema, allow_destructive)
        .await
        .context("schema migration failed")?;
    for step in &steps {
        tracing::info!(step = %step, "migrated");
    }
    let models: Vec<&str> = config
        .schema
        .models()
        .iter()
        .map(|m| m.name().as_str())
        .collect();
    tracing::info!(models = ?models, "schema up to date");
    tracing::warn!(
        "authentication is not configured: every request acts as the local administrator; \
         the server only listens on loopback addresses in this mode"
    );
    let state = AppState::new(store, Arc::new(config.schema.clone()), AuthMode::LocalAdmin);
    let server = ServerConfig {
        listen: config.listen,
        body_limit: config.body_limit,
        cors_origins: config.cors_origins.clone(),
        drain_delay: config.drain_delay,
        ..ServerConfig::default()
    };
    Ok(Application::build(server, state).await?)
}

/// `plinth serve`.
pub(crate) async fn serve(config: Config, allow_destructive: bool) -> anyhow::Result<()> {
    for name in Config::unknown_env_vars() {
        tracing::warn!(variable = %name, "unknown PLINTH_ variable ignored (a typo?)");
    }
    let app = build(&config, allow_destructive).await?;
    tracing::info!(addr = %app.local_addr(), env = ?config.env, "listening");
    app.run_until_stopped(shutdown_signal())
        .await
        .context("server error")?;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!(signal = "SIGINT", "signal received"),
        () = term => tracing::info!(signal = "SIGTERM", "signal received"),
    }
}
