//! `helm envs check-secrets`: referenced Secrets against real clusters, one per stage.

use std::process::Output;

use serde_json::Value;

use crate::harness::{
    Namespaces, Project, create_namespace, create_secret, dev_stages_file, provision, stdout_of, which_in,
};

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn check(project: &Project, args: &[&str]) -> Output {
    let mut all = vec!["check-secrets"];
    all.extend(args);
    project.helm_envs(&all).output().expect("runs")
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("JSON ({e}): {}", stdout_of(output)))
}

fn names(list: &Value) -> Vec<String> {
    list.as_array().expect("list").iter().map(|f| f["name"].as_str().expect("name").to_string()).collect()
}

#[test]
fn a_secret_present_in_dev_but_not_in_staging_blocks_staging_until_created() {
    let (project, ns) = Project::isolated_example("cs");
    provision(&project, "dev", &ns.dev, &[]);
    provision(&project, "staging", &ns.staging, &["acme-db"]);

    let output = check(&project, &["dev"]);
    assert_eq!(output.status.code(), Some(0), "{}{}", stdout_of(&output), stderr_of(&output));
    assert!(stdout_of(&output).contains("dev (context dev): every referenced Secret is present"));

    let output = check(&project, &["staging"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    let text = stdout_of(&output);
    assert!(text.contains("staging (context staging): Secrets are missing"), "{text}");
    assert!(text.contains(&format!("  namespace {}\n", ns.staging)), "{text}");
    // One line per Secret; its references with --details.
    assert!(
        text.contains("    missing      Secret acme-db (keys password, url), needed by 4 references in 2 resources\n"),
        "{text}"
    );
    assert!(!text.contains("needed by apps/"), "{text}");
    let text = stdout_of(&check(&project, &["staging", "--details"]));
    assert!(
        text.contains(&format!(
            "      needed by apps/Deployment {}/web (container acme-web, env DATABASE_URL, key url) in release web, \
             at spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef\n",
            ns.staging
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("apps/Deployment {}/worker (container acme-web, env DATABASE_PASSWORD", ns.staging))
    );

    let report = json_of(&check(&project, &["staging", "-o", "json"]));
    crate::documented::assert_documented("check-secrets -o json", &report);
    assert_eq!(report["passed"], false);
    let namespace = &report["stages"][0]["namespaces"][0];
    assert_eq!(names(&namespace["missing"]), ["acme-db"]);
    assert_eq!(namespace["missing"][0]["keys"], serde_json::json!(["password", "url"]));
    assert_eq!(namespace["missing"][0]["neededBy"].as_array().map(Vec::len), Some(4), "2 keys x 2 releases");

    create_secret(&project, "staging", &ns.staging, "acme-db", &["url", "password"], "x");
    let output = check(&project, &["staging"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout_of(&output));
}

#[test]
fn a_secret_without_a_referenced_key_is_a_missing_key() {
    let (project, ns) = Project::isolated_example("ck");
    provision(&project, "staging", &ns.staging, &["acme-db"]);
    create_secret(&project, "staging", &ns.staging, "acme-db", &["url"], "x");
    let output = check(&project, &["staging", "--release", "web"]);
    assert_eq!(output.status.code(), Some(3));
    let text = stdout_of(&output);
    assert!(text.contains("    missing key  Secret acme-db has no key password, needed by"), "{text}");
    assert!(!text.contains("missing      Secret acme-db"), "{text}");
    let report = json_of(&check(&project, &["staging", "--release", "web", "-o", "json"]));
    let namespace = &report["stages"][0]["namespaces"][0];
    assert_eq!(names(&namespace["missingKeys"]), ["acme-db"]);
    assert_eq!(namespace["missingKeys"][0]["keys"], serde_json::json!(["password"]));
    assert_eq!(namespace["missing"], serde_json::json!([]));
}

#[test]
fn chart_created_secrets_pass_and_optional_ones_are_reported_as_optional() {
    let (project, ns) = Project::isolated_example("co");
    provision(&project, "dev", &ns.dev, &[]);
    let output = check(&project, &["dev", "-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout_of(&output));
    let namespace = &json_of(&output)["stages"][0]["namespaces"][0];
    assert_eq!(names(&namespace["optionalAbsent"]), ["acme-feature-keys"]);
    let present: Vec<(String, String)> = namespace["present"]
        .as_array()
        .expect("list")
        .iter()
        .map(|p| (p["name"].as_str().expect("name").into(), p["providedBy"].as_str().expect("by").into()))
        .collect();
    assert!(present.contains(&("web-session".into(), format!("release web: Secret {}/web-session", ns.dev))));
    assert!(present.contains(&("acme-db".into(), "cluster".into())));

    let text = stdout_of(&check(&project, &["dev"]));
    assert!(text.contains("    optional     absent, referenced with optional: true: acme-feature-keys\n"), "{text}");
    assert!(!text.contains("Secret web-session"), "{text}");
}

#[test]
fn the_cluster_is_asked_once_per_context_and_namespace() {
    let (project, ns) = Project::isolated_example("cq");
    let Namespaces { dev, staging, production } = &ns;
    provision(&project, "dev", dev, &[]);
    provision(&project, "staging", staging, &[]);
    provision(&project, "production", production, &[]);

    let output = check(&project, &["--all", "--verbose", "-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let queries: Vec<String> =
        stderr_of(&output).lines().filter(|l| l.contains("running kubectl")).map(str::to_string).collect();
    assert_eq!(queries.len(), 3, "{queries:#?}");
    for (context, namespace) in [("dev", dev), ("staging", staging), ("production", production)] {
        let needle = format!("--namespace {namespace} --context {context} ");
        assert_eq!(queries.iter().filter(|q| q.contains(&needle)).count(), 1, "{queries:#?}");
    }
    let report = json_of(&output);
    let references: usize = report["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .flat_map(|s| s["namespaces"].as_array().expect("namespaces").iter())
        .map(|n| n["present"].as_array().map_or(0, Vec::len) + n["optionalAbsent"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(references > 3 * 5, "many more references than queries: {references}");
}

#[test]
fn secret_values_in_the_cluster_never_reach_the_output() {
    const PLANTED: &str = "planted-value-that-must-never-print-7731";
    let (project, ns) = Project::isolated_example("cv");
    provision(&project, "dev", &ns.dev, &["acme-db"]);
    create_secret(&project, "dev", &ns.dev, "acme-db", &["url"], PLANTED);
    for args in
        [vec!["dev"], vec!["dev", "-o", "json"], vec!["dev", "--verbose"], vec!["--all", "--verbose", "-o", "json"]]
    {
        let output = check(&project, &args);
        let everything = format!("{}{}", stdout_of(&output), stderr_of(&output));
        assert!(!everything.contains(PLANTED), "{args:?} printed a Secret value:\n{everything}");
        assert!(everything.contains("acme-db"), "{args:?}: {everything}");
    }
}

#[test]
fn a_namespace_that_does_not_exist_is_said_so() {
    let (project, ns) = Project::isolated_example("cn");
    let before = project.files();
    let output = check(&project, &["staging", "--release", "web"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    let text = stdout_of(&output);
    assert!(text.contains(&format!("  namespace {}\n    the namespace does not exist in the cluster", ns.staging)));
    assert!(text.contains("missing      Secret acme-db"), "{text}");
    assert!(text.contains("present      web-session"), "the chart's own Secret still counts: {text}");
    assert_eq!(project.files(), before);
}

#[test]
fn kubectl_missing_is_explained() {
    let project = Project::example();
    let bin = project.path("../only-helm");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let helm = which_in("helm", &crate::harness::testbed().path);
    std::os::unix::fs::symlink(helm, bin.join("helm")).expect("symlink");
    let output = project.helm_envs_with_path(&["check-secrets", "dev"], bin.as_os_str()).output().expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("error: kubectl was not found"), "{stderr}");
    assert!(stderr.contains("help: install kubectl (https://kubernetes.io/docs/tasks/tools/"), "{stderr}");
}

#[test]
fn a_context_missing_from_the_kubeconfig_is_named() {
    let project = Project::example();
    let text = project.read("helm-envs.yaml").replace("    kubeContext: dev\n", "    kubeContext: dev-gone\n");
    project.write("helm-envs.yaml", &text);
    let output = check(&project, &["dev"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("kubectl could not list Secrets in namespace `acme-dev` of stage `dev` (context `dev-gone`)")
    );
    assert!(stderr.contains("context `dev-gone` of stage `dev` is not in your kubeconfig"), "{stderr}");
    assert!(output.stdout.is_empty(), "no report of missing Secrets");
}

/// A user the cluster knows (its certificate is signed by the testbed CA) with no permissions.
fn add_powerless_user(project: &Project) {
    let pki = project.testbed_dir().join("pki");
    let work = project.path("../nobody");
    std::fs::create_dir_all(&work).expect("mkdir");
    let openssl = |args: &[&str]| {
        let output = std::process::Command::new("openssl").args(args).current_dir(&work).output().expect("openssl");
        assert!(output.status.success(), "openssl {args:?}: {}", stderr_of(&output));
    };
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=nobody",
        "-keyout",
        "nobody.key",
        "-out",
        "nobody.csr",
    ]);
    let (ca, ca_key) = (pki.join("ca.crt"), pki.join("ca.key"));
    openssl(&[
        "x509",
        "-req",
        "-in",
        "nobody.csr",
        "-CA",
        ca.to_str().expect("utf-8"),
        "-CAkey",
        ca_key.to_str().expect("utf-8"),
        "-CAserial",
        "ca.srl",
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        "nobody.crt",
    ]);
    project.add_kubeconfig(&format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster:\n    server: https://127.0.0.1:9\n    \
         certificate-authority: {ca}\nusers:\n- name: nobody\n  user:\n    client-certificate: {dir}/nobody.crt\n    \
         client-key: {dir}/nobody.key\ncontexts:\n- name: dev-nobody\n  context: {{cluster: dev, user: nobody}}\n\
         - name: gone\n  context: {{cluster: gone, user: nobody}}\n",
        ca = ca.display(),
        dir = work.display(),
    ));
}

#[test]
fn permission_denied_is_reported_as_such_not_as_missing_secrets() {
    let project = Project::example();
    add_powerless_user(&project);
    let text = project.read("helm-envs.yaml").replace("    kubeContext: dev\n", "    kubeContext: dev-nobody\n");
    project.write("helm-envs.yaml", &text);
    let output = check(&project, &["dev"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains(
            "error: permission denied: kubectl could not list Secrets in namespace `acme-dev` of stage `dev` (context `dev-nobody`)"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("needs a Role granting `list` on `secrets`"), "{stderr}");
    assert!(!stdout_of(&output).contains("missing"));
}

#[test]
fn an_unreachable_cluster_is_named_with_its_context() {
    let project = Project::example();
    add_powerless_user(&project);
    let text = project.read("helm-envs.yaml").replace("    kubeContext: staging\n", "    kubeContext: gone\n");
    project.write("helm-envs.yaml", &text);
    let output = check(&project, &["staging"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("of stage `staging` (context `gone`)"), "{stderr}");
    assert!(stderr.contains("the cluster of context `gone` does not answer"), "{stderr}");
}

/// A project with tests/charts/install-secrets as release `app` in a fresh namespace of dev
/// (the stages file is the test's to write).
fn install_secrets_project(tag: &str) -> (Project, String) {
    let project = Project::empty();
    let namespace = format!("{tag}-{}", std::process::id());
    crate::harness::copy_dir(&crate::harness::repo().join("tests/charts/install-secrets"), &project.path("chart"));
    project.write("values.yaml", "{}\n");
    project.own_namespace("dev", &namespace);
    create_namespace(&project, "dev", &namespace);
    (project, namespace)
}

/// Secrets a chart creates while it installs, recognised from the rendered release itself,
/// with the evidence: a hook Job whose Role may create Secrets and whose arguments name the
/// Secret; a Job whose Role names it in `resourceNames`; a hook Secret; a Secret guarded by
/// `lookup`. A Secret nothing names while such a Job exists is `unknown`, not missing.
#[test]
fn secrets_the_release_creates_while_installing_are_recognised_with_their_evidence() {
    let (project, namespace) = install_secrets_project("installs");
    project.write("helm-envs.yaml", &dev_stages_file(&namespace, "app", ""));

    let output = check(&project, &["dev", "-o", "json"]);
    assert_eq!(output.status.code(), Some(0), "nothing is known to be missing: {}", stdout_of(&output));
    let report = json_of(&output);
    let space = &report["stages"][0]["namespaces"][0];
    let by = |name: &str| -> String {
        space["present"]
            .as_array()
            .expect("present")
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["providedBy"].as_str().unwrap_or_default().to_string())
            .unwrap_or_else(|| panic!("{name} is not present: {space:#}"))
    };
    let cert = by("app-webhook-cert");
    assert!(cert.starts_with(&format!("hook batch/Job {namespace}/app-certgen (pre-install,pre-upgrade)")), "{cert}");
    assert!(cert.contains(&format!("Role {namespace}/app-certgen lets it write Secrets")), "{cert}");
    assert!(cert.contains("its command, arguments or env name it"), "{cert}");
    let password = by("app-initial-password");
    assert!(password.contains("names it in resourceNames"), "{password}");
    assert!(by("app-hook-token").contains("(created by its pre-install hook)"));
    assert!(by("app-session").starts_with("release app: Secret"), "lookup found nothing: the chart creates it");

    let unknown = space["unknown"].as_array().expect("unknown");
    assert_eq!(unknown.len(), 1, "{space:#}");
    assert_eq!(unknown[0]["name"], "app-license");
    assert!(space["missing"].as_array().is_some_and(Vec::is_empty), "{space:#}");

    let text = stdout_of(&check(&project, &["dev"]));
    assert!(text.contains("    unknown      Secret app-license (keys license), needed by 1 reference in 1 resource: not in the cluster; may be created while installing by hook batch/Job"), "{text}");
}

/// A Secret provided out of band is declared with a reason, which the report shows; a declared
/// name that nothing references is an error.
#[test]
fn secrets_provided_out_of_band_are_declared_with_a_reason() {
    let (project, namespace) = install_secrets_project("outofband");
    let stages =
        |declared: &str| dev_stages_file(&namespace, "app", &format!("    providedSecrets:\n      - {declared}\n"));
    project.write("helm-envs.yaml", &stages("{name: app-license, reason: the license operator writes it}"));

    let output = check(&project, &["dev"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout_of(&output));
    let text = stdout_of(&output);
    assert!(
        text.contains(
            "    declared     Secret app-license: provided out of band (helm-envs.yaml, release app): the license \
             operator writes it\n"
        ),
        "{text}"
    );
    assert!(!text.contains("unknown"), "{text}");

    project.write("helm-envs.yaml", &stages("{name: app-licence, reason: typo}"));
    let output = check(&project, &["dev"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains(
            "release `app` declares Secret `app-licence` in providedSecrets, but nothing in stage `dev` references it"
        ),
        "{stderr}"
    );

    project.write("helm-envs.yaml", &stages("{name: app-license}"));
    let output = check(&project, &["dev"]);
    assert_eq!(output.status.code(), Some(1), "a reason is required");
    assert!(stderr_of(&output).contains("reason"), "{}", stderr_of(&output));
}
