//! Referenced Secrets must exist before anything deploys: which Secrets a stage's rendered
//! manifests reference (and where), which the releases provide themselves, and which the
//! cluster holds (names and key names only). [`check`] is the gate `promote`, `upgrade` and
//! `apply` call; `check-secrets` prints its report.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::compare::encryption::{self, FileVerdict};
use crate::compare::manifest::{Manifest, Resource};
use crate::compare::render::{parse_rendered, render_all};
use crate::config::stages::{Project, Release, Stage};
use crate::error::{Detail, Error, Result};
use crate::system::helm::Helm;
use crate::system::kube::{Kubectl, SecretKeys};
use crate::system::parallel::{all_or_errors, in_parallel};

/// One place where a rendered resource needs a Secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reference {
    pub name: String,
    /// The key it reads, when it names one.
    pub key: Option<String>,
    /// `optional: true`: the workload starts without it.
    pub optional: bool,
    pub namespace: String,
    pub release: String,
    /// `apps/Deployment acme/web`.
    pub resource: String,
    /// Field path of the reference: `spec.template.spec.containers[0].env[1].valueFrom.secretKeyRef`.
    pub field: String,
    /// For people: `container web, env DATABASE_URL`.
    pub detail: String,
}

/// Pod templates are found at these paths, by kind; any other kind with a pod template at
/// `spec.template.spec` (Argo Rollouts, for one) is read too.
fn pod_spec_path(resource: &Resource) -> Option<&'static str> {
    match resource.key.kind.as_str() {
        "Pod" => Some("/spec"),
        "CronJob" => Some("/spec/jobTemplate/spec/template/spec"),
        _ if resource.object.pointer("/spec/template/spec").is_some_and(Value::is_object) => {
            Some("/spec/template/spec")
        }
        _ => None,
    }
}

