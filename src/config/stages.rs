//! The stages file (`helm-envs.yaml`): finding it, reading it, validating it, and resolving
//! each (stage, release) pair into what helm needs.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use serde_saphyr::Spanned;

use crate::config::values::{self, ValuePath};
use crate::config::yaml;
use crate::error::{Diagnostic, Error, Result};

pub const FILE_NAME: &str = "helm-envs.yaml";

// ------------------------------------------------------------------ the file as written

/// The stages file of helm-envs: the stages a change goes through, in promotion order, and the
/// Helm releases deployed to each. Reference: docs/stages-file.md.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "helm-envs stages file (helm-envs.yaml)")]
struct RawProject {
    /// The stages in promotion order, first to last (e.g. dev, staging, production).
    #[schemars(with = "Vec<RawStage>", length(min = 1))]
    stages: Vec<Spanned<RawStage>>,
    /// The platform's components: Helm releases deployed to every stage. One is enough.
    #[schemars(with = "Vec<RawRelease>", length(min = 1))]
    releases: Vec<Spanned<RawRelease>>,
    /// Chart version per stage and release, for repository and OCI charts (passed as
    /// --version). Promoted from one stage to the next like a value.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, BTreeMap<String, String>>", example = versions_example())]
    versions: BTreeMap<String, Spanned<BTreeMap<String, String>>>,
    /// Value paths whose differences between stages are intentional (replicaCount, resources,
    /// ingress.host). Never promoted, never reported as drift. `a.b.c`, `hosts[0]`,
    /// `podAnnotations["prometheus.io/scrape"]`; a path covers everything under it.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    env_specific: Vec<Spanned<String>>,
    /// Let `promote` write values files outside this file's directory (`..`, absolute paths).
    /// Without it they are read, with a warning, and a promotion that would write one refuses.
    #[serde(default)]
    allow_values_outside_project: bool,
}

fn versions_example() -> serde_json::Value {
    serde_json::json!({"dev": {"web": "1.5.0"}, "staging": {"web": "1.4.2"}, "production": {"web": "1.4.2"}})
}

