use crate::bad_input::fails;
use crate::harness::{Project, stdout_of};

fn helm_template_by_hand(project: &Project, stage: &str, namespace: &str, context: &str, release: &str) -> String {
    project.helm_example(&["template", release, "--namespace", namespace, "--kube-context", context], stage, release)
}

#[test]
fn render_one_release_is_exactly_what_helm_template_prints() {
    let project = Project::example();
    let output = project.helm_envs(&["render", "staging", "--release", "web"]).output().expect("runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let by_hand = helm_template_by_hand(&project, "staging", "acme-staging", "staging", "web");
    assert_eq!(stdout_of(&output), by_hand);
    // The stage's own values reached the manifests.
    assert!(by_hand.contains("host: \"staging.acme.example.com\""));
    assert!(by_hand.contains("namespace: acme-staging"));
}

#[test]
fn render_every_release_in_stages_file_order() {
    let project = Project::example();
    let output = project.helm_envs(&["render", "production"]).output().expect("runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let web = helm_template_by_hand(&project, "production", "acme", "production", "web");
    let worker = helm_template_by_hand(&project, "production", "acme", "production", "worker");
    assert_eq!(stdout_of(&output), format!("{web}{worker}"));
}

#[test]
fn each_stage_renders_its_own_row_of_the_guides_table() {
    let project = Project::example();
    let render =
        |stage: &str| stdout_of(&project.helm_envs(&["render", stage, "--release", "web"]).output().expect("runs"));
    let (dev, staging, production) = (render("dev"), render("staging"), render("production"));

    assert!(dev.contains("replicas: 1") && !dev.contains("HorizontalPodAutoscaler"));
    assert!(staging.contains("maxReplicas: 4") && !staging.contains("replicas: 2\n  selector"));
    assert!(production.contains("maxReplicas: 20") && production.contains("minReplicas: 3"));

    assert!(dev.contains("LOG_LEVEL: \"debug\"") && staging.contains("LOG_LEVEL: \"debug\""));
    assert!(production.contains("LOG_LEVEL: \"info\""));

    assert!(dev.contains("cert-manager.io/cluster-issuer: \"selfsigned\""));
    assert!(staging.contains("cert-manager.io/cluster-issuer: \"letsencrypt-staging\""));
    assert!(production.contains("cert-manager.io/cluster-issuer: \"letsencrypt-prod\""));

    assert!(dev.contains("dev.acme.example.com") && production.contains("host: \"acme.example.com\""));
    assert!(dev.contains("PAYMENTS_MODE: \"mock\"") && staging.contains("PAYMENTS_MODE: \"sandbox\""));
    assert!(production.contains("PAYMENTS_ENDPOINT: \"https://api.payments.example.com\""));
    assert!(dev.contains("memory: 128Mi") && production.contains("memory: 1Gi"));
}

#[test]
fn helms_namespace_and_context_never_leak_into_a_stage() {
    let project = Project::example();
    let output = project
        .helm_envs(&["--verbose", "render", "dev", "--release", "web"])
        .env("HELM_NAMESPACE", "acme")
        .env("HELM_KUBECONTEXT", "production")
        .env("HELM_KUBEAPISERVER", "https://127.0.0.1:1")
        .output()
        .expect("runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--namespace acme-dev --kube-context dev"), "{stderr}");
    let stdout = stdout_of(&output);
    assert!(stdout.contains("namespace: acme-dev"));
    assert!(!stdout.contains("namespace: acme\n"), "HELM_NAMESPACE leaked into the dev render");
}

#[test]
fn the_chart_installs_on_the_test_clusters() {
    // Render with helm-envs, install what it resolved with plain helm, and check the cluster.
    let project = Project::example();
    let namespace = "render-install-check";
    for (context, stage) in [("dev", "dev"), ("staging", "staging")] {
        let output = project
            .helm(&[
                "upgrade",
                "--install",
                "web",
                "../../charts/acme-web",
                "--kube-context",
                context,
                "--namespace",
                namespace,
                "--create-namespace",
                "-f",
                "values/web.yaml",
                "-f",
                &format!("envs/{stage}/web.yaml"),
            ])
            .output()
            .expect("helm runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let hpa = project
        .kubectl(&["--context", "staging", "-n", namespace, "get", "hpa", "web", "-o", "jsonpath={.spec.maxReplicas}"])
        .output()
        .expect("kubectl runs");
    assert_eq!(stdout_of(&hpa), "4");
    let deploy = project
        .kubectl(&["--context", "dev", "-n", namespace, "get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"])
        .output()
        .expect("kubectl runs");
    assert_eq!(stdout_of(&deploy), "1");
    // The dev install did not reach the staging cluster's copy, and vice versa.
    let dev_hpa = project.kubectl(&["--context", "dev", "-n", namespace, "get", "hpa"]).output().expect("kubectl runs");
    assert!(!stdout_of(&dev_hpa).contains("web"));
}

#[test]
fn current_context_by_choice_and_a_release_namespace_override() {
    let project = Project::example();
    let text = project
        .read("helm-envs.yaml")
        .replace("    kubeContext: dev\n", "    kubeContext: current\n")
        .replace("  - name: worker\n", "  - name: worker\n    namespace: workers-{stage}\n");
    project.write("helm-envs.yaml", &text);
    let output = project.helm_envs(&["-v", "render", "dev"]).output().expect("runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let commands: Vec<&str> = stderr.lines().filter(|l| l.contains("running helm template")).collect();
    assert_eq!(commands.len(), 2, "{stderr}");
    assert!(commands.iter().all(|c| !c.contains("--kube-context")), "current means the kubeconfig's: {stderr}");
    let manifests = stdout_of(&output);
    assert!(manifests.contains("namespace: workers-dev") && manifests.contains("namespace: acme-dev"));

    let list = project.helm_envs(&["list", "-o", "json"]).output().expect("runs");
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&list)).expect("JSON");
    assert_eq!(json["stages"][0]["kubeContext"], "current");
    assert_eq!(json["stages"][2]["releases"][1]["namespace"], "workers-production");
}

#[test]
fn a_chart_that_fails_to_render_shows_helms_message_with_stage_and_release() {
    let project = Project::example();
    project.write(
        "../../charts/acme-web/templates/guard.yaml",
        "{{- if eq .Release.Namespace \"acme\" }}{{ fail \"production needs image.digest\" }}{{ end }}\n",
    );
    let stderr = fails(&project, &["render", "production"]);
    assert!(stderr.starts_with("error: 2 of 2 helm commands failed\n"), "{stderr}");
    assert!(stderr.contains("- helm template failed for stage `production`, release `web`"), "{stderr}");
    assert!(stderr.contains("- helm template failed for stage `production`, release `worker`"), "{stderr}");
    assert!(
        stderr.contains(
            "| Error: execution error at (acme-web/templates/guard.yaml:1:41): production needs image.digest"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "note: command: helm template web [TMP]/charts/acme-web --namespace acme --kube-context production"
        ),
        "{stderr}"
    );
    // The other stages still render.
    project.helm_envs(&["render", "staging"]).assert().success();
}
