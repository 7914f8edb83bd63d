//! Knowing what is deployed: a release helm-envs deployed is judged from helm's record without a
//! render; a render, when one is made, is the one the upgrade makes (`lookup` included, on both
//! helm majors); values a chart generates at every render are not a change of config. The
//! invariants: after `upgrade S`, `drift --stage S` finds nothing and a second `upgrade S`
//! deploys nothing; every real change is still found by `status`, `diff` and `drift`.

use serde_json::Value;

use crate::harness::{Project, copy_dir, create_namespace, dev_stages_file, ok, repo, run, stderr_of, stdout_of};

/// tests/charts/`chart` as release `app` of stage dev, in a namespace of its own (`tag`).
fn chart_project(chart: &str, tag: &str) -> (Project, String) {
    let project = Project::empty();
    let namespace = format!("judge-{tag}-{}", std::process::id());
    copy_dir(&repo().join("tests/charts").join(chart), &project.path("chart"));
    project.write("values.yaml", "message: hi\n");
    project.write("helm-envs.yaml", &dev_stages_file(&namespace, "app", ""));
    project.own_namespace("dev", &namespace);
    create_namespace(&project, "dev", &namespace);
    (project, namespace)
}

/// `status -o json`'s one release: revision and why it is out of sync (empty: in sync).
fn status(project: &Project) -> (u64, Vec<String>) {
    let json: Value = serde_json::from_str(&ok(project, &["status", "-o", "json"])).expect("status JSON");
    crate::documented::assert_documented("status -o json", &json);
    let release = &json["stages"][0]["releases"][0];
    let out_of_sync = release["outOfSync"].as_array().expect("outOfSync").iter();
    (
        release["revision"].as_u64().expect("revision"),
        out_of_sync.map(|v| v.as_str().unwrap_or_default().into()).collect(),
    )
}

/// The helm processes a command started (`-v` names each), with its exit code.
fn helm_calls(project: &Project, args: &[&str]) -> (Option<i32>, Vec<String>) {
    let output = run(project, &[&["-v"], args].concat());
    let stderr = stderr_of(&output);
    let calls = stderr.lines().filter(|l| l.starts_with("helm-envs: running helm ")).map(str::to_string).collect();
    (output.status.code(), calls)
}

fn assert_converged(project: &Project, chart: &str) {
    ok(project, &["upgrade", "dev", "--yes"]);
    let (revision, out_of_sync) = status(project);
    assert_eq!((revision, out_of_sync.as_slice()), (1, &[] as &[String]), "{chart}: in sync after the install");

    let (code, calls) = helm_calls(project, &["upgrade", "dev", "--yes"]);
    assert_eq!(code, Some(0));
    assert!(calls.is_empty(), "{chart}: nothing changed, so no render and no deploy: {calls:#?}");
    assert_eq!(status(project).0, 1, "{chart}: a second upgrade deploys nothing");
    let (code, calls) = helm_calls(project, &["status"]);
    assert_eq!((code, calls.len()), (Some(0), 0), "{chart}: status reads the record only: {calls:#?}");

    let drift = run(project, &["drift", "--stage", "dev"]);
    assert_eq!(drift.status.code(), Some(0), "{chart}: no drift after the upgrade: {}", stdout_of(&drift));
    let diff = run(project, &["diff", "dev", "--detailed-exitcode"]);
    assert_eq!(diff.status.code(), Some(0), "{chart}: the render is what the upgrade deployed: {}", stdout_of(&diff));
}

/// A dashboard's password and an operator's CA, generated once and kept with `lookup`: on
/// Helm 3 too the render runs `lookup`, so it renders the kept ones.
#[test]
fn a_chart_that_keeps_what_it_generates_through_lookup_converges() {
    let (project, _) = chart_project("keeps-generated", "keeps");
    assert_converged(&project, "keeps-generated");
}

/// A certificate made anew at every render: said, not drift, and no reason to deploy.
#[test]
fn a_chart_that_generates_a_certificate_at_every_render_converges_and_says_so() {
    let (project, namespace) = chart_project("regenerates", "regenerates");
    assert_converged(&project, "regenerates");
    let diff = ok(&project, &["diff", "dev"]);
    assert!(diff.contains(&format!("Generated anew at every render (no `lookup` keeps it; every deploy changes it, not a change of config): Secret {namespace}/app-ca (data.ca.crt)")), "{diff}");
    let json: Value = serde_json::from_str(&ok(&project, &["diff", "dev", "-o", "json"])).expect("diff JSON");
    assert_eq!(json["releases"][0]["regenerated"][0]["resource"], format!("Secret {namespace}/app-ca"), "{json:#}");
    let drift = run(&project, &["drift", "--stage", "dev"]);
    assert!(stderr_of(&drift).contains("is generated anew at every render"), "{}", stderr_of(&drift));
}

/// Each kind of change is found although nothing is rendered when nothing changed: a template
/// edited without a version bump, a changed values file, a new chart version, and a
/// `helm upgrade --set` made by hand (its revision carries the label of the one before).
#[test]
fn every_change_is_still_found_by_status_diff_and_drift() {
    let (project, namespace) = chart_project("keeps-generated", "changes");
    ok(&project, &["upgrade", "dev", "--yes"]);
    let found = |what: &str, expected: &[&str]| {
        let (_, out_of_sync) = status(&project);
        assert_eq!(out_of_sync, expected, "{what}: status");
        let diff = run(&project, &["diff", "dev", "--detailed-exitcode"]);
        assert_eq!(diff.status.code(), Some(2), "{what}: diff: {}", stdout_of(&diff));
        let drift = run(&project, &["drift", "--stage", "dev"]);
        assert_eq!(drift.status.code(), Some(2), "{what}: drift: {}", stdout_of(&drift));
        ok(&project, &["upgrade", "dev", "--yes"]);
        assert!(status(&project).1.is_empty(), "{what}: in sync after the upgrade");
    };

    let template = project.read("chart/templates/generated.yaml");
    project.write("chart/templates/generated.yaml", &format!("{template}  edited: \"yes\"\n"));
    found("a template edited without a version bump", &["manifest"]);

    project.write("values.yaml", "message: changed\n");
    found("a changed values file", &["manifest", "values"]);

    let chart = project.read("chart/Chart.yaml");
    project.write("chart/Chart.yaml", &chart.replace("version: 0.1.0", "version: 0.2.0"));
    found("a new chart version", &["chart"]);

    let values = project.path("values.yaml");
    let by_hand = [
        "upgrade",
        "app",
        "chart",
        "--namespace",
        &namespace,
        "--kube-context",
        "dev",
        "--values",
        values.to_str().expect("utf-8"),
        "--set",
        "message=by-hand",
    ];
    let output = project.helm(&by_hand).output().expect("helm runs");
    assert!(output.status.success(), "{}", stderr_of(&output));
    found("a helm upgrade --set by hand", &["manifest", "values"]);
}
