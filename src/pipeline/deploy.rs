//! Deploying one stage: each release that has something to deploy, once the releases it needs
//! are deployed (in the order of the stages file when no release declares `needs`), with
//! `helm upgrade --install` (or the stage's own deploy command), then the stage's verify
//! commands. After each release, the wait until it is ready and an Event in its namespace. A
//! failure stops what depends on it; then the failure rule applies to the stage.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::compare::health::{self, Health};
use crate::config::stages::needs::Graph;
use crate::config::stages::{OnFailure, Project, Stage, Target};
use crate::error::{Detail, Error, Result};
use crate::system::helm::Revision;
use crate::system::{hooks, interrupt, records, slots};

use super::events;
use super::record::{HEALTH_LABEL, Record};
use super::run::{Pipeline, Reporter, StageRun};
use super::schedule::Schedule;

/// What happened to one release.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub stage: String,
    /// The cluster, in a stage on several.
    pub cluster: Option<String>,
    pub release: String,
    pub status: Status,
    /// What the failure rule did to it afterwards (`onFailure: rollback`).
    pub undone: Option<Undone>,
    /// Not attempted because this release, which it needs, failed or was not attempted.
    pub blocked_by: Option<String>,
    /// A stage Argo CD deploys: the commit Argo CD runs for it.
    pub commit: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Deployed; the revision when helm deployed it (a deploy command does not say).
    Deployed(Option<u64>),
    /// Installed and identical to its config: nothing to do.
    Unchanged,
    Failed,
    NotAttempted,
}

/// How a release this run changed was taken back after the stage failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undone {
    /// Rolled back to this revision, the last one deployed successfully before the run.
    RolledBack(u64),
    /// A first install, uninstalled.
    Uninstalled,
}

impl Outcome {
    /// `stage/release`, or `stage/cluster/release` in a stage on several clusters.
    pub fn place(&self) -> String {
        match &self.cluster {
            Some(cluster) => format!("{}/{cluster}/{}", self.stage, self.release),
            None => format!("{}/{}", self.stage, self.release),
        }
    }

    pub fn new(target: &Target, status: Status) -> Outcome {
        Outcome {
            stage: target.stage.name.clone(),
            cluster: target.stage.cluster.as_ref().map(|c| c.name.clone()),
            release: target.release.name.clone(),
            status,
            undone: None,
            blocked_by: None,
            commit: None,
        }
    }
}

/// A stage's deploy as it ended.
#[derive(Debug)]
pub struct StageDeploy {
    pub outcomes: Vec<Outcome>,
    /// What stopped the stage, with what the failure rule did.
    pub error: Option<Error>,
    /// Every release runs what it ran before the run (nothing was deployed, or all of it was
    /// taken back): the files the run wrote go back too.
    pub cluster_unchanged: bool,
}

/// A stage's deploy, as [`Pipeline::follow`] takes it.
struct Plan<'a, 't> {
    targets: &'t [Target<'t>],
    needs_deploy: &'a [bool],
    record: &'a Record,
    graph: &'a Graph,
}

/// How one release's deploy ended.
enum Attempt {
    /// Its history could not be read: nothing was started.
    NotStarted(Error),
    /// Nothing to deploy; why it is not ready, when a release that needs it waited in vain.
    Unchanged(Option<Error>),
    Deployed {
        revision: Option<u64>,
        before: Vec<Revision>,
    },
    Failed {
        judged: Box<Judged>,
        before: Vec<Revision>,
    },
}

/// What the releases deployed so far changed, and what went wrong.
struct Progress<'t> {
    /// In the order their deploys ended (taken back last first).
    changed: Vec<Changed<'t>>,
    /// The first is what stopped the stage.
    failures: Vec<Error>,
    /// Notes about revisions left pending.
    left_pending: Vec<String>,
}

