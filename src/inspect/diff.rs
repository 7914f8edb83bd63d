//! What `helm envs diff` compares: a stage's installed releases against their config, or two
//! stages' config with documented differences apart from undocumented ones. The report it
//! builds is printed by `output::report`.

use crate::compare::argocd;
use crate::compare::diff::{self, Comparison};
use crate::compare::drift::path_text;
use crate::compare::live;
use crate::compare::manifest::{self, Namespaces, Side};
use crate::compare::render::{LiveState, Reading, against_installed, render_all, rendered_manifest_error};
use crate::config::promotion;
use crate::config::stages::{Project, Release, Stage, Target};
use crate::error::Result;
use crate::system::helm::{Helm, Installed};
use crate::system::kube::Kubectl;
use crate::system::parallel::{all_or_errors, in_parallel, joined};

/// What is compared: the project's selected releases, with the diff's options.
pub struct Query<'p> {
    pub project: &'p Project,
    pub helm: &'p Helm,
    pub releases: &'p [&'p Release],
    pub options: &'p diff::Options,
}

/// Everything one `helm envs diff` found.
#[derive(Debug)]
pub struct Report {
    pub mode: Mode,
    pub releases: Vec<ReleaseReport>,
    /// Releases installed in a stage's namespaces that the stages file does not define.
    pub unmanaged: Vec<Unmanaged>,
    /// The `--ignore` patterns, as given.
    pub ignored: Vec<String>,
}

impl Report {
    /// A stage's releases as installed against their config (`diff STAGE`, and what a deploy
    /// would change), one entry per target, in order.
    pub fn live(stage: &Stage, targets: &[Target], states: Vec<LiveState>) -> Report {
        let releases = targets
            .iter()
            .zip(states)
            .map(|(target, state)| ReleaseReport {
                release: target.release.name.clone(),
                namespace: target.namespace.clone(),
                context: target.stage.kube_context.to_string(),
                sections: Sections::Live {
                    installed: state.installed,
                    argocd: state.argocd,
                    comparison: state.comparison,
                    values: state.values.iter().map(|d| path_text(&d.keys)).collect(),
                    regenerated: state.regenerated,
                    chart_change: state.chart_change,
                },
            })
            .collect();
        Report { mode: Mode::Live { stage: stage.name.clone() }, releases, unmanaged: Vec::new(), ignored: Vec::new() }
    }

    /// What `--detailed-exitcode` reports: a deploy would change something (live), or the
    /// stages differ outside envSpecific (between stages; documented differences are intended).
    pub fn has_changes(&self) -> bool {
        self.releases.iter().any(|r| match &r.sections {
            Sections::Live { comparison, values, chart_change, .. } => {
                !comparison.is_empty() || !values.is_empty() || chart_change.is_some()
            }
            Sections::Stages { undocumented, .. } => !undocumented.is_empty(),
        })
    }
}

#[derive(Debug, Clone)]
pub enum Mode {
    /// The live releases of a stage against its rendered config.
    Live { stage: String },
    /// One stage's rendered config against another's.
    Stages { from: String, to: String },
}

#[derive(Debug)]
pub struct ReleaseReport {
    pub release: String,
    /// The namespace of the stage diffed (of `to` between stages).
    pub namespace: String,
    pub context: String,
    pub sections: Sections,
}

