//! HTTPS served by Plinth itself: a self-signed certificate made at run time, the real
//! server on a random port, a rustls client.

use crate::helpers::{TestApp, decls};
use plinth_server::{ServerConfig, TlsFiles};
use plinth_testkit::tls::{SelfSigned, connector};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Far longer than any step takes: only a hang reaches it.
const PATIENCE: Duration = Duration::from_secs(20);

/// Replaces `path` at once (write beside, then rename), as a certificate renewal does.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).expect("write the file");
    std::fs::rename(&tmp, path).expect("replace the file");
}

struct Files {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
}

fn write_files(cert: &SelfSigned) -> Files {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, &cert.cert_pem).expect("write the certificate");
    std::fs::write(&key_path, &cert.key_pem).expect("write the key");
    Files {
        _dir: dir,
        cert: cert_path,
        key: key_path,
    }
}

async fn spawn_tls(files: &Files, reload_interval: Duration, header: Duration) -> TestApp {
    let tls = TlsFiles {
        reload_interval,
        ..TlsFiles::new(&files.cert, &files.key)
    };
    TestApp::spawn_configured(
        decls(json!([])),
        ServerConfig {
            header_read_timeout: header,
            tls: Some(tls),
            ..ServerConfig::default()
        },
    )
    .await
}

async fn connect(app: &TestApp, tls: &TlsConnector) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(app.addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("server name");
    tokio::time::timeout(PATIENCE, tls.connect(name, tcp))
        .await
        .expect("handshake in time")
        .expect("TLS handshake")
}

/// The certificate the server presented on `stream`.
fn presented(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream
        .get_ref()
        .1
        .peer_certificates()
        .expect("a certificate")[0]
        .clone()
}

/// One `GET path` on a kept-alive connection: the status line and the headers (lowercase
/// names), the body read by its `Content-Length`.
async fn get(stream: &mut TlsStream<TcpStream>, path: &str) -> (String, Vec<(String, String)>) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    read_answer(stream).await
}

/// The next answer on a kept-alive connection: the status line and the headers (lowercase
/// names), the body read by its `Content-Length`.
async fn read_answer<S: AsyncRead + Unpin>(stream: &mut S) -> (String, Vec<(String, String)>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut byte))
            .await
            .expect("answer in time")
            .expect("read");
        assert_eq!(n, 1, "connection closed before the answer's head ended");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).expect("UTF-8 head");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map_or(0, |(_, v)| v.parse().expect("a length"));
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.expect("the body");
    (status, headers)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Reads until the server closes the connection; what it sent.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server closes the connection");
    got
}

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

#[tokio::test]
async fn serves_https_with_hsts_on_tls_1_2_and_1_3() {
    let cert = SelfSigned::localhost();
    let files = write_files(&cert);
    let app = spawn_tls(&files, Duration::ZERO, Duration::from_secs(10)).await;
    for (version, expected) in [
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
    ] {
        let mut stream = connect(&app, &connector(&[&cert], &[version])).await;
        assert_eq!(stream.get_ref().1.protocol_version(), Some(expected));
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        let (status, headers) = get(&mut stream, "/healthz").await;
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        assert_eq!(
            header(&headers, "strict-transport-security"),
            Some("max-age=31536000")
        );
        // Errors carry it too.
        let (status, headers) = get(&mut stream, "/no/such/route").await;
        assert!(status.starts_with("HTTP/1.1 404"), "{status}");
        assert_eq!(
            header(&headers, "strict-transport-security"),
            Some("max-age=31536000")
        );
    }
}

#[tokio::test]
async fn plain_http_gets_no_hsts() {
    let app = TestApp::spawn().await;
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .get(format!("http://{}/healthz", app.addr))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("strict-transport-security").is_none());
}

#[tokio::test]
async fn plain_http_to_the_tls_port_is_closed_cleanly() {
    let cert = SelfSigned::localhost();
    let files = write_files(&cert);
    let app = spawn_tls(&files, Duration::ZERO, Duration::from_secs(10)).await;
    let mut tcp = TcpStream::connect(app.addr).await.expect("connect");
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("send");
    let got = read_to_close(&mut tcp).await;
    assert!(
        !String::from_utf8_lossy(&got).contains("HTTP/1.1"),
        "plain HTTP was answered in clear: {got:?}"
    );
    // The server still serves TLS.
    let mut stream = connect(&app, &connector(&[&cert], BOTH)).await;
    let (status, _) = get(&mut stream, "/healthz").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
}

#[tokio::test]
async fn a_silent_handshake_is_cut_off_at_the_header_read_timeout() {
    let cert = SelfSigned::localhost();
    let files = write_files(&cert);
    let app = spawn_tls(&files, Duration::ZERO, Duration::from_secs(1)).await;
    let mut tcp = TcpStream::connect(app.addr).await.expect("connect");
    // Half a record header, then nothing.
    tcp.write_all(&[0x16, 0x03]).await.expect("send");
    let got = read_to_close(&mut tcp).await;
    assert!(got.is_empty() || got[0] == 0x15, "{got:?}");
}

