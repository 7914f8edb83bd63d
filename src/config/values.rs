//! Values: Helm's merge rules and value paths (`a.b[2]`, `a["dotted.key"]`).

use std::fmt;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation, RemoveOperation, ReplaceOperation};
use serde_json::{Map, Value};

/// Merge `overlay` onto `base` as Helm merges its `-f` files, in order: maps merge deeply,
/// anything else (scalar, list, `null`) replaces.
pub fn merge(base: &mut Map<String, Value>, overlay: Map<String, Value>) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(Value::Object(base_map)), Value::Object(overlay_map)) => merge(base_map, overlay_map),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// The values a chart's templates see: user-supplied values coalesced with the chart's
/// defaults, as Helm's `chartutil.CoalesceValues` does it. The user's value wins, tables merge,
/// and `null` deletes a key the chart has a default for (a `null` the chart never set stays,
/// at any depth: checked against helm 3.17).
pub fn coalesce_with_defaults(mut user: Map<String, Value>, defaults: &Map<String, Value>) -> Map<String, Value> {
    coalesce_tables(&mut user, defaults);
    user
}

fn coalesce_tables(dst: &mut Map<String, Value>, src: &Map<String, Value>) {
    for (key, default) in src {
        match dst.get_mut(key) {
            None => {
                dst.insert(key.clone(), default.clone());
            }
            Some(Value::Null) => {
                dst.remove(key);
            }
            Some(Value::Object(dst_table)) => {
                if let Value::Object(src_table) = default {
                    coalesce_tables(dst_table, src_table);
                }
            }
            Some(_) => {}
        }
    }
}

/// The promotion patch from one stage's values to the next: every difference outside the
/// `env_specific` paths, as RFC 6902 operations that turn `to` into the promoted values. Helm's
/// merge granularity decides the steps: maps recurse, lists and scalars are replaced whole. A
/// list or scalar that contains an env-specific path cannot be split, so it is left as `to` has it.
pub fn promotion_patch(
    from: &Map<String, Value>,
    to: &Map<String, Value>,
    env_specific: &[ValuePath],
) -> Vec<PatchOperation> {
    let mut ops = Vec::new();
    patch_maps(from, to, &mut Vec::new(), env_specific, &mut ops);
    ops
}

/// `to` with the promotion patch applied.
pub fn promote(from: &Map<String, Value>, to: &Map<String, Value>, env_specific: &[ValuePath]) -> Map<String, Value> {
    let mut promoted = Value::Object(to.clone());
    // The operations were computed against `to`, so every path they name exists (or its parent does).
    if json_patch::patch(&mut promoted, &promotion_patch(from, to, env_specific)).is_err() {
        unreachable!("a promotion patch always applies to the values it was computed against");
    }
    match promoted {
        Value::Object(map) => map,
        _ => unreachable!("patching a map at its keys leaves a map"),
    }
}

fn patch_maps(
    from: &Map<String, Value>,
    to: &Map<String, Value>,
    path: &mut Vec<String>,
    env_specific: &[ValuePath],
    ops: &mut Vec<PatchOperation>,
) {
    let mut keys: Vec<&String> = from.keys().chain(to.keys().filter(|k| !from.contains_key(*k))).collect();
    keys.sort();
    for key in keys {
        path.push(key.clone());
        patch_value(from.get(key), to.get(key), path, env_specific, ops);
        path.pop();
    }
}

