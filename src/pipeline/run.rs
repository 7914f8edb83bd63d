//! What a command asks of the pipeline for one stage, and the programs it runs with.

use std::time::Duration;

use crate::compare::render::LiveState;
use crate::config::stages::{Project, Stage, Target};
use crate::error::Result;
use crate::system::helm::Helm;
use crate::system::kube::Kubectl;

use crate::compare::gate::Gate;

/// How a command wants the stage deployed (from the command line).
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Evaluate everything and stop before writing or deploying.
    pub dry_run: bool,
    /// Approve stages with `approval: required` without a prompt.
    pub yes: bool,
    pub show_secrets: bool,
    /// Lines of context around each change in the manifest diff.
    pub context: usize,
    /// `--override-freeze`: deploy while a freeze window of the stage holds.
    pub override_freeze: bool,
}

/// One stage through the pipeline, as a command asks for it.
#[derive(Clone)]
pub struct StageRun<'a> {
    pub stage: &'a Stage,
    /// What a deploy installs, release by release.
    pub targets: &'a [Target<'a>],
    pub options: Options,
    /// The approval prompt's question.
    pub question: String,
    /// Ask for approval even when nothing would be deployed (a promotion writes the stage's
    /// files anyway; `exec` does not know what its command changes).
    pub ask_even_if_unchanged: bool,
    /// One line per changed resource instead of the field and line diff.
    pub summary: bool,
}

impl<'a> StageRun<'a> {
    /// A stage deployed as configured (`upgrade`, `apply`): approval is asked only when there
    /// is something to deploy.
    pub fn deploy(stage: &'a Stage, targets: &'a [Target<'a>], options: Options) -> StageRun<'a> {
        StageRun {
            stage,
            targets,
            options,
            question: format!("Deploy stage {}?", stage.name),
            ask_even_if_unchanged: false,
            summary: false,
        }
    }
}

/// The programs a deploy needs, found once, and where it reports what it is doing.
pub struct Pipeline<'p> {
    pub project: &'p Project,
    pub helm: Helm,
    pub kubectl: Kubectl,
    pub reporter: &'p dyn Reporter,
}

/// How the pipeline tells the person running it what it is doing while it works. The command
/// provides it: a spinner on a terminal, plain lines when piped, or nothing. The pipeline itself
/// never writes to the terminal or reads from it.
pub trait Reporter: Sync {
    /// Something the user should know that is not an error (`note: ...` on stderr).
    fn note(&self, message: &str);
    /// A step that takes a while starts (`deploying web to dev`); it ends when the handle drops.
    fn step(&self, message: String) -> Box<dyn Step + '_>;
    /// The readiness wait of `name` (`dev/web`) starts; it ends when the handle drops.
    fn wait(&self, name: String) -> Box<dyn Wait + '_>;
}

/// A step in progress.
pub trait Step {
    /// Run `work` with the progress display out of the way (a user's command prints to the
    /// terminal meanwhile).
    fn suspend(&self, work: &mut dyn FnMut());
}

/// A readiness wait in progress.
pub trait Wait {
    /// The wait goes on: `state` is the counts and the first reason (`1/3 ready (ImagePullBackOff)`).
    fn show(&self, state: &str, elapsed: Duration);
    /// The release is ready.
    fn ready(&self, ready: u64, desired: u64, elapsed: Duration);
}

/// A stage checked for a deploy: what the deploy changes per release, and the gates that do
/// not need a person (cluster pin, Secrets).
pub struct Checked {
    pub states: Vec<LiveState>,
    pub gates: Vec<Gate>,
}

impl<'p> Pipeline<'p> {
    pub fn new(project: &'p Project, reporter: &'p dyn Reporter) -> Result<Pipeline<'p>> {
        Ok(Pipeline { project, helm: Helm::locate()?, kubectl: Kubectl::locate()?, reporter })
    }
}
