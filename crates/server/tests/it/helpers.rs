//! The test harness: `TestApp` runs the real server on a random loopback port over a fresh
//! database, and offers one typed method per endpoint.

use plinth_core::auth::Email;
use plinth_core::{ModelDecl, QueryLimits, Schema};
use plinth_core::{Principal, Role};
use plinth_server::auth::{Clock, HashCost, ManualClock};
use plinth_server::{AppState, Application, Auth, AuthConfig, ServerConfig, SigningKey};
use plinth_store::{
    NewUser, PgOptions, PgStore, SqliteOptions, SqliteStore, Store, User, WriteCtx,
};
use plinth_testkit::{Engine, PgDatabase};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

mod auth;
pub(crate) mod cluster;
pub(crate) mod conformance;
mod endpoints;
pub(crate) mod raw;
pub(crate) mod sse;

pub(crate) use auth::{NEW_PASSWORD, Tokens, WRONG_PASSWORD, assert_no_secrets};

/// A database for one test. Every storage engine the suite runs against is built here, so
/// adding an engine means adding a constructor and nothing else.
#[derive(Debug)]
pub(crate) struct TestDb {
    pub(crate) store: Arc<dyn Store>,
    /// Held so the database file lives as long as the test (SQLite).
    dir: Option<TempDir>,
    /// The database, dropped after the store on `Drop` (PostgreSQL).
    postgres: Option<PgDatabase>,
}

impl TestDb {
    /// The engine this run tests (see `plinth_testkit::engine`): PostgreSQL when
    /// `PLINTH_TEST_POSTGRES` is set (unless `PLINTH_TEST_ENGINE=sqlite`), else SQLite.
    pub(crate) async fn new() -> Self {
        match plinth_testkit::engine() {
            Engine::Postgres(server) => Self::postgres(&server).await,
            Engine::Sqlite => Self::sqlite().await,
        }
    }

    /// A fresh, uniquely named database on the PostgreSQL server at `server`, dropped with
    /// the `TestDb`.
    pub(crate) async fn postgres(server: &str) -> Self {
        Self::postgres_with(server, |_| {}).await
    }

    /// As [`Self::postgres`], with the store's connection settings adjusted by `configure`
    /// (a short connect timeout for the fault tests, say).
    pub(crate) async fn postgres_with(
        server: &str,
        configure: impl FnOnce(&mut PgOptions),
    ) -> Self {
        let db = PgDatabase::create(server).await;
        let mut options = PgOptions::new(db.url());
        options.keys = test_keys();
        configure(&mut options);
        let store = PgStore::open(options)
            .await
            .expect("open the PostgreSQL store");
        Self {
            store: Arc::new(store),
            dir: None,
            postgres: Some(db),
        }
    }

    /// Runs `sql` on the database directly, behind the store's back, as an operator's
    /// `psql` or `sqlite3` session would: nothing is audited or announced.
    pub(crate) async fn sql(&self, sql: &str) {
        if let Some(db) = &self.postgres {
            db.connect()
                .await
                .batch_execute(sql)
                .await
                .expect("run the SQL");
            return;
        }
        let path = self
            .dir
            .as_ref()
            .expect("a SQLite database in its directory")
            .path()
            .join("plinth.db");
        let sql = sql.to_owned();
        tokio::task::spawn_blocking(move || {
            let conn = rusqlite::Connection::open(path)?;
            conn.busy_timeout(Duration::from_secs(5))?;
            conn.execute_batch(&sql)
        })
        .await
        .expect("the SQL task")
        .expect("run the SQL");
    }

    /// Whether this database is PostgreSQL.
    pub(crate) fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// A second, independent store over the same PostgreSQL database: its own pool and its
    /// own in-process state, as another `plinth serve` process would have.
    pub(crate) async fn open_another_store(&self) -> Arc<dyn Store> {
        let db = self
            .postgres
            .as_ref()
            .expect("another instance on the same database needs PostgreSQL");
        let mut options = PgOptions::new(db.url());
        options.keys = test_keys();
        let store = PgStore::open(options)
            .await
            .expect("open a second PostgreSQL store on the test database");
        Arc::new(store)
    }

    /// The engine of this run with `connections` connections for reads (SQLite readers,
    /// the PostgreSQL pool) and the given time budget per list.
    pub(crate) async fn with_reads(connections: usize, query_timeout: Duration) -> Self {
        match plinth_testkit::engine() {
            Engine::Postgres(server) => {
                Self::postgres_with(&server, |o| {
                    o.pool_size = connections;
                    o.query_timeout = query_timeout;
                })
                .await
            }
            Engine::Sqlite => {
                Self::sqlite_with(|o| {
                    o.readers = connections;
                    o.query_timeout = query_timeout;
                })
                .await
            }
        }
    }

