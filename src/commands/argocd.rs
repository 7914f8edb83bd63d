//! `helm envs argocd [STAGE]`: the Argo CD Applications of the stages Argo CD deploys,
//! generated from the stages file; printed, or with `--apply` applied into Argo CD's cluster.

use serde_json::Value;

use crate::cli::{ArgocdArgs, ManifestFormat};
use crate::config::stages::{Project, Stage};
use crate::error::{Detail, Error, Result};
use crate::system::kube::{Kubectl, Stdin};
use crate::terminal;

pub fn run(project: &Project, args: &ArgocdArgs) -> Result<u8> {
    let stages = argo_stages(project, args.stage.as_deref())?;
    let releases = project.select_releases(args.release.as_deref())?;
    let per_stage = crate::compare::argocd::generated(project, &stages, &releases)?;
    if args.apply {
        let kubectl = Kubectl::locate()?;
        for (stage, applications) in &per_stage {
            let Some(settings) = &stage.argocd else { continue };
            let text = applications.iter().map(Value::to_string).collect::<Vec<_>>().join("\n");
            let what = format!("the Argo CD Applications of stage {}", stage.name);
            let applied = kubectl.apply(stage, &settings.context, &settings.namespace, &Stdin { text: &text, what })?;
            terminal::stdout(&applied);
        }
        return Ok(0);
    }
    let all: Vec<&Value> = per_stage.iter().flat_map(|(_, apps)| apps).collect();
    let text = match args.output {
        // A `List`, as `kubectl get -o json` prints several objects: `kubectl apply -f` takes it.
        ManifestFormat::Json => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": all});
            let mut text = serde_json::to_string_pretty(&list)
                .map_err(|e| Error::Other(anyhow::Error::new(e).context("could not write the Applications")))?;
            text.push('\n');
            text
        }
        ManifestFormat::Yaml => all
            .iter()
            .map(|app| serde_saphyr::to_string(app).map_err(|err| Error::Other(anyhow::anyhow!("YAML: {err}"))))
            .collect::<Result<Vec<_>>>()?
            .iter()
            .map(|doc| format!("---\n{doc}"))
            .collect(),
    };
    terminal::stdout(&text);
    Ok(0)
}

/// The stages Argo CD deploys: the one named (which must be one), or every one.
fn argo_stages<'p>(project: &'p Project, only: Option<&str>) -> Result<Vec<&'p Stage>> {
    let stages: Vec<&Stage> = match only {
        Some(name) => vec![project.stage(name)?],
        None => project.stages.iter().filter(|s| s.argocd.is_some()).collect(),
    };
    match stages.iter().find(|s| s.argocd.is_none()) {
        Some(stage) => Err(Error::Failed {
            headline: format!("stage `{}` is not deployed by Argo CD", stage.name),
            details: vec![Detail::Help(
                "add `argocd:` to the stage (repoUrl, revision, context) to have Argo CD deploy it".into(),
            )],
        }),
        None if stages.is_empty() => Err(Error::Failed {
            headline: "no stage is deployed by Argo CD".into(),
            details: vec![Detail::Help("add `argocd:` to a stage in the stages file (docs/stages-file.md)".into())],
        }),
        None => Ok(stages),
    }
}
