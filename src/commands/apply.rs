//! `helm envs apply`: every stage in promotion order, each through its gates, stopping at the
//! first failure with a summary of what was deployed, what failed and what was not attempted.

use std::fmt::Write as _;
use std::io::IsTerminal as _;

use serde_json::{Value, json};

use crate::cli::ApplyArgs;
use crate::deploy::{Outcome, Record, Status};
use crate::error::{Detail, Error, Result};
use crate::helm::Helm;
use crate::kube::Kubectl;
use crate::output::BOLD;
use crate::stages::{Approval, Project, Target};

use super::upgrade::{check_stage, deploy_failed, deploy_gated, emit, gate, lock, outcomes_text};

pub fn run(project: &Project, args: &ApplyArgs) -> Result<u8> {
    let releases = project.select_releases(args.release.as_deref())?;
    let deploy = &args.deploy;
    // A stage needing approval that cannot be given would stop the run halfway: refuse first.
    let unattended = !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal());
    if !deploy.dry_run && !deploy.yes && unattended {
        let needing: Vec<&str> =
            project.stages.iter().filter(|s| s.approval == Approval::Required).map(|s| s.name.as_str()).collect();
        if !needing.is_empty() {
            return Err(Error::Refused {
                headline: format!("refused: stage {} requires approval", needing.join(", ")),
                details: vec![Detail::Help(
                    "pass --yes, or run on a terminal to confirm at a prompt; nothing was deployed".into(),
                )],
            });
        }
    }
    let _lock = lock(project, deploy, "apply")?;
    let (helm, kubectl) = (Helm::locate()?, Kubectl::locate()?);

    let mut text = String::new();
    let mut stages_json: Vec<Value> = Vec::new();
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut stopped: Option<Error> = None;
    for stage in &project.stages {
        let targets: Vec<Target> = releases.iter().map(|r| project.target(stage, r)).collect();
        if stopped.is_some() {
            outcomes.extend(not_attempted(&targets));
            continue;
        }
        let _ = writeln!(text, "{BOLD}== {} =={BOLD:#}", stage.name);
        let mut stage_json = json!({"stage": stage.name});
        let result = check_stage(project, &helm, &kubectl, stage, &targets, deploy.show_secrets).and_then(|checked| {
            let action = format!("Deploy stage {}?", stage.name);
            gate(stage, &targets, checked, deploy, false, true, &action, &mut text, &mut stage_json)
        });
        let needs = match result {
            Ok(needs) => needs,
            Err(err) => {
                outcomes.extend(not_attempted(&targets));
                stages_json.push(stage_json);
                stopped = Some(err);
                continue;
            }
        };
        let record = Record::new(stage, format!("helm-envs: apply (stage {})", stage.name), None);
        let (stage_outcomes, error) = deploy_gated(project, &helm, stage, &targets, &needs, deploy, &record);
        if !deploy.dry_run {
            text.push_str(&outcomes_text(&stage_outcomes));
        }
        stage_json["outcomes"] = stage_outcomes.iter().map(Outcome::json).collect();
        stages_json.push(stage_json);
        outcomes.extend(stage_outcomes);
        if let Some(err) = error {
            stopped = Some(deploy_failed("apply", err, &[]));
        }
    }

    let _ = writeln!(text, "\n{BOLD}Summary{BOLD:#}");
    text.push_str(&outcomes_text(&outcomes));
    if deploy.dry_run {
        let _ = writeln!(text, "{BOLD}Dry run{BOLD:#}: nothing deployed.");
    }
    let json = json!({
        "command": "apply",
        "stages": stages_json,
        "outcomes": outcomes.iter().map(Outcome::json).collect::<Vec<_>>(),
    });
    let result = match &stopped {
        Some(Error::Refused { .. }) => "refused",
        Some(_) => "failed",
        None if deploy.dry_run => "dry-run",
        None => "deployed",
    };
    emit(deploy, &text, &json, result);
    match stopped {
        None => Ok(0),
        Some(err) => Err(summarised(err, &outcomes)),
    }
}

fn not_attempted(targets: &[Target]) -> Vec<Outcome> {
    targets
        .iter()
        .map(|t| Outcome { stage: t.stage.name.clone(), release: t.release.name.clone(), status: Status::NotAttempted })
        .collect()
}

/// The error that stopped the run, with what was deployed and what was not attempted.
fn summarised(err: Error, outcomes: &[Outcome]) -> Error {
    let list = |wanted: fn(&Status) -> bool| -> String {
        let names: Vec<String> =
            outcomes.iter().filter(|o| wanted(&o.status)).map(|o| format!("{}/{}", o.stage, o.release)).collect();
        if names.is_empty() { "none".into() } else { names.join(", ") }
    };
    let summary = vec![
        Detail::Note(format!("deployed: {}", list(|s| matches!(s, Status::Deployed(_))))),
        Detail::Note(format!("failed: {}", list(|s| *s == Status::Failed))),
        Detail::Note(format!("not attempted: {}", list(|s| *s == Status::NotAttempted))),
    ];
    match err {
        Error::Refused { headline, mut details } => {
            details.retain(|d| !matches!(d, Detail::Help(h) if h == "nothing was written or deployed"));
            details.extend(summary);
            Error::Refused { headline, details }
        }
        other => {
            let headline = other.to_string();
            let mut details = other.details();
            details.extend(summary);
            Error::Failed { headline, details }
        }
    }
}
