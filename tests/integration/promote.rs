//! `helm envs promote`, `upgrade` and `apply` on three real clusters: the guide's validation
//! scenario, its troubleshooting cases, and what happens to files and releases when a step fails.

use std::fs::OpenOptions;

use serde_json::Value;

use crate::harness::{
    Project, create_secret, deployed_example, live, ok, provision, run, stderr_of, stdout_of, wait_until_pending,
    with_stage_settings,
};

fn image(project: &Project, stage: &str, namespace: &str) -> String {
    live(project, stage, namespace, "deployment/web", "{.spec.template.spec.containers[0].image}")
}

const RC_IN_DEV: &str = "\n# Release candidate under test in dev.\nimage:\n  tag: \"2.8.0\"\n";

#[test]
fn the_guides_validation_scenario_end_to_end() {
    let (project, ns) = deployed_example("promote-guide");
    let staging_before = project.read("envs/staging/web.yaml");
    let production_before = project.read("envs/production/web.yaml");

    // A change in dev only, deployed to dev: staging and production do not move.
    project.write("envs/dev/web.yaml", &(project.read("envs/dev/web.yaml") + RC_IN_DEV));
    ok(&project, &["upgrade", "dev"]);
    assert_eq!(image(&project, "dev", &ns.dev), "registry.acme.example.com/acme/web:2.8.0");
    assert_eq!(image(&project, "staging", &ns.staging), "registry.acme.example.com/acme/web:2.7.0");
    assert_eq!(image(&project, "production", &ns.production), "registry.acme.example.com/acme/web:2.7.0");

    // Skipping staging is refused, before anything is written.
    let skip = run(&project, &["promote", "--from", "dev", "--to", "production", "--yes"]);
    assert_eq!(skip.status.code(), Some(3), "{}", stderr_of(&skip));
    assert!(stderr_of(&skip).contains("--allow-skip"), "{}", stderr_of(&skip));
    assert_eq!(project.read("envs/production/web.yaml"), production_before);

    // Into staging: the patch, the diff, the gates, then the write and the deploy.
    let out = ok(&project, &["promote", "--from", "dev", "--to", "staging"]);
    assert!(out.contains("+ image.tag: \"2.8.0\"  envs/staging/web.yaml"), "{out}");
    assert!(out.contains("~ spec.template.spec.containers[0].image"), "{out}");
    assert!(out.contains("Promoted dev into staging."), "{out}");
    assert_eq!(project.read("envs/staging/web.yaml"), format!("{staging_before}image:\n  tag: \"2.8.0\"\n"));
    assert_eq!(image(&project, "staging", &ns.staging), "registry.acme.example.com/acme/web:2.8.0");
    assert_eq!(image(&project, "production", &ns.production), "registry.acme.example.com/acme/web:2.7.0");
    // envSpecific values stayed per stage.
    let mode = |stage: &str, namespace: &str| {
        live(&project, stage, namespace, "configmap/web-config", "{.data.PAYMENTS_MODE}")
    };
    assert_eq!((mode("dev", &ns.dev), mode("staging", &ns.staging)), ("mock".into(), "sandbox".into()));
    assert_eq!(live(&project, "dev", &ns.dev, "deployment/web", "{.spec.replicas}"), "1");
    assert_eq!(live(&project, "staging", &ns.staging, "hpa/web", "{.spec.maxReplicas}"), "4");
    let history = stdout_of(
        &project
            .helm(&["history", "web", "--kube-context", "staging", "--namespace", &ns.staging])
            .output()
            .expect("helm"),
    );
    assert!(history.contains("helm-envs: promoted dev -> staging (patch "), "{history}");

    // Into production: approval required, so without a terminal it needs --yes.
    let refused = run(&project, &["promote", "--from", "staging", "--to", "production"]);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr_of(&refused));
    assert!(stderr_of(&refused).contains("requires approval"), "{}", stderr_of(&refused));
    assert_eq!(project.read("envs/production/web.yaml"), production_before);
    ok(&project, &["promote", "--from", "staging", "--to", "production", "--yes"]);
    assert_eq!(image(&project, "production", &ns.production), "registry.acme.example.com/acme/web:2.8.0");
    assert_eq!(mode("production", &ns.production), "production");

    // Nothing left to promote, and the same promotion again is a no-op.
    let again = ok(&project, &["promote", "--from", "dev", "--to", "staging"]);
    assert!(again.contains("Nothing to promote"), "{again}");
}

