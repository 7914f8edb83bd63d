//! `helm envs drift`: every render and cluster read in parallel (the stages' config offline, and
//! one job per stage for its cluster), judged by [`crate::compare::drift`], printed as a table grouped by
//! stage then kind of drift, or as JSON.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::cli::{DriftArgs, ListFormat};
use crate::compare::diff;
use crate::compare::drift::{self, Finding, Item, Kind, LineTime, Location, ValueDifference};
use crate::compare::manifest::{self, Manifest};
use crate::compare::render::{
    against_installed, all_or_errors, in_parallel, installed_manifest_error, joined, parse_rendered, promoted_target,
    render_all,
};
use crate::compare::secrets;
use crate::config::edit;
use crate::config::stages::{Project, Release, Stage, Target};
use crate::error::{Detail, EXIT_DIFFERENCES, EXIT_ERROR, Error, Result};
use crate::system::git::Git;
use crate::system::helm::{Helm, Installed};
use crate::system::kube::{Kubectl, Stdin};
use crate::terminal::{self, BOLD, DIM, ERROR, NAME, WARN, plural};

/// Bumped only for incompatible changes to the JSON output.
const JSON_SCHEMA_VERSION: u32 = 1;

/// What was found, and which stages could not be checked.
struct Outcome<'p> {
    stages: Vec<(&'p Stage, Option<String>)>,
    findings: Vec<Finding>,
    /// What `helm rollback` needs, with the helm in use, to take back fields edited in the
    /// cluster (Helm 4 applies server-side: the editor owns them until forced).
    rollback_flags: &'static [&'static str],
}

pub fn run(project: &Project, args: &DriftArgs) -> Result<u8> {
    let releases = project.select_releases(args.release.as_deref())?;
    let selected: Vec<&Stage> = match &args.stage {
        Some(name) => vec![project.stage(name)?],
        None => project.stages.iter().collect(),
    };
    let (helm, kubectl) = (Helm::locate()?, Kubectl::locate()?);
    let options = diff::Options { ignore: Vec::new(), show_secrets: args.show_secrets };

    let (config, clusters) = std::thread::scope(|scope| {
        let config = scope.spawn(|| between_stages(project, &helm, &releases, &selected, args));
        let clusters: Vec<_> = selected
            .iter()
            .map(|stage| {
                let (helm, kubectl, releases, options) = (&helm, &kubectl, &releases, &options);
                scope.spawn(move || in_cluster(project, helm, kubectl, stage, releases, options, args.live))
            })
            .collect();
        (joined(config), clusters.into_iter().map(joined).collect::<Vec<_>>())
    });
    let mut findings = config?;
    let mut stages = Vec::new();
    let mut deployed: Vec<(&Stage, Vec<Option<String>>)> = Vec::new();
    for (stage, result) in selected.iter().zip(clusters) {
        match result {
            Ok((found, charts)) => {
                findings.extend(found);
                deployed.push((stage, charts));
                stages.push((*stage, None));
            }
            Err(err) => stages.push((*stage, Some(err.one_line()))),
        }
    }
    findings.extend(deployed_chart_skew(project, &releases, &deployed));
    if !args.documented {
        findings.retain(|finding| finding.item.is_drift());
    }
    let order = |name: &str| project.stages.iter().position(|s| s.name == name);
    findings.sort_by(|a, b| {
        (order(&a.stage), a.item.kind(), &a.release).cmp(&(order(&b.stage), b.item.kind(), &b.release))
    });
    let edited = findings.iter().find(|f| matches!(f.item, Item::Edited { .. }));
    let rollback_flags = match edited.and_then(|f| project.stages.iter().find(|s| s.name == f.stage)) {
        Some(stage) => helm.major(stage)?.rollback_overriding_edits(),
        None => &[],
    };
    let outcome = Outcome { stages, findings, rollback_flags };

    let text = match args.output {
        ListFormat::Text => text(&outcome, args),
        ListFormat::Json => terminal::json_text(&json(&outcome))?,
    };
    terminal::stdout(&text);
    if outcome.stages.iter().all(|(_, unchecked)| unchecked.is_some()) {
        let names: Vec<&str> = outcome.stages.iter().map(|(s, _)| s.name.as_str()).collect();
        terminal::report_error(&Error::Failed {
            headline: format!("no stage's cluster could be checked ({})", names.join(", ")),
            details: vec![Detail::Help(
                "check the stages' kube contexts (`kubectl config get-contexts`); the reasons are above".into(),
            )],
        });
        return Ok(EXIT_ERROR);
    }
    Ok(if outcome.findings.iter().any(|f| f.item.is_drift()) { EXIT_DIFFERENCES } else { 0 })
}

