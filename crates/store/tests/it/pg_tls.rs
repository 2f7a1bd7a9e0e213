//! TLS to PostgreSQL, against a TLS-only server of the test's own (`plinth_testkit::pg_tls`):
//! every connection the store makes (the pool, the claim, LISTEN, the cancel request of an
//! abandoned list) is encrypted under `require` and `verify-full`; a wrong CA, a wrong host
//! name or `disable` is refused at open with a clear error that holds no secret. Over the
//! server's Unix socket, which offers no TLS, the same connections are in the clear unless
//! `sslmode` demands TLS, which is refused.

use crate::contract::{admin, draft, model, schema};
use plinth_core::{FieldAccess, ListQuery, ListScope, ModelDef, QueryLimits};
use plinth_store::{Claim, PgOptions, PgStore, Store, StoreError};
use plinth_testkit::pg_tls::{TestCa, TlsPostgres};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A password in every URL: no error may repeat it. (The server trusts, so it is unused.)
const SECRET: &str = "tls-test-password-42";

fn with_secret(url: &str) -> String {
    url.replacen("postgres@", &format!("postgres:{SECRET}@"), 1)
}

async fn open(url: &str, claim: bool) -> Result<PgStore, StoreError> {
    let mut options = PgOptions::new(with_secret(url));
    options.pool_size = 2;
    options.connect_timeout = Duration::from_secs(10);
    options.query_timeout = Duration::from_millis(300);
    options.claim = claim.then_some(Claim::Serve);
    PgStore::open(options).await
}

/// Where a session reached the server from.
#[derive(Clone, Copy)]
enum Over {
    Tcp,
    Socket,
}

