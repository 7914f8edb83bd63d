//! docs/ci.md's table of JSON documents is a contract: each row names the fields of one
//! command's document. The tests that read a command's JSON check it against its row with
//! `assert_documented`; `every_documented_document_is_checked` makes sure each row is.
//!
//! A row's fields, as docs/ci.md writes them: `a, b? {c, d}, e: [{f, g}]`. A field must be
//! there; `?` lets it be absent or null; `{..}` checks an object, `[{..}]` every element of an
//! array; text in parentheses describes and is not checked.

use serde_json::{Value, json};

fn docs() -> String {
    std::fs::read_to_string(crate::harness::repo().join("docs/ci.md")).expect("docs/ci.md")
}

/// The labels and field lists of the table's rows (`| \`label\` | fields |`).
fn rows(docs: &str) -> Vec<(String, String)> {
    let table = docs.split("## JSON documents").nth(1).expect("a JSON documents section").split("\n## ").next();
    table
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim().trim_matches('|').split(" | ").map(str::trim).collect();
            match cells.as_slice() {
                [label, fields] if label.starts_with('`') => {
                    Some((label.replace('`', ""), without_descriptions(&fields.replace('`', ""))))
                }
                _ => None,
            }
        })
        .collect()
}

/// Check a command's JSON document against docs/ci.md's row `label`: every field the row names
/// is there, nested ones in every element, and `schemaVersion` is 1.
pub fn assert_documented(label: &str, json: &Value) {
    let rows = rows(&docs());
    let (_, fields) =
        rows.iter().find(|(row, _)| row == label).unwrap_or_else(|| panic!("docs/ci.md has no JSON row `{label}`"));
    let mut missing = Vec::new();
    check_fields(json, fields, "", &mut missing);
    assert!(missing.is_empty(), "docs/ci.md names fields `{label}` lacks: {missing:?}\n{json:#}");
    assert_eq!(json["schemaVersion"], 1, "{label}");
}

/// Every row of the table is checked by a test (each `assert_documented` call names its row).
#[test]
fn every_documented_document_is_checked() {
    let dir = crate::harness::repo().join("tests/integration");
    let sources: String = std::fs::read_dir(&dir)
        .expect("tests/integration")
        .map(|entry| std::fs::read_to_string(entry.expect("entry").path()).unwrap_or_default())
        .collect();
    let rows = rows(&docs());
    assert!(rows.len() >= 10, "the JSON table's rows: {rows:?}");
    let unchecked: Vec<&String> = rows
        .iter()
        .map(|(label, _)| label)
        .filter(|label| !sources.contains(&format!("assert_documented(\"{label}\"")))
        .collect();
    assert!(unchecked.is_empty(), "docs/ci.md rows no test checks with assert_documented: {unchecked:?}");
}

/// The checker itself: a missing field, a missing nested field in any element, and an optional
/// field are told apart.
#[test]
fn the_field_checker_finds_what_is_missing() {
    let spec = without_descriptions("a (the a), b? {c}, d: [{e, f (an f, or none)}], g? {h}");
    let check = |json: Value| {
        let mut missing = Vec::new();
        check_fields(&json, &spec, "", &mut missing);
        missing
    };
    assert_eq!(check(json!({"a": 1, "b": {"c": 1}, "d": [{"e": 1, "f": 2}], "g": null})), Vec::<String>::new());
    assert_eq!(check(json!({"b": null, "d": []})), vec!["a"]);
    assert_eq!(check(json!({"a": 1, "b": {}, "d": [{"e": 1, "f": 2}, {"e": 1}]})), vec!["b.c", "d[].f"]);
    assert_eq!(check(json!({"a": null, "d": null})), vec!["d (null)"]);
}

/// `spec` without its descriptions: text in parentheses, nested ones included.
fn without_descriptions(spec: &str) -> String {
    let mut depth = 0;
    let mut out = String::new();
    for c in spec.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Check `value` against a field list: `a, b? {c, d}, e: [{f}]`.
fn check_fields(value: &Value, spec: &str, at: &str, missing: &mut Vec<String>) {
    for field in split_top_level(spec) {
        let name: String = field.chars().take_while(|c| c.is_alphanumeric()).collect();
        let optional = field[name.len()..].starts_with('?');
        let path = format!("{at}{name}");
        let nested = field.find('{').map(|open| &field[open + 1..field.rfind('}').unwrap_or(field.len())]);
        let found = match value.get(&name) {
            None if !optional => {
                missing.push(path);
                continue;
            }
            // A scalar may be null; an object or array the row describes must be there.
            Some(Value::Null) if !optional && nested.is_some() => {
                missing.push(format!("{path} (null)"));
                continue;
            }
            None | Some(Value::Null) => continue,
            Some(found) => found,
        };
        match (nested, found) {
            (Some(inner), Value::Array(items)) => {
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
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
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
