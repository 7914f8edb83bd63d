//! SOPS-encrypted values files (a release's `secrets`): each stage deploys its own decrypted
//! credentials, which never appear in any output, file or temporary file, are never promoted,
//! and whose keys are checked for parity across stages without decrypting them.

use std::path::{Path, PathBuf};
use std::process::Output;

use base64::Engine as _;
use serde_json::Value;

use crate::harness::{
    Project, deployed_example, live, provision, stderr_of, stdout_of, wait_until_pending, with_stage_settings,
};
use crate::promote::{git, git_repository};

const STAGES: [&str; 3] = ["dev", "staging", "production"];

/// Each stage's planted credentials: the session signing key (the chart keeps it in a Secret)
/// and a payments endpoint carrying a key (the chart puts it in a ConfigMap, under a key that
/// does not say it is secret).
fn canaries(stage: &str, round: u32) -> (String, String) {
    (
        format!("canary-signing-{stage}-{round}-5e1c"),
        format!("https://pay.example/{stage}?key=canary-endpoint-{stage}-{round}-8d2f"),
    )
}

fn plaintext(stage: &str, round: u32) -> String {
    let (signing, endpoint) = canaries(stage, round);
    format!("session:\n  signingKey: {signing}\nintegrations:\n  payments:\n    endpoint: {endpoint}\n")
}

/// Write `text` as the stage's encrypted values file, encrypted by sops for the stage's key
/// (the example's .sops.yaml).
fn encrypt(project: &Project, stage: &str, text: &str) {
    let file = format!("envs/{stage}/web.secrets.yaml");
    project.write(&file, text);
    let output = project.sops(&["--encrypt", "--in-place", &file]).output().expect("sops runs");
    assert!(output.status.success(), "sops --encrypt {file}: {}", stderr_of(&output));
    assert!(!project.read(&file).contains("canary-"), "{file} is encrypted");
}

/// Every output of the commands run, every file of the project, and everything the runs left
/// in their temporary directory: no planted value anywhere.
struct Watch {
    tmp: tempfile::TempDir,
    outputs: Vec<String>,
}

impl Watch {
    fn new() -> Watch {
        Watch { tmp: tempfile::tempdir().expect("temp dir"), outputs: Vec::new() }
    }

    fn run(&mut self, project: &Project, args: &[&str]) -> Output {
        let output = project.helm_envs(args).env("TMPDIR", self.tmp.path()).output().expect("helm-envs runs");
        self.outputs.push(format!("helm-envs {args:?}\n{}\n{}", stdout_of(&output), stderr_of(&output)));
        output
    }

    fn ok(&mut self, project: &Project, args: &[&str]) -> String {
        let output = self.run(project, args);
        assert!(output.status.success(), "helm-envs {args:?}: {}\n{}", stderr_of(&output), stdout_of(&output));
        stdout_of(&output)
    }

    /// No canary in any output, nor in any regular file under the project or the runs'
    /// temporary directory; nothing left in the temporary directory but empty named pipes.
    fn assert_clean(&self, project: &Project, rounds: &[u32]) {
        let planted: Vec<String> = STAGES
            .iter()
            .flat_map(|stage| {
                rounds.iter().flat_map(move |&round| {
                    let (signing, endpoint) = canaries(stage, round);
                    [signing, endpoint.rsplit_once('=').expect("key").1.to_string()]
                })
            })
            .collect();
        for output in &self.outputs {
            for canary in &planted {
                assert!(!output.contains(canary.as_str()), "{canary} printed by {output}");
            }
        }
        for file in files_under(project.root()).into_iter().chain(files_under(self.tmp.path())) {
            let bytes = std::fs::read(&file).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            for canary in &planted {
                assert!(!text.contains(canary.as_str()), "{canary} written to {}", file.display());
            }
        }
        let left: Vec<PathBuf> = files_under(self.tmp.path());
        assert!(left.is_empty(), "files left in TMPDIR: {left:?}");
    }
}

/// Every regular file under `dir` (named pipes are skipped: they hold nothing).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return files };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            files.extend(files_under(&entry.path()));
        } else if kind.is_file() {
            files.push(entry.path());
        }
    }
    files
}

fn decoded(text: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).expect("base64");
    String::from_utf8(bytes).expect("UTF-8")
}

