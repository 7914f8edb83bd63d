//! Whether a release's workloads are ready, judged from their objects and Pods as the API
//! server returns them: Deployments, StatefulSets and DaemonSets rolled out at their current
//! generation, Jobs complete, any other object with a `Ready` condition Ready. When something
//! is not ready, its Pods say why (image pull, missing Secret, crash loop, no node fits).

use serde_json::Value;

use crate::compare::manifest::{Manifest, Resource};
use crate::config::stages::{self, Stage, Target};
use crate::error::Result;
use crate::system::helm::Installed;
use crate::system::kube::{Kubectl, Stdin};

/// The kinds whose readiness is judged; other objects count only when they have a `Ready`
/// condition.
pub const WORKLOAD_KINDS: &[&str] = &["Deployment", "StatefulSet", "DaemonSet", "Job"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Ready,
    /// Still rolling out (or starting): may become ready.
    Progressing,
    /// Will not become ready without a change (a failed Job, a Deployment past its deadline).
    Failed,
}

/// One workload's readiness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub kind: String,
    pub name: String,
    pub ready: u64,
    pub desired: u64,
    pub state: State,
    /// Why it is not ready: one line per cause (Pod, container, reason, message).
    pub why: Vec<String>,
    /// The causes' reasons alone (`CreateContainerConfigError`, `Unschedulable`, ...).
    pub reasons: Vec<String>,
    /// When its Pods stopped being ready (RFC 3339), if they say.
    pub not_ready_since: Option<String>,
}

impl Workload {
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// `Deployment/web 0/1 ready`
    pub fn headline(&self) -> String {
        format!("{}/{} {}/{} ready", self.kind, self.name, self.ready, self.desired)
    }
}

/// A release's health: every workload it has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    pub workloads: Vec<Workload>,
}

impl Health {
    pub fn is_ready(&self) -> bool {
        self.workloads.iter().all(Workload::is_ready)
    }

    pub fn failed(&self) -> bool {
        self.workloads.iter().any(|w| w.state == State::Failed)
    }

    pub fn not_ready(&self) -> impl Iterator<Item = &Workload> {
        self.workloads.iter().filter(|w| !w.is_ready())
    }

    /// Ready and desired replicas summed over the workloads.
    pub fn counts(&self) -> (u64, u64) {
        self.workloads.iter().fold((0, 0), |(r, d), w| (r + w.ready, d + w.desired))
    }

    /// The earliest time a not-ready workload's Pods stopped being ready.
    pub fn not_ready_since(&self) -> Option<&str> {
        self.not_ready().filter_map(|w| w.not_ready_since.as_deref()).min()
    }
}

/// Judge `objects` (the release's objects as read from the cluster) with the namespace's
/// `pods`. Objects that are neither workloads nor carry a `Ready` condition are left out.
pub fn judge(objects: &[Value], pods: &[Value]) -> Health {
    let workloads = objects.iter().filter_map(|object| workload(object, pods)).collect();
    Health { workloads }
}

fn workload(object: &Value, pods: &[Value]) -> Option<Workload> {
    let kind = object["kind"].as_str()?.to_string();
    let name = object["metadata"]["name"].as_str()?.to_string();
    let status = &object["status"];
    let observed = object["metadata"]["generation"].as_u64().is_none_or(|g| number(&status["observedGeneration"]) >= g);
    let (ready, desired, state) = progress(&kind, object, observed)?;
    let mut workload =
        Workload { kind, name, ready, desired, state, why: Vec::new(), reasons: Vec::new(), not_ready_since: None };
    if workload.state != State::Ready {
        workload.explain(object, pods, observed);
    }
    Some(workload)
}

impl State {
    /// Ready when done; failed when it cannot get there; progressing otherwise.
    fn of(done: bool, failed: bool) -> State {
        match (done, failed) {
            (true, _) => State::Ready,
            (false, true) => State::Failed,
            (false, false) => State::Progressing,
        }
    }
}

