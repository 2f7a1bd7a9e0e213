//! The OpenAPI document (`/api/v1/openapi.json`) and its page (`/docs`): a 3.1 document,
//! public; every route of the router in it and reachable as documented; each declared model
//! with its fields, constraints, filters and sort keys; every error status with its codes;
//! real answers that match it; and a page that loads nothing from any other origin.

use crate::helpers::conformance::assert_conforms;
use crate::helpers::{TestApp, assert_error, decls};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::Path;

async fn document(app: &TestApp) -> Value {
    let r = app
        .send(app.request_as(Method::GET, "/api/v1/openapi.json", None))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{:?}",
        r.headers
    );
    assert!(
        r.body.is_object(),
        "the document is JSON: {:?}",
        r.raw.get(..200)
    );
    r.body
}

/// `(method, path)` of every documented operation.
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "put", "post", "patch", "delete"] {
            if item.get(method).is_some() {
                out.push((method.to_owned(), path.clone()));
            }
        }
    }
    out
}

fn every_type() -> Vec<plinth_core::ModelDecl> {
    decls(json!([
        {
            "name": "customer",
            "fields": [
                {"name": "email", "type": "string", "required": true, "unique": true, "pii": true},
                {"name": "tier", "type": "enum", "values": ["free", "pro"], "indexed": true},
                {"name": "code", "type": "string", "pattern": "^[A-Z]{3}$", "max_length": 3},
                {"name": "bio", "type": "text"},
                {"name": "age", "type": "integer", "min": 0, "max": 150},
                {"name": "score", "type": "float", "min": 0, "max": 1},
                {"name": "vip", "type": "boolean"},
                {"name": "born", "type": "datetime", "indexed": true},
                {"name": "meta", "type": "json"},
                {"name": "note", "type": "string", "admin_only": true}
            ]
        },
        {
            "name": "order",
            "guest_read": false,
            "fields": [
                {"name": "customer", "type": "reference", "model": "customer", "required": true},
                {"name": "total", "type": "integer", "unique": "owner"}
            ]
        }
    ]))
}

#[tokio::test]
async fn the_document_is_openapi_3_1_public_and_the_same_each_time() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], json!("Plinth"));
    assert_eq!(doc["info"]["version"], json!(env!("CARGO_PKG_VERSION")));
    // Public: a bad credential is not even read, and the answer does not change.
    let garbage = app
        .send(app.request_as(Method::GET, "/api/v1/openapi.json", Some("nonsense")))
        .await;
    assert_eq!(garbage.status, StatusCode::OK);
    assert_eq!(garbage.body, doc);
    // The auth schemes, as `Caller` reads them.
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], json!("bearer"));
    assert_eq!(schemes["api_key"]["in"], json!("header"));
    assert_eq!(schemes["api_key"]["name"], json!("X-API-Key"));
    // A revoked key changes nothing either: the document reads no credential.
    let key = app
        .create_key(&app.admin_token, &json!({"name": "gone"}))
        .await;
    let key_data = key.data(StatusCode::CREATED);
    let (id, secret) = (&key_data["id"], key_data["key"].as_str().expect("key"));
    let revoked = app
        .call_as(
            Method::DELETE,
            &format!("/api/v1/auth/api-keys/{}", id.as_str().expect("id")),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let with_revoked = app
        .send(app.request_as(Method::GET, "/api/v1/openapi.json", Some(secret)))
        .await;
    assert_eq!(
        (with_revoked.status, &with_revoked.body),
        (StatusCode::OK, &doc)
    );
    // Hostile: a query is ignored; another method is a 405 envelope; paths below the
    // document or the page's files, escaping or not, are 404s.
    let queried = app
        .send(app.request_as(Method::GET, "/api/v1/openapi.json?x=%3Cscript%3E&x=1", None))
        .await;
    assert_eq!((queried.status, &queried.body), (StatusCode::OK, &doc));
    for path in [
        "/docs/..%2F..%2FCargo.toml",
        "/docs/docs.js/x",
        "/docs/secret.js",
    ] {
        let r = app.send(app.request_as(Method::GET, path, None)).await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    let post = app
        .send(app.request_as(Method::POST, "/api/v1/openapi.json", None))
        .await;
    assert_error(&post, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    let below = app
        .send(app.request_as(Method::GET, "/api/v1/openapi.json/x", None))
        .await;
    assert_error(&below, StatusCode::NOT_FOUND, "NOT_FOUND");
}

/// Every route is registered through `utoipa_axum::routes!` from its handler's
/// `#[utoipa::path]`, so the router cannot hold an undocumented route; a plain axum
/// `.route(` in `src/routes` would be one.
#[test]
fn routes_are_registered_only_with_their_documentation() {
    fn walk(dir: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read src/routes") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read a source file");
                for (i, line) in text.lines().enumerate() {
                    let plain_router = line.replace("OpenApiRouter", "").contains("Router::new()");
                    let plain_route = [
                        ".route(",
                        ".route_service(",
                        ".nest_service(",
                        "axum::routing",
                    ]
                    .iter()
                    .any(|r| line.contains(r));
                    if plain_router || plain_route {
                        found.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
                    }
                }
            }
        }
    }
    let mut found = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes"),
        &mut found,
    );
    assert!(
        found.is_empty(),
        "routes added without documentation (register them with routes!):\n{}",
        found.join("\n")
    );
}

