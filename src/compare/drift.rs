//! Drift: where neighbouring stages differ although they should not (values outside
//! `envSpecific`, chart and image versions, the set of components), and where a stage's cluster
//! differs from its config (the release missing or failed, another chart version, values set by
//! hand, a manifest never deployed, objects edited in the cluster, Secrets missing).
//!
//! This module judges what `commands::drift` gathered; it runs nothing.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::compare::diff::{self, ChangeKind, Plan};
use crate::compare::manifest::{Manifest, ResourceKey};
use crate::compare::render::LiveState;
use crate::config::promotion;
use crate::config::stages::ChartVersion;
use crate::config::values::{self, Segment, ValuePath};

/// One thing found, in one stage (a difference between two stages belongs to the later one).
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub stage: String,
    /// `None` for findings about the whole stage (a missing Secret).
    pub release: Option<String>,
    pub item: Item,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A value that differs from the previous stage's.
    Value(ValueDifference),
    /// A chart or image version that differs from the previous stage's.
    Version {
        previous: String,
        subject: String,
        path: Vec<(String, Option<String>)>,
        documented: bool,
    },
    /// A resource rendered in one of the two stages only.
    Component {
        previous: String,
        resource: String,
        rendered_in: String,
        documented: bool,
    },
    NotDeployed,
    /// The latest revision's helm status is not `deployed`.
    Status {
        status: String,
        revision: u64,
    },
    /// The deployed chart is not the configured one.
    Chart {
        deployed: String,
        configured: String,
    },
    /// A user-supplied value of the deployed revision that the values files do not give.
    DeployedValue {
        path: String,
        deployed: Option<Value>,
        configured: Option<Value>,
    },
    /// The deployed manifest is not the config rendered now.
    Manifest {
        plan: Plan,
        resources: Vec<String>,
    },
    /// An object of the release changed in the cluster since helm deployed it, or away from the
    /// config Argo CD deploys.
    Edited {
        resource: String,
        fields: Vec<EditedField>,
        deleted: bool,
        managers: Vec<Manager>,
        /// The deployed revision, whose manifest was compared; `None`: the stage's config was
        /// (Argo CD deploys it, and helm keeps no revision).
        revision: Option<u64>,
    },
    /// A Secret (or keys of it) the stage's manifests need and its namespace lacks.
    Secret {
        namespace: String,
        name: String,
        keys: Vec<String>,
        whole: bool,
        needed_by: Vec<String>,
    },
    /// A key other stages' encrypted values files define and this stage's do not: the stage
    /// would deploy without that credential. Never a documented difference.
    SecretKey {
        path: String,
        /// This stage's encrypted file to add it to (its last, which wins).
        file: String,
        /// The stages whose encrypted files define it.
        defined_in: Vec<String>,
    },
    /// A cluster of a stage on several that does not run the config while its siblings do: a
    /// rollout that stopped before this cluster's wave.
    Behind {
        /// The sibling clusters that run the config.
        ahead: Vec<String>,
        /// This cluster's wave.
        wave: usize,
    },
    /// A stage Argo CD deploys: the release's Application is missing, edited away from what
    /// the stages file generates, holds objects Argo CD reports out of sync, or failed its last
    /// sync.
    Application(crate::compare::argocd::Application),
    /// Workloads of the release that are not ready.
    Unhealthy {
        /// `Deployment/web 0/1 ready`, each with why.
        workloads: Vec<(String, Vec<String>)>,
        since: Option<String>,
    },
}

/// The kinds of drift, in the order they are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Undocumented,
    Version,
    Parity,
    Documented,
    Release,
    Chart,
    Values,
    Manifest,
    Edited,
    Secret,
    SecretKey,
    Wave,
    Application,
    Health,
}

