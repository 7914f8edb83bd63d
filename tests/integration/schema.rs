//! `helm envs schema`: a JSON Schema that a real validator accepts, that the example stages
//! file satisfies, that catches the mistakes editors should flag, and whose committed copy
//! (docs/helm-envs.schema.json, referenced by the example) is current.

use std::path::Path;

use serde_json::Value;

use crate::harness::{Project, ok, repo};

fn schema(project: &Project) -> Value {
    serde_json::from_str(&ok(project, &["schema"])).expect("schema is JSON")
}

/// A stages file as the JSON the schema describes, read with helm-envs' own YAML rules.
pub fn stages_json(text: &str) -> Value {
    Value::Object(std::sync::Arc::unwrap_or_clone(
        helm_envs::config::yaml::parse_values(text, Path::new("helm-envs.yaml")).expect("YAML"),
    ))
}

/// The validator's messages for `text` (empty when valid).
pub fn schema_errors(schema: &Value, text: &str) -> Vec<String> {
    let validator = jsonschema::validator_for(schema).expect("a valid JSON Schema");
    let instance = stages_json(text);
    validator.iter_errors(&instance).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

#[test]
fn the_example_stages_file_validates_against_the_schema() {
    let project = Project::example();
    let schema = schema(&project);
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    let errors = schema_errors(&schema, &project.read("helm-envs.yaml"));
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn the_schema_flags_what_an_editor_should() {
    let project = Project::example();
    let schema = schema(&project);
    let example = project.read("helm-envs.yaml");
    let broken = [
        ("a typo in a key", example.replace("kubeContext: staging", "kubecontext: staging")),
        ("a stage without kubeContext", example.replace("    kubeContext: staging\n", "")),
        ("an approval that is not none/required", example.replace("approval: required", "approval: yes")),
        ("a stage name that is not a DNS label", example.replace("name: staging", "name: Staging")),
        (
            "a release without a chart",
            example.replace(
                "    chart: ../../charts/acme-web\n    values:\n      - values/worker.yaml",
                "    values:\n      - values/worker.yaml",
            ),
        ),
        ("no stages", format!("stages: []\n{}", &example[example.find("releases:").expect("releases")..])),
    ];
    for (what, text) in broken {
        assert_ne!(text, example, "{what}: the replacement did not apply");
        assert!(!schema_errors(&schema, &text).is_empty(), "{what} passed the schema");
    }
}

#[test]
fn the_committed_schema_is_current() {
    let project = Project::example();
    let committed = std::fs::read_to_string(repo().join("docs/helm-envs.schema.json")).expect("committed schema");
    assert_eq!(
        committed,
        ok(&project, &["schema"]),
        "docs/helm-envs.schema.json is stale: run `cargo run -- schema > docs/helm-envs.schema.json`"
    );
    let first_line = project.read("helm-envs.yaml").lines().next().unwrap_or_default().to_string();
    assert_eq!(first_line, "# yaml-language-server: $schema=../../docs/helm-envs.schema.json");
    assert!(repo().join("examples/acme/../../docs/helm-envs.schema.json").is_file(), "the example's $schema resolves");
}

/// docs/stages-file.md documents every key the schema (and so the reader) knows.
#[test]
fn the_stages_file_reference_covers_every_key() {
    let project = Project::example();
    let schema = schema(&project);
    let reference = std::fs::read_to_string(repo().join("docs/stages-file.md")).expect("reference");
    let mut keys = Vec::new();
    collect_keys(&schema, &mut keys);
    assert!(keys.len() > 15, "{keys:?}");
    // A map key may be documented through its keys (`deploy.command`).
    let documented = |key: &String| reference.contains(&format!("`{key}`")) || reference.contains(&format!("`{key}."));
    let missing: Vec<&String> = keys.iter().filter(|key| !documented(key)).collect();
    assert!(missing.is_empty(), "keys without a `key` entry in docs/stages-file.md: {missing:?}");
}

fn collect_keys(schema: &Value, keys: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Object(properties)) = map.get("properties") {
                for (name, sub) in properties {
                    // `deploy.command` is documented under its full path.
                    let name = if name == "command" { "deploy.command".to_string() } else { name.clone() };
                    if !keys.contains(&name) {
                        keys.push(name);
                    }
                    collect_keys(sub, keys);
                }
            }
            for (name, sub) in map {
                if name != "properties" {
                    collect_keys(sub, keys);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_keys(item, keys)),
        _ => {}
    }
}
