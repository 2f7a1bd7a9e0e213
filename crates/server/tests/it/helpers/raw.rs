//! Raw HTTP/1.1 over a `TcpStream`, for what a well-behaved client library would not do:
//! send half a head, trickle a body, keep a connection idle, or look at `Connection`.

use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long any read in these tests may wait before the test calls the server stuck.
pub(crate) const STUCK: Duration = Duration::from_secs(15);

/// One connection to the server.
#[derive(Debug)]
pub(crate) struct RawConn {
    stream: TcpStream,
    /// Bytes read past the last response.
    buf: Vec<u8>,
}

/// One response read off a [`RawConn`].
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    /// Header names lowercased, in order.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl RawResponse {
    /// The first header named `name` (lowercase).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// Whether the response says the connection closes after it.
    pub(crate) fn says_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

impl RawConn {
    /// Connects to `addr`.
    pub(crate) async fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr)
            .await
            .expect("connect to the server");
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    /// Connects to `addr` with a small receive buffer, so a large answer stays mostly on
    /// the server's side until the test reads it.
    pub(crate) async fn open_slow_reader(addr: SocketAddr) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.set_recv_buffer_size(16 * 1024).expect("SO_RCVBUF");
        let stream = socket.connect(addr).await.expect("connect to the server");
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    /// The connection itself, for tests that read and write it as they please.
    pub(crate) fn into_stream(self) -> TcpStream {
        self.stream
    }

    /// Writes `bytes`; false if the server already closed the connection.
    pub(crate) async fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok()
    }

    /// `GET path` with keep-alive, and its response.
    pub(crate) async fn get(&mut self, path: &str) -> RawResponse {
        let req = format!("GET {path} HTTP/1.1\r\nHost: plinth.test\r\n\r\n");
        assert!(
            self.send(req.as_bytes()).await,
            "the server closed the connection"
        );
        self.response().await
    }

    async fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(STUCK, self.stream.read(&mut chunk))
            .await
            .expect("the server neither answered nor closed the connection")
            .unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    /// Reads one response (its body by `Content-Length`); panics if the connection closes
    /// first.
    pub(crate) async fn response(&mut self) -> RawResponse {
        self.try_response()
            .await
            .expect("the connection closed without a response")
    }

    /// Reads one response, or `None` when the connection closes before one arrives.
    pub(crate) async fn try_response(&mut self) -> Option<RawResponse> {
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if self.fill().await == 0 {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP status line: {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        self.buf.drain(..head_end + 4);
        while self.buf.len() < length {
            if self.fill().await == 0 {
                return None;
            }
        }
        let body = self.buf.drain(..length).collect();
        Some(RawResponse {
            status,
            headers,
            body,
        })
    }

    /// Sends `body` one byte every `every` until the server answers (or closes), and reads
    /// that answer.
    pub(crate) async fn trickle(&mut self, body: &[u8], every: Duration) -> Option<RawResponse> {
        let (mut rd, mut wr) = self.stream.split();
        let mut chunk = [0u8; 8192];
        let mut bytes = body.iter();
        let answered = async {
            loop {
                tokio::select! {
                    n = rd.read(&mut chunk) => {
                        let n = n.unwrap_or(0);
                        self.buf.extend_from_slice(&chunk[..n]);
                        return;
                    }
                    () = tokio::time::sleep(every) => {
                        if let Some(b) = bytes.next()
                            && wr.write_all(&[*b]).await.is_err()
                        {
                            return;
                        }
                    }
                }
            }
        };
        tokio::time::timeout(STUCK, answered)
            .await
            .expect("the server neither answered the trickled body nor closed");
        self.try_response().await
    }

    /// Whether the server closes the connection within `within`, sending nothing more.
    pub(crate) async fn closed_within(&mut self, within: Duration) -> bool {
        let mut chunk = [0u8; 1024];
        match tokio::time::timeout(within, self.stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => true,
            Ok(Ok(n)) => panic!(
                "expected the connection to close, got {:?}",
                String::from_utf8_lossy(&chunk[..n])
            ),
            Err(_) => false,
        }
    }
}
