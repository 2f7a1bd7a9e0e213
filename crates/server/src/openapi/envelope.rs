//! What every operation shares, written into the document once: the success envelope
//! around each answer's body (`reply::Reply` is its only writer), the error envelope and
//! codes of each error status (`error::status_of` is the table), the errors any request
//! can meet, and the security schemes (`extract::Caller` reads them).

use crate::error::status_of;
use plinth_core::ErrorCode;
use serde_json::{Map, Value, json};

/// Every code, in `status_of`'s order.
const CODES: [ErrorCode; 15] = [
    ErrorCode::InvalidInput,
    ErrorCode::Unauthenticated,
    ErrorCode::Forbidden,
    ErrorCode::NotFound,
    ErrorCode::MethodNotAllowed,
    ErrorCode::Conflict,
    ErrorCode::PreconditionFailed,
    ErrorCode::PayloadTooLarge,
    ErrorCode::UnsupportedMediaType,
    ErrorCode::RequestTimeout,
    ErrorCode::UriTooLong,
    ErrorCode::HeadersTooLarge,
    ErrorCode::RateLimited,
    ErrorCode::Internal,
    ErrorCode::Unavailable,
];

/// Fails to compile when a code is added, until it is added to [`CODES`] too.
#[allow(dead_code, reason = "a compile-time check, never called")]
fn listed(code: ErrorCode) {
    match code {
        ErrorCode::InvalidInput
        | ErrorCode::Unauthenticated
        | ErrorCode::Forbidden
        | ErrorCode::NotFound
        | ErrorCode::MethodNotAllowed
        | ErrorCode::Conflict
        | ErrorCode::PreconditionFailed
        | ErrorCode::PayloadTooLarge
        | ErrorCode::UnsupportedMediaType
        | ErrorCode::RequestTimeout
        | ErrorCode::UriTooLong
        | ErrorCode::HeadersTooLarge
        | ErrorCode::RateLimited
        | ErrorCode::Internal
        | ErrorCode::Unavailable => {}
    }
}

/// Errors any request can get, from the middleware and limits before or around a handler.
const ANY_REQUEST: [(u16, &str); 4] = [
    (414, "the path and query are longer than the server accepts"),
    (431, "too many, or too large, header fields"),
    (
        500,
        "a fault in the server; the cause is logged, never sent",
    ),
    (
        503,
        "the database is unavailable, the request ran past the request timeout, or the \
         server is draining; see Retry-After",
    ),
];

/// Errors any request with a body can get, before its handler sees the body.
const WITH_BODY: [(u16, &str); 4] = [
    (400, "the body is not valid JSON"),
    (408, "the body did not arrive in time"),
    (413, "the body is larger than the server accepts"),
    (415, "the body is not sent as application/json"),
];

/// Statuses the HTTP parser (hyper) may answer before Plinth sees the request: with
/// Plinth's envelope under the parser's limits, with no body at all over them.
const BARE: [(u16, &str); 2] = [
    (
        414,
        "URI_TOO_LONG: the path and query are over 64,000 bytes; over 65,534, a bare 414 \
         from the HTTP parser, without a body",
    ),
    (
        431,
        "HEADERS_TOO_LARGE: more than 100 header fields or over 32 KiB of them; over 128 KiB \
         of request line and headers, a bare 431 from the HTTP parser, without a body",
    ),
];

const METHODS: [&str; 5] = ["get", "put", "post", "patch", "delete"];

/// Wraps bodies in the envelope, adds every error response and the shared components.
pub(super) fn finish(doc: &mut Value) {
    let mut statuses = Vec::new();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            for method in METHODS {
                if let Some(op) = item.get_mut(method) {
                    operation(op, &mut statuses);
                }
            }
        }
    }
    let components = doc
        .as_object_mut()
        .map(|d| d.entry("components").or_insert_with(|| json!({})));
    let Some(components) = components.and_then(Value::as_object_mut) else {
        return;
    };
    let schemas = components
        .entry("schemas")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    if let Some(schemas) = schemas {
        // Bodies are read field by field, refusing unknown keys, and answers are written
        // whole: no shape has room for keys it does not name.
        for schema in schemas.values_mut() {
            if schema["type"] == "object"
                && let Some(obj) = schema.as_object_mut()
            {
                obj.entry("additionalProperties")
                    .or_insert(Value::Bool(false));
            }
        }
        schemas.insert("Page".to_owned(), page_schema());
        schemas.insert("FieldError".to_owned(), field_error_schema());
        statuses.sort_unstable();
        statuses.dedup();
        for status in statuses {
            schemas.insert(format!("Error{status}"), error_schema(status));
        }
    }
    components.insert(
        "securitySchemes".to_owned(),
        json!({
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "`Authorization: Bearer <access token or API key>`: an access \
                                token from a login, or an API key."
            },
            "api_key": {
                "type": "apiKey",
                "in": "header",
                "name": "X-API-Key",
                "description": "`X-API-Key: <API key or access token>`; Authorization wins \
                                when both are sent."
            }
        }),
    );
}

