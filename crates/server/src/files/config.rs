//! Where uploaded files are kept, and the limits on uploads (`files.*` settings).

use std::path::PathBuf;
use std::time::Duration;

/// Default limit on a whole `multipart/form-data` body: 256 MiB.
pub const DEFAULT_UPLOAD_LIMIT: u64 = 256 << 20;
/// Default time an unreferenced blob is kept after its last write: 10 minutes.
pub const DEFAULT_ORPHAN_GRACE: Duration = Duration::from_secs(600);

/// The file settings.
#[derive(Debug, Clone)]
pub struct FilesConfig {
    /// The local directory: blobs under `blobs/` when no bucket is set, and the temporary
    /// files of uploads in progress under `tmp/` in every case.
    pub dir: PathBuf,
    /// Keep blobs in this S3-compatible bucket instead of `dir`.
    pub s3: Option<S3Config>,
    /// The largest `multipart/form-data` body accepted, files included.
    pub upload_limit: u64,
    /// How long a blob no record holds is kept after it was last written, so an upload of
    /// the same content on another instance, written but not yet committed, keeps it.
    pub orphan_grace: Duration,
}

impl FilesConfig {
    /// Local storage under `dir`, with the default limits.
    pub fn local(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            s3: None,
            upload_limit: DEFAULT_UPLOAD_LIMIT,
            orphan_grace: DEFAULT_ORPHAN_GRACE,
        }
    }
}

/// An S3-compatible bucket.
#[derive(Clone)]
pub struct S3Config {
    /// The bucket's name.
    pub bucket: String,
    /// The service's URL; `None`: AWS for `region`.
    pub endpoint: Option<String>,
    /// The region.
    pub region: String,
    /// Prepended to every key (`plinth/` say); may be empty.
    pub prefix: String,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key (never logged or shown).
    pub secret_access_key: String,
    /// Whether `endpoint` may be plain `http://` (a local server; refused in production).
    pub allow_http: bool,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .field("access_key_id", &"…")
            .field("secret_access_key", &"…")
            .field("allow_http", &self.allow_http)
            .finish()
    }
}
