//! The stages file as written: the serde types it is read into, which are also its JSON
//! schema (`helm envs schema`, docs/helm-envs.schema.json). Validated and resolved in
//! `validate.rs`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

/// The stages file of helm-envs: the stages a change goes through, in promotion order, and the
/// Helm releases deployed to each. Reference: docs/stages-file.md.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "helm-envs stages file (helm-envs.yaml)")]
pub(super) struct RawProject {
    /// The stages in promotion order, first to last (e.g. dev, staging, production).
    #[schemars(with = "Vec<RawStage>", length(min = 1))]
    pub(super) stages: Vec<Spanned<RawStage>>,
    /// The platform's components: Helm releases deployed to every stage. One is enough.
    #[schemars(with = "Vec<RawRelease>", length(min = 1))]
    pub(super) releases: Vec<Spanned<RawRelease>>,
    /// Chart version per stage and release, for repository and OCI charts (passed as
    /// --version). Promoted from one stage to the next like a value.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, BTreeMap<String, String>>", example = versions_example())]
    pub(super) versions: BTreeMap<String, Spanned<BTreeMap<String, String>>>,
    /// Value paths whose differences between stages are intentional (replicaCount, resources,
    /// ingress.host). Never promoted, never reported as drift. `a.b.c`, `hosts[0]`,
    /// `podAnnotations["prometheus.io/scrape"]`; a path covers everything under it.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub(super) env_specific: Vec<Spanned<String>>,
    /// Let `promote` write values files outside this file's directory (`..`, absolute paths).
    /// Without it they are read, with a warning, and a promotion that would write one refuses.
    #[serde(default)]
    pub(super) allow_values_outside_project: bool,
}

fn versions_example() -> serde_json::Value {
    serde_json::json!({"dev": {"web": "1.5.0"}, "staging": {"web": "1.4.2"}, "production": {"web": "1.4.2"}})
}

