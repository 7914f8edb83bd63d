//! The command line itself: help with examples, version, completion.

use crate::harness::{Project, stdout_of};

#[test]
fn every_command_has_help_with_an_example() {
    let project = Project::example();
    for command in ["list", "render", "completion"] {
        let output = project.helm_envs(&[command, "--help"]).output().expect("runs");
        assert!(output.status.success());
        let help = stdout_of(&output);
        assert!(help.contains("Examples:"), "`{command} --help` has no example:\n{help}");
        assert!(
            help.contains(&format!("helm envs {command}")) || help.contains(&format!("helm-envs {command}")),
            "{help}"
        );
    }
}

#[test]
fn version_is_the_crate_version() {
    let output = Project::empty().helm_envs(&["--version"]).output().expect("runs");
    assert_eq!(stdout_of(&output), format!("helm-envs {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn completion_scripts_for_each_shell() {
    let project = Project::empty();
    for (shell, marker) in
        [("bash", "-o default helm-envs"), ("zsh", "#compdef helm-envs"), ("fish", "complete -c helm-envs")]
    {
        let output = project.helm_envs(&["completion", shell]).output().expect("runs");
        assert!(output.status.success());
        let script = stdout_of(&output);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("render"), "{shell} completes subcommands");
    }
}
