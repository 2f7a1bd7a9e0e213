//! `plinth serve`, and the wiring other commands share: open the store, migrate, build the
//! application, serve until a signal.

use crate::cli::{GlobalArgs, ServeArgs};
use crate::config::{Config, Database, Environment, env};
use crate::logging;
use anyhow::Context;
use plinth_core::auth::{Email, check_password};
use plinth_core::{QueryLimits, Role};
use plinth_server::alerts::{AlertConfig, Thresholds, WebhookConfig};
use plinth_server::{
    AccountError, AppState, Application, Auth, MetricsAccess, MetricsToken, RealtimeConfig,
    ServerConfig, TlsFiles,
};
use plinth_store::{Claim, PgOptions, PgStore, StoreError, WriteCtx};
use plinth_store::{Keys, SqliteOptions, SqliteStore, Store};
use std::sync::Arc;
use std::time::Duration;

/// `plinth serve`.
pub(crate) fn run(global: &GlobalArgs, args: &ServeArgs) -> anyhow::Result<()> {
    let config = Config::load_serve(global, args)?;
    let settings = &config.settings;
    let _logs = logging::init_serve(&logging::ServeLogs {
        filter: settings.log_level.as_str().to_owned(),
        access: settings.log_access,
        dir: settings.log_dir.clone(),
        retention_days: settings.log_retention_days,
    })?;
    super::runtime()?.block_on(serve(config, args.allow_destructive))
}

/// Opens the configured database.
pub(crate) async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    open_with(config, false, None).await
}

/// Opens the configured database, for reading only when `read_only` (nothing is created
/// and no write reaches it).
pub(crate) async fn open_store_as(
    config: &Config,
    read_only: bool,
) -> anyhow::Result<Arc<dyn Store>> {
    open_with(config, read_only, None).await
}

/// Claims the configured database for `claim` (until the store is closed), then opens it:
/// a refused claim ([`plinth_store::StoreError::InUse`] in the error's chain) leaves the
/// database as it was, not created, opened or changed.
pub(crate) async fn open_claimed(config: &Config, claim: Claim) -> anyhow::Result<Arc<dyn Store>> {
    open_with(config, false, Some(claim)).await
}

/// [`open_claimed`], but the database is taken as it is: no version of Plinth's own tables
/// is applied, and a newer one is not refused (`plinth migrate status`, `plan`, `down`).
pub(crate) async fn open_as_is(config: &Config, claim: Claim) -> anyhow::Result<Arc<dyn Store>> {
    open_keyed(config, false, Some(claim), config.encryption_keys()?, false).await
}

async fn open_with(
    config: &Config,
    read_only: bool,
    claim: Option<Claim>,
) -> anyhow::Result<Arc<dyn Store>> {
    open_keyed(config, read_only, claim, config.encryption_keys()?, true).await
}

async fn open_keyed(
    config: &Config,
    read_only: bool,
    claim: Option<Claim>,
    keys: Keys,
    upgrade: bool,
) -> anyhow::Result<Arc<dyn Store>> {
    match config.database()? {
        Database::Sqlite(path) => {
            let mut opts = SqliteOptions::new(&path);
            opts.readers = config.settings.sqlite_readers;
            opts.read_only = read_only;
            opts.claim = claim;
            opts.query_timeout = Duration::from_millis(config.settings.limits_query_timeout_ms);
            opts.keys = keys;
            opts.upgrade = upgrade;
            // Only the serving process, the one that writes records, keeps them.
            if claim == Some(Claim::Serve) {
                opts.record_cache = config.settings.sqlite_record_cache_mb << 20;
            }
            let store = SqliteStore::open(opts)
                .await
                .with_context(|| format!("cannot open the database {}", path.display()))?;
            Ok(Arc::new(store))
        }
        Database::Postgres(url) => {
            let mut opts = PgOptions::new(url.expose());
            opts.read_only = read_only;
            opts.claim = claim;
            opts.keys = keys;
            opts.upgrade = upgrade;
            let settings = &config.settings;
            opts.pool_size = settings.pg_pool_size;
            opts.connect_timeout = Duration::from_secs(settings.pg_connect_timeout_seconds);
            opts.statement_timeout = Duration::from_secs(settings.pg_statement_timeout_seconds);
            opts.query_timeout = Duration::from_millis(settings.limits_query_timeout_ms);
            opts.read_url = settings
                .database_read_url
                .as_ref()
                .map(|u| u.expose().to_owned());
            let store = PgStore::open(opts)
                .await
                .context("cannot open the PostgreSQL database")?;
            Ok(Arc::new(store))
        }
    }
}

