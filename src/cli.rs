//! Command-line definitions (clap). Behaviour lives in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "helm-envs",
    version,
    about = "Run the same Helm releases through development, staging and production",
    long_about = "Run the same Helm releases through development, staging and production.\n\n\
        helm-envs reads helm-envs.yaml (the stages, the releases and their values files), renders \
        each stage with helm, and keeps every helm call on the stage's own kube context and namespace.",
    after_help = "Examples:\n  helm envs list\n  helm envs render staging\n  helm envs render production --release web\n\n\
        Runs as a Helm plugin (helm envs ...) or standalone (helm-envs ...)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The stages file [default: helm-envs.yaml in the current directory or its nearest parent]
    #[arg(long, global = true, value_name = "PATH", env = "HELM_ENVS_CONFIG")]
    pub config: Option<PathBuf>,

    /// Print every helm command helm-envs runs (to stderr)
    #[arg(long, short, global = true)]
    pub verbose: bool,

    /// When to use colors
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// How many helm and kubectl processes run at once [default: 4 per core, 4 to 32]
    #[arg(long, short = 'j', global = true, value_name = "N", env = "HELM_ENVS_JOBS",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ColorChoice {
    /// Color on a terminal, unless NO_COLOR is set
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show every stage and release as resolved: context, namespace, chart, version, values files,
    /// needs, and the order a stage deploys its releases in
    #[command(after_help = "Examples:\n  helm envs list\n  helm envs list -o json | jq '.stages[].namespace'")]
    List(ListArgs),

    /// Render a stage's releases with helm template (releases render in parallel)
    #[command(
        after_help = "Examples:\n  helm envs render dev\n  helm envs render staging --release web > staging-web.yaml\n\n\
        The output is exactly what `helm template` prints for each release, in the order of the\n\
        stages file; `--verbose` shows the helm commands."
    )]
    Render(RenderArgs),

    /// Show what a deploy would change (live release against config), or how two stages differ
    #[command(
        after_help = "Examples:\n  helm envs diff dev\n  helm envs diff production --release web --detailed-exitcode\n  \
        helm envs diff --from dev --to staging\n  helm envs diff staging -o json | jq '.releases[].plan'\n  \
        helm envs diff dev --ignore metadata.labels.helm.sh/chart\n\n\
        `diff STAGE` compares each release as installed (helm get: manifest and hooks) with the config\n\
        rendered against the stage's cluster. `diff --from A --to B` renders both stages and splits\n\
        their differences into undocumented ones (what promoting A into B would carry) and documented\n\
        ones (envSpecific values and the stages' own settings).\n\n\
        Secret data is never shown, only which keys changed and their sizes, unless --show-secrets.\n\n\
        Exit codes: 0 success; 1 error; with --detailed-exitcode, 2 when there are changes (between\n\
        stages: undocumented differences)."
    )]
    Diff(DiffArgs),

    /// Check that every Secret the rendered manifests reference exists in the stage's namespace
    #[command(after_help = "Examples:\n  helm envs check-secrets staging\n  helm envs check-secrets --all -o json\n\n\
        References come from pod templates (env secretKeyRef, envFrom secretRef, secret and projected\n\
        volumes, CSI nodePublishSecretRef, imagePullSecrets), ServiceAccounts, Ingress TLS and\n\
        ingress-nginx auth annotations. A reference is satisfied by a Secret that a release of the\n\
        stage renders into the namespace (or a Certificate, SealedSecret, ExternalSecret, or an Ingress\n\
        cert-manager issues for), or by one in the cluster with the key it reads. The cluster is asked\n\
        once per context and namespace, for Secret names and key names only: values are never read.\n\n\
        Exit codes: 0 all present; 3 something missing; 1 error.")]
    CheckSecrets(CheckSecretsArgs),

    /// Check that stages are kept apart: stages sharing a cluster need, in each of their
    /// namespaces, a NetworkPolicy keeping the other stages' namespaces out and a ResourceQuota;
    /// a stage with `isolation: cluster` must not share its cluster
    #[command(
        after_help = "Examples:\n  helm envs check-isolation --all\n  helm envs check-isolation production -o json\n\n\
        Stages share a cluster when their contexts reach the same kube-system namespace (UID). A stage\n\
        with `isolation` set in the stages file has this check as a gate before every deploy.\n\n\
        Exit codes: 0 isolated; 3 something missing; 1 error."
    )]
    CheckIsolation(CheckIsolationArgs),

    /// Print the Argo CD Applications of the stages Argo CD deploys (`argocd:` on a stage),
    /// generated from the stages file; --apply writes them into Argo CD's cluster
    #[command(
        after_help = "Examples:\n  helm envs argocd\n  helm envs argocd staging --release web\n  helm envs argocd --apply\n\n\
        One Application per stage and release: the chart, the values files in the stages file's order,\n\
        the stage's cluster and namespace, the repository and revision Argo CD follows. Applied\n\
        server-side as field manager helm-envs, into the `argocd.context` cluster."
    )]
    Argocd(ArgocdArgs),

    /// Promote one stage's values into the next: show the patch and what the deploy changes,
    /// pass the gates, write the target's values files, deploy it
    #[command(after_help = "Examples:\n  helm envs promote --from dev --to staging\n  \
        helm envs promote --from dev --to staging --dry-run\n  \
        helm envs promote --from staging --to production --yes\n  \
        helm envs promote --from dev --to staging --only image.tag --no-deploy --git-commit\n\n\
        The patch is every difference between the stages' own values files (and chart versions) outside\n\
        envSpecific. It is written into the target's own values files, keeping comments and formatting;\n\
        chart versions into the stages file. Gates, all before anything is written: only the next stage\n\
        (--allow-skip), the source deployed and in sync (--skip-source-check), the target's clusterId,\n\
        its Secrets, and approval where the target requires it. If the deploy or a verify command fails,\n\
        the files are restored.\n\n\
        Exit codes: 0 promoted (or nothing to promote); 1 error (files restored); 3 a gate refused.")]
    Promote(PromoteArgs),

    /// Deploy a stage's current config (helm upgrade --install per release), behind the gates
    #[command(
        after_help = "Examples:\n  helm envs upgrade dev\n  helm envs upgrade production --release web --yes\n  \
        helm envs upgrade staging --dry-run\n\n\
        Releases whose deployed manifest already equals their config are left alone. Gates: the stage's\n\
        clusterId, its Secrets, approval where required.\n\n\
        Exit codes: 0 deployed (or nothing to do); 1 error; 3 a gate refused."
    )]
    Upgrade(UpgradeArgs),

    /// Deploy every stage in order, each behind its gates; stop at the first failure
    #[command(after_help = "Examples:\n  helm envs apply --dry-run\n  helm envs apply --yes\n\n\
        Exit codes: 0 every stage deployed (or nothing to do); 1 a deploy failed; 3 a gate refused.")]
    Apply(ApplyArgs),

    /// Find drift: undocumented differences between neighbouring stages, version skew, components
    /// in one stage only, and each stage's cluster against its config
    #[command(after_help = "Examples:\n  helm envs drift\n  helm envs drift --details\n  \
        helm envs drift --live --stage production\n  helm envs drift -o json | jq '.findings[] | select(.kind == \"values\")'\n\n\
        Between neighbouring stages (each stage against the one before it): value paths that differ\n\
        outside envSpecific (with which stage changed them last, from git), chart versions and images that\n\
        differ, resources rendered in one stage only. In each stage's cluster: releases missing or not\n\
        `deployed`, another chart version deployed, values set by hand (`helm upgrade --set`), a deployed\n\
        manifest that is not the config, missing Secrets; with --live, objects edited in the cluster\n\
        (kubectl edit/scale/set), from a server-side dry run of the release's manifest. Documented\n\
        differences (envSpecific) are shown with --documented and are not drift.\n\n\
        A stage whose cluster cannot be reached is reported as not checked; the others still are.\n\n\
        Exit codes: 0 no drift; 2 drift found; 1 error (or no stage's cluster could be checked).")]
    Drift(DriftArgs),

    /// Show each stage's releases: revision, chart and app version, status, last deployed, in sync
    /// with the config or not, and the promotion they came from
    #[command(after_help = "Examples:\n  helm envs status\n  helm envs status --stage production -o json\n\n\
        Every query runs in parallel. A release that was never deployed shows as such.\n\n\
        Exit codes: 0 shown (whether in sync or not); 1 error (or no stage could be read).")]
    Status(StatusArgs),

    /// Run an existing release script (or any command) with a stage's context in its environment,
    /// optionally behind upgrade's gates; its exit status is passed through
    #[command(after_help = "Examples:\n  helm envs exec staging -- ./deploy.sh staging\n  \
        helm envs exec production --gated -- ./deploy.sh production\n  \
        helm envs exec dev --release web -- sh -c 'helm get values \"$HELM_ENVS_RELEASE\"'\n\n\
        The command runs in the current directory, without a shell, with:\n  \
        HELM_ENVS_STAGE     the stage\n  \
        HELM_KUBECONTEXT    its kube context (unset for `kubeContext: current`)\n  \
        HELM_NAMESPACE      its namespace (the release's, with --release or a single release)\n  \
        KUBECONFIG          the kubeconfig helm-envs uses, absolute\n  \
        HELM_ENVS_RELEASES  the selected releases, one per line\n\
        and, with --release or when the project has one release:\n  \
        HELM_ENVS_RELEASE   the release\n  \
        HELM_ENVS_CHART     its chart (an absolute path, repo/chart or oci://)\n  \
        HELM_ENVS_VERSION   its chart version for the stage (empty when not pinned)\n  \
        HELM_ENVS_VALUES    its values files in merge order, absolute, one per line\n\
        HELM_* variables the caller set for another cluster or namespace are removed.\n\n\
        Under `helm envs exec`, Helm 3 removes its own global flags (-n/--namespace, --kube-context,\n\
        --kubeconfig, --debug, ...) from the arguments, even after `--`; use `helm-envs exec` (the\n\
        standalone binary) or a script for commands that take such flags.\n\n\
        --gated first passes upgrade's gates: the stage's clusterId, the Secrets its config references,\n\
        and approval where the stage requires it (asked whether or not the config would change anything).\n\n\
        Exit codes: the command's own (128 + N when killed by signal N); 127 command not found;\n\
        126 not executable; 3 a gate refused (the command did not run); 1 error before the command ran.")]
    Exec(ExecArgs),

    /// Write a helm-envs.yaml for the chart and values layout of the current directory
    #[command(after_help = "Examples:\n  helm envs init\n  helm envs init --force\n\n\
        Recognised layouts (per chart; the one naming the most stages is used):\n  \
        values-<stage>.yaml or values.<stage>.yaml   in the chart's directory or beside it\n  \
        envs/<stage>/values.yaml                    (envs/<stage>/<release>.yaml with several charts)\n  \
        <stage>/values.yaml                         (<stage>/<release>.yaml with several charts)\n  \
        <chart>/ci/<stage>-values.yaml              chart-testing's ci/ values\n\
        A values.yaml beside the chart directory, and files named common, shared or base in place of a\n\
        stage, are shared by every stage. Stages are ordered by their names (dev, qa, staging, prod).\n\
        A kube context is filled in when exactly one kubeconfig context is named like the stage;\n\
        namespaces are guessed. Nothing is asked: what to check and fill in is printed and marked\n\
        TODO in the file. Values that differ between the stages today are listed in envSpecific,\n\
        except image tags and versions, which promotions carry.\n\n\
        Exit codes: 0 written; 1 nothing recognised, or the file exists (without --force).")]
    Init(InitArgs),

    /// Print the JSON Schema of the stages file, for editors and CI validation
    #[command(after_help = "Examples:\n  helm envs schema > helm-envs.schema.json\n\n\
        Then, as the first line of helm-envs.yaml, for editors with yaml-language-server (VS Code's\n\
        YAML extension, Neovim, Helix, ...):\n  \
        # yaml-language-server: $schema=./helm-envs.schema.json\n\n\
        The schema covers the file's structure (keys, types, names); helm-envs itself also checks\n\
        what a schema cannot: files that must exist, duplicate stages, envSpecific paths.")]
    Schema,

    /// Completion candidates for Helm's dynamic plugin completion (plugin.complete)
    #[command(name = "__complete", hide = true)]
    Complete(CompleteArgs),

    /// Print a shell completion script
    #[command(after_help = "Examples:\n  helm-envs completion bash > /etc/bash_completion.d/helm-envs\n  \
        helm-envs completion zsh > \"${fpath[1]}/_helm-envs\"\n  helm-envs completion fish > ~/.config/fish/completions/helm-envs.fish")]
    Completion(CompletionArgs),
}

