//! Claims on a PostgreSQL database, held on a dedicated connection for the process's life:
//! every server instance holds a shared session-level advisory lock on [`CLAIM_LOCK`], and
//! a migration or import (`Claim::Maintain`) needs it exclusively, so it refuses while any
//! instance runs, and an instance waits (boundedly) while a migration runs.
//!
//! A session's own shared lock does not conflict with its exclusive request, so a server
//! starting alone can take the exclusive lock for a destructive start migration and drop
//! it after; beside other instances that request fails, and the destructive steps are
//! refused (see `PgStore::migrate`).
//!
//! The lock lives as long as its session. The connection has TCP keepalives, so a peer that
//! vanished (a NAT that forgot it, a host gone) is noticed; and a task watches it: when a
//! server's claim connection ends (a restarted database, `pg_terminate_backend`,
//! `idle_session_timeout`), it logs an error and takes the lock again on a new connection,
//! retrying with a growing pause, and [`Held::is_held`] is false meanwhile (`/readyz`
//! fails).

use super::errors::map;
use super::tls::{PgTls, PgTlsStream, parse_url};
use crate::{Claim, StoreError};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_postgres::{Client, Config, Connection, Socket};

/// The advisory lock key of claims ("plinthsv" in ASCII); not the migration transaction's
/// key, which a pooled connection takes while this one is held.
const CLAIM_LOCK: i64 = 0x706c_696e_7468_7376;

/// The claim session's `application_name`, which finds it in `pg_stat_activity`.
const CLAIM_APPLICATION: &str = "plinth-claim";

/// The pause before the first attempt to take a lost claim again, doubled after each
/// failed attempt up to [`RETAKE_MAX`].
const RETAKE_FIRST: Duration = Duration::from_millis(100);
const RETAKE_MAX: Duration = Duration::from_secs(5);

type Conn = Pin<Box<Connection<Socket, PgTlsStream>>>;

/// A claim: the session holding the lock, and the task driving and watching it.
pub(super) struct Held {
    session: Arc<Session>,
    task: tokio::task::JoinHandle<()>,
}

/// The claim's current session.
struct Session {
    /// The connection holding the lock; `None` while a lost claim is being taken again.
    client: tokio::sync::Mutex<Option<Client>>,
    /// Whether the lock is held now.
    held: AtomicBool,
}

impl Drop for Held {
    fn drop(&mut self) {
        // Ending the session releases its advisory locks.
        self.task.abort();
    }
}

impl Held {
    /// Connects and takes the lock for `claim`; a server waits up to `wait` for a running
    /// migration to end.
    pub(super) async fn take(url: &str, claim: Claim, wait: Duration) -> Result<Self, StoreError> {
        let (config, tls) = config(url, wait)?;
        let (client, conn) = config.connect(tls.clone()).await.map_err(map)?;
        let mut conn: Conn = Box::pin(conn);
        match claim {
            Claim::Serve => {
                let lock = client.execute("SELECT pg_advisory_lock_shared($1)", &[&CLAIM_LOCK]);
                match tokio::time::timeout(wait, drive(&mut conn, lock)).await {
                    Ok(done) => {
                        done?;
                    }
                    Err(_) => {
                        return Err(StoreError::InUse(
                            "a migration (plinth migrate, import or restore) is running on this database; \
                             start the server after it ends"
                                .to_owned(),
                        ));
                    }
                }
            }
            Claim::Maintain => {
                let lock = client.query_one("SELECT pg_try_advisory_lock($1)", &[&CLAIM_LOCK]);
                if !drive(&mut conn, lock)
                    .await?
                    .try_get::<_, bool>(0)
                    .map_err(map)?
                {
                    return Err(StoreError::InUse(
                        "a plinth server (or another plinth migrate, import or restore) is using this \
                         database; stop every instance first, then run this again"
                            .to_owned(),
                    ));
                }
            }
        }
        let session = Arc::new(Session {
            client: tokio::sync::Mutex::new(Some(client)),
            held: AtomicBool::new(true),
        });
        let task = tokio::spawn(watch(config, tls, claim, Arc::clone(&session), conn));
        Ok(Self { session, task })
    }