/// Migrates the database to the declared models, then builds the bound application.
pub(crate) async fn build(config: &Config, allow_destructive: bool) -> anyhow::Result<Application> {
    super::permissions::warn_if_exposed(config);
    let auth = Arc::new(Auth::new(config.auth_config()?).map_err(|e| anyhow::anyhow!(e))?);
    check_admin_env(config)?;
    // Unusable certificate files refuse the start before the database is touched.
    let tls = tls_files(config)?;
    if let Some(files) = &tls {
        files.check().context("cannot serve HTTPS")?;
    }
    let alerts = alert_config(config);
    alerts
        .check()
        .map_err(|e| anyhow::anyhow!("{e} ({})", env::ALERTS_WEBHOOK_URL))?;
    // Bound before the database is touched: a busy port refuses the start with nothing
    // migrated.
    let listener = Application::bind(config.settings.listen).await?;
    let redirect = match config.settings.tls_redirect_from {
        Some(addr) => Some(Application::bind(addr).await?),
        None => None,
    };
    if matches!(config.database()?, Database::Postgres(_)) && config.key_is_generated() {
        tracing::warn!(
            "the token-signing key was generated for this data directory: instances sharing one PostgreSQL \
             database must share one key (set {} or {}), or tokens from one are refused by the others",
            env::JWT_SECRET,
            env::JWT_SECRET_FILE
        );
    }
    if matches!(config.database()?, Database::Postgres(_))
        && matches!(
            config.encryption,
            crate::config::EncryptionSource::Generated(_)
        )
    {
        tracing::warn!(
            "the encryption keys were generated for this data directory: instances sharing one PostgreSQL \
             database must share one set (set {} or {}), or personal data sealed by one cannot be read by the others",
            env::ENCRYPTION_KEYS,
            env::ENCRYPTION_KEYS_FILE
        );
    }
    warn_revealing_unique(&config.schema);
    // The claim, taken before the database is touched, is held until the process ends: no
    // migration runs under this server (and, on SQLite, no second server beside it).
    let keys = config.encryption_keys()?;
    let store = open_keyed(config, false, Some(Claim::Serve), keys.clone(), true)
        .await
        .context("cannot start the server")?;
    if !matches!(config.encryption, crate::config::EncryptionSource::Env(_)) {
        reload_keys_on_hangup(keys);
    }
    let steps = match store.migrate(&config.schema, allow_destructive).await {
        Ok(steps) => steps,
        // A database holding more than declared (a newer instance added a field beside
        // this one, during a rollout or before a rollback) is served as it is.
        Err(e @ StoreError::Migration(_)) if !allow_destructive => {
            let kept = store
                .adopt(&config.schema)
                .await
                .map_err(|_| e)
                .context("schema migration failed")?;
            tracing::warn!(
                kept = ?kept,
                "the database holds models, fields or indexes this configuration does not \
                 declare: they are kept as they are and unseen by this server (plinth migrate \
                 --allow-destructive drops them)"
            );
            Vec::new()
        }
        Err(e) => return Err(e).context("schema migration failed"),
    };
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
    bootstrap_admin(store.as_ref(), &auth, config).await?;
    let state = AppState::configured(
        store,
        Arc::new(config.schema.clone()),
        auth,
        Duration::from_secs(config.settings.read_your_writes_seconds),
        QueryLimits {
            value_max_chars: config.settings.limits_filter_value_max_chars,
            pattern_max_chars: config.settings.limits_like_pattern_max_chars,
            filter_max_chars: config.settings.limits_filter_max_chars,
        },
    );
    let server = ServerConfig {
        listen: config.settings.listen,
        body_limit: config.settings.body_limit,
        batch_body_limit: config.settings.batch_body_limit,
        // Its range (0 to 65535) was checked when loading.
        compression_min_bytes: u16::try_from(config.settings.compression_min_bytes)
            .unwrap_or(u16::MAX),
        cors_origins: config.settings.cors_origins.clone(),
        drain_delay: Duration::from_secs(config.settings.drain_seconds),
        header_read_timeout: Duration::from_secs(config.settings.http_header_read_timeout_seconds),
        keep_alive_timeout: Duration::from_secs(config.settings.http_keep_alive_timeout_seconds),
        request_timeout: Duration::from_secs(config.settings.http_request_timeout_seconds),
        max_connections: config.settings.http_max_connections,
        sweep_interval: Duration::from_secs(config.settings.sweep_interval_seconds),
        flags_reload: Duration::from_secs(config.settings.flags_reload_seconds),
        idempotency_window: Duration::from_secs(config.settings.idempotency_hours * 3600),
        audit_retention: match config.settings.audit_retention_days {
            0 => None,
            days => Some(Duration::from_secs(days * 86_400)),
        },
        backups: config
            .settings
            .backup_dir
            .clone()
            .map(|dir| plinth_server::BackupSchedule {
                dir,
                interval: Duration::from_secs(config.settings.backup_interval_seconds),
                keep: config.settings.backup_keep,
            }),
        tls,
        redirect_from: config.settings.tls_redirect_from,
        alerts,
        metrics: MetricsAccess {
            enabled: config.settings.metrics_enabled,
            token: config
                .settings
                .metrics_token
                .as_ref()
                .map(|t| MetricsToken::new(t.expose())),
        },
        admin_console: config.settings.admin_console,
        change_retention: config.settings.realtime_retention.duration(),
        files: Some(config.files_config()),
        realtime: RealtimeConfig {
            max_per_principal: config.settings.realtime_max_per_principal,
            max_total: config.settings.realtime_max_total,
            buffer: config.settings.realtime_buffer,
            heartbeat: Duration::from_secs(config.settings.realtime_heartbeat_seconds),
            poll: Duration::from_millis(config.settings.realtime_poll_ms),
        },
        ..ServerConfig::default()
    };
    Ok(Application::on_listeners(
        listener, redirect, server, state,
    )?)
}

