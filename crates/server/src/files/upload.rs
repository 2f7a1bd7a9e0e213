//! Reading a create or update body that may carry files: JSON as before, or
//! `multipart/form-data` with a `data` part (the JSON object of the other fields) and one
//! part per uploaded file, named by its field. Each file streams to a temporary file while
//! it is hashed (SHA-256) and measured, with only its first bytes kept for sniffing, so
//! memory stays flat whatever the size; then it is moved (or uploaded) into storage. The
//! record's value becomes the stored name, and the write adds the file's row.

use super::{Files, Hold};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;
use axum::extract::Request;
use axum::http::header;
use plinth_core::schema::{FieldDef, FieldType, FileRules};
use plinth_core::{ErrorCode, FieldAccess, FieldError, ModelDef, Record, RecordId, Value};
use plinth_store::NewFile;
use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// Most parts one multipart body may have.
const MAX_PARTS: usize = 64;
/// Bytes of a file kept for sniffing its type.
const SNIFF_BYTES: usize = 8192;
/// Longest stem of a stored name (the original name's, cleaned).
const STEM_MAX: usize = 40;

/// A request body with the files it uploaded.
#[derive(Debug, Default)]
pub(crate) struct Body {
    /// The record's values as JSON; a file field holds its uploaded file's name.
    pub(crate) json: Json,
    /// The files uploaded, stored already; the write adds their rows.
    pub(crate) files: Vec<NewFile>,
    /// Keeps this instance from deleting the uploaded content until the write is done.
    hold: Hold,
}

impl Body {
    /// The body as an idempotency key's digest sees it: each uploaded file by content, not
    /// by its (random) stored name, so a retry of the same upload matches.
    pub(crate) fn fingerprint(&self) -> Json {
        let mut json = self.json.clone();
        if let Some(obj) = json.as_object_mut() {
            for f in &self.files {
                obj.insert(f.field.clone(), Json::String(format!("sha256:{}", f.hash)));
            }
        }
        json
    }

    /// After the write (committed or not): content neither kept by it nor held by anything
    /// else is deleted, among what was uploaded and what the record held before (`before`).
    pub(crate) async fn release(self, state: &AppState, before: Vec<String>) {
        let Some(files) = state.files() else {
            return;
        };
        let mut hashes = before;
        hashes.extend(self.hold.hashes().iter().cloned());
        drop(self.hold);
        if !hashes.is_empty() {
            files.release(state.store().as_ref(), hashes).await;
        }
    }
}

/// Whether `model` declares a file field.
pub(crate) fn has_files(model: &ModelDef) -> bool {
    model
        .fields()
        .iter()
        .any(|f| matches!(f.ty(), FieldType::File(_)))
}

/// The content hashes record `id` holds now (before a write that may drop some).
pub(crate) async fn held(
    state: &AppState,
    model: &ModelDef,
    id: RecordId,
) -> Result<Vec<String>, ApiError> {
    if !has_files(model) || state.files().is_none() {
        return Ok(Vec::new());
    }
    let rows = state.store().files_of(model, id).await?;
    Ok(rows.into_iter().map(|r| r.hash).collect())
}

/// Reads the body of a create or update of `current`: JSON, or `multipart/form-data` with
/// files.
pub(crate) async fn read(
    req: Request,
    state: &AppState,
    model: &ModelDef,
    access: FieldAccess,
    current: Option<&Record>,
) -> Result<Body, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let multipart = content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("multipart/form-data"));
    if !multipart {
        return Ok(Body {
            json: ApiJson::read(req, state).await?,
            ..Body::default()
        });
    }
    let files = state.files().cloned().ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "this server stores no files: send JSON",
        )
    })?;
    let boundary = multer::parse_boundary(&content_type)
        .map_err(|_| ApiError::invalid("body", "the multipart boundary is missing or invalid"))?;
    let limits = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(files.upload_limit()));
    let stream = req.into_body().into_data_stream();
    let mut parts = multer::Multipart::with_constraints(stream, boundary, limits);
    let mut body = Body::default();
    match read_parts(&files, &mut parts, model, access, current, &mut body).await {
        Ok(()) => Ok(body),
        Err(e) => {
            // What was stored before the refusal goes again.
            body.release(state, Vec::new()).await;
            Err(e)
        }
    }
}

