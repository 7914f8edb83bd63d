//! What `helm envs init` infers from the values layout a project already has: its stages in
//! promotion order, a kubeconfig context and a namespace for each, the per-stage values files a
//! release lacks, the values that differ between the stages today (envSpecific suggestions),
//! and the stages file that says all of it. Reads only; the command writes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::compare::drift;
use crate::config::layout::{self, Detection};
use crate::config::stages::Project;
use crate::error::{Detail, Error, Result};
use crate::system::kube::Kubectl;

/// Value paths that a promotion should carry (what changed upstream and was tested there), never
/// suggested as intentional differences.
const PROMOTED_KEYS: &[&str] = &["image", "images", "tag", "digest", "version", "appVersion"];

/// A project's layout and the stages inferred from it.
pub struct Inference {
    pub detection: Detection,
    pub stages: Vec<StagePlan>,
}

/// A values file `init` creates because a release has none for a stage.
pub struct MissingValues {
    pub path: PathBuf,
    pub header: String,
}

/// Detect the charts and values layout under `root` and plan a stage for each stage name found;
/// an error when there is no chart, or a chart without per-stage values files.
pub fn infer(root: &Path) -> Result<Inference> {
    let detection = layout::detect(root);
    check_found(&detection, root)?;
    let stages = plan_stages(&detection.stages(), &detection, root);
    Ok(Inference { detection, stages })
}

impl Inference {
    /// Every stage must have every release's own file: the ones a release lacks, to be created
    /// empty (a comment says why).
    pub fn missing_values(&self, root: &Path) -> Vec<MissingValues> {
        let mut missing = Vec::new();
        for found in &self.detection.chosen {
            for stage in self.stages.iter().map(|s| &s.name).filter(|s| !found.stages.contains_key(*s)) {
                missing.push(MissingValues {
                    path: root.join(found.own.replace("{stage}", stage)),
                    header: format!(
                        "# Values of {} in {stage}: created empty by `helm envs init` (the other stages have such a file).\n",
                        found.chart.name
                    ),
                });
            }
        }
        missing
    }

    /// The stages file, with `env_specific` as its envSpecific list.
    pub fn stages_file(&self, env_specific: &[String]) -> String {
        let (chosen, plans) = (&self.detection.chosen, &self.stages);
        let layouts: Vec<&str> = chosen.iter().map(|f| f.layout.describe()).collect();
        let mut out = format!(
            "# Written by `helm envs init` from the layout {}.\n\
         # Check the stage order, then fill in what is marked TODO. Reference: `helm envs schema`,\n\
         # docs/stages-file.md.\n",
            dedup(layouts).join(", ")
        );
        out.push_str("stages:                # promotion order, first to last\n");
        for plan in plans {
            let _ = writeln!(out, "  - name: {}", plan.name);
            match &plan.context {
                Some(context) => {
                    let _ = writeln!(out, "    kubeContext: {}   # {}", quoted(context), plan.context_note);
                }
                None => {
                    let _ = writeln!(
                        out,
                        "    kubeContext: {}   # TODO: the kubeconfig context of {} ({})",
                        quoted(&format!("TODO-{}", plan.name)),
                        plan.name,
                        plan.context_note
                    );
                }
            }
            let _ = writeln!(
                out,
                "    namespace: {}   # TODO: guessed; the namespace {} deploys to",
                plan.namespace, plan.name
            );
            if plan.approval {
                out.push_str("    approval: required   # deploying into it needs a confirmation or --yes\n");
            }
        }
        out.push_str("releases:\n");
        for found in chosen {
            let _ = writeln!(out, "  - name: {}", release_name(&found.chart.name));
            let chart = if found.chart.dir == "." { ".".to_string() } else { format!("./{}", found.chart.dir) };
            let _ = writeln!(out, "    chart: {}", quoted(&chart));
            out.push_str("    values:\n");
            for shared in &found.shared {
                let _ = writeln!(out, "      - {}   # every stage", quoted(shared));
            }
            let _ = writeln!(out, "      - {}   # the stage's own", quoted(&found.own));
        }
        if env_specific.is_empty() {
            out.push_str("envSpecific: []\n");
        } else {
            out.push_str(
                "# Values that differ between the stages today. A path listed here is an intentional difference:\n\
             # never promoted, not drift. Remove the ones a promotion should carry.\n\
             envSpecific:\n",
            );
            for path in env_specific {
                let _ = writeln!(out, "  - {}", quoted(path));
            }
        }
        out
    }
}