/// The in-process alerts' settings.
fn alert_config(config: &Config) -> AlertConfig {
    let s = &config.settings;
    AlertConfig {
        window: Duration::from_secs(s.alerts_window_seconds),
        interval: Duration::from_secs(s.alerts_interval_seconds),
        thresholds: Thresholds {
            error_rate: s.alerts_error_rate_permille as f64 / 1000.0,
            p99: Duration::from_millis(s.alerts_p99_ms),
            min_requests: s.alerts_min_requests,
        },
        keep_resolved: s.alerts_keep_resolved,
        webhook: s.alerts_webhook_url.as_ref().map(|url| WebhookConfig {
            url: url.expose().to_owned(),
            secret: s
                .alerts_webhook_secret
                .as_ref()
                .map(|k| k.expose().to_owned()),
            ca_file: s.alerts_webhook_ca_file.clone(),
        }),
    }
}

/// The HTTPS files, when both are set. Production refuses a key file that group or others
/// may read.
fn tls_files(config: &Config) -> anyhow::Result<Option<TlsFiles>> {
    let settings = &config.settings;
    let (Some(cert), Some(key)) = (&settings.tls_cert_file, &settings.tls_key_file) else {
        return Ok(None);
    };
    if config.settings.env == Environment::Production {
        super::permissions::refuse_exposed_key(key)?;
    }
    Ok(Some(TlsFiles {
        reload_interval: Duration::from_secs(settings.tls_reload_interval_seconds),
        hsts_max_age: Duration::from_secs(settings.tls_hsts_max_age_seconds),
        ..TlsFiles::new(cert, key)
    }))
}

/// Warns of each `unique = true` field of a `user_read = "own"` model: its `409` tells a
/// user that a record they cannot read holds the value (`unique = "owner"` does not).
pub(crate) fn warn_revealing_unique(schema: &plinth_core::Schema) {
    for model in schema.models() {
        if model.policy().user_read != plinth_core::ReadScope::Own {
            continue;
        }
        for f in model.fields() {
            if f.unique() == plinth_core::schema::Unique::Global {
                tracing::warn!(
                    model = %model.name(),
                    field = %f.name(),
                    "a unique = true field of a user_read = \"own\" model: its conflicts reveal that another \
                     user's record holds a value; declare unique = \"owner\" unless values must be unique across owners"
                );
            }
        }
    }
}

/// On a first start with no admin, creates one from `PLINTH_ADMIN_EMAIL` and
/// `PLINTH_ADMIN_PASSWORD`; without them, says how to make one.
async fn bootstrap_admin(store: &dyn Store, auth: &Auth, config: &Config) -> anyhow::Result<()> {
    let (email, password) = first_admin(config);
    if store.count_admins().await? > 0 {
        if email.is_some() || password.is_some() {
            tracing::info!(
                "an admin exists; {} and {} are ignored",
                env::ADMIN_EMAIL,
                env::ADMIN_PASSWORD
            );
        }
        return Ok(());
    }
    let (email, password) = match (email, password) {
        (Some(e), Some(p)) => (e, p),
        (None, None) => {
            tracing::warn!(
                "no admin account exists: create one with `plinth user create --email you@example.com --role admin`, \
                 or set {} and {} for the first start",
                env::ADMIN_EMAIL,
                env::ADMIN_PASSWORD
            );
            return Ok(());
        }
        _ => anyhow::bail!(
            "set both {} and {} to create the first admin",
            env::ADMIN_EMAIL,
            env::ADMIN_PASSWORD
        ),
    };
    let user = match create_user(store, auth, &email, &password, Role::Admin).await {
        Ok(user) => user,
        // Several instances starting together on one PostgreSQL database race to create the
        // first admin; the ones that lose find it made.
        Err(e) if is_conflict(&e) && store.count_admins().await? > 0 => {
            tracing::info!("the first admin was created by another instance");
            return Ok(());
        }
        Err(e) => {
            return Err(e.context(format!(
                "cannot create the first admin from {} and {}",
                env::ADMIN_EMAIL,
                env::ADMIN_PASSWORD
            )));
        }
    };
    tracing::info!(target: "plinth::security", event = "first_admin_created", user_id = %user.id, "first admin created");
    Ok(())
}

