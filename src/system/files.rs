//! Writing the user's files safely: atomically (a reader sees the old file or the new one,
//! never half of one), with the file's permissions kept, through symlinks; and one run at a
//! time per project (a lock file).

use sha2::Digest as _;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::error::{Error, Result};

/// Replace `path`'s content with `contents`: a temporary file in the same directory, fsync,
/// rename over the original, fsync of the directory. A symlink is resolved, so the link stays
/// and its target is replaced; the original's permissions are kept.
pub fn write_atomic(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    check_writable(path)?;
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let permissions = std::fs::metadata(&real).map(|m| m.permissions()).ok();
    write_through_temp(&real, contents, permissions, Replace::Yes)
}

/// Refuse a file that may not be written. A rename only needs the directory to be writable, so
/// without this a read-only file (0444, or one of another user) would be replaced anyway.
pub fn check_writable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let Ok(metadata) = std::fs::metadata(&real) else { return Ok(()) };
    // root may open anything for writing: the mode bits say what the owner meant.
    if metadata.permissions().readonly() || std::fs::OpenOptions::new().write(true).open(&real).is_err() {
        anyhow::bail!(
            "{} is read-only (mode {:04o}): it is not replaced; make it writable (`chmod u+w`) if the change is meant",
            path.display(),
            metadata.permissions().mode() & 0o7777
        );
    }
    Ok(())
}

/// Create `path` with `contents`, atomically, failing if it exists (even if it appeared
/// while this was being written).
pub fn create_new(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    // A temporary file is private (0600); this one is a project file, to be read and committed.
    let permissions = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o644);
    write_through_temp(path, contents, Some(permissions), Replace::No)
}

/// Create each file with its contents (and the directories it needs), failing if one exists;
/// on a failure the files created so far are removed again. Returns the paths created.
pub fn create_all(files: &[(PathBuf, String)]) -> anyhow::Result<Vec<PathBuf>> {
    let mut created = Vec::new();
    for (path, contents) in files {
        let result = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .map_err(anyhow::Error::new)
            .and_then(|()| create_new(path, contents.as_bytes()));
        if let Err(err) = result {
            remove_created(&created);
            return Err(err.context(format!("cannot create {}", path.display())));
        }
        created.push(path.clone());
    }
    Ok(created)
}

/// Take back files this run created (best effort: they are new and nobody else's).
pub fn remove_created(created: &[PathBuf]) {
    for path in created {
        let _ = std::fs::remove_file(path);
    }
}

#[derive(PartialEq, Eq)]
enum Replace {
    Yes,
    No,
}

/// A temporary file beside `path`, written and flushed, renamed onto `path` (refusing an
/// existing one with `Replace::No`), then the directory flushed: the rename is durable once
/// the directory entry is.
fn write_through_temp(
    path: &Path,
    contents: &[u8],
    permissions: Option<std::fs::Permissions>,
    replace: Replace,
) -> anyhow::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".helm-envs.tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    temp.write_all(contents).with_context(|| format!("cannot write {}", temp.path().display()))?;
    if let Some(permissions) = permissions {
        temp.as_file()
            .set_permissions(permissions)
            .with_context(|| format!("cannot set permissions on {}", temp.path().display()))?;
    }
    temp.as_file().sync_all().with_context(|| format!("cannot flush {}", temp.path().display()))?;
    let (persisted, verb) = match replace {
        Replace::Yes => (temp.persist(path).map(drop), "replace"),
        Replace::No => (temp.persist_noclobber(path).map(drop), "create"),
    };
    persisted.map_err(|e| e.error).with_context(|| format!("cannot {verb} {}", path.display()))?;
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// The project's lock, held until dropped. The file stays (deleting a lock file races with
/// the next taker); what it holds says who has it.
#[derive(Debug)]
pub struct ProjectLock {
    _file: File,
}

/// The held lock's file, for the children that deploy: the lock (flock) belongs to the open
/// file, so a child holding a descriptor of it keeps the project locked until it ends, even
/// when helm-envs itself is killed first.
static HELD: std::sync::Mutex<Option<File>> = std::sync::Mutex::new(None);

/// A descriptor of the project lock this process holds, to give a child (as its stdin).
pub fn lock_for_child() -> Option<File> {
    HELD.lock().ok()?.as_ref()?.try_clone().ok()
}

impl Drop for ProjectLock {
    fn drop(&mut self) {
        if let Ok(mut held) = HELD.lock() {
            *held = None;
        }
    }
}

pub const LOCK_FILE: &str = ".helm-envs.lock";

/// Where a project's lock lives: inside the git directory of the repository holding it, one
/// file per project directory (so it never shows in `git status` nor gets committed by
/// `git add -A`); `.helm-envs.lock` in the project directory outside git.
fn lock_path(dir: &Path) -> PathBuf {
    let Some(git_dir) = git_dir(dir) else { return dir.join(LOCK_FILE) };
    // The same project reached by another path (a symlink) must find the same lock.
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let digest = sha2::Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    let name: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let locks = git_dir.join("helm-envs");
    match std::fs::create_dir_all(&locks) {
        Ok(()) => locks.join(format!("{name}.lock")),
        Err(_) => dir.join(LOCK_FILE),
    }
}