impl Command {
    /// `--show-secrets`, or a command whose output is the manifests themselves (`render`):
    /// stdout shows secrets as they are.
    pub fn reveals_secrets(&self) -> bool {
        match self {
            Command::Render(_) => true,
            Command::Diff(args) => args.show_secrets,
            Command::Drift(args) => args.show_secrets,
            Command::Promote(args) => args.deploy.show_secrets,
            Command::Upgrade(args) => args.deploy.show_secrets,
            Command::Apply(args) => args.deploy.show_secrets,
            _ => false,
        }
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format
    #[arg(long, short, value_enum, default_value_t = ListFormat::Text)]
    pub output: ListFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Text,
    Json,
}

/// The formats of a report a pull request can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    /// For a pull-request comment: a summary table, a collapsible section per stage or release
    Markdown,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The stage to render (see `helm envs list`)
    pub stage: String,

    /// Render only this release
    #[arg(long, short)]
    pub release: Option<String>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The stage whose installed releases are compared with its config
    #[arg(conflicts_with_all = ["from", "to"])]
    pub stage: Option<String>,

    /// Compare two stages' rendered config: the stage to compare from
    #[arg(long, value_name = "STAGE", requires = "to")]
    pub from: Option<String>,

    /// ... and the stage to compare to
    #[arg(long, value_name = "STAGE", requires = "from")]
    pub to: Option<String>,

