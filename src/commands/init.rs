//! `helm envs init`: write a stages file for the values layout a project already has. It asks
//! nothing: it prints what it inferred and what the user must fill in (contexts, namespaces).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::cli::InitArgs;
use crate::compare::drift;
use crate::config::layout::{self, Detection, Found};
use crate::config::stages::{self, Project};
use crate::error::{Detail, Error, Result};
use crate::system::files;
use crate::system::kube::Kubectl;
use crate::terminal::{self, BOLD, NAME, WARN};

/// Value paths that a promotion should carry (what changed upstream and was tested there), never
/// suggested as intentional differences.
const PROMOTED_KEYS: &[&str] = &["image", "images", "tag", "digest", "version", "appVersion"];

pub fn run(config: Option<&Path>, args: &InitArgs) -> Result<u8> {
    let cwd = std::env::current_dir()
        .map_err(|e| Error::Other(anyhow::Error::new(e).context("cannot read the current directory")))?;
    let file = config.map_or_else(|| cwd.join(stages::FILE_NAME), |c| cwd.join(c));
    let root = file.parent().map(Path::to_path_buf).unwrap_or(cwd);
    if file.exists() && !args.force {
        return Err(Error::Failed {
            headline: format!("{} already exists", file.display()),
            details: vec![Detail::Help(
                "edit it (`helm envs list` shows what it defines), or pass --force to replace it".into(),
            )],
        });
    }
    let detection = layout::detect(&root);
    check_found(&detection, &root)?;
    let stages = detection.stages();
    let plans = plan_stages(&stages, &detection, &root);
    let created = create_missing_values(&root, &detection, &stages)?;
    let mut text = stages_file(&detection, &plans, &[]);
    // Load what would be written (a temporary file beside it, so relative paths resolve the same)
    // to validate it and find the values that differ between the stages today.
    let suggestions = match env_specific_suggestions(&root, &text) {
        Ok(suggestions) => suggestions,
        Err(err) => {
            remove_created(&created);
            return Err(err);
        }
    };
    text = stages_file(&detection, &plans, &suggestions.listed);
    let written = match args.force {
        true => files::write_atomic(&file, text.as_bytes()),
        false => files::create_new(&file, text.as_bytes()),
    };
    if let Err(err) = written {
        remove_created(&created);
        return Err(Error::Other(err.context(format!("cannot write {}", file.display()))));
    }
    terminal::stdout(&report(&file, &root, &detection, &plans, &created, &suggestions));
    Ok(0)
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
struct StagePlan {
    name: String,
    context: Option<String>,
    /// Why the context was chosen, or why none could be.
    context_note: String,
    namespace: String,
    approval: bool,
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

/// Every stage must have every release's own file: the ones a release lacks are created empty.
fn create_missing_values(root: &Path, detection: &Detection, stages: &[String]) -> Result<Vec<PathBuf>> {
    let mut created = Vec::new();
    for found in &detection.chosen {
        for stage in stages.iter().filter(|s| !found.stages.contains_key(*s)) {
            let path = root.join(found.own.replace("{stage}", stage));
            let header = format!(
                "# Values of {} in {stage}: created empty by `helm envs init` (the other stages have such a file).\n",
                found.chart.name
            );
            let result = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .map_err(anyhow::Error::new)
                .and_then(|()| files::create_new(&path, header.as_bytes()));
            if let Err(err) = result {
                remove_created(&created);
                return Err(Error::Other(err.context(format!("cannot create {}", path.display()))));
            }
            created.push(path);
        }
    }
    Ok(created)
}

fn remove_created(created: &[PathBuf]) {
    for path in created {
        let _ = std::fs::remove_file(path);
    }
}

/// The values that differ between neighbouring stages today: `listed` become envSpecific (an
/// intentional difference is never promoted); `left_out` are what promotions should carry.
#[derive(Default)]
struct Suggestions {
    listed: Vec<String>,
    left_out: Vec<String>,
}

fn env_specific_suggestions(root: &Path, text: &str) -> Result<Suggestions> {
    let temp = tempfile::Builder::new()
        .prefix(".helm-envs.init.")
        .suffix(".yaml")
        .tempfile_in(root)
        .map_err(|e| Error::Other(anyhow::Error::new(e).context(format!("cannot write in {}", root.display()))))?;
    std::fs::write(temp.path(), text)
        .map_err(|e| Error::Other(anyhow::Error::new(e).context("cannot write a temporary stages file")))?;
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

fn stages_file(detection: &Detection, plans: &[StagePlan], env_specific: &[String]) -> String {
    let chosen = &detection.chosen;
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

fn report(
    file: &Path,
    root: &Path,
    detection: &Detection,
    plans: &[StagePlan],
    created: &[PathBuf],
    suggestions: &Suggestions,
) -> String {
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