fn operation(op: &mut Value, statuses: &mut Vec<u16>) {
    let params = op.get("parameters").and_then(Value::as_array);
    let paged = params.is_some_and(|ps| ps.iter().any(|p| p["name"] == "cursor"));
    let has_body = op.get("requestBody").is_some();
    let credential = op["responses"].get("401").is_some();
    for p in op
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if p["in"] == "path" && p["name"] == "id" {
            p["schema"] = json!({"type": "string", "format": "uuid"});
        }
        // A parameter is absent or text, never null (utoipa spells `Option` as nullable).
        if let Some(types) = p["schema"]["type"].as_array_mut() {
            types.retain(|t| t != "null");
            if let [only] = types.as_slice() {
                p["schema"]["type"] = only.clone();
            }
        }
    }
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    let mut extra: Vec<(u16, &str)> = ANY_REQUEST.to_vec();
    if has_body {
        extra.extend(WITH_BODY);
    }
    if credential {
        extra.push((429, "past a request limit; see Retry-After"));
    }
    for (status, description) in extra {
        responses
            .entry(status.to_string())
            .or_insert_with(|| json!({"description": description}));
    }
    for (status, response) in responses.iter_mut() {
        let Ok(status) = status.parse::<u16>() else {
            continue;
        };
        let Some(response) = response.as_object_mut() else {
            continue;
        };
        if let Some((_, bare)) = BARE.iter().find(|(s, _)| *s == status) {
            // hyper answers these itself past its own limits, without a body: the envelope
            // cannot be promised.
            response.insert("description".to_owned(), Value::String((*bare).to_owned()));
            response.remove("content");
        } else if status >= 400 {
            statuses.push(status);
            let codes: Vec<&str> = codes_of(status);
            let said = response
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let description = format!("{}: {said}", codes.join(", "));
            response.insert("description".to_owned(), Value::String(description));
            response.insert(
                "content".to_owned(),
                json!({"application/json": {
                    "schema": {"$ref": format!("#/components/schemas/Error{status}")}
                }}),
            );
        } else if let Some(schema) = response
            .get_mut("content")
            .and_then(|c| c.get_mut("application/json"))
            .and_then(|c| c.get_mut("schema"))
            .filter(|s| enveloped(s))
        {
            *schema = envelope(schema.take(), paged);
        }
        let headers = response
            .entry("headers")
            .or_insert_with(|| json!({}))
            .as_object_mut();
        if let Some(headers) = headers {
            headers.insert(
                "X-Request-Id".to_owned(),
                json!({"description": "the request's id, also in the log and in errors",
                       "schema": {"type": "string"}}),
            );
        }
    }
}

/// Whether a body is `Reply` data: a named shape or a list of them (the document itself,
/// and the page's files, are sent as they are).
fn enveloped(schema: &Value) -> bool {
    schema.get("$ref").is_some() || schema["items"].get("$ref").is_some()
}

fn envelope(data: Value, paged: bool) -> Value {
    let mut properties = Map::new();
    properties.insert("success".to_owned(), json!({"const": true}));
    properties.insert("data".to_owned(), data);
    let mut required = vec!["success", "data"];
    if paged {
        properties.insert(
            "page".to_owned(),
            json!({"$ref": "#/components/schemas/Page"}),
        );
        required.push("page");
    }
    json!({
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": false
    })
}

/// The wire codes answered with `status`.
fn codes_of(status: u16) -> Vec<&'static str> {
    CODES
        .iter()
        .filter(|c| status_of(**c).as_u16() == status)
        .map(|c| c.as_str())
        .collect()
}

fn error_schema(status: u16) -> Value {
    json!({
        "type": "object",
        "description": format!("The error envelope of a {status}."),
        "required": ["success", "error"],
        "additionalProperties": false,
        "properties": {
            "success": {"const": false},
            "error": {
                "type": "object",
                "required": ["code", "message", "request_id"],
                "additionalProperties": false,
                "properties": {
                    "code": {"type": "string", "enum": codes_of(status)},
                    "message": {"type": "string"},
                    "details": {
                        "type": "array",
                        "description": "One entry per field, parameter or header at fault.",
                        "items": {"$ref": "#/components/schemas/FieldError"}
                    },
                    "request_id": {"type": "string"}
                }
            }
        }
    })
}

fn field_error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["field", "reason"],
        "additionalProperties": false,
        "properties": {
            "field": {"type": "string", "description": "The field, parameter or header."},
            "reason": {"type": "string"}
        }
    })
}

fn page_schema() -> Value {
    json!({
        "type": "object",
        "description": "Where a list stops: `next_cursor` resumes after it (null on the last page).",
        "required": ["next_cursor", "limit"],
        "additionalProperties": false,
        "properties": {
            "next_cursor": {"type": ["string", "null"]},
            "limit": {"type": "integer", "minimum": 1, "maximum": plinth_core::query::MAX_LIMIT},
            "total": {"type": "integer", "minimum": 0,
                      "description": "with `count=true`: the matching records over every page"}
        }
    })
}