impl<'t> Progress<'t> {
    fn record(&mut self, target: &'t Target<'t>, index: usize, attempt: Attempt, outcomes: &mut [Outcome]) {
        match attempt {
            Attempt::NotStarted(err) => self.failures.push(err),
            Attempt::Unchanged(unready) => {
                outcomes[index].status = Status::Unchanged;
                self.failures.extend(unready);
            }
            Attempt::Deployed { revision, before } => {
                outcomes[index].status = Status::Deployed(revision);
                self.changed.push(Changed { index, target, before });
            }
            Attempt::Failed { judged, before } => {
                outcomes[index].status = Status::Failed;
                let Judged { error, ours, left_pending } = *judged;
                if ours {
                    self.changed.push(Changed { index, target, before });
                }
                self.left_pending.extend(left_pending);
                self.failures.push(error);
            }
        }
    }
}

/// A release this run gave a new revision (or tried to): its history before the run.
struct Changed<'t> {
    index: usize,
    target: &'t Target<'t>,
    before: Vec<Revision>,
}

impl Pipeline<'_> {
    /// Deploy the targets of one stage (`needs_deploy[i]`: whether target `i` has anything to
    /// deploy) in the order of their `needs` (file order when no release declares any), each
    /// followed by the wait until it is ready and an Event in its namespace; then run the
    /// stage's verify commands. A failure stops what needs the failed release (in file order:
    /// the rest of the stage), lets the releases that do not need it finish, and the failure
    /// rule (`onFailure`) applies; a signal stops the run from starting releases, with nothing
    /// undone.
    pub(super) fn deploy_releases(&self, run: &StageRun, needs_deploy: &[bool], record: &Record) -> StageDeploy {
        let graph = self.project.deploy_graph(run.targets);
        for (index, needed) in &graph.left_out {
            self.reporter.note(&format!(
                "{} needs {needed}, which this run does not deploy (--release): it deploys without waiting for it",
                run.targets[*index].release.name
            ));
        }
        let mut outcomes: Vec<Outcome> = run.targets.iter().map(|t| Outcome::new(t, Status::NotAttempted)).collect();
        let plan = Plan { targets: run.targets, needs_deploy, record, graph: &graph };
        let Progress { changed, failures, left_pending } = self.follow(&plan, &mut outcomes);
        let mut failures = failures.into_iter();
        let mut failure = failures.next().map(|first| {
            // A signal that cut several waits short is one interrupt: its notes, not its headline again.
            let others: Vec<Detail> = failures
                .flat_map(|e| match e {
                    Error::Interrupted { details, .. } => details,
                    other => vec![Detail::Nested(other.to_string(), other.details())],
                })
                .collect();
            if others.is_empty() { first } else { first.with_details(others) }
        });
        if failure.is_none() && !changed.is_empty() {
            failure = interrupt::check(Vec::new).err().or_else(|| verify(self.project, run.stage, self.reporter).err());
        }
        let Some(error) = failure else {
            return StageDeploy { outcomes, error: None, cluster_unchanged: changed.is_empty() };
        };
        // A failure after a signal (helm cancelled by the same Ctrl-C): nothing more is started,
        // not even a rollback.
        let error = match (interrupt::received(), error) {
            (Some(signal), error) if !matches!(error, Error::Interrupted { .. }) => {
                Error::Interrupted { signal, details: vec![Detail::Nested(error.to_string(), error.details())] }
            }
            (_, error) => error,
        };
        let (error, cluster_unchanged) = if matches!(error, Error::Interrupted { .. }) || changed.is_empty() {
            (error, changed.is_empty())
        } else {
            match run.stage.on_failure {
                OnFailure::Keep => (error.with_details([Detail::Note(kept(run.stage, &changed, &outcomes))]), false),
                OnFailure::Rollback => self.take_back(error, &changed, &mut outcomes),
            }
        };
        // A release this run left pending, and not taken back: the user must free it.
        let error = match left_pending.is_empty() || cluster_unchanged {
            true => error,
            false => error.with_details(left_pending.into_iter().map(Detail::Note)),
        };
        StageDeploy { outcomes, error: Some(error), cluster_unchanged }
    }

    /// Deploy the plan's releases as its graph allows, side by side within the `--jobs` limit;
    /// each outcome is written into `outcomes` (by target index) as it ends.
    fn follow<'t>(&self, plan: &Plan<'_, 't>, outcomes: &mut [Outcome]) -> Progress<'t> {
        let mut schedule = Schedule::new(plan.graph);
        let mut progress = Progress { changed: Vec::new(), failures: Vec::new(), left_pending: Vec::new() };
        let limit = slots::limit();
        std::thread::scope(|scope| {
            let (send, receive) = mpsc::channel();
            loop {
                if let Err(stop) = interrupt::check(Vec::new) {
                    schedule.skip_waiting();
                    if progress.failures.is_empty() {
                        progress.failures.push(stop);
                    }
                }
                for (index, need) in schedule.skip_blocked() {
                    outcomes[index].blocked_by = plan.graph.declared.then(|| plan.targets[need].release.name.clone());
                }
                while schedule.running() < limit {
                    let Some(index) = schedule.start_next() else { break };
                    // Nothing to deploy: ready as it is, unless a release that needs it must know.
                    if !plan.needs_deploy[index] && !plan.graph.is_needed(index) {
                        outcomes[index].status = Status::Unchanged;
                        schedule.finish(index, true);
                        continue;
                    }
                    let (send, target) = (send.clone(), &plan.targets[index]);
                    let deploy = plan.needs_deploy[index];
                    scope.spawn(move || {
                        let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match deploy {
                            true => self.attempt(target, plan.record),
                            false => Attempt::Unchanged(self.wait_until_ready(target).err()),
                        }))
                        .unwrap_or_else(|_| {
                            Attempt::NotStarted(Error::Other(anyhow::anyhow!("a helm-envs thread panicked")))
                        });
                        let _ = send.send((index, attempt));
                    });
                }
                if schedule.running() == 0 {
                    return;
                }
                let Ok((index, attempt)) = receive.recv() else { return };
                schedule.finish(index, matches!(attempt, Attempt::Deployed { .. } | Attempt::Unchanged(None)));
                progress.record(&plan.targets[index], index, attempt, outcomes);
            }
        });
        progress
    }

    /// One release deployed, waited for and recorded, from its history before the run.
    fn attempt(&self, target: &Target, record: &Record) -> Attempt {
        let before = match self.helm.history(target) {
            Ok(before) => before,
            Err(err) => return Attempt::NotStarted(err),
        };
        match self.deploy_release(target, record, &before) {
            Ok(revision) => Attempt::Deployed { revision, before },
            Err(judged) => Attempt::Failed { judged, before },
        }
    }

    /// The failure rule's `rollback`: every release this run changed, last first, back to the
    /// last revision it had deployed successfully before the run (never a failed or pending
    /// one), or uninstalled when the run installed it; each waited for as after a deploy.
    /// Returns the error with what was done, and whether all of it went back.
    fn take_back(&self, error: Error, changed: &[Changed], outcomes: &mut [Outcome]) -> (Error, bool) {
        let mut notes = Vec::new();
        let mut all_back = true;
        for change in changed.iter().rev() {
            let (target, name) = (change.target, &change.target.release.name);
            let last_good = last_good(&change.before, &self.unready_revisions(target));
            let undone = match (last_good, change.before.is_empty()) {
                (Some(good), _) => {
                    self.helm.rollback(target, good.revision).map(|()| Undone::RolledBack(good.revision))
                }
                (None, true) => self.helm.uninstall(target).map(|()| Undone::Uninstalled),
                (None, false) => {
                    all_back = false;
                    notes.push(Detail::Note(format!(
                        "{name} had no revision that deployed successfully before this run; it is left as it is"
                    )));
                    continue;
                }
            };
            match undone {
                Ok(undone) => {
                    outcomes[change.index].undone = Some(undone);
                    notes.push(Detail::Note(match undone {
                        Undone::RolledBack(to) => {
                            format!(
                                "rolled {name} back to revision {to}, its last successful deploy (onFailure: rollback)"
                            )
                        }
                        Undone::Uninstalled => {
                            format!("uninstalled {name}: this run installed it (onFailure: rollback)")
                        }
                    }));
                    if let (Undone::RolledBack(_), Err(unready)) = (undone, self.wait_until_ready(target)) {
                        notes.push(Detail::Note(format!("  after the rollback: {}", unready.one_line())));
                    }
                }
                Err(err) => {
                    all_back = false;
                    notes.push(Detail::Note(format!("could not take {name} back: {}", err.one_line())));
                }
            }
        }
        let stage = changed.first().map_or("", |c| c.target.stage.name.as_str());
        notes.push(Detail::Help(match all_back {
            true => format!("stage {stage} runs what it ran before this run; fix the cause and run again"),
            false => format!(
                "stage {stage} is partly changed: `helm envs status --stage {stage}` shows each release's revision; \
                 `helm history` and `helm rollback` finish by hand"
            ),
        }));
        let error = error.with_details(notes);
        (error, all_back)
    }

    /// Deploy one release (its history `before` the run), wait until it is ready, record the
    /// Event; the revision deployed, or the failure judged from helm's record.
    fn deploy_release(
        &self,
        target: &Target,
        record: &Record,
        before: &[Revision],
    ) -> Result<Option<u64>, Box<Judged>> {
        // helm numbers a deploy after the latest revision it keeps.
        let labels = record.labels_for(target, before.last().map_or(1, |r| r.revision + 1));
        let upgraded = self.deploy_one(target, record, &labels);
        let helm_failed = upgraded.is_err();
        let deployed = upgraded.and_then(|revision| self.wait_until_ready(target).map(|()| revision));
        // helm's record after a deploy that did not say its revision (a deploy command) or failed.
        let after = match &deployed {
            Ok(Some(_)) => Vec::new(),
            _ => self.helm.history(target).unwrap_or_default(),
        };
        let revision = match &deployed {
            Ok(Some(revision)) => Some(*revision),
            _ => after.last().map(|r| r.revision),
        };
        events::record(&self.kubectl, self.reporter, target, record, revision, deployed.as_ref().err());
        if let (Err(err), Some(revision), false) = (&deployed, revision, helm_failed) {
            self.mark_unready(target, revision, err);
        }
        match deployed {
            Ok(_) => Ok(revision),
            Err(err) => Err(Box::new(judged_failure(target, err, (before, &after), helm_failed))),
        }
    }

    /// A revision helm deployed whose workloads did not become ready: marked on helm's record,
    /// so that no later rollback goes to it (helm itself calls it `deployed`). Best effort, like
    /// the Event; a wait cut short by a signal proves nothing and marks nothing.
    fn mark_unready(&self, target: &Target, revision: u64, err: &Error) {
        if matches!(err, Error::Interrupted { .. }) || !records::in_secrets() {
            return;
        }
        let label = (HEALTH_LABEL, "failed");
        let revision_of = (target.release.name.as_str(), revision);
        if let Err(failure) = self.kubectl.label_revision(target.stage, &target.namespace, revision_of, label) {
            self.reporter.note(&format!(
                "could not mark revision {revision} of {}/{} as not ready ({}); a later rollback may choose it",
                target.stage.name,
                target.release.name,
                failure.one_line()
            ));
        }
    }

    /// The revisions of a release marked as never ready (see [`Self::mark_unready`]).
    fn unready_revisions(&self, target: &Target) -> Vec<u64> {
        if !records::in_secrets() {
            return Vec::new();
        }
        let label = format!("{HEALTH_LABEL}=failed");
        self.kubectl
            .labelled_revisions(target.stage, &target.namespace, &target.release.name, &label)
            .unwrap_or_default()
    }

    /// `helm upgrade --install` (or the stage's deploy command); the revision when helm says.
    fn deploy_one(&self, target: &Target, record: &Record, labels: &[(String, String)]) -> Result<Option<u64>> {
        let stage = target.stage;
        let step = self.reporter.step(format!("deploying {} to {}", target.release.name, stage.label()));
        match &stage.deploy_command {
            Some(command) => {
                let env = hooks::environment(stage, Some(target))?;
                let mut result = Ok(());
                step.suspend(&mut || {
                    result = hooks::run(
                        &self.project.dir,
                        command,
                        &env,
                        &format!("the deploy command of stage `{}` for release `{}`", stage.name, target.release.name),
                    );
                });
                result.map(|()| None)
            }
            None => self.helm.upgrade(target, &record.description, labels).map(|out| revision(&out)),
        }
    }

    /// Wait until the deployed release's workloads are ready, up to the stage's
    /// `health.timeout`; progress on a spinner (a terminal) or a line per change (piped). A
    /// signal ends the wait.
    fn wait_until_ready(&self, target: &Target) -> Result<()> {
        let (stage, timeout) = (target.stage, target.stage.health.timeout);
        if timeout.is_zero() {
            return Ok(());
        }
        let Some(installed) = self.helm.installed(target)? else { return Ok(()) };
        let started = Instant::now();
        let progress = self.reporter.wait(format!("{}/{}", stage.label(), target.release.name));
        loop {
            let health = health::of_installed(&self.kubectl, target, &installed)?;
            if health.is_ready() {
                let (ready, desired) = health.counts();
                progress.ready(ready, desired, started.elapsed());
                return Ok(());
            }
            if health.failed() || started.elapsed() >= timeout {
                return Err(not_ready(target, &health, timeout, health.failed()));
            }
            interrupt::check(|| {
                vec![Detail::Note(format!(
                    "the wait for {}/{} to be ready was cut short: {}",
                    stage.label(),
                    target.release.name,
                    wait_state(&health)
                ))]
            })?;
            progress.show(&wait_state(&health), started.elapsed());
            std::thread::sleep(POLL.min(timeout.saturating_sub(started.elapsed())).max(Duration::from_millis(100)));
        }
    }
}

