//! `plinth serve --tls-cert FILE --tls-key FILE`: HTTPS from the binary, a reload on
//! SIGHUP, and the start refusals of unusable TLS settings.

use crate::helpers::{Server, TestDir, refused};
use plinth_testkit::tls::{SelfSigned, connector};
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Far longer than any step takes: only a hang reaches it.
const PATIENCE: Duration = Duration::from_secs(30);

/// A strong signing key, for production starts.
const JWT: &str = "tls-test-signing-key-0123456789-abcdefghijklmnopqrstuvwxyz";

/// Writes the certificate and key (mode 0600) into the test directory.
fn write_pair(dir: &TestDir, cert: &SelfSigned) -> (PathBuf, PathBuf) {
    let cert_path = dir.write("cert.pem", &cert.cert_pem);
    let key_path = dir.write("key.pem", &cert.key_pem);
    set_mode(&key_path, 0o600);
    (cert_path, key_path)
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// `GET /healthz` over a new TLS connection: the certificate presented and the answer's
/// head.
async fn healthz(server: &Server, tls: &TlsConnector) -> (CertificateDer<'static>, String) {
    tokio::time::timeout(PATIENCE, async {
        let tcp = TcpStream::connect(server.authority())
            .await
            .expect("connect");
        let name = ServerName::try_from("localhost").expect("server name");
        let mut stream = tls.connect(name, tcp).await.expect("TLS handshake");
        let cert = stream
            .get_ref()
            .1
            .peer_certificates()
            .expect("a certificate")[0]
            .clone();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .expect("send");
        let mut answer = Vec::new();
        // The server closes after `Connection: close`; rustls reports a close without
        // close_notify as an error, after the data.
        let _ = stream.read_to_end(&mut answer).await;
        (cert, String::from_utf8_lossy(&answer).into_owned())
    })
    .await
    .expect("an answer in time")
}

#[tokio::test]
async fn serve_with_tls_flags_speaks_https_and_reloads_on_sighup() {
    let dir = TestDir::new();
    let (old, new) = (SelfSigned::localhost(), SelfSigned::localhost());
    let (cert, key) = write_pair(&dir, &old);
    let (cert_arg, key_arg) = (cert.display().to_string(), key.display().to_string());
    let mut server = Server::spawn(
        &dir,
        &["--tls-cert", &cert_arg, "--tls-key", &key_arg],
        // Only the signal reloads.
        &[("PLINTH_TLS_RELOAD_INTERVAL_SECONDS", "0")],
    )
    .await;
    assert!(
        server
            .proc
            .logs()
            .iter()
            .any(|l| l["fields"]["scheme"] == "https"),
        "{}",
        server.proc.describe()
    );
    let tls = connector(&[&old, &new], rustls::DEFAULT_VERSIONS);
    let (presented, answer) = healthz(&server, &tls).await;
    assert!(presented == old.der);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000"),
        "{answer}"
    );

    std::fs::write(&key, &new.key_pem).expect("write the new key");
    std::fs::write(&cert, &new.cert_pem).expect("write the new certificate");
    server.proc.signal("HUP");
    tokio::time::timeout(PATIENCE, async {
        while healthz(&server, &tls).await.0 != new.der {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the new certificate is served after SIGHUP");
    // Log lines reach stdout through a writer thread: wait for it, do not race it.
    server
        .proc
        .wait_for_log("TLS certificate reloaded", |l| {
            l["fields"]["message"] == "TLS certificate reloaded"
        })
        .await;
}

#[tokio::test]
async fn unusable_tls_settings_refuse_the_start() {
    let dir = TestDir::new();
    let (cert, key) = write_pair(&dir, &SelfSigned::localhost());
    let data = dir.data_arg();
    let serve = |extra: &[&str]| {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--data-dir", &data];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let (cert_arg, key_arg) = (cert.display().to_string(), key.display().to_string());
    let bad = dir.write("bad.pem", "-----BEGIN CERTIFICATE-----\nnot base64!\n");
    let bad_arg = bad.display().to_string();

    // One without the other.
    let args = serve(&["--tls-cert", &cert_arg]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stderr = refused(&dir, &args, &[]).await.stderr;
    assert!(stderr.contains("set both tls.cert_file"), "{stderr}");
    let stderr = refused(
        &dir,
        &serve(&[]).iter().map(String::as_str).collect::<Vec<_>>(),
        &[("PLINTH_TLS_KEY_FILE", key_arg.as_str())],
    )
    .await
    .stderr;
    assert!(stderr.contains("PLINTH_TLS_CERT_FILE"), "{stderr}");

    // A broken certificate: refused before the database is touched, naming the file.
    let args = serve(&["--tls-cert", &bad_arg, "--tls-key", &key_arg]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stderr = refused(&dir, &args, &[]).await.stderr;
    assert!(stderr.contains("cannot serve HTTPS"), "{stderr}");
    assert!(stderr.contains(&bad_arg), "{stderr}");
    assert!(stderr.contains("not a PEM certificate chain"), "{stderr}");
    assert!(!dir.db().exists(), "the database was created: {stderr}");

    // A redirect to HTTPS without HTTPS.
    let args = serve(&[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stderr = refused(&dir, &args, &[("PLINTH_TLS_REDIRECT_FROM", "127.0.0.1:0")])
        .await
        .stderr;
    assert!(stderr.contains("PLINTH_TLS_REDIRECT_FROM"), "{stderr}");
    assert!(stderr.contains("needs tls.cert_file"), "{stderr}");

    // A busy redirect port: refused before the database is touched.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy_addr = busy.local_addr().expect("address").to_string();
    let args = serve(&["--tls-cert", &cert_arg, "--tls-key", &key_arg]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stderr = refused(&dir, &args, &[("PLINTH_TLS_REDIRECT_FROM", &busy_addr)])
        .await
        .stderr;
    assert!(
        stderr.contains(&format!("cannot listen on {busy_addr}")),
        "{stderr}"
    );
    assert!(!dir.db().exists(), "the database was created: {stderr}");
    drop(busy);

    // Production refuses a key file that group or others may read.
    let args = serve(&["--tls-cert", &cert_arg, "--tls-key", &key_arg]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let prod = [
        ("PLINTH_ENV", "production"),
        ("PLINTH_JWT_SECRET", JWT),
        ("PLINTH_ENCRYPTION_KEYS", crate::helpers::ENCRYPTION_KEYS),
    ];
    set_mode(&key, 0o640);
    let stderr = refused(&dir, &args, &prod).await.stderr;
    assert!(stderr.contains("readable by other users"), "{stderr}");
    assert!(stderr.contains(&key_arg), "{stderr}");
    assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");
}

#[tokio::test]
async fn serve_redirects_a_plain_port_to_https() {
    let dir = TestDir::new();
    let cert = SelfSigned::localhost();
    let (cert_path, key_path) = write_pair(&dir, &cert);
    let (cert_arg, key_arg) = (
        cert_path.display().to_string(),
        key_path.display().to_string(),
    );
    let mut server = Server::spawn(
        &dir,
        &["--tls-cert", &cert_arg, "--tls-key", &key_arg],
        &[("PLINTH_TLS_REDIRECT_FROM", "127.0.0.1:0")],
    )
    .await;
    // The redirect port is logged after the listening line: wait for it, do not race it.
    let line = server
        .proc
        .wait_for_log("the redirect port", |l| {
            l["fields"]["message"] == "redirecting plain HTTP to HTTPS"
        })
        .await;
    let plain = line["fields"]["addr"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no redirect port logged: {}", server.proc.describe()));
    let mut tcp = TcpStream::connect(&plain).await.expect("connect");
    tcp.write_all(
        b"GET /api/v1/version?x=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("send");
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, tcp.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    let port = server
        .authority()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(answer.starts_with("http/1.1 308"), "{answer}");
    assert!(
        answer.contains(&format!(
            "location: https://localhost:{port}/api/v1/version?x=1\r\n"
        )),
        "{answer}"
    );
}
