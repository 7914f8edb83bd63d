//! Releases' objects as the cluster holds them, against the same objects with a manifest applied
//! to them (a server-side dry run, what `kubectl diff` compares with): per stage and namespace,
//! one read and one dry run of all its releases' manifests together, the two in parallel and the
//! namespaces too. `drift --live` holds the result against what was deployed, and `diff STAGE`
//! of a stage Argo CD deploys against its config.

use std::sync::Arc;

use serde_json::Value;

use crate::compare::argocd::Application;
use crate::compare::diff::{self, Comparison};
use crate::compare::drift::without_noise;
use crate::compare::manifest::{self, Manifest, Resource};
use crate::compare::render::parse_rendered;
use crate::config::stages::{self, Target};
use crate::error::{Error, Result};
use crate::system::kube::{Kubectl, Stdin};
use crate::system::parallel::{all_or_errors, in_parallel, joined};

/// A release's manifest to hold the cluster's objects against.
pub struct Expected<'a> {
    pub target: &'a Target<'a>,
    /// The manifest's text, as helm deployed or rendered it.
    pub text: &'a str,
    pub manifest: Manifest,
    /// Objects to read as they are though the manifest lacks them (`kubectl get --filename`
    /// references): what Argo CD manages for the release and would prune. Only those in the
    /// release's namespace are read.
    pub also_live: Vec<Value>,
}

impl Expected<'_> {
    /// The keys of `also_live` that the manifest lacks, in the release's namespace.
    fn stale(&self) -> Vec<(manifest::ResourceKey, &Value)> {
        self.also_live
            .iter()
            .filter_map(|reference| {
                let key =
                    manifest::from_objects(vec![reference.clone()], &self.target.namespace).ok()?.into_keys().next()?;
                let here = key.namespace.as_deref() == Some(self.target.namespace.as_str());
                (here && !self.manifest.contains_key(&key)).then_some((key, reference))
            })
            .collect()
    }
}

/// The objects of one stage's namespace that its releases' manifests name: as they are, and as
/// they would be with the manifests applied.
#[derive(Debug, Default)]
pub struct Objects {
    pub live: Manifest,
    pub applied: Manifest,
}

/// Each release with its namespace's objects, in the order given.
pub fn read<'a>(kubectl: &Kubectl, expected: Vec<Expected<'a>>) -> Result<Vec<(Expected<'a>, Arc<Objects>)>> {
    let groups: Vec<Vec<usize>> =
        stages::by_namespace(expected.iter().map(|e| e.target).enumerate()).into_values().collect();
    let jobs: Vec<_> = groups
        .iter()
        .map(|indexes| {
            let group: Vec<&Expected> = indexes.iter().map(|&i| &expected[i]).collect();
            move || in_namespace(kubectl, &group)
        })
        .collect();
    let read = all_or_errors(in_parallel(jobs))?;
    let mut objects: Vec<Option<Arc<Objects>>> = vec![None; expected.len()];
    for (indexes, found) in groups.into_iter().zip(read) {
        let found = Arc::new(found);
        for i in indexes {
            objects[i] = Some(found.clone());
        }
    }
    Ok(expected.into_iter().zip(objects).map(|(e, o)| (e, o.unwrap_or_default())).collect())
}

fn in_namespace(kubectl: &Kubectl, group: &[&Expected]) -> Result<Objects> {
    let (stage, namespace) = (group[0].target.stage, &group[0].target.namespace);
    let names: Vec<&str> =
        group.iter().filter(|e| !e.manifest.is_empty()).map(|e| e.target.release.name.as_str()).collect();
    // JSON is YAML: the references go after the manifests, for the read only.
    let references: String =
        group.iter().flat_map(|e| e.stale()).map(|(_, reference)| format!("---\n{reference}\n")).collect();
    if names.is_empty() && references.is_empty() {
        return Ok(Objects::default());
    }
    let text: String = group.iter().map(|e| format!("---\n{}\n", e.text)).collect();
    let what = match names.as_slice() {
        [] => "the objects Argo CD manages".to_string(),
        [one] => format!("the manifest of release {one}"),
        many => format!("the manifests of releases {}", many.join(", ")),
    };
    let read_text = format!("{text}{references}");
    let (to_apply, to_read) = (Stdin { text: &text, what: what.clone() }, Stdin { text: &read_text, what });
    let (live, applied) = std::thread::scope(|scope| {
        let applied = scope.spawn(|| match names.is_empty() {
            true => Ok(Vec::new()),
            false => kubectl.applied_dry_run(stage, namespace, &to_apply),
        });
        (kubectl.live_objects(stage, namespace, &to_read), joined(applied))
    });
    let objects = |objects: Vec<Value>, what: &str| {
        manifest::from_objects(objects, namespace).map_err(|message| {
            Error::Other(anyhow::anyhow!("kubectl returned {what} that are not Kubernetes objects: {message}"))
        })
    };
    let live = objects(live?, "live objects")?;
    // Nothing of it in the cluster yet (its namespace may not exist, so the dry run cannot
    // run): applying it creates every object as the manifest has it.
    let applied = match applied {
        Err(_) if live.is_empty() => group.iter().flat_map(|e| e.manifest.clone()).collect(),
        applied => objects(applied?, "dry-run objects")?,
    };
    Ok(Objects { live, applied })
}

