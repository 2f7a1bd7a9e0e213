//! HTTP/2 over TLS, chosen by ALPN: the same answers as HTTP/1.1, with the protocol's own
//! abuses (too many streams, oversized header lists) refused cleanly. Real server, random
//! port, a hyper HTTP/2 client or raw frames over rustls.

use crate::helpers::{TestApp, decls};
use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use plinth_server::{ServerConfig, TlsFiles};
use plinth_testkit::tls::{SelfSigned, connector_alpn};
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Far longer than any step takes: only a hang reaches it.
const PATIENCE: Duration = Duration::from_secs(20);

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

struct Served {
    app: TestApp,
    cert: SelfSigned,
    _dir: tempfile::TempDir,
}

async fn serve(config: ServerConfig) -> Served {
    let cert = SelfSigned::localhost();
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, &cert.cert_pem).expect("write the certificate");
    std::fs::write(&key_path, &cert.key_pem).expect("write the key");
    let app = TestApp::spawn_configured(
        decls(json!([])),
        ServerConfig {
            tls: Some(TlsFiles {
                reload_interval: Duration::ZERO,
                ..TlsFiles::new(&cert_path, &key_path)
            }),
            ..config
        },
    )
    .await;
    Served {
        app,
        cert,
        _dir: dir,
    }
}

async fn connect(served: &Served, tls: &TlsConnector) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(served.app.addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("server name");
    tokio::time::timeout(PATIENCE, tls.connect(name, tcp))
        .await
        .expect("handshake in time")
        .expect("TLS handshake")
}

/// A TLS connection that negotiated `h2`, with an HTTP/2 client over it.
async fn h2_client(served: &Served) -> http2::SendRequest<Full<Bytes>> {
    let stream = connect(
        served,
        &connector_alpn(&[&served.cert], BOTH, &[b"h2", b"http/1.1"]),
    )
    .await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .expect("HTTP/2 handshake");
    tokio::spawn(conn);
    sender
}

struct Answer {
    version: hyper::Version,
    status: u16,
    headers: hyper::HeaderMap,
    body: Value,
}

