//! Reading YAML the way Helm does. Every YAML read in helm-envs goes through here, so
//! serde-saphyr is configured once: YAML 1.1 scalars (yes/no/on/off/y/n booleans, legacy
//! octal `0777`, `1_000`), last duplicate key wins, and budgets raised for large manifests.
//!
//! Helm reads values with sigs.k8s.io/yaml: YAML (go-yaml v2) -> JSON -> Go values. So map
//! keys become strings (`yes:` is the key `"true"`, `1:` is `"1"`) and every number is a
//! float64. [`HelmValue`] reproduces that view as a `serde_json::Value`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::options::DuplicateKeyPolicy;

use crate::error::Diagnostic;

/// The one serde-saphyr configuration used for every read.
pub fn helm_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        legacy_octal_numbers: true,
        strict_booleans: false,
        duplicate_keys: DuplicateKeyPolicy::LastWins,
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_documents: 1_000_000,
            max_events: 200_000_000,
            max_nodes: 100_000_000,
            max_depth: 512,
            max_total_scalar_bytes: 1 << 30,
        },
    }
}

/// Deserialize `text` (the contents of `file`) into `T`, with errors located in `file`.
pub fn from_str<T: DeserializeOwned>(text: &str, file: &Path) -> Result<T, Diagnostic> {
    serde_saphyr::from_str_with_options(text, helm_options()).map_err(|err| located(&err, file))
}

/// The values files parsed in this run: their credentials are known to `redaction`.
static PARSED: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Whether `file` was parsed as a values file in this run (so its credentials are redacted).
pub fn was_parsed(file: &Path) -> bool {
    PARSED.lock().is_ok_and(|parsed| parsed.iter().any(|p| p == file))
}

/// Parse a values file: a map at the top (an empty file is an empty map), as Helm sees it.
/// Its credentials become known to `redaction`, which keeps it (shared, not copied).
pub fn parse_values(text: &str, file: &Path) -> Result<Arc<Map<String, Value>>, Diagnostic> {
    let map = Arc::new(read_back(text, file)?);
    crate::redaction::values_file(Arc::clone(&map));
    if let Ok(mut parsed) = PARSED.lock()
        && !parsed.iter().any(|p| p == file)
    {
        parsed.push(file.to_path_buf());
    }
    Ok(map)
}

/// Record that the values of `file` are all values of files already parsed (a promotion's
/// edited copy, checked when it was planned): their credentials are known without reading it.
pub fn holds_parsed_values(file: &Path) {
    if let Ok(mut parsed) = PARSED.lock() {
        parsed.push(file.to_path_buf());
    }
}

/// Parse an edited values file to check what it holds: its values are ones already read (the
/// stages' own), so `redaction` is not told again.
pub fn read_back(text: &str, file: &Path) -> Result<Map<String, Value>, Diagnostic> {
    let value: Option<HelmValue> = from_str(text, file)?;
    match value.map(|v| v.0) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(other) => Err(Diagnostic::new(
            file,
            Some((1, 1)),
            format!("a values file must be a map of keys, but this one is {}", kind_of(&other)),
        )
        .help("write `key: value` pairs at the top level")),
    }
}

fn located(err: &serde_saphyr::Error, file: &Path) -> Diagnostic {
    let message = err.to_string();
    match err.location().filter(|l| l.line() > 0) {
        Some(loc) => {
            let suffix = format!(" at line {}, column {}", loc.line(), loc.column());
            let message = message.strip_suffix(&suffix).unwrap_or(&message).to_string();
            Diagnostic::new(file, Some((loc.line(), loc.column())), message)
        }
        None => Diagnostic::new(file, None, message),
    }
}

pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// A YAML value as Helm's `.Values` holds it (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct HelmValue(pub Value);

impl<'de> Deserialize<'de> for HelmValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(HelmValueVisitor).map(HelmValue)
    }
}

struct HelmValueVisitor;

