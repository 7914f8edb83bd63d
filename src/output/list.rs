//! `list`: the stages file resolved, for people (text) and programs (JSON).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::config::stages::{Approval, KubeContext, Project, ValuesFile};
use crate::terminal::{BOLD, DIM, NAME};

fn context_name(context: &KubeContext) -> String {
    match context {
        KubeContext::Named(name) => name.clone(),
        KubeContext::Current => "current (the kubeconfig's current-context)".into(),
    }
}

pub fn text(project: &Project) -> String {
    let mut out = format!(
        "{BOLD}{}{BOLD:#}: {} stages, {} releases\n",
        project.file.display(),
        project.stages.len(),
        project.releases.len()
    );
    for (i, stage) in project.stages.iter().enumerate() {
        out.push_str(&format!("\n{NAME}{}{NAME:#} {DIM}({} of {}){DIM:#}", stage.name, i + 1, project.stages.len()));
        if stage.is_multi_cluster() {
            out.push_str(&format!("  {} clusters in {} waves", stage.clusters().len(), stage.waves().len()));
        } else {
            out.push_str(&format!(
                "  context {BOLD}{}{BOLD:#}  namespace {BOLD}{}{BOLD:#}",
                context_name(&stage.kube_context),
                stage.namespace
            ));
        }
        if stage.approval == Approval::Required {
            out.push_str("  approval required");
        }
        if let Some(id) = stage.cluster_id.as_ref().filter(|_| !stage.is_multi_cluster()) {
            out.push_str(&format!("  cluster {id}"));
        }
        if let Some(soak) = stage.soak {
            out.push_str(&format!("  soak {}", crate::config::freeze::show_duration(soak)));
        }
        out.push('\n');
        for on in stage.clusters().iter().filter(|c| c.cluster.is_some()) {
            let Some(cluster) = &on.cluster else { continue };
            out.push_str(&format!(
                "  {DIM}wave {}{DIM:#} {BOLD}{}{BOLD:#}  context {BOLD}{}{BOLD:#}  namespace {BOLD}{}{BOLD:#}",
                cluster.wave,
                cluster.name,
                context_name(&on.kube_context),
                on.namespace
            ));
            if let Some(id) = &on.cluster_id {
                out.push_str(&format!("  cluster {id}"));
            }
            out.push('\n');
        }
        for window in &stage.freeze {
            out.push_str(&format!("  {DIM}freeze{DIM:#} {}\n", window.describe()));
        }
        for release in &project.releases {
            let target = project.target(stage, release);
            out.push_str(&format!("  {BOLD}{}{BOLD:#}  chart {}", release.name, release.chart_source));
            if let Some(version) = &target.version {
                out.push_str(&format!("  version {version}"));
            }
            if target.namespace != stage.namespace {
                out.push_str(&format!("  namespace {}", target.namespace));
            }
            if !release.needs.is_empty() {
                out.push_str(&format!("  needs {}", release.needs.join(", ")));
            }
            out.push('\n');
            for file in &target.values_files {
                let kind = if file.shared { "shared" } else { "stage" };
                out.push_str(&format!("    -f {}  {DIM}({kind}){DIM:#}\n", file.display));
            }
            for file in &target.secret_files {
                out.push_str(&format!("    -f {}  {DIM}(encrypted, decrypted with sops){DIM:#}\n", file.display));
            }
        }
    }
    if !project.env_specific.is_empty() {
        let paths: Vec<String> = project.env_specific.iter().map(ToString::to_string).collect();
        out.push_str(&format!("\nenvSpecific: {}\n", paths.join(", ")));
    }
    if project.orders_by_needs() {
        out.push_str(&format!(
            "\n{BOLD}deploy order{BOLD:#} in every stage (needs), each group after the one before, its releases side by side:\n"
        ));
        for (i, group) in project.deploy_levels().iter().enumerate() {
            out.push_str(&format!("  {}. {}\n", i + 1, group.join(", ")));
        }
    }
    out
}

/// `list -o json`: the stages file, every stage with every release as it resolves there.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListJson<'a> {
    file: &'a Path,
    env_specific: Vec<String>,
    /// The releases in deploy order, in groups: each group deploys after the one before, its
    /// releases side by side (one release per group, in file order, when none declares needs).
    deploy_order: Vec<Vec<&'a str>>,
    stages: Vec<StageJson<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StageJson<'a> {
    name: &'a str,
    kube_context: &'a str,
    namespace: &'a str,
    approval: &'a Approval,
    cluster_id: Option<&'a str>,
    helm_args: &'a [String],
    labels: &'a BTreeMap<String, String>,
    deploy_command: Option<&'a [String]>,
    verify: &'a [Vec<String>],
    /// `soak` in seconds.
    soak_seconds: Option<u64>,
    /// The freeze windows, as written, with their reasons.
    freeze: Vec<String>,
    /// A stage on several clusters: each, in wave order (the stage's own kubeContext,
    /// namespace and clusterId are the first's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    clusters: Vec<ClusterJson<'a>>,
    releases: Vec<ReleaseJson<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterJson<'a> {
    name: &'a str,
    wave: usize,
    kube_context: String,
    namespace: &'a str,
    cluster_id: Option<&'a str>,
}

#[derive(Serialize)]
struct ReleaseJson<'a> {
    name: &'a str,
    chart: &'a str,
    version: Option<String>,
    namespace: String,
    values: Vec<ValuesFile>,
    /// SOPS-encrypted values files, after `values`.
    secrets: Vec<ValuesFile>,
    needs: &'a [String],
}

pub fn json(project: &Project) -> ListJson<'_> {
    let stages = project
        .stages
        .iter()
        .map(|stage| StageJson {
            name: &stage.name,
            kube_context: match &stage.kube_context {
                KubeContext::Named(n) => n.as_str(),
                KubeContext::Current => "current",
            },
            namespace: &stage.namespace,
            approval: &stage.approval,
            cluster_id: stage.cluster_id.as_deref(),
            helm_args: &stage.helm_args,
            labels: &stage.labels,
            deploy_command: stage.deploy_command.as_deref(),
            verify: &stage.verify,
            soak_seconds: stage.soak.map(|d| d.as_secs()),
            freeze: stage.freeze.iter().map(|w| w.describe()).collect(),
            clusters: stage
                .clusters()
                .iter()
                .filter_map(|on| {
                    let cluster = on.cluster.as_ref()?;
                    Some(ClusterJson {
                        name: &cluster.name,
                        wave: cluster.wave,
                        kube_context: on.kube_context.to_string(),
                        namespace: &on.namespace,
                        cluster_id: on.cluster_id.as_deref(),
                    })
                })
                .collect(),
            releases: project
                .releases
                .iter()
                .map(|release| {
                    let target = project.target(stage, release);
                    ReleaseJson {
                        name: &release.name,
                        chart: &release.chart_source,
                        version: target.version,
                        namespace: target.namespace,
                        values: target.values_files,
                        secrets: target.secret_files,
                        needs: &release.needs,
                    }
                })
                .collect(),
        })
        .collect();
    ListJson {
        file: &project.file,
        env_specific: project.env_specific.iter().map(ToString::to_string).collect(),
        deploy_order: project.deploy_levels(),
        stages,
    }
}
