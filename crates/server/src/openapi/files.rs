//! File fields in the document: the value a record holds (a stored name, or a list of them
//! with `multiple`) and each model's `multipart/form-data` body.

use plinth_core::ModelDef;
use plinth_core::schema::file::FILE_NAME_MAX;
use plinth_core::schema::{FieldDef, FieldType, FileRules};
use serde_json::{Map, Value, json};

/// A file field's value: what a record holds and a JSON write may send.
pub(super) fn value_schema(f: &FieldDef, rules: &FileRules) -> Value {
    let name = json!({
        "type": "string", "pattern": "^[a-z0-9_-][a-z0-9._-]*$", "maxLength": FILE_NAME_MAX
    });
    let types = if rules.mime_types.is_empty() {
        String::new()
    } else {
        format!(", of type {}", rules.mime_types.join(", "))
    };
    let description = format!(
        "stored file name{} (download: `files/{}/{{name}}` under the record); upload with \
         multipart/form-data, at most {} bytes each{types}",
        if rules.multiple { "s" } else { "" },
        f.name(),
        rules.max_size,
    );
    if rules.multiple {
        json!({"type": "array", "items": name, "maxItems": rules.max_files,
               "description": description})
    } else {
        let mut schema = name;
        schema["description"] = Value::String(description);
        schema
    }
}

/// A model's upload body: `data` (the JSON of the other fields) and one binary part per
/// file field.
pub(super) fn upload(model: &ModelDef) -> Value {
    let mut properties = Map::new();
    properties.insert(
        "data".to_owned(),
        json!({"type": "string", "contentMediaType": "application/json",
               "description": "the record's other fields, as the JSON body would hold them"}),
    );
    for f in model.fields() {
        if let FieldType::File(rules) = f.ty() {
            let part = json!({"type": "string", "format": "binary"});
            let schema = if rules.multiple {
                json!({"type": "array", "items": part, "maxItems": rules.max_files})
            } else {
                part
            };
            properties.insert(f.name().to_string(), schema);
        }
    }
    json!({
        "type": "object",
        "description": "A write with files: `data` holds the other fields as JSON; each file \
                        part is named by its field.",
        "properties": properties,
    })
}

/// Whether `model` declares a file field (else its operations take no multipart body and
/// it has no download path).
pub(super) fn has_files(model: &ModelDef) -> bool {
    model
        .fields()
        .iter()
        .any(|f| matches!(f.ty(), FieldType::File(_)))
}
