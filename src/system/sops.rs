//! SOPS-encrypted values files: decrypting them with the user's `sops` (the only code that runs
//! it), into memory only, and handing the plain text to helm through named pipes, so that no
//! decrypted byte is ever written to a file.
//!
//! A decrypted file is read once per run and kept in this process's memory until it ends; its
//! values become secrets to `redaction` the moment they are read.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::config::stages::ValuesFile;
use crate::config::yaml;
use crate::error::{Detail, Error, Result};
use crate::redaction;
use crate::system::interrupt;
use crate::terminal;

/// A decrypted file: the text sops printed (what helm reads) and its values (what drift
/// compares and redaction hides).
pub struct Decrypted {
    text: String,
    pub values: Map<String, Value>,
}

/// What this run decrypted, by path.
static DECRYPTED: Mutex<Option<HashMap<PathBuf, Arc<Decrypted>>>> = Mutex::new(None);

/// The decrypted content of an encrypted values file, from this run's memory or from `sops`.
pub fn decrypt(file: &ValuesFile) -> Result<Arc<Decrypted>> {
    let cached =
        DECRYPTED.lock().unwrap_or_else(PoisonError::into_inner).as_ref().and_then(|m| m.get(&file.path).cloned());
    if let Some(decrypted) = cached {
        return Ok(decrypted);
    }
    let text = run_sops(file)?;
    let values = yaml::read_back(&text, &file.path).map_err(|diagnostic| Error::Failed {
        headline: format!("sops decrypted `{}` into something that is not a values file", file.display),
        details: vec![Detail::Diagnostic(diagnostic)],
    })?;
    redaction::decrypted(&values);
    let decrypted = Arc::new(Decrypted { text, values });
    DECRYPTED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashMap::new)
        .insert(file.path.clone(), decrypted.clone());
    Ok(decrypted)
}

/// `$HELM_ENVS_SOPS`, else `sops` on PATH.
fn locate() -> Result<PathBuf> {
    let (wanted, searched) = match std::env::var_os("HELM_ENVS_SOPS").filter(|v| !v.is_empty()) {
        Some(bin) => (bin.clone(), format!("HELM_ENVS_SOPS={}", PathBuf::from(bin).display())),
        None => (OsString::from("sops"), "`sops` on PATH (HELM_ENVS_SOPS is not set)".to_string()),
    };
    which::which(&wanted).map_err(|_| Error::Failed {
        headline: "sops was not found; it is needed to decrypt the release's `secrets` files".into(),
        details: vec![
            Detail::Note(format!("searched: {searched}")),
            Detail::Help(
                "install sops (https://github.com/getsops/sops) and put it on PATH, or set HELM_ENVS_SOPS to its path"
                    .into(),
            ),
        ],
    })
}

fn run_sops(file: &ValuesFile) -> Result<String> {
    let bin = locate()?;
    let args: Vec<OsString> = vec![
        "--decrypt".into(),
        "--input-type".into(),
        "yaml".into(),
        "--output-type".into(),
        "yaml".into(),
        file.path.clone().into(),
    ];
    terminal::debug(&format!("running {} --decrypt {}", bin.display(), file.display));
    let could_not_start =
        |err: std::io::Error| Error::Io { what: format!("could not start {}", bin.display()), source: err };
    let handle = duct::cmd(&bin, args)
        .stdin_null()
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .start()
        .map_err(could_not_start)?;
    let running = interrupt::running(&handle.pids(), interrupt::Child::Tool);
    let out = handle.into_output().map_err(could_not_start)?;
    drop(running);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Failed {
            headline: format!("sops could not decrypt `{}`", file.display),
            details: vec![
                Detail::Cause(redaction::scrub(stderr.trim()).into_owned()),
                Detail::Help(decrypt_help(&stderr)),
            ],
        });
    }
    String::from_utf8(out.stdout).map_err(|_| Error::Failed {
        headline: format!("sops decrypted `{}` into text that is not UTF-8", file.display),
        details: Vec::new(),
    })
}

