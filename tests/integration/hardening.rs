//! What a failure, an interrupt or a missing namespace leaves behind: files and cluster agree
//! after every failed deploy (the stage is rolled back, then its files), rollbacks never go to
//! a failed revision, a run stops at a signal and says what it leaves, and a fresh cluster's
//! missing namespace is refused before anything is deployed (or created when the stage says so).

use std::time::{Duration, Instant};

use crate::harness::{
    Project, deployed_example, dev_stages_file, kubectl_ok, live, ok, run, stderr_of, stdout_of, with_stage_settings,
};

fn image(project: &Project, stage: &str, namespace: &str, deployment: &str) -> String {
    live(project, stage, namespace, deployment, "{.spec.template.spec.containers[0].image}")
}

fn set_dev_web_tag(project: &Project, tag: &str) {
    let values = project.read("envs/dev/web.yaml");
    project.write("envs/dev/web.yaml", &format!("{values}\nimage:\n  tag: \"{tag}\"\n"));
}

/// What `drift --stage S --live` reports about S's cluster (not the differences between
/// stages' configs, which a failed promotion leaves as they were): the findings' kinds.
fn cluster_drift(project: &Project, stage: &str) -> Vec<String> {
    const CLUSTER: &[&str] = &["release", "chart", "values", "manifest", "edited", "secret", "health"];
    fn kinds(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(kind) = map.get("kind").and_then(|k| k.as_str()).filter(|k| CLUSTER.contains(k)) {
                    out.push(format!("{kind}: {value}"));
                }
                map.values().for_each(|v| kinds(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| kinds(v, out)),
            _ => {}
        }
    }
    let output = run(project, &["drift", "--stage", stage, "--live", "-o", "json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&output)).expect("drift JSON");
    let mut out = Vec::new();
    kinds(&json, &mut out);
    out
}

/// helm's record of a release: (revision, status) oldest first.
fn history(project: &Project, stage: &str, namespace: &str, release: &str) -> Vec<(u64, String)> {
    let args = ["history", release, "--kube-context", stage, "--namespace", namespace, "-o", "json"];
    let output = project.helm(&args).output().expect("helm runs");
    let list: serde_json::Value = serde_json::from_str(&stdout_of(&output)).expect("JSON");
    list.as_array()
        .expect("a list")
        .iter()
        .map(|r| (r["revision"].as_u64().expect("revision"), r["status"].as_str().expect("status").to_string()))
        .collect()
}

#[test]
fn a_failed_verify_rolls_the_stage_back_and_restores_the_files_so_drift_finds_nothing() {
    let (project, ns) = deployed_example("verifyback");
    with_stage_settings(&project, "staging", "    verify: [[sh, -c, \"echo smoke test failed >&2; exit 1\"]]\n");
    set_dev_web_tag(&project, "2.8.0");
    ok(&project, &["upgrade", "dev", "--release", "web"]);
    let staging_before = project.read("envs/staging/web.yaml");

    let output = run(&project, &["promote", "--from", "dev", "--to", "staging"]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}\n{}", stdout_of(&output));
    assert!(stderr.contains("verify command 1 of stage `staging` failed"), "{stderr}");
    assert!(stderr.contains("rolled web back to revision 1, its last successful deploy"), "{stderr}");
    assert!(stderr.contains("envs/staging/web.yaml restored as it was"), "{stderr}");
    assert!(!stderr.contains("--atomic"), "no advice about helm flags that cannot help: {stderr}");
    assert!(stdout_of(&output).contains("then rolled back to revision 1"), "{}", stdout_of(&output));
    assert_eq!(project.read("envs/staging/web.yaml"), staging_before, "the files go back with the cluster");
    assert!(image(&project, "staging", &ns.staging, "deploy/web").ends_with(":2.7.0"));
    assert_eq!(cluster_drift(&project, "staging"), Vec::<String>::new(), "config and cluster agree");
}

#[test]
fn onfailure_keep_keeps_the_new_revision_and_the_files_and_says_so() {
    let (project, ns) = deployed_example("verifykeep");
    with_stage_settings(&project, "staging", "    onFailure: keep\n    verify: [[\"false\"]]\n");
    set_dev_web_tag(&project, "2.8.0");
    ok(&project, &["upgrade", "dev", "--release", "web"]);

    let output = run(&project, &["promote", "--from", "dev", "--to", "staging", "-o", "json"]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("kept (onFailure: keep in stage `staging`): the new revisions of web (revision 2)"),
        "{stderr}"
    );
    assert!(stderr.contains("finish it: `helm envs upgrade staging`"), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&output)).expect("JSON");
    assert_eq!(json["filesRestored"], false);
    assert!(project.read("envs/staging/web.yaml").contains("2.8.0"), "the files stay with the cluster");
    assert!(image(&project, "staging", &ns.staging, "deploy/web").ends_with(":2.8.0"));
    assert_eq!(cluster_drift(&project, "staging"), Vec::<String>::new(), "config and cluster agree");
}

/// A revision helm marked failed (a hand-made `helm upgrade --wait` that timed out) is never
/// the rollback target: the release goes back to the last one that deployed, twice in a row.
#[test]
fn a_rollback_skips_failed_revisions_and_two_failures_in_a_row_end_on_the_good_one() {
    let (project, ns) = deployed_example("lastgood");
    with_stage_settings(&project, "dev", "    health: {timeout: 20s}\n");
    let by_hand =
        ["upgrade", "web", "../../charts/acme-web", "--kube-context", "dev", "--namespace", &ns.dev, "--reuse-values"];
    let failed = project
        .helm(&[&by_hand[..], &["--set", "image.tag=0.0.0-by-hand", "--wait", "--timeout", "5s"]].concat())
        .output()
        .expect("helm runs");
    assert!(!failed.status.success(), "the hand-made upgrade times out");
    assert_eq!(history(&project, "dev", &ns.dev, "web").last().map(|r| r.1.as_str()), Some("failed"));

    for (attempt, tag) in ["0.0.0-missing", "0.0.0-missing-too"].iter().enumerate() {
        set_dev_web_tag(&project, tag);
        let output = run(&project, &["upgrade", "dev", "--release", "web"]);
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(1), "attempt {attempt}: {stderr}");
        assert!(stderr.contains("ImagePullBackOff") || stderr.contains("ErrImagePull"), "{stderr}");
        let expected = if attempt == 0 { 1 } else { 4 };
        assert!(
            stderr.contains(&format!("rolled web back to revision {expected}, its last successful deploy")),
            "attempt {attempt}: not to the failed revision 2, nor to a bad one: {stderr}"
        );
        assert!(image(&project, "dev", &ns.dev, "deploy/web").ends_with(":2.7.0"), "attempt {attempt}");
        assert!(stderr.contains("stage dev runs what it ran before this run"), "{stderr}");
    }
}

