//! The drift report: a table grouped by stage then kind of drift, or JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::compare::argocd::Application;
use crate::compare::diff::Plan;
use crate::compare::drift::{self, EditedField, Finding, Item, Kind, Location, Manager};
use crate::config::stages::{self, Stage};
use crate::inspect::drift::Outcome;
use crate::output::markdown::{Markdown, Section, table};
use crate::terminal::{BOLD, DIM, ERROR, NAME, WARN, plural};

/// How much the text shows.
#[derive(Debug, Clone, Copy)]
pub struct TextOptions {
    /// Every finding's details and the commands that act on it (`--details`).
    pub details: bool,
    /// `--live` was asked (else the text says what it would add).
    pub live: bool,
    /// `--documented` was asked (else the text says what it hides).
    pub documented: bool,
}

// ------------------------------------------------------------------ text

/// Where a stage's findings come from: its context, or for a stage on several clusters (its
/// config findings), the clusters its own entries follow.
fn reach(stage: &Stage) -> String {
    if stage.is_multi_cluster() {
        let names: Vec<&str> =
            stage.clusters().iter().filter_map(|c| c.cluster.as_ref()).map(|c| c.name.as_str()).collect();
        format!("clusters {}", names.join(", "))
    } else {
        format!("context {}", stage.kube_context)
    }
}

pub fn text(outcome: &Outcome, args: &TextOptions) -> String {
    let mut out = String::new();
    for (stage, unchecked) in &outcome.stages {
        let _ = write!(out, "{BOLD}{}{BOLD:#} {DIM}({}){DIM:#}", stage.label(), reach(stage));
        let findings: Vec<&Finding> = outcome.findings.iter().filter(|f| f.stage == stage.label()).collect();
        let drifted = findings.iter().filter(|f| f.item.is_drift()).count();
        match (unchecked, drifted) {
            (Some(_), _) => {
                let _ = writeln!(out);
            }
            (None, 0) => {
                let _ = writeln!(out, "  {NAME}no drift{NAME:#}");
            }
            (None, n) => {
                let _ = writeln!(out, "  {ERROR}{n} drifted{ERROR:#}");
            }
        }
        if let Some(reason) = unchecked {
            let _ = writeln!(out, "  {WARN}not checked{WARN:#}: {reason}");
        }
        let width = findings.iter().map(|f| f.release.as_deref().unwrap_or("").len()).max().unwrap_or(0);
        for finding in findings {
            let kind = finding.item.kind();
            let style = if kind == Kind::Documented { DIM } else { WARN };
            let _ = writeln!(
                out,
                "  {style}{:<12}{style:#}  {:<width$}  {}",
                kind.name(),
                finding.release.as_deref().unwrap_or(""),
                headline(finding)
            );
            if args.details {
                for line in details(finding, outcome) {
                    let _ = writeln!(out, "  {:<12}  {:<width$}    {DIM}{line}{DIM:#}", "", "");
                }
            }
        }
    }
    let _ = writeln!(out);
    out.push_str(&totals(outcome));
    let drift = outcome.findings.iter().any(|f| f.item.is_drift());
    let mut hints = Vec::new();
    if !args.details && drift {
        hints.push("--details shows files, lines and values");
    }
    if !args.live {
        hints.push("--live also finds objects edited in the cluster");
    }
    if !args.documented {
        hints.push("--documented shows the envSpecific differences");
    }
    if !hints.is_empty() {
        let _ = writeln!(out, "{DIM}{}{DIM:#}", hints.join("; "));
    }
    out
}

