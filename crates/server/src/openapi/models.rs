//! Each declared model in the document: the record routes are documented once, as template
//! paths under `/api/v1/{model}`; here each becomes one path per declared model, with the
//! model's record, input and patch schemas, its list filters (`plinth_core::query`'s
//! grammar: operators by field type) and its sort keys.

use plinth_core::format::TextFormat;
use plinth_core::schema::{
    FieldDef, FieldType, ItemKind, Unique, UniqueAmong, ValueKind, kind_name,
};
use plinth_core::{ModelDef, QueryLimits, ReadScope, Schema, Status};
use serde_json::{Map, Value, json};

/// The placeholder shapes of the template paths; a model's own are `{placeholder}.{model}`.
const PLACEHOLDERS: [&str; 4] = ["Record", "Shaped", "RecordInput", "RecordPatch"];

/// Most values an `in` filter takes (`plinth_core::query`).
const MAX_IN_VALUES: u32 = 100;

/// Replaces the template paths by each model's, and the placeholder shapes by its schemas.
pub(super) fn expand(doc: &mut Value, schema: &Schema, limits: &QueryLimits) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    let templates: Vec<(String, Value)> = paths
        .keys()
        .filter(|k| k.contains("{model}"))
        .cloned()
        .collect::<Vec<_>>()
        .into_iter()
        .filter_map(|k| paths.remove(&k).map(|v| (k, v)))
        .collect();
    for model in schema.models() {
        let name = model.name().as_str();
        for (template, item) in &templates {
            let mut item = item.clone();
            for (_, op) in item.as_object_mut().into_iter().flatten() {
                if template == "/api/v1/{model}" && op["operationId"] == "list_records" {
                    list_parameters(op, model, limits);
                }
                let params = op.get_mut("parameters").and_then(Value::as_array_mut);
                for p in params.into_iter().flatten() {
                    if p["name"] == "filter" {
                        p["schema"]["maxLength"] = json!(limits.filter_max_chars);
                    }
                }
                operation(op, model);
            }
            paths.insert(template.replace("{model}", name), item);
        }
    }
    let schemas = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut);
    if let Some(schemas) = schemas {
        for placeholder in PLACEHOLDERS {
            schemas.remove(placeholder);
        }
        for model in schema.models() {
            let name = model.name().as_str();
            schemas.insert(format!("Record.{name}"), record(model));
            schemas.insert(format!("Shaped.{name}"), shaped(model));
            schemas.insert(format!("RecordInput.{name}"), input(model, false));
            schemas.insert(format!("RecordPatch.{name}"), input(model, true));
        }
    }
}

/// One template operation made the model's: its own tag, id and shapes, no `model`
/// parameter, and no guest where the model refuses guests.
fn operation(op: &mut Value, model: &ModelDef) {
    let name = model.name().as_str();
    if let Some(id) = op["operationId"].as_str() {
        op["operationId"] = Value::String(format!("{id}.{name}"));
    }
    op["tags"] = json!([name]);
    if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        params.retain(|p| !(p["in"] == "path" && p["name"] == "model"));
    }
    let policy = model.policy();
    if (!policy.guest_read || policy.user_read == ReadScope::Own)
        && let Some(security) = op.get_mut("security").and_then(Value::as_array_mut)
    {
        security.retain(|s| s.as_object().is_some_and(|o| !o.is_empty()));
    }
    rename_refs(op, name);
}

fn rename_refs(v: &mut Value, model: &str) {
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if k == "$ref"
                    && let Some(r) = v.as_str()
                    && let Some(to) = r
                        .strip_prefix("#/components/schemas/")
                        .filter(|name| PLACEHOLDERS.contains(name))
                {
                    *v = Value::String(format!("#/components/schemas/{to}.{model}"));
                } else {
                    rename_refs(v, model);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rename_refs(v, model)),
        _ => {}
    }
}

