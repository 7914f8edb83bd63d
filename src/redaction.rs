//! What counts as a secret, and taking secrets out of everything helm-envs prints or writes.
//!
//! A value is a secret when
//! - its key, or a key above it, names a credential by its own name (`password`, `token`,
//!   `bearer`, `apiKey`, `signingKey`, `privateKey`, `clientSecret`, `credentials`, ...), never a
//!   key that names a Secret object (`tlsSecretName`, `existingSecret`, `secretRef`,
//!   `tlsSecretPerReplica`);
//! - or the chart renders it into a Secret's `data` (after base64) or `stringData`, whatever its
//!   key is called.
//!
//! Values files and rendered manifests are shown to this module as they are read
//! ([`values_file`], [`rendered`]); every line helm-envs prints, and every commit message and
//! pull-request body it writes, goes through [`scrub`], which replaces whole occurrences of the
//! secrets seen so far (a short common word is never taken out of other words).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use serde_json::Value;

/// Shorter values are not taken out of free text: they would take out ordinary words.
const MIN_LEN: usize = 5;

/// What is printed instead of a secret in free text.
const REDACTED: &str = "(redacted)";

#[derive(Default)]
struct Seen {
    /// The values files read. Their credentials and their strings (candidates for Secret data)
    /// are found when first needed ([`Found`]): a walk at every read cost a second and a copy
    /// of every string on a 20 MB file.
    files: Vec<Arc<serde_json::Map<String, Value>>>,
    /// Values that are secrets wherever they appear, whatever their key (decrypted files').
    secret_values: HashSet<String>,
    /// What the rendered and deployed Secrets hold, decoded.
    secret_data: HashSet<String>,
    /// The names in rendered manifests (`name:`, `secretName:`): a value under a key such as
    /// `webhookSecret` that names a Secret object is its name, not a credential.
    names: HashSet<String>,
    /// What the above make secret; `None` when one of them changed since it was found.
    found: Option<Found>,
}

/// The secrets the values files, rendered Secrets and decrypted files seen so far make.
struct Found {
    /// Values under credential-like keys, and the decrypted ones: secrets wherever they appear.
    credentials: HashSet<String>,
    /// The values at the paths where a Secret holds a value (that value, and the same key's
    /// value in the other stages).
    in_secrets: HashSet<String>,
    /// The secrets to take out of free text, longest first.
    scrubbed: Arc<Vec<String>>,
}

impl Seen {
    fn found(&mut self) -> &Found {
        self.found.get_or_insert_with(|| Found::of(&self.files, &self.secret_values, &self.secret_data, &self.names))
    }
}

impl Found {
    /// A value is a secret when its key (or one above it) names a credential, or when a Secret
    /// holds a value at its path (in any values file: the same key in another stage).
    fn of(
        files: &[Arc<serde_json::Map<String, Value>>],
        secret_values: &HashSet<String>,
        secret_data: &HashSet<String>,
        names: &HashSet<String>,
    ) -> Found {
        let mut credentials = secret_values.clone();
        let mut secret_paths: HashSet<String> = HashSet::new();
        let mut credential_keys: HashMap<&str, bool> = HashMap::new();
        for file in files {
            walk_strings(file, &mut credential_keys, &mut |path, text, under_credential| {
                if under_credential {
                    credentials.insert(text.into_owned());
                } else if secret_data.contains(text.as_ref()) {
                    secret_paths.insert(path.to_string());
                }
            });
        }
        let mut in_secrets: HashSet<String> = HashSet::new();
        if !secret_paths.is_empty() {
            for file in files {
                walk_strings(file, &mut credential_keys, &mut |path, text, under_credential| {
                    if !under_credential && secret_paths.contains(path) {
                        in_secrets.insert(text.into_owned());
                    }
                });
            }
        }
        let mut scrubbed: Vec<String> = credentials
            .iter()
            .chain(&in_secrets)
            .filter(|s| s.len() >= MIN_LEN && !names.contains(*s))
            .cloned()
            .collect();
        scrubbed.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        scrubbed.dedup();
        Found { credentials, in_secrets, scrubbed: Arc::new(scrubbed) }
    }
}