/// A revision whose workloads never became ready, kept by `onFailure: keep`, is `deployed` to
/// helm but never a rollback target: the next failure under `rollback` goes back past it, to the
/// last revision that was ready.
#[test]
fn a_revision_kept_unready_is_never_the_rollback_target() {
    let (project, ns) = deployed_example("keptunready");
    let stages = project.read("helm-envs.yaml");
    with_stage_settings(&project, "dev", "    health: {timeout: 15s}\n    onFailure: keep\n");
    set_dev_web_tag(&project, "0.0.0-missing");
    let kept = run(&project, &["upgrade", "dev", "--release", "web"]);
    assert_eq!(kept.status.code(), Some(1), "{}", stderr_of(&kept));
    assert!(stderr_of(&kept).contains("kept (onFailure: keep in stage `dev`)"), "{}", stderr_of(&kept));
    assert_eq!(history(&project, "dev", &ns.dev, "web").last(), Some(&(2, "deployed".to_string())));
    let mark = |revision: u64| {
        let secret = format!("secret/sh.helm.release.v1.web.v{revision}");
        live(&project, "dev", &ns.dev, &secret, "{.metadata.labels.helm-envs/health}")
    };
    assert_eq!(mark(2), "failed", "the unready revision is marked on helm's record");

    project.write("helm-envs.yaml", &stages);
    with_stage_settings(&project, "dev", "    health: {timeout: 15s}\n");
    set_dev_web_tag(&project, "0.0.0-missing-too");
    let output = run(&project, &["upgrade", "dev", "--release", "web"]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("rolled web back to revision 1, its last successful deploy"),
        "not to revision 2, deployed but never ready: {stderr}"
    );
    assert!(image(&project, "dev", &ns.dev, "deploy/web").ends_with(":2.7.0"));
    assert_eq!(mark(3), "failed", "the failed deploy's revision is marked too");
    assert_eq!(mark(4), "", "the rollback's revision is revision 1's copy, unmarked");
}

