//! Checks a JSON answer against the OpenAPI document's schema for it: the parts of JSON
//! Schema the document uses, enough to tell an answer that breaks the contract.

use reqwest::StatusCode;
use serde_json::{Value, json};

/// `schema` with `$ref`s followed (one level at a time, as the validator walks).
pub(crate) fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling $ref {r}")),
        None => schema,
    }
}

/// The parts of JSON Schema the document uses: `$ref`, `type` (one or a list), `const`,
/// `enum`, `required`, `properties`, `additionalProperties: false`, `items`. Returns what
/// does not hold, by JSON pointer.
pub(crate) fn violations(doc: &Value, schema: &Value, v: &Value, at: &str) -> Vec<String> {
    let schema = resolve(doc, schema);
    let mut out = Vec::new();
    let type_ok = |t: &str| match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => true,
    };
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() && !types.iter().any(|t| type_ok(t)) {
        return vec![format!("{at}: {v} is not {types:?}")];
    }
    if let Some(c) = schema.get("const")
        && c != v
    {
        out.push(format!("{at}: {v} is not {c}"));
    }
    if let Some(values) = schema["enum"].as_array()
        && !values.contains(v)
    {
        out.push(format!("{at}: {v} is not one of {values:?}"));
    }
    if let Some(obj) = v.as_object() {
        for key in schema["required"].as_array().into_iter().flatten() {
            let key = key.as_str().unwrap_or_default();
            if !obj.contains_key(key) {
                out.push(format!("{at}: lacks {key}"));
            }
        }
        let props = schema["properties"].as_object();
        for (key, value) in obj {
            match props.and_then(|p| p.get(key)) {
                Some(s) => out.extend(violations(doc, s, value, &format!("{at}/{key}"))),
                None if schema["additionalProperties"] == json!(false) => {
                    out.push(format!("{at}: {key} is not in the schema"));
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(values)) = (schema.get("items"), v.as_array()) {
        for (i, value) in values.iter().enumerate() {
            out.extend(violations(doc, items, value, &format!("{at}/{i}")));
        }
    }
    out
}

/// Checks a real answer against the document's response for `method path` and its status.
pub(crate) fn assert_conforms(
    doc: &Value,
    method: &str,
    path: &str,
    status: StatusCode,
    body: &Value,
) {
    let response = &doc["paths"][path][method]["responses"][status.as_str()];
    assert!(
        response.is_object(),
        "{method} {path} answered {status}, which the document does not list"
    );
    let schema = &response["content"]["application/json"]["schema"];
    let problems = violations(doc, schema, body, "");
    assert!(
        problems.is_empty(),
        "{method} {path} {status}: {problems:?} in {body}"
    );
}
