//! What a command asks of the pipeline for one stage, and the programs it runs with.

use crate::compare::render::LiveState;
use crate::config::stages::{Project, Stage, Target};
use crate::error::Result;
use crate::system::helm::Helm;
use crate::system::kube::Kubectl;

use super::gates::Gate;

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
}

/// One stage through the pipeline, as a command asks for it.
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

/// The programs a deploy needs, found once.
pub struct Pipeline<'p> {
    pub project: &'p Project,
    pub helm: Helm,
    pub kubectl: Kubectl,
}

/// A stage checked for a deploy: what the deploy changes per release, and the gates that do
/// not need a person (cluster pin, Secrets).
pub struct Checked {
    pub states: Vec<LiveState>,
    pub gates: Vec<Gate>,
}

impl<'p> Pipeline<'p> {
    pub fn new(project: &'p Project) -> Result<Pipeline<'p>> {
        Ok(Pipeline { project, helm: Helm::locate()?, kubectl: Kubectl::locate()? })
    }
}
