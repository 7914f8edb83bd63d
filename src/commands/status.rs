//! `helm envs status`: per stage and release, what is deployed (revision, chart, app version,
//! helm status, when), whether it is the config, and the promotion it came from. Every query of
//! every stage runs in parallel; a stage whose cluster cannot be read is shown as such.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::cli::{ListFormat, StatusArgs};
use crate::compare::diff;
use crate::compare::drift::{self, Item};
use crate::compare::render::{LiveState, against_installed, all_or_errors, in_parallel, joined};
use crate::config::stages::{Project, Release, Stage, Target};
use crate::error::{Detail, EXIT_ERROR, Error, Result};
use crate::system::helm::{Helm, Revision};
use crate::terminal::{self, BOLD, DIM, ERROR, NAME, WARN, plural};

/// Bumped only for incompatible changes to the JSON output.
const JSON_SCHEMA_VERSION: u32 = 1;

/// One release of one stage.
struct Row {
    release: String,
    namespace: String,
    /// `None`: never deployed (or every revision deleted).
    latest: Option<Revision>,
    /// Why it is not the config: `status`, `manifest`, `values`. Empty: in sync.
    out_of_sync: Vec<&'static str>,
    last_promotion: Option<Promotion>,
    /// How many revisions helm kept (the last promotion is looked for in those).
    revisions: usize,
}

/// A revision deployed by `helm envs promote` (its description says so).
struct Promotion {
    from: String,
    to: String,
    patch: String,
    revision: u64,
    at: String,
}

pub fn run(project: &Project, args: &StatusArgs) -> Result<u8> {
    let releases = project.select_releases(args.release.as_deref())?;
    let stages: Vec<&Stage> = match &args.stage {
        Some(name) => vec![project.stage(name)?],
        None => project.stages.iter().collect(),
    };
    let helm = Helm::locate()?;
    let results: Vec<Result<Vec<Row>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = stages
            .iter()
            .map(|stage| {
                let (helm, releases) = (&helm, &releases);
                scope.spawn(move || stage_rows(project, helm, stage, releases))
            })
            .collect();
        handles.into_iter().map(joined).collect()
    });
    let text = match args.output {
        ListFormat::Text => text(&stages, &results),
        ListFormat::Json => terminal::json_text(&json(&stages, &results))?,
    };
    terminal::stdout(&text);
    if results.iter().all(Result::is_err) {
        terminal::report_error(&Error::Failed {
            headline: "no stage's releases could be read".into(),
            details: vec![Detail::Help(
                "check the stages' kube contexts (`kubectl config get-contexts`); the reasons are above".into(),
            )],
        });
        return Ok(EXIT_ERROR);
    }
    Ok(0)
}

fn stage_rows(project: &Project, helm: &Helm, stage: &Stage, releases: &[&Release]) -> Result<Vec<Row>> {
    let targets: Vec<Target> = releases.iter().map(|release| project.target(stage, release)).collect();
    let (states, histories) = std::thread::scope(|scope| {
        let histories = scope
            .spawn(|| all_or_errors(in_parallel(targets.iter().map(|target| move || helm.history(target)).collect())));
        (against_installed(project, helm, &targets, &diff::Options::default()), joined(histories))
    });
    let (states, histories) = (states?, histories?);
    Ok(targets
        .iter()
        .zip(states)
        .zip(histories)
        .map(|((target, state), history)| row(target, &state, history))
        .collect())
}

fn row(target: &Target, state: &LiveState, history: Vec<Revision>) -> Row {
    // The chart shows in its own column; CONFIG says which of these differ.
    let items = drift::against_config(state, None, false);
    let out_of_sync: Vec<&'static str> = [
        ("status", items.iter().any(|i| matches!(i, Item::Status { .. }))),
        ("manifest", items.iter().any(|i| matches!(i, Item::Manifest { .. }))),
        ("values", items.iter().any(|i| matches!(i, Item::DeployedValue { .. }))),
    ]
    .into_iter()
    .filter_map(|(name, differs)| differs.then_some(name))
    .collect();
    let last_promotion = history.iter().rev().find_map(promotion);
    Row {
        release: target.release.name.clone(),
        namespace: target.namespace.clone(),
        revisions: history.len(),
        latest: state.installed.as_ref().and(history.last().cloned()),
        out_of_sync,
        last_promotion,
    }
}

/// `helm-envs: promoted dev -> staging (patch 0123456789ab)`, as `promote` writes it.
fn promotion(revision: &Revision) -> Option<Promotion> {
    let rest = revision.description.strip_prefix("helm-envs: promoted ")?;
    let (from, rest) = rest.split_once(" -> ")?;
    let (to, rest) = rest.split_once(" (patch ")?;
    let patch = rest.strip_suffix(')')?;
    Some(Promotion {
        from: from.to_string(),
        to: to.to_string(),
        patch: patch.to_string(),
        revision: revision.revision,
        at: short_time(&revision.updated),
    })
}

/// `2026-11-26T10:35:11.098851754Z` -> `2026-11-26 10:35:11 UTC`.
fn short_time(rfc3339: &str) -> String {
    if rfc3339.len() < 19 || !rfc3339.is_char_boundary(19) {
        return rfc3339.to_string();
    }
    let (date_time, rest) = rfc3339.split_at(19);
    let zone = rest.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let zone = if zone == "Z" { "UTC" } else { zone };
    format!("{} {zone}", date_time.replacen('T', " ", 1)).trim_end().to_string()
}

