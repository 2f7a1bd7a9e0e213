//! Personal data at rest, through the binary: development generates the encryption keys
//! (0600) in the data directory; account emails and `pii` values never reach the SQLite
//! file or the PostgreSQL tables in plaintext; an export carries them in plaintext (it is
//! a secret file) and an import seals them under the target's own keys. Both engines.

use crate::helpers::{ADMIN_EMAIL, Server, TestDir, run_ok};
use serde_json::json;

const PATIENT: &str = "[[models]]\nname = \"patient\"\n\n[[models.fields]]\nname = \"ssn\"\ntype = \"string\"\npii = true\nunique = true\n";

const SSN: &str = "078-05-1120-unique-marker";

/// Everything the database holds, as text: the SQLite file and its WAL, or every row of
/// Plinth's tables and the model's on PostgreSQL.
fn raw_database(dir: &TestDir) -> String {
    match dir.postgres_url() {
        None => {
            let mut out = String::new();
            for suffix in ["", "-wal"] {
                let mut path = dir.db().into_os_string();
                path.push(suffix);
                if let Ok(bytes) = std::fs::read(&path) {
                    out.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
            out
        }
        Some(url) => {
            let sql = "SELECT (SELECT string_agg(t::text, ' ') FROM _plinth_users t) || ' ' || \
                       (SELECT coalesce(string_agg(t::text, ' '), '') FROM patient t) || ' ' || \
                       (SELECT coalesce(string_agg(t::text, ' '), '') FROM _plinth_audit t)";
            let out = std::process::Command::new("psql")
                .args([url.as_str(), "-Atc", sql])
                .output()
                .expect("run psql");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_and_pii_values_are_never_stored_in_plaintext() {
    let dir = TestDir::new();
    dir.write_config(PATIENT);
    let server = Server::start(&dir).await;
    let record = server
        .create("patient", &json!({"name": "p", "ssn": SSN}))
        .await;
    let id = record["id"].as_str().expect("id").to_owned();
    assert_eq!(record["ssn"], SSN);
    server.stop().await;

    let keys = dir.data_dir().join("encryption.keys");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&keys)
            .expect("generated keys")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the generated keys are private");
    let raw = raw_database(&dir);
    assert!(!raw.is_empty());
    assert!(!raw.contains(SSN), "a pii value is stored in plaintext");
    assert!(
        !raw.to_lowercase().contains(ADMIN_EMAIL),
        "an account email is stored in plaintext"
    );
    assert!(raw.contains("v1:k1:"), "sealed values are there");

    // A restart reads them back with the same keys.
    let server = Server::start(&dir).await;
    assert_eq!(server.read("patient", &id).await["ssn"], SSN);
    let me = server.get("/api/v1/auth/me").await;
    assert!(me.text.contains(ADMIN_EMAIL), "{}", me.text);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_seals_under_the_targets_own_keys() {
    let source = TestDir::new();
    source.write_config(PATIENT);
    let server = Server::start(&source).await;
    server
        .create("patient", &json!({"name": "p", "ssn": SSN}))
        .await;
    server.stop().await;
    let dump = source.path().join("dump.jsonl");
    let (data, dump_arg) = (source.data_arg(), dump.display().to_string());
    run_ok(
        &source,
        &["export", "--data-dir", &data, "--output", &dump_arg],
        &[],
    )
    .await;
    let text = std::fs::read_to_string(&dump).expect("the export");
    assert!(text.contains(SSN), "the export holds plaintext");
    assert!(!text.contains("v1:k1:"), "the export holds no sealed value");

    // Another deployment, with keys of its own.
    let target = TestDir::new();
    target.write_config(PATIENT);
    let input = target.write("dump.jsonl", &text);
    let (input_arg, target_data) = (input.display().to_string(), target.data_arg());
    run_ok(
        &target,
        &["import", "--data-dir", &target_data, "--input", &input_arg],
        &[],
    )
    .await;
    let source_keys =
        std::fs::read_to_string(source.data_dir().join("encryption.keys")).expect("source keys");
    let target_keys =
        std::fs::read_to_string(target.data_dir().join("encryption.keys")).expect("target keys");
    assert_ne!(source_keys, target_keys);
    let raw = raw_database(&target);
    assert!(!raw.contains(SSN), "the import stored plaintext");
    assert!(!raw.to_lowercase().contains(ADMIN_EMAIL));
    let server = Server::start(&target).await;
    let found = server
        .get("/api/v1/patient?ssn=078-05-1120-unique-marker")
        .await;
    assert!(found.text.contains(SSN), "{}", found.text);
    server.stop().await;
}
