//! Comparing two renderings resource by resource: which resources are added, removed or
//! changed, which fields changed, and a line diff of each changed object in a canonical YAML
//! form. Secret data is redacted here, before anything can be printed.

use std::fmt::Write as _;

use serde_json::{Map, Value};
use similar::{ChangeTag, TextDiff};

use crate::compare::manifest::{Manifest, Resource, ResourceKey};

/// What happened to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Changed,
    Removed,
}

/// One changed field: `old` is `None` when the field was added, `new` when it was removed.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    pub path: FieldPath,
    pub old: Option<Value>,
    pub new: Option<Value>,
    /// Secret data: the values shown are redaction markers.
    pub sensitive: bool,
}

/// A resource that differs between the two sides.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceChange {
    pub key: ResourceKey,
    pub kind: ChangeKind,
    /// The template of the new side (else of the old side).
    pub source: Option<String>,
    /// Changed fields (empty for added and removed resources).
    pub fields: Vec<FieldChange>,
    /// Each side as it is shown (`None` for the side without it): ignored fields left out,
    /// Secret data redacted unless `show_secrets`.
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// The result of comparing two manifests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Comparison {
    /// In key order.
    pub changes: Vec<ResourceChange>,
    pub unchanged: usize,
}

/// Counts in Terraform's words: what applying the new side would do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
    pub unchanged: usize,
}

impl Comparison {
    pub fn plan(&self) -> Plan {
        let count = |kind| self.changes.iter().filter(|c| c.kind == kind).count();
        Plan {
            add: count(ChangeKind::Added),
            change: count(ChangeKind::Changed),
            destroy: count(ChangeKind::Removed),
            unchanged: self.unchanged,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// How to compare.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub ignore: Vec<IgnorePattern>,
    pub show_secrets: bool,
}

/// Compare two manifests. Both are consumed: unchanged objects are dropped as soon as they are
/// matched, which keeps memory flat on large releases.
pub fn compare(old: Manifest, new: Manifest, options: &Options) -> Comparison {
    let mut comparison = Comparison::default();
    let mut old = old.into_iter().peekable();
    let mut new = new.into_iter().peekable();
    loop {
        let order = match (old.peek(), new.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((a, _)), Some((b, _))) => a.cmp(b),
        };
        let (before, after) = match order {
            std::cmp::Ordering::Less => (old.next().map(|(_, r)| r), None),
            std::cmp::Ordering::Greater => (None, new.next().map(|(_, r)| r)),
            std::cmp::Ordering::Equal => (old.next().map(|(_, r)| r), new.next().map(|(_, r)| r)),
        };
        match compare_resource(before, after, options) {
            Some(change) => comparison.changes.push(change),
            None => comparison.unchanged += 1,
        }
    }
    comparison
}

/// A resource whose every difference is a value the chart generates anew at each render (a
/// `randAlphaNum`, `genCA` or `now` that no `lookup` keeps): rendering the same config twice
/// already changes those fields.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Regenerated {
    pub resource: String,
    pub fields: Vec<String>,
}

/// Take out of `comparison` the changed resources whose every changed field also differs
/// between two renders of the same config (`again`, the first render against the second),
/// counting them as unchanged; they are returned. A resource with any other change stays, whole.
pub fn take_regenerated(comparison: &mut Comparison, again: &Comparison) -> Vec<Regenerated> {
    let mut regenerated = Vec::new();
    comparison.changes.retain(|change| {
        let Some(moving) = again.changes.iter().find(|c| c.key == change.key && c.kind == ChangeKind::Changed) else {
            return true;
        };
        let all_moving = change.kind == ChangeKind::Changed
            && change.fields.iter().all(|field| moving.fields.iter().any(|m| m.path == field.path));
        if all_moving {
            let fields = change.fields.iter().map(|f| f.path.to_string()).collect();
            regenerated.push(Regenerated { resource: change.key.to_string(), fields });
        }
        !all_moving
    });
    comparison.unchanged += regenerated.len();
    regenerated
}