/// One stage: where its releases are deployed, and the gates in front of it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Stage")]
struct RawStage {
    /// Lowercase letters, digits and '-'; `{stage}` in values paths. Unique.
    #[schemars(with = "String", regex(pattern = DNS_LABEL), length(max = 53))]
    name: Spanned<String>,
    /// The kubeconfig context every helm and kubectl call of this stage uses, or `current` for
    /// the kubeconfig's current context on purpose. Required.
    // An `Option` only so that leaving it out gets its own explanation; required in the schema.
    #[schemars(with = "String", length(min = 1))]
    kube_context: Option<Spanned<String>>,
    /// The namespace of the stage's releases.
    #[schemars(with = "String", regex(pattern = DNS_LABEL), length(max = 63))]
    namespace: Spanned<String>,
    /// `required`: deploying or promoting into this stage needs a confirmation or --yes.
    #[serde(default)]
    approval: Approval,
    /// The UID of the kube-system namespace the context must reach before any write
    /// (`kubectl get namespace kube-system -o jsonpath='{.metadata.uid}'`).
    cluster_id: Option<String>,
    /// Extra arguments for the stage's helm upgrade, e.g. [--atomic, --timeout, 5m]. Flags that
    /// choose a cluster, namespace, values or version are refused.
    #[serde(default)]
    helm_args: Vec<String>,
    /// Release labels set by the stage's helm upgrade (--labels).
    #[serde(default)]
    labels: BTreeMap<String, String>,
    /// Run an existing release script instead of helm upgrade.
    deploy: Option<RawDeploy>,
    /// Commands run after a deploy, each an argument list; a failure stops the pipeline.
    #[serde(default)]
    #[schemars(example = vec![vec!["./smoke-test.sh", "--quick"]])]
    verify: Vec<Vec<String>>,
    /// After each deploy, wait until the release's workloads are ready: Deployments,
    /// StatefulSets and DaemonSets rolled out, Jobs complete, objects with a Ready condition
    /// Ready. A release not ready in time fails the deploy.
    #[serde(default)]
    health: RawHealth,
    /// How this stage must be kept apart from the others, checked before each deploy:
    /// `cluster` (no other stage on its cluster) or `namespace` (on a shared cluster, each of its
    /// namespaces has a NetworkPolicy keeping the other stages' namespaces out, and a
    /// ResourceQuota). `helm envs check-isolation` reports either way.
    isolation: Option<Isolation>,
    /// What a failed deploy, health wait or verify command leaves behind: `rollback` (the
    /// default) rolls the releases this run deployed in the stage back to the last revision
    /// each had deployed successfully (a first install is uninstalled), then restores the
    /// promotion's files; `keep` keeps the new revisions and the written files, and the message
    /// says what the cluster runs. Either way files and cluster agree.
    on_failure: Option<OnFailure>,
    /// Create the stage's namespaces when they do not exist (helm's --create-namespace).
    /// Without it, a deploy into a namespace that does not exist is refused before anything is
    /// written.
    #[serde(default)]
    create_namespace: bool,
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
struct RawHealth {
    /// How long to wait for a deployed release to be ready: `90s`, `5m`, `1m30s`; `0s` does not
    /// wait. Default `5m`.
    #[schemars(with = "Option<String>", regex(pattern = r"^([0-9]+[hms])+$"))]
    timeout: Option<Spanned<String>>,
    /// The older spelling of the stage's `onFailure`: `true` is `rollback`, `false` is `keep`.
    rollback: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Deploy")]
struct RawDeploy {
    /// The script and its arguments, as a list (never a shell string). Runs once per release in
    /// the stages file's directory, with the stage's context in HELM_KUBECONTEXT,
    /// HELM_NAMESPACE, HELM_ENVS_STAGE, HELM_ENVS_RELEASE, HELM_ENVS_VALUES, ...
    #[schemars(length(min = 1), example = vec!["./deploy.sh", "--env", "staging"])]
    command: Vec<String>,
}

/// One Helm release, deployed to every stage.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Release")]
struct RawRelease {
    /// The Helm release name in every stage. Unique.
    #[schemars(with = "String", regex(pattern = DNS_LABEL), length(max = 53))]
    name: Spanned<String>,
    /// A local chart directory or .tgz (relative to this file), repo/chart, or
    /// oci://registry/path/chart.
    #[schemars(with = "String", length(min = 1))]
    chart: Spanned<String>,
    /// Overrides the stage's namespace for this release; `{stage}` is replaced.
    #[schemars(with = "Option<String>")]
    namespace: Option<Spanned<String>>,
    /// Values files in helm's merge order (later wins), relative to this file. `{stage}` and
    /// `{release}` are replaced; a path without `{stage}` is shared by every stage.
    #[serde(default)]
    #[schemars(with = "Vec<String>", example = vec!["values/web.yaml", "envs/{stage}/web.yaml"])]
    values: Vec<Spanned<String>>,
    /// Intentional-difference paths for this release only, on top of the top-level envSpecific.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    env_specific: Vec<Spanned<String>>,
    /// Secrets the manifests reference that something outside the release provides (an
    /// operator, External Secrets, a CSI driver): check-secrets and the Secrets gate take them
    /// as present and show the reason. A name nothing references is an error.
    #[serde(default)]
    provided_secrets: Vec<ProvidedSecret>,
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

// ------------------------------------------------------------------ the resolved project

#[derive(Debug)]
pub struct Project {
    /// The stages file, absolute.
    pub file: PathBuf,
    /// Its directory: relative paths in the file are relative to it.
    pub dir: PathBuf,
    pub stages: Vec<Stage>,
    pub releases: Vec<Release>,
    /// Paths whose differences between stages are intentional (never promoted).
    pub env_specific: Vec<ValuePath>,
    /// Every values file, parsed once with Helm's YAML semantics.
    values: HashMap<PathBuf, Map<String, Value>>,
    /// `allowValuesOutsideProject`: promote may write values files outside `dir`.
    pub allow_values_outside_project: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeContext {
    Named(String),
    /// The kubeconfig's current-context, by the stage's explicit choice.
    Current,
}

impl KubeContext {
    /// The context's name; `None` for the kubeconfig's current context.
    pub fn name(&self) -> Option<&str> {
        match self {
            KubeContext::Named(name) => Some(name),
            KubeContext::Current => None,
        }
    }
}

/// For reports: the name, or `(current context)`.
impl std::fmt::Display for KubeContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name().unwrap_or("(current context)"))
    }
}

#[derive(Debug)]
pub struct Stage {
    pub name: String,
    pub kube_context: KubeContext,
    pub namespace: String,
    pub approval: Approval,
    pub cluster_id: Option<String>,
    pub helm_args: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub deploy_command: Option<Vec<String>>,
    pub verify: Vec<Vec<String>>,
    pub health: Health,
    /// The isolation the stage requires before a deploy (`None`: reported, not required).
    pub isolation: Option<Isolation>,
    pub on_failure: OnFailure,
    /// `createNamespace`: helm creates missing namespaces.
    pub create_namespace: bool,
}

/// What a deploy waits for after helm returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// Zero: do not wait.
    pub timeout: std::time::Duration,
}