#[tokio::test]
async fn every_documented_operation_reaches_its_handler() {
    let app = TestApp::spawn_with(every_type()).await;
    let doc = document(&app).await;
    let ops = operations(&doc);
    assert!(ops.len() >= 30, "{ops:?}");
    let id = "01a22c61-0d4d-71b0-b474-e38e47cb1842";
    for (method, path) in &ops {
        let concrete = path.replace("{id}", id);
        if path.ends_with("/events") && path != "/api/v1/events" {
            // A model's change feed: a stream that does not end; open it, and let it go.
            app.subscribe_as(&concrete, Some(&app.admin_token), None)
                .await;
            continue;
        }
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
        let mut req = app.request(m, &concrete);
        if doc["paths"][path][method].get("requestBody").is_some() {
            req = req.json(&json!({}));
        }
        let r = app.send(req).await;
        assert_ne!(
            r.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is documented but not routed"
        );
        assert_ne!(
            r.body["error"]["message"],
            json!("no such route"),
            "{method} {path} is documented but not routed"
        );
        assert_conforms(&doc, method, path, r.status, &r.body);
    }
    // Routes the router has, and the document therefore lists.
    for path in [
        "/healthz",
        "/readyz",
        "/api/v1/version",
        "/api/v1/openapi.json",
        "/docs",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/auth/me",
        "/api/v1/auth/api-keys",
        "/api/v1/auth/api-keys/{id}",
        "/api/v1/users",
        "/api/v1/users/{id}",
        "/api/v1/audit",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
}

#[tokio::test]
async fn a_declared_model_is_in_the_document_with_its_fields_filters_and_sort_keys() {
    let app = TestApp::spawn_with(every_type()).await;
    let doc = document(&app).await;
    let paths = doc["paths"].as_object().expect("paths");
    assert!(
        paths.keys().all(|p| !p.contains("{model}")),
        "template paths are replaced: {:?}",
        paths.keys()
    );
    assert!(paths.get("/api/v1/resource").is_none(), "not declared here");
    for (path, methods) in [
        ("/api/v1/customer", &["get", "post"][..]),
        (
            "/api/v1/customer/{id}",
            &["get", "put", "patch", "delete"][..],
        ),
        ("/api/v1/customer/{id}/restore", &["post"][..]),
        ("/api/v1/customer/{id}/history", &["get"][..]),
        ("/api/v1/order", &["get", "post"][..]),
    ] {
        for m in methods {
            let op = &doc["paths"][path][m];
            assert!(op.is_object(), "{m} {path} missing");
            assert!(
                op["parameters"]
                    .as_array()
                    .is_none_or(|ps| ps.iter().all(|p| p["name"] != "model")),
                "{m} {path} still takes {{model}}"
            );
        }
    }
    let schemas = &doc["components"]["schemas"];
    let record = &schemas["Record.customer"]["properties"];
    for (field, ty) in [
        ("id", json!("string")),
        ("version", json!("integer")),
        ("email", json!(["string", "null"])),
        ("age", json!(["integer", "null"])),
        ("score", json!(["number", "null"])),
        ("vip", json!(["boolean", "null"])),
        ("born", json!(["string", "null"])),
        ("note", json!(["string", "null"])),
    ] {
        assert_eq!(record[field]["type"], ty, "{field}: {}", record[field]);
    }
    assert!(record.get("meta").is_some(), "json fields are in records");
    assert_eq!(record["email"]["x-plinth-pii"], json!(true));
    assert_eq!(record["email"]["x-plinth-unique"], json!(true));
    assert_eq!(record["note"]["x-plinth-admin-only"], json!(true));
    assert_eq!(
        schemas["Record.order"]["properties"]["total"]["x-plinth-unique"],
        json!("owner")
    );
    let input = &schemas["RecordInput.customer"];
    assert_eq!(input["required"], json!(["name", "email"]));
    assert_eq!(input["additionalProperties"], json!(false));
    let fields = &input["properties"];
    assert_eq!(fields["name"]["maxLength"], json!(255));
    assert_eq!(
        fields["email"]["type"],
        json!("string"),
        "required: not null"
    );
    assert_eq!(fields["code"]["pattern"], json!("^[A-Z]{3}$"));
    assert_eq!(fields["code"]["maxLength"], json!(3));
    assert_eq!(fields["age"]["minimum"], json!(0));
    assert_eq!(fields["age"]["maximum"], json!(150));
    assert_eq!(fields["score"]["maximum"], json!(1.0));
    assert_eq!(fields["tier"]["enum"], json!(["free", "pro", null]));
    assert_eq!(fields["status"]["enum"], json!(["active", "inactive"]));
    assert_eq!(schemas["RecordPatch.customer"]["required"], json!([]));
    // The list: the query grammar's operators by type, and the sort keys.
    let params: Vec<&str> = doc["paths"]["/api/v1/customer"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for present in [
        "limit",
        "cursor",
        "sort",
        "status",
        "status[in]",
        "name[like]",
        "age[gte]",
        "born[lt]",
        "vip",
        "vip[ne]",
        "email",
        "email[in]",
        "tier[in]",
        "id[in]",
    ] {
        assert!(params.contains(&present), "{present} missing: {params:?}");
    }
    for absent in [
        "email[like]",
        "email[lt]",
        "vip[lt]",
        "age[like]",
        "meta",
        "id[gt]",
    ] {
        assert!(!params.contains(&absent), "{absent} offered: {params:?}");
    }
    // The boolean expression, bounded as the server bounds it, on the list and the stream.
    for path in ["/api/v1/customer", "/api/v1/customer/events"] {
        let filter = doc["paths"][path]["get"]["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "filter"))
            .unwrap_or_else(|| panic!("{path}: no filter parameter"));
        assert_eq!(
            filter["schema"]["maxLength"],
            json!(2048),
            "{path}: {filter}"
        );
        assert!(
            filter["description"]
                .as_str()
                .is_some_and(|d| d.contains("||")),
            "{filter}"
        );
    }
    let sort = doc["paths"]["/api/v1/customer"]["get"]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "sort"))
        .map(|p| p["schema"]["enum"].clone())
        .expect("sort");
    for key in ["-created_at", "name", "tier", "-born"] {
        assert!(
            sort.as_array().is_some_and(|s| s.contains(&json!(key))),
            "{key}: {sort}"
        );
    }
    assert!(
        !sort.to_string().contains("email"),
        "pii is no sort key: {sort}"
    );
    // Guests may read customers, not orders.
    assert!(
        doc["paths"]["/api/v1/customer"]["get"]["security"]
            .as_array()
            .is_some_and(|s| s.contains(&json!({})))
    );
    assert!(
        doc["paths"]["/api/v1/order"]["get"]["security"]
            .as_array()
            .is_some_and(|s| !s.contains(&json!({})) && !s.is_empty())
    );
}

#[tokio::test]
async fn every_error_status_is_listed_with_its_codes_and_real_answers_match() {
    let app = TestApp::spawn_with(every_type()).await;
    let doc = document(&app).await;
    for (method, path) in operations(&doc) {
        let op = &doc["paths"][&path][&method];
        let responses = op["responses"].as_object().expect("responses");
        for status in ["500", "503", "414", "431"] {
            assert!(
                responses.contains_key(status),
                "{method} {path} lacks {status}"
            );
        }
        if op.get("requestBody").is_some() {
            for status in ["400", "413", "415"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} lacks {status}"
                );
            }
        }
        for (status, r) in responses {
            if status.as_str() >= "400" && !["414", "431"].contains(&status.as_str()) {
                assert_eq!(
                    r["content"]["application/json"]["schema"]["$ref"],
                    json!(format!("#/components/schemas/Error{status}")),
                    "{method} {path} {status}"
                );
            }
        }
    }
    let codes = |status: &str| {
        doc["components"]["schemas"][format!("Error{status}")]["properties"]["error"]["properties"]
            ["code"]["enum"]
            .clone()
    };
    assert_eq!(codes("404"), json!(["NOT_FOUND"]));
    assert_eq!(codes("412"), json!(["PRECONDITION_FAILED"]));
    let create = &doc["paths"]["/api/v1/customer"]["post"]["responses"];
    for status in ["201", "400", "401", "403", "409"] {
        assert!(create.get(status).is_some(), "create lacks {status}");
    }
    let put = &doc["paths"]["/api/v1/customer/{id}"]["put"]["responses"];
    assert!(put.get("412").is_some() && put.get("404").is_some());
    // Real answers, success and failure, as the document describes them.
    let (_, user_token) = app.user("reader@example.com").await;
    let body = json!({"name": "a", "email": "a@example.com", "tier": "pro", "age": 3,
                      "score": 0.5, "vip": true, "born": "2026-01-02T03:04:05Z",
                      "meta": {"k": [1]}, "note": "x"});
    let created = app
        .send(app.request(Method::POST, "/api/v1/customer").json(&body))
        .await;
    assert_conforms(
        &doc,
        "post",
        "/api/v1/customer",
        created.status,
        &created.body,
    );
    let id = created.data(StatusCode::CREATED)["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for (credential, path) in [
        (
            Some(app.admin_token.as_str()),
            format!("/api/v1/customer/{id}"),
        ),
        (Some(user_token.as_str()), format!("/api/v1/customer/{id}")),
        (None, "/api/v1/customer?age[gte]=1&sort=-age".to_owned()),
        (None, format!("/api/v1/customer/{id}/history")),
        (None, "/api/v1/order".to_owned()),
        (Some(user_token.as_str()), "/api/v1/users".to_owned()),
        (Some(app.admin_token.as_str()), "/api/v1/users".to_owned()),
        (
            Some(app.admin_token.as_str()),
            "/api/v1/audit?limit=2".to_owned(),
        ),
        (Some(app.admin_token.as_str()), "/api/v1/auth/me".to_owned()),
        (
            Some("revoked-or-never-issued"),
            "/api/v1/auth/api-keys".to_owned(),
        ),
        (None, "/api/v1/customer?age[like]=1".to_owned()),
        (None, "/readyz".to_owned()),
    ] {
        let r = app
            .send(app.request_as(Method::GET, &path, credential))
            .await;
        let documented = path
            .split('?')
            .next()
            .unwrap_or_default()
            .replace(&id, "{id}");
        assert_conforms(&doc, "get", &documented, r.status, &r.body);
    }
    let login = app
        .send(
            app.request_as(Method::POST, "/api/v1/auth/login", None)
                .json(&json!({
                    "email": "reader@example.com", "password": "wrong password here"
                })),
        )
        .await;
    assert_error(&login, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    assert_conforms(
        &doc,
        "post",
        "/api/v1/auth/login",
        login.status,
        &login.body,
    );
    let key = app
        .create_key(&app.admin_token, &json!({"name": "ci"}))
        .await;
    assert_conforms(&doc, "post", "/api/v1/auth/api-keys", key.status, &key.body);
}

