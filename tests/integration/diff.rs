//! `helm envs diff`: installed releases on real clusters against config, and stage against stage.

use base64::Engine as _;
use serde_json::Value;

use crate::harness::{Project, dev_stages_file, stdout_of, without_encrypted_values};

fn json_of(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("JSON output ({e}): {}", stdout_of(output)))
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `(id, change)` of each resource change in a JSON change list.
fn changes(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .expect("a change list")
        .iter()
        .map(|c| (c["id"].as_str().expect("id").to_string(), c["change"].as_str().expect("change").to_string()))
        .collect()
}

fn field_paths(change: &Value) -> Vec<String> {
    change["fields"]
        .as_array()
        .map_or_else(Vec::new, |fields| fields.iter().map(|f| f["path"].as_str().expect("path").to_string()).collect())
}

#[test]
fn diff_of_an_installed_stage_shows_exactly_the_changed_field() {
    let (project, ns) = Project::isolated_example("df");
    project.install("dev", &ns.dev, "web");

    let output = project.helm_envs(&["diff", "dev", "--release", "web", "--detailed-exitcode"]).output().expect("runs");
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    assert!(stdout.contains("revision 1 (deployed, acme-web-1.4.2) → config"), "{stdout}");
    assert!(stdout.contains("No changes. 5 resources unchanged."), "{stdout}");

    let values = project.read("envs/dev/web.yaml").replace("replicaCount: 1\n", "replicaCount: 2\n");
    project.write("envs/dev/web.yaml", &values);

    let output = project.helm_envs(&["diff", "dev", "--release", "web", "--detailed-exitcode"]).output().expect("runs");
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    assert!(stdout.contains(&format!("~ apps/Deployment {}/web (acme-web/templates/deployment.yaml)", ns.dev)));
    assert!(stdout.contains("    ~ spec.replicas: 1 → 2\n"), "{stdout}");
    assert!(stdout.contains("    -  replicas: 1\n    +  replicas: 2\n"), "{stdout}");
    assert!(stdout.contains("Plan: 0 to add, 1 to change, 0 to destroy."), "{stdout}");

    let output = project.helm_envs(&["diff", "dev", "--release", "web", "-o", "json"]).output().expect("runs");
    assert_eq!(output.status.code(), Some(0), "without --detailed-exitcode changes are a success");
    let report = json_of(&output);
    crate::documented::assert_documented("diff STAGE -o json", &report);
    let release = &report["releases"][0];
    assert_eq!(changes(&release["changes"]), [(format!("apps/Deployment {}/web", ns.dev), "changed".to_string())]);
    assert_eq!(field_paths(&release["changes"][0]), ["spec.replicas"]);
    assert_eq!(release["changes"][0]["fields"][0]["old"], 1);
    assert_eq!(release["changes"][0]["fields"][0]["new"], 2);
    assert_eq!(release["plan"], serde_json::json!({"add": 0, "change": 1, "destroy": 0, "unchanged": 4}));
    assert_eq!(release["installed"]["revision"], 1);

    // The summary says the same in one line per resource.
    let output = project.helm_envs(&["diff", "dev", "--release", "web", "-o", "summary"]).output().expect("runs");
    assert_eq!(
        stdout_of(&output),
        format!("dev/web: 0 to add, 1 to change, 0 to destroy (4 unchanged)\n  ~ apps/Deployment {}/web\n", ns.dev)
    );
}

