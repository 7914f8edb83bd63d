//! Deploy order within a stage: a release that `needs` others starts only once they are
//! deployed and ready; a failure stops what needs it and lets the rest finish; the stages file
//! refuses names it does not define and cycles.

use serde_json::Value;

use crate::charts::{CrdCleanup, widget_crd, widget_size};
use crate::documented::assert_documented;
use crate::harness::{Project, create_namespace, ok, run, stderr_of, stdout_of};

/// One stage, dev, in `namespace`; `releases` (YAML list items) of charts in the project.
fn stages_file(namespace: &str, stage_keys: &str, releases: &str) -> String {
    format!(
        "stages:\n  - name: dev\n    kubeContext: dev\n    namespace: {namespace}\n{stage_keys}releases:\n{releases}"
    )
}

#[test]
fn an_application_that_needs_an_operator_deploys_after_the_operators_crds_exist() {
    let project = Project::empty();
    let id = std::process::id();
    let (namespace, group) = (format!("needs-{id}"), format!("n{id}.example.com"));
    project.own_namespace("dev", &namespace);
    let _cleanup = CrdCleanup { project: &project, name: format!("widgets.{group}") };
    // The application comes first in the file: in file order its Widget would meet a cluster
    // that does not serve the kind yet, and helm would refuse it.
    let releases = "  - name: app\n    chart: app\n    needs: [operator]\n  - name: operator\n    chart: operator\n";
    project
        .write("helm-envs.yaml", &stages_file(&namespace, "    health: {timeout: 60s}\n", releases))
        .write("operator/Chart.yaml", "apiVersion: v2\nname: operator\nversion: 0.1.0\n")
        .write("operator/crds/widgets.yaml", &widget_crd(&group))
        .write("app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\n")
        .write(
            "app/templates/widget.yaml",
            &format!("apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: main\nspec:\n  size: 3\n"),
        );
    create_namespace(&project, "dev", &namespace);

    let list = ok(&project, &["list"]);
    assert!(list.contains("app  chart app  needs operator"), "{list}");
    assert!(list.contains("  1. operator\n  2. app\n"), "{list}");
    let json: Value = serde_json::from_str(&ok(&project, &["list", "-o", "json"])).expect("JSON");
    assert_eq!(json["deployOrder"], serde_json::json!([["operator"], ["app"]]));
    assert_eq!(json["stages"][0]["releases"][0]["needs"], serde_json::json!(["operator"]));

    let output = run(&project, &["upgrade", "dev", "-o", "json"]);
    assert!(output.status.success(), "{}\n{}", stderr_of(&output), stdout_of(&output));
    let json: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let statuses: Vec<(&str, &str)> = json["outcomes"]
        .as_array()
        .expect("outcomes")
        .iter()
        .map(|o| (o["release"].as_str().unwrap_or(""), o["status"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(statuses, [("app", "deployed"), ("operator", "deployed")]);
    let size = widget_size(&project, &namespace, &group);
    assert_eq!(stdout_of(&size), "3", "the custom resource exists: {}", stderr_of(&size));
    let drift = run(&project, &["drift", "--stage", "dev"]);
    assert_eq!(drift.status.code(), Some(0), "{}", stdout_of(&drift));
}

#[test]
fn a_failing_release_stops_only_what_needs_it() {
    let project = Project::empty();
    let namespace = format!("needs-fail-{}", std::process::id());
    project.own_namespace("dev", &namespace);
    // db never becomes ready (its image does not exist); api needs it; cache needs nothing and
    // comes last in the file, where file order would never reach it.
    let release = |name: &str, needs: &str| {
        format!("  - name: {name}\n    chart: chart\n    values: [\"{{release}}.yaml\"]\n    needs: [{needs}]\n")
    };
    let releases = [release("db", ""), release("api", "db"), release("cache", "")].concat();
    project
        .write("helm-envs.yaml", &stages_file(&namespace, "    onFailure: keep\n    health: {timeout: 20s}\n", &releases))
        .write("chart/Chart.yaml", "apiVersion: v2\nname: part\nversion: 0.1.0\n")
        .write(
            "chart/templates/config.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  part: {{ .Release.Name }}\n",
        )
        .write(
            "chart/templates/deployment.yaml",
            "{{- if .Values.image }}\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  \
             selector: {matchLabels: {part: {{ .Release.Name }}}}\n  template:\n    metadata: {labels: {part: {{ .Release.Name }}}}\n    \
             spec:\n      containers:\n        - name: main\n          image: {{ .Values.image }}\n{{- end }}\n",
        )
        .write("db.yaml", "image: registry.acme.example.com/acme/web:0.0.0-missing\n")
        .write("api.yaml", "{}\n")
        .write("cache.yaml", "{}\n");
    create_namespace(&project, "dev", &namespace);

    let output = run(&project, &["upgrade", "dev", "-o", "json"]);
    assert_eq!(output.status.code(), Some(1), "{}\n{}", stderr_of(&output), stdout_of(&output));
    let json: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_documented("upgrade -o json", &json);
    let outcome = |release: &str| {
        json["outcomes"].as_array().expect("outcomes").iter().find(|o| o["release"] == release).cloned().expect("one")
    };
    assert_eq!(outcome("db")["status"], "failed");
    assert_eq!(outcome("api")["status"], "not-attempted");
    assert_eq!(outcome("api")["blockedBy"], "db");
    assert_eq!(outcome("cache")["status"], "deployed", "independent of db: {json:#}");
    let err = stderr_of(&output);
    assert!(err.contains("release db of stage dev"), "{err}");
    assert!(err.contains("not attempted: dev/api"), "{err}");

    let mut installed = project.helm(&["list", "--kube-context", "dev", "--namespace", &namespace, "--short"]);
    let mut names: Vec<String> = stdout_of(&installed.output().expect("helm")).lines().map(str::to_string).collect();
    names.sort();
    assert_eq!(names, ["cache", "db"], "onFailure: keep keeps what was deployed; api was never installed");

    // Run again: db has nothing to deploy but is still not ready, so api still waits for it.
    let again = run(&project, &["upgrade", "dev"]);
    assert_eq!(again.status.code(), Some(1), "{}\n{}", stderr_of(&again), stdout_of(&again));
    let text = stdout_of(&again);
    assert!(text.contains("unchanged dev/db"), "{text}");
    assert!(text.contains("not attempted dev/api (it needs db, which is not deployed and ready)"), "{text}");
    assert!(stderr_of(&again).contains("release db of stage dev"), "{}", stderr_of(&again));
}

#[test]
fn needs_on_unknown_releases_and_cycles_are_refused_with_their_lines() {
    let project = Project::empty();
    let release = |name: &str, needs: &str| format!("  - name: {name}\n    chart: chart\n    needs: [{needs}]\n");
    project
        .write("chart/Chart.yaml", "apiVersion: v2\nname: part\nversion: 0.1.0\n")
        .write("helm-envs.yaml", &stages_file("a", "", &[release("web", "api"), release("api", "web")].concat()));
    let output = run(&project, &["list"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let err = stderr_of(&output);
    assert!(err.contains("helm-envs.yaml:11:13: the releases' needs form a cycle: web -> api -> web"), "{err}");
    assert!(err.contains("remove one of these needs"), "{err}");

    project.write("helm-envs.yaml", &stages_file("a", "", &[release("web", "ap1"), release("api", "")].concat()));
    let err = stderr_of(&run(&project, &["upgrade", "dev"]));
    assert!(
        err.contains("helm-envs.yaml:8:13: release `web` needs `ap1`, which is not a release of this file"),
        "{err}"
    );
    assert!(err.contains("did you mean `api`?"), "{err}");
}