/// Deployed chart versions that differ between neighbouring stages (both read), with the
/// path through every stage that was read.
fn deployed_chart_skew(
    project: &Project,
    releases: &[&Release],
    deployed: &[(&Stage, Vec<Option<String>>)],
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (r, release) in releases.iter().enumerate() {
        let path: Vec<(String, Option<String>)> =
            deployed.iter().map(|(stage, charts)| (stage.name.clone(), charts[r].clone())).collect();
        for pair in deployed.windows(2) {
            let [(previous, before), (stage, here)] = pair else { continue };
            let neighbours = project.stages.windows(2).any(|w| w[0].name == previous.name && w[1].name == stage.name);
            if !neighbours {
                continue;
            }
            let (Some(before), Some(here)) = (&before[r], &here[r]) else { continue };
            if before != here {
                findings.push(Finding {
                    stage: stage.name.clone(),
                    release: Some(release.name.clone()),
                    item: Item::Version {
                        previous: previous.name.clone(),
                        subject: "deployed chart".to_string(),
                        path: path.clone(),
                        documented: false,
                    },
                });
            }
        }
    }
    findings
}

// ------------------------------------------------------------------ between stages

/// Each selected stage against the one before it, from offline renders (no cluster needed):
/// value differences, chart and image versions, components.
fn between_stages(
    project: &Project,
    helm: &Helm,
    releases: &[&Release],
    selected: &[&Stage],
    args: &DriftArgs,
) -> Result<Vec<Finding>> {
    let stages = &project.stages;
    let n = releases.len();
    // Every (stage, release), then each selected pair's promoted rendering.
    let mut renders: Vec<Target> =
        stages.iter().flat_map(|stage| releases.iter().map(move |release| project.target(stage, release))).collect();
    let mut promoted: HashMap<(usize, usize), usize> = HashMap::new();
    let mut promoted_files = Vec::new();
    let pairs: Vec<usize> = (1..stages.len()).filter(|&i| selected.iter().any(|s| s.name == stages[i].name)).collect();
    for &i in &pairs {
        for r in 0..n {
            let (from, to) = (renders[(i - 1) * n + r].clone(), renders[i * n + r].clone());
            if let Some((target, file)) = promoted_target(project, &from, &to)? {
                promoted.insert((i, r), renders.len());
                renders.push(target);
                promoted_files.push(file);
            }
        }
    }
    let rendered = all_or_errors(render_all(helm, &renders))?;
    drop(promoted_files);
    let manifests: Vec<Manifest> =
        renders.iter().zip(&rendered).map(|(target, text)| parse_rendered(text, target)).collect::<Result<_>>()?;
    let images: Vec<BTreeMap<String, String>> = manifests.iter().map(drift::images).collect();
    // Per release: each stage's configured chart version (Chart.yaml is read once per target).
    let chart_versions: Vec<Vec<(String, Option<String>)>> = (0..n)
        .map(|r| {
            stages
                .iter()
                .enumerate()
                .map(|(s, stage)| (stage.name.clone(), renders[s * n + r].configured_chart().map(|c| c.version)))
                .collect()
        })
        .collect();

    let mut findings = Vec::new();
    let mut differences = Vec::new();
    for &i in &pairs {
        let (previous, stage) = (&stages[i - 1], &stages[i]);
        for (r, release) in releases.iter().enumerate() {
            let (before, here) = (&renders[(i - 1) * n + r], &renders[i * n + r]);
            let promoted_index = promoted.get(&(i, r)).copied();
            let push = |findings: &mut Vec<Finding>, item| {
                findings.push(Finding { stage: stage.name.clone(), release: Some(release.name.clone()), item });
            };

            let (merged_before, merged_here) = (project.merged_values(before), project.merged_values(here));
            for (keys, documented) in drift::value_differences(
                &project.own_values(before),
                &project.own_values(here),
                &merged_before,
                &merged_here,
                &project.env_specific_for(release),
            ) {
                if documented && !args.documented {
                    continue;
                }
                let show = |value: Option<&Value>| drift::shown(&keys, value.cloned(), args.show_secrets);
                let difference = ValueDifference {
                    previous: previous.name.clone(),
                    before: show(crate::config::values::lookup(&merged_before, &keys)),
                    here: show(crate::config::values::lookup(&merged_here, &keys)),
                    keys,
                    before_at: None,
                    here_at: None,
                    documented,
                    newer: None,
                };
                differences.push((findings.len(), before.clone(), here.clone()));
                push(&mut findings, Item::Value(difference));
            }

            let versions = &chart_versions[r];
            if versions[i - 1].1 != versions[i].1 {
                let subject = format!("chart {}", release.chart.reference());
                let path = versions.clone();
                push(
                    &mut findings,
                    Item::Version { previous: previous.name.clone(), subject, path, documented: false },
                );
            }

            let (images_before, images_here) = (&images[(i - 1) * n + r], &images[i * n + r]);
            for (container, image) in images_here {
                let Some(before_image) = images_before.get(container).filter(|b| *b != image) else { continue };
                let promoted_image = promoted_index.and_then(|p| images[p].get(container));
                // Promotion would not change it: envSpecific values pick the image.
                let documented = promoted_image.is_none_or(|p| p == image);
                let path: Vec<(String, Option<String>)> = stages
                    .iter()
                    .enumerate()
                    .map(|(s, st)| (st.name.clone(), images[s * n + r].get(container).cloned()))
                    .collect();
                let repositories: BTreeSet<&str> =
                    path.iter().filter_map(|(_, i)| i.as_deref()).map(|i| drift::split_image(i).0).collect();
                let (subject, path) = if repositories.len() == 1 {
                    let repository = drift::split_image(before_image).0;
                    let tags =
                        path.into_iter().map(|(s, i)| (s, i.map(|i| drift::split_image(&i).1.to_string()))).collect();
                    (format!("image {repository} ({container})"), tags)
                } else {
                    (format!("image ({container})"), path)
                };
                push(&mut findings, Item::Version { previous: previous.name.clone(), subject, path, documented });
            }

            let promoted_manifest = promoted_index.map_or(&manifests[i * n + r], |p| &manifests[p]);
            for (key, rendered_before, documented) in drift::component_differences(
                (&manifests[(i - 1) * n + r], &before.namespace),
                (&manifests[i * n + r], &here.namespace),
                promoted_manifest,
            ) {
                let rendered_in = if rendered_before { previous.name.clone() } else { stage.name.clone() };
                let resource = key.to_string();
                push(
                    &mut findings,
                    Item::Component { previous: previous.name.clone(), resource, rendered_in, documented },
                );
            }
        }
    }
    locate_and_date(project, &mut findings, &differences);
    Ok(findings)
}

