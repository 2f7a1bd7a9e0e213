//! The admin console as the server serves it, and the endpoint it is built on.
//!
//! `/admin`: the page and every script and style sheet it loads (found by following its
//! `src`/`href` and the modules' `import`s, so a page added later is checked too) come with
//! the strict Content-Security-Policy and the other browser guards; no served file holds
//! inline script, a `style=` attribute, `innerHTML`, `eval(`, or an address of another
//! origin; what the build embeds is exactly the files under `admin/`; paths that escape it
//! or name no file are the 404 envelope, and other methods the 405 one.
//!
//! `GET /api/v1/models`: every declared model in declaration order, its fields as declared
//! (an `admin_only` field for admins only, `renamed_from` never), whether it is searchable,
//! and `can` per role; parameters and bad credentials refused.

use crate::helpers::{Resp, TestApp, TestDb, assert_error, decls, test_auth_config};
use plinth_server::ServerConfig;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

/// The policy the console is served with, word for word.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; \
    form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The one address a served file may hold: the SVG namespace, a name that is never fetched
/// (`document.createElementNS`).
const SVG_NAMESPACE: &str = "http://www.w3.org/2000/svg";

/// The console's sources, as the build embeds them.
fn admin_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("admin")
}

/// Every file under `admin/` (hidden ones skipped, as the build does), relative, with `/`.
fn files_on_disk() -> Vec<String> {
    fn walk(root: &Path, dir: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read admin/") {
            let entry = entry.expect("an entry");
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let kind = entry.file_type().expect("a file type");
            assert!(
                !kind.is_symlink(),
                "{}: a link could embed a file from outside admin/",
                entry.path().display()
            );
            if kind.is_dir() {
                walk(root, &entry.path(), found);
            } else {
                let rel = entry.path();
                let rel = rel.strip_prefix(root).expect("under admin/");
                let parts: Vec<_> = rel.iter().map(|p| p.to_string_lossy()).collect();
                found.push(parts.join("/"));
            }
        }
    }
    let mut found = Vec::new();
    walk(&admin_dir(), &admin_dir(), &mut found);
    found.sort();
    found
}

/// Checks the browser guards every console file is served with.
fn assert_guarded(r: &Resp, what: &str) {
    assert_eq!(r.status, StatusCode::OK, "{what}");
    assert_eq!(r.header("content-security-policy"), Some(CSP), "{what}");
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
}

/// The text between `open` and the next `close`, for every `open` in `text`.
fn between<'a>(text: &'a str, open: &str, close: char) -> Vec<&'a str> {
    text.match_indices(open)
        .filter_map(|(i, _)| {
            let rest = &text[i + open.len()..];
            rest.find(close).map(|end| &rest[..end])
        })
        .collect()
}

/// `target` (relative, as an import names it) resolved against the file `from`.
fn resolve(from: &str, target: &str) -> String {
    if let Some(absolute) = target.strip_prefix("/admin/") {
        return absolute.to_owned();
    }
    assert!(
        target.starts_with("./") || target.starts_with("../"),
        "{from} loads {target:?}: only the console's own files may be loaded"
    );
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            "." => {}
            ".." => {
                assert!(parts.pop().is_some(), "{from}: {target} leaves admin/");
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// What a module imports, resolved: the specifiers of its `import … from "x"`, `import "x"`
/// and `export … from "x"` statements (a statement begins a code line and ends at its `;`)
/// and of every `import("x")`. Only statements count, so a display string such as
/// `"from "` is never taken for an import; a statement this cannot read fails the test
/// rather than being skipped.
fn imports(path: &str, text: &str) -> Vec<String> {
    let code: String = code_lines(text).collect::<Vec<_>>().join("\n");
    let mut found: Vec<String> = Vec::new();
    let mut offset = 0;
    for line in code.split('\n') {
        let start = offset + (line.len() - line.trim_start().len());
        offset += line.len() + 1;
        let head = &code[start..];
        let reexport = head.starts_with("export {") || head.starts_with("export *");
        if !(head.starts_with("import ") || head.starts_with("import{") || reexport) {
            continue;
        }
        let statement = head.split(';').next().unwrap_or(head);
        let spec = if reexport {
            statement.rsplit_once(" from").map(|(_, s)| s)
        } else {
            let clause = statement["import".len()..].trim_start();
            if clause.starts_with(['"', '\'']) {
                Some(clause)
            } else {
                statement.rsplit_once(" from").map(|(_, s)| s)
            }
        };
        let spec = spec
            .map(str::trim)
            .and_then(quoted)
            .unwrap_or_else(|| panic!("{path}: an import statement without a module: {statement}"));
        found.push(spec.to_owned());
    }
    for open in ["import(\"", "import('"] {
        let close = open.chars().last().unwrap_or('"');
        found.extend(between(&code, open, close).into_iter().map(str::to_owned));
    }
    found.into_iter().map(|t| resolve(path, &t)).collect()
}

/// The text of a string literal that is all of `s` ("x" or 'x'), else None.
fn quoted(s: &str) -> Option<&str> {
    let q = s.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    s.strip_prefix(q)?.strip_suffix(q)
}

#[test]
fn imports_are_read_from_statements_only() {
    let text = r#"// import { x } from "./comment.js";
import * as api from "./api.js";
import { h,
  clear } from "../ui.js";
import './side.js';
export { a } from "./again.js";
export function f() { return h("span", null, "from ", when(x), " import \"y\""); }
const routes = [{ page: () => import("./pages/one.js") }, { page: () => import('./pages/two.js') }];
"#;
    assert_eq!(
        imports("js/pages/p.js", text),
        [
            "js/pages/api.js",
            "js/ui.js",
            "js/pages/side.js",
            "js/pages/again.js",
            "js/pages/pages/one.js",
            "js/pages/pages/two.js",
        ]
    );
}

/// The code of a file without its comment lines (a comment may name what it avoids).
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| {
        let t = l.trim_start();
        !(t.starts_with("//") || t.starts_with("/*") || t.starts_with('*'))
    })
}

