//! The only code that runs programs (helm, kubectl, git, sops, the stages' hook commands) or writes
//! the user's files, and the signal watch.

pub mod files;
pub mod git;
pub mod helm;
pub mod hooks;
pub mod interrupt;
pub mod kube;
pub mod parallel;
pub mod records;
pub mod slots;
pub mod sops;