/// Every Secret reference of a release's rendered manifests.
pub fn references(release: &str, manifest: &Manifest) -> Vec<Reference> {
    let mut refs = Vec::new();
    for resource in manifest.values() {
        let Some(namespace) = resource.key.namespace.clone() else { continue };
        let mut push = |name: &Value, key: Option<&Value>, optional: Option<&Value>, field: String, detail: String| {
            if let Some(name) = name.as_str().filter(|n| !n.is_empty()) {
                refs.push(Reference {
                    name: name.to_string(),
                    key: key.and_then(Value::as_str).map(str::to_string),
                    optional: optional.and_then(Value::as_bool).unwrap_or(false),
                    namespace: namespace.clone(),
                    release: release.to_string(),
                    resource: resource.key.to_string(),
                    field,
                    detail,
                });
            }
        };
        if let Some(path) = pod_spec_path(resource)
            && let Some(spec) = resource.object.pointer(path)
        {
            pod_spec_references(spec, &path[1..].replace('/', "."), &mut push);
        }
        match (resource.key.group.as_str(), resource.key.kind.as_str()) {
            ("", "ServiceAccount") => {
                for (field, what) in [("imagePullSecrets", "imagePullSecrets"), ("secrets", "secrets")] {
                    for (i, entry) in items(&resource.object, field) {
                        push(&entry["name"], None, None, format!("{field}[{i}]"), what.to_string());
                    }
                }
            }
            ("networking.k8s.io" | "extensions", "Ingress") => {
                if !issues_its_own_certificates(resource) {
                    for (i, tls) in items(&resource.object["spec"], "tls") {
                        push(&tls["secretName"], None, None, format!("spec.tls[{i}].secretName"), "TLS".into());
                    }
                }
                // ingress-nginx reads these; the value may be `namespace/name`.
                for annotation in INGRESS_NGINX_SECRET_ANNOTATIONS {
                    let value = &resource.object["metadata"]["annotations"][annotation];
                    if let Some(text) = value.as_str().filter(|t| !t.contains('/')) {
                        push(
                            &Value::String(text.to_string()),
                            None,
                            None,
                            format!("metadata.annotations[\"{annotation}\"]"),
                            format!("annotation {annotation}"),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    refs
}

const INGRESS_NGINX_SECRET_ANNOTATIONS: [&str; 2] =
    ["nginx.ingress.kubernetes.io/auth-secret", "nginx.ingress.kubernetes.io/auth-tls-secret"];

fn items<'v>(object: &'v Value, field: &str) -> impl Iterator<Item = (usize, &'v Value)> {
    object.get(field).and_then(Value::as_array).into_iter().flatten().enumerate()
}

type Push<'a> = dyn FnMut(&Value, Option<&Value>, Option<&Value>, String, String) + 'a;

fn pod_spec_references(spec: &Value, at: &str, push: &mut Push<'_>) {
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        for (i, container) in items(spec, list) {
            let who = format!("container {}", container["name"].as_str().unwrap_or("?"));
            for (j, env) in items(container, "env") {
                let secret = &env["valueFrom"]["secretKeyRef"];
                if secret.is_object() {
                    push(
                        &secret["name"],
                        secret.get("key"),
                        secret.get("optional"),
                        format!("{at}.{list}[{i}].env[{j}].valueFrom.secretKeyRef"),
                        format!("{who}, env {}", env["name"].as_str().unwrap_or("?")),
                    );
                }
            }
            for (j, source) in items(container, "envFrom") {
                let secret = &source["secretRef"];
                if secret.is_object() {
                    push(
                        &secret["name"],
                        None,
                        secret.get("optional"),
                        format!("{at}.{list}[{i}].envFrom[{j}].secretRef"),
                        format!("{who}, envFrom"),
                    );
                }
            }
        }
    }
    for (i, volume) in items(spec, "volumes") {
        let who = format!("volume {}", volume["name"].as_str().unwrap_or("?"));
        let secret = &volume["secret"];
        if secret.is_object() {
            let field = format!("{at}.volumes[{i}].secret");
            keyed(push, &secret["secretName"], secret, &field, &who);
        }
        for (j, source) in items(&volume["projected"], "sources") {
            let secret = &source["secret"];
            if secret.is_object() {
                let field = format!("{at}.volumes[{i}].projected.sources[{j}].secret");
                keyed(push, &secret["name"], secret, &field, &who);
            }
        }
        let csi = &volume["csi"]["nodePublishSecretRef"];
        if csi.is_object() {
            push(&csi["name"], None, None, format!("{at}.volumes[{i}].csi.nodePublishSecretRef"), who.clone());
        }
    }
    for (i, pull) in items(spec, "imagePullSecrets") {
        push(&pull["name"], None, None, format!("{at}.imagePullSecrets[{i}]"), "imagePullSecrets".into());
    }
}

/// A secret volume: the Secret, and each key its `items` name (all keys when none are named).
fn keyed(push: &mut Push<'_>, name: &Value, secret: &Value, field: &str, who: &str) {
    let keys: Vec<&Value> = items(secret, "items").map(|(_, item)| &item["key"]).collect();
    if keys.is_empty() {
        push(name, None, secret.get("optional"), field.to_string(), who.to_string());
    }
    for key in keys {
        push(name, Some(key), secret.get("optional"), field.to_string(), who.to_string());
    }
}

// ------------------------------------------------------------------------------ providers

/// The keys a provided Secret will have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keys {
    Known(BTreeSet<String>),
    /// Decided elsewhere (an ExternalSecret's `dataFrom`): any key is taken as present.
    Any,
}

impl Keys {
    fn has(&self, key: &str) -> bool {
        match self {
            Keys::Known(keys) => keys.contains(key),
            Keys::Any => true,
        }
    }
}

/// How a Secret declared in a release's `providedSecrets` is provided.
pub const OUT_OF_BAND: &str = "provided out of band";

/// A Secret a release creates (directly, or through a controller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provided {
    pub name: String,
    pub namespace: String,
    pub keys: Keys,
    /// `release web: Secret acme/web-session`.
    pub by: String,
}

const TLS_KEYS: [&str; 3] = ["tls.crt", "tls.key", "ca.crt"];

/// Every kind that produces a Secret, in one place:
/// - `Secret` (keys: `data` and `stringData`);
/// - cert-manager `Certificate` (`spec.secretName`; `tls.crt`, `tls.key`, `ca.crt`);
/// - an `Ingress` annotated for cert-manager's ingress-shim (`cert-manager.io/issuer`,
///   `cert-manager.io/cluster-issuer`, `kubernetes.io/tls-acme: "true"`): its `tls[].secretName`;
/// - Bitnami `SealedSecret` (keys: `spec.encryptedData`);
/// - external-secrets `ExternalSecret` (`spec.target.name`, else its name; keys: `spec.data[].secretKey`,
///   any key with `dataFrom`).
pub fn provided(release: &str, manifest: &Manifest) -> Vec<Provided> {
    let mut out = Vec::new();
    for resource in manifest.values() {
        let Some(namespace) = &resource.key.namespace else { continue };
        let object = &resource.object;
        let by = format!("release {release}: {}", resource.key);
        let mut provide = |name: Option<&str>, keys: Keys| {
            if let Some(name) = name.filter(|n| !n.is_empty()) {
                out.push(Provided { name: name.to_string(), namespace: namespace.clone(), keys, by: by.clone() });
            }
        };
        let known = |keys: Vec<String>| Keys::Known(keys.into_iter().collect());
        let map_keys =
            |value: &Value| value.as_object().into_iter().flat_map(|m| m.keys().cloned()).collect::<Vec<_>>();
        let tls = || known(TLS_KEYS.iter().map(|k| k.to_string()).collect());
        match (resource.key.group.as_str(), resource.key.kind.as_str()) {
            ("", "Secret") => {
                let keys = [map_keys(&object["data"]), map_keys(&object["stringData"])].concat();
                let by = match hook(resource) {
                    Some(hook) => format!("release {release}: {} (created by its {hook} hook)", resource.key),
                    None => by.clone(),
                };
                out.push(Provided {
                    name: resource.key.name.clone(),
                    namespace: namespace.clone(),
                    keys: known(keys),
                    by,
                });
            }
            ("cert-manager.io", "Certificate") => provide(object["spec"]["secretName"].as_str(), tls()),
            ("networking.k8s.io" | "extensions", "Ingress") if issues_its_own_certificates(resource) => {
                for (_, entry) in items(&object["spec"], "tls") {
                    provide(entry["secretName"].as_str(), tls());
                }
            }
            ("bitnami.com", "SealedSecret") => {
                let name = object["spec"]["template"]["metadata"]["name"].as_str().unwrap_or(&resource.key.name);
                provide(Some(name), known(map_keys(&object["spec"]["encryptedData"])));
            }
            ("external-secrets.io", "ExternalSecret") => {
                let name = object["spec"]["target"]["name"].as_str().unwrap_or(&resource.key.name);
                let keys = if object["spec"].get("dataFrom").is_some() {
                    Keys::Any
                } else {
                    known(
                        items(&object["spec"], "data")
                            .filter_map(|(_, d)| d["secretKey"].as_str().map(str::to_string))
                            .collect(),
                    )
                };
                provide(Some(name), keys);
            }
            _ => {}
        }
    }
    out
}

/// The `helm.sh/hook` annotation of a resource (`pre-install`, `pre-install,pre-upgrade`).
fn hook(resource: &Resource) -> Option<&str> {
    resource.object["metadata"]["annotations"]["helm.sh/hook"].as_str()
}

/// A Job or Pod of a release whose ServiceAccount the release's own RBAC lets write Secrets in
/// its namespace: it may create the Secrets the workloads read while the release installs (a
/// webhook certificate, an initial password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creator {
    pub namespace: String,
    /// `hook Job acme/gen-cert (pre-install)`.
    pub job: String,
    /// `Role acme/gen-cert`.
    pub role: String,
    /// Names of Secrets it is known to write: the Role's `resourceNames`, and the words of the
    /// Job's command, arguments and env values.
    pub names: BTreeSet<String>,
    /// The Role's `resourceNames` (the stronger evidence).
    pub resource_names: BTreeSet<String>,
}

/// The Jobs and Pods of a release that may create Secrets, found from the release itself: a
/// Role or ClusterRole with `create`, `update` or `patch` on `secrets`, bound (RoleBinding,
/// ClusterRoleBinding) to the ServiceAccount the Job runs as.
pub fn creators(release: &str, manifest: &Manifest) -> Vec<Creator> {
    let accounts = accounts_writing_secrets(manifest);
    let mut out = Vec::new();
    for resource in manifest.values() {
        let spec = match resource.key.kind.as_str() {
            "Job" => resource.object.pointer("/spec/template/spec"),
            "Pod" => resource.object.pointer("/spec"),
            _ => None,
        };
        let (Some(spec), Some(namespace)) = (spec, &resource.key.namespace) else { continue };
        let account = spec["serviceAccountName"].as_str().unwrap_or("default").to_string();
        let Some(grants) = accounts.get(&(namespace.clone(), account)) else { continue };
        let words = command_words(spec);
        let job = match hook(resource) {
            Some(hook) => format!("hook {} ({hook}) of release {release}", resource.key),
            None => format!("{} of release {release}", resource.key),
        };
        for (role, resource_names) in grants {
            out.push(Creator {
                namespace: namespace.clone(),
                job: job.clone(),
                role: role.clone(),
                names: words.iter().chain(resource_names).cloned().collect(),
                resource_names: resource_names.clone(),
            });
        }
    }
    out
}

/// (role kind, namespace or "" for a ClusterRole, name) -> the `resourceNames` of its rules.
type SecretWriters = BTreeMap<(String, String, String), BTreeSet<String>>;

/// The release's Roles and ClusterRoles that may create, update or patch Secrets.
fn roles_writing_secrets(manifest: &Manifest) -> SecretWriters {
    let writes_secrets = |rule: &Value| {
        let has = |field: &str, wanted: &[&str]| {
            rule[field].as_array().is_some_and(|l| l.iter().any(|v| v.as_str().is_some_and(|v| wanted.contains(&v))))
        };
        has("apiGroups", &["", "*"])
            && has("resources", &["secrets", "*"])
            && has("verbs", &["create", "update", "patch", "*"])
    };
    let mut roles = SecretWriters::new();
    for resource in manifest.values().filter(|r| r.key.group == "rbac.authorization.k8s.io") {
        if !matches!(resource.key.kind.as_str(), "Role" | "ClusterRole") {
            continue;
        }
        let rules: Vec<&Value> =
            items(&resource.object, "rules").map(|(_, r)| r).filter(|r| writes_secrets(r)).collect();
        if rules.is_empty() {
            continue;
        }
        let names = rules
            .iter()
            .flat_map(|r| items(r, "resourceNames").filter_map(|(_, n)| n.as_str().map(str::to_string)))
            .collect();
        let namespace = resource.key.namespace.clone().unwrap_or_default();
        roles.insert((resource.key.kind.clone(), namespace, resource.key.name.clone()), names);
    }
    roles
}

/// (namespace, service account) -> [(role, resourceNames)]: the accounts bound to a role that
/// writes Secrets.
type Grants = BTreeMap<(String, String), Vec<(String, BTreeSet<String>)>>;

fn accounts_writing_secrets(manifest: &Manifest) -> Grants {
    let roles = roles_writing_secrets(manifest);
    let mut accounts = Grants::new();
    for binding in manifest.values().filter(|r| r.key.group == "rbac.authorization.k8s.io") {
        if !matches!(binding.key.kind.as_str(), "RoleBinding" | "ClusterRoleBinding") {
            continue;
        }
        let role_ref = &binding.object["roleRef"];
        let kind = role_ref["kind"].as_str().unwrap_or_default();
        let role_namespace =
            if kind == "Role" { binding.key.namespace.clone().unwrap_or_default() } else { String::new() };
        let key = (kind.to_string(), role_namespace.clone(), role_ref["name"].as_str().unwrap_or_default().to_string());
        let Some(names) = roles.get(&key) else { continue };
        let role = match kind {
            "Role" => format!("Role {role_namespace}/{}", key.2),
            _ => format!("ClusterRole {}", key.2),
        };
        for (_, subject) in items(&binding.object, "subjects") {
            if subject["kind"].as_str() != Some("ServiceAccount") {
                continue;
            }
            let namespace = subject["namespace"]
                .as_str()
                .map(str::to_string)
                .or_else(|| binding.key.namespace.clone())
                .unwrap_or_default();
            let account = subject["name"].as_str().unwrap_or_default().to_string();
            accounts.entry((namespace, account)).or_default().push((role.clone(), names.clone()));
        }
    }
    accounts
}

/// The words of a Pod spec's commands, arguments and env values: the names of Secrets a Job
/// may write.
fn command_words(spec: &Value) -> BTreeSet<String> {
    let mut words = BTreeSet::new();
    for field in ["initContainers", "containers"] {
        for (_, container) in items(spec, field) {
            let strings = items(container, "command")
                .chain(items(container, "args"))
                .filter_map(|(_, v)| v.as_str())
                .chain(items(container, "env").filter_map(|(_, e)| e["value"].as_str()));
            for text in strings {
                words.extend(
                    text.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
                        .filter(|w| !w.is_empty())
                        .map(str::to_string),
                );
            }
        }
    }
    words
}

fn issues_its_own_certificates(ingress: &Resource) -> bool {
    let annotations = &ingress.object["metadata"]["annotations"];
    annotations.get("cert-manager.io/issuer").is_some()
        || annotations.get("cert-manager.io/cluster-issuer").is_some()
        || annotations["kubernetes.io/tls-acme"].as_str() == Some("true")
}

// ------------------------------------------------------------------------------ the check

/// What the cluster holds in one namespace; `None`: the namespace does not exist.
pub type Cluster = BTreeMap<String, Option<SecretKeys>>;

/// The outcome for one namespace of one stage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceReport {
    pub namespace: String,
    pub exists: bool,
    /// Secrets that exist nowhere, with every reference to them.
    pub missing: Vec<Finding>,
    /// Secrets that exist without a key that is read.
    pub missing_keys: Vec<Finding>,
    /// `optional: true` references to Secrets (or keys) that do not exist.
    pub optional_absent: Vec<Finding>,
    /// Secrets that do not exist, where a Job of a release may create them while installing
    /// (its RBAC lets it write Secrets) but nothing names them: neither present nor missing.
    pub unknown: Vec<(Finding, Vec<String>)>,
    /// Satisfied references: (secret name, who provides it).
    pub satisfied: Vec<(String, String)>,
}