/// Where each side of each value difference is set (file and line), and which side changed
/// it last, from `git blame` (one call per file, in parallel). Outside git: no dates.
fn locate_and_date(project: &Project, findings: &mut [Finding], differences: &[(usize, Target, Target)]) {
    let mut texts: HashMap<PathBuf, Option<String>> = HashMap::new();
    // Per difference: its index, each side's file and line, whether each side sets it at all.
    type Side = Option<(PathBuf, Location)>;
    let mut located: Vec<(usize, Side, Side, bool, bool)> = Vec::new();
    for (index, before, here) in differences {
        let Item::Value(difference) = &findings[*index].item else { continue };
        let mut side = |target: &Target| {
            let file = target.values_files.iter().rev().filter(|f| !f.shared).find(|f| {
                project
                    .file_values(&f.path)
                    .is_some_and(|v| crate::config::values::lookup(v, &difference.keys).is_some())
            })?;
            let text = texts.entry(file.path.clone()).or_insert_with(|| std::fs::read_to_string(&file.path).ok());
            let line = text.as_deref().and_then(|t| edit::line_of(t, &difference.keys));
            Some((file.path.clone(), line.map(|line| Location { file: file.display.clone(), line })))
        };
        let (b, h) = (side(before), side(here));
        let (set_before, set_here) = (b.is_some(), h.is_some());
        let flatten = |s: Option<(PathBuf, Option<Location>)>| s.and_then(|(p, l)| l.map(|l| (p, l)));
        located.push((*index, flatten(b), flatten(h), set_before, set_here));
    }

    let mut lines: BTreeMap<PathBuf, BTreeSet<usize>> = BTreeMap::new();
    for (_, b, h, _, _) in &located {
        for (path, location) in b.iter().chain(h) {
            lines.entry(path.clone()).or_default().insert(location.line);
        }
    }
    let git = Git::new(&project.dir);
    let files: Vec<(PathBuf, BTreeSet<usize>)> = lines.into_iter().collect();
    let blamed = in_parallel(
        files
            .iter()
            .map(|(path, lines)| {
                let git = &git;
                move || git.last_changed(path, &lines.iter().copied().collect::<Vec<_>>())
            })
            .collect(),
    );
    let history: HashMap<&PathBuf, BTreeMap<usize, Option<crate::system::git::LineChange>>> =
        files.iter().map(|(p, _)| p).zip(blamed).filter_map(|(p, b)| b.ok().map(|b| (p, b))).collect();
    let time_of = |side: &Option<(PathBuf, Location)>| -> Option<LineTime> {
        let (path, location) = side.as_ref()?;
        let change = history.get(path)?.get(&location.line)?;
        Some(match change {
            Some(change) => LineTime { commit: Some(change.commit.clone()), time: Some(change.time) },
            None => LineTime { commit: None, time: None },
        })
    };

    for (index, b, h, set_before, set_here) in located {
        let finding = &mut findings[index];
        let Item::Value(difference) = &mut finding.item else { continue };
        let before = set_before.then(|| time_of(&b));
        let here = set_here.then(|| time_of(&h));
        difference.newer = drift::newer(&difference.previous, &finding.stage, before, here);
        difference.before_at = b.map(|(_, l)| l);
        difference.here_at = h.map(|(_, l)| l);
    }
}

