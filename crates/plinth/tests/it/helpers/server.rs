//! The HTTP side of the harness: a running `plinth serve`, its credentials and its answers.

use super::{
    ADMIN_EMAIL, ADMIN_PASSWORD, POLL, Proc, START_TIMEOUT, TestDir, log_field, log_message,
};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// The `X-Request-Id` of the harness's own login, so log tests can tell its lines apart.
pub(crate) const LOGIN_REQUEST_ID: &str = "it-harness-login";

/// An HTTP answer with its body parsed as JSON (`Null` when empty).
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
    /// The body as sent, for checks that no secret appears in it.
    pub(crate) text: String,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an error envelope with this status and code.
    pub(crate) fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.body["success"], false, "{}", self.text);
        assert_eq!(self.body["error"]["code"], code, "{}", self.text);
    }
}

/// Reads a response fully.
pub(crate) async fn reply(resp: reqwest::Response) -> Reply {
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("read the response body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"))
    };
    Reply {
        status,
        headers,
        body,
        text,
    }
}

/// An HTTP client that ignores proxy settings of the environment and sends `headers` on
/// every request.
fn client_with(headers: HeaderMap) -> Client {
    Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .default_headers(headers)
        .build()
        .expect("build the HTTP client")
}

/// A client that sends `Authorization: Bearer <credential>` (an access token or an API key)
/// on every request.
pub(crate) fn bearer_client(credential: &str) -> Client {
    let mut value =
        HeaderValue::from_str(&format!("Bearer {credential}")).expect("a valid header value");
    value.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, value);
    client_with(headers)
}

/// The token pair a login or a refresh returns.
#[derive(Debug, Clone)]
pub(crate) struct Tokens {
    pub(crate) access_token: String,
    pub(crate) refresh_token: String,
}

impl Tokens {
    /// The pair in a successful login or refresh answer, checking the contract's shape.
    pub(crate) fn from_reply(r: &Reply) -> Self {
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["success"], true, "{}", r.text);
        let data = &r.body["data"];
        assert_eq!(data["token_type"], "Bearer", "{}", r.text);
        let expires_in = data["expires_in"].as_u64().expect("expires_in seconds");
        assert!((1..=24 * 3600).contains(&expires_in), "{}", r.text);
        let text = |k: &str| {
            let v = data[k]
                .as_str()
                .unwrap_or_else(|| panic!("no {k}: {}", r.text));
            assert!(v.len() >= 32, "{k} is too short to be a secret: {v}");
            v.to_owned()
        };
        Self {
            access_token: text("access_token"),
            refresh_token: text("refresh_token"),
        }
    }
}

/// A running `plinth serve`, killed on drop. Requests go out with the credential of the
/// last `sign_in` (the admin's, after `start`), or none before any.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) proc: Proc,
    addr: SocketAddr,
    /// Sends the current credential.
    client: Client,
    /// Sends none.
    guest: Client,
    tokens: Option<Tokens>,
}

impl Server {
    /// `plinth serve --listen 127.0.0.1:0 --data-dir DIR/data`, signed in as the admin.
    pub(crate) async fn start(dir: &TestDir) -> Self {
        Self::start_with(dir, &[], &[]).await
    }

    /// As `start`, with more serve flags and environment variables. The first start on a
    /// data dir creates the admin from `PLINTH_ADMIN_EMAIL` / `PLINTH_ADMIN_PASSWORD`; later
    /// ones are given the same variables (ignored once an admin exists) and log in again.
    pub(crate) async fn start_with(dir: &TestDir, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut server = Self::spawn(dir, args, &with_admin(envs)).await;
        server.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        server
    }

    /// Starts without creating an admin or logging in: every request goes out as a guest
    /// until `sign_in`. Listens on `127.0.0.1:0` unless `args` has a `--listen`; waits for
    /// the `listening` log line and takes the real port from it (connecting over loopback
    /// when the server listens on every interface).
    pub(crate) async fn spawn(dir: &TestDir, args: &[&str], envs: &[(&str, &str)]) -> Self {
        Self::spawn_under(dir, &[], args, envs).await
    }

    /// As `spawn`, run by `wrapper` (a program and its arguments, such as `prlimit
    /// --nofile=256:256 --`) when it is not empty.
    pub(crate) async fn spawn_under(
        dir: &TestDir,
        wrapper: &[&str],
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Self {
        let data = dir.data_arg();
        let mut all = vec!["serve", "--data-dir", &data];
        if !args.contains(&"--listen") {
            all.extend(["--listen", "127.0.0.1:0"]);
        }
        all.extend_from_slice(args);
        let mut cmd = dir.command(&all, envs);
        if let Some((program, rest)) = wrapper.split_first() {
            let mut wrapped = std::process::Command::new(program);
            wrapped
                .args(rest)
                .arg(cmd.get_program())
                .args(cmd.get_args());
            for (key, value) in cmd.get_envs() {
                match value {
                    Some(value) => wrapped.env(key, value),
                    None => wrapped.env_remove(key),
                };
            }
            if let Some(cwd) = cmd.get_current_dir() {
                wrapped.current_dir(cwd);
            }
            wrapped
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd = wrapped;
        }
        let mut proc = Proc::spawn(cmd);
        let line = proc
            .wait_for_log("\"listening\"", |l| log_message(l) == Some("listening"))
            .await;
        let mut addr: SocketAddr = log_field(&line, "addr")
            .and_then(Value::as_str)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("the listening line has no usable addr: {line}"));
        if dir.postgres_url().is_some() && !envs.iter().any(|(k, _)| *k == "DATABASE_URL") {
            assert!(
                !dir.db().exists(),
                "the run is on PostgreSQL, yet plinth made the SQLite file\n{}",
                proc.describe()
            );
        }
        if addr.ip().is_unspecified() {
            addr.set_ip(Ipv4Addr::LOCALHOST.into());
        }
        Self::new(proc, addr)
    }