/// Each stage deploys its own decrypted credentials, merged after its plain files; a change of
/// one shows as changed with sizes only; a promotion carries plain values and no credential; no
/// planted value reaches any output, file or temporary file, nor the Events helm-envs records.
#[test]
fn each_stage_deploys_its_own_encrypted_values_and_none_is_ever_printed_or_promoted() {
    let (project, ns) = Project::isolated_example("sops");
    for (stage, namespace) in [("dev", &ns.dev), ("staging", &ns.staging), ("production", &ns.production)] {
        provision(&project, stage, namespace, &[]);
        encrypt(&project, stage, &plaintext(stage, 1));
    }
    let mut watch = Watch::new();
    watch.ok(&project, &["apply", "--yes", "-v"]);
    for (stage, namespace) in [("dev", &ns.dev), ("staging", &ns.staging), ("production", &ns.production)] {
        let key = live(&project, stage, namespace, "secret/web-session", "{.data.signing-key}");
        assert_eq!(decoded(&key), canaries(stage, 1).0, "{stage} runs its own signing key");
        let endpoint = live(&project, stage, namespace, "configmap/web-config", "{.data.PAYMENTS_ENDPOINT}");
        assert_eq!(endpoint, canaries(stage, 1).1, "{stage}: the encrypted file wins over the plain ones");
    }
    // Deployed as configured: nothing to deploy, nothing drifted.
    let diff = watch.run(&project, &["diff", "dev", "--detailed-exitcode"]);
    assert_eq!(diff.status.code(), Some(0), "{}", stdout_of(&diff));
    let drift = watch.run(&project, &["drift", "--stage", "staging"]);
    assert_eq!(drift.status.code(), Some(0), "{}", stdout_of(&drift));

    // A new credential in dev: changed, with sizes, never the values.
    encrypt(&project, "dev", &plaintext("dev", 2));
    let diff = watch.run(&project, &["diff", "dev", "--detailed-exitcode", "-v"]);
    assert_eq!(diff.status.code(), Some(2), "{}", stderr_of(&diff));
    let shown = stdout_of(&diff);
    let bytes = canaries("dev", 1).0.len();
    assert!(shown.contains(&format!("signing-key: ({bytes} bytes) → ({bytes} bytes, changed)")), "{shown}");
    assert!(shown.contains("PAYMENTS_ENDPOINT"), "{shown}");
    assert!(stderr_of(&diff).contains("--values <(sops --decrypt "), "{}", stderr_of(&diff));
    for format in ["json", "markdown"] {
        watch.run(&project, &["diff", "dev", "-o", format]);
    }
    watch.ok(&project, &["upgrade", "dev", "-v"]);

    // A plain change promoted dev -> staging: staging keeps its own credentials, and neither
    // its plain files nor its encrypted one receive dev's.
    let encrypted_before = project.read("envs/staging/web.secrets.yaml");
    project.write(
        "values/web.yaml",
        &(project.read("values/web.yaml") + "podAnnotations:\n  acme.example.com/build: \"42\"\n"),
    );
    project.write("envs/dev/web.yaml", &(project.read("envs/dev/web.yaml") + "image:\n  tag: \"2.8.0\"\n"));
    watch.ok(&project, &["upgrade", "dev"]);
    let promoted = watch.ok(&project, &["promote", "--from", "dev", "--to", "staging", "--yes", "-v", "-o", "json"]);
    let promoted: Value = serde_json::from_str(&promoted).expect("JSON");
    assert!(promoted["digest"].is_string(), "{promoted}");
    assert!(project.read("envs/staging/web.yaml").contains("tag: \"2.8.0\""), "the plain value is promoted");
    assert_eq!(project.read("envs/staging/web.secrets.yaml"), encrypted_before, "the encrypted file is never written");
    let key = live(&project, "staging", &ns.staging, "secret/web-session", "{.data.signing-key}");
    assert_eq!(decoded(&key), canaries("staging", 1).0, "staging keeps its own signing key");
    let image = live(&project, "staging", &ns.staging, "deployment/web", "{.spec.template.spec.containers[0].image}");
    assert!(image.ends_with(":2.8.0"), "{image}");
    watch.run(
        &project,
        &["promote", "--from", "staging", "--to", "production", "--no-deploy", "--dry-run", "-o", "markdown"],
    );
    watch.ok(&project, &["drift", "--stage", "staging", "-o", "json"]);

    // GitOps: a new staging credential (not deployed yet) and a plain change promoted as a
    // commit with a pull-request body, whose diff of what deploying staging changes shows both.
    git_repository(&project);
    encrypt(&project, "staging", &plaintext("staging", 2));
    project.write("envs/dev/web.yaml", &(project.read("envs/dev/web.yaml") + "featureFlags:\n  checkout: true\n"));
    git(&project, &["add", "."]);
    git(&project, &["commit", "--quiet", "-m", "dev: checkout flag; staging: new signing key"]);
    let body = project.path("pr-body.md").display().to_string();
    let args = ["promote", "--from", "dev", "--to", "staging", "--no-deploy", "--git-commit", "--skip-source-check"];
    watch.ok(&project, &[&args[..], &["--pr-body", &body, "-v"]].concat());
    let body = project.read("pr-body.md");
    assert!(body.contains("signing-key"), "the body shows the credential changes: {body}");
    watch.outputs.push(git(&project, &["log", "-2", "--format=%B"]));

    let events = project
        .kubectl(&["--context", "staging", "--namespace", &ns.staging, "get", "events", "-o", "json"])
        .output()
        .expect("kubectl");
    watch.outputs.push(stdout_of(&events));
    watch.assert_clean(&project, &[1, 2]);
}