/// The last lines: drift by kind over the stages, and the clusters that could not be checked.
fn totals(outcome: &Outcome) -> String {
    let mut out = String::new();
    // Clusters by their own name (`production/eu`); stages counted once, however many clusters.
    let clusters = outcome.stages.iter().filter(|(s, _)| !s.is_multi_cluster());
    let checked: Vec<String> = clusters.clone().filter(|(_, u)| u.is_none()).map(|(s, _)| s.label()).collect();
    let unchecked: Vec<String> = clusters.filter(|(_, u)| u.is_some()).map(|(s, _)| s.label()).collect();
    let stage_count = outcome.stages.iter().map(|(s, _)| s.name.as_str()).collect::<BTreeSet<_>>().len();
    let drift: Vec<&Finding> = outcome.findings.iter().filter(|f| f.item.is_drift()).collect();
    if drift.is_empty() {
        let _ = writeln!(out, "{NAME}No drift{NAME:#} in {}.", plural(stage_count, "stage"));
    } else {
        let mut counts: BTreeMap<Kind, usize> = BTreeMap::new();
        for finding in &drift {
            *counts.entry(finding.item.kind()).or_default() += 1;
        }
        let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{} {n}", k.name())).collect();
        let stages: BTreeSet<&str> = drift.iter().map(|f| stages::stage_of(&f.stage)).collect();
        let _ = writeln!(
            out,
            "{ERROR}Drift{ERROR:#} in {} of {}: {} ({}).",
            stages.len(),
            plural(stage_count, "stage"),
            plural(drift.len(), "finding"),
            counts.join(", ")
        );
    }
    if !unchecked.is_empty() {
        let _ = writeln!(
            out,
            "{WARN}Clusters not checked{WARN:#}: {} (reasons above); checked: {}. The comparisons between \
             stages cover every stage.",
            unchecked.join(", "),
            if checked.is_empty() { "none".to_string() } else { checked.join(", ") }
        );
    }
    out
}

/// A value in one line: JSON, cut short.
/// What an edited object's fields are held against: the release helm deployed, or the config
/// (a stage Argo CD deploys keeps no Helm revision).
fn expected_side(revision: Option<u64>) -> &'static str {
    if revision.is_some() { "release" } else { "config" }
}

fn value(value: &Option<Value>) -> String {
    let Some(value) = value else { return "unset".to_string() };
    let text = serde_json::to_string(value).unwrap_or_default();
    if text.chars().count() > 60 { format!("{}…", text.chars().take(59).collect::<String>()) } else { text }
}

fn headline(finding: &Finding) -> String {
    match &finding.item {
        Item::Value(d) => {
            let newer = d.newer.as_ref().map(|n| format!(" ({} is newer)", n.stage)).unwrap_or_default();
            format!("{}: {} here, {} in {}{newer}", d.path(), value(&d.here), value(&d.before), d.previous)
        }
        Item::Version { subject, path, .. } => format!("{subject}: {}", drift::version_path(path)),
        Item::Component { previous, resource, rendered_in, .. } => {
            let other = if rendered_in == previous { &finding.stage } else { previous };
            format!("{resource}: rendered in {rendered_in}, not in {other}")
        }
        Item::NotDeployed => "not deployed".to_string(),
        Item::Status { status, revision } => format!("status {status} (revision {revision})"),
        Item::Chart { deployed, configured } => format!("deployed chart {deployed}, config has {configured}"),
        Item::DeployedValue { path, deployed, configured } => {
            format!("{path}: deployed {}, values files {}", value(deployed), value(configured))
        }
        Item::Manifest { plan, .. } => {
            let mut parts = Vec::new();
            for (n, what) in [(plan.add, "to add"), (plan.change, "to change"), (plan.destroy, "to destroy")] {
                if n > 0 {
                    parts.push(format!("{n} {what}"));
                }
            }
            format!("deployed manifest is not the config: {}", parts.join(", "))
        }
        Item::Edited { resource, deleted: true, .. } => format!("{resource}: deleted from the cluster"),
        Item::Edited { resource, fields, managers, revision, .. } => {
            let expected = expected_side(*revision);
            let by: BTreeSet<&str> = managers.iter().map(|m| m.name.as_str()).collect();
            let by = if by.is_empty() {
                String::new()
            } else {
                format!(" by {}", by.into_iter().collect::<Vec<_>>().join(", "))
            };
            match fields.as_slice() {
                [] => format!("{resource}: edited{by} (fields the chart does not set)"),
                [field] => format!(
                    "{resource}: {} live {}, {expected} {}{by}",
                    field.path,
                    value(&field.live),
                    value(&field.release)
                ),
                fields => format!("{resource}: {} fields differ from the {expected}{by}", fields.len()),
            }
        }
        Item::Secret { namespace, name, keys, whole: true, .. } => {
            let keys = if keys.is_empty() { String::new() } else { format!(" (keys {})", keys.join(", ")) };
            format!("Secret {namespace}/{name}{keys} is missing")
        }
        Item::Secret { namespace, name, keys, .. } => {
            format!("Secret {namespace}/{name} lacks keys {}", keys.join(", "))
        }
        Item::SecretKey { path, defined_in, .. } => {
            format!("encrypted key {path} is missing (defined in {})", defined_in.join(", "))
        }
        Item::Behind { ahead, wave } => {
            format!("does not run the config that {} runs (wave {wave} never got it)", ahead.join(", "))
        }
        Item::Application(application) => application_headline(application),
        Item::Unhealthy { workloads, since } => {
            let names: Vec<&str> = workloads.iter().map(|(w, _)| w.as_str()).collect();
            let since = since.as_deref().map(|s| format!(" since {s}")).unwrap_or_default();
            format!("not ready{since}: {}", names.join(", "))
        }
    }
}