impl Kind {
    /// Its name in text and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Undocumented => "undocumented",
            Kind::Version => "version",
            Kind::Parity => "parity",
            Kind::Documented => "documented",
            Kind::Release => "release",
            Kind::Chart => "chart",
            Kind::Values => "values",
            Kind::Manifest => "manifest",
            Kind::Edited => "edited",
            Kind::Secret => "secret",
            Kind::SecretKey => "secret-key",
            Kind::Wave => "wave",
            Kind::Application => "application",
            Kind::Health => "health",
        }
    }
}

impl Item {
    pub fn kind(&self) -> Kind {
        match self {
            Item::Value(v) if v.documented => Kind::Documented,
            Item::Value(_) => Kind::Undocumented,
            Item::Version { documented: true, .. } | Item::Component { documented: true, .. } => Kind::Documented,
            Item::Version { .. } => Kind::Version,
            Item::Component { .. } => Kind::Parity,
            Item::NotDeployed | Item::Status { .. } => Kind::Release,
            Item::Chart { .. } => Kind::Chart,
            Item::DeployedValue { .. } => Kind::Values,
            Item::Manifest { .. } => Kind::Manifest,
            Item::Edited { .. } => Kind::Edited,
            Item::Secret { .. } => Kind::Secret,
            Item::SecretKey { .. } => Kind::SecretKey,
            Item::Behind { .. } => Kind::Wave,
            Item::Application(_) => Kind::Application,
            Item::Unhealthy { .. } => Kind::Health,
        }
    }

    /// Documented differences are reported on request and are not drift.
    pub fn is_drift(&self) -> bool {
        self.kind() != Kind::Documented
    }
}

/// A value path whose value differs between a stage and the one before it.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueDifference {
    pub previous: String,
    /// Map keys from the root.
    pub keys: Vec<String>,
    /// The previous stage's value (`None`: unset), as the stage's templates see it.
    pub before: Option<Value>,
    pub here: Option<Value>,
    /// Where each side sets it (`file:line`), when one of the stage's own files does.
    pub before_at: Option<Location>,
    pub here_at: Option<Location>,
    /// An `envSpecific` path: an intended difference.
    pub documented: bool,
    /// Which stage changed it more recently, and how that is known.
    pub newer: Option<Newer>,
}

impl ValueDifference {
    pub fn path(&self) -> String {
        path_text(&self.keys)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// As the stages file names it (`envs/dev/web.yaml`).
    pub file: String,
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Newer {
    pub stage: String,
    pub reason: String,
}

/// A field whose live value is not what the release's manifest sets.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EditedField {
    pub path: String,
    pub live: Option<Value>,
    pub release: Option<Value>,
}

/// A field manager that is a person at a terminal, not helm or a controller.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Manager {
    pub name: String,
    pub time: Option<String>,
}

/// `a.b["c.d"]` for map keys.
pub fn path_text(keys: &[String]) -> String {
    ValuePath(keys.iter().cloned().map(Segment::Key).collect()).to_string()
}

/// Value differences between two neighbouring stages, at Helm's merge granularity (what a
/// promotion would carry, and the documented rest). `own_*` are the stages' own values (what
/// the promotion patch compares); `merged_*` what their templates see, for the values shown.
/// A difference of own values that the shared files make equal anyway is not one.
pub fn value_differences(
    own_before: &Map<String, Value>,
    own_here: &Map<String, Value>,
    merged_before: &Map<String, Value>,
    merged_here: &Map<String, Value>,
    env_specific: &[ValuePath],
) -> Vec<(Vec<String>, bool)> {
    let undocumented: BTreeSet<Vec<String>> =
        values::promotion_patch(own_before, own_here, env_specific).iter().map(values::op_keys).collect();
    let mut out = Vec::new();
    for keys in values::promotion_patch(own_before, own_here, &[]).iter().map(values::op_keys) {
        let documented = !undocumented.contains(&keys);
        leaf_differences(values::lookup(merged_before, &keys), values::lookup(merged_here, &keys), keys, &mut |keys| {
            out.push((keys, documented));
        });
    }
    out
}

