//! Editing YAML files the user wrote (values files, the stages file) without losing anything:
//! only the entries whose value changes are touched; comments, key order, blank lines,
//! indentation and quoting elsewhere stay byte-identical (yaml-edit's lossless tree).
//!
//! An edit is described by the file's values before and after (as Helm reads them). Every
//! edit is checked by reading the result back: if the text does not hold exactly the intended
//! values (an anchor shared with another key, a key written in a form Helm reads differently),
//! the edit is refused rather than written.

use std::path::Path;
use std::str::FromStr as _;

use serde_json::{Map, Value};
use yaml_edit::{Mapping, ScalarValue, YamlFile, YamlValue};

use crate::config::{values, yaml};
use crate::error::Diagnostic;

/// `text` (the contents of `file`, whose values are `old`) changed so that it holds `new`.
pub fn edit(text: &str, file: &Path, old: &Map<String, Value>, new: &Map<String, Value>) -> Result<String, Diagnostic> {
    if old == new {
        return Ok(text.to_string());
    }
    // Scalars that change value are rewritten in place first (their exact text range is known,
    // so the rest of the line and the lines around stay as they are); what remains is structural:
    // keys added or removed, lists, a value changing type.
    let (text, spliced_values) = splice_scalars(text, file, old, new)?;
    if &spliced_values == new {
        // Every change was a scalar rewritten in place, and the text just read back as `new`:
        // that is the check `verify` makes, so a large file is not parsed twice more.
        return Ok(text);
    }
    let parsed = YamlFile::from_str(&text).map_err(|err| cannot_edit(file, &err.to_string()))?;
    let edited = match parsed.documents().next().and_then(|doc| doc.as_mapping()) {
        Some(root) => {
            apply(&root, &spliced_values, new);
            parsed.to_string()
        }
        // An empty or comment-only file: keep what is there, append the values.
        None if spliced_values.is_empty() => {
            let mut out = text;
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&fresh(new));
            out
        }
        None => {
            return Err(Diagnostic::new(file, None, "cannot edit this file: its top level is not a block of keys")
                .help("make the change by hand"));
        }
    };
    verify(&edited, file, new)?;
    Ok(edited)
}

fn cannot_edit(file: &Path, why: &str) -> Diagnostic {
    Diagnostic::new(file, None, format!("cannot edit this file: {why}"))
        .help("fix the YAML (helm reads it, but the editor could not), or make the change by hand")
}

/// A mapping's entries with their keys as plain strings (keys that are not scalars are left
/// out: a values file's keys are strings).
fn entries_by_key(mapping: &Mapping) -> impl Iterator<Item = (String, yaml_edit::MappingEntry)> {
    mapping.entries().filter_map(|entry| {
        let key = entry.key_node()?.as_scalar()?.as_string();
        Some((key, entry))
    })
}

/// Rewrite, in the text, every scalar whose new value is also a scalar; the text and the
/// values it now holds. A file in plain block YAML has its scalars found by reading lines (a
/// yaml-edit tree of a 20 MB file took seconds); yaml-edit finds them otherwise.
fn splice_scalars(
    text: &str,
    file: &Path,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
) -> Result<(String, Map<String, Value>), Diagnostic> {
    let read_back = |text: String| {
        let values = yaml::read_back(&text, file)?;
        Ok::<_, Diagnostic>((text, values))
    };
    let mut changed = Vec::new();
    changed_scalars(old, new, &mut Vec::new(), &mut changed);
    let paths: Vec<Vec<String>> = changed.iter().map(|(path, _)| path.clone()).collect();
    if let Some(ranges) = yaml::block_scalar_ranges(text, &paths) {
        let splices: Option<Vec<_>> = ranges
            .into_iter()
            .zip(&changed)
            .map(|(range, (_, after))| Some((range.clone(), scalar_text(&text[range], after)?)))
            .collect();
        // What the line reader got wrong, reading the text back shows: yaml-edit takes over then.
        if let Some(Ok((edited, values))) = splices.map(|splices| read_back(spliced(text, splices)))
            && changed.iter().all(|(path, after)| values::lookup(&values, path) == Some(*after))
        {
            return Ok((edited, values));
        }
    }
    let parsed = YamlFile::from_str(text).map_err(|err| cannot_edit(file, &err.to_string()))?;
    let Some(root) = parsed.documents().next().and_then(|doc| doc.as_mapping()) else {
        return read_back(text.to_string()).map_err(|d| cannot_edit(file, &d.message));
    };
    let mut splices = Vec::new();
    scalar_splices(text, &root, old, new, &mut splices);
    read_back(spliced(text, splices)).map_err(|d| cannot_edit(file, &d.message))
}

