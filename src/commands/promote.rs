//! `helm envs promote --from A --to B`: show the promotion patch and what deploying B would
//! change, pass the gates, write B's files, deploy B; restore B's files if the deploy fails.

use std::path::PathBuf;

use serde::Serialize;

use crate::cli::PromoteArgs;
use crate::compare::gate::nothing_done;
use crate::config::promotion::{self, Promotion};
use crate::config::stages::{Project, Release, Stage};
use crate::config::values::ValuePath;
use crate::error::{Error, Result, Usage};
use crate::output;
use crate::output::document::Document;
use crate::output::markdown::DEFAULT_MAX_SIZE;
use crate::output::promotion::{commit_message, patch_text};
use crate::pipeline::gates;
use crate::pipeline::promote::{Commit, Deploy, Promote, Promoted, PromotionCheck, PromotionChecked};
use crate::pipeline::{self, Pipeline, StageRun};
use crate::system::files;
use crate::system::git::Git;
use crate::terminal::{BOLD, note};

use super::deploying::{Terminal, dry_run_line, gate, outcomes_json, outcomes_text, push_without_argocd};

pub fn run(project: &Project, args: &PromoteArgs) -> Result<u8> {
    let (from, to) = (project.stage(&args.from)?, project.stage(&args.to)?);
    if from.name == to.name {
        return Err(Error::Usage(Usage::SameStageTwice(from.name.clone())));
    }
    if args.git_commit && args.deploy.dry_run {
        return Err(Error::Usage(Usage::CommitInDryRun));
    }
    // Into a stage Argo CD deploys, the deploy is a pushed commit Argo CD takes.
    match (to.argocd.is_some(), args.push) {
        (true, false) if !args.no_deploy => pipeline::deployed_by_helm(to)?,
        (false, true) => return Err(push_without_argocd(to)),
        _ => {}
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
        note(&format!(
            "--only {path}: the path is envSpecific (intended to differ per stage) or kept in a stage's encrypted values, and is never promoted"
        ));
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

impl<'a> Promoting<'a> {
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

        let pipeline = Pipeline::new(project, &Terminal)?;
        let checked = self.check(&pipeline, releases)?;
        doc.set("offline", checked.offline);
        doc.part(&format!("What deploying {} changes", to.name), &self.dry_run_command());
        doc.push(&match (checked.offline, to.argocd.is_some()) {
            (true, _) => {
                format!("\n{BOLD}What the promotion changes in {}'s rendered config{BOLD:#} (offline)\n", to.name)
            }
            (false, true) => format!(
                "\n{BOLD}What Argo CD's sync of the promotion will change in {}{BOLD:#} (its live objects)\n",
                to.name
            ),
            (false, false) => format!("\n{BOLD}What deploying {} will change{BOLD:#}\n", to.name),
        });
        let run = StageRun {
            stage: to,
            targets: &checked.targets,
            options,
            question: format!("Promote {} into {}?", from.name, to.name),
            ask_even_if_unchanged: true,
            summary: checked.offline,
        };
        let approved = match gate(checked.checked, &run, &mut doc, &Terminal).map_err(nothing_done) {
            Ok(approved) => approved,
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

        let commit =
            args.git_commit.then(|| Commit { git: &git, branch: self.branch(), message: commit_message(plan) });
        let deploy =
            (!args.no_deploy).then_some(Deploy { run: &run, needs: &approved.needs, overrides: &approved.overrides });
        let promoted = pipeline.promote(&Promote { from, plan, deploy, commit });
        self.report(promoted, &mut doc)
    }

    /// The end of the report: what was written, deployed and committed, and the result.
    fn report(&self, promoted: Promoted, doc: &mut Document) -> Result<u8> {
        let Promoting { args, from, to, .. } = *self;
        if !promoted.written.is_empty() {
            doc.part("Result", &format!("helm envs status --stage {}", to.name));
        }
        for file in &promoted.written {
            doc.push(&format!("wrote     {file}\n"));
        }
        if let Some(outcomes) = &promoted.outcomes {
            doc.set("outcomes", outcomes_json(outcomes));
            doc.push(&outcomes_text(outcomes));
        }
        if let Some(restored) = promoted.files_restored {
            doc.set("filesRestored", restored);
        }
        if let Some(err) = promoted.error {
            doc.emit(if matches!(err, Error::Interrupted { .. }) { "interrupted" } else { "failed" });
            return Err(err);
        }
        if let Some(branch) = &promoted.branch {
            doc.push(&match to.argocd.as_ref().filter(|_| args.push) {
                Some(argocd) => format!(
                    "committed on branch {branch} (now checked out) and pushed to {} of {}\n",
                    argocd.revision, argocd.repo_url
                ),
                None => format!("committed on branch {branch} (now checked out): push it and open a pull request\n"),
            });
            doc.set("branch", branch);
            if let Some(file) = &args.pr_body {
                self.pull_request_body(file, doc)?;
            }
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
    fn check(&self, pipeline: &Pipeline<'a>, releases: &'a [&'a Release]) -> Result<PromotionChecked<'a>> {
        let Promoting { args, from, to, plan, .. } = *self;
        let mut checked = pipeline.check_promotion(&PromotionCheck {
            from,
            to,
            releases,
            plan,
            check_source: !args.skip_source_check,
            allow_skip: args.allow_skip,
            allow_unhealthy_source: args.allow_unhealthy_source,
            offline_allowed: args.no_deploy,
            options: args.deploy.options(),
            override_soak: args.override_soak,
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

    /// `--pr-body`: the pull request's title (the commit's subject) and body (the report as
    /// Markdown) written for the CI job that opens it.
    fn pull_request_body(&self, file: &std::path::Path, doc: &mut Document) -> Result<()> {
        let result = if self.args.no_deploy { "written" } else { "promoted" };
        let title = commit_message(self.plan).lines().next().unwrap_or_default().to_string();
        let body = doc.markdown(result, DEFAULT_MAX_SIZE);
        files::write_atomic(file, crate::redaction::scrub(&body).as_bytes())
            .map_err(|e| Error::Other(e.context(format!("cannot write the pull-request body {}", file.display()))))?;
        doc.push(&format!("pull request: title \"{title}\", body in {}\n", file.display()));
        doc.set("pullRequest", PullRequest { title: &title, body_file: file });
        Ok(())
    }
}

/// `pullRequest` in `promote -o json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PullRequest<'a> {
    title: &'a str,
    body_file: &'a std::path::Path,
}