/// One Secret and the references that found it (or a key of it) missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub name: String,
    /// The missing keys (for `missing`: every key the references name).
    pub keys: BTreeSet<String>,
    pub needed_by: Vec<Reference>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageReport {
    pub stage: String,
    pub context: String,
    pub namespaces: Vec<NamespaceReport>,
    /// Who can open the stage's encrypted values files (`check-secrets` only; the gate
    /// leaves it empty).
    pub encrypted: Vec<FileVerdict>,
}

impl StageReport {
    /// True when nothing required is missing (absent optional ones are fine) and every
    /// encrypted values file opens with the stage's keys only.
    pub fn passed(&self) -> bool {
        self.namespaces.iter().all(|n| n.missing.is_empty() && n.missing_keys.is_empty())
            && self.encrypted.iter().all(|v| v.problems.is_empty())
    }
}

/// The Secret as a Job of the release creates it, when one may write it and names it.
fn created_by(creators: &[Creator], reference: &Reference) -> Option<Provided> {
    creators.iter().find(|c| c.namespace == reference.namespace && c.names.contains(&reference.name)).map(|c| {
        let evidence = match c.resource_names.contains(&reference.name) {
            true => "names it in resourceNames",
            false => "its command, arguments or env name it",
        };
        Provided {
            name: reference.name.clone(),
            namespace: reference.namespace.clone(),
            keys: Keys::Any,
            by: format!("{} (created by it: {} lets it write Secrets and {evidence})", c.job, c.role),
        }
    })
}

