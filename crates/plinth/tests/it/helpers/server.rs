//! The HTTP side of the harness: a running `plinth serve` and its answers.

use super::{POLL, Proc, START_TIMEOUT, TestDir, command, log_field, log_message};
use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// An HTTP answer with its body parsed as JSON (`Null` when empty).
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
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
    }
}

/// An HTTP client that ignores proxy settings of the environment.
pub(crate) fn client() -> Client {
    Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("build the HTTP client")
}

/// A running `plinth serve`, killed on drop.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) proc: Proc,
    addr: SocketAddr,
    client: Client,
}

impl Server {
    /// `plinth serve --listen 127.0.0.1:0 --data-dir DIR/data`.
    pub(crate) async fn start(dir: &TestDir) -> Self {
        Self::start_with(dir, &[], &[]).await
    }

    /// As `start`, with more serve flags and environment variables; waits for the
    /// `listening` log line and takes the real port from it.
    pub(crate) async fn start_with(dir: &TestDir, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let data = dir.data_arg();
        let mut all = vec!["serve", "--listen", "127.0.0.1:0", "--data-dir", &data];
        all.extend_from_slice(args);
        let mut proc = Proc::spawn(command(dir.path(), &all, envs));
        let line = proc
            .wait_for_log("\"listening\"", |l| log_message(l) == Some("listening"))
            .await;
        let addr = log_field(&line, "addr")
            .and_then(Value::as_str)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("the listening line has no usable addr: {line}"));
        Self {
            proc,
            addr,
            client: client(),
        }
    }

    /// For log filters that hide the `listening` line: picks a free port first, then polls
    /// `/healthz` until the server answers.
    pub(crate) async fn start_quiet(dir: &TestDir, envs: &[(&str, &str)]) -> Self {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("find a free port");
        let (listen, data) = (addr.to_string(), dir.data_arg());
        let args = ["serve", "--listen", &listen, "--data-dir", &data];
        let mut server = Self {
            proc: Proc::spawn(command(dir.path(), &args, envs)),
            addr,
            client: client(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let probe = server.client.get(server.url("/healthz")).send().await;
            if probe.is_ok_and(|r| r.status() == StatusCode::OK) {
                return server;
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
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn client(&self) -> Client {
        self.client.clone()
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
