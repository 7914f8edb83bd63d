//! A diff as people and tools read it: coloured text, a one-line-per-resource summary, or JSON
//! with a stable schema (docs/ci.md). Everything here works on comparisons whose Secret
//! data is already redacted.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use serde::Serialize;
use serde_json::Value;

use crate::compare::argocd::Application;
use crate::compare::diff::{
    ChangeKind, Comparison, FieldChange, LineTag, Plan, Regenerated, ResourceChange, canonical_yaml, line_diff,
};
use crate::inspect::diff::{Mode, Report, Sections, Unmanaged};
use crate::output::ApplicationJson;
use crate::output::markdown::{Markdown, Section, table};
use crate::terminal::{BOLD, DIM};

const ADDED: Style = AnsiColor::Green.on_default();
const REMOVED: Style = AnsiColor::Red.on_default();
const CHANGED: Style = AnsiColor::Yellow.on_default();
const HUNK: Style = AnsiColor::Cyan.on_default();

/// A promotion applies the undocumented differences the other way round: what `to` has and
/// `from` lacks is destroyed.
fn promotion_plan(undocumented: &Comparison) -> Plan {
    let plan = undocumented.plan();
    Plan { add: plan.destroy, destroy: plan.add, ..plan }
}

// ------------------------------------------------------------------------------ text

pub fn text(report: &Report, context: usize) -> String {
    let mut out = String::new();
    for (i, release) in report.releases.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match &release.sections {
            Sections::Live { installed, argocd, comparison, values, regenerated, chart_change } => {
                let Mode::Live { stage } = &report.mode else { continue };
                let from = match (installed, argocd) {
                    (Some(i), _) => format!("revision {} ({}, {})", i.revision, i.status, i.chart),
                    (None, Some(by)) => argocd_side(by),
                    (None, None) => "not installed".to_string(),
                };
                let _ = writeln!(
                    out,
                    "{BOLD}{stage}/{}{BOLD:#} {DIM}(context {}, namespace {}){DIM:#}: {from} → config",
                    release.release, release.context, release.namespace
                );
                write_changes(&mut out, comparison, context);
                if let (Some(configured), Some(installed)) = (chart_change, installed) {
                    let _ = writeln!(out, "{BOLD}Chart:{BOLD:#} {} → {configured}", installed.chart);
                }
                let plan = comparison.plan();
                // Values that change the manifest show there; the line is for those that do not.
                if comparison.is_empty() && !values.is_empty() {
                    let _ = writeln!(out, "{BOLD}Values:{BOLD:#} {}", values_line(values));
                }
                if comparison.is_empty() && values.is_empty() && chart_change.is_none() {
                    let _ = writeln!(out, "No changes. {} unchanged.", resources(plan.unchanged));
                } else if comparison.is_empty() {
                    let _ = writeln!(out, "No changes to the manifest. {} unchanged.", resources(plan.unchanged));
                } else {
                    let _ = writeln!(out, "{BOLD}Plan:{BOLD:#} {}.", plan_counts(&plan));
                }
                for resource in regenerated {
                    let _ = writeln!(
                        out,
                        "{DIM}Generated anew at every render (no `lookup` keeps it; every deploy changes it, not a \
                         change of config): {} ({}){DIM:#}",
                        resource.resource,
                        resource.fields.join(", ")
                    );
                }
            }
            Sections::Stages { from_namespace, undocumented, documented } => {
                let Mode::Stages { from, to } = &report.mode else { continue };
                let _ = writeln!(
                    out,
                    "{BOLD}{}{BOLD:#}: {from} {DIM}({from_namespace}){DIM:#} → {to} {DIM}({}){DIM:#}",
                    release.release, release.namespace
                );
                if !undocumented.is_empty() {
                    let _ = writeln!(
                        out,
                        "{BOLD}Undocumented differences{BOLD:#} (outside envSpecific: promoting {from} carries them into {to}):"
                    );
                    write_changes(&mut out, undocumented, context);
                }
                if !documented.is_empty() {
                    let _ = writeln!(
                        out,
                        "{BOLD}Documented differences{BOLD:#} (envSpecific values and the stages' own settings):"
                    );
                    write_changes(&mut out, documented, context);
                }
                let _ = writeln!(
                    out,
                    "{BOLD}Promoting {from} into {to}:{BOLD:#} {}. {}",
                    plan_counts(&promotion_plan(undocumented)),
                    documented_summary(documented)
                );
            }
        }
    }
    out
}

