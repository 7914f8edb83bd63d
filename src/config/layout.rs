//! Recognising the values layouts teams already use, for `helm envs init`: which charts a
//! directory holds, which stages their values files name, and the values paths (with
//! `{stage}`) a stages file needs for them. Reads the directory tree; writes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::config::stages;
use crate::config::yaml;

/// A values-file convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layout {
    /// `values-<stage>.yaml` or `values.<stage>.yaml` in the chart's directory or beside it.
    NextToChart,
    /// `envs/<stage>/values.yaml` (or `environments/`, or one file per release in it).
    EnvsDir,
    /// `<stage>/values.yaml` at the top of the project.
    StageDirs,
    /// The chart's `ci/` values (`ci/<stage>-values.yaml`, as chart-testing names them).
    ChartCi,
}

impl Layout {
    pub fn describe(self) -> &'static str {
        match self {
            Layout::NextToChart => "values-<stage>.yaml next to the chart",
            Layout::EnvsDir => "envs/<stage>/values.yaml",
            Layout::StageDirs => "<stage>/values.yaml",
            Layout::ChartCi => "the chart's ci/ values (ci/<stage>-values.yaml)",
        }
    }
}

/// A chart found in the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chart {
    /// Its directory, relative to the project root (`.` for the root itself).
    pub dir: String,
    /// `name` from Chart.yaml, the release name.
    pub name: String,
    pub version: Option<String>,
}

/// How one chart's values are laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub layout: Layout,
    pub chart: Chart,
    /// Values files shared by every stage, relative to the root, in merge order.
    pub shared: Vec<String>,
    /// The stage's own file, relative to the root, with `{stage}` (or `{release}`).
    pub own: String,
    /// Stage name -> its existing own file.
    pub stages: BTreeMap<String, String>,
}

/// What `init` found: the layout chosen per chart, and the others also present.
#[derive(Debug, Default)]
pub struct Detection {
    pub charts: Vec<Chart>,
    pub chosen: Vec<Found>,
    /// Layouts that matched too, with fewer stages (not used; reported).
    pub also: Vec<Found>,
}

impl Detection {
    /// Every stage any chart's values name, in inferred promotion order.
    pub fn stages(&self) -> Vec<String> {
        let names: BTreeSet<&String> = self.chosen.iter().flat_map(|f| f.stages.keys()).collect();
        let mut stages: Vec<String> = names.into_iter().cloned().collect();
        stages.sort_by(|a, b| stage_rank(a).total_cmp(&stage_rank(b)).then(a.cmp(b)));
        stages
    }
}

/// Names that mean "every stage" when they sit where a stage name would (`values-common.yaml`).
const SHARED_NAMES: &[&str] = &["common", "shared", "base", "default", "defaults", "global", "all"];

/// Directories that are never stages, nor hold charts of the project.
const NOT_STAGES: &[&str] =
    &["charts", "chart", "templates", "ci", "envs", "environments", "env", "node_modules", "target", "crds"];

/// Where a stage name usually sits in a promotion order (lower first); unknown names in between.
fn stage_rank(name: &str) -> f64 {
    match name {
        "local" | "sandbox" => 0.0,
        "dev" | "develop" | "development" => 1.0,
        "int" | "integration" | "test" | "testing" | "qa" => 2.0,
        "stage" | "staging" | "uat" | "preprod" | "pre-prod" | "preproduction" => 4.0,
        "canary" => 5.0,
        "prod" | "production" | "live" => 6.0,
        _ => 3.0,
    }
}

/// A stage whose name says it is production: deploying there needs approval.
pub fn is_production(name: &str) -> bool {
    matches!(name, "prod" | "production" | "live") || name.starts_with("prod-") || name.ends_with("-prod")
}

/// The other names a stage goes by, for matching kube contexts (`prod` finds `prod-cluster`
/// and `production-eu`).
pub fn aliases(stage: &str) -> Vec<&str> {
    let group: &[&str] = match stage {
        "dev" | "develop" | "development" => &["dev", "develop", "development"],
        "stage" | "staging" => &["stage", "staging", "stg"],
        "prod" | "production" => &["prod", "production", "prd"],
        "test" | "testing" => &["test", "testing"],
        _ => &[],
    };
    let mut names = vec![stage];
    names.extend(group.iter().copied().filter(|n| *n != stage));
    names
}

