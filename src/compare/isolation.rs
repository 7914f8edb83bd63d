//! Whether stages are kept apart. Stages on one cluster (the same kube-system UID) share it:
//! each of their namespaces then needs a NetworkPolicy that keeps the other stages' namespaces
//! out, and a ResourceQuota (the guide's step 3). A stage that requires a cluster of its own
//! must not share one.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::stages::{Isolation, Project, Stage};
use crate::error::Result;
use crate::system::kube::Kubectl;
use crate::system::parallel::in_parallel;

/// A namespace of another stage on the same cluster, with its labels (what a policy's
/// `namespaceSelector` matches).
#[derive(Debug, Clone)]
pub struct Neighbour {
    pub stage: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
}

/// What keeps a stage from being isolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// It requires a cluster of its own and shares it.
    SharedCluster {
        with: Vec<String>,
    },
    NoNetworkPolicy {
        namespace: String,
    },
    /// Policies exist, but none selects every Pod for ingress: some Pods take any traffic.
    NoDefaultDeny {
        namespace: String,
    },
    /// A policy lets another stage's namespace in.
    Admits {
        namespace: String,
        policy: String,
        stage: String,
        from: String,
    },
    NoResourceQuota {
        namespace: String,
    },
    NamespaceMissing {
        namespace: String,
    },
}

/// One stage's isolation.
#[derive(Debug, Clone)]
pub struct StageIsolation {
    pub stage: String,
    /// The stage's cluster (kube-system UID); `None` when it could not be read.
    pub cluster: Option<String>,
    /// Other stages on the same cluster.
    pub shares_with: Vec<String>,
    pub required: Option<Isolation>,
    pub problems: Vec<Problem>,
    /// Why the stage could not be checked.
    pub unchecked: Option<String>,
}

impl StageIsolation {
    pub fn passed(&self) -> bool {
        self.problems.is_empty() && self.unchecked.is_none()
    }
}

