//! The errors users see: what failed, where, why, and the fix.

use std::path::PathBuf;

mod diagnostic;
mod manifest;

pub use diagnostic::Diagnostic;
pub use manifest::ManifestError;

/// Exit code for any error (design.md: 0 ok, 1 error, 2 differences, 3 gate refused).
pub const EXIT_ERROR: u8 = 1;
/// Exit code when differences were found and the user asked to be told (`--detailed-exitcode`).
pub const EXIT_DIFFERENCES: u8 = 2;
/// Exit code when a gate refused: approval missing, Secret missing, wrong cluster.
pub const EXIT_GATE: u8 = 3;

/// Every error the library reports; `anyhow` is used inside for context.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no helm-envs.yaml found in {} or any parent directory", start.display())]
    ConfigNotFound { start: PathBuf, searched: Vec<PathBuf> },

    #[error("{} is not valid", file.display())]
    Invalid { file: PathBuf, diagnostics: Vec<Diagnostic> },

    #[error("unknown stage `{name}`")]
    UnknownStage { name: String, known: Vec<String> },

    #[error("{}", match name {
        Some(name) => format!("stage `{stage}` has no cluster `{name}`"),
        None => format!("stage `{stage}` is on several clusters: say which"),
    })]
    UnknownCluster { stage: String, name: Option<String>, known: Vec<String> },

    #[error("unknown release `{name}`")]
    UnknownRelease { name: String, known: Vec<String> },

    #[error("helm was not found")]
    HelmNotFound { searched: String },

    #[error("{0}")]
    Helm(Box<HelmFailure>),

    #[error("helm {version} is not supported")]
    UnsupportedHelm { bin: PathBuf, version: String },

    #[error("kubectl was not found")]
    KubectlNotFound { searched: String },

    #[error("{0}")]
    Kubectl(Box<KubectlFailure>),

    /// Rendered or deployed manifests that are not Kubernetes objects.
    #[error("{origin} is not a valid set of Kubernetes manifests")]
    Manifest { origin: String, error: ManifestError, help: String },

    #[error("{} of {} helm commands failed", failures.len(), total)]
    Several { failures: Vec<Error>, total: usize },

    /// A gate refused (approval missing, Secret missing, wrong cluster, ...): exit 3.
    #[error("{headline}")]
    Refused { headline: String, details: Vec<Detail> },

    /// Another helm-envs run holds the project's lock.
    #[error("another helm-envs run is changing this project")]
    Locked { lock: PathBuf, holder: String },

    /// A step that failed with its own explanation (a deploy, an edit that cannot be made).
    #[error("{headline}")]
    Failed { headline: String, details: Vec<Detail> },

    /// `exec`'s command could not be started: exit 127 (not found) or 126, as shells report it.
    #[error("{headline}")]
    NotStarted { headline: String, details: Vec<Detail>, code: u8 },

    /// A signal stopped the run (Ctrl-C, SIGTERM, SIGHUP): exit 128 + the signal.
    #[error("interrupted ({})", signal_name(*signal))]
    Interrupted { signal: i32, details: Vec<Detail> },

    /// A command line that asks for something the command cannot do.
    #[error("{0}")]
    Usage(Usage),

    /// A file or directory that could not be read or written; `what` says which and what for.
    #[error("{what}")]
    Io { what: String, source: std::io::Error },

    /// Stages whose clusters could not be read, after a report that says why for each.
    #[error("{what}")]
    StagesUnread { what: String },

    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The mistakes a command line can make that clap cannot see.
#[derive(Debug, thiserror::Error)]
pub enum Usage {
    #[error("--from and --to are both `{0}`; name two different stages")]
    SameStageTwice(String),
    #[error("--git-commit writes a commit; it cannot be combined with --dry-run")]
    CommitInDryRun,
    /// `argument`: the flag, with the value when it helps (`--only \`image..tag\``).
    #[error("invalid {argument}: {why}")]
    InvalidArgument { argument: String, why: String },
    #[error(
        "name the stage to diff (`helm envs diff dev`), or two stages to compare (`helm envs diff --from dev --to staging`)"
    )]
    NoStageToDiff,
}

