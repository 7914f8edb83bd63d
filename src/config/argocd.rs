//! Argo CD `Application`s generated from the stages file: one per release of a stage Argo CD
//! deploys, reading the chart and the values files a helm-envs deploy would pass, in the same
//! order, so the stages file stays the one place that says what makes a stage.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde_json::{Value, json};

use crate::config::stages::{ArgoCd, ArgoSync, Chart, Target};

/// Where the project sits in the Git repository Argo CD reads.
pub struct Repository<'a> {
    /// The project directory on disk (the stages file's, absolute).
    pub project_dir: &'a Path,
    /// The same directory inside the repository (`examples/acme`; empty at its root).
    pub project_path: &'a str,
    /// Helm repositories by name (`helm repo list`): where a `repo/chart` chart comes from.
    pub chart_repos: &'a BTreeMap<String, String>,
}

/// The label every generated Application carries, to find them again.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "helm-envs");

/// The Application's name: `PREFIXRELEASE-STAGE`.
pub fn name(target: &Target, argocd: &ArgoCd) -> String {
    format!("{}{}-{}", argocd.prefix, target.release.name, target.stage.name)
}

/// The Application of one (stage, release) Argo CD deploys; why it cannot be written otherwise.
pub fn application(target: &Target, argocd: &ArgoCd, repo: &Repository) -> Result<Value, String> {
    let root = repo_root(repo)?;
    let in_repo = |path: &Path| -> Result<String, String> {
        path.strip_prefix(&root)
            .map(|p| p.display().to_string())
            .map_err(|_| format!("{} is outside the Git repository Argo CD reads ({})", path.display(), root.display()))
    };
    let values: Vec<String> = target.values_files.iter().map(|f| in_repo(&f.path)).collect::<Result<_, _>>()?;
    let helm = |value_files: Vec<String>| json!({"releaseName": target.release.name, "valueFiles": value_files});
    let git = |extra: Value| {
        let mut source = json!({"repoURL": argocd.repo_url, "targetRevision": argocd.revision});
        merge(&mut source, extra);
        source
    };
    let (key, source) = match &target.release.chart {
        Chart::Local(chart) => {
            let chart = in_repo(chart)?;
            let relative = values.iter().map(|v| relative_to(&chart, v)).collect();
            ("source", git(json!({"path": chart, "helm": helm(relative)})))
        }
        Chart::Repo(_) | Chart::Oci(_) => {
            let (repo_url, chart) = chart_source(target, repo)?;
            let version = target.version.clone().ok_or_else(|| {
                format!(
                    "release `{}` has no chart version for stage `{}`: Argo CD needs one (`versions:`)",
                    target.release.name, target.stage.name
                )
            })?;
            // The values files come from the Git repository: a second source named `values`.
            let from_git = values.iter().map(|v| format!("$values/{v}")).collect();
            let chart = json!({"repoURL": repo_url, "chart": chart, "targetRevision": version, "helm": helm(from_git)});
            ("sources", json!([chart, git(json!({"ref": "values"}))]))
        }
    };
    let mut sync = json!({});
    if argocd.sync == ArgoSync::Automated {
        sync["automated"] = json!({"prune": true, "selfHeal": true});
    }
    if target.stage.create_namespace {
        sync["syncOptions"] = json!(["CreateNamespace=true"]);
    }
    let mut spec = json!({
        "project": argocd.project,
        "destination": {"name": argocd.cluster, "namespace": target.namespace},
        "syncPolicy": sync,
    });
    spec[key] = source;
    Ok(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": name(target, argocd),
            "namespace": argocd.namespace,
            "labels": {
                MANAGED_BY.0: MANAGED_BY.1,
                "helm-envs/stage": target.stage.name,
                "helm-envs/release": target.release.name,
            },
        },
        "spec": spec,
    }))
}

