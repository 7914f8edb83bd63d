//! What `helm envs init` tells the user: what it found, what it wrote, what to fill in.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::layout::Found;
use crate::inspect::scaffold::{Inference, Suggestions};
use crate::terminal::{BOLD, NAME, WARN};

/// The report after `init` wrote `file` (and `created`) under `root`.
pub struct Written<'a> {
    pub file: &'a Path,
    pub root: &'a Path,
    pub created: &'a [PathBuf],
    pub suggestions: &'a Suggestions,
}

pub fn report(inference: &Inference, written: &Written) -> String {
    let Written { file, root, created, suggestions } = *written;
    let (detection, plans) = (&inference.detection, &inference.stages);
    let relative = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
    let mut out = String::new();
    for found in &detection.chosen {
        let version = found.chart.version.as_deref().map(|v| format!(", version {v}")).unwrap_or_default();
        let _ = writeln!(out, "{BOLD}Release {}{BOLD:#}: chart {}{version}", found.chart.name, found.chart.dir);
        let _ = writeln!(out, "  layout: {} ({})", found.layout.describe(), found.own);
        if !found.shared.is_empty() {
            let _ = writeln!(out, "  shared by every stage: {}", found.shared.join(", "));
        }
        for other in detection.also.iter().filter(|o| o.chart == found.chart) {
            let _ = writeln!(out, "  also present, not used: {} ({})", other.own, stage_list(other));
        }
    }
    let names: Vec<&str> = plans.iter().map(|p| p.name.as_str()).collect();
    let _ = writeln!(out, "{BOLD}Stages{BOLD:#}, in promotion order as their names suggest: {}", names.join(" → "));
    for path in created {
        let _ = writeln!(out, "Created {} (empty: that release had no values file for that stage)", relative(path));
    }
    if !suggestions.listed.is_empty() {
        let _ = writeln!(
            out,
            "envSpecific: {} (they differ between stages today; a listed path is never promoted)",
            suggestions.listed.join(", ")
        );
    }
    if !suggestions.left_out.is_empty() {
        let _ = writeln!(out, "  not listed, promotions carry them: {}", suggestions.left_out.join(", "));
    }
    let _ = writeln!(out, "{NAME}Wrote{NAME:#} {}\n", file.display());
    let _ = writeln!(out, "{WARN}Fill in before deploying{WARN:#} (marked TODO in the file):");
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
    for plan in plans {
        let context = match &plan.context {
            Some(context) => format!("kubeContext {context} ({})", plan.context_note),
            None => format!("kubeContext: TODO ({})", plan.context_note),
        };
        let approval = if plan.approval { "; approval: required" } else { "" };
        let _ = writeln!(out, "  {:<width$}  {context}; namespace {} (guessed){approval}", plan.name, plan.namespace);
    }
    let first = names.first().copied().unwrap_or("dev");
    let _ = writeln!(out, "\nThen: helm envs list; helm envs render {first}; helm envs drift");
    out
}

fn stage_list(found: &Found) -> String {
    let stages: Vec<&str> = found.stages.keys().map(String::as_str).collect();
    format!("stages {}", stages.join(", "))
}
