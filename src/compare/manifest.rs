//! The manifest model: what helm renders (`helm template`, a release's stored manifest and
//! hooks) split into Kubernetes resources, each keyed by API group, kind, namespace and name,
//! and each remembering the template that produced it.
//!
//! Values are read with Helm's YAML rules ([`crate::config::yaml`]), so `replicas: 1.0` and
//! `replicas: 1` are the same object, as they are to the API server.

use std::borrow::Cow;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;

use serde_json::Value;

use crate::config::yaml::{self, HelmValue};
use crate::error::ManifestError;

/// A Kubernetes object as rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub key: ResourceKey,
    /// The template that produced it (helm's `# Source:` line), when known.
    pub source: Option<String>,
    pub object: Value,
}

/// How resources are matched: the API version is not part of the key, so a kind moving from
/// `autoscaling/v2beta2` to `autoscaling/v2` is a change of one resource, as it is to the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    /// API group; empty for the core group (`v1`).
    pub group: String,
    pub kind: String,
    /// `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.group.is_empty() {
            write!(f, "{}/", self.group)?;
        }
        write!(f, "{} ", self.kind)?;
        if let Some(namespace) = &self.namespace {
            write!(f, "{namespace}/")?;
        }
        f.write_str(&self.name)
    }
}

/// The resources of one rendering, by key.
pub type Manifest = BTreeMap<ResourceKey, Resource>;

/// Kinds without a namespace (the built-in ones, and cert-manager's `ClusterIssuer`, which
/// charts commonly ship). Anything else is taken to be namespaced.
const CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("", "ComponentStatus"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("networking.k8s.io", "IngressClass"),
    ("node.k8s.io", "RuntimeClass"),
    ("policy", "PodSecurityPolicy"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("cert-manager.io", "ClusterIssuer"),
];

pub fn is_cluster_scoped(group: &str, kind: &str) -> bool {
    CLUSTER_SCOPED.iter().any(|&(g, k)| g == group && k == kind)
}

/// The API group of an `apiVersion` (`apps/v1` -> `apps`, `v1` -> core, the empty string).
pub fn api_group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

/// Parse rendered output into resources keyed for matching. Objects without a namespace get
/// `default_namespace` (the namespace helm is given), except cluster-scoped kinds.
pub fn parse(text: &str, default_namespace: &str) -> Result<Manifest, ManifestError> {
    build(&split_documents(text), default_namespace)
}

/// Objects read from the cluster (`kubectl -o json`), keyed like rendered ones.
pub fn from_objects(objects: Vec<Value>, default_namespace: &str) -> Result<Manifest, String> {
    objects
        .into_iter()
        .map(|object| {
            let key = key_of(&object, default_namespace)?;
            Ok((key.clone(), Resource { key, source: None, object }))
        })
        .collect()
}

/// Which side of a comparison a parse error is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Old,
    New,
}

/// Two renderings of one release, ready to compare.
#[derive(Debug, Default)]
pub struct Pair {
    pub old: Manifest,
    pub new: Manifest,
    /// Resources whose document text is the same on both sides: unchanged, and not parsed.
    pub identical: usize,
}

/// The namespaces two renderings were made for. The old side's resources in `old` are moved
/// to `new` (key and `metadata.namespace`), so that two stages' renderings match although each
/// lives in its own namespace.
#[derive(Debug, Clone, Copy)]
pub struct Namespaces<'a> {
    pub old: &'a str,
    pub new: &'a str,
}

/// Parse two renderings of one namespace for comparison. See [`parse_pair_across`].
pub fn parse_pair(old: &str, new: &str, namespace: &str) -> Result<Pair, (Side, ManifestError)> {
    parse_pair_across(old, new, Namespaces { old: namespace, new: namespace })
}