/// The paths whose value is a scalar before and after, and differs, with the value after.
fn changed_scalars<'v>(
    old: &Map<String, Value>,
    new: &'v Map<String, Value>,
    path: &mut Vec<String>,
    changed: &mut Vec<(Vec<String>, &'v Value)>,
) {
    for (key, after) in new {
        let Some(before) = old.get(key) else { continue };
        if before == after {
            continue;
        }
        path.push(key.clone());
        match (before, after) {
            (Value::Object(b), Value::Object(a)) => changed_scalars(b, a, path, changed),
            (b, a) if is_collection(b) || is_collection(a) => {}
            _ => changed.push((path.clone(), after)),
        }
        path.pop();
    }
}

/// `text` with each range replaced, in one pass: replacing in place moved the rest of the
/// text at every splice, which on a file of 20 MB with thousands of changes took seconds.
fn spliced(text: &str, mut splices: Vec<(std::ops::Range<usize>, String)>) -> String {
    splices.sort_by_key(|(range, _)| range.start);
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (range, replacement) in splices {
        out.push_str(&text[copied..range.start]);
        out.push_str(&replacement);
        copied = range.end;
    }
    out.push_str(&text[copied..]);
    out
}

fn scalar_splices(
    text: &str,
    mapping: &Mapping,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    splices: &mut Vec<(std::ops::Range<usize>, String)>,
) {
    // The mapping's entries by key, built once the first change needs one: a lookup by key
    // scans the mapping, which in a file of many keys made an edit quadratic.
    let mut entries: Option<std::collections::HashMap<String, yaml_edit::MappingEntry>> = None;
    for (key, after) in new {
        let Some(before) = old.get(key) else { continue };
        if before == after || is_collection(before) != is_collection(after) {
            continue;
        }
        let entries = entries.get_or_insert_with(|| {
            let mut by_key = std::collections::HashMap::new();
            for (key, entry) in entries_by_key(mapping) {
                by_key.entry(key).or_insert(entry);
            }
            by_key
        });
        let Some(entry) = entries.get(key) else { continue };
        match (before, after) {
            (Value::Object(b), Value::Object(a)) => {
                if let Some(child) = entry.value_node().and_then(|v| v.as_mapping().cloned()) {
                    scalar_splices(text, &child, b, a, splices);
                }
            }
            (b, a) if is_collection(b) || is_collection(a) => {}
            _ => {
                let Some(node) = entry.value_node().filter(|n| n.is_scalar()) else { continue };
                let range = node.byte_range();
                let range = range.start as usize..range.end as usize;
                if let Some(replacement) = scalar_text(&text[range.clone()], after) {
                    splices.push((range, replacement));
                }
            }
        }
    }
}

fn is_collection(value: &Value) -> bool {
    matches!(value, Value::Object(_) | Value::Array(_))
}

/// The text that replaces a scalar's `current` text with `value`. Strings are JSON strings,
/// which YAML reads as double-quoted scalars; a block scalar (`|`, `>`) stays a `|` block when
/// the new string can be one, with its indentation and the blank lines after it.
fn scalar_text(current: &str, value: &Value) -> Option<String> {
    let inline = serde_json::to_string(value).ok()?;
    if !current.starts_with(['|', '>']) {
        return Some(inline);
    }
    let body = current.split_once('\n').map_or("", |(_, body)| body);
    let indent: String = body
        .lines()
        .find(|l| !l.trim().is_empty())
        .map_or("  ".into(), |l| l.chars().take_while(|c| *c == ' ').collect());
    let trailing_blank_lines = body.len() - body.trim_end_matches(['\n', ' ']).len();
    let tail = &body[body.len() - trailing_blank_lines..];
    // The block's own line break is part of `tail`; what follows it are blank lines to keep.
    let kept = tail.split_once('\n').map_or("", |(_, rest)| rest);
    match value {
        Value::String(s) if block_friendly(s) => {
            let chomp = if s.ends_with('\n') { "" } else { "-" };
            let lines: Vec<String> =
                s.lines().map(|l| if l.is_empty() { String::new() } else { format!("{indent}{l}") }).collect();
            Some(format!("|{chomp}\n{}\n{kept}", lines.join("\n")))
        }
        _ => Some(format!("{inline}\n{kept}")),
    }
}

