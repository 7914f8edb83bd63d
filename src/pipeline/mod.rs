//! The deploy pipeline, one stage at a time: check (diff against the cluster, cluster pin,
//! isolation, Secrets), gate (show the plan, ask for approval), lock, write the promoted files,
//! deploy, wait until ready, record an Event, verify, and restore the files when the deploy
//! fails.
//!
//! `upgrade`, `promote`, `apply` and `exec --gated` all go through it: a command describes what
//! it wants in a [`StageRun`] and calls [`Pipeline::check`], [`Checked::judge`],
//! [`Judged::approve`] and [`Pipeline::deploy`] (and [`writes::write`] between approval and
//! deploy when it edits files). The pipeline returns data and never prints: the command shows
//! the judged stage and provides the [`Approver`] and the [`Reporter`].

mod argocd;
pub mod deploy;
pub mod events;
pub mod gates;
pub mod promote;
pub mod record;
pub mod run;
mod schedule;
mod waves;
pub mod writes;

use crate::compare::diff;
use crate::compare::render::{LiveState, Reading, against_installed, parse_rendered};
use crate::config::stages::{Approval, Project, Stage, Target};
use crate::error::{Error, Result};
use crate::inspect::diff::Report;
use crate::system::files::ProjectLock;
use crate::system::interrupt;
use crate::system::parallel::joined;

pub use gates::{Approver, Gate};
pub use run::{Checked, Options, Pipeline, Reporter, StageRun, Step, Wait};

use deploy::{Outcome, StageDeploy, Status};
use record::Record;

/// The project lock, unless this is a dry run (which writes nothing).
pub fn lock(project: &Project, options: Options, purpose: &str) -> Result<Option<ProjectLock>> {
    if options.dry_run { Ok(None) } else { ProjectLock::acquire(&project.dir, purpose).map(Some) }
}

/// Refuses `helm upgrade` into a stage Argo CD deploys: two engines would own its objects, and
/// Argo CD would put back its own at its next sync. Its deploy is a commit Argo CD syncs.
pub fn deployed_by_helm(stage: &Stage) -> Result<()> {
    if stage.argocd.is_none() {
        return Ok(());
    }
    Err(Error::Refused {
        headline: format!("refused: stage `{}` is deployed by Argo CD, not by helm", stage.name),
        details: vec![
            crate::error::Detail::Note("nothing was written or deployed".into()),
            crate::error::Detail::Help(format!(
                "its deploy is a commit Argo CD takes: `helm envs promote --to {0} --git-commit --push` (or \
                 `helm envs upgrade {0} --push`, its files as committed) pushes to the branch Argo CD follows and waits \
                 until it runs; `promote --no-deploy --git-commit --pr-body FILE` writes a pull request instead, and \
                 `helm envs status --stage {0}` shows when Argo CD has taken it",
                stage.name
            )),
        ],
    })
}

impl Pipeline<'_> {
    /// The gates in front of a deploy of `targets` (of `stage`, on each of its clusters: the
    /// cluster pin, isolation, namespaces, the Secrets the config references), and each target
    /// as installed against its config; the cluster reads run in parallel.
    pub fn check(&self, stage: &Stage, targets: &[Target], run: &Options) -> Result<Checked> {
        let options = diff::Options { ignore: Vec::new(), show_secrets: run.show_secrets };
        let clusters = by_cluster(targets);
        let (states, on_clusters) = std::thread::scope(|scope| {
            let gates: Vec<_> = clusters
                .iter()
                .map(|(on, range)| scope.spawn(|| self.cluster_gates(on, &targets[range.clone()])))
                .collect();
            let states = against_installed(
                self.project,
                &self.helm,
                targets,
                &options,
                Reading { history: false, trust_records: true },
            );
            (states, gates.into_iter().map(joined).collect::<Vec<_>>())
        });
        let states = states?;
        states.iter().flat_map(|s| &s.notes).for_each(|note| self.reporter.note(note));
        let mut checks: Vec<Gate> =
            gates::freeze(stage, jiff::Timestamp::now(), run.override_freeze).into_iter().collect();
        let mut secrets = Vec::new();
        for ((on, range), gates) in clusters.iter().zip(on_clusters) {
            checks.extend(gates?.into_iter().map(|gate| on_cluster(on, gate)));
            let mut manifests = Vec::new();
            for (target, state) in targets[range.clone()].iter().zip(&states[range.clone()]) {
                manifests.push((target.release, parse_rendered(&state.rendered, target)?));
            }
            secrets.push(on_cluster(on, gates::secrets(&self.kubectl, on, &manifests)?));
        }
        checks.extend(secrets);
        checks.extend(gates::own_keys(self.project, stage, targets));
        Ok(Checked { states, gates: checks })
    }

    /// The gates about one cluster: pinned, isolated, its namespaces there.
    fn cluster_gates(&self, on: &Stage, targets: &[Target]) -> Result<Vec<Gate>> {
        let (cluster, isolation, namespaces) = std::thread::scope(|scope| {
            let cluster = scope.spawn(|| gates::cluster(&self.kubectl, on));
            let isolation = scope.spawn(|| gates::isolation(&self.kubectl, self.project, on));
            let namespaces = gates::namespaces(&self.kubectl, on, targets);
            (joined(cluster), isolation.join().ok().flatten(), namespaces)
        });
        Ok(cluster?.into_iter().chain(isolation).chain([namespaces?]).collect())
    }

    /// Deploy the releases of a gated stage that have something to deploy (`needs[i]`), then
    /// run its verify commands (a stage on several clusters: wave by wave); nothing in a dry
    /// run. Returns every release's outcome, the error that stopped the stage, if one did, and
    /// whether the cluster is as before.
    pub fn deploy(&self, run: &StageRun, needs: &[bool], record: &Record) -> StageDeploy {
        if run.options.dry_run || !needs.iter().any(|n| *n) {
            let outcomes = run
                .targets
                .iter()
                .zip(needs)
                .map(|(t, needed)| Outcome::new(t, if *needed { Status::NotAttempted } else { Status::Unchanged }))
                .collect();
            return StageDeploy { outcomes, error: None, cluster_unchanged: true };
        }
        if run.stage.is_multi_cluster() {
            return self.deploy_waves(run, needs, record);
        }
        self.deploy_releases(run, needs, record)
    }
}

