//! What lets commands scale to fleets: each namespace's release records are read in one query
//! (never a helm process per release), and what is read equals what helm itself says; releases
//! kept by another helm storage driver are still read, through helm.

use serde_json::Value;

use crate::harness::{Project, deployed_example, ok, provision, stderr_of, stdout_of};

/// helm's own `helm history -o json` of a release.
fn helm_history(project: &Project, stage: &str, namespace: &str, release: &str) -> Vec<Value> {
    let output = project
        .helm(&["history", release, "--namespace", namespace, "--kube-context", stage, "-o", "json"])
        .output()
        .expect("helm runs");
    assert!(output.status.success(), "{}", stderr_of(&output));
    serde_json::from_str(&stdout_of(&output)).expect("JSON")
}

#[test]
fn each_namespace_s_release_records_are_read_once_and_say_what_helm_says() {
    let (project, ns) = deployed_example("records");
    // A second revision in dev: a history to read.
    let dev_values = project.read("envs/dev/web.yaml");
    project.write("envs/dev/web.yaml", &format!("{dev_values}\nimage:\n  tag: \"2.8.0\"\n"));
    ok(&project, &["upgrade", "dev", "--release", "web"]);

    let output = project.helm_envs(&["status", "-o", "json", "--verbose"]).output().expect("runs");
    assert!(output.status.success(), "{}", stderr_of(&output));
    let log = stderr_of(&output);
    let ran = |needle: &str| log.lines().filter(|l| l.contains("running") && l.contains(needle)).count();
    assert_eq!(ran("helm get"), 0, "{log}");
    assert_eq!(ran("helm history"), 0, "{log}");
    for (stage, namespace) in [("dev", &ns.dev), ("staging", &ns.staging), ("production", &ns.production)] {
        let reads = format!("kubectl get secrets --namespace {namespace} --context {stage} --selector 'owner=helm");
        assert_eq!(ran(&reads), 1, "one read of {stage}'s records for both releases: {log}");
    }

    let status: Value = serde_json::from_str(&stdout_of(&output)).expect("JSON");
    for stage in status["stages"].as_array().expect("stages") {
        for row in stage["releases"].as_array().expect("releases") {
            let (name, namespace) = (row["release"].as_str().expect("name"), row["namespace"].as_str().expect("ns"));
            let history = helm_history(&project, stage["name"].as_str().expect("stage"), namespace, name);
            let latest = history.last().expect("installed");
            assert_eq!(row["revision"], latest["revision"], "{row}");
            assert_eq!(row["chart"], latest["chart"], "{row}");
            assert_eq!(row["appVersion"], latest["app_version"], "{row}");
            assert_eq!(row["status"], latest["status"], "{row}");
            assert_eq!(row["lastDeployed"], latest["updated"], "{row}");
            assert_eq!(row["inSync"], true, "{row}");
        }
    }
    let dev_web = &status["stages"][0]["releases"][0];
    assert_eq!((dev_web["release"].as_str(), dev_web["revision"].as_u64()), (Some("web"), Some(2)));

    // One process at a time: the same answer (parallel reads wait for a slot, never for each other).
    let one_at_a_time = ok(&project, &["status", "-o", "json", "--jobs", "1"]);
    assert_eq!(one_at_a_time, stdout_of(&output));
    let drift = project.helm_envs(&["drift", "--live", "-j", "1"]).output().expect("runs");
    assert_eq!(drift.status.code(), Some(2), "dev is ahead of staging: {}", stderr_of(&drift));
}

#[test]
fn a_jobs_limit_of_zero_is_refused() {
    let (project, _) = Project::isolated_example("jobs0");
    let output = project.helm_envs(&["status", "--jobs", "0"]).output().expect("runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_of(&output).contains("invalid value '0' for '--jobs <N>'"), "{}", stderr_of(&output));
}

#[test]
fn releases_kept_in_config_maps_are_read_through_helm() {
    let (project, ns) = Project::isolated_example("cmdriver");
    provision(&project, "dev", &ns.dev, &[]);
    let with_driver = |args: &[&str]| {
        let output = project.helm_envs(args).env("HELM_DRIVER", "configmap").output().expect("runs");
        assert!(output.status.success(), "{args:?}: {}", stderr_of(&output));
        output
    };
    with_driver(&["upgrade", "dev", "--yes"]);
    let kept = project
        .kubectl(&["--context", "dev", "--namespace", &ns.dev, "get", "configmaps", "-l", "owner=helm", "-o", "name"])
        .output()
        .expect("kubectl runs");
    assert_eq!(stdout_of(&kept).lines().count(), 2, "helm kept both releases in ConfigMaps");

    let output = with_driver(&["status", "--stage", "dev", "-o", "json", "--verbose"]);
    assert!(stderr_of(&output).contains("running helm history web"), "{}", stderr_of(&output));
    let status: Value = serde_json::from_str(&stdout_of(&output)).expect("JSON");
    for row in status["stages"][0]["releases"].as_array().expect("releases") {
        assert_eq!((row["revision"].as_u64(), row["inSync"].as_bool()), (Some(1), Some(true)), "{row}");
    }
    let drift = project.helm_envs(&["drift", "--stage", "dev"]).env("HELM_DRIVER", "configmap").output().expect("runs");
    assert_eq!(drift.status.code(), Some(0), "{}{}", stdout_of(&drift), stderr_of(&drift));
}
