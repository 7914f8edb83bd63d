//! What the deploying commands (`upgrade`, `apply`, `promote`, `exec --gated`) share on the
//! terminal's side of the pipeline: the approval prompt, the progress display, and the judged
//! stage shown before approval is asked.

use std::cell::RefCell;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::compare::gate::Verdict;
use crate::config::stages::Stage;
use crate::error::{Detail, Result};
use crate::output::document::Document;
use crate::output::{gates, report};
use crate::pipeline::deploy::{Outcome, Status, Undone};
use crate::pipeline::{Approver, Checked, Reporter, StageRun, Step, Wait};
use crate::system::interrupt;
use crate::terminal::{self, BOLD, ERROR, NAME};

/// The person at the terminal: asked at a prompt on stderr, shown spinners there (or a line per
/// change of state when stderr is not a terminal).
pub struct Terminal;

impl Approver for Terminal {
    fn ask(&self, stage: &Stage, question: &str) -> Result<Option<String>> {
        if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
            return Ok(None);
        }
        let mut err = anstream::stderr();
        let _ = write!(
            err,
            "{BOLD}{question}{BOLD:#} (stage `{}` requires approval). Type `{}` to confirm: ",
            stage.name, stage.name
        );
        let _ = err.flush();
        read_answer().map(Some)
    }
}

/// A line typed at the prompt. Read on a thread of its own, so that Ctrl-C at the prompt
/// stops the run at once (a read of the terminal is not cut short by a signal).
fn read_answer() -> Result<String> {
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut answer = String::new();
        let _ = send.send(std::io::stdin().lock().read_line(&mut answer).map(|_| answer));
    });
    loop {
        interrupt::check(|| {
            vec![Detail::Note("stopped at the approval prompt: nothing was written or deployed".into())]
        })?;
        match receive.recv_timeout(Duration::from_millis(100)) {
            Ok(answer) => return answer.map_err(crate::error::Error::io("cannot read the confirmation")),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(String::new()),
        }
    }
}

impl Reporter for Terminal {
    fn note(&self, message: &str) {
        terminal::note(message);
    }

    fn step(&self, message: String) -> Box<dyn Step + '_> {
        Box::new(Spinner(spinner(message)))
    }

    fn wait(&self, name: String) -> Box<dyn Wait + '_> {
        let bar = spinner(format!("waiting for {name} to be ready"));
        Box::new(Waiting { name, bar, terminal: std::io::stderr().is_terminal(), last: RefCell::default() })
    }
}

/// Every spinner of the run, drawn together: releases that need nothing of each other deploy
/// and wait side by side, each with its line.
fn spinners() -> &'static MultiProgress {
    static SPINNERS: OnceLock<MultiProgress> = OnceLock::new();
    SPINNERS.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// A spinner on stderr when it is a terminal; nothing otherwise.
