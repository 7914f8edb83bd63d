use serde_json::json;

use crate::cli::{ListArgs, ListFormat};
use crate::config::stages::{Approval, KubeContext, Project};
use crate::error::Result;
use crate::terminal::{self, BOLD, DIM, NAME};

pub fn run(project: &Project, args: &ListArgs) -> Result<()> {
    match args.output {
        ListFormat::Json => {
            let text = serde_json::to_string_pretty(&as_json(project)).map_err(anyhow::Error::from)?;
            terminal::stdout(&format!("{text}\n"));
        }
        ListFormat::Text => terminal::stdout(&as_text(project)),
    }
    Ok(())
}

fn context_name(context: &KubeContext) -> String {
    match context {
        KubeContext::Named(name) => name.clone(),
        KubeContext::Current => "current (the kubeconfig's current-context)".into(),
    }
}

fn as_text(project: &Project) -> String {
    let mut out = format!(
        "{BOLD}{}{BOLD:#}: {} stages, {} releases\n",
        project.file.display(),
        project.stages.len(),
        project.releases.len()
    );
    for (i, stage) in project.stages.iter().enumerate() {
        out.push_str(&format!(
            "\n{NAME}{}{NAME:#} {DIM}({} of {}){DIM:#}  context {BOLD}{}{BOLD:#}  namespace {BOLD}{}{BOLD:#}",
            stage.name,
            i + 1,
            project.stages.len(),
            context_name(&stage.kube_context),
            stage.namespace
        ));
        if stage.approval == Approval::Required {
            out.push_str("  approval required");
        }
        if let Some(id) = &stage.cluster_id {
            out.push_str(&format!("  cluster {id}"));
        }
        out.push('\n');
        for release in &project.releases {
            let target = project.target(stage, release);
            out.push_str(&format!("  {BOLD}{}{BOLD:#}  chart {}", release.name, release.chart_source));
            if let Some(version) = &target.version {
                out.push_str(&format!("  version {version}"));
            }
            if target.namespace != stage.namespace {
                out.push_str(&format!("  namespace {}", target.namespace));
            }
            out.push('\n');
            for file in &target.values_files {
                let kind = if file.shared { "shared" } else { "stage" };
                out.push_str(&format!("    -f {}  {DIM}({kind}){DIM:#}\n", file.display));
            }
        }
    }
    if !project.env_specific.is_empty() {
        let paths: Vec<String> = project.env_specific.iter().map(ToString::to_string).collect();
        out.push_str(&format!("\nenvSpecific: {}\n", paths.join(", ")));
    }
    out
}

fn as_json(project: &Project) -> serde_json::Value {
    let stages: Vec<_> = project
        .stages
        .iter()
        .map(|stage| {
            let releases: Vec<_> = project
                .releases
                .iter()
                .map(|release| {
                    let target = project.target(stage, release);
                    json!({
                        "name": release.name,
                        "chart": release.chart_source,
                        "version": target.version,
                        "namespace": target.namespace,
                        "values": target.values_files,
                    })
                })
                .collect();
            json!({
                "name": stage.name,
                "kubeContext": match &stage.kube_context { KubeContext::Named(n) => n.as_str(), KubeContext::Current => "current" },
                "namespace": stage.namespace,
                "approval": stage.approval,
                "clusterId": stage.cluster_id,
                "helmArgs": stage.helm_args,
                "labels": stage.labels,
                "deployCommand": stage.deploy_command,
                "verify": stage.verify,
                "releases": releases,
            })
        })
        .collect();
    crate::output::json_document(json!({
        "file": project.file,
        "stages": stages,
        "envSpecific": project.env_specific.iter().map(ToString::to_string).collect::<Vec<_>>(),
    }))
}
