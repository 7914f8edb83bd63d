//! `helm envs upgrade STAGE`: deploy a stage's current config behind its gates (cluster pin,
//! Secrets, approval).

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::cli::UpgradeArgs;
use crate::compare::diff;
use crate::compare::gate::nothing_done;
use crate::config::promotion::promotion_into;
use crate::config::stages::{Project, Release, Stage, Target};
use crate::error::{Detail, Error, Result};
use crate::inspect::diff::{Query, Report, Sections};
use crate::output::document::{Document, Head};
use crate::output::report;
use crate::pipeline::deploy::{self, StageDeploy};
use crate::pipeline::record::Record;
use crate::pipeline::{self, Pipeline, StageRun};
use crate::system::git::Git;
use crate::system::parallel::joined;

use super::deploying::{Terminal, dry_run_line, gate, outcomes_json, outcomes_text, push_without_argocd};

pub fn run(project: &Project, args: &UpgradeArgs) -> Result<u8> {
    let stage = project.stage(&args.stage)?;
    let releases = project.select_releases(args.release.as_deref())?;
    match (stage.argocd.is_some(), args.push) {
        (true, true) => return push_to_argocd(project, stage, &releases, args),
        (true, false) => pipeline::deployed_by_helm(stage)?,
        (false, true) => return Err(push_without_argocd(stage)),
        (false, false) => {}
    }
    let options = args.deploy.options();
    let _lock = pipeline::lock(project, options, &format!("upgrade {}", stage.name))?;
    let pipeline = Pipeline::new(project, &Terminal)?;
    let targets: Vec<Target> = project.cluster_targets(stage, &releases);
    let run = StageRun::deploy(stage, &targets, options);
    let checked = pipeline.check(stage, &targets, &options)?;
    let mut doc = Document::new(args.deploy.format(), Head { command: "upgrade", stage: Some(&stage.name) })
        .titled(format!("helm envs upgrade {}", stage.name));
    doc.summarize("Stage", stage.name.clone());
    doc.part(&format!("What deploying {} changes", stage.name), &format!("helm envs diff {}", stage.name));
    let approved = match gate(checked, &run, &mut doc, &Terminal).map_err(nothing_done) {
        Ok(approved) => approved,
        Err(err) => {
            doc.emit("refused");
            return Err(err);
        }
    };
    let record = Record::new(stage, format!("helm-envs: upgrade of stage {}", stage.name), None)
        .with_overrides(&approved.overrides);
    let StageDeploy { outcomes, error, .. } = pipeline.deploy(&run, &approved.needs, &record);
    doc.set("outcomes", outcomes_json(&outcomes));
    doc.part("Result", &format!("helm envs status --stage {}", stage.name));
    if options.dry_run {
        doc.push(&dry_run_line("nothing deployed"));
    } else {
        doc.push(&outcomes_text(&outcomes));
    }
    doc.emit(match (&error, options.dry_run) {
        (Some(Error::Interrupted { .. }), _) => "interrupted",
        (Some(_), _) => "failed",
        (None, true) => "dry-run",
        (None, false) => "deployed",
    });
    match error {
        Some(err) => Err(deploy::deploy_failed("upgrade", err, &outcomes)),
        None => Ok(0),
    }
}