/// The revision to go back to: the newest that deployed successfully, whose workloads were not
/// found unready (`unready`, marked by an earlier run), and was not itself rolled back from
/// (the revision after it is a `Rollback to N`); never a failed or pending one.
fn last_good<'h>(history: &'h [Revision], unready: &[u64]) -> Option<&'h Revision> {
    let rolled_away =
        |index: usize| history.get(index + 1).is_some_and(|next| next.description.starts_with("Rollback to "));
    history
        .iter()
        .enumerate()
        .rev()
        .find(|(i, r)| !failed_or_pending(r) && !unready.contains(&r.revision) && !rolled_away(*i))
        .map(|(_, r)| r)
}

/// A failed deploy of one release, judged from helm's record before and after it: whether
/// this run left a new revision (to take back), and the error with what the record says: a
/// revision left pending, or one another run deployed meanwhile (not ours to take back).
fn judged_failure(
    target: &Target,
    err: Error,
    (before, after): (&[Revision], &[Revision]),
    helm_failed: bool,
) -> Judged {
    let newest = |history: &[Revision]| history.last().map(|r| r.revision);
    // helm refused before it wrote a revision: whatever is pending belongs to another run.
    let refused = helm_failed && helm_wrote_no_revision(&err);
    let Some(last) = after.last().filter(|_| newest(after) > newest(before)) else {
        let error = match after.last().filter(|r| refused && r.status.starts_with("pending")) {
            Some(theirs) => err.with_details([Detail::Note(by_another_run(target, theirs))]),
            None => err,
        };
        return Judged { error, ours: false, left_pending: None };
    };
    if helm_failed && (!failed_or_pending(last) || refused) {
        let error = err.with_details([Detail::Note(by_another_run(target, last))]);
        return Judged { error, ours: false, left_pending: None };
    }
    let left_pending = last.status.starts_with("pending").then(|| left_pending(target, last, before));
    Judged { error: err, ours: true, left_pending }
}

