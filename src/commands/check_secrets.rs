//! `helm envs check-secrets STAGE | --all`: the Secrets gate, as a report.

use crate::cli::{CheckSecretsArgs, ReportFormat};
use crate::compare::secrets::{self, StageReport};
use crate::config::stages::Project;
use crate::error::{EXIT_GATE, Result};
use crate::output::secrets::{json, markdown, text};
use crate::system::helm::Helm;
use crate::system::kube::Kubectl;
use crate::terminal;

pub fn run(project: &Project, args: &CheckSecretsArgs) -> Result<u8> {
    let stages = match &args.stage {
        Some(name) => vec![project.stage(name)?],
        None => project.stages.iter().collect(),
    };
    let releases = project.select_releases(args.release.as_deref())?;
    let (helm, kubectl) = (Helm::locate()?, Kubectl::locate()?);
    let reports = secrets::check(project, &helm, &kubectl, &stages, &releases)?;
    let text = match args.output {
        ReportFormat::Text => text(&reports, args.details),
        ReportFormat::Json => crate::output::json_text(&json(&reports))?,
        ReportFormat::Markdown => markdown(&reports).render(args.max_size),
    };
    terminal::stdout(&text);
    Ok(if reports.iter().all(StageReport::passed) { 0 } else { EXIT_GATE })
}
