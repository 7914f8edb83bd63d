//! `helm envs init` on the layouts teams use: the stages file it writes validates against the
//! schema, loads, and renders each stage with that stage's values; it never overwrites or
//! leaves files behind on failure.

use std::path::Path;

use crate::harness::{Project, copy_dir, ok, repo, run, stderr_of, stdout_of};
use crate::schema::schema_errors;

const STAGES: [&str; 3] = ["dev", "staging", "production"];

/// An empty project with the example chart at `chart_dir` and the example web values laid out by
/// `place(stage) -> path` (`None`: the shared file's path).
fn layout(chart_dir: &str, shared: Option<&str>, own: impl Fn(&str) -> String) -> Project {
    let project = Project::empty();
    copy_dir(&repo().join("charts/acme-web"), &project.path(chart_dir));
    if let Some(shared) = shared {
        project.write(shared, &std::fs::read_to_string(repo().join("examples/acme/values/web.yaml")).expect("read"));
    }
    for stage in STAGES {
        let values =
            std::fs::read_to_string(repo().join(format!("examples/acme/envs/{stage}/web.yaml"))).expect("read");
        project.write(&own(stage), &values);
    }
    project
}

/// init succeeds, and its file validates, loads and renders every stage with the stage's values.
fn initialised(project: &Project, expected_values: &str) -> String {
    let report = ok(project, &["init"]);
    let text = project.read("helm-envs.yaml");
    let schema: serde_json::Value = serde_json::from_str(&ok(project, &["schema"])).expect("schema");
    let errors = schema_errors(&schema, &text);
    assert!(errors.is_empty(), "{errors:#?}\n{text}");
    assert!(text.contains(&format!("      - \"{expected_values}\"   # the stage's own\n")), "{text}");
    let list = ok(project, &["list"]);
    for stage in STAGES {
        assert!(list.contains(stage), "{list}");
        let rendered = ok(project, &["render", stage, "--release", "acme-web"]);
        // Each stage's own host, from its own values file.
        let host = match stage {
            "production" => "acme.example.com",
            other => &format!("{other}.acme.example.com"),
        };
        assert!(rendered.contains(&format!("PUBLIC_URL: \"https://{host}\"")), "{stage}: {rendered}");
    }
    assert!(report.contains("dev → staging → production"), "{report}");
    assert!(report.contains("Fill in before deploying"), "{report}");
    text
}

#[test]
fn values_dash_stage_beside_the_chart_with_a_shared_values_file() {
    let project = layout("chart", Some("values.yaml"), |s| format!("values-{s}.yaml"));
    let text = initialised(&project, "values-{stage}.yaml");
    assert!(text.contains("      - \"values.yaml\"   # every stage\n"), "{text}");
    assert!(text.contains("    chart: \"./chart\"\n"), "{text}");
    // The testbed's kubeconfig has contexts named after the stages; production needs approval.
    assert!(text.contains("  - name: production\n    kubeContext: \"production\""), "{text}");
    assert!(text.contains("    approval: required"), "{text}");
    // Differences today are listed as intentional, except what promotions carry.
    assert!(text.contains("envSpecific:\n"), "{text}");
    assert!(text.contains("  - \"replicaCount\"\n"), "{text}");
    // A map whose every key differs is named whole; one with keys the same everywhere (the
    // chart's ingress.enabled) keeps its differing keys apart.
    assert!(text.contains("  - \"resources\"\n") && text.contains("  - \"ingress.host\"\n"), "{text}");
    assert!(!text.contains("  - \"ingress\"\n"), "{text}");
    // A project with one release: exec exports it without --release.
    assert_eq!(
        ok(&project, &["exec", "staging", "--", "printenv", "HELM_ENVS_RELEASE", "HELM_NAMESPACE"]),
        "acme-web\nacme-web-staging\n"
    );
}

#[test]
fn values_dot_stage_inside_the_chart() {
    let project = layout("helm/web", None, |s| format!("helm/web/values.{s}.yaml"));
    let text = initialised(&project, "helm/web/values.{stage}.yaml");
    assert!(!text.contains("# every stage"), "the chart's own values.yaml is its defaults, not a values file: {text}");
}

#[test]
fn envs_stage_values_yaml() {
    let project = layout("charts/web", Some("envs/common/values.yaml"), |s| format!("envs/{s}/values.yaml"));
    let text = initialised(&project, "envs/{stage}/values.yaml");
    assert!(text.contains("      - \"envs/common/values.yaml\"   # every stage\n"), "{text}");
    assert!(!text.contains("name: common"), "{text}");
}