fn check_found(detection: &Detection, root: &Path) -> Result<()> {
    let layouts = "values-<stage>.yaml or values.<stage>.yaml next to the chart, envs/<stage>/values.yaml, \
                   <stage>/values.yaml, or the chart's ci/<stage>-values.yaml";
    if detection.charts.is_empty() {
        return Err(Error::Failed {
            headline: format!("no Helm chart found in {}", root.display()),
            details: vec![
                Detail::Note("looked for Chart.yaml here and up to three directories down".into()),
                Detail::Help("run `helm envs init` in the directory that holds your chart and its values files".into()),
            ],
        });
    }
    let without: Vec<&str> = detection
        .charts
        .iter()
        .filter(|c| !detection.chosen.iter().any(|f| f.chart == **c))
        .map(|c| c.dir.as_str())
        .collect();
    if !without.is_empty() {
        return Err(Error::Failed {
            headline: format!("no per-stage values files found for the chart in {}", without.join(", ")),
            details: vec![
                Detail::Note(format!("recognised layouts: {layouts}")),
                Detail::Help(
                    "create one values file per stage in one of these layouts (they may start empty), then run init again"
                        .into(),
                ),
            ],
        });
    }
    Ok(())
}

/// One stage as init writes it, and where each setting came from.
pub struct StagePlan {
    pub name: String,
    pub context: Option<String>,
    /// Why the context was chosen, or why none could be.
    pub context_note: String,
    pub namespace: String,
    pub approval: bool,
}

fn plan_stages(stages: &[String], detection: &Detection, root: &Path) -> Vec<StagePlan> {
    let contexts = Kubectl::locate().and_then(|k| k.context_names());
    // Namespaces are guessed `<release>-<stage>`, or `<project directory>-<stage>` for several.
    let base = match detection.chosen.as_slice() {
        [one] => one.chart.name.clone(),
        _ => root.file_name().map_or_else(|| "app".into(), |n| n.to_string_lossy().into_owned()),
    };
    stages
        .iter()
        .map(|stage| {
            let (context, context_note) = match &contexts {
                Ok(names) => match_context(stage, names),
                Err(err) => (None, format!("your kubeconfig could not be read: {}", err.one_line())),
            };
            StagePlan {
                name: stage.clone(),
                context,
                context_note,
                namespace: namespace_guess(&base, stage),
                approval: layout::is_production(stage),
            }
        })
        .collect()
}

/// The kubeconfig context for a stage: one whose name is the stage's (or an alias), or has it as
/// a word (`prod` in `prod-cluster`); only when exactly one does.
fn match_context(stage: &str, contexts: &[String]) -> (Option<String>, String) {
    let aliases = layout::aliases(stage);
    if let Some(exact) = contexts.iter().find(|c| aliases.contains(&c.as_str())) {
        return (Some(exact.clone()), format!("the kubeconfig context named {exact}"));
    }
    let words = |c: &str| c.split(|ch: char| !ch.is_ascii_alphanumeric()).map(str::to_string).collect::<Vec<_>>();
    let matching: Vec<&String> =
        contexts.iter().filter(|c| words(c).iter().any(|w| aliases.contains(&w.as_str()))).collect();
    match matching.as_slice() {
        [one] => (Some((*one).clone()), format!("the only kubeconfig context with `{stage}` in its name")),
        [] => (None, format!("no context in your kubeconfig is named like `{stage}`")),
        several => (
            None,
            format!(
                "several kubeconfig contexts could be `{stage}`: {}",
                several.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
            ),
        ),
    }
}

/// `<release>-<stage>`, cut to a valid namespace.
fn namespace_guess(base: &str, stage: &str) -> String {
    let mut name: String = format!("{base}-{stage}")
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    name.truncate(63);
    name.trim_matches('-').to_string()
}

/// The values that differ between neighbouring stages today: `listed` become envSpecific (an
/// intentional difference is never promoted); `left_out` are what promotions should carry.
#[derive(Default)]
pub struct Suggestions {
    pub listed: Vec<String>,
    pub left_out: Vec<String>,
}

/// Loads `text` as the stages file (a temporary file in `root`, so relative paths resolve as
/// they will) to validate it and compare the stages' values.
pub fn env_specific_suggestions(root: &Path, text: &str) -> Result<Suggestions> {
    let temp = tempfile::Builder::new()
        .prefix(".helm-envs.init.")
        .suffix(".yaml")
        .tempfile_in(root)
        .map_err(Error::io(format!("cannot write in {}", root.display())))?;
    std::fs::write(temp.path(), text).map_err(Error::io("cannot write a temporary stages file"))?;
    let project = Project::load(temp.path()).map_err(|err| Error::Failed {
        headline: format!("the stages file inferred for {} does not load; nothing was written", root.display()),
        details: vec![
            Detail::Nested(
                err.to_string().replace(&temp.path().display().to_string(), "the inferred helm-envs.yaml"),
                err.details(),
            ),
            Detail::Help(
                "fix what is reported (a values file helm cannot read, for example) and run init again".into(),
            ),
        ],
    })?;
    let mut suggestions = Suggestions::default();
    for release in &project.releases {
        let targets: Vec<_> = project.stages.iter().map(|stage| project.target(stage, release)).collect();
        let merged: Vec<_> = targets.iter().map(|t| project.merged_values(t)).collect();
        // The chart's defaults too: a map is named whole only if no key of it is the same everywhere.
        let mut with_defaults = merged.clone();
        with_defaults.extend(release.chart_defaults());
        let mut differing: Vec<Vec<String>> = Vec::new();
        for (i, pair) in targets.windows(2).enumerate() {
            let own = (project.own_values(&pair[0]), project.own_values(&pair[1]));
            for (keys, _) in drift::value_differences(&own.0, &own.1, &merged[i], &merged[i + 1], &[]) {
                if !differing.contains(&keys) {
                    differing.push(keys);
                }
            }
        }
        for keys in collapse(differing, &with_defaults) {
            let promoted = keys.iter().any(|k| PROMOTED_KEYS.contains(&k.as_str()));
            let path = drift::path_text(&keys);
            let list = if promoted { &mut suggestions.left_out } else { &mut suggestions.listed };
            if !list.contains(&path) {
                list.push(path);
            }
        }
    }
    Ok(suggestions)
}