#[derive(Debug)]
pub enum Sections {
    Live {
        /// `None`: not installed yet, or deployed by Argo CD.
        installed: Option<Installed>,
        /// A stage Argo CD deploys: its live objects were compared, not a Helm record.
        argocd: Option<Box<argocd::Application>>,
        comparison: Comparison,
        /// Paths of user-supplied values the deployed revision has other than the values files
        /// give: a deploy records them even when the manifest stays the same.
        values: Vec<String>,
        /// Resources that differ only by what the chart generates at every render.
        regenerated: Vec<diff::Regenerated>,
        /// The configured chart, when the installed one is another.
        chart_change: Option<String>,
    },
    Stages {
        from_namespace: String,
        /// Differences a promotion would carry (shown from `from` to `to`).
        undocumented: Comparison,
        /// Differences that come from envSpecific values and the stages' own settings.
        documented: Comparison,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unmanaged {
    pub stage: String,
    pub namespace: String,
    pub release: String,
}

impl Query<'_> {
    /// Every release of the stage as installed against its config rendered for the stage's
    /// cluster, and the releases in its namespaces the stages file does not define.
    pub fn live(&self, stage: &Stage) -> Result<Report> {
        if stage.argocd.is_some() {
            return self.live_by_argocd(stage);
        }
        let Query { project, helm, releases, options } = *self;
        let targets: Vec<Target> = project.cluster_targets(stage, releases);
        // Releases of other projects may share a namespace; only list each namespace once (per
        // cluster of the stage).
        let mut namespaces: Vec<(&Stage, &str)> = Vec::new();
        for target in &targets {
            if !namespaces.iter().any(|(s, n)| s.cluster == target.stage.cluster && *n == target.namespace) {
                namespaces.push((target.stage, &target.namespace));
            }
        }
        let (states, listed) = std::thread::scope(|scope| {
            let listing = scope.spawn(|| {
                all_or_errors(in_parallel(
                    namespaces.iter().map(|(on, namespace)| move || helm.releases_in(on, namespace)).collect(),
                ))
            });
            let states = against_installed(project, helm, &targets, options, Reading::default());
            (states, joined(listing))
        });
        let states = states?;
        states.iter().flat_map(|s| &s.notes).for_each(|note| crate::terminal::note(note));
        let listed = listed?;

        let mut report = Report::live(stage, &targets, states);

        for ((on, namespace), names) in namespaces.into_iter().zip(listed) {
            let known = |name: &String| project.releases.iter().any(|r| &r.name == name);
            for release in names.into_iter().filter(|name| !known(name)) {
                report.unmanaged.push(Unmanaged { stage: on.label(), namespace: namespace.to_string(), release });
            }
        }
        Ok(report)
    }

    /// A stage Argo CD deploys keeps no Helm record: its objects as the cluster holds them
    /// against its config applied to them (a server-side dry run; the config rendered as Argo CD
    /// renders it), with each release's Application and the commit Argo CD runs.
    fn live_by_argocd(&self, stage: &Stage) -> Result<Report> {
        let Query { project, helm, releases, options } = *self;
        let kubectl = Kubectl::locate()?;
        let targets: Vec<Target> = project.cluster_targets(stage, releases);
        let (applications, rendered) = std::thread::scope(|scope| {
            let applications = scope.spawn(|| argocd::read(project, &kubectl, stage, releases));
            (joined(applications), all_or_errors(render_all(helm, &targets)))
        });
        let (applications, rendered) = (applications?, rendered?);
        let comparisons = live::what_syncing_changes(&kubectl, &targets, &rendered, &applications, options)?;
        let releases = targets
            .iter()
            .zip(comparisons)
            .zip(applications)
            .map(|((target, comparison), application)| ReleaseReport {
                release: target.release.name.clone(),
                namespace: target.namespace.clone(),
                context: stage.kube_context.to_string(),
                sections: Sections::Live {
                    installed: None,
                    argocd: Some(Box::new(application)),
                    comparison,
                    values: Vec::new(),
                    regenerated: Vec::new(),
                    chart_change: None,
                },
            })
            .collect();
        let mode = Mode::Live { stage: stage.name.clone() };
        Ok(Report { mode, releases, unmanaged: Vec::new(), ignored: Vec::new() })
    }

    /// Two stages' config: undocumented differences (`to` rendered with `from`'s values outside
    /// envSpecific, against `to` as configured) and documented ones (`from` against that promoted
    /// rendering). Nothing is guessed: the split comes from rendering the promotion.
    pub fn between(&self, from: &Stage, to: &Stage) -> Result<Report> {
        let Query { project, helm, releases, options } = *self;
        // Per release: `from`, `to`, and `to` with the promotion applied, unless the promotion
        // changes nothing (then `to` stands for it and one render fewer runs).
        let mut promoted_files = Vec::new();
        let mut renders: Vec<Target> = Vec::new();
        let mut promoted_at: Vec<usize> = Vec::new();
        for release in releases {
            let (source, target) = (project.target(from, release), project.target(to, release));
            let base = renders.len();
            match promotion::preview(project, &source, &target)? {
                None => {
                    promoted_at.push(base + 1);
                    renders.extend([source, target]);
                }
                Some((promoted, file)) => {
                    promoted_files.push(file);
                    promoted_at.push(base + 2);
                    renders.extend([source, target, promoted]);
                }
            }
        }
        let rendered = all_or_errors(render_all(helm, &renders))?;
        drop(promoted_files);

        // Each pair is parsed for itself, so documents the same on both sides (after the move into
        // the target's namespace) are counted, not parsed.
        let compare = |old: usize, new: usize| -> Result<diff::Comparison> {
            let namespaces = Namespaces { old: &renders[old].namespace, new: &renders[new].namespace };
            let pair =
                manifest::parse_pair_across(&rendered[old], &rendered[new], namespaces).map_err(|(side, error)| {
                    let target = &renders[if side == Side::Old { old } else { new }];
                    rendered_manifest_error(target, error)
                })?;
            let mut comparison = diff::compare(pair.old, pair.new, options);
            comparison.unchanged += pair.identical;
            Ok(comparison)
        };
        let mut reports = Vec::new();
        let mut base = 0;
        for promoted_index in promoted_at {
            let (source, target) = (&renders[base], &renders[base + 1]);
            // The source first, so that a template broken on both sides is named in `from`.
            let documented = compare(base, promoted_index)?;
            reports.push(ReleaseReport {
                release: target.release.name.clone(),
                namespace: target.namespace.clone(),
                context: to.kube_context.to_string(),
                sections: Sections::Stages {
                    from_namespace: source.namespace.clone(),
                    undocumented: compare(promoted_index, base + 1)?,
                    documented,
                },
            });
            base = promoted_index + 1;
        }
        let mode = Mode::Stages { from: from.name.clone(), to: to.name.clone() };
        Ok(Report { mode, releases: reports, unmanaged: Vec::new(), ignored: Vec::new() })
    }
}