/// Call `visit` with every string of a values file (numbers too, as text, under a credential
/// key), its dotted path (list items share their list's path) and whether a key on the way
/// names a credential. `credential_keys` remembers the verdict per key name.
fn walk_strings<'m>(
    values: &'m serde_json::Map<String, Value>,
    credential_keys: &mut HashMap<&'m str, bool>,
    visit: &mut dyn FnMut(&str, Cow<'m, str>, bool),
) {
    /// What a walk carries along.
    struct Walk<'w, 'm> {
        path: String,
        credential_keys: &'w mut HashMap<&'m str, bool>,
        visit: &'w mut dyn FnMut(&str, Cow<'m, str>, bool),
    }
    fn map<'m>(walk: &mut Walk<'_, 'm>, values: &'m serde_json::Map<String, Value>, under_credential: bool) {
        for (key, item) in values {
            let len = walk.path.len();
            if !walk.path.is_empty() {
                walk.path.push('.');
            }
            walk.path.push_str(key);
            let credential = *walk.credential_keys.entry(key).or_insert_with(|| is_credential_key(key));
            value(walk, item, under_credential || credential);
            walk.path.truncate(len);
        }
    }
    fn value<'m>(walk: &mut Walk<'_, 'm>, item: &'m Value, under_credential: bool) {
        match item {
            Value::Object(values) => map(walk, values, under_credential),
            Value::Array(items) => items.iter().for_each(|item| value(walk, item, under_credential)),
            Value::String(text) => (walk.visit)(&walk.path, Cow::Borrowed(text), under_credential),
            Value::Number(n) if under_credential => (walk.visit)(&walk.path, Cow::Owned(n.to_string()), true),
            _ => {}
        }
    }
    map(&mut Walk { path: String::new(), credential_keys, visit }, values, false);
}

static SEEN: Mutex<Option<Seen>> = Mutex::new(None);
static REVEAL: AtomicBool = AtomicBool::new(false);

fn with_seen<T>(f: impl FnOnce(&mut Seen) -> T) -> T {
    let mut seen = SEEN.lock().unwrap_or_else(PoisonError::into_inner);
    f(seen.get_or_insert_with(Seen::default))
}

/// `--show-secrets`, and commands whose output is the manifests themselves (`render`): print
/// everything as it is.
pub fn reveal() {
    REVEAL.store(true, Ordering::Relaxed);
}

/// Whether stdout shows secrets as they are (`reveal`). Errors and notes never do.
pub fn revealed() -> bool {
    REVEAL.load(Ordering::Relaxed)
}

/// Whether a key names a credential by its own name. Keys are split into words (camelCase,
/// snake_case, kebab-case).
pub fn is_credential_key(key: &str) -> bool {
    let words = words(key);
    let has = |w: &str| words.iter().any(|x| x == w);
    let pair = |a: &str, b: &str| words.windows(2).any(|p| p[0] == a && p[1] == b);
    // Keys that name a Secret object, or a key inside one, or switch something: not the secret.
    let last = words.last().map_or("", String::as_str);
    if has("existing") || ["name", "names", "ref", "refs", "enabled", "file", "path", "namespace"].contains(&last) {
        return false;
    }
    const WORDS: &[&str] = &[
        "password",
        "passwd",
        "passphrase",
        "token",
        "bearer",
        "credential",
        "credentials",
        "apikey",
        "secretkey",
        "privatekey",
        "signingkey",
    ];
    words.iter().any(|w| WORDS.contains(&w.as_str()))
        || pair("api", "key")
        || pair("private", "key")
        || pair("signing", "key")
        || (has("secret") && last == "key")
        || last == "secret"
        || last == "secrets"
        // all-lowercase compounds: `clientsecret`, `dbpassword`
        || (words.len() == 1 && (last.ends_with("secret") || WORDS.iter().any(|w| last.contains(w))))
}

