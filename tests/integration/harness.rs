//! A small builder harness: a copy of the example project in a temp dir, and `helm-envs`
//! run in it with a scrubbed environment (only PATH, HOME, KUBECONFIG and private helm dirs).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use std::process::Output;

use assert_cmd::Command;
use tempfile::TempDir;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The clusters `make test` started (scripts/testbed.sh up dev staging production), or, for the
/// tests `make check` runs without them, none: a kubeconfig that does not exist, so nothing can
/// reach a cluster by accident.
pub struct Testbed {
    pub kubeconfig: PathBuf,
    /// PATH with helm and kubectl on it (the caller's PATH without a test bed).
    pub path: OsString,
}

pub fn testbed() -> &'static Testbed {
    static TESTBED: OnceLock<Testbed> = OnceLock::new();
    TESTBED.get_or_init(|| {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let Some(dir) = std::env::var_os("HELM_ENVS_TESTBED") else {
            return Testbed { kubeconfig: repo().join("target/no-test-bed/kubeconfig"), path };
        };
        let kubeconfig = PathBuf::from(dir).join("kubeconfig");
        assert!(kubeconfig.is_file(), "{} is missing: are the test clusters up?", kubeconfig.display());
        Testbed { kubeconfig, path }
    })
}

/// The major version of the helm on the test bed's PATH (`make test` runs the suite with 4, then 3).
pub fn helm_major() -> u32 {
    static MAJOR: OnceLock<u32> = OnceLock::new();
    *MAJOR.get_or_init(|| {
        let output = std::process::Command::new(which_in("helm", &testbed().path))
            .args(["version", "--template", "{{.Version}}"])
            .output()
            .expect("helm runs");
        let version = String::from_utf8_lossy(&output.stdout);
        version.trim_start_matches('v').split('.').next().and_then(|m| m.parse().ok()).expect("helm version")
    })
}

/// A project directory the test owns.
pub struct Project {
    root: TempDir,
    /// Where commands run (the directory holding helm-envs.yaml).
    pub dir: PathBuf,
    /// A kubeconfig merged after the testbed's (extra users and contexts), when a test adds one.
    extra_kubeconfig: RefCell<Option<PathBuf>>,
    /// Namespaces (context, name) the test owns on the shared clusters: deleted when it ends,
    /// so the Pods of earlier tests do not pile up on the nodes.
    owned_namespaces: RefCell<Vec<(String, String)>>,
}

impl Drop for Project {
    fn drop(&mut self) {
        if std::env::var_os("HELM_ENVS_TESTBED").is_none() {
            return; // no clusters: the test failed before it could create anything
        }
        for (context, namespace) in self.owned_namespaces.take() {
            let _ = self
                .kubectl(&[
                    "--context",
                    &context,
                    "delete",
                    "namespace",
                    &namespace,
                    "--wait=false",
                    "--ignore-not-found",
                ])
                .output();
        }
    }
}

impl Project {
    /// A copy of examples/acme with the charts beside it, laid out as in the repository.
    pub fn example() -> Project {
        Project::copy_of("acme")
    }

    /// A copy of examples/acme-gitops (the stages Argo CD deploys) with the charts beside it.
    pub fn gitops_example() -> Project {
        Project::copy_of("acme-gitops")
    }

    fn copy_of(example: &str) -> Project {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("examples").join(example);
        copy_dir(&repo().join("examples").join(example), &dir);
        copy_dir(&repo().join("charts"), &root.path().join("charts"));
        Project { root, dir, extra_kubeconfig: RefCell::new(None), owned_namespaces: RefCell::default() }
    }

    /// The example with every stage in namespaces of its own (`<tag>-<pid>-dev`, ...), so a test
    /// can install releases on the shared test clusters without meeting another test's.
    pub fn isolated_example(tag: &str) -> (Project, Namespaces) {
        let project = Project::example();
        let namespaces = project.isolate(tag);
        (project, namespaces)
    }

