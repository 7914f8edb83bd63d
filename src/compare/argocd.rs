//! Stages Argo CD deploys, read: each release's Application as the stages file generates it and
//! as Argo CD holds it, with Argo CD's own verdict on it (sync status, the commit it runs, health,
//! last sync, objects out of sync) and the fields edited away from the stages file.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::argocd::{self, Repository};
use crate::config::stages::{Chart, Project, Release, Stage, Target};
use crate::error::{Detail, Error, Result};
use crate::system::git::Git;
use crate::system::helm::Helm;
use crate::system::kube::Kubectl;

/// One release's Application on a stage Argo CD deploys.
#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    pub name: String,
    /// Argo CD's verdict; `None` when Argo CD holds no Application of that name.
    pub verdict: Option<Verdict>,
    /// Fields of its spec that differ from what the stages file generates now.
    pub edited: Vec<Edit>,
    /// The Application as the stages file generates it.
    pub generated: Value,
}

impl Application {
    /// Argo CD runs what the stages file says: the Application is there, as generated, synced.
    pub fn in_sync(&self) -> bool {
        self.edited.is_empty() && self.verdict.as_ref().is_some_and(|v| v.sync == "Synced")
    }
}

/// What Argo CD says of an Application (its `status`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verdict {
    /// `Synced`, `OutOfSync`, `Unknown`.
    pub sync: String,
    /// The commit it compared with (for several sources, the Git one's).
    pub revision: Option<String>,
    /// `Healthy`, `Progressing`, `Degraded`, `Missing`, ...
    pub health: String,
    pub health_message: Option<String>,
    /// When its last sync operation ended.
    pub synced_at: Option<String>,
    /// The last sync operation's phase and message, when it did not succeed.
    pub failed_operation: Option<(String, String)>,
    /// `Deployment/web` for each object Argo CD reports out of sync.
    pub out_of_sync: Vec<String>,
    /// Every object Argo CD manages for the Application (`status.resources`).
    pub managed: Vec<Managed>,
    /// The commit of its last sync and since when Argo CD has run it: the first of the syncs
    /// at that commit that end its history (a self-heal syncs the same commit again).
    pub running_since: Option<(String, String)>,
    /// The commits of its sync history, oldest first.
    pub synced: Vec<String>,
    /// Argo CD's sync status is about the Application's spec as it is now (its source or
    /// sources and destination): after the spec changes, until Argo CD compares again, the
    /// status is about the old one.
    pub compared_with_spec: bool,
}

/// An object an Application manages, as Argo CD lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Managed {
    /// `apps/v1`, `v1`.
    pub api_version: String,
    pub kind: String,
    /// `None`: cluster-scoped.
    pub namespace: Option<String>,
    pub name: String,
}

impl Managed {
    /// The object as `kubectl get --filename` finds it.
    pub fn reference(&self) -> Value {
        let mut metadata = serde_json::json!({"name": self.name});
        if let Some(namespace) = &self.namespace {
            metadata["namespace"] = namespace.clone().into();
        }
        serde_json::json!({"apiVersion": self.api_version, "kind": self.kind, "metadata": metadata})
    }
}

/// A field of the Application that is not what the stages file generates.
#[derive(Debug, Clone, PartialEq)]
pub struct Edit {
    /// `spec.source.helm.valueFiles`.
    pub path: String,
    pub generated: Option<Value>,
    pub live: Option<Value>,
}

/// The Applications the stages file generates for `stages` (each deployed by Argo CD) and
/// `releases`: per stage, one per release.
pub fn generated<'p>(
    project: &'p Project,
    stages: &[&'p Stage],
    releases: &[&Release],
) -> Result<Vec<(&'p Stage, Vec<Value>)>> {
    let mut generator = Generator::new(project, stages.first().copied(), releases)?;
    let mut per_stage = Vec::new();
    for stage in stages {
        if stage.argocd.is_none() {
            continue;
        }
        let targets: Vec<Target> = releases.iter().map(|release| project.target(stage, release)).collect();
        per_stage.push((*stage, generator.applications(stage, &targets)?));
    }
    Ok(per_stage)
}

/// Writes Applications: the chart repositories helm knows, and the project's place in its
/// work tree, each found once.
struct Generator<'p> {
    project: &'p Project,
    chart_repos: BTreeMap<String, String>,
    /// The project's directory in the repository, asked of git once, for stages that do not say.
    from_git: Option<String>,
}

impl<'p> Generator<'p> {
    fn new(project: &'p Project, stage: Option<&Stage>, releases: &[&Release]) -> Result<Self> {
        let chart_repos = match (stage, releases.iter().any(|r| matches!(r.chart, Chart::Repo(_)))) {
            (Some(stage), true) => Helm::locate()?.repositories(stage)?,
            _ => BTreeMap::new(),
        };
        Ok(Generator { project, chart_repos, from_git: None })
    }