impl<'de> Visitor<'de> for HelmValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(float64_number(v as f64, Some(Number::from(v))))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(float64_number(v as f64, Some(Number::from(v))))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(float64_number(v as f64, None))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(float64_number(v as f64, None))
    }
    // Non-finite floats never get here: the default policy rejects them, as Helm does.
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(float64_number(v, None))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        HelmValue::deserialize(d).map(|v| v.0)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(HelmValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(HelmKey(key)) = map.next_key()? {
            let HelmValue(value) = map.next_value()?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// Helm keeps numbers as float64: integers beyond 2^53 lose precision and `1.0` is `1`.
/// Integral values are stored as JSON integers so that `1`, `1.0` and `1e0` compare equal.
fn float64_number(as_f64: f64, exact: Option<Number>) -> Value {
    const EXACT_LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53
    if as_f64.fract() == 0.0 && as_f64.abs() <= EXACT_LIMIT {
        return Value::Number(exact.unwrap_or_else(|| Number::from(as_f64 as i64)));
    }
    Number::from_f64(as_f64).map_or(Value::Null, Value::Number)
}

/// A map key as sigs.k8s.io/yaml turns it into a JSON key: scalars in their string form.
struct HelmKey(String);

impl<'de> Deserialize<'de> for HelmKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let HelmValue(value) = HelmValue::deserialize(deserializer)?;
        let key = match value {
            Value::String(s) => s,
            Value::Null => "null".to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(de::Error::custom(format!(
                    "a map key must be a scalar, not {} (Helm converts values to JSON)",
                    kind_of(&other)
                )));
            }
        };
        Ok(HelmKey(key))
    }
}

/// The line (1-based) of the key that defines each of the `wanted` key paths of a values file,
/// and of their ancestors (Helm's keys: `yes:` is `"true"`), when the file spells them out. One pass over the text
/// that keeps nothing but the path it is at: only the branches that lead to a wanted path are
/// visited, so a file of any size is searched in bounded memory. The first definition of a
/// key wins.
pub fn key_lines(text: &str, file: &Path, wanted: &[Vec<String>]) -> Result<HashMap<Vec<String>, usize>, Diagnostic> {
    let branches = branches_to(wanted);
    match block_keys(text, &branches) {
        Some(keys) => Ok(lines_of(keys)),
        None => parsed_key_lines(text, file, &branches),
    }
}

/// The paths and all their ancestors.
fn branches_to(paths: &[Vec<String>]) -> HashSet<&[String]> {
    paths.iter().flat_map(|path| (1..=path.len()).map(|n| &path[..n])).collect()
}

fn lines_of(keys: HashMap<Vec<String>, KeyAt>) -> HashMap<Vec<String>, usize> {
    keys.into_iter().map(|(path, at)| (path, at.line)).collect()
}

/// [`key_lines`] by a full parse that walks only the branches leading to wanted keys.
fn parsed_key_lines(
    text: &str,
    file: &Path,
    branches: &HashSet<&[String]>,
) -> Result<HashMap<Vec<String>, usize>, Diagnostic> {
    let mut lines = HashMap::new();
    let mut path = Vec::new();
    let seed = Locate { branches, path: &mut path, lines: &mut lines };
    serde_saphyr::with_deserializer_from_str_with_options(text, helm_options(), |deserializer| {
        de::DeserializeSeed::deserialize(seed, deserializer)
    })
    .map_err(|err| located(&err, file))?;
    Ok(lines)
}

/// The byte ranges of the scalars at `paths` when each is written on its key's line
/// (`tag: "2.8.0"`, `replicas: 2  # note`), found by reading lines as [`block_keys`] does;
/// `None` when the line reader does not follow the text, or a path is not such a scalar (a
/// block scalar, a flow map's entry, a key written twice).
pub fn block_scalar_ranges(text: &str, paths: &[Vec<String>]) -> Option<Vec<std::ops::Range<usize>>> {
    let keys = block_keys(text, &branches_to(paths))?;
    paths.iter().map(|path| keys.get(path)?.scalar.clone()).collect()
}

/// Where a key is in a values file's text.
#[derive(Debug, PartialEq)]
struct KeyAt {
    /// 1-based; the first definition's.
    line: usize,
    /// The byte range of its value when that is a scalar on the key's line and the key is
    /// written once.
    scalar: Option<std::ops::Range<usize>>,
}