/// `tlsSecretPerReplica` -> [tls, secret, per, replica]; `API_KEY` -> [api, key].
fn words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in key.chars() {
        if !c.is_ascii_alphanumeric() {
            words.extend((!current.is_empty()).then(|| std::mem::take(&mut current)));
            previous_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && previous_lower {
            words.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        current.push(c.to_ascii_lowercase());
    }
    words.extend((!current.is_empty()).then_some(current));
    words
}

/// A values file as read: its credentials, and its strings (candidates for Secret data).
pub fn values_file(values: Arc<serde_json::Map<String, Value>>) {
    with_seen(|seen| {
        seen.files.push(values);
        seen.found = None;
    });
}

/// A decrypted values file (a release's `secrets`): every value in it is a secret, whatever
/// its key is called.
pub fn decrypted(values: &serde_json::Map<String, Value>) {
    values.values().for_each(secret_value);
}

/// A value that is a secret wherever it appears (all of it, when it is a map or a list): one
/// an encrypted values file holds or held.
pub fn secret_value(value: &Value) {
    fn walk(value: &Value, seen: &mut Seen) {
        match value {
            Value::Object(map) => map.values().for_each(|v| walk(v, seen)),
            Value::Array(items) => items.iter().for_each(|v| walk(v, seen)),
            Value::String(text) => {
                seen.secret_values.insert(text.clone());
            }
            Value::Number(n) => {
                seen.secret_values.insert(n.to_string());
            }
            _ => {}
        }
    }
    with_seen(|seen| {
        walk(value, seen);
        seen.found = None;
    });
}

/// Rendered or deployed manifests: what their Secrets hold, and the names they use. A light
/// scan: only documents that say `kind: Secret` are parsed; names are read from the lines.
pub fn rendered(manifests: &str) {
    let names: Vec<String> = manifests.lines().flat_map(names_in).collect();
    let mut data = Vec::new();
    for document in manifests.split("\n---") {
        if !document.lines().any(|l| l.trim() == "kind: Secret" || l.trim() == "kind: \"Secret\"") {
            continue;
        }
        let Ok(object) = serde_saphyr::from_str::<Value>(document.trim_start_matches("---")) else { continue };
        if object["kind"] != "Secret" {
            continue;
        }
        let engine = base64::engine::general_purpose::STANDARD;
        for value in object["data"].as_object().into_iter().flat_map(|m| m.values()) {
            let decoded = value.as_str().and_then(|v| engine.decode(v.trim()).ok());
            data.extend(decoded.and_then(|bytes| String::from_utf8(bytes).ok()));
        }
        for value in object["stringData"].as_object().into_iter().flat_map(|m| m.values()) {
            data.extend(value.as_str().map(str::to_string));
        }
    }
    with_seen(|seen| {
        seen.secret_data.extend(data.into_iter().filter(|d| !d.trim().is_empty()));
        seen.names.extend(names);
        seen.found = None;
    });
}

/// The values of `name:` and `...Name:` keys (block or flow style) and `--...name=` arguments
/// in a line of a manifest.
fn names_in(line: &str) -> Vec<String> {
    let mut names = Vec::new();
    for marker in ["name:", "Name:", "name="] {
        for (at, _) in line.match_indices(marker) {
            let rest = line[at + marker.len()..].trim_start();
            let value = match rest.chars().next() {
                Some(quote @ ('"' | '\'')) => rest[1..].split(quote).next().unwrap_or_default(),
                _ => rest.split([',', '}', ']', ' ', '#']).next().unwrap_or_default(),
            };
            if !value.is_empty() {
                names.push(value.to_string());
            }
        }
    }
    names
}

/// Whether a string is the name of an object (a Secret's, most often) in the rendered
/// manifests seen so far: shown even under a credential-like key.
pub fn is_object_name(value: &Value) -> bool {
    value.as_str().is_some_and(|text| with_seen(|seen| seen.names.contains(text)))
}

/// Whether a value (from a values file) is one the chart keeps in a Secret, or is at the path
/// of one, or is a credential.
pub fn in_a_secret(value: &Value) -> bool {
    let text = match value {
        Value::String(text) => Cow::Borrowed(text.as_str()),
        Value::Number(n) => Cow::Owned(n.to_string()),
        _ => return false,
    };
    with_seen(|seen| {
        seen.secret_data.contains(text.as_ref()) || {
            let found = seen.found();
            found.credentials.contains(text.as_ref()) || found.in_secrets.contains(text.as_ref())
        }
    })
}

/// `text` with every whole occurrence of a secret seen so far replaced.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let secrets = with_seen(|seen| Arc::clone(&seen.found().scrubbed));
    let mut out = Cow::Borrowed(text);
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(replace_whole(&out, secret));
        }
    }
    out
}

