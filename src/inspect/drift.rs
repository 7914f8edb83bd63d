//! Drift across a project: each stage's config against the stage before it, and each stage's
//! cluster against its config (releases, values, Secrets, with `live` the objects themselves).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use serde_json::Value;

use crate::compare::argocd;
use crate::compare::diff;
use crate::compare::drift::{self, Finding, Item, LineTime, Location, ValueDifference};
use crate::compare::health;
use crate::compare::live;
use crate::compare::manifest::{self, Manifest};
use crate::compare::render::{Reading, against_installed, installed_manifest_error, parse_rendered, render_all};
use crate::compare::secrets;
use crate::config::promotion;
use crate::config::stages::{self, Project, Release, Stage, Target};
use crate::config::yaml;
use crate::error::Result;
use crate::system::git::Git;
use crate::system::helm::Helm;
use crate::system::kube::Kubectl;
use crate::system::parallel::{all_or_errors, in_parallel, joined};

/// What `drift` is asked: which stages and releases, and how far to look.
pub struct Options<'a> {
    pub stages: Vec<&'a Stage>,
    pub releases: Vec<&'a Release>,
    /// Also compare the live objects (`--live`).
    pub live: bool,
    /// Keep findings that are documented differences (`--documented`).
    pub documented: bool,
    pub show_secrets: bool,
}

/// What was found, and which stages could not be checked.
pub struct Outcome<'p> {
    /// Every selected stage, with why its cluster could not be checked.
    pub stages: Vec<(&'p Stage, Option<String>)>,
    pub findings: Vec<Finding>,
    /// What `helm rollback` needs, with the helm in use, to take back fields edited in the
    /// cluster (Helm 4 applies server-side: the editor owns them until forced).
    pub rollback_flags: &'static [&'static str],
}

/// Every render and cluster read in parallel: the stages' config offline, and one job per
/// stage for its cluster; findings sorted by stage, kind and release.
pub fn find<'p>(project: &'p Project, options: &Options<'p>) -> Result<Outcome<'p>> {
    let (releases, selected) = (&options.releases, &options.stages);
    let (helm, kubectl) = (Helm::locate()?, Kubectl::locate()?);
    let diff_options = diff::Options { ignore: Vec::new(), show_secrets: options.show_secrets };

    // A stage on several clusters: each is read on its own.
    let on_clusters: Vec<&Stage> = selected.iter().flat_map(|s| s.clusters()).collect();
    let (config, clusters) = std::thread::scope(|scope| {
        let config = scope.spawn(|| between_stages(project, &helm, releases, selected, options));
        let clusters: Vec<_> = on_clusters
            .iter()
            .map(|stage| {
                let reads = ClusterReads {
                    project,
                    helm: &helm,
                    kubectl: &kubectl,
                    releases,
                    options: &diff_options,
                    live: options.live,
                };
                scope.spawn(move || reads.in_cluster(stage))
            })
            .collect();
        (joined(config), clusters.into_iter().map(joined).collect::<Vec<_>>())
    });
    let mut findings = config?;
    let mut stages: Vec<(&Stage, Option<String>)> =
        selected.iter().filter(|s| s.is_multi_cluster()).map(|s| (*s, None)).collect();
    let mut deployed: Vec<(&Stage, Vec<Option<String>>)> = Vec::new();
    let mut in_sync: Vec<(&Stage, Vec<bool>)> = Vec::new();
    for (stage, result) in on_clusters.iter().zip(clusters) {
        match result {
            Ok(read) => {
                findings.extend(read.findings);
                deployed.push((stage, read.charts));
                in_sync.push((stage, read.in_sync));
                stages.push((*stage, None));
            }
            Err(err) => stages.push((*stage, Some(err.one_line()))),
        }
    }
    findings.extend(deployed_chart_skew(project, releases, &deployed));
    findings.extend(clusters_behind(releases, &in_sync));
    let order = |label: &str| project.stages.iter().position(|s| s.name == stages::stage_of(label));
    stages.sort_by_key(|(stage, _)| (order(&stage.name), stage.cluster.as_ref().map(|c| (c.wave, c.name.clone()))));
    if !options.documented {
        findings.retain(|finding| finding.item.is_drift());
    }
    findings.sort_by(|a, b| {
        (order(&a.stage), &a.stage, a.item.kind(), &a.release).cmp(&(
            order(&b.stage),
            &b.stage,
            b.item.kind(),
            &b.release,
        ))
    });
    let edited = findings.iter().find(|f| matches!(f.item, Item::Edited { .. }));
    let rollback_flags = match edited.and_then(|f| order(&f.stage)).map(|i| &project.stages[i]) {
        Some(stage) => helm.major(stage)?.rollback_overriding_edits(),
        None => &[],
    };
    Ok(Outcome { stages, findings, rollback_flags })
}

