//! Hostile query strings and paths: SQL-looking text in sort keys, filter names, filter
//! values and cursors; out-of-range limits; malformed ids in the path.

use crate::helpers::{TestApp, assert_error, id_of};
use base64_free::{decode_url_safe, encode_url_safe};
use reqwest::{Method, StatusCode};
use serde_json::json;

const SQL: &str = "'; DROP TABLE resource; --";

/// Two records, so "no match" is distinguishable from "table gone".
async fn seeded() -> (TestApp, Vec<String>) {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for name in ["one", SQL] {
        ids.push(id_of(
            &app.create_ok("resource", &json!({"name": name})).await,
        ));
    }
    (app, ids)
}

async fn assert_intact(app: &TestApp, ids: &[String]) {
    let mut listed = app.ids("resource", &[("sort", "created_at")]).await;
    listed.sort();
    let mut expected = ids.to_vec();
    expected.sort();
    assert_eq!(listed, expected, "the table changed");
}

#[tokio::test]
async fn sql_in_sort_keys_is_400() {
    let (app, ids) = seeded().await;
    for sort in [
        SQL,
        "name; DROP TABLE resource",
        "name\" DESC, \"id",
        "-created_at--",
        "(SELECT 1)",
    ] {
        let r = app.list_resp("resource", &[("sort", sort)]).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            ["sort"],
            "{sort}"
        );
    }
    assert_intact(&app, &ids).await;
}

#[tokio::test]
async fn sql_in_filter_field_names_is_400() {
    let (app, ids) = seeded().await;
    for key in [
        SQL,
        "name\" OR 1=1 --",
        "name[eq] OR 1=1",
        "name[eq]]",
        "1=1 OR name",
        "name`",
        "sqlite_master",
    ] {
        let r = app.list_resp("resource", &[(key, "x")]).await;
        let fields = assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
        assert_eq!(fields.len(), 1, "{key}: {fields:?}");
    }
    assert_intact(&app, &ids).await;
}

#[tokio::test]
async fn sql_in_filter_values_only_fails_to_match() {
    let (app, ids) = seeded().await;
    for (key, value) in [
        ("name", "' OR '1'='1"),
        ("name", "one' --"),
        ("name[ne]", "x' OR 1=1 --"),
        ("name[like]", "*' OR 1=1 --*"),
        ("name[in]", "a','b"),
        ("name[gt]", "zzzz' OR 'a'<'b"),
    ] {
        let r = app.list_resp("resource", &[(key, value)]).await;
        let data = r.data(StatusCode::OK).as_array().expect("a list").clone();
        if key == "name[ne]" {
            assert_eq!(data.len(), 2, "{key}={value}");
        } else {
            assert!(data.is_empty(), "{key}={value} matched {data:?}");
        }
    }
    // The SQL-looking name itself is just a value.
    assert_eq!(
        app.ids("resource", &[("name", SQL)]).await,
        vec![ids[1].clone()]
    );
    assert_eq!(
        app.ids("resource", &[("name[like]", "*DROP TABLE*")]).await,
        vec![ids[1].clone()]
    );
    assert_intact(&app, &ids).await;
}

#[tokio::test]
async fn forged_and_garbage_cursors_are_400() {
    let (app, ids) = seeded().await;
    let forged_sql = encode_url_safe(
        json!({"s": "-created_at", "f": "0000000000000000", "v": SQL, "i": ids[0]})
            .to_string()
            .as_bytes(),
    );
    let wrong_type = encode_url_safe(json!({"s": "-created_at", "v": "x"}).to_string().as_bytes());
    for cursor in [
        SQL.to_owned(),
        "abc".to_owned(),
        "".to_owned(),
        "!!!!".to_owned(),
        "x".repeat(5000),
        forged_sql,
        wrong_type,
        encode_url_safe(b"not json"),
    ] {
        let r = app
            .list_resp("resource", &[("cursor", cursor.as_str())])
            .await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            ["cursor"],
            "{cursor:.40}"
        );
    }
    assert_intact(&app, &ids).await;
}

#[tokio::test]
async fn a_real_cursor_with_a_tampered_position_is_400() {
    let (app, _) = seeded().await;
    let (_, page) = app.list("resource", &[("limit", "1")]).await;
    let cursor = page["page"]["next_cursor"].as_str().expect("a cursor");
    let decoded = decode_url_safe(cursor);
    let mut wire: serde_json::Value = serde_json::from_slice(&decoded).expect("cursor is JSON");
    wire["i"] = json!(SQL);
    let tampered = encode_url_safe(wire.to_string().as_bytes());
    let r = app
        .list_resp("resource", &[("limit", "1"), ("cursor", &tampered)])
        .await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["cursor"]
    );
}