/// Look at `root` (and up to three levels below it) for charts and their stage values.
pub fn detect(root: &Path) -> Detection {
    let charts = find_charts(root);
    let single = charts.len() == 1;
    let mut detection = Detection { charts: charts.clone(), ..Detection::default() };
    for chart in charts {
        let mut candidates: Vec<Found> =
            patterns(&chart, single).into_iter().filter_map(|(layout, p)| matched(root, &chart, layout, &p)).collect();
        // Most stages wins; on a tie, the order of the layouts above.
        candidates.sort_by(|a, b| b.stages.len().cmp(&a.stages.len()).then(a.layout.cmp(&b.layout)));
        let mut candidates = candidates.into_iter();
        if let Some(best) = candidates.next() {
            detection.chosen.push(best);
        }
        detection.also.extend(candidates);
    }
    detection
}

/// The values paths each layout uses for a chart, relative to the root, `{stage}` where the
/// stage name goes. Paths without the chart's name are used only when it is the only chart.
fn patterns(chart: &Chart, single: bool) -> Vec<(Layout, String)> {
    let mut out = Vec::new();
    let mut beside = vec![chart.dir.clone()];
    if single && chart.dir != "." {
        beside.push(".".into());
        beside.extend(Path::new(&chart.dir).parent().map(|p| p.display().to_string()).filter(|p| !p.is_empty()));
    }
    beside.dedup();
    for dir in &beside {
        for name in ["values-{stage}.yaml", "values.{stage}.yaml", "values-{stage}.yml", "values.{stage}.yml"] {
            out.push((Layout::NextToChart, join(dir, name)));
        }
        if !single {
            out.push((Layout::NextToChart, join(dir, &format!("{}-values-{{stage}}.yaml", chart.name))));
        }
    }
    let release = &chart.name;
    for envs in ["envs", "environments", "env"] {
        if single {
            out.push((Layout::EnvsDir, format!("{envs}/{{stage}}/values.yaml")));
            out.push((Layout::EnvsDir, format!("{envs}/{{stage}}/values.yml")));
        }
        out.push((Layout::EnvsDir, format!("{envs}/{{stage}}/{release}.yaml")));
        out.push((Layout::EnvsDir, format!("{envs}/{{stage}}/{release}/values.yaml")));
    }
    if single {
        out.push((Layout::StageDirs, "{stage}/values.yaml".into()));
        out.push((Layout::StageDirs, "{stage}/values.yml".into()));
    }
    out.push((Layout::StageDirs, format!("{{stage}}/{release}.yaml")));
    out.push((Layout::StageDirs, format!("{{stage}}/{release}/values.yaml")));
    for name in ["ci/{stage}-values.yaml", "ci/values-{stage}.yaml", "ci/{stage}.yaml"] {
        out.push((Layout::ChartCi, join(&chart.dir, name)));
    }
    out
}

fn join(dir: &str, name: &str) -> String {
    if dir == "." { name.to_string() } else { format!("{dir}/{name}") }
}

/// The stages a pattern finds, and the shared files beside them; `None` when it finds no stage.
fn matched(root: &Path, chart: &Chart, layout: Layout, pattern: &str) -> Option<Found> {
    let (prefix, suffix) = pattern.split_once("{stage}")?;
    let (dir, name_prefix) = prefix.rsplit_once('/').unwrap_or(("", prefix));
    let listed = root.join(dir);
    let mut stages = BTreeMap::new();
    let mut shared = Vec::new();
    for entry in std::fs::read_dir(&listed).ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(name_prefix) else { continue };
        let stage = match suffix.strip_prefix('/') {
            // The stage is a directory: the whole name, with the file inside it.
            Some(inside) => {
                if !root.join(dir).join(&name).join(inside).is_file() || is_chart_or_reserved(root, dir, &name) {
                    continue;
                }
                rest.to_string()
            }
            None => match rest.strip_suffix(suffix) {
                Some(stage) if entry.path().is_file() => stage.to_string(),
                _ => continue,
            },
        };
        // `ci/{stage}.yaml` also sees `ci/dev-values.yaml`: that is another pattern's stage.
        if !stages::is_dns_label(&stage, 53) || stage.contains("values") {
            continue;
        }
        let path = pattern.replace("{stage}", &stage);
        if SHARED_NAMES.contains(&stage.as_str()) {
            shared.push(path);
        } else {
            stages.insert(stage, path);
        }
    }
    if stages.is_empty() {
        return None;
    }
    // A plain values.yaml beside a chart (not the chart's own defaults) is shared by every stage.
    let beside = if dir.is_empty() { "." } else { dir };
    if layout == Layout::NextToChart && beside != chart.dir && root.join(join(beside, "values.yaml")).is_file() {
        shared.insert(0, join(beside, "values.yaml"));
    }
    Some(Found { layout, chart: chart.clone(), shared, own: pattern.to_string(), stages })
}

fn is_chart_or_reserved(root: &Path, dir: &str, name: &str) -> bool {
    name.starts_with('.') || NOT_STAGES.contains(&name) || root.join(dir).join(name).join("Chart.yaml").is_file()
}