#[test]
fn a_release_not_installed_yet_is_all_additions() {
    let (project, ns) = Project::isolated_example("dn");
    let output = project.helm_envs(&["diff", "staging", "--release", "worker", "-o", "json"]).output().expect("runs");
    assert!(output.status.success(), "{}", stderr_of(&output));
    crate::documented::assert_documented("diff STAGE -o json", &json_of(&output));
    let release = &json_of(&output)["releases"][0];
    assert_eq!(release["installed"], Value::Null);
    let ids: Vec<String> = changes(&release["changes"])
        .into_iter()
        .map(|(id, change)| {
            assert_eq!(change, "added");
            id
        })
        .collect();
    assert!(ids.contains(&format!("apps/Deployment {}/worker", ns.staging)), "{ids:?}");
    // Rendered for the staging cluster (Kubernetes 1.37): the HPA API it really serves.
    let hpa = release["changes"].as_array().expect("list").iter().find(|c| c["kind"] == "HorizontalPodAutoscaler");
    if let Some(hpa) = hpa {
        assert_eq!(hpa["object"]["apiVersion"], "autoscaling/v2");
    }
    assert_eq!(release["plan"]["add"].as_u64(), Some(ids.len() as u64));
}

#[test]
fn ignored_fields_never_count_as_changes() {
    let (project, ns) = Project::isolated_example("di");
    project.install("dev", &ns.dev, "web");
    // A chart version bump changes nothing but the `helm.sh/chart` label on every resource.
    let chart = project.read("../../charts/acme-web/Chart.yaml").replace("version: 1.4.2", "version: 1.4.3");
    project.write("../../charts/acme-web/Chart.yaml", &chart);

    let output = project.helm_envs(&["diff", "dev", "--release", "web", "--detailed-exitcode"]).output().expect("runs");
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    assert!(stdout_of(&output).contains("~ metadata.labels.helm.sh/chart: \"acme-web-1.4.2\" → \"acme-web-1.4.3\""));

    let output = project
        .helm_envs(&[
            "diff",
            "dev",
            "--release",
            "web",
            "--detailed-exitcode",
            "--ignore",
            "metadata.labels.helm.sh/chart",
            // The chart hashes its ConfigMap (labels included) into the pod template.
            "--ignore",
            "spec.template.metadata.annotations.checksum/config",
        ])
        .output()
        .expect("runs");
    // The manifest has nothing left to change; the new chart version is still a change, which
    // a deploy records.
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}{}", stderr_of(&output));
    assert!(stdout.contains("Chart: acme-web-1.4.2 → acme-web-1.4.3"), "{stdout}");
    assert!(stdout.contains("No changes to the manifest."), "{stdout}");
}