/// A failed deploy of one release as its record shows it.
struct Judged {
    error: Error,
    /// This run left a new revision, to take back.
    ours: bool,
    /// The note for a revision this run left pending (said unless the revision is taken back).
    left_pending: Option<String>,
}

/// A revision that never deployed successfully: not one to go back to.
fn failed_or_pending(revision: &Revision) -> bool {
    revision.status == "failed" || revision.status.starts_with("pending")
}

/// Two runs deploying the same release at once (two CI jobs): what the other one did.
fn by_another_run(target: &Target, theirs: &Revision) -> String {
    let by = match theirs.description.as_str() {
        "" => String::new(),
        description => format!(" (\"{description}\")"),
    };
    let (stage, release, revision) = (&target.stage.name, &target.release.name, theirs.revision);
    match theirs.status.starts_with("pending") {
        true => format!(
            "another run is deploying {stage}/{release}: revision {revision} is `{}`{by}, started {}; this run \
             changed nothing of it. Wait for it to end (a CI job, a colleague's run), then `helm envs diff {stage}` \
             shows whether it runs this config; if no helm process works on it any more, it was killed and is stuck",
            theirs.status, theirs.updated
        ),
        false => format!(
            "another run deployed {stage}/{release} meanwhile: revision {revision} is `{}`{by}, deployed {}; this \
             run changed nothing of it. `helm envs diff {stage}` shows whether it runs this config",
            theirs.status, theirs.updated
        ),
    }
}