/// An Application's worst problem in a line: gone, edited, failed, out of sync.
fn application_headline(application: &Application) -> String {
    let name = &application.name;
    let Some(verdict) = &application.verdict else { return format!("Argo CD holds no Application {name}") };
    match (application.edited.as_slice(), &verdict.failed_operation) {
        ([edit], _) => format!(
            "Application {name}: {} is {} in Argo CD, {} in the stages file",
            edit.path,
            value(&edit.live),
            value(&edit.generated)
        ),
        ([_, ..], _) => format!("Application {name}: {} fields differ from the stages file", application.edited.len()),
        ([], Some((phase, _))) => format!("Application {name}: Argo CD's last sync {}", phase.to_lowercase()),
        ([], None) => format!(
            "Application {name} is {} at {}: {}",
            verdict.sync,
            verdict.revision.as_deref().map_or("no revision", |r| &r[..r.len().min(12)]),
            match verdict.out_of_sync.as_slice() {
                [] => "Argo CD has not applied the stages file's config".to_string(),
                objects => format!("{} out of sync", objects.join(", ")),
            }
        ),
    }
}

fn application_details(application: &Application, stage: &str) -> Vec<String> {
    let Some(verdict) = &application.verdict else {
        return vec![format!("create it from the stages file: helm envs argocd {stage} --apply")];
    };
    let mut lines: Vec<String> = application
        .edited
        .iter()
        .map(|e| format!("{}: Argo CD {}, stages file {}", e.path, value(&e.live), value(&e.generated)))
        .collect();
    if !application.edited.is_empty() {
        lines.push(format!("put back what the stages file says: helm envs argocd {stage} --apply"));
    }
    if let Some((_, message)) = &verdict.failed_operation {
        lines.push(format!("Argo CD: {message}"));
    }
    if application.edited.is_empty() && !verdict.out_of_sync.is_empty() {
        lines.push(format!("out of sync: {}", verdict.out_of_sync.join(", ")));
        lines.push(format!("Argo CD puts them back at its next sync (argocd app sync {})", application.name));
    }
    lines
}