/// Where two values differ, down to the map keys whose values differ (so a map added as a
/// whole shows as the values in it that matter: `image.tag`, not `image`).
fn leaf_differences(a: Option<&Value>, b: Option<&Value>, keys: Vec<String>, found: &mut impl FnMut(Vec<String>)) {
    match (a, b) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for name in names {
                let mut keys = keys.clone();
                keys.push(name.clone());
                leaf_differences(a.get(name), b.get(name), keys, found);
            }
        }
        (a, b) if a != b => found(keys),
        _ => {}
    }
}

/// Which side changed a value more recently. `before`/`here`: whether the stage's own files
/// set it, and when that line last changed (`Some(None)`: not committed yet; `None` inside:
/// unknown, e.g. outside git).
pub fn newer(
    previous: &str,
    stage: &str,
    before: Option<Option<LineTime>>,
    here: Option<Option<LineTime>>,
) -> Option<Newer> {
    let newer = |stage: &str, reason: String| Some(Newer { stage: stage.to_string(), reason });
    match (before, here) {
        (Some(_), None) => newer(previous, format!("only {previous}'s own values set it: never promoted to {stage}")),
        (Some(Some(b)), Some(Some(h))) => {
            let (b_time, h_time) = (b.time.unwrap_or(i64::MAX), h.time.unwrap_or(i64::MAX));
            if b_time > h_time {
                newer(previous, format!("changed in {previous} {} after {stage} {}: not promoted yet", b, h))
            } else if h_time > b_time {
                newer(stage, format!("changed in {stage} {} after {previous} {}: changed in {stage} directly", h, b))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// When a values line last changed: `time` `None` when not committed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineTime {
    pub commit: Option<String>,
    pub time: Option<i64>,
}

impl std::fmt::Display for LineTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.commit, self.time) {
            (Some(commit), Some(time)) => write!(f, "({}, {commit})", utc_date(time)),
            _ => f.write_str("(not committed yet)"),
        }
    }
}

