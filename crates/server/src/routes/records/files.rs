//! `GET /api/v1/{model}/{id}/files/{field}/{name}`: a stored file, under the record's read
//! policy exactly as `GET /api/v1/{model}/{id}`, streamed from storage, whole or one byte
//! range.

use super::{authorize, precheck};
use crate::error::ApiError;
use crate::extract::{Caller, no_such_route};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use plinth_core::policy::Action;
use plinth_core::schema::FieldType;
use plinth_core::schema::file::is_file_name;
use plinth_core::{ErrorCode, RecordId};
use std::ops::Range;

/// Types a browser may show in place: images that run no script (never SVG).
const INLINE: [&str; 5] = [
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/avif",
];

/// A stored file: `200` with the content, `206` with one range of it, `304` when
/// `If-None-Match` names its content.
#[utoipa::path(get, path = "/api/v1/{model}/{id}/files/{field}/{name}", tag = "records",
    security((), ("bearer" = []), ("api_key" = [])),
    params(
        ("model" = String, Path, description = "a declared model"),
        ("id" = String, Path, description = "the record's id (a UUID)"),
        ("field" = String, Path, description = "a file field of the model"),
        ("name" = String, Path, description = "the stored file's name, as the record's field holds it"),
        ("Range" = Option<String>, Header, description = "one byte range: `bytes=0-99`, `bytes=100-`, `bytes=-100`"),
        ("If-None-Match" = Option<String>, Header, description = "ETags the client holds"),
    ),
    responses(
        (status = 200, description = "the file", content_type = "application/octet-stream", body = Vec<u8>,
            headers(("ETag" = String), ("Content-Disposition" = String), ("Accept-Ranges" = String))),
        (status = 206, description = "the range asked for", content_type = "application/octet-stream", body = Vec<u8>,
            headers(("Content-Range" = String))),
        (status = 304, description = "the client's copy is current"),
        (status = 400, description = "the id is not a UUID"),
        (status = 401, description = "a bad credential, or a guest where the model refuses guests"),
        (status = 403, description = "the caller may not read the record (models with hide_forbidden = false)"),
        (status = 404, description = "no such record, field or file, or one the caller may not read"),
        (status = 416, description = "the range lies outside the file"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn download_file(
    State(state): State<AppState>,
    caller: Caller,
    Path((model, id, field, name)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let model = state.model(&model).cloned().ok_or_else(no_such_route)?;
    let id = RecordId::parse(&id).map_err(|reason| ApiError::invalid("id", reason))?;
    precheck(&caller, &model, Action::Read)?;
    let record = state
        .store()
        .get_from(&model, id, state.read_from(&caller))
        .await?
        .ok_or_else(ApiError::record_not_found)?;
    authorize(&caller, &model, Action::Read, Some(&record))?;
    let not_found = || ApiError::new(ErrorCode::NotFound, "file not found");
    let declared = model
        .field(&field)
        .map(|(_, f)| f)
        .filter(|f| f.visible_to(caller.0.field_access()))
        .filter(|f| matches!(f.ty(), FieldType::File(_)));
    if declared.is_none() || !is_file_name(&name) {
        return Err(not_found());
    }
    let files = state.files().ok_or_else(not_found)?;
    let file = state
        .store()
        .file(&model, id, &field, &name)
        .await?
        .ok_or_else(not_found)?;
    let etag = format!("\"{}\"", file.hash);
    let mut answer = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "private, no-cache")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(
            header::CONTENT_SECURITY_POLICY,
            "sandbox; default-src 'none'",
        );
    if none_match(&headers, &etag) {
        return answer
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .map_err(ApiError::internal);
    }
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(spec) => match byte_range(spec, file.size) {
            Ranged::Whole => None,
            Ranged::Part(r) => Some(r),
            Ranged::Unsatisfiable => {
                let mut e = ApiError::new(
                    ErrorCode::RangeNotSatisfiable,
                    format!("the file is {} bytes long", file.size),
                )
                .into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", file.size)) {
                    e.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return Ok(e);
            }
        },
    };
    let disposition = if INLINE.contains(&file.mime.as_str()) {
        "inline"
    } else {
        "attachment"
    };
    answer = answer.header(header::CONTENT_TYPE, &file.mime).header(
        header::CONTENT_DISPOSITION,
        format!("{disposition}; filename=\"{}\"", file.name),
    );
    let (status, span) = match range {
        Some(r) => {
            answer = answer.header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{}", r.start, r.end - 1, file.size),
            );
            (StatusCode::PARTIAL_CONTENT, r)
        }
        None => (StatusCode::OK, 0..file.size),
    };
    let body = files
        .storage()
        .read(&file.hash, span.clone())
        .await
        .map_err(|e| {
            ApiError::new(
                ErrorCode::Unavailable,
                "file storage is unavailable; retry shortly",
            )
            .with_cause(format!("file storage: {e}"))
        })?;
    answer
        .status(status)
        .header(header::CONTENT_LENGTH, span.end - span.start)
        .body(body)
        .map_err(ApiError::internal)
}

/// Whether `If-None-Match` names `etag` (or is `*`).
fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

/// What a `Range` header asks of a file.
#[derive(Debug, PartialEq, Eq)]
enum Ranged {
    /// No usable single range (several, another unit, malformed): the whole file.
    Whole,
    /// One range, end exclusive.
    Part(Range<u64>),
    /// A range that starts past the end.
    Unsatisfiable,
}

/// RFC 9110 §14.1.2, one range only.
fn byte_range(spec: &str, size: u64) -> Ranged {
    let Some(set) = spec.trim().strip_prefix("bytes=") else {
        return Ranged::Whole;
    };
    if set.contains(',') {
        return Ranged::Whole;
    }
    let Some((first, last)) = set.trim().split_once('-') else {
        return Ranged::Whole;
    };
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.trim().is_empty(), num(first), num(last)) {
        // `-n`: the last n bytes.
        (true, _, Some(n)) if n > 0 && size > 0 => Ranged::Part(size.saturating_sub(n)..size),
        (true, _, Some(_)) => Ranged::Unsatisfiable,
        (false, Some(start), end) if last.trim().is_empty() || end.is_some() => {
            if start >= size {
                return Ranged::Unsatisfiable;
            }
            match end {
                Some(end) if end < start => Ranged::Whole,
                Some(end) => Ranged::Part(start..end.min(size - 1) + 1),
                None => Ranged::Part(start..size),
            }
        }
        _ => Ranged::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        assert_eq!(byte_range("bytes=0-9", 100), Ranged::Part(0..10));
        assert_eq!(byte_range("bytes=90-", 100), Ranged::Part(90..100));
        assert_eq!(byte_range("bytes=-10", 100), Ranged::Part(90..100));
        assert_eq!(byte_range("bytes=-500", 100), Ranged::Part(0..100));
        assert_eq!(byte_range("bytes=50-500", 100), Ranged::Part(50..100));
        assert_eq!(byte_range("bytes=100-", 100), Ranged::Unsatisfiable);
        assert_eq!(byte_range("bytes=-0", 100), Ranged::Unsatisfiable);
        assert_eq!(byte_range("bytes=0-1,5-6", 100), Ranged::Whole);
        assert_eq!(byte_range("items=0-1", 100), Ranged::Whole);
        assert_eq!(byte_range("bytes=9-3", 100), Ranged::Whole);
        assert_eq!(byte_range("bytes=x-3", 100), Ranged::Whole);
        assert_eq!(byte_range("bytes=+1-3", 100), Ranged::Whole);
    }
}
