//! Deploying one stage: each release that has something to deploy, in the order of the stages
//! file, with `helm upgrade --install` (or the stage's own deploy command), then the stage's
//! verify commands. After each release, the wait until it is ready and an Event in its
//! namespace. The first failure stops the stage.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use crate::compare::health::{self, Health};
use crate::config::stages::{Project, Stage, Target};
use crate::error::{Detail, Error, Result};
use crate::system::hooks;
use crate::terminal::{self, NAME};

use super::events;
use super::record::Record;
use super::run::{Pipeline, StageRun};

/// What happened to one release.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub stage: String,
    pub release: String,
    pub status: Status,
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

impl Outcome {
    pub fn json(&self) -> Value {
        let (status, revision) = match self.status {
            Status::Deployed(revision) => ("deployed", revision),
            Status::Unchanged => ("unchanged", None),
            Status::Failed => ("failed", None),
            Status::NotAttempted => ("not-attempted", None),
        };
        json!({"stage": self.stage, "release": self.release, "status": status, "revision": revision})
    }
}

impl Pipeline<'_> {
    /// Deploy the targets of one stage (`needs_deploy[i]`: whether target `i` has anything to
    /// deploy), each followed by the wait until it is ready and an Event in its namespace; then
    /// run the stage's verify commands. Returns every release's outcome, and the error that
    /// stopped the stage, if one did.
    pub(super) fn deploy_releases(
        &self,
        run: &StageRun,
        needs_deploy: &[bool],
        record: &Record,
    ) -> (Vec<Outcome>, Option<Error>) {
        let stage = run.stage;
        let outcome = |target: &Target, status| Outcome {
            stage: stage.name.clone(),
            release: target.release.name.clone(),
            status,
        };
        let mut outcomes = Vec::new();
        let mut failure = None;
        for (target, needed) in run.targets.iter().zip(needs_deploy) {
            if failure.is_some() {
                outcomes.push(outcome(target, Status::NotAttempted));
                continue;
            }
            if !needed {
                outcomes.push(outcome(target, Status::Unchanged));
                continue;
            }
            let deployed = self.deploy_one(target, record).and_then(|revision| {
                self.wait_until_ready(target).map(|()| revision).map_err(|unready| self.roll_back(target, unready))
            });
            let revision = match &deployed {
                Ok(revision) => *revision,
                Err(_) => self.helm.installed(target).ok().flatten().map(|i| i.revision),
            };
            events::record(&self.kubectl, target, record, revision, deployed.as_ref().err());
            match deployed {
                Ok(revision) => outcomes.push(outcome(target, Status::Deployed(revision))),
                Err(err) => {
                    outcomes.push(outcome(target, Status::Failed));
                    failure = Some(err);
                }
            }
        }
        let deployed_any = outcomes.iter().any(|o| matches!(o.status, Status::Deployed(_)));
        if failure.is_none() && deployed_any {
            failure = verify(self.project, stage).err();
        }
        (outcomes, failure)
    }

    /// `helm upgrade --install` (or the stage's deploy command); the revision when helm says.
    fn deploy_one(&self, target: &Target, record: &Record) -> Result<Option<u64>> {
        let stage = target.stage;
        let spinner = spinner(format!("deploying {} to {}", target.release.name, stage.name));
        let result = match &stage.deploy_command {
            Some(command) => hooks::environment(stage, Some(target))
                .and_then(|env| {
                    spinner.suspend(|| {
                        hooks::run(
                            &self.project.dir,
                            command,
                            &env,
                            &format!(
                                "the deploy command of stage `{}` for release `{}`",
                                stage.name, target.release.name
                            ),
                        )
                    })
                })
                .map(|()| None),
            None => self.helm.upgrade(target, &record.description, &record.labels).map(|out| revision(&out)),
        };
        spinner.finish_and_clear();
        result
    }

    /// Wait until the deployed release's workloads are ready, up to the stage's
    /// `health.timeout`; progress on a spinner (a terminal) or a line per change (piped).
    fn wait_until_ready(&self, target: &Target) -> Result<()> {
        let (stage, timeout) = (target.stage, target.stage.health.timeout);
        if timeout.is_zero() {
            return Ok(());
        }
        let Some(installed) = self.helm.installed(target)? else { return Ok(()) };
        let started = Instant::now();
        let progress = Progress::new(format!("{}/{}", stage.name, target.release.name));
        loop {
            let health = health::of_installed(&self.kubectl, target, &installed)?;
            if health.is_ready() {
                progress.done(&health, started.elapsed());
                return Ok(());
            }
            if health.failed() || started.elapsed() >= timeout {
                progress.clear();
                return Err(not_ready(target, &health, timeout, health.failed()));
            }
            progress.show(&health, started.elapsed());
            std::thread::sleep(POLL.min(timeout.saturating_sub(started.elapsed())).max(Duration::from_millis(100)));
        }
    }

    /// With `health.rollback`, roll a release that is not ready back to its previous revision;
    /// the error says what became of it either way.
    fn roll_back(&self, target: &Target, unready: Error) -> Error {
        let Error::Failed { headline, mut details } = unready else { return unready };
        if !target.stage.health.rollback {
            details.push(Detail::Help(format!(
                "the new revision stays installed; `health: {{rollback: true}}` in stage `{}` rolls back \
                 automatically, `helm rollback {} --kube-context … --namespace {}` does it by hand",
                target.stage.name, target.release.name, target.namespace
            )));
            return Error::Failed { headline, details };
        }
        let current = self.helm.installed(target).ok().flatten().map(|i| i.revision);
        details.push(match current {
            Some(revision) if revision > 1 => match self.helm.rollback(target, revision - 1) {
                Ok(()) => Detail::Note(format!(
                    "rolled {} back to revision {} (health.rollback)",
                    target.release.name,
                    revision - 1
                )),
                Err(err) => {
                    Detail::Note(format!("the rollback to revision {} failed: {}", revision - 1, err.one_line()))
                }
            },
            _ => Detail::Note(format!(
                "{} has no previous revision to roll back to (first install); `helm uninstall` removes it",
                target.release.name
            )),
        });
        Error::Failed { headline, details }
    }
}

