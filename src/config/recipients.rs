//! Who can open a SOPS-encrypted file: the recipients in its own metadata, and the ones the
//! project's `.sops.yaml` creation rules name for it. Read without decrypting anything.
//!
//! A recipient is written as sops writes it, with its kind in front for every kind but age
//! (`age1...`, `pgp:FINGERPRINT`, `kms:ARN`, `gcp-kms:RESOURCE`, `azure-kv:URL/keys/NAME`,
//! `vault:ADDRESS/v1/ENGINE/keys/NAME`), so the same key reads the same from both sources.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::config::yaml;

/// The recipients of an encrypted file, from its `sops` metadata (key groups included).
pub fn of_file(metadata: &Map<String, Value>) -> BTreeSet<String> {
    let mut recipients = BTreeSet::new();
    collect_from_metadata(metadata, &mut recipients);
    if let Some(groups) = metadata.get("key_groups").and_then(Value::as_array) {
        for group in groups.iter().filter_map(Value::as_object) {
            collect_from_metadata(group, &mut recipients);
        }
    }
    recipients
}

fn collect_from_metadata(metadata: &Map<String, Value>, out: &mut BTreeSet<String>) {
    let entries =
        |kind: &str| metadata.get(kind).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object);
    let field = |entry: &Map<String, Value>, name: &str| {
        entry.get(name).and_then(Value::as_str).map(str::trim).unwrap_or_default().to_string()
    };
    for entry in entries("age") {
        out.insert(field(entry, "recipient"));
    }
    for entry in entries("pgp") {
        out.insert(format!("pgp:{}", field(entry, "fp").to_uppercase()));
    }
    for entry in entries("kms") {
        out.insert(format!("kms:{}", field(entry, "arn")));
    }
    for entry in entries("gcp_kms") {
        out.insert(format!("gcp-kms:{}", field(entry, "resource_id")));
    }
    for entry in entries("azure_kv") {
        out.insert(format!(
            "azure-kv:{}/keys/{}",
            field(entry, "vaultUrl").trim_end_matches('/'),
            field(entry, "name")
        ));
    }
    for entry in entries("hc_vault") {
        let address = field(entry, "vault_address");
        out.insert(format!(
            "vault:{}/v1/{}/keys/{}",
            address.trim_end_matches('/'),
            field(entry, "engine_path"),
            field(entry, "key_name")
        ));
    }
    out.remove("");
}

/// A project's `.sops.yaml`: its creation rules in order, as sops applies them (the first rule
/// whose `path_regex` matches the file's path relative to the config's directory).
pub struct CreationRules {
    pub file: PathBuf,
    rules: Vec<(Option<regex::Regex>, BTreeSet<String>)>,
}

impl CreationRules {
    /// The `.sops.yaml` sops would use from `dir`: the nearest one in it or a parent. `None`
    /// when there is none or it cannot be read as creation rules.
    pub fn find(dir: &Path) -> Option<CreationRules> {
        let file = dir.ancestors().map(|d| d.join(".sops.yaml")).find(|f| f.is_file())?;
        let text = std::fs::read_to_string(&file).ok()?;
        let config = yaml::read_back(&text, &file).ok()?;
        let mut rules = Vec::new();
        for rule in config.get("creation_rules")?.as_array()?.iter().filter_map(Value::as_object) {
            let regex = match rule.get("path_regex").and_then(Value::as_str).filter(|r| !r.is_empty()) {
                Some(pattern) => Some(regex::Regex::new(pattern).ok()?),
                None => None,
            };
            let mut recipients = rule_recipients(rule);
            if let Some(groups) = rule.get("key_groups").and_then(Value::as_array) {
                groups.iter().filter_map(Value::as_object).for_each(|g| recipients.extend(group_recipients(g)));
            }
            rules.push((regex, recipients));
        }
        Some(CreationRules { file, rules })
    }

    /// The recipients the rule for `path` names; `None` when no rule matches it.
    pub fn for_file(&self, path: &Path) -> Option<&BTreeSet<String>> {
        let dir = self.file.parent()?;
        let relative = path.strip_prefix(dir).unwrap_or(path).to_string_lossy().into_owned();
        self.rules
            .iter()
            .find(|(regex, _)| regex.as_ref().is_none_or(|r| r.is_match(&relative)))
            .map(|(_, recipients)| recipients)
    }
}