/// What a served file must not hold; `path` for the message.
fn assert_clean(path: &str, text: &str) {
    for line in code_lines(text) {
        let line = line.replace(SVG_NAMESPACE, "");
        for banned in [
            "style=",
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "eval(",
            "new Function",
            "http://",
            "https://",
            "//cdn",
        ] {
            assert!(!line.contains(banned), "{path} holds {banned:?}: {line}");
        }
    }
    // A script element only ever names its file: nothing between its tags.
    for tag in between(text, "<script", '>') {
        assert!(tag.contains("src=\"/admin/"), "{path}: <script{tag}>");
    }
    for body in between(text, "<script", '<') {
        let inline = body.split_once('>').map_or("", |(_, code)| code);
        assert!(inline.trim().is_empty(), "{path}: inline script {inline:?}");
    }
}

#[tokio::test]
async fn the_page_is_served_at_its_three_addresses_with_the_strict_policy() {
    let app = TestApp::spawn().await;
    let page = std::fs::read(admin_dir().join("index.html")).expect("read index.html");
    for path in ["/admin", "/admin/", "/admin/index.html"] {
        let r = app.send(app.request_as(Method::GET, path, None)).await;
        assert_guarded(&r, path);
        assert_eq!(
            r.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{path}"
        );
        assert_eq!(r.raw, page, "{path}");
    }
}

#[tokio::test]
async fn everything_the_page_loads_is_served_guarded_typed_and_clean() {
    let app = TestApp::spawn().await;
    let page = app.get_path("/admin/").await;
    let html = String::from_utf8(page.raw.clone()).expect("UTF-8");
    assert_clean("index.html", &html);
    let mut queue: VecDeque<String> = between(&html, "src=\"", '"')
        .into_iter()
        .chain(between(&html, "href=\"", '"'))
        .filter(|t| !t.starts_with('#') && !t.starts_with("data:"))
        .map(|t| resolve("index.html", t))
        .collect();
    assert!(queue.contains(&"js/app.js".to_owned()), "{queue:?}");
    assert!(queue.contains(&"admin.css".to_owned()), "{queue:?}");
    let mut seen = BTreeSet::new();
    while let Some(path) = queue.pop_front() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let r = app.get_path(&format!("/admin/{path}")).await;
        assert_guarded(&r, &path);
        let want = if path.ends_with(".js") {
            "text/javascript"
        } else if path.ends_with(".css") {
            "text/css"
        } else {
            panic!("index.html loads {path}, neither a script nor a style sheet");
        };
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with(want)),
            "{path}: {:?}",
            r.header("content-type")
        );
        let text = String::from_utf8(r.raw).expect("UTF-8");
        if path.ends_with(".js") {
            queue.extend(imports(&path, &text));
        }
    }
    // Every page module the routes name was reached, and the shared ones.
    for module in [
        "js/api.js",
        "js/ui.js",
        "js/pages/models.js",
        "js/pages/metrics.js",
    ] {
        assert!(seen.contains(module), "{module} not reached: {seen:?}");
    }
    let pages = files_on_disk()
        .into_iter()
        .filter(|f| f.starts_with("js/pages/"));
    for page in pages {
        assert!(seen.contains(&page), "{page} is imported by nothing");
    }
}

