//! The Secret check's report: text (one line per Secret, each reference with details) and JSON.

use std::fmt::Write as _;

use std::collections::BTreeSet;

use serde::Serialize;

use crate::compare::encryption::{FileVerdict, KeyProblem};
use crate::compare::secrets::{self, Finding, NamespaceReport, Reference, StageReport};
use crate::output::markdown::{Markdown, Section, table};
use crate::terminal::{self, BOLD, DIM, ERROR, NAME, WARN};

/// One line per Secret (what is wrong, and how many references need it); every reference with
/// `details`.
pub fn text(reports: &[StageReport], details: bool) -> String {
    let mut out = String::new();
    for report in reports {
        let verdict = if report.passed() {
            format!("{NAME}every referenced Secret is present{NAME:#}")
        } else if secrets_present(report) {
            format!("{ERROR}encrypted values open with other keys than the stage's{ERROR:#}")
        } else {
            format!("{ERROR}Secrets are missing{ERROR:#}")
        };
        let _ = writeln!(out, "{BOLD}{}{BOLD:#} {DIM}(context {}){DIM:#}: {verdict}", report.stage, report.context);
        if report.namespaces.is_empty() {
            let _ = writeln!(out, "  no Secret references");
        }
        for namespace in &report.namespaces {
            write_namespace(&mut out, namespace, details);
        }
        write_encrypted(&mut out, &report.stage, &report.encrypted);
    }
    out
}

fn secrets_present(report: &StageReport) -> bool {
    report.namespaces.iter().all(|n| n.missing.is_empty() && n.missing_keys.is_empty())
}

/// Who can open each encrypted values file of the stage, and the fix when others can.
fn write_encrypted(out: &mut String, stage: &str, verdicts: &[FileVerdict]) {
    if verdicts.is_empty() {
        return;
    }
    let _ = writeln!(out, "  {BOLD}encrypted values{BOLD:#} {DIM}(who can open them){DIM:#}");
    for verdict in verdicts {
        let file = &verdict.file;
        if verdict.problems.is_empty() {
            let keys = verdict.recipients.iter().map(|r| short(r)).collect::<Vec<_>>().join(", ");
            let _ = writeln!(out, "    {NAME}own keys{NAME:#}     {file} opens with {stage}'s keys only ({keys})");
        }
        for problem in &verdict.problems {
            match problem {
                KeyProblem::OpensOtherStages { recipient, stages } => {
                    let _ = writeln!(
                        out,
                        "    {ERROR}shared key{ERROR:#}   {file} opens with {}, a key of {} too",
                        short(recipient),
                        stages.join(", ")
                    );
                    let _ = writeln!(
                        out,
                        "                 {DIM}encrypt it for {stage}'s keys only (its rule in .sops.yaml, then `sops updatekeys {file}`), and rotate what it holds{DIM:#}"
                    );
                }
                KeyProblem::NotForItsRule { rule } => {
                    let keys = rule.iter().map(|r| short(r)).collect::<Vec<_>>().join(", ");
                    let _ = writeln!(
                        out,
                        "    {ERROR}not its keys{ERROR:#} {file} is encrypted for none of the keys .sops.yaml names for it ({keys})"
                    );
                    let _ =
                        writeln!(out, "                 {DIM}re-encrypt it for them: `sops updatekeys {file}`{DIM:#}");
                }
            }
        }
    }
}

/// A recipient short enough for a line: `age1w5vucszp…d3s`.
fn short(recipient: &str) -> String {
    let chars: Vec<char> = recipient.chars().collect();
    if chars.len() <= 20 {
        return recipient.to_string();
    }
    format!("{}…{}", chars[..12].iter().collect::<String>(), chars[chars.len() - 4..].iter().collect::<String>())
}

fn write_namespace(out: &mut String, report: &NamespaceReport, details: bool) {
    let _ = writeln!(out, "  {BOLD}namespace {}{BOLD:#}", report.namespace);
    if !report.exists {
        let _ = writeln!(
            out,
            "    {ERROR}the namespace does not exist{ERROR:#} in the cluster: only Secrets the releases create can be present"
        );
    }
    for finding in &report.missing {
        let keys = keys_text(finding);
        let _ = writeln!(out, "    {ERROR}missing{ERROR:#}      Secret {}{keys}{}", finding.name, needed_by(finding));
        write_references(out, &finding.needed_by, details);
    }
    for finding in &report.missing_keys {
        let keys = finding.keys.iter().cloned().collect::<Vec<_>>().join(", ");
        let _ = writeln!(
            out,
            "    {ERROR}missing key{ERROR:#}  Secret {} has no key {keys}{}",
            finding.name,
            needed_by(finding)
        );
        write_references(out, &finding.needed_by, details);
    }
    for (finding, creators) in &report.unknown {
        let keys = keys_text(finding);
        let _ = writeln!(
            out,
            "    {WARN}unknown{WARN:#}      Secret {}{keys}{}: not in the cluster; may be created while installing by {}",
            finding.name,
            needed_by(finding),
            creators.join("; ")
        );
        write_references(out, &finding.needed_by, details);
    }
    if !report.optional_absent.is_empty() {
        let names: Vec<&str> = report.optional_absent.iter().map(|f| f.name.as_str()).collect();
        let _ = writeln!(
            out,
            "    {WARN}optional{WARN:#}     absent, referenced with optional: true: {}",
            names.join(", ")
        );
        for finding in &report.optional_absent {
            write_references(out, &finding.needed_by, details);
        }
    }
    for (name, by) in report.satisfied.iter().filter(|(_, by)| by.starts_with(secrets::OUT_OF_BAND)) {
        let _ = writeln!(out, "    {NAME}declared{NAME:#}     Secret {name}: {by}");
    }
    if !report.satisfied.is_empty() {
        let names = report.satisfied.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>().join(", ");
        let _ = writeln!(out, "    {NAME}present{NAME:#}      {names}");
        if details {
            for (name, by) in
                report.satisfied.iter().filter(|(_, by)| by != "cluster" && !by.starts_with(secrets::OUT_OF_BAND))
            {
                let _ = writeln!(out, "      {DIM}{name}: created by{DIM:#} {by}");
            }
        }
    }
}

