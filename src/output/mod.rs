//! Formatting results for people and programs.

pub mod document;
pub mod drift;
pub mod gates;
pub mod isolation;
pub mod markdown;
pub mod promotion;
pub mod report;
pub mod scaffold;
pub mod secrets;
pub mod status;

use serde_json::{Value, json};

/// The version of every JSON document helm-envs prints (docs/ci.md): bumped only for
/// incompatible changes; fields may be added within a version.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// A JSON document as printed: `body` (an object) with `schemaVersion`.
pub fn json_document(mut body: Value) -> Value {
    body["schemaVersion"] = json!(JSON_SCHEMA_VERSION);
    body
}
