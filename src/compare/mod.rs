//! Rendered manifests against each other and against a cluster: parsing, the resource diff,
//! drift judgments, objects live against applied, the Secret check, who can open encrypted values, and Argo CD's Applications.

pub mod argocd;
pub mod diff;
pub mod drift;
pub mod encryption;
pub mod gate;
pub mod health;
pub mod isolation;
pub mod live;
pub mod manifest;
pub mod render;
pub mod secrets;
