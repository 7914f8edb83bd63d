//! A promotion A -> B. Before its gate, the checks: B's cluster as for any deploy (with the
//! promoted config), A's releases deployed as configured (the source gate), the stage order;
//! and, for `--no-deploy` without a reachable cluster, B's config compared offline. Once
//! approved, what it does: B's files written, B deployed, the files committed; and the failure
//! rule: the files go back only with the cluster.

use crate::compare::argocd::{self, Application};
use crate::compare::diff;
use crate::compare::health::{self, Health};
use crate::compare::live;
use crate::compare::manifest;
use crate::compare::render::{self, LiveState, against_installed, render_all};
use crate::config::promotion::Promotion;
use crate::config::stages::{Release, Stage, Target};
use crate::error::{Detail, Error, Result};
use crate::system::files;
use crate::system::git::Git;
use crate::system::parallel::{all_or_errors, joined};

use super::deploy::{self, Outcome, StageDeploy};
use super::gates::{self, Gate};
use super::record::Record;
use super::run::{Checked, Options, Pipeline, StageRun};
use super::writes;

/// A as deployed: helm's records, or Argo CD's Applications; with each release's health.
enum Source {
    Helm(Vec<LiveState>, Vec<Health>),
    Argo(Vec<Application>, Vec<Health>),
}

/// What a promotion asks of the clusters.
pub struct PromotionCheck<'a> {
    pub from: &'a Stage,
    pub to: &'a Stage,
    pub releases: &'a [&'a Release],
    pub plan: &'a Promotion<'a>,
    /// `--skip-source-check` not given.
    pub check_source: bool,
    /// `--allow-skip`: promote past the next stage.
    pub allow_skip: bool,
    /// `--allow-unhealthy-source`: the source's workloads need not be ready.
    pub allow_unhealthy_source: bool,
    /// `--no-deploy`: an unreachable cluster is not an error; its checks are skipped.
    pub offline_allowed: bool,
    /// How B is deployed (`--show-secrets`, `--override-freeze`).
    pub options: Options,
    /// `--override-soak`: promote before `from` has run the config as long as B's `soak` wants.
    pub override_soak: bool,
}

/// The checked promotion: B's diff and every automatic gate (order, source, cluster, Secrets).
pub struct PromotionChecked<'p> {
    pub checked: Checked,
    /// What deploying B means once its files are written: B's targets (its own files, to be
    /// edited) with the promoted chart version.
    pub targets: Vec<Target<'p>>,
    /// B's cluster could not be reached: the diff is between B's config and the promoted one.
    pub offline: bool,
}