#[test]
fn a_missing_namespace_is_refused_before_any_deploy_and_created_when_the_stage_says_so() {
    let (project, ns) = Project::isolated_example("nonamespace");
    let output = run(&project, &["upgrade", "dev"]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("namespace gate of stage `dev` refused: `{}` does not exist", ns.dev)),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("kubectl --context dev create namespace {}", ns.dev)), "{stderr}");
    assert!(stderr.contains("createNamespace: true"), "{stderr}");
    assert!(stderr.contains("namespace") && stderr.contains("so no Secret is there yet"), "{stderr}");
    assert!(!stderr.contains("not found"), "helm never ran into the missing namespace: {stderr}");
    let namespaces = stdout_of(
        &project.kubectl(&["--context", "dev", "get", "namespaces", "-o", "name"]).output().expect("kubectl"),
    );
    assert!(!namespaces.contains(&ns.dev), "nothing was created");

    // A release that needs no Secret, on a stage that creates its namespace.
    let chart = Project::empty();
    let namespace = format!("createns-{}", std::process::id());
    chart.own_namespace("dev", &namespace);
    chart.write("chart/Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\n");
    chart.write(
        "chart/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  greeting: {{ .Values.greeting | quote }}\n",
    );
    chart.write("values.yaml", "greeting: hello\n");
    let stages = dev_stages_file(&namespace, "app", "")
        .replace(&format!("namespace: {namespace}\n"), &format!("namespace: {namespace}\n    createNamespace: true\n"));
    chart.write("helm-envs.yaml", &stages);
    let out = ok(&chart, &["upgrade", "dev"]);
    assert!(out.contains("will be created by the deploy (createNamespace)"), "{out}");
    assert_eq!(live(&chart, "dev", &namespace, "configmap/app", "{.data.greeting}"), "hello");
    assert_eq!(cluster_drift(&chart, "dev"), Vec::<String>::new());
}

