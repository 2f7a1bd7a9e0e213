//! One typed method per endpoint, plus `_resp` (whole answer), `_ok` (must succeed) and
//! `_fail` (must fail) variants, and read-backs used to check state after a write.

use super::{Resp, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::Value;

impl TestApp {
    // ---- create ----

    /// `POST /api/v1/{model}` with a JSON body.
    pub(crate) async fn create_resp(&self, model: &str, body: &Value) -> Resp {
        self.send(
            self.request(Method::POST, &format!("/api/v1/{model}"))
                .json(body),
        )
        .await
    }

    /// `POST /api/v1/{model}`.
    pub(crate) async fn create(&self, model: &str, body: &Value) -> (StatusCode, Value) {
        self.create_resp(model, body).await.pair()
    }

    /// `POST /api/v1/{model}` that must succeed; returns the record.
    pub(crate) async fn create_ok(&self, model: &str, body: &Value) -> Value {
        let r = self.create_resp(model, body).await;
        r.data(StatusCode::CREATED).clone()
    }

    /// `POST /api/v1/{model}` that must fail; returns the answer.
    pub(crate) async fn create_fail(&self, model: &str, body: &Value) -> Resp {
        let r = self.create_resp(model, body).await;
        assert!(
            !r.status.is_success(),
            "create of {body} unexpectedly succeeded: {}",
            r.body
        );
        r
    }

    /// `POST /api/v1/{model}` with an `Idempotency-Key`.
    pub(crate) async fn create_idempotent(&self, model: &str, key: &str, body: &Value) -> Resp {
        self.send(
            self.request(Method::POST, &format!("/api/v1/{model}"))
                .header("idempotency-key", key)
                .json(body),
        )
        .await
    }

    // ---- read ----

    /// `GET /api/v1/{model}/{id}`, optionally with `If-None-Match`.
    pub(crate) async fn get_resp(
        &self,
        model: &str,
        id: &str,
        if_none_match: Option<&str>,
    ) -> Resp {
        let mut req = self.request(Method::GET, &format!("/api/v1/{model}/{id}"));
        if let Some(tag) = if_none_match {
            req = req.header("if-none-match", tag);
        }
        self.send(req).await
    }

    /// `GET /api/v1/{model}/{id}`.
    pub(crate) async fn get(&self, model: &str, id: &str) -> (StatusCode, Value) {
        self.get_resp(model, id, None).await.pair()
    }

    /// `GET /api/v1/{model}/{id}` that must succeed; returns the record.
    pub(crate) async fn get_ok(&self, model: &str, id: &str) -> Value {
        let r = self.get_resp(model, id, None).await;
        r.data(StatusCode::OK).clone()
    }

    // ---- list ----

    /// `GET /api/v1/{model}?{query}` with the pairs URL-encoded.
    pub(crate) async fn list_resp(&self, model: &str, query: &[(&str, &str)]) -> Resp {
        let qs = serde_urlencoded::to_string(query).expect("encode the query");
        self.list_raw(model, &qs).await
    }

    /// `GET /api/v1/{model}?{raw}` with the query string as given.
    pub(crate) async fn list_raw(&self, model: &str, raw: &str) -> Resp {
        let path = if raw.is_empty() {
            format!("/api/v1/{model}")
        } else {
            format!("/api/v1/{model}?{raw}")
        };
        self.get_path(&path).await
    }

    /// `GET /api/v1/{model}?{query}`.
    pub(crate) async fn list(&self, model: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
        self.list_resp(model, query).await.pair()
    }

    /// Every record a query returns, following `next_cursor` to the end (limit 200). Panics
    /// rather than hangs when the cursors never end.
    pub(crate) async fn list_all(&self, model: &str, query: &[(&str, &str)]) -> Vec<Value> {
        const MAX_PAGES: usize = 500;
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut q: Vec<(&str, &str)> = query.to_vec();
            q.push(("limit", "200"));
            if let Some(c) = &cursor {
                q.push(("cursor", c));
            }
            let r = self.list_resp(model, &q).await;
            let data = r.data(StatusCode::OK).as_array().expect("a list").clone();
            out.extend(data);
            match r.body["page"]["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
        panic!(
            "GET /api/v1/{model} {query:?}: still a next page after {MAX_PAGES} pages ({} records)",
            out.len()
        );
    }

    /// The ids of every record a query returns.
    pub(crate) async fn ids(&self, model: &str, query: &[(&str, &str)]) -> Vec<String> {
        self.list_all(model, query)
            .await
            .iter()
            .map(|r| r["id"].as_str().expect("an id").to_owned())
            .collect()
    }

    // ---- update ----

    async fn write(
        &self,
        method: Method,
        model: &str,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Resp {
        let mut req = self
            .request(method, &format!("/api/v1/{model}/{id}"))
            .json(body);
        if let Some(tag) = if_match {
            req = req.header("if-match", tag);
        }
        self.send(req).await
    }

    /// `PUT /api/v1/{model}/{id}`, optionally with `If-Match`.
    pub(crate) async fn put_resp(
        &self,
        model: &str,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Resp {
        self.write(Method::PUT, model, id, body, if_match).await
    }

    /// `PUT /api/v1/{model}/{id}`.
    pub(crate) async fn put(
        &self,
        model: &str,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> (StatusCode, Value) {
        self.put_resp(model, id, body, if_match).await.pair()
    }

    /// `PATCH /api/v1/{model}/{id}`, optionally with `If-Match`.
    pub(crate) async fn patch_resp(
        &self,
        model: &str,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Resp {
        self.write(Method::PATCH, model, id, body, if_match).await
    }

    /// `PATCH /api/v1/{model}/{id}`.
    pub(crate) async fn patch(
        &self,
        model: &str,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> (StatusCode, Value) {
        self.patch_resp(model, id, body, if_match).await.pair()
    }

    // ---- delete, purge, restore ----

    /// `DELETE /api/v1/{model}/{id}{query}` (`query` empty or starting with `?`).
    pub(crate) async fn delete_resp(
        &self,
        model: &str,
        id: &str,
        query: &str,
        if_match: Option<&str>,
    ) -> Resp {
        let mut req = self.request(Method::DELETE, &format!("/api/v1/{model}/{id}{query}"));
        if let Some(tag) = if_match {
            req = req.header("if-match", tag);
        }
        self.send(req).await
    }

    /// `DELETE /api/v1/{model}/{id}`: soft delete.
    pub(crate) async fn delete(&self, model: &str, id: &str) -> (StatusCode, Value) {
        self.delete_resp(model, id, "", None).await.pair()
    }

    /// `DELETE /api/v1/{model}/{id}?purge=true`.
    pub(crate) async fn purge_resp(&self, model: &str, id: &str) -> Resp {
        self.delete_resp(model, id, "?purge=true", None).await
    }

    /// `POST /api/v1/{model}/{id}/restore`.
    pub(crate) async fn restore_resp(&self, model: &str, id: &str) -> Resp {
        self.send(self.request(Method::POST, &format!("/api/v1/{model}/{id}/restore")))
            .await
    }

    // ---- state checks ----

    /// The current version of a record, read back through the API.
    pub(crate) async fn version_of(&self, model: &str, id: &str) -> i64 {
        self.get_ok(model, id).await["version"]
            .as_i64()
            .expect("an integer version")
    }

    /// How many records of a model exist, whatever their status.
    pub(crate) async fn count_all(&self, model: &str) -> usize {
        let mut n = 0;
        for status in ["active", "inactive", "deleted"] {
            n += self.ids(model, &[("status", status)]).await.len();
        }
        n
    }
}
