//! The blobs: file contents by SHA-256, in a local directory or an S3-compatible bucket.
//! A blob is written once per content (a second upload of it only refreshes its time, which
//! the orphan grace reads), read whole or by range as a stream, and deleted when no record
//! holds it.

use super::config::{FilesConfig, S3Config};
use axum::body::Body;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, WriteMultipart};
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Bytes read from a temporary file per part of a bucket upload.
const PART: usize = 8 << 20;

/// Where blobs live.
#[derive(Debug, Clone)]
pub(crate) enum Storage {
    /// `<dir>/blobs/<first two hex digits>/<hash>`.
    Local { root: PathBuf },
    /// `<prefix><first two hex digits>/<hash>` in a bucket.
    S3 {
        bucket: Arc<AmazonS3>,
        prefix: String,
    },
}

fn io_err(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(e)
}

impl Storage {
    /// The storage `config` names (nothing is contacted yet).
    pub(crate) fn open(config: &FilesConfig) -> Result<Self, String> {
        match &config.s3 {
            None => Ok(Self::Local {
                root: config.dir.join("blobs"),
            }),
            Some(s3) => Ok(Self::S3 {
                bucket: Arc::new(bucket(s3)?),
                prefix: s3.prefix.clone(),
            }),
        }
    }

    fn key(hash: &str) -> String {
        format!("{}/{hash}", &hash[..2.min(hash.len())])
    }

    fn local_path(root: &Path, hash: &str) -> PathBuf {
        root.join(Self::key(hash))
    }

    fn object(prefix: &str, hash: &str) -> Key {
        Key::from(format!("{prefix}{}", Self::key(hash)))
    }

    /// Stores the content of `temp` (of `size` bytes) as blob `hash`; `temp` is moved or
    /// read, and left for the caller to remove if it is still there.
    pub(crate) async fn put(&self, hash: &str, temp: &Path, size: u64) -> io::Result<()> {
        match self {
            Self::Local { root } => {
                let dest = Self::local_path(root, hash);
                if let Some(dir) = dest.parent() {
                    tokio::fs::create_dir_all(dir).await?;
                }
                if tokio::fs::try_exists(&dest).await? {
                    // The same content again: refresh its time (the orphan grace reads it).
                    let file = tokio::fs::OpenOptions::new()
                        .write(true)
                        .open(&dest)
                        .await?;
                    file.into_std().await.set_modified(SystemTime::now())?;
                    return Ok(());
                }
                tokio::fs::rename(temp, &dest).await
            }
            Self::S3 { bucket, prefix } => {
                let key = Self::object(prefix, hash);
                let mut file = tokio::fs::File::open(temp).await?;
                if size <= PART as u64 {
                    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(PART));
                    file.read_to_end(&mut bytes).await?;
                    bucket.put(&key, bytes.into()).await.map_err(io_err)?;
                    return Ok(());
                }
                let upload = bucket.put_multipart(&key).await.map_err(io_err)?;
                let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
                let mut buf = vec![0; 1 << 20];
                loop {
                    writer.wait_for_capacity(2).await.map_err(io_err)?;
                    let n = file.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    writer.write(&buf[..n]);
                }
                writer.finish().await.map_err(io_err)?;
                Ok(())
            }
        }
    }

    /// The bytes of blob `hash` in `range` (the whole blob of `size` bytes without one), as
    /// a stream.
    pub(crate) async fn read(&self, hash: &str, range: Range<u64>) -> io::Result<Body> {
        match self {
            Self::Local { root } => {
                let mut file = tokio::fs::File::open(Self::local_path(root, hash)).await?;
                file.seek(io::SeekFrom::Start(range.start)).await?;
                let limited = file.take(range.end - range.start);
                Ok(Body::from_stream(tokio_util::io::ReaderStream::new(
                    limited,
                )))
            }
            Self::S3 { bucket, prefix } => {
                let options = GetOptions {
                    range: Some(GetRange::Bounded(range)),
                    ..GetOptions::default()
                };
                let got = bucket
                    .get_opts(&Self::object(prefix, hash), options)
                    .await
                    .map_err(io_err)?;
                Ok(Body::from_stream(got.into_stream().map_err(io_err)))
            }
        }
    }

    /// When blob `hash` was last written; `None` when there is no such blob.
    pub(crate) async fn modified(&self, hash: &str) -> io::Result<Option<SystemTime>> {
        match self {
            Self::Local { root } => match tokio::fs::metadata(Self::local_path(root, hash)).await {
                Ok(m) => Ok(Some(m.modified()?)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            },
            Self::S3 { bucket, prefix } => match bucket.head(&Self::object(prefix, hash)).await {
                Ok(meta) => Ok(Some(meta.last_modified.into())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(io_err(e)),
            },
        }
    }

    /// Deletes blob `hash` (gone already is fine).
    pub(crate) async fn delete(&self, hash: &str) -> io::Result<()> {
        match self {
            Self::Local { root } => {
                match tokio::fs::remove_file(Self::local_path(root, hash)).await {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                }
            }
            Self::S3 { bucket, prefix } => match bucket.delete(&Self::object(prefix, hash)).await {
                Err(e) if !matches!(e, object_store::Error::NotFound { .. }) => Err(io_err(e)),
                _ => Ok(()),
            },
        }
    }

    /// Up to `limit` blobs with their last write, among those whose hash starts with one
    /// of `fans` (two hex digits each), for the orphan sweep.
    pub(crate) async fn list(
        &self,
        fans: &[String],
        limit: usize,
    ) -> io::Result<Vec<(String, SystemTime)>> {
        let mut out = Vec::new();
        for fan in fans {
            match self {
                Self::Local { root } => {
                    let mut files = match tokio::fs::read_dir(root.join(fan)).await {
                        Ok(d) => d,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(e),
                    };
                    while let Some(f) = files.next_entry().await? {
                        if out.len() >= limit {
                            return Ok(out);
                        }
                        let name = f.file_name().to_string_lossy().into_owned();
                        out.push((name, f.metadata().await?.modified()?));
                    }
                }
                Self::S3 { bucket, prefix } => {
                    let base = Key::from(format!("{prefix}{fan}"));
                    let mut items = bucket.list(Some(&base));
                    while let Some(meta) = items.next().await {
                        if out.len() >= limit {
                            return Ok(out);
                        }
                        let meta = meta.map_err(io_err)?;
                        if let Some(name) = meta.location.filename() {
                            out.push((name.to_owned(), meta.last_modified.into()));
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The bucket client, over `files::http`.
fn bucket(s3: &S3Config) -> Result<AmazonS3, String> {
    let mut builder = AmazonS3Builder::new()
        .with_http_connector(super::http::Connector::new()?)
        .with_bucket_name(&s3.bucket)
        .with_region(&s3.region)
        .with_access_key_id(&s3.access_key_id)
        .with_secret_access_key(&s3.secret_access_key)
        .with_allow_http(s3.allow_http);
    if let Some(endpoint) = &s3.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    builder.build().map_err(|e| format!("files.s3: {e}"))
}
