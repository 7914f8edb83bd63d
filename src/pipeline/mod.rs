//! The deploy pipeline, one stage at a time: check (diff against the cluster, cluster pin,
//! isolation, Secrets), gate (show the plan, ask for approval), lock, write the promoted files,
//! deploy, wait until ready, record an Event, verify, and restore the files when the deploy
//! fails.
//!
//! `upgrade`, `promote`, `apply` and `exec --gated` all go through it: a command describes what
//! it wants in a [`StageRun`] and calls [`Pipeline::check`], [`Checked::gate`] and
//! [`Pipeline::deploy`] (and [`writes::write`] between gate and deploy when it edits files).

pub mod deploy;
pub mod events;
pub mod gates;
pub mod promote;
pub mod record;
pub mod run;
pub mod writes;

use crate::compare::diff;
use crate::compare::render::{LiveState, Reading, against_installed, joined, parse_rendered};
use crate::config::stages::{Approval, Project, Stage, Target};
use crate::error::Result;
use crate::inspect::diff::Report;
use crate::output::document::Document;
use crate::output::report;
use crate::system::files::ProjectLock;
use crate::system::interrupt;
use crate::terminal::BOLD;

pub use run::{Checked, Options, Pipeline, StageRun};

use deploy::{Outcome, StageDeploy, Status};
use gates::Gate;
use record::Record;

/// The project lock, unless this is a dry run (which writes nothing).
pub fn lock(project: &Project, options: Options, purpose: &str) -> Result<Option<ProjectLock>> {
    if options.dry_run { Ok(None) } else { ProjectLock::acquire(&project.dir, purpose).map(Some) }
}

impl Pipeline<'_> {
    /// Diff every target against what is installed, check the cluster pin and the Secrets the
    /// config references; the cluster reads run in parallel.
    pub fn check(&self, stage: &Stage, targets: &[Target], show_secrets: bool) -> Result<Checked> {
        let options = diff::Options { ignore: Vec::new(), show_secrets };
        let (states, cluster, isolation, namespaces) = std::thread::scope(|scope| {
            let cluster = scope.spawn(|| gates::cluster(&self.kubectl, stage));
            let isolation = scope.spawn(|| gates::isolation(&self.kubectl, self.project, stage));
            let namespaces = scope.spawn(|| gates::namespaces(&self.kubectl, stage, targets));
            let states = against_installed(
                self.project,
                &self.helm,
                targets,
                &options,
                Reading { history: false, trust_records: true },
            );
            (states, joined(cluster), isolation.join().ok().flatten(), joined(namespaces))
        });
        let states = states?;
        let mut checks: Vec<Gate> = cluster?.into_iter().chain(isolation).chain([namespaces?]).collect();
        let mut manifests = Vec::new();
        for (target, state) in targets.iter().zip(&states) {
            manifests.push((target.release, parse_rendered(&state.rendered, target)?));
        }
        checks.push(gates::secrets(&self.kubectl, stage, &manifests)?);
        Ok(Checked { states, gates: checks })
    }

    /// Deploy the releases of a gated stage that have something to deploy (`needs[i]`), then
    /// run its verify commands; nothing in a dry run. Returns every release's outcome, the
    /// error that stopped the stage, if one did, and whether the cluster is as before.
    pub fn deploy(&self, run: &StageRun, needs: &[bool], record: &Record) -> StageDeploy {
        if run.options.dry_run || !needs.iter().any(|n| *n) {
            let outcomes = run
                .targets
                .iter()
                .zip(needs)
                .map(|(t, needed)| Outcome::new(t, if *needed { Status::NotAttempted } else { Status::Unchanged }))
                .collect();
            return StageDeploy { outcomes, error: None, cluster_unchanged: true };
        }
        self.deploy_releases(run, needs, record)
    }
}

impl Checked {
    /// Show the diff and the gates (text, and JSON `diff` and `gates`), then ask for approval
    /// (not in a dry run); returns which releases have something to deploy. The report so far
    /// is printed before a prompt, so the person approving sees it. A refused gate is an error
    /// (exit 3); the caller prints the report.
    pub fn gate(self, run: &StageRun, doc: &mut Document) -> Result<Vec<bool>> {
        let Checked { states, mut gates } = self;
        let stage = run.stage;
        let needs: Vec<bool> = states.iter().map(LiveState::needs_deploy).collect();
        let diff_report = Report::live(stage, run.targets, states);
        doc.push(&match run.summary {
            true => report::summary(&diff_report),
            false => report::text(&diff_report, run.options.context),
        });
        doc.set("diff", report::json(&diff_report));
        doc.part(&format!("Gates for {}", stage.name), &format!("helm envs upgrade {} --dry-run", stage.name));
        doc.push(&gates::text(stage, &gates));
        doc.set("gates", gates.iter().map(Gate::json).collect());
        if let Some(refused) = gates::refusal(stage, &gates) {
            return Err(refused);
        }
        interrupt::check(nothing_done)?;
        let approval = if !run.ask_even_if_unchanged && !needs.iter().any(|n| *n) {
            Gate::new("approval", true, "not needed: nothing to deploy")
        } else if run.options.dry_run {
            match stage.approval {
                Approval::Required => Gate::new("approval", true, "required; not asked in a dry run"),
                Approval::None => Gate::new("approval", true, "not required"),
            }
        } else {
            doc.show_so_far();
            gates::approval(stage, run.options.yes, &run.question)?
        };
        doc.push(&gates::line(&approval));
        gates.push(approval);
        doc.set("gates", gates.iter().map(Gate::json).collect());
        match gates::refusal(stage, &gates) {
            Some(refused) => Err(refused),
            None => interrupt::check(nothing_done).map(|()| needs),
        }
    }
}

fn nothing_done() -> Vec<crate::error::Detail> {
    vec![crate::error::Detail::Note("stopped before anything was written or deployed".into())]
}

/// The line that ends a dry run's report.
pub fn dry_run_line(what: &str) -> String {
    format!("{BOLD}Dry run{BOLD:#}: {what}.\n")
}