    /// The PostgreSQL test database (`None` on SQLite).
    pub(crate) fn postgres_database(&self) -> Option<&PgDatabase> {
        self.postgres.as_ref()
    }

    /// A SQLite file in a fresh temporary directory.
    pub(crate) async fn sqlite() -> Self {
        Self::sqlite_with(|_| {}).await
    }

    /// As [`Self::sqlite`], with the store's options adjusted by `configure`.
    pub(crate) async fn sqlite_with(configure: impl FnOnce(&mut SqliteOptions)) -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let mut options = SqliteOptions::new(dir.path().join("plinth.db"));
        options.keys = test_keys();
        // As `plinth serve` has it: every test's reads after writes go through the cache.
        options.record_cache = 8 << 20;
        configure(&mut options);
        let store = SqliteStore::open(options)
            .await
            .expect("open the SQLite store");
        Self {
            store: Arc::new(store),
            dir: Some(dir),
            postgres: None,
        }
    }

    /// Migrates the database to `decls` (empty: the default `resource` model) and builds the
    /// application state over it.
    pub(crate) async fn state(&self, decls: &[ModelDecl]) -> AppState {
        self.state_with(decls, test_auth_config()).await
    }

    /// As [`Self::state`], with the given authentication settings.
    pub(crate) async fn state_with(&self, decls: &[ModelDecl], auth: AuthConfig) -> AppState {
        self.state_clocked(decls, auth, Clock::system()).await
    }

    /// As [`Self::state_with`], with `Auth` going by `clock`.
    pub(crate) async fn state_clocked(
        &self,
        decls: &[ModelDecl],
        auth: AuthConfig,
        clock: Clock,
    ) -> AppState {
        let schema = Schema::from_decls(decls).expect("valid test schema");
        self.store
            .migrate(&schema, false)
            .await
            .expect("migrate the test database");
        let auth = Auth::with_clock(auth, clock).expect("auth settings");
        AppState::new(Arc::clone(&self.store), Arc::new(schema), Arc::new(auth))
    }
}

/// The PostgreSQL server for a test that only makes sense on PostgreSQL; `None`, after a
/// visible `SKIPPED` line, when `PLINTH_TEST_POSTGRES` is unset (a failure instead where
/// skipping is not allowed: `PLINTH_REQUIRE_POSTGRES=1` or `CI=true`).
/// The encryption keys of every store this test process opens (so stores over one
/// database, as instances sharing it, read each other's sealed values).
pub(crate) fn test_keys() -> plinth_store::Keys {
    static KEYS: std::sync::OnceLock<plinth_store::Keys> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        plinth_store::Keys::fixed(plinth_store::Keyring::generate().expect("generate test keys"))
    })
    .clone()
}

pub(crate) fn postgres_server(test: &str) -> Option<String> {
    plinth_testkit::postgres_server(test)
}

/// A fixed signing key for tests.
pub(crate) const TEST_KEY: &[u8] = b"plinth-test-signing-key-0123456789-abcdefghijklmnop";

/// Test auth settings: a fixed key and a cheap argon2 cost, so the suite stays fast; the
/// auth tests that need the real cost set it themselves.
pub(crate) fn test_auth_config() -> AuthConfig {
    let mut config = AuthConfig::new(SigningKey::new(TEST_KEY.to_vec()).expect("test key"));
    config.hash_cost = HashCost {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };
    config
}

/// The password of the users the harness creates.
pub(crate) const PASSWORD: &str = "test password that is long";

/// Creates a user directly in the store and returns it with an access token.
pub(crate) async fn make_user(state: &AppState, email: &str, role: Role) -> (User, String) {
    let hash = state.auth().hash_password(PASSWORD).await.expect("hash");
    let ctx = WriteCtx::new(Principal::local_admin(), "test");
    let new = NewUser {
        email: Email::parse(email).expect("email"),
        password_hash: hash,
        role,
    };
    let user = state
        .store()
        .create_user(&ctx, new)
        .await
        .expect("create user");
    let (token, _) = state.auth().issue_access(&user).expect("token");
    (user, token)
}

/// Model declarations from JSON, as `plinth.toml` would give them.
pub(crate) fn decls(v: Value) -> Vec<ModelDecl> {
    serde_json::from_value(v).expect("valid model declarations")
}

/// One HTTP answer.
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    /// The body as JSON; `Value::Null` when it is empty or not JSON.
    pub(crate) body: Value,
    /// The body as sent.
    pub(crate) raw: Vec<u8>,
}

impl Resp {
    /// Status and JSON body.
    pub(crate) fn pair(self) -> (StatusCode, Value) {
        (self.status, self.body)
    }

    /// A header as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `X-Request-Id` header, which every response must carry.
    pub(crate) fn request_id(&self) -> &str {
        let id = self
            .header("x-request-id")
            .unwrap_or_else(|| panic!("response without X-Request-Id: {self:?}"));
        assert!(!id.is_empty(), "empty X-Request-Id");
        id
    }

