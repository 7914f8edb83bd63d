//! `helm envs check-secrets STAGE | --all`: the Secrets gate, as a report.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::cli::{CheckSecretsArgs, ListFormat};
use crate::error::{EXIT_GATE, Result};
use crate::helm::Helm;
use crate::kube::Kubectl;
use crate::output::{self, BOLD, DIM, ERROR, NAME, WARN};
use crate::secrets::{self, Finding, NamespaceReport, Reference, StageReport};
use crate::stages::Project;

pub fn run(project: &Project, args: &CheckSecretsArgs) -> Result<u8> {
    let stages = match &args.stage {
        Some(name) => vec![project.stage(name)?],
        None => project.stages.iter().collect(),
    };
    let releases = project.select_releases(args.release.as_deref())?;
    let (helm, kubectl) = (Helm::locate()?, Kubectl::locate()?);
    let reports = secrets::check(project, &helm, &kubectl, &stages, &releases)?;
    let text = match args.output {
        ListFormat::Text => text(&reports),
        ListFormat::Json => output::json_text(&json(&reports))?,
    };
    output::stdout(&text);
    Ok(if reports.iter().all(StageReport::passed) { 0 } else { EXIT_GATE })
}

pub fn text(reports: &[StageReport]) -> String {
    let mut out = String::new();
    for report in reports {
        let verdict = if report.passed() {
            format!("{NAME}every referenced Secret is present{NAME:#}")
        } else {
            format!("{ERROR}Secrets are missing{ERROR:#}")
        };
        let _ = writeln!(out, "{BOLD}{}{BOLD:#} {DIM}(context {}){DIM:#}: {verdict}", report.stage, report.context);
        if report.namespaces.is_empty() {
            let _ = writeln!(out, "  no Secret references");
        }
        for namespace in &report.namespaces {
            write_namespace(&mut out, namespace);
        }
    }
    out
}

fn write_namespace(out: &mut String, report: &NamespaceReport) {
    let _ = writeln!(out, "  {BOLD}namespace {}{BOLD:#}", report.namespace);
    if !report.exists {
        let _ = writeln!(
            out,
            "    {ERROR}the namespace does not exist{ERROR:#} in the cluster: only Secrets the releases create can be present"
        );
    }
    for finding in &report.missing {
        let keys = keys_text(finding);
        let _ = writeln!(out, "    {ERROR}missing{ERROR:#}      Secret {}{keys}", finding.name);
        write_needed_by(out, &finding.needed_by);
    }
    for finding in &report.missing_keys {
        let keys = finding.keys.iter().cloned().collect::<Vec<_>>().join(", ");
        let _ = writeln!(out, "    {ERROR}missing key{ERROR:#}  Secret {} has no key {keys}", finding.name);
        write_needed_by(out, &finding.needed_by);
    }
    for finding in &report.optional_absent {
        let keys = keys_text(finding);
        let _ =
            writeln!(out, "    {WARN}optional{WARN:#}     Secret {}{keys} is absent (optional: true)", finding.name);
        write_needed_by(out, &finding.needed_by);
    }
    if !report.satisfied.is_empty() {
        let names = report.satisfied.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>().join(", ");
        let _ = writeln!(out, "    {NAME}present{NAME:#}      {names}");
    }
}

fn keys_text(finding: &Finding) -> String {
    if finding.keys.is_empty() {
        String::new()
    } else {
        format!(" (keys {})", finding.keys.iter().cloned().collect::<Vec<_>>().join(", "))
    }
}

fn write_needed_by(out: &mut String, references: &[Reference]) {
    for reference in references {
        let key = reference.key.as_ref().map(|k| format!(", key {k}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "      {DIM}needed by{DIM:#} {} ({}{key}) {DIM}in release {}, at {}{DIM:#}",
            reference.resource, reference.detail, reference.release, reference.field
        );
    }
}

/// Schema (version 1): `{schemaVersion, passed, stages: [{stage, context, passed, namespaces:
/// [{namespace, exists, missing, missingKeys, optionalAbsent: [{name, keys, neededBy: [reference]}],
/// present: [{name, providedBy}]}]}]}`.
fn json(reports: &[StageReport]) -> Value {
    let findings = |list: &[Finding]| -> Value {
        list.iter().map(|f| json!({"name": f.name, "keys": f.keys, "neededBy": f.needed_by})).collect()
    };
    json!({
        "schemaVersion": 1,
        "passed": reports.iter().all(StageReport::passed),
        "stages": reports.iter().map(|report| json!({
            "stage": report.stage,
            "context": report.context,
            "passed": report.passed(),
            "namespaces": report.namespaces.iter().map(|n| json!({
                "namespace": n.namespace,
                "exists": n.exists,
                "missing": findings(&n.missing),
                "missingKeys": findings(&n.missing_keys),
                "optionalAbsent": findings(&n.optional_absent),
                "present": n.satisfied.iter().map(|(name, by)| json!({"name": name, "providedBy": by})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