/// The clusters of a stage on several that do not run a release's config while a sibling
/// does: where a rollout stopped (its first unhealthy wave, or one never reached).
fn clusters_behind(releases: &[&Release], in_sync: &[(&Stage, Vec<bool>)]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (r, release) in releases.iter().enumerate() {
        for (stage, synced) in in_sync.iter().filter(|(s, _)| s.cluster.is_some()) {
            let Some(wave) = stage.cluster.as_ref().map(|c| c.wave).filter(|_| !synced[r]) else { continue };
            let ahead: Vec<String> = in_sync
                .iter()
                .filter(|(other, synced)| other.name == stage.name && synced[r])
                .filter_map(|(other, _)| other.cluster.as_ref().map(|c| c.name.clone()))
                .collect();
            if !ahead.is_empty() {
                findings.push(Finding {
                    stage: stage.label(),
                    release: Some(release.name.clone()),
                    item: Item::Behind { ahead, wave },
                });
            }
        }
    }
    findings
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
                    stage: stage.label(),
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
    options: &Options,
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
            if let Some((target, file)) = promotion::preview(project, &from, &to)? {
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
    let grid = Grid { project, options, releases, renders, promoted, manifests, images, chart_versions };
    let mut found = Found::default();
    for &i in &pairs {
        for r in 0..n {
            grid.values(i, r, &mut found);
            grid.versions(i, r, &mut found);
            grid.images(i, r, &mut found);
            grid.components(i, r, &mut found);
        }
    }
    let Found { mut findings, differences } = found;
    locate_and_date(project, &mut findings, &differences);
    findings.extend(secret_key_parity(project, releases, selected));
    Ok(findings)
}

/// Keys of encrypted values files that some stages define and a selected stage lacks: read
/// from the files' keys, without decrypting anything.
fn secret_key_parity(project: &Project, releases: &[&Release], selected: &[&Stage]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for release in releases {
        let targets: Vec<Target> = project.stages.iter().map(|stage| project.target(stage, release)).collect();
        let keys: Vec<Option<BTreeSet<String>>> = targets
            .iter()
            .map(|t| {
                (!t.secret_files.is_empty()).then(|| project.secret_paths(t).iter().map(ToString::to_string).collect())
            })
            .collect();
        for (i, path, defined_in) in drift::missing_secret_keys(&keys) {
            let (stage, target) = (&project.stages[i], &targets[i]);
            if !selected.iter().any(|s| s.name == stage.name) {
                continue;
            }
            let file = target.secret_files.last().map(|f| f.display.clone()).unwrap_or_default();
            let defined_in = defined_in.into_iter().map(|j| project.stages[j].name.clone()).collect();
            findings.push(Finding {
                stage: stage.name.clone(),
                release: Some(release.name.clone()),
                item: Item::SecretKey { path, file, defined_in },
            });
        }
    }
    findings
}

/// Every (stage, release) rendered offline, stage by stage (index `stage * n + release`), then
/// the promoted renderings (`promoted[(stage, release)]`), with what drift reads from them.
struct Grid<'a> {
    project: &'a Project,
    options: &'a Options<'a>,
    releases: &'a [&'a Release],
    renders: Vec<Target<'a>>,
    promoted: HashMap<(usize, usize), usize>,
    manifests: Vec<Manifest>,
    images: Vec<BTreeMap<String, String>>,
    /// Per release: each stage's configured chart version.
    chart_versions: Vec<Vec<(String, Option<String>)>>,
}

/// The findings so far, and for each value difference, where to locate its two sides.
#[derive(Default)]
struct Found<'a> {
    findings: Vec<Finding>,
    differences: Vec<(usize, Target<'a>, Target<'a>)>,
}

impl<'a> Grid<'a> {
    fn at(&self, stage: usize, release: usize) -> usize {
        stage * self.releases.len() + release
    }

    fn push(&self, found: &mut Found, i: usize, r: usize, item: Item) {
        let (stage, release) = (&self.project.stages[i], self.releases[r]);
        found.findings.push(Finding { stage: stage.name.clone(), release: Some(release.name.clone()), item });
    }