    /// Only this release
    #[arg(long, short)]
    pub release: Option<String>,

    /// Output format
    #[arg(long, short, value_enum, default_value_t = DiffFormat::Text)]
    pub output: DiffFormat,

    /// With -o markdown: the report's size limit in characters (whole sections are dropped)
    #[arg(long, value_name = "CHARS", default_value_t = crate::output::markdown::DEFAULT_MAX_SIZE)]
    pub max_size: usize,

    /// Lines of context around each change in the line diff
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub context: usize,

    /// Exit with 2 when there are changes, 0 when there are none (1 is an error)
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// Leave a field out of the comparison, e.g. `metadata.labels.helm.sh/chart` or
    /// `spec.template.spec.containers[*].image` (`*` is any key, `[*]` any index); repeatable
    #[arg(long, value_name = "PATH")]
    pub ignore: Vec<String>,

    /// Print Secret data instead of its size
    #[arg(long)]
    pub show_secrets: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// Per resource and field, with a line diff; coloured on a terminal
    Text,
    /// A stable schema for tools (docs/ci.md)
    Json,
    /// One line per changed resource and a plan per release
    Summary,
    /// For a pull-request comment: a summary table, a collapsible section per release
    Markdown,
}

#[derive(Debug, Args)]
pub struct CheckSecretsArgs {
    /// The stage to check
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub stage: Option<String>,