// ------------------------------------------------------------------ one stage's cluster

/// A stage's releases as deployed against its config, its Secrets, and with `live`, its
/// objects in the cluster. Every query in parallel.
fn in_cluster(
    project: &Project,
    helm: &Helm,
    kubectl: &Kubectl,
    stage: &Stage,
    releases: &[&Release],
    options: &diff::Options,
    live: bool,
) -> Result<(Vec<Finding>, Vec<Option<String>>)> {
    let targets: Vec<Target> = releases.iter().map(|release| project.target(stage, release)).collect();
    let states = against_installed(project, helm, &targets, options)?;

    let mut findings = Vec::new();
    let mut rendered = Vec::new();
    for (target, state) in targets.iter().zip(&states) {
        let items = drift::against_config(state, target.configured_chart(), options.show_secrets);
        let release = Some(target.release.name.clone());
        findings.extend(items.into_iter().map(|item| Finding {
            stage: stage.name.clone(),
            release: release.clone(),
            item,
        }));
        rendered.push((target.release, parse_rendered(&state.rendered, target)?));
    }

    let (secrets, edits) = std::thread::scope(|scope| {
        let secrets = scope.spawn(|| secrets::check_manifests(kubectl, stage, &rendered));
        let edits = if live {
            let jobs: Vec<_> = targets
                .iter()
                .zip(&states)
                .filter_map(|(target, state)| state.installed.as_ref().map(|installed| (target, installed)))
                .map(|(target, installed)| move || edits_in_cluster(kubectl, target, installed, options))
                .collect();
            all_or_errors(in_parallel(jobs))
        } else {
            Ok(Vec::new())
        };
        (joined(secrets), edits)
    });
    for (release, items) in edits? {
        findings.extend(items.into_iter().map(|item| Finding {
            stage: stage.name.clone(),
            release: Some(release.clone()),
            item,
        }));
    }
    for namespace in secrets?.namespaces {
        for (finding, whole) in
            namespace.missing.iter().map(|f| (f, true)).chain(namespace.missing_keys.iter().map(|f| (f, false)))
        {
            let mut needed_by: Vec<String> = finding
                .needed_by
                .iter()
                .map(|r| format!("{} ({}) in release {}", r.resource, r.detail, r.release))
                .collect();
            needed_by.dedup();
            findings.push(Finding {
                stage: stage.name.clone(),
                release: None,
                item: Item::Secret {
                    namespace: namespace.namespace.clone(),
                    name: finding.name.clone(),
                    keys: finding.keys.iter().cloned().collect(),
                    whole,
                    needed_by,
                },
            });
        }
    }
    let charts = states.iter().map(|state| state.installed.as_ref().map(|i| i.chart.clone())).collect();
    Ok((findings, charts))
}

