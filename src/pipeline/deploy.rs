//! Deploying one stage: each release that has something to deploy, in the order of the stages
//! file, with `helm upgrade --install` (or the stage's own deploy command), then the stage's
//! verify commands. The first failure stops the stage.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use crate::config::stages::{Project, Stage, Target};
use crate::error::{Detail, Error, Result};
use crate::system::helm::Helm;
use crate::system::hooks;
use crate::terminal::{self, NAME};

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

/// How the release metadata records the deploy.
pub struct Record {
    /// `helm upgrade --description`.
    pub description: String,
    /// Release labels (helm-envs' own and the stage's).
    pub labels: Vec<(String, String)>,
}

impl Record {
    /// `promoted_from`: the stage the config came from; `None` for a plain upgrade, recorded as
    /// `none` (helm merges a revision's labels with the previous one's, so leaving it out would
    /// keep an older promotion's label).
    pub fn new(stage: &Stage, description: String, promoted_from: Option<&str>) -> Record {
        let mut labels = vec![
            ("helm-envs/stage".to_string(), stage.name.clone()),
            ("helm-envs/promoted-from".to_string(), promoted_from.unwrap_or("none").to_string()),
        ];
        labels.extend(stage.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        Record { description, labels }
    }
}

/// Deploy the targets of one stage (`needs_deploy[i]`: whether target `i` has anything to
/// deploy), then run the stage's verify commands. Returns every release's outcome, and the
/// error that stopped the stage, if one did.
pub fn stage(
    project: &Project,
    helm: &Helm,
    stage: &Stage,
    targets: &[Target],
    needs_deploy: &[bool],
    record: &Record,
) -> (Vec<Outcome>, Option<Error>) {
    let outcome =
        |target: &Target, status| Outcome { stage: stage.name.clone(), release: target.release.name.clone(), status };
    let mut outcomes = Vec::new();
    let mut failure = None;
    for (target, needed) in targets.iter().zip(needs_deploy) {
        if failure.is_some() {
            outcomes.push(outcome(target, Status::NotAttempted));
            continue;
        }
        if !needed {
            outcomes.push(outcome(target, Status::Unchanged));
            continue;
        }
        let spinner = spinner(format!("deploying {} to {}", target.release.name, stage.name));
        let result = match &stage.deploy_command {
            Some(command) => hooks::environment(stage, Some(target))
                .and_then(|env| {
                    spinner.suspend(|| {
                        hooks::run(
                            &project.dir,
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
            None => helm.upgrade(target, &record.description, &record.labels).map(|out| revision(&out)),
        };
        spinner.finish_and_clear();
        match result {
            Ok(revision) => outcomes.push(outcome(target, Status::Deployed(revision))),
            Err(err) => {
                outcomes.push(outcome(target, Status::Failed));
                failure = Some(err);
            }
        }
    }
    let deployed_any = outcomes.iter().any(|o| matches!(o.status, Status::Deployed(_)));
    if failure.is_none() && deployed_any {
        failure = verify(project, stage).err();
    }
    (outcomes, failure)
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
