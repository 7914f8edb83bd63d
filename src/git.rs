//! The only module that runs git: `promote --git-commit` puts the written files on a new
//! branch, as one commit, ready for a pull request.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::{Detail, Error, Result};
use crate::output;

pub struct Git {
    dir: PathBuf,
}

impl Git {
    /// git in the project directory (which must be inside a work tree).
    pub fn new(dir: &Path) -> Git {
        Git { dir: dir.to_path_buf() }
    }

    /// Before anything is written: a work tree, no uncommitted changes to `files`, no branch
    /// named `branch` yet.
    pub fn check(&self, files: &[PathBuf], branch: &str) -> Result<()> {
        let mut args = vec!["status".to_string(), "--porcelain".into(), "--".into()];
        args.extend(files.iter().map(|f| f.display().to_string()));
        let dirty = self.run(&args)?;
        if !dirty.trim().is_empty() {
            return Err(Error::Failed {
                headline: "--git-commit: the files the promotion writes have uncommitted changes".into(),
                details: vec![
                    Detail::Output(dirty.trim_end().to_string()),
                    Detail::Help(
                        "commit or stash those changes first, so the promotion's commit holds only the promotion"
                            .into(),
                    ),
                ],
            });
        }
        let exists = self.run(&["branch".into(), "--list".into(), branch.into()])?;
        if !exists.trim().is_empty() {
            return Err(Error::Failed {
                headline: format!("--git-commit: branch `{branch}` already exists"),
                details: vec![Detail::Help(
                    "the same promotion was committed before; merge or delete that branch".into(),
                )],
            });
        }
        Ok(())
    }

    /// Create `branch` from HEAD, switch to it, and commit exactly `files` with `message`.
    pub fn commit_on_branch(&self, branch: &str, files: &[PathBuf], message: &str) -> Result<()> {
        self.run(&["switch".into(), "--create".into(), branch.into()])?;
        let paths = files.iter().map(|f| f.display().to_string());
        let mut add = vec!["add".to_string(), "--".into()];
        add.extend(paths.clone());
        self.run(&add)?;
        let mut commit = vec!["commit".to_string(), "--quiet".into(), "--message".into(), message.into(), "--".into()];
        commit.extend(paths);
        self.run(&commit)?;
        Ok(())
    }

    fn run(&self, args: &[String]) -> Result<String> {
        let command = output::command_line("git", args);
        output::debug(&format!("running {command} (in {})", self.dir.display()));
        let out = duct::cmd("git", args.iter().map(OsString::from))
            .dir(&self.dir)
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .map_err(|e| Error::Other(anyhow::Error::new(e).context("could not start git (for --git-commit)")))?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        Err(Error::Failed {
            headline: format!("git failed in {}", self.dir.display()),
            details: vec![
                Detail::Note(format!("command: {command}")),
                Detail::Output(String::from_utf8_lossy(&out.stderr).trim_end().to_string()),
            ],
        })
    }
}
