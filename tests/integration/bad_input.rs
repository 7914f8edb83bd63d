//! Every bad input: a clear error (what, where, what would be right), exit 1, nothing written.
//! None of these needs helm or a cluster: `make check` runs them without the test bed.

use crate::harness::Project;

/// Run helm-envs expecting failure; assert exit 1 and that no file changed; return stderr.
pub fn fails(project: &Project, args: &[&str]) -> String {
    let before = project.files();
    let output = project.helm_envs(args).output().expect("runs");
    assert_eq!(output.status.code(), Some(1), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    assert!(output.stdout.is_empty(), "nothing on stdout on error: {}", String::from_utf8_lossy(&output.stdout));
    assert_eq!(project.files(), before, "a failing command changed files");
    project.scrub(&output.stderr)
}

#[test]
fn unknown_stage_lists_the_known_ones() {
    let project = Project::example();
    insta::assert_snapshot!(fails(&project, &["render", "prod"]), @r"
    error: unknown stage `prod`
      help: the stages file defines: dev, staging, production
    ");
}

#[test]
fn unknown_release_lists_the_known_ones() {
    let project = Project::example();
    insta::assert_snapshot!(fails(&project, &["render", "dev", "--release", "api"]), @r"
    error: unknown release `api`
      help: the stages file defines the releases: web, worker
    ");
}

#[test]
fn missing_stages_file_says_where_it_looked() {
    let project = Project::empty();
    let stderr = fails(&project, &["list"]);
    assert!(stderr.starts_with("error: no helm-envs.yaml found in [TMP]/project or any parent directory"), "{stderr}");
    assert!(stderr.contains("looked for helm-envs.yaml in: [TMP]/project, [TMP], "), "{stderr}");
    assert!(stderr.contains("help: run from the project directory, or pass --config PATH"), "{stderr}");
}

#[test]
fn explicit_config_that_does_not_exist() {
    let project = Project::empty();
    insta::assert_snapshot!(fails(&project, &["--config", "nope.yaml", "list"]), @r"
    error: [TMP]/project/nope.yaml is not valid
      --> [TMP]/project/nope.yaml: the stages file [TMP]/project/nope.yaml does not exist
    ");
}

#[test]
fn malformed_stages_file_points_at_the_line() {
    let project = Project::example();
    project.write(
        "helm-envs.yaml",
        "stages:\n  - name: dev\n    kubeContext: dev\n    namespace: [acme-dev\nreleases: []\n",
    );
    let stderr = fails(&project, &["list"]);
    assert!(stderr.contains("--> [TMP]/examples/acme/helm-envs.yaml:5:"), "{stderr}");
}

#[test]
fn malformed_values_file_points_at_its_line() {
    let project = Project::example();
    project.write("envs/staging/web.yaml", "replicaCount: 2\nresources:\n  limits: {cpu: 500m\n");
    let stderr = fails(&project, &["render", "dev"]);
    assert!(stderr.contains("--> [TMP]/examples/acme/envs/staging/web.yaml:"), "{stderr}");
    assert!(stderr.contains("note: release `web`, stage `staging` (from `envs/{stage}/web.yaml`)"), "{stderr}");
}

#[test]
fn placeholder_in_a_flow_list_gets_a_hint() {
    let project = Project::example();
    let text = project.read("helm-envs.yaml").replace(
        "    values:\n      - values/web.yaml          # shared by every stage\n      - envs/{stage}/web.yaml    # the stage's own overrides\n",
        "    values: [values/web.yaml, envs/{stage}/web.yaml]\n",
    );
    project.write("helm-envs.yaml", &text);
    let stderr = fails(&project, &["list"]);
    assert!(stderr.contains("--> [TMP]/examples/acme/helm-envs.yaml:19:"), "{stderr}");
    assert!(
        stderr.contains(
            "help: in a [flow, list] `{` starts a map: quote paths with placeholders, e.g. [\"envs/{stage}/web.yaml\"]"
        ),
        "{stderr}"
    );
}

#[test]
fn unknown_key_names_the_line_and_the_right_keys() {
    let project = Project::example();
    let text = project
        .read("helm-envs.yaml")
        .replace("    namespace: acme-staging\n", "    namespace: acme-staging\n    kubecontext: staging\n");
    project.write("helm-envs.yaml", &text);
    insta::assert_snapshot!(fails(&project, &["list"]), @r"
    error: [TMP]/examples/acme/helm-envs.yaml is not valid
      --> [TMP]/examples/acme/helm-envs.yaml:11:5: unknown field `kubecontext`, expected one of name, kubeContext, clusters, waves, namespace, approval, clusterId, helmArgs, labels, deploy, verify, health, isolation, onFailure, createNamespace, requireOwnKeys, soak, freeze, argocd
          help: see the stages-file reference in docs/stages-file.md for every key
    ");
}

#[test]
fn a_comma_in_a_values_file_name_is_refused_because_helm_would_split_it() {
    let project = Project::example();
    project.write("envs/dev/w,x.yaml", "replicaCount: 9\n");
    let text = project
        .read("helm-envs.yaml")
        .replace("      - envs/{stage}/web.yaml    # the stage's own overrides", "      - envs/{stage}/w,x.yaml");
    project.write("helm-envs.yaml", &text);
    let stderr = fails(&project, &["render", "dev"]);
    assert!(
        stderr.contains(
            "helm-envs.yaml:21:9: release `web`: values file `envs/{stage}/w,x.yaml` has a comma in its path"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("help: helm splits --values on commas"), "{stderr}");
}

#[test]
fn missing_values_file_names_the_stage_and_the_entry() {
    let project = Project::example();
    std::fs::remove_file(project.path("envs/production/worker.yaml")).expect("rm");
    insta::assert_snapshot!(fails(&project, &["render", "dev"]), @r"
    error: [TMP]/examples/acme/helm-envs.yaml is not valid
      --> [TMP]/examples/acme/helm-envs.yaml:30:9: values file envs/production/worker.yaml does not exist
          note: release `worker`, stage `production` (from `envs/{stage}/worker.yaml`)
          help: create the file (it may be empty), or fix the path in the release's `values` list
    ");
}

#[test]
fn chart_path_that_does_not_exist() {
    let project = Project::example();
    let text = project.read("helm-envs.yaml").replace(
        "  - name: worker\n    chart: ../../charts/acme-web",
        "  - name: worker\n    chart: ../../charts/acme-worker",
    );
    project.write("helm-envs.yaml", &text);
    insta::assert_snapshot!(fails(&project, &["list"]), @r"
    error: [TMP]/examples/acme/helm-envs.yaml is not valid
      --> [TMP]/examples/acme/helm-envs.yaml:27:12: release `worker`: chart [TMP]/charts/acme-worker does not exist
          help: use a chart directory or .tgz relative to helm-envs.yaml (./charts/web), a repository chart (repo/chart) or an OCI reference (oci://registry/chart)
    ");
}

#[test]
fn every_semantic_problem_is_reported_at_once() {
    let project = Project::example();
    project.write(
        "helm-envs.yaml",
        r#"stages:
  - name: dev
    kubeContext: dev
    namespace: acme-dev
  - name: qa
    namespace: acme-qa
  - name: dev
    kubeContext: dev
    namespace: acme-dev2
  - name: staging
    kubeContext: dev
    namespace: acme-dev
  - name: Prod
    kubeContext: production
    namespace: acme
releases:
  - name: web
    chart: ../../charts/acme-web
    values:
      - values/web.yaml
  - name: web
    chart: ../../charts/acme-web
versions:
  perf: {web: 1.0.0}
envSpecific:
  - replicaCount
  - replicacount
  - ingress..host
"#,
    );
    insta::assert_snapshot!(fails(&project, &["list"]), @r"
    error: [TMP]/examples/acme/helm-envs.yaml is not valid
      --> [TMP]/examples/acme/helm-envs.yaml:5:5: stage `qa` has no kubeContext
          help: name the kubeconfig context this stage deploys to (kubeContext: my-cluster), or write `kubeContext: current` to use the kubeconfig's current context on purpose, or list its `clusters`
      --> [TMP]/examples/acme/helm-envs.yaml:13:11: `Prod` is not a valid stage name
          help: use lowercase letters, digits and '-', starting and ending with a letter or digit (at most 53)
      --> [TMP]/examples/acme/helm-envs.yaml:7:11: stage `dev` is defined twice (first at line 2)
          help: rename or remove one of the two stages
      --> [TMP]/examples/acme/helm-envs.yaml:21:11: release `web` is defined twice (first at line 17)
          help: rename or remove one of the two releases
      --> [TMP]/examples/acme/helm-envs.yaml:24:9: versions: unknown stage `perf`
          help: the stages are: dev, qa, dev, staging, Prod
      --> [TMP]/examples/acme/helm-envs.yaml:28:5: envSpecific path `ingress..host` is not a value path: empty key before `.` at character 9
          help: write paths like replicaCount, ingress.hosts, resources.limits.cpu, hosts[0]
      --> [TMP]/examples/acme/helm-envs.yaml:10:11: stages `dev` and `staging` both deploy release `web` to context `dev`, namespace `acme-dev`: they would overwrite each other
          help: give each stage its own namespace or kubeContext
    ");
}

#[test]
fn env_specific_path_that_matches_nothing() {
    let project = Project::example();
    let text = project.read("helm-envs.yaml").replace("  - replicaCount\n", "  - replicacount\n");
    project.write("helm-envs.yaml", &text);
    insta::assert_snapshot!(fails(&project, &["list"]), @r"
    error: [TMP]/examples/acme/helm-envs.yaml is not valid
      --> [TMP]/examples/acme/helm-envs.yaml:35:5: envSpecific path `replicacount` matches no value in any stage or chart
          help: fix the path (it is case-sensitive), or remove it
    ");
}

#[test]
fn helm_not_installed_says_how_to_get_it() {
    let project = Project::example();
    let before = project.files();
    let output = project.helm_envs_with_path(&["render", "dev"], "/nonexistent").output().expect("runs");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(project.files(), before);
    insta::assert_snapshot!(project.scrub(&output.stderr), @r"
    error: helm was not found
      note: looked at `helm` on PATH (HELM_BIN is not set)
      help: install helm, 4 or 3 (https://helm.sh/docs/intro/install/), put it on PATH or set HELM_BIN to its path
    ");
}

#[test]
fn usage_errors_exit_1_not_2() {
    // 2 means "differences found" in helm-envs, so clap's usage errors must not use it.
    let project = Project::example();
    project.helm_envs(&["render"]).assert().code(1);
    project.helm_envs(&["frobnicate"]).assert().code(1);
    project.helm_envs(&["--help"]).assert().code(0);
}

#[test]
fn helm_args_that_would_redirect_a_stage_are_refused() {
    let project = Project::example();
    let text = project.read("helm-envs.yaml").replace(
        "    namespace: acme-staging\n",
        "    namespace: acme-staging\n    helmArgs: [--atomic, --namespace=other, --set, image.tag=x]\n",
    );
    project.write("helm-envs.yaml", &text);
    let err = fails(&project, &["list"]);
    assert!(err.contains("stage `staging`: helmArgs may not contain `--namespace`"), "{err}");
    assert!(err.contains("helmArgs may not contain `--set`"), "{err}");
}

#[test]
fn promote_rejects_bad_requests_before_touching_anything() {
    let project = Project::example();
    let same = fails(&project, &["promote", "--from", "dev", "--to", "dev"]);
    assert!(same.contains("--from and --to are both `dev`"), "{same}");
    let path = fails(&project, &["promote", "--from", "dev", "--to", "staging", "--only", "image..tag"]);
    assert!(path.contains("invalid --only `image..tag`"), "{path}");
    let typo = fails(&project, &["promote", "--from", "dev", "--to", "staging", "--only", "imgae.tag"]);
    assert!(typo.contains("no such value in stage `dev` or `staging`"), "{typo}");
    let unknown = fails(&project, &["promote", "--from", "dev", "--to", "prod"]);
    assert!(unknown.contains("unknown stage `prod`"), "{unknown}");
    let both = fails(&project, &["promote", "--from", "dev", "--to", "staging", "--git-commit", "--dry-run"]);
    assert!(both.contains("cannot be combined with --dry-run"), "{both}");
}

#[test]
fn drift_and_status_name_unknown_stages_and_releases_before_any_query() {
    let project = Project::example();
    insta::assert_snapshot!(fails(&project, &["drift", "--stage", "prod"]), @r"
    error: unknown stage `prod`
      help: the stages file defines: dev, staging, production
    ");
    insta::assert_snapshot!(fails(&project, &["status", "--release", "api"]), @r"
    error: unknown release `api`
      help: the stages file defines the releases: web, worker
    ");
}

#[test]
fn a_failure_rule_given_twice_or_misspelled_is_refused_with_its_line() {
    let project = Project::example();
    let stages = project.read("helm-envs.yaml");
    project.write(
        "helm-envs.yaml",
        &stages.replace(
            "    namespace: acme-staging\n",
            "    namespace: acme-staging\n    onFailure: keep\n    health: {rollback: true}\n",
        ),
    );
    let stderr = fails(&project, &["list"]);
    assert!(stderr.contains("helm-envs.yaml:"), "file and line: {stderr}");
    assert!(stderr.contains("stage `staging`: both onFailure and health.rollback are set"), "{stderr}");
    assert!(stderr.contains("keep only onFailure (rollback or keep)"), "{stderr}");

    project.write(
        "helm-envs.yaml",
        &stages.replace("    namespace: acme-staging\n", "    namespace: acme-staging\n    onFailure: revert\n"),
    );
    let stderr = fails(&project, &["list"]);
    assert!(stderr.contains("revert"), "{stderr}");
    assert!(stderr.contains("rollback") && stderr.contains("keep"), "the values it takes: {stderr}");
}

#[test]
fn a_stage_name_that_is_a_path_is_one_error_without_follow_ups() {
    let project = Project::example();
    let stages = project.read("helm-envs.yaml").replace("  - name: staging\n", "  - name: ../x\n");
    project.write("helm-envs.yaml", &stages);
    let stderr = fails(&project, &["list"]);
    assert!(stderr.contains("`../x` is not a valid stage name"), "{stderr}");
    assert!(!stderr.contains("envs/../x"), "no follow-up error about paths built from it: {stderr}");
}
