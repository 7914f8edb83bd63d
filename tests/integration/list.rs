use crate::harness::{Project, stdout_of};

#[test]
fn list_shows_every_stage_and_release_resolved() {
    let project = Project::example();
    let output = project.helm_envs(&["list"]).output().expect("runs");
    assert!(output.status.success());
    insta::assert_snapshot!(project.scrub(&output.stdout));
}

#[test]
fn list_json_is_machine_readable() {
    let project = Project::example();
    let output = project.helm_envs(&["list", "-o", "json"]).output().expect("runs");
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&output)).expect("JSON");
    let stages: Vec<(&str, &str, &str)> = json["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().expect("name"),
                s["kubeContext"].as_str().expect("ctx"),
                s["namespace"].as_str().expect("ns"),
            )
        })
        .collect();
    assert_eq!(
        stages,
        [("dev", "dev", "acme-dev"), ("staging", "staging", "acme-staging"), ("production", "production", "acme")]
    );
    assert_eq!(json["stages"][2]["approval"], "required");
    let values = &json["stages"][1]["releases"][0]["values"];
    assert_eq!(values[0]["display"], "values/web.yaml");
    assert_eq!(values[0]["shared"], true);
    assert_eq!(values[1]["display"], "envs/staging/web.yaml");
    assert_eq!(values[1]["shared"], false);
}

#[test]
fn the_config_is_found_from_a_subdirectory() {
    let project = Project::example();
    let mut cmd = project.helm_envs(&["list", "-o", "json"]);
    cmd.current_dir(project.path("envs/staging"));
    let output = cmd.output().expect("runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout_of(&output).contains("\"name\": \"production\""));
}

/// docs/ci.md's row for `list -o json` names the fields the document has.
#[test]
fn list_json_has_every_field_docs_ci_names() {
    let project = Project::example();
    let output = project.helm_envs(&["list", "-o", "json"]).output().expect("runs");
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&output)).expect("JSON");
    crate::documented::assert_documented("list -o json", &json);
}

/// A stage's time gates are listed as written, in text and JSON.
#[test]
fn list_shows_soak_and_freeze_windows() {
    let project = Project::example();
    crate::harness::with_stage_settings(
        &project,
        "production",
        "    soak: 24h\n    freeze:\n      - {cron: \"0 12 * * FRI\", duration: 68h, timeZone: Europe/Berlin, reason: weekend}\n",
    );
    let text = stdout_of(&project.helm_envs(&["list"]).output().expect("runs"));
    assert!(text.contains("soak 24h"), "{text}");
    assert!(text.contains("freeze `0 12 * * FRI` for 68h (Europe/Berlin): weekend"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&stdout_of(&project.helm_envs(&["list", "-o", "json"]).output().expect("runs")))
            .expect("JSON");
    let production = &json["stages"][2];
    assert_eq!(production["soakSeconds"], 86400);
    assert_eq!(production["freeze"], serde_json::json!(["`0 12 * * FRI` for 68h (Europe/Berlin): weekend"]));
    assert_eq!(json["stages"][0]["soakSeconds"], serde_json::Value::Null);
}