/// helm refused the deploy before it wrote a revision: another operation holds the release, or
/// another run wrote the revision number first.
fn helm_wrote_no_revision(err: &Error) -> bool {
    match err {
        Error::Helm(failure) => {
            failure.stderr.contains("another operation (install/upgrade/rollback) is in progress")
                || failure.stderr.contains("already exists")
        }
        _ => false,
    }
}

/// A release a failed helm call left pending (its connection to the cluster was lost).
/// `before`: its revisions before the run, for the one to go back to.
fn left_pending(target: &Target, pending: &Revision, before: &[Revision]) -> String {
    let release = &target.release.name;
    let context = target.stage.kube_context.name().map(|c| format!(" --kube-context {c}")).unwrap_or_default();
    let recovery = match last_good(before, &[]) {
        Some(good) => format!(
            "once no helm process works on it, `helm rollback {release} {} --namespace {}{context}` (its last \
             successful revision) frees it; then run helm-envs again",
            good.revision, target.namespace
        ),
        None => format!(
            "once no helm process works on it, `helm uninstall {release} --namespace {}{context}` frees it (it never \
             deployed successfully); then run helm-envs again",
            target.namespace
        ),
    };
    format!(
        "{}/{release} is left `{}` at revision {}: helm stopped before it could record the outcome (its process \
         ended, or it lost the cluster), and refuses every further upgrade of it while it stays so; {recovery}",
        target.stage.name, pending.status, pending.revision
    )
}

