//! `helm envs check-isolation STAGE | --all`: the isolation gate, as a report.

use crate::cli::{CheckIsolationArgs, ListFormat};
use crate::compare::isolation::{self, StageIsolation};
use crate::config::stages::{Project, Stage};
use crate::error::{EXIT_GATE, Error, Result};
use crate::output::isolation::{json, text};
use crate::system::kube::Kubectl;
use crate::terminal;

pub fn run(project: &Project, args: &CheckIsolationArgs) -> Result<u8> {
    let stages: Vec<&Stage> = match &args.stage {
        Some(name) => vec![project.stage(name)?],
        None => project.stages.iter().collect(),
    };
    let reports = isolation::check(&Kubectl::locate()?, project, &stages);
    let text = match args.output {
        ListFormat::Text => text(&reports),
        ListFormat::Json => crate::output::json_text(&json(&reports))?,
    };
    terminal::stdout(&text);
    if reports.iter().all(|r| r.unchecked.is_some()) {
        return Err(Error::StagesUnread { what: "no stage's cluster could be checked".into() });
    }
    Ok(if reports.iter().all(StageIsolation::passed) { 0 } else { EXIT_GATE })
}