/// The server's client sessions over TCP or over its Unix socket (no client address), and
/// whether each is encrypted; seen over the socket, this inspecting session aside.
async fn sessions(server: &TlsPostgres, over: Over) -> Vec<(String, bool)> {
    plinth_testkit::connect(&server.socket_config())
        .await
        .query(
            "SELECT coalesce(a.application_name, ''), s.ssl FROM pg_stat_activity a \
             JOIN pg_stat_ssl s USING (pid) WHERE (a.client_addr IS NULL) = $1 \
             AND a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()",
            &[&matches!(over, Over::Socket)],
        )
        .await
        .expect("read pg_stat_ssl")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Asks `done` every 50 ms until it says yes; fails with `what` (and the last answer)
/// after 5 s.
async fn within_5s<T: std::fmt::Debug, F: Future<Output = (bool, T)>>(
    what: &str,
    mut done: impl FnMut() -> F,
) {
    let started = Instant::now();
    loop {
        let (yes, seen) = done().await;
        if yes {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{what}: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn refused(url: &str) -> String {
    let e = open(url, false)
        .await
        .err()
        .unwrap_or_else(|| panic!("{url} was accepted"))
        .to_string();
    assert!(!e.contains(SECRET), "the error repeats the password: {e}");
    e
}

/// Fills `doc` with long bodies, runs a list past its budget and waits (up to 5 s) until
/// the server no longer runs it: the store's cancel request reached it.
async fn abandoned_list_is_cancelled(server: &TlsPostgres, store: &PgStore, doc: &Arc<ModelDef>) {
    for _ in 0..40 {
        let body = json!({ "name": "doc", "body": "a".repeat(40_000) });
        store
            .create(&admin(), doc, draft(doc, &body), None)
            .await
            .expect("create");
    }
    let pattern = format!("*{}b*", "a".repeat(2997));
    let pairs = vec![("body[like]".to_owned(), pattern)];
    let wide = QueryLimits {
        value_max_chars: 4096,
        pattern_max_chars: 4096,
        filter_max_chars: QueryLimits::DEFAULT_FILTER_MAX_CHARS,
    };
    let slow = ListQuery::parse_within(doc, &pairs, FieldAccess::All, &wide).expect("a query");
    let listed = store.list(doc, &slow, ListScope::All).await;
    assert!(matches!(listed, Err(StoreError::Timeout(_))), "{listed:?}");
    within_5s("the abandoned list was not cancelled", || async {
        let running: i64 = plinth_testkit::connect(&server.socket_config())
            .await
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' \
                 AND query LIKE '%ILIKE%' AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .expect("read pg_stat_activity")
            .get(0);
        (running == 0, running)
    })
    .await;
}

#[tokio::test]
async fn every_connection_is_encrypted_and_bad_certificates_are_refused() {
    let Some(server) = TlsPostgres::start("pg_tls::every_connection_is_encrypted") else {
        return;
    };
    let ca = server.file("ca.pem", &server.ca.cert_pem);
    let wrong_ca = server.file("other-ca.pem", &TestCa::new().cert_pem);
    let ca_arg = ca.display().to_string();

    // require: encrypted, the certificate (of an unknown CA) not checked. The claim, the
    // pool and the LISTEN connection all connect.
    let store = open(&server.url("127.0.0.1", "sslmode=require"), true)
        .await
        .expect("open with sslmode=require");
    let docs = schema(json!([{ "name": "doc", "fields": [{ "name": "body", "type": "text" }] }]));
    store.migrate(&docs, false).await.expect("migrate");
    let doc = model(&docs, "doc");
    // A list past its budget is cancelled on the server, by a cancel request over TLS.
    abandoned_list_is_cancelled(&server, &store, &doc).await;
    // A pooled connection again (the cancelled one was closed, not reused).
    store.ping().await.expect("ping");
    let seen = sessions(&server, Over::Tcp).await;
    assert!(
        seen.iter().any(|(app, _)| app == "plinth-claim")
            && seen.iter().any(|(app, _)| app == "plinth"),
        "no claim or pool session: {seen:?}"
    );
    assert!(
        seen.len() >= 3,
        "the pool, claim and LISTEN sessions: {seen:?}"
    );
    assert!(seen.iter().all(|(_, ssl)| *ssl), "{seen:?}");
    store.close().await;

    // verify-full with the right CA and the certificate's name.
    let store = open(
        &server.url(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={ca_arg}"),
        ),
        false,
    )
    .await
    .expect("open with sslmode=verify-full");
    store.ping().await.expect("ping");
    store.close().await;
    // verify-ca: the right CA, any name.
    let store = open(
        &server.url(
            "127.0.0.1",
            &format!("sslmode=verify-ca&sslrootcert={ca_arg}"),
        ),
        false,
    )
    .await
    .expect("open with sslmode=verify-ca");
    store.close().await;

    // A CA that did not sign the certificate.
    let e = refused(&server.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", wrong_ca.display()),
    ))
    .await;
    assert!(e.contains("TLS"), "{e}");
    assert!(e.contains("UnknownIssuer"), "{e}");
    // The right CA, another name than the certificate's (localhost).
    let e = refused(&server.url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca_arg}"),
    ))
    .await;
    assert!(e.contains("TLS"), "{e}");
    assert!(
        e.contains("certificate not valid for name \"127.0.0.1\""),
        "{e}"
    );
    // require with a root file checks the chain, as libpq does.
    let e = refused(&server.url(
        "localhost",
        &format!("sslmode=require&sslrootcert={}", wrong_ca.display()),
    ))
    .await;
    assert!(e.contains("UnknownIssuer"), "{e}");
    // No TLS, to a server that requires it.
    let e = refused(&server.url("127.0.0.1", "sslmode=disable")).await;
    assert!(
        e.contains("no encryption") || e.contains("pg_hba.conf"),
        "{e}"
    );
    // Modes Plinth does not know.
    let e = refused(&server.url("127.0.0.1", "sslmode=allow")).await;
    assert!(e.contains("sslmode=allow is not supported"), "{e}");
}

#[tokio::test]
async fn a_unix_socket_connects_in_the_clear_unless_tls_is_demanded() {
    let Some(server) = TlsPostgres::start("pg_tls::a_unix_socket_connects_in_the_clear") else {
        return;
    };
    let docs = schema(json!([{ "name": "doc", "fields": [{ "name": "body", "type": "text" }] }]));
    let doc = model(&docs, "doc");
    // Unset (prefer), prefer and disable: the pool, the claim, LISTEN and the cancel request
    // of an abandoned list all connect.
    for params in ["", "sslmode=prefer", "sslmode=disable"] {
        let url = server.socket_url(params);
        let store = open(&url, true)
            .await
            .unwrap_or_else(|e| panic!("open over the socket with {params:?}: {e}"));
        store.migrate(&docs, false).await.expect("migrate");
        let created = store
            .create(
                &admin(),
                &doc,
                draft(&doc, &json!({ "name": "d", "body": params })),
                None,
            )
            .await
            .expect("create");
        let read = store
            .get(&doc, created.record.id)
            .await
            .expect("get")
            .expect("the record");
        assert_eq!(read.version, 1);
        abandoned_list_is_cancelled(&server, &store, &doc).await;
        // A pooled connection again (the cancelled one was closed, not reused).
        store.ping().await.expect("ping");
        let seen = sessions(&server, Over::Socket).await;
        assert!(
            ["plinth", "plinth-claim", "plinth-listen"]
                .iter()
                .all(|name| seen.iter().any(|(app, _)| app == name)),
            "the pool, claim and LISTEN sessions over the socket ({params:?}): {seen:?}"
        );
        assert!(seen.iter().all(|(_, ssl)| !ssl), "{seen:?}");
        store.close().await;
        // The next mode proves itself, with none of these sessions left.
        within_5s("sessions left after close", || async {
            let seen = sessions(&server, Over::Socket).await;
            (seen.is_empty(), seen)
        })
        .await;
    }
    // TLS demanded where the server offers none: refused, saying so.
    let e = refused(&server.socket_url("sslmode=require")).await;
    assert!(e.contains("server does not support TLS"), "{e}");
    let ca = server.file("ca.pem", &server.ca.cert_pem);
    let e =
        refused(&server.socket_url(&format!("sslmode=verify-full&sslrootcert={}", ca.display())))
            .await;
    assert!(e.contains("server does not support TLS"), "{e}");
}