/// A key that other stages keep in their encrypted files and staging's lack: drift names it and
/// the file to add it to (never a value), envSpecific or not; a promotion into staging refuses
/// with exit 3 and writes nothing.
#[test]
fn a_credential_one_stage_lacks_is_drift_and_stops_a_promotion_into_it() {
    let (project, _ns) = Project::isolated_example("sopskeys");
    for stage in STAGES {
        encrypt(&project, stage, &plaintext(stage, 1));
    }
    encrypt(&project, "staging", "session:\n  signingKey: canary-signing-staging-1-5e1c\n");
    let drift = crate::harness::run(&project, &["drift", "--stage", "staging", "-o", "json"]);
    let report: Value = serde_json::from_str(&stdout_of(&drift)).expect("JSON");
    let finding = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["kind"] == "secret-key")
        .unwrap_or_else(|| panic!("a secret-key finding: {report}"));
    assert_eq!(finding["stage"], "staging");
    assert_eq!(finding["release"], "web");
    assert_eq!(finding["path"], "integrations.payments.endpoint");
    assert_eq!(finding["file"], "envs/staging/web.secrets.yaml");
    assert_eq!(finding["definedIn"], serde_json::json!(["dev", "production"]));
    let text = stdout_of(&crate::harness::run(&project, &["drift", "--stage", "staging", "--details"]));
    assert!(
        text.contains("encrypted key integrations.payments.endpoint is missing (defined in dev, production)"),
        "{text}"
    );
    assert!(text.contains("sops edit envs/staging/web.secrets.yaml"), "{text}");
    assert!(!text.contains("canary-"), "{text}");

    project.write("envs/dev/web.yaml", &(project.read("envs/dev/web.yaml") + "image:\n  tag: \"2.8.0\"\n"));
    let before = project.read("envs/staging/web.yaml");
    let args = ["promote", "--from", "dev", "--to", "staging", "--no-deploy", "--skip-source-check"];
    let output = crate::harness::run(&project, &args);
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    let shown = format!("{}{}", stdout_of(&output), stderr_of(&output));
    assert!(shown.contains("encrypted gate of stage `staging` refused"), "{shown}");
    assert!(shown.contains("web: integrations.payments.endpoint (add to envs/staging/web.secrets.yaml"), "{shown}");
    assert_eq!(project.read("envs/staging/web.yaml"), before, "nothing written");
}