#[tokio::test]
async fn every_embedded_file_is_a_file_of_admin_served_as_it_is_on_disk() {
    let app = TestApp::spawn().await;
    let files = files_on_disk();
    assert!(files.contains(&"index.html".to_owned()), "{files:?}");
    for path in &files {
        let r = app.get_path(&format!("/admin/{path}")).await;
        assert_guarded(&r, path);
        let disk = std::fs::read(admin_dir().join(path)).expect("read the file");
        assert_eq!(r.raw, disk, "{path} is served as it is on disk");
        if let Ok(text) = std::str::from_utf8(&r.raw) {
            assert_clean(path, text);
        }
    }
    // Files of the crate beside admin/ are not served under it.
    for outside in ["build.rs", "Cargo.toml", "src/admin.rs", "admin/index.html"] {
        let r = app.get_path(&format!("/admin/{outside}")).await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    }
}

#[tokio::test]
async fn paths_outside_the_console_are_not_found_and_other_methods_not_allowed() {
    let app = TestApp::spawn().await;
    for path in [
        "/admin/nothing.js",
        "/admin/js/app.js/x",
        "/admin/js/",
        "/admin/js",
        "/admin/..%2F..%2FCargo.toml",
        "/admin/%2e%2e/x",
        "/admin/%2e%2e/%2e%2e/Cargo.toml",
        "/admin/js/..%2F..%2Fbuild.rs",
        "/admin/.hidden",
        "/admin/index.html%00.js",
        "/admin//etc/passwd",
        "/admin/INDEX.HTML",
    ] {
        let r = app.send(app.request_as(Method::GET, path, None)).await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
        assert!(
            r.header("content-security-policy").is_none(),
            "{path}: an envelope, not a console file"
        );
    }
    // A raw `..` never reaches the router as such: the client or the server folds it, and
    // what is left is either a console file or the 404 envelope, never a file beside it.
    let mut raw = crate::helpers::raw::RawConn::open(app.addr).await;
    let r = raw.get("/admin/../Cargo.toml").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND.as_u16(), "{r:?}");
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        for path in ["/admin", "/admin/", "/admin/js/app.js"] {
            let r = app
                .send(app.request_as(method.clone(), path, None).body("x"))
                .await;
            assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
        }
    }
}

/// Three models, in an order that is not alphabetical: `zine` (guests read it; a
/// searchable field, an `admin_only` one, one renamed), `diary` (users read their own) and
/// `atlas` (no guests).
fn models_v2() -> Vec<plinth_core::ModelDecl> {
    decls(json!([
        {"name": "zine", "fields": [
            {"name": "title", "type": "string", "required": true, "searchable": true,
             "max_length": 80},
            {"name": "secret", "type": "integer", "admin_only": true},
            {"name": "heading", "type": "string", "renamed_from": "caption"},
            {"name": "kind", "type": "enum", "values": ["a", "b"], "indexed": true}
        ]},
        {"name": "diary", "user_read": "own", "fields": [
            {"name": "mood", "type": "text"}
        ]},
        {"name": "atlas", "guest_read": false, "fields": [
            {"name": "pages", "type": "integer", "min": 1}
        ]}
    ]))
}

/// The same models before `heading` was renamed from `caption`.
fn models_v1() -> Vec<plinth_core::ModelDecl> {
    let mut v = serde_json::to_value(models_v2()).expect("the declarations as JSON");
    let heading = &mut v[0]["fields"][2];
    heading["name"] = json!("caption");
    if let Some(o) = heading.as_object_mut() {
        o.remove("renamed_from");
    }
    decls(v)
}

/// A server whose `zine.heading` was migrated from `caption`.
async fn models_app() -> TestApp {
    let db = TestDb::new().await;
    db.state(&models_v1()).await;
    TestApp::spawn_on(db, models_v2(), ServerConfig::default(), test_auth_config()).await
}

async fn models_as(app: &TestApp, credential: Option<&str>) -> Vec<Value> {
    let r = app
        .call_as(Method::GET, "/api/v1/models", credential, None)
        .await;
    assert!(
        !String::from_utf8_lossy(&r.raw).contains("renamed_from"),
        "{}",
        r.body
    );
    // The answer depends on the caller (admin_only fields, `can`): no shared cache may
    // hand one caller's answer to another.
    assert_eq!(r.header("cache-control"), Some("private, no-cache"));
    assert_eq!(r.header("vary"), Some("Authorization, X-API-Key"));
    r.data(StatusCode::OK).as_array().expect("a list").clone()
}

fn names(models: &[Value]) -> Vec<&str> {
    models
        .iter()
        .map(|m| m["name"].as_str().expect("a name"))
        .collect()
}

