//! `-o markdown`: reports a pull request can show, with a summary table, a collapsible section
//! per stage or release, Secrets masked, and a size limit that drops whole sections and says
//! how to see them.

use crate::harness::{deployed_example, kubectl_ok, run, stdout_of};

#[test]
fn diff_drift_status_and_check_secrets_as_markdown_within_a_size_limit() {
    let (project, ns) = deployed_example("markdown");
    // A change in dev, with a credential-like value the report must not show.
    let dev = project.read("envs/dev/web.yaml");
    project.write("envs/dev/web.yaml", &format!("{dev}\nimage:\n  tag: \"2.8.0\"\nsmtp:\n  password: hunter2\n"));

    let diff = run(&project, &["diff", "dev", "-o", "markdown", "--detailed-exitcode"]);
    assert_eq!(diff.status.code(), Some(2), "the exit code is the format's too");
    let text = stdout_of(&diff);
    assert!(text.starts_with("### helm envs diff dev: what a deploy of dev changes\n"), "{text}");
    assert!(text.contains("| Release | Namespace | Add | Change | Destroy | Unchanged |"), "{text}");
    assert!(text.contains(&format!("| web | {} | 0 | 1 | 0 |", ns.dev)), "{text}");
    assert!(text.contains("<details><summary>web</summary>") && text.contains("```diff\n"), "{text}");
    assert!(!text.contains("<details><summary>worker</summary>"), "unchanged releases have no section: {text}");
    assert!(!text.contains("hunter2"), "credentials stay masked: {text}");

    let limited = stdout_of(&run(&project, &["diff", "dev", "-o", "markdown", "--max-size", "700"]));
    assert!(limited.chars().count() <= 700, "{}", limited.len());
    assert!(limited.contains("**1 section not shown** to keep this report under 700 characters"), "{limited}");
    assert!(limited.contains("`helm envs diff dev --release web`"), "{limited}");

    let between = stdout_of(&run(&project, &["diff", "--from", "staging", "--to", "production", "-o", "markdown"]));
    assert!(between.contains("| Release | Namespace | Undocumented | Documented |"), "{between}");
    // Cut for size, a release that differs outside envSpecific (web, dev's new image) is kept
    // over a larger or smaller one that differs only as documented (worker).
    let full = stdout_of(&run(&project, &["diff", "--from", "dev", "--to", "staging", "-o", "markdown"]));
    assert!(full.contains("<summary>web</summary>") && full.contains("<summary>worker</summary>"), "{full}");
    let limit = (full.chars().count() - 10).to_string();
    let cut = stdout_of(&run(
        &project,
        &["diff", "--from", "dev", "--to", "staging", "-o", "markdown", "--max-size", &limit],
    ));
    assert!(cut.contains("<summary>web</summary>") && !cut.contains("<summary>worker</summary>"), "{cut}");
    assert!(cut.contains("`helm envs diff --from dev --to staging --release worker`"), "{cut}");

    // Drift: dev's config is not what dev runs (the change above is not deployed).
    let drift = run(&project, &["drift", "-o", "markdown"]);
    assert_eq!(drift.status.code(), Some(2));
    let text = stdout_of(&drift);
    assert!(text.starts_with("### helm envs drift\n"), "{text}");
    assert!(text.contains("| Stage | Context | Drift | Findings |"), "{text}");
    assert!(text.contains("| dev | dev | ") && text.contains("manifest 1"), "{text}");
    assert!(text.contains("<details><summary>dev ("), "{text}");
    assert!(text.contains("`helm envs drift --stage dev --details`") || !text.contains("not shown"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");

    let status = stdout_of(&run(&project, &["status", "-o", "markdown"]));
    assert!(
        status.contains("| Stage | Release | Revision | Chart | Status | Ready | Config | Last promotion |"),
        "{status}"
    );
    assert!(status.contains("| production | web | 1 | acme-web-1.4.2 | deployed | 3/3 | in sync |"), "{status}");

    kubectl_ok(&project, &["--context", "production", "--namespace", &ns.production, "delete", "secret", "acme-db"]);
    let secrets = run(&project, &["check-secrets", "--all", "-o", "markdown"]);
    assert_eq!(secrets.status.code(), Some(3));
    let text = stdout_of(&secrets);
    assert!(text.contains("| production | Secrets are missing | 1 | 0 |"), "{text}");
    assert!(text.contains("<details><summary>production: Secrets are missing</summary>"), "{text}");
    assert!(text.contains("acme-db"), "{text}");
}