/// Differing paths, with a map whose every key differs named once (`resources`, not
/// `resources.limits` and `resources.requests`); a map with some keys the same keeps its
/// differing keys apart (`ingress.host`, not `ingress`, when `ingress.enabled` is the same).
fn collapse(mut paths: Vec<Vec<String>>, merged: &[serde_json::Map<String, serde_json::Value>]) -> Vec<Vec<String>> {
    loop {
        let parents: Vec<Vec<String>> =
            paths.iter().filter(|p| p.len() > 1).map(|p| p[..p.len() - 1].to_vec()).collect();
        let full = parents.into_iter().find(|parent| {
            let differing: std::collections::BTreeSet<&String> = paths
                .iter()
                .filter(|p| p.len() == parent.len() + 1 && p.starts_with(parent))
                .map(|p| &p[parent.len()])
                .collect();
            let all: std::collections::BTreeSet<&String> = merged
                .iter()
                .filter_map(|values| {
                    crate::config::values::lookup(values, parent).and_then(serde_json::Value::as_object)
                })
                .flat_map(|map| map.keys())
                .collect();
            // Only direct children may be listed under it: a deeper path means a child map differs in part.
            let only_children = paths.iter().filter(|p| p.starts_with(parent)).all(|p| p.len() == parent.len() + 1);
            only_children && !all.is_empty() && differing == all
        });
        let Some(parent) = full else { return paths };
        let at = paths.iter().position(|p| p.starts_with(&parent)).unwrap_or(0);
        paths.retain(|p| !p.starts_with(&parent));
        paths.insert(at.min(paths.len()), parent);
    }
}

/// A chart's name as a release name: lowercase letters, digits and '-' (`My_Chart` -> `my-chart`).
fn release_name(chart: &str) -> String {
    let name: String =
        chart.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let name = name.trim_matches('-');
    name[..name.len().min(53)].trim_end_matches('-').to_string()
}

/// A YAML string with explicit quotes (a bare `y`, `no` or `{stage}` would not stay a string).
fn quoted(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

fn dedup(mut items: Vec<&str>) -> Vec<&str> {
    let mut seen = Vec::new();
    items.retain(|item| {
        let new = !seen.contains(item);
        seen.push(item);
        new
    });
    items
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn names(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_context_is_chosen_only_when_exactly_one_fits() {
        let contexts = names(&["kind-dev", "prod-eu", "prod-us", "staging"]);
        assert_eq!(match_context("staging", &contexts).0.as_deref(), Some("staging"));
        assert_eq!(match_context("dev", &contexts).0.as_deref(), Some("kind-dev"));
        let (none, why) = match_context("production", &contexts);
        assert_eq!(none, None);
        assert!(why.contains("prod-eu, prod-us"), "{why}");
        assert_eq!(match_context("qa", &contexts).0, None);
    }

    #[test]
    fn names_are_made_valid() {
        assert_eq!(namespace_guess("My_App", "dev"), "my-app-dev");
        assert_eq!(namespace_guess(&"a".repeat(70), "dev").len(), 63);
        assert_eq!(release_name("My_Chart"), "my-chart");
        assert_eq!(release_name("-x-"), "x");
    }

    #[test]
    fn a_map_whose_every_key_differs_is_named_whole() {
        let stage = |cpu: &str, memory: &str, host: &str| {
            json!({"resources": {"cpu": cpu, "memory": memory}, "ingress": {"enabled": true, "host": host}})
                .as_object()
                .cloned()
                .expect("an object")
        };
        let merged = [stage("1", "1Gi", "dev.example.com"), stage("2", "2Gi", "example.com")];
        let paths = vec![names(&["resources", "cpu"]), names(&["resources", "memory"]), names(&["ingress", "host"])];
        assert_eq!(collapse(paths, &merged), vec![names(&["resources"]), names(&["ingress", "host"])]);
    }
}