/// Check references against what the releases provide and what the cluster holds.
pub fn evaluate(
    references: &[Reference],
    provided: &[Provided],
    creators: &[Creator],
    cluster: &Cluster,
) -> Vec<NamespaceReport> {
    let mut reports: BTreeMap<&str, NamespaceReport> = BTreeMap::new();
    for reference in references {
        let report = reports.entry(&reference.namespace).or_insert_with(|| NamespaceReport {
            namespace: reference.namespace.clone(),
            exists: cluster.get(&reference.namespace).is_some_and(Option::is_some),
            ..NamespaceReport::default()
        });
        let in_release = provided
            .iter()
            .find(|p| p.name == reference.name && p.namespace == reference.namespace)
            .cloned()
            .or_else(|| created_by(creators, reference));
        let in_release = in_release.as_ref();
        let in_cluster =
            cluster.get(&reference.namespace).and_then(Option::as_ref).and_then(|secrets| secrets.get(&reference.name));
        let (exists, has_key, by) = match (in_release, in_cluster) {
            (Some(p), _) => (true, reference.key.as_ref().is_none_or(|k| p.keys.has(k)), p.by.clone()),
            (None, Some(keys)) => {
                (true, reference.key.as_ref().is_none_or(|k| keys.contains(k)), "cluster".to_string())
            }
            (None, None) => (false, false, String::new()),
        };
        let bucket = match (exists, has_key, reference.optional) {
            (true, true, _) => {
                if !report.satisfied.iter().any(|(name, _)| name == &reference.name) {
                    report.satisfied.push((reference.name.clone(), by));
                }
                continue;
            }
            (_, _, true) => &mut report.optional_absent,
            (false, _, false) if creators.iter().any(|c| c.namespace == reference.namespace) => {
                let maybe: Vec<String> = creators
                    .iter()
                    .filter(|c| c.namespace == reference.namespace)
                    .map(|c| format!("{} ({} lets it write Secrets; nothing in it names this one)", c.job, c.role))
                    .collect();
                let index = report.unknown.iter().position(|(f, _)| f.name == reference.name).unwrap_or_else(|| {
                    report.unknown.push((
                        Finding { name: reference.name.clone(), keys: BTreeSet::new(), needed_by: Vec::new() },
                        maybe,
                    ));
                    report.unknown.len() - 1
                });
                let finding = &mut report.unknown[index].0;
                finding.keys.extend(reference.key.clone());
                finding.needed_by.push(reference.clone());
                continue;
            }
            (false, _, false) => &mut report.missing,
            (true, false, false) => &mut report.missing_keys,
        };
        let index = bucket.iter().position(|f| f.name == reference.name).unwrap_or_else(|| {
            bucket.push(Finding { name: reference.name.clone(), keys: BTreeSet::new(), needed_by: Vec::new() });
            bucket.len() - 1
        });
        let finding = &mut bucket[index];
        finding.keys.extend(reference.key.clone());
        finding.needed_by.push(reference.clone());
    }
    reports.into_values().collect()
}