fn compare_resource(old: Option<Resource>, new: Option<Resource>, options: &Options) -> Option<ResourceChange> {
    let prepare = |resource: Option<Resource>| {
        resource.map(|mut r| {
            remove_ignored(&mut r.object, &options.ignore, &mut String::new());
            r
        })
    };
    let (old, new) = (prepare(old), prepare(new));
    let (kind, key, source) = match (&old, &new) {
        (Some(o), Some(n)) if o.object == n.object => return None,
        (Some(o), Some(n)) => (ChangeKind::Changed, n.key.clone(), n.source.clone().or_else(|| o.source.clone())),
        (Some(o), None) => (ChangeKind::Removed, o.key.clone(), o.source.clone()),
        (None, Some(n)) => (ChangeKind::Added, n.key.clone(), n.source.clone()),
        (None, None) => return None,
    };
    let secret = old.as_ref().or(new.as_ref()).is_some_and(Resource::is_secret) && !options.show_secrets;
    let empty = Value::Null;
    let old_object = old.as_ref().map_or(&empty, |r| &r.object);
    let new_object = new.as_ref().map_or(&empty, |r| &r.object);
    let mut fields = Vec::new();
    if kind == ChangeKind::Changed {
        field_changes(old_object, new_object, &mut FieldPath::default(), &mut fields);
    }
    let (old_shown, new_shown) = if secret {
        fields.iter_mut().for_each(redact_field);
        redact_secret_pair(old_object, new_object)
    } else {
        (old_object.clone(), new_object.clone())
    };
    Some(ResourceChange {
        key,
        kind,
        source,
        fields,
        old: old.is_some().then_some(old_shown),
        new: new.is_some().then_some(new_shown),
    })
}

// ------------------------------------------------------------------------------ field paths

/// A path to a field: `spec.template.spec.containers[0].image`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(Vec<PathSegment>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum PathSegment {
    Key(String),
    Index(usize),
}

impl FieldPath {
    /// RFC 6901 JSON Pointer (`/metadata/labels/helm.sh~1chart`): unambiguous, for tools.
    pub fn pointer(&self) -> String {
        self.0
            .iter()
            .map(|segment| match segment {
                PathSegment::Key(key) => format!("/{}", key.replace('~', "~0").replace('/', "~1")),
                PathSegment::Index(index) => format!("/{index}"),
            })
            .collect()
    }

    fn under(&self, keys: &[&str]) -> bool {
        self.0.len() >= keys.len()
            && self.0.iter().zip(keys).all(|(segment, key)| matches!(segment, PathSegment::Key(k) if k == key))
    }
}

/// Dotted form, as people write it (`metadata.labels.helm.sh/chart`).
impl std::fmt::Display for FieldPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                PathSegment::Key(key) if i == 0 => f.write_str(key)?,
                PathSegment::Key(key) => write!(f, ".{key}")?,
                PathSegment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Maps recurse key by key; lists recurse index by index; anything else is compared whole.
fn field_changes(old: &Value, new: &Value, path: &mut FieldPath, out: &mut Vec<FieldChange>) {
    fn change(out: &mut Vec<FieldChange>, path: &FieldPath, old: Option<&Value>, new: Option<&Value>) {
        out.push(FieldChange { path: path.clone(), old: old.cloned(), new: new.cloned(), sensitive: false });
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))).collect();
            keys.sort();
            for key in keys {
                path.0.push(PathSegment::Key(key.clone()));
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) if x != y => field_changes(x, y, path, out),
                    (Some(_), Some(_)) => {}
                    (x, y) => change(out, path, x, y),
                }
                path.0.pop();
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for index in 0..a.len().max(b.len()) {
                path.0.push(PathSegment::Index(index));
                match (a.get(index), b.get(index)) {
                    (Some(x), Some(y)) if x != y => field_changes(x, y, path, out),
                    (Some(_), Some(_)) => {}
                    (x, y) => change(out, path, x, y),
                }
                path.0.pop();
            }
        }
        (a, b) if a != b => change(out, path, Some(a), Some(b)),
        _ => {}
    }
}

// ------------------------------------------------------------------------------ ignoring fields

/// A field to leave out of every comparison (`--ignore`): a dotted path such as
/// `metadata.labels.helm.sh/chart` or `metadata.annotations["checksum/config"]`, where `*`
/// stands for any one key and `[*]` for any list index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnorePattern(String);

