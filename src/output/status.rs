//! The status table, and its JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::compare::health::State;
use crate::config::stages::Stage;
use crate::error::Result;
use crate::terminal::{BOLD, DIM, ERROR, NAME, WARN, plural};

use crate::compare::argocd::Application;
use crate::inspect::status::{Promotion, Row, short_time};
use crate::output::ApplicationJson;
use crate::output::markdown::{Markdown, Section, table};

pub fn text(stages: &[&Stage], results: &[Result<Vec<Row>>]) -> String {
    let headers =
        ["RELEASE", "REVISION", "CHART", "APP", "STATUS", "READY", "LAST DEPLOYED", "CONFIG", "LAST PROMOTION"];
    let mut out = String::new();
    for (stage, result) in stages.iter().zip(results) {
        let by = stage.argocd.as_ref().map(|_| ", deployed by Argo CD").unwrap_or_default();
        let _ = writeln!(out, "{BOLD}{}{BOLD:#} {DIM}(context {}{by}){DIM:#}", stage.label(), stage.kube_context);
        let rows = match result {
            Ok(rows) => rows,
            Err(err) => {
                let _ = writeln!(out, "  {WARN}not read{WARN:#}: {}", err.one_line());
                continue;
            }
        };
        let cells: Vec<[String; 9]> = rows.iter().map(cells).collect();
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
                let deployed = row.latest.is_some() || row.application.as_ref().is_some_and(|a| a.verdict.is_some());
                let in_sync = match &row.application {
                    Some(application) => application.in_sync(),
                    None => row.out_of_sync.is_empty(),
                };
                let style = match i {
                    5 if row.health.as_ref().is_some_and(|h| !h.is_ready()) => ERROR,
                    7 if deployed && in_sync => NAME,
                    7 if deployed => ERROR,
                    1 | 4 if !deployed => WARN,
                    _ => anstyle::Style::new(),
                };
                let _ = write!(line, "  {style}{padded}{style:#}");
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        for row in rows {
            for line in row.application.as_ref().map(application_lines).unwrap_or_default() {
                let _ = writeln!(out, "  {WARN}{}{WARN:#}: {line}", row.release);
            }
            let Some(health) = row.health.as_ref().filter(|h| !h.is_ready()) else { continue };
            let since = health.not_ready_since().map(|t| format!(" since {}", short_time(t))).unwrap_or_default();
            let _ = writeln!(out, "  {ERROR}{} not ready{since}{ERROR:#}", row.release);
            for workload in health.not_ready() {
                let _ = writeln!(out, "    {}", workload.headline());
                for why in &workload.why {
                    let _ = writeln!(out, "      {why}");
                }
            }
        }
    }
    out
}

/// `1/1`; `-` when not deployed or nothing to be ready.
fn ready_cell(row: &Row) -> String {
    match &row.health {
        Some(health) if !health.workloads.is_empty() => {
            let (ready, desired) = health.counts();
            format!("{ready}/{desired}")
        }
        _ => "-".into(),
    }
}

/// What is wrong with a release's Application, a line each: gone, edited, out of sync, failed.
fn application_lines(application: &Application) -> Vec<String> {
    let name = &application.name;
    let Some(verdict) = &application.verdict else {
        return vec![format!("Argo CD holds no Application {name}: helm envs argocd --apply")];
    };
    let mut lines: Vec<String> = application
        .edited
        .iter()
        .map(|edit| format!("Application {name}: {} is not what the stages file generates", edit.path))
        .collect();
    if !verdict.out_of_sync.is_empty() {
        lines.push(format!("Argo CD reports out of sync: {}", verdict.out_of_sync.join(", ")));
    }
    if let Some((phase, message)) = &verdict.failed_operation {
        lines.push(format!("Argo CD's last sync: {phase}: {message}"));
    }
    lines
}

/// A stage Argo CD deploys: the commit its Application runs, Argo CD's sync status and health.
fn argo_cells(row: &Row, application: &Application) -> [String; 9] {
    let Some(verdict) = &application.verdict else {
        let dash = || "-".to_string();
        return [row.release.clone(), dash(), dash(), dash(), "no Application".into(), dash(), dash(), dash(), dash()];
    };
    let commit = verdict.revision.as_deref().map_or("-".into(), |r| r.chars().take(12).collect());
    let config = match (application.in_sync(), application.edited.is_empty()) {
        (true, _) => "in sync".to_string(),
        (false, false) => "differs: application".into(),
        (false, true) => format!("differs: {}", verdict.sync),
    };
    [
        row.release.clone(),
        commit,
        format!("Application {}", application.name),
        "-".into(),
        format!("{}, {}", verdict.sync, verdict.health),
        ready_cell(row),
        verdict.synced_at.as_deref().map_or("-".into(), short_time),
        config,
        row.last_promotion.as_ref().map_or("-".into(), promotion_cell),
    ]
}

