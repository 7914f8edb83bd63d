//! Rendered output that cannot be read as Kubernetes objects.

/// Rendered output that is not a set of Kubernetes objects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ManifestError {
    /// The template whose output is wrong, when helm said which.
    pub template: Option<String>,
    /// 1-based line in the whole rendered output.
    pub line: usize,
    pub message: String,
}
