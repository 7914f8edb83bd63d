//! Reading a project's stages and clusters to report on them: drift and status. Reads only.

pub mod drift;
pub mod status;