/// Parse two renderings for comparison. A document whose text occurs once on each side is the
/// same resource, unchanged; it is counted rather than parsed, because parsing YAML is most of a
/// diff's cost and a deploy usually changes few resources. Across namespaces, an old document's
/// text is compared as it reads once moved (its `metadata.namespace` line rewritten), so two
/// stages' renderings take the same shortcut. Identical documents still take part in the
/// duplicate check (by a quick read of their identity, or a full parse when that is not plain).
pub fn parse_pair_across(old: &str, new: &str, namespaces: Namespaces<'_>) -> Result<Pair, (Side, ManifestError)> {
    let (old_docs, new_docs) = (split_documents(old), split_documents(new));
    // The old side's texts as they read in the new namespace; `None` where that cannot be told
    // without a parser (such a document is parsed, never taken as identical).
    let moved: Vec<Option<Cow<'_, str>>> = old_docs
        .iter()
        .map(|doc| match namespaces.old == namespaces.new {
            true => Some(Cow::Borrowed(&*doc.text)),
            false => moved_text(&doc.text, namespaces),
        })
        .collect();
    let mut old_counts: HashMap<&str, usize> = HashMap::new();
    for text in moved.iter().flatten() {
        *old_counts.entry(text).or_default() += 1;
    }
    let mut new_counts: HashMap<&str, usize> = HashMap::new();
    for doc in &new_docs {
        *new_counts.entry(&doc.text).or_default() += 1;
    }
    let identical = |text: &str| old_counts.get(text) == Some(&1) && new_counts.get(text) == Some(&1);
    let moved_resources = |manifest: Manifest| -> Manifest {
        manifest
            .into_values()
            .map(|mut resource| {
                resource.move_namespace(namespaces.old, namespaces.new);
                (resource.key.clone(), resource)
            })
            .collect()
    };
    let full = || -> Result<Pair, (Side, ManifestError)> {
        Ok(Pair {
            old: moved_resources(build(&old_docs, namespaces.old).map_err(|e| (Side::Old, e))?),
            new: build(&new_docs, namespaces.new).map_err(|e| (Side::New, e))?,
            identical: 0,
        })
    };
    let old_rest: Vec<_> = old_docs
        .iter()
        .zip(&moved)
        .filter(|(_, text)| !text.as_deref().is_some_and(identical))
        .map(|(d, _)| d)
        .collect();
    let (shared, new_rest): (Vec<_>, Vec<_>) = new_docs.iter().partition(|d| identical(&d.text));
    let old_manifest = moved_resources(build_refs(&old_rest, namespaces.old).map_err(|e| (Side::Old, e))?);
    let new_manifest = build_refs(&new_rest, namespaces.new).map_err(|e| (Side::New, e))?;
    let mut shared_keys = HashSet::new();
    for doc in &shared {
        let keys = match scan(&doc.text).and_then(|identity| identity.key(namespaces.new)) {
            Some(key) => vec![key],
            None => doc.resources(namespaces.new).map_err(|e| (Side::New, e))?.into_iter().map(|r| r.key).collect(),
        };
        for key in keys {
            let clash = old_manifest.contains_key(&key) || new_manifest.contains_key(&key);
            if clash || !shared_keys.insert(key) {
                // A duplicate somewhere: parse everything so the error names both templates.
                return full();
            }
        }
    }
    Ok(Pair { identical: shared_keys.len(), old: old_manifest, new: new_manifest })
}

/// A document's text as it reads once moved from one namespace to another: its
/// `metadata.namespace` rewritten when it names the old one (a document without it takes the
/// namespace helm is given, and reads the same). `None` when the document is not plain enough
/// to tell without a parser.
fn moved_text<'t>(text: &'t str, namespaces: Namespaces<'_>) -> Option<Cow<'t, str>> {
    let identity = scan(text)?;
    // A cluster-scoped object keeps whatever namespace field it carries, as a move does.
    let namespaced = identity.key(namespaces.old)?.namespace.is_some();
    match identity.namespace {
        Some(namespace) if namespaced && namespace == namespaces.old => {
            // `namespace` is a slice of `text`: its offset locates the value to rewrite.
            let at = namespace.as_ptr() as usize - text.as_ptr() as usize;
            Some(Cow::Owned(format!("{}{}{}", &text[..at], namespaces.new, &text[at + namespace.len()..])))
        }
        _ => Some(Cow::Borrowed(text)),
    }
}