async fn send(
    sender: &mut http2::SendRequest<Full<Bytes>>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(format!("https://localhost{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("a request");
    sender.ready().await.expect("connection ready");
    let response = tokio::time::timeout(PATIENCE, sender.send_request(request))
        .await
        .expect("answer in time")
        .expect("an answer");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("the body").to_bytes();
    Answer {
        version: parts.version,
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

#[tokio::test]
async fn h2_by_alpn_gets_the_same_answers_as_http_1_1() {
    let served = serve(ServerConfig {
        body_limit: 1024,
        ..ServerConfig::default()
    })
    .await;
    let mut h2 = h2_client(&served).await;

    let ok = send(&mut h2, "GET", "/healthz", &[], "").await;
    assert_eq!(ok.version, hyper::Version::HTTP_2);
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.headers
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=31536000")
    );
    assert!(ok.headers.contains_key("x-request-id"));
    assert_eq!(
        ok.headers
            .get("x-content-type-options")
            .and_then(|v| v.to_str().ok()),
        Some("nosniff")
    );

    // Errors: the envelope, with the request id of the header.
    let missing = send(
        &mut h2,
        "GET",
        "/no/such/route",
        &[("x-request-id", "h2-1")],
        "",
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"]["code"], json!("NOT_FOUND"));
    assert_eq!(missing.body["error"]["request_id"], json!("h2-1"));
    assert!(missing.headers.contains_key("strict-transport-security"));

    // No credential: refused as over HTTP/1.1.
    let denied = send(&mut h2, "GET", "/api/v1/users", &[], "").await;
    assert_eq!(denied.status, 401, "{}", denied.body);
    assert_eq!(denied.body["error"]["code"], json!("UNAUTHENTICATED"));

    // The body limit holds.
    let big = "x".repeat(4096);
    let too_large = send(
        &mut h2,
        "POST",
        "/api/v1/auth/login",
        &[("content-type", "application/json")],
        &format!("{{\"email\":\"{big}\"}}"),
    )
    .await;
    assert_eq!(too_large.status, 413, "{}", too_large.body);
    assert_eq!(too_large.body["error"]["code"], json!("PAYLOAD_TOO_LARGE"));

    // Headers past the application's limit (under HTTP/2's own): the envelope's 431.
    let long = "v".repeat(40 * 1024);
    let too_many = send(&mut h2, "GET", "/healthz", &[("x-long", &long)], "").await;
    assert_eq!(too_many.status, 431, "{}", too_many.body);
    assert_eq!(too_many.body["error"]["code"], json!("HEADERS_TOO_LARGE"));

    // Many requests side by side on the one connection.
    let answers = futures_join(&h2, 20).await;
    assert!(answers.iter().all(|&s| s == 200), "{answers:?}");
}

/// `count` GETs of `/healthz` at once over clones of `sender`: their statuses.
async fn futures_join(sender: &http2::SendRequest<Full<Bytes>>, count: usize) -> Vec<u16> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..count {
        let mut sender = sender.clone();
        set.spawn(async move { send(&mut sender, "GET", "/healthz", &[], "").await.status });
    }
    let mut statuses = Vec::new();
    while let Some(status) = set.join_next().await {
        statuses.push(status.expect("a request task"));
    }
    statuses
}

#[tokio::test]
async fn clients_without_h2_get_http_1_1() {
    let served = serve(ServerConfig::default()).await;
    for alpn in [&[&b"http/1.1"[..]][..], &[]] {
        let mut stream = connect(&served, &connector_alpn(&[&served.cert], BOTH, alpn)).await;
        let expected = if alpn.is_empty() {
            None
        } else {
            Some(&b"http/1.1"[..])
        };
        assert_eq!(stream.get_ref().1.alpn_protocol(), expected);
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .expect("send");
        let mut got = Vec::new();
        let _ = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut got))
            .await
            .expect("an answer in time");
        let got = String::from_utf8_lossy(&got);
        assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    }
}

// Raw HTTP/2 frames, to do what a well-behaved client library will not.

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const REFUSED_STREAM: u32 = 0x7;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("small");
    let mut out = len.to_be_bytes()[1..].to_vec();
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK integer with a 7-bit prefix (the string-length form, not Huffman).
fn hpack_len(mut n: usize, out: &mut Vec<u8>) {
    if n < 127 {
        out.push(u8::try_from(n).expect("small"));
        return;
    }
    out.push(127);
    n -= 127;
    while n >= 128 {
        out.push(u8::try_from(n % 128).expect("small") | 0x80);
        n /= 128;
    }
    out.push(u8::try_from(n).expect("small"));
}

/// A header block of literal fields (never indexed, no Huffman).
fn header_block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0x10);
        hpack_len(name.len(), &mut out);
        out.extend_from_slice(name.as_bytes());
        hpack_len(value.len(), &mut out);
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// The next frame: (type, flags, stream, payload); `None` when the connection closed.
async fn read_frame(stream: &mut TlsStream<TcpStream>) -> Option<(u8, u8, u32, Vec<u8>)> {
    tokio::time::timeout(PATIENCE, next_frame(stream))
        .await
        .expect("a frame in time")
}

/// The next frame, however long it takes; `None` when the connection closed.
async fn next_frame<R: AsyncRead + Unpin>(stream: &mut R) -> Option<(u8, u8, u32, Vec<u8>)> {
    let mut head = [0u8; 9];
    stream.read_exact(&mut head).await.ok()?;
    let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
    let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await.ok()?;
    Some((head[3], head[4], id, payload))
}

/// A TLS connection that negotiated `h2`, the client preface sent.
async fn raw_h2(served: &Served) -> TlsStream<TcpStream> {
    let mut stream = connect(served, &connector_alpn(&[&served.cert], BOTH, &[b"h2"])).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let mut hello = PREFACE.to_vec();
    hello.extend(frame(SETTINGS, 0, 0, &[]));
    stream.write_all(&hello).await.expect("send the preface");
    stream
}

