//! `helm envs apply`: every stage in promotion order, each through its gates, stopping at the
//! first failure with a summary of what was deployed, what failed and what was not attempted.

use std::io::IsTerminal as _;

use serde_json::Value;

use crate::cli::ApplyArgs;
use crate::config::stages::{Approval, Project, Target};
use crate::error::{Detail, Error, Result};
use crate::output::document::{Document, Head};
use crate::pipeline::deploy::{Outcome, StageDeploy, Status, deploy_failed};
use crate::pipeline::record::Record;
use crate::pipeline::{self, Pipeline, StageRun};
use crate::system::interrupt;
use crate::terminal::BOLD;

use super::deploying::{Terminal, dry_run_line, gate, outcomes_json, outcomes_text};

pub fn run(project: &Project, args: &ApplyArgs) -> Result<u8> {
    let releases = project.select_releases(args.release.as_deref())?;
    project.stages.iter().try_for_each(pipeline::deployed_by_helm)?;
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
    let options = deploy.options();
    let _lock = pipeline::lock(project, options, "apply")?;
    let pipeline = Pipeline::new(project, &Terminal)?;

    let mut doc = Document::new(deploy.format(), Head { command: "apply", stage: None }).titled("helm envs apply");
    let mut stages_json: Vec<Value> = Vec::new();
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut stopped: Option<Error> = None;
    for stage in &project.stages {
        let targets: Vec<Target> = project.cluster_targets(stage, &releases);
        if stopped.is_none() {
            stopped = interrupt::check(Vec::new).err();
        }
        if stopped.is_some() {
            outcomes.extend(not_attempted(&targets));
            continue;
        }
        doc.part(&format!("What deploying {} changes", stage.name), &format!("helm envs diff {}", stage.name));
        doc.push(&format!("{BOLD}== {} =={BOLD:#}\n", stage.name));
        doc.begin_section(StageSection { stage: &stage.name });
        // One line per changed resource: the stages follow one another in one report.
        let run = StageRun { summary: true, ..StageRun::deploy(stage, &targets, options) };
        let (stage_outcomes, error) = deploy_stage(&pipeline, &run, &mut doc);
        stages_json.push(doc.end_section());
        outcomes.extend(stage_outcomes);
        stopped = error;
    }

    doc.part("Summary", "helm envs status");
    doc.push(&format!("\n{BOLD}Summary{BOLD:#}\n"));
    doc.push(&outcomes_text(&outcomes));
    if options.dry_run {
        doc.push(&dry_run_line("nothing deployed"));
    }
    doc.set("stages", Value::Array(stages_json));
    doc.set("outcomes", outcomes_json(&outcomes));
    doc.emit(match &stopped {
        Some(Error::Refused { .. }) => "refused",
        Some(Error::Interrupted { .. }) => "interrupted",
        Some(_) => "failed",
        None if options.dry_run => "dry-run",
        None => "deployed",
    });
    match stopped {
        None => Ok(0),
        Some(err) => Err(summarised(err, &outcomes)),
    }
}

/// One stage through its gates and deploy: its outcomes, and the error that stops the run.
fn deploy_stage(pipeline: &Pipeline, run: &StageRun, doc: &mut Document) -> (Vec<Outcome>, Option<Error>) {
    let (stage, options) = (run.stage, run.options);
    let approved = match pipeline.check(stage, run.targets, &options).and_then(|c| gate(c, run, doc, &Terminal)) {
        Ok(approved) => approved,
        Err(err) => return (not_attempted(run.targets), Some(err)),
    };
    let record = Record::new(stage, format!("helm-envs: apply (stage {})", stage.name), None)
        .with_overrides(&approved.overrides);
    let StageDeploy { outcomes, error, .. } = pipeline.deploy(run, &approved.needs, &record);
    if !options.dry_run {
        doc.push(&outcomes_text(&outcomes));
    }
    doc.set("outcomes", outcomes_json(&outcomes));
    let error = error.map(|err| match err {
        Error::Interrupted { .. } => err,
        err => deploy_failed("apply", err, &[]),
    });
    (outcomes, error)
}

fn not_attempted(targets: &[Target]) -> Vec<Outcome> {
    targets.iter().map(|t| Outcome::new(t, Status::NotAttempted)).collect()
}

/// The error that stopped the run, with what was deployed and what was not attempted.
fn summarised(err: Error, outcomes: &[Outcome]) -> Error {
    let list = |wanted: fn(&Outcome) -> bool| -> String {
        let names: Vec<String> = outcomes.iter().filter(|o| wanted(o)).map(Outcome::place).collect();
        if names.is_empty() { "none".into() } else { names.join(", ") }
    };
    let mut summary = vec![
        Detail::Note(format!("deployed: {}", list(|o| matches!(o.status, Status::Deployed(_)) && o.undone.is_none()))),
        Detail::Note(format!("failed: {}", list(|o| o.status == Status::Failed))),
        Detail::Note(format!("not attempted: {}", list(|o| o.status == Status::NotAttempted))),
    ];
    if outcomes.iter().any(|o| o.undone.is_some()) {
        summary.push(Detail::Note(format!("taken back (onFailure: rollback): {}", list(|o| o.undone.is_some()))));
    }
    err.with_details(summary)
}

/// The first field of a stage's section in `apply -o json`.
#[derive(serde::Serialize)]
struct StageSection<'a> {
    stage: &'a str,
}