    /// The Application of each target of `stage` (one per release).
    fn applications(&mut self, stage: &Stage, targets: &[Target]) -> Result<Vec<Value>> {
        let Some(settings) = &stage.argocd else { return Ok(Vec::new()) };
        let project_path = match (&settings.path, &self.from_git) {
            (Some(path), _) => path.trim_matches('/').to_string(),
            (None, Some(prefix)) => prefix.clone(),
            (None, None) => self
                .from_git
                .insert(Git::new(&self.project.dir).prefix().map_err(|err| {
                    err.with_details([Detail::Help(format!(
                        "the stages file is not in a Git work tree: set `argocd.path` on stage `{}` to its directory \
                         in the repository Argo CD reads",
                        stage.name
                    ))])
                })?)
                .clone(),
        };
        let repo =
            Repository { project_dir: &self.project.dir, project_path: &project_path, chart_repos: &self.chart_repos };
        targets
            .iter()
            .map(|target| {
                argocd::application(target, settings, &repo).map_err(|why| Error::Failed {
                    headline: format!("cannot write the Argo CD Application of {}/{}", stage.name, target.release.name),
                    details: vec![Detail::Note(why)],
                })
            })
            .collect()
    }
}

/// Each release's Application on `stage` (deployed by Argo CD), read from Argo CD's cluster and
/// held against what the stages file generates.
pub fn read(project: &Project, kubectl: &Kubectl, stage: &Stage, releases: &[&Release]) -> Result<Vec<Application>> {
    let targets: Vec<Target> = releases.iter().map(|release| project.target(stage, release)).collect();
    read_targets(project, kubectl, stage, &targets)
}

/// As [`read`], held against the Applications of `targets` (a promotion's, with the chart
/// versions it promotes); with each, the Application they generate.
pub fn read_targets(
    project: &Project,
    kubectl: &Kubectl,
    stage: &Stage,
    targets: &[Target],
) -> Result<Vec<Application>> {
    let Some(settings) = &stage.argocd else { return Ok(Vec::new()) };
    let releases: Vec<&Release> = targets.iter().map(|t| t.release).collect();
    let wanted = Generator::new(project, Some(stage), &releases)?.applications(stage, targets)?;
    let names: Vec<String> = wanted.iter().map(|app| app["metadata"]["name"].as_str().unwrap_or("").into()).collect();
    let live = kubectl.applications(stage, (&settings.context, &settings.namespace), &names)?;
    Ok(wanted
        .into_iter()
        .zip(names)
        .map(|(generated, name)| {
            let held = live.iter().find(|app| app["metadata"]["name"].as_str() == Some(name.as_str()));
            Application {
                verdict: held.map(verdict),
                edited: held.map(|held| edits(&generated, held)).unwrap_or_default(),
                name,
                generated,
            }
        })
        .collect())
}

