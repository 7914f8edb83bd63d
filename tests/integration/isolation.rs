//! Stages that share a cluster are kept apart by namespace (NetworkPolicy and ResourceQuota);
//! a stage that requires a cluster of its own must not share one. Reported by
//! `check-isolation`, and a gate for stages that set `isolation`.

use serde_json::Value;

use crate::harness::{Project, create_namespace, kubectl_ok, run, stderr_of, stdout_of};

/// The example with dev and staging on the dev cluster (staging requires namespace isolation)
/// and production on its own (requiring a cluster of its own).
fn shared_cluster_project(tag: &str) -> (Project, String, String) {
    let (project, ns) = Project::isolated_example(tag);
    project.own_namespace("dev", &ns.staging);
    let stages = project
        .read("helm-envs.yaml")
        .replace("    kubeContext: staging\n", "    kubeContext: dev\n    isolation: namespace\n")
        .replace("    kubeContext: production\n", "    kubeContext: production\n    isolation: cluster\n");
    project.write("helm-envs.yaml", &stages);
    create_namespace(&project, "dev", &ns.dev);
    create_namespace(&project, "dev", &ns.staging);
    (project, ns.dev, ns.staging)
}

/// A default deny for ingress, traffic from the namespace itself, and a quota.
fn isolate(project: &Project, namespace: &str) {
    let file = format!("isolation-{namespace}.yaml");
    project.write(
        &file,
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: default-deny}\n\
         spec: {podSelector: {}, policyTypes: [Ingress]}\n---\n\
         apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: same-namespace}\n\
         spec: {podSelector: {}, ingress: [{from: [{podSelector: {}}]}]}\n---\n\
         apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: stage}\nspec: {hard: {requests.cpu: '2', pods: '20'}}\n",
    );
    kubectl_ok(
        project,
        &["--context", "dev", "--namespace", namespace, "apply", "-f", &project.path(&file).display().to_string()],
    );
}

#[test]
fn stages_sharing_a_cluster_need_policies_and_quotas_and_the_gate_refuses_until_they_exist() {
    let (project, dev, staging) = shared_cluster_project("iso");

    let output = run(&project, &["check-isolation", "--all"]);
    let text = stdout_of(&output);
    assert_eq!(output.status.code(), Some(3), "{text}{}", stderr_of(&output));
    assert!(text.contains("dev shares its cluster with staging: not isolated"), "{text}");
    assert!(text.contains("staging shares its cluster with dev (requires: namespace): not isolated"), "{text}");
    for namespace in [&dev, &staging] {
        assert!(text.contains(&format!("namespace {namespace}: no NetworkPolicy")), "{text}");
        assert!(text.contains(&format!("namespace {namespace}: no ResourceQuota")), "{text}");
    }
    assert!(text.contains("production a cluster of its own (requires: cluster): isolated"), "{text}");

    // The gate: staging requires namespace isolation, and nothing is deployed without it.
    let refused = run(&project, &["upgrade", "staging", "--yes"]);
    assert_eq!(refused.status.code(), Some(3), "{}", stdout_of(&refused));
    assert!(stderr_of(&refused).contains("isolation gate of stage `staging` refused"), "{}", stderr_of(&refused));
    let releases =
        project.helm(&["list", "--kube-context", "dev", "--namespace", &staging, "--short"]).output().expect("helm");
    assert_eq!(stdout_of(&releases), "", "nothing was deployed");

    isolate(&project, &dev);
    isolate(&project, &staging);
    let output = run(&project, &["check-isolation", "--all", "-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout_of(&output));
    let json: Value = serde_json::from_str(&stdout_of(&output)).expect("JSON");
    crate::documented::assert_documented("check-isolation -o json", &json);
    assert_eq!(json["passed"], true);
    assert_eq!(json["stages"][1]["sharesWith"], serde_json::json!(["dev"]));
    let gate = run(&project, &["upgrade", "staging", "--dry-run"]);
    assert!(stdout_of(&gate).contains("passed  isolation namespaces kept apart from dev"), "{}", stdout_of(&gate));

    // A policy that lets every namespace in undoes it, and says which stage gets in.
    project.write(
        "open.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: from-anywhere}\n\
         spec: {podSelector: {matchLabels: {app: web}}, ingress: [{from: [{namespaceSelector: {}}]}]}\n",
    );
    kubectl_ok(
        &project,
        &["--context", "dev", "--namespace", &staging, "apply", "-f", &project.path("open.yaml").display().to_string()],
    );
    let output = run(&project, &["check-isolation", "staging"]);
    assert_eq!(output.status.code(), Some(3));
    assert!(
        stdout_of(&output).contains(&format!("NetworkPolicy from-anywhere lets namespace {dev} (stage dev) in")),
        "{}",
        stdout_of(&output)
    );
}

#[test]
fn a_stage_requiring_its_own_cluster_may_not_share_it() {
    let (project, _dev, _staging) = shared_cluster_project("isocl");
    let stages = project.read("helm-envs.yaml").replace("    kubeContext: production\n", "    kubeContext: dev\n");
    project.write("helm-envs.yaml", &stages);
    let output = run(&project, &["check-isolation", "production"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    assert!(
        stdout_of(&output).contains("requires a cluster of its own, and shares it with dev, staging"),
        "{}",
        stdout_of(&output)
    );
}