#[test]
fn stage_directories() {
    let project = layout("chart", None, |s| format!("{s}/values.yaml"));
    initialised(&project, "{stage}/values.yaml");
}

#[test]
fn a_chart_with_ci_values() {
    let project = layout(".", None, |s| format!("ci/{s}-values.yaml"));
    let text = initialised(&project, "ci/{stage}-values.yaml");
    assert!(text.contains("    chart: \".\"\n"), "{text}");
}

#[test]
fn several_charts_get_a_release_each_and_a_missing_stage_file_is_created_empty() {
    let project = layout("charts/web", None, |s| format!("envs/{s}/acme-web.yaml"));
    copy_dir(&repo().join("charts/acme-web"), &project.path("charts/api"));
    let chart = project.read("charts/api/Chart.yaml").replace("name: acme-web", "name: api");
    project.write("charts/api/Chart.yaml", &chart);
    project.write("envs/dev/api.yaml", "replicaCount: 1\n");
    project.write("envs/qa/api.yaml", "replicaCount: 1\n");
    let report = ok(&project, &["init"]);
    let text = project.read("helm-envs.yaml");
    assert!(text.contains("  - name: api\n") && text.contains("  - name: acme-web\n"), "{text}");
    // qa has no context in the testbed's kubeconfig: left for the user, and said so.
    assert!(text.contains("kubeContext: \"TODO-qa\"   # TODO"), "{text}");
    assert!(report.contains("kubeContext: TODO (no context in your kubeconfig is named like `qa`)"), "{report}");
    for created in ["envs/staging/api.yaml", "envs/production/api.yaml", "envs/qa/acme-web.yaml"] {
        assert!(report.contains(&format!("Created {created}")), "{report}");
        assert!(project.read(created).starts_with("# Values of"), "{created}");
    }
    assert!(report.contains("dev → qa → staging → production"), "{report}");
    ok(&project, &["render", "qa"]);
}

#[test]
fn init_refuses_to_overwrite_and_replaces_with_force() {
    let project = layout("chart", None, |s| format!("values-{s}.yaml"));
    project.write("helm-envs.yaml", "# mine\n");
    let before = project.files();
    let output = run(&project, &["init"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_of(&output).contains("helm-envs.yaml already exists"), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("pass --force to replace it"), "{}", stderr_of(&output));
    assert_eq!(project.files(), before, "nothing written");
    ok(&project, &["init", "--force"]);
    assert!(project.read("helm-envs.yaml").starts_with("# Written by `helm envs init`"));
}

#[test]
fn init_without_a_chart_or_stage_values_says_what_it_looked_for() {
    let project = Project::empty();
    project.write("values-dev.yaml", "a: 1\n");
    let output = run(&project, &["init"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_of(&output).contains("no Helm chart found in"), "{}", stderr_of(&output));

    copy_dir(&repo().join("charts/acme-web"), &project.path("chart"));
    std::fs::remove_file(project.path("values-dev.yaml")).expect("rm");
    let before = project.files();
    let output = run(&project, &["init"]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout_of(&output));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("no per-stage values files found for the chart in chart"), "{stderr}");
    assert!(stderr.contains("envs/<stage>/values.yaml"), "{stderr}");
    assert_eq!(project.files(), before, "nothing written");
    assert!(!Path::new(&project.path("helm-envs.yaml")).exists());
}

#[test]
fn init_reports_a_values_file_helm_cannot_read_and_writes_nothing() {
    let project = layout("chart", None, |s| format!("values-{s}.yaml"));
    project.write("values-staging.yaml", "replicaCount: [2\n");
    let before = project.files();
    let output = run(&project, &["init"]);
    assert_eq!(output.status.code(), Some(1));
    insta::assert_snapshot!(project.scrub(&output.stderr), @r"
    error: the stages file inferred for [TMP]/project does not load; nothing was written
      - the inferred helm-envs.yaml is not valid
        --> [TMP]/project/values-staging.yaml:1:15: unclosed bracket '['
            note: release `acme-web`, stage `staging` (from `values-{stage}.yaml`)
      help: fix what is reported (a values file helm cannot read, for example) and run init again
    ");
    assert_eq!(project.files(), before, "nothing written, no temporary file left");
}