/// Replace the occurrences of `needle` that are not part of a longer word.
fn replace_whole(text: &str, needle: &str) -> String {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut before: Option<char> = None;
    while let Some(at) = rest.find(needle) {
        let (head, tail) = rest.split_at(at);
        let prior = head.chars().last().or(before);
        let after = tail[needle.len()..].chars().next();
        out.push_str(head);
        if word(prior) || word(after) {
            out.push_str(needle);
        } else {
            out.push_str(REDACTED);
        }
        before = needle.chars().last();
        rest = &tail[needle.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_keys_are_known_by_their_own_name() {
        for key in [
            "password",
            "dbPassword",
            "signingKey",
            "bearer",
            "apiKey",
            "api_key",
            "API_KEY",
            "privateKey",
            "clientSecret",
            "secret",
            "secretKey",
            "secretAccessKey",
            "credentials",
            "token",
            "clientsecret",
        ] {
            assert!(is_credential_key(key), "{key}");
        }
        for key in [
            "tlsSecretName",
            "existingSecret",
            "secretRef",
            "tlsSecretPerReplica",
            "prefix",
            "secretsEnabled",
            "existingSecretPasswordKey",
            "host",
            "passwordFile",
            "keySecretName",
        ] {
            assert!(!is_credential_key(key), "{key}");
        }
    }

    #[test]
    fn a_value_a_secret_holds_makes_its_path_secret_in_every_stage() {
        let file = |json: serde_json::Value| Arc::new(json.as_object().expect("a map").clone());
        // Unique strings: the store is shared by the tests of this process.
        values_file(file(serde_json::json!({
            "session": {"key": "dev-session-4471", "name": "web-session-4471"},
            "auth": {"bearer": ["bearer-4471-abc"], "port": 4471},
        })));
        values_file(file(serde_json::json!({"session": {"key": "staging-session-4471"}})));
        let text = "dev-session-4471 staging-session-4471 bearer-4471-abc web-session-4471 4471";
        assert_eq!(scrub(text), "dev-session-4471 staging-session-4471 (redacted) web-session-4471 4471");
        // The chart keeps dev's `session.key` in a Secret: that path is secret in staging too.
        rendered(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: web-session-4471\nstringData:\n  key: dev-session-4471\n",
        );
        assert_eq!(scrub(text), "(redacted) (redacted) (redacted) web-session-4471 4471");
        assert!(in_a_secret(&Value::String("staging-session-4471".into())));
        assert!(!in_a_secret(&Value::String("web-session-4471".into())));
    }

    #[test]
    fn only_whole_occurrences_are_taken_out() {
        assert_eq!(
            replace_whole("Job monitoring-kube-prometheus-admission failed: prometheus", "prometheus"),
            "Job monitoring-kube-prometheus-admission failed: (redacted)"
        );
        assert_eq!(replace_whole("pw=hunter22, hunter222", "hunter22"), "pw=(redacted), hunter222");
        assert_eq!(replace_whole("\"hunter22\".", "hunter22"), "\"(redacted)\".");
    }

    #[test]
    fn names_are_read_from_block_and_flow_style_and_arguments() {
        assert_eq!(names_in("  - name: web"), ["web"]);
        assert_eq!(names_in("  secretName: \"acme-tls\""), ["acme-tls"]);
        assert_eq!(
            names_in("- {name: PASSWORD, valueFrom: {secretKeyRef: {name: app-initial-password, key: password}}}"),
            ["PASSWORD", "app-initial-password"]
        );
        assert_eq!(names_in("args: [create, --secret-name=app-webhook-cert]"), ["app-webhook-cert"]);
        assert!(names_in("  password: hunter22").is_empty());
    }

    #[test]
    fn words_split_like_people_read_keys() {
        assert_eq!(words("tlsSecretPerReplica"), ["tls", "secret", "per", "replica"]);
        assert_eq!(words("API_KEY"), ["api", "key"]);
        assert_eq!(words("s3-access-key"), ["s3", "access", "key"]);
    }
}
