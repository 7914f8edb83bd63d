//! `helm envs status`: per stage and release, what is deployed (revision, chart, app version,
//! helm status, when), whether it is the config, and the promotion it came from. Every query of
//! every stage runs in parallel; a stage whose cluster cannot be read is shown as such.

use crate::cli::{ReportFormat, StatusArgs};
use crate::config::stages::{Project, Stage};
use crate::error::{Error, Result};
use crate::inspect::status::{Readers, Row, stage_rows};
use crate::output::status::{json, markdown, text};
use crate::system::helm::Helm;
use crate::system::kube::Kubectl;
use crate::system::parallel::joined;
use crate::terminal;

pub fn run(project: &Project, args: &StatusArgs) -> Result<u8> {
    let releases = project.select_releases(args.release.as_deref())?;
    // A stage on several clusters is read, and shown, cluster by cluster.
    let stages: Vec<&Stage> = match &args.stage {
        Some(name) => project.stage(name)?.clusters().iter().collect(),
        None => project.stages.iter().flat_map(Stage::clusters).collect(),
    };
    let (helm, kubectl) = (Helm::locate()?, Kubectl::locate()?);
    let readers = Readers { helm: &helm, kubectl: &kubectl };
    let results: Vec<Result<Vec<Row>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = stages
            .iter()
            .map(|stage| {
                let (readers, releases) = (&readers, &releases);
                scope.spawn(move || stage_rows(project, readers, stage, releases))
            })
            .collect();
        handles.into_iter().map(joined).collect()
    });
    let text = match args.output {
        ReportFormat::Text => text(&stages, &results),
        ReportFormat::Json => crate::output::json_text(&json(&stages, &results))?,
        ReportFormat::Markdown => markdown(&stages, &results).render(args.max_size),
    };
    terminal::stdout(&text);
    // A stage that could not be read is not a stage in order: say so in the exit status too.
    let unread: Vec<String> = stages.iter().zip(&results).filter(|(_, r)| r.is_err()).map(|(s, _)| s.label()).collect();
    if !unread.is_empty() {
        return Err(Error::StagesUnread {
            what: match unread.len() == stages.len() {
                true => "no stage's releases could be read".into(),
                false => format!("the releases of stage {} could not be read", unread.join(", ")),
            },
        });
    }
    Ok(0)
}
