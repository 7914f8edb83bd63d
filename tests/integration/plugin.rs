//! helm-envs as a real Helm plugin: installed with `helm plugin install`, run through helm.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::{Project, helm_major, plugins_with_this_build, repo, stderr_of, stdout_of};

/// The release profile as the tests build it: what is tested is that the plugin installs and
/// runs, not how fast the binary is, so the build skips the link-time and full optimisations
/// the published binaries get (about half the build on two cores).
const QUICK_RELEASE: [(&str, &str); 3] = [
    ("CARGO_PROFILE_RELEASE_LTO", "false"),
    ("CARGO_PROFILE_RELEASE_OPT_LEVEL", "1"),
    ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16"),
];

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
            .env("RUSTUP_HOME", rust_home("RUSTUP_HOME", ".rustup"))
            .envs(QUICK_RELEASE);
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

/// The release path end to end: `make dist`'s script builds the archives and the signed plugin
/// packages; a local HTTPS server (the test bed's certificate) serves them; helm installs the
/// package for its major (Helm 4 verifying the signature), and the install hook downloads the
/// binary for this platform and checks it against the package's checksums. Then offline from
/// files, from the git repository with `helm plugin update`, and a swapped archive refused,
/// naming the file.
#[test]
fn a_release_package_installs_over_https_with_its_signature_and_checksum_checked() {
    let project = Project::empty();
    let dist = project.root().join("dist");
    let (server, url) = https_server(&dist, &project.testbed_dir());
    let built = Command::new("bash")
        .arg(repo().join("scripts/dist.sh"))
        .current_dir(repo())
        .env("DIST_DIR", &dist)
        .env("RELEASE_URL", &url)
        .envs(QUICK_RELEASE)
        .output()
        .expect("dist.sh runs");
    let log = String::from_utf8_lossy(&built.stderr).into_owned();
    assert!(built.status.success(), "{log}");
    assert!(log.contains("dist: built: linux-amd64"), "{log}");
    assert!(
        log.contains("dist: not built: darwin-arm64 (aarch64-apple-darwin: its standard library is not installed"),
        "{log}"
    );
    let version = env!("CARGO_PKG_VERSION");
    for file in [
        "helm-envs-linux-amd64.tar.gz",
        "helm-envs-linux-amd64.tar.gz.sha256",
        "checksums.txt",
        &format!("envs-{version}.tgz"),
        &format!("envs-{version}.tgz.prov"),
        &format!("envs-{version}-helm3.tgz"),
        "RELEASE_NOTES.md",
    ] {
        assert!(dist.join(file).is_file(), "dist/{file} is missing: {log}");
    }
    let keys = signing_key();
    // A machine that runs helm but has no Rust: cargo is not on the PATH of the install.
    let without_cargo = std::env::join_paths(
        std::env::split_paths(&crate::harness::testbed().path).filter(|dir| !dir.join("cargo").exists()),
    )
    .expect("a PATH");
    let install = |package: &str| {
        let mut cmd = project.helm(&["plugin", "install", &format!("{url}/{package}")]);
        if helm_major() == 4 {
            cmd.args(["--keyring", &keys.pubring]);
        }
        with_ca(&mut cmd, &project.testbed_dir());
        cmd.env("PATH", &without_cargo).output().expect("helm runs")
    };
    let package = match helm_major() {
        4 => format!("envs-{version}.tgz"),
        _ => format!("envs-{version}-helm3.tgz"),
    };

    let installed = install(&package);
    let said = format!("{}{}", stdout_of(&installed), stderr_of(&installed));
    assert!(installed.status.success(), "{said}");
    assert!(
        said.contains(&format!("installed the prebuilt binary {version} for linux-amd64 (SHA-256 checked)")),
        "{said}"
    );
    let run = project.helm(&["envs", "--version"]).output().expect("helm runs");
    assert_eq!(stdout_of(&run).trim(), format!("helm-envs {version}"), "{}", stderr_of(&run));
    if helm_major() == 4 {
        let verify = project
            .helm(&["plugin", "verify", dist.join(&package).to_str().expect("utf-8"), "--keyring", &keys.pubring])
            .output()
            .expect("helm runs");
        assert!(verify.status.success(), "{}", stderr_of(&verify));
        // Verification is on by default: a keyring without the signer's key refuses the package.
        let uninstall = project.helm(&["plugin", "uninstall", "envs"]).output().expect("helm runs");
        assert!(uninstall.status.success(), "{}", stderr_of(&uninstall));
        let strangers = project.root().join("empty.gpg");
        std::fs::write(&strangers, b"").expect("write");
        let mut cmd = project.helm(&["plugin", "install", &format!("{url}/{package}")]);
        cmd.args(["--keyring", strangers.to_str().expect("utf-8")]);
        with_ca(&mut cmd, &project.testbed_dir());
        let refused = cmd.output().expect("helm runs");
        assert!(!refused.status.success(), "an unverifiable package is refused: {}", stdout_of(&refused));
    } else {
        let uninstall = project.helm(&["plugin", "uninstall", "envs"]).output().expect("helm runs");
        assert!(uninstall.status.success(), "{}", stderr_of(&uninstall));
    }

    // Offline: the package and the archive downloaded into one directory (Helm 3 installs
    // plugins only from directories, so its package is unpacked first).
    let offline = match helm_major() {
        4 => dist.join(&package),
        _ => {
            let unpacked = project.root().join("envs");
            std::fs::create_dir_all(&unpacked).expect("mkdir");
            let tar = Command::new("tar").arg("-xzf").arg(dist.join(&package)).arg("-C").arg(&unpacked).output();
            assert!(tar.expect("tar runs").status.success());
            unpacked
        }
    };
    let mut cmd = project.helm(&["plugin", "install", offline.to_str().expect("utf-8")]);
    if helm_major() == 4 {
        cmd.args(["--keyring", &keys.pubring]);
    }
    let installed =
        cmd.env("HELM_ENVS_DOWNLOAD_URL", format!("file://{}", dist.display())).output().expect("helm runs");
    let said = format!("{}{}", stdout_of(&installed), stderr_of(&installed));
    assert!(installed.status.success(), "{said}");
    assert!(said.contains(&format!("downloading file://{}/helm-envs-linux-amd64.tar.gz", dist.display())), "{said}");
    assert!(said.contains("(SHA-256 checked)"), "{said}");
    let uninstall = project.helm(&["plugin", "uninstall", "envs"]).output().expect("helm runs");
    assert!(uninstall.status.success(), "{}", stderr_of(&uninstall));

    // From the git repository (served over HTTPS with git's plain HTTP protocol), then
    // `helm plugin update`: a checkout carries no checksums, so the hook checks the `.sha256`
    // served beside the archive. Helm 4 installs an unsigned source only when told.
    let bare = dist.join("helm-envs.git");
    for args in [
        vec!["clone", "--quiet", "--bare", repo().to_str().expect("utf-8"), bare.to_str().expect("utf-8")],
        vec!["-C", bare.to_str().expect("utf-8"), "update-server-info"],
    ] {
        let git = Command::new("git").args(&args).output().expect("git runs");
        assert!(git.status.success(), "git {args:?}: {}", stderr_of(&git));
    }
    let from_git = |verb: &[&str]| {
        let mut cmd = project.helm(verb);
        with_ca(&mut cmd, &project.testbed_dir());
        let bundle = project.testbed_dir().join("pki/ca-bundle.crt");
        let output = cmd.env("GIT_SSL_CAINFO", bundle).env("HELM_ENVS_DOWNLOAD_URL", &url).output().expect("helm runs");
        let said = format!("{}{}", stdout_of(&output), stderr_of(&output));
        assert!(output.status.success(), "helm {verb:?}: {said}");
        assert!(said.contains("(SHA-256 checked)"), "{said}");
        said
    };
    let source = format!("{url}/helm-envs.git");
    let mut install_args = vec!["plugin", "install", source.as_str()];
    if helm_major() == 4 {
        install_args.push("--verify=false");
    }
    assert!(from_git(&install_args).contains("Installed plugin: envs"));
    assert!(from_git(&["plugin", "update", "envs"]).contains("Updated plugin: envs"));
    let run = project.helm(&["envs", "--version"]).output().expect("helm runs");
    assert_eq!(stdout_of(&run).trim(), format!("helm-envs {version}"), "{}", stderr_of(&run));
    let uninstall = project.helm(&["plugin", "uninstall", "envs"]).output().expect("helm runs");
    assert!(uninstall.status.success(), "{}", stderr_of(&uninstall));

    // Whoever serves the archive swapped it: the package's checksum refuses it.
    std::fs::write(dist.join("helm-envs-linux-amd64.tar.gz"), b"not the release").expect("write");
    let swapped = install(&package);
    let said = format!("{}{}", stdout_of(&swapped), stderr_of(&swapped));
    assert!(!swapped.status.success(), "{said}");
    assert!(said.contains("checksum mismatch for helm-envs-linux-amd64.tar.gz"), "{said}");
    // helm keeps a plugin whose install hook failed listed; no binary came with it.
    let run = project.helm(&["envs", "--version"]).output().expect("helm runs");
    assert!(!run.status.success(), "no helm-envs binary was installed: {}", stdout_of(&run));
    drop(server);
}

