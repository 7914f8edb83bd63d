//! Formatting results for people and programs.

pub mod document;
pub mod drift;
pub mod gates;
pub mod isolation;
pub mod list;
pub mod markdown;
pub mod promotion;
pub mod report;
pub mod scaffold;
pub mod secrets;
pub mod status;

use serde::Serialize;

use crate::compare::argocd::Application;
use crate::error::{Error, Result};

/// The version of every JSON document helm-envs prints (docs/ci.md): bumped only for
/// incompatible changes; fields may be added within a version.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// Every JSON document as printed: `schemaVersion` first, then the command's own fields
/// (`body`, a struct that serializes as a map).
#[derive(Serialize)]
pub struct Envelope<'a, B: Serialize> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(flatten)]
    body: &'a B,
}

/// `body` as a JSON document: pretty, in its envelope, ending in a newline, ready for stdout.
pub fn json_text<B: Serialize>(body: &B) -> Result<String> {
    let mut text = serde_json::to_string_pretty(&Envelope { schema_version: JSON_SCHEMA_VERSION, body })
        .map_err(|e| Error::Other(anyhow::Error::new(e).context("could not write the JSON report")))?;
    text.push('\n');
    Ok(text)
}

/// A release's Argo CD Application in JSON (`status`, `diff`): its name, whether Argo CD holds
/// it, and the sync status and commit Argo CD reports.
#[derive(Serialize)]
pub struct ApplicationJson<'a> {
    application: &'a str,
    /// `false`: Argo CD holds no Application of that name.
    exists: bool,
    sync: Option<&'a str>,
    revision: Option<&'a str>,
}

impl<'a> ApplicationJson<'a> {
    pub fn of(application: &'a Application) -> ApplicationJson<'a> {
        let verdict = application.verdict.as_ref();
        ApplicationJson {
            application: &application.name,
            exists: verdict.is_some(),
            sync: verdict.map(|v| v.sync.as_str()),
            revision: verdict.and_then(|v| v.revision.as_deref()),
        }
    }
}