/// The gate: render the stages' releases, query each namespace once, in parallel, and
/// evaluate. `check-secrets` and `apply` call this before they deploy anything.
pub fn check(
    project: &Project,
    helm: &Helm,
    kubectl: &Kubectl,
    stages: &[&Stage],
    releases: &[&Release],
) -> Result<Vec<StageReport>> {
    // A stage on several clusters is checked on each (its namespaces may differ).
    let on_clusters: Vec<&Stage> = stages.iter().flat_map(|stage| stage.clusters()).collect();
    let targets: Vec<_> =
        on_clusters.iter().flat_map(|stage| releases.iter().map(|release| project.target(stage, release))).collect();
    let rendered = all_or_errors(render_all(helm, &targets))?;
    let mut per_stage: Vec<Vec<(&Release, Manifest)>> = on_clusters.iter().map(|_| Vec::new()).collect();
    for (target, text) in targets.iter().zip(&rendered) {
        let index = on_clusters.iter().position(|s| s.label() == target.stage.label()).unwrap_or_default();
        per_stage[index].push((target.release, parse_rendered(text, target)?));
    }
    let jobs: Vec<_> = on_clusters
        .iter()
        .zip(&per_stage)
        .map(|(stage, manifests)| move || check_manifests(kubectl, stage, manifests))
        .collect();
    let mut reports = all_or_errors(in_parallel(jobs))?;
    // Encrypted files belong to the stage: shown once, with its first cluster.
    let mut verdicts = encryption::check(project, stages, releases);
    for (report, stage) in reports.iter_mut().zip(&on_clusters) {
        report.encrypted = verdicts.extract_if(.., |v| v.stage == stage.name).collect();
    }
    Ok(reports)
}

