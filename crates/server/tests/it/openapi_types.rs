//! The OpenAPI document describes the field types `date`, `decimal`, `array`, `email` and
//! `url`: their value schemas and constraints, `unique_among`, and the filters each takes
//! (`has` / `has_any` for arrays, with an item's schema).

use crate::helpers::{TestApp, decls};
use serde_json::{Value, json};

#[tokio::test]
async fn the_new_types_are_described_with_their_constraints_and_filters() {
    let app = TestApp::spawn_with(decls(json!([{"name": "book", "fields": [
        {"name": "price", "type": "decimal", "scale": 2, "indexed": true},
        {"name": "whole", "type": "decimal", "scale": 0},
        {"name": "published", "type": "date", "indexed": true},
        {"name": "tags", "type": "array", "items": "string", "max_items": 5, "max_length": 9},
        {"name": "sizes", "type": "array", "items": "integer"},
        {"name": "contact", "type": "email", "unique": true, "unique_among": "live"},
        {"name": "site", "type": "url"}
    ]}])))
    .await;
    let r = app.get_path("/api/v1/openapi.json").await;
    assert_eq!(r.status, reqwest::StatusCode::OK);
    let doc = r.body;
    let input = &doc["components"]["schemas"]["RecordInput.book"]["properties"];
    let ty = |f: &str| input[f]["type"].clone();
    assert_eq!(ty("price"), json!(["string", "null"]));
    assert_eq!(input["price"]["pattern"], "^-?[0-9]+(\\.[0-9]{1,2})?$");
    assert_eq!(input["whole"]["pattern"], "^-?[0-9]+$");
    assert_eq!(input["published"]["format"], "date");
    assert_eq!(ty("tags"), json!(["array", "null"]));
    assert_eq!(input["tags"]["maxItems"], 5);
    assert_eq!(
        input["tags"]["items"],
        json!({"type": "string", "maxLength": 9})
    );
    assert_eq!(input["sizes"]["items"]["type"], "integer");
    assert_eq!(input["contact"]["format"], "email");
    assert_eq!(input["contact"]["maxLength"], 254);
    assert_eq!(input["site"]["format"], "uri");
    let record = &doc["components"]["schemas"]["Record.book"]["properties"];
    assert_eq!(record["contact"]["x-plinth-unique-among"], "live");
    assert_eq!(record["price"]["x-plinth-type"], "decimal");

    let params: Vec<&Value> = doc["paths"]["/api/v1/book"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .collect();
    let param = |name: &str| params.iter().find(|p| p["name"] == name).copied();
    assert!(
        param("tags").is_none() && param("tags[eq]").is_none() && param("tags[like]").is_none()
    );
    assert_eq!(param("tags[has]").expect("has")["schema"]["type"], "string");
    let any = param("tags[has_any]").expect("has_any");
    assert_eq!(any["schema"]["type"], "array");
    assert_eq!(any["schema"]["maxItems"], 100);
    assert_eq!(
        param("sizes[has]").expect("has")["schema"]["type"],
        "integer"
    );
    assert!(param("price[lt]").is_some() && param("published[gte]").is_some());
    assert!(param("price[like]").is_none());
    assert!(param("contact[like]").is_some());
    // A filter compares any text: no format asked of an email or url filter value.
    assert!(
        param("contact").expect("eq")["schema"]
            .get("format")
            .is_none()
    );
    assert_eq!(param("published").expect("eq")["schema"]["format"], "date");
    let sort = &params.iter().find(|p| p["name"] == "sort").expect("sort")["schema"]["enum"];
    let keys: Vec<&str> = sort
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        keys.contains(&"-price") && keys.contains(&"published"),
        "{keys:?}"
    );
    assert!(!keys.iter().any(|k| k.contains("tags")), "{keys:?}");
}