/// The deployed side of a stage Argo CD deploys: its live objects, and what Argo CD runs.
fn argocd_side(application: &Application) -> String {
    match &application.verdict {
        None => format!("live objects (Argo CD has no Application {})", application.name),
        Some(verdict) => {
            let revision = verdict.revision.as_deref();
            let at = revision.map(|r| format!(" at {}", &r[..r.len().min(12)])).unwrap_or_default();
            format!("live objects (Argo CD Application {}: {}{at})", application.name, verdict.sync)
        }
    }
}

fn documented_summary(documented: &Comparison) -> String {
    match documented.changes.len() {
        0 => "No documented differences.".to_string(),
        n => format!("{} differ only as documented.", resources(n)),
    }
}

fn resources(n: usize) -> String {
    format!("{n} resource{}", if n == 1 { "" } else { "s" })
}

fn plan_counts(plan: &Plan) -> String {
    format!("{} to add, {} to change, {} to destroy", plan.add, plan.change, plan.destroy)
}

/// The paths of values that differ from the deployed revision's, and what a deploy does.
fn values_line(paths: &[String]) -> String {
    format!("{} deployed with other values than the values files give; a deploy records them", paths.join(", "))
}

fn marker(kind: ChangeKind) -> (char, Style) {
    match kind {
        ChangeKind::Added => ('+', ADDED),
        ChangeKind::Removed => ('-', REMOVED),
        ChangeKind::Changed => ('~', CHANGED),
    }
}

fn write_changes(out: &mut String, comparison: &Comparison, context: usize) {
    for change in &comparison.changes {
        let (mark, style) = marker(change.kind);
        let source = change.source.as_deref().map(|s| format!(" {DIM}({s}){DIM:#}")).unwrap_or_default();
        let _ = writeln!(out, "{style}{mark} {}{style:#}{source}", change.key);
        for field in &change.fields {
            write_field(out, field);
        }
        write_lines(out, change, context);
    }
}

fn write_field(out: &mut String, field: &FieldChange) {
    let show = |v: &Value| show_value(v, field.sensitive);
    let _ = match (&field.old, &field.new) {
        (Some(old), Some(new)) => {
            writeln!(out, "    {CHANGED}~{CHANGED:#} {}: {} → {}", field.path, show(old), show(new))
        }
        (None, Some(new)) => writeln!(out, "    {ADDED}+{ADDED:#} {}: {}", field.path, show(new)),
        (Some(old), None) => writeln!(out, "    {REMOVED}-{REMOVED:#} {}: {}", field.path, show(old)),
        (None, None) => Ok(()),
    };
}

