//! Stages Argo CD deploys (issue 31): their Applications generated from the stages file,
//! applied with `helm envs argocd --apply`, and synced by the test bed's real Argo CD from a Git
//! repository (`scripts/testbed.sh up --argocd`): each stage's Pods run what its files say, a
//! change committed to one stage's files reaches that stage only, and helm keeps no record.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness::{Namespaces, Project, live, ok, provision, run, stderr_of, stdout_of};

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
    git(root, &["add", "--all"]);
    git(root, &["commit", "--quiet", "--message", "the acme platform"]);
    git(root, &["init", "--quiet", "--bare", &bare.display().to_string()]);
    git(root, &["push", "--quiet", &bare.display().to_string(), "HEAD:main"]);
    (project, ns, bare)
}

/// An Application's sync status, revision and health (`kubectl get application`).
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
            "jsonpath={.status.sync.status} {.status.sync.revision} {.status.health.status}",
        ])
        .output()
        .expect("kubectl runs");
    let text = stdout_of(&out);
    let mut fields = text.split(' ').map(str::to_string);
    (fields.next().unwrap_or_default(), fields.next().unwrap_or_default(), fields.next().unwrap_or_default())
}

/// Waits (3 minutes at most) until the Application is Synced at `revision`: Argo CD rendered
/// that commit and applied it. (Its health verdict is not waited for: on the test bed it stays
/// `Progressing` after the Pods are ready; issue 31's note says more.)
fn until_synced(project: &Project, name: &str, revision: &str) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (sync, at, _health) = application(project, name);
        if (sync.as_str(), at.as_str()) == ("Synced", revision) {
            return;
        }
        assert!(Instant::now() < deadline, "{name} is not Synced at {revision} after 3 minutes: {sync} at {at}");
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
    // As a Git webhook would: Argo CD reads the branch again now, not when its revision cache
    // (3 minutes) expires.
    let (context, _) = argocd();
    let app = format!("{prefix}web-dev");
    let refresh = ["--context", &context, "--namespace", "argocd", "annotate", "application", &app];
    let refreshed =
        project.kubectl(&[&refresh[..], &["argocd.argoproj.io/refresh=hard", "--overwrite"]].concat()).output();
    assert!(refreshed.is_ok_and(|o| o.status.success()), "annotate {app}");
    until_synced(&project, &app, &changed);
    until_ready(&project, "dev", &ns.dev, "2");
    // Staging follows the same branch: Argo CD may read the new commit for it, which changes
    // nothing of staging's (its Deployment is the one it deployed first).
    assert_eq!(live(&project, "staging", &ns.staging, "deploy/web", "{.metadata.generation}"), generation);
    assert_eq!(live(&project, "staging", &ns.staging, "deploy/web", "{.spec.replicas}"), "2", "staging unchanged");

    // A stage Argo CD does not deploy has no Application.
    let refused = run(&project, &["argocd", "nowhere"]);
    assert!(!refused.status.success());
}