/// Chart directories: the root itself, or up to three levels below it (not inside a chart:
/// those are its subcharts).
fn find_charts(root: &Path) -> Vec<Chart> {
    let mut found = Vec::new();
    walk(root, root, 0, &mut found);
    found.sort_by(|a, b| a.dir.cmp(&b.dir));
    found
}

fn walk(root: &Path, dir: &Path, depth: usize, found: &mut Vec<Chart>) {
    if let Some(chart) = read_chart(root, dir) {
        found.push(chart);
        return;
    }
    if depth == 3 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    for sub in dirs {
        let name = sub.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with('.') || name == "node_modules" || name == "target" {
            continue;
        }
        walk(root, &sub, depth + 1, found);
    }
}

fn read_chart(root: &Path, dir: &Path) -> Option<Chart> {
    let file = dir.join("Chart.yaml");
    let metadata = yaml::parse_values(&std::fs::read_to_string(&file).ok()?, &file).ok()?;
    let name = metadata.get("name").and_then(Value::as_str)?.to_string();
    let relative = dir.strip_prefix(root).ok()?.display().to_string();
    Some(Chart {
        dir: if relative.is_empty() { ".".into() } else { relative },
        name,
        version: metadata.get("version").and_then(Value::as_str).map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for file in files {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            let text = if file.ends_with("Chart.yaml") {
                let name = path.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
                format!("apiVersion: v2\nname: {}\nversion: 1.0.0\n", name.unwrap_or_default())
            } else {
                String::new()
            };
            std::fs::write(path, text).expect("write");
        }
        dir
    }

    #[test]
    fn values_next_to_a_chart_with_a_shared_file_and_stage_order() {
        let dir = tree(&[
            "web/Chart.yaml",
            "web/values.yaml",
            "web/values-prod.yaml",
            "web/values-dev.yaml",
            "web/values-staging.yaml",
            "web/values-common.yaml",
        ]);
        let detection = detect(dir.path());
        assert_eq!(detection.stages(), ["dev", "staging", "prod"]);
        let found = &detection.chosen[0];
        assert_eq!((found.layout, found.own.as_str()), (Layout::NextToChart, "web/values-{stage}.yaml"));
        assert_eq!(found.shared, ["web/values-common.yaml"], "the chart's own values.yaml is its defaults");
    }

    #[test]
    fn a_values_file_beside_the_chart_directory_is_shared() {
        let dir = tree(&["chart/Chart.yaml", "values.yaml", "values.dev.yaml", "values.production.yaml"]);
        let found = &detect(dir.path()).chosen[0];
        assert_eq!(found.own, "values.{stage}.yaml");
        assert_eq!(found.shared, ["values.yaml"]);
    }

    #[test]
    fn stage_directories_skip_charts_and_reserved_names() {
        let dir = tree(&[
            "chart/Chart.yaml",
            "chart/values.yaml",
            "ci/values.yaml",
            "qa/values.yaml",
            "production/values.yaml",
            "dev/values.yaml",
        ]);
        let detection = detect(dir.path());
        assert_eq!(detection.chosen[0].layout, Layout::StageDirs);
        assert_eq!(detection.stages(), ["dev", "qa", "production"]);
    }

    #[test]
    fn several_charts_use_per_release_files() {
        let dir = tree(&[
            "charts/api/Chart.yaml",
            "charts/web/Chart.yaml",
            "envs/dev/api.yaml",
            "envs/dev/web.yaml",
            "envs/prod/api.yaml",
            "envs/prod/web.yaml",
        ]);
        let detection = detect(dir.path());
        let owns: Vec<&str> = detection.chosen.iter().map(|f| f.own.as_str()).collect();
        assert_eq!(owns, ["envs/{stage}/api.yaml", "envs/{stage}/web.yaml"]);
        assert_eq!(detection.stages(), ["dev", "prod"]);
    }

    #[test]
    fn the_layout_with_most_stages_wins_and_the_others_are_reported() {
        let dir = tree(&[
            "Chart.yaml",
            "ci/dev-values.yaml",
            "ci/staging-values.yaml",
            "ci/prod-values.yaml",
            "values-dev.yaml",
        ]);
        let detection = detect(dir.path());
        assert_eq!(detection.chosen[0].layout, Layout::ChartCi);
        assert_eq!(detection.chosen[0].own, "ci/{stage}-values.yaml");
        assert_eq!(detection.also[0].layout, Layout::NextToChart);
    }

    #[test]
    fn stage_names_and_context_aliases() {
        assert!(is_production("prod") && is_production("prod-eu") && !is_production("products"));
        assert_eq!(aliases("prod"), ["prod", "production", "prd"]);
        assert_eq!(aliases("qa"), ["qa"]);
    }
}