#[test]
fn a_secret_that_exists_in_dev_but_not_in_staging_refuses_the_promotion() {
    let (project, ns) = deployed_example("promote-secret");
    create_secret(&project, "dev", &ns.dev, "acme-db-v2", &["url", "password"], "dev-only");
    project.write("envs/dev/web.yaml", &(project.read("envs/dev/web.yaml") + "database:\n  secretName: acme-db-v2\n"));
    ok(&project, &["upgrade", "dev"]);
    let files = project.files();

    let out = run(&project, &["promote", "--from", "dev", "--to", "staging"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert!(stdout_of(&out).contains("missing      Secret acme-db-v2 (keys password, url)"), "{}", stdout_of(&out));
    assert!(stderr_of(&out).contains("secrets gate of stage `staging` refused"), "{}", stderr_of(&out));
    assert_eq!(
        project.files().into_iter().filter(|(p, _)| !p.ends_with(".helm-envs.lock")).collect::<Vec<_>>(),
        files.into_iter().filter(|(p, _)| !p.ends_with(".helm-envs.lock")).collect::<Vec<_>>()
    );
    let revision = live(&project, "staging", &ns.staging, "secret", "{.items[*].metadata.labels.version}");
    assert_eq!(revision, "1 1", "staging's releases are still at their first revision");
}

#[test]
fn a_deploy_the_cluster_rejects_restores_the_targets_files() {
    let (project, ns) = deployed_example("promote-reject");
    // Port 70000 passes helm's schema validation; the API server rejects it.
    project.write("envs/dev/web.yaml", &(project.read("envs/dev/web.yaml") + "service:\n  port: 70000\n"));
    let before = project.read("envs/staging/web.yaml");

    let out = run(&project, &["promote", "--from", "dev", "--to", "staging", "--skip-source-check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("promote failed"), "{err}");
    assert!(err.contains("70000"), "helm's message is shown: {err}");
    assert!(err.contains("envs/staging/web.yaml restored as it was"), "{err}");
    assert!(err.contains("not checking that dev is deployed"), "the skipped check is named: {err}");
    assert_eq!(project.read("envs/staging/web.yaml"), before);
    assert_eq!(live(&project, "staging", &ns.staging, "service/web", "{.spec.ports[0].port}"), "80");
}

#[test]
fn a_failing_verify_command_restores_the_files_too() {
    let (project, _ns) = deployed_example("promote-verify");
    with_stage_settings(&project, "staging", "    verify:\n      - [sh, -c, 'echo smoke test failed >&2; exit 7']\n");
    project.write("envs/dev/web.yaml", &(project.read("envs/dev/web.yaml") + RC_IN_DEV));
    ok(&project, &["upgrade", "dev"]);
    let before = project.read("envs/staging/web.yaml");
    let out = run(&project, &["promote", "--from", "dev", "--to", "staging"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(
        err.contains("smoke test failed") && err.contains("verify command 1 of stage `staging` failed (exit status 7)"),
        "{err}"
    );
    assert_eq!(project.read("envs/staging/web.yaml"), before);
}

#[test]
fn only_narrows_the_patch_and_never_promotes_env_specific_paths() {
    let (project, ns) = deployed_example("promote-only");
    let dev = project.read("envs/dev/web.yaml") + RC_IN_DEV + "podAnnotations:\n  acme.example.com/canary: \"true\"\n";
    project.write("envs/dev/web.yaml", &dev);
    ok(&project, &["upgrade", "dev"]);
    let out = run(
        &project,
        &["promote", "--from", "dev", "--to", "staging", "--only", "image.tag", "--only", "replicaCount"],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("--only replicaCount: the path is envSpecific"), "{}", stderr_of(&out));
    let staging = project.read("envs/staging/web.yaml");
    assert!(staging.ends_with("image:\n  tag: \"2.8.0\"\n") && !staging.contains("canary"), "{staging}");
    assert_eq!(image(&project, "staging", &ns.staging), "registry.acme.example.com/acme/web:2.8.0");

    let typo = run(&project, &["promote", "--from", "dev", "--to", "staging", "--only", "imgae.tag"]);
    assert_eq!(typo.status.code(), Some(1));
    assert!(
        stderr_of(&typo).contains("--only imgae.tag: no such value in stage `dev` or `staging`"),
        "{}",
        stderr_of(&typo)
    );
}

#[test]
fn a_second_promotion_at_the_same_time_fails_fast_and_touches_nothing() {
    let (project, _ns) = Project::isolated_example("promote-lock");
    project.write("envs/dev/web.yaml", &(project.read("envs/dev/web.yaml") + RC_IN_DEV));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(project.path(".helm-envs.lock"))
        .expect("lock file");
    lock.try_lock().expect("the test holds the lock");
    let files = project.files();
    let out = run(&project, &["promote", "--from", "dev", "--to", "staging", "--skip-source-check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("another helm-envs run is changing this project"), "{}", stderr_of(&out));
    assert_eq!(project.files(), files);
    drop(lock);
}

pub fn git(project: &Project, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .args(args)
        .current_dir(&project.dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("git runs");
    assert!(output.status.success(), "git {args:?}: {}", stderr_of(&output));
    stdout_of(&output)
}

/// The project directory as a git repository on branch main.
pub fn git_repository(project: &Project) {
    git(project, &["init", "--quiet", "--initial-branch", "main"]);
    git(project, &["config", "user.name", "t"]);
    git(project, &["config", "user.email", "t@example.com"]);
}

#[test]
fn no_deploy_with_git_commit_makes_one_commit_of_exactly_the_edited_lines() {
    let (project, ns) = Project::isolated_example("promote-git");
    provision(&project, "staging", &ns.staging, &[]);
    git_repository(&project);
    project.write("envs/dev/web.yaml", &(project.read("envs/dev/web.yaml") + RC_IN_DEV));
    git(&project, &["add", "."]);
    git(&project, &["commit", "--quiet", "-m", "dev runs 2.8.0"]);

    let out = ok(
        &project,
        &["promote", "--from", "dev", "--to", "staging", "--no-deploy", "--git-commit", "--skip-source-check"],
    );
    assert!(out.contains("not deployed (--no-deploy)"), "{out}");
    let branch = git(&project, &["branch", "--show-current"]);
    assert!(branch.trim().starts_with("promote/dev-to-staging-"), "{branch}");
    assert_eq!(git(&project, &["rev-list", "--count", "main..HEAD"]).trim(), "1");
    let diff = git(&project, &["diff", "--unified=0", "main", "HEAD"]);
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| (l.starts_with('+') || l.starts_with('-')) && !l.starts_with("+++") && !l.starts_with("---"))
        .collect();
    assert_eq!(changed, ["+image:", "+  tag: \"2.8.0\""], "{diff}");
    let message = git(&project, &["log", "-1", "--format=%B"]);
    assert!(
        message.starts_with("Promote dev to staging: image.tag") && message.contains("+ image.tag: \"2.8.0\""),
        "{message}"
    );
    assert_eq!(git(&project, &["status", "--porcelain", "--untracked-files=no"]), "");
    let releases =
        project.helm(&["list", "--kube-context", "staging", "--namespace", &ns.staging, "-q"]).output().expect("helm");
    assert_eq!(stdout_of(&releases), "", "the cluster is untouched");

    // Uncommitted edits to a file the promotion would write: refused before writing.
    git(&project, &["switch", "--quiet", "main"]);
    project.write("envs/staging/web.yaml", &(project.read("envs/staging/web.yaml") + "# local edit\n"));
    let dirty = run(
        &project,
        &["promote", "--from", "dev", "--to", "staging", "--no-deploy", "--git-commit", "--skip-source-check"],
    );
    assert_eq!(dirty.status.code(), Some(1));
    assert!(stderr_of(&dirty).contains("have uncommitted changes"), "{}", stderr_of(&dirty));
    assert!(project.read("envs/staging/web.yaml").ends_with("# local edit\n"));
}

#[test]
fn dry_run_json_shows_patch_diff_and_gates_and_writes_nothing() {
    let (project, _ns) = deployed_example("promote-json");
    project.write(
        "envs/dev/web.yaml",
        &(project.read("envs/dev/web.yaml") + RC_IN_DEV + "database:\n  password: hunter2-dev\n"),
    );
    let upgrade: Value = serde_json::from_str(&ok(&project, &["upgrade", "dev", "-o", "json"])).expect("JSON");
    crate::documented::assert_documented("upgrade -o json", &upgrade);
    assert_eq!(upgrade["result"], "deployed");
    assert_eq!(upgrade["outcomes"][0]["status"], "deployed", "{upgrade:#}");
    let files = project.files();
    let out = ok(&project, &["promote", "--from", "dev", "--to", "staging", "--dry-run", "-o", "json"]);
    assert!(!out.contains("hunter2"), "credential-like values are redacted: {out}");
    let json: Value = serde_json::from_str(&out).expect("JSON");
    crate::documented::assert_documented("promote -o json", &json);
    assert_eq!(json["result"], "dry-run");
    let web = &json["releases"][0];
    assert_eq!(web["release"], "web");
    assert_eq!(web["patch"][1]["path"], "/image");
    assert_eq!(json["files"][0], "envs/staging/web.yaml");
    let gates: Vec<&str> =
        json["gates"].as_array().expect("gates").iter().map(|g| g["gate"].as_str().expect("name")).collect();
    assert_eq!(gates, ["order", "encrypted", "source", "health", "namespace", "secrets", "approval"]);
    assert_eq!(json["diff"]["releases"][0]["plan"]["change"], 1, "{out}");
    assert_eq!(project.files(), files);
}

#[test]
fn upgrade_checks_the_cluster_pin() {
    let (project, ns) = Project::isolated_example("upgrade-pin");
    provision(&project, "dev", &ns.dev, &[]);
    let uid = live(&project, "dev", "kube-system", "namespace/kube-system", "{.metadata.uid}");
    let pinned = |id: &str| {
        project
            .read("helm-envs.yaml")
            .replace("    kubeContext: dev\n", &format!("    kubeContext: dev\n    clusterId: \"{id}\"\n"))
    };
    let original = project.read("helm-envs.yaml");
    project.write("helm-envs.yaml", &pinned("00000000-0000-0000-0000-000000000000"));
    let wrong = run(&project, &["upgrade", "dev"]);
    assert_eq!(wrong.status.code(), Some(3), "{}", stderr_of(&wrong));
    assert!(
        stderr_of(&wrong).contains(&format!("reaches cluster {uid}, but stage `dev` is pinned")),
        "{}",
        stderr_of(&wrong)
    );
    let releases =
        project.helm(&["list", "--kube-context", "dev", "--namespace", &ns.dev, "-q"]).output().expect("helm");
    assert_eq!(stdout_of(&releases), "");

    project.write("helm-envs.yaml", &original);
    project.write("helm-envs.yaml", &pinned(&uid));
    let out = ok(&project, &["upgrade", "dev", "--release", "web"]);
    assert!(out.contains(&format!("passed  cluster  context dev reaches cluster {uid}")), "{out}");
    assert!(out.contains("deployed  dev/web (revision 1)"), "{out}");
}

#[test]
fn apply_deploys_every_stage_in_order_and_stops_at_a_refused_gate() {
    let (project, ns) = Project::isolated_example("apply");
    provision(&project, "dev", &ns.dev, &[]);
    provision(&project, "staging", &ns.staging, &[]);
    provision(&project, "production", &ns.production, &["payments-credentials"]);

    let unattended = run(&project, &["apply"]);
    assert_eq!(unattended.status.code(), Some(3));
    assert!(stderr_of(&unattended).contains("stage production requires approval"), "{}", stderr_of(&unattended));

    let out = run(&project, &["apply", "--yes"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("secrets gate of stage `production` refused"), "{err}");
    assert!(err.contains("deployed: dev/web, dev/worker, staging/web, staging/worker"), "{err}");
    assert!(err.contains("not attempted: production/web, production/worker"), "{err}");
    assert_eq!(image(&project, "staging", &ns.staging), "registry.acme.example.com/acme/web:2.7.0");

    create_secret(&project, "production", &ns.production, "payments-credentials", &["api-key"], "x");
    let out = ok(&project, &["apply", "--yes", "-o", "json"]);
    let json: Value = serde_json::from_str(&out).expect("JSON");
    crate::documented::assert_documented("apply -o json", &json);
    let statuses: Vec<String> = json["outcomes"]
        .as_array()
        .expect("outcomes")
        .iter()
        .map(|o| {
            format!(
                "{}/{} {}",
                o["stage"].as_str().unwrap_or(""),
                o["release"].as_str().unwrap_or(""),
                o["status"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            "dev/web unchanged",
            "dev/worker unchanged",
            "staging/web unchanged",
            "staging/worker unchanged",
            "production/web deployed",
            "production/worker deployed"
        ]
    );
}

/// The guide's GitOps flow from a CI job without cluster credentials: `--no-deploy` renders
/// offline, writes and commits, and says which checks it could not run. With a reachable
/// cluster the same command runs them all (the test above).
#[test]
fn no_deploy_works_without_any_cluster_and_says_what_it_could_not_check() {
    let project = Project::example();
    git_repository(&project);
    project.write("envs/dev/web.yaml", &(project.read("envs/dev/web.yaml") + RC_IN_DEV));
    git(&project, &["add", "."]);
    git(&project, &["commit", "--quiet", "-m", "dev runs 2.8.0"]);

    let args = ["promote", "--from", "dev", "--to", "staging", "--no-deploy", "--git-commit", "-o", "json"];
    let output =
        project.helm_envs(&args).env("KUBECONFIG", project.root().join("no-kubeconfig")).output().expect("runs");
    assert_eq!(output.status.code(), Some(0), "{}\n{}", stdout_of(&output), stderr_of(&output));
    assert!(stderr_of(&output).contains("staging's cluster cannot be reached"), "{}", stderr_of(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(json["result"], "written");
    assert_eq!(json["offline"], true);
    let gates: Vec<(String, bool)> = json["gates"]
        .as_array()
        .expect("gates")
        .iter()
        .map(|g| (g["gate"].as_str().unwrap_or_default().to_string(), g["checked"].as_bool().unwrap_or(true)))
        .collect();
    assert_eq!(
        gates,
        [
            ("order".into(), true),
            ("encrypted".into(), true),
            ("source".into(), false),
            ("secrets".into(), false),
            ("approval".into(), true)
        ]
    );
    // The offline diff: the one Deployment the new image changes.
    let changes = &json["diff"]["releases"][0]["changes"];
    assert_eq!(changes.as_array().map(Vec::len), Some(1), "{changes:#}");
    assert_eq!(changes[0]["id"], "apps/Deployment acme-staging/web");

    assert!(project.read("envs/staging/web.yaml").ends_with("image:\n  tag: \"2.8.0\"\n"), "written");
    assert_eq!(git(&project, &["rev-list", "--count", "main..HEAD"]).trim(), "1", "committed on a branch");

    // Without --no-deploy an unreachable cluster is still an error: nothing is written.
    git(&project, &["switch", "--quiet", "main"]);
    let before = project.read("envs/staging/web.yaml");
    let output = project
        .helm_envs(&["promote", "--from", "dev", "--to", "staging"])
        .env("KUBECONFIG", project.root().join("no-kubeconfig"))
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1), "{}", stdout_of(&output));
    assert!(project.read("envs/staging/web.yaml") == before, "nothing written");
    assert_eq!(git(&project, &["status", "--porcelain", "--untracked-files=no"]), "");
}

/// A value nested under a credential-like key never reaches promote's patch, drift's details
/// or either JSON.
#[test]
fn values_nested_under_a_credential_like_key_are_redacted_everywhere() {
    const PLANTED: &str = "hunter2-nested-credential";
    let (project, _) = Project::isolated_example("nested-secret");
    let dev = project.read("envs/dev/web.yaml");
    project.write("envs/dev/web.yaml", &format!("{dev}\ndb:\n  password:\n    value: {PLANTED}\n"));
    for args in [
        &["promote", "--from", "dev", "--to", "staging", "--dry-run", "--skip-source-check"][..],
        &["promote", "--from", "dev", "--to", "staging", "--dry-run", "--skip-source-check", "-o", "json"],
        &["drift", "--details"],
        &["drift", "-o", "json"],
    ] {
        let output = run(&project, args);
        let everything = format!("{}{}", stdout_of(&output), stderr_of(&output));
        assert!(everything.contains("password"), "{args:?} shows the path: {everything}");
        assert!(!everything.contains(PLANTED), "{args:?} printed the credential:\n{everything}");
    }
}

/// A read-only target file (0444) is not replaced through a rename: refused, nothing written.
#[test]
fn a_read_only_target_values_file_is_refused_and_nothing_is_written() {
    use std::os::unix::fs::PermissionsExt as _;
    let (project, ns) = Project::isolated_example("readonly");
    provision(&project, "staging", &ns.staging, &[]);
    project.write("envs/dev/web.yaml", &(project.read("envs/dev/web.yaml") + RC_IN_DEV));
    std::fs::set_permissions(project.path("envs/staging/web.yaml"), std::fs::Permissions::from_mode(0o444))
        .expect("chmod");
    let before = project.read("envs/staging/web.yaml");
    let output = run(&project, &["promote", "--from", "dev", "--to", "staging", "--no-deploy", "--skip-source-check"]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout_of(&output));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("cannot write envs/staging/web.yaml"), "{stderr}");
    assert!(stderr.contains("is read-only (mode 0444)"), "{stderr}");
    assert!(project.read("envs/staging/web.yaml") == before, "nothing written");
    let mode = std::fs::metadata(project.path("envs/staging/web.yaml")).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o444, "still read-only");
}

/// A file someone edits while the deploy runs is not restored over their edit when the deploy
/// fails: kept, and said so.
#[test]
fn a_concurrent_edit_survives_the_restore_after_a_failed_deploy() {
    let (project, _ns) = deployed_example("promote-concurrent");
    // The verify command stands for the person: it edits staging's file during the run, then fails.
    with_stage_settings(
        &project,
        "staging",
        "    verify:\n      - [sh, -c, 'echo \"# an edit made meanwhile\" >> envs/staging/web.yaml; exit 7']\n",
    );
    project.write("envs/dev/web.yaml", &(project.read("envs/dev/web.yaml") + RC_IN_DEV));
    ok(&project, &["upgrade", "dev"]);
    let out = run(&project, &["promote", "--from", "dev", "--to", "staging"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(err.contains("envs/staging/web.yaml was not restored: it was edited while helm-envs ran"), "{err}");
    let staging = project.read("envs/staging/web.yaml");
    assert!(staging.ends_with("tag: \"2.8.0\"\n# an edit made meanwhile\n"), "the edit is kept: {staging}");
}

/// A helm run killed while it worked (SIGKILL during `helm upgrade --wait`) leaves the release
/// `pending-upgrade`; the next deploy names the stuck release and the commands that recover it.
#[test]
fn a_release_stuck_pending_after_a_killed_helm_says_how_to_recover() {
    let (project, ns) = deployed_example("stuck");
    // An upgrade that cannot become ready (the image does not exist), killed while it waits.
    let mut child = project.spawn_helm(&[
        "upgrade",
        "web",
        "../../charts/acme-web",
        "--kube-context",
        "dev",
        "--namespace",
        &ns.dev,
        "--reuse-values",
        "--set",
        "image.tag=0.0.0-missing",
        "--wait",
        "--timeout",
        "120s",
    ]);
    wait_until_pending(&project, "dev", &ns.dev, "web");
    child.kill().expect("SIGKILL");
    let _ = child.wait();

    project.write("envs/dev/web.yaml", &(project.read("envs/dev/web.yaml") + RC_IN_DEV));
    let output = run(&project, &["upgrade", "dev", "--release", "web"]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout_of(&output));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("release `web` is in a pending state"), "{stderr}");
    assert!(stderr.contains("or one was killed while it worked and left it stuck"), "{stderr}");
    assert!(
        stderr.contains(&format!("helm rollback web REVISION --namespace {} --kube-context dev", ns.dev)),
        "{stderr}"
    );
    // The recovery it names works: roll back to revision 1, the last deployed one.
    let output = project
        .helm(&["rollback", "web", "1", "--kube-context", "dev", "--namespace", &ns.dev])
        .output()
        .expect("helm");
    assert!(output.status.success(), "{}", stderr_of(&output));
    ok(&project, &["upgrade", "dev", "--release", "web"]);
}

/// A helm call that stops mid-upgrade (killed here; a lost connection to the cluster ends it the
/// same way) leaves the release `pending-upgrade`: the run that left it takes it back (the
/// default failure rule), or, keeping it, names the release, its revision and the recovery,
/// instead of a generic failure.
#[test]
fn a_release_left_pending_is_named_by_the_run_that_left_it() {
    let (project, ns) = deployed_example("leftpending");
    let killed_mid_upgrade = |expected_revision: u64| {
        let envs = project.spawn_helm_envs(&["upgrade", "dev", "--release", "web"]);
        wait_until_pending(&project, "dev", &ns.dev, "web");
        let pattern = format!("upgrade web .*--namespace {}", ns.dev);
        let killed = std::process::Command::new("pkill").args(["-KILL", "-f", &pattern]).status().expect("pkill");
        assert!(killed.success(), "helm's upgrade was running");
        let output = envs.wait_with_output().expect("helm-envs ends");
        assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
        let stderr = stderr_of(&output);
        let pending = format!("dev/web is left `pending-upgrade` at revision {expected_revision}");
        (stderr.contains(&pending), stderr)
    };
    with_stage_settings(&project, "dev", "    helmArgs: [--wait, --timeout, 90s]\n");
    project.write("envs/dev/web.yaml", &(project.read("envs/dev/web.yaml") + "image:\n  tag: 0.0.0-missing\n"));

    let (named, stderr) = killed_mid_upgrade(2);
    assert!(stderr.contains("rolled web back to revision 1, its last successful deploy"), "{stderr}");
    assert!(!named, "taken back: nothing is left pending to free: {stderr}");

    with_stage_settings(&project, "dev", "    onFailure: keep\n");
    let (named, stderr) = killed_mid_upgrade(4);
    assert!(named, "{stderr}");
    assert!(
        stderr.contains(&format!("`helm rollback web 3 --namespace {} --kube-context dev`", ns.dev)),
        "the recovery names the last good revision: {stderr}"
    );
    let recovered = project
        .helm(&["rollback", "web", "3", "--kube-context", "dev", "--namespace", &ns.dev])
        .output()
        .expect("helm");
    assert!(recovered.status.success(), "the named recovery works: {}", stderr_of(&recovered));
}

/// Two runners deploying the same stage from two clones (two CI jobs): the one that comes
/// second while the first still deploys says that another run is deploying the release, changes
/// nothing, and never rolls back the other run's revision.
#[test]
fn a_second_runner_on_another_clone_says_another_run_is_deploying_and_takes_nothing_back() {
    let (first, ns) = deployed_example("tworunners");
    let (second, same) = Project::isolated_example("tworunners");
    assert_eq!(same.dev, ns.dev, "two clones of one project: the same namespaces");
    with_stage_settings(&first, "dev", "    helmArgs: [--wait, --timeout, 40s]\n");
    first.write("envs/dev/web.yaml", &(first.read("envs/dev/web.yaml") + "image:\n  tag: 0.0.0-missing\n"));
    let running = first.spawn_helm_envs(&["upgrade", "dev", "--release", "web"]);
    wait_until_pending(&first, "dev", &ns.dev, "web");

    second.write("envs/dev/web.yaml", &(second.read("envs/dev/web.yaml") + RC_IN_DEV));
    let output = run(&second, &["upgrade", "dev", "--release", "web"]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("another run is deploying dev/web: revision 2 is `pending-upgrade`"), "{stderr}");
    assert!(stderr.contains("this run changed nothing of it"), "{stderr}");
    assert!(!stderr.contains("rolled web back"), "the other run's revision is not taken back: {stderr}");
    let history = stdout_of(
        &first
            .helm(&["history", "web", "--kube-context", "dev", "--namespace", &ns.dev, "--max", "1"])
            .output()
            .expect("helm"),
    );
    assert!(history.contains("pending-upgrade"), "the first run still deploys: {history}");

    let first_output = running.wait_with_output().expect("the first run ends");
    assert!(stderr_of(&first_output).contains("rolled web back to revision 1"), "{}", stderr_of(&first_output));
}

/// A values file outside the project is read with a note, and promote does not write it unless
/// the stages file allows it.
#[test]
fn values_files_outside_the_project_are_not_written_unless_allowed() {
    let (project, ns) = Project::isolated_example("outside");
    provision(&project, "staging", &ns.staging, &[]);
    for stage in ["dev", "staging", "production"] {
        project.write(&format!("../outside/{stage}/web.yaml"), &project.read(&format!("envs/{stage}/web.yaml")));
    }
    let text = project
        .read("helm-envs.yaml")
        .replace("      - envs/{stage}/web.yaml ", "      - ../outside/{stage}/web.yaml ");
    project.write("helm-envs.yaml", &text);
    project.write("../outside/dev/web.yaml", &(project.read("../outside/dev/web.yaml") + RC_IN_DEV));

    let output = run(&project, &["render", "dev", "--release", "web"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("outside/dev/web.yaml is outside the project"), "{}", stderr_of(&output));

    let before = project.read("../outside/staging/web.yaml");
    let args = ["promote", "--from", "dev", "--to", "staging", "--no-deploy", "--skip-source-check"];
    let output = run(&project, &args);
    assert_eq!(output.status.code(), Some(3), "{}", stdout_of(&output));
    assert!(
        stderr_of(&output).contains("../outside/staging/web.yaml is outside the project; not written"),
        "{}",
        stderr_of(&output)
    );
    assert!(project.read("../outside/staging/web.yaml") == before, "nothing written");

    project.write("helm-envs.yaml", &format!("{text}\nallowValuesOutsideProject: true\n"));
    let output = run(&project, &args);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(!stderr_of(&output).contains("outside the project"), "allowed: no note");
    assert!(project.read("../outside/staging/web.yaml").ends_with("tag: \"2.8.0\"\n"));
}

/// The project lock lasts as long as the helm it started: when only helm-envs is killed, the
/// helm upgrade it started runs on, and a second run must not start meanwhile.
#[test]
fn the_lock_lasts_until_the_helm_upgrade_it_started_has_ended() {
    let (project, ns) = deployed_example("lockheld");
    // A deploy of staging that waits for Pods that never become ready (the image does not exist).
    with_stage_settings(&project, "staging", "    helmArgs: [--wait, --timeout, 20s]\n");
    project.write("envs/staging/web.yaml", &(project.read("envs/staging/web.yaml") + "image:\n  tag: 0.0.0-missing\n"));
    let mut envs = project.spawn_helm_envs(&["upgrade", "staging", "--release", "web"]);
    wait_until_pending(&project, "staging", &ns.staging, "web");
    envs.kill().expect("SIGKILL helm-envs");
    let _ = envs.wait();

    let second = run(&project, &["upgrade", "staging", "--release", "web"]);
    assert_eq!(second.status.code(), Some(1));
    assert!(stderr_of(&second).contains("another helm-envs run is changing this project"), "{}", stderr_of(&second));

    // Once helm has given up (its 20 s), the lock is free again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let next = run(&project, &["upgrade", "dev", "--release", "web"]);
        if next.status.success() {
            break;
        }
        assert!(stderr_of(&next).contains("another helm-envs run"), "{}", stderr_of(&next));
        assert!(std::time::Instant::now() < deadline, "the lock was never released");
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// SIGTERM while the promoted stage deploys: helm-envs waits for the helm it started (the lock
/// held), starts nothing more, says which files were written and what finishes the job, and
/// exits 143.
#[test]
fn an_interrupted_promotion_says_what_was_written_and_how_to_finish() {
    let (project, ns) = deployed_example("interrupted");
    // staging's deploy waits for Pods that never become ready: the promoted image does not exist.
    // (dev does not wait for its own Pods, and the promotion takes dev as it is.)
    with_stage_settings(&project, "staging", "    helmArgs: [--wait, --timeout, 30s]\n");
    with_stage_settings(&project, "dev", "    health: {timeout: 0s}\n");
    project.write("envs/dev/web.yaml", &(project.read("envs/dev/web.yaml") + "image:\n  tag: 0.0.0-missing\n"));
    ok(&project, &["upgrade", "dev", "--release", "web"]);
    let promote = ["promote", "--from", "dev", "--to", "staging", "--release", "web", "--allow-unhealthy-source"];
    let envs = project.spawn_helm_envs(&promote);
    wait_until_pending(&project, "staging", &ns.staging, "web");
    let killed = std::process::Command::new("kill").args(["-TERM", &envs.id().to_string()]).status().expect("kill");
    assert!(killed.success());
    let output = envs.wait_with_output().expect("helm-envs ends");
    assert_eq!(output.status.code(), Some(143));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("error: interrupted (SIGTERM)"), "{stderr}");
    // helm-envs waited for the helm it started (its 30 s): the release is no longer pending.
    let history = stdout_of(
        &project
            .helm(&["history", "web", "--kube-context", "staging", "--namespace", &ns.staging, "--max", "1"])
            .output()
            .expect("helm"),
    );
    assert!(!history.contains("pending"), "{history}");
    assert!(stderr.contains("waiting for the running helm call to finish"), "{stderr}");
    assert!(
        stderr.contains("envs/staging/web.yaml was written for the promotion dev -> staging and is kept"),
        "{stderr}"
    );
    assert!(stderr.contains("finish it: `helm envs upgrade staging`"), "{stderr}");
    assert!(!stderr.contains("rolled web back"), "nothing is started after the signal: {stderr}");
}

#[test]
fn git_commit_writes_a_pull_request_body_a_reviewer_reads() {
    let (project, ns) = Project::isolated_example("promote-pr");
    provision(&project, "staging", &ns.staging, &[]);
    git_repository(&project);
    project.write("envs/dev/web.yaml", &(project.read("envs/dev/web.yaml") + RC_IN_DEV));
    git(&project, &["add", "."]);
    git(&project, &["commit", "--quiet", "-m", "dev runs 2.8.0"]);
    let body = project.path("pr-body.md");
    let args = ["promote", "--from", "dev", "--to", "staging", "--no-deploy", "--git-commit", "--skip-source-check"];
    let out = ok(&project, &[&args[..], &["--pr-body", &body.display().to_string(), "-o", "json"]].concat());
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    crate::documented::assert_documented("promote -o json", &json);
    let subject = git(&project, &["log", "-1", "--format=%s"]);
    assert_eq!(json["pullRequest"]["title"], subject.trim(), "the title is the commit's subject");
    let body = std::fs::read_to_string(&body).expect("the body is written");
    assert!(body.starts_with("### helm envs promote --from dev --to staging\n"), "{body}");
    assert!(body.contains("| Patch | ") && body.contains("| Files | envs/staging/web.yaml |"), "{body}");
    assert!(body.contains("| Result | written |"), "{body}");
    assert!(body.contains("<details><summary>Patch</summary>") && body.contains("+ image.tag: \"2.8.0\""), "{body}");
    assert!(body.contains("<details><summary>What deploying staging changes</summary>"), "{body}");
    assert!(body.contains("<details><summary>Gates for staging</summary>"), "{body}");
    assert!(body.contains("skipped secrets") || body.contains("passed  secrets"), "{body}");
    assert!(!body.contains('\u{1b}'), "no terminal colours in Markdown");

    // Only with --git-commit: a body without a pull request is refused by the parser.
    let alone = run(&project, &["promote", "--from", "dev", "--to", "staging", "--pr-body", "x.md"]);
    assert_eq!(alone.status.code(), Some(1));
    assert!(stderr_of(&alone).contains("--git-commit"), "{}", stderr_of(&alone));
}