fn details(finding: &Finding, outcome: &Outcome) -> Vec<String> {
    let stage = &finding.stage;
    match &finding.item {
        Item::Value(d) => {
            let at = |l: &Option<Location>| {
                l.as_ref().map_or("(shared values or the chart's default)".to_string(), ToString::to_string)
            };
            let mut lines = vec![
                format!("{}: {}  {}", d.previous, value(&d.before), at(&d.before_at)),
                format!("{stage}: {}  {}", value(&d.here), at(&d.here_at)),
            ];
            if let Some(newer) = &d.newer {
                lines.push(newer.reason.clone());
            }
            if !d.documented {
                lines.push(format!(
                    "promote it: helm envs promote --from {} --to {stage} --only {}",
                    d.previous,
                    d.path()
                ));
            }
            lines
        }
        Item::DeployedValue { .. } => vec![
            "set on the release but not in the values files: a manual `helm upgrade --set` or `-f`?".to_string(),
            format!("put it in the values files, or deploy the files as they are: helm envs upgrade {stage}"),
        ],
        Item::Manifest { resources, .. } => {
            let mut lines = resources.clone();
            lines.push(format!("see the change: helm envs diff {stage}"));
            lines
        }
        Item::Chart { .. } => vec![format!("deploy the configured chart: helm envs upgrade {stage}")],
        Item::Status { .. } | Item::NotDeployed => vec![format!("deploy it: helm envs upgrade {stage}")],
        Item::Edited { fields, managers, deleted, revision, .. } => {
            let expected = expected_side(*revision);
            let mut lines: Vec<String> = fields
                .iter()
                .map(|f| format!("{}: live {}, {expected} {}", f.path, value(&f.live), value(&f.release)))
                .collect();
            for manager in managers {
                lines.push(format!(
                    "changed with {} at {}",
                    manager.name,
                    manager.time.as_deref().unwrap_or("an unknown time")
                ));
            }
            let restore = match revision {
                _ if !*deleted && fields.is_empty() => None,
                None => Some(format!(
                    "Argo CD puts the config back when it syncs (on its own with self-heal); an Application that \
                     syncs by hand: helm envs upgrade {} --push",
                    stages::stage_of(stage)
                )),
                Some(revision) => {
                    let release = finding.release.as_deref().unwrap_or_default();
                    let flags: String = outcome.rollback_flags.iter().map(|flag| format!(" {flag}")).collect();
                    Some(format!(
                        "restore what the release sets: helm rollback {release} {revision}{flags} (with the stage's \
                         --namespace and --kube-context); helm envs upgrade leaves a release whose manifest is \
                         unchanged alone"
                    ))
                }
            };
            lines.extend(restore);
            lines
        }
        Item::Secret { needed_by, .. } => needed_by.iter().map(|n| format!("needed by {n}")).collect(),
        Item::SecretKey { path, file, .. } => {
            vec![format!("add {path} to {file} (this stage's own value): sops edit {file}")]
        }
        Item::Application(application) => application_details(application, stage),
        Item::Behind { .. } => {
            let name = stages::stage_of(stage);
            vec![format!("finish the rollout: helm envs upgrade {name} (clusters that run the config are left alone)")]
        }
        Item::Unhealthy { workloads, .. } => workloads.iter().flat_map(|(_, why)| why.clone()).collect(),
        Item::Version { .. } | Item::Component { .. } => Vec::new(),
    }
}

// ------------------------------------------------------------------ JSON

/// `drift -o json`: whether anything drifted, each stage (checked or why not) with its count,
/// and every finding: its stage, release, kind and summary, then the fields of its kind.
#[derive(Serialize)]
pub struct DriftJson<'a> {
    drift: bool,
    stages: Vec<StageJson<'a>>,
    findings: Vec<FindingJson<'a>>,
}

#[derive(Serialize)]
struct StageJson<'a> {
    name: &'a str,
    /// One cluster of a stage on several.
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<&'a str>,
    /// `None` for a stage on several clusters (its config findings; each cluster follows).
    context: Option<String>,
    checked: bool,
    reason: Option<&'a str>,
    drift: usize,
}

#[derive(Serialize)]
struct FindingJson<'a> {
    stage: &'a str,
    release: Option<&'a str>,
    kind: &'static str,
    summary: String,
    #[serde(flatten)]
    item: ItemJson<'a>,
}

