//! `helm envs list`: the stages file resolved.

use crate::cli::{ListArgs, ListFormat};
use crate::config::stages::Project;
use crate::error::Result;
use crate::output::list;
use crate::terminal;

pub fn run(project: &Project, args: &ListArgs) -> Result<()> {
    terminal::stdout(&match args.output {
        ListFormat::Json => crate::output::json_text(&list::json(project))?,
        ListFormat::Text => list::text(project),
    });
    Ok(())
}