fn spinner(message: String) -> ProgressBar {
    let bar = spinners().add(ProgressBar::new_spinner());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

struct Spinner(ProgressBar);

impl Step for Spinner {
    fn suspend(&self, work: &mut dyn FnMut()) {
        self.0.suspend(work);
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.0.finish_and_clear();
        spinners().remove(&self.0);
    }
}

/// Piped, a wait shorter than this prints nothing: logs show the waits that matter.
const QUIET: Duration = Duration::from_secs(5);

/// A readiness wait: a spinner on a terminal, else one line on stderr per change of state.
struct Waiting {
    name: String,
    bar: ProgressBar,
    terminal: bool,
    last: RefCell<String>,
}

impl Wait for Waiting {
    fn show(&self, state: &str, elapsed: Duration) {
        if self.terminal {
            self.bar.set_message(format!("waiting for {}: {state}", self.name));
        } else if elapsed >= QUIET && *self.last.borrow() != state {
            terminal::stderr(&format!("waiting   {}: {state}\n", self.name));
            *self.last.borrow_mut() = state.to_string();
        }
    }

    fn ready(&self, ready: u64, desired: u64, elapsed: Duration) {
        self.bar.finish_and_clear();
        // Piped: a line only when the wait was reported (the release was not ready at once).
        if !self.terminal && !self.last.borrow().is_empty() {
            terminal::stderr(&format!("ready     {}: {ready}/{desired} after {}s\n", self.name, elapsed.as_secs()));
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
        spinners().remove(&self.bar);
    }
}

/// Show what deploying the stage changes and its gates (text, and JSON `diff` and `gates`),
/// then ask for approval; returns which releases have something to deploy. The report so far
/// is printed before a prompt, so the person approving sees it. A refused gate is an error
/// (exit 3); the caller prints the report.
pub fn gate(checked: Checked, run: &StageRun, doc: &mut Document, approver: &dyn Approver) -> Result<Approved> {
    let stage = run.stage;
    let mut judged = checked.judge(run);
    doc.push(&match run.summary {
        true => report::summary(&judged.report),
        false => report::text(&judged.report, run.options.context),
    });
    doc.set("diff", report::json(&judged.report));
    doc.part(&format!("Gates for {}", stage.name), &format!("helm envs upgrade {} --dry-run", stage.name));
    doc.push(&gates::text(stage, &judged.gates));
    doc.set("gates", gates::json(&judged.gates));
    if let Some(refused) = judged.refusal(stage) {
        return Err(refused);
    }
    if judged.goes_on(run) {
        doc.show_so_far();
    }
    let result = judged.approve(run, approver);
    if let Some(approval) = judged.gates.last().filter(|g| g.name == "approval") {
        doc.push(&gates::line(approval));
    }
    doc.set("gates", gates::json(&judged.gates));
    let overrides = judged.gates.iter().filter(|g| g.verdict == Verdict::Overridden).map(|g| g.name).collect();
    result.map(|needs| Approved { needs, overrides })
}

/// A stage that passed its gates: the releases with something to deploy, and the gates the
/// user overrode (recorded with the deploy).
pub struct Approved {
    pub needs: Vec<bool>,
    pub overrides: Vec<&'static str>,
}

/// The line that ends a dry run's report.
pub fn dry_run_line(what: &str) -> String {
    format!("{BOLD}Dry run{BOLD:#}: {what}.\n")
}

/// One line per release: what happened.
pub fn outcomes_text(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    for o in outcomes {
        let place = o.place();
        let line = match &o.status {
            Status::Deployed(Some(revision)) => {
                format!("{NAME}deployed{NAME:#}  {place} (revision {revision})")
            }
            Status::Deployed(None) => match &o.commit {
                Some(commit) => format!(
                    "{NAME}deployed{NAME:#}  {place} (Argo CD runs commit {})",
                    commit.get(..12).unwrap_or(commit)
                ),
                None => format!("{NAME}deployed{NAME:#}  {place} (by the deploy command)"),
            },
            Status::Unchanged => format!("unchanged {place}"),
            Status::Failed => format!("{ERROR}failed{ERROR:#}    {place}"),
            Status::NotAttempted => match &o.blocked_by {
                Some(need) => {
                    format!("not attempted {place} (it needs {need}, which is not deployed and ready)")
                }
                None => format!("not attempted {place}"),
            },
        };
        out.push_str(&line);
        match o.undone {
            Some(Undone::RolledBack(to)) => out.push_str(&format!(", then rolled back to revision {to}")),
            Some(Undone::Uninstalled) => out.push_str(", then uninstalled"),
            None => {}
        }
        out.push('\n');
    }
    out
}

/// What a deploy did to each release, as JSON: `outcomes: [{stage, release, status, revision}]`
/// with `rolledBackTo` or `uninstalled` when the failure rule took a release back.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutcomeJson<'a> {
    stage: &'a str,
    /// The cluster, in a stage on several.
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<&'a str>,
    release: &'a str,
    /// `deployed`, `unchanged`, `failed`, `not-attempted`.
    status: &'static str,
    revision: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rolled_back_to: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uninstalled: Option<bool>,
    /// `not-attempted` because this release, which it needs, was not deployed.
    #[serde(skip_serializing_if = "Option::is_none")]
    blocked_by: Option<&'a str>,
    /// A stage Argo CD deploys: the commit it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    commit: Option<&'a str>,
}

pub fn outcomes_json(outcomes: &[Outcome]) -> Vec<OutcomeJson<'_>> {
    outcomes
        .iter()
        .map(|outcome| {
            let (status, revision) = match outcome.status {
                Status::Deployed(revision) => ("deployed", revision),
                Status::Unchanged => ("unchanged", None),
                Status::Failed => ("failed", None),
                Status::NotAttempted => ("not-attempted", None),
            };
            OutcomeJson {
                stage: &outcome.stage,
                cluster: outcome.cluster.as_deref(),
                release: &outcome.release,
                status,
                revision,
                rolled_back_to: match outcome.undone {
                    Some(Undone::RolledBack(to)) => Some(to),
                    _ => None,
                },
                uninstalled: (outcome.undone == Some(Undone::Uninstalled)).then_some(true),
                blocked_by: outcome.blocked_by.as_deref(),
                commit: outcome.commit.as_deref(),
            }
        })
        .collect()
}

/// `--push` sends a commit to Argo CD: a usage error on a stage helm deploys.
pub fn push_without_argocd(stage: &Stage) -> crate::error::Error {
    crate::error::Error::Usage(crate::error::Usage::InvalidArgument {
        argument: "--push".into(),
        why: format!("stage `{}` is deployed by helm, not by Argo CD: --push is for stages with `argocd`", stage.name),
    })
}
