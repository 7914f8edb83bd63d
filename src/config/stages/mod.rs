//! The stages file (`helm-envs.yaml`): finding it, reading it, validating it, and resolving
//! each (stage, release) pair into what helm needs.

use std::path::{Path, PathBuf};

use crate::config::yaml;
use crate::error::{Error, Result};

mod file;
mod model;
pub mod needs;
mod validate;

use file::RawProject;
pub use file::{Approval, ArgoSync, Isolation, OnFailure, ProvidedSecret, json_schema};
pub use model::*;
pub(crate) use validate::is_dns_label;
use validate::{Checker, invalid, unreadable, with_schema_help};

pub const FILE_NAME: &str = "helm-envs.yaml";

/// The stages file: `explicit` when given, else `helm-envs.yaml` in `start` or its nearest parent.
pub fn locate(explicit: Option<&Path>, start: &Path) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(model::normalize(&model::absolute(path, start)));
    }
    let mut searched = Vec::new();
    for dir in start.ancestors() {
        let candidate = dir.join(FILE_NAME);
        if candidate.is_file() {
            return Ok(candidate);
        }
        searched.push(dir.to_path_buf());
    }
    Err(Error::ConfigNotFound { start: start.to_path_buf(), searched })
}

impl Project {
    /// The stages file `explicit`, or the one found from the current directory, loaded.
    pub fn find(explicit: Option<&Path>) -> Result<Project> {
        let cwd = std::env::current_dir().map_err(Error::io("cannot read the current directory"))?;
        Project::load(&locate(explicit, &cwd)?)
    }

    /// Read and validate a stages file. Every problem found is reported at once.
    pub fn load(file: &Path) -> Result<Project> {
        let text = std::fs::read_to_string(file)
            .map_err(|err| invalid(file, vec![unreadable(file, &err, "the stages file")]))?;
        let raw: RawProject =
            yaml::from_str(&text, file).map_err(|d| invalid(file, vec![with_schema_help(d, &text)]))?;
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut checker = Checker { file, dir: &dir, problems: Vec::new() };
        let project = checker.resolve(raw);
        if checker.problems.is_empty() { Ok(project) } else { Err(invalid(file, checker.problems)) }
    }
}