/// A checked stage judged: what deploying it changes, the automatic gates, and which releases
/// have something to deploy. The command shows it, then asks [`Judged::approve`].
pub struct Judged {
    pub report: Report,
    pub gates: Vec<Gate>,
    pub needs: Vec<bool>,
}

impl Checked {
    pub fn judge(self, run: &StageRun) -> Judged {
        let Checked { states, gates } = self;
        let needs: Vec<bool> = states.iter().map(LiveState::needs_deploy).collect();
        Judged { report: Report::live(run.stage, run.targets, states), gates, needs }
    }
}

impl Judged {
    /// Whether anything would be deployed.
    pub fn changes_anything(&self) -> bool {
        self.needs.iter().any(|n| *n)
    }

    /// The refusal of the automatic gates, if one refused (exit 3).
    pub fn refusal(&self, stage: &Stage) -> Option<Error> {
        gates::refusal(stage, &self.gates)
    }

    /// Whether the run goes on to approval and a deploy: not a dry run, and something to deploy
    /// (or the run asks anyway). The command shows its report before that point.
    pub fn goes_on(&self, run: &StageRun) -> bool {
        !run.options.dry_run && (run.ask_even_if_unchanged || self.changes_anything())
    }

    /// The approval gate: not needed, given, or asked of `approver`; then whether the run may
    /// go on: the releases to deploy, or the refusal (exit 3) or the interrupt that stops it.
    pub fn approve(&mut self, run: &StageRun, approver: &dyn Approver) -> Result<Vec<bool>> {
        interrupt::check(nothing_done)?;
        let approval = if !run.ask_even_if_unchanged && !self.changes_anything() {
            Gate::passed("approval", "not needed: nothing to deploy")
        } else if run.options.dry_run {
            match run.stage.approval {
                Approval::Required => Gate::passed("approval", "required; not asked in a dry run"),
                Approval::None => Gate::passed("approval", "not required"),
            }
        } else {
            gates::approval(run.stage, run.options.yes, &run.question, approver)?
        };
        self.gates.push(approval);
        match gates::refusal(run.stage, &self.gates) {
            Some(refused) => Err(refused),
            None => interrupt::check(nothing_done).map(|()| self.needs.clone()),
        }
    }
}

/// The targets of each cluster, in order (targets come cluster by cluster: see
/// `Project::cluster_targets`).
pub fn by_cluster<'t>(targets: &'t [Target<'t>]) -> Vec<(&'t Stage, std::ops::Range<usize>)> {
    let mut groups: Vec<(&Stage, std::ops::Range<usize>)> = Vec::new();
    for (index, target) in targets.iter().enumerate() {
        match groups.last_mut() {
            Some((on, range)) if on.cluster == target.stage.cluster => range.end = index + 1,
            _ => groups.push((target.stage, index..index + 1)),
        }
    }
    groups
}

/// A gate about one cluster of a stage on several says which.
fn on_cluster(on: &Stage, gate: Gate) -> Gate {
    match &on.cluster {
        Some(cluster) => Gate { message: format!("{}: {}", cluster.name, gate.message), ..gate },
        None => gate,
    }
}

pub fn nothing_done() -> Vec<crate::error::Detail> {
    vec![crate::error::Detail::Note("stopped before anything was written or deployed".into())]
}