/// A ClientHello offering only `version` (no `supported_versions` extension), with what a
/// TLS 1.2 server needs to answer it (an ECDSA P-256 suite, groups, signature schemes).
fn client_hello(version: [u8; 2]) -> Vec<u8> {
    let mut body = version.to_vec();
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(0); // no session id
    body.extend_from_slice(&[0x00, 0x02, 0xc0, 0x2b]); // ECDHE-ECDSA-AES128-GCM-SHA256
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    let extensions: &[u8] = &[
        0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17, // groups: x25519, P-256
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // point formats: uncompressed
        0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03, // signatures: ECDSA P-256 SHA-256
    ];
    let len = u16::try_from(extensions.len()).expect("small");
    body.extend_from_slice(&len.to_be_bytes());
    body.extend_from_slice(extensions);
    let len = u32::try_from(body.len()).expect("small");
    let mut handshake = vec![0x01];
    handshake.extend_from_slice(&len.to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);
    let len = u16::try_from(handshake.len()).expect("small");
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&len.to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

/// The server's first bytes in answer to `hello`.
async fn answer_to(app: &TestApp, hello: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(app.addr).await.expect("connect");
    tcp.write_all(hello).await.expect("send");
    let mut got = vec![0u8; 7];
    let n = tokio::time::timeout(PATIENCE, tcp.read(&mut got))
        .await
        .expect("an answer in time")
        .expect("read");
    got.truncate(n);
    got
}

#[tokio::test]
async fn tls_1_1_is_refused() {
    let cert = SelfSigned::localhost();
    let files = write_files(&cert);
    let app = spawn_tls(&files, Duration::ZERO, Duration::from_secs(10)).await;
    // The same hello as TLS 1.2 is answered with a ServerHello...
    let got = answer_to(&app, &client_hello([0x03, 0x03])).await;
    assert_eq!(got.get(..1), Some(&[0x16u8][..]), "no handshake: {got:?}");
    assert_eq!(
        got.get(5..6),
        Some(&[0x02u8][..]),
        "no ServerHello: {got:?}"
    );
    // ...as TLS 1.1 and 1.0 with a fatal `protocol_version` alert (70).
    for version in [[0x03, 0x02], [0x03, 0x01]] {
        let got = answer_to(&app, &client_hello(version)).await;
        assert_eq!(got.first(), Some(&0x15), "not an alert: {got:?}");
        assert_eq!(got.get(5..7), Some(&[2u8, 70][..]), "{got:?}");
    }
}

/// Opens new connections until one presents `expected`.
async fn wait_for_cert(app: &TestApp, tls: &TlsConnector, expected: &SelfSigned) {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let stream = connect(app, tls).await;
            if presented(&stream) == expected.der {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the new certificate is served");
}

#[tokio::test]
async fn a_changed_certificate_is_served_to_new_connections_while_open_ones_go_on() {
    let (old, new) = (SelfSigned::localhost(), SelfSigned::localhost());
    let files = write_files(&old);
    let app = spawn_tls(&files, Duration::from_millis(100), Duration::from_secs(10)).await;
    let tls = connector(&[&old, &new], BOTH);
    let mut open = connect(&app, &tls).await;
    assert!(presented(&open) == old.der);
    let (status, _) = get(&mut open, "/healthz").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");

    replace(&files.key, &new.key_pem);
    replace(&files.cert, &new.cert_pem);
    wait_for_cert(&app, &tls, &new).await;
    // The connection opened before the reload still works, on its certificate.
    let (status, _) = get(&mut open, "/healthz").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(presented(&open) == old.der);

    // A broken file is not loaded: the last good certificate stays in use.
    replace(
        &files.cert,
        "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n",
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut stream = connect(&app, &tls).await;
    assert!(presented(&stream) == new.der);
    let (status, _) = get(&mut stream, "/healthz").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
}

#[cfg(unix)]
#[tokio::test]
async fn sighup_reloads_the_certificate() {
    let (old, new) = (SelfSigned::localhost(), SelfSigned::localhost());
    let files = write_files(&old);
    // No polling: only the signal reloads.
    let app = spawn_tls(&files, Duration::ZERO, Duration::from_secs(10)).await;
    let tls = connector(&[&old, &new], BOTH);
    // Served: the reloader has registered for SIGHUP before the first accept.
    let mut stream = connect(&app, &tls).await;
    let (status, _) = get(&mut stream, "/healthz").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    replace(&files.key, &new.key_pem);
    replace(&files.cert, &new.cert_pem);
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success());
    wait_for_cert(&app, &tls, &new).await;
}

#[tokio::test]
async fn unusable_files_refuse_the_start() {
    let cert = SelfSigned::localhost();
    let other = SelfSigned::localhost();
    let files = write_files(&cert);
    let build = |tls: TlsFiles| async move {
        let state = crate::helpers::TestDb::new().await.state(&[]).await;
        plinth_server::Application::build(
            ServerConfig {
                listen: ([127, 0, 0, 1], 0).into(),
                tls: Some(tls),
                ..ServerConfig::default()
            },
            state,
        )
        .await
        .err()
        .map(|e| e.to_string())
    };
    let bad = files.cert.with_file_name("bad.pem");
    std::fs::write(&bad, "garbage").expect("write");
    let mismatched = files.cert.with_file_name("other-key.pem");
    std::fs::write(&mismatched, &other.key_pem).expect("write");
    let missing = files.cert.with_file_name("missing.pem");
    for (tls, expected) in [
        (TlsFiles::new(&bad, &files.key), "holds no PEM certificate"),
        (TlsFiles::new(&files.cert, &bad), "not a PEM private key"),
        (
            TlsFiles::new(&files.cert, &mismatched),
            "cannot be used with",
        ),
        (TlsFiles::new(&missing, &files.key), "cannot read"),
    ] {
        let refused = build(tls).await.expect("the start is refused");
        assert!(refused.starts_with("cannot serve HTTPS: "), "{refused}");
        assert!(refused.contains(expected), "{refused}");
        assert!(!refused.contains("PRIVATE KEY-----"), "{refused}");
    }
}

/// Sends `request` as is to `addr` and reads the answer until the server closes: the
/// status line and the headers (lowercase names), and the body.
async fn raw_exchange(
    addr: std::net::SocketAddr,
    request: &str,
) -> (String, Vec<(String, String)>, String) {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(request.as_bytes()).await.expect("send");
    let got = String::from_utf8(read_to_close(&mut tcp).await).expect("UTF-8");
    let (head, body) = got.split_once("\r\n\r\n").unwrap_or((&got, ""));
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

async fn spawn_redirecting(files: &Files) -> TestApp {
    TestApp::spawn_configured(
        decls(json!([])),
        ServerConfig {
            tls: Some(TlsFiles {
                reload_interval: Duration::ZERO,
                ..TlsFiles::new(&files.cert, &files.key)
            }),
            redirect_from: Some(([127, 0, 0, 1], 0).into()),
            ..ServerConfig::default()
        },
    )
    .await
}

#[tokio::test]
async fn the_redirect_port_sends_every_request_to_the_same_path_over_https() {
    let cert = SelfSigned::localhost();
    let files = write_files(&cert);
    let app = spawn_redirecting(&files).await;
    let plain = app.redirect_addr.expect("a redirect port");
    let port = app.addr.port();
    for (request, location) in [
        (
            "GET /api/v1/things?limit=5&q=a%20b HTTP/1.1\r\nHost: api.example.com\r\n".to_owned(),
            format!("https://api.example.com:{port}/api/v1/things?limit=5&q=a%20b"),
        ),
        // The port of Host is the plain one: replaced by the HTTPS port. Any method.
        (
            "POST /x HTTP/1.1\r\nHost: Example.COM:80\r\nContent-Length: 3\r\n\r\nabc".to_owned(),
            format!("https://example.com:{port}/x"),
        ),
        (
            "DELETE / HTTP/1.1\r\nHost: [::1]:8080\r\n".to_owned(),
            format!("https://[::1]:{port}/"),
        ),
        // An absolute-form target: its authority is the host, its path the path.
        (
            "GET http://localhost/y?z=1 HTTP/1.1\r\nHost: other.example\r\n".to_owned(),
            format!("https://localhost:{port}/y?z=1"),
        ),
        // A path that looks like a network path stays a path on the named host.
        (
            "GET //evil.example/p HTTP/1.1\r\nHost: localhost\r\n".to_owned(),
            format!("https://localhost:{port}//evil.example/p"),
        ),
    ] {
        let request = if request.contains("\r\n\r\n") {
            request.replace("HTTP/1.1\r\n", "HTTP/1.1\r\nConnection: close\r\n")
        } else {
            format!("{request}Connection: close\r\n\r\n")
        };
        let (status, headers, _) = raw_exchange(plain, &request).await;
        assert!(status.starts_with("HTTP/1.1 308"), "{request}: {status}");
        assert_eq!(
            header(&headers, "location"),
            Some(location.as_str()),
            "{request}"
        );
        assert!(header(&headers, "x-request-id").is_some());
        assert!(header(&headers, "strict-transport-security").is_none());
    }
    // The redirect leads to the server.
    let mut stream = connect(&app, &connector(&[&cert], BOTH)).await;
    let (status, _) = get(&mut stream, "/healthz").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
}

#[tokio::test]
async fn the_redirect_port_refuses_hosts_it_cannot_trust_and_oversized_heads() {
    let cert = SelfSigned::localhost();
    let files = write_files(&cert);
    let app = spawn_redirecting(&files).await;
    let plain = app.redirect_addr.expect("a redirect port");
    for host in [
        None,
        Some("user@evil.example"),
        Some("evil.example/path"),
        Some("evil.example:notaport"),
        Some("javascript:alert(1)"),
        Some("ev il.example"),
        Some(""),
    ] {
        let host = host.map_or_else(String::new, |h| format!("Host: {h}\r\n"));
        let request = format!("GET /x HTTP/1.1\r\n{host}Connection: close\r\n\r\n");
        let (status, headers, body) = raw_exchange(plain, &request).await;
        assert!(status.starts_with("HTTP/1.1 400"), "{host:?}: {status}");
        assert!(header(&headers, "location").is_none(), "{host:?}");
        let body: serde_json::Value = serde_json::from_str(&body).expect("the envelope");
        assert_eq!(body["error"]["code"], json!("INVALID_INPUT"), "{host:?}");
    }
    // Heads are bounded as on the main port.
    let long = "h".repeat(40 * 1024);
    let request = format!(
        "GET /x HTTP/1.1\r\nHost: localhost\r\nX-Long: {long}\r\nConnection: close\r\n\r\n"
    );
    let (status, headers, _) = raw_exchange(plain, &request).await;
    assert!(status.starts_with("HTTP/1.1 431"), "{status}");
    assert!(header(&headers, "location").is_none());
}

#[tokio::test]
async fn a_silent_connection_to_the_redirect_port_is_cut_off() {
    let cert = SelfSigned::localhost();
    let files = write_files(&cert);
    let app = TestApp::spawn_configured(
        decls(json!([])),
        ServerConfig {
            header_read_timeout: Duration::from_secs(1),
            tls: Some(TlsFiles::new(&files.cert, &files.key)),
            redirect_from: Some(([127, 0, 0, 1], 0).into()),
            ..ServerConfig::default()
        },
    )
    .await;
    let mut tcp = TcpStream::connect(app.redirect_addr.expect("a redirect port"))
        .await
        .expect("connect");
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: loc")
        .await
        .expect("send");
    let started = std::time::Instant::now();
    let got = read_to_close(&mut tcp).await;
    assert!(got.is_empty(), "{got:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn the_redirect_port_and_the_https_port_share_one_connection_cap() {
    const CAP: usize = 2;
    let cert = SelfSigned::localhost();
    let files = write_files(&cert);
    let app = TestApp::spawn_configured(
        decls(json!([])),
        ServerConfig {
            max_connections: CAP,
            tls: Some(TlsFiles {
                reload_interval: Duration::ZERO,
                ..TlsFiles::new(&files.cert, &files.key)
            }),
            redirect_from: Some(([127, 0, 0, 1], 0).into()),
            ..ServerConfig::default()
        },
    )
    .await;
    let plain = app.redirect_addr.expect("a redirect port");
    // Every slot holds a kept-alive connection to the redirect port, answered once.
    let mut held = Vec::new();
    for _ in 0..CAP {
        let mut tcp = TcpStream::connect(plain).await.expect("connect");
        tcp.write_all(b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .expect("send");
        let (status, _) = read_answer(&mut tcp).await;
        assert!(status.starts_with("HTTP/1.1 308"), "{status}");
        held.push(tcp);
    }
    // A client of the HTTPS port is served: by closing the redirect connection idle the
    // longest, since the two ports together hold at most the cap.
    let mut stream = connect(&app, &connector(&[&cert], BOTH)).await;
    let (status, _) = get(&mut stream, "/healthz").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let mut byte = [0u8; 1];
    let oldest = tokio::time::timeout(Duration::from_secs(5), held[0].read(&mut byte))
        .await
        .expect("the two ports held more connections than the cap");
    assert!(matches!(oldest, Ok(0) | Err(_)), "{oldest:?}");
    // The other one is still open.
    let other = tokio::time::timeout(Duration::from_millis(300), held[1].read(&mut byte)).await;
    assert!(other.is_err(), "{other:?}");
}

#[tokio::test]
async fn a_redirect_without_https_refuses_the_start() {
    let state = crate::helpers::TestDb::new().await.state(&[]).await;
    let refused = plinth_server::Application::build(
        ServerConfig {
            listen: ([127, 0, 0, 1], 0).into(),
            redirect_from: Some(([127, 0, 0, 1], 0).into()),
            ..ServerConfig::default()
        },
        state,
    )
    .await
    .err()
    .map(|e| e.to_string())
    .expect("the start is refused");
    assert!(refused.contains("needs HTTPS"), "{refused}");
}