/// One stage: where its releases are deployed, and the gates in front of it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Stage", extend("anyOf" = [{"required": ["kubeContext"]}, {"required": ["clusters"]}]))]
pub(super) struct RawStage {
    /// Lowercase letters, digits and '-'; `{stage}` in values paths. Unique.
    #[schemars(with = "String", regex(pattern = DNS_LABEL), length(max = 53))]
    pub(super) name: Spanned<String>,
    /// The kubeconfig context every helm and kubectl call of this stage uses, or `current` for
    /// the kubeconfig's current context on purpose. Required unless the stage has `clusters`.
    // `default` only so that the schema requires it through `anyOf` with `clusters`.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1))]
    pub(super) kube_context: Option<Spanned<String>>,
    /// A stage on several clusters (regions) instead of one: each with its own kubeContext, and
    /// optionally its own namespace and clusterId. Every command reads each cluster; a deploy
    /// reaches them wave by wave (`waves`). Replaces the stage's kubeContext and clusterId.
    #[serde(default)]
    #[schemars(with = "Vec<RawCluster>", length(min = 2))]
    pub(super) clusters: Vec<Spanned<RawCluster>>,
    /// The order a deploy reaches the stage's clusters in: a list of waves, each a list of
    /// cluster names deployed side by side. A wave is deployed, ready and verified before the
    /// next starts; the first that fails stops the rollout. Default: one cluster per wave, in
    /// the order of `clusters`.
    #[serde(default)]
    #[schemars(with = "Vec<Vec<String>>", example = vec![vec!["eu-canary"], vec!["eu", "us"]])]
    pub(super) waves: Vec<Spanned<Vec<String>>>,
    /// The namespace of the stage's releases.
    #[schemars(with = "String", regex(pattern = DNS_LABEL), length(max = 63))]
    pub(super) namespace: Spanned<String>,
    /// `required`: deploying or promoting into this stage needs a confirmation or --yes.
    #[serde(default)]
    pub(super) approval: Approval,
    /// The UID of the kube-system namespace the context must reach before any write
    /// (`kubectl get namespace kube-system -o jsonpath='{.metadata.uid}'`).
    pub(super) cluster_id: Option<String>,
    /// Extra arguments for the stage's helm upgrade, e.g. [--atomic, --timeout, 5m]. Flags that
    /// choose a cluster, namespace, values or version are refused.
    #[serde(default)]
    pub(super) helm_args: Vec<String>,
    /// Release labels set by the stage's helm upgrade (--labels).
    #[serde(default)]
    pub(super) labels: BTreeMap<String, String>,
    /// Run an existing release script instead of helm upgrade.
    pub(super) deploy: Option<RawDeploy>,
    /// Commands run after a deploy, each an argument list; a failure stops the pipeline.
    #[serde(default)]
    #[schemars(example = vec![vec!["./smoke-test.sh", "--quick"]])]
    pub(super) verify: Vec<Vec<String>>,
    /// After each deploy, wait until the release's workloads are ready: Deployments,
    /// StatefulSets and DaemonSets rolled out, Jobs complete, objects with a Ready condition
    /// Ready. A release not ready in time fails the deploy.
    #[serde(default)]
    pub(super) health: RawHealth,
    /// How this stage must be kept apart from the others, checked before each deploy:
    /// `cluster` (no other stage on its cluster) or `namespace` (on a shared cluster, each of its
    /// namespaces has a NetworkPolicy keeping the other stages' namespaces out, and a
    /// ResourceQuota). `helm envs check-isolation` reports either way.
    pub(super) isolation: Option<Isolation>,
    /// What a failed deploy, health wait or verify command leaves behind: `rollback` (the
    /// default) rolls the releases this run deployed in the stage back to the last revision
    /// each had deployed successfully (a first install is uninstalled), then restores the
    /// promotion's files; `keep` keeps the new revisions and the written files, and the message
    /// says what the cluster runs. Either way files and cluster agree.
    pub(super) on_failure: Option<OnFailure>,
    /// Create the stage's namespaces when they do not exist (helm's --create-namespace).
    /// Without it, a deploy into a namespace that does not exist is refused before anything is
    /// written.
    #[serde(default)]
    pub(super) create_namespace: bool,
    /// Refuse deploys into this stage while one of its encrypted values files (a release's
    /// `secrets`) opens with another stage's key, or with none of the keys `.sops.yaml` names
    /// for it; `check-secrets` shows which.
    #[serde(default)]
    pub(super) require_own_keys: bool,
    /// How long the previous stage must have run a config before it may be promoted into this
    /// stage (`24h`, `90m`): from the previous stage's release records, checked by `promote`;
    /// `--override-soak` promotes sooner and says so.
    #[schemars(with = "Option<String>", regex(pattern = r"^([0-9]+[hms])+$"))]
    pub(super) soak: Option<Spanned<String>>,
    /// Windows in which the stage takes no deploy (`upgrade`, `apply`, `promote`,
    /// `exec --gated`): a date range, or a recurring window; `--override-freeze` deploys anyway
    /// and says so.
    #[serde(default)]
    #[schemars(with = "Vec<RawFreeze>")]
    pub(super) freeze: Vec<Spanned<RawFreeze>>,
    /// Argo CD deploys this stage from Git: `helm envs argocd` generates its Applications from
    /// this file (chart, values files in order, destination), so the two never disagree.
    #[schemars(with = "Option<RawArgoCd>")]
    pub(super) argocd: Option<Spanned<RawArgoCd>>,
}