/// The wait for readiness when a stage does not set `health.timeout`.
pub const DEFAULT_HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// `90s`, `5m`, `1m30s`, `2h`: what `health.timeout` takes (as helm's `--timeout` does, without
/// fractions).
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let mut total = 0u64;
    let mut digits = String::new();
    for c in text.chars() {
        match c {
            '0'..='9' => digits.push(c),
            'h' | 'm' | 's' if !digits.is_empty() => {
                let n: u64 = std::mem::take(&mut digits).parse().ok()?;
                total = total.checked_add(n.checked_mul(match c {
                    'h' => 3600,
                    'm' => 60,
                    _ => 1,
                })?)?;
            }
            _ => return None,
        }
    }
    (digits.is_empty() && !text.is_empty()).then_some(std::time::Duration::from_secs(total))
}

#[derive(Debug)]
pub struct Release {
    pub name: String,
    pub chart: Chart,
    /// The chart as written in the stages file, for people.
    pub chart_source: String,
    /// Namespace override; `{stage}` is replaced. Defaults to the stage's namespace.
    namespace: Option<String>,
    /// Values file paths as written, `{stage}` / `{release}` not yet replaced.
    values: Vec<String>,
    /// Intentional differences for this release only, on top of the project-wide list.
    pub env_specific: Vec<ValuePath>,
    /// Chart version per stage name.
    versions: BTreeMap<String, String>,
    /// Secrets provided out of band.
    pub provided_secrets: Vec<ProvidedSecret>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chart {
    /// A chart directory or packaged `.tgz`, absolute.
    Local(PathBuf),
    /// `repo/chart` from a configured Helm repository.
    Repo(String),
    /// `oci://registry/path/chart`.
    Oci(String),
}

impl Chart {
    /// The argument helm takes.
    pub fn reference(&self) -> String {
        match self {
            Chart::Local(path) => path.display().to_string(),
            Chart::Repo(r) | Chart::Oci(r) => r.clone(),
        }
    }
}

/// One values file of one (stage, release).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ValuesFile {
    /// Absolute path, as passed to helm.
    pub path: PathBuf,
    /// Path relative to the stages file directory, for people.
    pub display: String,
    /// True when the file is the same for every stage (no `{stage}` in its path).
    pub shared: bool,
}

/// Indexes of targets (given with their index) per stage and namespace: for reads that answer
/// for all of a namespace's releases at once.
pub fn by_namespace<'t, 'p: 't>(
    targets: impl IntoIterator<Item = (usize, &'t Target<'p>)>,
) -> BTreeMap<(&'t str, &'t str), Vec<usize>> {
    let mut groups: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (index, target) in targets {
        groups.entry((&target.stage.name, &target.namespace)).or_default().push(index);
    }
    groups
}

/// Everything needed to run helm for one release in one stage.
#[derive(Debug, Clone)]
pub struct Target<'p> {
    pub stage: &'p Stage,
    pub release: &'p Release,
    pub namespace: String,
    pub values_files: Vec<ValuesFile>,
    pub version: Option<String>,
}

impl Target<'_> {
    /// The chart this target deploys: a local chart's Chart.yaml, or a repository chart's
    /// pinned version. `None` for an unpinned repository chart (helm takes the latest) or a
    /// Chart.yaml that cannot be read.
    pub fn configured_chart(&self) -> Option<ChartVersion> {
        match &self.release.chart {
            Chart::Local(path) => {
                let file = path.join("Chart.yaml");
                let metadata = yaml::parse_values(&std::fs::read_to_string(&file).ok()?, &file).ok()?;
                let field = |name: &str| metadata.get(name).and_then(Value::as_str).map(str::to_string);
                Some(ChartVersion { name: field("name")?, version: field("version")? })
            }
            Chart::Repo(reference) | Chart::Oci(reference) => {
                let name = reference.rsplit('/').next().unwrap_or(reference).to_string();
                self.version.clone().map(|version| ChartVersion { name, version })
            }
        }
    }
}

/// A chart's name and version; shown `name-version`, as helm records a release's chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartVersion {
    pub name: String,
    pub version: String,
}

impl std::fmt::Display for ChartVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.name, self.version)
    }
}

// ------------------------------------------------------------------ finding and loading

/// The stages file: `explicit` when given, else `helm-envs.yaml` in `start` or its nearest parent.
pub fn locate(explicit: Option<&Path>, start: &Path) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(normalize(&absolute(path, start)));
    }
    let mut searched = Vec::new();
    for dir in start.ancestors() {
        let candidate = dir.join(FILE_NAME);
        if candidate.is_file() {
            return Ok(candidate);
        }
        searched.push(dir.to_path_buf());
    }
    Err(Error::ConfigNotFound { start: start.to_path_buf(), searched })
}