impl<'p> Pipeline<'p> {
    /// Check B (with the promoted config: its files edited, as copies) and A (deployed as
    /// configured) in parallel.
    pub fn check_promotion(&self, check: &PromotionCheck<'p>) -> Result<PromotionChecked<'p>> {
        let PromotionCheck { from, to, releases, plan, .. } = *check;
        let copies_dir = tempfile::tempdir().map_err(Error::io("cannot create a temporary directory"))?;
        let copies = writes::copies(self.project, &plan.files, copies_dir.path())?;
        // A stage on several clusters: every cluster of B is checked, every cluster of A read.
        let promoted: Vec<Target> =
            self.project.cluster_targets(to, releases).iter().map(|t| plan.promoted_target(t, &copies)).collect();
        let promoted = promoted.as_slice();
        let sources: Vec<Target> = self.project.cluster_targets(from, releases);
        let (checked, source_states) = std::thread::scope(|scope| {
            let source = check.check_source.then(|| scope.spawn(|| self.read_source(from, to, releases, &sources)));
            let checked = self.check(to, promoted, &check.options);
            (checked, source.map(joined))
        });
        // GitOps: a CI job writing the pull request often has no cluster credentials. Without a
        // reachable cluster, --no-deploy goes on offline and says which checks it could not run.
        let offline = |err: &Error| check.offline_allowed && err.is_unreachable();
        let (Checked { states, gates: target_gates }, offline_target) = match checked {
            Err(err) if offline(&err) => {
                self.reporter.note(&format!(
                    "{}'s cluster cannot be reached ({}); --no-deploy goes on without it",
                    to.name,
                    err.one_line()
                ));
                (self.offline_check(to, releases, promoted)?, true)
            }
            Ok(Checked { gates, .. }) if to.argocd.is_some() => {
                (Checked { states: self.argocd_states(to, releases, promoted, &check.options)?, gates }, false)
            }
            other => (other?, false),
        };
        let mut all_gates = vec![gates::order(self.project, from, to, check.allow_skip)];
        all_gates.extend(gates::secret_keys(self.project, from, to, releases));
        all_gates.extend(self.source_gates(check, &sources, source_states.transpose())?);
        all_gates.extend(target_gates);
        let targets = self
            .project
            .cluster_targets(to, releases)
            .into_iter()
            .zip(promoted)
            .map(|(t, p)| Target { version: p.version.clone(), ..t })
            .collect();
        Ok(PromotionChecked { checked: Checked { states, gates: all_gates }, targets, offline: offline_target })
    }

    /// A's releases as deployed, and their health: from helm's records, or for a stage Argo CD
    /// deploys, from its Applications and the workloads its config renders.
    fn read_source(&self, from: &Stage, to: &Stage, releases: &[&Release], sources: &[Target]) -> Result<Source> {
        if from.argocd.is_some() {
            let applications = argocd::read(self.project, &self.kubectl, from, releases)?;
            let rendered = all_or_errors(render_all(&self.helm, sources))?;
            let healths = sources
                .iter()
                .zip(&rendered)
                .map(|(target, text)| {
                    health::of_rendered(&self.kubectl, target, &render::parse_rendered(text, target)?)
                })
                .collect::<Result<Vec<_>>>()?;
            return Ok(Source::Argo(applications, healths));
        }
        let options = diff::Options { ignore: Vec::new(), show_secrets: false };
        let states = against_installed(
            self.project,
            &self.helm,
            sources,
            &options,
            // The history says when each revision was deployed: the soak time.
            render::Reading { history: to.soak.is_some(), trust_records: true },
        )?;
        states.iter().flat_map(|s| &s.notes).for_each(|note| self.reporter.note(note));
        let healths = sources
            .iter()
            .zip(&states)
            .map(|(target, state)| match &state.installed {
                Some(installed) => health::of_installed(&self.kubectl, target, installed),
                None => Ok(Health::default()),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Source::Helm(states, healths))
    }

    /// The gates about A: deployed as configured, healthy, and (where B has `soak`) deployed
    /// long enough ago. `read`: A as deployed, `None` with `--skip-source-check`.
    fn source_gates(
        &self,
        check: &PromotionCheck,
        sources: &[Target],
        read: Result<Option<Source>>,
    ) -> Result<Vec<Gate>> {
        let (from, to) = (check.from, check.to);
        let mut gates = Vec::new();
        match read {
            Ok(Some(Source::Helm(states, healths))) => {
                let releases: Vec<(&Target, &LiveState)> = sources.iter().zip(states.iter()).collect();
                gates.push(gates::source_in_sync(from, &releases));
                let healths: Vec<(&Target, &Health)> = sources.iter().zip(healths.iter()).collect();
                gates.push(gates::source_health(from, &healths, check.allow_unhealthy_source));
                let running = gates::running_by_helm(&releases);
                gates.extend(gates::soak(from, to, &running, jiff::Timestamp::now(), check.override_soak));
            }
            Ok(Some(Source::Argo(applications, healths))) => {
                gates.push(gates::source_synced_by_argocd(from, &applications));
                let healths: Vec<(&Target, &Health)> = sources.iter().zip(healths.iter()).collect();
                gates.push(gates::source_health(from, &healths, check.allow_unhealthy_source));
                let running = gates::running_by_argocd(sources, &applications);
                gates.extend(gates::soak(from, to, &running, jiff::Timestamp::now(), check.override_soak));
            }
            Ok(None) => {
                self.reporter.note(&format!(
                    "--skip-source-check: not checking that {} is deployed and in sync with its config; the \
                     promoted values may never have run there",
                    from.name
                ));
                if to.soak.is_some() {
                    let what = format!("--skip-source-check does not read how long {} has run its config", from.name);
                    gates.push(match check.override_soak {
                        true => Gate::overridden("soak", format!("{what}; promoted anyway (--override-soak)")),
                        false => {
                            Gate::refused("soak", format!("{what}: {} wants a soak; pass --override-soak too", to.name))
                        }
                    });
                }
            }
            Err(err) if check.offline_allowed && err.is_unreachable() => {
                let why = format!("{}'s cluster cannot be reached ({})", from.name, err.one_line());
                gates.push(Gate::skipped("source", why.clone()));
                if to.soak.is_some() {
                    gates.push(Gate::skipped("soak", why));
                }
            }
            Err(err) => return Err(err),
        }
        Ok(gates)
    }

    /// Without B's cluster: B's config as its files are now against the promoted config, both
    /// rendered offline, and the gates that need the cluster marked as not run.
    fn offline_check(&self, to: &Stage, releases: &[&Release], promoted: &[Target]) -> Result<Checked> {
        let states = self.config_states(to, releases, promoted)?;
        let unreachable = format!("{}'s cluster cannot be reached", to.name);
        let mut gates = vec![Gate::skipped("secrets", unreachable.clone())];
        if to.cluster_id.is_some() {
            gates.insert(0, Gate::skipped("cluster", unreachable));
        }
        Ok(Checked { states, gates })
    }

    /// B's config as its files are now against the promoted config, both rendered offline.
    fn config_states(&self, to: &Stage, releases: &[&Release], promoted: &[Target]) -> Result<Vec<LiveState>> {
        let current: Vec<Target> = self.project.cluster_targets(to, releases);
        let rendered = all_or_errors(render_all(&self.helm, &[current.as_slice(), promoted].concat()))?;
        let (now, after) = rendered.split_at(current.len());
        let mut states = Vec::new();
        for ((target, now), after) in promoted.iter().zip(now).zip(after) {
            let pair = manifest::parse_pair(now, after, &target.namespace)
                .map_err(|(_, error)| render::rendered_manifest_error(target, error))?;
            let mut comparison = diff::compare(pair.old, pair.new, &diff::Options::default());
            comparison.unchanged += pair.identical;
            states.push(LiveState::without_record(after.clone(), comparison));
        }
        Ok(states)
    }

    /// B deployed by Argo CD keeps no Helm record: what Argo CD's sync of the promoted config
    /// changes in B's live objects (a server-side dry run), as `diff STAGE` shows it.
    fn argocd_states(
        &self,
        to: &Stage,
        releases: &[&Release],
        promoted: &[Target],
        options: &Options,
    ) -> Result<Vec<LiveState>> {
        let (applications, rendered) = std::thread::scope(|scope| {
            let applications = scope.spawn(|| argocd::read(self.project, &self.kubectl, to, releases));
            (joined(applications), all_or_errors(render_all(&self.helm, promoted)))
        });
        let (applications, rendered) = (applications?, rendered?);
        let diff_options = diff::Options { ignore: Vec::new(), show_secrets: options.show_secrets };
        let comparisons = live::what_syncing_changes(&self.kubectl, promoted, &rendered, &applications, &diff_options)?;
        Ok(rendered
            .into_iter()
            .zip(comparisons)
            .zip(applications)
            .map(|((rendered, comparison), application)| LiveState {
                argocd: Some(Box::new(application)),
                ..LiveState::without_record(rendered, comparison)
            })
            .collect())
    }
}

/// A checked and approved promotion, as it is carried out.
pub struct Promote<'a> {
    pub from: &'a Stage,
    pub plan: &'a Promotion<'a>,
    /// B's deploy (its targets with the files as written); `None` with `--no-deploy`.
    pub deploy: Option<Deploy<'a>>,
    /// `--git-commit`: the written files committed on a branch of their own.
    pub commit: Option<Commit<'a>>,
}

pub struct Deploy<'a> {
    pub run: &'a StageRun<'a>,
    /// Which releases have something to deploy.
    pub needs: &'a [bool],
    /// The gates the user overrode, recorded with the deploy.
    pub overrides: &'a [&'static str],
}

