//! helm-envs as a real Helm plugin: installed with `helm plugin install`, run through helm.

use std::path::PathBuf;

use crate::harness::{Project, plugins_with_this_build, repo, stdout_of};

fn rust_home(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(default))
}

#[test]
fn helm_plugin_install_then_helm_envs_runs_the_plugin() {
    let project = Project::example();
    // Helm 4 installs a plugin from a directory into $HELM_DATA_HOME/plugins whatever
    // HELM_PLUGINS says; Helm 3 into HELM_PLUGINS. Both agree on helm's default layout.
    let plugins = project.root().join("home/.local/share/helm/plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir");
    let with_plugins = |args: &[&str]| {
        let mut cmd = project.helm(args);
        cmd.env("HELM_PLUGINS", &plugins)
            // install-binary.sh builds from source here; reuse the workspace's build cache.
            .env("CARGO_TARGET_DIR", repo().join("target"))
            .env("CARGO_HOME", rust_home("CARGO_HOME", ".cargo"))
            .env("RUSTUP_HOME", rust_home("RUSTUP_HOME", ".rustup"));
        cmd
    };

    let install =
        with_plugins(&["plugin", "install", repo().to_str().expect("utf-8 path")]).output().expect("helm runs");
    assert!(install.status.success(), "{}", String::from_utf8_lossy(&install.stderr));
    assert!(stdout_of(&install).contains("Installed plugin: envs"));

    let list = with_plugins(&["plugin", "list"]).output().expect("helm runs");
    let listed = |l: &str| l.split_whitespace().take(2).eq(["envs", "0.1.0"]);
    assert!(stdout_of(&list).lines().any(listed), "{}", stdout_of(&list));

    let help = with_plugins(&["envs", "--help"]).output().expect("helm runs");
    assert!(help.status.success(), "{}", String::from_utf8_lossy(&help.stderr));
    let help = stdout_of(&help);
    assert!(help.contains("Usage: helm-envs [OPTIONS] <COMMAND>"), "{help}");
    assert!(help.contains("render"), "{help}");

    // helm sets HELM_BIN, HELM_NAMESPACE and HELM_KUBECONTEXT for the plugin from its own flags:
    // the stage's context and namespace must win anyway.
    let render = with_plugins(&[
        "--kube-context",
        "production",
        "--namespace",
        "acme",
        "envs",
        "-v",
        "render",
        "dev",
        "--release",
        "web",
    ])
    .output()
    .expect("helm runs");
    assert!(render.status.success(), "{}", String::from_utf8_lossy(&render.stderr));
    let stderr = String::from_utf8_lossy(&render.stderr);
    assert!(stderr.contains("running helm template web"), "{stderr}");
    assert!(stderr.contains("--namespace acme-dev --kube-context dev"), "{stderr}");
    let manifests = stdout_of(&render);
    assert!(manifests.contains("namespace: acme-dev") && !manifests.contains("namespace: acme\n"));
    let by_hand = project.helm_envs(&["render", "dev", "--release", "web"]).output().expect("runs");
    assert_eq!(manifests, stdout_of(&by_hand), "through helm or standalone, the output is the same");
}

/// `helm envs <TAB>`: helm asks plugin.complete, which completes subcommands, flags, and the
/// project's own stage and release names.
#[test]
fn helm_completes_subcommands_flags_stages_and_releases() {
    let project = Project::example();
    let plugins = plugins_with_this_build();
    let complete = |words: &[&str]| {
        let mut args = vec!["__complete", "envs"];
        args.extend(words);
        let output = project.helm(&args).env("HELM_PLUGINS", plugins.path()).output().expect("helm runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        stdout_of(&output)
    };
    assert!(complete(&["pro"]).starts_with("promote\n:4\n"), "{}", complete(&["pro"]));
    assert!(complete(&["promote", "--from", ""]).starts_with("dev\nstaging\nproduction\n:4\n"));
    assert!(complete(&["promote", "--from", "dev", "--to", "s"]).starts_with("staging\n:4\n"));
    assert!(complete(&["diff", "staging", "--release", ""]).starts_with("web\nworker\n:4\n"));
    assert!(complete(&["diff", "staging", "-o", ""]).starts_with("text\njson\nsummary\nmarkdown\n:4\n"));
    assert!(complete(&["promote", "--dr"]).starts_with("--dry-run\n:4\n"));
    // After `exec STAGE --`, the shell completes the command's own words (files).
    assert!(complete(&["exec", "dev", "--", ""]).starts_with(":0\n"), "{}", complete(&["exec", "dev", "--", ""]));
}
