//! `helm envs diff STAGE` (installed releases against config) and `helm envs diff --from A
//! --to B` (two stages' config, documented differences apart from undocumented ones).

use std::io::Write as _;

use crate::cli::{DiffArgs, DiffFormat};
use crate::compare::diff::{self, IgnorePattern};
use crate::config::stages::{Project, Stage};
use crate::error::{Detail, EXIT_DIFFERENCES, Error, Result, Usage};
use crate::inspect::diff::Query;
use crate::output::report;
use crate::system::helm::Helm;
use crate::terminal;

pub fn run(project: &Project, args: &DiffArgs) -> Result<u8> {
    let ignore = args
        .ignore
        .iter()
        .map(|p| IgnorePattern::parse(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|why| Error::Usage(Usage::InvalidArgument { argument: "--ignore".into(), why }))?;
    let options = diff::Options { ignore, show_secrets: args.show_secrets };
    let releases = project.select_releases(args.release.as_deref())?;
    // The stages asked for, checked before helm is looked for.
    let stages = match (&args.stage, &args.from, &args.to) {
        (Some(name), _, _) => (None, live_by_helm(project.stage(name)?)?),
        (None, Some(from), Some(to)) => {
            let (from_stage, to_stage) = (project.stage(from)?, project.stage(to)?);
            if from == to {
                return Err(Error::Usage(Usage::SameStageTwice(from.clone())));
            }
            (Some(from_stage), to_stage)
        }
        _ => {
            return Err(Error::Usage(Usage::NoStageToDiff));
        }
    };
    let helm = Helm::locate()?;
    let query = Query { project, helm: &helm, releases: &releases, options: &options };
    let mut report = match stages {
        (None, stage) => query.live(stage)?,
        (Some(from), to) => query.between(from, to)?,
    };

    report.ignored = args.ignore.clone();
    for u in &report.unmanaged {
        let _ = writeln!(
            anstream::stderr(),
            "{NOTE}note{NOTE:#}: release `{}` is installed in stage {} (namespace {}) but is not in {}; it was not diffed",
            u.release,
            u.stage,
            u.namespace,
            project.file.display(),
            NOTE = terminal::NOTE,
        );
    }
    let changes = report.has_changes();
    let text = match args.output {
        DiffFormat::Text => report::text(&report, args.context),
        DiffFormat::Summary => report::summary(&report),
        DiffFormat::Json => crate::output::json_text(&report::json(&report))?,
        DiffFormat::Markdown => {
            let show = |release: &str| match (&args.stage, &args.from, &args.to) {
                (Some(stage), _, _) => format!("helm envs diff {stage} --release {release}"),
                (_, Some(from), Some(to)) => format!("helm envs diff --from {from} --to {to} --release {release}"),
                _ => String::new(),
            };
            report::markdown(report, args.context, &show).render(args.max_size)
        }
    };
    terminal::stdout(&text);
    Ok(if args.detailed_exitcode && changes { EXIT_DIFFERENCES } else { 0 })
}

/// `diff STAGE` compares with Helm's record of each release; a stage Argo CD deploys keeps none.
fn live_by_helm(stage: &Stage) -> Result<&Stage> {
    if stage.argocd.is_none() {
        return Ok(stage);
    }
    Err(Error::Failed {
        headline: format!(
            "cannot diff stage `{}` against its cluster: Argo CD deploys it and keeps no Helm record",
            stage.name
        ),
        details: vec![Detail::Help(format!(
            "Argo CD's own comparison of its objects with the config: `helm envs drift --stage {0}` (objects out of \
             sync, the Applications as the stages file generates them) or `argocd app diff`; what a promotion would \
             change: `helm envs diff --from PREVIOUS --to {0}`",
            stage.name
        ))],
    })
}
