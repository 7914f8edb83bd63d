//! `helm envs promote --from A --to B`: show the promotion patch and what deploying B would
//! change, pass the gates, write B's files, deploy B; restore B's files if the deploy fails.

use std::path::PathBuf;

use serde::Serialize;

use crate::cli::PromoteArgs;
use crate::compare::gate::nothing_done;
use crate::config::promotion::{self, Promotion};
use crate::config::stages::{Project, Release, Stage, Target};
use crate::config::values::ValuePath;
use crate::error::{Detail, Error, Result, Usage};
use crate::output;
use crate::output::document::Document;
use crate::output::markdown::DEFAULT_MAX_SIZE;
use crate::output::promotion::{commit_message, patch_text};
use crate::pipeline::deploy::{self, StageDeploy};
use crate::pipeline::gates;
use crate::pipeline::promote::{PromotionCheck, PromotionChecked};
use crate::pipeline::record::Record;
use crate::pipeline::{self, Pipeline, StageRun, writes};
use crate::system::files;
use crate::system::git::Git;
use crate::terminal::{BOLD, note};

use super::deploying::{Terminal, dry_run_line, gate, outcomes_text};

pub fn run(project: &Project, args: &PromoteArgs) -> Result<u8> {
    let (from, to) = (project.stage(&args.from)?, project.stage(&args.to)?);
    if from.name == to.name {
        return Err(Error::Usage(Usage::SameStageTwice(from.name.clone())));
    }
    if args.git_commit && args.deploy.dry_run {
        return Err(Error::Usage(Usage::CommitInDryRun));
    }
    let only = args
        .only
        .iter()
        .map(|p| {
            ValuePath::parse(p)
                .map_err(|why| Error::Usage(Usage::InvalidArgument { argument: format!("--only `{p}`"), why }))
        })
        .collect::<Result<Vec<_>>>()?;
    let releases = project.select_releases(args.release.as_deref())?;
    let plan = promotion::plan(project, from, to, &releases, &only)?;
    for path in &plan.env_specific_only {
        note(&format!("--only {path}: the path is envSpecific (intended to differ per stage) and is never promoted"));
    }
    let promoting = Promoting { project, args, from, to, plan: &plan };
    let mut doc = promoting.document();
    if plan.is_empty() {
        doc.push(&format!(
            "Nothing to promote: {}'s values{} match {}'s outside envSpecific. \
             (`helm envs diff {}` shows whether {} is deployed as configured.)\n",
            to.name,
            if only.is_empty() { "" } else { " at the --only paths" },
            from.name,
            to.name,
            to.name
        ));
        doc.emit("nothing-to-promote");
        return Ok(0);
    }
    promoting.run(&releases, doc)
}

/// One promotion A -> B as the command line asks for it, with its plan.
struct Promoting<'a> {
    project: &'a Project,
    args: &'a PromoteArgs,
    from: &'a Stage,
    to: &'a Stage,
    plan: &'a Promotion<'a>,
}