/// The first admin's email and password, as configured.
fn first_admin(config: &Config) -> (Option<String>, Option<String>) {
    let settings = &config.settings;
    (
        settings.admin_email.clone(),
        settings
            .admin_password
            .as_ref()
            .map(|p| p.expose().to_owned()),
    )
}

/// Refuses unusable first-admin variables before anything touches the database, so such a
/// refused start changes nothing.
fn check_admin_env(config: &Config) -> anyhow::Result<()> {
    match first_admin(config) {
        (None, None) => Ok(()),
        (Some(e), Some(p)) => {
            let email = Email::parse(&e).map_err(|r| {
                anyhow::anyhow!(
                    "cannot create the first admin: {}: email {r}",
                    env::ADMIN_EMAIL
                )
            })?;
            check_password(&p, Some(&email)).map_err(|r| {
                anyhow::anyhow!(
                    "cannot create the first admin: {}: password {r}",
                    env::ADMIN_PASSWORD
                )
            })
        }
        _ => anyhow::bail!(
            "set both {} and {} to create the first admin",
            env::ADMIN_EMAIL,
            env::ADMIN_PASSWORD
        ),
    }
}

fn is_conflict(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<plinth_store::StoreError>(),
        Some(plinth_store::StoreError::Conflict { .. })
    )
}

/// Validates and creates an account (first admin, `plinth user create`).
pub(crate) async fn create_user(
    store: &dyn Store,
    auth: &Auth,
    email: &str,
    password: &str,
    role: Role,
) -> anyhow::Result<plinth_store::User> {
    let ctx = WriteCtx::new(plinth_core::Principal::local_admin(), "cli");
    plinth_server::create_account(store, auth, &ctx, email, password, role)
        .await
        .map_err(|e| match e {
            // Kept as a `StoreError` so that a lost first-admin race is seen as a conflict.
            AccountError::Store(e) => e.into(),
            other => anyhow::anyhow!(other),
        })
}

/// `plinth serve`.
pub(crate) async fn serve(config: Config, allow_destructive: bool) -> anyhow::Result<()> {
    for name in Config::unknown_env_vars() {
        tracing::warn!(variable = %name, "unknown PLINTH_ variable ignored (a typo?)");
    }
    let app = build(&config, allow_destructive).await?;
    let scheme = if app.is_tls() { "https" } else { "http" };
    tracing::info!(addr = %app.local_addr(), scheme, env = ?config.settings.env, "listening");
    if let Some(addr) = app.redirect_addr() {
        tracing::info!(addr = %addr, "redirecting plain HTTP to HTTPS");
    }
    app.run_until_stopped(shutdown_signal())
        .await
        .context("server error")?;
    tracing::info!("stopped");
    Ok(())
}

/// Re-reads the encryption key file on every SIGHUP (besides its own look at the file's
/// modification time), for the process's life. The HTTPS reloader listens for SIGHUP too:
/// tokio hands each signal to every stream that asked for it.
#[cfg(unix)]
fn reload_keys_on_hangup(keys: Keys) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP; the encryption keys reload on file changes only");
            return;
        }
    };
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            let keys = keys.clone();
            match tokio::task::spawn_blocking(move || keys.reload()).await {
                Ok(Ok(())) => tracing::info!(signal = "SIGHUP", "reloaded the encryption keys"),
                Ok(Err(e)) => tracing::warn!(
                    signal = "SIGHUP",
                    error = %e,
                    "cannot reload the encryption keys; keeping those in use"
                ),
                Err(e) => tracing::error!(error = %e, "the encryption key reload failed"),
            }
        }
    });
}

#[cfg(not(unix))]
fn reload_keys_on_hangup(_: Keys) {}

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