/// The keys on the way to wanted paths (`branches`) found by reading lines, for the plain
/// block style values files are written in: a tenth of a full parse on a large file. `None`
/// as soon as the text uses anything this does not follow (flow maps nested in flow maps or
/// anchors, multi-line quoted or plain scalars, quoted keys with escapes, keys Helm spells
/// differently such as `yes` or `1`, tabs, several documents): the full parse decides then.
fn block_keys(text: &str, branches: &HashSet<&[String]>) -> Option<HashMap<Vec<String>, KeyAt>> {
    /// Where the lines being read are: in a block scalar or a list (whose contents are no
    /// values path) started at that indent, or among keys.
    enum Inside {
        Keys,
        BlockScalar(usize),
        List(usize),
    }
    if text.starts_with('\u{feff}') {
        return None;
    }
    let mut keys: HashMap<Vec<String>, KeyAt> = HashMap::new();
    let mut record = |path: &[String], line: usize, scalar: Option<std::ops::Range<usize>>| {
        keys.entry(path.to_vec()).and_modify(|at| at.scalar = None).or_insert(KeyAt { line, scalar });
    };
    // The keys above the current line, with their indents.
    let mut path: Vec<String> = Vec::new();
    let mut indents: Vec<usize> = Vec::new();
    let mut inside = Inside::Keys;
    let mut seen_content = false;
    for (number, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let content = line.trim_start_matches(' ');
        let indent = line.len() - content.len();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        match inside {
            Inside::BlockScalar(at) if indent > at => continue,
            Inside::List(at) if indent > at || (indent == at && is_list_item(content)) => continue,
            _ => inside = Inside::Keys,
        }
        if content.starts_with('\t') {
            return None;
        }
        if content == "---" && !seen_content {
            seen_content = true;
            continue;
        }
        seen_content = true;
        if is_list_item(content) {
            inside = Inside::List(indent);
            continue;
        }
        let (key, value) = split_key(content)?;
        while indents.last().is_some_and(|&above| above >= indent) {
            indents.pop();
            path.pop();
        }
        path.push(key.to_string());
        indents.push(indent);
        let wanted = branches.contains(path.as_slice());
        // `value` is a slice of `text`: its offset is where the scalar starts.
        let start = value.as_ptr() as usize - text.as_ptr() as usize;
        let mut scalar = None;
        match value.chars().next() {
            None | Some('#') => {}
            Some('|' | '>') => inside = Inside::BlockScalar(indent),
            // The keys of a flow map may be wanted; nothing under a list is a values path.
            Some('{') if wanted => {
                for key in flow_map_keys(value)? {
                    path.push(key.to_string());
                    if branches.contains(path.as_slice()) {
                        record(&path, number + 1, None);
                    }
                    path.pop();
                }
            }
            Some('{' | '[') => balanced_flow(value)?,
            Some('&' | '*' | '!' | '%' | '@' | '`') => return None,
            Some(quote @ ('"' | '\'')) => scalar = Some(start..start + 1 + closed_quote(&value[1..], quote)?),
            Some(_) => {
                let end = [" #", "\t#"].iter().filter_map(|comment| value.find(comment)).min().unwrap_or(value.len());
                scalar = Some(start..start + value[..end].trim_end().len());
            }
        }
        if wanted {
            record(&path, number + 1, scalar);
        }
    }
    Some(keys)
}

fn is_list_item(content: &str) -> bool {
    content == "-" || content.starts_with("- ") || content.starts_with("-\t")
}

/// `key: value` -> (key as Helm names it, value with its comment); `None` for what the
/// line reader does not follow.
fn split_key(content: &str) -> Option<(&str, &str)> {
    let (key, rest) = match content.chars().next()? {
        quote @ ('"' | '\'') => {
            let end = content[1..].find(quote)? + 1;
            let key = &content[1..end];
            if key.contains('\\') || content[end + 1..].starts_with(quote) {
                return None;
            }
            (key, content[end + 1..].strip_prefix(':')?)
        }
        _ => {
            let colon = content
                .match_indices(':')
                .map(|(at, _)| at)
                .find(|&at| content[at + 1..].is_empty() || content[at + 1..].starts_with([' ', '\t']))?;
            let key = content[..colon].trim_end();
            (key, &content[colon + 1..])
        }
    };
    let plain_key_is_a_string = |key: &str| {
        let first = key.chars().next();
        first.is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '/')
            && !key
                .contains([' ', '#', '\t', '{', '}', '[', ']', ',', '&', '*', '!', '|', '>', '"', '\'', '%', '@', '`'])
            && !YAML_11_WORDS.contains(&key)
    };
    let quoted = content.starts_with(['"', '\'']);
    if !quoted && !plain_key_is_a_string(key) {
        return None;
    }
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return None;
    }
    Some((key, rest.trim_start_matches([' ', '\t'])))
}

