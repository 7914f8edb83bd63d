//! Stages Argo CD deploys (issue 31): their Applications generated from the stages file,
//! applied with `helm envs argocd --apply`, and synced by the test bed's real Argo CD from a Git
//! repository (`scripts/testbed.sh up --argocd`): each stage's Pods run what its files say, a
//! change committed to one stage's files reaches that stage only, and helm keeps no record.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Namespaces, Project, events, live, ok, provision, run, stderr_of, stdout_of};

/// The test bed's Argo CD: its management context and the directory of its Git repositories.
fn argocd() -> (String, PathBuf) {
    let context = std::env::var("HELM_ENVS_TESTBED_ARGOCD").expect("the test bed runs Argo CD (up --argocd)");
    let git = std::env::var_os("HELM_ENVS_TESTBED_GIT").expect("HELM_ENVS_TESTBED_GIT");
    (context, PathBuf::from(git))
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=helm-envs tests",
            "-c",
            "user.email=tests@helm-envs.invalid",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(output.status.success(), "git {args:?}: {}", stderr_of(&output));
    stdout_of(&output)
}

/// The GitOps example in namespaces of its own, its Applications named after the test, in a
/// Git repository pushed to a bare one Argo CD reads (`file://`); every stage's namespace has
/// the example's Secrets.
fn gitops_example(tag: &str) -> (Project, Namespaces, PathBuf) {
    let (_, repositories) = argocd();
    let project = Project::gitops_example();
    let ns = project.isolate(tag);
    let prefix = format!("{tag}-{}", std::process::id());
    let bare = repositories.join(format!("{prefix}.git"));
    let text = project
        .read("helm-envs.yaml")
        .replace("https://git.acme.example.com/platform.git", &format!("file://{}", bare.display()))
        .replace("      context: dev", &format!("      context: dev\n      prefix: {prefix}-"));
    project.write("helm-envs.yaml", &text);
    for (context, namespace) in [("dev", &ns.dev), ("staging", &ns.staging), ("production", &ns.production)] {
        provision(&project, context, namespace, &[]);
    }
    let root = project.root();
    git(root, &["init", "--quiet"]);
    // Whoever commits a promotion (helm-envs runs git as it is configured).
    git(root, &["config", "user.name", "helm-envs tests"]);
    git(root, &["config", "user.email", "tests@helm-envs.invalid"]);
    git(root, &["add", "--all"]);
    git(root, &["commit", "--quiet", "--message", "the acme platform"]);
    git(root, &["init", "--quiet", "--bare", &bare.display().to_string()]);
    git(root, &["push", "--quiet", &bare.display().to_string(), "HEAD:main"]);
    (project, ns, bare)
}

/// An Application's sync status, revision and health (`kubectl get application`). With several
/// sources (a chart from a registry, values from Git) Argo CD leaves `revision` empty and lists
/// each source's in `revisions`: the Git source is the second.
fn application(project: &Project, name: &str) -> (String, String, String) {
    let (context, _) = argocd();
    let out = project
        .kubectl(&[
            "--context",
            &context,
            "--namespace",
            "argocd",
            "get",
            "application",
            name,
            "-o",
            "jsonpath={.status.sync.status} {.status.sync.revision}{.status.sync.revisions[1]} {.status.health.status}",
        ])
        .output()
        .expect("kubectl runs");
    let text = stdout_of(&out);
    let mut fields = text.split(' ').map(str::to_string);
    (fields.next().unwrap_or_default(), fields.next().unwrap_or_default(), fields.next().unwrap_or_default())
}

/// Waits (3 minutes at most) until the Application is Synced at `revision` and Argo CD judges
/// it Healthy: Argo CD rendered that commit, applied it, and every object is ready.
fn until_synced(project: &Project, name: &str, revision: &str) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (sync, at, health) = application(project, name);
        if (sync.as_str(), at.as_str(), health.as_str()) == ("Synced", revision, "Healthy") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} is not Synced and Healthy at {revision} after 3 minutes: {sync} at {at}, {health}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Until helm-envs judges every release of the stage ready (2 minutes at most): rollouts done.
fn until_healthy(project: &Project, stage: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status: Value =
            serde_json::from_str(&ok(project, &["status", "--stage", stage, "-o", "json"])).expect("status JSON");
        let releases = status["stages"][0]["releases"].as_array().expect("releases");
        if releases.iter().all(|release| release["health"]["ready"] == json!(true)) {
            return;
        }
        assert!(Instant::now() < deadline, "{stage} is not ready after 2 minutes: {status:#}");
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Until a stage's web Deployment has `ready` of `ready` replicas ready (2 minutes at most).
fn until_ready(project: &Project, context: &str, namespace: &str, ready: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = live(project, context, namespace, "deploy/web", "{.status.readyReplicas}/{.spec.replicas}");
        if now == format!("{ready}/{ready}") {
            return;
        }
        assert!(Instant::now() < deadline, "{context}: web is {now}, not {ready} ready, after 2 minutes");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Deletes the test's Applications when it ends, however it ends, before its namespaces go
/// (Argo CD would otherwise create them again: CreateNamespace, self-heal), and its repository.
struct Applications<'a> {
    project: &'a Project,
    names: Vec<String>,
    repository: PathBuf,
}

impl Drop for Applications<'_> {
    fn drop(&mut self) {
        let (context, _) = argocd();
        let mut args =
            vec!["--context", context.as_str(), "--namespace", "argocd", "delete", "application", "--ignore-not-found"];
        args.extend(self.names.iter().map(String::as_str));
        let _ = self.project.kubectl(&args).output();
        let _ = std::fs::remove_dir_all(&self.repository);
    }
}

