//! The ceiling probe: about the least any server can do to answer a get by id over HTTP on
//! this machine: a bare axum handler that reads one row by primary key through rusqlite (a
//! prepared statement on a per-thread read-only connection, inline, as Plinth's point reads
//! are) and answers the envelope. `plinth bench --ceiling` measures it beside Plinth's
//! `get_one` in the same run, so the ratio says how much of a get's cost is Plinth's own
//! (authentication, policy, the store, metrics, audit context) rather than HTTP and SQLite's.

use crate::{BenchError, mix64};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::Serialize;
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running probe; `stop` ends it and removes its database.
#[derive(Debug)]
pub struct Ceiling {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The ids of its rows.
    pub ids: Vec<String>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    dir: PathBuf,
}

/// One row, as Plinth answers a `resource`.
#[derive(Debug, Serialize)]
struct Row {
    id: String,
    name: String,
    status: String,
    created_at: String,
    updated_at: String,
    owner_id: Option<String>,
    version: i64,
}

#[derive(Serialize)]
struct Envelope<'a> {
    success: bool,
    data: &'a Row,
}

thread_local! {
    /// This thread's read-only connection, and the database it is open on.
    static READER: RefCell<Option<(PathBuf, Connection)>> = const { RefCell::new(None) };
}

const SELECT: &str = "SELECT id, name, status, created_at, updated_at, owner_id, version \
    FROM resource WHERE id = ?1";

/// Makes a database of `records` rows in a temporary directory and serves it on `addr`
/// (port 0: any free one); `plinth bench --serve-ceiling` keeps it up for other load
/// generators.
///
/// # Errors
/// The database cannot be made or seeded, or `addr` cannot be listened on.
pub async fn start(addr: std::net::SocketAddr, records: u64) -> Result<Ceiling, BenchError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        BenchError::Server(format!("the ceiling probe: {what}: {e}"))
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!("plinth-ceiling-{}-{nanos:x}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| fail("cannot make its directory", &e))?;
    let db = dir.join("ceiling.db");
    let ids = tokio::task::spawn_blocking({
        let db = db.clone();
        move || seed(&db, records)
    })
    .await
    .map_err(|e| fail("seeding stopped", &e))?
    .map_err(|e| fail("cannot seed", &e))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| fail("cannot listen", &e))?;
    let addr = listener.local_addr().map_err(|e| fail("no address", &e))?;
    let app = Router::new()
        .route("/api/v1/resource/{id}", get(read))
        .with_state(Arc::new(db));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    Ok(Ceiling {
        url: format!("http://{addr}"),
        ids,
        stop: Some(stop),
        task: Some(task),
        dir,
    })
}

impl Ceiling {
    /// Stops serving and removes the database.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The table Plinth makes for `resource`, with `records` rows in one transaction.
fn seed(db: &std::path::Path, records: u64) -> rusqlite::Result<Vec<String>> {
    let mut conn = Connection::open(db)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(
        "CREATE TABLE resource (id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL, \
         status TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, \
         owner_id TEXT, version INTEGER NOT NULL) WITHOUT ROWID",
    )?;
    let tx = conn.transaction()?;
    let mut ids = Vec::new();
    {
        let mut insert = tx.prepare(
            "INSERT INTO resource (id, name, status, created_at, updated_at, owner_id, version) \
             VALUES (?1, ?2, 'active', ?3, ?3, ?4, 1)",
        )?;
        for n in 0..records.max(1) {
            let (a, b) = (mix64(n), mix64(n ^ 0x5bd1_e995));
            let id = format!(
                "{:08x}-{:04x}-7{:03x}-8{:03x}-{:012x}",
                a >> 32,
                (a >> 16) & 0xffff,
                a & 0xfff,
                b >> 52,
                b & 0xffff_ffff_ffff
            );
            insert.execute(rusqlite::params![
                id,
                format!("bench-{n}"),
                "2026-12-01T00:00:00.000000Z",
                "01a2a6b0-0000-7000-8000-000000000001",
            ])?;
            ids.push(id);
        }
    }
    tx.commit()?;
    Ok(ids)
}

async fn read(State(db): State<Arc<PathBuf>>, Path(id): Path<String>) -> Response {
    let row = READER.with(|cell| -> rusqlite::Result<Option<Row>> {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(path, _)| path != db.as_ref()) {
            let conn = Connection::open_with_flags(
                db.as_ref(),
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            *slot = Some((db.as_ref().clone(), conn));
        }
        let Some((_, conn)) = slot.as_ref() else {
            return Ok(None);
        };
        conn.prepare_cached(SELECT)?
            .query_row([&id], |r| {
                Ok(Row {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    status: r.get(2)?,
                    created_at: r.get(3)?,
                    updated_at: r.get(4)?,
                    owner_id: r.get(5)?,
                    version: r.get(6)?,
                })
            })
            .optional()
    });
    match row {
        Ok(Some(row)) => match serde_json::to_vec(&Envelope {
            success: true,
            data: &row,
        }) {
            Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        },
        Ok(None) => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"success":false,"error":{"code":"NOT_FOUND","message":"record not found"}}"#,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_probe_answers_a_seeded_row_in_the_envelope_and_404_for_others() {
        let probe = start(([127, 0, 0, 1], 0).into(), 50)
            .await
            .expect("start the probe");
        assert_eq!(probe.ids.len(), 50);
        let client = reqwest::Client::new();
        let url = format!("{}/api/v1/resource/{}", probe.url, probe.ids[7]);
        let res = client.get(&url).send().await.expect("a get");
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = res.json().await.expect("JSON");
        assert_eq!(body["success"], true);
        assert_eq!(body["data"]["id"], probe.ids[7].as_str());
        assert_eq!(body["data"]["name"], "bench-7");
        assert_eq!(body["data"]["version"], 1);
        let missing = client
            .get(format!("{}/api/v1/resource/nope", probe.url))
            .send()
            .await
            .expect("a get");
        assert_eq!(missing.status(), 404);
        let dir = probe.dir.clone();
        probe.stop().await;
        assert!(!dir.exists(), "the probe's database is removed");
    }
}