/// A stage Argo CD deploys: its files as committed are the deploy. HEAD is pushed to the branch
/// its Applications follow, behind the cluster gates and approval, then Argo CD is waited for.
fn push_to_argocd(project: &Project, stage: &Stage, releases: &[&Release], args: &UpgradeArgs) -> Result<u8> {
    let options = args.deploy.options();
    let _lock = pipeline::lock(project, options, &format!("upgrade {} --push", stage.name))?;
    let targets: Vec<Target> = project.cluster_targets(stage, releases);
    let git = Git::new(&project.dir);
    let files: BTreeSet<PathBuf> = targets.iter().flat_map(|t| t.values_files.iter().map(|f| f.path.clone())).collect();
    let dirty = git.uncommitted(&files.into_iter().collect::<Vec<_>>())?;
    if !dirty.trim().is_empty() {
        return Err(Error::Failed {
            headline: format!("upgrade {} --push: the stage's values files have uncommitted changes", stage.name),
            details: vec![
                Detail::Output(dirty.trim_end().to_string()),
                Detail::Help("commit them first: the pushed commit is what Argo CD deploys; nothing was pushed".into()),
            ],
        });
    }
    let pipeline = Pipeline::new(project, &Terminal)?;
    let mut doc = Document::new(args.deploy.format(), Head { command: "upgrade", stage: Some(&stage.name) })
        .titled(format!("helm envs upgrade {} --push", stage.name));
    doc.summarize("Stage", stage.name.clone());
    // What Argo CD's sync of the config changes: the live objects against it.
    let diff_options = diff::Options { ignore: Vec::new(), show_secrets: options.show_secrets };
    let query = Query { project, helm: &pipeline.helm, releases, options: &diff_options };
    let (report, checked) = std::thread::scope(|scope| {
        let report = scope.spawn(|| query.live(stage));
        (joined(report), pipeline.check(stage, &targets, &options))
    });
    let (report, mut gates) = (report?, checked?.gates);
    doc.part(&format!("What deploying {} changes", stage.name), &format!("helm envs diff {}", stage.name));
    doc.push(&report::text(&report, options.context));
    doc.set("diff", report::json(&report));
    doc.part(&format!("Gates for {}", stage.name), &format!("helm envs upgrade {} --push --dry-run", stage.name));
    doc.push(&crate::output::gates::text(stage, &gates));
    if let Some(refused) = pipeline::gates::refusal(stage, &gates) {
        doc.set("gates", crate::output::gates::json(&gates));
        doc.emit("refused");
        return Err(refused);
    }
    if !options.dry_run {
        doc.show_so_far();
        let question = format!("Push {}'s config for Argo CD to deploy?", stage.name);
        let approval = pipeline::gates::approval(stage, options.yes, &question, &Terminal);
        if let Ok(approval) = &approval {
            doc.push(&crate::output::gates::line(approval));
        }
        gates.push(approval?);
    }
    doc.set("gates", crate::output::gates::json(&gates));
    if let Some(refused) = pipeline::gates::refusal(stage, &gates) {
        doc.emit("refused");
        return Err(refused);
    }
    if options.dry_run {
        doc.push(&dry_run_line("nothing pushed"));
        doc.emit("dry-run");
        return Ok(0);
    }
    let record = merged_promotion(&git, stage, &report)
        .unwrap_or_else(|| Record::new(stage, format!("helm-envs: upgrade of stage {}", stage.name), None));
    let StageDeploy { outcomes, error, .. } = pipeline.deploy_by_argocd(stage, &targets, &git, &record);
    doc.set("outcomes", outcomes_json(&outcomes));
    doc.part("Result", &format!("helm envs status --stage {}", stage.name));
    doc.push(&outcomes_text(&outcomes));
    doc.emit(match &error {
        Some(Error::Interrupted { .. }) => "interrupted",
        Some(_) => "failed",
        None => "deployed",
    });
    match error {
        Some(err) => Err(deploy::deploy_failed("upgrade", err, &outcomes)),
        None => Ok(0),
    }
}

/// A promotion into `stage` merged as a pull request since the commit Argo CD ran there before
/// HEAD: the deploy of HEAD is recorded as that promotion (the Event names the stage it came
/// from and its patch), as when `promote --push` deploys it. `None` when there is none, or the
/// commit Argo CD ran is not in this clone.
fn merged_promotion(git: &Git, stage: &Stage, report: &Report) -> Option<Record> {
    let head = git.head().ok()?;
    let verdicts = report.releases.iter().filter_map(|release| match &release.sections {
        Sections::Live { argocd: Some(application), .. } => application.verdict.as_ref(),
        _ => None,
    });
    let before = verdicts.flat_map(|v| v.synced.iter().rev().find(|commit| **commit != head)).next()?;
    let commits = git.log(&format!("{before}..{head}"), 1000).ok()?;
    commits.iter().find_map(|commit| {
        let (from, patch) = promotion_into(&commit.message, &stage.name)?;
        let description = format!("helm-envs: promoted {from} -> {} (patch {patch}, merged)", stage.name);
        Some(Record::new(stage, description, Some(from)).with_patch(patch))
    })
}