fn number(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// (ready, desired, state) of a workload by its kind's rules; `observed`: its controller has
/// seen its latest spec.
fn progress(kind: &str, object: &Value, observed: bool) -> Option<(u64, u64, State)> {
    let status = &object["status"];
    Some(match kind {
        "Deployment" => {
            let desired = object["spec"]["replicas"].as_u64().unwrap_or(1);
            let (updated, available, total) =
                (number(&status["updatedReplicas"]), number(&status["availableReplicas"]), number(&status["replicas"]));
            let done = observed && updated >= desired && available >= desired && total <= updated;
            let stuck = condition(status, "Progressing")
                .is_some_and(|c| c["status"] == "False" && c["reason"] == "ProgressDeadlineExceeded");
            let state = State::of(done, stuck);
            // Ready counts the new generation's Pods only: old ones still serving (taken to be
            // available) are not the deploy.
            let new_available = available.saturating_sub(total.saturating_sub(updated)).min(updated);
            (new_available.min(desired), desired, state)
        }
        "StatefulSet" => {
            let desired = object["spec"]["replicas"].as_u64().unwrap_or(1);
            let ready = number(&status["readyReplicas"]);
            let rolled = object["spec"]["updateStrategy"]["type"] == "OnDelete"
                || number(&status["updatedReplicas"]) >= desired
                || status["updateRevision"] == status["currentRevision"];
            let done = observed && ready >= desired && rolled;
            (ready.min(desired), desired, State::of(done, false))
        }
        "DaemonSet" => {
            let desired = number(&status["desiredNumberScheduled"]);
            let ready = number(&status["numberAvailable"]);
            let done = observed && number(&status["updatedNumberScheduled"]) >= desired && ready >= desired;
            (ready.min(desired), desired, State::of(done, false))
        }
        "Job" => {
            let complete = condition(status, "Complete").is_some_and(|c| c["status"] == "True");
            let failed = condition(status, "Failed").is_some_and(|c| c["status"] == "True");
            let state = State::of(complete, failed);
            (u64::from(complete), 1, state)
        }
        _ => {
            let ready = condition(status, "Ready")?;
            let state = if ready["status"] == "True" { State::Ready } else { State::Progressing };
            (u64::from(state == State::Ready), 1, state)
        }
    })
}

impl Workload {
    /// Why a workload is not ready: its conditions' messages, its Pods' problems, and since when
    /// its Pods have not been ready.
    fn explain(&mut self, object: &Value, pods: &[Value], observed: bool) {
        let status = &object["status"];
        if let Some(c) = ["Progressing", "Failed", "Ready"]
            .iter()
            .filter_map(|t| condition(status, t))
            .find(|c| c["status"] != "True" || c["reason"] == "ProgressDeadlineExceeded")
            && let Some(message) = c["message"].as_str()
        {
            let reason = c["reason"].as_str().unwrap_or("condition");
            self.why.push(format!("{reason}: {message}"));
            self.reasons.push(reason.to_string());
        }
        for pod in pods.iter().filter(|pod| selects(object, pod)) {
            for (reason, line) in pod_problems(pod) {
                self.reasons.push(reason);
                self.why.push(line);
            }
            let since = condition(&pod["status"], "Ready")
                .filter(|c| c["status"] != "True")
                .and_then(|c| c["lastTransitionTime"].as_str());
            if let Some(since) = since
                && self.not_ready_since.as_deref().is_none_or(|s: &str| since < s)
            {
                self.not_ready_since = Some(since.to_string());
            }
        }
        if !observed {
            self.why.push("the controller has not seen the new spec yet".into());
        }
    }
}

fn condition<'v>(status: &'v Value, kind: &str) -> Option<&'v Value> {
    status["conditions"].as_array()?.iter().find(|c| c["type"] == kind)
}

/// The workload's selector (matchLabels) picks the Pod, in the same namespace.
fn selects(object: &Value, pod: &Value) -> bool {
    let selector = object["spec"]["selector"]["matchLabels"].as_object();
    let selector = match (object["kind"].as_str(), selector) {
        (_, Some(labels)) if !labels.is_empty() => labels.clone(),
        // A Job's Pods carry its name.
        (Some("Job"), _) => {
            let mut labels = serde_json::Map::new();
            labels.insert("job-name".into(), object["metadata"]["name"].clone());
            labels
        }
        _ => return false,
    };
    object["metadata"]["namespace"] == pod["metadata"]["namespace"]
        && selector.iter().all(|(key, value)| &pod["metadata"]["labels"][key] == value)
}