/// The git directory of the work tree holding `dir`: `.git` itself, or where a `.git` file
/// (a linked work tree, a submodule) points.
fn git_dir(dir: &Path) -> Option<PathBuf> {
    let dot_git = dir.ancestors().map(|d| d.join(".git")).find(|p| p.exists())?;
    if dot_git.is_dir() {
        return Some(dot_git);
    }
    let text = std::fs::read_to_string(&dot_git).ok()?;
    let pointed = PathBuf::from(text.strip_prefix("gitdir:")?.trim());
    let pointed = if pointed.is_absolute() { pointed } else { dot_git.parent()?.join(pointed) };
    pointed.is_dir().then_some(pointed)
}

impl ProjectLock {
    /// Take the lock of the project in `dir`, or fail at once if another run holds it.
    pub fn acquire(dir: &Path, purpose: &str) -> Result<ProjectLock> {
        let path = lock_path(dir);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() { "another process".to_string() } else { holder.to_string() };
                return Err(Error::Locked { lock: path, holder });
            }
            Err(std::fs::TryLockError::Error(err)) => {
                return Err(Error::io(format!("cannot lock {}", path.display()))(err));
            }
        }
        let note = format!("helm-envs {purpose} (pid {})\n", std::process::id());
        let written = file.set_len(0).and_then(|()| file.rewind()).and_then(|()| file.write_all(note.as_bytes()));
        written.with_context(|| format!("cannot write the lock file {}", path.display()))?;
        if let Ok(mut held) = HELD.lock() {
            *held = file.try_clone().ok();
        }
        Ok(ProjectLock { _file: file })
    }
}

/// Files to put back as they were if a later step fails.
#[derive(Debug, Default)]
pub struct Restore {
    /// (path, its content before, what was written)
    files: Vec<(PathBuf, String, String)>,
}

impl Restore {
    pub fn remember(&mut self, path: &Path, original: &str, written: &str) {
        self.files.push((path.to_path_buf(), original.to_string(), written.to_string()));
    }

    /// The files written so far.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.files.iter().map(|(path, ..)| path.clone()).collect()
    }

    /// Write every remembered file back; returns the ones that could not be restored. A file
    /// that no longer holds what was written (someone edited it meanwhile) is kept as it is:
    /// restoring it would delete their edit.
    pub fn restore(self) -> Vec<(PathBuf, anyhow::Error)> {
        self.files
            .into_iter()
            .filter_map(|(path, original, written)| {
                let now = std::fs::read_to_string(&path).ok();
                let result = match now {
                    Some(now) if now != written => Err(anyhow::anyhow!(
                        "it was edited while helm-envs ran; kept with that edit (the promotion's lines are in it \
                         too, unless the edit removed them)"
                    )),
                    _ => write_atomic(&path, original.as_bytes()),
                };
                result.err().map(|e| (path, e))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt as _, symlink};

    use super::*;

    #[test]
    fn a_file_edited_since_it_was_written_is_not_restored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (kept, restored) = (dir.path().join("kept.yaml"), dir.path().join("restored.yaml"));
        let mut restore = Restore::default();
        for path in [&kept, &restored] {
            std::fs::write(path, "a: 2\n").expect("write");
            restore.remember(path, "a: 1\n", "a: 2\n");
        }
        std::fs::write(&kept, "a: 2\nb: mine\n").expect("a concurrent edit");
        let unrestored = restore.restore();
        assert_eq!(unrestored.len(), 1);
        assert_eq!(unrestored[0].0, kept);
        assert!(format!("{:#}", unrestored[0].1).contains("edited while helm-envs ran"));
        assert_eq!(std::fs::read_to_string(&kept).expect("read"), "a: 2\nb: mine\n");
        assert_eq!(std::fs::read_to_string(&restored).expect("read"), "a: 1\n");
    }

    #[test]
    fn a_read_only_file_is_not_replaced() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("values.yaml");
        std::fs::write(&path, "a: 1\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).expect("chmod");
        let err = write_atomic(&path, b"a: 2\n").expect_err("refused");
        assert!(format!("{err:#}").contains("is read-only (mode 0444)"), "{err:#}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "a: 1\n");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1, "no temporary file left");
    }

    #[test]
    fn replaces_content_and_keeps_permissions() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("values.yaml");
        std::fs::write(&file, "a: 1\n").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        write_atomic(&file, b"a: 2\n").expect("atomic write");
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "a: 2\n");
        assert_eq!(std::fs::metadata(&file).expect("stat").permissions().mode() & 0o777, 0o640);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).expect("list").collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn a_symlink_stays_a_symlink_and_its_target_changes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("real.yaml");
        let link = dir.path().join("link.yaml");
        std::fs::write(&target, "a: 1\n").expect("write");
        symlink(&target, &link).expect("symlink");
        write_atomic(&link, b"a: 2\n").expect("atomic write");
        assert!(std::fs::symlink_metadata(&link).expect("lstat").file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "a: 2\n");
    }

    #[test]
    fn a_second_lock_fails_at_once_and_names_the_holder() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = ProjectLock::acquire(dir.path(), "promote --from dev --to staging").expect("first lock");
        let err = ProjectLock::acquire(dir.path(), "apply").expect_err("second lock");
        let Error::Locked { holder, .. } = err else { panic!("a lock error, got {err:?}") };
        assert!(holder.contains("promote --from dev --to staging"), "{holder}");
        drop(first);
        ProjectLock::acquire(dir.path(), "apply").expect("free again");
    }
}