/// `YYYY-MM-DD` of a Unix time, in UTC.
pub fn utc_date(seconds: i64) -> String {
    // Howard Hinnant's days-to-civil algorithm.
    let z = seconds.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Seconds since the epoch as RFC 3339 in UTC (`2026-12-02T10:35:11Z`).
pub fn utc_rfc3339(secs: u64) -> String {
    let rest = secs % 86_400;
    let date = utc_date(i64::try_from(secs).unwrap_or(i64::MAX));
    format!("{date}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// Resources as compared between stages: keyed without the stage's own namespace.
fn components(manifest: &Manifest, namespace: &str) -> BTreeSet<ResourceKey> {
    manifest
        .keys()
        .map(|key| {
            let mut key = key.clone();
            if key.namespace.as_deref() == Some(namespace) {
                key.namespace = None;
            }
            key
        })
        .collect()
}

/// Resources rendered in one of two neighbouring stages only. `promoted` is the later stage
/// rendered with the earlier one's values outside envSpecific: a resource it agrees on with
/// the earlier stage exists because of an undocumented difference; one it agrees on with the
/// later stage, because of envSpecific values (documented).
pub fn component_differences(
    before: (&Manifest, &str),
    here: (&Manifest, &str),
    promoted: &Manifest,
) -> Vec<(ResourceKey, bool, bool)> {
    let b = components(before.0, before.1);
    let h = components(here.0, here.1);
    let p = components(promoted, here.1);
    let mut out = Vec::new();
    for key in b.difference(&h) {
        out.push((key.clone(), true, !p.contains(key)));
    }
    for key in h.difference(&b) {
        out.push((key.clone(), false, p.contains(key)));
    }
    out.sort();
    out
}

/// The images of a rendering: `Kind name, container c` -> image, for every container and
/// init container of every pod template.
pub fn images(manifest: &Manifest) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for resource in manifest.values() {
        let spec = match resource.key.kind.as_str() {
            "Pod" => resource.object.get("spec"),
            "CronJob" => resource.object.pointer("/spec/jobTemplate/spec/template/spec"),
            _ => resource.object.pointer("/spec/template/spec"),
        };
        let Some(spec) = spec else { continue };
        for list in ["initContainers", "containers"] {
            for container in spec.get(list).and_then(Value::as_array).into_iter().flatten() {
                let (Some(name), Some(image)) =
                    (container.get("name").and_then(Value::as_str), container.get("image").and_then(Value::as_str))
                else {
                    continue;
                };
                out.insert(format!("{} {}, container {name}", resource.key.kind, resource.key.name), image.to_string());
            }
        }
    }
    out
}

/// For each stage (by index), the keys its encrypted files lack that another stage's define,
/// each with the stages that define it. `keys[i]`: stage `i`'s keys, `None` when the stage has
/// no encrypted file for the release (nothing to compare).
pub fn missing_secret_keys(keys: &[Option<BTreeSet<String>>]) -> Vec<(usize, String, Vec<usize>)> {
    let mut missing = Vec::new();
    let all: BTreeSet<&String> = keys.iter().flatten().flatten().collect();
    for (i, own) in keys.iter().enumerate() {
        let Some(own) = own else { continue };
        for key in all.iter().filter(|key| !own.contains(**key)) {
            let defined_in = (0..keys.len()).filter(|&j| keys[j].as_ref().is_some_and(|k| k.contains(*key))).collect();
            missing.push((i, (*key).clone(), defined_in));
        }
    }
    missing
}

/// `registry/repo:tag` split into the repository and what pins it (tag or digest).
pub fn split_image(image: &str) -> (&str, &str) {
    if let Some((repo, digest)) = image.split_once('@') {
        return (repo, digest);
    }
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (image, "latest"),
    }
}

/// `dev 2.8.0 → staging 2.7.0 → production 2.7.0`.
pub fn version_path(path: &[(String, Option<String>)]) -> String {
    path.iter()
        .map(|(stage, version)| format!("{stage} {}", version.as_deref().unwrap_or("(none)")))
        .collect::<Vec<_>>()
        .join(" → ")
}

/// How a release as deployed differs from its config: not deployed, a status other than
/// `deployed`, another chart (`configured`: `None` when unknown), user-supplied values the values
/// files do not give, a manifest that is not the config rendered now.
pub fn against_config(state: &LiveState, configured_chart: Option<ChartVersion>, show_secrets: bool) -> Vec<Item> {
    let Some(installed) = &state.installed else { return vec![Item::NotDeployed] };
    let mut items = Vec::new();
    if installed.status != "deployed" {
        items.push(Item::Status { status: installed.status.clone(), revision: installed.revision });
    }
    if let Some(configured) = configured_chart.map(|c| c.to_string()).filter(|c| *c != installed.chart) {
        items.push(Item::Chart { deployed: installed.chart.clone(), configured });
    }
    for difference in &state.values {
        let keys = &difference.keys;
        items.push(Item::DeployedValue {
            path: path_text(keys),
            deployed: shown(keys, difference.deployed.clone(), show_secrets),
            configured: shown(keys, difference.configured.clone(), show_secrets),
        });
    }
    if !state.comparison.is_empty() {
        let resources = state
            .comparison
            .changes
            .iter()
            .map(|change| {
                let mark = match change.kind {
                    ChangeKind::Added => '+',
                    ChangeKind::Removed => '-',
                    ChangeKind::Changed => '~',
                };
                format!("{mark} {}", change.key)
            })
            .collect();
        items.push(Item::Manifest { plan: state.comparison.plan(), resources });
    }
    items
}

/// A value as shown: redacted where its key (or a key inside it) looks like a credential, as
/// `promote` shows it, unless `show_secrets`.
pub fn shown(keys: &[String], value: Option<Value>, show_secrets: bool) -> Option<Value> {
    if show_secrets {
        return value;
    }
    value.map(|v| promotion::redact_at(&path_text(keys), &v))
}

/// Fields the API server and controllers maintain, and kubectl's own bookkeeping: never drift.
const NOISE: &[&str] = &[
    "/metadata/managedFields",
    "/metadata/resourceVersion",
    "/metadata/generation",
    "/metadata/uid",
    "/metadata/creationTimestamp",
    "/metadata/selfLink",
    "/status",
];
/// Argo CD marks each object it applies with the Application that owns it (`tracking-id`).
const NOISE_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "argocd.argoproj.io/tracking-id",
];

