//! `helm envs diff STAGE` (a stage as deployed against its config: Helm's record of each
//! release, or the live objects of a stage Argo CD deploys) and `helm envs diff --from A --to B`
//! (two stages' config, documented differences apart from undocumented ones).

use std::io::Write as _;

use crate::cli::{DiffArgs, DiffFormat};
use crate::compare::diff::{self, IgnorePattern};
use crate::config::stages::Project;
use crate::error::{EXIT_DIFFERENCES, Error, Result, Usage};
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
        (Some(name), _, _) => (None, project.stage(name)?),
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
