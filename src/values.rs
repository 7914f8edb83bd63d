//! Values: Helm's merge rules and value paths (`a.b[2]`, `a["dotted.key"]`).

use std::fmt;

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
}