pub struct Commit<'a> {
    pub git: &'a Git,
    pub branch: String,
    pub message: String,
}

/// What a promotion did: the files written, B's releases, the commit; and what stopped it.
pub struct Promoted {
    /// The files written, as shown (all of the plan's, once written).
    pub written: Vec<String>,
    /// B's releases, when a deploy ran.
    pub outcomes: Option<Vec<Outcome>>,
    /// After a failure: whether the written files were put back (`false`: kept, because the
    /// cluster runs part of the promotion, or a file could not be restored).
    pub files_restored: Option<bool>,
    /// The branch the files were committed on.
    pub branch: Option<String>,
    /// What stopped the promotion, with what became of the files and the releases.
    pub error: Option<Error>,
}

impl Pipeline<'_> {
    /// Write B's files, deploy B, commit. A failure before anything of the cluster changed
    /// restores the files; once B runs part of the promotion, they stay with it.
    pub fn promote(&self, promote: &Promote) -> Promoted {
        let plan = promote.plan;
        let mut promoted =
            Promoted { written: Vec::new(), outcomes: None, files_restored: None, branch: None, error: None };
        let restore = match writes::write(self.project, &plan.files) {
            Ok(restore) => restore,
            Err(err) => {
                promoted.error = Some(err);
                return promoted;
            }
        };
        promoted.written = plan.files.iter().map(|f| f.display.clone()).collect();
        // A stage Argo CD deploys: the commit, pushed, is the deploy (below).
        let by_helm = promote.deploy.as_ref().filter(|d| d.run.stage.argocd.is_none());
        if let Some(deploy) = by_helm {
            let StageDeploy { outcomes, error, cluster_unchanged } = self.deploy_promoted(promote, deploy);
            if let Some(err) = error {
                let err = deploy::deploy_failed("promote", err, &outcomes);
                promoted.outcomes = Some(outcomes);
                promoted.error = Some(match cluster_unchanged {
                    true => restored(err, plan, restore, &mut promoted),
                    false => {
                        promoted.files_restored = Some(false);
                        err.with_details(files_kept(plan, promote.from, deploy.run.stage))
                    }
                });
                return promoted;
            }
            promoted.outcomes = Some(outcomes);
        }
        if let Some(commit) = &promote.commit {
            let written: Vec<_> = plan.files.iter().map(|f| f.path.clone()).collect();
            match commit.git.commit_on_branch(&commit.branch, &written, &commit.message) {
                Ok(()) => promoted.branch = Some(commit.branch.clone()),
                // Without a deploy nothing else was done: the files go back.
                Err(err) if promote.deploy.is_none() => {
                    promoted.error = Some(restored(err, plan, restore, &mut promoted))
                }
                // Deployed: the files stay with what the cluster runs.
                Err(err) if by_helm.is_some() => promoted.error = Some(err),
                // Not pushed: nothing was deployed.
                Err(err) => promoted.error = Some(restored(err, plan, restore, &mut promoted)),
            }
        }
        let by_argocd = promote.deploy.as_ref().filter(|d| d.run.stage.argocd.is_some());
        if let (Some(deploy), Some(commit), None) = (by_argocd, &promote.commit, &promoted.error) {
            let to = deploy.run.stage;
            let StageDeploy { outcomes, error, cluster_unchanged } =
                self.deploy_by_argocd(to, deploy.run.targets, commit.git, &promotion_record(promote, deploy));
            promoted.outcomes = Some(outcomes);
            promoted.error = error.map(|err| match cluster_unchanged {
                true => err,
                false => err.with_details([Detail::Note(format!(
                    "the promotion {} -> {} is committed on branch {} and pushed: the files stay with it",
                    promote.from.name, to.name, commit.branch
                ))]),
            });
        }
        promoted
    }

    fn deploy_promoted(&self, promote: &Promote, deploy: &Deploy) -> StageDeploy {
        self.deploy(deploy.run, deploy.needs, &promotion_record(promote, deploy))
    }
}

