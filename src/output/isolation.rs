//! The isolation report: per stage, the cluster it shares and what keeps it from being
//! isolated, with the fix; and its JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::compare::isolation::{Problem, StageIsolation};
use crate::config::stages::Isolation;
use crate::terminal::{BOLD, DIM, ERROR, NAME, WARN};

pub fn text(reports: &[StageIsolation]) -> String {
    let mut out = String::new();
    for report in reports {
        let _ = write!(out, "{BOLD}{}{BOLD:#}", report.stage);
        if let Some(why) = &report.unchecked {
            let _ = writeln!(out, "  {WARN}not checked{WARN:#}: {why}");
            continue;
        }
        let shared = match report.shares_with.as_slice() {
            [] => "a cluster of its own".to_string(),
            others => format!("shares its cluster with {}", others.join(", ")),
        };
        let required = match report.required {
            Some(Isolation::Cluster) => " (requires: cluster)",
            Some(Isolation::Namespace) => " (requires: namespace)",
            None => "",
        };
        if report.problems.is_empty() {
            let _ = writeln!(out, " {DIM}{shared}{required}{DIM:#}: {NAME}isolated{NAME:#}");
            continue;
        }
        let _ = writeln!(out, " {DIM}{shared}{required}{DIM:#}: {ERROR}not isolated{ERROR:#}");
        for problem in &report.problems {
            let _ = writeln!(out, "  {}", line(problem));
        }
    }
    out
}

/// What is wrong, and what would be right.
pub fn line(problem: &Problem) -> String {
    match problem {
        Problem::SharedCluster { with } => format!(
            "requires a cluster of its own, and shares it with {}: give it its own cluster, or `isolation: namespace`",
            with.join(", ")
        ),
        Problem::NoNetworkPolicy { namespace } => format!(
            "namespace {namespace}: no NetworkPolicy: add a default deny for ingress (podSelector: {{}}, policyTypes: \
             [Ingress]) and allow what the namespace needs"
        ),
        Problem::NoDefaultDeny { namespace } => format!(
            "namespace {namespace}: no NetworkPolicy selects every Pod for ingress: Pods outside the policies take \
             traffic from any namespace; add a default deny (podSelector: {{}}, policyTypes: [Ingress])"
        ),
        Problem::Admits { namespace, policy, stage, from } => format!(
            "namespace {namespace}: NetworkPolicy {policy} lets namespace {from} (stage {stage}) in: narrow its \
             namespaceSelector"
        ),
        Problem::NoResourceQuota { namespace } => {
            format!("namespace {namespace}: no ResourceQuota: a stage could take the shared cluster's capacity")
        }
        Problem::NamespaceMissing { namespace } => {
            format!("namespace {namespace} does not exist yet: create it with its NetworkPolicy and ResourceQuota")
        }
    }
}

/// `check-isolation -o json`: whether every stage is isolated, and per stage its cluster, the
/// stages sharing it, what it requires and each problem found.
#[derive(Serialize)]
pub struct IsolationJson<'a> {
    passed: bool,
    stages: Vec<StageJson<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StageJson<'a> {
    stage: &'a str,
    cluster: Option<&'a str>,
    shares_with: &'a [String],
    requires: Option<&'a Isolation>,
    checked: bool,
    reason: Option<&'a str>,
    passed: bool,
    problems: Vec<ProblemJson<'a>>,
}

#[derive(Serialize)]
struct ProblemJson<'a> {
    problem: &'static str,
    namespace: Option<&'a str>,
    message: String,
}

pub fn json<'a>(reports: &'a [StageIsolation]) -> IsolationJson<'a> {
    let problem = |p: &'a Problem| {
        let (kind, namespace) = match p {
            Problem::SharedCluster { .. } => ("shared-cluster", None),
            Problem::NoNetworkPolicy { namespace } => ("no-network-policy", Some(namespace)),
            Problem::NoDefaultDeny { namespace } => ("no-default-deny", Some(namespace)),
            Problem::Admits { namespace, .. } => ("admits-other-stage", Some(namespace)),
            Problem::NoResourceQuota { namespace } => ("no-resource-quota", Some(namespace)),
            Problem::NamespaceMissing { namespace } => ("namespace-missing", Some(namespace)),
        };
        ProblemJson { problem: kind, namespace: namespace.map(String::as_str), message: line(p) }
    };
    IsolationJson {
        passed: reports.iter().all(StageIsolation::passed),
        stages: reports
            .iter()
            .map(|r| StageJson {
                stage: &r.stage,
                cluster: r.cluster.as_deref(),
                shares_with: &r.shares_with,
                requires: r.required.as_ref(),
                checked: r.unchecked.is_none(),
                reason: r.unchecked.as_deref(),
                passed: r.passed(),
                problems: r.problems.iter().map(problem).collect(),
            })
            .collect(),
    }
}
