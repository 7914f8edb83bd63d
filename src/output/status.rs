//! The status table, and its JSON.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::config::stages::Stage;
use crate::error::Result;
use crate::terminal::{BOLD, DIM, ERROR, NAME, WARN, plural};

use crate::inspect::status::{Row, short_time};

/// Bumped only for incompatible changes to the JSON output.
const JSON_SCHEMA_VERSION: u32 = 1;

pub fn text(stages: &[&Stage], results: &[Result<Vec<Row>>]) -> String {
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

pub fn json(stages: &[&Stage], results: &[Result<Vec<Row>>]) -> Value {
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