/// A release's objects in the cluster against its manifest applied to them (server-side dry
/// run); both reads in parallel.
fn edits_in_cluster(
    kubectl: &Kubectl,
    target: &Target,
    installed: &Installed,
    options: &diff::Options,
) -> Result<(String, Vec<Item>)> {
    let release = target.release.name.clone();
    let namespace = &target.namespace;
    let manifest =
        manifest::parse(&installed.manifest, namespace).map_err(|error| installed_manifest_error(target, error))?;
    if manifest.is_empty() {
        return Ok((release, Vec::new()));
    }
    let stdin = Stdin { text: &installed.manifest, what: format!("the manifest of release {release}") };
    let (live, applied) = std::thread::scope(|scope| {
        let applied = scope.spawn(|| kubectl.applied_dry_run(target.stage, namespace, &stdin));
        (kubectl.live_objects(target.stage, namespace, &stdin), joined(applied))
    });
    let objects = |objects: Vec<Value>, what: &str| {
        manifest::from_objects(objects, namespace).map_err(|message| {
            Error::Other(anyhow::anyhow!("kubectl returned {what} that are not Kubernetes objects: {message}"))
        })
    };
    let (live, applied) = (objects(live?, "live objects")?, objects(applied?, "dry-run objects")?);
    Ok((release, drift::edited(&manifest, &live, &applied, installed.revision, options)))
}

// ------------------------------------------------------------------ text