    /// `data` of a success envelope, after checking the status.
    pub(crate) fn data(&self, expected: StatusCode) -> &Value {
        assert_eq!(self.status, expected, "unexpected answer: {}", self.body);
        assert_eq!(self.body["success"], json!(true), "{}", self.body);
        &self.body["data"]
    }
}

/// Checks an error answer: the status, the envelope (success false, the code, a message,
/// the request id equal to the `X-Request-Id` header, JSON content type), and returns the
/// fields named in `details`.
pub(crate) fn assert_error(r: &Resp, status: StatusCode, code: &str) -> Vec<String> {
    assert_eq!(r.status, status, "unexpected answer: {}", r.body);
    assert_eq!(r.body["success"], json!(false), "{}", r.body);
    assert_eq!(r.body["error"]["code"], json!(code), "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "error without a message: {}",
        r.body
    );
    assert_eq!(
        r.body["error"]["request_id"].as_str(),
        Some(r.request_id()),
        "request_id in the body differs from the X-Request-Id header"
    );
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "error without a JSON content type: {:?}",
        r.headers
    );
    detail_fields(&r.body)
}

/// The `field` of each entry of `error.details` (every entry must also give a reason).
pub(crate) fn detail_fields(body: &Value) -> Vec<String> {
    let Some(details) = body["error"]["details"].as_array() else {
        return Vec::new();
    };
    details
        .iter()
        .map(|d| {
            assert!(
                d["reason"].as_str().is_some_and(|r| !r.is_empty()),
                "detail without a reason: {d}"
            );
            d["field"].as_str().expect("detail with a field").to_owned()
        })
        .collect()
}

/// A running server over its own database.
#[derive(Debug)]
pub(crate) struct TestApp {
    pub(crate) addr: SocketAddr,
    /// The plain-HTTP port that redirects to HTTPS, when the configuration asks for one.
    pub(crate) redirect_addr: Option<SocketAddr>,
    client: reqwest::Client,
    /// The state the server runs on (to make users and tokens).
    pub(crate) state: AppState,
    /// An admin's access token, sent by [`Self::request`] unless a test says otherwise.
    pub(crate) admin_token: String,
    /// The admin's user id (the `owner_id` of what it creates).
    pub(crate) admin_id: String,
    /// Whether the server runs on PostgreSQL (where text cannot hold NUL).
    pub(crate) postgres: bool,
    /// Held so the database lives as long as the server (and its peers).
    db: Arc<TestDb>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    /// The default schema: the seed's `resource` model.
    pub(crate) async fn spawn() -> Self {
        Self::spawn_with(Vec::new()).await
    }

    /// Custom models.
    pub(crate) async fn spawn_with(decls: Vec<ModelDecl>) -> Self {
        Self::spawn_configured(decls, ServerConfig::default()).await
    }

    /// Custom models and server settings; the listen address is always `127.0.0.1:0`.
    pub(crate) async fn spawn_configured(decls: Vec<ModelDecl>, config: ServerConfig) -> Self {
        Self::spawn_full(decls, config, test_auth_config()).await
    }

    /// Custom models, server and auth settings.
    pub(crate) async fn spawn_full(
        decls: Vec<ModelDecl>,
        config: ServerConfig,
        auth: AuthConfig,
    ) -> Self {
        Self::spawn_on(TestDb::new().await, decls, config, auth).await
    }

    /// The default schema and the given auth settings, with authentication going by a
    /// clock the test moves (token and key expiry, rate-limit windows, the credential
    /// cache), so that nothing has to sleep.
    pub(crate) async fn spawn_clocked(auth: AuthConfig, clock: &ManualClock) -> Self {
        let db = TestDb::new().await;
        let state = db.state_clocked(&[], auth, clock.clock()).await;
        Self::serve_state(db, state, ServerConfig::default()).await
    }

    /// Custom models over the given database, with list filter values bounded by `limits`.
    pub(crate) async fn spawn_limited(
        db: TestDb,
        decls: Vec<ModelDecl>,
        limits: QueryLimits,
    ) -> Self {
        let state = db.state(&decls).await;
        let state = AppState::configured(
            Arc::clone(state.store()),
            Arc::clone(state.schema()),
            Arc::clone(state.auth()),
            Duration::from_secs(5),
            limits,
        );
        Self::serve_state(db, state, ServerConfig::default()).await
    }

    /// Custom models, server and auth settings over the given database.
    pub(crate) async fn spawn_on(
        db: TestDb,
        decls: Vec<ModelDecl>,
        config: ServerConfig,
        auth: AuthConfig,
    ) -> Self {
        let state = db.state_with(&decls, auth).await;
        Self::serve_state(db, state, config).await
    }

