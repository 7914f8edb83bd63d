//! Charts as they are published: an operator chart whose `crds/` brings the kinds of its own
//! custom resources.

use serde_json::Value;

use crate::harness::{Project, create_namespace, dev_stages_file, ok, provision, run, stderr_of, stdout_of};

/// An operator chart: a CRD in `crds/`, a custom resource of it in `templates/` (guarded by
/// `.Capabilities.APIVersions.Has`, as published charts do), and a ConfigMap. The CRD's group
/// is unique to the run: CRDs are cluster-wide and a test must meet a cluster without it.
fn operator_project() -> (Project, String, String) {
    let project = Project::empty();
    let id = std::process::id();
    let (namespace, group) = (format!("operator-{id}"), format!("w{id}.example.com"));
    project.own_namespace("dev", &namespace);
    project
        .write("helm-envs.yaml", &dev_stages_file(&namespace, "op", ""))
        .write("values.yaml", "size: 3\n")
        .write("chart/Chart.yaml", "apiVersion: v2\nname: operator\nversion: 0.1.0\n")
        .write("chart/crds/widgets.yaml", &widget_crd(&group))
        .write(
            "chart/templates/widget.yaml",
            &format!(
                "{{{{- if .Capabilities.APIVersions.Has \"{group}/v1\" }}}}\napiVersion: {group}/v1\nkind: Widget\n\
                 metadata:\n  name: main\nspec:\n  size: {{{{ .Values.size }}}}\n{{{{- end }}}}\n"
            ),
        )
        .write(
            "chart/templates/config.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: operator\ndata:\n  size: \"{{ .Values.size }}\"\n",
        );
    (project, namespace, group)
}

fn change_keys(release: &Value) -> Vec<(String, String)> {
    let mut keys: Vec<(String, String)> = release["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (c["id"].as_str().unwrap_or_default().to_string(), c["change"].as_str().unwrap_or_default().to_string())
        })
        .collect();
    keys.sort();
    keys
}