/// A record as answered: base fields, then the declared ones (null when unset; constraints
/// are those of writes, as a declaration may have changed since a value was written).
fn record(model: &ModelDef) -> Value {
    let statuses: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, schema) in [
        ("id", json!({"type": "string", "format": "uuid"})),
        ("name", json!({"type": "string"})),
        ("status", json!({"type": "string", "enum": statuses})),
        (
            "created_at",
            json!({"type": "string", "format": "date-time"}),
        ),
        (
            "updated_at",
            json!({"type": "string", "format": "date-time"}),
        ),
        (
            "owner_id",
            json!({"type": ["string", "null"], "format": "uuid",
                   "description": "the account that created it"}),
        ),
        ("version", json!({"type": "integer", "minimum": 1})),
    ] {
        properties.insert(name.to_owned(), schema);
        required.push(name.to_owned());
    }
    for f in model.fields() {
        let mut schema = nullable(value_schema(f));
        notes(&mut schema, f);
        properties.insert(f.name().to_string(), schema);
        if !f.admin_only() {
            required.push(f.name().to_string());
        }
    }
    json!({
        "type": "object",
        "description": format!("A record of model `{}`.", model.name()),
        "required": required,
        "properties": properties,
        "additionalProperties": false
    })
}

/// A record as a list or a read answers it: [`record`]'s keys, any of which `fields` may
/// leave out, and each reference either its id or, expanded, the record it names.
fn shaped(model: &ModelDef) -> Value {
    let mut schema = record(model);
    let Some(obj) = schema.as_object_mut() else {
        return schema;
    };
    obj.remove("required");
    obj.insert(
        "description".to_owned(),
        json!(format!(
            "A record of model `{}`: every key of `Record.{0}` unless `fields` names fewer; a \
             reference named in `expand` holds the record it names when the caller may read it.",
            model.name()
        )),
    );
    if let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) {
        for f in model.fields() {
            if let FieldType::Reference { model: target } = f.ty()
                && let Some(id) = props.remove(f.name().as_str())
            {
                let inline = json!({"$ref": format!("#/components/schemas/Shaped.{target}")});
                props.insert(f.name().to_string(), json!({"anyOf": [id, inline]}));
            }
        }
    }
    schema
}

/// A create or PUT body (`patch`: a PATCH body, every key optional, `null` clearing an
/// optional field).
fn input(model: &ModelDef, patch: bool) -> Value {
    let mut properties = Map::new();
    properties.insert(
        "name".to_owned(),
        json!({"type": "string", "minLength": 1,
               "maxLength": plinth_core::input::NAME_MAX_CHARS}),
    );
    properties.insert(
        "status".to_owned(),
        json!({"type": "string", "enum": ["active", "inactive"], "default": "active"}),
    );
    let mut required = if patch {
        Vec::new()
    } else {
        vec!["name".to_owned()]
    };
    for f in model.fields() {
        let mut schema = constrained(f);
        if !f.required() {
            schema = nullable(schema);
        } else if !patch {
            required.push(f.name().to_string());
        }
        notes(&mut schema, f);
        properties.insert(f.name().to_string(), schema);
    }
    let what = if patch {
        "Changes to a record (PATCH): only the keys sent change; `null` clears an optional field."
    } else {
        "A record's client-settable values (create, PUT); optional fields left out are null."
    };
    json!({
        "type": "object",
        "description": what,
        "required": required,
        "properties": properties,
        "additionalProperties": false
    })
}

/// A field's type, without its constraints.
fn value_schema(f: &FieldDef) -> Value {
    match f.ty() {
        FieldType::Text {
            format: Some(TextFormat::Email),
            ..
        } => json!({"type": "string", "format": "email"}),
        FieldType::Text {
            format: Some(TextFormat::Url),
            ..
        } => json!({"type": "string", "format": "uri"}),
        FieldType::Text { .. } => json!({"type": "string"}),
        FieldType::Integer { .. } => json!({"type": "integer", "format": "int64"}),
        FieldType::Float { .. } => json!({"type": "number", "format": "double"}),
        FieldType::Boolean => json!({"type": "boolean"}),
        FieldType::Datetime => json!({"type": "string", "format": "date-time"}),
        FieldType::Enum { values } => json!({"type": "string", "enum": values}),
        FieldType::Json => json!({}),
        FieldType::Reference { model } => json!({
            "type": "string", "format": "uuid",
            "description": format!("the id of a `{model}` record")
        }),
        FieldType::Date { .. } => json!({"type": "string", "format": "date"}),
        FieldType::Decimal { scale, .. } => json!({
            "type": "string",
            "pattern": decimal_pattern(*scale),
            "description": format!("an exact decimal with at most {scale} decimal places, as a string")
        }),
        FieldType::Array { items, .. } => json!({"type": "array", "items": item_schema(*items)}),
    }
}

