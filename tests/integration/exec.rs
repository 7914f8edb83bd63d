//! `helm envs exec`: an existing release script gets the stage's context, its exit status
//! comes back, and with --gated it runs only after upgrade's gates passed.

use std::os::unix::fs::PermissionsExt as _;

use crate::harness::{Project, create_secret, ok, provision, stderr_of, stdout_of};

/// A release script that prints what it was given, one `NAME=value|` per variable.
const PRINT_CONTEXT: &str = r#"#!/bin/sh
echo "args: $*"
for name in HELM_ENVS_STAGE HELM_KUBECONTEXT HELM_NAMESPACE KUBECONFIG HELM_ENVS_RELEASES \
            HELM_ENVS_RELEASE HELM_ENVS_CHART HELM_ENVS_VERSION HELM_ENVS_VALUES; do
  if printenv "$name" >/dev/null; then printf '%s=%s|\n' "$name" "$(printenv "$name")"; else echo "$name unset"; fi
done
exit "${EXIT_WITH:-0}"
"#;

fn script(project: &Project, name: &str, text: &str) {
    project.write(name, text);
    let path = project.path(name);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn exec_exports_one_releases_context_and_passes_its_exit_status_through() {
    let project = Project::example();
    script(&project, "deploy.sh", PRINT_CONTEXT);
    let output = project
        .helm_envs(&["exec", "staging", "--release", "worker", "--", "./deploy.sh", "staging", "two words"])
        // What the caller had for another cluster must not reach the script.
        .env("HELM_NAMESPACE", "acme")
        .env("HELM_KUBECONTEXT", "production")
        .env("HELM_ENVS_VALUES", "/elsewhere/values.yaml")
        .env("KUBECONFIG", "kube/config:/etc/other")
        .env("EXIT_WITH", "7")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(7), "stderr: {}", stderr_of(&output));
    insta::assert_snapshot!(project.scrub(&output.stdout), @r"
    args: staging two words
    HELM_ENVS_STAGE=staging|
    HELM_KUBECONTEXT=staging|
    HELM_NAMESPACE=acme-staging|
    KUBECONFIG=[TMP]/examples/acme/kube/config:/etc/other|
    HELM_ENVS_RELEASES=worker|
    HELM_ENVS_RELEASE=worker|
    HELM_ENVS_CHART=[TMP]/charts/acme-web|
    HELM_ENVS_VERSION=|
    HELM_ENVS_VALUES=[TMP]/examples/acme/values/worker.yaml
    [TMP]/examples/acme/envs/staging/worker.yaml|
    ");
}

#[test]
fn exec_without_a_release_gives_the_stage_and_every_release_name() {
    let project = Project::example();
    script(&project, "deploy.sh", PRINT_CONTEXT);
    let output = project
        .helm_envs(&["exec", "production", "--", "./deploy.sh"])
        .env("HELM_ENVS_RELEASE", "inherited")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr_of(&output));
    let stdout = project.scrub(&output.stdout);
    assert!(
        stdout.contains("HELM_ENVS_STAGE=production|\nHELM_KUBECONTEXT=production|\nHELM_NAMESPACE=acme|\n"),
        "{stdout}"
    );
    assert!(stdout.contains("HELM_ENVS_RELEASES=web\nworker|\n"), "{stdout}");
    for unset in ["HELM_ENVS_RELEASE unset", "HELM_ENVS_CHART unset", "HELM_ENVS_VALUES unset"] {
        assert!(stdout.contains(unset), "{unset}: {stdout}");
    }
}