fn build(documents: &[Document<'_>], default_namespace: &str) -> Result<Manifest, ManifestError> {
    build_refs(&documents.iter().collect::<Vec<_>>(), default_namespace)
}

/// Parse documents (in parallel when there are many) and key them; a key defined twice is an
/// error that names both templates.
fn build_refs(documents: &[&Document<'_>], default_namespace: &str) -> Result<Manifest, ManifestError> {
    const PER_THREAD: usize = 64;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = documents.len().div_ceil(threads).max(PER_THREAD);
    let parsed: Vec<Result<Vec<Resource>, ManifestError>> = if documents.len() <= PER_THREAD {
        documents.iter().map(|d| d.resources(default_namespace)).collect()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = documents
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || part.iter().map(|d| d.resources(default_namespace)).collect::<Vec<_>>())
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                .collect()
        })
    };
    let mut manifest = Manifest::new();
    for (document, resources) in documents.iter().zip(parsed) {
        for resource in resources? {
            match manifest.entry(resource.key.clone()) {
                Entry::Vacant(slot) => {
                    slot.insert(resource);
                }
                Entry::Occupied(first) => {
                    return Err(ManifestError {
                        message: format!(
                            "{} is rendered twice: by {} and by {}; a resource can only be defined once",
                            resource.key,
                            describe_source(&first.get().source),
                            describe_source(&resource.source),
                        ),
                        template: resource.source,
                        line: document.line,
                    });
                }
            }
        }
    }
    Ok(manifest)
}

/// What identifies a document, as written in it (each a slice of the document's text).
struct Identity<'t> {
    api_version: &'t str,
    kind: &'t str,
    name: &'t str,
    namespace: Option<&'t str>,
}

impl Identity<'_> {
    /// The resource key; `None` for a list kind (the caller parses it).
    fn key(&self, default_namespace: &str) -> Option<ResourceKey> {
        if self.kind.ends_with("List") {
            return None;
        }
        let group = api_group(self.api_version);
        let namespace =
            (!is_cluster_scoped(group, self.kind)).then(|| self.namespace.unwrap_or(default_namespace).to_string());
        Some(ResourceKey {
            group: group.to_string(),
            kind: self.kind.to_string(),
            namespace,
            name: self.name.to_string(),
        })
    }
}

/// The identity of a document in the block style helm's templates produce, read without a
/// YAML parser; `None` whenever the document is not that plain (flow maps, quotes with escapes,
/// anchors, tags), and the caller parses it instead.
fn scan(text: &str) -> Option<Identity<'_>> {
    fn plain(value: &str) -> Option<&str> {
        let value = value.trim();
        let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(quoted) if !quoted.contains(['"', '\\']) => quoted,
            Some(_) => return None,
            None => value,
        };
        let special = value.is_empty() || value.contains(['#', '\'', '"', '&', '*', '!', '{', '[', '|', '>', ' ']);
        (!special).then_some(value)
    }
    fn set<'a>(slot: &mut Option<&'a str>, value: &'a str) -> Option<()> {
        match slot.replace(plain(value)?) {
            Some(_) => None,
            None => Some(()),
        }
    }
    let (mut api_version, mut kind, mut name, mut namespace) = (None, None, None, None);
    let mut metadata_indent: Option<Option<usize>> = None;
    let mut seen_metadata = false;
    for line in text.lines() {
        let content = line.trim_start_matches(' ');
        if content.is_empty() || content.starts_with('#') || is_marker(line, "---") {
            continue;
        }
        let indent = line.len() - content.len();
        let (key, value) = content.split_once(':')?;
        if indent == 0 {
            metadata_indent = None;
            if !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return None;
            }
            // A value opening a quote or flow that this line does not close may span lines.
            let value = value.trim();
            let unbalanced = [("\"", '"'), ("'", '\''), ("[", ']'), ("{", '}')]
                .iter()
                .any(|(open, close)| value.starts_with(open) && (value.len() < 2 || !value.ends_with(*close)));
            if unbalanced {
                return None;
            }
            match key {
                "apiVersion" => set(&mut api_version, value)?,
                "kind" => set(&mut kind, value)?,
                "metadata" if value.is_empty() && !seen_metadata => {
                    seen_metadata = true;
                    metadata_indent = Some(None);
                }
                "metadata" => return None,
                _ => {}
            }
        } else if let Some(expected) = &mut metadata_indent {
            let level = *expected.get_or_insert(indent);
            if indent == level {
                match key.trim_end() {
                    "name" => set(&mut name, value)?,
                    "namespace" => set(&mut namespace, value)?,
                    _ => {}
                }
            } else if indent < level {
                return None;
            }
        }
    }
    Some(Identity { api_version: api_version?, kind: kind?, name: name?, namespace })
}