impl Error {
    /// For `map_err` on an I/O result: `what` is the failure as the user reads it ("cannot read
    /// the values file envs/dev/web.yaml"); the operating system's reason goes under it.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Refused { .. } => EXIT_GATE,
            Error::NotStarted { code, .. } => *code,
            Error::Interrupted { signal, .. } => u8::try_from(128 + signal).unwrap_or(EXIT_ERROR),
            _ => EXIT_ERROR,
        }
    }

    /// The error with `more` details under it, keeping what it is for the exit code: a refusal
    /// stays a refusal, an interrupt an interrupt; anything else becomes a failure with its own
    /// headline and details.
    pub fn with_details(self, more: impl IntoIterator<Item = Detail>) -> Error {
        match self {
            Error::Refused { headline, mut details } => {
                details.extend(more);
                Error::Refused { headline, details }
            }
            Error::Interrupted { signal, mut details } => {
                details.extend(more);
                Error::Interrupted { signal, details }
            }
            other => {
                let headline = other.to_string();
                let mut details = other.details();
                details.extend(more);
                Error::Failed { headline, details }
            }
        }
    }

    /// The headline and the last line helm or kubectl printed, on one line: why a stage could not
    /// be read, in a report that goes on with the other stages.
    pub fn one_line(&self) -> String {
        fn last_output(details: Vec<Detail>) -> Option<String> {
            details.into_iter().find_map(|detail| match detail {
                Detail::Output(text) => text.lines().rev().find(|l| !l.trim().is_empty()).map(|l| l.trim().to_string()),
                Detail::Nested(_, details) => last_output(details),
                _ => None,
            })
        }
        match last_output(self.details()) {
            Some(line) => format!("{self}: {}", line.trim_start_matches("Error: ")),
            None => self.to_string(),
        }
    }

    /// Whether helm or kubectl could not reach the stage's cluster at all (no kubeconfig, an
    /// unknown context, nothing listening), as opposed to the cluster answering with an error.
    pub fn is_unreachable(&self) -> bool {
        const SIGNS: &[&str] = &[
            "cluster unreachable",
            "connection refused",
            "no such host",
            "i/o timeout",
            "does not exist",
            "no configuration has been provided",
        ];
        let says = |stderr: &str| {
            let stderr = stderr.to_ascii_lowercase();
            SIGNS.iter().any(|sign| stderr.contains(sign))
        };
        match self {
            Error::Helm(failure) => says(&failure.stderr),
            Error::Kubectl(failure) => says(&failure.stderr),
            Error::Several { failures, .. } => failures.iter().all(Error::is_unreachable),
            _ => false,
        }
    }

    /// Explanation and fix, printed under the headline.
    pub fn details(&self) -> Vec<Detail> {
        match self {
            Error::ConfigNotFound { searched, .. } => vec![
                Detail::Note(format!(
                    "looked for helm-envs.yaml in: {}",
                    searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
                )),
                Detail::Help("run from the project directory, or pass --config PATH".into()),
            ],
            Error::Invalid { diagnostics, .. } => diagnostics.iter().cloned().map(Detail::Diagnostic).collect(),
            Error::UnknownStage { known, .. } => {
                vec![Detail::Help(format!("the stages file defines: {}", known.join(", ")))]
            }
            Error::UnknownCluster { known, .. } if known.is_empty() => {
                vec![Detail::Help("the stage is on one cluster (its kubeContext): leave --cluster out".into())]
            }
            Error::UnknownCluster { known, .. } => {
                vec![Detail::Help(format!("its clusters are: {} (--cluster NAME)", known.join(", ")))]
            }
            Error::UnknownRelease { known, .. } => {
                vec![Detail::Help(format!("the stages file defines the releases: {}", known.join(", ")))]
            }
            Error::HelmNotFound { searched } => vec![
                Detail::Note(format!("looked at {searched}")),
                Detail::Help(
                    "install helm, 4 or 3 (https://helm.sh/docs/intro/install/), \
                     put it on PATH or set HELM_BIN to its path"
                        .into(),
                ),
            ],
            Error::UnsupportedHelm { bin, .. } => vec![
                Detail::Note(format!("{} is that version", bin.display())),
                Detail::Help("helm-envs runs with Helm 3 or Helm 4: put one of them on PATH or set HELM_BIN".into()),
            ],
            Error::Helm(failure) => failure.details(),
            Error::KubectlNotFound { searched } => vec![
                Detail::Note(format!("looked at {searched}")),
                Detail::Help(
                    "install kubectl (https://kubernetes.io/docs/tasks/tools/, or `scripts/testbed.sh install` \
                     in this repository), put it on PATH or set HELM_ENVS_KUBECTL to its path"
                        .into(),
                ),
            ],
            Error::Kubectl(failure) => failure.details(),
            Error::Manifest { error, help, .. } => {
                let template = error.template.as_deref().unwrap_or("the rendered output");
                vec![
                    Detail::Note(format!("{template} (line {} of the output): {}", error.line, error.message)),
                    Detail::Help(help.clone()),
                ]
            }
            Error::Several { failures, .. } => {
                failures.iter().map(|f| Detail::Nested(f.to_string(), f.details())).collect()
            }
            Error::Refused { details, .. }
            | Error::Failed { details, .. }
            | Error::NotStarted { details, .. }
            | Error::Interrupted { details, .. } => details.clone(),
            Error::Locked { lock, holder } => vec![
                Detail::Note(format!("{} is locked by {holder}", lock.display())),
                Detail::Help(
                    "wait for that run to finish; promotions, upgrades and applies of one project run one at a time"
                        .into(),
                ),
            ],
            // The message itself says what would be right.
            Error::Usage(_) => Vec::new(),
            Error::Io { source, .. } => vec![Detail::Cause(source.to_string())],
            Error::StagesUnread { .. } => vec![Detail::Help(
                "check the stages' kube contexts (`kubectl config get-contexts`); the reasons are above".into(),
            )],
            Error::Other(err) => err.chain().skip(1).map(|cause| Detail::Cause(cause.to_string())).collect(),
        }
    }
}

