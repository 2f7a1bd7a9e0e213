//! Connecting: the options, the connection pools, and the LISTEN connection that hears of
//! account and key changes, and of changes logged, made through other instances.

use super::Inner;
use super::tls::{PgTls, parse_url};
use crate::Invalidation;
use crate::StoreError;
use crate::sql::INVALIDATE_CHANNEL;
use crate::sql::audit::CHANGES_NOTICE;
use crate::sql::flags::FLAGS_NOTICE;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How to connect.
#[derive(Clone)]
pub struct PgOptions {
    /// `postgres://user:password@host:port/database`, with `sslmode` and `sslrootcert`
    /// read by Plinth (see `postgres::tls`).
    pub url: String,
    /// Most connections held.
    pub pool_size: usize,
    /// How long connecting (or waiting for a pooled connection) may take.
    pub connect_timeout: Duration,
    /// Longest a statement may run before the server cancels it.
    pub statement_timeout: Duration,
    /// The time budget of a record list, waiting for a connection included; past it the
    /// list is cancelled and fails as [`StoreError::Timeout`].
    pub query_timeout: Duration,
    /// A streaming replica for reads that may lag (`DATABASE_READ_URL`).
    pub read_url: Option<String>,
    /// Read only (`plinth export`): every transaction is `READ ONLY`, and opening creates
    /// nothing.
    pub read_only: bool,
    /// A claim taken before anything else (see [`Store::claim`](crate::Store::claim)): when
    /// it is refused, nothing in the database is created or changed.
    pub claim: Option<crate::Claim>,
    /// The keys that seal personal data ([`Keys::missing`](crate::Keys::missing) unless
    /// set: then a model with `pii` fields, or an account, cannot be written).
    pub keys: crate::Keys,
    /// Bring Plinth's own tables to the latest version at open, refusing a database newer
    /// than this binary (the default). Off (`plinth migrate status`, `plan`, `down`): the
    /// database is taken as it is, and the migration methods apply no version either.
    pub upgrade: bool,
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl PgOptions {
    /// Defaults: 16 connections, 5 s to connect, 30 s per statement, 5 s per list.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            query_timeout: Duration::from_secs(5),
            read_url: None,
            read_only: false,
            claim: None,
            keys: crate::Keys::missing(),
            upgrade: true,
        }
    }
}

/// Keepalives: the first probe after this long without traffic, then one every
/// [`KEEPALIVE_INTERVAL`]; [`KEEPALIVE_RETRIES`] unanswered probes end the connection.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 3;

/// The LISTEN session's `application_name`, which finds it in `pg_stat_activity`.
pub(super) const LISTEN_APPLICATION: &str = "plinth-listen";

/// TCP keepalives for a long-lived, mostly silent connection (the claim's, the LISTEN
/// one), so a peer that vanished quietly (a NAT that forgot it, a host gone) is noticed
/// within about a minute rather than the system's two hours.
pub(super) fn keepalives(config: &mut tokio_postgres::Config) {
    config
        .keepalives(true)
        .keepalives_idle(KEEPALIVE_IDLE)
        .keepalives_interval(KEEPALIVE_INTERVAL)
        .keepalives_retries(KEEPALIVE_RETRIES);
}

/// The LISTEN connection's options beside `url`'s: its name and [`keepalives`].
fn listen_options(config: &mut tokio_postgres::Config) {
    config.application_name(LISTEN_APPLICATION);
    keepalives(config);
}