/// `: needed by 4 references in 2 resources`.
fn needed_by(finding: &Finding) -> String {
    let resources: std::collections::BTreeSet<&str> = finding.needed_by.iter().map(|r| r.resource.as_str()).collect();
    format!(
        ", needed by {} in {}",
        terminal::plural(finding.needed_by.len(), "reference"),
        terminal::plural(resources.len(), "resource")
    )
}

fn keys_text(finding: &Finding) -> String {
    if finding.keys.is_empty() {
        String::new()
    } else {
        format!(" (keys {})", finding.keys.iter().cloned().collect::<Vec<_>>().join(", "))
    }
}

fn write_references(out: &mut String, references: &[Reference], details: bool) {
    if !details {
        return;
    }
    for reference in references {
        let key = reference.key.as_ref().map(|k| format!(", key {k}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "      {DIM}needed by{DIM:#} {} ({}{key}) {DIM}in release {}, at {}{DIM:#}",
            reference.resource, reference.detail, reference.release, reference.field
        );
    }
}

/// `check-secrets -o json`: whether every stage passed, and per stage and namespace what is
/// missing, optional and absent, unknown (a Job may create it) and present.
#[derive(Serialize)]
pub struct SecretsJson<'a> {
    passed: bool,
    stages: Vec<StageJson<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StageJson<'a> {
    stage: &'a str,
    context: &'a str,
    passed: bool,
    namespaces: Vec<NamespaceJson<'a>>,
    /// Who can open each encrypted values file of the stage (its `problems` empty when only
    /// the stage's keys can).
    encrypted_files: &'a [FileVerdict],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NamespaceJson<'a> {
    namespace: &'a str,
    exists: bool,
    missing: Vec<FindingJson<'a>>,
    missing_keys: Vec<FindingJson<'a>>,
    optional_absent: Vec<FindingJson<'a>>,
    unknown: Vec<FindingJson<'a>>,
    present: Vec<PresentJson<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FindingJson<'a> {
    name: &'a str,
    keys: &'a BTreeSet<String>,
    needed_by: &'a [Reference],
    /// For `unknown`: the Jobs that may create it.
    #[serde(skip_serializing_if = "Option::is_none")]
    may_be_created_by: Option<&'a [String]>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PresentJson<'a> {
    name: &'a str,
    provided_by: &'a str,
}

pub fn json<'a>(reports: &'a [StageReport]) -> SecretsJson<'a> {
    let finding =
        |f: &'a Finding| FindingJson { name: &f.name, keys: &f.keys, needed_by: &f.needed_by, may_be_created_by: None };
    SecretsJson {
        passed: reports.iter().all(StageReport::passed),
        stages: reports
            .iter()
            .map(|report| StageJson {
                stage: &report.stage,
                context: &report.context,
                passed: report.passed(),
                namespaces: report
                    .namespaces
                    .iter()
                    .map(|n| NamespaceJson {
                        namespace: &n.namespace,
                        exists: n.exists,
                        missing: n.missing.iter().map(finding).collect(),
                        missing_keys: n.missing_keys.iter().map(finding).collect(),
                        optional_absent: n.optional_absent.iter().map(finding).collect(),
                        unknown: n
                            .unknown
                            .iter()
                            .map(|(f, by)| FindingJson { may_be_created_by: Some(by), ..finding(f) })
                            .collect(),
                        present: n.satisfied.iter().map(|(name, by)| PresentJson { name, provided_by: by }).collect(),
                    })
                    .collect(),
                encrypted_files: &report.encrypted,
            })
            .collect(),
    }
}

/// The Secret check for a pull request: a row per stage, each failing stage's report (with
/// every reference) in a collapsible section.
pub fn markdown(reports: &[StageReport]) -> Markdown {
    let count = |n: &NamespaceReport| (n.missing.len(), n.missing_keys.len());
    let rows = reports
        .iter()
        .map(|report| {
            let (missing, keys) = report.namespaces.iter().map(count).fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
            let verdict = match (report.passed(), secrets_present(report)) {
                (true, _) => "every referenced Secret is present",
                (false, true) => "encrypted values open with other keys",
                (false, false) => "Secrets are missing",
            };
            vec![report.stage.clone(), verdict.to_string(), missing.to_string(), keys.to_string()]
        })
        .collect::<Vec<_>>();
    let sections = reports
        .iter()
        .filter(|report| !report.passed())
        .map(|report| Section {
            title: format!(
                "{}: {}",
                report.stage,
                if secrets_present(report) { "encrypted values open with other keys" } else { "Secrets are missing" }
            ),
            body: text(std::slice::from_ref(report), true),
            language: "text",
            // A cluster's report (`production/eu`) is checked with its stage.
            command: format!("helm envs check-secrets {} --details", crate::config::stages::stage_of(&report.stage)),
            essential: false,
        })
        .collect();
    Markdown {
        title: "helm envs check-secrets".into(),
        summary: table(&["Stage", "Result", "Missing Secrets", "Secrets missing keys"], &rows),
        sections,
    }
}
