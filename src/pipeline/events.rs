//! Each deploy and promotion recorded in the stage's own cluster, as a Kubernetes Event in the
//! release's namespace, where monitoring stacks (kubernetes-event-exporter, Grafana, an
//! Alertmanager route) pick it up. Reasons: `Deployed`, `Promoted`, `DeployFailed`. Recording is
//! best effort: a deploy does not fail because its Event could not be written.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::compare::drift::utc_rfc3339;
use crate::config::stages::Target;
use crate::error::Error;
use crate::system::kube::Kubectl;

use super::record::Record;
use super::run::Reporter;

/// Record the outcome of one release's deploy (`failure`: why it failed).
pub fn record(
    kubectl: &Kubectl,
    reporter: &dyn Reporter,
    target: &Target,
    record: &Record,
    revision: Option<u64>,
    failure: Option<&Error>,
) {
    let event = event(target, record, revision, failure, &now_rfc3339());
    if let Err(err) = kubectl.create(target.stage, &target.namespace, &event) {
        reporter.note(&format!(
            "could not record the {} Event of {}/{}: {}",
            event["reason"].as_str().unwrap_or_default(),
            target.stage.name,
            target.release.name,
            err.one_line()
        ));
    }
}

/// The Event: about the release's record (helm's Secret of that revision), with the stage,
/// release, source stage, patch and revision as labels and annotations to route on.
pub fn event(target: &Target, record: &Record, revision: Option<u64>, failure: Option<&Error>, now: &str) -> Value {
    let (release, stage) = (&target.release.name, &target.stage.name);
    let (reason, kind) = match (failure, &record.promoted_from) {
        (Some(_), _) => ("DeployFailed", "Warning"),
        (None, Some(_)) => ("Promoted", "Normal"),
        (None, None) => ("Deployed", "Normal"),
    };
    let mut message = match revision {
        Some(revision) => format!("{} (release {release}, revision {revision})", record.description),
        None => format!("{} (release {release})", record.description),
    };
    if let Some(err) = failure {
        message.push_str(&format!(": {}", err.one_line()));
    }
    let mut labels = json!({
        "app.kubernetes.io/managed-by": "helm-envs",
        "helm-envs/stage": stage,
        "helm-envs/release": release,
        "helm-envs/reason": reason,
    });
    if let Some(from) = &record.promoted_from {
        labels["helm-envs/promoted-from"] = json!(from);
    }
    let mut annotations = json!({});
    if let Some(patch) = &record.patch {
        annotations["helm-envs/patch"] = json!(patch);
    }
    if let Some(revision) = revision {
        annotations["helm-envs/revision"] = json!(revision.to_string());
    }
    if !record.overrides.is_empty() {
        annotations["helm-envs/overrides"] = json!(record.overrides.join(","));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "generateName": format!("helm-envs.{release}."),
            "namespace": target.namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "Secret",
            "name": format!("sh.helm.release.v1.{release}.v{}", revision.unwrap_or(0)),
            "namespace": target.namespace,
        },
        "reason": reason,
        "message": cut(&message, 1000),
        "type": kind,
        "source": {"component": "helm-envs"},
        "reportingComponent": "helm-envs",
        "reportingInstance": format!("helm-envs-{stage}"),
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    })
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max { text.to_string() } else { text.chars().take(max).collect() }
}

/// Now as `2026-12-02T10:35:11Z` (the API server stores seconds).
fn now_rfc3339() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    utc_rfc3339(secs)
}