/// The text of a decimal at `scale`: digits, then at most `scale` digits after a point.
fn decimal_pattern(scale: u8) -> String {
    match scale {
        0 => "^-?[0-9]+$".to_owned(),
        s => format!("^-?[0-9]+(\\.[0-9]{{1,{s}}})?$"),
    }
}

/// One item of an array field.
fn item_schema(items: ItemKind) -> Value {
    match items {
        ItemKind::String => json!({"type": "string"}),
        ItemKind::Integer => json!({"type": "integer", "format": "int64"}),
    }
}

/// A field's type with the constraints writes are checked against.
fn constrained(f: &FieldDef) -> Value {
    let mut schema = value_schema(f);
    let Some(obj) = schema.as_object_mut() else {
        return schema;
    };
    match f.ty() {
        FieldType::Text {
            min_length,
            max_length,
            pattern,
            ..
        } => {
            obj.insert("minLength".to_owned(), json!(min_length));
            obj.insert("maxLength".to_owned(), json!(max_length));
            if let Some(p) = pattern {
                obj.insert("pattern".to_owned(), json!(p.as_str()));
            }
        }
        FieldType::Integer { min, max } => {
            if let Some(m) = min {
                obj.insert("minimum".to_owned(), json!(m));
            }
            if let Some(m) = max {
                obj.insert("maximum".to_owned(), json!(m));
            }
        }
        FieldType::Float { min, max } => {
            if let Some(m) = min {
                obj.insert("minimum".to_owned(), json!(m));
            }
            if let Some(m) = max {
                obj.insert("maximum".to_owned(), json!(m));
            }
        }
        FieldType::Array {
            items,
            max_items,
            max_length,
        } => {
            obj.insert("maxItems".to_owned(), json!(max_items));
            if *items == ItemKind::String {
                obj.insert(
                    "items".to_owned(),
                    json!({"type": "string", "maxLength": max_length}),
                );
            }
        }
        _ => {}
    }
    schema
}

/// `schema`, or null.
fn nullable(mut schema: Value) -> Value {
    let Some(obj) = schema.as_object_mut() else {
        return schema;
    };
    if let Some(Value::Array(values)) = obj.get_mut("enum") {
        values.push(Value::Null);
    }
    if let Some(Value::String(t)) = obj.get("type") {
        let t = t.clone();
        obj.insert("type".to_owned(), json!([t, "null"]));
    }
    schema
}

/// The declaration's flags, as `x-plinth-*` keys and in words.
fn notes(schema: &mut Value, f: &FieldDef) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    let mut said = vec![format!("`{}`", kind_name(f.kind()))];
    obj.insert("x-plinth-type".to_owned(), json!(kind_name(f.kind())));
    if f.pii() {
        obj.insert("x-plinth-pii".to_owned(), json!(true));
        said.push(
            "pii: sealed at rest, redacted in logs and audit, filtered by equality only".to_owned(),
        );
    }
    match f.unique() {
        Unique::No => {}
        Unique::Global => {
            obj.insert("x-plinth-unique".to_owned(), json!(true));
            said.push("unique".to_owned());
        }
        Unique::PerOwner => {
            obj.insert("x-plinth-unique".to_owned(), json!("owner"));
            said.push("unique per owner".to_owned());
        }
    }
    if f.unique().is_some() && f.unique_among() == UniqueAmong::Live {
        obj.insert("x-plinth-unique-among".to_owned(), json!("live"));
        said.push("among live records (a deleted record's value may be reused)".to_owned());
    }
    if f.indexed() {
        obj.insert("x-plinth-indexed".to_owned(), json!(true));
    }
    if f.admin_only() {
        obj.insert("x-plinth-admin-only".to_owned(), json!(true));
        said.push("admins only: unknown to everyone else".to_owned());
    }
    let before = obj
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let text = match before {
        Some(d) => format!("{d}; {}", said.join("; ")),
        None => said.join("; "),
    };
    obj.insert("description".to_owned(), Value::String(text));
}

/// A column a list may filter on: its name, value schema, storage class, and whether pii.
struct Filterable {
    name: String,
    value: Value,
    kind: ValueKind,
    pii: bool,
    admin_only: bool,
}

