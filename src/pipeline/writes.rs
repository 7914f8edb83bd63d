//! Writing a promotion's edited values files before its deploy, and putting them back when a
//! later step fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::promotion::FileEdit;
use crate::config::stages::Project;
use crate::config::yaml;
use crate::error::{Detail, Error, Result};
use crate::system::files::{self, Restore};

/// The edited files as temporary copies (original path -> copy under `dir`), so the gates can
/// judge the promoted config before anything is written. The stages file itself is not copied:
/// the promoted chart version is carried by the target.
pub fn copies(project: &Project, edits: &[FileEdit], dir: &Path) -> Result<BTreeMap<PathBuf, PathBuf>> {
    let mut copies = BTreeMap::new();
    for (i, edit) in edits.iter().enumerate().filter(|(_, e)| e.path != project.file) {
        let copy = dir.join(format!("{i}.yaml"));
        std::fs::write(&copy, &edit.after).map_err(Error::io("cannot write a temporary values file"))?;
        yaml::holds_parsed_values(&copy);
        copies.insert(edit.path.clone(), copy);
    }
    Ok(copies)
}

/// Write every edited file atomically; each file must still hold what the plan read.
pub fn write(project: &Project, edits: &[FileEdit]) -> Result<Restore> {
    // Every file first: a read-only one, or one outside the project, refuses the promotion
    // before anything is written.
    for edit in edits {
        if !edit.path.starts_with(&project.dir) && !project.allow_values_outside_project {
            return Err(Error::Refused {
                headline: format!("{} is outside the project; not written", edit.display),
                details: vec![
                    Detail::Note(format!("the project is {}", project.dir.display())),
                    Detail::Help(
                        "move the values file into the project, or set `allowValuesOutsideProject: true` in the \
                         stages file if writing there is meant"
                            .into(),
                    ),
                ],
            });
        }
        files::check_writable(&edit.path).map_err(|err| Error::Failed {
            headline: format!("cannot write {}", edit.display),
            details: vec![Detail::Note(format!("{err:#}")), Detail::Help("nothing was written".into())],
        })?;
    }
    let mut restore = Restore::default();
    for edit in edits {
        let stopped = match std::fs::read_to_string(&edit.path) {
            Ok(current) if current == edit.before => None,
            Ok(_) => Some(Error::Failed {
                headline: format!("{} changed while the promotion was being prepared", edit.display),
                details: vec![Detail::Help("run the promotion again".into())],
            }),
            Err(err) => Some(Error::Failed {
                headline: format!("cannot read {} again before writing it", edit.display),
                details: vec![
                    Detail::Cause(err.to_string()),
                    Detail::Help("check the file, then run the promotion again".into()),
                ],
            }),
        };
        let stopped = stopped.or_else(|| {
            files::write_atomic(&edit.path, edit.after.as_bytes())
                .err()
                .map(|err| Error::Other(err.context(format!("cannot write {}", edit.display))))
        });
        if let Some(err) = stopped {
            let written = restore.paths();
            let unrestored = restore.restore();
            return Err(with_restore_report(err, edits, &written, &unrestored));
        }
        restore.remember(&edit.path, &edit.before, &edit.after);
    }
    Ok(restore)
}

/// Add to an error what became of the files the promotion had written (`written`).
pub fn with_restore_report(
    err: Error,
    edits: &[FileEdit],
    written: &[PathBuf],
    unrestored: &[(PathBuf, anyhow::Error)],
) -> Error {
    let mut details = Vec::new();
    if written.is_empty() {
        details.push(Detail::Note("no file was written: nothing of the promotion was kept".into()));
    } else if unrestored.is_empty() {
        let names: Vec<&str> = edits.iter().filter(|f| written.contains(&f.path)).map(|f| f.display.as_str()).collect();
        details.push(Detail::Note(format!(
            "{} restored as {}: nothing of the promotion was kept",
            names.join(", "),
            if names.len() == 1 { "it was" } else { "they were" }
        )));
    } else {
        for (path, why) in unrestored {
            details.push(Detail::Note(format!(
                "{} was not restored: {why:#}; check it against version control",
                path.display()
            )));
        }
    }
    err.with_details(details)
}