    /// The example's stages moved to namespaces of this test's (`<tag>-<pid>-dev`, ...), owned by
    /// it (deleted when it ends).
    pub fn isolate(&self, tag: &str) -> Namespaces {
        let prefix = format!("{tag}-{}", std::process::id());
        let namespaces = Namespaces {
            dev: format!("{prefix}-dev"),
            staging: format!("{prefix}-staging"),
            production: format!("{prefix}-prod"),
        };
        let text = self
            .read("helm-envs.yaml")
            .replace("namespace: acme-dev\n", &format!("namespace: {}\n", namespaces.dev))
            .replace("namespace: acme-staging\n", &format!("namespace: {}\n", namespaces.staging))
            .replace("namespace: acme\n", &format!("namespace: {}\n", namespaces.production));
        self.write("helm-envs.yaml", &text);
        for (context, namespace) in
            [("dev", &namespaces.dev), ("staging", &namespaces.staging), ("production", &namespaces.production)]
        {
            self.own_namespace(context, namespace);
        }
        namespaces
    }

    /// `helm upgrade --install` of one example release into a stage, by hand, as a user would.
    pub fn install(&self, stage: &str, namespace: &str, release: &str) {
        let args = ["upgrade", "--install", release, "--kube-context", stage, "--namespace", namespace];
        self.helm_example(&[&args[..], &["--create-namespace"]].concat(), stage, release);
    }