/// What stops a command before anything is written or deployed: no sops, no key for the file,
/// a file changed without sops; and a chart failing with a decrypted value in its message.
#[test]
fn encrypted_values_that_cannot_be_used_stop_the_command_with_the_file_and_the_fix() {
    let (project, ns) = Project::isolated_example("sopsbad");
    for (stage, namespace) in [("dev", &ns.dev), ("staging", &ns.staging), ("production", &ns.production)] {
        provision(&project, stage, namespace, &[]);
        encrypt(&project, stage, &plaintext(stage, 1));
    }
    let refused = |command: &mut assert_cmd::Command| {
        let output = command.output().expect("helm-envs runs");
        assert_eq!(output.status.code(), Some(1), "{}", stdout_of(&output));
        let stderr = stderr_of(&output);
        assert!(!stderr.contains("canary-"), "{stderr}");
        stderr
    };

    // No sops on PATH (helm still there).
    let bin = project.root().join("bin-without-sops");
    std::fs::create_dir_all(&bin).expect("mkdir");
    std::os::unix::fs::symlink(crate::harness::which_in("helm", &crate::harness::testbed().path), bin.join("helm"))
        .expect("link");
    let stderr = refused(&mut project.helm_envs_with_path(&["render", "dev"], bin.as_os_str()));
    assert!(
        stderr.contains("error: sops was not found; it is needed to decrypt the release's `secrets` files"),
        "{stderr}"
    );
    assert!(stderr.contains("HELM_ENVS_SOPS"), "{stderr}");

    // Only dev's key: production's file cannot be opened, and nothing is deployed.
    let mut command = project.helm_envs(&["upgrade", "production", "--yes"]);
    command.env("SOPS_AGE_KEY_FILE", project.path("keys/dev.agekey"));
    let stderr = refused(&mut command);
    assert!(stderr.contains("sops could not decrypt `envs/production/web.secrets.yaml`"), "{stderr}");
    assert!(stderr.contains("SOPS_AGE_KEY_FILE"), "{stderr}");
    let listed = project
        .helm(&["list", "--kube-context", "production", "--namespace", &ns.production, "-q"])
        .output()
        .expect("helm");
    assert_eq!(stdout_of(&listed).trim(), "", "nothing deployed");

    // Changed without sops: its MAC no longer matches.
    let file = "envs/staging/web.secrets.yaml";
    let original = project.read(file);
    let (start, end) = (original.find("integrations:").expect("a key"), original.find("sops:").expect("metadata"));
    project.write(file, &format!("{}{}", &original[..start], &original[end..]));
    let stderr = refused(&mut project.helm_envs(&["diff", "staging"]));
    assert!(stderr.contains(&format!("sops could not decrypt `{file}`")), "{stderr}");
    assert!(stderr.contains("changed without sops"), "{stderr}");
    project.write(file, &original);

    // A chart that fails with a decrypted value in its message (as `required` and `fail` do):
    // helm's message reaches the user with the value taken out, `render` included.
    project.write(
        "../../charts/acme-web/templates/check.yaml",
        "{{- if .Values.checkSigningKey }}{{ fail (printf \"signing key %s is too short\" .Values.session.signingKey) }}{{- end }}\n",
    );
    project.write("envs/dev/web.yaml", &(project.read("envs/dev/web.yaml") + "checkSigningKey: true\n"));
    for args in [&["diff", "dev"][..], &["render", "dev"], &["upgrade", "dev", "--yes"]] {
        let stderr = refused(&mut project.helm_envs(args));
        assert!(stderr.contains("signing key (redacted) is too short"), "{args:?}: {stderr}");
    }
}

/// production's encrypted file re-encrypted so that dev's key opens it too: `check-secrets`
/// names the file and the key, and with `requireOwnKeys` the `keys` gate refuses the deploy
/// (exit 3, nothing deployed) until `sops updatekeys` puts the file back on production's keys.
#[test]
fn a_file_another_stages_key_opens_is_reported_and_held_back_where_the_stage_requires_its_own_keys() {
    let (project, ns) = Project::isolated_example("sopsown");
    provision(&project, "production", &ns.production, &[]);
    with_stage_settings(&project, "production", "    requireOwnKeys: true\n");
    let public = |stage: &str| {
        let key = project.read(&format!("keys/{stage}.agekey"));
        key.lines().find_map(|l| l.strip_prefix("# public key: ")).expect("a public key").to_string()
    };
    let file = "envs/production/web.secrets.yaml";
    project.write(file, &plaintext("production", 1));
    let both = format!("{},{}", public("production"), public("dev"));
    let output = project.sops(&["--encrypt", "--age", &both, "--in-place", file]).output().expect("sops");
    assert!(output.status.success(), "{}", stderr_of(&output));

    let report = crate::harness::run(&project, &["check-secrets", "production", "--release", "web"]);
    assert_eq!(report.status.code(), Some(3), "{}", stdout_of(&report));
    let text = stdout_of(&report);
    let dev_key = public("dev");
    let short = format!("{}…{}", &dev_key[..12], &dev_key[dev_key.len() - 4..]);
    assert!(text.contains(&format!("shared key   {file} opens with {short}, a key of dev too")), "{text}");
    assert!(text.contains(&format!("sops updatekeys {file}")), "{text}");
    let json: Value = serde_json::from_str(&stdout_of(&crate::harness::run(
        &project,
        &["check-secrets", "production", "--release", "web", "-o", "json"],
    )))
    .expect("JSON");
    let problems = &json["stages"][0]["encryptedFiles"][0]["problems"];
    assert_eq!(
        problems,
        &serde_json::json!([{"problem": "opensOtherStages", "recipient": dev_key, "stages": ["dev"]}])
    );

    let upgrade = crate::harness::run(&project, &["upgrade", "production", "--release", "web", "--yes"]);
    assert_eq!(upgrade.status.code(), Some(3), "{}", stderr_of(&upgrade));
    assert!(stderr_of(&upgrade).contains("keys gate of stage `production` refused"), "{}", stderr_of(&upgrade));
    let listed = project
        .helm(&["list", "--kube-context", "production", "--namespace", &ns.production, "-q"])
        .output()
        .expect("helm");
    assert_eq!(stdout_of(&listed).trim(), "", "nothing deployed");

    // Back on production's own key (its rule in .sops.yaml): the gate passes, the deploy runs.
    let output = project.sops(&["updatekeys", "--yes", file]).output().expect("sops");
    assert!(output.status.success(), "{}", stderr_of(&output));
    let upgrade = crate::harness::run(&project, &["upgrade", "production", "--release", "web", "--yes"]);
    assert!(upgrade.status.success(), "{}", stderr_of(&upgrade));
    let shown = format!("{}{}", stdout_of(&upgrade), stderr_of(&upgrade));
    assert!(shown.contains("passed  keys     production's encrypted values open with its own keys only"), "{shown}");
}