/// How often the readiness wait reads the cluster.
const POLL: Duration = Duration::from_secs(1);

/// Piped, a wait shorter than this prints nothing: logs show the waits that matter.
const QUIET: Duration = Duration::from_secs(5);

/// A release that is not ready: what, and why. The headline names the configured timeout, not
/// the time measured, which the last read of the cluster can take a second past it.
fn not_ready(target: &Target, health: &Health, timeout: Duration, failed: bool) -> Error {
    let headline = match failed {
        true => format!("release {} of stage {} failed to become ready", target.release.name, target.stage.name),
        false => format!(
            "release {} of stage {} is not ready after {}s (health.timeout)",
            target.release.name,
            target.stage.name,
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

/// Waiting progress: a spinner on a terminal, else one line on stderr per change of state.
struct Progress {
    name: String,
    bar: ProgressBar,
    terminal: bool,
    last: std::cell::RefCell<String>,
}

impl Progress {
    fn new(name: String) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let bar = spinner(format!("waiting for {name} to be ready"));
        Progress { name, bar, terminal, last: std::cell::RefCell::new(String::new()) }
    }

    /// Counts and the first reason, short (`ImagePullBackOff`), so a line is printed when the
    /// state changes, not each time kubelet retries.
    fn state(health: &Health) -> String {
        let (ready, desired) = health.counts();
        let reason = health.not_ready().flat_map(|w| w.reasons.first()).next();
        match reason.map(String::as_str) {
            None => format!("{ready}/{desired} ready"),
            Some("ErrImagePull") => format!("{ready}/{desired} ready (ImagePullBackOff)"),
            Some(reason) => format!("{ready}/{desired} ready ({reason})"),
        }
    }

    fn show(&self, health: &Health, elapsed: Duration) {
        let state = Progress::state(health);
        if self.terminal {
            self.bar.set_message(format!("waiting for {}: {state}", self.name));
        } else if elapsed >= QUIET && *self.last.borrow() != state {
            terminal::stderr(&format!("waiting   {}: {state}\n", self.name));
            *self.last.borrow_mut() = state;
        }
    }

    fn done(&self, health: &Health, elapsed: Duration) {
        self.bar.finish_and_clear();
        // Piped: a line only when the wait was reported (the release was not ready at once).
        if !self.terminal && !self.last.borrow().is_empty() {
            let (ready, desired) = health.counts();
            terminal::stderr(&format!("ready     {}: {ready}/{desired} after {}s\n", self.name, elapsed.as_secs()));
        }
    }

    fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

/// The stage's verify commands, in order; the first failure stops.
fn verify(project: &Project, stage: &Stage) -> Result<()> {
    let env = hooks::environment(stage, None)?;
    for (i, command) in stage.verify.iter().enumerate() {
        let spinner = spinner(format!("verifying {} ({}/{})", stage.name, i + 1, stage.verify.len()));
        let result = spinner.suspend(|| {
            hooks::run(&project.dir, command, &env, &format!("verify command {} of stage `{}`", i + 1, stage.name))
        });
        spinner.finish_and_clear();
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

/// A spinner on stderr when it is a terminal; nothing otherwise.
fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// One line per release: what happened.
pub fn outcomes_text(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    for o in outcomes {
        let line = match &o.status {
            Status::Deployed(Some(revision)) => {
                format!("{NAME}deployed{NAME:#}  {}/{} (revision {revision})", o.stage, o.release)
            }
            Status::Deployed(None) => {
                format!("{NAME}deployed{NAME:#}  {}/{} (by the deploy command)", o.stage, o.release)
            }
            Status::Unchanged => format!("unchanged {}/{}", o.stage, o.release),
            Status::Failed => format!("{}failed{:#}    {}/{}", terminal::ERROR, terminal::ERROR, o.stage, o.release),
            Status::NotAttempted => format!("not attempted {}/{}", o.stage, o.release),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// A deploy that failed, with what was and was not deployed.
pub fn deploy_failed(command: &str, err: Error, outcomes: &[Outcome]) -> Error {
    let mut details = vec![Detail::Nested(err.to_string(), err.details())];
    let deployed: Vec<String> = outcomes
        .iter()
        .filter(|o| matches!(o.status, Status::Deployed(_)))
        .map(|o| format!("{}/{}", o.stage, o.release))
        .collect();
    if !deployed.is_empty() {
        details.push(Detail::Note(format!("deployed before the failure: {}", deployed.join(", "))));
    }
    let skipped: Vec<String> = outcomes
        .iter()
        .filter(|o| o.status == Status::NotAttempted)
        .map(|o| format!("{}/{}", o.stage, o.release))
        .collect();
    if !skipped.is_empty() {
        details.push(Detail::Note(format!("not attempted: {}", skipped.join(", "))));
    }
    details.push(Detail::Help(
        "helm keeps a failed release at its new revision unless the stage's helmArgs include --atomic \
         (--rollback-on-failure in Helm 4; either is spelled for the helm in use); `helm history` shows it \
         and `helm rollback` returns to the previous one"
            .into(),
    ));
    Error::Failed { headline: format!("{command} failed"), details }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_revision_comes_from_helms_output() {
        let out = "Release \"web\" has been upgraded. Happy Helming!\nNAME: web\nLAST DEPLOYED: now\nNAMESPACE: a\nSTATUS: deployed\nREVISION: 4\nTEST SUITE: None\n";
        assert_eq!(revision(out), Some(4));
        assert_eq!(revision("nothing"), None);
    }
}