impl Promoting<'_> {
    /// The report's start: the promotion patch (text, JSON, the Markdown summary).
    fn document(&self) -> Document {
        let Promoting { args, from, to, plan, .. } = self;
        let show_secrets = args.deploy.options().show_secrets;
        let doc =
            Document::new(args.deploy.format(), output::promotion::json(plan, &from.name, &to.name, show_secrets));
        let mut doc = doc.titled(format!("helm envs promote --from {} --to {}", from.name, to.name));
        doc.summarize("From", from.name.clone());
        doc.summarize("To", to.name.clone());
        doc.summarize("Patch", plan.digest.clone());
        doc.summarize("Files", plan.files.iter().map(|f| f.display.clone()).collect::<Vec<_>>().join(", "));
        doc.part("Patch", &self.dry_run_command());
        doc.push(&patch_text(plan, show_secrets));
        doc
    }

    fn dry_run_command(&self) -> String {
        format!("helm envs promote --from {} --to {} --dry-run", self.from.name, self.to.name)
    }

    /// Lock, check and gate the promoted config, write B's files, deploy B, commit.
    fn run(&self, releases: &[&Release], mut doc: Document) -> Result<u8> {
        let Promoting { project, args, from, to, plan } = *self;
        let options = args.deploy.options();
        // Taken before the cluster is asked anything, so a second run fails at once; the files
        // read by the plan are checked again before they are written.
        let _lock = pipeline::lock(project, options, &format!("promote --from {} --to {}", from.name, to.name))?;
        let git = Git::new(&project.dir);
        if args.git_commit {
            git.check(&self.written(), &self.branch())?;
        }

        // The gates judge the promoted config: the edited files as copies, rendered for B's cluster.
        let copies_dir = tempfile::tempdir().map_err(Error::io("cannot create a temporary directory"))?;
        let copies = writes::copies(project, &plan.files, copies_dir.path())?;
        let pipeline = Pipeline::new(project, &Terminal)?;
        let promoted: Vec<Target> =
            releases.iter().map(|r| plan.promoted_target(&project.target(to, r), &copies)).collect();
        let checked = self.check(&pipeline, releases, &promoted)?;
        doc.set("offline", checked.offline);
        doc.part(&format!("What deploying {} changes", to.name), &self.dry_run_command());
        doc.push(&match checked.offline {
            true => format!("\n{BOLD}What the promotion changes in {}'s rendered config{BOLD:#} (offline)\n", to.name),
            false => format!("\n{BOLD}What deploying {} will change{BOLD:#}\n", to.name),
        });
        // What is deployed after the write: B's own files (now edited), the promoted chart version.
        let targets: Vec<Target> = releases
            .iter()
            .zip(&promoted)
            .map(|(r, p)| Target { version: p.version.clone(), ..project.target(to, r) })
            .collect();
        let run = StageRun {
            stage: to,
            targets: &targets,
            options,
            question: format!("Promote {} into {}?", from.name, to.name),
            ask_even_if_unchanged: true,
            summary: checked.offline,
        };
        let needs = match gate(checked.checked, &run, &mut doc, &Terminal).map_err(nothing_done) {
            Ok(needs) => needs,
            Err(err) => {
                doc.emit("refused");
                return Err(err);
            }
        };
        if options.dry_run {
            doc.push(&dry_run_line("nothing written, nothing deployed"));
            doc.emit("dry-run");
            return Ok(0);
        }

        let restore = writes::write(project, &plan.files)?;
        doc.part("Result", &format!("helm envs status --stage {}", to.name));
        for file in &plan.files {
            doc.push(&format!("wrote     {}\n", file.display));
        }
        if args.no_deploy {
            if let Err(err) = self.commit(&git, &mut doc) {
                let written = restore.paths();
                let unrestored = restore.restore();
                return Err(writes::with_restore_report(err, &plan.files, &written, &unrestored));
            }
        } else {
            self.deploy(&pipeline, &run, &needs, restore, &mut doc)?;
            self.commit(&git, &mut doc)?;
        }
        if args.no_deploy {
            doc.push(&format!(
                "{BOLD}Promoted {} into {}'s files{BOLD:#}; not deployed (--no-deploy).\n",
                from.name, to.name
            ));
            doc.emit("written");
        } else {
            doc.push(&format!("{BOLD}Promoted {} into {}.{BOLD:#}\n", from.name, to.name));
            doc.emit("promoted");
        }
        Ok(0)
    }

    /// The automatic gates of the promotion, on B with the promoted config.
    fn check(&self, pipeline: &Pipeline, releases: &[&Release], promoted: &[Target]) -> Result<PromotionChecked> {
        let Promoting { args, from, to, .. } = *self;
        let mut checked = pipeline.check_promotion(&PromotionCheck {
            from,
            to,
            releases,
            promoted,
            check_source: !args.skip_source_check,
            allow_skip: args.allow_skip,
            allow_unhealthy_source: args.allow_unhealthy_source,
            offline_allowed: args.no_deploy,
            show_secrets: args.deploy.options().show_secrets,
        })?;
        if args.no_deploy {
            gates::waive_missing_namespaces(&mut checked.checked.gates, "--no-deploy deploys nothing");
        }
        Ok(checked)
    }

    fn branch(&self) -> String {
        format!("promote/{}-to-{}-{}", self.from.name, self.to.name, self.plan.digest)
    }

    fn written(&self) -> Vec<PathBuf> {
        self.plan.files.iter().map(|f| f.path.clone()).collect()
    }

    /// Deploy B with its files written. The failure rule: files go back only with the cluster;
    /// otherwise they stay with what it runs now.
    fn deploy(
        &self,
        pipeline: &Pipeline,
        run: &StageRun,
        needs: &[bool],
        restore: files::Restore,
        doc: &mut Document,
    ) -> Result<()> {
        let Promoting { from, to, plan, .. } = *self;
        let record = Record::new(
            to,
            format!("helm-envs: promoted {} -> {} (patch {})", from.name, to.name, plan.digest),
            Some(&from.name),
        )
        .with_patch(&plan.digest);
        let StageDeploy { outcomes, error, cluster_unchanged } = pipeline.deploy(run, needs, &record);
        doc.set("outcomes", crate::output::outcomes::json(&outcomes));
        doc.push(&outcomes_text(&outcomes));
        let Some(err) = error else { return Ok(()) };
        let status = if matches!(err, Error::Interrupted { .. }) { "interrupted" } else { "failed" };
        let failed = deploy::deploy_failed("promote", err, &outcomes);
        let failed = if cluster_unchanged {
            let written = restore.paths();
            let unrestored = restore.restore();
            doc.set("filesRestored", unrestored.is_empty());
            writes::with_restore_report(failed, &plan.files, &written, &unrestored)
        } else {
            doc.set("filesRestored", false);
            failed.with_details(files_kept(plan, from, to))
        };
        doc.emit(status);
        Err(failed)
    }

    /// With `--git-commit`: the written files committed on the promotion's branch, and the
    /// pull request's title and body (`--pr-body`).
    fn commit(&self, git: &Git, doc: &mut Document) -> Result<()> {
        let Promoting { args, plan, .. } = *self;
        if !args.git_commit {
            return Ok(());
        }
        let branch = self.branch();
        git.commit_on_branch(&branch, &self.written(), &commit_message(plan))?;
        doc.push(&format!("committed on branch {branch} (now checked out): push it and open a pull request\n"));
        doc.set("branch", &branch);
        if let Some(file) = &args.pr_body {
            let result = if args.no_deploy { "written" } else { "promoted" };
            let title = commit_message(plan).lines().next().unwrap_or_default().to_string();
            let body = doc.markdown(result, DEFAULT_MAX_SIZE);
            files::write_atomic(file, crate::redaction::scrub(&body).as_bytes()).map_err(|e| {
                Error::Other(e.context(format!("cannot write the pull-request body {}", file.display())))
            })?;
            doc.push(&format!("pull request: title \"{title}\", body in {}\n", file.display()));
            doc.set("pullRequest", PullRequest { title: &title, body_file: file });
        }
        Ok(())
    }
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

/// `pullRequest` in `promote -o json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PullRequest<'a> {
    title: &'a str,
    body_file: &'a std::path::Path,
}
