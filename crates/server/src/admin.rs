//! The admin console at `/admin`: static files embedded at compile time (`build.rs` lists
//! every file under `admin/`), served with a Content-Security-Policy that lets them load
//! nothing but themselves and talk to nothing but this server. The console is a client of
//! the public `/api/v1` like any other: it has no routes, credentials or powers of its own.

use crate::state::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

include!(concat!(env!("OUT_DIR"), "/admin_assets.rs"));

/// No inline script or style, no other origin, no framing; images and media may also be
/// `blob:` (a file preview fetched with the access token) and `data:`.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; \
    form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

static REFERRER_POLICY: HeaderName = HeaderName::from_static("referrer-policy");

/// `/admin` (the page) and `/admin/{file}` (its scripts and style sheets).
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(|| async { asset("index.html") }))
        .route("/admin/", get(|| async { asset("index.html") }))
        .route(
            "/admin/{*file}",
            get(|Path(file): Path<String>| async move { asset(&file) }),
        )
}

/// The embedded file at `path` (relative to `admin/`), or the 404 envelope.
fn asset(path: &str) -> Response {
    let Some((_, body)) = ADMIN_ASSETS.iter().find(|(p, _)| *p == path) else {
        return not_found_now();
    };
    let Some(content_type) = content_type(path) else {
        return not_found_now();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                REFERRER_POLICY.clone(),
                HeaderValue::from_static("no-referrer"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Bytes::from_static(body),
    )
        .into_response()
}

/// The router's own 404 envelope, as for any unknown path.
fn not_found_now() -> Response {
    crate::extract::no_such_route().into_response()
}

fn content_type(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.')?.1;
    Some(match ext {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::ADMIN_ASSETS;
    use std::path::{Component, Path};

    /// What the build embedded is files of `admin/` and nothing else: relative paths of
    /// plain names, each a regular file (not a link) under `admin/` with these bytes.
    #[test]
    fn the_embedded_files_are_the_files_under_admin() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("admin");
        let root = root.canonicalize().expect("admin/ exists");
        assert!(ADMIN_ASSETS.iter().any(|(p, _)| *p == "index.html"));
        for (path, bytes) in ADMIN_ASSETS {
            let rel = Path::new(path);
            assert!(
                rel.components().all(|c| matches!(c, Component::Normal(_))),
                "{path}"
            );
            let file = root.join(rel);
            let meta = std::fs::symlink_metadata(&file).expect("the file exists");
            assert!(meta.is_file(), "{path} is not a regular file");
            let real = file.canonicalize().expect("canonical path");
            assert!(real.starts_with(&root), "{path} resolves outside admin/");
            assert_eq!(std::fs::read(&real).ok().as_deref(), Some(*bytes), "{path}");
        }
    }
}
