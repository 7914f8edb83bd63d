//! A promotion's patch as people read it (per release, one line per value, credentials
//! redacted), as JSON, and as a commit message.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::config::promotion::{self, Promotion, ValueChange, VersionChange};
use crate::config::values::{Segment, ValuePath};
use crate::terminal::{BOLD, DIM};

/// The patch as people read it.
pub fn patch_text(plan: &Promotion, show_secrets: bool) -> String {
    let mut out = format!(
        "{BOLD}Promoting {} into {}{BOLD:#} {DIM}(patch {}){DIM:#}\n",
        plan.from.name, plan.to.name, plan.digest
    );
    for release in &plan.releases {
        if release.changes.is_empty() && release.version.is_none() {
            let _ = writeln!(out, "{BOLD}{}{BOLD:#}: nothing to promote", release.release.name);
            continue;
        }
        let _ = writeln!(out, "{BOLD}{}{BOLD:#}:", release.release.name);
        for change in release.changes.iter().flat_map(leaves) {
            let _ = writeln!(out, "  {}", change_line(&change, show_secrets));
        }
        if let Some(version) = &release.version {
            let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
            let _ = writeln!(
                out,
                "  ~ chart version: {} -> {}  {DIM}{}{DIM:#}",
                show(&version.old),
                show(&version.new),
                plan.files.last().map_or("", |f| f.display.as_str())
            );
        }
    }
    out
}

/// A map added or removed whole, as one line per value under it (`image.tag`), as people
/// think of the change.
fn leaves(change: &ValueChange) -> Vec<ValueChange> {
    let map = match (&change.old, &change.new) {
        (None, Some(Value::Object(map))) | (Some(Value::Object(map)), None) if !map.is_empty() => map,
        _ => return vec![change.clone()],
    };
    let added = change.new.is_some();
    map.iter()
        .flat_map(|(key, value)| {
            let path = ValuePath(vec![Segment::Key(key.clone())]).to_string();
            leaves(&ValueChange {
                path: format!("{}{}{path}", change.path, if path.starts_with('[') { "" } else { "." }),
                old: (!added).then(|| value.clone()),
                new: added.then(|| value.clone()),
                files: change.files.clone(),
            })
        })
        .collect()
}

fn change_line(change: &ValueChange, show_secrets: bool) -> String {
    let shown = |v: &Value| shown_value(&change.path, v, show_secrets);
    let files = change.files.join(", ");
    match (&change.old, &change.new) {
        (Some(old), Some(new)) => format!("~ {}: {} -> {}  {DIM}{files}{DIM:#}", change.path, shown(old), shown(new)),
        (None, Some(new)) => format!("+ {}: {}  {DIM}{files}{DIM:#}", change.path, shown(new)),
        (Some(old), None) => format!("- {} (was {})  {DIM}{files}{DIM:#}", change.path, shown(old)),
        (None, None) => format!("  {}", change.path),
    }
}

/// A value on one line (compact JSON, cut at 100 characters); a credential-like path shows
/// only its size unless `--show-secrets`.
fn shown_value(path: &str, value: &Value, show_secrets: bool) -> String {
    let value = if show_secrets { value.clone() } else { promotion::redact_at(path, value) };
    let text = serde_json::to_string(&value).unwrap_or_default();
    if text.chars().count() > 100 { format!("{}…", text.chars().take(100).collect::<String>()) } else { text }
}

/// The start of `promote -o json`: the stages, the patch per release (RFC 6902, credentials
/// redacted unless `show_secrets`) with the chart version it changes, and the files it writes.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PromotionJson<'a> {
    command: &'static str,
    from: &'a str,
    to: &'a str,
    digest: &'a str,
    releases: Vec<ReleaseJson<'a>>,
    files: Vec<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReleaseJson<'a> {
    release: &'a str,
    patch: Value,
    chart_version: Option<&'a VersionChange>,
}

pub fn json<'a>(plan: &'a Promotion, from: &'a str, to: &'a str, show_secrets: bool) -> PromotionJson<'a> {
    PromotionJson {
        command: "promote",
        from,
        to,
        digest: &plan.digest,
        releases: plan
            .releases
            .iter()
            .map(|r| ReleaseJson {
                release: &r.release.name,
                patch: redacted_ops(&r.ops, show_secrets),
                chart_version: r.version.as_ref(),
            })
            .collect(),
        files: plan.files.iter().map(|f| f.display.as_str()).collect(),
    }
}

fn redacted_ops(ops: &[json_patch::PatchOperation], show_secrets: bool) -> Value {
    let mut value = serde_json::to_value(ops).unwrap_or_default();
    if show_secrets {
        return value;
    }
    if let Value::Array(items) = &mut value {
        for op in items {
            let path = op["path"].as_str().unwrap_or_default().replace('/', ".");
            if let Some(v) = op.get_mut("value") {
                *v = promotion::redact_at(&path, v);
            }
        }
    }
    value
}

/// The commit message of `--git-commit`: the promotion and its patch (credentials redacted:
/// commit messages are logs).
pub fn commit_message(plan: &Promotion) -> String {
    let mut paths: Vec<String> =
        plan.releases.iter().flat_map(|r| r.changes.iter().flat_map(leaves)).map(|c| c.path).collect();
    paths.sort();
    paths.dedup();
    let mut subject = format!("Promote {} to {}: {}", plan.from.name, plan.to.name, paths.join(", "));
    if subject.chars().count() > 72 {
        subject = format!("Promote {} to {} ({} values)", plan.from.name, plan.to.name, paths.len());
    }
    let mut body = format!("{subject}\n\n{}\n", promotion::commit_line(&plan.from.name, &plan.to.name, &plan.digest));
    for release in &plan.releases {
        if release.changes.is_empty() && release.version.is_none() {
            continue;
        }
        let _ = writeln!(body, "\n{}:", release.release.name);
        for change in release.changes.iter().flat_map(leaves) {
            let _ = writeln!(body, "  {}", strip_styles(&change_line(&change, false)));
        }
        if let Some(v) = &release.version {
            let _ = writeln!(body, "  ~ chart version: {:?} -> {:?}", v.old, v.new);
        }
    }
    body
}

fn strip_styles(text: &str) -> String {
    anstream::adapter::strip_str(text).to_string()
}