/// The fix for sops' most common refusals.
fn decrypt_help(stderr: &str) -> String {
    let lower = stderr.to_lowercase();
    if lower.contains("mac mismatch") {
        "the file was changed without sops (its MAC no longer matches): restore it from git, or re-create the \
         value with `sops edit FILE`"
            .into()
    } else if lower.contains("does not match sops' data format") {
        "a value in the file is not encrypted (added or changed without sops): restore it from git, and change \
         values with `sops edit FILE`"
            .into()
    } else if lower.contains("sops metadata not found") {
        "the file is not encrypted: encrypt it with `sops --encrypt --in-place FILE`".into()
    } else {
        "give this machine a key the file is encrypted for (for age: SOPS_AGE_KEY_FILE or SOPS_AGE_KEY; for a \
         cloud KMS: that cloud's credentials), then run the command again"
            .into()
    }
}

/// Decrypted files offered to one helm call, each through a named pipe in a directory only
/// this user can open. A writer thread waits for helm to open its pipe and writes the text;
/// the pipe holds nothing once read, and nothing at all if the run is killed.
pub struct Feed {
    pipes: Vec<(PathBuf, PathBuf)>,
    done: Arc<AtomicBool>,
    writers: Vec<JoinHandle<()>>,
    /// Removed (with the pipes) when the feed is dropped.
    dir: tempfile::TempDir,
}

impl Feed {
    /// Decrypt `files` and make a pipe for each.
    pub fn open(files: &[ValuesFile]) -> Result<Feed> {
        let decrypted = files.iter().map(decrypt).collect::<Result<Vec<_>>>()?;
        let dir = tempfile::Builder::new()
            .prefix("helm-envs-secrets-")
            .tempdir()
            .map_err(Error::io("cannot create a private directory for the decrypted values' pipes"))?;
        let done = Arc::new(AtomicBool::new(false));
        let mut feed = Feed { pipes: Vec::new(), done, writers: Vec::new(), dir };
        for (i, (file, decrypted)) in files.iter().zip(decrypted).enumerate() {
            let pipe = feed.dir.path().join(format!("{i}.yaml"));
            nix::unistd::mkfifo(&pipe, nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR)
                .map_err(|errno| Error::io("cannot create a pipe for decrypted values")(errno.into()))?;
            let (path, done) = (pipe.clone(), feed.done.clone());
            feed.writers.push(std::thread::spawn(move || write_when_opened(&path, &decrypted.text, &done)));
            feed.pipes.push((file.path.clone(), pipe));
        }
        Ok(feed)
    }

    /// helm's arguments with each encrypted file's path replaced by its pipe.
    pub fn substitute(&self, args: Vec<String>) -> Vec<String> {
        args.into_iter()
            .map(|arg| match self.pipes.iter().find(|(file, _)| Path::new(&arg) == file) {
                Some((_, pipe)) => pipe.display().to_string(),
                None => arg,
            })
            .collect()
    }

    /// A command line as people can run it: each encrypted file decrypted by a process
    /// substitution, as the pipe does.
    pub fn display(&self, command: &str) -> String {
        self.pipes.iter().fold(command.to_string(), |command, (file, _)| {
            let file = file.display().to_string();
            command.replace(&file, &format!("<(sops --decrypt {file})"))
        })
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        for writer in self.writers.drain(..) {
            let _ = writer.join();
        }
    }
}

/// Wait for a reader to open `pipe`, then write `text` to it; give up once `done` (helm ended
/// without reading it). A reader that stops early ends the write with an error, ignored.
fn write_when_opened(pipe: &Path, text: &str, done: &AtomicBool) {
    loop {
        // Non-blocking, so that a helm that never opens the pipe cannot hold this thread.
        match std::fs::OpenOptions::new().write(true).custom_flags(nix::libc::O_NONBLOCK).open(pipe) {
            Ok(mut writer) => {
                let blocking = nix::fcntl::fcntl(&writer, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()));
                if blocking.is_ok() {
                    let _ = writer.write_all(text.as_bytes());
                }
                return;
            }
            Err(_) if done.load(Ordering::Relaxed) => return,
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}