#[test]
fn the_first_install_of_a_chart_with_crds_and_custom_resources_goes_through() {
    let (project, namespace, group) = operator_project();
    let cleanup = CrdCleanup { project: &project, name: format!("widgets.{group}") };
    create_namespace(&project, "dev", &namespace);

    // The cluster does not serve Widget yet: the preview shows the CRD and the Widget as
    // additions instead of failing on helm's "ensure CRDs are installed first".
    let output = run(&project, &["diff", "dev", "-o", "json"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("kinds the cluster does not serve yet"), "{}", stderr_of(&output));
    let json: Value = serde_json::from_slice(&output.stdout).expect("json");
    let mut expected = vec![
        (format!("apiextensions.k8s.io/CustomResourceDefinition widgets.{group}"), "added".to_string()),
        (format!("{group}/Widget {namespace}/main"), "added".to_string()),
        (format!("ConfigMap {namespace}/operator"), "added".to_string()),
    ];
    expected.sort();
    assert_eq!(change_keys(&json["releases"][0]), expected);

    // apply (like upgrade and promote) passes its gates on the same first-install rendering.
    let output = run(&project, &["apply"]);
    assert!(output.status.success(), "{}\n{}", stdout_of(&output), stderr_of(&output));
    let size = widget_size(&project, &namespace, &group);
    assert_eq!(stdout_of(&size), "3", "{}", stderr_of(&size));

    // Installed: helm never upgrades or deletes the CRDs of crds/, so they are not compared.
    let output = run(&project, &["diff", "dev", "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(0), "{}\n{}", stdout_of(&output), stderr_of(&output));
    let output = run(&project, &["drift", "--stage", "dev"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout_of(&output));

    // A change of the custom resource is an ordinary change, validated against the cluster now.
    project.write("values.yaml", "size: 5\n");
    let output = run(&project, &["diff", "dev", "-o", "json"]);
    assert!(!stderr_of(&output).contains("does not serve"), "{}", stderr_of(&output));
    let json: Value = serde_json::from_slice(&output.stdout).expect("json");
    let changed = change_keys(&json["releases"][0]);
    assert!(changed.contains(&(format!("{group}/Widget {namespace}/main"), "changed".into())), "{changed:?}");
    drop(cleanup);
}

/// The CRD of an operator chart: `Widget` of `group` (unique to the run: CRDs are cluster-wide
/// and a test must meet a cluster without it).
pub fn widget_crd(group: &str) -> String {
    format!(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.{group}\n\
         spec:\n  group: {group}\n  scope: Namespaced\n  names: {{plural: widgets, singular: widget, kind: Widget}}\n  \
         versions:\n    - name: v1\n      served: true\n      storage: true\n      schema:\n        openAPIV3Schema:\n          \
         type: object\n          properties:\n            spec:\n              type: object\n              \
         properties: {{size: {{type: integer}}}}\n"
    )
}

/// `spec.size` of the Widget `main` in dev's `namespace`.
pub fn widget_size(project: &Project, namespace: &str, group: &str) -> std::process::Output {
    let kind = format!("widgets.{group}");
    let args = ["--context", "dev", "-n", namespace, "get", &kind, "main", "-o", "jsonpath={.spec.size}"];
    project.kubectl(&args).output().expect("kubectl")
}

/// CRDs are cluster-wide: removed when the test ends, whatever its outcome.
pub struct CrdCleanup<'p> {
    pub project: &'p Project,
    pub name: String,
}

impl Drop for CrdCleanup<'_> {
    fn drop(&mut self) {
        if std::env::var_os("HELM_ENVS_TESTBED").is_none() {
            return;
        }
        let _ = self.project.kubectl(&["--context", "dev", "delete", "crd", &self.name, "--wait=false"]).output();
    }
}

/// A chart from the test bed's OCI registry, at a version per stage; the example's values.
fn registry_project(tag: &str, chart: &str) -> (Project, crate::harness::Namespaces) {
    let (project, ns) = Project::isolated_example(tag);
    let text = project.read("helm-envs.yaml").replace("chart: ../../charts/acme-web", &format!("chart: {chart}"));
    project.write("helm-envs.yaml", &format!("{text}\nversions:\n  dev: {{web: 1.5.0, worker: 1.5.0}}\n  staging: {{web: 1.4.2, worker: 1.4.2}}\n  production: {{web: 1.4.2, worker: 1.4.2}}\n"));
    (project, ns)
}

fn testbed_url(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run the tests through `make test`"))
}

#[test]
fn an_oci_chart_carries_its_version_through_promotion_and_drift() {
    let registry = testbed_url("HELM_ENVS_TESTBED_REGISTRY");
    let (project, ns) = registry_project("oci", &format!("{registry}/acme-web"));
    for (stage, namespace) in [("dev", &ns.dev), ("staging", &ns.staging)] {
        provision(&project, stage, namespace, &[]);
    }
    ok(&project, &["upgrade", "dev"]);
    ok(&project, &["upgrade", "staging"]);

    let output = run(&project, &["drift", "--stage", "staging"]);
    assert_eq!(output.status.code(), Some(2));
    let text = stdout_of(&output);
    assert!(text.contains(&format!("chart {registry}/acme-web: dev 1.5.0 → staging 1.4.2")), "{text}");

    let output = run(&project, &["promote", "--from", "dev", "--to", "staging"]);
    assert!(output.status.success(), "{}\n{}", stdout_of(&output), stderr_of(&output));
    assert!(stdout_of(&output).contains("chart version: 1.4.2 -> 1.5.0"), "{}", stdout_of(&output));
    assert!(
        project.read("helm-envs.yaml").contains("staging: {web: \"1.5.0\", worker: \"1.5.0\"}"),
        "{}",
        project.read("helm-envs.yaml")
    );
    let status = ok(&project, &["status", "-o", "json"]);
    assert!(status.contains("acme-web-1.5.0"), "{status}");
    let (_, json) = drift_json(&project);
    let about_staging: Vec<&Value> =
        json["findings"].as_array().expect("findings").iter().filter(|f| f["stage"] == "staging").collect();
    assert!(about_staging.is_empty(), "staging runs what dev ran: {about_staging:#?}");
}

#[test]
fn a_chart_from_a_repository_renders_at_each_stages_version() {
    let repository = testbed_url("HELM_ENVS_TESTBED_REPO");
    let (project, _ns) = registry_project("repo", "testbed/acme-web");
    let add = project.helm(&["repo", "add", "testbed", &repository]).output().expect("helm");
    assert!(add.status.success(), "{}", stderr_of(&add));
    let dev = ok(&project, &["render", "dev", "--release", "web"]);
    assert!(dev.contains("helm.sh/chart: acme-web-1.5.0"), "{dev}");
    let staging = ok(&project, &["render", "staging", "--release", "web"]);
    assert!(staging.contains("helm.sh/chart: acme-web-1.4.2"), "{staging}");
}

fn drift_json(project: &Project) -> (Option<i32>, Value) {
    let output = run(project, &["drift", "-o", "json"]);
    (output.status.code(), serde_json::from_slice(&output.stdout).expect("drift -o json"))
}

/// A local chart whose dependency is not vendored: a clear error and what to run; after
/// `helm dependency build`, the subchart renders.
#[test]
fn an_unvendored_dependency_is_explained_and_renders_once_built() {
    let project = Project::empty();
    project
        .write(
            "helm-envs.yaml",
            "stages:\n  - name: dev\n    kubeContext: dev\n    namespace: deps\nreleases:\n  - name: app\n    chart: chart\n",
        )
        .write(
            "chart/Chart.yaml",
            "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n  - name: cache\n    version: 0.2.0\n    \
             repository: file://../cache\n",
        )
        .write("chart/templates/app.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n")
        .write("cache/Chart.yaml", "apiVersion: v2\nname: cache\nversion: 0.2.0\n")
        .write("cache/templates/cache.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cache\n");
    let before = project.files();
    let output = run(&project, &["render", "dev"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("missing in charts/ directory: cache"), "{stderr}");
    assert!(stderr.contains("help: the chart's dependencies are not vendored"), "{stderr}");
    assert_eq!(project.files(), before, "nothing fetched or written");

    let build = project.helm(&["dependency", "build", "chart"]).output().expect("helm");
    assert!(build.status.success(), "{}", stderr_of(&build));
    let rendered = stdout_of(&run(&project, &["render", "dev"]));
    assert!(rendered.contains("# Source: app/charts/cache/templates/cache.yaml"), "{rendered}");
}

/// A chart pinned by digest (`oci://...@sha256:...`, which Helm 3 and 4 both resolve) renders
/// that exact chart; a digest that does not match refuses.
#[test]
fn an_oci_chart_pinned_by_digest_renders_that_chart() {
    let registry = testbed_url("HELM_ENVS_TESTBED_REGISTRY");
    let project = Project::example();
    let pull = project
        .helm(&["pull", &format!("{registry}/acme-web"), "--version", "1.5.0", "-d", "pulled"])
        .output()
        .expect("helm");
    let digest = String::from_utf8_lossy(&pull.stderr).to_string() + &stdout_of(&pull);
    let digest = digest
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("helm pull printed no digest: {digest}"))
        .to_string();
    let text = project
        .read("helm-envs.yaml")
        .replace("chart: ../../charts/acme-web", &format!("chart: {registry}/acme-web@{digest}"));
    project.write("helm-envs.yaml", &text);
    let rendered = ok(&project, &["render", "dev", "--release", "web"]);
    assert!(rendered.contains("helm.sh/chart: acme-web-1.5.0"), "{rendered}");

    let wrong = format!("sha256:{}", "0".repeat(64));
    project.write("helm-envs.yaml", &text.replace(&digest, &wrong));
    let output = run(&project, &["render", "dev", "--release", "web"]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout_of(&output));
}