/// Plain words that YAML 1.1 reads as something other than a string.
const YAML_11_WORDS: &[&str] = &[
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE", "on",
    "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL",
];

/// A flow collection that ends on its line (brackets outside quotes balance).
fn balanced_flow(value: &str) -> Option<()> {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    for c in value.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '{' | '[') => depth += 1,
            (None, '}' | ']') => depth -= 1,
            (None, '#') if depth == 0 => break,
            (None, '&' | '*') => return None,
            _ => {}
        }
    }
    (depth == 0 && quote.is_none()).then_some(())
}

/// The keys of a flow map of scalars that ends on its line (`{cpu: 100m, memory: 128Mi}`);
/// `None` for a map nested in it, or anything [`split_key`] does not follow.
fn flow_map_keys(value: &str) -> Option<Vec<&str>> {
    balanced_flow(value)?;
    let inner = value.strip_prefix('{')?;
    let mut keys = Vec::new();
    let (mut start, mut depth, mut quote) = (0, 0, None);
    for (at, c) in inner.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '{') => return None,
            (None, '[') => depth += 1,
            (None, ']') => depth -= 1,
            (None, ',' | '}') if depth == 0 => {
                let entry = inner[start..at].trim();
                if !entry.is_empty() {
                    keys.push(split_key(entry)?.0);
                }
                if c == '}' {
                    return Some(keys);
                }
                start = at + 1;
            }
            _ => {}
        }
    }
    None
}

/// A quoted scalar that ends on its line: the length of `rest` (which follows the opening
/// quote) through the closing quote.
fn closed_quote(rest: &str, quote: char) -> Option<usize> {
    let mut chars = rest.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' if quote == '"' => {
                chars.next();
            }
            c if c == quote => {
                // '' inside single quotes is an escaped quote.
                if quote == '\'' && rest[at + 1..].starts_with('\'') {
                    chars.next();
                    continue;
                }
                return Some(at + 1);
            }
            _ => {}
        }
    }
    None
}

/// Visits a YAML node at `path`, recording the lines of the keys on the way to wanted paths.
struct Locate<'a> {
    branches: &'a HashSet<&'a [String]>,
    path: &'a mut Vec<String>,
    lines: &'a mut HashMap<Vec<String>, usize>,
}

impl<'de> de::DeserializeSeed<'de> for Locate<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Locate<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_i128<E>(self, _: i128) -> Result<(), E> {
        Ok(())
    }
    fn visit_u128<E>(self, _: u128) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        // Values files' paths are map keys: nothing under a list is wanted.
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<serde_saphyr::Spanned<HelmKey>>()? {
            self.path.push(key.value.0);
            if self.branches.contains(self.path.as_slice()) {
                if !self.lines.contains_key(self.path.as_slice()) {
                    self.lines.insert(self.path.clone(), key.referenced.line() as usize);
                }
                map.next_value_seed(Locate { branches: self.branches, path: self.path, lines: self.lines })?;
            } else {
                map.next_value::<de::IgnoredAny>()?;
            }
            self.path.pop();
        }
        Ok(())
    }
}