fn patch_value(
    from: Option<&Value>,
    to: Option<&Value>,
    path: &mut Vec<String>,
    env_specific: &[ValuePath],
    ops: &mut Vec<PatchOperation>,
) {
    let keys_match = |env: &ValuePath, n: usize| {
        env.0.iter().zip(path.iter()).take(n).all(|(segment, key)| matches!(segment, Segment::Key(k) if k == key))
    };
    // An env-specific path at or above this one: the value stays as `to` has it.
    if env_specific.iter().any(|env| env.0.len() <= path.len() && keys_match(env, env.0.len())) {
        return;
    }
    let contains_env_specific = env_specific.iter().any(|env| env.0.len() > path.len() && keys_match(env, path.len()));
    let pointer = || PointerBuf::from_tokens(path.iter().map(String::as_str));
    let empty = Map::new();
    match (from, to) {
        (Some(Value::Object(f)), Some(Value::Object(t))) => patch_maps(f, t, path, env_specific, ops),
        (Some(Value::Object(f)), None) if contains_env_specific => {
            ops.push(PatchOperation::Add(AddOperation { path: pointer(), value: Value::Object(Map::new()) }));
            patch_maps(f, &empty, path, env_specific, ops);
        }
        (None, Some(Value::Object(t))) if contains_env_specific => patch_maps(&empty, t, path, env_specific, ops),
        _ if contains_env_specific => {}
        (Some(f), Some(t)) if f != t => {
            ops.push(PatchOperation::Replace(ReplaceOperation { path: pointer(), value: f.clone() }));
        }
        (Some(f), None) => ops.push(PatchOperation::Add(AddOperation { path: pointer(), value: f.clone() })),
        (None, Some(_)) => ops.push(PatchOperation::Remove(RemoveOperation { path: pointer() })),
        _ => {}
    }
}

/// One step of a value path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A path into a values tree: `image.tag`, `ingress.hosts[0].host`, `podAnnotations["prometheus.io/scrape"]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ValuePath(pub Vec<Segment>);

impl ValuePath {
    pub fn parse(text: &str) -> Result<ValuePath, String> {
        let mut segments = Vec::new();
        let mut chars = text.char_indices().peekable();
        let mut key = String::new();
        let mut expect_key = true; // at the start and after a `.`
        while let Some((i, c)) = chars.next() {
            match c {
                '.' => {
                    if expect_key && key.is_empty() {
                        return Err(format!("empty key before `.` at character {}", i + 1));
                    }
                    if !key.is_empty() {
                        segments.push(Segment::Key(std::mem::take(&mut key)));
                    }
                    expect_key = true;
                }
                '[' => {
                    if !key.is_empty() {
                        segments.push(Segment::Key(std::mem::take(&mut key)));
                    } else if segments.is_empty() {
                        return Err("a path must start with a key, e.g. `hosts[0]`".into());
                    }
                    let mut inner = String::new();
                    let mut closed = false;
                    for (_, c) in chars.by_ref() {
                        let inside_quotes = inner.starts_with('"') && (inner.len() < 2 || !inner.ends_with('"'));
                        if c == ']' && !inside_quotes {
                            closed = true;
                            break;
                        }
                        inner.push(c);
                    }
                    if !closed {
                        return Err(format!("`[` at character {} is never closed", i + 1));
                    }
                    if let Some(quoted) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                        segments.push(Segment::Key(quoted.to_string()));
                    } else {
                        let index = inner.parse::<usize>().map_err(|_| {
                            format!("`[{inner}]` is not a list index; write `[0]`, or `[\"key\"]` for a key")
                        })?;
                        segments.push(Segment::Index(index));
                    }
                    expect_key = false;
                    if let Some((_, next)) = chars.peek()
                        && *next != '.'
                        && *next != '['
                    {
                        return Err(format!("expected `.` or `[` after `[{inner}]`"));
                    }
                }
                ']' => return Err(format!("unexpected `]` at character {}", i + 1)),
                c => {
                    key.push(c);
                    expect_key = false;
                }
            }
        }
        if !key.is_empty() {
            segments.push(Segment::Key(key));
        } else if expect_key {
            return Err(if text.is_empty() { "the path is empty".into() } else { "the path ends with `.`".into() });
        }
        Ok(ValuePath(segments))
    }

    /// The value at this path, if the tree has one.
    pub fn get<'v>(&self, root: &'v Map<String, Value>) -> Option<&'v Value> {
        let (first, rest) = self.0.split_first()?;
        let Segment::Key(first) = first else { return None };
        let mut current = root.get(first)?;
        for segment in rest {
            current = match (segment, current) {
                (Segment::Key(k), Value::Object(map)) => map.get(k)?,
                (Segment::Index(i), Value::Array(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(current)
    }
}

impl fmt::Display for ValuePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(k) if k.contains(['.', '[', ']']) => write!(f, "[\"{k}\"]")?,
                Segment::Key(k) if i == 0 => f.write_str(k)?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// The value at `keys`, if every step is a map key that exists.
pub fn lookup<'v>(root: &'v Map<String, Value>, keys: &[String]) -> Option<&'v Value> {
    let (first, rest) = keys.split_first()?;
    rest.iter().try_fold(root.get(first)?, |value, key| value.as_object()?.get(key))
}