/// The help for a kubeconfig credential plugin (`exec`: a cloud CLI, `kubelogin`) that failed:
/// the cluster was never asked, so "does not reach a cluster" would send the user the wrong way.
fn credential_failure(stderr: &str, context: Option<&str>) -> Option<Detail> {
    if !stderr.contains("getting credentials") {
        return None;
    }
    let context = context.map_or("the current context".to_string(), |c| format!("context `{c}`"));
    Some(Detail::Help(format!(
        "the credential plugin of {context} failed (helm's message above says why): log in again, or check the \
         `exec` command of its user in your kubeconfig; the cluster itself was not asked"
    )))
}

/// A signal's name, for messages.
pub fn signal_name(signal: i32) -> &'static str {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// A helm command that exited with an error.
#[derive(Debug, thiserror::Error)]
#[error("helm {action} failed for stage `{stage}`{}", release.as_ref().map(|r| format!(", release `{r}`")).unwrap_or_default())]
pub struct HelmFailure {
    pub action: &'static str,
    pub stage: String,
    pub release: Option<String>,
    /// The stage's kube context (`None`: the kubeconfig's current context).
    pub context: Option<String>,
    pub command: String,
    pub stderr: String,
}

impl HelmFailure {
    /// helm's message, and the fix for the failures whose cause is known.
    fn details(&self) -> Vec<Detail> {
        let HelmFailure { command, stderr, context, .. } = self;
        let mut details =
            vec![Detail::Note(format!("command: {command}")), Detail::Output(stderr.trim_end().to_string())];
        if let Some(help) = credential_failure(stderr, context.as_deref()) {
            details.push(help);
        } else if stderr.contains("cluster unreachable") || stderr.contains("connection refused") {
            let context = context.as_deref().map_or("the current context".to_string(), |c| format!("`{c}`"));
            details.push(Detail::Help(format!(
                "the stage's kube context {context} does not reach a cluster: check it with \
                 `kubectl config get-contexts` and `kubectl --context <name> cluster-info`"
            )));
        }
        if stderr.contains("another operation (install/upgrade/rollback) is in progress") {
            let release = self.release.as_deref().unwrap_or("RELEASE");
            let context = context.as_deref().map(|c| format!(" --kube-context {c}")).unwrap_or_default();
            let namespace = self
                .command
                .split(" --namespace ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .unwrap_or("NAMESPACE");
            details.push(Detail::Help(format!(
                "release `{release}` is in a pending state: another helm run is working on it now (another \
                 CI job or person), or one was killed while it worked and left it stuck. If a run is working on \
                 it, wait for it to end and run again. Once no helm process is working on it, see its revisions with `helm history {release} \
                 --namespace {namespace}{context}` and roll back to the last `deployed` one: `helm rollback \
                 {release} REVISION --namespace {namespace}{context}` (a first install that never completed: \
                 `helm uninstall {release} --namespace {namespace}{context}`); then run helm-envs again"
            )));
        }
        if stderr.contains("missing in charts/ directory") {
            details.push(Detail::Help(
                "the chart's dependencies are not vendored in its charts/ directory: run `helm dependency \
                 build CHART_DIR` and commit the result; helm-envs deploys exactly the charts in the \
                 repository and does not fetch dependencies itself"
                    .into(),
            ));
        }
        details
    }
}

/// A kubectl command that exited with an error.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.headline())]
pub struct KubectlFailure {
    /// What it was for: "list Secrets".
    pub action: &'static str,
    pub stage: String,
    pub context: Option<String>,
    pub namespace: String,
    pub command: String,
    pub stderr: String,
}

impl KubectlFailure {
    fn context_name(&self) -> String {
        self.context.as_deref().map_or("the current context".to_string(), |c| format!("context `{c}`"))
    }