    async fn serve_state(db: TestDb, state: AppState, config: ServerConfig) -> Self {
        let (admin, admin_token) = make_user(&state, "admin@example.com", Role::Admin).await;
        let admin_id = admin.id.to_string();
        Self::serve(Arc::new(db), state, config, admin_token, admin_id).await
    }

    /// Another instance over this one's PostgreSQL database, as a second `plinth serve`
    /// behind the same load balancer: its own store (pool), `AppState` and `Auth` (rate
    /// limiters, caches), with the same schema and auth settings (so the same signing key).
    /// It migrates at start as the binary does, which must find nothing to do. Nothing
    /// in-process is shared with `self`; only the database is.
    pub(crate) async fn spawn_peer(&self) -> Self {
        let (peer, steps) = self
            .spawn_peer_serving(Arc::clone(self.state.schema()))
            .await;
        assert!(
            steps.is_empty(),
            "a peer started on a migrated database changed the schema: {steps:?}"
        );
        peer
    }

    /// As [`Self::spawn_peer`], serving other models (the next version of the configuration,
    /// as in a rolling upgrade); returns the peer and the migration steps it applied.
    pub(crate) async fn spawn_peer_with(&self, decls: &[ModelDecl]) -> (Self, Vec<String>) {
        let schema = Schema::from_decls(decls).expect("valid test schema");
        self.spawn_peer_serving(Arc::new(schema)).await
    }

    async fn spawn_peer_serving(&self, schema: Arc<Schema>) -> (Self, Vec<String>) {
        let store = self.db.open_another_store().await;
        let steps = store
            .migrate(&schema, false)
            .await
            .expect("a peer migrates at start");
        let auth = Auth::new(self.state.auth().config().clone()).expect("auth settings");
        let state = AppState::new(store, schema, Arc::new(auth));
        let peer = Self::serve(
            Arc::clone(&self.db),
            state,
            ServerConfig::default(),
            self.admin_token.clone(),
            self.admin_id.clone(),
        )
        .await;
        (peer, steps)
    }

    /// Binds `127.0.0.1:0` and serves `state` in a background task.
    async fn serve(
        db: Arc<TestDb>,
        state: AppState,
        config: ServerConfig,
        admin_token: String,
        admin_id: String,
    ) -> Self {
        let config = ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..config
        };
        let app = Application::build(config, state.clone())
            .await
            .expect("build the application");
        let addr = app.local_addr();
        let redirect_addr = app.redirect_addr();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = rx.await;
        }));
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("build the HTTP client");
        Self {
            addr,
            redirect_addr,
            client,
            state,
            admin_token,
            admin_id,
            postgres: db.is_postgres(),
            db,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// The database the server runs on.
    pub(crate) fn database(&self) -> &TestDb {
        &self.db
    }

    /// Fires the shutdown signal; the server then drains and stops.
    pub(crate) fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Waits for the server task to finish (after [`Self::begin_shutdown`]).
    pub(crate) async fn stopped(&mut self) -> std::io::Result<()> {
        let handle = self.server.take().expect("server task still held");
        handle.await.expect("server task did not panic")
    }

    /// An absolute URL for a path such as `/api/v1/resource`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A request to build on (headers, body), sent with [`Self::send`], as the admin.
    pub(crate) fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.request_as(method, path, Some(&self.admin_token))
    }

    /// A request with the given bearer credential (token or API key), or none (a guest).
    pub(crate) fn request_as(
        &self,
        method: Method,
        path: &str,
        credential: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let req = self.client.request(method, self.url(path));
        match credential {
            Some(c) => req.bearer_auth(c),
            None => req,
        }
    }

    /// Sends a request and reads the whole answer.
    pub(crate) async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let res = req.send().await.expect("the server answers");
        let status = res.status();
        let headers = res.headers().clone();
        let raw = res.bytes().await.expect("read the body").to_vec();
        assert_no_secrets(&raw);
        let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            raw,
        }
    }

    /// `GET path`.
    pub(crate) async fn get_path(&self, path: &str) -> Resp {
        self.send(self.request(Method::GET, path)).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.begin_shutdown();
    }
}

/// A header value from text (for headers `reqwest` would refuse as `&str`).
pub(crate) fn raw_header(name: &'static str, bytes: &[u8]) -> (HeaderName, HeaderValue) {
    (
        HeaderName::from_static(name),
        HeaderValue::from_bytes(bytes).expect("a valid header value"),
    )
}

/// The id of a record body.
pub(crate) fn id_of(record: &Value) -> String {
    record["id"].as_str().expect("a record id").to_owned()
}

/// A syntactically valid UUID that names no record.
pub(crate) const MISSING_ID: &str = "0192f1c4-7a1e-7c3a-9b2d-3f4e5a6b7c8d";
