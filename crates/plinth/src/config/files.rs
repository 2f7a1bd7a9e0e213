//! The file settings (`files.*`, the bucket's credentials) as the server's
//! [`FilesConfig`], and the refusals that involve several of them.

use super::Config;
use super::settings::{Settings, env};
use super::value::Environment;
use plinth_server::{FilesConfig, S3Config};

impl Config {
    /// Where file contents live: the bucket when one is named, else `files.dir` (by default
    /// `<data_dir>/files`). Checked by [`checks`] when the configuration loaded.
    pub(crate) fn files_config(&self) -> FilesConfig {
        let s = &self.settings;
        let dir = s
            .files_dir
            .clone()
            .unwrap_or_else(|| s.data_dir.join("files"));
        let s3 = s.files_s3_bucket.as_ref().map(|bucket| S3Config {
            bucket: bucket.clone(),
            endpoint: s.files_s3_endpoint.clone(),
            region: s.files_s3_region.clone(),
            prefix: s.files_s3_prefix.clone(),
            access_key_id: s
                .s3_access_key_id
                .as_ref()
                .map(|k| k.expose().to_owned())
                .unwrap_or_default(),
            secret_access_key: s
                .s3_secret_access_key
                .as_ref()
                .map(|k| k.expose().to_owned())
                .unwrap_or_default(),
            allow_http: s
                .files_s3_endpoint
                .as_deref()
                .is_some_and(|e| e.starts_with("http://")),
        });
        FilesConfig {
            dir,
            s3,
            upload_limit: s.files_upload_limit,
            orphan_grace: s.files_orphan_grace.duration(),
        }
    }
}

/// A bucket needs its credentials, and production its endpoint over HTTPS.
pub(super) fn checks(s: &Settings) -> Vec<String> {
    let mut errors = Vec::new();
    if s.files_s3_bucket.is_none() {
        return errors;
    }
    for (secret, name) in [
        (&s.s3_access_key_id, env::S3_ACCESS_KEY_ID),
        (&s.s3_secret_access_key, env::S3_SECRET_ACCESS_KEY),
    ] {
        if secret.as_ref().is_none_or(|v| v.expose().is_empty()) {
            errors.push(format!(
                "files.s3_bucket ({}) needs {name}",
                env::FILES_S3_BUCKET
            ));
        }
    }
    if let Some(endpoint) = &s.files_s3_endpoint {
        let http = endpoint.starts_with("http://");
        if !http && !endpoint.starts_with("https://") {
            errors.push(format!(
                "files.s3_endpoint ({}) must be an http:// or https:// URL",
                env::FILES_S3_ENDPOINT
            ));
        } else if http && s.env == Environment::Production {
            errors.push(format!(
                "files.s3_endpoint ({}) over plain http:// is refused in production",
                env::FILES_S3_ENDPOINT
            ));
        }
    }
    errors
}