/// A value on one line: JSON, cut at 80 characters. Redaction markers are shown bare.
fn show_value(value: &Value, sensitive: bool) -> String {
    const LIMIT: usize = 80;
    let text = match value {
        Value::String(s) if sensitive => s.clone(),
        other => other.to_string(),
    };
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

fn write_lines(out: &mut String, change: &ResourceChange, context: usize) {
    let yaml = |value: &Option<Value>| value.as_ref().map(canonical_yaml).unwrap_or_default();
    for hunk in line_diff(&yaml(&change.old), &yaml(&change.new), context) {
        if change.kind == ChangeKind::Changed {
            let _ = writeln!(out, "    {HUNK}{}{HUNK:#}", hunk.header);
        }
        for (tag, line) in &hunk.lines {
            let _ = match tag {
                LineTag::Context => writeln!(out, "    {DIM} {line}{DIM:#}"),
                LineTag::Removed => writeln!(out, "    {REMOVED}-{line}{REMOVED:#}"),
                LineTag::Added => writeln!(out, "    {ADDED}+{line}{ADDED:#}"),
            };
        }
    }
}

// ------------------------------------------------------------------------------ summary

pub fn summary(report: &Report) -> String {
    let mut out = String::new();
    for release in &report.releases {
        match (&release.sections, &report.mode) {
            (Sections::Live { comparison, values, chart_change, .. }, Mode::Live { stage }) => {
                let plan = comparison.plan();
                let _ = writeln!(
                    out,
                    "{BOLD}{stage}/{}{BOLD:#}: {} ({} unchanged)",
                    release.release,
                    plan_counts(&plan),
                    plan.unchanged
                );
                write_keys(&mut out, comparison, "");
                if comparison.is_empty() && !values.is_empty() {
                    let _ = writeln!(out, "  {CHANGED}~ values{CHANGED:#}: {}", values_line(values));
                }
                if let Some(configured) = chart_change {
                    let _ = writeln!(out, "  {CHANGED}~ chart{CHANGED:#}: {configured}");
                }
            }
            (Sections::Stages { undocumented, documented, .. }, Mode::Stages { from, to }) => {
                let _ = writeln!(
                    out,
                    "{BOLD}{}{BOLD:#} ({from} → {to}): {} undocumented, {} documented",
                    release.release,
                    undocumented.changes.len(),
                    documented.changes.len()
                );
                write_keys(&mut out, undocumented, " (undocumented)");
                write_keys(&mut out, documented, " (documented)");
            }
            _ => {}
        }
    }
    out
}

fn write_keys(out: &mut String, comparison: &Comparison, suffix: &str) {
    for change in &comparison.changes {
        let (mark, style) = marker(change.kind);
        let _ = writeln!(out, "  {style}{mark} {}{style:#}{DIM}{suffix}{DIM:#}", change.key);
    }
}

// ------------------------------------------------------------------------------ Markdown

/// The report for a pull request: a plan per release in a table, each release's diff in a
/// collapsible section; `show` is the command that shows one release's diff in full.
pub fn markdown(report: Report, context: usize, show: &dyn Fn(&str) -> String) -> Markdown {
    let (title, headers) = match &report.mode {
        Mode::Live { stage } => (
            format!("helm envs diff {stage}: what a deploy of {stage} changes"),
            vec!["Release", "Namespace", "Add", "Change", "Destroy", "Unchanged"],
        ),
        Mode::Stages { from, to } => (
            format!("helm envs diff --from {from} --to {to}"),
            vec!["Release", "Namespace", "Undocumented", "Documented"],
        ),
    };
    let rows = report
        .releases
        .iter()
        .map(|release| match &release.sections {
            Sections::Live { comparison, values, .. } => {
                let plan = comparison.plan();
                let change = if comparison.is_empty() && !values.is_empty() {
                    format!("values: {}", values.join(", "))
                } else {
                    plan.change.to_string()
                };
                vec![
                    release.release.clone(),
                    release.namespace.clone(),
                    plan.add.to_string(),
                    change,
                    plan.destroy.to_string(),
                    plan.unchanged.to_string(),
                ]
            }
            Sections::Stages { undocumented, documented, .. } => vec![
                release.release.clone(),
                release.namespace.clone(),
                undocumented.changes.len().to_string(),
                documented.changes.len().to_string(),
            ],
        })
        .collect::<Vec<_>>();
    let summary = table(&headers, &rows);
    let Report { mode, releases, ignored, .. } = report;
    let sections = releases
        .into_iter()
        .filter(|release| match &release.sections {
            Sections::Live { comparison, values, chart_change, .. } => {
                !comparison.is_empty() || !values.is_empty() || chart_change.is_some()
            }
            Sections::Stages { undocumented, documented, .. } => !undocumented.is_empty() || !documented.is_empty(),
        })
        .map(|release| {
            let name = release.release.clone();
            let essential =
                matches!(&release.sections, Sections::Stages { undocumented, .. } if !undocumented.is_empty());
            let one =
                Report { mode: mode.clone(), releases: vec![release], unmanaged: Vec::new(), ignored: ignored.clone() };
            let (body, command) = (text(&one, context), show(&name));
            Section { title: name, body, language: "diff", command, essential }
        })
        .collect();
    Markdown { title, summary, sections }
}

// ------------------------------------------------------------------------------ JSON

/// `diff -o json` (and the `diff` of `upgrade`, `apply` and `promote`): the mode, the stage
/// or stages, whether anything differs, and per release what a deploy (or a promotion) changes.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffJson<'a> {
    /// `live` (a stage against its cluster) or `stages` (one stage's config against another's).
    mode: &'static str,
    stage: Option<&'a str>,
    from: Option<&'a str>,
    to: Option<&'a str>,
    has_changes: bool,
    ignored: &'a [String],
    releases: Vec<ReleaseJson<'a>>,
    unmanaged_releases: &'a [Unmanaged],
}

#[derive(Serialize)]
struct ReleaseJson<'a> {
    release: &'a str,
    namespace: &'a str,
    context: &'a str,
    #[serde(flatten)]
    sections: SectionsJson<'a>,
}

