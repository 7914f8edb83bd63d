//! `helm envs init`: write a stages file for the values layout a project already has. It asks
//! nothing: it prints what it inferred and what the user must fill in (contexts, namespaces).

use std::path::Path;

use crate::cli::InitArgs;
use crate::config::stages;
use crate::error::{Detail, Error, Result};
use crate::inspect::scaffold;
use crate::output::scaffold::{Written, report};
use crate::system::files;
use crate::terminal;

pub fn run(config: Option<&Path>, args: &InitArgs) -> Result<u8> {
    let cwd = std::env::current_dir().map_err(Error::io("cannot read the current directory"))?;
    let file = config.map_or_else(|| cwd.join(stages::FILE_NAME), |c| cwd.join(c));
    let root = file.parent().map(Path::to_path_buf).unwrap_or(cwd);
    if file.exists() && !args.force {
        return Err(Error::Failed {
            headline: format!("{} already exists", file.display()),
            details: vec![Detail::Help(
                "edit it (`helm envs list` shows what it defines), or pass --force to replace it".into(),
            )],
        });
    }
    let inference = scaffold::infer(&root)?;
    let missing: Vec<_> = inference.missing_values(&root).into_iter().map(|m| (m.path, m.header)).collect();
    let created = files::create_all(&missing).map_err(Error::Other)?;
    // The suggestions come from loading the file as it would be written without them, which
    // also validates it; nothing stays behind when that or the write fails.
    let suggested = scaffold::env_specific_suggestions(&root, &inference.stages_file(&[])).and_then(|suggestions| {
        let text = inference.stages_file(&suggestions.listed);
        match args.force {
            true => files::write_atomic(&file, text.as_bytes()),
            false => files::create_new(&file, text.as_bytes()),
        }
        .map_err(|err| Error::Other(err.context(format!("cannot write {}", file.display()))))?;
        Ok(suggestions)
    });
    let suggestions = suggested.inspect_err(|_| files::remove_created(&created))?;
    let written = Written { file: &file, root: &root, created: &created, suggestions: &suggestions };
    terminal::stdout(&report(&inference, &written));
    Ok(0)
}