/// The fields of each kind of finding.
#[derive(Serialize)]
#[serde(untagged, rename_all_fields = "camelCase")]
enum ItemJson<'a> {
    Value {
        of: &'static str,
        path: String,
        previous: SideJson<'a>,
        here: SideJson<'a>,
        newer: Option<&'a str>,
        history: Option<&'a str>,
    },
    Version {
        of: &'static str,
        previous_stage: &'a str,
        subject: &'a str,
        path: Vec<VersionJson<'a>>,
    },
    Component {
        of: &'static str,
        previous_stage: &'a str,
        resource: &'a str,
        rendered_in: &'a str,
    },
    NotDeployed {
        deployed: bool,
    },
    Status {
        status: &'a str,
        revision: u64,
    },
    Chart {
        deployed: &'a str,
        configured: &'a str,
    },
    DeployedValue {
        path: &'a str,
        deployed: &'a Option<Value>,
        configured: &'a Option<Value>,
    },
    Manifest {
        plan: &'a Plan,
        resources: &'a [String],
    },
    Edited {
        resource: &'a str,
        revision: Option<u64>,
        deleted: bool,
        fields: &'a [EditedField],
        managers: &'a [Manager],
    },
    Secret {
        namespace: &'a str,
        secret: &'a str,
        missing_keys: &'a [String],
        /// `secret` (the whole Secret) or `keys`.
        missing: &'static str,
        needed_by: &'a [String],
    },
    SecretKey {
        path: &'a str,
        file: &'a str,
        defined_in: &'a [String],
    },
    Behind {
        ahead: &'a [String],
        wave: usize,
    },
    Unhealthy {
        not_ready_since: Option<&'a str>,
        workloads: Vec<UnhealthyJson<'a>>,
    },
    Application {
        application: &'a str,
        /// `false`: Argo CD holds no Application of that name.
        exists: bool,
        sync: Option<&'a str>,
        revision: Option<&'a str>,
        out_of_sync: &'a [String],
        failed_operation: Option<&'a str>,
        edited: Vec<ApplicationEditJson<'a>>,
    },
}

/// A field of an Application: what the stages file generates, what Argo CD holds.
#[derive(Serialize)]
struct ApplicationEditJson<'a> {
    path: &'a str,
    generated: &'a Option<Value>,
    live: &'a Option<Value>,
}

/// One side of a value finding: the stage, its value, and where its files set it.
#[derive(Serialize)]
struct SideJson<'a> {
    stage: &'a str,
    value: &'a Option<Value>,
    file: Option<&'a str>,
    line: Option<usize>,
}

#[derive(Serialize)]
struct VersionJson<'a> {
    stage: &'a str,
    version: Option<&'a str>,
}

#[derive(Serialize)]
struct UnhealthyJson<'a> {
    workload: &'a str,
    why: &'a [String],
}

pub fn json<'a>(outcome: &'a Outcome) -> DriftJson<'a> {
    let stages = outcome
        .stages
        .iter()
        .map(|(stage, unchecked)| StageJson {
            name: &stage.name,
            cluster: stage.cluster.as_ref().map(|c| c.name.as_str()),
            context: (!stage.is_multi_cluster()).then(|| stage.kube_context.to_string()),
            checked: unchecked.is_none(),
            reason: unchecked.as_deref(),
            drift: outcome.findings.iter().filter(|f| f.stage == stage.label() && f.item.is_drift()).count(),
        })
        .collect();
    DriftJson {
        drift: outcome.findings.iter().any(|f| f.item.is_drift()),
        stages,
        findings: outcome.findings.iter().map(finding_json).collect(),
    }
}

fn finding_json(finding: &Finding) -> FindingJson<'_> {
    FindingJson {
        stage: &finding.stage,
        release: finding.release.as_deref(),
        kind: finding.item.kind().name(),
        summary: headline(finding),
        item: item_json(finding),
    }
}

fn side<'a>(stage: &'a str, value: &'a Option<Value>, at: &'a Option<Location>) -> SideJson<'a> {
    SideJson { stage, value, file: at.as_ref().map(|l| l.file.as_str()), line: at.as_ref().map(|l| l.line) }
}