/// The `operation.sync` that syncs `application` (as generated) at `commit`: its revision, or
/// with several sources each one's (a chart's version; the commit for the Git repository).
pub fn sync_at(application: &Value, commit: &str) -> Value {
    match application["spec"]["sources"].as_array() {
        Some(sources) => {
            let revisions: Vec<Value> = sources
                .iter()
                .map(|source| match source.get("chart") {
                    Some(_) => source["targetRevision"].clone(),
                    None => json!(commit),
                })
                .collect();
            json!({"revisions": revisions})
        }
        None => json!({"revision": commit}),
    }
}

/// The repository's root on disk: the project directory less its path in the repository.
fn repo_root(repo: &Repository) -> Result<PathBuf, String> {
    let depth = Path::new(repo.project_path).components().filter(|c| matches!(c, Component::Normal(_))).count();
    repo.project_dir
        .ancestors()
        .nth(depth)
        .filter(|root| root.join(repo.project_path) == repo.project_dir || repo.project_path.is_empty())
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{} does not end with {}", repo.project_dir.display(), repo.project_path))
}

/// A repository or OCI chart as Argo CD names it: the repository URL and the chart.
fn chart_source(target: &Target, repo: &Repository) -> Result<(String, String), String> {
    match &target.release.chart {
        Chart::Oci(reference) => {
            let path = reference.trim_start_matches("oci://");
            let (registry, chart) = path.rsplit_once('/').ok_or_else(|| format!("`{reference}` names no chart"))?;
            Ok((registry.to_string(), chart.to_string()))
        }
        Chart::Repo(reference) => {
            let (name, chart) = reference.split_once('/').ok_or_else(|| format!("`{reference}` is not REPO/CHART"))?;
            let url = repo.chart_repos.get(name).ok_or_else(|| {
                format!("helm knows no repository `{name}` (helm repo list): Argo CD needs its URL for `{reference}`")
            })?;
            Ok((url.clone(), chart.to_string()))
        }
        Chart::Local(path) => Err(format!("{} is a local chart", path.display())),
    }
}