    /// Values that differ between stage `i - 1` and stage `i` for release `r`.
    fn values(&self, i: usize, r: usize, found: &mut Found<'a>) {
        let (project, options) = (self.project, self.options);
        let previous = &project.stages[i - 1];
        let (before, here) = (&self.renders[self.at(i - 1, r)], &self.renders[self.at(i, r)]);
        let (merged_before, merged_here) = (project.merged_values(before), project.merged_values(here));
        for (keys, documented) in drift::value_differences(
            &project.own_values(before),
            &project.own_values(here),
            &merged_before,
            &merged_here,
            &project.env_specific_for(self.releases[r]),
        ) {
            if documented && !options.documented {
                continue;
            }
            let show = |value: Option<&Value>| drift::shown(&keys, value.cloned(), options.show_secrets);
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
            found.differences.push((found.findings.len(), before.clone(), here.clone()));
            self.push(found, i, r, Item::Value(difference));
        }
    }

    /// The configured chart version, when it differs from the stage before.
    fn versions(&self, i: usize, r: usize, found: &mut Found) {
        let versions = &self.chart_versions[r];
        if versions[i - 1].1 != versions[i].1 {
            let subject = format!("chart {}", self.releases[r].chart.reference());
            let previous = self.project.stages[i - 1].name.clone();
            self.push(found, i, r, Item::Version { previous, subject, path: versions.clone(), documented: false });
        }
    }

    /// Container images that differ from the stage before; documented when promotion would not
    /// change them (envSpecific values pick the image).
    fn images(&self, i: usize, r: usize, found: &mut Found) {
        let stages = &self.project.stages;
        let images = &self.images;
        let promoted_index = self.promoted.get(&(i, r)).copied();
        let (images_before, images_here) = (&images[self.at(i - 1, r)], &images[self.at(i, r)]);
        for (container, image) in images_here {
            let Some(before_image) = images_before.get(container).filter(|b| *b != image) else { continue };
            let promoted_image = promoted_index.and_then(|p| images[p].get(container));
            let documented = promoted_image.is_none_or(|p| p == image);
            let path: Vec<(String, Option<String>)> = stages
                .iter()
                .enumerate()
                .map(|(s, st)| (st.name.clone(), images[self.at(s, r)].get(container).cloned()))
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
            let previous = stages[i - 1].name.clone();
            self.push(found, i, r, Item::Version { previous, subject, path, documented });
        }
    }

    /// Resources rendered in one of the two stages only.
    fn components(&self, i: usize, r: usize, found: &mut Found) {
        let (previous, stage) = (&self.project.stages[i - 1], &self.project.stages[i]);
        let (before, here) = (&self.renders[self.at(i - 1, r)], &self.renders[self.at(i, r)]);
        let own = &self.manifests[self.at(i, r)];
        let promoted_manifest = self.promoted.get(&(i, r)).map_or(own, |p| &self.manifests[*p]);
        for (key, rendered_before, documented) in drift::component_differences(
            (&self.manifests[self.at(i - 1, r)], &before.namespace),
            (own, &here.namespace),
            promoted_manifest,
        ) {
            let rendered_in = if rendered_before { previous.name.clone() } else { stage.name.clone() };
            let resource = key.to_string();
            let item = Item::Component { previous: previous.name.clone(), resource, rendered_in, documented };
            self.push(found, i, r, item);
        }
    }
}

/// Per value difference: its index, each side's file and line, whether each side sets it at all.
type Located = (usize, Side, Side, bool, bool);
type Side = Option<(PathBuf, Location)>;

