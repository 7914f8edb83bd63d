use crate::cli::RenderArgs;
use crate::compare::render::render_all;
use crate::config::stages::Project;
use crate::error::Result;
use crate::system::helm::Helm;
use crate::system::parallel::all_or_errors;
use crate::terminal;

pub fn run(project: &Project, args: &RenderArgs) -> Result<()> {
    let stage = project.stage(&args.stage)?;
    let releases = project.select_releases(args.release.as_deref())?;
    let helm = Helm::locate()?;
    let targets: Vec<_> = releases.into_iter().map(|release| project.target(stage, release)).collect();
    let rendered = all_or_errors(render_all(&helm, &targets))?;
    terminal::stdout(&rendered.concat());
    Ok(())
}