fn request_block(method: &str, path: &str) -> Vec<(&'static str, String)> {
    vec![
        (":method", method.to_owned()),
        (":scheme", "https".to_owned()),
        (":path", path.to_owned()),
        (":authority", "localhost".to_owned()),
    ]
}

fn block(fields: &[(&str, String)]) -> Vec<u8> {
    let borrowed: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    header_block(&borrowed)
}

#[tokio::test]
async fn streams_past_the_limit_are_refused_and_the_server_goes_on() {
    let served = serve(ServerConfig::default()).await;
    let mut stream = raw_h2(&served).await;
    // Logins whose bodies never come: each stream stays open, its handler waiting.
    let extra = 30u32;
    let total = plinth_server::MAX_H2_STREAMS + extra;
    let mut fields = request_block("POST", "/api/v1/auth/login");
    fields.push(("content-type", "application/json".to_owned()));
    let fields = block(&fields);
    let mut out = Vec::new();
    for i in 0..total {
        out.extend(frame(HEADERS, END_HEADERS, 2 * i + 1, &fields));
    }
    stream.write_all(&out).await.expect("send the requests");

    let mut advertised = None;
    let mut refused = 0;
    while refused < extra {
        let Some((kind, flags, id, payload)) = read_frame(&mut stream).await else {
            panic!("the connection closed after {refused} refusals");
        };
        match kind {
            SETTINGS if flags & 1 == 0 => {
                for setting in payload.chunks_exact(6) {
                    if setting[..2] == [0, 3] {
                        advertised = Some(u32::from_be_bytes([
                            setting[2], setting[3], setting[4], setting[5],
                        ]));
                    }
                }
            }
            RST_STREAM => {
                let code = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
                assert_eq!(code, REFUSED_STREAM, "stream {id}");
                assert!(
                    id > 2 * plinth_server::MAX_H2_STREAMS,
                    "stream {id} refused"
                );
                refused += 1;
            }
            GOAWAY => panic!("GOAWAY after {refused} refusals: {payload:?}"),
            _ => {}
        }
    }
    assert_eq!(advertised, Some(plinth_server::MAX_H2_STREAMS));
    // The server goes on serving.
    let mut h2 = h2_client(&served).await;
    assert_eq!(send(&mut h2, "GET", "/healthz", &[], "").await.status, 200);
}

#[tokio::test]
async fn an_oversized_header_list_is_refused_and_the_server_goes_on() {
    let served = serve(ServerConfig::default()).await;
    let mut stream = raw_h2(&served).await;
    // 300 KiB of headers, in frames of the 16 KiB the peer must accept.
    let mut fields = request_block("GET", "/healthz");
    for i in 0..300 {
        fields.push(("x-filler", format!("{i:04}{}", "f".repeat(1020))));
    }
    let block = block(&fields);
    let chunks: Vec<&[u8]> = block.chunks(16 * 1024).collect();
    let mut out = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let last = if i + 1 == chunks.len() {
            END_HEADERS
        } else {
            0
        };
        let (kind, flags) = if i == 0 {
            (HEADERS, END_STREAM | last)
        } else {
            (CONTINUATION, last)
        };
        out.extend(frame(kind, flags, 1, chunk));
    }
    // The server may close the connection before reading it all.
    let _ = stream.write_all(&out).await;
    // Refused: a bare 431 on the stream, or the connection ended (GOAWAY or closed); never
    // an answer from the application.
    loop {
        match read_frame(&mut stream).await {
            None => break,
            Some((GOAWAY, ..)) => break,
            Some((HEADERS, flags, 1, _)) => {
                assert!(flags & END_STREAM != 0, "the refusal has no body");
                break;
            }
            Some((DATA, _, 1, payload)) => panic!("the application answered: {payload:?}"),
            Some(_) => {}
        }
    }
    let mut h2 = h2_client(&served).await;
    assert_eq!(send(&mut h2, "GET", "/healthz", &[], "").await.status, 200);
}