/// `dev → staging (patch 3f2a…, revision 7, 2026-12-07 10:00:00 UTC)`; a commit for a stage
/// Argo CD deploys.
fn promotion_cell(p: &Promotion) -> String {
    let at = match (&p.commit, p.revision) {
        (Some(commit), _) => format!("commit {}", &commit[..commit.len().min(12)]),
        (None, Some(revision)) => format!("revision {revision}"),
        (None, None) => "-".into(),
    };
    format!("{} → {} (patch {}, {at}, {})", p.from, p.to, p.patch, p.at)
}

fn cells(row: &Row) -> [String; 9] {
    if let Some(application) = &row.application {
        return argo_cells(row, application);
    }
    let promotion = match (&row.last_promotion, &row.latest) {
        (Some(p), _) => promotion_cell(p),
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
            "-".into(),
            promotion,
        ],
        Some(latest) => [
            row.release.clone(),
            latest.revision.to_string(),
            latest.chart.clone(),
            latest.app_version.clone(),
            latest.status.clone(),
            ready_cell(row),
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

/// `status -o json`: every stage read (or why not), with its releases.
#[derive(Serialize)]
pub struct StatusJson<'a> {
    stages: Vec<StageJson<'a>>,
}

#[derive(Serialize)]
struct StageJson<'a> {
    name: &'a str,
    /// One cluster of a stage on several.
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<&'a str>,
    context: String,
    checked: bool,
    reason: Option<String>,
    releases: Vec<ReleaseJson<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReleaseJson<'a> {
    release: &'a str,
    namespace: &'a str,
    deployed: bool,
    revision: Option<u64>,
    chart: Option<&'a str>,
    app_version: Option<&'a str>,
    status: Option<&'a str>,
    last_deployed: Option<&'a str>,
    /// `None` when not deployed.
    in_sync: Option<bool>,
    out_of_sync: &'a [&'static str],
    last_promotion: Option<PromotionJson<'a>>,
    health: Option<HealthJson<'a>>,
    /// A stage Argo CD deploys: its Application and Argo CD's verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    argocd: Option<ArgoJson<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArgoJson<'a> {
    #[serde(flatten)]
    application: ApplicationJson<'a>,
    health: Option<&'a str>,
    health_message: Option<&'a str>,
    last_sync: Option<&'a str>,
    failed_operation: Option<FailedJson<'a>>,
    out_of_sync: Vec<&'a str>,
    /// Fields of the Application that are not what the stages file generates.
    edited: Vec<&'a str>,
}

#[derive(Serialize)]
struct FailedJson<'a> {
    phase: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct PromotionJson<'a> {
    from: &'a str,
    to: &'a str,
    patch: &'a str,
    /// helm's revision; `null` on a stage Argo CD deploys.
    revision: Option<u64>,
    /// The promotion's commit, on a stage Argo CD deploys.
    #[serde(skip_serializing_if = "Option::is_none")]
    commit: Option<&'a str>,
    at: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HealthJson<'a> {
    ready: bool,
    ready_replicas: u64,
    desired_replicas: u64,
    not_ready_since: Option<&'a str>,
    workloads: Vec<WorkloadJson<'a>>,
}

#[derive(Serialize)]
struct WorkloadJson<'a> {
    kind: &'a str,
    name: &'a str,
    ready: u64,
    desired: u64,
    state: &'static str,
    why: &'a [String],
}

pub fn json<'a>(stages: &[&'a Stage], results: &'a [Result<Vec<Row>>]) -> StatusJson<'a> {
    let stages = stages
        .iter()
        .zip(results)
        .map(|(stage, result)| StageJson {
            name: &stage.name,
            cluster: stage.cluster.as_ref().map(|c| c.name.as_str()),
            context: stage.kube_context.to_string(),
            checked: result.is_ok(),
            reason: result.as_ref().err().map(|err| err.one_line()),
            releases: result.as_ref().map_or_else(|_| Vec::new(), |rows| rows.iter().map(release_json).collect()),
        })
        .collect();
    StatusJson { stages }
}