/// A rule's keys: each a string of comma-separated keys, or a list of them.
fn rule_recipients(rule: &Map<String, Value>) -> BTreeSet<String> {
    let listed = |name: &str| -> Vec<String> {
        match rule.get(name) {
            Some(Value::String(text)) => {
                text.split(',').map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).collect()
            }
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(|k| k.trim().to_string()).collect(),
            _ => Vec::new(),
        }
    };
    let mut out = BTreeSet::new();
    out.extend(listed("age"));
    out.extend(listed("pgp").into_iter().map(|fp| format!("pgp:{}", fp.to_uppercase())));
    out.extend(listed("kms").into_iter().map(|arn| format!("kms:{}", arn.split('+').next().unwrap_or_default())));
    out.extend(listed("gcp_kms").into_iter().map(|id| format!("gcp-kms:{id}")));
    out.extend(listed("azure_keyvault").into_iter().map(|url| format!("azure-kv:{}", azure_key(&url))));
    out.extend(listed("hc_vault_transit_uri").into_iter().map(|uri| format!("vault:{uri}")));
    out
}

/// A key group of a rule: lists of keys, or of objects (`{arn: ...}` for KMS).
fn group_recipients(group: &Map<String, Value>) -> BTreeSet<String> {
    let mut flat = Map::new();
    for (kind, field) in [("age", None), ("pgp", None), ("kms", Some("arn")), ("gcp_kms", Some("resource_id"))] {
        let keys: Vec<Value> = group
            .get(kind)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|entry| match (entry, field) {
                (Value::String(text), _) => Some(Value::String(text.clone())),
                (Value::Object(object), Some(field)) => object.get(field).cloned(),
                _ => None,
            })
            .collect();
        flat.insert(kind.to_string(), Value::Array(keys));
    }
    rule_recipients(&flat)
}

/// `https://VAULT/keys/NAME/VERSION` -> `https://VAULT/keys/NAME`.
fn azure_key(url: &str) -> String {
    match url.split_once("/keys/") {
        Some((vault, rest)) => {
            format!("{}/keys/{}", vault.trim_end_matches('/'), rest.split('/').next().unwrap_or_default())
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(json: serde_json::Value) -> Map<String, Value> {
        json.as_object().cloned().expect("an object")
    }

    #[test]
    fn a_files_recipients_are_read_from_its_metadata_and_key_groups() {
        let metadata = map(serde_json::json!({
            "age": [{"recipient": "age1dev", "enc": "..."}],
            "pgp": [{"fp": "ab12", "enc": "..."}],
            "key_groups": [{"kms": [{"arn": "arn:aws:kms:eu:1:key/k"}]}],
            "mac": "ENC[...]"
        }));
        let found: Vec<String> = of_file(&metadata).into_iter().collect();
        assert_eq!(found, ["age1dev", "kms:arn:aws:kms:eu:1:key/k", "pgp:AB12"]);
    }

    #[test]
    fn the_first_matching_creation_rule_names_a_files_keys_relative_to_the_configs_directory() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("project/envs")).expect("mkdir");
        std::fs::write(
            dir.path().join(".sops.yaml"),
            "creation_rules:\n  - path_regex: ^project/envs/production/\n    age: age1prod, age1ci\n  \
             - path_regex: ^project/envs/dev/\n    age: [age1dev]\n    pgp: ab12\n  - age: age1fallback\n",
        )
        .expect("write");
        let rules = CreationRules::find(&dir.path().join("project")).expect("found in the parent");
        let keys = |file: &str| {
            rules.for_file(&dir.path().join(file)).cloned().unwrap_or_default().into_iter().collect::<Vec<_>>()
        };
        assert_eq!(keys("project/envs/production/web.secrets.yaml"), ["age1ci", "age1prod"]);
        assert_eq!(keys("project/envs/dev/web.secrets.yaml"), ["age1dev", "pgp:AB12"]);
        assert_eq!(keys("project/other.yaml"), ["age1fallback"]);
    }
}
