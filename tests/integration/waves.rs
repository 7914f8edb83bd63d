//! A stage on several clusters (issue 28): the example's production on two test clusters,
//! deployed wave by wave; the first wave that is not ready stops the rollout, and `drift` finds
//! the cluster a stopped rollout left behind.

use serde_json::Value;

use crate::harness::{Namespaces, Project, live, ok, provision, run, stderr_of, stdout_of};

/// The example with production on two clusters: `eu` (context production, its own namespace)
/// in wave 1, then `us` (context staging, a namespace of its own there) in wave 2, each
/// provisioned with the example's Secrets. A verify script logs each cluster it verifies with
/// whether `us`'s release exists yet, and fails on a cluster while `fail-<cluster>` exists.
fn two_region_example(tag: &str) -> (Project, Namespaces, String) {
    let (project, ns) = Project::isolated_example(tag);
    let us = format!("{}-us", ns.production);
    let anchor = format!("    kubeContext: production\n    namespace: {}\n", ns.production);
    let regions = format!(
        "    namespace: {}\n    health: {{timeout: 45s}}\n    verify: [[./verify.sh]]\n    clusters:\n      \
         - {{name: eu, kubeContext: production}}\n      - {{name: us, kubeContext: staging, namespace: {us}}}\n    \
         waves: [[eu], [us]]\n",
        ns.production
    );
    let text = project.read("helm-envs.yaml");
    assert!(text.contains(&anchor), "the example's production stage: {text}");
    project.write("helm-envs.yaml", &text.replace(&anchor, &regions));
    project.write(
        "verify.sh",
        &format!(
            "#!/bin/sh\nus=$(kubectl --context staging --namespace {us} get deployment web -o name 2>/dev/null || echo none)\n\
             echo \"$HELM_ENVS_CLUSTER $us\" >> verified.log\n[ ! -e \"fail-$HELM_ENVS_CLUSTER\" ]\n"
        ),
    );
    make_executable(&project.path("verify.sh"));
    project.own_namespace("staging", &us);
    provision(&project, "production", &ns.production, &[]);
    provision(&project, "staging", &us, &[]);
    (project, ns, us)
}

fn make_executable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// The revisions helm keeps of a release, as (revision, status).
fn history(project: &Project, context: &str, namespace: &str, release: &str) -> Vec<(u64, String)> {
    let output = project
        .helm(&["history", release, "--kube-context", context, "--namespace", namespace, "-o", "json"])
        .output()
        .expect("helm runs");
    assert!(output.status.success(), "helm history {release}: {}", stderr_of(&output));
    let list: Value = serde_json::from_str(&stdout_of(&output)).expect("JSON");
    let list = list.as_array().expect("a list").clone();
    list.iter().map(|r| (r["revision"].as_u64().unwrap_or(0), r["status"].as_str().unwrap_or("").to_string())).collect()
}

fn image(project: &Project, context: &str, namespace: &str) -> String {
    live(project, context, namespace, "deploy/web", "{.spec.template.spec.containers[0].image}")
}

