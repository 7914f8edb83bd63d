//! A problem located in a file the user wrote (file:line:col, what, note, help).

use std::fmt;
use std::path::{Path, PathBuf};

/// A problem located in a file the user wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line and column; `None` when the problem concerns the whole file.
    pub position: Option<(u64, u64)>,
    pub message: String,
    /// Context that helps locate the problem (e.g. which stage a path was resolved for).
    pub note: Option<String>,
    /// What would be right.
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(file: &Path, position: Option<(u64, u64)>, message: impl Into<String>) -> Self {
        Self { file: file.to_path_buf(), position, message: message.into(), note: None, help: None }
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// `file:line:col` (or just `file`).
    pub fn location(&self) -> String {
        match self.position {
            Some((line, col)) => format!("{}:{line}:{col}", self.file.display()),
            None => self.file.display().to_string(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location(), self.message)
    }
}
