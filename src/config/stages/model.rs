//! The resolved project: stages, releases and the target of each (stage, release) pair, as
//! helm needs them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::file::{Approval, Isolation, OnFailure, ProvidedSecret};
use crate::config::values::{self, Segment, ValuePath};
use crate::config::yaml;
use crate::error::{Error, Result};

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
    pub(super) values: HashMap<PathBuf, Arc<Map<String, Value>>>,
    /// Every encrypted values file as read, without decrypting it.
    pub(super) encrypted: HashMap<PathBuf, Encrypted>,
    /// A digest of each values file's text as it was parsed, to know it unchanged later.
    pub(super) loaded_texts: HashMap<PathBuf, TextDigest>,
    /// `allowValuesOutsideProject`: promote may write values files outside `dir`.
    pub allow_values_outside_project: bool,
}

/// An encrypted values file, as read without its key.
#[derive(Debug, Default)]
pub struct Encrypted {
    /// Its keys, with SOPS' `ENC[...]` strings as values (the `sops:` metadata taken out): what
    /// it defines.
    pub(super) keys: Map<String, Value>,
    /// Who can open it, from its metadata (`config::recipients`).
    pub recipients: BTreeSet<String>,
    /// The recipients the project's `.sops.yaml` names for it; `None` without a rule for it.
    pub rule: Option<BTreeSet<String>>,
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

#[derive(Debug, Clone)]
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
    /// `requireOwnKeys`: deploys wait until its encrypted values open with its own keys only.
    pub require_own_keys: bool,
    /// `soak`: how long the previous stage must have run a config before it is promoted here.
    pub soak: Option<std::time::Duration>,
    /// `freeze`: when the stage takes no deploy, each window with its text as written.
    pub freeze: Vec<crate::config::freeze::Window>,
    /// `argocd`: Argo CD deploys the stage from Git.
    pub argocd: Option<ArgoCd>,
    /// For one cluster of a stage on several (`clusters`): which one. `None` otherwise.
    pub cluster: Option<Placement>,
    /// A stage on several clusters: one `Stage` per cluster (its context, namespace and
    /// clusterId), wave by wave. Empty for a stage on one cluster. The stage itself carries its
    /// first cluster's, for what reads one cluster for the whole stage (a render's capabilities).
    pub(super) on_clusters: Vec<Stage>,
}

/// A stage Argo CD deploys: where its Applications live and what they read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgoCd {
    pub repo_url: String,
    pub revision: String,
    /// The stages file's directory in the repository; `None`: found with git.
    pub path: Option<String>,
    /// Where Argo CD runs (its Applications' cluster).
    pub context: KubeContext,
    pub namespace: String,
    /// The destination cluster's name in Argo CD.
    pub cluster: String,
    pub project: String,
    /// Before each Application's name.
    pub prefix: String,
    pub sync: super::file::ArgoSync,
}

/// Where one cluster of a stage on several stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub name: String,
    /// Its wave, from 1.
    pub wave: usize,
}

/// The stage a label names: `production` for `production/eu` (see [`Stage::label`]).
pub fn stage_of(label: &str) -> &str {
    label.split_once('/').map_or(label, |(stage, _)| stage)
}

impl Stage {
    /// The stage on each of its clusters, wave by wave: the stage itself when it has one.
    pub fn clusters(&self) -> &[Stage] {
        if self.on_clusters.is_empty() { std::slice::from_ref(self) } else { &self.on_clusters }
    }

    /// The stage's clusters grouped by wave, in deploy order.
    pub fn waves(&self) -> Vec<&[Stage]> {
        self.clusters()
            .chunk_by(|a, b| a.cluster.as_ref().map(|c| c.wave) == b.cluster.as_ref().map(|c| c.wave))
            .collect()
    }

    /// One of the stage's clusters by name; the stage itself when it has one and `None` is given.
    pub fn on_cluster(&self, name: Option<&str>) -> Result<&Stage> {
        let names = || self.on_clusters.iter().filter_map(|c| c.cluster.as_ref().map(|c| c.name.clone())).collect();
        match (name, self.is_multi_cluster()) {
            (None, false) => Ok(self),
            (Some(name), true) => {
                self.on_clusters.iter().find(|c| c.cluster.as_ref().is_some_and(|c| c.name == name)).ok_or_else(|| {
                    Error::UnknownCluster { stage: self.name.clone(), name: Some(name.into()), known: names() }
                })
            }
            (None, true) => Err(Error::UnknownCluster { stage: self.name.clone(), name: None, known: names() }),
            (Some(name), false) => {
                Err(Error::UnknownCluster { stage: self.name.clone(), name: Some(name.into()), known: Vec::new() })
            }
        }
    }

    /// True for a stage on several clusters (not for one of its clusters).
    pub fn is_multi_cluster(&self) -> bool {
        !self.on_clusters.is_empty()
    }

    /// The name people read: `production`, or `production/eu` for one of its clusters.
    pub fn label(&self) -> String {
        match &self.cluster {
            Some(cluster) => format!("{}/{}", self.name, cluster.name),
            None => self.name.clone(),
        }
    }
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
    pub(super) namespace: Option<String>,
    /// Values file paths as written, `{stage}` / `{release}` not yet replaced.
    pub(super) values: Vec<String>,
    /// SOPS-encrypted values file paths as written, merged after `values`.
    pub(super) secrets: Vec<String>,
    /// Intentional differences for this release only, on top of the project-wide list.
    pub env_specific: Vec<ValuePath>,
    /// Chart version per stage name.
    pub(super) versions: BTreeMap<String, String>,
    /// Secrets provided out of band.
    pub provided_secrets: Vec<ProvidedSecret>,
    /// Releases that must be deployed and ready before this one starts (see `needs.rs`).
    pub needs: Vec<String>,
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
    /// SOPS-encrypted values files, passed to helm decrypted after `values_files`.
    pub secret_files: Vec<ValuesFile>,
    pub version: Option<String>,
}