fn item_json(finding: &Finding) -> ItemJson<'_> {
    match &finding.item {
        Item::Value(d) => ItemJson::Value {
            of: "value",
            path: d.path(),
            previous: side(&d.previous, &d.before, &d.before_at),
            here: side(&finding.stage, &d.here, &d.here_at),
            newer: d.newer.as_ref().map(|n| n.stage.as_str()),
            history: d.newer.as_ref().map(|n| n.reason.as_str()),
        },
        Item::Version { previous, subject, path, .. } => ItemJson::Version {
            of: "version",
            previous_stage: previous,
            subject,
            path: path.iter().map(|(stage, version)| VersionJson { stage, version: version.as_deref() }).collect(),
        },
        Item::Component { previous, resource, rendered_in, .. } => {
            ItemJson::Component { of: "component", previous_stage: previous, resource, rendered_in }
        }
        Item::NotDeployed => ItemJson::NotDeployed { deployed: false },
        Item::Status { status, revision } => ItemJson::Status { status, revision: *revision },
        Item::Chart { deployed, configured } => ItemJson::Chart { deployed, configured },
        Item::DeployedValue { path, deployed, configured } => ItemJson::DeployedValue { path, deployed, configured },
        Item::Manifest { plan, resources } => ItemJson::Manifest { plan, resources },
        Item::Edited { resource, fields, deleted, managers, revision } => {
            ItemJson::Edited { resource, revision: *revision, deleted: *deleted, fields, managers }
        }
        Item::Secret { namespace, name, keys, whole, needed_by } => ItemJson::Secret {
            namespace,
            secret: name,
            missing_keys: keys,
            missing: if *whole { "secret" } else { "keys" },
            needed_by,
        },
        Item::SecretKey { path, file, defined_in } => ItemJson::SecretKey { path, file, defined_in },
        Item::Behind { ahead, wave } => ItemJson::Behind { ahead, wave: *wave },
        Item::Application(application) => {
            let verdict = application.verdict.as_ref();
            ItemJson::Application {
                application: &application.name,
                exists: verdict.is_some(),
                sync: verdict.map(|v| v.sync.as_str()),
                revision: verdict.and_then(|v| v.revision.as_deref()),
                out_of_sync: verdict.map(|v| v.out_of_sync.as_slice()).unwrap_or_default(),
                failed_operation: verdict
                    .and_then(|v| v.failed_operation.as_ref())
                    .map(|(_, message)| message.as_str()),
                edited: application
                    .edited
                    .iter()
                    .map(|e| ApplicationEditJson { path: &e.path, generated: &e.generated, live: &e.live })
                    .collect(),
            }
        }
        Item::Unhealthy { workloads, since } => ItemJson::Unhealthy {
            not_ready_since: since.as_deref(),
            workloads: workloads.iter().map(|(workload, why)| UnhealthyJson { workload, why }).collect(),
        },
    }
}

// ------------------------------------------------------------------ Markdown

/// Drift for a pull request: a row per stage, each stage's findings in a collapsible section.
pub fn markdown(outcome: &Outcome, args: &TextOptions) -> Markdown {
    let mut rows = Vec::new();
    let mut sections = Vec::new();
    for (stage, unchecked) in &outcome.stages {
        let findings: Vec<&Finding> = outcome.findings.iter().filter(|f| f.stage == stage.label()).collect();
        let drifted = findings.iter().filter(|f| f.item.is_drift()).count();
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for finding in findings.iter().filter(|f| f.item.is_drift()) {
            *kinds.entry(finding.item.kind().name()).or_default() += 1;
        }
        let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let verdict = match (unchecked, drifted) {
            (Some(why), _) => format!("not checked: {why}"),
            (None, 0) => "no drift".to_string(),
            (None, n) => format!("{n} drifted"),
        };
        // The Context column: the context, or a stage on several clusters' cluster names.
        let context = match stage.is_multi_cluster() {
            true => reach(stage),
            false => stage.kube_context.to_string(),
        };
        rows.push(vec![stage.label(), context, verdict, kinds.join(", ")]);
        if unchecked.is_none() && drifted > 0 {
            let one = Outcome {
                stages: vec![(*stage, None)],
                findings: findings.into_iter().cloned().collect(),
                rollback_flags: outcome.rollback_flags,
            };
            let details = TextOptions { details: true, ..*args };
            sections.push(Section {
                title: format!("{} ({drifted} drifted)", stage.name),
                body: text(&one, &details),
                language: "text",
                command: format!("helm envs drift --stage {} --details", stage.name),
                essential: false,
            });
        }
    }
    Markdown {
        title: "helm envs drift".into(),
        summary: table(&["Stage", "Context", "Drift", "Findings"], &rows),
        sections,
    }
}
