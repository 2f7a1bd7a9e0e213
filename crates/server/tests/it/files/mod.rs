//! File fields over HTTP: uploads with `multipart/form-data`, downloads with the record's
//! read policy, replaced and purged contents removed, on local storage and (with moto) on
//! an S3-compatible bucket. Each case runs on the engine of the pass.

mod attacks;
mod batch;
mod cases;
mod moto;
mod policy;

use crate::helpers::{Resp, TestApp, decls};
use plinth_server::{FilesConfig, S3Config, ServerConfig};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::TempDir;

/// Where a test's file contents live.
pub(crate) enum Blobs {
    /// `<dir>/blobs`.
    Local,
    /// A bucket of a moto server the test started.
    S3(moto::Moto),
}

/// A server with file fields, and where its contents can be counted.
pub(crate) struct FileApp {
    pub(crate) app: TestApp,
    dir: TempDir,
    blobs: Blobs,
}

/// `book` (a png/jpeg `cover` of at most 1 KiB, an `attachment` of any type, an admin-only
/// `scan`, a `gallery` of up to 3 images), and `diary` (users read their own; a `photo`).
pub(crate) fn models() -> Vec<plinth_core::ModelDecl> {
    decls(json!([
        {"name": "book", "fields": [
            {"name": "title", "type": "string"},
            {"name": "cover", "type": "file", "max_size": 1024,
             "mime_types": ["image/png", "image/jpeg"]},
            {"name": "attachment", "type": "file"},
            {"name": "scan", "type": "file", "admin_only": true},
            {"name": "gallery", "type": "file", "multiple": true, "max_files": 3,
             "mime_types": ["image/*"]}
        ]},
        {"name": "diary", "user_read": "own", "fields": [
            {"name": "photo", "type": "file", "mime_types": ["image/*"]}
        ]}
    ]))
}

impl FileApp {
    /// Local storage in a directory of the test's own; removals are immediate (no grace).
    pub(crate) async fn local() -> Self {
        Self::spawn(Blobs::Local).await
    }

    /// A moto bucket, or `None` (the test is skipped, unless S3 tests are required).
    pub(crate) async fn s3(test: &str) -> Option<Self> {
        let moto = moto::Moto::start(test).await?;
        Some(Self::spawn(Blobs::S3(moto)).await)
    }

    async fn spawn(blobs: Blobs) -> Self {
        Self::spawn_sweeping(blobs, ServerConfig::default().sweep_interval).await
    }

    /// Local storage, swept every `interval`.
    pub(crate) async fn local_swept(interval: Duration) -> Self {
        Self::spawn_sweeping(Blobs::Local, interval).await
    }

    async fn spawn_sweeping(blobs: Blobs, sweep_interval: Duration) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let s3 = match &blobs {
            Blobs::Local => None,
            Blobs::S3(moto) => Some(S3Config {
                bucket: moto.bucket.clone(),
                endpoint: Some(moto.endpoint()),
                region: "us-east-1".to_owned(),
                prefix: "plinth/".to_owned(),
                access_key_id: "testing".to_owned(),
                secret_access_key: "testing".to_owned(),
                allow_http: true,
            }),
        };
        let config = ServerConfig {
            files: Some(FilesConfig {
                s3,
                orphan_grace: Duration::ZERO,
                ..FilesConfig::local(dir.path())
            }),
            sweep_interval,
            ..ServerConfig::default()
        };
        let app = TestApp::spawn_configured(models(), config).await;
        Self { app, dir, blobs }
    }

    /// How many contents are stored.
    pub(crate) async fn blob_count(&self) -> usize {
        match &self.blobs {
            Blobs::Local => count_files(&self.dir.path().join("blobs")),
            Blobs::S3(moto) => moto.count_objects().await,
        }
    }

    /// Temporary files left in `tmp/`.
    pub(crate) fn temp_count(&self) -> usize {
        count_files(&self.dir.path().join("tmp"))
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let path: PathBuf = e.path();
            if path.is_dir() { count_files(&path) } else { 1 }
        })
        .sum()
}

/// One part of a multipart body.
pub(crate) enum Part<'a> {
    /// The `data` part: the JSON object of the other fields.
    Data(Value),
    /// A file part: field, file name, claimed content type, bytes.
    File(&'a str, &'a str, &'a str, Vec<u8>),
}

pub(crate) const BOUNDARY: &str = "plinth-test-boundary-7f3a";

/// A `multipart/form-data` body of `parts`.
pub(crate) fn form(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match part {
            Part::Data(v) => {
                body.extend_from_slice(
                    b"Content-Disposition: form-data; name=\"data\"\r\n\
                      Content-Type: application/json\r\n\r\n",
                );
                body.extend_from_slice(v.to_string().as_bytes());
            }
            Part::File(field, name, ty, bytes) => {
                body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n\
                         Content-Type: {ty}\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(bytes);
            }
        }
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// A PNG signature and `n` more bytes (a different file for each `seed`).
pub(crate) fn png(n: usize, seed: u8) -> Vec<u8> {
    let mut b = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    b.extend((0..n).map(|i| seed.wrapping_add((i % 251) as u8)));
    b
}

impl FileApp {
    /// Sends a multipart body with `method` to `path` as `token` (`None`: a guest).
    pub(crate) async fn upload_as(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Resp {
        let req = self
            .app
            .request_as(method, path, token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(body);
        self.app.send(req).await
    }

    /// As the admin.
    pub(crate) async fn upload(&self, method: Method, path: &str, parts: &[Part<'_>]) -> Resp {
        let token = self.app.admin_token.clone();
        self.upload_as(method, path, Some(&token), form(parts))
            .await
    }

    /// `GET` a file as `token` (`None`: a guest), with extra headers.
    pub(crate) async fn download_as(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self.app.request_as(Method::GET, path, token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.app.send(req).await
    }

    /// As the admin.
    pub(crate) async fn download(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let token = self.app.admin_token.clone();
        self.download_as(path, Some(&token), headers).await
    }
}

/// The download path of a record's file.
pub(crate) fn file_path(model: &str, record: &Value, field: &str) -> String {
    format!(
        "/api/v1/{model}/{}/files/{field}/{}",
        record["id"].as_str().expect("an id"),
        record[field].as_str().expect("a file name")
    )
}
