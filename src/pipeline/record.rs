//! How a deploy is recorded: helm's release description and labels, and the Event in the
//! stage's cluster.

use crate::config::fingerprint;
use crate::config::stages::{Stage, Target};

/// The release label that marks a revision whose workloads never became ready (`failed`): helm
/// calls it `deployed`, but it is never a revision to roll back to. Every deploy clears it
/// (helm copies an earlier revision's labels into the next one).
pub const HEALTH_LABEL: &str = "helm-envs/health";

/// How the release metadata, and the Event in the stage's cluster, record the deploy.
#[derive(Clone)]
pub struct Record {
    /// `helm upgrade --description`.
    pub description: String,
    /// Release labels (helm-envs' own and the stage's).
    pub labels: Vec<(String, String)>,
    /// The stage a promotion came from.
    pub promoted_from: Option<String>,
    /// A promotion's patch digest.
    pub patch: Option<String>,
    /// The gates the user overrode with a flag (`freeze`, `soak`).
    pub overrides: Vec<&'static str>,
}

impl Record {
    /// `promoted_from`: the stage the config came from; `None` for a plain upgrade, recorded as
    /// `none` (helm merges a revision's labels with the previous one's, so leaving it out would
    /// keep an older promotion's label).
    pub fn new(stage: &Stage, description: String, promoted_from: Option<&str>) -> Record {
        let mut labels = vec![
            ("helm-envs/stage".to_string(), stage.name.clone()),
            ("helm-envs/promoted-from".to_string(), promoted_from.unwrap_or("none").to_string()),
        ];
        labels.extend(stage.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        Record {
            description,
            labels,
            promoted_from: promoted_from.map(str::to_string),
            patch: None,
            overrides: Vec::new(),
        }
    }

    /// The labels of `target`'s deploy as `revision`: the record's, and the config's
    /// fingerprint with that revision (see `config::fingerprint`); empty, which makes helm drop
    /// the label an earlier revision carried, when there is no fingerprint.
    pub fn labels_for(&self, target: &Target, revision: u64) -> Vec<(String, String)> {
        let config = fingerprint::of(target).map(|f| fingerprint::label(&f, revision)).unwrap_or_default();
        let mut labels = self.labels.clone();
        labels.push((fingerprint::LABEL.to_string(), config));
        labels.push((HEALTH_LABEL.to_string(), String::new()));
        labels
    }

    /// A promotion's patch digest, named in the Event.
    pub fn with_patch(self, digest: &str) -> Record {
        Record { patch: Some(digest.to_string()), ..self }
    }

    /// The gates the user overrode (`--override-freeze`), named in the Event and the release
    /// description.
    pub fn with_overrides(self, overrides: &[&'static str]) -> Record {
        let description = match overrides.is_empty() {
            true => self.description,
            false => format!("{} (overriding {})", self.description, overrides.join(", ")),
        };
        Record { description, overrides: overrides.to_vec(), ..self }
    }
}