    /// Real helm on the example chart with a stage's values files, as a user would type it;
    /// returns what helm printed (and fails the test when helm fails).
    pub fn helm_example(&self, args: &[&str], stage: &str, release: &str) -> String {
        let (shared, own) = (format!("values/{release}.yaml"), format!("envs/{stage}/{release}.yaml"));
        let mut values = vec!["../../charts/acme-web".to_string(), "-f".into(), shared, "-f".into(), own];
        // The release's encrypted values, decrypted as a user would (`helm secrets` writes them
        // to a file too), after the plain ones.
        let encrypted = format!("envs/{stage}/{release}.secrets.yaml");
        if self.path(&encrypted).is_file() && self.read("helm-envs.yaml").contains(ENCRYPTED_VALUES) {
            let decrypted = self.sops(&["--decrypt", &encrypted]).output().expect("sops runs");
            assert!(decrypted.status.success(), "sops --decrypt {encrypted}: {}", stderr_of(&decrypted));
            let file = self.root.path().join(format!("decrypted-{stage}-{release}.yaml"));
            std::fs::write(&file, &decrypted.stdout).expect("write");
            values.extend(["-f".into(), file.display().to_string()]);
        }
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let output = self.helm(&[args, &values[..]].concat()).output().expect("helm runs");
        assert!(output.status.success(), "helm {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        stdout_of(&output)
    }

    /// An empty project directory.
    pub fn empty() -> Project {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("project");
        std::fs::create_dir_all(&dir).expect("mkdir");
        Project { root, dir, extra_kubeconfig: RefCell::new(None), owned_namespaces: RefCell::default() }
    }

    /// A namespace of the shared clusters this test creates (directly or through a deploy):
    /// deleted when the test ends.
    pub fn own_namespace(&self, context: &str, namespace: &str) {
        self.owned_namespaces.borrow_mut().push((context.to_string(), namespace.to_string()));
    }

    /// Merge `contents` (a kubeconfig) after the testbed's for every command this project runs.
    pub fn add_kubeconfig(&self, contents: &str) {
        let path = self.root.path().join("extra-kubeconfig");
        std::fs::write(&path, contents).expect("write kubeconfig");
        self.extra_kubeconfig.replace(Some(path));
    }

    /// The testbed's directory (its PKI signs extra test users).
    pub fn testbed_dir(&self) -> PathBuf {
        testbed().kubeconfig.parent().expect("testbed dir").to_path_buf()
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }

    pub fn write(&self, relative: &str, contents: &str) -> &Project {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, contents).expect("write");
        self
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative)).expect("read")
    }

    /// `helm-envs ARGS` in the project directory, with the scrubbed environment.
    pub fn helm_envs(&self, args: &[&str]) -> Command {
        self.helm_envs_with_path(args, &testbed().path)
    }

    /// The same, but with PATH set to `path` (e.g. one without helm).
    pub fn helm_envs_with_path(&self, args: &[&str], path: impl Into<OsString>) -> Command {
        let mut cmd = Command::cargo_bin("helm-envs").expect("binary");
        cmd.args(args).current_dir(&self.dir);
        self.scrubbed_env(&mut cmd, &path.into());
        cmd
    }

    /// Real helm, run the way a user would run it by hand in the project directory.
    pub fn helm(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(which_in("helm", &testbed().path));
        cmd.args(args).current_dir(&self.dir);
        self.scrubbed_env(&mut cmd, &testbed().path);
        cmd
    }

    /// `sh -c LINE` in the project directory with the scrubbed environment: a command line as
    /// a user types it (the README's examples).
    pub fn shell(&self, line: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", line]).current_dir(&self.dir);
        self.scrubbed_env(&mut cmd, &testbed().path);
        cmd
    }

    /// The temp root holding the project (for files a test puts beside it).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    pub fn kubectl(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(which_in("kubectl", &testbed().path));
        cmd.args(args).current_dir(&self.dir);
        self.scrubbed_env(&mut cmd, &testbed().path);
        cmd
    }

    fn scrubbed_env(&self, cmd: &mut Command, path: &OsString) {
        cmd.env_clear().envs(self.scrubbed_vars(path));
    }

    /// The only variables a command of the tests sees.
    fn scrubbed_vars(&self, path: &OsString) -> Vec<(&'static str, OsString)> {
        let home = self.root.path().join("home");
        let mut vars = vec![
            ("PATH", path.clone()),
            ("HOME", home.clone().into()),
            ("KUBECONFIG", self.kubeconfig()),
            ("HELM_CACHE_HOME", home.join(".cache/helm").into()),
            ("HELM_CONFIG_HOME", home.join(".config/helm").into()),
            ("HELM_DATA_HOME", home.join(".local/share/helm").into()),
            ("NO_COLOR", "1".into()),
            // The example's stage keys: sops opens its encrypted values files.
            ("SOPS_AGE_KEY_FILE", repo().join("examples/acme/keys/all-stages.agekey").into()),
        ];
        // The test bed's chart registry and repository are served with its own CA.
        if let Some(bundle) = std::env::var_os("SSL_CERT_FILE") {
            vars.push(("SSL_CERT_FILE", bundle));
        }
        vars
    }

    /// `helm-envs ARGS` started in the background (for a test that interrupts or kills it).
    pub fn spawn_helm_envs(&self, args: &[&str]) -> std::process::Child {
        self.spawn(&assert_cmd::cargo::cargo_bin("helm-envs"), args)
    }

    /// Real helm started in the background, as a user would run it.
    pub fn spawn_helm(&self, args: &[&str]) -> std::process::Child {
        self.spawn(&which_in("helm", &testbed().path), args)
    }

    fn spawn(&self, program: &Path, args: &[&str]) -> std::process::Child {
        self.background(program, args).spawn().expect("the command starts")
    }

    /// `helm-envs ARGS` to start in the background, for a test that sets more of its
    /// environment first.
    pub fn helm_envs_command(&self, args: &[&str]) -> std::process::Command {
        self.background(&assert_cmd::cargo::cargo_bin("helm-envs"), args)
    }

    fn background(&self, program: &Path, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(program);
        command
            .args(args)
            .current_dir(&self.dir)
            .env_clear()
            .envs(self.scrubbed_vars(&testbed().path))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command
    }

    /// The test bed's `sops` in the project directory (the example's `.sops.yaml` and keys).
    pub fn sops(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(which_in("sops", &testbed().path));
        cmd.args(args).current_dir(&self.dir);
        self.scrubbed_env(&mut cmd, &testbed().path);
        cmd
    }

    fn kubeconfig(&self) -> OsString {
        let mut paths = vec![testbed().kubeconfig.clone()];
        paths.extend(self.extra_kubeconfig.borrow().clone());
        std::env::join_paths(paths).expect("kubeconfig paths")
    }

    /// Every file under the temp root with its bytes: to prove a failing command wrote nothing.
    pub fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        collect(self.root.path(), self.root.path(), &mut out);
        out
    }

    /// Replace the temp dir in command output, for snapshots.
    pub fn scrub(&self, text: &[u8]) -> String {
        String::from_utf8_lossy(text).replace(&self.root.path().display().to_string(), "[TMP]")
    }
}

