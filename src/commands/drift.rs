//! `helm envs drift`: every render and cluster read in parallel (the stages' config offline, and
//! one job per stage for its cluster), judged by [`crate::compare::drift`], printed as a table
//! grouped by stage then kind of drift, or as JSON.

use crate::cli::{DriftArgs, ReportFormat};
use crate::config::stages::{Project, Stage};
use crate::error::{EXIT_DIFFERENCES, Error, Result};
use crate::inspect::drift::{self, Options};
use crate::output::drift::{TextOptions, json, markdown, text};
use crate::terminal;

pub fn run(project: &Project, args: &DriftArgs) -> Result<u8> {
    let stages: Vec<&Stage> = match &args.stage {
        Some(name) => vec![project.stage(name)?],
        None => project.stages.iter().collect(),
    };
    let options = Options {
        stages,
        releases: project.select_releases(args.release.as_deref())?,
        live: args.live,
        documented: args.documented,
        show_secrets: args.show_secrets,
    };
    let outcome = drift::find(project, &options)?;
    let shown = TextOptions { details: args.details, live: args.live, documented: args.documented };
    let text = match args.output {
        ReportFormat::Text => text(&outcome, &shown),
        ReportFormat::Json => crate::output::json_text(&json(&outcome))?,
        ReportFormat::Markdown => markdown(&outcome, &shown).render(args.max_size),
    };
    terminal::stdout(&text);
    if outcome.stages.iter().all(|(_, unchecked)| unchecked.is_some()) {
        let names: Vec<&str> = outcome.stages.iter().map(|(s, _)| s.name.as_str()).collect();
        return Err(Error::StagesUnread {
            what: format!("no stage's cluster could be checked ({})", names.join(", ")),
        });
    }
    Ok(if outcome.findings.iter().any(|f| f.item.is_drift()) { EXIT_DIFFERENCES } else { 0 })
}
