//! The store contract: one set of cases, each written once as `async fn case(e: &Engine)`
//! against the public [`Store`] and [`AccountStore`] traits, and run on every engine.
//!
//! [`contract!`] turns a list of cases into one test per case and engine:
//! `…::sqlite::case` on a SQLite file, and `…::postgres::case` on a fresh PostgreSQL database
//! when `PLINTH_TEST_POSTGRES` names a server. Without one, each PostgreSQL case prints a
//! `SKIPPED` line that every `cargo test` run shows, and fails instead when skipping is not
//! allowed (`PLINTH_REQUIRE_POSTGRES=1` or `CI=true`). A new engine feature is one case
//! here; a new engine is one more arm in the macro and one constructor of [`Engine`].
//!
//! Each case gets an empty database that is not migrated yet: account operations must work
//! on it (`plinth user create` before the first `plinth serve`).

use plinth_core::auth::Email;
use plinth_core::{
    Draft, FieldAccess, ListQuery, ListScope, ModelDecl, ModelDef, Patch, Principal, Record, Role,
    Schema,
};
use plinth_store::{
    Keyring, Keys, NewUser, PgOptions, PgStore, SqliteOptions, SqliteStore, Store, StoreError,
    User, WriteCtx,
};
use plinth_testkit::PgDatabase;
use serde_json::Value as Json;
use std::sync::Arc;

/// Declares `mod sqlite` and `mod postgres`, each with one test per case.
macro_rules! contract {
    ($($case:ident),+ $(,)?) => {
        /// Every case on a SQLite file in a temporary directory.
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let engine = crate::contract::Engine::sqlite().await;
                    super::$case(&engine).await;
                    engine.store.close().await;
                }
            )+
        }
        /// Every case on a fresh PostgreSQL database (`PLINTH_TEST_POSTGRES`).
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let test = concat!(module_path!(), "::", stringify!($case));
                    let Some(engine) = crate::contract::Engine::postgres(test).await else {
                        return;
                    };
                    super::$case(&engine).await;
                    engine.store.close().await;
                }
            )+
        }
    };
}

mod accounts;
mod audit;
mod audit_chain;
mod backup;
mod batch;
mod changes;
mod events;
mod evolve;
mod files;
mod flags;
mod group;
mod keys;
mod lists;
mod mfa;
mod oidc;
mod pii;
mod records;
mod references;
mod refresh;
mod schema;
mod search;
mod search_copies;
mod search_migrate;
mod sessions;
mod shape;
mod sweep;
mod tokens;
mod transfer;
mod types;
mod types_evolve;
mod unique;
mod versions;

/// One engine under test: a store over an empty database of its own.
#[derive(Debug)]
pub(crate) struct Engine {
    pub(crate) store: Arc<dyn Store>,
    /// Where the store lives, held so the database outlives the store: the SQLite file's
    /// directory, or the PostgreSQL database (dropped after the test).
    _sqlite_dir: Option<tempfile::TempDir>,
    _postgres: Option<PgDatabase>,
}

impl Engine {
    /// A store over a new SQLite file.
    pub(crate) async fn sqlite() -> Self {
        Self::sqlite_with(test_keys()).await
    }