#[tokio::test]
async fn the_docs_page_loads_nothing_from_other_origins() {
    let app = TestApp::spawn().await;
    let page = app.send(app.request_as(Method::GET, "/docs", None)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.header("content-type")
            .is_some_and(|c| c.starts_with("text/html"))
    );
    let csp = page
        .header("content-security-policy")
        .expect("a Content-Security-Policy")
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("http") && !csp.contains('*'), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let html = String::from_utf8(page.raw.clone()).expect("UTF-8");
    // Every file the page references, fetched from this server.
    let mut assets = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let target = part.split('"').next().unwrap_or_default();
            assets.push(target.to_owned());
        }
    }
    assert!(
        assets.iter().any(|a| a.ends_with(".js")) && assets.iter().any(|a| a.ends_with(".css")),
        "{assets:?}"
    );
    let mut texts = vec![("/docs".to_owned(), html.clone())];
    for asset in &assets {
        assert!(asset.starts_with('/'), "{asset} is not on this server");
        let r = app.send(app.request_as(Method::GET, asset, None)).await;
        assert_eq!(r.status, StatusCode::OK, "{asset}");
        texts.push((asset.clone(), String::from_utf8(r.raw).expect("UTF-8")));
    }
    for (name, text) in &texts {
        for origin in ["http://", "https://", "//cdn", "@import"] {
            assert!(!text.contains(origin), "{name} names {origin}");
        }
        assert!(
            !text.contains("<script>") && !text.contains("style="),
            "{name} has inline code"
        );
    }
    // The script reads the document from where the server serves it.
    let script = texts
        .iter()
        .find(|(n, _)| n.ends_with(".js"))
        .expect("script");
    assert!(script.1.contains("fetch(\"/api/v1/openapi.json\")"));
}

/// Every success answer of `/api/v1` but the document itself is described inside the
/// success envelope (`Reply` writes every one): a body left bare in the document would
/// describe the envelope's `data` as the whole answer.
#[tokio::test]
async fn every_success_body_is_described_in_the_envelope() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let mut bare = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if !path.starts_with("/api/v1/") || path == "/api/v1/openapi.json" {
            continue;
        }
        for (method, op) in item.as_object().expect("a path item") {
            for (status, response) in op["responses"].as_object().into_iter().flatten() {
                let schema = &response["content"]["application/json"]["schema"];
                if status.starts_with('2')
                    && !schema.is_null()
                    && schema["properties"]["success"] != json!({"const": true})
                {
                    bare.push(format!("{method} {path} {status}"));
                }
            }
        }
    }
    assert!(bare.is_empty(), "bodies outside the envelope: {bare:?}");
}