impl Target<'_> {
    /// The release's name, after its cluster's in a stage on several (`eu/web`).
    pub fn label(&self) -> String {
        match &self.stage.cluster {
            Some(cluster) => format!("{}/{}", cluster.name, self.release.name),
            None => self.release.name.clone(),
        }
    }
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

/// `a/b/../c` -> `a/c`, without touching the file system (symlinks stay as the user wrote them).
pub(super) fn normalize(path: &Path) -> PathBuf {
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

pub(super) fn absolute(path: &Path, base: &Path) -> PathBuf {
    if path.is_absolute() { path.to_path_buf() } else { base.join(path) }
}

impl Project {
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
            secret_files: release.secrets_in(stage, &self.dir),
            version: release.versions.get(&stage.name).cloned(),
        }
    }

    /// The targets of `releases` on each cluster of `stage`, cluster by cluster in wave order:
    /// what a command that reads or deploys the clusters works on.
    pub fn cluster_targets<'p>(&'p self, stage: &'p Stage, releases: &[&'p Release]) -> Vec<Target<'p>> {
        stage.clusters().iter().flat_map(|on| releases.iter().map(move |release| self.target(on, release))).collect()
    }

    /// The paths whose differences between stages are intended, for one release: the
    /// project-wide `envSpecific` and the release's own.
    pub fn env_specific_for(&self, release: &Release) -> Vec<ValuePath> {
        self.env_specific.iter().chain(&release.env_specific).cloned().collect()
    }

    /// The value paths a target's encrypted files define (each leaf), read from the files'
    /// keys without decrypting them. Sorted, without repeats.
    pub fn secret_paths(&self, target: &Target) -> Vec<ValuePath> {
        fn leaves(map: &Map<String, Value>, above: &mut Vec<Segment>, out: &mut Vec<ValuePath>) {
            for (key, value) in map {
                above.push(Segment::Key(key.clone()));
                match value {
                    Value::Object(inner) if !inner.is_empty() => leaves(inner, above, out),
                    _ => out.push(ValuePath(above.clone())),
                }
                above.pop();
            }
        }
        let mut paths = Vec::new();
        for file in &target.secret_files {
            if let Some(encrypted) = self.encrypted.get(&file.path) {
                leaves(&encrypted.keys, &mut Vec::new(), &mut paths);
            }
        }
        paths.sort();
        paths.dedup();
        paths
    }

    /// An encrypted values file as read (`None` for a path that is not one).
    pub fn encrypted(&self, path: &Path) -> Option<&Encrypted> {
        self.encrypted.get(path)
    }

    /// What a promotion from `from` to `to` leaves as it is: the release's envSpecific paths, and
    /// every path either stage keeps in an encrypted file (a stage's credentials are its own).
    pub fn kept_per_stage(&self, from: &Target, to: &Target) -> Vec<ValuePath> {
        let mut kept = self.env_specific_for(to.release);
        kept.extend(self.secret_paths(from));
        kept.extend(self.secret_paths(to));
        kept
    }

    /// The stage's own values for a release: its per-stage values files merged in order, the
    /// shared ones left out (they are the same in every stage).
    pub fn own_values(&self, target: &Target) -> Map<String, Value> {
        let mut merged = Map::new();
        for file in target.values_files.iter().filter(|f| !f.shared) {
            if let Some(values) = self.values.get(&file.path) {
                values::merge(&mut merged, Map::clone(values));
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
        self.values.get(path).map(|values| &**values)
    }

    /// A values file's values as loaded, when `text` is still what was parsed then: a large
    /// file read again (to be edited) is not parsed again.
    pub fn values_if_unchanged(&self, path: &Path, text: &str) -> Option<&Map<String, Value>> {
        (self.loaded_texts.get(path) == Some(&TextDigest::of(text))).then(|| self.file_values(path)).flatten()
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
                values::merge(&mut merged, Map::clone(&values));
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
        yaml::parse_values(&std::fs::read_to_string(&file).ok()?, &file).ok().map(Arc::unwrap_or_clone)
    }

    pub(super) fn namespace_in(&self, stage: &Stage) -> String {
        match &self.namespace {
            Some(template) => template.replace("{stage}", &stage.name),
            None => stage.namespace.clone(),
        }
    }

    pub(super) fn values_in(&self, stage: &Stage, dir: &Path) -> Vec<ValuesFile> {
        self.files_in(&self.values, stage, dir)
    }

    pub(super) fn secrets_in(&self, stage: &Stage, dir: &Path) -> Vec<ValuesFile> {
        self.files_in(&self.secrets, stage, dir)
    }

    fn files_in(&self, templates: &[String], stage: &Stage, dir: &Path) -> Vec<ValuesFile> {
        templates
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

/// The SHA-256 of a file's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextDigest([u8; 32]);

impl TextDigest {
    pub fn of(text: &str) -> TextDigest {
        use sha2::Digest as _;
        TextDigest(sha2::Sha256::digest(text.as_bytes()).into())
    }
}
