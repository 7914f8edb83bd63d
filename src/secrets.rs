//! Referenced Secrets must exist before anything deploys: which Secrets a stage's rendered
//! manifests reference (and where), which the releases provide themselves, and which the
//! cluster holds (names and key names only). [`check`] is the gate `promote`, `upgrade` and
//! `apply` call; `check-secrets` prints its report.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::error::Result;
use crate::helm::Helm;
use crate::kube::{Kubectl, SecretKeys};
use crate::manifest::{Manifest, Resource};
use crate::render::{all_or_errors, in_parallel, parse_rendered, render_all};
use crate::stages::{Project, Release, Stage};

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
                provide(Some(&resource.key.name), known(keys));
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
}

impl StageReport {
    /// True when nothing required is missing (absent optional ones are fine).
    pub fn passed(&self) -> bool {
        self.namespaces.iter().all(|n| n.missing.is_empty() && n.missing_keys.is_empty())
    }
}

/// Check references against what the releases provide and what the cluster holds.
pub fn evaluate(references: &[Reference], provided: &[Provided], cluster: &Cluster) -> Vec<NamespaceReport> {
    let mut reports: BTreeMap<&str, NamespaceReport> = BTreeMap::new();
    for reference in references {
        let report = reports.entry(&reference.namespace).or_insert_with(|| NamespaceReport {
            namespace: reference.namespace.clone(),
            exists: cluster.get(&reference.namespace).is_some_and(Option::is_some),
            ..NamespaceReport::default()
        });
        let in_release = provided.iter().find(|p| p.name == reference.name && p.namespace == reference.namespace);
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
    let targets: Vec<_> =
        stages.iter().flat_map(|stage| releases.iter().map(|release| project.target(stage, release))).collect();
    let rendered = all_or_errors(render_all(helm, &targets))?;
    let mut per_stage: Vec<Vec<(String, Manifest)>> = stages.iter().map(|_| Vec::new()).collect();
    for (target, text) in targets.iter().zip(&rendered) {
        let index = stages.iter().position(|s| s.name == target.stage.name).unwrap_or_default();
        per_stage[index].push((target.release.name.clone(), parse_rendered(text, target)?));
    }
    let jobs: Vec<_> = stages
        .iter()
        .zip(&per_stage)
        .map(|(stage, manifests)| move || check_manifests(kubectl, stage, manifests))
        .collect();
    all_or_errors(in_parallel(jobs))
}

/// The gate for one stage whose releases are already rendered (`promote` checks the promoted
/// config, `upgrade` the current one): one query per namespace that something references,
/// whatever the number of references, in parallel.
pub fn check_manifests(kubectl: &Kubectl, stage: &Stage, manifests: &[(String, Manifest)]) -> Result<StageReport> {
    let mut refs = Vec::new();
    let mut provided_by_chart = Vec::new();
    for (release, manifest) in manifests {
        refs.extend(references(release, manifest));
        provided_by_chart.extend(provided(release, manifest));
    }
    let namespaces: BTreeSet<&str> = refs.iter().map(|r| r.namespace.as_str()).collect();
    let jobs: Vec<_> = namespaces.iter().map(|namespace| move || kubectl.secret_keys(stage, namespace)).collect();
    let answers = all_or_errors(in_parallel(jobs))?;
    let cluster: Cluster = namespaces.iter().map(|n| n.to_string()).zip(answers).collect();
    Ok(StageReport {
        stage: stage.name.clone(),
        context: stage.kube_context.to_string(),
        namespaces: evaluate(&refs, &provided_by_chart, &cluster),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest;

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
        let [report] = evaluate(&refs, &provided, &cluster).try_into().expect("one namespace");
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
        let [report] = evaluate(&[reference("db", None, false)], &[], &cluster).try_into().expect("one");
        assert!(!report.exists);
        assert_eq!(report.missing.len(), 1);
    }
}