/// Turn the entries of `mapping` (holding `old`) into `new`, touching only what differs.
fn apply(mapping: &Mapping, old: &Map<String, Value>, new: &Map<String, Value>) {
    for key in old.keys().filter(|k| !new.contains_key(*k)) {
        mapping.remove(key.as_str());
    }
    for (key, value) in new {
        match (old.get(key), value) {
            (Some(before), after) if before == after => {}
            (Some(Value::Object(before)), Value::Object(after)) => match mapping.get_mapping(key.as_str()) {
                Some(child) => apply(&child, before, after),
                // An alias or a tagged node: replace the whole value.
                None => mapping.set(key.as_str(), to_yaml(value)),
            },
            _ => mapping.set(key.as_str(), to_yaml(value)),
        }
    }
}

/// A new file's text for `values`.
fn fresh(values: &Map<String, Value>) -> String {
    let file = YamlFile::new();
    let doc = file.ensure_document();
    for (key, value) in values {
        doc.set(key.as_str(), to_yaml(value));
    }
    let mut text = file.to_string();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// A value as YAML to insert. Strings always carry explicit quotes, so `y`, `no`, `0777` or
/// `1.10` are never read back as booleans or numbers; multi-line strings become `|` blocks
/// where that is exact, so a config file stays readable.
fn to_yaml(value: &Value) -> YamlValue {
    match value {
        Value::Null => YamlValue::scalar(ScalarValue::null()),
        Value::Bool(b) => YamlValue::scalar(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => YamlValue::scalar(i),
            (None, Some(u)) => YamlValue::scalar(ScalarValue::plain(u.to_string())),
            _ => YamlValue::scalar(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) if block_friendly(s) => YamlValue::scalar(ScalarValue::literal(s.clone())),
        Value::String(s) => YamlValue::scalar(ScalarValue::double_quoted(s.clone())),
        Value::Array(items) => YamlValue::from_sequence(items.iter().map(to_yaml).collect()),
        Value::Object(map) => YamlValue::Mapping(map.iter().map(|(k, v)| (k.clone(), to_yaml(v))).collect()),
    }
}

/// Whether a `|` block states `s` exactly: several lines, printable, no line starting with a
/// space (that would need an indentation indicator) or ending in one, at most one final newline.
fn block_friendly(s: &str) -> bool {
    s.contains('\n')
        && !s.ends_with("\n\n")
        && s.lines().all(|line| !line.starts_with([' ', '\t']) && !line.ends_with([' ', '\t']))
        && !s.chars().any(|c| c.is_control() && c != '\n')
}

/// The edited text must read back as exactly `expected`.
fn verify(edited: &str, file: &Path, expected: &Map<String, Value>) -> Result<(), Diagnostic> {
    let refused = |detail: String| {
        Diagnostic::new(file, None, format!("the edit of this file would not hold the promoted values: {detail}")).help(
            "the file uses YAML helm-envs cannot edit safely here (anchors shared with other keys, keys written \
             in another form); make this change by hand",
        )
    };
    let reread = yaml::read_back(edited, file).map_err(|d| refused(d.message))?;
    if &reread != expected {
        let path = first_difference(&reread, expected, String::new()).unwrap_or_default();
        return Err(refused(format!("`{path}` differs after the edit")));
    }
    Ok(())
}

fn first_difference(a: &Map<String, Value>, b: &Map<String, Value>, prefix: String) -> Option<String> {
    let keys = a.keys().chain(b.keys());
    for key in keys {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match (a.get(key), b.get(key)) {
            (Some(Value::Object(x)), Some(Value::Object(y))) => {
                if let Some(found) = first_difference(x, y, path) {
                    return Some(found);
                }
            }
            (x, y) if x != y => return Some(path),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Map<String, Value> {
        std::sync::Arc::unwrap_or_clone(yaml::parse_values(text, Path::new("t.yaml")).expect("test YAML parses"))
    }

    /// Edit `text` with a change described as `path = value` pairs (JSON values; `None` removes).
    fn edited(text: &str, change: impl FnOnce(&mut Map<String, Value>)) -> String {
        let old = values(text);
        let mut new = old.clone();
        change(&mut new);
        edit(text, Path::new("t.yaml"), &old, &new).expect("edit succeeds")
    }

    fn at<'m>(map: &'m mut Map<String, Value>, path: &[&str]) -> &'m mut Map<String, Value> {
        path.iter().fold(map, |m, key| m.get_mut(*key).and_then(Value::as_object_mut).expect("map at path"))
    }

    const COMMENTED: &str = "\
# Values for staging. Keep in sync with the runbook.
image:
  repository: registry.example.com/acme/web   # mirrored
  # bump with every release
  tag: \"1.4.2\"  # pinned
  pullPolicy: IfNotPresent

features: {search: true, beta: 'no'}   # flow map

sidecars:
  - name: proxy   # envoy
    port: 15001
  - name: logs
    port: 24224

config: |
  log.level = info
  cache.size = 64

base: &base
  timeout: 30
derived: *base

replicaCount: 2   # env-specific
";

    #[test]
    fn a_changed_scalar_changes_only_its_own_line_and_keeps_its_comment() {
        let out = edited(COMMENTED, |v| {
            at(v, &["image"]).insert("tag".into(), "1.5.0".into());
        });
        assert_eq!(out, COMMENTED.replace("tag: \"1.4.2\"  # pinned", "tag: \"1.5.0\"  # pinned"));
    }

    #[test]
    fn scalars_of_plain_block_yaml_are_found_by_reading_lines_and_keep_their_line() {
        let text = "# web\nimage:\n  repository: web   # the app\n  tag: \"1.4.2\"  # pinned\n\nresources: \
                    {cpu: 100m}\nurl: http://x#y  # a hash in a value\nnote: 'it''s'\nreplicas: 2\n";
        let paths = [vec!["image".to_string(), "tag".to_string()], vec!["url".into()], vec!["note".into()]];
        assert!(yaml::block_scalar_ranges(text, &paths).is_some(), "the line reader takes this file on");
        let out = edited(text, |v| {
            at(v, &["image"]).insert("tag".into(), "1.5.0".into());
            v.insert("url".into(), "http://z".into());
            v.insert("note".into(), "it is".into());
            v.insert("replicas".into(), 3.into());
        });
        let expected = text
            .replace("tag: \"1.4.2\"  # pinned", "tag: \"1.5.0\"  # pinned")
            .replace("url: http://x#y  # a hash", "url: \"http://z\"  # a hash")
            .replace("note: 'it''s'", "note: \"it is\"")
            .replace("replicas: 2", "replicas: 3");
        assert_eq!(out, expected);
    }

    #[test]
    fn a_key_written_twice_is_left_to_the_parse() {
        let text = "image:\n  tag: a\nimage:\n  tag: b\n";
        let path = [vec!["image".to_string(), "tag".to_string()]];
        assert_eq!(yaml::block_scalar_ranges(text, &path), None, "Helm takes the last one; the reader knows the first");
        let old = values(text);
        let mut new = old.clone();
        at(&mut new, &["image"]).insert("tag".into(), "c".into());
        let refused = edit(text, Path::new("t.yaml"), &old, &new).expect_err("not written wrong");
        assert!(refused.message.contains("`image.tag` differs after the edit"), "{}", refused.message);
    }

    #[test]
    fn strings_are_written_with_explicit_quotes() {
        let out = edited("a: 1\n", |v| {
            v.insert("answer".into(), "y".into());
            v.insert("mode".into(), "0777".into());
        });
        assert_eq!(out, "a: 1\nanswer: \"y\"\nmode: \"0777\"\n");
        assert_eq!(values(&out)["answer"], Value::String("y".into()));
    }

    #[test]
    fn new_keys_go_under_their_parent_with_the_files_indentation() {
        let text = "image:\n    repository: web   # four spaces\n\nother: 1\n";
        let out = edited(text, |v| {
            at(v, &["image"]).insert("tag".into(), "2".into());
        });
        assert_eq!(out, "image:\n    repository: web   # four spaces\n    tag: \"2\"\n\nother: 1\n");
    }

    #[test]
    fn flow_maps_lists_and_block_scalars() {
        let out = edited(COMMENTED, |v| {
            at(v, &["features"]).insert("beta".into(), true.into());
            v.insert("config".into(), "log.level = debug\ncache.size = 64\n".into());
            v.insert("sidecars".into(), serde_json::json!([{"name": "proxy", "port": 15002}]));
        });
        let expected = COMMENTED
            .replace("features: {search: true, beta: 'no'}", "features: {search: true, beta: true}")
            .replace("  log.level = info", "  log.level = debug")
            .replace(
                "sidecars:\n  - name: proxy   # envoy\n    port: 15001\n  - name: logs\n    port: 24224\n",
                "sidecars:\n  - name: \"proxy\"\n    port: 15002\n",
            );
        assert_eq!(out, expected);
    }

    #[test]
    fn removing_a_key_removes_its_lines_only() {
        let out = edited(COMMENTED, |v| {
            at(v, &["image"]).remove("pullPolicy");
        });
        assert_eq!(out, COMMENTED.replace("  pullPolicy: IfNotPresent\n", ""));
    }

    #[test]
    fn a_change_through_an_alias_replaces_the_alias_and_keeps_the_anchor() {
        let out = edited(COMMENTED, |v| {
            at(v, &["derived"]).insert("timeout".into(), 60.into());
        });
        assert!(out.contains("base: &base\n  timeout: 30\n"), "{out}");
        assert_eq!(values(&out)["derived"]["timeout"], 60);
    }

    #[test]
    fn a_change_to_an_anchored_value_spells_out_the_alias_that_keeps_the_old_value() {
        let out = edited(COMMENTED, |v| {
            at(v, &["base"]).insert("timeout".into(), 60.into());
        });
        assert!(out.contains("base: &base\n  timeout: 60\nderived:\n  timeout: 30\n"), "{out}");
    }

    #[test]
    fn splices_replace_their_ranges_wherever_they_are() {
        let text = "a: 1\nb: two\nc: 3\n";
        let splices = vec![(15..16, "30".to_string()), (3..4, "10".to_string()), (8..11, "\"2\"".to_string())];
        assert_eq!(spliced(text, splices), "a: 10\nb: \"2\"\nc: 30\n");
        assert_eq!(spliced(text, Vec::new()), text);
    }

    #[test]
    fn text_that_does_not_read_back_as_the_intended_values_is_refused() {
        let err = verify("a: 1\nb: 2\n", Path::new("t.yaml"), &values("a: 1\nb: 3\n")).expect_err("b differs");
        assert!(err.message.contains("`b` differs"), "{}", err.message);
        assert!(err.help.is_some_and(|h| h.contains("by hand")));
    }

    #[test]
    fn comment_only_and_empty_files_get_the_values_appended() {
        let out = edited("# staging overrides\n", |v| {
            v.insert("image".into(), serde_json::json!({"tag": "1.5.0"}));
        });
        assert_eq!(out, "# staging overrides\nimage:\n  tag: \"1.5.0\"\n");
        assert_eq!(edited("", |v| drop(v.insert("a".into(), 1.into()))), "a: 1\n");
    }

    #[test]
    fn strings_that_a_block_cannot_state_exactly_are_quoted() {
        for s in ["two\n\n", " lead\nx", "trail \nx", "tab\there\nx"] {
            let out = edited("a: 1\n", |v| drop(v.insert("s".into(), s.into())));
            assert_eq!(values(&out)["s"], Value::String(s.into()), "{out}");
        }
    }
}
