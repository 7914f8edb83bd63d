//! The test bed's clusters run Pods on real nodes: a deploy through helm-envs takes effect in
//! each stage's running Pods, `helm --wait` returns with them Ready, and the failures a user
//! meets (a missing Secret, a missing image) show in the Pods as they would on any cluster.

use std::time::{Duration, Instant};

use crate::harness::{Project, deployed_example, kubectl_ok, ok, provision, stderr_of, stdout_of};

/// `kubectl rollout status` of a Deployment, which returns when its new Pods are Ready.
fn rolled_out(project: &Project, stage: &str, namespace: &str, deployment: &str) {
    let output = project
        .kubectl(&["--context", stage, "--namespace", namespace, "rollout", "status", deployment, "--timeout", "120s"])
        .output()
        .expect("kubectl runs");
    assert!(output.status.success(), "{stage}: {deployment} did not roll out: {}", stderr_of(&output));
}

/// What the web container of a stage's Deployment runs with: the image writes its version and
/// its non-secret settings to /tmp/www/config when it starts.
fn running_config(project: &Project, stage: &str, namespace: &str) -> String {
    let output = project
        .kubectl(&["--context", stage, "--namespace", namespace, "exec", "deploy/web", "--", "cat", "/tmp/www/config"])
        .output()
        .expect("kubectl runs");
    assert!(output.status.success(), "{stage}: exec: {}", stderr_of(&output));
    stdout_of(&output)
}

#[test]
fn a_promotion_takes_effect_in_each_stages_running_pods() {
    let (project, ns) = deployed_example("pods");
    let stages = [("dev", &ns.dev), ("staging", &ns.staging), ("production", &ns.production)];
    for (stage, namespace) in stages {
        rolled_out(&project, stage, namespace, "deployment/web");
        rolled_out(&project, stage, namespace, "deployment/worker");
        let config = running_config(&project, stage, namespace);
        assert!(config.contains("version=2.7.0\nmode=web\n"), "{stage}: {config}");
        let host =
            if stage == "production" { "acme.example.com".to_string() } else { format!("{stage}.acme.example.com") };
        assert!(config.contains(&format!("PUBLIC_URL=https://{host}\n")), "{stage}: {config}");
    }
    assert!(running_config(&project, "dev", &ns.dev).contains("LOG_LEVEL=debug\n"));
    assert!(running_config(&project, "production", &ns.production).contains("LOG_LEVEL=info\n"));

    // A new image in dev, then promoted to staging: each stage's Pods run what it was given,
    // and production's keep running the old one.
    let dev_values = project.read("envs/dev/web.yaml");
    project.write("envs/dev/web.yaml", &format!("{dev_values}\nimage:\n  tag: \"2.8.0\"\n"));
    ok(&project, &["upgrade", "dev", "--release", "web"]);
    rolled_out(&project, "dev", &ns.dev, "deployment/web");
    assert!(running_config(&project, "dev", &ns.dev).contains("version=2.8.0\n"));
    assert!(running_config(&project, "staging", &ns.staging).contains("version=2.7.0\n"));

    ok(&project, &["promote", "--from", "dev", "--to", "staging"]);
    rolled_out(&project, "staging", &ns.staging, "deployment/web");
    let staging = running_config(&project, "staging", &ns.staging);
    assert!(staging.contains("version=2.8.0\n"), "{staging}");
    assert!(staging.contains("PUBLIC_URL=https://staging.acme.example.com\n"), "staging keeps its own host: {staging}");
    assert!(running_config(&project, "production", &ns.production).contains("version=2.7.0\n"));
}

#[test]
fn helm_wait_returns_with_the_pods_ready() {
    let (project, ns) = Project::isolated_example("wait");
    provision(&project, "dev", &ns.dev, &[]);
    let args = ["upgrade", "--install", "web", "--kube-context", "dev", "--namespace", &ns.dev];
    project.helm_example(&[&args[..], &["--wait", "--timeout", "120s"]].concat(), "dev", "web");
    let ready = project
        .kubectl(&[
            "--context",
            "dev",
            "--namespace",
            &ns.dev,
            "get",
            "deploy/web",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ])
        .output()
        .expect("kubectl runs");
    assert_eq!(stdout_of(&ready), "1", "dev runs one replica, Ready when helm returns");
}

/// The first Pod of a Deployment matching `selector`, once its container reports `reason`.
fn waiting_reason(project: &Project, namespace: &str, selector: &str, reason: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let output = project
            .kubectl(&[
                "--context",
                "dev",
                "--namespace",
                namespace,
                "get",
                "pods",
                "-l",
                selector,
                "-o",
                "jsonpath={.items[0].status.containerStatuses[0].state.waiting.reason}",
            ])
            .output()
            .expect("kubectl runs");
        let found = stdout_of(&output);
        if found == reason || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_missing_secret_and_a_missing_image_show_in_the_pods() {
    let (project, ns) = Project::isolated_example("podfail");
    provision(&project, "dev", &ns.dev, &["acme-db"]);
    let args = ["upgrade", "--install", "web", "--kube-context", "dev", "--namespace", &ns.dev];
    project.helm_example(&args, "dev", "web");
    let selector = "app.kubernetes.io/instance=web";
    assert_eq!(waiting_reason(&project, &ns.dev, selector, "CreateContainerConfigError"), "CreateContainerConfigError");
    let events = project
        .kubectl(&["--context", "dev", "--namespace", &ns.dev, "get", "events", "-o", "jsonpath={.items[*].message}"])
        .output()
        .expect("kubectl runs");
    assert!(stdout_of(&events).contains("secret \"acme-db\" not found"), "{}", stdout_of(&events));

    // Nothing is ever pulled: an image the node does not hold cannot be had.
    kubectl_ok(
        &project,
        &[
            "--context",
            "dev",
            "--namespace",
            &ns.dev,
            "create",
            "deployment",
            "ghost",
            "--image=registry.acme.example.com/acme/web:0.0.0-missing",
        ],
    );
    let reason = waiting_reason(&project, &ns.dev, "app=ghost", "ImagePullBackOff");
    assert!(["ImagePullBackOff", "ErrImagePull"].contains(&reason.as_str()), "{reason}");
}
