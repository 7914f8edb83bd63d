//! The only module that runs git: `promote --git-commit` puts the written files on a new
//! branch, as one commit, ready for a pull request (`--push`: pushed to the branch Argo CD
//! follows); `drift` asks when values lines last changed.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::{Detail, Error, Result};
use crate::terminal;

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
        let dirty = self.uncommitted(files)?;
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

    /// `git status --porcelain` of `files`: empty when each is committed as it is.
    pub fn uncommitted(&self, files: &[PathBuf]) -> Result<String> {
        let mut args = vec!["status".to_string(), "--porcelain".into(), "--".into()];
        args.extend(files.iter().map(|f| f.display().to_string()));
        self.run(&args)
    }

    /// Create `branch` from HEAD, switch to it, and commit exactly `files` with `message`.
    pub fn commit_on_branch(&self, branch: &str, files: &[PathBuf], message: &str) -> Result<()> {
        self.run(&["switch".into(), "--create".into(), branch.into()])?;
        let paths = files.iter().map(|f| f.display().to_string());
        let mut add = vec!["add".to_string(), "--".into()];
        add.extend(paths.clone());
        self.run(&add)?;
        let message = crate::redaction::scrub(message).into_owned();
        let mut commit = vec!["commit".to_string(), "--quiet".into(), "--message".into(), message, "--".into()];
        commit.extend(paths);
        self.run(&commit)?;
        Ok(())
    }

    /// The commit HEAD points at (`git rev-parse HEAD`).
    pub fn head(&self) -> Result<String> {
        Ok(self.run(&["rev-parse".into(), "HEAD".into()])?.trim().to_string())
    }

    /// Push HEAD to `branch` of the repository at `url`, as a fast-forward only: a branch
    /// that moved since is refused by git, never overwritten.
    pub fn push(&self, url: &str, branch: &str) -> Result<()> {
        self.run(&["push".into(), "--quiet".into(), "--".into(), url.into(), format!("HEAD:refs/heads/{branch}")])
            .map(|_| ())
    }

    /// The commits of `range` (`A..B`; or a commit and its ancestors), newest first, at most
    /// `limit`: `git log`.
    pub fn log(&self, range: &str, limit: usize) -> Result<Vec<Logged>> {
        let args = ["log".into(), format!("--max-count={limit}"), "--format=%H%x1f%ct%x1f%B%x1e".into()];
        let out = self.run(&[&args[..], &[range.into(), "--".into()]].concat())?;
        Ok(out
            .split('\x1e')
            .filter_map(|entry| {
                let mut fields = entry.trim_start_matches('\n').splitn(3, '\x1f');
                let (id, time, message) = (fields.next()?, fields.next()?, fields.next()?);
                Some(Logged { id: id.into(), time: time.trim().parse().ok()?, message: message.trim().into() })
            })
            .collect())
    }

    /// `commit`'s files checked out in `dir` (which must not exist), apart from the work tree
    /// and its index: `git worktree add --detach`. [`Git::remove_checkout`] takes it away.
    pub fn checkout_at(&self, commit: &str, dir: &Path) -> Result<()> {
        let dir = dir.display().to_string();
        self.run(&["worktree".into(), "add".into(), "--quiet".into(), "--detach".into(), dir, commit.into()])
            .map(|_| ())
    }

    /// Removes a checkout [`Git::checkout_at`] made, and git's note of it.
    pub fn remove_checkout(&self, dir: &Path) {
        let removed = self.run(&["worktree".into(), "remove".into(), "--force".into(), dir.display().to_string()]);
        if removed.is_err() {
            let _ = self.run(&["worktree".into(), "prune".into()]);
        }
    }

    /// The project directory's path inside its repository (`examples/acme`; empty at the
    /// root): `git rev-parse --show-prefix`.
    pub fn prefix(&self) -> Result<String> {
        Ok(self.run(&["rev-parse".into(), "--show-prefix".into()])?.trim().trim_end_matches('/').to_string())
    }

    /// When each of `lines` (1-based) of `file` last changed, by `git blame`: `None` for a line
    /// not committed yet (the newest change there is). An error when the file is not tracked.
    pub fn last_changed(&self, file: &Path, lines: &[usize]) -> Result<BTreeMap<usize, Option<LineChange>>> {
        let mut args = vec!["blame".to_string(), "--line-porcelain".into()];
        for line in lines {
            args.extend(["-L".into(), format!("{line},{line}")]);
        }
        args.extend(["--".into(), file.display().to_string()]);
        Ok(parse_blame(&self.run(&args)?))
    }

    fn run(&self, args: &[String]) -> Result<String> {
        let command = terminal::command_line("git", args);
        terminal::debug(&format!("running {command} (in {})", self.dir.display()));
        let out = duct::cmd("git", args.iter().map(OsString::from))
            .dir(&self.dir)
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .map_err(Error::io("could not start git"))?;
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

/// A commit as `git log` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub id: String,
    /// Committer time, seconds since the epoch.
    pub time: u64,
    pub message: String,
}

/// The commit that last changed a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineChange {
    /// Abbreviated commit id.
    pub commit: String,
    /// Committer time, seconds since the epoch.
    pub time: i64,
}

/// `git blame --line-porcelain` output: final line number -> the commit that last changed it.
fn parse_blame(output: &str) -> BTreeMap<usize, Option<LineChange>> {
    let mut changes = BTreeMap::new();
    let mut current: Option<(usize, String)> = None;
    for line in output.lines() {
        let mut words = line.split(' ');
        let first = words.next().unwrap_or_default();
        if first.len() == 40 && first.bytes().all(|b| b.is_ascii_hexdigit()) {
            let final_line = words.nth(1).and_then(|n| n.parse().ok());
            current = final_line.map(|n| (n, first.to_string()));
            if let Some((n, commit)) = &current
                && commit.bytes().all(|b| b == b'0')
            {
                changes.insert(*n, None);
            }
        } else if let (Some(time), Some((n, commit))) = (line.strip_prefix("committer-time "), &current)
            && !commit.bytes().all(|b| b == b'0')
        {
            let time = time.trim().parse().unwrap_or_default();
            changes.insert(*n, Some(LineChange { commit: commit[..7].to_string(), time }));
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blame_gives_each_line_its_commit_or_none_when_uncommitted() {
        let output = "\
3b1f0c2d4e5f60718293a4b5c6d7e8f901234567 3 3 1
author A
committer-time 1795689311
filename envs/dev/web.yaml
\ttag: \"2.8.0\"
0000000000000000000000000000000000000000 9 9 1
author Not Committed Yet
committer-time 1795690000
\treplicaCount: 2
";
        let changes = parse_blame(output);
        assert_eq!(changes[&3], Some(LineChange { commit: "3b1f0c2".into(), time: 1_795_689_311 }));
        assert_eq!(changes[&9], None);
    }
}