/// Argo CD's verdict, from an Application's `status`.
pub fn verdict(application: &Value) -> Verdict {
    let status = &application["status"];
    let text = |value: &Value| value.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    let sync = &status["sync"];
    let revision = revision_of(sync);
    let operation = &status["operationState"];
    let failed_operation = match operation["phase"].as_str() {
        Some(phase @ ("Failed" | "Error")) => {
            Some((phase.to_string(), text(&operation["message"]).unwrap_or_default()))
        }
        _ => None,
    };
    let resources = status["resources"].as_array().map(Vec::as_slice).unwrap_or_default();
    let out_of_sync = resources
        .iter()
        .filter(|r| r["status"].as_str() == Some("OutOfSync"))
        .map(|r| format!("{}/{}", r["kind"].as_str().unwrap_or("?"), r["name"].as_str().unwrap_or("?")))
        .collect();
    let managed = resources
        .iter()
        .filter_map(|r| {
            let (kind, name, version) = (text(&r["kind"])?, text(&r["name"])?, text(&r["version"])?);
            let api_version = match text(&r["group"]) {
                Some(group) => format!("{group}/{version}"),
                None => version,
            };
            Some(Managed { api_version, kind, namespace: text(&r["namespace"]), name })
        })
        .collect();
    let history: Vec<(String, String)> = status["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| Some((revision_of(entry)?, text(&entry["deployedAt"])?)))
        .collect();
    let running_since = history
        .last()
        .and_then(|(last, _)| history.iter().rev().take_while(|(revision, _)| revision == last).last().cloned());
    Verdict {
        synced: history.iter().map(|(revision, _)| revision.clone()).collect(),
        compared_with_spec: compared_with_spec(&application["spec"], &sync["comparedTo"]),
        sync: text(&sync["status"]).unwrap_or_else(|| "Unknown".into()),
        revision,
        health: text(&status["health"]["status"]).unwrap_or_else(|| "Unknown".into()),
        health_message: text(&status["health"]["message"]),
        synced_at: text(&operation["finishedAt"]),
        failed_operation,
        out_of_sync,
        managed,
        running_since,
    }
}

/// The sources and destination Argo CD last compared are the spec's (with several sources it
/// also reports an empty `source`, which is not compared).
fn compared_with_spec(spec: &Value, compared: &Value) -> bool {
    let sources = match spec["sources"].as_array() {
        Some(sources) if !sources.is_empty() => "sources",
        _ => "source",
    };
    !compared.is_null()
        && [sources, "destination"].iter().all(|key| {
            let mut found = Vec::new();
            compare(key, &spec[key], &compared[key], &mut found);
            found.is_empty()
        })
}

/// The revision of a sync status or history entry; with several sources (a chart from a
/// repository, values from Git), the commit among their `revisions`.
fn revision_of(entry: &Value) -> Option<String> {
    let text = |value: &Value| value.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    let revisions: Vec<String> = entry["revisions"].as_array().into_iter().flatten().filter_map(text).collect();
    let is_commit = |r: &&String| r.len() == 40 && r.chars().all(|c| c.is_ascii_hexdigit());
    text(&entry["revision"])
        .or_else(|| revisions.iter().find(is_commit).cloned())
        .or_else(|| revisions.first().cloned())
}

/// The fields of `held`'s spec that are not `generated`'s: compared key by key, a list of
/// values as a whole (the order of values files matters), a list of objects of the same length
/// item by item (`spec.sources[0].targetRevision`), so an edit names the field that changed.
pub fn edits(generated: &Value, held: &Value) -> Vec<Edit> {
    let mut found = Vec::new();
    compare("spec", &generated["spec"], &held["spec"], &mut found);
    found
}

fn compare(path: &str, generated: &Value, held: &Value, found: &mut Vec<Edit>) {
    let present = |value: &Value| (!value.is_null()).then(|| value.clone());
    match (generated, held) {
        (Value::Object(want), Value::Object(have)) => {
            let keys: std::collections::BTreeSet<&String> = want.keys().chain(have.keys()).collect();
            for key in keys {
                let (want, have) = (want.get(key).unwrap_or(&Value::Null), have.get(key).unwrap_or(&Value::Null));
                compare(&format!("{path}.{key}"), want, have, found);
            }
        }
        (Value::Array(want), Value::Array(have))
            if want.len() == have.len() && want.iter().chain(have).all(Value::is_object) =>
        {
            for (i, (want, have)) in want.iter().zip(have).enumerate() {
                compare(&format!("{path}[{i}]"), want, have, found);
            }
        }
        (want, have) if want != have && !(is_empty(want) && is_empty(have)) => {
            found.push(Edit { path: path.to_string(), generated: present(want), live: present(have) });
        }
        _ => {}
    }
}

/// Absent, null, `{}` and `[]` say the same in an Application's spec.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(list) => list.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn edits_name_the_fields_changed_by_hand_and_lists_compare_whole() {
        let generated = json!({"spec": {
            "source": {"repoURL": "file:///git", "targetRevision": "main",
                       "helm": {"valueFiles": ["../values.yaml", "../envs/dev.yaml"], "releaseName": "web"}},
            "destination": {"name": "dev", "namespace": "shop"},
            "syncPolicy": {"automated": {"prune": true, "selfHeal": true}},
        }});
        assert_eq!(edits(&generated, &generated.clone()), vec![]);

        let mut held = generated.clone();
        held["spec"]["source"]["helm"]["valueFiles"] = json!(["../values.yaml", "../envs/prod.yaml"]);
        held["spec"]["source"]["helm"]["parameters"] = json!([{"name": "replicaCount", "value": "9"}]);
        held["spec"]["source"]["targetRevision"] = json!("hotfix");
        held["spec"]["syncPolicy"]["syncOptions"] = json!([]);
        let found = edits(&generated, &held);
        let paths: Vec<&str> = found.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["spec.source.helm.parameters", "spec.source.helm.valueFiles", "spec.source.targetRevision"],
            "an empty list Argo CD may add is no edit"
        );
        assert_eq!(found[0].generated, None);
        assert_eq!(found[2].live, Some(json!("hotfix")));
    }

    #[test]
    fn a_chart_version_changed_in_one_of_several_sources_is_named_by_its_place() {
        let chart = json!({"repoURL": "registry.example.com/charts", "chart": "web", "targetRevision": "1.4.2",
                           "helm": {"valueFiles": ["$values/values.yaml"]}});
        let git = json!({"repoURL": "file:///git", "targetRevision": "main", "ref": "values"});
        let generated =
            json!({"spec": {"sources": [chart, git], "destination": {"name": "staging", "namespace": "shop"}}});
        let mut held = generated.clone();
        held["spec"]["sources"][0]["targetRevision"] = json!("1.5.0");
        let found = edits(&generated, &held);
        assert_eq!(
            found,
            vec![Edit {
                path: "spec.sources[0].targetRevision".into(),
                generated: Some(json!("1.4.2")),
                live: Some(json!("1.5.0"))
            }]
        );
        // A source more or less is a change of the whole list.
        held["spec"]["sources"] = json!([chart]);
        assert_eq!(edits(&generated, &held)[0].path, "spec.sources");
    }

    #[test]
    fn the_sync_status_is_about_the_spec_once_argo_cd_compared_that_spec() {
        let chart = json!({"repoURL": "registry.example.com/charts", "chart": "web", "targetRevision": "1.5.0"});
        let git = json!({"repoURL": "file:///git", "targetRevision": "main", "ref": "values"});
        let destination = json!({"name": "staging", "namespace": "shop"});
        let spec = json!({"sources": [chart, git], "destination": destination});
        // Several sources: Argo CD writes an empty `source` beside them.
        let compared = json!({"source": {"repoURL": ""}, "sources": [chart, git], "destination": destination});
        let app =
            |compared: &Value| json!({"spec": spec, "status": {"sync": {"status": "Synced", "comparedTo": compared}}});
        assert!(verdict(&app(&compared)).compared_with_spec);
        let mut older = compared.clone();
        older["sources"][0]["targetRevision"] = json!("1.4.2");
        assert!(!verdict(&app(&older)).compared_with_spec, "compared before the chart version changed");
        assert!(!verdict(&json!({"spec": spec})).compared_with_spec, "not compared yet");
        let single = json!({"spec": {"source": git, "destination": destination},
                            "status": {"sync": {"comparedTo": {"source": git, "destination": destination}}}});
        assert!(verdict(&single).compared_with_spec);
    }

    #[test]
    fn the_verdict_is_read_from_the_status_argo_cd_writes() {
        let app = json!({"status": {
            "sync": {"status": "OutOfSync", "revision": "0123abc"},
            "health": {"status": "Degraded", "message": "Deployment web exceeded its progress deadline"},
            "operationState": {"phase": "Failed", "message": "one or more objects failed to apply",
                               "finishedAt": "2026-12-06T10:00:00Z"},
            "resources": [
                {"version": "v1", "group": "apps", "kind": "Deployment", "namespace": "acme", "name": "web",
                 "status": "OutOfSync"},
                {"version": "v1", "kind": "Service", "namespace": "acme", "name": "web", "status": "Synced"},
            ],
            // A self-heal synced 0123abc again: it has run since its first sync.
            "history": [
                {"revision": "fedcba9", "deployedAt": "2026-12-01T09:00:00Z"},
                {"revision": "0123abc", "deployedAt": "2026-12-05T09:00:00Z"},
                {"revision": "0123abc", "deployedAt": "2026-12-06T09:30:00Z"},
            ],
        }});
        let verdict = verdict(&app);
        assert_eq!((verdict.sync.as_str(), verdict.health.as_str()), ("OutOfSync", "Degraded"));
        assert_eq!(verdict.revision.as_deref(), Some("0123abc"));
        assert_eq!(verdict.out_of_sync, ["Deployment/web"]);
        assert_eq!(verdict.failed_operation, Some(("Failed".into(), "one or more objects failed to apply".into())));
        assert_eq!(verdict.synced_at.as_deref(), Some("2026-12-06T10:00:00Z"));
        assert_eq!(verdict.running_since, Some(("0123abc".into(), "2026-12-05T09:00:00Z".into())));
        assert_eq!(verdict.synced, ["fedcba9", "0123abc", "0123abc"]);
        let managed: Vec<String> = verdict.managed.iter().map(|m| m.reference().to_string()).collect();
        assert_eq!(
            managed,
            [
                r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"acme"}}"#,
                r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"acme"}}"#,
            ]
        );

        // Several sources: the commit among their revisions; a new Application has no status yet.
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let multi = json!({"status": {"sync": {"status": "Synced", "revisions": ["1.4.2", commit]}}});
        assert_eq!(super::verdict(&multi).revision.as_deref(), Some(commit));
        let fresh = super::verdict(&json!({}));
        assert_eq!((fresh.sync.as_str(), fresh.health.as_str(), fresh.revision), ("Unknown", "Unknown", None));
        assert_eq!(fresh.running_since, None, "never synced: not known how long it has run");
    }
}