/// Where each side of each value difference is set: the file (the last own file that sets it)
/// and the line, each file read once, all in parallel.
fn locate(project: &Project, findings: &[Finding], differences: &[(usize, Target, Target)]) -> Vec<Located> {
    // Per difference: its index and, per side, the file that sets it (`None`: no own file does).
    type Set = Option<(PathBuf, String)>;
    let mut sides: Vec<(usize, Set, Set)> = Vec::new();
    // Per file: the key paths to find, so that each file is parsed once, all files in parallel.
    let mut wanted: BTreeMap<PathBuf, Vec<Vec<String>>> = BTreeMap::new();
    for (index, before, here) in differences {
        let Item::Value(difference) = &findings[*index].item else { continue };
        let mut side = |target: &Target| {
            let file = target.values_files.iter().rev().filter(|f| !f.shared).find(|f| {
                project
                    .file_values(&f.path)
                    .is_some_and(|v| crate::config::values::lookup(v, &difference.keys).is_some())
            })?;
            wanted.entry(file.path.clone()).or_default().push(difference.keys.clone());
            Some((file.path.clone(), file.display.clone()))
        };
        let (b, h) = (side(before), side(here));
        sides.push((*index, b, h));
    }
    let wanted: Vec<(PathBuf, Vec<Vec<String>>)> = wanted.into_iter().collect();
    let indexed = in_parallel(
        wanted
            .iter()
            .map(|(path, keys)| {
                move || Ok(std::fs::read_to_string(path).ok().and_then(|t| yaml::key_lines(&t, path, keys).ok()))
            })
            .collect(),
    );
    let key_lines: HashMap<&PathBuf, HashMap<Vec<String>, usize>> = wanted
        .iter()
        .map(|(path, _)| path)
        .zip(indexed)
        .filter_map(|(path, lines)| lines.ok().flatten().map(|lines| (path, lines)))
        .collect();

    let mut located: Vec<Located> = Vec::new();
    for (index, b, h) in sides {
        let Item::Value(difference) = &findings[index].item else { continue };
        let at = |set: &Set| -> Side {
            let (path, display) = set.as_ref()?;
            let line = *key_lines.get(path)?.get(&difference.keys)?;
            Some((path.clone(), Location { file: display.clone(), line }))
        };
        located.push((index, at(&b), at(&h), b.is_some(), h.is_some()));
    }

    located
}

/// Where each side of each value difference is set (file and line), and which side changed
/// it last, from `git blame` (one call per file, in parallel). Outside git: no dates.
fn locate_and_date(project: &Project, findings: &mut [Finding], differences: &[(usize, Target, Target)]) {
    let located = locate(project, findings, differences);
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

/// What drift reads of each stage's cluster, and how.
struct ClusterReads<'a> {
    project: &'a Project,
    helm: &'a Helm,
    kubectl: &'a Kubectl,
    releases: &'a [&'a Release],
    options: &'a diff::Options,
    /// Also the objects in the cluster (`--live`).
    live: bool,
}

/// What drift found on one cluster, and per release what it runs.
struct ClusterRead {
    findings: Vec<Finding>,
    /// The chart each release runs (`None`: not deployed).
    charts: Vec<Option<String>>,
    /// Whether each release runs its config.
    in_sync: Vec<bool>,
}

/// A release whose workloads are not all ready, as a finding.
fn unhealthy(health: &health::Health) -> Option<Item> {
    (!health.is_ready()).then(|| Item::Unhealthy {
        workloads: health.not_ready().map(|w| (w.headline(), w.why.clone())).collect(),
        since: health.not_ready_since().map(str::to_string),
    })
}