/// The keys a patch operation names.
pub fn op_keys(op: &PatchOperation) -> Vec<String> {
    let path = match op {
        PatchOperation::Add(o) => &o.path,
        PatchOperation::Remove(o) => &o.path,
        PatchOperation::Replace(o) => &o.path,
        PatchOperation::Move(o) => &o.path,
        PatchOperation::Copy(o) => &o.path,
        PatchOperation::Test(o) => &o.path,
    };
    path.tokens().map(|t| t.decoded().into_owned()).collect()
}

/// A user-supplied value the deployed revision has and the values files do not give (or the
/// other way round), at Helm's merge granularity.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    pub keys: Vec<String>,
    pub deployed: Option<Value>,
    pub configured: Option<Value>,
}

/// User-supplied values of a deployed revision against the values files merged.
pub fn differences(deployed: &Map<String, Value>, configured: &Map<String, Value>) -> Vec<Difference> {
    promotion_patch(configured, deployed, &[])
        .iter()
        .map(op_keys)
        .map(|keys| Difference {
            deployed: lookup(deployed, &keys).cloned(),
            configured: lookup(configured, &keys).cloned(),
            keys,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not a map"),
        }
    }

    #[test]
    fn maps_merge_deeply() {
        let mut base = map(json!({"a": {"b": 1, "c": 2}}));
        merge(&mut base, map(json!({"a": {"c": 3, "d": 4}})));
        assert_eq!(Value::Object(base), json!({"a": {"b": 1, "c": 3, "d": 4}}));
    }

    #[test]
    fn lists_replace_whole() {
        let mut base = map(json!({"hosts": ["a", "b", "c"]}));
        merge(&mut base, map(json!({"hosts": ["z"]})));
        assert_eq!(Value::Object(base), json!({"hosts": ["z"]}));
    }

    #[test]
    fn scalars_replace_and_types_may_change() {
        let mut base = map(json!({"a": {"b": 1}, "c": 1}));
        merge(&mut base, map(json!({"a": 5, "c": {"d": 1}})));
        assert_eq!(Value::Object(base), json!({"a": 5, "c": {"d": 1}}));
    }

    #[test]
    fn null_in_a_later_file_overrides_and_is_kept_for_coalescing() {
        let mut base = map(json!({"a": {"b": 1}}));
        merge(&mut base, map(json!({"a": null})));
        assert_eq!(Value::Object(base), json!({"a": null}));
    }

    #[test]
    fn coalesce_null_deletes_only_a_key_the_chart_defaults() {
        let user = map(json!({"removeMe": null, "nested": {"gone": null, "brandNew": null}}));
        let defaults = map(json!({"removeMe": 1, "keep": 2, "nested": {"gone": 3, "x": 4}}));
        let out = coalesce_with_defaults(user, &defaults);
        assert_eq!(Value::Object(out), json!({"keep": 2, "nested": {"brandNew": null, "x": 4}}));
    }

    #[test]
    fn coalesce_keeps_a_top_level_null_the_chart_never_set() {
        let out = coalesce_with_defaults(map(json!({"newNull": null})), &map(json!({"a": 1})));
        assert_eq!(Value::Object(out), json!({"newNull": null, "a": 1}));
    }

    #[test]
    fn coalesce_user_scalar_beats_default_table_and_the_reverse() {
        let user = map(json!({"a": 5, "b": {"x": 1}}));
        let defaults = map(json!({"a": {"y": 1}, "b": 7}));
        assert_eq!(Value::Object(coalesce_with_defaults(user, &defaults)), json!({"a": 5, "b": {"x": 1}}));
    }

    #[test]
    fn paths_parse_and_print() {
        for text in ["replicaCount", "ingress.hosts[0].host", "a[1][2]", "podAnnotations[\"prometheus.io/scrape\"]"] {
            let path = ValuePath::parse(text).expect(text);
            assert_eq!(path.to_string(), text);
        }
        assert_eq!(
            ValuePath::parse("a.b[2]").expect("valid"),
            ValuePath(vec![Segment::Key("a".into()), Segment::Key("b".into()), Segment::Index(2)])
        );
    }

    #[test]
    fn bad_paths_are_explained() {
        assert!(ValuePath::parse("").expect_err("invalid").contains("empty"));
        assert!(ValuePath::parse("a..b").expect_err("invalid").contains("empty key"));
        assert!(ValuePath::parse("a.").expect_err("invalid").contains("ends with"));
        assert!(ValuePath::parse("a[x]").expect_err("invalid").contains("not a list index"));
        assert!(ValuePath::parse("a[1").expect_err("invalid").contains("never closed"));
        assert!(ValuePath::parse("[1]").expect_err("invalid").contains("start with a key"));
    }

    #[test]
    fn get_follows_keys_and_indexes() {
        let values = map(json!({"ingress": {"hosts": [{"host": "a"}, {"host": "b"}]}}));
        let path = ValuePath::parse("ingress.hosts[1].host").expect("valid");
        assert_eq!(path.get(&values), Some(&json!("b")));
        assert_eq!(ValuePath::parse("ingress.hosts[5]").expect("valid").get(&values), None);
        assert_eq!(ValuePath::parse("ingress.nope").expect("valid").get(&values), None);
    }

    fn env(paths: &[&str]) -> Vec<ValuePath> {
        paths.iter().map(|p| ValuePath::parse(p).expect("valid path")).collect()
    }

    #[test]
    fn promotion_carries_everything_outside_env_specific() {
        let dev = map(json!({"image": {"tag": "1.5.0", "pullPolicy": "Always"}, "replicaCount": 1,
            "ingress": {"host": "dev.example.com", "path": "/v2"}, "newFlag": true, "hosts": ["a"]}));
        let staging = map(json!({"image": {"tag": "1.4.0", "pullPolicy": "Always"}, "replicaCount": 3,
            "ingress": {"host": "staging.example.com", "path": "/"}, "oldFlag": true, "hosts": ["b", "c"]}));
        let envs = env(&["replicaCount", "ingress.host"]);
        let ops: Vec<String> = promotion_patch(&dev, &staging, &envs).iter().map(ToString::to_string).collect();
        assert_eq!(
            ops,
            [
                r#"{"op":"replace","path":"/hosts","value":["a"]}"#,
                r#"{"op":"replace","path":"/image/tag","value":"1.5.0"}"#,
                r#"{"op":"replace","path":"/ingress/path","value":"/v2"}"#,
                r#"{"op":"add","path":"/newFlag","value":true}"#,
                r#"{"op":"remove","path":"/oldFlag"}"#,
            ]
        );
        assert_eq!(
            Value::Object(promote(&dev, &staging, &envs)),
            json!({"image": {"tag": "1.5.0", "pullPolicy": "Always"}, "replicaCount": 3,
                "ingress": {"host": "staging.example.com", "path": "/v2"}, "newFlag": true, "hosts": ["a"]})
        );
    }

    #[test]
    fn promotion_builds_a_missing_map_around_an_env_specific_key() {
        let dev = map(json!({"ingress": {"host": "dev", "enabled": true}}));
        let staging = map(json!({}));
        assert_eq!(
            Value::Object(promote(&dev, &staging, &env(&["ingress.host"]))),
            json!({"ingress": {"enabled": true}})
        );
        // And removes what only the target had, except its env-specific part.
        assert_eq!(
            Value::Object(promote(&staging, &dev, &env(&["ingress.host"]))),
            json!({"ingress": {"host": "dev"}})
        );
    }

    #[test]
    fn a_list_holding_an_env_specific_path_is_left_alone() {
        let dev = map(json!({"hosts": [{"name": "dev"}], "other": 1}));
        let staging = map(json!({"hosts": [{"name": "staging"}], "other": 2}));
        assert_eq!(
            Value::Object(promote(&dev, &staging, &env(&["hosts[0].name"]))),
            json!({"hosts": [{"name": "staging"}], "other": 1})
        );
    }

    #[test]
    fn keys_with_slashes_and_tildes_are_escaped_in_patch_paths() {
        let ops = promotion_patch(&map(json!({"a/b": {"c~d": 1}})), &map(json!({"a/b": {"c~d": 2}})), &[]);
        assert_eq!(ops[0].to_string(), r#"{"op":"replace","path":"/a~1b/c~0d","value":1}"#);
    }
}