fn describe_source(source: &Option<String>) -> String {
    source.as_deref().map_or_else(|| "a document without a `# Source:` line".to_string(), |s| s.to_string())
}

/// One YAML document of the output and where it came from.
#[derive(Debug, PartialEq)]
struct Document<'a> {
    text: Cow<'a, str>,
    source: Option<&'a str>,
    /// 1-based line of the document's first line in the whole output.
    line: usize,
}

/// Split at `---` lines (with or without a trailing comment or content) and `...` lines. Only a
/// marker in column 0 separates documents: `---` inside an indented block scalar is content.
fn split_documents(text: &str) -> Vec<Document<'_>> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (index, raw_line) in text.split_inclusive('\n').enumerate() {
        let line = raw_line.trim_end_matches(['\n', '\r']);
        let line_number = index + 1;
        if is_marker(line, "---") {
            documents.push(Document::new(&text[start..offset], start_line));
            start = offset;
            start_line = line_number;
        } else if is_marker(line, "...") {
            documents.push(Document::new(&text[start..offset], start_line));
            start = offset + raw_line.len();
            start_line = line_number + 1;
        }
        offset += raw_line.len();
    }
    documents.push(Document::new(&text[start..], start_line));
    documents.retain(|d| d.has_content());
    documents
}

fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker).is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

impl<'a> Document<'a> {
    fn new(text: &'a str, line: usize) -> Self {
        // Helm writes `# Source: <chart>/templates/<file>` as the first comment of a document.
        let source = text
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.trim().is_empty() && !is_marker(l, "---"))
            .take_while(|l| l.starts_with('#'))
            .find_map(|l| l.strip_prefix("# Source:").map(str::trim));
        let text = if text.contains('\r') { Cow::Owned(text.replace("\r\n", "\n")) } else { Cow::Borrowed(text) };
        Document { text, source, line }
    }

    /// False for empty and comment-only documents (helm emits them for templates that render
    /// nothing but a comment).
    fn has_content(&self) -> bool {
        self.text.lines().any(|l| {
            let l = if is_marker(l, "---") { &l[3..] } else { l }.trim();
            !l.is_empty() && !l.starts_with('#')
        })
    }

    fn error(&self, line_in_document: usize, message: impl Into<String>) -> ManifestError {
        ManifestError {
            template: self.source.map(str::to_string),
            line: self.line + line_in_document.saturating_sub(1),
            message: message.into(),
        }
    }

    fn resources(&self, default_namespace: &str) -> Result<Vec<Resource>, ManifestError> {
        let name = Path::new(self.source.unwrap_or("rendered output"));
        let value = match yaml::from_str::<Option<HelmValue>>(&self.text, name) {
            Ok(value) => value.map(|v| v.0).unwrap_or(Value::Null),
            Err(diagnostic) => {
                let line = diagnostic.position.map_or(1, |(line, _)| line as usize);
                return Err(self.error(line, format!("not valid YAML: {}", diagnostic.message)));
            }
        };
        let object = match value {
            // A document that is only `null` (or `~`) renders nothing, like an empty one.
            Value::Null => return Ok(Vec::new()),
            Value::Object(_) => value,
            other => {
                return Err(
                    self.error(1, format!("expected a Kubernetes object (a map), found {}", yaml::kind_of(&other)))
                );
            }
        };
        let source = self.source.map(str::to_string);
        let is_list = object.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List"))
            && object["items"].is_array();
        let objects = match object {
            Value::Object(mut map) if is_list => match map.remove("items") {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            },
            single => vec![single],
        };
        objects
            .into_iter()
            .map(|object| {
                let key = key_of(&object, default_namespace).map_err(|message| self.error(1, message))?;
                Ok(Resource { key, source: source.clone(), object })
            })
            .collect()
    }
}

