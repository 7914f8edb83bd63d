use crate::cli::RenderArgs;
use crate::error::Result;
use crate::helm::Helm;
use crate::output;
use crate::render::{all_or_errors, render_all};
use crate::stages::Project;

pub fn run(project: &Project, args: &RenderArgs) -> Result<()> {
    let stage = project.stage(&args.stage)?;
    let releases = project.select_releases(args.release.as_deref())?;
    let helm = Helm::locate()?;
    let targets: Vec<_> = releases.into_iter().map(|release| project.target(stage, release)).collect();
    let rendered = all_or_errors(render_all(&helm, &targets))?;
    output::stdout(&rendered.concat());
    Ok(())
}