#[test]
fn argo_cd_deploys_each_stage_from_the_applications_the_stages_file_generates() {
    let (project, ns, bare) = gitops_example("gitops");
    let prefix = format!("gitops-{}-", std::process::id());
    let printed = ok(&project, &["argocd", "staging"]);
    assert!(printed.contains(&format!("name: {prefix}web-staging")), "{printed}");
    assert!(
        printed.contains(
            "- ../../examples/acme-gitops/values/web.yaml\n      - ../../examples/acme-gitops/envs/staging/web.yaml"
        ),
        "{printed}"
    );

    let _applications = Applications {
        project: &project,
        names: ["dev", "staging", "production"].map(|stage| format!("{prefix}web-{stage}")).to_vec(),
        repository: bare.clone(),
    };
    let applied = ok(&project, &["argocd", "--apply"]);
    assert_eq!(applied.lines().count(), 3, "one Application per stage: {applied}");
    let head = git(project.root(), &["rev-parse", "HEAD"]).trim().to_string();
    for stage in ["dev", "staging", "production"] {
        until_synced(&project, &format!("{prefix}web-{stage}"), &head);
    }
    // Each stage runs its own files' replica count, on its own cluster.
    for (context, namespace, replicas) in
        [("dev", &ns.dev, "1"), ("staging", &ns.staging, "2"), ("production", &ns.production, "3")]
    {
        until_ready(&project, context, namespace, replicas);
    }
    // Argo CD applies the objects itself: helm keeps no release record.
    let listed = project
        .helm(&["list", "--kube-context", "staging", "--namespace", &ns.staging, "--short"])
        .output()
        .expect("helm");
    assert_eq!(stdout_of(&listed).trim(), "", "no Helm release");

    // A change committed to dev's files reaches dev only.
    let generation = live(&project, "staging", &ns.staging, "deploy/web", "{.metadata.generation}");
    let dev = project.read("envs/dev/web.yaml").replace("replicaCount: 1", "replicaCount: 2");
    project.write("envs/dev/web.yaml", &dev);
    git(project.root(), &["commit", "--quiet", "--all", "--message", "dev: two replicas"]);
    git(project.root(), &["push", "--quiet", &bare.display().to_string(), "HEAD:main"]);
    let changed = git(project.root(), &["rev-parse", "HEAD"]).trim().to_string();
    let app = format!("{prefix}web-dev");
    refresh(&project, &app);
    until_synced(&project, &app, &changed);
    until_ready(&project, "dev", &ns.dev, "2");
    // Staging follows the same branch: Argo CD may read the new commit for it, which changes
    // nothing of staging's (its Deployment is the one it deployed first).
    assert_eq!(live(&project, "staging", &ns.staging, "deploy/web", "{.metadata.generation}"), generation);
    assert_eq!(live(&project, "staging", &ns.staging, "deploy/web", "{.spec.replicas}"), "2", "staging unchanged");

    // status reads Argo CD's verdict (there is no Helm record): the commit dev runs, Synced,
    // and its Pods ready, read from the objects its config renders.
    let status: Value = serde_json::from_str(&ok(&project, &["status", "--stage", "dev", "-o", "json"])).expect("JSON");
    let web = &status["stages"][0]["releases"][0];
    assert_eq!(web["argocd"]["application"], app.as_str(), "{web:#}");
    assert_eq!((&web["argocd"]["sync"], &web["argocd"]["revision"]), (&json!("Synced"), &json!(changed)), "{web:#}");
    assert_eq!(web["argocd"]["health"], "Healthy", "{web:#}");
    assert_eq!((&web["deployed"], &web["inSync"], &web["health"]["ready"]), (&json!(true), &json!(true), &json!(true)));
    let shown = ok(&project, &["status", "--stage", "dev"]);
    assert!(shown.contains("deployed by Argo CD") && shown.contains(&format!("Application {app}")), "{shown}");

    // helm never deploys a stage Argo CD deploys: two engines would own its objects.
    let refused = run(&project, &["upgrade", "staging", "--yes"]);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr_of(&refused));
    assert!(stderr_of(&refused).contains("stage `staging` is deployed by Argo CD"), "{}", stderr_of(&refused));

    // diff STAGE holds the live objects against the config (there is no Helm record): dev runs
    // its config; a change of dev's files not yet committed is what a deploy would change.
    let diffed = run(&project, &["diff", "dev", "--detailed-exitcode"]);
    let (shown, said) = (stdout_of(&diffed), stderr_of(&diffed));
    assert_eq!(diffed.status.code(), Some(0), "{shown}{said}");
    assert!(
        shown.contains(&format!("live objects (Argo CD Application {app}: Synced at {})", &changed[..12])),
        "{shown}"
    );
    assert!(shown.contains("No changes."), "{shown}");
    let committed = project.read("envs/dev/web.yaml");
    project.write("envs/dev/web.yaml", &committed.replace("replicaCount: 2", "replicaCount: 3"));
    let diffed = run(&project, &["diff", "dev", "--detailed-exitcode", "-o", "json"]);
    assert_eq!(diffed.status.code(), Some(2), "a deploy would change dev: {}", stderr_of(&diffed));
    let report: Value = serde_json::from_slice(&diffed.stdout).expect("diff JSON");
    let web = &report["releases"][0];
    assert_eq!((&web["argocd"]["application"], &web["argocd"]["sync"]), (&json!(app), &json!("Synced")), "{web:#}");
    assert_eq!(web["plan"], json!({"add": 0, "change": 1, "destroy": 0, "unchanged": web["plan"]["unchanged"]}));
    assert_eq!(web["changes"][0]["id"], format!("apps/Deployment {}/web", ns.dev), "{web:#}");
    assert_eq!(
        web["changes"][0]["fields"],
        json!([{"change": "changed", "path": "spec.replicas", "pointer": "/spec/replicas", "old": 2, "new": 3,
                "sensitive": false}]),
        "only what the config changes, nothing the server defaults: {web:#}"
    );
    project.write("envs/dev/web.yaml", &committed);
    // What Argo CD manages and the config no longer renders, its sync prunes.
    let template = project.root().join("charts/acme-web/templates/configmap.yaml");
    let kept = std::fs::read_to_string(&template).expect("the chart's ConfigMap");
    std::fs::write(&template, "{{- /* no ConfigMap any more */}}\n").expect("write the template");
    let diffed = run(&project, &["diff", "dev", "-o", "json"]);
    std::fs::write(&template, kept).expect("put the template back");
    let report: Value = serde_json::from_slice(&diffed.stdout).expect("diff JSON");
    let changes = report["releases"][0]["changes"].as_array().expect("changes").clone();
    let removed: Vec<&Value> = changes.iter().filter(|c| c["change"] == "removed").collect();
    assert_eq!(removed.len(), 1, "{report:#}");
    assert_eq!((&removed[0]["kind"], &removed[0]["namespace"]), (&json!("ConfigMap"), &json!(ns.dev)), "{report:#}");
    assert_eq!(report["releases"][0]["plan"]["destroy"], 1, "{report:#}");

    // A promotion is a commit: the source gate reads Argo CD's verdict on dev; merged (as a pull
    // request would be) and pushed, Argo CD deploys it to staging, and production stays as it was.
    let dev = project.read("envs/dev/web.yaml") + "podAnnotations:\n  acme.example.com/release: \"2\"\n";
    project.write("envs/dev/web.yaml", &dev);
    git(project.root(), &["commit", "--quiet", "--all", "--message", "dev: release 2"]);
    git(project.root(), &["push", "--quiet", &bare.display().to_string(), "HEAD:main"]);
    let released = git(project.root(), &["rev-parse", "HEAD"]).trim().to_string();
    refresh(&project, &app);
    until_synced(&project, &app, &released);
    until_healthy(&project, "dev");
    let promoted =
        ok(&project, &["promote", "--from", "dev", "--to", "staging", "--no-deploy", "--git-commit", "--yes"]);
    assert!(promoted.contains("Argo CD runs dev's config"), "the source gate read Argo CD: {promoted}");
    // What merging it changes: staging's live objects against the promoted config, field by field.
    assert!(
        promoted.contains("What Argo CD's sync of the promotion will change in staging (its live objects)"),
        "{promoted}"
    );
    assert!(
        promoted.contains(&format!("live objects (Argo CD Application {prefix}web-staging: Synced at ")),
        "{promoted}"
    );
    assert!(promoted.contains("~ apps/Deployment"), "the change of staging's objects, not an install: {promoted}");
    assert!(promoted.contains("+ spec.template.metadata.annotations.acme.example.com/release: \"2\""), "{promoted}");
    assert!(promoted.contains("Plan: 0 to add, 1 to change, 0 to destroy."), "{promoted}");
    let branch = git(project.root(), &["branch", "--show-current"]).trim().to_string();
    assert!(branch.starts_with("promote/dev-to-staging-"), "{branch}");
    git(project.root(), &["checkout", "--quiet", "main"]);
    git(project.root(), &["merge", "--quiet", "--no-ff", "--message", "Merge the promotion", &branch]);
    git(project.root(), &["push", "--quiet", &bare.display().to_string(), "HEAD:main"]);
    let merged = git(project.root(), &["rev-parse", "HEAD"]).trim().to_string();
    let staging_app = format!("{prefix}web-staging");
    // The pipeline that runs on the merge: `upgrade --push` of the merged commit (already on
    // the branch: nothing to push) waits until Argo CD runs it, and records the promotion the
    // pull request carried in staging's Events.
    let taken = ok(&project, &["upgrade", "staging", "--push", "--yes"]);
    assert!(taken.contains(&format!("deployed  staging/web (Argo CD runs commit {})", &merged[..12])), "{taken}");
    let (sync, revision, _) = application(&project, &staging_app);
    assert_eq!((sync.as_str(), revision.as_str()), ("Synced", merged.as_str()));
    let recorded = events(&project, "staging", &ns.staging);
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!((recorded[0].0.as_str(), recorded[0].2.as_str()), ("Promoted", "dev"), "{recorded:?}");
    assert!(!recorded[0].3.is_empty() && branch.ends_with(&recorded[0].3), "the promotion's patch: {recorded:?}");
    // status names the promotion staging runs: the promotion's commit among those Argo CD runs.
    let promotion = git(project.root(), &["rev-parse", &branch]).trim().to_string();
    let status: Value =
        serde_json::from_str(&ok(&project, &["status", "--stage", "staging", "-o", "json"])).expect("JSON");
    let last = &status["stages"][0]["releases"][0]["lastPromotion"];
    assert_eq!((&last["from"], &last["to"], &last["commit"]), (&json!("dev"), &json!("staging"), &json!(promotion)));
    assert_eq!((&last["patch"], &last["revision"]), (&json!(recorded[0].3), &Value::Null), "{last:#}");
    let shown = ok(&project, &["status", "--stage", "staging"]);
    let cell = format!("dev → staging (patch {}, commit {}", recorded[0].3, &promotion[..12]);
    assert!(shown.contains(&cell), "{shown}");
    let annotation = "{.spec.template.metadata.annotations.acme\\.example\\.com/release}";
    assert_eq!(live(&project, "staging", &ns.staging, "deploy/web", annotation), "2", "staging took the promotion");
    assert_eq!(live(&project, "production", &ns.production, "deploy/web", annotation), "", "production did not");

    // drift: an Application edited by hand is not what the stages file says; --apply puts it back.
    let clean = run(&project, &["drift", "--stage", "staging", "-o", "json"]);
    let findings: Value = serde_json::from_slice(&clean.stdout).expect("JSON");
    assert!(
        !findings["findings"].as_array().expect("findings").iter().any(|f| f["kind"] == "application"),
        "{findings:#}"
    );
    let (context, _) = argocd();
    let edit =
        ["--context", &context, "--namespace", "argocd", "patch", "application", &staging_app, "--type", "merge"];
    let patched =
        project.kubectl(&[&edit[..], &["-p", r#"{"spec":{"syncPolicy":{"automated":null}}}"#]].concat()).output();
    assert!(patched.is_ok_and(|o| o.status.success()), "patch {staging_app}");
    let drifted = run(&project, &["drift", "--stage", "staging"]);
    assert_eq!(drifted.status.code(), Some(2), "{}", stdout_of(&drifted));
    assert!(
        stdout_of(&drifted).contains(&format!("Application {staging_app}: spec.syncPolicy.automated")),
        "{}",
        stdout_of(&drifted)
    );
    // Without self-heal an object edited in the cluster stays edited: drift --live names the
    // field, both values and who changed it; diff shows what syncing the config puts back.
    let scaled = project
        .kubectl(&["--context", "staging", "--namespace", &ns.staging, "patch", "deployment", "web"])
        .args(["--patch", r#"{"spec":{"replicas":4}}"#])
        .output();
    assert!(scaled.is_ok_and(|o| o.status.success()), "scale staging's web by hand");
    // A change of staging's files not committed yet is not what Argo CD runs: --live holds the
    // objects against the commit Argo CD runs (diff, below, against the files as they are).
    let committed_staging = project.read("envs/staging/web.yaml");
    project.write("envs/staging/web.yaml", &committed_staging.replace("replicaCount: 2", "replicaCount: 5"));
    let drifted = run(&project, &["drift", "--stage", "staging", "--live", "--details"]);
    assert_eq!(drifted.status.code(), Some(2), "{}", stdout_of(&drifted));
    let resource = format!("apps/Deployment {}/web", ns.staging);
    assert!(
        stdout_of(&drifted).contains(&format!("{resource}: spec.replicas live 4, config 2 by kubectl-patch")),
        "{}",
        stdout_of(&drifted)
    );
    assert!(stdout_of(&drifted).contains("Argo CD puts the config back when it syncs"), "{}", stdout_of(&drifted));
    let found: Value =
        serde_json::from_slice(&run(&project, &["drift", "--stage", "staging", "--live", "-o", "json"]).stdout)
            .expect("JSON");
    let edited: Vec<&Value> =
        found["findings"].as_array().expect("findings").iter().filter(|f| f["kind"] == "edited").collect();
    assert_eq!(edited.len(), 1, "only the Deployment: {found:#}");
    assert_eq!((&edited[0]["resource"], &edited[0]["revision"]), (&json!(resource), &Value::Null), "{found:#}");
    let diffed = ok(&project, &["diff", "staging"]);
    assert!(diffed.contains(&format!("~ {resource}")) && diffed.contains("spec.replicas: 4 → 5"), "{diffed}");
    project.write("envs/staging/web.yaml", &committed_staging);

    // The generated Application back, with self-heal: Argo CD puts the Deployment back itself.
    ok(&project, &["argocd", "staging", "--apply"]);
    until_ready(&project, "staging", &ns.staging, "2");
    let again: Value =
        serde_json::from_slice(&run(&project, &["drift", "--stage", "staging", "--live", "-o", "json"]).stdout)
            .expect("JSON");
    assert!(
        !again["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["kind"] == "application" || f["kind"] == "edited"),
        "{again:#}"
    );

    // A soak is read from Argo CD's history: staging has run the merged commit for minutes.
    until_healthy(&project, "staging");
    let stages = project.read("helm-envs.yaml");
    project.write(
        "helm-envs.yaml",
        &stages.replace("    approval: required\n", "    approval: required\n    soak: 24h\n"),
    );
    let soaked =
        run(&project, &["promote", "--from", "staging", "--to", "production", "--git-commit", "--push", "--yes"]);
    let said = stderr_of(&soaked);
    assert_eq!(soaked.status.code(), Some(3), "{said}");
    let young = format!("production wants 24h in staging first: web commit {} has run", &merged[..12]);
    assert!(said.contains(&young), "{said}");
    assert_eq!(git(project.root(), &["rev-parse", "HEAD"]).trim(), merged, "nothing committed");
    project.write("helm-envs.yaml", &stages);

    // --push: the promotion's commit pushed to the branch production's Application follows,
    // and the run waits until Argo CD runs it there with the Pods ready.
    let pushed =
        ok(&project, &["promote", "--from", "staging", "--to", "production", "--git-commit", "--push", "--yes"]);
    assert!(pushed.contains(&format!("pushed to main of file://{}", bare.display())), "{pushed}");
    let head = git(project.root(), &["rev-parse", "HEAD"]).trim().to_string();
    assert!(pushed.contains(&format!("deployed  production/web (Argo CD runs commit {})", &head[..12])), "{pushed}");
    let remote = git(project.root(), &["ls-remote", &bare.display().to_string(), "refs/heads/main"]);
    assert!(remote.starts_with(&head), "main of the remote is the promotion: {remote}");
    assert_eq!(live(&project, "production", &ns.production, "deploy/web", annotation), "2", "production took it");
    let (sync, revision, _) = application(&project, &format!("{prefix}web-production"));
    assert_eq!((sync.as_str(), revision.as_str()), ("Synced", head.as_str()));
    // production's monitoring sees the promotion in its own namespace, and staging's only the
    // one it took.
    let recorded = events(&project, "production", &ns.production);
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!((recorded[0].0.as_str(), recorded[0].2.as_str()), ("Promoted", "staging"), "{recorded:?}");
    assert_eq!(events(&project, "staging", &ns.staging).len(), 1);

    // A promotion Argo CD cannot make run fails the run within the stage's health.timeout,
    // saying why; the commit is pushed (Argo CD has it) and the files stay with it.
    let (stages, staging_before) = (project.read("helm-envs.yaml"), project.read("envs/staging/web.yaml"));
    project.write(
        "helm-envs.yaml",
        &stages.replace("  - name: staging\n", "  - name: staging\n    health: {timeout: 20s}\n"),
    );
    let broken = project.read("envs/dev/web.yaml") + "image:\n  tag: \"0.0.0-missing\"\n";
    project.write("envs/dev/web.yaml", &broken);
    git(
        project.root(),
        &[
            "commit",
            "--quiet",
            "--message",
            "dev: an image that does not exist",
            "--",
            "examples/acme-gitops/envs/dev/web.yaml",
        ],
    );
    let args =
        ["promote", "--from", "dev", "--to", "staging", "--git-commit", "--push", "--yes", "--skip-source-check"];
    let failed = run(&project, &args);
    let said = stderr_of(&failed);
    assert_eq!(failed.status.code(), Some(1), "{said}\n{}", stdout_of(&failed));
    assert!(said.contains("Argo CD did not deploy stage `staging`") && said.contains("within 20s"), "{said}");
    assert!(said.contains("ImagePull") || said.contains("ErrImage"), "the Pods say why: {said}");
    assert!(said.contains("pushed: the files stay with it"), "{said}");
    assert!(project.read("envs/staging/web.yaml").contains("0.0.0-missing"), "the files stay with the pushed commit");
    let recorded = events(&project, "staging", &ns.staging);
    let failures = recorded.iter().filter(|e| e.0 == "DeployFailed").count();
    assert_eq!((recorded.len(), failures), (2, 1), "the promotion taken, then the failure: {recorded:?}");

    // upgrade --push deploys the stage's files as committed: staging's image put back and
    // committed, Argo CD runs staging's config again. Uncommitted files are refused first.
    project.write("helm-envs.yaml", &stages);
    project.write("envs/staging/web.yaml", &staging_before);
    let uncommitted = run(&project, &["upgrade", "staging", "--push", "--yes"]);
    assert_eq!(uncommitted.status.code(), Some(1), "{}", stderr_of(&uncommitted));
    assert!(stderr_of(&uncommitted).contains("uncommitted changes"), "{}", stderr_of(&uncommitted));
    git(project.root(), &["commit", "--quiet", "--all", "--message", "staging: back to the image that exists"]);
    let fixed = git(project.root(), &["rev-parse", "HEAD"]).trim().to_string();
    // The stage's verify commands run once Argo CD runs the commit, as after a helm deploy.
    let verify = "    verify: [[sh, -c, \"echo $HELM_ENVS_STAGE $HELM_NAMESPACE > verified\"]]\n";
    project.write("helm-envs.yaml", &stages.replace("  - name: staging\n", &format!("  - name: staging\n{verify}")));
    // Its report says what the sync changes (the live objects run the missing image), then
    // what was deployed: JSON as for any upgrade.
    let upgraded: Value =
        serde_json::from_str(&ok(&project, &["upgrade", "staging", "--push", "--yes", "-o", "json"])).expect("JSON");
    assert_eq!((&upgraded["result"], &upgraded["outcomes"][0]["commit"]), (&json!("deployed"), &json!(fixed)));
    let diff = &upgraded["diff"]["releases"][0];
    assert_eq!(diff["argocd"]["application"], staging_app.as_str(), "{upgraded:#}");
    let changed = diff["changes"].as_array().expect("changes");
    assert!(
        changed.iter().any(|c| c["kind"] == "Deployment" && c.to_string().contains("0.0.0-missing")),
        "the image the sync replaces: {upgraded:#}"
    );
    assert!(upgraded["gates"].as_array().expect("gates").iter().any(|g| g["gate"] == "approval"), "{upgraded:#}");
    assert_eq!(project.read("verified").trim(), format!("staging {}", ns.staging), "verify ran");
    project.write("helm-envs.yaml", &stages);
    let image = live(&project, "staging", &ns.staging, "deploy/web", "{.spec.template.spec.containers[0].image}");
    assert!(image.ends_with(":2.7.0"), "{image}");
    let refused = run(&project, &["upgrade", "staging"]);
    assert_eq!(refused.status.code(), Some(3), "without --push helm would deploy: {}", stderr_of(&refused));

    // A stage Argo CD does not deploy has no Application.
    let refused = run(&project, &["argocd", "nowhere"]);
    assert!(!refused.status.success());
}

/// Charts from the test bed's OCI registry and chart repository, as published charts are
/// consumed: Argo CD pulls the chart at the version each stage's `versions:` names (its
/// Application has the chart and the values from Git as two sources); a promotion of a version
/// is a commit of the stages file and an update of the Application, and the deploy waits until
/// Argo CD runs that chart at that commit. Staging syncs only when asked (`sync: manual`).
#[test]
fn argo_cd_runs_registry_and_repository_charts_at_the_version_each_stage_has() {
    let registry = std::env::var("HELM_ENVS_TESTBED_REGISTRY").expect("the test bed's registry");
    let repository = std::env::var("HELM_ENVS_TESTBED_REPO").expect("the test bed's chart repository");
    let (project, ns, bare) = gitops_example("charts");
    let prefix = format!("charts-{}-", std::process::id());
    let [dev_app, staging_app] = ["dev", "staging"].map(|stage| format!("{prefix}web-{stage}"));
    let [dev_worker, staging_worker] = ["dev", "staging"].map(|stage| format!("{prefix}worker-{stage}"));
    let names = vec![dev_app.clone(), staging_app.clone(), dev_worker.clone(), staging_worker.clone()];
    let _applications = Applications { project: &project, names, repository: bare.clone() };
    // A worker that needs web: helm-envs syncs it once web runs, where it asks for the syncs.
    let worker = "  - name: worker\n    chart: ../../charts/acme-web\n    needs: [web]\n    values:\n      - \
                  values/web.yaml\n      - envs/{stage}/web.yaml\n";
    let stages = project.read("helm-envs.yaml").replace(
        "      - envs/{stage}/web.yaml    # the stage's own overrides\n",
        &format!("      - envs/{{stage}}/web.yaml    # the stage's own overrides\n{worker}"),
    );
    let at = stages.find("  - name: staging\n").expect("staging");
    let manual = at + stages[at..].find("    argocd:\n").expect("staging's argocd") + "    argocd:\n".len();
    let stages = format!("{}      sync: manual\n{}", &stages[..manual], &stages[manual..])
        .replace("chart: ../../charts/acme-web", &format!("chart: {registry}/acme-web"))
        + "\nversions:\n  dev: {web: 1.5.0, worker: 1.5.0}\n  staging: {web: 1.4.2, worker: 1.4.2}\n  \
           production: {web: 1.4.2, worker: 1.4.2}\n";
    project.write("helm-envs.yaml", &stages);
    git(project.root(), &["commit", "--quiet", "--all", "--message", "the web chart from the registry"]);
    git(project.root(), &["push", "--quiet", &bare.display().to_string(), "HEAD:main"]);
    let head = git(project.root(), &["rev-parse", "HEAD"]).trim().to_string();

    let printed = ok(&project, &["argocd", "staging", "-o", "json"]);
    let generated: Value = serde_json::from_str(&printed).expect("JSON");
    assert_eq!(generated["kind"], "List", "what kubectl apply takes: {printed}");
    let chart = &generated["items"][0]["spec"]["sources"][0];
    assert_eq!((&chart["chart"], &chart["targetRevision"]), (&json!("acme-web"), &json!("1.4.2")), "{printed}");
    ok(&project, &["argocd", "dev", "--apply"]);
    ok(&project, &["argocd", "staging", "--apply"]);
    until_synced(&project, &dev_app, &head);
    until_synced(&project, &dev_worker, &head);
    let chart_of = |context: &str, namespace: &str| {
        live(&project, context, namespace, "deploy/web", "{.metadata.labels.helm\\.sh/chart}")
    };
    assert_eq!(chart_of("dev", &ns.dev), "acme-web-1.5.0", "dev runs the registry's 1.5.0");
    // Staging syncs when asked: its first deploy is helm-envs' sync of the commit.
    let (sync, _, _) = application(&project, &staging_app);
    assert_ne!(sync, "Synced", "a manual Application waits to be synced");
    let deployed = ok(&project, &["upgrade", "staging", "--push", "--yes"]);
    assert!(deployed.contains(&format!("deployed  staging/web (Argo CD runs commit {})", &head[..12])), "{deployed}");
    assert!(deployed.contains(&format!("deployed  staging/worker (Argo CD runs commit {})", &head[..12])));
    until_synced(&project, &staging_app, &head);
    // The worker's sync started after web's had ended and its Pods were ready.
    let (web_ended, worker_started) =
        (operation(&project, &staging_app, "finishedAt"), operation(&project, &staging_worker, "startedAt"));
    assert!(
        !web_ended.is_empty() && worker_started > web_ended,
        "web ended {web_ended}, worker started {worker_started}"
    );
    assert_eq!(chart_of("staging", &ns.staging), "acme-web-1.4.2", "staging runs the registry's 1.4.2");
    until_healthy(&project, "dev");

    // The version is promoted: the stages file's commit, pushed, and staging's Application
    // updated to the chart's new version, synced at that commit.
    let promoted = run(&project, &["promote", "--from", "dev", "--to", "staging", "--git-commit", "--push", "--yes"]);
    let (shown, said) = (stdout_of(&promoted), stderr_of(&promoted));
    assert!(promoted.status.success(), "{shown}{said}");
    assert!(shown.contains("chart version: 1.4.2 -> 1.5.0"), "{shown}");
    assert!(
        said.contains(&format!(
            "updating Application {staging_app} from the stages file: spec.sources[0].targetRevision \"1.4.2\" -> \"1.5.0\""
        )),
        "{said}"
    );
    let promotion = git(project.root(), &["rev-parse", "HEAD"]).trim().to_string();
    assert_ne!(promotion, head);
    assert!(shown.contains(&format!("deployed  staging/web (Argo CD runs commit {})", &promotion[..12])), "{shown}");
    assert_eq!(chart_of("staging", &ns.staging), "acme-web-1.5.0", "staging runs what dev ran");
    let (sync, revision, _) = application(&project, &staging_app);
    assert_eq!((sync.as_str(), revision.as_str()), ("Synced", promotion.as_str()));
    let status: Value =
        serde_json::from_str(&ok(&project, &["status", "--stage", "staging", "-o", "json"])).expect("JSON");
    let web = &status["stages"][0]["releases"][0];
    assert_eq!((&web["argocd"]["sync"], &web["argocd"]["revision"]), (&json!("Synced"), &json!(promotion)), "{web:#}");
    assert_eq!(web["inSync"], true, "{web:#}");
    let drift: Value =
        serde_json::from_slice(&run(&project, &["drift", "--stage", "staging", "-o", "json"]).stdout).expect("JSON");
    assert!(
        !drift["findings"].as_array().expect("findings").iter().any(|f| f["kind"] == "application"),
        "staging's Application is what the stages file generates: {drift:#}"
    );

    // The same chart from the HTTP repository (`helm repo add`): dev's Application follows it.
    let added = project.helm(&["repo", "add", "testbed", &repository]).output().expect("helm");
    assert!(added.status.success(), "{}", stderr_of(&added));
    let stages =
        project.read("helm-envs.yaml").replace(&format!("chart: {registry}/acme-web"), "chart: testbed/acme-web");
    project.write("helm-envs.yaml", &stages);
    git(project.root(), &["commit", "--quiet", "--all", "--message", "the web chart from the repository"]);
    let moved = git(project.root(), &["rev-parse", "HEAD"]).trim().to_string();
    let upgraded = run(&project, &["upgrade", "dev", "--push", "--yes"]);
    let said = stderr_of(&upgraded);
    assert!(upgraded.status.success(), "{said}");
    assert!(said.contains("Argo CD syncs stage dev's Applications by itself, side by side"), "{said}");
    assert!(
        said.contains(&format!("spec.sources[0].repoURL \"{}\" -> \"{repository}\"", &registry["oci://".len()..])),
        "{said}"
    );
    until_synced(&project, &dev_app, &moved);
    let (context, _) = argocd();
    let source = project
        .kubectl(&["--context", &context, "--namespace", "argocd", "get", "application", &dev_app])
        .args(["-o", "jsonpath={.spec.sources[0].repoURL} {.status.sync.revisions[0]}"])
        .output()
        .expect("kubectl");
    assert_eq!(stdout_of(&source), format!("{repository} 1.5.0"), "Argo CD pulled 1.5.0 from the repository");
    assert_eq!(chart_of("dev", &ns.dev), "acme-web-1.5.0");
}

/// One project, two engines: helm-envs deploys dev and production, Argo CD deploys staging.
/// A promotion crosses from one to the other both ways, each gate reading the engine that runs
/// its source, and each stage's own record (helm's release, or the Application) says so.
#[test]
fn a_project_mixes_stages_helm_deploys_with_a_stage_argo_cd_deploys() {
    let (project, ns, bare) = gitops_example("mixed");
    let prefix = format!("mixed-{}-", std::process::id());
    let staging_app = format!("{prefix}web-staging");
    let _applications = Applications { project: &project, names: vec![staging_app.clone()], repository: bare.clone() };
    // dev and production lose their `argocd:` block: helm-envs deploys them.
    let mut stage = String::new();
    let mut kept = Vec::new();
    let text = project.read("helm-envs.yaml");
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("  - name: ") {
            stage = name.to_string();
        }
        let argocd_block = line == "    argocd:" || line.starts_with("      ");
        if !(argocd_block && (stage == "dev" || stage == "production")) {
            kept.push(line);
        }
    }
    project.write("helm-envs.yaml", &(kept.join("\n") + "\n"));
    git(project.root(), &["commit", "--quiet", "--all", "--message", "helm deploys dev and production"]);
    git(project.root(), &["push", "--quiet", &bare.display().to_string(), "HEAD:main"]);
    let head = git(project.root(), &["rev-parse", "HEAD"]).trim().to_string();
    let applied = ok(&project, &["argocd", "--apply"]);
    assert_eq!(applied.lines().count(), 1, "staging's Application only: {applied}");
    ok(&project, &["upgrade", "dev", "--yes"]);
    ok(&project, &["upgrade", "production", "--yes"]);
    until_synced(&project, &staging_app, &head);
    until_healthy(&project, "staging");

    // dev (helm) into staging (Argo CD): the source gate reads helm's record, the deploy is the
    // commit Argo CD runs.
    let dev = project.read("envs/dev/web.yaml") + "podAnnotations:\n  acme.example.com/release: \"2\"\n";
    project.write("envs/dev/web.yaml", &dev);
    ok(&project, &["upgrade", "dev", "--yes"]);
    let promoted = ok(&project, &["promote", "--from", "dev", "--to", "staging", "--git-commit", "--push", "--yes"]);
    assert!(promoted.contains("passed  source   dev is deployed and in sync with its config"), "{promoted}");
    let commit = git(project.root(), &["rev-parse", "HEAD"]).trim().to_string();
    assert!(promoted.contains(&format!("deployed  staging/web (Argo CD runs commit {})", &commit[..12])), "{promoted}");
    let annotation = "{.spec.template.metadata.annotations.acme\\.example\\.com/release}";
    assert_eq!(live(&project, "staging", &ns.staging, "deploy/web", annotation), "2");

    // staging (Argo CD) into production (helm): the source gate reads Argo CD's verdict, helm
    // deploys production.
    until_healthy(&project, "staging");
    let promoted = ok(&project, &["promote", "--from", "staging", "--to", "production", "--yes"]);
    assert!(promoted.contains("Argo CD runs staging's config"), "{promoted}");
    assert_eq!(live(&project, "production", &ns.production, "deploy/web", annotation), "2");
    let helm_releases = |stage: &str, namespace: &str| {
        let listed = project.helm(&["list", "--kube-context", stage, "--namespace", namespace, "--short"]).output();
        stdout_of(&listed.expect("helm")).trim().to_string()
    };
    assert_eq!(helm_releases("production", &ns.production), "web");
    assert_eq!(helm_releases("staging", &ns.staging), "", "Argo CD keeps no Helm release");
    for (stage, namespace, from) in [("staging", &ns.staging, "dev"), ("production", &ns.production, "staging")] {
        let recorded = events(&project, stage, namespace);
        assert!(recorded.iter().any(|e| e.0 == "Promoted" && e.2 == from), "{stage}: {recorded:?}");
    }
    // Each stage read through its own engine; nothing drifts where both ran the promotion.
    let status: Value = serde_json::from_str(&ok(&project, &["status", "-o", "json"])).expect("JSON");
    let web = |stage: usize| status["stages"][stage]["releases"][0].clone();
    assert!(web(0)["argocd"].is_null() && web(0)["revision"].is_u64(), "{:#}", web(0));
    assert_eq!((&web(1)["argocd"]["sync"], &web(1)["argocd"]["revision"]), (&json!("Synced"), &json!(commit)));
    assert!(web(2)["argocd"].is_null() && web(2)["revision"].is_u64(), "{:#}", web(2));
    for stage in ["staging", "production"] {
        let drift = run(&project, &["drift", "--stage", stage]);
        assert_eq!(drift.status.code(), Some(0), "{stage}: {}", stdout_of(&drift));
    }
}

/// When an Application's last sync operation started or ended (`startedAt`, `finishedAt`).
fn operation(project: &Project, name: &str, field: &str) -> String {
    let (context, _) = argocd();
    let path = format!("jsonpath={{.status.operationState.{field}}}");
    let out = project
        .kubectl(&["--context", &context, "--namespace", "argocd", "get", "application", name, "-o", &path])
        .output()
        .expect("kubectl runs");
    stdout_of(&out).trim().to_string()
}

/// Asks Argo CD to read the branch again now, as a Git webhook would, not when its revision
/// cache (3 minutes) expires.
fn refresh(project: &Project, application: &str) {
    let (context, _) = argocd();
    let refresh = ["--context", &context, "--namespace", "argocd", "annotate", "application", application];
    let refreshed =
        project.kubectl(&[&refresh[..], &["argocd.argoproj.io/refresh=hard", "--overwrite"]].concat()).output();
    assert!(refreshed.is_ok_and(|o| o.status.success()), "annotate {application}");
}
