//! The project's configuration: the stages file, values files and their YAML, layouts, and
//! promotion patches computed from them. Pure: no processes, no writes.

pub mod argocd;
pub mod edit;
pub mod fingerprint;
#[cfg(test)]
pub mod fixture;
pub mod freeze;
pub mod layout;
pub mod promotion;
pub mod recipients;
pub mod stages;
pub mod values;
pub mod yaml;