/// `a/b/../c` -> `a/c`, without touching the file system (symlinks stay as the user wrote them).
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn absolute(path: &Path, base: &Path) -> PathBuf {
    if path.is_absolute() { path.to_path_buf() } else { base.join(path) }
}

impl Project {
    /// The stages file `explicit`, or the one found from the current directory, loaded.
    pub fn find(explicit: Option<&Path>) -> Result<Project> {
        let cwd = std::env::current_dir().map_err(Error::io("cannot read the current directory"))?;
        Project::load(&locate(explicit, &cwd)?)
    }

    /// Read and validate a stages file. Every problem found is reported at once.
    pub fn load(file: &Path) -> Result<Project> {
        let text = std::fs::read_to_string(file)
            .map_err(|err| invalid(file, vec![unreadable(file, &err, "the stages file")]))?;
        let raw: RawProject =
            yaml::from_str(&text, file).map_err(|d| invalid(file, vec![with_schema_help(d, &text)]))?;
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut checker = Checker { file, dir: &dir, problems: Vec::new() };
        let project = checker.resolve(raw);
        if checker.problems.is_empty() { Ok(project) } else { Err(invalid(file, checker.problems)) }
    }

    pub fn stage(&self, name: &str) -> Result<&Stage> {
        self.stages.iter().find(|s| s.name == name).ok_or_else(|| Error::UnknownStage {
            name: name.to_string(),
            known: self.stages.iter().map(|s| s.name.clone()).collect(),
        })
    }

    /// The releases selected by `only` (all when `None`).
    pub fn select_releases(&self, only: Option<&str>) -> Result<Vec<&Release>> {
        match only {
            None => Ok(self.releases.iter().collect()),
            Some(name) => match self.releases.iter().find(|r| r.name == name) {
                Some(release) => Ok(vec![release]),
                None => Err(Error::UnknownRelease {
                    name: name.to_string(),
                    known: self.releases.iter().map(|r| r.name.clone()).collect(),
                }),
            },
        }
    }

    pub fn target<'p>(&'p self, stage: &'p Stage, release: &'p Release) -> Target<'p> {
        Target {
            stage,
            release,
            namespace: release.namespace_in(stage),
            values_files: release.values_in(stage, &self.dir),
            version: release.versions.get(&stage.name).cloned(),
        }
    }

    /// The paths whose differences between stages are intended, for one release: the
    /// project-wide `envSpecific` and the release's own.
    pub fn env_specific_for(&self, release: &Release) -> Vec<ValuePath> {
        self.env_specific.iter().chain(&release.env_specific).cloned().collect()
    }

    /// The stage's own values for a release: its per-stage values files merged in order, the
    /// shared ones left out (they are the same in every stage).
    pub fn own_values(&self, target: &Target) -> Map<String, Value> {
        let mut merged = Map::new();
        for file in target.values_files.iter().filter(|f| !f.shared) {
            if let Some(values) = self.values.get(&file.path) {
                values::merge(&mut merged, values.clone());
            }
        }
        merged
    }

    /// Values files outside the project directory (`..`, absolute paths), as written.
    pub fn values_outside(&self) -> Vec<String> {
        let mut outside: Vec<String> = self
            .values
            .keys()
            .filter(|path| !path.starts_with(&self.dir))
            .map(|path| path.display().to_string())
            .collect();
        outside.sort();
        outside
    }

    /// One values file's values, as read when the project was loaded.
    pub fn file_values(&self, path: &Path) -> Option<&Map<String, Value>> {
        self.values.get(path)
    }

    /// A stage's values for a release: all its values files merged in order, as helm merges `-f`.
    /// The project's files as loaded; another file (a promotion's temporary copy of one) is
    /// read now.
    pub fn merged_values(&self, target: &Target) -> Map<String, Value> {
        let mut merged = Map::new();
        for file in &target.values_files {
            let read = || {
                let text = std::fs::read_to_string(&file.path).ok()?;
                yaml::parse_values(&text, &file.path).ok()
            };
            if let Some(values) = self.values.get(&file.path).cloned().or_else(read) {
                values::merge(&mut merged, values);
            }
        }
        merged
    }
}

impl Release {
    /// A local chart's own values.yaml (its defaults); `None` for a repository chart or a file
    /// that cannot be read.
    pub fn chart_defaults(&self) -> Option<Map<String, Value>> {
        let Chart::Local(dir) = &self.chart else { return None };
        let file = dir.join("values.yaml");
        yaml::parse_values(&std::fs::read_to_string(&file).ok()?, &file).ok()
    }