/// What Argo CD's sync of each target's rendered config (`rendered`, in the targets' order)
/// changes in its live objects, `applications` being the targets' Applications: what one
/// manages and the config no longer renders shows as removed (the sync prunes it).
pub fn what_syncing_changes(
    kubectl: &Kubectl,
    targets: &[Target],
    rendered: &[String],
    applications: &[Application],
    options: &diff::Options,
) -> Result<Vec<Comparison>> {
    let expected = targets
        .iter()
        .zip(rendered)
        .zip(applications)
        .map(|((target, text), application)| {
            let manifest = parse_rendered(text, target)?;
            let managed = application.verdict.iter().flat_map(|v| &v.managed);
            Ok(Expected { target, text, manifest, also_live: managed.map(|m| m.reference()).collect() })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(read(kubectl, expected)?
        .iter()
        .map(|(expected, objects)| what_applying_changes(expected, objects, options))
        .collect())
}

/// What applying a release's manifest would change in the cluster: each object as it is
/// against the same object with the manifest applied (noise left out), an object the cluster
/// lacks as the manifest has it, and the objects of `also_live` the manifest lacks as removed.
pub fn what_applying_changes(expected: &Expected, objects: &Objects, options: &diff::Options) -> Comparison {
    let clean = |resource: &manifest::Resource| {
        let mut resource = resource.clone();
        resource.object = without_noise(resource.object);
        resource
    };
    let (mut old, mut new) = (Manifest::new(), Manifest::new());
    for (key, _) in expected.stale() {
        if let Some(live) = objects.live.get(&key) {
            old.insert(key, clean(live));
        }
    }
    for (key, rendered) in &expected.manifest {
        let Some(live) = objects.live.get(key) else {
            new.insert(key.clone(), rendered.clone());
            continue;
        };
        old.insert(key.clone(), clean(live));
        let applied = objects.applied.get(key).unwrap_or(rendered);
        new.insert(key.clone(), Resource { source: rendered.source.clone(), ..clean(applied) });
    }
    diff::compare(old, new, options)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::compare::diff::ChangeKind;
    use crate::config::fixture;

    fn manifest(objects: Vec<Value>) -> Manifest {
        manifest::from_objects(objects, "app-dev").expect("objects")
    }

    fn deployment(replicas: u64) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "app-dev"},
               "spec": {"replicas": replicas}})
    }

    /// The Deployment as the server holds and returns it: status, Argo CD's tracking, managers.
    fn served(replicas: u64, generation: u64) -> Value {
        let mut object = deployment(replicas);
        object["metadata"]["generation"] = generation.into();
        object["metadata"]["annotations"] =
            json!({"argocd.argoproj.io/tracking-id": "web-dev:apps/Deployment:app-dev/web"});
        object["metadata"]["managedFields"] = json!([{"manager": "argocd-controller"}]);
        object["status"] = json!({"replicas": 2});
        object
    }

    fn changes(comparison: &Comparison) -> Vec<(String, ChangeKind)> {
        comparison.changes.iter().map(|c| (c.key.to_string(), c.kind)).collect()
    }

    #[test]
    fn applying_changes_what_the_config_sets_creates_what_the_cluster_lacks_and_prunes_what_it_dropped() {
        let (_dir, project) = fixture::project(&["dev"], &[]);
        let target = project.target(&project.stages[0], &project.releases[0]);
        let config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"}, "data": {"a": "b"}});
        let dropped =
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "old", "namespace": "app-dev"}});
        let elsewhere = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x", "namespace": "other"}});
        let expected = Expected {
            target: &target,
            text: "",
            manifest: manifest(vec![deployment(3), config]),
            // Argo CD manages the Deployment and a Service the config no longer renders.
            also_live: vec![deployment(3), dropped.clone(), elsewhere],
        };
        assert_eq!(expected.stale().len(), 1, "only the dropped Service of the release's namespace");
        let objects = Objects { live: manifest(vec![served(2, 4), dropped]), applied: manifest(vec![served(3, 5)]) };

        let comparison = what_applying_changes(&expected, &objects, &diff::Options::default());
        assert_eq!(
            changes(&comparison),
            [
                ("ConfigMap app-dev/web".to_string(), ChangeKind::Added),
                ("Service app-dev/old".into(), ChangeKind::Removed),
                ("apps/Deployment app-dev/web".into(), ChangeKind::Changed),
            ]
        );
        let fields = &comparison.changes[2].fields;
        assert_eq!(fields.len(), 1, "only the replicas, not generation or Argo CD's tracking: {fields:?}");
        assert_eq!(
            (fields[0].path.to_string(), &fields[0].old, &fields[0].new),
            ("spec.replicas".into(), &Some(json!(2)), &Some(json!(3)))
        );

        let synced = Objects { live: manifest(vec![served(3, 5)]), applied: manifest(vec![served(3, 5)]) };
        let expected =
            Expected { target: &target, text: "", manifest: manifest(vec![deployment(3)]), also_live: Vec::new() };
        let same = what_applying_changes(&expected, &synced, &diff::Options::default());
        assert!(same.is_empty() && same.unchanged == 1, "{same:?}");
    }
}
