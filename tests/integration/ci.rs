//! The CI recipes of docs/ci.md (docs/ci/github-actions.yml, docs/ci/gitlab-ci.yml) parse, and
//! every `helm envs` command in them works as written: run by the shell, on a deployed copy of
//! the example, through the installed plugin.

use std::path::Path;

use serde_json::Value;

use crate::harness::{deployed_example, ok, plugins_with_this_build, repo, stderr_of, stdout_of};

fn recipe(name: &str) -> Value {
    let path = repo().join("docs/ci").join(name);
    let text = std::fs::read_to_string(&path).expect("recipe");
    Value::Object(std::sync::Arc::unwrap_or_clone(
        helm_envs::config::yaml::parse_values(&text, Path::new(name)).expect("the recipe is YAML"),
    ))
}

/// The shell lines of the recipe that run helm-envs.
fn helm_envs_lines(scripts: Vec<String>) -> Vec<String> {
    scripts
        .iter()
        .flat_map(|script| script.lines().map(str::trim).map(str::to_string).collect::<Vec<_>>())
        .filter(|line| line.starts_with("helm envs "))
        .collect()
}

#[test]
fn the_recipes_parse_and_every_helm_envs_command_in_them_works_as_written() {
    let github = recipe("github-actions.yml");
    let jobs = github["jobs"].as_object().expect("jobs");
    assert_eq!(jobs.keys().collect::<Vec<_>>(), ["deploy", "promote", "report"]);
    let mut scripts = Vec::new();
    for job in jobs.values() {
        assert!(job["runs-on"].is_string() && job["if"].is_string(), "{job}");
        for step in job["steps"].as_array().expect("steps") {
            assert!(step["uses"].is_string() || step["run"].is_string(), "{step}");
            scripts.extend(step["run"].as_str().map(str::to_string));
        }
    }
    let gitlab = recipe("gitlab-ci.yml");
    for job in ["helm-envs-report", "helm-envs-deploy"] {
        let lines = gitlab[job]["script"].as_array().unwrap_or_else(|| panic!("{job} has a script"));
        scripts.extend(lines.iter().filter_map(|l| l.as_str().map(str::to_string)));
        assert!(gitlab[job]["rules"].is_array(), "{job}");
    }
    let commands = helm_envs_lines(scripts);
    assert_eq!(commands.len(), 7, "{commands:#?}");

    let (project, _ns) = deployed_example("ci");
    // The promotion job runs in a clone: a git repository, dev ahead of staging.
    project.write("envs/dev/web.yaml", &(project.read("envs/dev/web.yaml") + "image:\n  tag: \"2.8.0\"\n"));
    ok(&project, &["upgrade", "dev", "--release", "web"]);
    for args in [&["init", "--quiet", "--initial-branch", "main"][..], &["add", "."]] {
        assert!(
            std::process::Command::new("git").args(args).current_dir(&project.dir).status().expect("git").success()
        );
    }
    let commit = ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "start"];
    assert!(std::process::Command::new("git").args(commit).current_dir(&project.dir).status().expect("git").success());
    let plugins = plugins_with_this_build();
    let temp = tempfile::tempdir().expect("temp dir");
    for command in &commands {
        let output = project
            .shell(&format!("set -e\n{command}"))
            .env("HELM_PLUGINS", plugins.path())
            .env("RUNNER_TEMP", temp.path())
            .env("FROM", "dev")
            .env("TO", "staging")
            // The recipe's `git config user.name/user.email` line, which this test does not run.
            .env("GIT_AUTHOR_NAME", "helm-envs")
            .env("GIT_AUTHOR_EMAIL", "helm-envs@example.com")
            .env("GIT_COMMITTER_NAME", "helm-envs")
            .env("GIT_COMMITTER_EMAIL", "helm-envs@example.com")
            .output()
            .expect("sh runs");
        assert!(output.status.success(), "`{command}` failed:\n{}\n{}", stdout_of(&output), stderr_of(&output));
    }
    let drift = std::fs::read_to_string(temp.path().join("drift.md")).expect("drift.md");
    assert!(drift.starts_with("### helm envs drift\n"), "{drift}");
    let promote: Value =
        serde_json::from_str(&std::fs::read_to_string(temp.path().join("promote.json")).expect("promote.json"))
            .expect("JSON");
    assert!(
        promote["pullRequest"]["title"].as_str().is_some_and(|t| t.starts_with("Promote dev to staging")),
        "{promote}"
    );
    assert!(std::fs::read_to_string(temp.path().join("pr.md")).expect("pr.md").contains("<details>"));
}
