//! `helm envs upgrade STAGE`: deploy a stage's current config behind its gates (cluster pin,
//! Secrets, approval).

use crate::cli::UpgradeArgs;
use crate::compare::gate::nothing_done;
use crate::config::stages::{Project, Target};
use crate::error::{Error, Result};
use crate::output::document::{Document, Head};
use crate::pipeline::deploy::{self, StageDeploy};
use crate::pipeline::record::Record;
use crate::pipeline::{self, Pipeline, StageRun};

use super::deploying::{Terminal, dry_run_line, gate, outcomes_json, outcomes_text};

pub fn run(project: &Project, args: &UpgradeArgs) -> Result<u8> {
    let stage = project.stage(&args.stage)?;
    pipeline::deployed_by_helm(stage)?;
    let releases = project.select_releases(args.release.as_deref())?;
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