    /// For log filters that hide the `listening` line: picks a free port first, then polls
    /// `/healthz` until the server answers, then signs in as the admin.
    pub(crate) async fn start_quiet(dir: &TestDir, envs: &[(&str, &str)]) -> Self {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("find a free port");
        let (listen, data) = (addr.to_string(), dir.data_arg());
        let args = ["serve", "--listen", &listen, "--data-dir", &data];
        let mut server = Self::new(Proc::spawn(dir.command(&args, &with_admin(envs))), addr);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let probe = server.guest.get(server.url("/healthz")).send().await;
            if probe.is_ok_and(|r| r.status() == StatusCode::OK) {
                break;
            }
            if let Some(status) = server.proc.try_status() {
                panic!(
                    "plinth exited ({status}) before serving\n{}",
                    server.proc.describe()
                );
            }
            assert!(
                Instant::now() < deadline,
                "plinth never answered\n{}",
                server.proc.describe()
            );
            tokio::time::sleep(POLL).await;
        }
        server.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        server
    }

    fn new(proc: Proc, addr: SocketAddr) -> Self {
        let guest = client_with(HeaderMap::new());
        Self {
            proc,
            addr,
            client: guest.clone(),
            guest,
            tokens: None,
        }
    }

    /// `POST /api/v1/auth/login` (as a guest, with [`LOGIN_REQUEST_ID`]).
    pub(crate) async fn login(&self, email: &str, password: &str) -> Reply {
        let req = self
            .guest
            .post(self.url("/api/v1/auth/login"))
            .header("x-request-id", LOGIN_REQUEST_ID)
            .json(&json!({"email": email, "password": password}));
        self.send(req).await
    }

    /// Logs in, asserting success, and sends the new access token on every later request.
    pub(crate) async fn sign_in(&mut self, email: &str, password: &str) -> Tokens {
        let r = self.login(email, password).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "login as {email}: {}\n{}",
            r.text,
            self.proc.describe()
        );
        let tokens = Tokens::from_reply(&r);
        self.client = bearer_client(&tokens.access_token);
        self.tokens = Some(tokens.clone());
        tokens
    }

    /// The tokens of the last `sign_in`.
    pub(crate) fn tokens(&self) -> &Tokens {
        self.tokens.as_ref().expect("signed in")
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `host:port` to connect to.
    pub(crate) fn authority(&self) -> String {
        self.addr.to_string()
    }

    /// A client sending the current credential (the admin's after `start`).
    pub(crate) fn client(&self) -> Client {
        self.client.clone()
    }

    /// A client sending no credentials.
    pub(crate) fn guest(&self) -> Client {
        self.guest.clone()
    }

    pub(crate) async fn send(&self, req: RequestBuilder) -> Reply {
        reply(req.send().await.expect("send the request")).await
    }

    pub(crate) async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(self.url(path))).await
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(self.client.post(self.url(path)).json(body)).await
    }

    pub(crate) async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.send(self.client.patch(self.url(path)).json(body))
            .await
    }

    /// Creates a record, asserting 201; returns `data`.
    pub(crate) async fn create(&self, model: &str, body: &Value) -> Value {
        let r = self.post(&format!("/api/v1/{model}"), body).await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "create {model} {body}: {}",
            r.body
        );
        r.body["data"].clone()
    }

    /// Reads a record, asserting 200; returns `data`.
    pub(crate) async fn read(&self, model: &str, id: &str) -> Value {
        let r = self.get(&format!("/api/v1/{model}/{id}")).await;
        assert_eq!(r.status, StatusCode::OK, "get {model}/{id}: {}", r.body);
        r.body["data"].clone()
    }

    /// SIGTERM, then asserts a clean exit (status 0); returns the process for its logs.
    pub(crate) async fn stop(mut self) -> Proc {
        self.proc.signal("TERM");
        let status = self.proc.wait_exit().await;
        assert_eq!(
            status.code(),
            Some(0),
            "exit after SIGTERM\n{}",
            self.proc.describe()
        );
        self.proc
    }
}

/// `envs` with the first admin's variables in front (so `envs` may override them).
fn with_admin<'a>(envs: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = vec![
        ("PLINTH_ADMIN_EMAIL", ADMIN_EMAIL),
        ("PLINTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
    ];
    all.extend_from_slice(envs);
    all
}