impl IgnorePattern {
    pub fn parse(text: &str) -> Result<IgnorePattern, String> {
        let text = text.trim();
        if text.is_empty() || text.starts_with(['.', '[']) || text.ends_with('.') {
            return Err(format!(
                "`{text}` is not a field path; write it like `metadata.labels.helm.sh/chart` or \
                 `spec.template.spec.containers[*].image`"
            ));
        }
        // `a["x.y"]` and `a.x.y` name the same field in the dotted form fields are matched in.
        let plain = text.replace("[\"", ".").replace("\"]", "");
        Ok(IgnorePattern(plain))
    }

    fn matches(&self, path: &str) -> bool {
        glob(self.0.as_bytes(), path.as_bytes())
    }
}

impl std::fmt::Display for IgnorePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `*` matches any run of characters within one key (not `[` or `]`); `[*]` any index.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'[', rest)) if rest.starts_with(b"*]") => {
            let Some(end) = text.strip_prefix(b"[").and_then(|t| t.iter().position(|&c| c == b']')) else {
                return false;
            };
            text[1..=end].iter().all(u8::is_ascii_digit) && end >= 1 && glob(&rest[2..], &text[end + 2..])
        }
        Some((b'*', rest)) => (0..=text.len())
            .take_while(|&i| i == 0 || !matches!(text[i - 1], b'[' | b']'))
            .any(|i| glob(rest, &text[i..])),
        Some((&c, rest)) => text.first() == Some(&c) && glob(rest, &text[1..]),
    }
}

fn remove_ignored(value: &mut Value, patterns: &[IgnorePattern], path: &mut String) {
    if patterns.is_empty() {
        return;
    }
    let len = path.len();
    match value {
        Value::Object(map) => map.retain(|key, child| {
            if len > 0 {
                path.push('.');
            }
            path.push_str(key);
            let keep = !patterns.iter().any(|p| p.matches(path));
            if keep {
                remove_ignored(child, patterns, path);
            }
            path.truncate(len);
            keep
        }),
        Value::Array(items) => {
            let mut index = 0;
            items.retain_mut(|child| {
                let _ = write!(path, "[{index}]");
                index += 1;
                let keep = !patterns.iter().any(|p| p.matches(path));
                if keep {
                    remove_ignored(child, patterns, path);
                }
                path.truncate(len);
                keep
            });
        }
        _ => {}
    }
}

// ------------------------------------------------------------------------------ secrets

const SECRET_FIELDS: [&str; 2] = ["data", "stringData"];

/// Both sides of a Secret with every `data` / `stringData` value replaced by its size; a value
/// that differs says so on the new side, so equal sizes still show as a changed line.
fn redact_secret_pair(old: &Value, new: &Value) -> (Value, Value) {
    let (mut old_shown, mut new_shown) = (old.clone(), new.clone());
    for field in SECRET_FIELDS {
        let old_data = old.get(field).and_then(Value::as_object);
        if let Some(shown) = old_shown.get_mut(field) {
            *shown = redact_tree(field, shown, |_, _| false);
        }
        if let Some(shown) = new_shown.get_mut(field) {
            let changed = |key: &str, value: &Value| old_data.is_some_and(|d| d.get(key).is_some_and(|o| o != value));
            *shown = redact_tree(field, shown, changed);
        }
    }
    (old_shown, new_shown)
}

fn redact_field(field: &mut FieldChange) {
    let Some(section) = SECRET_FIELDS.into_iter().find(|f| field.path.under(&[f])) else {
        return;
    };
    let changed = field.old.is_some() && field.new.is_some();
    field.sensitive = true;
    if let Some(value) = &mut field.old {
        *value = redact_tree(section, value, |_, _| false);
    }
    if let Some(value) = &mut field.new {
        *value = redact_tree(section, value, |_, _| changed);
    }
}

/// Every value of a `data` / `stringData` section (or the section itself, when it is not a map)
/// as a redaction marker; `changed(key, value)` says which ones to mark as changed.
fn redact_tree(section: &str, value: &Value, changed: impl Fn(&str, &Value) -> bool) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), redacted(section, v, changed(k, v)))).collect())
        }
        other => redacted(section, other, changed("", other)),
    }
}

/// `(12 bytes)`: the size of the value (decoded, for base64 `data`), never the value.
fn redacted(section: &str, value: &Value, changed: bool) -> Value {
    let text = match value {
        Value::String(s) => s.as_str(),
        Value::Null => return Value::Null,
        _ => "",
    };
    let bytes = if section == "data" { base64_decoded_len(text) } else { text.len() };
    let unit = if bytes == 1 { "byte" } else { "bytes" };
    let suffix = if changed { ", changed" } else { "" };
    Value::String(format!("({bytes} {unit}{suffix})"))
}