#[test]
fn a_stage_on_two_clusters_deploys_wave_by_wave_and_every_command_reads_both() {
    let (project, ns, us) = two_region_example("waves");
    provision(&project, "dev", &ns.dev, &[]);
    provision(&project, "staging", &ns.staging, &[]);
    let listed = ok(&project, &["list"]);
    assert!(listed.contains("production (3 of 3)  2 clusters in 2 waves"), "{listed}");
    assert!(listed.contains(&format!("wave 1 eu  context production  namespace {}", ns.production)), "{listed}");
    assert!(listed.contains(&format!("wave 2 us  context staging  namespace {us}")), "{listed}");

    let out = ok(&project, &["apply", "--yes"]);
    for line in ["deployed  production/eu/web (revision 1)", "deployed  production/us/worker (revision 1)"] {
        assert!(out.contains(line), "{out}");
    }
    // eu was deployed, ready and verified before us was deployed at all.
    assert_eq!(project.read("verified.log"), "eu none\nus deployment.apps/web\n");
    for (context, namespace) in [("production", &ns.production), ("staging", &us)] {
        let ready = live(&project, context, namespace, "deploy/web", "{.status.readyReplicas}");
        assert_eq!(ready, "3", "{context}: production's replicas run on every cluster of the stage");
    }

    // status and drift read each cluster; after the deploy, nothing about either differs.
    let status: Value =
        serde_json::from_str(&ok(&project, &["status", "--stage", "production", "-o", "json"])).expect("JSON");
    let clusters: Vec<(&str, &str, bool)> = status["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .flat_map(|s| {
            s["releases"].as_array().expect("releases").iter().map(move |r| {
                (s["cluster"].as_str().unwrap_or(""), s["context"].as_str().unwrap_or(""), r["inSync"] == true)
            })
        })
        .collect();
    assert_eq!(
        clusters,
        [("eu", "production", true), ("eu", "production", true), ("us", "staging", true), ("us", "staging", true)]
    );
    let drift = ok(&project, &["drift", "--stage", "production", "--live"]);
    assert!(drift.contains("production/eu (context production)  no drift"), "{drift}");
    assert!(drift.contains("production/us (context staging)  no drift"), "{drift}");
    assert!(drift.contains("No drift in 1 stage."), "{drift}");

    // check-secrets and check-isolation read each cluster; the clusters of one stage are not
    // other stages to be kept apart from.
    let secrets = ok(&project, &["check-secrets", "production"]);
    assert!(secrets.contains("production/eu (context production): every referenced Secret is present"), "{secrets}");
    assert!(secrets.contains("production/us (context staging): every referenced Secret is present"), "{secrets}");
    // (us shares staging's cluster without policies: reported, exit aside.)
    let isolation = stdout_of(&run(&project, &["check-isolation", "production", "-o", "json"]));
    let isolation: Value = serde_json::from_str(&isolation).expect("JSON");
    let shares: Vec<(String, String)> = isolation["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| (s["stage"].as_str().unwrap_or("").to_string(), s["sharesWith"].to_string()))
        .collect();
    assert!(shares.contains(&("production/us".into(), "[\"staging\"]".into())), "{isolation:#}");
    assert!(shares.contains(&("production/eu".into(), "[]".into())), "{isolation:#}");

    // A promotion into production reaches both clusters, wave by wave, with the gates of each.
    let staging = project.read("envs/staging/web.yaml");
    project.write("envs/staging/web.yaml", &format!("{staging}\nimage:\n  tag: \"2.8.0\"\n"));
    ok(&project, &["upgrade", "staging", "--yes"]);
    let promoted = run(&project, &["promote", "--from", "staging", "--to", "production", "--yes"]);
    let (out, err) = (stdout_of(&promoted), stderr_of(&promoted));
    assert!(promoted.status.success(), "{err}\n{out}");
    assert!(out.contains("eu: ") && out.contains("us: "), "each cluster's gates are shown: {out}");
    for (context, namespace) in [("production", &ns.production), ("staging", &us)] {
        assert!(image(&project, context, namespace).ends_with(":2.8.0"), "{context} runs the promoted image");
    }
    assert_eq!(
        project.read("verified.log"),
        "eu none\nus deployment.apps/web\neu deployment.apps/web\nus deployment.apps/web\n",
        "the promotion verified eu before us"
    );

    // exec runs against one cluster, named.
    let refused = run(&project, &["exec", "production", "--", "true"]);
    assert!(!refused.status.success());
    assert!(
        stderr_of(&refused).contains("stage `production` is on several clusters: say which"),
        "{}",
        stderr_of(&refused)
    );
    assert!(stderr_of(&refused).contains("its clusters are: eu, us (--cluster NAME)"), "{}", stderr_of(&refused));
    let context = ok(
        &project,
        &[
            "exec",
            "production",
            "--cluster",
            "us",
            "--",
            "sh",
            "-c",
            "echo $HELM_KUBECONTEXT/$HELM_NAMESPACE/$HELM_ENVS_CLUSTER",
        ],
    );
    assert_eq!(context.trim(), format!("staging/{us}/us"));
}