/// How the promotion's deploy is recorded (the revisions' description, the Events).
fn promotion_record(promote: &Promote, deploy: &Deploy) -> Record {
    let (from, to, plan) = (promote.from, deploy.run.stage, promote.plan);
    Record::new(
        to,
        format!("helm-envs: promoted {} -> {} (patch {})", from.name, to.name, plan.digest),
        Some(&from.name),
    )
    .with_patch(&plan.digest)
    .with_overrides(deploy.overrides)
}

/// `err` with the written files put back, and what became of them.
fn restored(err: Error, plan: &Promotion, restore: files::Restore, promoted: &mut Promoted) -> Error {
    let written = restore.paths();
    let unrestored = restore.restore();
    promoted.files_restored = Some(unrestored.is_empty());
    writes::with_restore_report(err, &plan.files, &written, &unrestored)
}

/// What a deploy that stopped with part of the stage changed leaves behind: the files as
/// written, and the command that finishes the job.
fn files_kept(plan: &Promotion, from: &Stage, to: &Stage) -> Vec<Detail> {
    let names: Vec<&str> = plan.files.iter().map(|f| f.display.as_str()).collect();
    vec![
        Detail::Note(format!(
            "{} {} written for the promotion {} -> {} and {} kept: the cluster runs part of it (above)",
            names.join(", "),
            if names.len() == 1 { "was" } else { "were" },
            from.name,
            to.name,
            if names.len() == 1 { "is" } else { "are" },
        )),
        Detail::Help(format!(
            "finish it: `helm envs upgrade {}`; or take the promotion back: restore {} from version control, then \
             `helm envs upgrade {}`",
            to.name,
            names.join(", "),
            to.name
        )),
    ]
}