/// `to` (a path in the repository) as seen from the directory `from` (another): Argo CD reads a
/// local chart's values files relative to the chart.
fn relative_to(from: &str, to: &str) -> String {
    let from: Vec<&str> = from.split('/').filter(|c| !c.is_empty()).collect();
    let to: Vec<&str> = to.split('/').filter(|c| !c.is_empty()).collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let ups = std::iter::repeat_n("..", from.len() - common);
    ups.chain(to[common..].iter().copied()).collect::<Vec<_>>().join("/")
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::fixture;

    fn argo_project(chart: &str, extra: &str) -> (tempfile::TempDir, crate::config::stages::Project) {
        let stages = format!(
            "stages:\n  - name: staging\n    kubeContext: staging\n    namespace: shop\n    createNamespace: true\n    \
             argocd: {{repoUrl: \"https://git.example.com/platform.git\", revision: main, context: mgmt{extra}}}\n\
             releases:\n  - name: app\n    chart: {chart}\n    values: [values.yaml, \"envs/{{stage}}.yaml\"]\n\
             versions:\n  staging: {{app: 1.4.2}}\n"
        );
        let (dir, project) = fixture::load_with(&stages, &[("envs/staging.yaml", "replicas: 2\n")]);
        (dir, project.unwrap_or_else(|err| panic!("loads: {err}: {:?}", err.details())))
    }

    #[test]
    fn a_local_chart_reads_the_stages_values_files_in_order_relative_to_the_chart() {
        let (_dir, project) = argo_project("chart", "");
        let (stage, release) = (&project.stages[0], &project.releases[0]);
        let argocd = stage.argocd.as_ref().expect("argocd");
        let repos = BTreeMap::new();
        let repo = Repository { project_dir: &project.dir, project_path: "", chart_repos: &repos };
        let app = application(&project.target(stage, release), argocd, &repo).expect("an Application");
        assert_eq!(app["metadata"]["name"], "app-staging");
        assert_eq!(app["metadata"]["namespace"], "argocd");
        assert_eq!(app["metadata"]["labels"]["helm-envs/stage"], "staging");
        let source = &app["spec"]["source"];
        assert_eq!(source["repoURL"], "https://git.example.com/platform.git");
        assert_eq!(source["targetRevision"], "main");
        assert_eq!(source["path"], "chart");
        assert_eq!(source["helm"]["releaseName"], "app");
        assert_eq!(source["helm"]["valueFiles"], json!(["../values.yaml", "../envs/staging.yaml"]));
        assert_eq!(app["spec"]["destination"], json!({"name": "staging", "namespace": "shop"}));
        assert_eq!(app["spec"]["syncPolicy"]["automated"], json!({"prune": true, "selfHeal": true}));
        assert_eq!(app["spec"]["syncPolicy"]["syncOptions"], json!(["CreateNamespace=true"]));

        // A project below the repository's root: paths are the repository's, from its root.
        let below = Repository { project_dir: Path::new("/r/examples/acme"), project_path: "examples/acme", ..repo };
        assert_eq!(repo_root(&below).expect("root"), Path::new("/r"));
        let wrong = Repository { project_dir: Path::new("/r/examples/acme"), project_path: "other/acme", ..below };
        assert!(repo_root(&wrong).is_err());
        assert_eq!(relative_to("charts/web", "examples/acme/values/web.yaml"), "../../examples/acme/values/web.yaml");
    }

    #[test]
    fn repository_and_oci_charts_take_the_values_files_from_git_as_a_second_source() {
        let (_dir, project) =
            argo_project("oci://registry.example.com/charts/app", ", sync: manual, cluster: eu-1, prefix: shop-");
        let (stage, release) = (&project.stages[0], &project.releases[0]);
        let argocd = stage.argocd.as_ref().expect("argocd");
        let repos = BTreeMap::from([("acme".to_string(), "https://charts.example.com".to_string())]);
        let repo = Repository { project_dir: &project.dir, project_path: "", chart_repos: &repos };
        let app = application(&project.target(stage, release), argocd, &repo).expect("an Application");
        let sources = &app["spec"]["sources"];
        assert_eq!(sources[0]["repoURL"], "registry.example.com/charts");
        assert_eq!(sources[0]["chart"], "app");
        assert_eq!(sources[0]["targetRevision"], "1.4.2");
        assert_eq!(sources[0]["helm"]["valueFiles"], json!(["$values/values.yaml", "$values/envs/staging.yaml"]));
        assert_eq!(
            sources[1],
            json!({"repoURL": "https://git.example.com/platform.git", "targetRevision": "main", "ref": "values"})
        );
        assert_eq!(app["spec"]["destination"]["name"], "eu-1");
        assert_eq!(app["metadata"]["name"], "shop-app-staging");
        assert!(app["spec"]["syncPolicy"].get("automated").is_none(), "manual: {app:#}");
        // A manual sync at a commit names each source's revision: the chart's version, the commit.
        let commit = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(sync_at(&app, commit), json!({"revisions": ["1.4.2", commit]}));
        assert_eq!(sync_at(&json!({"spec": {"source": sources[1]}}), commit), json!({"revision": commit}));

        let (_dir, project) = argo_project("acme/app", "");
        let target = project.target(&project.stages[0], &project.releases[0]);
        let argocd = project.stages[0].argocd.as_ref().expect("argocd");
        let repo = Repository { project_dir: &project.dir, project_path: "", chart_repos: &repos };
        let app = application(&target, argocd, &repo).expect("an Application");
        assert_eq!(app["spec"]["sources"][0]["repoURL"], "https://charts.example.com");
        let none = BTreeMap::new();
        let unknown = Repository { chart_repos: &none, ..repo };
        let err = application(&target, argocd, &unknown).expect_err("no URL");
        assert!(err.contains("helm knows no repository `acme`"), "{err}");
    }
}