    fn namespace_in(&self, stage: &Stage) -> String {
        match &self.namespace {
            Some(template) => template.replace("{stage}", &stage.name),
            None => stage.namespace.clone(),
        }
    }

    fn values_in(&self, stage: &Stage, dir: &Path) -> Vec<ValuesFile> {
        self.values
            .iter()
            .map(|template| {
                let display = template.replace("{stage}", &stage.name).replace("{release}", &self.name);
                ValuesFile {
                    path: normalize(&absolute(Path::new(&display), dir)),
                    display,
                    shared: !template.contains("{stage}"),
                }
            })
            .collect()
    }
}

fn invalid(file: &Path, diagnostics: Vec<Diagnostic>) -> Error {
    Error::Invalid { file: file.to_path_buf(), diagnostics }
}

fn unreadable(file: &Path, err: &std::io::Error, what: &str) -> Diagnostic {
    Diagnostic::new(file, None, unreadable_message(&file.display().to_string(), err, what))
}

fn unreadable_message(shown: &str, err: &std::io::Error, what: &str) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => format!("{what} {shown} does not exist"),
        _ => format!("cannot read {what} {shown}: {err}"),
    }
}

fn with_schema_help(d: Diagnostic, text: &str) -> Diagnostic {
    let line = d.position.and_then(|(line, _)| text.lines().nth(line.saturating_sub(1) as usize)).unwrap_or("");
    if line.contains('[') && (line.contains("{stage}") || line.contains("{release}")) {
        d.help("in a [flow, list] `{` starts a map: quote paths with placeholders, e.g. [\"envs/{stage}/web.yaml\"]")
    } else if d.message.starts_with("unknown field") {
        d.help("see the stages-file reference in docs/stages-file.md for every key")
    } else if d.message.starts_with("missing field") {
        d.help("add the field; see docs/stages-file.md")
    } else {
        d
    }
}

fn position<T>(spanned: &Spanned<T>) -> Option<(u64, u64)> {
    let loc = spanned.referenced;
    (loc.line() > 0).then(|| (loc.line(), loc.column()))
}

// ------------------------------------------------------------------ validation

/// helm flags that would take a stage's call to another cluster or namespace, or feed it
/// values that are not in the stage's files.
const FORBIDDEN_HELM_ARGS: &[&str] = &[
    "--kube-context",
    "--kubeconfig",
    "--namespace",
    "-n",
    "--kube-apiserver",
    "--kube-token",
    "--kube-as-user",
    "--kube-as-group",
    "--kube-ca-file",
    "--reuse-values",
    "--reset-then-reuse-values",
    "--set",
    "--set-string",
    "--set-file",
    "--set-json",
    "--set-literal",
    "--values",
    "-f",
    "--version",
];