/// Check `stages` (each against every stage of the project): every cluster identity, then the
/// namespaces of the stages that share a cluster; reads in parallel.
pub fn check(kubectl: &Kubectl, project: &Project, stages: &[&Stage]) -> Vec<StageIsolation> {
    // Each cluster of a stage on several is a stage of its own here; its siblings are not others.
    let all: Vec<&Stage> = project.stages.iter().flat_map(Stage::clusters).collect();
    let clusters: Vec<Result<String>> =
        in_parallel(all.iter().map(|stage| move || kubectl.cluster_id(stage)).collect());
    let index_of = |stage: &Stage| all.iter().position(|s| s.label() == stage.label());
    let cluster_of = |stage: &Stage| -> Option<&String> { index_of(stage).and_then(|i| clusters[i].as_ref().ok()) };
    let stages: Vec<&Stage> = stages.iter().flat_map(|s| s.clusters()).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = stages
            .iter()
            .map(|stage| {
                let cluster = cluster_of(stage).cloned();
                let shares_with: Vec<&Stage> = all
                    .iter()
                    .copied()
                    .filter(|other| other.name != stage.name)
                    .filter(|other| cluster.is_some() && cluster_of(other) == cluster.as_ref())
                    .collect();
                let unchecked = index_of(stage).and_then(|i| clusters[i].as_ref().err().map(|e| e.one_line()));
                scope.spawn(move || {
                    let mut report = StageIsolation {
                        stage: stage.label(),
                        cluster,
                        shares_with: shares_with.iter().map(|s| s.label()).collect(),
                        required: stage.isolation,
                        problems: Vec::new(),
                        unchecked,
                    };
                    if report.unchecked.is_some() || shares_with.is_empty() {
                        return report;
                    }
                    if stage.isolation == Some(Isolation::Cluster) {
                        report.problems.push(Problem::SharedCluster { with: report.shares_with.clone() });
                    }
                    match namespaces_problems(kubectl, project, stage, &shares_with) {
                        Ok(problems) => report.problems.extend(problems),
                        Err(err) => report.unchecked = Some(err.one_line()),
                    }
                    report
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    })
}

/// The namespaces a stage's releases use.
pub fn namespaces(project: &Project, stage: &Stage) -> Vec<String> {
    let mut namespaces: Vec<String> = project.releases.iter().map(|r| project.target(stage, r).namespace).collect();
    namespaces.sort();
    namespaces.dedup();
    namespaces
}

fn namespaces_problems(kubectl: &Kubectl, project: &Project, stage: &Stage, others: &[&Stage]) -> Result<Vec<Problem>> {
    let mut neighbours = Vec::new();
    for other in others {
        for namespace in namespaces(project, other) {
            let labels = kubectl.namespace_labels(other, &namespace)?.unwrap_or_else(|| {
                // Not created yet: it will carry the label every namespace gets.
                BTreeMap::from([("kubernetes.io/metadata.name".to_string(), namespace.clone())])
            });
            neighbours.push(Neighbour { stage: other.name.clone(), namespace, labels });
        }
    }
    let mut problems = Vec::new();
    for namespace in namespaces(project, stage) {
        if kubectl.namespace_labels(stage, &namespace)?.is_none() {
            problems.push(Problem::NamespaceMissing { namespace });
            continue;
        }
        let policies = kubectl.list(stage, &namespace, "networkpolicies")?;
        let quotas = kubectl.list(stage, &namespace, "resourcequotas")?;
        problems.extend(judge_namespace(&namespace, &policies, &quotas, &neighbours));
    }
    Ok(problems)
}

/// A namespace's policies and quotas against the other stages' namespaces.
pub fn judge_namespace(namespace: &str, policies: &[Value], quotas: &[Value], others: &[Neighbour]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let ingress = |p: &&Value| {
        let types = p["spec"]["policyTypes"].as_array();
        types.is_none_or(|t| t.iter().any(|t| t == "Ingress"))
    };
    let ingress_policies: Vec<&Value> = policies.iter().filter(ingress).collect();
    if ingress_policies.is_empty() {
        problems.push(Problem::NoNetworkPolicy { namespace: namespace.into() });
    } else if !ingress_policies.iter().any(|p| selects_all(&p["spec"]["podSelector"])) {
        problems.push(Problem::NoDefaultDeny { namespace: namespace.into() });
    }
    for policy in &ingress_policies {
        let name = policy["metadata"]["name"].as_str().unwrap_or("?");
        for other in others.iter().filter(|o| o.namespace != namespace) {
            if admits(policy, &other.labels) {
                problems.push(Problem::Admits {
                    namespace: namespace.into(),
                    policy: name.into(),
                    stage: other.stage.clone(),
                    from: other.namespace.clone(),
                });
            }
        }
    }
    if quotas.is_empty() {
        problems.push(Problem::NoResourceQuota { namespace: namespace.into() });
    }
    problems
}

/// An empty selector (`{}`) selects everything.
fn selects_all(selector: &Value) -> bool {
    selector.is_null()
        || (selector["matchLabels"].as_object().is_none_or(|m| m.is_empty())
            && selector["matchExpressions"].as_array().is_none_or(|e| e.is_empty()))
}

/// Whether a policy's ingress rules let Pods of a namespace with `labels` in.
fn admits(policy: &Value, labels: &BTreeMap<String, String>) -> bool {
    let Some(rules) = policy["spec"]["ingress"].as_array() else { return false };
    rules.iter().any(|rule| match rule["from"].as_array() {
        // A rule without `from` admits every source.
        None => true,
        Some(peers) if peers.is_empty() => true,
        Some(peers) => peers.iter().any(|peer| {
            let selector = &peer["namespaceSelector"];
            !selector.is_null() && matches(selector, labels)
        }),
    })
}

/// A label selector (matchLabels and matchExpressions) against labels.
fn matches(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector["matchLabels"]
        .as_object()
        .is_none_or(|m| m.iter().all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str()));
    let by_expressions = selector["matchExpressions"].as_array().is_none_or(|expressions| {
        expressions.iter().all(|e| {
            let key = e["key"].as_str().unwrap_or_default();
            let values: Vec<&str> = e["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            match e["operator"].as_str() {
                Some("In") => labels.get(key).is_some_and(|v| values.contains(&v.as_str())),
                Some("NotIn") => labels.get(key).is_none_or(|v| !values.contains(&v.as_str())),
                Some("Exists") => labels.contains_key(key),
                Some("DoesNotExist") => !labels.contains_key(key),
                _ => false,
            }
        })
    });
    by_labels && by_expressions
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn staging() -> Vec<Neighbour> {
        vec![Neighbour {
            stage: "staging".into(),
            namespace: "acme-staging".into(),
            labels: BTreeMap::from([
                ("kubernetes.io/metadata.name".into(), "acme-staging".into()),
                ("env".into(), "staging".into()),
            ]),
        }]
    }

    fn policy(name: &str, spec: Value) -> Value {
        json!({"metadata": {"name": name}, "spec": spec})
    }

    const QUOTA: &[Value] = &[];

    #[test]
    fn a_namespace_without_policy_or_quota_is_not_isolated() {
        let problems = judge_namespace("acme", &[], QUOTA, &staging());
        assert_eq!(
            problems,
            vec![
                Problem::NoNetworkPolicy { namespace: "acme".into() },
                Problem::NoResourceQuota { namespace: "acme".into() }
            ]
        );
    }

    #[test]
    fn a_default_deny_with_same_namespace_traffic_keeps_the_other_stages_out() {
        let quota = [json!({"metadata": {"name": "q"}})];
        let deny = policy("default-deny", json!({"podSelector": {}, "policyTypes": ["Ingress"]}));
        let own = policy("same-namespace", json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]}));
        assert_eq!(judge_namespace("acme", &[deny.clone(), own], &quota, &staging()), vec![]);
        // Ingress from every namespace, from a matching label, or with no `from` lets staging in.
        for (name, from) in [
            ("all-namespaces", json!([{"namespaceSelector": {}}])),
            ("env-staging", json!([{"namespaceSelector": {"matchLabels": {"env": "staging"}}}])),
            (
                "by-expression",
                json!([{"namespaceSelector": {"matchExpressions": [
                {"key": "env", "operator": "In", "values": ["staging", "dev"]}]}}]),
            ),
        ] {
            let open =
                policy(name, json!({"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"from": from}]}));
            assert_eq!(
                judge_namespace("acme", &[deny.clone(), open], &quota, &staging()),
                vec![Problem::Admits {
                    namespace: "acme".into(),
                    policy: name.into(),
                    stage: "staging".into(),
                    from: "acme-staging".into()
                }]
            );
        }
        let prod_only = policy(
            "prod",
            json!({"podSelector": {}, "ingress": [{"from": [
            {"namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["staging"]}]}}]}]}),
        );
        assert_eq!(judge_namespace("acme", &[prod_only], &quota, &staging()), vec![]);
    }

    #[test]
    fn policies_that_leave_some_pods_open_are_not_a_default_deny() {
        let quota = [json!({"metadata": {"name": "q"}})];
        let web_only = policy(
            "web",
            json!({"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"from": [{"podSelector": {}}]}]}),
        );
        let egress = policy("egress", json!({"podSelector": {}, "policyTypes": ["Egress"]}));
        assert_eq!(
            judge_namespace("acme", &[web_only, egress], &quota, &staging()),
            vec![Problem::NoDefaultDeny { namespace: "acme".into() }]
        );
    }
}
