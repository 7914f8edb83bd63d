use crate::harness::{Project, stdout_of};

#[test]
fn list_shows_every_stage_and_release_resolved() {
    let project = Project::example();
    let output = project.helm_envs(&["list"]).output().expect("runs");
    assert!(output.status.success());
    insta::assert_snapshot!(project.scrub(&output.stdout));
}

#[test]
fn list_json_is_machine_readable() {
    let project = Project::example();
    let output = project.helm_envs(&["list", "-o", "json"]).output().expect("runs");
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&output)).expect("JSON");
    let stages: Vec<(&str, &str, &str)> = json["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().expect("name"),
                s["kubeContext"].as_str().expect("ctx"),
                s["namespace"].as_str().expect("ns"),
            )
        })
        .collect();
    assert_eq!(
        stages,
        [("dev", "dev", "acme-dev"), ("staging", "staging", "acme-staging"), ("production", "production", "acme")]
    );
    assert_eq!(json["stages"][2]["approval"], "required");
    let values = &json["stages"][1]["releases"][0]["values"];
    assert_eq!(values[0]["display"], "values/web.yaml");
    assert_eq!(values[0]["shared"], true);
    assert_eq!(values[1]["display"], "envs/staging/web.yaml");
    assert_eq!(values[1]["shared"], false);
}

#[test]
fn the_config_is_found_from_a_subdirectory() {
    let project = Project::example();
    let mut cmd = project.helm_envs(&["list", "-o", "json"]);
    cmd.current_dir(project.path("envs/staging"));
    let output = cmd.output().expect("runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout_of(&output).contains("\"name\": \"production\""));
}

/// docs/ci.md's row for `list -o json` names exactly the fields the document has: every
/// documented field is there (nested ones in every element), and `schemaVersion` with them.
#[test]
fn list_json_has_every_field_docs_ci_names() {
    let project = Project::example();
    let output = project.helm_envs(&["list", "-o", "json"]).output().expect("runs");
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&output)).expect("JSON");
    let docs = std::fs::read_to_string(crate::harness::repo().join("docs/ci.md")).expect("docs/ci.md");
    let row = docs.lines().find(|l| l.starts_with("| `list -o json` |")).expect("a row for list -o json");
    let spec = row.trim_end_matches('|').rsplit_once(" | ").expect("two cells").1.replace('`', "");
    let mut missing = Vec::new();
    check_fields(&json, &spec, "", &mut missing);
    assert!(missing.is_empty(), "docs/ci.md names fields `list -o json` lacks: {missing:?}\n{json:#}");
    assert_eq!(json["schemaVersion"], 1);
}

/// Check `value` against a field list as docs/ci.md writes it: `a, b: [{c, d}], e {f}`.
fn check_fields(value: &serde_json::Value, spec: &str, at: &str, missing: &mut Vec<String>) {
    for field in split_top_level(spec) {
        let name: String = field.chars().take_while(|c| c.is_alphanumeric()).collect();
        let path = format!("{at}{name}");
        let Some(found) = value.get(&name) else {
            missing.push(path);
            continue;
        };
        let nested = field.find('{').map(|open| &field[open + 1..field.rfind('}').unwrap_or(field.len())]);
        match (nested, found) {
            (Some(inner), serde_json::Value::Array(items)) => {
                items.iter().for_each(|item| check_fields(item, inner, &format!("{path}[]."), missing));
            }
            (Some(inner), object) => check_fields(object, inner, &format!("{path}."), missing),
            (None, _) => {}
        }
    }
}

/// The fields of a list, split at the commas outside brackets.
fn split_top_level(spec: &str) -> Vec<String> {
    let (mut fields, mut current, mut depth) = (Vec::new(), String::new(), 0);
    for c in spec.chars() {
        match c {
            '{' | '[' | '(' => depth += 1,
            '}' | ']' | ')' => depth -= 1,
            ',' if depth == 0 => {
                fields.push(std::mem::take(&mut current).trim().to_string());
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    fields.push(current.trim().to_string());
    fields.into_iter().filter(|f| !f.is_empty()).collect()
}