/// Keeps a connection LISTENing on [`INVALIDATE_CHANNEL`] and forwards each notice;
/// reconnects after a failure and then sends a notice, as some may have been missed. Runs
/// until the store is closed (the task is aborted) or dropped. The connection has
/// [`keepalives`], so one lost quietly is noticed and replaced (and the notice sent).
pub(super) async fn listen(
    mut config: tokio_postgres::Config,
    tls: PgTls,
    store: std::sync::Weak<Inner>,
) {
    use tokio_postgres::AsyncMessage;
    listen_options(&mut config);
    loop {
        let Some((tx, signal, listening)) = store.upgrade().map(|inner| {
            let listening = std::sync::Arc::clone(&inner.listening);
            (inner.invalidations.clone(), inner.signal.clone(), listening)
        }) else {
            return;
        };
        if let Ok((client, mut connection)) = config.connect(tls.clone()).await {
            let (notices, changes) = (tx.clone(), signal.clone());
            let pump = tokio::spawn(async move {
                while let Some(Ok(message)) =
                    std::future::poll_fn(|cx| connection.poll_message(cx)).await
                {
                    if let AsyncMessage::Notification(n) = message {
                        let _ = notices.send(match n.payload() {
                            // A change feeds the change feed and drops no cache.
                            CHANGES_NOTICE => {
                                bump(&changes);
                                continue;
                            }
                            "credentials" => Invalidation::Credentials,
                            FLAGS_NOTICE => Invalidation::Flags,
                            _ => Invalidation::All,
                        });
                    }
                }
            });
            if client
                .batch_execute(&format!("LISTEN {INVALIDATE_CHANNEL}"))
                .await
                .is_ok()
            {
                // Notices sent while no connection listened are lost: drop every cache,
                // and have the change feed read the log. From now on this instance's own
                // notices arrive here too.
                listening.store(true, Ordering::Release);
                let _ = tx.send(Invalidation::All);
                bump(&signal);
                drop((tx, signal));
                let _ = pump.await;
                listening.store(false, Ordering::Release);
            } else {
                pump.abort();
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Bumps the change signal: the change feed reads the log.
pub(super) fn bump(signal: &tokio::sync::watch::Sender<u64>) {
    signal.send_modify(|n| *n = n.wrapping_add(1));
}

/// A pool of connections to `url` with the options' size and timeouts, and the TLS
/// connector of `url` (which cancel requests use too).
pub(super) fn build_pool(url: &str, opts: &PgOptions) -> Result<(Pool, PgTls), StoreError> {
    let (mut config, tls) = parse_url(url)?;
    config.connect_timeout(opts.connect_timeout);
    let read_only = if opts.read_only {
        " -c default_transaction_read_only=on"
    } else {
        ""
    };
    config.options(format!(
        "-c statement_timeout={}{read_only}",
        opts.statement_timeout.as_millis()
    ));
    config.application_name("plinth");
    let manager = Manager::from_config(
        config,
        tls.clone(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(opts.pool_size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(opts.connect_timeout))
        .create_timeout(Some(opts.connect_timeout))
        .recycle_timeout(Some(opts.connect_timeout))
        .build()
        .map(|pool| (pool, tls))
        .map_err(|e| StoreError::Unavailable(format!("cannot build the connection pool: {e}")))
}

/// A pool's figures for monitoring (`Store::engine_stats`).
pub(super) fn stats(pool: &Pool) -> crate::EngineStats {
    let s = pool.status();
    crate::EngineStats {
        writer: None,
        group: None,
        record_cache: None,
        pool: Some(crate::stats::PoolStats {
            max_size: s.max_size as u64,
            size: s.size as u64,
            in_use: s.size.saturating_sub(s.available) as u64,
            idle: s.available as u64,
            waiting: s.waiting as u64,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listen_connection_has_the_claims_keepalives() {
        let mut config: tokio_postgres::Config = "postgres://u@localhost/d".parse().expect("a URL");
        listen_options(&mut config);
        assert!(config.get_keepalives());
        assert_eq!(config.get_keepalives_idle(), KEEPALIVE_IDLE);
        assert_eq!(config.get_keepalives_interval(), Some(KEEPALIVE_INTERVAL));
        assert_eq!(config.get_keepalives_retries(), Some(KEEPALIVE_RETRIES));
        assert_eq!(config.get_application_name(), Some(LISTEN_APPLICATION));
    }
}