fn key_of(object: &Value, default_namespace: &str) -> Result<ResourceKey, String> {
    let field = |path: &[&str]| {
        path.iter().try_fold(object, |value, key| value.get(key)).and_then(Value::as_str).filter(|s| !s.is_empty())
    };
    let missing =
        |what: &str| format!("a Kubernetes object needs `{what}` (a non-empty string), and this one has none");
    let api_version = field(&["apiVersion"]).ok_or_else(|| missing("apiVersion"))?;
    let kind = field(&["kind"]).ok_or_else(|| missing("kind"))?;
    let name = field(&["metadata", "name"]).ok_or_else(|| missing("metadata.name"))?;
    let group = api_group(api_version);
    let namespace = (!is_cluster_scoped(group, kind))
        .then(|| field(&["metadata", "namespace"]).unwrap_or(default_namespace).to_string());
    Ok(ResourceKey { group: group.to_string(), kind: kind.to_string(), namespace, name: name.to_string() })
}

impl Resource {
    pub fn is_secret(&self) -> bool {
        self.key.group.is_empty() && self.key.kind == "Secret"
    }

    pub fn api_version(&self) -> &str {
        self.object.get("apiVersion").and_then(Value::as_str).unwrap_or_default()
    }

    /// Re-home a resource from one namespace to another (key and `metadata.namespace`), so that
    /// two stages' renderings can be matched although each lives in its own namespace.
    pub fn move_namespace(&mut self, from: &str, to: &str) {
        if self.key.namespace.as_deref() != Some(from) {
            return;
        }
        self.key.namespace = Some(to.to_string());
        if let Some(Value::String(namespace)) = self.object.pointer_mut("/metadata/namespace") {
            *namespace = to.to_string();
        }
    }
}

/// Whether a template path (helm's `# Source:`) is in a chart's own `crds/` directory (or a
/// subchart's): CRDs helm installs before anything else on a first install, and never upgrades
/// or deletes. A `templates/crds/` folder holds ordinary templates.
fn in_crds_dir(source: &str) -> bool {
    let segments: Vec<&str> = source.split('/').collect();
    let mut root = 0;
    loop {
        match segments.get(root + 1) {
            Some(&"crds") => return true,
            Some(&"charts") => root += 2,
            _ => return false,
        }
    }
}

/// The rendered output without the documents of `crds/` directories (what helm applies on an
/// upgrade, which leaves those CRDs alone).
pub fn without_crds_dir(text: &str) -> String {
    split_documents(text).into_iter().filter(|d| !d.source.is_some_and(in_crds_dir)).map(|d| d.text).collect()
}