/// Whether a parsed YAML document is a SOPS-encrypted file: SOPS keeps its metadata (the
/// recipients, the MAC) under a top-level `sops` key.
pub fn is_sops_encrypted(document: &Map<String, Value>) -> bool {
    document
        .get("sops")
        .and_then(Value::as_object)
        .is_some_and(|metadata| metadata.contains_key("mac") || metadata.contains_key("lastmodified"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_key_is_found_on_its_own_line_at_any_depth() {
        let text = "# web in dev\nimage:\n  repository: web  # pinned\n  tag: \"2.8.0\"\nflow: {a: 1}\n\
                    list:\n  - a: 1\nyes: 1\nimage:\n  tag: later\n";
        let path = |p: &[&str]| p.iter().map(|k| k.to_string()).collect::<Vec<_>>();
        let wanted = [
            path(&["image"]),
            path(&["image", "tag"]),
            path(&["flow", "a"]),
            path(&["image", "digest"]),
            path(&["true"]),
            path(&["list", "a"]),
        ];
        let lines = key_lines(text, Path::new("v.yaml"), &wanted).expect("parses");
        let line = |p: &[&str]| lines.get(&path(p)).copied();
        assert_eq!(line(&["image"]), Some(2));
        assert_eq!(line(&["image", "tag"]), Some(4), "the first definition wins");
        assert_eq!(line(&["flow", "a"]), Some(5));
        assert_eq!(line(&["image", "digest"]), None);
        assert_eq!(line(&["true"]), Some(8), "`yes:` is Helm's key `true`");
        assert_eq!(line(&["list", "a"]), None, "nothing under a list is a values path");
        assert_eq!(line(&["image", "repository"]), None, "only wanted paths are recorded");
        assert_eq!(lines.len(), 6, "the wanted paths and their ancestors (`list`): {lines:?}");
        assert!(key_lines("", Path::new("v.yaml"), &wanted).expect("empty").is_empty());
        let broken = key_lines("a: [1\n", Path::new("v.yaml"), &wanted).expect_err("broken YAML");
        assert_eq!(broken.file, Path::new("v.yaml"));
    }

    fn block_lines(text: &str, branches: &HashSet<&[String]>) -> Option<HashMap<Vec<String>, usize>> {
        block_keys(text, branches).map(lines_of)
    }

    /// Every map key path of `value` (none below a list: they are no values paths).
    fn all_key_paths(value: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if let Value::Object(map) = value {
            for (key, child) in map {
                path.push(key.clone());
                out.push(path.clone());
                all_key_paths(child, path, out);
                path.pop();
            }
        }
    }

    #[test]
    fn the_line_reader_agrees_with_the_parser_or_leaves_the_file_to_it() {
        let file = Path::new("v.yaml");
        // (text, whether the line reader must take it on)
        let cases: &[(&str, bool)] = &[
            ("---\n# web\nimage:\n  repository: web  # pinned\n  tag: \"2.8.0\"\nreplicas: 2\n", true),
            ("a:\n  b:\n    c: 1\n  d: 2\ne: 3\n", true),
            ("list:\n- x: 1\n- y: 2\nafter:\n  k: v\n", true),
            ("list:\n  - name: a\n    value: b\n  -\n    name: c\nnext: 1\n", true),
            ("script: |\n  a: 1\n  b: 2\n\n  c: 3\nafter: 1\nfolded: >-\n  x: y\nz: 1\n", true),
            ("\"helm.sh/hook\": pre-install\n'quoted key': 1\nannotations:\n  \"a.b/c\": \"x: y\"\n", true),
            ("image:\n  tag: a\nimage:\n  tag: later\n", true),
            ("a: [1, {b: 2}]\nd:\n  e: 'it''s'\n", true),
            ("a: {b: 1, c: [2, 3], 'd': \"x, y\"}\n", true),
            ("a: {b: {c: 1}}\n", false),
            ("win:\r\n  dows: 1\r\n", true),
            ("key:bar: 1\nx: \"esc\\\"aped\"\n", true),
            ("flow: {a: 1,\n  b: 2}\nc: 1\n", false),
            ("base: &base\n  a: 1\nother:\n  <<: *base\n  b: 2\n", false),
            ("yes: 1\nno:\n  a: 2\n", false),
            ("1: one\n2:\n  a: 2\n", false),
            ("text: first line\n  second line\nafter: 1\n", false),
            ("quoted: \"first\n  second\"\nafter: 1\n", false),
            ("%YAML 1.1\n---\na: 1\n", false),
            ("\"esc\\\"key\": 1\n", false),
            ("my key: 1\n", false),
            ("? complex\n: value\n", false),
            ("tag: !!str 1\n", false),
        ];
        for (text, taken) in cases {
            let Ok(value) = from_str::<Option<HelmValue>>(text, file) else { panic!("the case parses: {text:?}") };
            let mut wanted = Vec::new();
            all_key_paths(&value.map_or(Value::Null, |v| v.0), &mut Vec::new(), &mut wanted);
            wanted.push(vec!["absent".into()]);
            let branches: HashSet<&[String]> = wanted.iter().map(Vec::as_slice).collect();
            let parsed = parsed_key_lines(text, file, &branches).expect("parses");
            match block_lines(text, &branches) {
                Some(read) => assert_eq!(read, parsed, "{text:?}"),
                None => assert!(!taken, "the line reader should take {text:?} on"),
            }
            assert_eq!(block_lines(text, &branches).is_some(), *taken, "{text:?}");
        }
    }

    #[test]
    fn the_line_reader_agrees_with_the_parser_on_the_projects_own_values_files() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        let mut dirs = vec![root.join("examples"), root.join("tests"), root.join("benches")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("a directory of the repository").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "yaml") {
                    files.push(path);
                }
            }
        }
        let (mut parsed, mut taken) = (0, 0);
        for path in &files {
            let text = std::fs::read_to_string(path).expect("readable");
            // Templates are no YAML until rendered.
            let Ok(Some(HelmValue(value))) = from_str::<Option<HelmValue>>(&text, path) else { continue };
            parsed += 1;
            let mut wanted = Vec::new();
            all_key_paths(&value, &mut Vec::new(), &mut wanted);
            let branches: HashSet<&[String]> = wanted.iter().map(Vec::as_slice).collect();
            if let Some(read) = block_lines(&text, &branches) {
                assert_eq!(read, parsed_key_lines(&text, path, &branches).expect("parses"), "{}", path.display());
                taken += 1;
            }
        }
        assert!(parsed > 20, "the repository's values files are found: {parsed}");
        assert_eq!(taken, parsed, "the line reader takes every values file of the repository on");
    }

    fn values(text: &str) -> Value {
        Value::Object(Arc::unwrap_or_clone(parse_values(text, Path::new("v.yaml")).expect("valid YAML")))
    }

    #[test]
    fn yaml_1_1_booleans_like_go_yaml_v2() {
        let v = values("a: yes\nb: No\nc: on\nd: OFF\ne: y\nf: N\ng: True\nh: \"yes\"\ni: 'off'\n");
        assert_eq!(
            v,
            json!({"a": true, "b": false, "c": true, "d": false, "e": true, "f": false, "g": true, "h": "yes", "i": "off"})
        );
    }

    #[test]
    fn legacy_octal_hex_and_underscores() {
        let v = values("mode: 0777\nnew: 0o17\nhex: 0x1F\nbig: 1_000\nnotOctal: 012345678\n");
        assert_eq!(v, json!({"mode": 511, "new": 15, "hex": 31, "big": 1000, "notOctal": 12345678}));
    }

    #[test]
    fn numbers_are_float64_like_helm() {
        let v = values("a: 1.0\nb: 1.5e3\nc: 2.5\nd: 10000000000000000001\n");
        assert_eq!(v["a"], json!(1));
        assert_eq!(v["b"], json!(1500));
        assert_eq!(v["c"], json!(2.5));
        assert_eq!(v["d"], json!(1e19));
    }

    #[test]
    fn keys_become_strings_and_the_last_duplicate_wins() {
        let v = values("k:\n  yes: a\n  1: b\n  on: c\n");
        assert_eq!(v, json!({"k": {"true": "c", "1": "b"}}));
    }

    #[test]
    fn strings_that_look_like_other_things_stay_strings() {
        let v = values("time: 1:30\ndate: 2001-12-14\nversion: \"1.10\"\n");
        assert_eq!(v, json!({"time": "1:30", "date": "2001-12-14", "version": "1.10"}));
    }

    #[test]
    fn empty_file_and_comment_only_file_are_empty_maps() {
        assert_eq!(values(""), json!({}));
        assert_eq!(values("# nothing here\n"), json!({}));
    }

    #[test]
    fn infinity_is_refused_like_helm() {
        let err = parse_values("a: .inf\n", Path::new("v.yaml")).expect_err("infinity");
        assert!(err.message.contains("non-finite"), "{}", err.message);
    }

    #[test]
    fn a_list_at_the_top_is_an_error() {
        let err = parse_values("- a\n", Path::new("v.yaml")).expect_err("list");
        assert_eq!(err.position, Some((1, 1)));
        assert!(err.message.contains("a list"));
    }

    #[test]
    fn syntax_errors_carry_file_line_and_column() {
        let err = parse_values("a:\n  b: [1, 2\nc: 3\n", Path::new("v.yaml")).expect_err("syntax");
        assert!(err.location().starts_with("v.yaml:"), "{}", err.location());
        assert!(err.position.is_some());
    }
}