    /// A store over a new SQLite file, sealing with `keys`.
    pub(crate) async fn sqlite_with(keys: Keys) -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let mut options = SqliteOptions::new(dir.path().join("plinth.db"));
        options.keys = keys;
        let store = SqliteStore::open(options)
            .await
            .expect("open the SQLite store");
        Self {
            store: Arc::new(store),
            _sqlite_dir: Some(dir),
            _postgres: None,
        }
    }

    /// A store over a new database on the test server; `None` (after a visible note) when
    /// no server is named and skipping is allowed.
    pub(crate) async fn postgres(test: &str) -> Option<Self> {
        let server = plinth_testkit::postgres_server(test)?;
        Some(Self::postgres_on(&server).await)
    }

    async fn postgres_on(server: &str) -> Self {
        let db = PgDatabase::create(server).await;
        let mut options = PgOptions::new(db.url());
        options.pool_size = 4;
        options.keys = test_keys();
        let store = PgStore::open(options)
            .await
            .expect("open the PostgreSQL store");
        Self {
            store: Arc::new(store),
            _sqlite_dir: None,
            _postgres: Some(db),
        }
    }

    /// Migrates to the models declared in `decls` (JSON) and returns the schema.
    pub(crate) async fn migrate(&self, decls: Json) -> Schema {
        let schema = schema(decls);
        self.store
            .migrate(&schema, false)
            .await
            .expect("migrate the test database");
        schema
    }

    /// Runs `sql` straight on the database, past the store: to tamper with what it wrote.
    pub(crate) async fn raw(&self, sql: &str) {
        if let Some(db) = &self._postgres {
            db.connect()
                .await
                .batch_execute(sql)
                .await
                .unwrap_or_else(|e| panic!("raw SQL {sql}: {e}"));
        } else if let Some(dir) = &self._sqlite_dir {
            let conn = rusqlite::Connection::open(dir.path().join("plinth.db")).expect("open");
            conn.busy_timeout(std::time::Duration::from_secs(10))
                .expect("busy timeout");
            conn.execute_batch(sql)
                .unwrap_or_else(|e| panic!("raw SQL {sql}: {e}"));
        }
    }

    /// The first column of each row `sql` selects, as text, read past the store.
    pub(crate) async fn raw_texts(&self, sql: &str) -> Vec<String> {
        if let Some(db) = &self._postgres {
            let rows = db.connect().await.query(sql, &[]).await.expect(sql);
            return rows.iter().map(|r| r.get::<_, String>(0)).collect();
        }
        let dir = self._sqlite_dir.as_ref().expect("a database");
        let conn = rusqlite::Connection::open(dir.path().join("plinth.db")).expect("open");
        let mut stmt = conn.prepare(sql).expect(sql);
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).expect(sql);
        rows.collect::<Result<_, _>>().expect(sql)
    }

    /// Every byte the database holds for `table`, as text: on PostgreSQL each row's text
    /// form; on SQLite the database file and its write-ahead log, whole (so nothing the
    /// store wrote anywhere escapes the scan).
    pub(crate) async fn raw_contents(&self, table: &str) -> String {
        if let Some(db) = &self._postgres {
            let client = db.connect().await;
            let rows = client
                .query(&format!("SELECT t::text FROM \"{table}\" t"), &[])
                .await
                .expect("read the raw table");
            return rows
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
                .join("\n");
        }
        let mut out = String::new();
        if let Some(dir) = &self._sqlite_dir {
            for name in ["plinth.db", "plinth.db-wal"] {
                if let Ok(bytes) = std::fs::read(dir.path().join(name)) {
                    out.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
        }
        out
    }

    /// Another empty database on the same engine (and server).
    pub(crate) async fn another(&self) -> Self {
        if self._postgres.is_none() {
            return Self::sqlite().await;
        }
        let server = plinth_testkit::postgres_server("contract::another")
            .expect("the server of the first database");
        Self::postgres_on(&server).await
    }

    /// Another store over this engine's database, beside the first (as another process
    /// opening it); `upgrade` as in the engines' options.
    pub(crate) async fn reopen(&self, upgrade: bool) -> Result<Arc<dyn Store>, StoreError> {
        if let Some(db) = &self._postgres {
            let mut options = PgOptions::new(db.url());
            options.pool_size = 2;
            options.keys = test_keys();
            options.upgrade = upgrade;
            return Ok(Arc::new(PgStore::open(options).await?));
        }
        let dir = self._sqlite_dir.as_ref().expect("a SQLite directory");
        let mut options = SqliteOptions::new(dir.path().join("plinth.db"));
        options.keys = test_keys();
        options.upgrade = upgrade;
        Ok(Arc::new(SqliteStore::open(options).await?))
    }

    /// Whether the engine is PostgreSQL (for the few capabilities only it has).
    pub(crate) fn is_postgres(&self) -> bool {
        self._postgres.is_some()
    }

    /// Creates a user with this role; returns it.
    pub(crate) async fn user(&self, email: &str, role: Role) -> User {
        self.store
            .create_user(
                &admin(),
                NewUser {
                    email: Email::parse(email).expect("a valid email"),
                    password_hash: HASH.to_owned(),
                    role,
                },
            )
            .await
            .expect("create a user")
    }

    /// Creates a record from a JSON body as `ctx`; returns it.
    pub(crate) async fn create(&self, ctx: &WriteCtx, model: &Arc<ModelDef>, body: Json) -> Record {
        let d = draft(model, &body);
        self.store
            .create(ctx, model, d, None)
            .await
            .unwrap_or_else(|e| panic!("create {body}: {e:?}"))
            .record
    }

    /// Reads a record that must exist.
    pub(crate) async fn get(&self, model: &Arc<ModelDef>, id: plinth_core::RecordId) -> Record {
        self.store
            .get(model, id)
            .await
            .expect("get")
            .expect("the record exists")
    }
}

/// The keys of every store this test process opens (stores over one database, as
/// instances sharing it, read each other's sealed values).
pub(crate) fn test_keys() -> Keys {
    static KEYS: std::sync::OnceLock<Keys> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| Keys::fixed(Keyring::generate().expect("generate test keys")))
        .clone()
}