fn text(stages: &[&Stage], results: &[Result<Vec<Row>>]) -> String {
    let headers = ["RELEASE", "REVISION", "CHART", "APP", "STATUS", "LAST DEPLOYED", "CONFIG", "LAST PROMOTION"];
    let mut out = String::new();
    for (stage, result) in stages.iter().zip(results) {
        let _ = writeln!(out, "{BOLD}{}{BOLD:#} {DIM}(context {}){DIM:#}", stage.name, stage.kube_context);
        let rows = match result {
            Ok(rows) => rows,
            Err(err) => {
                let _ = writeln!(out, "  {WARN}not read{WARN:#}: {}", err.one_line());
                continue;
            }
        };
        let cells: Vec<[String; 8]> = rows.iter().map(cells).collect();
        let mut widths = headers.map(str::len);
        for row in &cells {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut line = String::new();
        for (header, width) in headers.iter().zip(widths) {
            let _ = write!(line, "  {header:<width$}");
        }
        let _ = writeln!(out, "{DIM}{}{DIM:#}", line.trim_end());
        for (row, cells) in rows.iter().zip(&cells) {
            let mut line = String::new();
            for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
                let padded = format!("{cell:<width$}");
                let style = match i {
                    6 if row.latest.is_some() && row.out_of_sync.is_empty() => NAME,
                    6 if row.latest.is_some() => ERROR,
                    1 | 4 if row.latest.is_none() => WARN,
                    _ => anstyle::Style::new(),
                };
                let _ = write!(line, "  {style}{padded}{style:#}");
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    out
}

fn cells(row: &Row) -> [String; 8] {
    let promotion = match (&row.last_promotion, &row.latest) {
        (Some(p), _) => format!("{} → {} (patch {}, revision {}, {})", p.from, p.to, p.patch, p.revision, p.at),
        (None, Some(_)) => format!("none in the last {}", plural(row.revisions, "revision")),
        (None, None) => "-".to_string(),
    };
    match &row.latest {
        None => [
            row.release.clone(),
            "-".into(),
            "-".into(),
            "-".into(),
            "not deployed".into(),
            "-".into(),
            "-".into(),
            promotion,
        ],
        Some(latest) => [
            row.release.clone(),
            latest.revision.to_string(),
            latest.chart.clone(),
            latest.app_version.clone(),
            latest.status.clone(),
            short_time(&latest.updated),
            if row.out_of_sync.is_empty() {
                "in sync".into()
            } else {
                format!("differs: {}", row.out_of_sync.join(", "))
            },
            promotion,
        ],
    }
}

fn json(stages: &[&Stage], results: &[Result<Vec<Row>>]) -> Value {
    let stages: Vec<Value> = stages
        .iter()
        .zip(results)
        .map(|(stage, result)| match result {
            Err(err) => json!({
                "name": stage.name,
                "context": stage.kube_context.to_string(),
                "checked": false,
                "reason": err.one_line(),
                "releases": [],
            }),
            Ok(rows) => json!({
                "name": stage.name,
                "context": stage.kube_context.to_string(),
                "checked": true,
                "reason": null,
                "releases": rows.iter().map(row_json).collect::<Vec<_>>(),
            }),
        })
        .collect();
    json!({"schemaVersion": JSON_SCHEMA_VERSION, "stages": stages})
}

fn row_json(row: &Row) -> Value {
    let promotion = row
        .last_promotion
        .as_ref()
        .map(|p| json!({"from": p.from, "to": p.to, "patch": p.patch, "revision": p.revision, "at": p.at}));
    match &row.latest {
        None => json!({
            "release": row.release,
            "namespace": row.namespace,
            "deployed": false,
            "revision": null,
            "chart": null,
            "appVersion": null,
            "status": null,
            "lastDeployed": null,
            "inSync": null,
            "outOfSync": [],
            "lastPromotion": promotion,
        }),
        Some(latest) => json!({
            "release": row.release,
            "namespace": row.namespace,
            "deployed": true,
            "revision": latest.revision,
            "chart": latest.chart,
            "appVersion": latest.app_version,
            "status": latest.status,
            "lastDeployed": latest.updated,
            "inSync": row.out_of_sync.is_empty(),
            "outOfSync": row.out_of_sync,
            "lastPromotion": promotion,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revision(description: &str) -> Revision {
        Revision {
            revision: 4,
            updated: "2026-11-26T10:35:11.098851754Z".into(),
            status: "deployed".into(),
            chart: "acme-web-1.4.2".into(),
            app_version: "2.7.0".into(),
            description: description.into(),
        }
    }

    #[test]
    fn the_promotion_is_read_from_the_description_promote_writes() {
        let found = promotion(&revision("helm-envs: promoted dev -> staging (patch 0123456789ab)")).expect("promotion");
        assert_eq!((found.from.as_str(), found.to.as_str(), found.patch.as_str()), ("dev", "staging", "0123456789ab"));
        assert_eq!((found.revision, found.at.as_str()), (4, "2026-11-26 10:35:11 UTC"));
        assert!(promotion(&revision("helm-envs: apply (stage staging)")).is_none());
        assert!(promotion(&revision("Upgrade complete")).is_none());
    }

    #[test]
    fn times_are_shortened_to_seconds_with_their_zone() {
        assert_eq!(short_time("2026-11-26T10:35:11.098851754Z"), "2026-11-26 10:35:11 UTC");
        assert_eq!(short_time("2026-11-26T11:35:11.5+01:00"), "2026-11-26 11:35:11 +01:00");
        assert_eq!(short_time("soon"), "soon");
    }
}