/// Every Secret the stage's manifests need that its namespaces lack (whole, or some keys).
fn secret_findings(stage: &Stage, report: secrets::StageReport) -> Vec<Finding> {
    let mut findings = Vec::new();
    for namespace in report.namespaces {
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
                stage: stage.label(),
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
    findings
}

impl ClusterReads<'_> {
    /// A stage's releases as deployed against its config, its Secrets, and with `live`, its
    /// objects in the cluster. Every query in parallel.
    fn in_cluster(&self, stage: &Stage) -> Result<ClusterRead> {
        if stage.argocd.is_some() {
            return self.in_argo(stage);
        }
        let ClusterReads { project, helm, kubectl, releases, options, live } = *self;
        let targets: Vec<Target> = releases.iter().map(|release| project.target(stage, release)).collect();
        let states = against_installed(project, helm, &targets, options, Reading::default())?;
        states.iter().flat_map(|s| &s.notes).for_each(|note| crate::terminal::note(note));

        let mut findings = Vec::new();
        let mut rendered = Vec::new();
        for (target, state) in targets.iter().zip(&states) {
            for resource in &state.regenerated {
                crate::terminal::note(&format!(
                    "{}/{}: {} ({}) is generated anew at every render (no `lookup` keeps it), so every deploy \
                     changes it; not drift",
                    stage.label(),
                    target.release.name,
                    resource.resource,
                    resource.fields.join(", ")
                ));
            }
            let items = drift::against_config(state, target.configured_chart(), options.show_secrets);
            let release = Some(target.release.name.clone());
            findings.extend(items.into_iter().map(|item| Finding {
                stage: stage.label(),
                release: release.clone(),
                item,
            }));
            rendered.push((target.release, parse_rendered(&state.rendered, target)?));
        }

        let (secrets, edits, healths) = std::thread::scope(|scope| {
            let secrets = scope.spawn(|| secrets::check_manifests(kubectl, stage, &rendered));
            let healths = scope.spawn(|| {
                let installed: Vec<_> =
                    targets.iter().zip(&states).map(|(target, state)| (target, state.installed.as_ref())).collect();
                let healths = health::of_installed_all(kubectl, &installed)?;
                Ok::<_, crate::error::Error>(
                    targets
                        .iter()
                        .zip(healths)
                        .filter_map(|(t, h)| Some((t.release.name.clone(), h?)))
                        .collect::<Vec<_>>(),
                )
            });
            let edits = if live {
                targets
                    .iter()
                    .zip(&states)
                    .filter_map(|(target, state)| state.installed.as_ref().map(|installed| (target, installed)))
                    .map(|(target, installed)| {
                        let manifest = manifest::parse(&installed.manifest, &target.namespace)
                            .map_err(|error| installed_manifest_error(target, error))?;
                        let expected =
                            live::Expected { target, text: &installed.manifest, manifest, also_live: Vec::new() };
                        Ok((expected, Some(installed.revision)))
                    })
                    .collect::<Result<Vec<_>>>()
                    .and_then(|expected| edits_in_cluster(kubectl, expected, options))
            } else {
                Ok(Vec::new())
            };
            (joined(secrets), edits, joined(healths))
        });
        findings.extend(healths?.into_iter().filter_map(|(release, health)| {
            let item = unhealthy(&health)?;
            Some(Finding { stage: stage.label(), release: Some(release), item })
        }));
        findings.extend(edits?);
        findings.extend(secret_findings(stage, secrets?));
        let charts = states.iter().map(|state| state.installed.as_ref().map(|i| i.chart.clone())).collect();
        let in_sync = states.iter().map(|state| !state.needs_deploy()).collect();
        Ok(ClusterRead { findings, charts, in_sync })
    }
}

impl ClusterReads<'_> {
    /// A stage Argo CD deploys keeps no Helm record: its Applications against what the stages
    /// file generates and Argo CD's verdict on them, the Secrets its config references, the
    /// readiness of the workloads its config renders, and with `live`, its objects in the
    /// cluster against that config (Argo CD says an object is out of sync; this says which
    /// fields, and who changed them).
    fn in_argo(&self, stage: &Stage) -> Result<ClusterRead> {
        let ClusterReads { project, helm, kubectl, releases, options, live } = *self;
        let targets: Vec<Target> = releases.iter().map(|release| project.target(stage, release)).collect();
        let (applications, rendered) = std::thread::scope(|scope| {
            let applications = scope.spawn(|| argocd::read(project, kubectl, stage, releases));
            (joined(applications), all_or_errors(render_all(helm, &targets)))
        });
        let (applications, rendered) = (applications?, rendered?);
        let manifests: Vec<(&Release, Manifest)> = targets
            .iter()
            .zip(&rendered)
            .map(|(target, text)| Ok((target.release, parse_rendered(text, target)?)))
            .collect::<Result<_>>()?;
        let mut findings = Vec::new();
        for ((target, application), (_, manifest)) in targets.iter().zip(&applications).zip(&manifests) {
            let release = Some(target.release.name.clone());
            if application.verdict.is_some() {
                let health = health::of_rendered(kubectl, target, manifest)?;
                if let Some(item) = unhealthy(&health) {
                    findings.push(Finding { stage: stage.label(), release: release.clone(), item });
                }
            }
            if !application.in_sync() || application.verdict.as_ref().is_some_and(|v| v.failed_operation.is_some()) {
                findings.push(Finding { stage: stage.label(), release, item: Item::Application(application.clone()) });
            }
        }
        if live {
            // Against what Argo CD runs, not the files as they are now.
            let run = self.rendered_as_run(stage, &targets, &rendered, &applications)?;
            let expected = targets
                .iter()
                .zip(&run)
                .map(|(target, text)| {
                    let manifest = parse_rendered(text, target)?;
                    Ok((live::Expected { target, text, manifest, also_live: Vec::new() }, None))
                })
                .collect::<Result<_>>()?;
            findings.extend(edits_in_cluster(kubectl, expected, options)?);
        }
        findings.extend(secret_findings(stage, secrets::check_manifests(kubectl, stage, &manifests)?));
        Ok(ClusterRead {
            findings,
            charts: vec![None; targets.len()],
            in_sync: applications.iter().map(argocd::Application::in_sync).collect(),
        })
    }
}