fn base64_decoded_len(text: &str) -> usize {
    let significant: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !significant.len().is_multiple_of(4) {
        return significant.len();
    }
    let padding = significant.iter().rev().take_while(|&&b| b == b'=').count().min(2);
    significant.len() / 4 * 3 - padding
}

// ------------------------------------------------------------------------------ canonical YAML

/// Block YAML with keys sorted, strings quoted only where YAML would read them as something
/// else, and multi-line strings as literal blocks (so a config file in a ConfigMap diffs line
/// by line).
pub fn canonical_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(map, 0, &mut out),
        Value::Array(items) if !items.is_empty() => write_list(items, 0, &mut out),
        scalar => {
            write_scalar(scalar, 0, &mut out);
            out.push('\n');
        }
    }
    out
}

fn write_map(map: &Map<String, Value>, indent: usize, out: &mut String) {
    for (i, (key, value)) in map.iter().enumerate() {
        // The first key of a list item continues the `- ` line.
        if i > 0 || !out.ends_with("- ") {
            push_indent(out, indent);
        }
        out.push_str(&scalar_text(key));
        out.push(':');
        write_nested(value, indent, out);
    }
}

fn write_list(items: &[Value], indent: usize, out: &mut String) {
    for item in items {
        push_indent(out, indent);
        out.push('-');
        match item {
            // A map's first key goes on the dash's line.
            Value::Object(map) if !map.is_empty() => {
                out.push(' ');
                write_map(map, indent + 2, out);
            }
            other => write_nested(other, indent, out),
        }
    }
}

fn write_nested(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(map, indent + 2, out);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_list(items, indent + 2, out);
        }
        scalar => {
            out.push(' ');
            write_scalar(scalar, indent + 2, out);
            out.push('\n');
        }
    }
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn write_scalar(value: &Value, block_indent: usize, out: &mut String) {
    match value {
        Value::String(s) if is_block_friendly(s) => {
            out.push_str(if s.ends_with('\n') { "|" } else { "|-" });
            for line in s.strip_suffix('\n').unwrap_or(s).split('\n') {
                out.push('\n');
                if !line.is_empty() {
                    push_indent(out, block_indent);
                    out.push_str(line);
                }
            }
        }
        Value::String(s) => out.push_str(&scalar_text(s)),
        Value::Object(_) => out.push_str("{}"),
        Value::Array(_) => out.push_str("[]"),
        other => out.push_str(&other.to_string()),
    }
}

/// Multi-line text that a literal block shows exactly as it is.
fn is_block_friendly(s: &str) -> bool {
    s.contains('\n')
        && !s.starts_with([' ', '\t', '\n'])
        && !s.ends_with("\n\n")
        && !s.chars().any(|c| c == '\r' || (c.is_control() && c != '\n' && c != '\t'))
}

/// A string as a plain scalar when YAML reads it back as the same string, else double-quoted.
fn scalar_text(s: &str) -> String {
    if is_plain_safe(s) { s.to_string() } else { serde_json::Value::String(s.to_string()).to_string() }
}

fn is_plain_safe(s: &str) -> bool {
    const RESERVED: &[&str] =
        &["true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", "<<", "=", ".inf", ".nan", "-.inf"];
    let Some(first) = s.chars().next() else { return false };
    let numeric_start = first.is_ascii_digit() || matches!(first, '+' | '-' | '.');
    !"-?:,[]{}#&*!|>'\"%@`".contains(first)
        && !first.is_whitespace()
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.chars().any(|c| c.is_control())
        && !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(s))
        && !(numeric_start && looks_numeric(s))
}

/// Anything YAML 1.1 or 1.2 might read as a number (`1.0`, `1e3`, `0x1F`, `1_000`, `1:30`).
fn looks_numeric(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_hexdigit() || "+-._:xXoObB".contains(c))
}

// ------------------------------------------------------------------------------ line diff