/// Reads frames until the server closes the connection; how long that took.
async fn until_closed(stream: &mut TlsStream<TcpStream>) -> Duration {
    let started = std::time::Instant::now();
    while let Some((kind, ..)) = read_frame(stream).await {
        assert_ne!(kind, DATA, "no answer was asked for");
    }
    started.elapsed()
}

#[tokio::test]
async fn idle_and_silent_h2_connections_are_closed_at_their_timeouts() {
    let served = serve(ServerConfig {
        header_read_timeout: Duration::from_secs(1),
        keep_alive_timeout: Duration::from_secs(2),
        ..ServerConfig::default()
    })
    .await;
    // No request after the preface: closed at the header-read timeout.
    let mut silent = raw_h2(&served).await;
    let waited = until_closed(&mut silent).await;
    assert!(waited < Duration::from_secs(10), "{waited:?}");

    // One request, then idle (pings keep nothing open): closed at the keep-alive timeout.
    let mut idle = raw_h2(&served).await;
    let fields = block(&request_block("GET", "/healthz"));
    idle.write_all(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &fields))
        .await
        .expect("send");
    loop {
        let (kind, flags, id, _) = read_frame(&mut idle).await.expect("an answer");
        if id == 1 && flags & END_STREAM != 0 && matches!(kind, DATA | HEADERS) {
            break;
        }
    }
    let started = std::time::Instant::now();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let _ = idle.write_all(&frame(0x6, 0, 0, &[0; 8])).await;
    }
    let waited = started.elapsed() + until_closed(&mut idle).await;
    assert!(waited >= Duration::from_millis(1500), "{waited:?}");
    assert!(waited < Duration::from_secs(10), "{waited:?}");
}

#[tokio::test]
async fn at_the_cap_h2_connections_trickling_bodies_make_room_for_a_new_client() {
    let served = serve(ServerConfig {
        header_read_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(600),
        max_connections: 2,
        ..ServerConfig::default()
    })
    .await;
    let mut fields = request_block("POST", "/api/v1/auth/login");
    fields.push(("content-type", "application/json".to_owned()));
    let fields = block(&fields);
    // Every slot holds an HTTP/2 connection with two staggered logins whose bodies arrive a
    // byte every 600 ms each: never idle for the body-idle timeout, and never finished.
    let mut trickling = tokio::task::JoinSet::new();
    for _ in 0..2 {
        let (mut reader, mut writer) = tokio::io::split(raw_h2(&served).await);
        let fields = fields.clone();
        trickling.spawn(async move {
            let trickle = async {
                writer
                    .write_all(&frame(HEADERS, END_HEADERS, 1, &fields))
                    .await?;
                tokio::time::sleep(Duration::from_millis(300)).await;
                writer
                    .write_all(&frame(HEADERS, END_HEADERS, 3, &fields))
                    .await?;
                for i in 0..1000u32 {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    writer
                        .write_all(&frame(DATA, 0, 1 + 2 * (i % 2), b" "))
                        .await?;
                }
                Ok::<_, std::io::Error>(())
            };
            // Whether the server sent a GOAWAY before it closed the connection.
            let closed = async {
                while let Some((kind, ..)) = next_frame(&mut reader).await {
                    if kind == GOAWAY {
                        return true;
                    }
                }
                false
            };
            tokio::select! {
                goaway = closed => Some(goaway),
                _ = trickle => None,
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let started = std::time::Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(8), async {
        let mut h2 = h2_client(&served).await;
        send(&mut h2, "GET", "/healthz", &[], "").await.status
    })
    .await
    .expect("a new client was not served while trickled HTTP/2 bodies held every slot");
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Room was made by closing one of them, with a GOAWAY.
    let closed = tokio::time::timeout(PATIENCE, trickling.join_next())
        .await
        .expect("no trickling connection was closed")
        .expect("a task")
        .expect("the task ran");
    assert_eq!(
        closed,
        Some(true),
        "the connection was not closed with a GOAWAY"
    );
    trickling.abort_all();
}