/// How Argo CD finds a stage's config: the repository and revision it reads, where it runs.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "ArgoCd")]
pub(super) struct RawArgoCd {
    /// The Git repository holding this stages file, as Argo CD reads it (the Application's
    /// `repoURL`): `https://git.example.com/acme/platform.git`.
    #[schemars(with = "String", length(min = 1))]
    pub(super) repo_url: Spanned<String>,
    /// The branch, tag or commit Argo CD follows for this stage (`targetRevision`). Default
    /// `HEAD`.
    pub(super) revision: Option<String>,
    /// This stages file's directory inside the repository (`examples/acme`); default: found
    /// with git from where the file is.
    pub(super) path: Option<String>,
    /// The kubeconfig context of the cluster Argo CD runs in, where the Applications live.
    #[schemars(with = "String", length(min = 1))]
    pub(super) context: Spanned<String>,
    /// The namespace of the Applications. Default `argocd`.
    #[schemars(with = "Option<String>", regex(pattern = DNS_LABEL), length(max = 63))]
    pub(super) namespace: Option<Spanned<String>>,
    /// The destination cluster's name in Argo CD. Default: the stage's kubeContext.
    pub(super) cluster: Option<String>,
    /// The AppProject of the Applications. Default `default`.
    pub(super) project: Option<String>,
    /// Put before each Application's name (`RELEASE-STAGE`), for an Argo CD that deploys
    /// several projects: `acme-` names them `acme-web-staging`.
    #[serde(default)]
    pub(super) prefix: String,
    /// `automated` (default): Argo CD syncs every new commit itself, pruning and self-healing;
    /// `manual`: a sync happens only when asked.
    #[serde(default)]
    pub(super) sync: ArgoSync,
}

/// When Argo CD syncs a stage.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ArgoSync {
    /// Every new commit, pruning and self-healing.
    #[default]
    Automated,
    /// Only when asked.
    Manual,
}

/// One cluster of a stage with several.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Cluster")]
pub(super) struct RawCluster {
    /// Lowercase letters, digits and '-'; unique in the stage. Shown as `stage/name`.
    #[schemars(with = "String", regex(pattern = DNS_LABEL), length(max = 53))]
    pub(super) name: Spanned<String>,
    /// The kubeconfig context of this cluster (never `current`).
    #[schemars(with = "String", length(min = 1))]
    pub(super) kube_context: Spanned<String>,
    /// The namespace of the stage's releases on this cluster; default: the stage's.
    #[schemars(with = "Option<String>", regex(pattern = DNS_LABEL), length(max = 63))]
    pub(super) namespace: Option<Spanned<String>>,
    /// The UID of this cluster's kube-system namespace, checked before any write (as a stage's
    /// clusterId).
    pub(super) cluster_id: Option<String>,
}

/// A freeze window: `from` and `to` (dates and times in `timeZone`, or with an offset), or
/// `cron` and `duration` (every time the five-field schedule matches, for that long).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawFreeze {
    /// Start, included: `2026-12-23T18:00`, `2026-12-23`, or `2026-12-23T18:00:00+01:00`.
    pub(super) from: Option<String>,
    /// End, excluded.
    pub(super) to: Option<String>,
    /// Minute, hour, day of month, month, day of week: `0 12 * * FRI` is every Friday at 12:00.
    pub(super) cron: Option<String>,
    /// How long each recurring window lasts: `68h`.
    #[schemars(regex(pattern = r"^([0-9]+[hms])+$"))]
    pub(super) duration: Option<String>,
    /// The IANA time zone of the times and the schedule: `Europe/Berlin`. Default: UTC.
    pub(super) time_zone: Option<String>,
    /// Why the stage is frozen, shown with the refusal.
    pub(super) reason: Option<String>,
}

/// What a failed deploy leaves behind (a stage's `onFailure`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Roll back what the run deployed, restore the files.
    #[default]
    Rollback,
    /// Keep the new revisions and the files as written.
    Keep,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Health")]