/// A unified diff of two canonical YAML texts, with `context` lines around each change.
pub fn line_diff(old: &str, new: &str, context: usize) -> Vec<Hunk> {
    let diff = TextDiff::from_lines(old, new);
    diff.grouped_ops(context)
        .into_iter()
        .map(|group| {
            let (first, last) = (&group[0], &group[group.len() - 1]);
            let old_range = first.old_range().start..last.old_range().end;
            let new_range = first.new_range().start..last.new_range().end;
            let lines = group
                .iter()
                .flat_map(|op| diff.iter_changes(op))
                .map(|change| {
                    let tag = match change.tag() {
                        ChangeTag::Equal => LineTag::Context,
                        ChangeTag::Delete => LineTag::Removed,
                        ChangeTag::Insert => LineTag::Added,
                    };
                    (tag, change.value().trim_end_matches('\n').to_string())
                })
                .collect();
            Hunk {
                header: format!(
                    "@@ -{},{} +{},{} @@",
                    old_range.start + 1,
                    old_range.len(),
                    new_range.start + 1,
                    new_range.len()
                ),
                lines,
            }
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    pub header: String,
    pub lines: Vec<(LineTag, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineTag {
    Context,
    Removed,
    Added,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::manifest;
    use serde_json::json;

    fn manifest(text: &str) -> Manifest {
        manifest::parse(text, "ns").expect("valid manifest")
    }

    fn yaml(value: &Option<Value>) -> String {
        value.as_ref().map(canonical_yaml).unwrap_or_default()
    }

    fn compare_texts(old: &str, new: &str, options: &Options) -> Comparison {
        compare(manifest(old), manifest(new), options)
    }

    const WEB: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n    \
        helm.sh/chart: web-1.0.0\nspec:\n  replicas: 1\n  template:\n    spec:\n      containers:\n      - name: web\n        \
        image: web:1.0\n";

    #[test]
    fn added_removed_changed_and_unchanged_resources() {
        let config = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: config}\n";
        let old = format!("{WEB}---\n{config}---\napiVersion: v1\nkind: Service\nmetadata: {{name: old}}\n");
        let new = format!(
            "{}---\n{config}---\napiVersion: v1\nkind: Service\nmetadata: {{name: new}}\n",
            WEB.replace("replicas: 1", "replicas: 3")
        );
        let comparison = compare_texts(&old, &new, &Options::default());
        let summary: Vec<_> = comparison.changes.iter().map(|c| (c.kind, c.key.to_string())).collect();
        assert_eq!(
            summary,
            [
                (ChangeKind::Added, "Service ns/new".to_string()),
                (ChangeKind::Removed, "Service ns/old".to_string()),
                (ChangeKind::Changed, "apps/Deployment ns/web".to_string()),
            ]
        );
        assert_eq!(comparison.plan(), Plan { add: 1, change: 1, destroy: 1, unchanged: 1 });
        let web = &comparison.changes[2];
        assert_eq!(web.fields.len(), 1);
        assert_eq!(web.fields[0].path.to_string(), "spec.replicas");
        assert_eq!((web.fields[0].old.clone(), web.fields[0].new.clone()), (Some(json!(1)), Some(json!(3))));
        assert!(comparison.changes[0].old.is_none() && comparison.changes[0].new.is_some());
    }

    #[test]
    fn resources_that_change_at_every_render_are_told_apart_from_changes_of_config() {
        let secret =
            |key: &str| format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: tls}}\ndata: {{ca.crt: {key}}}\n");
        let deployed = format!("{WEB}---\n{}", secret("AAAA"));
        let first = format!("{}---\n{}", WEB.replace("replicas: 1", "replicas: 2"), secret("BBBB"));
        let second = format!("{}---\n{}", WEB.replace("replicas: 1", "replicas: 2"), secret("CCCC"));
        let mut live = compare_texts(&deployed, &first, &Options::default());
        let again = compare_texts(&first, &second, &Options::default());
        let regenerated = take_regenerated(&mut live, &again);
        assert_eq!(regenerated, [Regenerated { resource: "Secret ns/tls".into(), fields: vec!["data.ca.crt".into()] }]);
        let left: Vec<String> = live.changes.iter().map(|c| c.key.to_string()).collect();
        assert_eq!(left, ["apps/Deployment ns/web"], "a change of config stays");
        assert_eq!(live.unchanged, 1);
        // A resource with a change beside the regenerated field stays whole.
        let mixed = secret("BBBB").replace("metadata: {name: tls}", "metadata: {name: tls, labels: {a: b}}");
        let mut live = compare_texts(&secret("AAAA"), &mixed, &Options::default());
        assert!(
            take_regenerated(&mut live, &compare_texts(&mixed, &mixed.replace("BBBB", "CCCC"), &Options::default()))
                .is_empty()
        );
        assert_eq!(live.changes.len(), 1);
    }

    #[test]
    fn field_paths_for_nested_lists_and_added_keys() {
        let new = WEB.replace("image: web:1.0", "image: web:1.1\n        args: [--fast]");
        let comparison = compare_texts(WEB, &new, &Options::default());
        let fields: Vec<_> = comparison.changes[0]
            .fields
            .iter()
            .map(|f| (f.path.to_string(), f.path.pointer(), f.old.clone(), f.new.clone()))
            .collect();
        assert_eq!(
            fields,
            [
                (
                    "spec.template.spec.containers[0].args".to_string(),
                    "/spec/template/spec/containers/0/args".to_string(),
                    None,
                    Some(json!(["--fast"]))
                ),
                (
                    "spec.template.spec.containers[0].image".to_string(),
                    "/spec/template/spec/containers/0/image".to_string(),
                    Some(json!("web:1.0")),
                    Some(json!("web:1.1"))
                ),
            ]
        );
    }

    #[test]
    fn a_new_api_version_is_a_change_of_the_same_resource() {
        let old = "apiVersion: autoscaling/v2beta2\nkind: HorizontalPodAutoscaler\nmetadata: {name: web}\n";
        let comparison = compare_texts(old, &old.replace("v2beta2", "v2"), &Options::default());
        assert_eq!(comparison.changes.len(), 1);
        assert_eq!(comparison.changes[0].kind, ChangeKind::Changed);
        assert_eq!(comparison.changes[0].fields[0].path.to_string(), "apiVersion");
    }

    #[test]
    fn ignored_fields_are_not_changes() {
        let new = WEB.replace("web-1.0.0", "web-1.0.1");
        let options = Options {
            ignore: vec![IgnorePattern::parse("metadata.labels.helm.sh/chart").expect("valid")],
            ..Options::default()
        };
        assert!(compare_texts(WEB, &new, &options).is_empty());
        assert!(!compare_texts(WEB, &new, &Options::default()).is_empty());

        let new = WEB.replace("image: web:1.0", "image: web:2.0").replace("replicas: 1", "replicas: 2");
        let options = Options {
            ignore: vec![IgnorePattern::parse("spec.template.spec.containers[*].image").expect("valid")],
            ..Options::default()
        };
        let comparison = compare_texts(WEB, &new, &options);
        let paths: Vec<_> = comparison.changes[0].fields.iter().map(|f| f.path.to_string()).collect();
        assert_eq!(paths, ["spec.replicas"]);
        assert!(!yaml(&comparison.changes[0].new).contains("image"), "ignored fields leave the line diff too");
    }

    #[test]
    fn ignore_patterns() {
        let matches = |pattern: &str, path: &str| IgnorePattern::parse(pattern).expect("valid").matches(path);
        assert!(matches("metadata.labels.helm.sh/chart", "metadata.labels.helm.sh/chart"));
        assert!(matches(r#"metadata.annotations["checksum/config"]"#, "metadata.annotations.checksum/config"));
        assert!(matches("metadata.labels.*", "metadata.labels.helm.sh/chart"));
        assert!(matches("spec.containers[*].image", "spec.containers[12].image"));
        assert!(!matches("spec.containers[*].image", "spec.containers.image"));
        assert!(!matches("spec.*.image", "spec.containers[0].image"));
        assert!(!matches("spec.replicas", "spec.replicasX"));
        assert!(IgnorePattern::parse("").is_err());
        assert!(IgnorePattern::parse(".spec").is_err());
    }

    const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata:\n  password: aHVudGVyMg==\n  \
        user: YWRtaW4=\nstringData:\n  token: s3cr3t-token-value\n";

    #[test]
    fn secret_values_are_redacted_with_sizes() {
        let new = SECRET.replace("aHVudGVyMg==", "Y29ycmVjdC1ob3JzZQ==").replace("s3cr3t-token-value", "n3w-t0ken");
        let comparison = compare_texts(SECRET, &new, &Options::default());
        let change = &comparison.changes[0];
        let everything = format!("{change:?}");
        for secret in ["aHVudGVyMg==", "Y29ycmVjdC1ob3JzZQ==", "YWRtaW4=", "s3cr3t-token-value", "n3w-t0ken"] {
            assert!(!everything.contains(secret), "{secret} leaked: {everything}");
        }
        let fields: Vec<_> =
            change.fields.iter().map(|f| (f.path.to_string(), f.old.clone(), f.new.clone(), f.sensitive)).collect();
        assert_eq!(
            fields,
            [
                ("data.password".to_string(), Some(json!("(7 bytes)")), Some(json!("(13 bytes, changed)")), true),
                ("stringData.token".to_string(), Some(json!("(18 bytes)")), Some(json!("(9 bytes, changed)")), true),
            ]
        );
        let shown = yaml(&change.new);
        assert!(shown.contains("user: (5 bytes)\n"), "{shown}");
        assert!(shown.contains("password: (13 bytes, changed)\n"), "{shown}");
    }

    #[test]
    fn equal_sized_secret_changes_still_show_as_changed_lines() {
        let new = SECRET.replace("aHVudGVyMg==", "aHVudGVyMw==");
        let change = &compare_texts(SECRET, &new, &Options::default()).changes[0];
        let hunks = line_diff(&yaml(&change.old), &yaml(&change.new), 0);
        let lines: Vec<_> = hunks.iter().flat_map(|h| h.lines.clone()).collect();
        assert_eq!(
            lines,
            [
                (LineTag::Removed, "  password: (7 bytes)".to_string()),
                (LineTag::Added, "  password: (7 bytes, changed)".to_string()),
            ]
        );
    }

    #[test]
    fn added_secrets_are_redacted_and_show_secrets_shows_them() {
        let comparison = compare_texts("", SECRET, &Options::default());
        assert!(!yaml(&comparison.changes[0].new).contains("aHVudGVyMg=="));
        let comparison = compare_texts("", SECRET, &Options { show_secrets: true, ..Options::default() });
        assert!(yaml(&comparison.changes[0].new).contains("aHVudGVyMg=="));
    }

    #[test]
    fn canonical_yaml_sorts_keys_and_quotes_only_where_needed() {
        let value = json!({
            "z": "plain", "a": {"n": 1, "t": "true", "v": "1.10", "cpu": "100m", "empty": "", "colon": "a: b",
                "list": [{"name": "x", "value": "yes"}, [1, 2], []], "map": {}},
            "text": "line one\nline two\n", "no_newline": "a\nb",
        });
        assert_eq!(
            canonical_yaml(&value),
            "a:\n  colon: \"a: b\"\n  cpu: 100m\n  empty: \"\"\n  list:\n    - name: x\n      value: \"yes\"\n    -\n      \
             - 1\n      - 2\n    - []\n  map: {}\n  \"n\": 1\n  t: \"true\"\n  v: \"1.10\"\nno_newline: |-\n  a\n  b\ntext: |\n  line one\n  \
             line two\nz: plain\n"
        );
    }

    #[test]
    fn canonical_yaml_reads_back_as_the_same_value() {
        let value = json!({"k": ["-x", "- y", "#c", "a #b", "1:30", "0x1F", "2001-12-14", "~", "Null", "ON", " pad",
            "tab\there", "multi\n  indented\n", "", "@at", "trailing:"], "n": [1.5, -2, null, true]});
        let text = canonical_yaml(&value);
        let back =
            crate::config::yaml::from_str::<crate::config::yaml::HelmValue>(&text, std::path::Path::new("c.yaml"))
                .expect("canonical YAML parses");
        assert_eq!(back.0, value, "{text}");
    }

    #[test]
    fn line_diff_hunks_with_context() {
        let old = "a: 1\nb: 2\nc: 3\nd: 4\ne: 5\nf: 6\n";
        let new = "a: 1\nb: 2\nc: 30\nd: 4\ne: 5\nf: 6\n";
        let hunks = line_diff(old, new, 1);
        assert_eq!(hunks.len(), 1);
        assert_eq!(hunks[0].header, "@@ -2,3 +2,3 @@");
        assert_eq!(
            hunks[0].lines,
            [
                (LineTag::Context, "b: 2".to_string()),
                (LineTag::Removed, "c: 3".to_string()),
                (LineTag::Added, "c: 30".to_string()),
                (LineTag::Context, "d: 4".to_string()),
            ]
        );
    }
}
