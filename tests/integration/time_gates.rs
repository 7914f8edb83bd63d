//! Gates about time: a stage's freeze windows refuse every deploy into it while they hold, and
//! a stage's `soak` refuses a promotion from a source deployed too recently; each gives way to
//! its named flag, which the output, the release description and the Event record.

use serde_json::Value;

use crate::harness::{Project, deployed_example, ok, provision, run, stderr_of, stdout_of, with_stage_settings};

/// The `helm-envs/overrides` annotation of each helm-envs Event in a namespace.
fn event_overrides(project: &Project, stage: &str, namespace: &str) -> Vec<String> {
    let args = ["--context", stage, "--namespace", namespace, "get", "events", "-l"];
    let output = project
        .kubectl(&[&args[..], &["app.kubernetes.io/managed-by=helm-envs", "-o", "json"]].concat())
        .output()
        .expect("kubectl runs");
    let list: Value = serde_json::from_str(&stdout_of(&output)).expect("JSON");
    let items = list["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .map(|e| e["metadata"]["annotations"]["helm-envs/overrides"].as_str().unwrap_or("").to_string())
        .collect()
}

/// The descriptions of a release's revisions, oldest first.
fn descriptions(project: &Project, stage: &str, namespace: &str, release: &str) -> Vec<String> {
    let args = ["history", release, "--kube-context", stage, "--namespace", namespace, "-o", "json"];
    let list: Value = serde_json::from_slice(&project.helm(&args).output().expect("helm runs").stdout).expect("JSON");
    list.as_array().expect("a list").iter().map(|r| r["description"].as_str().unwrap_or("").to_string()).collect()
}

#[test]
fn a_freeze_window_refuses_every_deploy_until_overridden_and_the_override_is_recorded() {
    let (project, ns) = Project::isolated_example("freeze");
    provision(&project, "dev", &ns.dev, &[]);
    // A window that started this minute and lasts an hour.
    with_stage_settings(
        &project,
        "dev",
        "    freeze:\n      - cron: \"* * * * *\"\n        duration: 1h\n        reason: release freeze\n",
    );

    let refused = run(&project, &["upgrade", "dev", "-o", "json"]);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr_of(&refused));
    let err = stderr_of(&refused);
    assert!(err.contains("freeze gate of stage `dev` refused: dev is frozen until"), "{err}");
    assert!(
        err.contains("(`* * * * *` for 1h (UTC): release freeze); deploy then, or pass --override-freeze"),
        "{err}"
    );
    let json: Value = serde_json::from_slice(&refused.stdout).expect("JSON");
    assert_eq!(json["result"], "refused");
    assert_eq!(json["gates"][0]["gate"], "freeze");
    assert_eq!(json["gates"][0]["passed"], false);
    let mut installed = project.helm(&["list", "--kube-context", "dev", "--namespace", &ns.dev, "--short"]);
    assert_eq!(stdout_of(&installed.output().expect("helm runs")), "", "nothing was deployed");
    // Every deploying command passes the same gate.
    let apply = run(&project, &["apply", "--yes"]);
    assert_eq!(apply.status.code(), Some(3), "{}", stderr_of(&apply));
    assert!(stderr_of(&apply).contains("freeze gate of stage `dev` refused"), "{}", stderr_of(&apply));
    let exec = run(&project, &["exec", "dev", "--gated", "--", "true"]);
    assert_eq!(exec.status.code(), Some(3), "{}", stderr_of(&exec));

    let out = ok(&project, &["upgrade", "dev", "--override-freeze"]);
    assert!(out.contains("overridden freeze"), "{out}");
    assert!(out.contains("deployed anyway (--override-freeze)"), "{out}");
    assert!(descriptions(&project, "dev", &ns.dev, "web")[0].ends_with("(overriding freeze)"), "helm's record says so");
    let overrides = event_overrides(&project, "dev", &ns.dev);
    assert!(!overrides.is_empty() && overrides.iter().all(|o| o == "freeze"), "every Event says so: {overrides:?}");
}

#[test]
fn soak_refuses_a_promotion_from_a_stage_deployed_minutes_ago_unless_overridden() {
    let (project, ns) = deployed_example("soak");
    project.write("envs/dev/web.yaml", &(project.read("envs/dev/web.yaml") + "image:\n  tag: \"2.8.0\"\n"));
    ok(&project, &["upgrade", "dev"]);
    with_stage_settings(&project, "staging", "    soak: 24h\n");

    let files = project.files();
    let refused = run(&project, &["promote", "--from", "dev", "--to", "staging"]);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr_of(&refused));
    let err = stderr_of(&refused);
    assert!(
        err.contains("soak gate of stage `staging` refused: staging wants 24h in dev first: web revision 2 has run")
    );
    assert!(err.contains("the gate opens at "), "{err}");
    let after = project.files();
    // The project lock (outside git, beside the stages file) names its last holder; no other file changes.
    let changed: Vec<&std::path::PathBuf> = after
        .keys()
        .chain(files.keys())
        .filter(|path| !path.ends_with(".helm-envs.lock") && after.get(*path) != files.get(*path))
        .collect();
    assert!(changed.is_empty(), "nothing was written: {changed:?}");

    let out = ok(&project, &["promote", "--from", "dev", "--to", "staging", "--override-soak"]);
    assert!(out.contains("overridden soak"), "{out}");
    assert!(out.contains("promoted anyway (--override-soak)"), "{out}");
    let last = descriptions(&project, "staging", &ns.staging, "web").pop().expect("a revision");
    assert!(last.starts_with("helm-envs: promoted dev -> staging") && last.ends_with("(overriding soak)"), "{last}");
    assert!(event_overrides(&project, "staging", &ns.staging).contains(&"soak".to_string()));
}