/// SIGTERM to `exec --gated`: the script gets it, is waited for, and its exit status is
/// helm-envs' own; the project stays locked while it runs.
#[test]
fn exec_passes_a_signal_on_to_its_command_waits_for_it_and_keeps_the_lock() {
    let (project, _ns) = deployed_example("execsignal");
    let script = "trap 'echo cleaned up; exit 7' TERM; touch started; while :; do sleep 0.1; done";
    let mut envs = project.spawn_helm_envs(&["exec", "dev", "--gated", "--", "sh", "-c", script]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !project.path("started").exists() {
        assert!(Instant::now() < deadline, "the script never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    let second = run(&project, &["upgrade", "dev"]);
    assert!(stderr_of(&second).contains("another helm-envs run is changing this project"), "{}", stderr_of(&second));
    let killed = std::process::Command::new("kill").args(["-TERM", &envs.id().to_string()]).status().expect("kill");
    assert!(killed.success());
    let status = envs.wait().expect("helm-envs ends");
    let mut stdout = String::new();
    std::io::Read::read_to_string(envs.stdout.as_mut().expect("stdout"), &mut stdout).expect("read");
    assert_eq!(status.code(), Some(7), "the script's own exit status");
    assert!(stdout.contains("cleaned up"), "the script ran its trap: {stdout}");
    ok(&project, &["upgrade", "dev"]);
}

/// Ctrl-C while `apply` is between stages: no deploy starts after it, the summary says what
/// was not attempted, and the exit status is 130.
#[test]
fn an_interrupted_apply_starts_no_further_stage_and_says_what_was_not_attempted() {
    let (project, ns) = deployed_example("applysignal");
    // dev's verify command interrupts helm-envs itself, as Ctrl-C would, after dev deployed.
    with_stage_settings(&project, "dev", "    verify: [[sh, -c, \"kill -INT $PPID\"]]\n");
    let shared = project.read("values/web.yaml").replace(
        "  acme.example.com/team: storefront\n",
        "  acme.example.com/team: storefront\n  acme.example.com/change: every-stage\n",
    );
    project.write("values/web.yaml", &shared);
    let staging_before = history(&project, "staging", &ns.staging, "web");

    let output = run(&project, &["apply", "--yes"]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(130), "{stderr}\n{}", stdout_of(&output));
    assert!(stderr.contains("error: interrupted (SIGINT)"), "{stderr}");
    assert!(stderr.contains("deployed: dev/web"), "{stderr}");
    assert!(
        stderr.contains("not attempted: staging/web, staging/worker, production/web, production/worker"),
        "{stderr}"
    );
    assert!(stdout_of(&output).contains("not attempted staging/web"), "{}", stdout_of(&output));
    assert_eq!(history(&project, "staging", &ns.staging, "web"), staging_before, "staging was never deployed");
    kubectl_ok(&project, &["--context", "staging", "get", "namespace", &ns.staging]);
}

/// A stage whose cluster cannot be read makes `status` fail, after the report of the others.
#[test]
fn status_fails_when_a_stage_cannot_be_read() {
    let project = Project::example();
    let stages = project.read("helm-envs.yaml").replace("kubeContext: production", "kubeContext: no-such-context");
    project.write("helm-envs.yaml", &stages);
    let output = run(&project, &["status"]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout_of(&output));
    assert!(stdout_of(&output).contains("dev"), "the stages that could be read are reported");
    assert!(
        stderr_of(&output).contains("the releases of stage production could not be read"),
        "{}",
        stderr_of(&output)
    );
}

/// In a git repository the project lock lives in the git directory: `git status` stays clean
/// and `git add -A` never commits it.
#[test]
fn the_project_lock_stays_out_of_the_users_repository() {
    let (project, _ns) = Project::isolated_example("gitlock");
    crate::promote::git_repository(&project);
    crate::promote::git(&project, &["add", "-A"]);
    crate::promote::git(&project, &["commit", "--quiet", "-m", "the platform"]);
    set_dev_web_tag(&project, "2.8.0");
    crate::promote::git(&project, &["commit", "--quiet", "-am", "dev runs 2.8.0"]);
    // Refused at the Secrets gate (staging has none), after the lock was taken.
    let output = run(&project, &["promote", "--from", "dev", "--to", "staging", "--skip-source-check"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    assert_eq!(crate::promote::git(&project, &["status", "--porcelain"]), "", "nothing new in the work tree");
    let locks = std::fs::read_dir(project.path(".git/helm-envs")).expect("the lock's directory").count();
    assert_eq!(locks, 1, "one lock for the project, in the git directory");
    assert!(!project.path(".helm-envs.lock").exists());
}

/// A kubeconfig credential plugin that fails is named as such, not as a cluster out of reach.
#[test]
fn a_failing_credential_plugin_is_named_not_an_unreachable_cluster() {
    let project = Project::example();
    project.add_kubeconfig(
        "apiVersion: v1\nkind: Config\ncontexts:\n- name: broken\n  context: {cluster: dev, user: broken}\nusers:\n\
         - name: broken\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: \"false\"\n      \
         interactiveMode: Never\n",
    );
    let stages = project.read("helm-envs.yaml").replace("kubeContext: dev", "kubeContext: broken");
    project.write("helm-envs.yaml", &stages);
    let output = run(&project, &["diff", "dev"]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the credential plugin of context `broken` failed"), "{stderr}");
    assert!(!stderr.contains("does not reach a cluster"), "{stderr}");
}