#[derive(Serialize)]
#[serde(untagged, rename_all_fields = "camelCase")]
enum SectionsJson<'a> {
    Live {
        values: &'a [String],
        regenerated: &'a [Regenerated],
        /// The configured chart when the deployed one is another.
        configured_chart: Option<&'a str>,
        installed: Option<InstalledJson<'a>>,
        /// A stage Argo CD deploys: its live objects were compared.
        #[serde(skip_serializing_if = "Option::is_none")]
        argocd: Option<ApplicationJson<'a>>,
        plan: Plan,
        changes: Vec<ChangeJson<'a>>,
    },
    Stages {
        from_namespace: &'a str,
        promotion_plan: Plan,
        undocumented: Vec<ChangeJson<'a>>,
        documented: Vec<ChangeJson<'a>>,
    },
}

#[derive(Serialize)]
struct InstalledJson<'a> {
    revision: u64,
    status: &'a str,
    chart: &'a str,
}

/// A changed resource: its identity, the change, its template, and the changed fields (or the
/// whole object when added or removed).
#[derive(Serialize)]
struct ChangeJson<'a> {
    id: String,
    group: &'a str,
    kind: &'a str,
    namespace: Option<&'a str>,
    name: &'a str,
    change: ChangeKind,
    source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<Vec<FieldJson<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    object: Option<&'a Value>,
}

#[derive(Serialize)]
struct FieldJson<'a> {
    change: &'static str,
    path: String,
    pointer: String,
    old: &'a Option<Value>,
    new: &'a Option<Value>,
    sensitive: bool,
}

pub fn json(report: &Report) -> DiffJson<'_> {
    let (mode, stage, from, to) = match &report.mode {
        Mode::Live { stage } => ("live", Some(stage.as_str()), None, None),
        Mode::Stages { from, to } => ("stages", None, Some(from.as_str()), Some(to.as_str())),
    };
    let releases = report
        .releases
        .iter()
        .map(|release| ReleaseJson {
            release: &release.release,
            namespace: &release.namespace,
            context: &release.context,
            sections: match &release.sections {
                Sections::Live { installed, argocd, comparison, values, regenerated, chart_change } => {
                    SectionsJson::Live {
                        argocd: argocd.as_deref().map(ApplicationJson::of),
                        values,
                        regenerated,
                        configured_chart: chart_change.as_deref(),
                        installed: installed.as_ref().map(|i| InstalledJson {
                            revision: i.revision,
                            status: &i.status,
                            chart: &i.chart,
                        }),
                        plan: comparison.plan(),
                        changes: changes_json(comparison),
                    }
                }
                Sections::Stages { from_namespace, undocumented, documented } => SectionsJson::Stages {
                    from_namespace,
                    promotion_plan: promotion_plan(undocumented),
                    undocumented: changes_json(undocumented),
                    documented: changes_json(documented),
                },
            },
        })
        .collect();
    DiffJson {
        mode,
        stage,
        from,
        to,
        has_changes: report.has_changes(),
        ignored: &report.ignored,
        releases,
        unmanaged_releases: &report.unmanaged,
    }
}

fn changes_json(comparison: &Comparison) -> Vec<ChangeJson<'_>> {
    comparison
        .changes
        .iter()
        .map(|change| ChangeJson {
            id: change.key.to_string(),
            group: &change.key.group,
            kind: &change.key.kind,
            namespace: change.key.namespace.as_deref(),
            name: &change.key.name,
            change: change.kind,
            source: change.source.as_deref(),
            fields: (change.kind == ChangeKind::Changed).then(|| {
                change
                    .fields
                    .iter()
                    .map(|f| FieldJson {
                        change: match (&f.old, &f.new) {
                            (None, _) => "added",
                            (_, None) => "removed",
                            _ => "changed",
                        },
                        path: f.path.to_string(),
                        pointer: f.path.pointer(),
                        old: &f.old,
                        new: &f.new,
                        sensitive: f.sensitive,
                    })
                    .collect()
            }),
            object: match change.kind {
                ChangeKind::Changed => None,
                ChangeKind::Added => Some(change.new.as_ref().unwrap_or(&Value::Null)),
                ChangeKind::Removed => Some(change.old.as_ref().unwrap_or(&Value::Null)),
            },
        })
        .collect()
}