fn argo_json(application: &Application) -> ArgoJson<'_> {
    let verdict = application.verdict.as_ref();
    ArgoJson {
        application: ApplicationJson::of(application),
        health: verdict.map(|v| v.health.as_str()),
        health_message: verdict.and_then(|v| v.health_message.as_deref()),
        last_sync: verdict.and_then(|v| v.synced_at.as_deref()),
        failed_operation: verdict
            .and_then(|v| v.failed_operation.as_ref())
            .map(|(phase, message)| FailedJson { phase, message }),
        out_of_sync: verdict.map(|v| v.out_of_sync.iter().map(String::as_str).collect()).unwrap_or_default(),
        edited: application.edited.iter().map(|e| e.path.as_str()).collect(),
    }
}

fn release_json(row: &Row) -> ReleaseJson<'_> {
    let latest = row.latest.as_ref();
    let application = row.application.as_ref();
    let deployed = latest.is_some() || application.is_some_and(|a| a.verdict.is_some());
    let in_sync = match application {
        Some(application) => application.verdict.as_ref().map(|_| application.in_sync()),
        None => latest.map(|_| row.out_of_sync.is_empty()),
    };
    ReleaseJson {
        argocd: application.map(argo_json),
        release: &row.release,
        namespace: &row.namespace,
        deployed,
        revision: latest.map(|l| l.revision),
        chart: latest.map(|l| l.chart.as_str()),
        app_version: latest.map(|l| l.app_version.as_str()),
        status: latest.map(|l| l.status.as_str()),
        last_deployed: latest.map(|l| l.updated.as_str()),
        in_sync,
        out_of_sync: if latest.is_some() { &row.out_of_sync } else { &[] },
        last_promotion: row.last_promotion.as_ref().map(|p| PromotionJson {
            from: &p.from,
            to: &p.to,
            patch: &p.patch,
            revision: p.revision,
            commit: p.commit.as_deref(),
            at: &p.at,
        }),
        health: row.health.as_ref().map(|health| {
            let (ready_replicas, desired_replicas) = health.counts();
            HealthJson {
                ready: health.is_ready(),
                ready_replicas,
                desired_replicas,
                not_ready_since: health.not_ready_since(),
                workloads: health
                    .workloads
                    .iter()
                    .map(|w| WorkloadJson {
                        kind: &w.kind,
                        name: &w.name,
                        ready: w.ready,
                        desired: w.desired,
                        state: match w.state {
                            State::Ready => "ready",
                            State::Progressing => "progressing",
                            State::Failed => "failed",
                        },
                        why: &w.why,
                    })
                    .collect(),
            }
        }),
    }
}

/// Status for a pull request: a row per stage and release, and why each release that is not
/// ready is not, in a collapsible section.
pub fn markdown(stages: &[&Stage], results: &[Result<Vec<Row>>]) -> Markdown {
    let mut rows = Vec::new();
    let mut sections = Vec::new();
    for (stage, result) in stages.iter().zip(results) {
        match result {
            Err(err) => rows.push(vec![
                stage.label(),
                "-".into(),
                format!("not read: {}", err.one_line()),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]),
            Ok(list) => {
                for row in list {
                    let [release, revision, chart, _app, status, ready, _deployed, config, promotion] = cells(row);
                    rows.push(vec![stage.label(), release, revision, chart, status, ready, config, promotion]);
                    if let Some(health) = row.health.as_ref().filter(|h| !h.is_ready()) {
                        let body = health
                            .not_ready()
                            .flat_map(|w| std::iter::once(w.headline()).chain(w.why.iter().map(|y| format!("  {y}"))))
                            .collect::<Vec<_>>()
                            .join("\n");
                        sections.push(Section {
                            title: format!("{}/{} not ready", stage.label(), row.release),
                            body,
                            language: "text",
                            command: format!("helm envs status --stage {} --release {}", stage.name, row.release),
                            essential: false,
                        });
                    }
                }
            }
        }
    }
    let headers = ["Stage", "Release", "Revision", "Chart", "Status", "Ready", "Config", "Last promotion"];
    Markdown { title: "helm envs status".into(), summary: table(&headers, &rows), sections }
}