    /// Check every stage (in parallel)
    #[arg(long)]
    pub all: bool,

    /// Only this release
    #[arg(long, short)]
    pub release: Option<String>,

    /// Every reference of each Secret: resource, container and field path (JSON always has them)
    #[arg(long)]
    pub details: bool,

    /// Output format
    #[arg(long, short, value_enum, default_value_t = ReportFormat::Text)]
    pub output: ReportFormat,

    /// With -o markdown: the report's size limit in characters (whole sections are dropped)
    #[arg(long, value_name = "CHARS", default_value_t = crate::output::markdown::DEFAULT_MAX_SIZE)]
    pub max_size: usize,
}

#[derive(Debug, Args)]
pub struct CheckIsolationArgs {
    /// The stage to check
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub stage: Option<String>,

    /// Check every stage
    #[arg(long)]
    pub all: bool,

    /// Output format
    #[arg(long, short, value_enum, default_value_t = ListFormat::Text)]
    pub output: ListFormat,
}

#[derive(Debug, Args)]
pub struct ArgocdArgs {
    /// Only this stage (default: every stage with `argocd`)
    pub stage: Option<String>,

    /// Only this release
    #[arg(long, short)]
    pub release: Option<String>,

    /// Apply the Applications to Argo CD's cluster instead of printing them
    #[arg(long)]
    pub apply: bool,