/// The test bed's signing key (made once, cached).
struct SigningKey {
    pubring: String,
}

fn signing_key() -> SigningKey {
    let out = Command::new("bash")
        .args([repo().join("scripts/testbed.sh").to_str().expect("utf-8"), "signing-key"])
        .output()
        .expect("testbed.sh runs");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let exports = stdout_of(&out);
    let value = |name: &str| {
        exports
            .lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=\"")).and_then(|v| v.strip_suffix('"')))
            .unwrap_or_else(|| panic!("{name} in {exports}"))
            .to_string()
    };
    SigningKey { pubring: value("SIGNING_PUBRING") }
}

/// helm (Go) and the install hook's curl trust the test bed's CA.
fn with_ca(cmd: &mut assert_cmd::Command, testbed: &std::path::Path) {
    let bundle = testbed.join("pki/ca-bundle.crt");
    cmd.env("SSL_CERT_FILE", &bundle).env("CURL_CA_BUNDLE", &bundle);
}

/// An HTTPS server of `root` on 127.0.0.1 with the test bed's certificate, stopped when the
/// guard drops; its base URL. It serves `.tgz` as `application/gzip`, as release hosts do:
/// Helm 3 installs a plugin from a URL only when the Content-Type says it is an archive.
fn https_server(root: &std::path::Path, testbed: &std::path::Path) -> (ServerGuard, String) {
    std::fs::create_dir_all(root).expect("mkdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
    let child = Command::new("python3")
        .arg(testbed.join("charts/serve.py"))
        .args([root.to_str().expect("utf-8"), &port.to_string()])
        .arg(testbed.join("pki/charts.crt"))
        .arg(testbed.join("pki/charts.key"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 runs");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (ServerGuard(child), format!("https://127.0.0.1:{port}"))
}

struct ServerGuard(std::process::Child);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The version lives in Cargo.toml; plugin.yaml, which Helm reads, must say the same.
#[test]
fn the_plugin_manifest_carries_the_crates_version() {
    let manifest = std::fs::read_to_string(repo().join("plugin.yaml")).expect("plugin.yaml");
    let version = manifest
        .lines()
        .find_map(|line| line.strip_prefix("version:"))
        .map(|v| v.trim().trim_matches('"'))
        .expect("a version line");
    assert_eq!(version, env!("CARGO_PKG_VERSION"), "set plugin.yaml's version to Cargo.toml's");
}