/// The failure rule's `keep`: what the cluster runs now.
fn kept(stage: &Stage, changed: &[Changed], outcomes: &[Outcome]) -> String {
    let releases: Vec<String> = changed
        .iter()
        .map(|c| match &outcomes[c.index].status {
            Status::Deployed(Some(revision)) => format!("{} (revision {revision})", c.target.release.name),
            Status::Failed => format!("{} (its failed revision)", c.target.release.name),
            _ => c.target.release.name.clone(),
        })
        .collect();
    format!(
        "kept (onFailure: keep in stage `{}`): the new revisions of {} stay installed, and the files as written",
        stage.name,
        releases.join(", ")
    )
}

/// How often the readiness wait reads the cluster.
const POLL: Duration = Duration::from_secs(1);

/// A release that is not ready: what, and why. The headline names the configured timeout, not
/// the time measured, which the last read of the cluster can take a second past it.
fn not_ready(target: &Target, health: &Health, timeout: Duration, failed: bool) -> Error {
    let headline = match failed {
        true => format!("release {} of stage {} failed to become ready", target.release.name, target.stage.label()),
        false => format!(
            "release {} of stage {} is not ready after {}s (health.timeout)",
            target.release.name,
            target.stage.label(),
            timeout.as_secs()
        ),
    };
    let mut details = Vec::new();
    for workload in health.not_ready() {
        details.push(Detail::Note(workload.headline()));
        details.extend(workload.why.iter().map(|why| Detail::Note(format!("  {why}"))));
    }
    Error::Failed { headline, details }
}

/// The wait's state, short (`1/3 ready (ImagePullBackOff)`): counts and the first reason, so a
/// reporter can tell a change of state from kubelet retrying.
fn wait_state(health: &Health) -> String {
    let (ready, desired) = health.counts();
    let reason = health.not_ready().flat_map(|w| w.reasons.first()).next();
    match reason.map(String::as_str) {
        None => format!("{ready}/{desired} ready"),
        Some("ErrImagePull") => format!("{ready}/{desired} ready (ImagePullBackOff)"),
        Some(reason) => format!("{ready}/{desired} ready ({reason})"),
    }
}

