//! A stage counts as deployed when its workloads are ready: the wait after each deploy, the
//! failure that names why Pods do not start (and restores a promotion's files), the source
//! health gate, health in `status` and `drift`, and the Events each stage's monitoring sees.

use serde_json::Value;

use crate::harness::{
    Namespaces, Project, deployed_example, events, kubectl_ok, live, ok, run, stderr_of, stdout_of, with_stage_settings,
};

/// Polls until a Pod in the dev namespace waits for `reason`: the kubelet reports it a few
/// seconds after the Pods are recreated, and the test must read health only after that.
fn until_pods_wait_for(project: &Project, namespace: &str, reason: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let reasons = live(project, "dev", namespace, "pods", "{..state.waiting.reason}");
        if reasons.contains(reason) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "no Pod waits for {reason} after 90s: {reasons:?}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

fn all_stages(ns: &Namespaces) -> [(&'static str, &String); 3] {
    [("dev", &ns.dev), ("staging", &ns.staging), ("production", &ns.production)]
}

#[test]
fn a_deploy_waits_until_ready_and_each_stage_records_its_own_events() {
    let (project, ns) = deployed_example("events");
    // `apply` returned: every stage's workloads are ready, without helm's --wait.
    for (stage, namespace) in all_stages(&ns) {
        for deployment in ["deploy/web", "deploy/worker"] {
            let ready = live(&project, stage, namespace, deployment, "{.status.readyReplicas}/{.spec.replicas}");
            let (ready, desired) = ready.split_once('/').expect("two numbers");
            assert_eq!(ready, desired, "{stage} {deployment} is ready when apply returns");
        }
        let events = events(&project, stage, namespace);
        assert_eq!(events.len(), 2, "{stage}: one Deployed Event per release: {events:?}");
        assert!(events.iter().all(|(reason, s, ..)| reason == "Deployed" && s == stage), "{stage}: {events:?}");
    }

    let dev_values = project.read("envs/dev/web.yaml");
    project.write("envs/dev/web.yaml", &format!("{dev_values}\nimage:\n  tag: \"2.8.0\"\n"));
    ok(&project, &["upgrade", "dev", "--release", "web"]);
    let out = ok(&project, &["promote", "--from", "dev", "--to", "staging", "-o", "json"]);
    let digest = serde_json::from_str::<Value>(&out).expect("JSON")["digest"].as_str().expect("digest").to_string();
    let ready = live(&project, "staging", &ns.staging, "deploy/web", "{.status.readyReplicas}/{.spec.replicas}");
    assert_eq!(ready, "2/2", "staging's two replicas are ready when promote returns");

    let staging = events(&project, "staging", &ns.staging);
    let promoted: Vec<_> = staging.iter().filter(|(reason, ..)| reason == "Promoted").collect();
    assert_eq!(promoted.len(), 1, "{staging:?}");
    assert_eq!((promoted[0].1.as_str(), promoted[0].2.as_str(), promoted[0].3.as_str()), ("staging", "dev", &*digest));
    // The promotion is seen by staging's monitoring only.
    for (stage, namespace) in [("dev", &ns.dev), ("production", &ns.production)] {
        let events = events(&project, stage, namespace);
        assert!(events.iter().all(|(reason, s, ..)| reason != "Promoted" && s == stage), "{stage}: {events:?}");
    }
    // The invariant: a deployed stage has no drift, health included.
    let drift = run(&project, &["drift", "--stage", "staging"]);
    assert_eq!(drift.status.code(), Some(0), "{}", stdout_of(&drift));
}

#[test]
fn pods_that_never_become_ready_stop_the_promotion_name_the_secret_and_restore_the_files() {
    let (project, ns) = deployed_example("unready");
    // Staging's database Secret is declared as provided by an operator, so the Secrets gate
    // trusts it; it is gone, which only the Pods can tell.
    let stages = project.read("helm-envs.yaml").replace(
        "    chart: ../../charts/acme-web\n",
        "    chart: ../../charts/acme-web\n    providedSecrets: [{name: acme-db, reason: the database operator writes it}]\n",
    );
    project.write("helm-envs.yaml", &stages);
    with_stage_settings(&project, "staging", "    health: {timeout: 15s}\n");
    kubectl_ok(&project, &["--context", "staging", "--namespace", &ns.staging, "delete", "secret", "acme-db"]);
    let dev_values = project.read("envs/dev/web.yaml");
    project.write("envs/dev/web.yaml", &format!("{dev_values}\nimage:\n  tag: \"2.8.0\"\n"));
    ok(&project, &["upgrade", "dev", "--release", "web"]);
    let staging_before = project.read("envs/staging/web.yaml");

    let output = run(&project, &["promote", "--from", "dev", "--to", "staging"]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}\n{}", stdout_of(&output));
    assert!(stderr.contains("release web of stage staging is not ready after 15s"), "{stderr}");
    assert!(stderr.contains("Deployment/web"), "{stderr}");
    assert!(stderr.contains("CreateContainerConfigError") && stderr.contains("acme-db"), "{stderr}");
    assert!(stderr.contains("envs/staging/web.yaml restored as it was"), "{stderr}");
    assert!(stderr.contains("rolled web back to revision 1"), "the stage is rolled back with its files: {stderr}");
    assert_eq!(project.read("envs/staging/web.yaml"), staging_before, "the promotion's edit is taken back");
    let reasons: Vec<String> = events(&project, "staging", &ns.staging).into_iter().map(|e| e.0).collect();
    assert!(reasons.contains(&"DeployFailed".to_string()), "{reasons:?}");
    let available = live(&project, "staging", &ns.staging, "deploy/web", "{.status.availableReplicas}");
    assert_eq!(available, "2", "staging's old Pods still serve: the rollout is stuck, not down");
}

#[test]
fn an_unready_release_is_rolled_back_when_the_stage_asks() {
    let (project, ns) = deployed_example("rollback");
    // The kubelet reports the failed pull seconds after the new Pod is scheduled; the timeout
    // leaves room for that on a loaded machine.
    with_stage_settings(&project, "dev", "    health: {timeout: 20s, rollback: true}\n");
    let dev_values = project.read("envs/dev/web.yaml");
    project.write("envs/dev/web.yaml", &format!("{dev_values}\nimage:\n  tag: \"0.0.0-missing\"\n"));

    let output = run(&project, &["upgrade", "dev", "--release", "web"]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("ImagePullBackOff") || stderr.contains("ErrImagePull"), "{stderr}");
    assert!(stderr.contains("rolled web back to revision 1"), "{stderr}");
    let image = live(&project, "dev", &ns.dev, "deploy/web", "{.spec.template.spec.containers[0].image}");
    assert!(image.ends_with(":2.7.0"), "the previous revision's image is back: {image}");
}

#[test]
fn an_unhealthy_source_refuses_the_promotion_unless_overridden_and_shows_in_status_and_drift() {
    let (project, ns) = deployed_example("srchealth");
    let dev_values = project.read("envs/dev/web.yaml");
    project.write("envs/dev/web.yaml", &format!("{dev_values}\nimage:\n  tag: \"2.8.0\"\n"));
    ok(&project, &["upgrade", "dev", "--release", "web"]);
    // dev breaks after its deploy: its database Secret goes, and its Pods restart.
    let dev = ["--context", "dev", "--namespace", ns.dev.as_str()];
    kubectl_ok(&project, &[&dev[..], &["delete", "secret", "acme-db"]].concat());
    kubectl_ok(&project, &[&dev[..], &["delete", "pods", "--all", "--wait=false"]].concat());
    until_pods_wait_for(&project, &ns.dev, "CreateContainerConfigError");

    // A Pod of worker may report the error before web's new Pod does: read status until web's
    // Pod has reported it too (the kubelet reports it a moment after the Pod starts).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let web = loop {
        let status = ok(&project, &["status", "--stage", "dev", "-o", "json"]);
        let status: Value = serde_json::from_str(&status).expect("JSON");
        crate::documented::assert_documented("status -o json", &status);
        let web = status["stages"][0]["releases"][0].clone();
        if web["health"]["workloads"].to_string().contains("acme-db") {
            break web;
        }
        assert!(std::time::Instant::now() < deadline, "status never said why web is not ready: {web}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    assert_eq!(web["release"], "web");
    assert_eq!(web["health"]["ready"], false, "{web}");
    let text = ok(&project, &["status", "--stage", "dev"]);
    assert!(text.contains("web not ready") && text.contains("CreateContainerConfigError"), "{text}");

    let drift = run(&project, &["drift", "--stage", "dev", "-o", "json"]);
    assert_eq!(drift.status.code(), Some(2));
    assert!(stdout_of(&drift).contains("\"kind\": \"health\""), "{}", stdout_of(&drift));

    let refused = run(&project, &["promote", "--from", "dev", "--to", "staging"]);
    assert_eq!(refused.status.code(), Some(3), "{}", stdout_of(&refused));
    assert!(
        stderr_of(&refused).contains("health gate of stage `staging` refused: dev is not healthy"),
        "{}",
        stderr_of(&refused)
    );
    assert!(!project.read("envs/staging/web.yaml").contains("2.8.0"), "nothing written");

    let allowed = ok(&project, &["promote", "--from", "dev", "--to", "staging", "--allow-unhealthy-source"]);
    assert!(allowed.contains("promoted anyway (--allow-unhealthy-source)"), "{allowed}");
    assert!(project.read("envs/staging/web.yaml").contains("2.8.0"));
}