fn text(outcome: &Outcome, args: &DriftArgs) -> String {
    let mut out = String::new();
    for (stage, unchecked) in &outcome.stages {
        let _ = write!(out, "{BOLD}{}{BOLD:#} {DIM}(context {}){DIM:#}", stage.name, stage.kube_context);
        let findings: Vec<&Finding> = outcome.findings.iter().filter(|f| f.stage == stage.name).collect();
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
    let checked: Vec<&str> = outcome.stages.iter().filter(|(_, u)| u.is_none()).map(|(s, _)| s.name.as_str()).collect();
    let unchecked: Vec<&str> =
        outcome.stages.iter().filter(|(_, u)| u.is_some()).map(|(s, _)| s.name.as_str()).collect();
    let drift: Vec<&Finding> = outcome.findings.iter().filter(|f| f.item.is_drift()).collect();
    if drift.is_empty() {
        let _ = writeln!(out, "{NAME}No drift{NAME:#} in {}.", plural(outcome.stages.len(), "stage"));
    } else {
        let mut counts: BTreeMap<Kind, usize> = BTreeMap::new();
        for finding in &drift {
            *counts.entry(finding.item.kind()).or_default() += 1;
        }
        let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{} {n}", k.name())).collect();
        let stages: BTreeSet<&str> = drift.iter().map(|f| f.stage.as_str()).collect();
        let _ = writeln!(
            out,
            "{ERROR}Drift{ERROR:#} in {} of {}: {} ({}).",
            stages.len(),
            plural(outcome.stages.len(), "stage"),
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
    let mut hints = Vec::new();
    if !args.details && !drift.is_empty() {
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

/// A value in one line: JSON, cut short.
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
        Item::Edited { resource, fields, managers, .. } => {
            let by: BTreeSet<&str> = managers.iter().map(|m| m.name.as_str()).collect();
            let by = if by.is_empty() {
                String::new()
            } else {
                format!(" by {}", by.into_iter().collect::<Vec<_>>().join(", "))
            };
            match fields.as_slice() {
                [] => format!("{resource}: edited{by} (fields the chart does not set)"),
                [field] => format!(
                    "{resource}: {} live {}, release {}{by}",
                    field.path,
                    value(&field.live),
                    value(&field.release)
                ),
                fields => format!("{resource}: {} fields differ from the release{by}", fields.len()),
            }
        }
        Item::Secret { namespace, name, keys, whole: true, .. } => {
            let keys = if keys.is_empty() { String::new() } else { format!(" (keys {})", keys.join(", ")) };
            format!("Secret {namespace}/{name}{keys} is missing")
        }
        Item::Secret { namespace, name, keys, .. } => {
            format!("Secret {namespace}/{name} lacks keys {}", keys.join(", "))
        }
    }
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
            let mut lines: Vec<String> = fields
                .iter()
                .map(|f| format!("{}: live {}, release {}", f.path, value(&f.live), value(&f.release)))
                .collect();
            for manager in managers {
                lines.push(format!(
                    "changed with {} at {}",
                    manager.name,
                    manager.time.as_deref().unwrap_or("an unknown time")
                ));
            }
            if *deleted || !fields.is_empty() {
                let release = finding.release.as_deref().unwrap_or_default();
                let flags: String = outcome.rollback_flags.iter().map(|flag| format!(" {flag}")).collect();
                lines.push(format!(
                    "restore what the release sets: helm rollback {release} {revision}{flags} (with the stage's \
                     --namespace and --kube-context); helm envs upgrade leaves a release whose manifest is unchanged alone"
                ));
            }
            lines
        }
        Item::Secret { needed_by, .. } => needed_by.iter().map(|n| format!("needed by {n}")).collect(),
        Item::Version { .. } | Item::Component { .. } => Vec::new(),
    }
}

// ------------------------------------------------------------------ JSON

fn json(outcome: &Outcome) -> Value {
    let stages: Vec<Value> = outcome
        .stages
        .iter()
        .map(|(stage, unchecked)| {
            json!({
                "name": stage.name,
                "context": stage.kube_context.to_string(),
                "checked": unchecked.is_none(),
                "reason": unchecked,
                "drift": outcome.findings.iter().filter(|f| f.stage == stage.name && f.item.is_drift()).count(),
            })
        })
        .collect();
    let findings: Vec<Value> = outcome.findings.iter().map(finding_json).collect();
    json!({
        "schemaVersion": JSON_SCHEMA_VERSION,
        "drift": outcome.findings.iter().any(|f| f.item.is_drift()),
        "stages": stages,
        "findings": findings,
    })
}

fn finding_json(finding: &Finding) -> Value {
    let mut out = json!({
        "stage": finding.stage,
        "release": finding.release,
        "kind": finding.item.kind().name(),
        "summary": headline(finding),
    });
    let fields = match &finding.item {
        Item::Value(d) => {
            let side = |stage: &str, value: &Option<Value>, at: &Option<Location>| json!({"stage": stage, "value": value, "file": at.as_ref().map(|l| &l.file), "line": at.as_ref().map(|l| l.line)});
            json!({
                "of": "value",
                "path": d.path(),
                "previous": side(&d.previous, &d.before, &d.before_at),
                "here": side(&finding.stage, &d.here, &d.here_at),
                "newer": d.newer.as_ref().map(|n| &n.stage),
                "history": d.newer.as_ref().map(|n| &n.reason),
            })
        }
        Item::Version { previous, subject, path, .. } => json!({
            "of": "version",
            "previousStage": previous,
            "subject": subject,
            "path": path.iter().map(|(s, v)| json!({"stage": s, "version": v})).collect::<Vec<_>>(),
        }),
        Item::Component { previous, resource, rendered_in, .. } => json!({
            "of": "component",
            "previousStage": previous,
            "resource": resource,
            "renderedIn": rendered_in,
        }),
        Item::NotDeployed => json!({"deployed": false}),
        Item::Status { status, revision } => json!({"status": status, "revision": revision}),
        Item::Chart { deployed, configured } => json!({"deployed": deployed, "configured": configured}),
        Item::DeployedValue { path, deployed, configured } => {
            json!({"path": path, "deployed": deployed, "configured": configured})
        }
        Item::Manifest { plan, resources } => json!({"plan": plan, "resources": resources}),
        Item::Edited { resource, fields, deleted, managers, revision } => json!({
            "resource": resource,
            "revision": revision,
            "deleted": deleted,
            "fields": fields.iter().map(|f| json!({"path": f.path, "live": f.live, "release": f.release})).collect::<Vec<_>>(),
            "managers": managers.iter().map(|m| json!({"name": m.name, "time": m.time})).collect::<Vec<_>>(),
        }),
        Item::Secret { namespace, name, keys, whole, needed_by } => json!({
            "namespace": namespace,
            "secret": name,
            "missingKeys": keys,
            "missing": if *whole { "secret" } else { "keys" },
            "neededBy": needed_by,
        }),
    };
    if let (Value::Object(out), Value::Object(fields)) = (&mut out, fields) {
        out.extend(fields);
    }
    out
}