/// `group/version` of every CRD in the rendered `crds/` directories: the API versions the
/// cluster serves once helm installed them, which a first install renders with.
pub fn crds_dir_api_versions(text: &str) -> Vec<String> {
    let mut versions = Vec::new();
    for document in split_documents(text).iter().filter(|d| d.source.is_some_and(in_crds_dir)) {
        for resource in document.resources("").unwrap_or_default() {
            if resource.key.kind != "CustomResourceDefinition" {
                continue;
            }
            let group = resource.object.pointer("/spec/group").and_then(Value::as_str).unwrap_or_default();
            for version in resource.object.pointer("/spec/versions").and_then(Value::as_array).into_iter().flatten() {
                if let Some(name) = version.get("name").and_then(Value::as_str) {
                    versions.push(format!("{group}/{name}"));
                }
            }
        }
    }
    versions.sort();
    versions.dedup();
    versions
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn crds_directories_are_told_from_templates() {
        assert!(in_crds_dir("operator/crds/widgets.yaml"));
        assert!(in_crds_dir("app/charts/operator/crds/widgets.yaml"));
        assert!(!in_crds_dir("operator/templates/crds/widgets.yaml"));
        assert!(!in_crds_dir("operator/templates/widget.yaml"));
        let text = "---\n# Source: op/crds/w.yaml\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n\
                    metadata: {name: widgets.example.com}\nspec:\n  group: example.com\n  versions: [{name: v1}, {name: v2}]\n\
                    ---\n# Source: op/templates/w.yaml\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n";
        assert_eq!(crds_dir_api_versions(text), ["example.com/v1", "example.com/v2"]);
        assert_eq!(
            without_crds_dir(text),
            "---\n# Source: op/templates/w.yaml\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"
        );
    }

    fn keys(manifest: &Manifest) -> Vec<String> {
        manifest.keys().map(ToString::to_string).collect()
    }

    const DEPLOYMENT: &str = "---\n# Source: web/templates/deployment.yaml\napiVersion: apps/v1\nkind: Deployment\n\
        metadata:\n  name: web\nspec:\n  replicas: 2\n";

    #[test]
    fn helm_template_output_with_sources() {
        let text = format!(
            "{DEPLOYMENT}---\n# Source: web/templates/service.yaml\napiVersion: v1\nkind: Service\nmetadata:\n  \
             name: web\n  namespace: other\n"
        );
        let manifest = parse(&text, "acme").expect("valid");
        assert_eq!(keys(&manifest), ["Service other/web", "apps/Deployment acme/web"]);
        let deployment = manifest.values().find(|r| r.key.kind == "Deployment").expect("deployment");
        assert_eq!(deployment.source.as_deref(), Some("web/templates/deployment.yaml"));
        assert_eq!(deployment.object["spec"]["replicas"], json!(2));
        assert_eq!(deployment.api_version(), "apps/v1");
    }

    #[test]
    fn comment_only_empty_and_null_documents_render_nothing() {
        let text = "---\n# Source: web/templates/off.yaml\n# disabled\n---\n\n---\n# Source: web/templates/n.yaml\nnull\n\
                    --- ~\n---\n";
        assert!(parse(text, "acme").expect("valid").is_empty());
        assert!(parse("", "acme").expect("valid").is_empty());
    }

    #[test]
    fn separators_with_comments_content_and_document_end_markers() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n--- # next\napiVersion: v1\nkind: ConfigMap\n\
                    metadata: {name: b}\n...\n--- {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}\n";
        assert_eq!(keys(&parse(text, "ns").expect("valid")), ["ConfigMap ns/a", "ConfigMap ns/b", "ConfigMap ns/c"]);
    }

    #[test]
    fn a_separator_inside_a_block_scalar_is_content() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: scripts\ndata:\n  run.sh: |\n    ---\n    \
                    echo hi\n    ...\n";
        let manifest = parse(text, "ns").expect("valid");
        assert_eq!(manifest.len(), 1);
        let resource = manifest.values().next().expect("one");
        assert_eq!(resource.object["data"]["run.sh"], json!("---\necho hi\n...\n"));
    }

    #[test]
    fn windows_line_endings() {
        let text = DEPLOYMENT.replace('\n', "\r\n");
        let manifest = parse(&text, "acme").expect("valid");
        let deployment = manifest.values().next().expect("one");
        assert_eq!(deployment.source.as_deref(), Some("web/templates/deployment.yaml"));
        assert_eq!(deployment.object["metadata"]["name"], json!("web"));
    }

    #[test]
    fn lists_are_expanded_and_keep_their_source() {
        let text = "# Source: web/templates/list.yaml\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  \
                    kind: ConfigMap\n  metadata: {name: one}\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: two}\n";
        let manifest = parse(text, "ns").expect("valid");
        assert_eq!(keys(&manifest), ["ConfigMap ns/one", "Secret ns/two"]);
        assert!(manifest.values().all(|r| r.source.as_deref() == Some("web/templates/list.yaml")));
    }

    #[test]
    fn cluster_scoped_kinds_have_no_namespace() {
        let text = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\n  \
                    namespace: ignored\n";
        let manifest = parse(text, "ns").expect("valid");
        let key = manifest.keys().next().expect("one");
        assert_eq!(key.namespace, None);
        assert_eq!(key.to_string(), "rbac.authorization.k8s.io/ClusterRole reader");
    }

    #[test]
    fn values_follow_helms_yaml_rules() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  on: yes\n  count: 1.0\n";
        let manifest = parse(text, "ns").expect("valid");
        assert_eq!(manifest.values().next().expect("one").object["data"], json!({"true": true, "count": 1}));
    }

    #[test]
    fn duplicates_name_both_templates() {
        let text = format!("{DEPLOYMENT}{}", DEPLOYMENT.replace("deployment.yaml", "copy.yaml"));
        let err = parse(&text, "acme").expect_err("duplicate");
        assert!(err.message.contains("web/templates/deployment.yaml"), "{}", err.message);
        assert!(err.message.contains("web/templates/copy.yaml"), "{}", err.message);
        assert_eq!(err.template.as_deref(), Some("web/templates/copy.yaml"));
    }

    #[test]
    fn malformed_yaml_names_the_template_and_the_line() {
        let text = format!("{DEPLOYMENT}---\n# Source: web/templates/bad.yaml\napiVersion: v1\nkind: [oops\n");
        let err = parse(&text, "acme").expect_err("malformed");
        assert_eq!(err.template.as_deref(), Some("web/templates/bad.yaml"));
        assert!(err.message.starts_with("not valid YAML"), "{}", err.message);
        assert!((10..=13).contains(&err.line), "line {}", err.line);
    }

    #[test]
    fn objects_without_identity_are_errors() {
        let err = parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "ns").expect_err("no name");
        assert!(err.message.contains("metadata.name"), "{}", err.message);
        let err = parse("- a\n- b\n", "ns").expect_err("list");
        assert!(err.message.contains("a list"), "{}", err.message);
    }

    #[test]
    fn moving_namespace_rewrites_key_and_metadata() {
        let mut manifest =
            parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: dev}\n", "dev").expect("valid");
        let mut resource = manifest.pop_first().expect("one").1;
        resource.move_namespace("dev", "staging");
        assert_eq!(resource.key.namespace.as_deref(), Some("staging"));
        assert_eq!(resource.object["metadata"]["namespace"], json!("staging"));
    }

    #[test]
    fn identical_documents_are_counted_not_parsed() {
        let config = "---\n# Source: web/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n";
        let old = format!("{DEPLOYMENT}{config}");
        let new = format!("{}{config}", DEPLOYMENT.replace("replicas: 2", "replicas: 3"));
        let pair = parse_pair(&old, &new, "acme").expect("valid");
        assert_eq!(pair.identical, 1);
        assert_eq!(keys(&pair.old), ["apps/Deployment acme/web"]);
        assert_eq!(keys(&pair.new), ["apps/Deployment acme/web"]);
    }

    /// One stage's rendering: a ConfigMap in the stage's namespace, one naming it elsewhere, a
    /// Deployment relying on the default, and a ClusterRole.
    fn stage_rendering(namespace: &str, replicas: u32) -> String {
        format!(
            "---\n# Source: web/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  \
             namespace: \"{namespace}\"\ndata:\n  host: web.{namespace}.svc\n---\n# Source: web/templates/mon.yaml\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: m\n  namespace: monitoring\n---\n\
             # Source: web/templates/role.yaml\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n\
             metadata:\n  name: r\n  namespace: {namespace}\n{}",
            DEPLOYMENT.replace("replicas: 2", &format!("replicas: {replicas}"))
        )
    }

    #[test]
    fn across_namespaces_moved_documents_are_counted_and_the_rest_compare_as_a_full_parse_does() {
        let namespaces = Namespaces { old: "dev", new: "staging" };
        let (old, new) = (stage_rendering("dev", 2), stage_rendering("staging", 3));
        let pair = parse_pair_across(&old, &new, namespaces).expect("valid");
        // The ConfigMap `c` differs in its data (the host names its namespace), the Deployment
        // in its replicas, the ClusterRole in the namespace field it carries (a move leaves a
        // cluster-scoped object alone): all parsed. `m` reads the same once moved.
        assert_eq!(pair.identical, 1);
        assert_eq!(
            keys(&pair.old),
            ["ConfigMap staging/c", "apps/Deployment staging/web", "rbac.authorization.k8s.io/ClusterRole r"]
        );
        assert_eq!(pair.old.values().next().expect("c").object["metadata"]["namespace"], json!("staging"));
        assert_eq!(keys(&pair.new), keys(&pair.old));

        // The same answer as parsing everything and moving the old side: what was parsed is
        // the same, and what was counted is equal on both sides.
        let moved: Manifest = parse(&old, "dev")
            .expect("valid")
            .into_values()
            .map(|mut r| {
                r.move_namespace("dev", "staging");
                (r.key.clone(), r)
            })
            .collect();
        let full_new = parse(&new, "staging").expect("valid");
        assert_eq!(keys(&moved), keys(&full_new));
        for (key, resource) in &moved {
            match pair.old.get(key) {
                Some(parsed) => assert_eq!(parsed.object, resource.object, "{key}"),
                None => assert_eq!(resource.object, full_new[key].object, "{key} counted as identical"),
            }
        }
    }

    #[test]
    fn across_namespaces_only_metadata_namespace_is_rewritten() {
        // A field named namespace outside metadata is content: it must still show as changed.
        let doc = |namespace: &str| {
            format!(
                "apiVersion: example.com/v1\nkind: Route\nmetadata:\n  name: a\n  namespace: {namespace}\nspec:\n  \
                 namespace: {namespace}\n"
            )
        };
        let pair =
            parse_pair_across(&doc("dev"), &doc("staging"), Namespaces { old: "dev", new: "staging" }).expect("valid");
        assert_eq!(pair.identical, 0);
        assert_eq!(pair.old.values().next().expect("a").object["spec"]["namespace"], json!("dev"));
        // A document too involved to read without a parser is parsed, and still moved.
        let flow = |namespace: &str| {
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: f, namespace: {namespace}}}\n")
        };
        let pair = parse_pair_across(&flow("dev"), &flow("staging"), Namespaces { old: "dev", new: "staging" })
            .expect("valid");
        assert_eq!((pair.identical, keys(&pair.old)), (0, vec!["ConfigMap staging/f".to_string()]));
    }

    #[test]
    fn a_duplicate_of_an_identical_document_is_still_found() {
        let config = "---\n# Source: web/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n";
        let copy =
            "---\n# Source: web/templates/copy.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata: {}\n";
        let (_, err) = parse_pair(config, &format!("{config}{copy}"), "acme").expect_err("duplicate");
        assert!(err.message.contains("web/templates/cm.yaml") && err.message.contains("web/templates/copy.yaml"));
    }

    #[test]
    fn scan_reads_plain_documents_and_declines_the_rest() {
        let key = |text: &str| scan(text).and_then(|identity| identity.key("ns")).map(|k| k.to_string());
        assert_eq!(key(DEPLOYMENT).as_deref(), Some("apps/Deployment ns/web"));
        assert_eq!(
            key("apiVersion: v1\nkind: Secret\nmetadata:\n    labels:\n      name: not-this\n    name: \"db\"\n    namespace: x\n")
                .as_deref(),
            Some("Secret x/db")
        );
        for declined in [
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: &a x\n",
            "apiVersion: v1\nkind: List\nmetadata:\n  name: a\n",
            "apiVersion: v1\nkind: ConfigMap\nnote: \"spans\nkind: Secret\"\nmetadata:\n  name: a\n",
            "apiVersion: v1\nkind: ConfigMap\nkind: Secret\nmetadata:\n  name: a\n",
        ] {
            assert_eq!(key(declined), None, "{declined}");
        }
    }
}