/// The start of a session (a refresh-token family) begun now.
pub(crate) fn started_now() -> plinth_core::Timestamp {
    plinth_core::Timestamp::from_system(std::time::SystemTime::now())
}

/// A session cutoff no family in a test is older than (a year ago): for rotations that are
/// not about the absolute session lifetime.
pub(crate) fn no_cutoff() -> plinth_core::Timestamp {
    let year = std::time::Duration::from_secs(365 * 24 * 3600);
    plinth_core::Timestamp::from_system(std::time::SystemTime::now() - year)
}

/// A syntactically valid argon2id PHC string (never verified here).
pub(crate) const HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA";

/// A schema from JSON model declarations.
pub(crate) fn schema(decls: Json) -> Schema {
    let decls: Vec<ModelDecl> = serde_json::from_value(decls).expect("valid model declarations");
    Schema::from_decls(&decls).expect("a valid schema")
}

/// A model of `schema`.
pub(crate) fn model(schema: &Schema, name: &str) -> Arc<ModelDef> {
    Arc::clone(schema.model(name).expect("the model is declared"))
}

/// Writes as the local administrator (records without an owner).
pub(crate) fn admin() -> WriteCtx {
    WriteCtx::new(Principal::local_admin(), "contract")
}

/// Writes as `user`, with the user's role.
pub(crate) fn as_user(user: &User) -> WriteCtx {
    WriteCtx::new(Principal::user(user.id, user.role), "contract")
}

/// A validated create body.
pub(crate) fn draft(model: &ModelDef, body: &Json) -> Draft {
    plinth_core::input::validate_draft(model, body, FieldAccess::All)
        .unwrap_or_else(|e| panic!("a valid draft {body}: {e:?}"))
}

/// A validated patch body.
pub(crate) fn patch(model: &ModelDef, body: &Json) -> Patch {
    plinth_core::input::validate_patch(model, body, FieldAccess::All)
        .unwrap_or_else(|e| panic!("a valid patch {body}: {e:?}"))
}

/// A list query from query-string pairs, as the HTTP layer parses them.
pub(crate) fn query(model: &ModelDef, pairs: &[(&str, &str)]) -> ListQuery {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    ListQuery::parse(model, &pairs, FieldAccess::All)
        .unwrap_or_else(|e| panic!("a valid query {pairs:?}: {e:?}"))
}

/// Every record of the query, page by page through the cursors; fails rather than loops when
/// pages do not end.
pub(crate) async fn walk(
    store: &dyn Store,
    model: &Arc<ModelDef>,
    pairs: &[(&str, &str)],
    scope: ListScope,
) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut all: Vec<(&str, &str)> = pairs.to_vec();
        if let Some(c) = &cursor {
            all.push(("cursor", c));
        }
        let q = query(model, &all);
        let page = store
            .list(model, &q, scope)
            .await
            .unwrap_or_else(|e| panic!("list {all:?}: {e:?}"));
        assert!(
            page.records.len() <= q.limit as usize,
            "a page larger than its limit"
        );
        let last = page.records.last().cloned();
        out.extend(page.records);
        match (page.has_more, last) {
            (false, _) => return out,
            (true, Some(last)) => cursor = Some(q.cursor_after(&last, page.rank)),
            (true, None) => panic!("an empty page says more follow: {pairs:?}"),
        }
    }
    panic!("the walk {pairs:?} did not end within 1000 pages");
}
