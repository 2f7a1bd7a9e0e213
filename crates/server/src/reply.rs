//! `Reply`: every success answer, as `ApiError` is every failure. The success envelope
//! `{"success": true, "data": …, "page"?: {"next_cursor", "limit", "total"?}}` is written here and
//! nowhere else, along with the `ETag`, `Location` and `Idempotent-Replayed` headers.

use crate::error::ApiError;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Where a list stops, and how to go on.
#[derive(Debug, Serialize)]
pub(crate) struct Page {
    /// Resumes after the last item; `None` on the last page.
    pub(crate) next_cursor: Option<String>,
    /// The page size asked for.
    pub(crate) limit: u32,
    /// With `count=true`: how many records match, over every page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) total: Option<u64>,
}

#[derive(Serialize)]
struct Envelope<'a, T> {
    success: bool,
    data: &'a T,
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<&'a Page>,
}

/// The request headers that carry a credential: what an answer depends on.
pub(crate) const VARY_CREDENTIALS: &str = "Authorization, X-API-Key";

static IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// A success answer: status, the enveloped body (none for `204`/`304`), and headers.
#[derive(Debug)]
pub(crate) struct Reply {
    status: StatusCode,
    body: Option<Vec<u8>>,
    /// The entity tag, quotes included.
    etag: Option<String>,
    location: Option<String>,
    replayed: bool,
    last_modified: Option<HeaderValue>,
    private: bool,
}

impl Reply {
    /// `200` with `data`.
    pub(crate) fn data<T: Serialize>(data: &T) -> Result<Self, ApiError> {
        Self::enveloped(data, None)
    }

    /// `200` with one page of a list.
    pub(crate) fn page<T: Serialize>(data: &T, page: Page) -> Result<Self, ApiError> {
        Self::enveloped(data, Some(&page))
    }

    /// A status without a body (`204 No Content`, `304 Not Modified`).
    pub(crate) fn empty(status: StatusCode) -> Self {
        Self {
            status,
            body: None,
            etag: None,
            location: None,
            replayed: false,
            last_modified: None,
            private: false,
        }
    }

    fn enveloped<T: Serialize>(data: &T, page: Option<&Page>) -> Result<Self, ApiError> {
        let body = serde_json::to_vec(&Envelope {
            success: true,
            data,
            page,
        })
        .map_err(ApiError::internal)?;
        Ok(Self {
            body: Some(body),
            ..Self::empty(StatusCode::OK)
        })
    }

    /// Another status (`201 Created`).
    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// `ETag` for a version.
    pub(crate) fn with_etag(self, version: i64) -> Self {
        self.with_entity_tag(etag(version))
    }

    /// `ETag`: `tag`, a strong entity tag with its quotes.
    pub(crate) fn with_entity_tag(mut self, tag: String) -> Self {
        self.etag = Some(tag);
        self
    }

    /// `Location` of what was created.
    pub(crate) fn with_location(mut self, path: String) -> Self {
        self.location = Some(path);
        self
    }

    /// `Last-Modified`.
    pub(crate) fn with_last_modified(mut self, at: Option<HeaderValue>) -> Self {
        self.last_modified = at;
        self
    }

    /// Says how caches may keep the answer, which depends on who asks: only a private
    /// cache, revalidated before each use (`private, no-cache`, with `Vary` on the
    /// credential headers).
    pub(crate) fn private(mut self) -> Self {
        self.private = true;
        self
    }

    /// `Idempotent-Replayed: true` when the answer repeats an earlier write's.
    pub(crate) fn replayed(mut self, replayed: bool) -> Self {
        self.replayed = replayed;
        self
    }
}

/// The entity tag of a version: a strong tag, `"N"`.
pub(crate) fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let has_body = self.body.is_some();
        let mut res = Response::new(axum::body::Body::from(self.body.unwrap_or_default()));
        *res.status_mut() = self.status;
        let headers = res.headers_mut();
        // Room for every header an answer gets here and in the middleware, so the map is
        // allocated once rather than grown and rehashed.
        headers.reserve(12);
        if has_body {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        if let Some(v) = self.etag.and_then(|t| HeaderValue::from_str(&t).ok()) {
            headers.insert(header::ETAG, v);
        }
        if let Some(v) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(header::LOCATION, v);
        }
        if let Some(v) = self.last_modified {
            headers.insert(header::LAST_MODIFIED, v);
        }
        if self.private {
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-cache"),
            );
            headers.insert(header::VARY, HeaderValue::from_static(VARY_CREDENTIALS));
        }
        if self.replayed {
            headers.insert(
                IDEMPOTENT_REPLAYED.clone(),
                HeaderValue::from_static("true"),
            );
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parts(reply: Reply) -> (StatusCode, Vec<(String, String)>) {
        let res = reply.into_response();
        let headers = res
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_owned()))
            .collect();
        (res.status(), headers)
    }

    #[test]
    fn the_envelope_and_headers_are_written_in_one_order() {
        let page = Reply::page(
            &json!([{"id": 1}]),
            Page {
                next_cursor: None,
                limit: 20,
                total: None,
            },
        )
        .expect("page");
        assert_eq!(
            page.body.as_deref(),
            Some(
                &br#"{"success":true,"data":[{"id":1}],"page":{"next_cursor":null,"limit":20}}"#[..]
            )
        );
        let created = Reply::data(&json!({"id": 1}))
            .expect("data")
            .with_status(StatusCode::CREATED)
            .with_etag(3)
            .with_location("/api/v1/resource/1".to_owned())
            .replayed(true);
        assert_eq!(
            created.body.as_deref(),
            Some(&br#"{"success":true,"data":{"id":1}}"#[..])
        );
        let (status, headers) = parts(created);
        assert_eq!(status, StatusCode::CREATED);
        let names: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["content-type", "etag", "location", "idempotent-replayed"]
        );
        assert_eq!(headers[0].1, "application/json");
        assert_eq!(headers[1].1, "\"3\"");
        let (status, headers) = parts(Reply::empty(StatusCode::NOT_MODIFIED).with_etag(4));
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert_eq!(headers, [("etag".to_owned(), "\"4\"".to_owned())]);
        let (status, headers) = parts(Reply::empty(StatusCode::NO_CONTENT));
        assert_eq!((status, headers.len()), (StatusCode::NO_CONTENT, 0));
    }
}
