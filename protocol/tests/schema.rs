//! The checked-in JSON Schema and OpenRPC documents (`protocol/schema/`) match the
//! code. After changing a wire type or a method, regenerate them with `make schema`
//! (`SESSIOND_UPDATE_SCHEMA=1 cargo test -p sessiond-protocol --test schema`).

use sessiond_protocol::schema::{openrpc, types};
use std::path::PathBuf;

fn check(name: &str, generated: serde_json::Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("schema")
        .join(name);
    let mut text = serde_json::to_string_pretty(&generated).unwrap();
    text.push('\n');
    if std::env::var_os("SESSIOND_UPDATE_SCHEMA").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    // Compared as JSON values: the order of object keys depends on the features the
    // workspace build unifies (serde_json's `preserve_order`), not on the code.
    let checked_in: serde_json::Value = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    assert!(
        checked_in == generated,
        "protocol/schema/{name} differs from the code: run `make schema` and commit the result"
    );
}

#[test]
fn the_checked_in_openrpc_document_matches_the_code() {
    check("openrpc.json", openrpc());
}

#[test]
fn the_checked_in_json_schema_matches_the_code() {
    check("types.json", types());
}

#[test]
fn every_method_is_in_the_openrpc_document() {
    let doc = openrpc();
    let names: Vec<&str> = doc["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for method in sessiond_protocol::methods::ALL {
        assert!(
            names.contains(method),
            "{method} is not in the OpenRPC document"
        );
    }
    // Every $ref points at a schema the document carries.
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = part.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "dangling $ref to {name}");
    }
}
