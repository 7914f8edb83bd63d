//! Reading a project's stages and clusters to report on them: diff, drift, status, and what `init`
//! infers from a project's layout. Reads only.

pub mod diff;
pub mod drift;
pub mod scaffold;
pub mod status;