#[test]
fn exec_reports_a_command_that_cannot_start_with_the_shells_codes() {
    let project = Project::example();
    let output = project.helm_envs(&["exec", "dev", "--", "./missing.sh"]).output().expect("runs");
    assert_eq!(output.status.code(), Some(127));
    insta::assert_snapshot!(project.scrub(&output.stderr), @r"
    error: ./missing.sh could not be started
      note: command: ./missing.sh
      caused by: No such file or directory (os error 2)
      help: the path is relative to the current directory; check that the file exists and is executable (chmod +x)
    ");
    project.write("not-executable.sh", "#!/bin/sh\necho never\n");
    let output = project.helm_envs(&["exec", "dev", "--", "./not-executable.sh"]).output().expect("runs");
    assert_eq!(output.status.code(), Some(126), "stderr: {}", stderr_of(&output));
    let output = project.helm_envs(&["exec", "dev", "--", "sh", "-c", "kill -TERM $$"]).output().expect("runs");
    assert_eq!(output.status.code(), Some(128 + 15), "killed by SIGTERM, as a shell reports it");
    let output = project.helm_envs(&["exec", "qa", "--", "true"]).output().expect("runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_of(&output).contains("unknown stage `qa`"), "{}", stderr_of(&output));
}

#[test]
fn gated_exec_runs_only_after_the_gates_pass() {
    let (project, ns) = Project::isolated_example("exec");
    let touch = |stage: &str, extra: &[&str]| {
        let marker = format!("ran-{stage}");
        let mut args = vec!["exec", stage, "--gated"];
        args.extend(extra);
        args.extend(["--", "touch", &marker]);
        let output = project.helm_envs(&args).output().expect("runs");
        (output.status.code(), project.path(&marker).exists(), stderr_of(&output), stdout_of(&output))
    };

    provision(&project, "staging", &ns.staging, &["acme-db"]);
    let (code, ran, stderr, stdout) = touch("staging", &[]);
    assert_eq!(code, Some(3), "stderr: {stderr}");
    assert!(!ran, "the command ran although a gate refused");
    assert!(stdout.is_empty(), "the gates report goes to stderr, stdout is the command's: {stdout}");
    assert!(stderr.contains("refused secrets"), "{stderr}");
    assert!(stderr.contains("acme-db"), "the report names the missing Secret: {stderr}");
    assert!(stderr.contains("error: secrets gate of stage `staging` refused"), "{stderr}");

    create_secret(&project, "staging", &ns.staging, "acme-db", &["url", "password"], "x");
    let (code, ran, stderr, _) = touch("staging", &[]);
    assert_eq!((code, ran), (Some(0), true), "stderr: {stderr}");
    assert!(stderr.contains("passed  secrets"), "{stderr}");
    assert!(stderr.contains("passed  approval not required"), "{stderr}");

    // Production requires approval: not given on a non-terminal without --yes.
    provision(&project, "production", &ns.production, &[]);
    let (code, ran, stderr, _) = touch("production", &[]);
    assert_eq!((code, ran), (Some(3), false), "stderr: {stderr}");
    assert!(stderr.contains("requires approval: pass --yes"), "{stderr}");
    let (code, ran, stderr, _) = touch("production", &["--yes"]);
    assert_eq!((code, ran), (Some(0), true), "stderr: {stderr}");
    assert!(stderr.contains("passed  approval given with --yes"), "{stderr}");
}

/// A stage's `deploy.command` (run by upgrade instead of helm) gets the same context as exec.
#[test]
fn deploy_command_gets_the_stage_context() {
    let (project, ns) = Project::isolated_example("deploycmd");
    let stages = project.read("helm-envs.yaml").replace(
        &format!("namespace: {}\n", ns.dev),
        &format!(
            "namespace: {}\n    deploy:\n      command: [sh, -c, 'printenv HELM_KUBECONTEXT HELM_NAMESPACE HELM_ENVS_RELEASE >> deployed.txt']\n",
            ns.dev
        ),
    );
    project.write("helm-envs.yaml", &stages);
    provision(&project, "dev", &ns.dev, &[]);
    let stdout = ok(&project, &["upgrade", "dev"]);
    assert!(stdout.contains("(by the deploy command)"), "{stdout}");
    assert_eq!(project.read("deployed.txt"), format!("dev\n{0}\nweb\ndev\n{0}\nworker\n", ns.dev));
}