/// Reads every part into `body`: the `data` object, and each file stored.
async fn read_parts(
    files: &Arc<Files>,
    parts: &mut multer::Multipart<'_>,
    model: &ModelDef,
    access: FieldAccess,
    current: Option<&Record>,
    body: &mut Body,
) -> Result<(), ApiError> {
    let mut data: Option<Map<String, Json>> = None;
    let mut count = 0;
    while let Some(mut part) = parts.next_field().await.map_err(multipart_error)? {
        count += 1;
        if count > MAX_PARTS {
            return Err(ApiError::invalid(
                "body",
                format!("a multipart body may have at most {MAX_PARTS} parts"),
            ));
        }
        let name = part.name().unwrap_or_default().to_owned();
        if name == "data" {
            if data.is_some() {
                return Err(ApiError::invalid("data", "is sent twice"));
            }
            data = Some(read_data(&mut part, files.data_limit()).await?);
            continue;
        }
        let field = model
            .field(&name)
            .map(|(_, f)| f)
            .filter(|f| f.visible_to(access));
        let (Some(field), Some(rules)) = (field, field.and_then(file_rules)) else {
            return Err(ApiError::invalid(
                &name.chars().take(100).collect::<String>(),
                "is not a file field of this model; send other fields as JSON in the `data` part",
            ));
        };
        if body.files.iter().filter(|f| f.field == name).count() >= rules.max_files as usize {
            // The total, with the files kept, is the field's validation.
            return Err(ApiError::invalid(
                &name,
                format!("holds at most {} file(s)", rules.max_files),
            ));
        }
        let file = stage(files, &mut part, field, rules, &mut body.hold).await?;
        body.files.push(file);
    }
    let mut json = data.unwrap_or_default();
    for (i, f) in model.fields().iter().enumerate() {
        let field = f.name().as_str();
        let mut names = body
            .files
            .iter()
            .filter(|u| u.field == field)
            .map(|u| Json::String(u.name.clone()))
            .peekable();
        let Some(first) = names.peek().cloned() else {
            continue;
        };
        if !file_rules(f).is_some_and(|r| r.multiple) {
            if json.contains_key(field) {
                return Err(ApiError::invalid(
                    field,
                    "is sent both in `data` and as a file part",
                ));
            }
            json.insert(field.to_owned(), first);
            continue;
        }
        // A multiple field's parts append: to the list `data` gives, else to the files the
        // record holds now.
        let mut list = match json.remove(field) {
            Some(Json::Array(list)) => list,
            Some(_) => {
                return Err(ApiError::invalid(
                    field,
                    "must be a list of names of this record's files",
                ));
            }
            None => match current.and_then(|r| r.fields.get(i)).map(Value::to_json) {
                Some(Json::Array(list)) => list,
                _ => Vec::new(),
            },
        };
        list.extend(names);
        json.insert(field.to_owned(), Json::Array(list));
    }
    body.json = Json::Object(json);
    Ok(())
}

fn file_rules(f: &FieldDef) -> Option<&FileRules> {
    match f.ty() {
        FieldType::File(rules) => Some(rules),
        _ => None,
    }
}

/// The `data` part: a JSON object within the body limit.
async fn read_data(
    part: &mut multer::Field<'_>,
    limit: usize,
) -> Result<Map<String, Json>, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = part.chunk().await.map_err(multipart_error)? {
        if bytes.len() + chunk.len() > limit {
            return Err(too_large("data", format!("is larger than {limit} bytes")));
        }
        bytes.extend_from_slice(&chunk);
    }
    match serde_json::from_slice(&bytes) {
        Ok(Json::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid("data", "must be a JSON object")),
        Err(e) => Err(ApiError::invalid("data", format!("is not JSON: {e}"))),
    }
}