impl ClusterReads<'_> {
    /// Each target's config as Argo CD runs it: rendered from the commit its Application runs.
    /// The work tree's render (`rendered`) stands for it when the stage's files there are that
    /// commit's; otherwise the commit is checked out apart (a Git worktree, removed after) and
    /// rendered from there. A commit that cannot be read keeps the work tree's, with a note.
    fn rendered_as_run(
        &self,
        stage: &Stage,
        targets: &[Target],
        rendered: &[String],
        applications: &[argocd::Application],
    ) -> Result<Vec<String>> {
        let project = self.project;
        let git = Git::new(&project.dir);
        let mut paths = vec![project.file.clone()];
        for target in targets {
            paths.extend(target.values_files.iter().map(|file| file.path.clone()));
            if let stages::Chart::Local(chart) = &target.release.chart {
                paths.push(chart.clone());
            }
        }
        let (head, uncommitted) = match (git.head(), git.uncommitted(&paths)) {
            (Ok(head), Ok(uncommitted)) => (head, uncommitted),
            (Err(err), _) | (_, Err(err)) => {
                crate::terminal::note(&format!(
                    "drift --live: the commit Argo CD runs on stage {} cannot be read from Git ({}); the live \
                     objects are held against the files as they are",
                    stage.name,
                    err.one_line()
                ));
                return Ok(rendered.to_vec());
            }
        };
        let running: Vec<Option<&str>> =
            applications.iter().map(|a| a.verdict.as_ref().and_then(|v| v.revision.as_deref())).collect();
        let mut texts = rendered.to_vec();
        let commits: BTreeSet<&str> = running.iter().flatten().copied().collect();
        for commit in commits.into_iter().filter(|c| *c != head || !uncommitted.trim().is_empty()) {
            let at: Vec<usize> = (0..targets.len()).filter(|&i| running[i] == Some(commit)).collect();
            let releases: Vec<&str> = at.iter().map(|&i| targets[i].release.name.as_str()).collect();
            match self.render_at(&git, commit, stage, &releases) {
                Ok(run) => at.iter().zip(run).for_each(|(&i, text)| texts[i] = text),
                Err(err) => crate::terminal::note(&format!(
                    "drift --live: cannot render commit {} Argo CD runs on stage {} ({}); the live objects are held \
                     against the files as they are (a commit this clone lacks: `git fetch`)",
                    &commit[..commit.len().min(12)],
                    stage.name,
                    err.one_line()
                )),
            }
        }
        Ok(texts)
    }

    /// `releases` of `stage` rendered from the files of `commit`.
    fn render_at(&self, git: &Git, commit: &str, stage: &Stage, releases: &[&str]) -> Result<Vec<String>> {
        let dir = tempfile::tempdir().map_err(crate::error::Error::io("cannot create a temporary directory"))?;
        let tree = dir.path().join("tree");
        git.checkout_at(commit, &tree)?;
        let rendered = (|| {
            let file = tree.join(git.prefix()?).join(self.project.file.file_name().unwrap_or_default());
            let at = Project::load(&file)?;
            let stage = at.stage(&stage.name)?;
            let targets = releases
                .iter()
                .map(|name| Ok(at.target(stage, at.select_releases(Some(name))?[0])))
                .collect::<Result<Vec<_>>>()?;
            all_or_errors(render_all(self.helm, &targets))
        })();
        git.remove_checkout(&tree);
        rendered
    }
}

/// Each release's objects edited in the cluster away from `expected` (what helm deployed, at
/// `revision`; or the config Argo CD deploys): read and dry-run applied per namespace.
fn edits_in_cluster(
    kubectl: &Kubectl,
    expected: Vec<(live::Expected, Option<u64>)>,
    options: &diff::Options,
) -> Result<Vec<Finding>> {
    let revisions: Vec<Option<u64>> = expected.iter().map(|(_, revision)| *revision).collect();
    let read = live::read(kubectl, expected.into_iter().map(|(e, _)| e).collect())?;
    Ok(read
        .into_iter()
        .zip(revisions)
        .flat_map(|((expected, objects), revision)| {
            let target = expected.target;
            drift::edited(&expected.manifest, &objects.live, &objects.applied, revision, options)
                .into_iter()
                .map(|item| Finding { stage: target.stage.label(), release: Some(target.release.name.clone()), item })
        })
        .collect())
}