#[test]
fn stages_diff_splits_documented_from_undocumented_differences() {
    let project = Project::example();
    let output = project
        .helm_envs(&["diff", "--from", "dev", "--to", "staging", "--detailed-exitcode", "-o", "json"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(0), "only documented differences: {}", stderr_of(&output));
    crate::documented::assert_documented("diff --from A --to B -o json", &json_of(&output));
    let web = json_of(&output)["releases"][0].clone();
    assert_eq!(web["undocumented"], serde_json::json!([]));
    let documented = web["documented"].as_array().expect("list").clone();
    let deployment = documented.iter().find(|c| c["id"] == "apps/Deployment acme-staging/web").expect("deployment");
    let paths = field_paths(deployment);
    assert!(paths.contains(&"spec.replicas".to_string()), "{paths:?}");
    assert!(paths.iter().any(|p| p.ends_with("resources.limits.cpu")), "{paths:?}");
    let ingress = documented.iter().find(|c| c["kind"] == "Ingress").expect("ingress");
    assert!(field_paths(ingress).contains(&"spec.rules[0].host".to_string()));
    let hpa = documented.iter().find(|c| c["kind"] == "HorizontalPodAutoscaler").expect("staging autoscales");
    assert_eq!(hpa["change"], "added");

    // A change outside envSpecific is what a promotion would carry: undocumented.
    let values = project.read("envs/dev/web.yaml") + "image:\n  tag: \"2.8.0\"\n";
    project.write("envs/dev/web.yaml", &values);
    let output = project
        .helm_envs(&["diff", "--from", "dev", "--to", "staging", "--detailed-exitcode", "-o", "json"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    let report = json_of(&output);
    let web = &report["releases"][0];
    assert_eq!(
        changes(&web["undocumented"]),
        [("apps/Deployment acme-staging/web".to_string(), "changed".to_string())]
    );
    assert_eq!(field_paths(&web["undocumented"][0]), ["spec.template.spec.containers[0].image"]);
    assert_eq!(web["undocumented"][0]["fields"][0]["old"], "registry.acme.example.com/acme/web:2.8.0");
    assert_eq!(web["undocumented"][0]["fields"][0]["new"], "registry.acme.example.com/acme/web:2.7.0");
    assert_eq!(web["promotionPlan"]["change"], 1);
    // The image is not also reported as documented.
    for change in web["documented"].as_array().expect("list") {
        assert!(!field_paths(change).iter().any(|p| p.ends_with("image")), "{change}");
    }
    // The worker did not change.
    assert_eq!(report["releases"][1]["undocumented"], serde_json::json!([]));

    let output =
        project.helm_envs(&["diff", "--from", "dev", "--to", "staging", "--release", "web"]).output().expect("runs");
    let text = stdout_of(&output);
    let undocumented = text.find("Undocumented differences").expect("undocumented section");
    let documented = text.find("Documented differences").expect("documented section");
    assert!(undocumented < documented);
    assert!(text.contains("Promoting dev into staging: 0 to add, 1 to change, 0 to destroy."), "{text}");
}

#[test]
fn secret_values_never_reach_any_output_unless_asked() {
    const SECRET: &str = "hunter2-the-distinctive-signing-key";
    const NEW_SECRET: &str = "correct-horse-battery-staple-key";
    let (project, ns) = Project::isolated_example("ds");
    // The signing key in a plain values file (under a key named as a credential), as charts
    // are often configured: the example's encrypted one would win over it.
    without_encrypted_values(&project);
    let with_key = |key: &str| project.read("envs/dev/web.yaml") + &format!("session:\n  signingKey: \"{key}\"\n");
    project.write("envs/dev/web.yaml", &with_key(SECRET));
    project.install("dev", &ns.dev, "web");
    project.write("envs/dev/web.yaml", &with_key(NEW_SECRET));

    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let forbidden = [SECRET.to_string(), NEW_SECRET.to_string(), b64(SECRET), b64(NEW_SECRET)];
    let runs: [&[&str]; 6] = [
        &["diff", "dev", "--release", "web"],
        &["diff", "dev", "--release", "web", "-o", "json"],
        &["diff", "dev", "--release", "web", "-o", "summary", "--verbose"],
        &["diff", "dev", "--release", "web", "--context", "100", "--color", "always"],
        &["diff", "--from", "dev", "--to", "staging"],
        &["diff", "--from", "dev", "--to", "staging", "-o", "json"],
    ];
    for args in runs {
        let output = project.helm_envs(args).output().expect("runs");
        assert!(output.status.success(), "{args:?}: {}", stderr_of(&output));
        let everything = format!("{}{}", stdout_of(&output), stderr_of(&output));
        for secret in &forbidden {
            assert!(!everything.contains(secret.as_str()), "{args:?} printed a Secret value:\n{everything}");
        }
    }
    let output = project.helm_envs(&["diff", "dev", "--release", "web"]).output().expect("runs");
    let stdout = stdout_of(&output);
    assert!(stdout.contains(&format!("~ Secret {}/web-session", ns.dev)), "{stdout}");
    assert!(stdout.contains("~ data.signing-key: (35 bytes) → (32 bytes, changed)"), "{stdout}");

    let output = project.helm_envs(&["diff", "dev", "--release", "web", "--show-secrets"]).output().expect("runs");
    assert!(stdout_of(&output).contains(&b64(NEW_SECRET)), "--show-secrets shows the data");
}

/// A small chart whose values rename, add, remove and move resources and change an API version.
fn shapes_project() -> (Project, String) {
    let project = Project::empty();
    let namespace = format!("shapes-{}", std::process::id());
    project
        .write("helm-envs.yaml", &dev_stages_file(&namespace, "shapes", ""))
        .write("chart/Chart.yaml", "apiVersion: v2\nname: shapes\nversion: 0.1.0\n")
        .write(
            "chart/templates/config.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.configName }}\ndata:\n  a: \"1\"\n",
        )
        .write(
            "chart/templates/optional.yaml",
            "{{- range .Values.extra }}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ . }}\n{{- end }}\n",
        )
        .write(
            "chart/templates/mover.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mover\n  namespace: {{ .Values.moverNamespace | default \
             .Release.Namespace }}\n",
        )
        .write(
            "chart/templates/hpa.yaml",
            "apiVersion: {{ .Values.hpaVersion }}\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: scaler\nspec:\n  \
             scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  minReplicas: 1\n  maxReplicas: 2\n",
        )
        .write(
            "values.yaml",
            "configName: settings\nextra: [gone]\nhpaVersion: autoscaling/v1\n",
        );
    (project, namespace)
}

#[test]
fn renamed_added_removed_moved_and_reversioned_resources() {
    let (project, namespace) = shapes_project();
    let install = project
        .helm(&[
            "upgrade",
            "--install",
            "shapes",
            "chart",
            "--kube-context",
            "dev",
            "--namespace",
            &namespace,
            "--create-namespace",
            "-f",
            "values.yaml",
        ])
        .output()
        .expect("helm runs");
    assert!(install.status.success(), "{}", stderr_of(&install));
    project.write(
        "values.yaml",
        &format!(
            "configName: app-settings\nextra: [fresh]\nhpaVersion: autoscaling/v2\nmoverNamespace: {namespace}-other\n"
        ),
    );
    let output = project.helm_envs(&["diff", "dev", "-o", "json", "--detailed-exitcode"]).output().expect("runs");
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    let release = &json_of(&output)["releases"][0];
    let ns = &namespace;
    let mut got = changes(&release["changes"]);
    got.sort();
    let mut expected = vec![
        (format!("ConfigMap {ns}/settings"), "removed".to_string()),
        (format!("ConfigMap {ns}/app-settings"), "added".to_string()),
        (format!("ConfigMap {ns}/gone"), "removed".to_string()),
        (format!("ConfigMap {ns}/fresh"), "added".to_string()),
        (format!("ConfigMap {ns}/mover"), "removed".to_string()),
        (format!("ConfigMap {ns}-other/mover"), "added".to_string()),
        (format!("autoscaling/HorizontalPodAutoscaler {ns}/scaler"), "changed".to_string()),
    ];
    expected.sort();
    assert_eq!(got, expected);
    let hpa = release["changes"].as_array().expect("list").iter();
    let hpa = hpa.clone().find(|c| c["kind"] == "HorizontalPodAutoscaler").expect("hpa");
    assert_eq!(field_paths(hpa), ["apiVersion"]);
    assert_eq!(release["plan"], serde_json::json!({"add": 3, "change": 1, "destroy": 3, "unchanged": 0}));
}

#[test]
fn releases_in_the_namespace_that_the_stages_file_does_not_know_are_noted() {
    let (project, ns) = Project::isolated_example("du");
    project.install("dev", &ns.dev, "web");
    let install = project
        .helm(&[
            "upgrade",
            "--install",
            "legacy-batch",
            "../../charts/acme-web",
            "--kube-context",
            "dev",
            "--namespace",
            &ns.dev,
        ])
        .output()
        .expect("helm runs");
    assert!(install.status.success(), "{}", stderr_of(&install));

    let output = project.helm_envs(&["diff", "dev", "-o", "json"]).output().expect("runs");
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(
        stderr_of(&output).contains(&format!(
            "note: release `legacy-batch` is installed in stage dev (namespace {}) but is not in",
            ns.dev
        )),
        "{}",
        stderr_of(&output)
    );
    let report = json_of(&output);
    assert_eq!(
        report["unmanagedReleases"],
        serde_json::json!([{"stage": "dev", "namespace": ns.dev, "release": "legacy-batch"}])
    );
    assert_eq!(report["releases"].as_array().map(Vec::len), Some(2), "web and worker are still diffed");
}

#[test]
fn an_unreachable_cluster_names_the_stage_and_context_once() {
    let project = Project::example();
    let text = project.read("helm-envs.yaml").replace("    kubeContext: staging\n", "    kubeContext: staging-gone\n");
    project.write("helm-envs.yaml", &text);
    let before = project.files();
    let output = project.helm_envs(&["diff", "staging"]).output().expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("failed for stage `staging`"), "{stderr}");
    assert!(stderr.contains("--kube-context staging-gone"), "{stderr}");
    // Helm 3 writes "Kubernetes cluster unreachable", Helm 4 "kubernetes cluster unreachable".
    assert!(stderr.to_lowercase().contains("kubernetes cluster unreachable"), "{stderr}");
    assert!(stderr.contains("the stage's kube context `staging-gone` does not reach a cluster"), "{stderr}");
    assert_eq!(stderr.matches("help: the stage's kube context").count(), 1, "reported once: {stderr}");
    assert!(output.stdout.is_empty());
    assert_eq!(project.files(), before);
}

#[test]
fn malformed_rendered_yaml_names_the_template() {
    let (project, _) = shapes_project();
    let text = project
        .read("helm-envs.yaml")
        .replace("releases:", "  - name: staging\n    kubeContext: staging\n    namespace: shapes-staging\nreleases:");
    project.write("helm-envs.yaml", &text);

    // YAML that helm itself cannot parse: helm's message, which names the template, per stage.
    project.write("chart/templates/broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\n");
    let output = project.helm_envs(&["diff", "--from", "dev", "--to", "staging"]).output().expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("helm template failed for stage `staging`, release `shapes`"), "{stderr}");
    assert!(stderr.contains("YAML parse error on shapes/templates/broken.yaml"), "{stderr}");

    // YAML that helm lets through but that is no Kubernetes object: named with its line.
    project.write("chart/templates/broken.yaml", "# nameless\napiVersion: v1\nkind: ConfigMap\ndata: {}\n");
    let output = project.helm_envs(&["diff", "--from", "dev", "--to", "staging"]).output().expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains(
            "error: helm template output for stage `dev`, release `shapes` is not a valid set of Kubernetes manifests"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("note: shapes/templates/broken.yaml (line "), "{stderr}");
    assert!(stderr.contains("needs `metadata.name`"), "{stderr}");
    assert!(stderr.contains("helm envs render dev --release shapes"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn bad_arguments_are_explained() {
    let project = Project::example();
    let run = |args: &[&str]| project.helm_envs(args).output().expect("runs");

    let output = run(&["diff"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_of(&output).contains("--from"), "{}", stderr_of(&output));

    let output = run(&["diff", "dev", "--from", "dev", "--to", "staging"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_of(&output).contains("cannot be used with"), "{}", stderr_of(&output));

    let output = run(&["diff", "--from", "dev", "--to", "dev"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_of(&output).contains("name two different stages"), "{}", stderr_of(&output));

    let output = run(&["diff", "--from", "dev", "--to", "qa"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_of(&output).contains("unknown stage `qa`"), "{}", stderr_of(&output));

    let output = run(&["diff", "dev", "--ignore", ".spec"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_of(&output).contains("invalid --ignore"), "{}", stderr_of(&output));
}

#[test]
fn text_is_plain_when_piped_and_coloured_when_asked() {
    let project = Project::example();
    let plain = project.helm_envs(&["diff", "--from", "dev", "--to", "staging"]).output().expect("runs");
    assert!(!plain.stdout.contains(&0x1b), "no escape codes when piped");
    let coloured =
        project.helm_envs(&["diff", "--from", "dev", "--to", "staging", "--color", "always"]).output().expect("runs");
    assert!(coloured.stdout.contains(&0x1b));
    insta::assert_snapshot!(stdout_of(&plain));
}