/// A temporary file, removed when dropped (whatever became of the upload).
struct Temp(std::path::PathBuf);

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Streams one file part into storage: temporary file, hash, size and type checks.
async fn stage(
    files: &Arc<Files>,
    part: &mut multer::Field<'_>,
    field: &FieldDef,
    rules: &FileRules,
    hold: &mut Hold,
) -> Result<NewFile, ApiError> {
    let name = field.name().to_string();
    let original = part.file_name().unwrap_or_default().to_owned();
    let temp = Temp(files.temp_path());
    let mut out = tokio::fs::File::create(&temp.0)
        .await
        .map_err(|e| ApiError::internal(format!("upload temporary file: {e}")))?;
    let (mut hasher, mut size, mut head) = (Sha256::new(), 0u64, Vec::new());
    while let Some(chunk) = part.chunk().await.map_err(multipart_error)? {
        size += chunk.len() as u64;
        if size > rules.max_size {
            return Err(too_large(
                &name,
                format!("is larger than {} bytes", rules.max_size),
            ));
        }
        if head.len() < SNIFF_BYTES {
            let take = (SNIFF_BYTES - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        hasher.update(&chunk);
        out.write_all(&chunk)
            .await
            .map_err(|e| ApiError::internal(format!("upload temporary file: {e}")))?;
    }
    out.sync_all()
        .await
        .map_err(|e| ApiError::internal(format!("upload temporary file: {e}")))?;
    drop(out);
    if size == 0 {
        return Err(ApiError::invalid(&name, "is an empty file"));
    }
    let (mime, ext) = sniff(&head);
    if !rules.accepts(mime) {
        return Err(ApiError::invalid(
            &name,
            format!(
                "has type {mime} (sniffed from its content), not one of {}",
                rules.mime_types.join(", ")
            ),
        ));
    }
    let hash = base16ct::lower::encode_string(&hasher.finalize());
    files.hold(hold, &hash);
    files
        .storage()
        .put(&hash, &temp.0, size)
        .await
        .map_err(|e| {
            ApiError::new(
                ErrorCode::Unavailable,
                "file storage is unavailable; retry shortly",
            )
            .with_cause(format!("file storage: {e}"))
        })?;
    Ok(NewFile {
        field: name,
        name: stored_name(&original, ext),
        hash,
        size,
        mime: mime.to_owned(),
    })
}

/// The type of a file from its first bytes, and the extension its stored name gets: a known
/// signature, else UTF-8 text, else opaque bytes. Never what the client said.
pub(crate) fn sniff(head: &[u8]) -> (&'static str, &'static str) {
    if let Some(t) = infer::get(head) {
        return (t.mime_type(), t.extension());
    }
    // A multibyte character cut by the sniffing window still counts as text.
    let text = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && head.len() >= SNIFF_BYTES,
    };
    if text && !head.contains(&0) {
        ("text/plain", "txt")
    } else {
        ("application/octet-stream", "bin")
    }
}

/// A safe stored name: the original's stem cleaned to `[a-z0-9_]`, a random suffix, and
/// the extension of the sniffed type (`photo_3f9a0c1d2e.png`).
pub(crate) fn stored_name(original: &str, ext: &str) -> String {
    let base = original.rsplit(['/', '\\']).next().unwrap_or_default();
    let stem = base.rsplit_once('.').map_or(base, |(s, _)| s);
    let mut clean = String::new();
    for c in stem.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '_'
        };
        if !(c == '_' && (clean.is_empty() || clean.ends_with('_'))) {
            clean.push(c);
        }
        if clean.len() >= STEM_MAX {
            break;
        }
    }
    let clean = clean.trim_end_matches('_');
    let stem = if clean.is_empty() { "file" } else { clean };
    format!("{stem}_{}.{ext}", super::random_suffix(10))
}

fn too_large(field: &str, reason: String) -> ApiError {
    ApiError::new(ErrorCode::PayloadTooLarge, format!("{field} {reason}"))
        .with_details(vec![FieldError::new(field, reason)])
}

fn multipart_error(e: multer::Error) -> ApiError {
    match e {
        multer::Error::StreamSizeExceeded { limit }
        | multer::Error::FieldSizeExceeded { limit, .. } => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the multipart body is larger than {limit} bytes"),
        ),
        multer::Error::IncompleteStream
        | multer::Error::IncompleteFieldData { .. }
        | multer::Error::IncompleteHeaders => ApiError::invalid(
            "body",
            "the multipart body ends before its closing boundary",
        ),
        multer::Error::StreamReadFailed(_) => {
            ApiError::invalid("body", "the multipart body could not be read")
        }
        _ => ApiError::invalid("body", "is not valid multipart/form-data"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_are_safe_whatever_the_client_sent() {
        for (original, stem) in [
            ("Photo of Me.PNG", "photo_of_me_"),
            ("../../etc/passwd", "passwd_"),
            ("..\\..\\boot.ini", "boot_"),
            ("", "file_"),
            ("...", "file_"),
            ("résumé.pdf", "r_sum_"),
        ] {
            let name = stored_name(original, "png");
            assert!(name.starts_with(stem), "{original:?} → {name}");
            assert!(plinth_core::schema::file::is_file_name(&name), "{name}");
            assert!(name.ends_with(".png"));
        }
        let long = stored_name(&"x".repeat(500), "bin");
        assert!(long.len() <= plinth_core::schema::file::FILE_NAME_MAX);
    }

    #[test]
    fn the_type_comes_from_the_bytes() {
        let png = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0];
        assert_eq!(sniff(&png), ("image/png", "png"));
        assert_eq!(sniff(b"just words").0, "text/plain");
        assert_eq!(sniff(&[0, 1, 2, 0xff]).0, "application/octet-stream");
        assert_ne!(sniff(b"<html><script>alert(1)</script>").0, "image/png");
    }
}