/// What keeps a Pod from running: no node fits it, containers waiting (image pull, missing
/// Secret or ConfigMap, crash loop), containers that ended with an error; each with its
/// reason alone.
fn pod_problems(pod: &Value) -> Vec<(String, String)> {
    let name = pod["metadata"]["name"].as_str().unwrap_or("?");
    let status = &pod["status"];
    let mut out = Vec::new();
    if let Some(scheduled) = condition(status, "PodScheduled").filter(|c| c["status"] == "False") {
        let reason = scheduled["reason"].as_str().unwrap_or("not scheduled");
        out.push((
            reason.to_string(),
            format!("pod {name}: {reason}: {}", scheduled["message"].as_str().unwrap_or("")),
        ));
    }
    let containers = ["initContainerStatuses", "containerStatuses"]
        .iter()
        .flat_map(|key| status[*key].as_array().into_iter().flatten());
    for container in containers {
        let cname = container["name"].as_str().unwrap_or("?");
        let state = &container["state"];
        if let Some(waiting) = state["waiting"].as_object() {
            let reason = waiting.get("reason").and_then(Value::as_str).unwrap_or("waiting");
            if reason == "ContainerCreating" || reason == "PodInitializing" {
                continue;
            }
            let mut line = format!("pod {name}: container {cname}: {reason}");
            if let Some(message) = waiting.get("message").and_then(Value::as_str) {
                line.push_str(&format!(": {}", first_line(message)));
            }
            let last = &container["lastState"]["terminated"];
            if reason == "CrashLoopBackOff" && last.is_object() {
                line.push_str(&format!(
                    " (last exit code {}, {})",
                    last["exitCode"],
                    last["reason"].as_str().unwrap_or("terminated")
                ));
            }
            out.push((reason.to_string(), line));
        } else if let Some(terminated) = state["terminated"].as_object()
            && terminated.get("exitCode").and_then(Value::as_i64).unwrap_or(0) != 0
        {
            let reason = terminated.get("reason").and_then(Value::as_str).unwrap_or("Error");
            out.push((
                reason.to_string(),
                format!(
                    "pod {name}: container {cname}: exited with code {} ({reason})",
                    terminated.get("exitCode").cloned().unwrap_or_default()
                ),
            ));
        } else if state["running"].is_object() && container["ready"] == false {
            out.push((
                "NotReady".into(),
                format!("pod {name}: container {cname}: running, not ready (readiness probe)"),
            ));
        }
    }
    out
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// The objects of a manifest whose readiness counts: workloads, and custom resources (which
/// may carry a `Ready` condition). Hooks are left out: helm runs and deletes them itself.
pub fn watched(manifest: &Manifest) -> Vec<&Resource> {
    manifest
        .values()
        .filter(|r| r.object["metadata"]["annotations"]["helm.sh/hook"].is_null())
        .filter(|r| WORKLOAD_KINDS.contains(&r.key.kind.as_str()) || !is_builtin_group(&r.key.group))
        .collect()
}

fn is_builtin_group(group: &str) -> bool {
    ["", "apps", "batch", "policy", "autoscaling"].contains(&group) || group.ends_with(".k8s.io")
}

/// Read and judge the health of a release's objects in `namespace`: one read of the objects,
/// and one of the namespace's Pods when something is not ready (to say why).
pub fn read(kubectl: &Kubectl, stage: &Stage, namespace: &str, watched: &[&Resource]) -> Result<Health> {
    Ok(read_releases(kubectl, stage, namespace, &[watched.to_vec()])?.remove(0))
}

/// The same for several releases of one namespace at once: one read of all their objects, at
/// most one of the Pods, and a health per release.
fn read_releases(
    kubectl: &Kubectl,
    stage: &Stage,
    namespace: &str,
    releases: &[Vec<&Resource>],
) -> Result<Vec<Health>> {
    let all: Vec<&Resource> = releases.iter().flatten().copied().collect();
    if all.is_empty() {
        return Ok(vec![Health::default(); releases.len()]);
    }
    let text: String = all.iter().map(|r| format!("---\n{}\n", r.object)).collect();
    let what = match releases.len() {
        1 => format!("{} workload(s) of the release", all.len()),
        n => format!("{} workload(s) of {n} releases", all.len()),
    };
    let objects = kubectl.live_objects(stage, namespace, &Stdin { text: &text, what })?;
    let is = |object: &Value, resource: &Resource| {
        object["kind"] == resource.key.kind && object["metadata"]["name"] == resource.key.name
    };
    let mut pods: Option<Vec<Value>> = None;
    let mut healths = Vec::new();
    for watched in releases {
        let own: Vec<Value> = objects.iter().filter(|o| watched.iter().any(|r| is(o, r))).cloned().collect();
        let mut health = judge(&own, &[]);
        // An object not found in the cluster is not ready (it was deleted, or not created yet).
        let missing: Vec<Workload> = watched
            .iter()
            .filter(|r| WORKLOAD_KINDS.contains(&r.key.kind.as_str()) && !own.iter().any(|o| is(o, r)))
            .map(|resource| Workload {
                kind: resource.key.kind.clone(),
                name: resource.key.name.clone(),
                ready: 0,
                desired: 1,
                state: State::Progressing,
                why: vec!["not found in the cluster".into()],
                reasons: vec!["NotFound".into()],
                not_ready_since: None,
            })
            .collect();
        health.workloads.extend(missing.iter().cloned());
        if !health.is_ready() {
            let pods = match &mut pods {
                Some(pods) => pods,
                None => pods.insert(kubectl.pods(stage, namespace)?),
            };
            health = judge(&own, pods);
            health.workloads.extend(missing);
        }
        healths.push(health);
    }
    Ok(healths)
}

/// The health of a release as its config renders it (a stage Argo CD deploys keeps no Helm
/// record): the rendered workloads, read from the cluster.
pub fn of_rendered(kubectl: &Kubectl, target: &Target, rendered: &Manifest) -> Result<Health> {
    read(kubectl, target.stage, &target.namespace, &watched(rendered))
}

/// The health of a release as installed: its manifest's workloads, read from the cluster.
pub fn of_installed(kubectl: &Kubectl, target: &Target, installed: &Installed) -> Result<Health> {
    Ok(of_installed_all(kubectl, &[(target, Some(installed))])?.remove(0).unwrap_or_default())
}

/// The health of releases as installed (`None` where not installed), in order: one read per
/// stage and namespace for all its releases, the namespaces in parallel.
pub fn of_installed_all(kubectl: &Kubectl, releases: &[(&Target, Option<&Installed>)]) -> Result<Vec<Option<Health>>> {
    let mut manifests = Vec::new();
    for (target, installed) in releases {
        let manifest = match installed {
            Some(installed) => Some(
                crate::compare::manifest::parse(&installed.manifest, &target.namespace)
                    .map_err(|error| crate::compare::render::installed_manifest_error(target, error))?,
            ),
            None => None,
        };
        manifests.push(manifest);
    }
    let installed = releases.iter().enumerate().filter(|&(i, _)| manifests[i].is_some());
    let groups = stages::by_namespace(installed.map(|(i, (target, _))| (i, *target)));
    let jobs: Vec<_> = groups
        .values()
        .map(|indexes| {
            let watched: Vec<Vec<&Resource>> =
                indexes.iter().map(|&i| manifests[i].as_ref().map(watched).unwrap_or_default()).collect();
            let target = releases[indexes[0]].0;
            move || read_releases(kubectl, target.stage, &target.namespace, &watched)
        })
        .collect();
    let read = crate::system::parallel::all_or_errors(crate::system::parallel::in_parallel(jobs))?;
    let mut healths: Vec<Option<Health>> = vec![None; releases.len()];
    for (indexes, group) in groups.values().zip(read) {
        for (&index, health) in indexes.iter().zip(group) {
            healths[index] = Some(health);
        }
    }
    Ok(healths)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(generation: u64, status: Value) -> Value {
        json!({
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "a", "generation": generation},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}},
            "status": status,
        })
    }

    #[test]
    fn a_deployment_is_ready_when_its_new_generation_is_rolled_out() {
        let done = json!({"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2});
        assert!(judge(&[deployment(3, done.clone())], &[]).is_ready());
        // The controller has not seen generation 4 yet: the old status says nothing of it.
        let unseen = judge(&[deployment(4, done)], &[]);
        assert!(!unseen.is_ready());
        assert!(unseen.workloads[0].why.iter().any(|w| w.contains("has not seen")), "{unseen:?}");
        // Old Pods still serving do not count as the deploy being ready.
        let rolling = json!({"observedGeneration": 4, "replicas": 3, "updatedReplicas": 1, "availableReplicas": 2});
        let health = judge(&[deployment(4, rolling)], &[]);
        assert_eq!((health.counts(), health.is_ready()), ((0, 2), false));
    }

    #[test]
    fn a_deployment_past_its_deadline_has_failed() {
        let stuck = json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 0,
            "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                "message": "ReplicaSet \"web-1\" has timed out progressing."}]});
        let health = judge(&[deployment(1, stuck)], &[]);
        assert!(health.failed());
        assert!(health.workloads[0].why[0].starts_with("ProgressDeadlineExceeded: "), "{health:?}");
    }

    #[test]
    fn the_pods_say_why_a_workload_is_not_ready() {
        let status = json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 0});
        let pod = |name: &str, labels: Value, status: Value| json!({"metadata": {"name": name, "namespace": "a", "labels": labels}, "status": status});
        let pods = [
            pod(
                "web-1",
                json!({"app": "web"}),
                json!({
                "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": "2026-12-02T10:00:00Z"}],
                "containerStatuses": [{"name": "web", "ready": false, "state": {"waiting": {
                    "reason": "CreateContainerConfigError", "message": "secret \"acme-db\" not found"}}}]}),
            ),
            pod(
                "web-2",
                json!({"app": "web"}),
                json!({
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": "0/1 nodes are available: 1 Insufficient cpu."}]}),
            ),
            pod(
                "web-3",
                json!({"app": "web"}),
                json!({"containerStatuses": [{"name": "web", "ready": false,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}),
            ),
            pod(
                "other",
                json!({"app": "other"}),
                json!({"containerStatuses": [{"name": "x",
                "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}),
            ),
        ];
        let health = judge(&[deployment(1, status)], &pods);
        let why = &health.workloads[0].why;
        assert_eq!(
            why,
            &vec![
                "pod web-1: container web: CreateContainerConfigError: secret \"acme-db\" not found".to_string(),
                "pod web-2: Unschedulable: 0/1 nodes are available: 1 Insufficient cpu.".to_string(),
                "pod web-3: container web: CrashLoopBackOff: back-off 10s (last exit code 1, Error)".to_string(),
            ],
            "another workload's Pods are not this one's"
        );
        assert_eq!(health.workloads[0].reasons, ["CreateContainerConfigError", "Unschedulable", "CrashLoopBackOff"]);
        assert_eq!(health.not_ready_since(), Some("2026-12-02T10:00:00Z"));
    }

    #[test]
    fn jobs_and_custom_resources_with_a_ready_condition_are_judged_and_others_left_out() {
        let job = |condition: &str| {
            json!({"kind": "Job", "metadata": {"name": "migrate", "namespace": "a"},
                "status": {"conditions": [{"type": condition, "status": "True"}]}})
        };
        assert!(judge(&[job("Complete")], &[]).is_ready());
        assert!(judge(&[job("Failed")], &[]).failed());
        let certificate = |ready: &str| {
            json!({"kind": "Certificate", "metadata": {"name": "tls"},
                "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "Issuing", "message": "pending"}]}})
        };
        assert!(judge(&[certificate("True")], &[]).is_ready());
        let pending = judge(&[certificate("False")], &[]);
        assert_eq!(pending.workloads[0].why, vec!["Issuing: pending".to_string()]);
        let config_map = json!({"kind": "ConfigMap", "metadata": {"name": "c"}});
        assert!(judge(&[config_map], &[]).workloads.is_empty());
    }
}