pub(super) struct RawHealth {
    /// How long to wait for a deployed release to be ready: `90s`, `5m`, `1m30s`; `0s` does not
    /// wait. Default `5m`.
    #[schemars(with = "Option<String>", regex(pattern = r"^([0-9]+[hms])+$"))]
    pub(super) timeout: Option<Spanned<String>>,
    /// The older spelling of the stage's `onFailure`: `true` is `rollback`, `false` is `keep`.
    pub(super) rollback: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Deploy")]
pub(super) struct RawDeploy {
    /// The script and its arguments, as a list (never a shell string). Runs once per release in
    /// the stages file's directory, with the stage's context in HELM_KUBECONTEXT,
    /// HELM_NAMESPACE, HELM_ENVS_STAGE, HELM_ENVS_RELEASE, HELM_ENVS_VALUES, ...
    #[schemars(length(min = 1), example = vec!["./deploy.sh", "--env", "staging"])]
    pub(super) command: Vec<String>,
}

/// One Helm release, deployed to every stage.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Release")]
pub(super) struct RawRelease {
    /// The Helm release name in every stage. Unique.
    #[schemars(with = "String", regex(pattern = DNS_LABEL), length(max = 53))]
    pub(super) name: Spanned<String>,
    /// A local chart directory or .tgz (relative to this file), repo/chart, or
    /// oci://registry/path/chart.
    #[schemars(with = "String", length(min = 1))]
    pub(super) chart: Spanned<String>,
    /// Overrides the stage's namespace for this release; `{stage}` is replaced.
    #[schemars(with = "Option<String>")]
    pub(super) namespace: Option<Spanned<String>>,
    /// Releases (of this file) that must be deployed and ready in a stage before this one
    /// starts there. Once any release declares `needs`, a stage deploys as a graph: releases
    /// that need nothing of each other deploy side by side (within --jobs); without any, in
    /// file order, one after another.
    #[serde(default)]
    #[schemars(with = "Vec<String>", example = vec!["operator", "database"])]
    pub(super) needs: Vec<Spanned<String>>,
    /// Values files in helm's merge order (later wins), relative to this file. `{stage}` and
    /// `{release}` are replaced; a path without `{stage}` is shared by every stage.
    #[serde(default)]
    #[schemars(with = "Vec<String>", example = vec!["values/web.yaml", "envs/{stage}/web.yaml"])]
    pub(super) values: Vec<Spanned<String>>,
    /// SOPS-encrypted values files (helm-secrets' format: YAML with a `sops:` key), merged after
    /// `values` in order; `{stage}` and `{release}` are replaced as there. Decrypted with `sops`
    /// only to render and deploy, passed to helm through a pipe (never a file), never promoted,
    /// never printed.
    #[serde(default)]
    #[schemars(with = "Vec<String>", example = vec!["envs/{stage}/web.secrets.yaml"])]
    pub(super) secrets: Vec<Spanned<String>>,
    /// Intentional-difference paths for this release only, on top of the top-level envSpecific.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub(super) env_specific: Vec<Spanned<String>>,
    /// Secrets the manifests reference that something outside the release provides (an
    /// operator, External Secrets, a CSI driver): check-secrets and the Secrets gate take them
    /// as present and show the reason. A name nothing references is an error.
    #[serde(default)]
    pub(super) provided_secrets: Vec<ProvidedSecret>,
}

/// A Secret provided out of band, and why.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvidedSecret {
    /// The Secret's name, in the release's namespace.
    #[schemars(regex(pattern = DNS_SUBDOMAIN), length(max = 253))]
    pub name: String,
    /// Who provides it, shown in the report: "the license operator writes it".
    #[schemars(length(min = 1))]
    pub reason: String,
}

/// A DNS subdomain, as Secret names are.
const DNS_SUBDOMAIN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// A DNS label, as Kubernetes names and Helm release names are.
const DNS_LABEL: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// Whether deploying into a stage needs a confirmation (or `--yes`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Approval {
    #[default]
    None,
    Required,
}

/// The isolation a stage requires from the other stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// Its namespaces, on a cluster it may share: NetworkPolicy and ResourceQuota.
    Namespace,
    /// A cluster of its own.
    Cluster,
}

/// The JSON Schema (draft 7, what editors' YAML support reads) of the stages file, generated
/// from the types that read it, so the two cannot disagree.
pub fn json_schema() -> Value {
    let schema = schemars::generate::SchemaSettings::draft07().into_generator().into_root_schema_for::<RawProject>();
    schema.to_value()
}