struct Checker<'a> {
    file: &'a Path,
    dir: &'a Path,
    problems: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn problem<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) -> &mut Diagnostic {
        self.problems.push(Diagnostic::new(self.file, position(at), message));
        self.problems.last_mut().expect("just pushed")
    }

    fn resolve(&mut self, raw: RawProject) -> Project {
        if raw.stages.is_empty() {
            self.problems.push(
                Diagnostic::new(self.file, None, "`stages` is empty")
                    .help("list the stages in promotion order, e.g. dev, staging, production"),
            );
        }
        if raw.releases.is_empty() {
            self.problems.push(
                Diagnostic::new(self.file, None, "`releases` is empty")
                    .help("add at least one release with a name and a chart"),
            );
        }
        let stages: Vec<Stage> = raw.stages.iter().map(|s| self.stage(s)).collect();
        self.unique_names("stage", raw.stages.iter().map(|s| &s.value.name));
        self.unique_names("release", raw.releases.iter().map(|r| &r.value.name));

        let mut releases: Vec<Release> = raw.releases.iter().map(|r| self.release(r)).collect();
        self.versions(&raw.versions, &stages, &mut releases);
        let env_specific = self.paths(&raw.env_specific);

        let mut project = Project {
            file: self.file.to_path_buf(),
            dir: self.dir.to_path_buf(),
            stages,
            releases,
            env_specific,
            values: HashMap::new(),
            allow_values_outside_project: raw.allow_values_outside_project,
        };
        self.collisions(&project, &raw);
        self.read_values(&mut project, &raw);
        if self.problems.is_empty() {
            self.env_specific_matches(&project, &raw);
        }
        project
    }

    fn stage(&mut self, raw: &Spanned<RawStage>) -> Stage {
        let s = &raw.value;
        let name = s.name.value.clone();
        self.check_name("stage", &s.name);
        let kube_context = match &s.kube_context {
            Some(ctx) if ctx.value == "current" => KubeContext::Current,
            Some(ctx) if ctx.value.trim().is_empty() => {
                self.problem(ctx, format!("stage `{name}`: kubeContext is empty")).help =
                    Some("name the kubeconfig context, or write `kubeContext: current`".into());
                KubeContext::Current
            }
            Some(ctx) => KubeContext::Named(ctx.value.clone()),
            None => {
                self.problem(raw, format!("stage `{name}` has no kubeContext")).help = Some(
                    "name the kubeconfig context this stage deploys to (kubeContext: my-cluster), or write \
                     `kubeContext: current` to use the kubeconfig's current context on purpose"
                        .into(),
                );
                KubeContext::Current
            }
        };
        self.check_namespace(&s.namespace, &format!("stage `{name}`"));
        if let Some(deploy) = &s.deploy
            && deploy.command.is_empty()
        {
            self.problem(raw, format!("stage `{name}`: deploy.command is empty")).help =
                Some("give the command as a list: command: [./deploy.sh, --stage, staging]".into());
        }
        for arg in &s.helm_args {
            let flag = arg.split('=').next().unwrap_or(arg);
            if FORBIDDEN_HELM_ARGS.contains(&flag) {
                self.problem(raw, format!("stage `{name}`: helmArgs may not contain `{flag}`")).help = Some(
                    "helm-envs sets the context, namespace and values of every call from the stage itself; \
                     use kubeContext, namespace and the values files instead"
                        .into(),
                );
            }
        }
        if s.verify.iter().any(Vec::is_empty) {
            self.problem(raw, format!("stage `{name}`: a verify command is empty")).help =
                Some("each verify entry is a command as a list: - [./smoke-test.sh, --quick]".into());
        }
        let timeout = match &s.health.timeout {
            None => DEFAULT_HEALTH_TIMEOUT,
            Some(text) => parse_duration(&text.value).unwrap_or_else(|| {
                self.problem(text, format!("stage `{name}`: health.timeout `{}` is not a duration", text.value)).help =
                    Some("write it as helm's --timeout: 90s, 5m, 1m30s; 0s does not wait".into());
                DEFAULT_HEALTH_TIMEOUT
            }),
        };
        if s.on_failure.is_some() && s.health.rollback.is_some() {
            self.problem(raw, format!("stage `{name}`: both onFailure and health.rollback are set")).help = Some(
                "health.rollback is the older spelling of onFailure: keep only onFailure (rollback or keep)".into(),
            );
        }
        Stage {
            name,
            kube_context,
            namespace: s.namespace.value.clone(),
            approval: s.approval,
            cluster_id: s.cluster_id.clone(),
            helm_args: s.helm_args.clone(),
            labels: s.labels.clone(),
            deploy_command: s.deploy.as_ref().map(|d| d.command.clone()),
            verify: s.verify.clone(),
            health: Health { timeout },
            isolation: s.isolation,
            on_failure: match (s.on_failure, s.health.rollback) {
                (Some(on_failure), _) => on_failure,
                (None, Some(false)) => OnFailure::Keep,
                (None, _) => OnFailure::Rollback,
            },
            create_namespace: s.create_namespace,
        }
    }

    fn release(&mut self, raw: &Spanned<RawRelease>) -> Release {
        let r = &raw.value;
        let name = r.name.value.clone();
        self.check_name("release", &r.name);
        if let Some(ns) = &r.namespace {
            let probe =
                Spanned { value: ns.value.replace("{stage}", "stage"), referenced: ns.referenced, defined: ns.defined };
            self.check_namespace(&probe, &format!("release `{name}`"));
        }
        let chart = self.chart(&r.chart, &name);
        for secret in &r.provided_secrets {
            let valid = !secret.name.is_empty()
                && secret.name.len() <= 253
                && secret.name.split('.').all(|label| is_dns_label(label, 63))
                && !secret.reason.trim().is_empty();
            if !valid {
                self.problem(
                    raw,
                    format!(
                        "release `{name}`: providedSecrets entry `{}` needs a Secret name and a reason",
                        secret.name
                    ),
                )
                .help = Some(
                    "write: providedSecrets: [{name: app-license, reason: \"the license operator writes it\"}]".into(),
                );
            }
        }
        for entry in &r.values {
            // helm splits `--values a,b` into two files: the deploy would read files nobody was shown.
            if entry.value.contains(',') {
                self.problem(
                    entry,
                    format!("release `{name}`: values file `{}` has a comma in its path", entry.value),
                )
                .help = Some(
                    "helm splits --values on commas (it would read the parts as separate files); rename the file"
                        .into(),
                );
            }
            let unknown: Vec<&str> =
                placeholders(&entry.value).filter(|p| *p != "{stage}" && *p != "{release}").collect();
            if !unknown.is_empty() {
                self.problem(
                    entry,
                    format!("release `{name}`: unknown placeholder {} in `{}`", unknown.join(", "), entry.value),
                )
                .help = Some("the placeholders are {stage} and {release}".into());
            }
        }
        Release {
            name,
            chart,
            chart_source: r.chart.value.clone(),
            namespace: r.namespace.as_ref().map(|n| n.value.clone()),
            values: r.values.iter().map(|v| v.value.clone()).collect(),
            env_specific: self.paths(&r.env_specific),
            versions: BTreeMap::new(),
            provided_secrets: r.provided_secrets.clone(),
        }
    }

    fn chart(&mut self, chart: &Spanned<String>, release: &str) -> Chart {
        let text = chart.value.trim();
        if text.starts_with("oci://") {
            return Chart::Oci(text.to_string());
        }
        let path = normalize(&absolute(Path::new(text), self.dir));
        let looks_local = text.starts_with('.') || text.starts_with('/') || text.ends_with(".tgz") || path.exists();
        if !looks_local && text.split('/').count() == 2 && !text.starts_with('/') {
            return Chart::Repo(text.to_string());
        }
        if path.is_dir() && !path.join("Chart.yaml").is_file() {
            self.problem(
                chart,
                format!("release `{release}`: {} is a directory without a Chart.yaml", path.display()),
            )
            .help = Some("point chart at the chart's directory (the one holding Chart.yaml)".into());
        } else if !path.exists() {
            self.problem(chart, format!("release `{release}`: chart {} does not exist", path.display())).help = Some(
                "use a chart directory or .tgz relative to helm-envs.yaml (./charts/web), a repository chart \
                 (repo/chart) or an OCI reference (oci://registry/chart)"
                    .into(),
            );
        }
        Chart::Local(path)
    }

    fn check_name(&mut self, what: &str, name: &Spanned<String>) {
        // 53: Helm's limit for release names (it appends suffixes to reach 63).
        if !is_dns_label(&name.value, 53) {
            self.problem(name, format!("`{}` is not a valid {what} name", name.value)).help = Some(
                "use lowercase letters, digits and '-', starting and ending with a letter or digit (at most 53)".into(),
            );
        }
    }

    fn check_namespace(&mut self, ns: &Spanned<String>, owner: &str) {
        let v = &ns.value;
        if !is_dns_label(v, 63) {
            self.problem(ns, format!("{owner}: `{v}` is not a valid Kubernetes namespace")).help =
                Some("a namespace is lowercase letters, digits and '-', at most 63 characters".into());
        }
    }

    fn unique_names<'a>(&mut self, what: &str, names: impl Iterator<Item = &'a Spanned<String>>) {
        let mut seen: HashMap<&str, &Spanned<String>> = HashMap::new();
        for name in names {
            if let Some(first) = seen.get(name.value.as_str()) {
                let first_line = first.referenced.line();
                self.problem(name, format!("{what} `{}` is defined twice (first at line {first_line})", name.value))
                    .help = Some(format!("rename or remove one of the two {what}s"));
            } else {
                seen.insert(&name.value, name);
            }
        }
    }

    fn paths(&mut self, raw: &[Spanned<String>]) -> Vec<ValuePath> {
        raw.iter()
            .filter_map(|p| match ValuePath::parse(&p.value) {
                Ok(path) => Some(path),
                Err(why) => {
                    self.problem(p, format!("envSpecific path `{}` is not a value path: {why}", p.value)).help =
                        Some("write paths like replicaCount, ingress.hosts, resources.limits.cpu, hosts[0]".into());
                    None
                }
            })
            .collect()
    }

    fn versions(
        &mut self,
        raw: &BTreeMap<String, Spanned<BTreeMap<String, String>>>,
        stages: &[Stage],
        releases: &mut [Release],
    ) {
        for (stage, per_release) in raw {
            if !stages.iter().any(|s| &s.name == stage) {
                let known = stages.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ");
                self.problem(per_release, format!("versions: unknown stage `{stage}`")).help =
                    Some(format!("the stages are: {known}"));
                continue;
            }
            for (release, version) in &per_release.value {
                match releases.iter_mut().find(|r| &r.name == release) {
                    Some(r) => {
                        r.versions.insert(stage.clone(), version.clone());
                    }
                    None => {
                        let known = releases.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", ");
                        self.problem(per_release, format!("versions.{stage}: unknown release `{release}`")).help =
                            Some(format!("the releases are: {known}"));
                    }
                }
            }
        }
    }

    /// Two stages that deploy the same release to the same context and namespace would overwrite
    /// each other.
    fn collisions(&mut self, project: &Project, raw: &RawProject) {
        let mut seen: HashMap<(String, String, String), usize> = HashMap::new();
        let mut reported = std::collections::HashSet::new();
        for (i, stage) in project.stages.iter().enumerate() {
            let context = match &stage.kube_context {
                KubeContext::Named(c) => c.clone(),
                KubeContext::Current => "current".to_string(),
            };
            for release in &project.releases {
                let key = (context.clone(), release.namespace_in(stage), release.name.clone());
                if let Some(&first) = seen.get(&key) {
                    let other = &project.stages[first];
                    if other.name == stage.name || !reported.insert((first, i, release.name.clone())) {
                        continue; // a duplicate stage or release name, reported on its own
                    }
                    self.problem(
                        &raw.stages[i].value.name,
                        format!(
                            "stages `{}` and `{}` both deploy release `{}` to context `{}`, namespace `{}`: they would overwrite each other",
                            other.name, stage.name, key.2, key.0, key.1
                        ),
                    )
                    .help = Some("give each stage its own namespace or kubeContext".into());
                } else {
                    seen.insert(key, i);
                }
            }
        }
    }

    /// Read every values file of every (stage, release) once, with Helm's YAML semantics.
    fn read_values(&mut self, project: &mut Project, raw: &RawProject) {
        for (r, release) in project.releases.iter().enumerate() {
            // A stage or release whose name is already refused would only add follow-up errors
            // about paths built from it (`envs/../x/web.yaml`).
            if !is_dns_label(&release.name, 53) {
                continue;
            }
            for stage in project.stages.iter().filter(|s| is_dns_label(&s.name, 53)) {
                for (entry, file) in raw.releases[r].value.values.iter().zip(release.values_in(stage, &project.dir)) {
                    if project.values.contains_key(&file.path) {
                        continue;
                    }
                    let note = if file.shared {
                        format!("release `{}` (shared by every stage)", release.name)
                    } else {
                        format!("release `{}`, stage `{}` (from `{}`)", release.name, stage.name, entry.value)
                    };
                    match std::fs::read_to_string(&file.path) {
                        Ok(text) => match yaml::parse_values(&text, &file.path) {
                            Ok(values) => {
                                project.values.insert(file.path.clone(), values);
                            }
                            Err(diagnostic) => {
                                self.problems.push(diagnostic.note(note));
                                project.values.insert(file.path.clone(), Map::new());
                            }
                        },
                        Err(err) => {
                            let message = unreadable_message(&file.display, &err, "values file");
                            self.problem(entry, message).note = Some(note);
                            self.problems.last_mut().expect("just pushed").help = Some(
                                "create the file (it may be empty), or fix the path in the release's `values` list"
                                    .into(),
                            );
                            project.values.insert(file.path.clone(), Map::new());
                        }
                    }
                }
            }
        }
    }

    /// An envSpecific path must exist in some stage's values or in a local chart's defaults;
    /// a path that matches nothing is almost always a typo, and would silently promote.
    fn env_specific_matches(&mut self, project: &Project, raw: &RawProject) {
        let mut trees: Vec<(Option<&str>, Map<String, Value>)> = Vec::new();
        for release in &project.releases {
            for stage in &project.stages {
                trees.push((Some(&release.name), project.merged_values(&project.target(stage, release))));
            }
            if let Some(defaults) = release.chart_defaults() {
                trees.push((Some(&release.name), defaults));
            }
        }
        let global = raw.env_specific.iter().zip(&project.env_specific).map(|(s, p)| (s, p, None));
        let per_release = raw.releases.iter().zip(&project.releases).flat_map(|(raw_release, release)| {
            raw_release
                .value
                .env_specific
                .iter()
                .zip(&release.env_specific)
                .map(move |(s, p)| (s, p, Some(release.name.as_str())))
        });
        let all: Vec<_> = global.chain(per_release).collect();
        for (spanned, path, only_release) in all {
            let found = trees.iter().any(|(release, tree)| {
                (only_release.is_none() || *release == only_release) && path.get(tree).is_some()
            });
            if !found {
                self.problem(spanned, format!("envSpecific path `{path}` matches no value in any stage or chart"))
                    .help = Some("fix the path (it is case-sensitive), or remove it".into());
            }
        }
    }
}

/// Lowercase letters, digits and '-', starting and ending with a letter or digit.
pub(crate) fn is_dns_label(text: &str, max_len: usize) -> bool {
    !text.is_empty()
        && text.len() <= max_len
        && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.match_indices('{').filter_map(move |(start, _)| text[start..].find('}').map(|end| &text[start..=start + end]))
}