    /// Whether the lock is held now (false while a lost claim is being taken again).
    pub(super) fn is_held(&self) -> bool {
        self.session.held.load(Ordering::Acquire)
    }

    /// Takes the lock exclusively unless another session holds it in any mode.
    pub(super) async fn try_exclusive(&self) -> Result<bool, StoreError> {
        let client = self.session.client.lock().await;
        let row = client
            .as_ref()
            .ok_or_else(lost)?
            .query_one("SELECT pg_try_advisory_lock($1)", &[&CLAIM_LOCK])
            .await
            .map_err(map)?;
        row.try_get(0).map_err(map)
    }

    /// Gives up one exclusive hold taken by [`Self::try_exclusive`].
    pub(super) async fn release_exclusive(&self) -> Result<(), StoreError> {
        let client = self.session.client.lock().await;
        client
            .as_ref()
            .ok_or_else(lost)?
            .execute("SELECT pg_advisory_unlock($1)", &[&CLAIM_LOCK])
            .await
            .map_err(map)
            .map(|_| ())
    }
}

fn lost() -> StoreError {
    StoreError::Unavailable(
        "this process's claim on the database is lost; it is being taken again".to_owned(),
    )
}

/// The claim connection's options: `url`'s, with keepalives, a name, and a connect timeout;
/// and its TLS connector.
fn config(url: &str, connect_timeout: Duration) -> Result<(Config, PgTls), StoreError> {
    let (mut config, tls) = parse_url(url)?;
    config
        .application_name(CLAIM_APPLICATION)
        .connect_timeout(connect_timeout);
    super::connect::keepalives(&mut config);
    Ok((config, tls))
}

/// Runs `op` (a statement on the client of `conn`) while driving `conn`.
async fn drive<T>(
    conn: &mut Conn,
    op: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, StoreError> {
    tokio::select! {
        done = op => done.map_err(map),
        ended = conn.as_mut() => Err(match ended {
            Err(e) => map(e),
            Ok(()) => StoreError::Unavailable("the database closed the connection".to_owned()),
        }),
    }
}

/// Drives the claim's connection until it ends; then logs an error and, for a server, takes
/// the lock again on a new one, and so on. Aborted when the claim is dropped.
async fn watch(config: Config, tls: PgTls, claim: Claim, session: Arc<Session>, mut conn: Conn) {
    loop {
        let ended = conn.as_mut().await;
        session.held.store(false, Ordering::Release);
        session.client.lock().await.take();
        let cause = ended.err().map(|e| e.to_string()).unwrap_or_default();
        if claim == Claim::Maintain {
            tracing::error!(cause = %cause, "the connection holding this migration's claim on the database ended");
            return;
        }
        tracing::error!(
            cause = %cause,
            "the connection holding this server's claim on the database ended: /readyz fails until it is taken again"
        );
        conn = retake(&config, &tls, &session).await;
        tracing::info!("the claim on the database is held again");
    }
}

/// Takes the shared lock on a new connection, retrying with a growing pause until it
/// holds; while a migration holds the lock it keeps trying (a server must not run beside
/// one).
async fn retake(config: &Config, tls: &PgTls, session: &Session) -> Conn {
    let mut pause = RETAKE_FIRST;
    loop {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(RETAKE_MAX);
        let (client, conn) = match config.connect(tls.clone()).await {
            Ok(connected) => connected,
            Err(e) => {
                tracing::warn!(error = %e, "cannot reconnect to take the claim on the database again");
                continue;
            }
        };
        let mut conn: Conn = Box::pin(conn);
        let lock = client.query_one("SELECT pg_try_advisory_lock_shared($1)", &[&CLAIM_LOCK]);
        match drive(&mut conn, lock)
            .await
            .and_then(|row| row.try_get::<_, bool>(0).map_err(map))
        {
            Ok(true) => {
                *session.client.lock().await = Some(client);
                session.held.store(true, Ordering::Release);
                return conn;
            }
            Ok(false) => tracing::warn!(
                "a migration (plinth migrate, import or restore) holds the database: the claim is taken again after it ends"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot take the claim on the database again"),
        }
    }
}
