//! Whether each stage's encrypted values files open with that stage's keys only: judged from
//! the recipients in the files and the keys `.sops.yaml` names for them, without decrypting.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::config::stages::{Project, Release, Stage, ValuesFile};

/// One encrypted file of one stage, as read.
pub struct FileKeys<'a> {
    pub stage: &'a str,
    /// The file as the stages file names it.
    pub file: &'a str,
    pub recipients: &'a BTreeSet<String>,
    /// The keys `.sops.yaml` names for the file; `None` without a rule for it.
    pub rule: Option<&'a BTreeSet<String>>,
}

/// What is wrong with who can open a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "camelCase")]
pub enum KeyProblem {
    /// A recipient of the file is a key of other stages: whoever holds it opens this stage's
    /// credentials too.
    #[serde(rename_all = "camelCase")]
    OpensOtherStages { recipient: String, stages: Vec<String> },
    /// The file is encrypted for none of the keys `.sops.yaml` names for it (encrypted before
    /// the rule changed, or by hand for other keys).
    #[serde(rename_all = "camelCase")]
    NotForItsRule { rule: Vec<String> },
}

/// One file's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileVerdict {
    pub stage: String,
    pub file: String,
    pub recipients: Vec<String>,
    pub problems: Vec<KeyProblem>,
}

/// Judge every file against every stage's keys: a stage's keys are what `.sops.yaml` names for
/// its files, or (for a file without a rule) the file's own recipients.
pub fn judge(files: &[FileKeys]) -> Vec<FileVerdict> {
    let mut stage_keys: BTreeMap<&str, BTreeSet<&String>> = BTreeMap::new();
    for file in files {
        stage_keys.entry(file.stage).or_default().extend(file.rule.unwrap_or(file.recipients));
    }
    files
        .iter()
        .map(|file| {
            let mut problems = Vec::new();
            if let Some(rule) = file.rule
                && !rule.is_empty()
                && file.recipients.is_disjoint(rule)
            {
                problems.push(KeyProblem::NotForItsRule { rule: rule.iter().cloned().collect() });
            }
            for recipient in file.recipients {
                let stages: Vec<String> = stage_keys
                    .iter()
                    .filter(|(stage, keys)| **stage != file.stage && keys.contains(recipient))
                    .map(|(stage, _)| stage.to_string())
                    .collect();
                if !stages.is_empty() {
                    problems.push(KeyProblem::OpensOtherStages { recipient: recipient.clone(), stages });
                }
            }
            FileVerdict {
                stage: file.stage.to_string(),
                file: file.file.to_string(),
                recipients: file.recipients.iter().cloned().collect(),
                problems,
            }
        })
        .collect()
}

/// The verdicts on the encrypted files of `stages` (judged against every stage of the project),
/// each file once; files shared by every stage are not judged.
pub fn check(project: &Project, stages: &[&Stage], releases: &[&Release]) -> Vec<FileVerdict> {
    let mut files = Vec::new();
    for stage in &project.stages {
        for release in releases {
            // A file without `{stage}` is every stage's by design: opened by every stage's keys.
            for file in project.target(stage, release).secret_files.into_iter().filter(|f| !f.shared) {
                // Two releases may share a stage's file: judge it once.
                if !files.iter().any(|(s, f): &(&str, ValuesFile)| *s == stage.name && f.path == file.path) {
                    files.push((stage.name.as_str(), file));
                }
            }
        }
    }
    let keys: Vec<FileKeys> = files
        .iter()
        .filter_map(|(stage, file)| {
            let encrypted = project.encrypted(&file.path)?;
            Some(FileKeys {
                stage,
                file: &file.display,
                recipients: &encrypted.recipients,
                rule: encrypted.rule.as_ref(),
            })
        })
        .collect();
    judge(&keys).into_iter().filter(|v| stages.iter().any(|s| s.name == v.stage)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(keys: &[&str]) -> BTreeSet<String> {
        keys.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn a_production_file_that_devs_key_opens_and_a_file_for_none_of_its_rules_keys_are_found() {
        let (dev, prod, stale) = (set(&["age1dev"]), set(&["age1prod", "age1dev"]), set(&["age1old"]));
        let (dev_rule, prod_rule, staging_rule) = (set(&["age1dev"]), set(&["age1prod"]), set(&["age1stg"]));
        let verdicts = judge(&[
            FileKeys { stage: "dev", file: "envs/dev/s.yaml", recipients: &dev, rule: Some(&dev_rule) },
            FileKeys { stage: "staging", file: "envs/staging/s.yaml", recipients: &stale, rule: Some(&staging_rule) },
            FileKeys { stage: "production", file: "envs/production/s.yaml", recipients: &prod, rule: Some(&prod_rule) },
        ]);
        assert!(verdicts[0].problems.is_empty(), "{:?}", verdicts[0]);
        assert_eq!(verdicts[1].problems, [KeyProblem::NotForItsRule { rule: vec!["age1stg".into()] }]);
        assert_eq!(
            verdicts[2].problems,
            [KeyProblem::OpensOtherStages { recipient: "age1dev".into(), stages: vec!["dev".into()] }]
        );
    }

    #[test]
    fn without_rules_a_key_shared_by_two_stages_files_is_found_in_both() {
        let (dev, prod) = (set(&["age1dev", "age1admin"]), set(&["age1prod", "age1admin"]));
        let verdicts = judge(&[
            FileKeys { stage: "dev", file: "d", recipients: &dev, rule: None },
            FileKeys { stage: "production", file: "p", recipients: &prod, rule: None },
        ]);
        for (verdict, other) in verdicts.iter().zip(["production", "dev"]) {
            assert_eq!(
                verdict.problems,
                [KeyProblem::OpensOtherStages { recipient: "age1admin".into(), stages: vec![other.into()] }]
            );
        }
    }
}
