//! Secrets are redacted by what they are, not by where a word appears: a value under a key
//! that names a credential, or one the chart renders into a Secret, never reaches any output,
//! commit message or pull-request body; a key that only names a Secret object, and the words of
//! helm's own messages, stay readable.

use crate::bad_input::fails;
use crate::harness::{Project, run, stderr_of, stdout_of};
use crate::promote::{git, git_repository};

/// Values that must never be printed: each stage's, under keys helm-envs cannot know by name
/// (`session.cookie`, which the chart puts into a Secret) and keys it knows (`signingKey`,
/// `bearer`, `password`).
const CANARIES: &[&str] = &[
    "canary-cookie-dev-4f1a",
    "canary-signing-dev-77ab",
    "canary-bearer-dev-99cd",
    "canary-password-dev-12ef",
    "canary-cookie-stg-5b2c",
    "canary-signing-stg-88de",
    "canary-bearer-stg-00ff",
    "canary-password-stg-34aa",
];

/// Two stages of a chart that keeps `session.*` in a Secret and can fail with a message naming
/// a resource built from a non-secret value (as a public monitoring chart's admission Job is).
fn project() -> Project {
    let project = Project::empty();
    project.write("chart/Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\n");
    project.write(
        "chart/templates/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app-session\nstringData:\n  cookie: {{ .Values.session.cookie | quote }}\n  \
         signing: {{ .Values.session.signingKey | quote }}\n",
    );
    project.write(
        "chart/templates/config.yaml",
        "{{- if .Values.failWith }}{{ fail (printf \"resource Job/%s/monitoring-kube-%s-admission-create not ready (bearer %s)\" \
         .Release.Namespace .Values.tlsSecretPerReplica.prefix .Values.auth.bearer) }}{{- end }}\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  prefix: {{ .Values.tlsSecretPerReplica.prefix | quote }}\n  \
         bearer: {{ .Values.auth.bearer | quote }}\n  password: {{ .Values.db.password | quote }}\n",
    );
    let stage = |name: &str, namespace: &str| {
        format!("  - name: {name}\n    kubeContext: {name}\n    namespace: {namespace}\n")
    };
    let pid = std::process::id();
    project.write(
        "helm-envs.yaml",
        &format!(
            "stages:\n{}{}releases:\n  - name: app\n    chart: chart\n    values: [\"envs/{{stage}}.yaml\"]\n",
            stage("dev", &format!("redact-{pid}-dev")),
            stage("staging", &format!("redact-{pid}-stg"))
        ),
    );
    project.write(
        "envs/dev.yaml",
        "session:\n  cookie: canary-cookie-dev-4f1a\n  signingKey: canary-signing-dev-77ab\nauth:\n  bearer: canary-bearer-dev-99cd\n\
         db:\n  password: canary-password-dev-12ef\ntlsSecretPerReplica:\n  prefix: prometheus\nfailWith: false\n",
    );
    project.write(
        "envs/staging.yaml",
        "session:\n  cookie: canary-cookie-stg-5b2c\n  signingKey: canary-signing-stg-88de\nauth:\n  bearer: canary-bearer-stg-00ff\n\
         db:\n  password: canary-password-stg-34aa\ntlsSecretPerReplica:\n  prefix: prometheus\nfailWith: false\n",
    );
    project
}

fn assert_no_canary(what: &str, text: &str) {
    for canary in CANARIES {
        assert!(!text.contains(canary), "{what} shows {canary}:\n{text}");
    }
}

#[test]
fn credentials_and_values_kept_in_secrets_never_reach_any_output_or_written_file() {
    let project = project();
    let mut outputs = Vec::new();
    for args in [
        &["drift"][..],
        &["drift", "--details"],
        &["drift", "-o", "json"],
        &["drift", "-o", "markdown"],
        &["diff", "--from", "dev", "--to", "staging"],
        &["diff", "--from", "dev", "--to", "staging", "-o", "json"],
        &["-v", "promote", "--from", "dev", "--to", "staging", "--dry-run", "--skip-source-check"],
        &["promote", "--from", "dev", "--to", "staging", "--dry-run", "--skip-source-check", "-o", "json"],
        &["promote", "--from", "dev", "--to", "staging", "--dry-run", "--skip-source-check", "-o", "markdown"],
    ] {
        let output = run(&project, args);
        outputs.push((args.join(" "), stdout_of(&output), stderr_of(&output)));
    }
    git_repository(&project);
    git(&project, &["add", "."]);
    git(&project, &["commit", "--quiet", "-m", "two stages"]);
    let body = project.path("pr-body.md");
    let args = ["promote", "--from", "dev", "--to", "staging", "--no-deploy", "--skip-source-check", "--git-commit"];
    let output = run(&project, &[&args[..], &["--pr-body", &body.display().to_string()]].concat());
    assert!(output.status.success(), "{}", stderr_of(&output));
    outputs.push(("promote --git-commit".into(), stdout_of(&output), stderr_of(&output)));
    let message = git(&project, &["log", "-1", "--format=%B"]);
    let pr_body = std::fs::read_to_string(&body).expect("the body is written");

    // The promotion carried every value (the files hold them), yet no output shows one.
    assert!(project.read("envs/staging.yaml").contains("canary-cookie-dev-4f1a"), "the promotion was made");
    for (command, stdout, stderr) in &outputs {
        assert_no_canary(&format!("`{command}` stdout"), stdout);
        assert_no_canary(&format!("`{command}` stderr"), stderr);
    }
    assert_no_canary("the commit message", &message);
    assert_no_canary("the pull-request body", &pr_body);
    // What is not a secret stays readable: a key naming a Secret object, and the change itself.
    let (_, markdown, _) = &outputs[8];
    assert!(markdown.contains("```diff\n"), "the changes are fenced as a diff (issue item 6): {markdown}");
    let (_, drift_details, _) = &outputs[1];
    assert!(drift_details.contains("session.cookie"), "the key is shown, not its value: {drift_details}");
    assert!(message.contains("session.cookie"), "{message}");
}

#[test]
fn helms_messages_keep_their_words_and_lose_only_the_secrets() {
    let project = project();
    project.write("envs/dev.yaml", &project.read("envs/dev.yaml").replace("failWith: false", "failWith: true"));
    let output = run(&project, &["render", "dev"]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("monitoring-kube-prometheus-admission-create not ready"),
        "a value under tlsSecretPerReplica is not a credential, and no word is cut out of a name: {stderr}"
    );
    assert!(stderr.contains("(bearer (redacted))"), "the credential is taken out: {stderr}");
    assert_no_canary("render's error", &stderr);
}

/// A template that prints a value in its `fail` message (helm's error) never shows a credential
/// of the stage's values files.
#[test]
fn credentials_in_helms_own_messages_are_redacted() {
    const PLANTED: &str = "hunter2-in-helm-output";
    let project = Project::example();
    project.write(
        "../../charts/acme-web/templates/guard.yaml",
        "{{- with .Values.db }}{{ fail (printf \"db.password %s is too short\" .password) }}{{- end }}\n",
    );
    let dev = project.read("envs/dev/web.yaml");
    project.write("envs/dev/web.yaml", &format!("{dev}\ndb:\n  password: {PLANTED}\n"));
    for args in
        [&["render", "dev", "--release", "web"][..], &["diff", "--from", "dev", "--to", "staging", "-o", "json"]]
    {
        let stderr = fails(&project, args);
        assert!(stderr.contains("db.password (redacted) is too short"), "{args:?}: {stderr}");
        assert!(!stderr.contains(PLANTED), "{args:?}: {stderr}");
    }
}