/// A stages file with one stage, dev (context dev, `namespace`), and one release of the chart
/// in `chart/` with `values.yaml`; `release_keys` are more keys of the release.
pub fn dev_stages_file(namespace: &str, release: &str, release_keys: &str) -> String {
    format!(
        "stages:\n  - name: dev\n    kubeContext: dev\n    namespace: {namespace}\nreleases:\n  - name: {release}\n    \
         chart: chart\n    values: [values.yaml]\n{release_keys}"
    )
}

/// The example's stages file with `settings` (YAML lines, indented as a stage's keys) added to
/// one stage.
pub fn with_stage_settings(project: &Project, stage: &str, settings: &str) {
    let anchor = format!("    kubeContext: {stage}\n");
    let text = project.read("helm-envs.yaml").replace(&anchor, &format!("{anchor}{settings}"));
    project.write("helm-envs.yaml", &text);
}

/// Wait (60 s at most) until a release's latest revision is `pending-upgrade`: a helm upgrade
/// is working on it.
pub fn wait_until_pending(project: &Project, stage: &str, namespace: &str, release: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let args = ["status", release, "--kube-context", stage, "--namespace", namespace];
        if stdout_of(&project.helm(&args).output().expect("helm")).contains("STATUS: pending-upgrade") {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{stage}/{release} never became pending-upgrade");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The example's `secrets` entry: web's encrypted values files.
pub const ENCRYPTED_VALUES: &str = "    secrets:\n      - envs/{stage}/web.secrets.yaml\n";

/// The example without its encrypted values files, for a test about values in plain files.
pub fn without_encrypted_values(project: &Project) {
    let text = project.read("helm-envs.yaml");
    assert!(text.contains(ENCRYPTED_VALUES), "the example lists web's encrypted values");
    project.write("helm-envs.yaml", &text.replace(ENCRYPTED_VALUES, ""));
}

/// The namespaces of an isolated example's stages.
pub struct Namespaces {
    pub dev: String,
    pub staging: String,
    pub production: String,
}

fn collect(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "home") {
                continue; // helm's own caches
            }
            collect(base, &path, out);
        } else {
            let bytes = std::fs::read(&path).expect("read file");
            out.insert(path.strip_prefix(base).expect("under base").to_path_buf(), bytes);
        }
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A HELM_PLUGINS directory with `envs` in it as `helm plugin install` lays it out, its binary
/// this build's (without the install hook's cargo build).
pub fn plugins_with_this_build() -> TempDir {
    let plugins = tempfile::tempdir().expect("temp dir");
    let plugin = plugins.path().join("envs");
    std::fs::create_dir_all(plugin.join("bin")).expect("mkdir");
    for file in ["plugin.yaml", "plugin.complete"] {
        std::fs::copy(repo().join(file), plugin.join(file)).expect("copy plugin files");
    }
    std::os::unix::fs::symlink(assert_cmd::cargo::cargo_bin("helm-envs"), plugin.join("bin/helm-envs"))
        .expect("symlink");
    plugins
}

pub fn which_in(program: &str, path: &OsString) -> PathBuf {
    std::env::split_paths(path).map(|dir| dir.join(program)).find(|candidate| candidate.is_file()).unwrap_or_else(
        || {
            panic!(
                "{program} is not on PATH: this test needs real helm and clusters; run `make test` \
                 (or `scripts/testbed.sh up dev staging production && eval \"$(scripts/testbed.sh env)\"` first)"
            )
        },
    )
}

pub fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf-8 stdout")
}