fn field_names(model: &Value) -> Vec<&str> {
    model["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["name"].as_str().expect("a field name"))
        .collect()
}

fn can(model: &Value) -> [bool; 6] {
    ["read", "create", "update", "delete", "restore", "purge"]
        .map(|k| model["can"][k].as_bool().expect("a boolean"))
}

#[tokio::test]
async fn models_are_listed_in_declaration_order_with_what_each_role_may_do() {
    let app = models_app().await;
    let (_, user) = app.user("ann@example.com").await;

    let admin = models_as(&app, Some(&app.admin_token)).await;
    assert_eq!(names(&admin), ["zine", "diary", "atlas"]);
    let zine = &admin[0];
    assert_eq!(field_names(zine), ["title", "secret", "heading", "kind"]);
    assert_eq!(
        zine["fields"][0],
        json!({"name": "title", "type": "string", "required": true, "searchable": true,
               "max_length": 80}),
    );
    assert_eq!(zine["fields"][1]["admin_only"], json!(true));
    assert_eq!(zine["fields"][3]["values"], json!(["a", "b"]));
    let searchable: Vec<_> = admin.iter().map(|m| m["searchable"].clone()).collect();
    assert_eq!(searchable, [json!(true), json!(false), json!(false)]);
    let policies: Vec<_> = admin
        .iter()
        .map(|m| {
            (
                m["guest_read"].clone(),
                m["user_read"].clone(),
                m["hide_forbidden"].is_boolean(),
            )
        })
        .collect();
    assert_eq!(
        policies,
        [
            (json!(true), json!("all"), true),
            (json!(true), json!("own"), true),
            (json!(false), json!("all"), true)
        ]
    );
    for m in &admin {
        assert_eq!(can(m), [true; 6], "{m}");
    }

    let users = models_as(&app, Some(&user)).await;
    assert_eq!(names(&users), ["zine", "diary", "atlas"]);
    assert_eq!(field_names(&users[0]), ["title", "heading", "kind"]);
    for m in &users {
        assert_eq!(can(m), [true, true, true, true, false, false], "{m}");
    }

    let guests = models_as(&app, None).await;
    assert_eq!(names(&guests), ["zine", "diary", "atlas"]);
    assert_eq!(field_names(&guests[0]), ["title", "heading", "kind"]);
    let guest_can: Vec<_> = guests.iter().map(can).collect();
    assert_eq!(
        guest_can,
        [
            [true, false, false, false, false, false],
            [false; 6],
            [false; 6]
        ]
    );
    // What guests and users are told matches what they get.
    assert_eq!(app.list_resp("zine", &[]).await.status, StatusCode::OK);
    let r = app.call_as(Method::GET, "/api/v1/atlas", None, None).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

#[tokio::test]
async fn models_refuse_parameters_and_bad_credentials() {
    let app = TestApp::spawn().await;
    for query in ["x=1", "name=resource", "%zz=%00", "fields"] {
        let r = app.get_path(&format!("/api/v1/models?{query}")).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "INVALID_INPUT");
    }
    let forged = app
        .call_as(Method::GET, "/api/v1/models", Some("not.a.token"), None)
        .await;
    assert_error(&forged, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let made = app
        .create_key(&app.admin_token, &json!({"name": "console"}))
        .await;
    let made = made.data(StatusCode::CREATED);
    let (key_id, key) = (
        made["id"].as_str().expect("an id").to_owned(),
        made["key"].as_str().expect("a key").to_owned(),
    );
    assert_eq!(models_as(&app, Some(&key)).await.len(), 1);
    let revoked = app
        .call_as(
            Method::DELETE,
            &format!("/api/v1/auth/api-keys/{key_id}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let after = app
        .call_as(Method::GET, "/api/v1/models", Some(&key), None)
        .await;
    assert_error(&after, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let post = app
        .call_as(
            Method::POST,
            "/api/v1/models",
            Some(&app.admin_token),
            Some(&json!({})),
        )
        .await;
    assert_error(&post, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn with_the_console_off_admin_is_an_unknown_path() {
    let config = ServerConfig {
        admin_console: false,
        ..ServerConfig::default()
    };
    let app = TestApp::spawn_configured(Vec::new(), config).await;
    for path in ["/admin", "/admin/", "/admin/index.html", "/admin/js/app.js"] {
        let r = app.send(app.request_as(Method::GET, path, None)).await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
        assert!(r.header("content-security-policy").is_none(), "{path}");
    }
    let post = app.send(app.request_as(Method::POST, "/admin", None)).await;
    assert_error(&post, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_eq!(models_as(&app, None).await.len(), 1);
}
