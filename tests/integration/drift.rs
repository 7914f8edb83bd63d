//! `helm envs drift` and `helm envs status` on three real clusters: the guide's step 5 (validate
//! environment parity) and its troubleshooting case "configuration drift between environments".

use serde_json::Value;

use crate::harness::{Project, deployed_example, helm_major, kubectl_ok, live, ok, run, stderr_of, stdout_of};

fn drift_json(project: &Project, args: &[&str]) -> (Option<i32>, Value) {
    let output = run(project, &[&["drift", "-o", "json"], args].concat());
    let json = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("drift -o json: {e}\n{}\n{}", stdout_of(&output), stderr_of(&output)));
    crate::documented::assert_documented("drift -o json", &json);
    (output.status.code(), json)
}

/// The findings of one kind in one stage.
fn findings<'j>(json: &'j Value, stage: &str, kind: &str) -> Vec<&'j Value> {
    json["findings"].as_array().expect("findings").iter().filter(|f| f["stage"] == stage && f["kind"] == kind).collect()
}

fn kinds(json: &Value) -> Vec<(String, String)> {
    json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| (f["stage"].as_str().unwrap_or("").to_string(), f["kind"].as_str().unwrap_or("").to_string()))
        .collect()
}

#[test]
fn clean_after_apply_then_a_manual_set_and_a_kubectl_edit_are_found() {
    let (project, ns) = deployed_example("drift-live");

    let output = run(&project, &["drift"]);
    assert_eq!(output.status.code(), Some(0), "{}\n{}", stdout_of(&output), stderr_of(&output));
    assert!(stdout_of(&output).contains("No drift in 3 stages."), "{}", stdout_of(&output));

    // Someone bypasses the promotion workflow in staging.
    let args = ["upgrade", "web", "../../charts/acme-web", "--kube-context", "staging", "--namespace", &ns.staging];
    let output = project.helm(&[&args[..], &["--reuse-values", "--set", "someKey=x"]].concat()).output().expect("helm");
    assert!(output.status.success(), "{}", stderr_of(&output));

    let output = run(&project, &["drift"]);
    assert_eq!(output.status.code(), Some(2));
    let text = stdout_of(&output);
    assert!(text.contains("values        web  someKey: deployed \"x\", values files unset"), "{text}");
    let (code, json) = drift_json(&project, &[]);
    assert_eq!(code, Some(2));
    let values = findings(&json, "staging", "values");
    assert_eq!(values.len(), 1, "{json:#}");
    assert_eq!(
        (&values[0]["release"], &values[0]["path"], &values[0]["deployed"], &values[0]["configured"]),
        (&Value::from("web"), &Value::from("someKey"), &Value::from("x"), &Value::Null)
    );
    assert_eq!(kinds(&json), vec![("staging".into(), "values".into())], "nothing else drifted");

    // Someone edits production's Deployment with kubectl: helm's record does not change, so
    // only --live (the objects in the cluster) finds it.
    let deployment = ["--context", "production", "--namespace", &ns.production];
    kubectl_ok(&project, &[&deployment[..], &["set", "image", "deployment/web", "acme-web=acme/web:hotfix"]].concat());
    let (_, json) = drift_json(&project, &[]);
    assert!(findings(&json, "production", "edited").is_empty(), "{json:#}");

    let (code, json) = drift_json(&project, &["--live", "--stage", "production"]);
    assert_eq!(code, Some(2));
    let edited = findings(&json, "production", "edited");
    assert_eq!(edited.len(), 1, "{json:#}");
    assert_eq!(edited[0]["resource"], format!("apps/Deployment {}/web", ns.production));
    assert_eq!(edited[0]["fields"][0]["path"], "spec.template.spec.containers[0].image");
    assert_eq!(edited[0]["fields"][0]["live"], "acme/web:hotfix");
    assert_eq!(edited[0]["fields"][0]["release"], "registry.acme.example.com/acme/web:2.7.0");
    assert_eq!(edited[0]["managers"][0]["name"], "kubectl-set");
    // The hotfix image is not on the node: the new Pod cannot start, and drift says so too.
    assert_eq!(
        kinds(&json),
        vec![("production".into(), "edited".into()), ("production".into(), "health".into())],
        "status and managedFields are noise"
    );
    let health = findings(&json, "production", "health");
    assert!(health[0]["workloads"].to_string().contains("web"), "{json:#}");

    // The hint restores it (Helm 4 needs --force-conflicts: kubectl-set owns the field).
    let details = stdout_of(&run(&project, &["drift", "--live", "--details", "--stage", "production"]));
    let hint = details
        .split("restore what the release sets: helm ")
        .nth(1)
        .and_then(|rest| rest.split(" (with").next())
        .unwrap_or_else(|| panic!("no restore hint: {details}"));
    let expected = if helm_major() == 4 { "rollback web 1 --force-conflicts" } else { "rollback web 1" };
    assert_eq!(hint, expected);
    let mut args: Vec<&str> = hint.split(' ').collect();
    args.extend(["--kube-context", "production", "--namespace", &ns.production]);
    let output = project.helm(&args).output().expect("helm");
    assert!(output.status.success(), "{}", stderr_of(&output));
    // helm rollback does not wait; the rollout back to the release's image does.
    let rollout = ["rollout", "status", "deployment/web", "--timeout", "120s"];
    kubectl_ok(&project, &[&deployment[..], &rollout[..]].concat());
    let output = run(&project, &["drift", "--live", "--stage", "production"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout_of(&output));
}

#[test]
fn differences_between_stages_undocumented_documented_and_components() {
    let (project, _ns) = deployed_example("drift-config");
    // History: the project is a git repository; the dev change below is not committed yet.
    for args in [
        &["init", "--quiet"][..],
        &["add", "."],
        &["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "start"],
    ] {
        let status = std::process::Command::new("git").args(args).current_dir(&project.dir).status().expect("git");
        assert!(status.success());
    }

    // A non-envSpecific value changed in dev only, and an envSpecific one.
    let dev = project.read("envs/dev/web.yaml").replace("replicaCount: 1\n", "replicaCount: 2\n");
    project.write("envs/dev/web.yaml", &(dev + "\nimage:\n  tag: \"2.8.0\"\n"));
    // Production turns the ingress off: a component staging has and production does not.
    let production = project.read("envs/production/web.yaml").replace("ingress:\n", "ingress:\n  enabled: false\n");
    project.write("envs/production/web.yaml", &production);

    let (code, json) = drift_json(&project, &[]);
    assert_eq!(code, Some(2));
    let undocumented = findings(&json, "staging", "undocumented");
    assert_eq!(undocumented.len(), 1, "only image.tag; replicaCount is envSpecific: {json:#}");
    let tag = undocumented[0];
    assert_eq!((&tag["path"], &tag["release"]), (&Value::from("image.tag"), &Value::from("web")));
    assert_eq!((&tag["previous"]["stage"], &tag["previous"]["value"]), (&Value::from("dev"), &Value::from("2.8.0")));
    assert_eq!(
        (&tag["previous"]["file"], &tag["previous"]["line"]),
        (&Value::from("envs/dev/web.yaml"), &Value::from(26))
    );
    assert_eq!(tag["here"]["value"], "2.7.0");
    assert_eq!(tag["newer"], "dev", "only dev's own values set it");

    let versions = findings(&json, "staging", "version");
    assert_eq!(versions.len(), 1, "{json:#}");
    assert_eq!(
        versions[0]["summary"],
        "image registry.acme.example.com/acme/web (Deployment web, container acme-web): \
         dev 2.8.0 → staging 2.7.0 → production 2.7.0"
    );
    assert!(findings(&json, "production", "version").is_empty(), "staging and production agree");

    let parity = findings(&json, "production", "parity");
    assert_eq!(parity.len(), 1, "{json:#}");
    assert_eq!(
        (&parity[0]["resource"], &parity[0]["renderedIn"]),
        (&Value::from("networking.k8s.io/Ingress web"), &Value::from("staging"))
    );
    let enabled = findings(&json, "production", "undocumented");
    assert_eq!(enabled.len(), 1);
    assert_eq!(
        (&enabled[0]["path"], &enabled[0]["here"]["value"]),
        (&Value::from("ingress.enabled"), &Value::from(false))
    );

    // Documented differences only on request; they are not drift.
    assert!(kinds(&json).iter().all(|(_, kind)| kind != "documented"));
    let (_, json) = drift_json(&project, &["--documented"]);
    let documented = findings(&json, "staging", "documented");
    assert!(
        !documented.iter().any(|f| f["path"] == "replicaCount" && f["release"] == "web"),
        "2 in both: no difference"
    );
    assert!(documented.iter().any(|f| f["path"] == "replicaCount" && f["release"] == "worker"), "{json:#}");
    assert!(documented.iter().any(|f| f["path"] == "resources.limits.cpu"), "{json:#}");
    assert!(
        documented.iter().any(|f| f["of"] == "component" && f["resource"] == "autoscaling/HorizontalPodAutoscaler web"),
        "{json:#}"
    );
    assert!(findings(&json, "dev", "documented").is_empty(), "dev has no stage before it");

    // The text table: grouped by stage, then kind.
    let text = stdout_of(&run(&project, &["drift", "--details"]));
    let staging = text.find("staging (context staging)").expect("staging group");
    let production = text.find("production (context production)").expect("production group");
    let tag_line =
        text.find("undocumented  web  image.tag: \"2.7.0\" here, \"2.8.0\" in dev (dev is newer)").expect(&text);
    assert!(staging < tag_line && tag_line < production, "{text}");
    assert!(text.contains("envs/dev/web.yaml:26"), "{text}");
    assert!(text.contains("promote it: helm envs promote --from dev --to staging --only image.tag"), "{text}");
    assert!(text.contains("manifest      web  deployed manifest is not the config: 1 to destroy"), "{text}");
}

#[test]
fn status_after_promotions_and_chart_version_skew() {
    let (project, ns) = deployed_example("drift-status");
    project.write("envs/dev/web.yaml", &(project.read("envs/dev/web.yaml") + "\nimage:\n  tag: \"2.8.0\"\n"));
    ok(&project, &["upgrade", "dev"]);
    ok(&project, &["promote", "--from", "dev", "--to", "staging"]);
    ok(&project, &["promote", "--from", "staging", "--to", "production", "--yes"]);

    let output = run(&project, &["status", "-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let json: Value = serde_json::from_slice(&output.stdout).expect("json");
    let web = |stage: usize| json["stages"][stage]["releases"][0].clone();
    assert_eq!((web(0)["revision"].clone(), web(0)["lastPromotion"].clone()), (Value::from(2), Value::Null));
    assert_eq!(web(1)["revision"], 2);
    assert_eq!(
        (&web(1)["lastPromotion"]["from"], &web(1)["lastPromotion"]["to"]),
        (&Value::from("dev"), &Value::from("staging"))
    );
    assert_eq!(web(2)["lastPromotion"]["from"], "staging");
    assert_eq!(web(2)["lastPromotion"]["revision"], 2);
    for stage in 0..3 {
        assert_eq!(
            (web(stage)["inSync"].clone(), web(stage)["chart"].clone()),
            (Value::from(true), Value::from("acme-web-1.4.2"))
        );
    }
    let text = ok(&project, &["status"]);
    assert!(text.contains("dev → staging (patch "), "{text}");
    assert!(text.contains("staging → production (patch "), "{text}");
    assert!(text.contains("none in the last 2 revisions"), "dev was upgraded, never promoted into: {text}");

    // A new chart version reaches dev only: deployed versions skew, staging and production
    // run another chart than their config.
    let chart = project.dir.join("../../charts/acme-web/Chart.yaml");
    let bumped = std::fs::read_to_string(&chart).expect("chart").replace("version: 1.4.2", "version: 1.5.0");
    std::fs::write(&chart, bumped).expect("write chart");
    ok(&project, &["upgrade", "dev"]);
    let (code, json) = drift_json(&project, &[]);
    assert_eq!(code, Some(2));
    let skew = findings(&json, "staging", "version");
    assert_eq!(skew.len(), 2, "web and worker: {json:#}");
    assert_eq!(
        skew[0]["summary"],
        "deployed chart: dev acme-web-1.5.0 → staging acme-web-1.4.2 → production acme-web-1.4.2"
    );
    for stage in ["staging", "production"] {
        let chart = findings(&json, stage, "chart");
        assert_eq!(
            (&chart[0]["deployed"], &chart[0]["configured"]),
            (&Value::from("acme-web-1.4.2"), &Value::from("acme-web-1.5.0"))
        );
    }
    let status = ok(&project, &["status", "--stage", "staging"]);
    assert!(status.contains("differs: chart, manifest"), "{status}");
    assert_eq!(
        live(&project, "staging", &ns.staging, "deployment/web", "{.metadata.labels.helm\\.sh/chart}"),
        "acme-web-1.4.2"
    );
}

#[test]
fn an_unreachable_stage_is_reported_as_not_checked_and_the_others_still_are() {
    let (project, _ns) = Project::isolated_example("drift-unreachable");
    project.add_kubeconfig(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster: {server: 'https://127.0.0.1:9'}\n\
         users:\n- name: nobody\n  user: {token: none}\ncontexts:\n- name: gone\n  context: {cluster: gone, user: nobody}\n",
    );
    let text = project.read("helm-envs.yaml").replace("    kubeContext: production\n", "    kubeContext: gone\n");
    project.write("helm-envs.yaml", &text);

    let (code, json) = drift_json(&project, &[]);
    assert_eq!(code, Some(2), "dev and staging were checked (nothing is deployed there): {json:#}");
    let stages = json["stages"].as_array().expect("stages");
    assert_eq!(
        stages.iter().map(|s| s["checked"].clone()).collect::<Vec<_>>(),
        vec![Value::from(true), Value::from(true), Value::from(false)]
    );
    assert!(stages[2]["reason"].as_str().is_some_and(|r| r.contains("127.0.0.1:9")), "{json:#}");
    assert!(!findings(&json, "staging", "release").is_empty(), "staging's releases are not deployed");

    let output = run(&project, &["drift"]);
    let text = stdout_of(&output);
    assert!(text.contains("Clusters not checked: production (reasons above); checked: dev, staging."), "{text}");

    let output = run(&project, &["drift", "--stage", "production"]);
    assert_eq!(output.status.code(), Some(1), "nothing could be checked");
    assert!(stderr_of(&output).contains("no stage's cluster could be checked (production)"), "{}", stderr_of(&output));

    // A stage that could not be read fails `status` (exit 1), after the report of the others.
    let output = run(&project, &["status"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("the releases of stage production could not be read"),
        "{}",
        stderr_of(&output)
    );
    let text = stdout_of(&output);
    assert!(text.contains("not deployed"), "{text}");
    assert!(text.contains("not read: helm"), "{text}");
}

/// A change of values that renders no differently is still a change: helm records the values,
/// `upgrade` deploys it, and afterwards drift finds nothing (the invariant across commands:
/// after `upgrade S` succeeds, `drift --stage S` is clean). The source gate of a promotion
/// judges as drift does.
#[test]
fn values_only_changes_are_deployed_and_judged_as_drift_judges_them() {
    let (project, ns) = deployed_example("drift-values");
    // A key the chart does not read: the manifest stays the same.
    let dev = project.read("envs/dev/web.yaml");
    project.write("envs/dev/web.yaml", &format!("{dev}\nfeatureNotes: reviewed\n"));

    let output = run(&project, &["diff", "dev", "--release", "web", "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(2), "a deploy would record the value: {}", stdout_of(&output));
    assert!(stdout_of(&output).contains("Values: featureNotes deployed with other values"), "{}", stdout_of(&output));
    let (code, json) = drift_json(&project, &["--stage", "dev"]);
    assert_eq!(code, Some(2));
    assert_eq!(findings(&json, "dev", "values").len(), 1, "{json:#}");

    // The source gate says what drift says.
    let output = run(&project, &["promote", "--from", "dev", "--to", "staging", "--dry-run"]);
    assert_eq!(output.status.code(), Some(3), "{}", stdout_of(&output));
    assert!(stdout_of(&output).contains("web was deployed with another `featureNotes`"), "{}", stdout_of(&output));

    let output = run(&project, &["upgrade", "dev", "--release", "web"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let mut history = project.helm(&["history", "web", "--kube-context", "dev", "--namespace", &ns.dev, "-o", "json"]);
    let history: Value = serde_json::from_slice(&history.output().expect("helm").stdout).expect("json");
    assert_eq!(history.as_array().map(Vec::len), Some(2), "deployed as revision 2: {history:#}");
    let output = run(&project, &["drift", "--stage", "dev"]);
    assert_eq!(output.status.code(), Some(0), "clean after upgrade: {}", stdout_of(&output));
    let values = project.helm(&["get", "values", "web", "--kube-context", "dev", "--namespace", &ns.dev]).output();
    assert!(stdout_of(&values.expect("helm")).contains("featureNotes: reviewed"));

    // A value set by hand (helm upgrade --set) is taken back by the next upgrade, too.
    let args = ["upgrade", "web", "../../charts/acme-web", "--kube-context", "staging", "--namespace", &ns.staging];
    let output = project.helm(&[&args[..], &["--reuse-values", "--set", "someKey=x"]].concat()).output().expect("helm");
    assert!(output.status.success(), "{}", stderr_of(&output));
    ok(&project, &["upgrade", "staging", "--release", "web"]);
    let (_, json) = drift_json(&project, &["--stage", "staging"]);
    // (dev's featureNotes is an undocumented difference between the stages' files, not the cluster's.)
    assert_eq!(kinds(&json), vec![("staging".into(), "undocumented".into())], "clean after upgrade: {json:#}");
}