fn filterable(model: &ModelDef) -> Vec<Filterable> {
    let statuses: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
    let base = |name: &str, value: Value, kind| Filterable {
        name: name.to_owned(),
        value,
        kind,
        pii: false,
        admin_only: false,
    };
    let mut out = vec![
        base(
            "id",
            json!({"type": "string", "format": "uuid"}),
            ValueKind::Uuid,
        ),
        base("name", json!({"type": "string"}), ValueKind::Text),
        base(
            "status",
            json!({"type": "string", "enum": statuses}),
            ValueKind::Text,
        ),
        base(
            "created_at",
            json!({"type": "string", "format": "date-time"}),
            ValueKind::Datetime,
        ),
        base(
            "updated_at",
            json!({"type": "string", "format": "date-time"}),
            ValueKind::Datetime,
        ),
        base(
            "owner_id",
            json!({"type": "string", "format": "uuid"}),
            ValueKind::Uuid,
        ),
        base("version", json!({"type": "integer"}), ValueKind::Integer),
    ];
    for f in model.fields() {
        if f.value_kind() == ValueKind::Json {
            continue;
        }
        let mut value = match f.ty() {
            // A filter names one item of the list.
            FieldType::Array { items, .. } => item_schema(*items),
            _ => value_schema(f),
        };
        // An email or url filter value is compared, not checked: any text will do.
        if let Some(o) = value.as_object_mut() {
            o.remove("description");
            if o.get("format").is_some_and(|f| f == "email" || f == "uri") {
                o.remove("format");
            }
        }
        out.push(Filterable {
            name: f.name().to_string(),
            value,
            kind: f.value_kind(),
            pii: f.pii(),
            admin_only: f.admin_only(),
        });
    }
    out
}

/// The operators `plinth_core::query` accepts on a column.
fn operators(c: &Filterable) -> &'static [&'static str] {
    if c.pii {
        return &["eq", "ne", "in"];
    }
    match c.kind {
        ValueKind::Text => &["eq", "ne", "lt", "lte", "gt", "gte", "like", "in"],
        ValueKind::Integer | ValueKind::Float | ValueKind::Datetime => {
            &["eq", "ne", "lt", "lte", "gt", "gte", "in"]
        }
        ValueKind::Boolean | ValueKind::Uuid => &["eq", "ne", "in"],
        ValueKind::Date | ValueKind::Decimal(_) => &["eq", "ne", "lt", "lte", "gt", "gte", "in"],
        ValueKind::Array(_) => &["has", "has_any"],
        ValueKind::Json => &[],
    }
}

/// The list's sort keys and a query parameter per column and operator.
fn list_parameters(op: &mut Value, model: &ModelDef, limits: &QueryLimits) {
    let mut keys = vec!["created_at", "updated_at", "name"];
    keys.extend(
        model
            .fields()
            .iter()
            .filter(|f| f.sortable() && !f.pii())
            .map(|f| f.name().as_str()),
    );
    let sort: Vec<String> = keys
        .iter()
        .flat_map(|k| [(*k).to_owned(), format!("-{k}")])
        .collect();
    let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
        return;
    };
    for p in params.iter_mut() {
        if p["name"] == "sort" {
            p["schema"] = json!({"type": "string", "enum": sort});
        }
    }
    for c in filterable(model) {
        for op in operators(&c) {
            let mut value = c.value.clone();
            if c.kind == ValueKind::Text && value.get("enum").is_none() {
                value["maxLength"] = json!(limits.value_max_chars);
            }
            let (name, schema, explode) = match *op {
                "eq" => (c.name.clone(), value, None),
                "like" => (
                    format!("{}[like]", c.name),
                    json!({"type": "string", "maxLength": limits.pattern_max_chars}),
                    None,
                ),
                "in" | "has_any" => (
                    format!("{}[{op}]", c.name),
                    json!({"type": "array", "items": value, "minItems": 1,
                           "maxItems": MAX_IN_VALUES}),
                    Some(false),
                ),
                other => (format!("{}[{other}]", c.name), value, None),
            };
            let mut description = match *op {
                "like" => format!(
                    "`{}` matches this pattern, case-insensitively; `*` stands for any run of characters",
                    c.name
                ),
                "in" => format!("`{}` is one of these, comma-separated", c.name),
                other => format!("`{}` {other} this value", c.name),
            };
            if c.admin_only {
                description.push_str(" (admins only)");
            }
            let mut param = json!({
                "name": name, "in": "query", "required": false,
                "description": description, "schema": schema
            });
            if let Some(explode) = explode {
                param["style"] = json!("form");
                param["explode"] = json!(explode);
            }
            params.push(param);
        }
    }
}