    pub fn is_forbidden(&self) -> bool {
        self.stderr.contains("Forbidden") || self.stderr.contains("forbidden")
    }

    fn headline(&self) -> String {
        let why = if self.is_forbidden() { "permission denied: " } else { "" };
        format!(
            "{why}kubectl could not {} in namespace `{}` of stage `{}` ({})",
            self.action,
            self.namespace,
            self.stage,
            self.context_name()
        )
    }

    fn details(&self) -> Vec<Detail> {
        let mut details = vec![
            Detail::Note(format!("command: {}", self.command)),
            Detail::Output(self.stderr.trim_end().to_string()),
        ];
        let context = self.context_name();
        if let Some(help) = credential_failure(&self.stderr, self.context.as_deref()) {
            details.push(help);
        } else if self.is_forbidden() {
            details.push(Detail::Help(format!(
                "the credentials of {context} may not list Secrets in `{}`; helm-envs reads only their names and \
                 key names, and needs a Role granting `list` on `secrets` there",
                self.namespace
            )));
        } else if self.stderr.contains("does not exist") && self.stderr.contains("context") {
            details.push(Detail::Help(format!(
                "{context} of stage `{}` is not in your kubeconfig; `kubectl config get-contexts` lists the ones you have",
                self.stage
            )));
        } else if ["Unable to connect", "connection refused", "was refused", "no such host", "i/o timeout"]
            .iter()
            .any(|m| self.stderr.contains(m))
        {
            details.push(Detail::Help(format!(
                "the cluster of {context} does not answer: check it with `kubectl{} cluster-info`",
                self.context.as_deref().map(|c| format!(" --context {c}")).unwrap_or_default()
            )));
        }
        details
    }
}

/// One line (or block) of explanation under an error headline.
#[derive(Debug, Clone)]
pub enum Detail {
    Diagnostic(Diagnostic),
    Note(String),
    Help(String),
    Cause(String),
    /// Another program's output, shown indented and verbatim.
    Output(String),
    Nested(String, Vec<Detail>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