/// The stage's verify commands, in order; the first failure stops.
pub(super) fn verify(project: &Project, stage: &Stage, reporter: &dyn Reporter) -> Result<()> {
    let env = hooks::environment(stage, None)?;
    for (i, command) in stage.verify.iter().enumerate() {
        let step = reporter.step(format!("verifying {} ({}/{})", stage.name, i + 1, stage.verify.len()));
        let mut result = Ok(());
        step.suspend(&mut || {
            result =
                hooks::run(&project.dir, command, &env, &format!("verify command {} of stage `{}`", i + 1, stage.name));
        });
        drop(step);
        result.map_err(|err| match err {
            Error::Failed { headline, mut details } => {
                details.push(Detail::Note(
                    "the release was deployed; the stage's verify commands judged it failed".into(),
                ));
                Error::Failed { headline, details }
            }
            other => other,
        })?;
    }
    Ok(())
}

/// `REVISION: 4` in helm upgrade's output.
fn revision(output: &str) -> Option<u64> {
    output.lines().find_map(|line| line.strip_prefix("REVISION:")).and_then(|r| r.trim().parse().ok())
}

/// A deploy that failed, with what was and was not deployed.
pub fn deploy_failed(command: &str, err: Error, outcomes: &[Outcome]) -> Error {
    if let Error::Interrupted { signal, mut details } = err {
        details.extend(summary(outcomes));
        return Error::Interrupted { signal, details };
    }
    let mut details = vec![Detail::Nested(err.to_string(), err.details())];
    details.extend(summary(outcomes));
    Error::Failed { headline: format!("{command} failed"), details }
}

/// Which releases were deployed (and kept) and which were not attempted.
pub fn summary(outcomes: &[Outcome]) -> Vec<Detail> {
    let names = |wanted: &dyn Fn(&Outcome) -> bool| -> Vec<String> {
        outcomes.iter().filter(|o| wanted(o)).map(Outcome::place).collect()
    };
    let deployed = names(&|o| matches!(o.status, Status::Deployed(_)) && o.undone.is_none());
    let skipped = names(&|o| o.status == Status::NotAttempted);
    let mut details = Vec::new();
    if !deployed.is_empty() {
        details.push(Detail::Note(format!("deployed and kept: {}", deployed.join(", "))));
    }
    if !skipped.is_empty() {
        details.push(Detail::Note(format!("not attempted: {}", skipped.join(", "))));
    }
    details
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rollback_target_is_the_last_revision_that_deployed_well() {
        let revision = |revision, status: &str, description: &str| Revision {
            revision,
            status: status.into(),
            description: description.into(),
            ..Revision::default()
        };
        let history = [
            revision(1, "superseded", "Install complete"),
            revision(2, "superseded", "helm-envs: promoted"),
            revision(3, "superseded", "Rollback to 1"),
            revision(4, "failed", "Upgrade failed"),
            revision(5, "pending-upgrade", "Preparing upgrade"),
        ];
        assert_eq!(
            last_good(&history, &[]).map(|r| r.revision),
            Some(3),
            "not 5 (pending), 4 (failed), 2 (rolled away)"
        );
        assert_eq!(last_good(&history[..2], &[]).map(|r| r.revision), Some(2));
        assert_eq!(last_good(&history[..2], &[2]).map(|r| r.revision), Some(1), "2 never became ready");
        assert_eq!(last_good(&history, &[3]).map(|r| r.revision), Some(1), "3 never became ready, 2 rolled away");
        assert_eq!(last_good(&[revision(1, "failed", "")], &[]), None);
    }

    #[test]
    fn the_revision_comes_from_helms_output() {
        let out = "Release \"web\" has been upgraded. Happy Helming!\nNAME: web\nLAST DEPLOYED: now\nNAMESPACE: a\nSTATUS: deployed\nREVISION: 4\nTEST SUITE: None\n";
        assert_eq!(revision(out), Some(4));
        assert_eq!(revision("nothing"), None);
    }
}