/// An object without the fields that change on their own.
pub fn without_noise(mut object: Value) -> Value {
    for pointer in NOISE {
        let (parent, field) = pointer.rsplit_once('/').unwrap_or_default();
        let parent = if parent.is_empty() { Some(&mut object) } else { object.pointer_mut(parent) };
        if let Some(Value::Object(map)) = parent {
            map.remove(field);
        }
    }
    if let Some(Value::Object(metadata)) = object.get_mut("metadata")
        && let Some(Value::Object(annotations)) = metadata.get_mut("annotations")
    {
        for name in NOISE_ANNOTATIONS {
            annotations.remove(*name);
        }
        if annotations.is_empty() {
            metadata.remove("annotations");
        }
    }
    object
}

/// Field managers that are people: kubectl's (`kubectl-edit`, `kubectl-set`, `kubectl-patch`,
/// `kubectl-client-side-apply`, ...). Helm and the controllers are not.
pub fn manual_managers(object: &Value) -> Vec<Manager> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let name = entry.get("manager").and_then(Value::as_str)?;
            name.starts_with("kubectl").then(|| Manager {
                name: name.to_string(),
                time: entry.get("time").and_then(Value::as_str).map(str::to_string),
            })
        })
        .collect()
}

/// Objects of a release edited in the cluster: each object as it is (`live`) against the same
/// object with the release's manifest applied to it (`applied`, a server-side dry run), noise
/// left out. An object of the manifest missing from `live` was deleted. Fields the manifest
/// does not set are invisible to the dry run; the objects' kubectl field managers show those.
pub fn edited(
    manifest: &Manifest,
    live: &Manifest,
    applied: &Manifest,
    revision: Option<u64>,
    options: &diff::Options,
) -> Vec<Item> {
    let mut out = Vec::new();
    for key in manifest.keys() {
        let Some(live_object) = live.get(key) else {
            out.push(Item::Edited {
                resource: key.to_string(),
                fields: Vec::new(),
                deleted: true,
                managers: Vec::new(),
                revision,
            });
            continue;
        };
        let managers = manual_managers(&live_object.object);
        let Some(applied_object) = applied.get(key) else { continue };
        let clean = |resource: &crate::compare::manifest::Resource| {
            let mut resource = resource.clone();
            resource.object = without_noise(resource.object);
            BTreeMap::from([(key.clone(), resource)])
        };
        let comparison = diff::compare(clean(live_object), clean(applied_object), options);
        let fields: Vec<EditedField> = comparison
            .changes
            .into_iter()
            .flat_map(|change| change.fields)
            .map(|field| EditedField { path: field.path.to_string(), live: field.old, release: field.new })
            .collect();
        if !fields.is_empty() || !managers.is_empty() {
            out.push(Item::Edited { resource: key.to_string(), fields, deleted: false, managers, revision });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_secret_key_two_stages_define_is_missing_in_the_third_and_stages_without_files_are_not_compared() {
        let keys = |list: &[&str]| Some(list.iter().map(|k| k.to_string()).collect::<BTreeSet<_>>());
        let found = missing_secret_keys(&[
            keys(&["db.password", "api.token"]),
            keys(&["api.token"]),
            None,
            keys(&["db.password", "api.token"]),
        ]);
        assert_eq!(found, vec![(1, "db.password".to_string(), vec![0, 3])]);
        assert!(missing_secret_keys(&[keys(&["a"]), keys(&["a"])]).is_empty());
    }
    use crate::compare::manifest;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not a map"),
        }
    }

    fn keys(path: &str) -> Vec<String> {
        path.split('.').map(str::to_string).collect()
    }

    #[test]
    fn value_differences_split_undocumented_from_env_specific_and_skip_what_shared_files_equalise() {
        let shared = json!({"image": {"tag": "2.7.0"}, "log": "info"});
        let own_dev = json!({"image": {"tag": "2.8.0"}, "replicaCount": 1, "log": "info"});
        let own_staging = json!({"replicaCount": 2, "feature": true});
        let merged = |own: &Value| {
            let mut m = map(shared.clone());
            values::merge(&mut m, map(own.clone()));
            m
        };
        let env = vec![ValuePath::parse("replicaCount").expect("path")];
        let found = value_differences(
            &map(own_dev.clone()),
            &map(own_staging.clone()),
            &merged(&own_dev),
            &merged(&own_staging),
            &env,
        );
        assert_eq!(
            found,
            vec![(keys("feature"), false), (keys("image.tag"), false), (keys("replicaCount"), true)],
            "`log` is set in dev's own file but equals the shared value staging falls back to"
        );
    }

    #[test]
    fn history_says_which_side_changed_last() {
        let at = |time: Option<i64>| Some(Some(LineTime { commit: time.map(|_| "abc1234".into()), time }));
        let newer_stage = |b, h| newer("dev", "staging", b, h).map(|n| n.stage);
        assert_eq!(newer_stage(at(Some(200)), at(Some(100))), Some("dev".into()));
        assert_eq!(newer_stage(at(Some(100)), at(Some(200))), Some("staging".into()));
        assert_eq!(newer_stage(at(None), at(Some(200))), Some("dev".into()), "uncommitted is newest");
        assert_eq!(newer_stage(Some(None), None), Some("dev".into()), "only dev sets it");
        assert_eq!(newer_stage(None, Some(None)), None, "only staging sets it: no telling");
        assert_eq!(newer_stage(Some(None), Some(None)), None, "outside git: no telling");
        let reason = newer("dev", "staging", at(Some(1_795_689_311)), at(Some(1_700_000_000))).expect("newer").reason;
        assert_eq!(
            reason,
            "changed in dev (2026-11-26, abc1234) after staging (2023-11-14, abc1234): not promoted yet"
        );
    }

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(1_795_689_311), "2026-11-26");
        assert_eq!(utc_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_rfc3339(1_796_207_711), "2026-12-02T10:35:11Z");
    }

    fn rendered(text: &str, namespace: &str) -> Manifest {
        manifest::parse(text, namespace).expect("manifest")
    }

    #[test]
    fn a_component_in_one_stage_only_is_documented_when_envspecific_values_explain_it() {
        let base = "kind: Deployment\napiVersion: apps/v1\nmetadata: {name: web}\n";
        let hpa = "---\nkind: HorizontalPodAutoscaler\napiVersion: autoscaling/v2\nmetadata: {name: web}\n";
        let ingress = "---\nkind: Ingress\napiVersion: networking.k8s.io/v1\nmetadata: {name: web}\n";
        // staging has an ingress and an HPA; production neither. Promoted, production gets the
        // ingress (an undocumented value turns it on) but not the HPA (autoscaling is envSpecific).
        let staging = rendered(&format!("{base}{hpa}{ingress}"), "acme-staging");
        let production = rendered(base, "acme");
        let promoted = rendered(&format!("{base}{ingress}"), "acme");
        let found: Vec<(String, bool, bool)> =
            component_differences((&staging, "acme-staging"), (&production, "acme"), &promoted)
                .into_iter()
                .map(|(key, before, documented)| (key.to_string(), before, documented))
                .collect();
        assert_eq!(
            found,
            vec![
                ("autoscaling/HorizontalPodAutoscaler web".into(), true, true),
                ("networking.k8s.io/Ingress web".into(), true, false),
            ]
        );
    }

    #[test]
    fn images_are_found_in_every_pod_template_and_split_into_repository_and_tag() {
        let text = "kind: Deployment\napiVersion: apps/v1\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      \
            initContainers: [{name: migrate, image: 'r.example/acme/web:2.8.0'}]\n      containers: [{name: web, image: \
            'r.example/acme/web:2.8.0'}]\n---\nkind: CronJob\napiVersion: batch/v1\nmetadata: {name: nightly}\nspec:\n  \
            jobTemplate: {spec: {template: {spec: {containers: [{name: job, image: 'busybox'}]}}}}\n";
        let found = images(&rendered(text, "acme"));
        assert_eq!(found["Deployment web, container migrate"], "r.example/acme/web:2.8.0");
        assert_eq!(found["CronJob nightly, container job"], "busybox");
        assert_eq!(split_image("r.example:5000/acme/web:2.8.0"), ("r.example:5000/acme/web", "2.8.0"));
        assert_eq!(split_image("r.example:5000/acme/web"), ("r.example:5000/acme/web", "latest"));
        assert_eq!(split_image("web@sha256:abc"), ("web", "sha256:abc"));
    }

    #[test]
    fn values_set_by_hand_show_both_sides() {
        let deployed = map(json!({"image": {"tag": "2.7.0"}, "someKey": "x", "db": {"password": "hunter2"}}));
        let configured = map(json!({"image": {"tag": "2.7.0"}, "db": {"password": "s3cret"}}));
        let found = values::differences(&deployed, &configured);
        let difference =
            |path: &str, deployed, configured| values::Difference { keys: keys(path), deployed, configured };
        assert_eq!(
            found,
            vec![
                difference("db.password", Some(json!("hunter2")), Some(json!("s3cret"))),
                difference("someKey", Some(json!("x")), None),
            ]
        );
        let values::Difference { keys: path, deployed, .. } = &found[0];
        assert_ne!(shown(path, deployed.clone(), false), Some(json!("hunter2")), "credentials are redacted");
        assert_eq!(shown(path, deployed.clone(), true), Some(json!("hunter2")));
    }

    #[test]
    fn noise_is_ignored_and_edits_are_reported_with_their_manager() {
        let manifest = rendered(
            "kind: Deployment\napiVersion: apps/v1\nmetadata: {name: web}\nspec: {replicas: 2}\n---\n\
             kind: ConfigMap\napiVersion: v1\nmetadata: {name: gone}\n",
            "acme",
        );
        let live = manifest::from_objects(
            vec![json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {
                "name": "web", "namespace": "acme", "resourceVersion": "7", "generation": 3,
                "annotations": {"deployment.kubernetes.io/revision": "2"},
                "managedFields": [{"manager": "helm", "time": "t0"}, {"manager": "kubectl-edit", "time": "t1"}]},
                "spec": {"replicas": 5}, "status": {"replicas": 5}})],
            "acme",
        )
        .expect("live");
        let applied = manifest::from_objects(
            vec![json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {
                "name": "web", "namespace": "acme", "resourceVersion": "7", "generation": 4,
                "annotations": {"deployment.kubernetes.io/revision": "2",
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"data\": \"secret\"}"},
                "managedFields": [{"manager": "helm", "time": "t0"}]},
                "spec": {"replicas": 2}, "status": {"replicas": 5}})],
            "acme",
        )
        .expect("applied");
        let found = edited(&manifest, &live, &applied, Some(3), &diff::Options::default());
        assert_eq!(
            found,
            vec![
                Item::Edited {
                    resource: "ConfigMap acme/gone".into(),
                    fields: Vec::new(),
                    deleted: true,
                    managers: Vec::new(),
                    revision: Some(3),
                },
                Item::Edited {
                    resource: "apps/Deployment acme/web".into(),
                    fields: vec![EditedField {
                        path: "spec.replicas".into(),
                        live: Some(json!(5)),
                        release: Some(json!(2))
                    }],
                    deleted: false,
                    managers: vec![Manager { name: "kubectl-edit".into(), time: Some("t1".into()) }],
                    revision: Some(3),
                },
            ]
        );
        let same = edited(&manifest, &applied, &applied, Some(3), &diff::Options::default());
        assert!(matches!(&same[..], [Item::Edited { deleted: true, .. }]), "only the deleted ConfigMap: {same:?}");
    }
}