#[test]
fn the_first_wave_that_fails_stops_the_rollout_and_drift_finds_the_cluster_left_behind() {
    let (project, ns, us) = two_region_example("waves-stop");
    ok(&project, &["upgrade", "production", "--yes"]);
    let before = project.read("envs/production/web.yaml");

    // Wave 1 is not ready (an image that does not exist): wave 2 is never started.
    project.write("envs/production/web.yaml", &format!("{before}\nimage:\n  tag: \"0.0.0-missing\"\n"));
    let failed = run(&project, &["upgrade", "production", "--yes"]);
    let (out, err) = (stdout_of(&failed), stderr_of(&failed));
    assert!(!failed.status.success(), "{out}");
    assert!(out.contains("failed    production/eu/web"), "{out}");
    assert!(out.contains("not attempted production/us/web"), "{out}");
    assert!(err.contains("the rollout stopped at the first wave that failed"), "{err}");
    assert!(err.contains("run the config they ran before: production/eu, production/us"), "{err}");
    assert_eq!(history(&project, "staging", &us, "web").len(), 1, "us was never touched");
    assert_eq!(history(&project, "production", &ns.production, "web").last().map(|r| r.1.as_str()), Some("deployed"));
    assert!(!image(&project, "production", &ns.production).contains("missing"), "eu was rolled back");

    // Wave 2 fails its verify: eu keeps the new config, us goes back, and the message says so.
    // (debug is envSpecific: a change of production's own, not drift between stages.)
    project.write("envs/production/web.yaml", &before.replace("debug:\n  enabled: false", "debug:\n  enabled: true"));
    project.write("fail-us", "");
    let failed = run(&project, &["upgrade", "production", "--yes"]);
    let err = stderr_of(&failed);
    assert!(!failed.status.success(), "{}", stdout_of(&failed));
    assert!(err.contains("run the new config: production/eu"), "{err}");
    assert!(err.contains("run the config they ran before: production/us"), "{err}");
    assert!(err.contains("`helm envs drift` lists the clusters behind"), "{err}");
    let log_level = |context: &str, namespace: &str| {
        live(&project, context, namespace, "configmap/web-config", "{.data.LOG_LEVEL}")
    };
    assert_eq!((log_level("production", &ns.production), log_level("staging", &us)), ("debug".into(), "info".into()));

    // drift: us does not run what eu runs.
    let drift = run(&project, &["drift", "--stage", "production", "-o", "json"]);
    assert_eq!(drift.status.code(), Some(2), "{}", stderr_of(&drift));
    let report: Value = serde_json::from_slice(&drift.stdout).expect("JSON");
    let waves: Vec<(&str, &str)> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["kind"] == "wave")
        .map(|f| (f["stage"].as_str().unwrap_or(""), f["release"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(waves, [("production/us", "web")], "{report:#}");
    let text = stdout_of(&run(&project, &["drift", "--stage", "production", "--details"]));
    assert!(text.contains("does not run the config that eu runs (wave 2 never got it)"), "{text}");
    assert!(text.contains("finish the rollout: helm envs upgrade production"), "{text}");

    // Finishing the rollout: eu is left alone, us catches up, drift is clean again.
    std::fs::remove_file(project.path("fail-us")).expect("rm");
    let out = ok(&project, &["upgrade", "production", "--yes"]);
    assert!(out.contains("unchanged production/eu/web") && out.contains("deployed  production/us/web"), "{out}");
    assert_eq!(log_level("staging", &us), "debug");
    let clean = run(&project, &["drift", "--stage", "production"]);
    assert_eq!(clean.status.code(), Some(0), "{}", stdout_of(&clean));
}