pub fn kubectl_ok(project: &Project, args: &[&str]) {
    let output = project.kubectl(args).output().expect("kubectl runs");
    assert!(output.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// The Secrets the example's releases need (the chart creates `<release>-session` itself and
/// `acme-feature-keys` is optional), each with the keys the manifests read.
pub const REQUIRED: &[(&str, &[&str])] = &[
    ("acme-db", &["url", "password"]),
    ("payments-credentials", &["api-key"]),
    ("acme-client-tls", &["tls.crt", "tls.key"]),
    ("acme-registry", &[".dockerconfigjson"]),
];

pub fn create_namespace(project: &Project, context: &str, namespace: &str) {
    kubectl_ok(project, &["--context", context, "create", "namespace", namespace]);
}

pub fn create_secret(project: &Project, context: &str, namespace: &str, name: &str, keys: &[&str], value: &str) {
    let literals: Vec<String> = keys.iter().map(|k| format!("--from-literal={k}={value}")).collect();
    let mut args = vec!["--context", context, "--namespace", namespace, "create", "secret", "generic", name];
    args.extend(literals.iter().map(String::as_str));
    kubectl_ok(project, &args);
}

/// Every required Secret in a stage's namespace, except `skip`.
pub fn provision(project: &Project, context: &str, namespace: &str, skip: &[&str]) {
    create_namespace(project, context, namespace);
    for (name, keys) in REQUIRED.iter().filter(|(name, _)| !skip.contains(name)) {
        create_secret(project, context, namespace, name, keys, "not-a-real-value");
    }
}

pub fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn run(project: &Project, args: &[&str]) -> Output {
    project.helm_envs(args).output().expect("helm-envs runs")
}

pub fn ok(project: &Project, args: &[&str]) -> String {
    let output = run(project, args);
    assert!(output.status.success(), "helm-envs {args:?}: {}\n{}", stderr_of(&output), stdout_of(&output));
    stdout_of(&output)
}

/// A jsonpath of a live object in a stage's cluster.
pub fn live(project: &Project, stage: &str, namespace: &str, object: &str, jsonpath: &str) -> String {
    let output = project
        .kubectl(&["--context", stage, "--namespace", namespace, "get", object, "-o", &format!("jsonpath={jsonpath}")])
        .output()
        .expect("kubectl runs");
    assert!(output.status.success(), "kubectl get {object}: {}", stderr_of(&output));
    stdout_of(&output)
}

/// Every stage's namespace with the example's Secrets, and every stage deployed.
pub fn deployed_example(tag: &str) -> (Project, Namespaces) {
    let (project, ns) = Project::isolated_example(tag);
    for (stage, namespace) in [("dev", &ns.dev), ("staging", &ns.staging), ("production", &ns.production)] {
        provision(&project, stage, namespace, &[]);
    }
    ok(&project, &["apply", "--yes"]);
    (project, ns)
}

/// The Events helm-envs recorded in a namespace: (reason, stage label, promoted-from label,
/// patch annotation).
pub fn events(project: &Project, stage: &str, namespace: &str) -> Vec<(String, String, String, String)> {
    let output = project
        .kubectl(&[
            "--context",
            stage,
            "--namespace",
            namespace,
            "get",
            "events",
            "-l",
            "app.kubernetes.io/managed-by=helm-envs",
            "-o",
            "json",
        ])
        .output()
        .expect("kubectl runs");
    assert!(output.status.success(), "{}", stderr_of(&output));
    let list: serde_json::Value = serde_json::from_str(&stdout_of(&output)).expect("JSON");
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| {
            let labels = &e["metadata"]["labels"];
            (
                text(&e["reason"]),
                text(&labels["helm-envs/stage"]),
                text(&labels["helm-envs/promoted-from"]),
                text(&e["metadata"]["annotations"]["helm-envs/patch"]),
            )
        })
        .collect()
}
