//! What a deploy did to each release, as JSON: `outcomes: [{stage, release, status, revision}]`
//! with `rolledBackTo` or `uninstalled` when the failure rule took a release back.

use serde::Serialize;

use crate::pipeline::deploy::{Outcome, Status, Undone};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutcomeJson<'a> {
    stage: &'a str,
    release: &'a str,
    /// `deployed`, `unchanged`, `failed`, `not-attempted`.
    status: &'static str,
    revision: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rolled_back_to: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uninstalled: Option<bool>,
}

pub fn json(outcomes: &[Outcome]) -> Vec<OutcomeJson<'_>> {
    outcomes
        .iter()
        .map(|outcome| {
            let (status, revision) = match outcome.status {
                Status::Deployed(revision) => ("deployed", revision),
                Status::Unchanged => ("unchanged", None),
                Status::Failed => ("failed", None),
                Status::NotAttempted => ("not-attempted", None),
            };
            OutcomeJson {
                stage: &outcome.stage,
                release: &outcome.release,
                status,
                revision,
                rolled_back_to: match outcome.undone {
                    Some(Undone::RolledBack(to)) => Some(to),
                    _ => None,
                },
                uninstalled: (outcome.undone == Some(Undone::Uninstalled)).then_some(true),
            }
        })
        .collect()
}