    /// Output format of the printed Applications
    #[arg(long, short, value_enum, default_value_t = ManifestFormat::Yaml)]
    pub output: ManifestFormat,
}

/// How objects are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ManifestFormat {
    Yaml,
    Json,
}

/// Flags every deploying command shares.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Evaluate everything (diff, gates) and stop before writing or deploying
    #[arg(long)]
    pub dry_run: bool,

    /// Approve stages with `approval: required` without a prompt
    #[arg(long, short)]
    pub yes: bool,

    /// Output format
    #[arg(long, short, value_enum, default_value_t = ReportFormat::Text)]
    pub output: ReportFormat,

    /// With -o markdown: the report's size limit in characters (whole sections are dropped)
    #[arg(long, value_name = "CHARS", default_value_t = crate::output::markdown::DEFAULT_MAX_SIZE)]
    pub max_size: usize,

    /// Lines of context around each change in the manifest diff
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub context: usize,

    /// Print Secret data and credential-like values instead of their size
    #[arg(long)]
    pub show_secrets: bool,

    /// Deploy while a freeze window of the stage holds (the output and the Event say so)
    #[arg(long)]
    pub override_freeze: bool,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The stage to promote from
    #[arg(long, value_name = "STAGE")]
    pub from: String,

    /// The stage to promote into
    #[arg(long, value_name = "STAGE")]
    pub to: String,

    /// Only this release
    #[arg(long, short)]
    pub release: Option<String>,

    /// Promote only this value path (and what is under it), e.g. `image.tag`; repeatable.
    /// envSpecific paths are never promoted
    #[arg(long, value_name = "PATH")]
    pub only: Vec<String>,

    /// Write the target's files but do not deploy (a GitOps controller deploys)
    #[arg(long)]
    pub no_deploy: bool,

    /// Commit the written files on a new branch `promote/<from>-to-<to>-<digest>`
    #[arg(long)]
    pub git_commit: bool,

    /// Into a stage Argo CD deploys: push the promotion's commit to the branch its
    /// Applications follow (`argocd.revision` on `argocd.repoUrl`), then wait until Argo CD
    /// runs that commit and the workloads are ready. Needs --git-commit
    #[arg(long, requires = "git_commit", conflicts_with = "no_deploy")]
    pub push: bool,

    /// With --git-commit: write a pull-request body (Markdown: the patch, what deploying the
    /// target changes, the gates) to FILE; the title is the commit's subject
    #[arg(long, value_name = "FILE", requires = "git_commit")]
    pub pr_body: Option<std::path::PathBuf>,

    /// Allow promoting into a stage that is not the next one
    #[arg(long)]
    pub allow_skip: bool,

    /// Do not require the source stage to be deployed and in sync with its config
    #[arg(long)]
    pub skip_source_check: bool,

    /// Promote even when the source stage's workloads are not ready (the output says so)
    #[arg(long)]
    pub allow_unhealthy_source: bool,

    /// Promote before the source stage has run the config as long as the target's `soak` wants
    /// (the output and the Event say so)
    #[arg(long)]
    pub override_soak: bool,

    #[command(flatten)]
    pub deploy: DeployArgs,
}

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// The stage to deploy
    pub stage: String,

    /// Only this release
    #[arg(long, short)]
    pub release: Option<String>,

    /// A stage Argo CD deploys: push HEAD (the stage's files, committed) to the branch its
    /// Applications follow, then wait until Argo CD runs it and the workloads are ready
    #[arg(long)]
    pub push: bool,

    #[command(flatten)]
    pub deploy: DeployArgs,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Only this release
    #[arg(long, short)]
    pub release: Option<String>,

    #[command(flatten)]
    pub deploy: DeployArgs,
}