/// The gate for one stage whose releases are already rendered (`promote` checks the promoted
/// config, `upgrade` the current one): one query per namespace that something references,
/// whatever the number of references, in parallel.
pub fn check_manifests(kubectl: &Kubectl, stage: &Stage, manifests: &[(&Release, Manifest)]) -> Result<StageReport> {
    let mut refs = Vec::new();
    let mut provided_by_chart = Vec::new();
    let mut job_creators = Vec::new();
    for (release, manifest) in manifests {
        let release_refs = references(&release.name, manifest);
        for declared in &release.provided_secrets {
            if !release_refs.iter().any(|r| r.name == declared.name) {
                return Err(Error::Failed {
                    headline: format!(
                        "release `{}` declares Secret `{}` in providedSecrets, but nothing in stage `{}` references it",
                        release.name, declared.name, stage.name
                    ),
                    details: vec![Detail::Help(
                        "remove it from providedSecrets in helm-envs.yaml, or fix its name (the report lists what the \
                         manifests reference: `helm envs check-secrets STAGE --details`)"
                            .into(),
                    )],
                });
            }
            let namespaces: BTreeSet<&str> =
                release_refs.iter().filter(|r| r.name == declared.name).map(|r| r.namespace.as_str()).collect();
            provided_by_chart.extend(namespaces.into_iter().map(|namespace| Provided {
                name: declared.name.clone(),
                namespace: namespace.to_string(),
                keys: Keys::Any,
                by: format!("{OUT_OF_BAND} (helm-envs.yaml, release {}): {}", release.name, declared.reason),
            }));
        }
        provided_by_chart.extend(provided(&release.name, manifest));
        job_creators.extend(creators(&release.name, manifest));
        refs.extend(release_refs);
    }
    let namespaces: BTreeSet<&str> = refs.iter().map(|r| r.namespace.as_str()).collect();
    let jobs: Vec<_> = namespaces.iter().map(|namespace| move || kubectl.secret_keys(stage, namespace)).collect();
    let answers = all_or_errors(in_parallel(jobs))?;
    let cluster: Cluster = namespaces.iter().map(|n| n.to_string()).zip(answers).collect();
    Ok(StageReport {
        stage: stage.label(),
        context: stage.kube_context.to_string(),
        namespaces: evaluate(&refs, &provided_by_chart, &job_creators, &cluster),
        encrypted: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::manifest;

    fn manifest(text: &str) -> Manifest {
        manifest::parse(text, "ns").expect("valid manifest")
    }

    const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      imagePullSecrets: [{name: registry}]
      initContainers:
        - name: migrate
          env:
            - {name: DB, valueFrom: {secretKeyRef: {name: db, key: url}}}
      containers:
        - name: web
          env:
            - {name: PLAIN, value: x}
            - {name: TOKEN, valueFrom: {secretKeyRef: {name: api, key: token, optional: true}}}
          envFrom:
            - configMapRef: {name: config}
            - secretRef: {name: flags}
      ephemeralContainers:
        - name: debug
          envFrom: [{secretRef: {name: debug-creds, optional: true}}]
      volumes:
        - name: tls
          secret: {secretName: client-tls, items: [{key: tls.crt, path: a}, {key: tls.key, path: b}]}
        - name: all
          secret: {secretName: whole}
        - name: mixed
          projected: {sources: [{configMap: {name: c}}, {secret: {name: proj, items: [{key: k, path: k}]}}]}
        - name: store
          csi: {driver: secrets-store, nodePublishSecretRef: {name: csi-creds}}
"#;

    fn summary(refs: &[Reference]) -> Vec<String> {
        refs.iter()
            .map(|r| {
                format!(
                    "{}{}{} <- {}",
                    r.name,
                    r.key.as_ref().map(|k| format!(":{k}")).unwrap_or_default(),
                    if r.optional { " (optional)" } else { "" },
                    r.detail
                )
            })
            .collect()
    }

    #[test]
    fn pod_template_references_in_every_container_list_and_volume() {
        let refs = references("web", &manifest(DEPLOYMENT));
        assert_eq!(
            summary(&refs),
            [
                "api:token (optional) <- container web, env TOKEN",
                "flags <- container web, envFrom",
                "db:url <- container migrate, env DB",
                "debug-creds (optional) <- container debug, envFrom",
                "client-tls:tls.crt <- volume tls",
                "client-tls:tls.key <- volume tls",
                "whole <- volume all",
                "proj:k <- volume mixed",
                "csi-creds <- volume store",
                "registry <- imagePullSecrets",
            ]
        );
        assert_eq!(refs[2].field, "spec.template.spec.initContainers[0].env[0].valueFrom.secretKeyRef");
        assert_eq!(refs[0].resource, "apps/Deployment ns/web");
        assert!(refs.iter().all(|r| r.namespace == "ns" && r.release == "web"));
    }

    #[test]
    fn cronjobs_pods_service_accounts_and_ingresses() {
        let text = r#"
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec: {jobTemplate: {spec: {template: {spec: {containers: [{name: job, envFrom: [{secretRef: {name: job-creds}}]}]}}}}}
---
apiVersion: v1
kind: Pod
metadata: {name: one, namespace: other}
spec: {containers: [{name: c, env: [{name: A, valueFrom: {secretKeyRef: {name: pod-secret, key: a}}}]}]}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: deployer}
imagePullSecrets: [{name: sa-pull}]
secrets: [{name: sa-token}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  annotations: {nginx.ingress.kubernetes.io/auth-secret: basic-auth}
spec: {tls: [{hosts: [a], secretName: web-tls}]}
"#;
        let refs = references("r", &manifest(text));
        let mut got: Vec<String> = refs.iter().map(|r| format!("{}/{} <- {}", r.namespace, r.name, r.detail)).collect();
        got.sort();
        assert_eq!(
            got,
            [
                "ns/basic-auth <- annotation nginx.ingress.kubernetes.io/auth-secret",
                "ns/job-creds <- container job, envFrom",
                "ns/sa-pull <- imagePullSecrets",
                "ns/sa-token <- secrets",
                "ns/web-tls <- TLS",
                "other/pod-secret <- container c, env A",
            ]
        );
    }

    #[test]
    fn secrets_the_releases_create_themselves() {
        let text = r#"
apiVersion: v1
kind: Secret
metadata: {name: session}
data: {key: eA==}
stringData: {other: x}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: cert}
spec: {secretName: cert-tls}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, annotations: {cert-manager.io/cluster-issuer: letsencrypt}}
spec: {tls: [{secretName: shim-tls}]}
---
apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
metadata: {name: sealed}
spec: {encryptedData: {password: AgB=}}
---
apiVersion: external-secrets.io/v1beta1
kind: ExternalSecret
metadata: {name: ext}
spec: {target: {name: from-vault}, dataFrom: [{extract: {key: x}}]}
"#;
        let manifest = manifest(text);
        let provided = provided("r", &manifest);
        let mut got: Vec<String> = provided.iter().map(|p| format!("{} {:?}", p.name, p.keys)).collect();
        got.sort();
        assert_eq!(
            got,
            [
                "cert-tls Known({\"ca.crt\", \"tls.crt\", \"tls.key\"})",
                "from-vault Any",
                "sealed Known({\"password\"})",
                "session Known({\"key\", \"other\"})",
                "shim-tls Known({\"ca.crt\", \"tls.crt\", \"tls.key\"})",
            ]
        );
        // An Ingress whose certificate cert-manager issues does not need its TLS Secret up front.
        assert!(references("r", &manifest).is_empty());
    }

    fn reference(name: &str, key: Option<&str>, optional: bool) -> Reference {
        Reference {
            name: name.into(),
            key: key.map(Into::into),
            optional,
            namespace: "ns".into(),
            release: "web".into(),
            resource: "apps/Deployment ns/web".into(),
            field: "f".into(),
            detail: "d".into(),
        }
    }

    #[test]
    fn evaluation_sorts_references_into_present_missing_missing_key_and_optional() {
        let refs = [
            reference("db", Some("url"), false),
            reference("db", Some("password"), false),
            reference("gone", Some("a"), false),
            reference("gone", None, false),
            reference("session", Some("key"), false),
            reference("flags", None, true),
            reference("db", Some("replica"), true),
        ];
        let provided = [Provided {
            name: "session".into(),
            namespace: "ns".into(),
            keys: Keys::Known(["key".to_string()].into()),
            by: "release web: Secret ns/session".into(),
        }];
        let cluster: Cluster =
            [("ns".to_string(), Some([("db".to_string(), ["url".to_string()].into())].into()))].into();
        let [report] = evaluate(&refs, &provided, &[], &cluster).try_into().expect("one namespace");
        assert!(report.exists);
        let names =
            |findings: &[Finding]| findings.iter().map(|f| format!("{}{:?}", f.name, f.keys)).collect::<Vec<_>>();
        assert_eq!(names(&report.missing), ["gone{\"a\"}"]);
        assert_eq!(report.missing[0].needed_by.len(), 2);
        assert_eq!(names(&report.missing_keys), ["db{\"password\"}"]);
        assert_eq!(names(&report.optional_absent), ["flags{}", "db{\"replica\"}"]);
        assert_eq!(
            report.satisfied,
            [
                ("db".to_string(), "cluster".to_string()),
                ("session".to_string(), "release web: Secret ns/session".to_string())
            ]
        );
    }

    #[test]
    fn an_absent_namespace_leaves_every_reference_missing() {
        let cluster: Cluster = [("ns".to_string(), None)].into();
        let [report] = evaluate(&[reference("db", None, false)], &[], &[], &cluster).try_into().expect("one");
        assert!(!report.exists);
        assert_eq!(report.missing.len(), 1);
    }
}