#[tokio::test]
async fn limits_outside_1_to_200_are_400() {
    let (app, _) = seeded().await;
    for limit in [
        "-1",
        "0",
        "201",
        "1000",
        "4294967296",
        "99999999999999999999",
        "abc",
        "1.5",
        "",
        " 5",
        "0x10",
    ] {
        let r = app.list_resp("resource", &[("limit", limit)]).await;
        assert_eq!(
            assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            ["limit"],
            "limit={limit:?}"
        );
    }
    for (limit, n) in [("1", 1), ("200", 200), ("20", 20)] {
        let (status, body) = app.list("resource", &[("limit", limit)]).await;
        assert_eq!(status, StatusCode::OK, "limit={limit}");
        assert_eq!(body["page"]["limit"], json!(n));
    }
}

#[tokio::test]
async fn too_many_filters_or_in_values_are_400() {
    let (app, ids) = seeded().await;
    let many: Vec<(&str, &str)> = (0..65).map(|_| ("name[ne]", "x")).collect();
    let r = app.list_resp("resource", &many).await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["query"]
    );
    let at_most: Vec<(&str, &str)> = (0..64).map(|_| ("name[ne]", "x")).collect();
    let r = app.list_resp("resource", &at_most).await;
    assert_eq!(r.data(StatusCode::OK).as_array().map(Vec::len), Some(2));
    // A `filter` expression's comparisons count against the same cap.
    let expr = ["name != \"x\""; 4].join(" && ");
    let mut shared: Vec<(&str, &str)> = (0..61).map(|_| ("name[ne]", "x")).collect();
    shared.push(("filter", &expr));
    let r = app.list_resp("resource", &shared).await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["query"]
    );
    shared.remove(0);
    let r = app.list_resp("resource", &shared).await;
    assert_eq!(r.data(StatusCode::OK).as_array().map(Vec::len), Some(2));

    let values = vec!["v"; 101].join(",");
    let r = app.list_resp("resource", &[("name[in]", &values)]).await;
    assert_eq!(
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ["name[in]"]
    );
    let values = vec!["one"; 100].join(",");
    let r = app.list_resp("resource", &[("name[in]", &values)]).await;
    assert_eq!(r.data(StatusCode::OK)[0]["id"], json!(ids[0]));
}

#[tokio::test]
async fn long_hostile_keys_are_echoed_only_in_part() {
    let (app, _) = seeded().await;
    let key = format!("{}<script>", "k".repeat(10_000));
    let r = app.list_resp("resource", &[(key.as_str(), "1")]).await;
    let fields = assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    assert_eq!(fields.len(), 1);
    assert!(
        fields[0].chars().count() <= 64,
        "echoed {} chars",
        fields[0].len()
    );
    assert!(r.raw.len() < 2_000, "the answer echoes the whole key");

    let mut body = json!({"name": "x"});
    body[key.as_str()] = json!(1);
    let r = app.create_resp("resource", &body).await;
    let fields = assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    assert_eq!(fields.len(), 1);
    assert!(fields[0].chars().count() <= 64);
    assert!(r.raw.len() < 2_000, "the answer echoes the whole key");
}

#[tokio::test]
async fn bad_uuids_in_the_path_are_400_naming_id() {
    let (app, ids) = seeded().await;
    let no_hyphens = ids[0].replace('-', "");
    let braced = format!("{{{}}}", ids[0]);
    let bad = [
        "not-a-uuid",
        "123",
        "%27%20OR%201%3D1%20--",
        no_hyphens.as_str(),
        braced.as_str(),
        "0192f1c4-7a1e-7c3a-9b2d-3f4e5a6b7c8z",
    ];
    for id in bad {
        let path = format!("/api/v1/resource/{id}");
        for (method, p) in [
            (Method::GET, path.clone()),
            (Method::PUT, path.clone()),
            (Method::PATCH, path.clone()),
            (Method::DELETE, path.clone()),
            (Method::POST, format!("{path}/restore")),
        ] {
            let r = app
                .send(app.request(method.clone(), &p).json(&json!({"name": "x"})))
                .await;
            assert_eq!(
                assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
                ["id"],
                "{method} {p}"
            );
        }
    }
    assert_intact(&app, &ids).await;
}

/// Minimal base64url without padding, so the suite needs no extra dependency.
mod base64_free {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    pub(super) fn encode_url_safe(bytes: &[u8]) -> String {
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            }
        }
        out
    }

    pub(super) fn decode_url_safe(s: &str) -> Vec<u8> {
        let mut bits = 0u32;
        let mut nbits = 0;
        let mut out = Vec::new();
        for c in s.bytes() {
            let v = ALPHABET
                .iter()
                .position(|a| *a == c)
                .expect("a base64url character");
            bits = (bits << 6) | v as u32;
            nbits += 6;
            if nbits >= 8 {
                nbits -= 8;
                out.push((bits >> nbits) as u8);
                bits &= (1 << nbits) - 1;
            }
        }
        out
    }
}