#[derive(Debug, Args)]
pub struct DriftArgs {
    /// Only this stage's findings: its differences from the stage before it, and its cluster
    #[arg(long, value_name = "STAGE")]
    pub stage: Option<String>,

    /// Only this release
    #[arg(long, short)]
    pub release: Option<String>,

    /// Also compare each release's objects in the cluster with its manifest (a server-side dry
    /// run), to find `kubectl edit`, `scale` and `set`
    #[arg(long)]
    pub live: bool,

    /// Show every finding in full: files and lines, both values, changed fields, who needs a Secret
    #[arg(long)]
    pub details: bool,

    /// Also show documented differences (envSpecific values and what they render); not drift
    #[arg(long)]
    pub documented: bool,

    /// Output format
    #[arg(long, short, value_enum, default_value_t = ReportFormat::Text)]
    pub output: ReportFormat,

    /// With -o markdown: the report's size limit in characters (whole sections are dropped)
    #[arg(long, value_name = "CHARS", default_value_t = crate::output::markdown::DEFAULT_MAX_SIZE)]
    pub max_size: usize,

    /// Print credential-like values and Secret data instead of redacting them
    #[arg(long)]
    pub show_secrets: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this stage
    #[arg(long, value_name = "STAGE")]
    pub stage: Option<String>,

    /// Only this release
    #[arg(long, short)]
    pub release: Option<String>,

    /// Output format
    #[arg(long, short, value_enum, default_value_t = ReportFormat::Text)]
    pub output: ReportFormat,

    /// With -o markdown: the report's size limit in characters (whole sections are dropped)
    #[arg(long, value_name = "CHARS", default_value_t = crate::output::markdown::DEFAULT_MAX_SIZE)]
    pub max_size: usize,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The stage whose context the command gets
    pub stage: String,

    /// Only this release (its values files are exported)
    #[arg(long, short)]
    pub release: Option<String>,

    /// For a stage on several clusters: the one the command runs against (required there)
    #[arg(long)]
    pub cluster: Option<String>,

    /// Pass upgrade's gates before running: clusterId, Secrets, approval
    #[arg(long)]
    pub gated: bool,

    /// With --gated: approve a stage with `approval: required` without a prompt
    #[arg(long, short, requires = "gated")]
    pub yes: bool,

    /// With --gated: run while a freeze window of the stage holds (recorded in the output)
    #[arg(long, requires = "gated")]
    pub override_freeze: bool,

    /// The command and its arguments, after `--`
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Replace an existing stages file
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CompleteArgs {
    /// The words after `helm envs`, the last one being completed
    #[arg(allow_hyphen_values = true, trailing_var_arg = true, num_args = 0..)]
    pub words: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

impl DeployArgs {
    pub fn options(&self) -> crate::pipeline::Options {
        crate::pipeline::Options {
            dry_run: self.dry_run,
            yes: self.yes,
            show_secrets: self.show_secrets,
            context: self.context,
            override_freeze: self.override_freeze,
        }
    }
}

impl DeployArgs {
    /// How the command's report is printed.
    pub fn format(&self) -> crate::output::document::Format {
        use crate::output::document::Format;
        match self.output {
            ReportFormat::Text => Format::Text,
            ReportFormat::Json => Format::Json,
            ReportFormat::Markdown => Format::Markdown { max_size: self.max_size },
        }
    }
}
