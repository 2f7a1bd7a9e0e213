//! A real SMTP server for tests, on a random loopback port: it speaks enough of RFC 5321
//! (`EHLO`/`HELO`, `MAIL FROM`, `RCPT TO`, `DATA` with dot-unstuffing, `RSET`, `NOOP`,
//! `QUIT`) for a real client to deliver, and keeps every message (envelope and raw data)
//! for the test to read. No TLS and no authentication are offered.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// One delivered message.
#[derive(Debug, Clone)]
pub struct SmtpMessage {
    /// `MAIL FROM`.
    pub from: String,
    /// Every `RCPT TO`.
    pub to: Vec<String>,
    /// The data as sent, dot-unstuffed, lines ending in CRLF.
    pub data: String,
}

impl SmtpMessage {
    /// The data with quoted-printable soft line breaks joined, so a line reads whole
    /// whichever transfer encoding the sender picked.
    pub fn text(&self) -> String {
        self.data.replace("=\r\n", "")
    }

    /// The value of the first `token: <token>` line, if any.
    pub fn token(&self) -> Option<String> {
        self.text()
            .lines()
            .find_map(|l| l.trim_end().strip_prefix("token: ").map(str::to_owned))
    }

    /// Whether `rcpt` (case-insensitively) is a recipient.
    pub fn is_to(&self, rcpt: &str) -> bool {
        self.to.iter().any(|t| t.eq_ignore_ascii_case(rcpt))
    }
}

#[derive(Debug, Default)]
struct Inbox {
    /// Messages not yet taken by [`SmtpSink::next_to`].
    waiting: Vec<SmtpMessage>,
    /// Every message ever delivered.
    all: Vec<SmtpMessage>,
}

/// The server; stops when dropped.
#[derive(Debug)]
pub struct SmtpSink {
    port: u16,
    inbox: Arc<Mutex<Inbox>>,
    arrived: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    /// Listens on `127.0.0.1:0`.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the SMTP sink");
        let port = listener.local_addr().expect("the sink's address").port();
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let arrived = Arc::new(Notify::new());
        let (i, a) = (Arc::clone(&inbox), Arc::clone(&arrived));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (i, a) = (Arc::clone(&i), Arc::clone(&a));
                tokio::spawn(async move {
                    let _ = session(stream, i, a).await;
                });
            }
        });
        Self {
            port,
            inbox,
            arrived,
            task,
        }
    }

    /// `smtp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every message delivered so far.
    pub fn all(&self) -> Vec<SmtpMessage> {
        self.inbox.lock().map(|i| i.all.clone()).unwrap_or_default()
    }

    /// The oldest message to `rcpt` not taken yet, waiting up to `timeout` for one; takes it.
    pub async fn next_to(&self, rcpt: &str, timeout: Duration) -> Option<SmtpMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            if let Ok(mut inbox) = self.inbox.lock()
                && let Some(at) = inbox.waiting.iter().position(|m| m.is_to(rcpt))
            {
                return Some(inbox.waiting.remove(at));
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }
}

async fn session(
    stream: TcpStream,
    inbox: Arc<Mutex<Inbox>>,
    arrived: Arc<Notify>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write
        .write_all(b"220 plinth-testkit ESMTP sink\r\n")
        .await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end();
        let upper = command.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-plinth-testkit\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            b"250 OK\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = address(&command[10..]);
            to.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            to.push(address(&command[8..]));
            b"250 OK\r\n"
        } else if upper == "RSET" {
            from.clear();
            to.clear();
            b"250 OK\r\n"
        } else if upper == "DATA" {
            write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            let message = SmtpMessage {
                from: std::mem::take(&mut from),
                to: std::mem::take(&mut to),
                data,
            };
            if let Ok(mut inbox) = inbox.lock() {
                inbox.all.push(message.clone());
                inbox.waiting.push(message);
            }
            arrived.notify_waiters();
            b"250 OK queued\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"502 not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
}

/// `<a@b>` (with any parameters after it) → `a@b`.
fn address(arg: &str) -> String {
    let arg = arg.trim();
    match (arg.find('<'), arg.find('>')) {
        (Some(a), Some(b)) if a < b => arg[a + 1..b].to_owned(),
        _ => arg.split_whitespace().next().unwrap_or("").to_owned(),
    }
}