/// A plain file under `secrets` and an encrypted one under `values` are refused at their entry
/// (file:line), before anything runs. Needs no cluster, helm or sops.
#[test]
fn encrypted_files_listed_in_the_wrong_list_are_refused_at_their_entry() {
    let project = Project::example();
    let refused = |args: &[&str]| {
        let output = crate::harness::run(&project, args);
        assert_eq!(output.status.code(), Some(1), "{}", stdout_of(&output));
        stderr_of(&output)
    };
    let encrypted = project.read("envs/dev/web.secrets.yaml");
    project.write("envs/dev/web.secrets.yaml", "session:\n  signingKey: canary-plain\n");
    let stderr = refused(&["list"]);
    assert!(
        stderr.contains("`envs/dev/web.secrets.yaml` is listed under `secrets` but is not encrypted with SOPS"),
        "{stderr}"
    );
    assert!(stderr.contains("sops --encrypt --in-place envs/dev/web.secrets.yaml"), "{stderr}");
    assert!(stderr.contains("helm-envs.yaml:"), "{stderr}");
    assert!(!stderr.contains("canary-plain"), "{stderr}");
    project.write("envs/dev/web.secrets.yaml", &encrypted);
    let text = project.read("helm-envs.yaml").replace(
        "      - envs/{stage}/web.yaml    # the stage's own overrides\n",
        "      - envs/{stage}/web.yaml    # the stage's own overrides\n      - envs/{stage}/web.secrets.yaml\n",
    );
    project.write("helm-envs.yaml", &text);
    let stderr = refused(&["list"]);
    assert!(stderr.contains("values file `envs/dev/web.secrets.yaml` is encrypted with SOPS"), "{stderr}");
    assert!(stderr.contains("list it under the release's `secrets` instead of `values`"), "{stderr}");
    assert!(stderr.contains("is listed under both `values` and `secrets`"), "{stderr}");
}

/// Killed while helm deploys (SIGKILL, which nothing can catch): what the run leaves in its
/// temporary directory holds no decrypted byte.
#[test]
fn a_killed_deploy_leaves_no_decrypted_value_behind() {
    let (project, ns) = deployed_example("sopskill");
    with_stage_settings(&project, "dev", "    helmArgs: [--wait, --timeout, 20s]\n");
    encrypt(&project, "dev", &plaintext("dev", 3));
    project.write("envs/dev/web.yaml", &(project.read("envs/dev/web.yaml") + "image:\n  tag: 0.0.0-missing\n"));
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut envs = project.helm_envs_command(&["upgrade", "dev", "--release", "web"]);
    envs.env("TMPDIR", tmp.path());
    let mut child = envs.spawn().expect("helm-envs starts");
    wait_until_pending(&project, "dev", &ns.dev, "web");
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    for file in files_under(tmp.path()) {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(!text.contains("canary-"), "a decrypted value left in {}", file.display());
    }
}
