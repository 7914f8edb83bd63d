//! Validating the stages file and resolving it into the project: every problem found at once,
//! each with its file:line and the fix.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};
use serde_saphyr::Spanned;

use super::file::OnFailure;
use super::file::{RawFreeze, RawProject, RawRelease, RawStage};
use super::model::{
    ArgoCd, Chart, DEFAULT_HEALTH_TIMEOUT, Encrypted, Health, KubeContext, Placement, Project, Release, Stage,
    TextDigest, ValuesFile, absolute, normalize, parse_duration,
};
use crate::config::freeze::{self, When, Window};
use crate::config::recipients::{self, CreationRules};
use crate::config::values::ValuePath;
use crate::config::yaml;
use crate::error::{Diagnostic, Error};

pub(super) fn invalid(file: &Path, diagnostics: Vec<Diagnostic>) -> Error {
    Error::Invalid { file: file.to_path_buf(), diagnostics }
}

pub(super) fn unreadable(file: &Path, err: &std::io::Error, what: &str) -> Diagnostic {
    Diagnostic::new(file, None, unreadable_message(&file.display().to_string(), err, what))
}

fn unreadable_message(shown: &str, err: &std::io::Error, what: &str) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => format!("{what} {shown} does not exist"),
        _ => format!("cannot read {what} {shown}: {err}"),
    }
}

pub(super) fn with_schema_help(d: Diagnostic, text: &str) -> Diagnostic {
    let line = d.position.and_then(|(line, _)| text.lines().nth(line.saturating_sub(1) as usize)).unwrap_or("");
    if line.contains('[') && (line.contains("{stage}") || line.contains("{release}")) {
        d.help("in a [flow, list] `{` starts a map: quote paths with placeholders, e.g. [\"envs/{stage}/web.yaml\"]")
    } else if d.message.starts_with("unknown field") {
        d.help("see the stages-file reference in docs/stages-file.md for every key")
    } else if d.message.starts_with("missing field") {
        d.help("add the field; see docs/stages-file.md")
    } else {
        d
    }
}

fn position<T>(spanned: &Spanned<T>) -> Option<(u64, u64)> {
    let loc = spanned.referenced;
    (loc.line() > 0).then(|| (loc.line(), loc.column()))
}

/// helm flags that would take a stage's call to another cluster or namespace, or feed it
/// values that are not in the stage's files.
const FORBIDDEN_HELM_ARGS: &[&str] = &[
    "--kube-context",
    "--kubeconfig",
    "--namespace",
    "-n",
    "--kube-apiserver",
    "--kube-token",
    "--kube-as-user",
    "--kube-as-group",
    "--kube-ca-file",
    "--reuse-values",
    "--reset-then-reuse-values",
    "--set",
    "--set-string",
    "--set-file",
    "--set-json",
    "--set-literal",
    "--values",
    "-f",
    "--version",
];

pub(super) struct Checker<'a> {
    pub(super) file: &'a Path,
    pub(super) dir: &'a Path,
    pub(super) problems: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn problem<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) -> &mut Diagnostic {
        self.problems.push(Diagnostic::new(self.file, position(at), message));
        self.problems.last_mut().expect("just pushed")
    }

    pub(super) fn resolve(&mut self, raw: RawProject) -> Project {
        if raw.stages.is_empty() {
            self.problems.push(
                Diagnostic::new(self.file, None, "`stages` is empty")
                    .help("list the stages in promotion order, e.g. dev, staging, production"),
            );
        }
        if raw.releases.is_empty() {
            self.problems.push(
                Diagnostic::new(self.file, None, "`releases` is empty")
                    .help("add at least one release with a name and a chart"),
            );
        }
        let stages: Vec<Stage> = raw.stages.iter().map(|s| self.stage(s)).collect();
        self.unique_names("stage", raw.stages.iter().map(|s| &s.value.name));
        self.unique_names("release", raw.releases.iter().map(|r| &r.value.name));

        let mut releases: Vec<Release> = raw.releases.iter().map(|r| self.release(r)).collect();
        self.argocd_without_sops(&raw);
        self.needs(&raw.releases);
        self.versions(&raw.versions, &stages, &mut releases);
        let env_specific = self.paths(&raw.env_specific);

        let mut project = Project {
            file: self.file.to_path_buf(),
            dir: self.dir.to_path_buf(),
            stages,
            releases,
            env_specific,
            values: HashMap::new(),
            encrypted: HashMap::new(),
            loaded_texts: HashMap::new(),
            allow_values_outside_project: raw.allow_values_outside_project,
        };
        self.collisions(&project, &raw);
        self.read_values(&mut project, &raw);
        self.read_encrypted(&mut project, &raw);
        if self.problems.is_empty() {
            self.env_specific_matches(&project, &raw);
        }
        project
    }

    fn stage(&mut self, raw: &Spanned<RawStage>) -> Stage {
        let s = &raw.value;
        let name = s.name.value.clone();
        self.check_name("stage", &s.name);
        let kube_context = match &s.kube_context {
            _ if !s.clusters.is_empty() => {
                if let Some(ctx) = &s.kube_context {
                    self.problem(ctx, format!("stage `{name}` has both kubeContext and clusters")).help = Some(
                        "a stage on several clusters names each cluster's kubeContext under `clusters`: remove the stage's"
                            .into(),
                    );
                }
                KubeContext::Current
            }
            Some(ctx) if ctx.value == "current" => KubeContext::Current,
            Some(ctx) if ctx.value.trim().is_empty() => {
                self.problem(ctx, format!("stage `{name}`: kubeContext is empty")).help =
                    Some("name the kubeconfig context, or write `kubeContext: current`".into());
                KubeContext::Current
            }
            Some(ctx) => KubeContext::Named(ctx.value.clone()),
            None => {
                self.problem(raw, format!("stage `{name}` has no kubeContext")).help = Some(
                    "name the kubeconfig context this stage deploys to (kubeContext: my-cluster), or write \
                     `kubeContext: current` to use the kubeconfig's current context on purpose, or list its \
                     `clusters`"
                        .into(),
                );
                KubeContext::Current
            }
        };
        self.check_namespace(&s.namespace, &format!("stage `{name}`"));
        if let Some(deploy) = &s.deploy
            && deploy.command.is_empty()
        {
            self.problem(raw, format!("stage `{name}`: deploy.command is empty")).help =
                Some("give the command as a list: command: [./deploy.sh, --stage, staging]".into());
        }
        for arg in &s.helm_args {
            let flag = arg.split('=').next().unwrap_or(arg);
            if FORBIDDEN_HELM_ARGS.contains(&flag) {
                self.problem(raw, format!("stage `{name}`: helmArgs may not contain `{flag}`")).help = Some(
                    "helm-envs sets the context, namespace and values of every call from the stage itself; \
                     use kubeContext, namespace and the values files instead"
                        .into(),
                );
            }
        }
        if s.verify.iter().any(Vec::is_empty) {
            self.problem(raw, format!("stage `{name}`: a verify command is empty")).help =
                Some("each verify entry is a command as a list: - [./smoke-test.sh, --quick]".into());
        }
        let timeout = match &s.health.timeout {
            None => DEFAULT_HEALTH_TIMEOUT,
            Some(text) => parse_duration(&text.value).unwrap_or_else(|| {
                self.problem(text, format!("stage `{name}`: health.timeout `{}` is not a duration", text.value)).help =
                    Some("write it as helm's --timeout: 90s, 5m, 1m30s; 0s does not wait".into());
                DEFAULT_HEALTH_TIMEOUT
            }),
        };
        let (soak, freeze) = self.time_gates(s, &name);
        if s.on_failure.is_some() && s.health.rollback.is_some() {
            self.problem(raw, format!("stage `{name}`: both onFailure and health.rollback are set")).help = Some(
                "health.rollback is the older spelling of onFailure: keep only onFailure (rollback or keep)".into(),
            );
        }
        let stage = Stage {
            name,
            kube_context,
            namespace: s.namespace.value.clone(),
            approval: s.approval,
            cluster_id: s.cluster_id.clone(),
            helm_args: s.helm_args.clone(),
            labels: s.labels.clone(),
            deploy_command: s.deploy.as_ref().map(|d| d.command.clone()),
            verify: s.verify.clone(),
            health: Health { timeout },
            isolation: s.isolation,
            on_failure: match (s.on_failure, s.health.rollback) {
                (Some(on_failure), _) => on_failure,
                (None, Some(false)) => OnFailure::Keep,
                (None, _) => OnFailure::Rollback,
            },
            create_namespace: s.create_namespace,
            require_own_keys: s.require_own_keys,
            soak,
            freeze,
            argocd: None,
            cluster: None,
            on_clusters: Vec::new(),
        };
        let stage = Stage { argocd: self.argocd(raw, &stage), ..stage };
        self.on_clusters(raw, stage)
    }

    /// A stage's `argocd`, resolved: a named context, and what Argo CD cannot do refused.
    fn argocd(&mut self, raw: &Spanned<RawStage>, stage: &Stage) -> Option<ArgoCd> {
        let s = &raw.value;
        let argo = &s.argocd.as_ref()?.value;
        let name = &stage.name;
        let context = match argo.context.value.as_str() {
            "" | "current" => {
                self.problem(&argo.context, format!("stage `{name}`: argocd.context `{}`", argo.context.value)).help =
                    Some("name the kubeconfig context of the cluster Argo CD runs in".into());
                KubeContext::Current
            }
            named => KubeContext::Named(named.to_string()),
        };
        if argo.repo_url.value.trim().is_empty() {
            self.problem(&argo.repo_url, format!("stage `{name}`: argocd.repoUrl is empty")).help = Some(
                "the Git repository Argo CD reads this stages file from: repoUrl: https://git.example.com/platform.git"
                    .into(),
            );
        }
        if let Some(namespace) = &argo.namespace {
            self.check_namespace(namespace, &format!("stage `{name}`: argocd.namespace"));
        }
        let refuse = |what: &str, why: &str| (format!("stage `{name}`: argocd and {what}"), why.to_string());
        let conflicts = [
            (!s.clusters.is_empty()).then(|| {
                refuse("clusters", "Argo CD deploys a stage to one destination: give the stage one kubeContext")
            }),
            s.deploy
                .as_ref()
                .map(|_| refuse("deploy", "Argo CD deploys the stage, not a deploy command: remove `deploy`")),
            (s.on_failure == Some(OnFailure::Rollback) || s.health.rollback == Some(true)).then(|| {
                refuse(
                    "a rollback on failure",
                    "a deploy through Argo CD that fails keeps the pushed commit and the files with it, as \
                     `onFailure: keep` does; the way back is a commit that reverts it: say `onFailure: keep`",
                )
            }),
        ];
        for (message, help) in conflicts.into_iter().flatten() {
            self.problem(raw, message).help = Some(help);
        }
        let default_cluster = stage.kube_context.name().unwrap_or("in-cluster").to_string();
        Some(ArgoCd {
            repo_url: argo.repo_url.value.clone(),
            revision: argo.revision.clone().unwrap_or_else(|| "HEAD".into()),
            path: argo.path.clone(),
            context,
            namespace: argo.namespace.as_ref().map_or_else(|| "argocd".into(), |n| n.value.clone()),
            cluster: argo.cluster.clone().unwrap_or(default_cluster),
            project: argo.project.clone().unwrap_or_else(|| "default".into()),
            prefix: argo.prefix.clone(),
            sync: argo.sync,
        })
    }

    /// Argo CD renders charts with plain helm: it cannot decrypt a release's `secrets`.
    fn argocd_without_sops(&mut self, raw: &RawProject) {
        let encrypted: Vec<&str> =
            raw.releases.iter().filter(|r| !r.value.secrets.is_empty()).map(|r| r.value.name.value.as_str()).collect();
        for stage in &raw.stages {
            let Some(argocd) = &stage.value.argocd else { continue };
            if let Some(release) = encrypted.first() {
                self.problem(
                    argocd,
                    format!(
                        "stage `{}`: Argo CD cannot decrypt the encrypted values of release `{release}`",
                        stage.value.name.value
                    ),
                )
                .help = Some(
                    "Argo CD renders with plain helm: deploy this stage with helm-envs (remove `argocd`), or keep its \
                     credentials out of the release's `secrets` (an existing Secret, `providedSecrets`)"
                        .into(),
                );
            }
        }
    }

    /// A stage with `clusters`: the stage on each, wave by wave (the stage itself carries the
    /// first's context, namespace and clusterId). Names, contexts and waves checked.
    fn on_clusters(&mut self, raw: &Spanned<RawStage>, mut stage: Stage) -> Stage {
        let s = &raw.value;
        if s.clusters.is_empty() {
            if let Some(wave) = s.waves.first() {
                self.problem(wave, format!("stage `{}` has waves but no clusters", stage.name)).help =
                    Some("waves order a stage's `clusters`: list them, or remove `waves`".into());
            }
            return stage;
        }
        let name = stage.name.clone();
        if s.cluster_id.is_some() {
            self.problem(raw, format!("stage `{name}` has both clusterId and clusters")).help =
                Some("give each cluster its own clusterId under `clusters`".into());
        }
        if s.clusters.len() == 1 {
            self.problem(&s.clusters[0], format!("stage `{name}` lists one cluster")).help =
                Some("a stage on one cluster names it with kubeContext (and clusterId) on the stage itself".into());
        }
        self.unique_names(&format!("stage `{name}`: cluster"), s.clusters.iter().map(|c| &c.value.name));
        let mut contexts: HashMap<&str, &str> = HashMap::new();
        for cluster in &s.clusters {
            let c = &cluster.value;
            self.check_name("cluster", &c.name);
            if let Some(ns) = &c.namespace {
                self.check_namespace(ns, &format!("stage `{name}`, cluster `{}`", c.name.value));
            }
            let context = c.kube_context.value.as_str();
            if context.trim().is_empty() || context == "current" {
                self.problem(
                    &c.kube_context,
                    format!("stage `{name}`, cluster `{}`: kubeContext `{context}`", c.name.value),
                )
                .help = Some("name each cluster's kubeconfig context explicitly".into());
            } else if let Some(first) = contexts.insert(context, &c.name.value) {
                self.problem(
                    &c.kube_context,
                    format!("stage `{name}`: clusters `{first}` and `{}` both use context `{context}`", c.name.value),
                )
                .help = Some("each cluster of a stage is a different kubeconfig context".into());
            }
        }
        let waves = self.waves(s, &name);
        let mut on_clusters = Vec::new();
        for (wave, names) in waves.iter().enumerate() {
            for cluster in s.clusters.iter().map(|c| &c.value).filter(|c| names.contains(&c.name.value.as_str())) {
                on_clusters.push(Stage {
                    kube_context: KubeContext::Named(cluster.kube_context.value.clone()),
                    namespace: cluster.namespace.as_ref().map_or_else(|| stage.namespace.clone(), |n| n.value.clone()),
                    cluster_id: cluster.cluster_id.clone(),
                    cluster: Some(Placement { name: cluster.name.value.clone(), wave: wave + 1 }),
                    ..stage.clone()
                });
            }
        }
        if let Some(first) = on_clusters.first() {
            stage.kube_context = first.kube_context.clone();
            stage.namespace = first.namespace.clone();
            stage.cluster_id = first.cluster_id.clone();
        }
        stage.on_clusters = on_clusters;
        stage
    }

    /// A stage's `waves` as cluster names: every cluster in exactly one wave, no empty wave.
    /// Without `waves`, one cluster per wave in the order of `clusters`.
    fn waves<'s>(&mut self, s: &'s RawStage, name: &str) -> Vec<Vec<&'s str>> {
        let clusters: Vec<&str> = s.clusters.iter().map(|c| c.value.name.value.as_str()).collect();
        if s.waves.is_empty() {
            return clusters.iter().map(|c| vec![*c]).collect();
        }
        let mut placed: HashMap<&str, usize> = HashMap::new();
        for (index, wave) in s.waves.iter().enumerate() {
            if wave.value.is_empty() {
                self.problem(wave, format!("stage `{name}`: wave {} is empty", index + 1)).help =
                    Some("each wave lists the clusters deployed together: [eu-canary]".into());
            }
            for cluster in &wave.value {
                if !clusters.contains(&cluster.as_str()) {
                    self.problem(
                        wave,
                        format!("stage `{name}`: wave {} names unknown cluster `{cluster}`", index + 1),
                    )
                    .help = Some(format!("the stage's clusters are: {}", clusters.join(", ")));
                } else if let Some(first) = placed.insert(cluster, index) {
                    self.problem(
                        wave,
                        format!("stage `{name}`: cluster `{cluster}` is in waves {} and {}", first + 1, index + 1),
                    )
                    .help = Some("a cluster is deployed once, in one wave".into());
                }
            }
        }
        let missing: Vec<&str> = clusters.iter().copied().filter(|c| !placed.contains_key(c)).collect();
        if !missing.is_empty() {
            self.problem(&s.waves[0], format!("stage `{name}`: cluster `{}` is in no wave", missing.join("`, `")))
                .help = Some("list every cluster of the stage in one of its waves".into());
        }
        s.waves.iter().map(|w| w.value.iter().map(String::as_str).filter(|c| clusters.contains(c)).collect()).collect()
    }

    /// A stage's `soak` and `freeze` windows, each problem at its line.
    fn time_gates(&mut self, s: &RawStage, name: &str) -> (Option<std::time::Duration>, Vec<Window>) {
        let soak = s.soak.as_ref().and_then(|text| {
            let soak = parse_duration(&text.value);
            if soak.is_none() {
                self.problem(text, format!("stage `{name}`: soak `{}` is not a duration", text.value)).help =
                    Some("write how long the previous stage must have run the config: 24h, 90m, 1h30m".into());
            }
            soak
        });
        let mut windows = Vec::new();
        for raw in &s.freeze {
            match freeze_window(&raw.value) {
                Ok(window) => windows.push(window),
                Err((message, help)) => {
                    self.problem(raw, format!("stage `{name}`: freeze window: {message}")).help = Some(help.into());
                }
            }
        }
        (soak, windows)
    }

    fn release(&mut self, raw: &Spanned<RawRelease>) -> Release {
        let r = &raw.value;
        let name = r.name.value.clone();
        self.check_name("release", &r.name);
        if let Some(ns) = &r.namespace {
            let probe =
                Spanned { value: ns.value.replace("{stage}", "stage"), referenced: ns.referenced, defined: ns.defined };
            self.check_namespace(&probe, &format!("release `{name}`"));
        }
        let chart = self.chart(&r.chart, &name);
        for secret in &r.provided_secrets {
            let valid = !secret.name.is_empty()
                && secret.name.len() <= 253
                && secret.name.split('.').all(|label| is_dns_label(label, 63))
                && !secret.reason.trim().is_empty();
            if !valid {
                self.problem(
                    raw,
                    format!(
                        "release `{name}`: providedSecrets entry `{}` needs a Secret name and a reason",
                        secret.name
                    ),
                )
                .help = Some(
                    "write: providedSecrets: [{name: app-license, reason: \"the license operator writes it\"}]".into(),
                );
            }
        }
        self.file_entries(&name, "values", &r.values);
        self.file_entries(&name, "secrets", &r.secrets);
        for entry in r.secrets.iter().filter(|e| r.values.iter().any(|v| v.value == e.value)) {
            self.problem(
                entry,
                format!("release `{name}`: `{}` is listed under both `values` and `secrets`", entry.value),
            )
            .help = Some("an encrypted file belongs under `secrets` only; a plain one under `values` only".into());
        }
        Release {
            name,
            chart,
            chart_source: r.chart.value.clone(),
            namespace: r.namespace.as_ref().map(|n| n.value.clone()),
            values: r.values.iter().map(|v| v.value.clone()).collect(),
            secrets: r.secrets.iter().map(|v| v.value.clone()).collect(),
            env_specific: self.paths(&r.env_specific),
            versions: BTreeMap::new(),
            provided_secrets: r.provided_secrets.clone(),
            needs: r.needs.iter().map(|n| n.value.clone()).collect(),
        }
    }

    /// The paths of a release's `values` or `secrets` list, as written.
    fn file_entries(&mut self, name: &str, list: &str, entries: &[Spanned<String>]) {
        for entry in entries {
            // helm splits `--values a,b` into two files: the deploy would read files nobody was shown.
            if entry.value.contains(',') {
                self.problem(
                    entry,
                    format!("release `{name}`: {list} file `{}` has a comma in its path", entry.value),
                )
                .help = Some(
                    "helm splits --values on commas (it would read the parts as separate files); rename the file"
                        .into(),
                );
            }
            let unknown: Vec<&str> =
                placeholders(&entry.value).filter(|p| *p != "{stage}" && *p != "{release}").collect();
            if !unknown.is_empty() {
                self.problem(
                    entry,
                    format!("release `{name}`: unknown placeholder {} in `{}`", unknown.join(", "), entry.value),
                )
                .help = Some("the placeholders are {stage} and {release}".into());
            }
        }
    }

    fn chart(&mut self, chart: &Spanned<String>, release: &str) -> Chart {
        let text = chart.value.trim();
        if text.starts_with("oci://") {
            return Chart::Oci(text.to_string());
        }
        let path = normalize(&absolute(Path::new(text), self.dir));
        let looks_local = text.starts_with('.') || text.starts_with('/') || text.ends_with(".tgz") || path.exists();
        if !looks_local && text.split('/').count() == 2 && !text.starts_with('/') {
            return Chart::Repo(text.to_string());
        }
        if path.is_dir() && !path.join("Chart.yaml").is_file() {
            self.problem(
                chart,
                format!("release `{release}`: {} is a directory without a Chart.yaml", path.display()),
            )
            .help = Some("point chart at the chart's directory (the one holding Chart.yaml)".into());
        } else if !path.exists() {
            self.problem(chart, format!("release `{release}`: chart {} does not exist", path.display())).help = Some(
                "use a chart directory or .tgz relative to helm-envs.yaml (./charts/web), a repository chart \
                 (repo/chart) or an OCI reference (oci://registry/chart)"
                    .into(),
            );
        }
        Chart::Local(path)
    }

    fn check_name(&mut self, what: &str, name: &Spanned<String>) {
        // 53: Helm's limit for release names (it appends suffixes to reach 63).
        if !is_dns_label(&name.value, 53) {
            self.problem(name, format!("`{}` is not a valid {what} name", name.value)).help = Some(
                "use lowercase letters, digits and '-', starting and ending with a letter or digit (at most 53)".into(),
            );
        }
    }

    fn check_namespace(&mut self, ns: &Spanned<String>, owner: &str) {
        let v = &ns.value;
        if !is_dns_label(v, 63) {
            self.problem(ns, format!("{owner}: `{v}` is not a valid Kubernetes namespace")).help =
                Some("a namespace is lowercase letters, digits and '-', at most 63 characters".into());
        }
    }

    /// Each release's `needs`: releases of this file, not itself, not twice, and no cycle (a
    /// release in a cycle could never start).
    fn needs(&mut self, releases: &[Spanned<RawRelease>]) {
        let names: Vec<&str> = releases.iter().map(|r| r.value.name.value.as_str()).collect();
        let mut graph: Vec<Vec<usize>> = vec![Vec::new(); releases.len()];
        for (index, raw) in releases.iter().enumerate() {
            let name = names[index];
            for (n, need) in raw.value.needs.iter().enumerate() {
                let wanted = need.value.as_str();
                if raw.value.needs[..n].iter().any(|earlier| earlier.value == wanted) {
                    self.problem(need, format!("release `{name}` needs `{wanted}` twice")).help =
                        Some("remove one of the two".into());
                } else if wanted == name {
                    self.problem(need, format!("release `{name}` needs itself")).help =
                        Some(format!("remove `{name}` from its needs: a release cannot wait for itself"));
                } else if let Some(found) = names.iter().position(|n| *n == wanted) {
                    graph[index].push(found);
                } else {
                    self.problem(
                        need,
                        format!("release `{name}` needs `{wanted}`, which is not a release of this file"),
                    )
                    .help = Some(match names.iter().find(|n| close(n, wanted)) {
                        Some(similar) => format!("did you mean `{similar}`?"),
                        None => format!("needs names releases of this file: {}", names.join(", ")),
                    });
                }
            }
        }
        if let Some(cycle) = super::needs::cycle(&graph) {
            let path: Vec<&str> = cycle.iter().map(|&i| names[i]).collect();
            let (last, first) = (cycle[cycle.len() - 2], cycle[0]);
            let closing = releases[last].value.needs.iter().find(|n| n.value == names[first]);
            let message = format!("the releases' needs form a cycle: {}", path.join(" -> "));
            let help = "each release starts only after what it needs is deployed, so none of these could ever \
                        start: remove one of these needs";
            match closing {
                Some(at) => self.problem(at, message).help = Some(help.into()),
                None => self.problem(&releases[last], message).help = Some(help.into()),
            }
        }
    }

    fn unique_names<'a>(&mut self, what: &str, names: impl Iterator<Item = &'a Spanned<String>>) {
        let mut seen: HashMap<&str, &Spanned<String>> = HashMap::new();
        for name in names {
            if let Some(first) = seen.get(name.value.as_str()) {
                let first_line = first.referenced.line();
                self.problem(name, format!("{what} `{}` is defined twice (first at line {first_line})", name.value))
                    .help = Some(format!("rename or remove one of the two {what}s"));
            } else {
                seen.insert(&name.value, name);
            }
        }
    }

    fn paths(&mut self, raw: &[Spanned<String>]) -> Vec<ValuePath> {
        raw.iter()
            .filter_map(|p| match ValuePath::parse(&p.value) {
                Ok(path) => Some(path),
                Err(why) => {
                    self.problem(p, format!("envSpecific path `{}` is not a value path: {why}", p.value)).help =
                        Some("write paths like replicaCount, ingress.hosts, resources.limits.cpu, hosts[0]".into());
                    None
                }
            })
            .collect()
    }

    fn versions(
        &mut self,
        raw: &BTreeMap<String, Spanned<BTreeMap<String, String>>>,
        stages: &[Stage],
        releases: &mut [Release],
    ) {
        for (stage, per_release) in raw {
            if !stages.iter().any(|s| &s.name == stage) {
                let known = stages.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ");
                self.problem(per_release, format!("versions: unknown stage `{stage}`")).help =
                    Some(format!("the stages are: {known}"));
                continue;
            }
            for (release, version) in &per_release.value {
                match releases.iter_mut().find(|r| &r.name == release) {
                    Some(r) => {
                        r.versions.insert(stage.clone(), version.clone());
                    }
                    None => {
                        let known = releases.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", ");
                        self.problem(per_release, format!("versions.{stage}: unknown release `{release}`")).help =
                            Some(format!("the releases are: {known}"));
                    }
                }
            }
        }
    }

    /// Two stages that deploy the same release to the same context and namespace would overwrite
    /// each other.
    fn collisions(&mut self, project: &Project, raw: &RawProject) {
        let mut seen: HashMap<(String, String, String), usize> = HashMap::new();
        let mut reported = std::collections::HashSet::new();
        let on_clusters = project.stages.iter().enumerate().flat_map(|(i, s)| s.clusters().iter().map(move |c| (i, c)));
        for (i, stage) in on_clusters {
            let context = match &stage.kube_context {
                KubeContext::Named(c) => c.clone(),
                KubeContext::Current => "current".to_string(),
            };
            for release in &project.releases {
                let key = (context.clone(), release.namespace_in(stage), release.name.clone());
                if let Some(&first) = seen.get(&key) {
                    let other = &project.stages[first];
                    if other.name == stage.name || !reported.insert((first, i, release.name.clone())) {
                        continue; // a duplicate stage or release name, reported on its own
                    }
                    self.problem(
                        &raw.stages[i].value.name,
                        format!(
                            "stages `{}` and `{}` both deploy release `{}` to context `{}`, namespace `{}`: they would overwrite each other",
                            other.name, stage.name, key.2, key.0, key.1
                        ),
                    )
                    .help = Some("give each stage its own namespace or kubeContext".into());
                } else {
                    seen.insert(key, i);
                }
            }
        }
    }

    /// Read every values file of every (stage, release) once, with Helm's YAML semantics.
    fn read_values(&mut self, project: &mut Project, raw: &RawProject) {
        // Every values file once, in the order the stages file names them.
        let mut wanted: Vec<(&Spanned<String>, ValuesFile, String)> = Vec::new();
        for (r, release) in project.releases.iter().enumerate() {
            // A stage or release whose name is already refused would only add follow-up errors
            // about paths built from it (`envs/../x/web.yaml`).
            if !is_dns_label(&release.name, 53) {
                continue;
            }
            for stage in project.stages.iter().filter(|s| is_dns_label(&s.name, 53)) {
                for (entry, file) in raw.releases[r].value.values.iter().zip(release.values_in(stage, &project.dir)) {
                    if wanted.iter().any(|(_, seen, _)| seen.path == file.path) {
                        continue;
                    }
                    let note = if file.shared {
                        format!("release `{}` (shared by every stage)", release.name)
                    } else {
                        format!("release `{}`, stage `{}` (from `{}`)", release.name, stage.name, entry.value)
                    };
                    wanted.push((entry, file, note));
                }
            }
        }
        let read = read_all(&wanted.iter().map(|(_, file, _)| file.path.as_path()).collect::<Vec<_>>());
        for ((entry, file, note), read) in wanted.into_iter().zip(read) {
            let values = match read {
                Read::Values(values, digest) => {
                    if yaml::is_sops_encrypted(&values) {
                        self.problem(entry, format!("values file `{}` is encrypted with SOPS", file.display)).help =
                            Some("list it under the release's `secrets` instead of `values`".into());
                    }
                    project.loaded_texts.insert(file.path.clone(), digest);
                    values
                }
                Read::Invalid(diagnostic) => {
                    self.problems.push(diagnostic.note(note));
                    Arc::default()
                }
                Read::Unreadable(err) => {
                    let message = unreadable_message(&file.display, &err, "values file");
                    self.problem(entry, message).note = Some(note);
                    self.problems.last_mut().expect("just pushed").help = Some(
                        "create the file (it may be empty), or fix the path in the release's `values` list".into(),
                    );
                    Arc::default()
                }
            };
            project.values.insert(file.path, values);
        }
    }

    /// Read every encrypted values file once: what it defines (its keys) is known without
    /// decrypting it, and a file that is not SOPS-encrypted is refused before anything runs.
    fn read_encrypted(&mut self, project: &mut Project, raw: &RawProject) {
        let rules = match raw.releases.iter().any(|r| !r.value.secrets.is_empty()) {
            true => CreationRules::find(&project.dir),
            false => None,
        };
        for (r, release) in project.releases.iter().enumerate() {
            for stage in project.stages.iter().filter(|s| is_dns_label(&s.name, 53)) {
                for (entry, file) in raw.releases[r].value.secrets.iter().zip(release.secrets_in(stage, &project.dir)) {
                    if project.encrypted.contains_key(&file.path) {
                        continue;
                    }
                    let note = format!("release `{}`, stage `{}` (from `{}`)", release.name, stage.name, entry.value);
                    let rule = rules.as_ref().and_then(|rules| rules.for_file(&file.path)).cloned();
                    let encrypted = match std::fs::read_to_string(&file.path) {
                        Ok(text) => match yaml::read_back(&text, &file.path) {
                            Ok(mut document) if yaml::is_sops_encrypted(&document) => {
                                let metadata = document.remove("sops").and_then(|m| m.as_object().cloned());
                                let recipients = metadata.as_ref().map(recipients::of_file).unwrap_or_default();
                                Encrypted { keys: document, recipients, rule }
                            }
                            Ok(_) => {
                                let problem = self.problem(
                                    entry,
                                    format!(
                                        "`{}` is listed under `secrets` but is not encrypted with SOPS",
                                        file.display
                                    ),
                                );
                                problem.note = Some(note);
                                problem.help = Some(format!(
                                    "encrypt it in place (`sops --encrypt --in-place {}`), or list it under `values`",
                                    file.display
                                ));
                                Encrypted::default()
                            }
                            Err(diagnostic) => {
                                self.problems.push(diagnostic.note(note));
                                Encrypted::default()
                            }
                        },
                        Err(err) => {
                            let problem =
                                self.problem(entry, unreadable_message(&file.display, &err, "encrypted values file"));
                            problem.note = Some(note);
                            problem.help = Some(
                                "create it with `sops` (e.g. `sops edit FILE`), or fix the path in the release's `secrets` list"
                                    .into(),
                            );
                            Encrypted::default()
                        }
                    };
                    project.encrypted.insert(file.path, encrypted);
                }
            }
        }
    }

    /// An envSpecific path must exist in some stage's values or in a local chart's defaults;
    /// a path that matches nothing is almost always a typo, and would silently promote.
    fn env_specific_matches(&mut self, project: &Project, raw: &RawProject) {
        let mut trees: Vec<(Option<&str>, Map<String, Value>)> = Vec::new();
        for release in &project.releases {
            for stage in &project.stages {
                trees.push((Some(&release.name), project.merged_values(&project.target(stage, release))));
            }
            if let Some(defaults) = release.chart_defaults() {
                trees.push((Some(&release.name), defaults));
            }
        }
        let global = raw.env_specific.iter().zip(&project.env_specific).map(|(s, p)| (s, p, None));
        let per_release = raw.releases.iter().zip(&project.releases).flat_map(|(raw_release, release)| {
            raw_release
                .value
                .env_specific
                .iter()
                .zip(&release.env_specific)
                .map(move |(s, p)| (s, p, Some(release.name.as_str())))
        });
        let all: Vec<_> = global.chain(per_release).collect();
        for (spanned, path, only_release) in all {
            let found = trees.iter().any(|(release, tree)| {
                (only_release.is_none() || *release == only_release) && path.get(tree).is_some()
            });
            if !found {
                self.problem(spanned, format!("envSpecific path `{path}` matches no value in any stage or chart"))
                    .help = Some("fix the path (it is case-sensitive), or remove it".into());
            }
        }
    }
}

/// Lowercase letters, digits and '-', starting and ending with a letter or digit.
pub(crate) fn is_dns_label(text: &str, max_len: usize) -> bool {
    !text.is_empty()
        && text.len() <= max_len
        && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

/// A likely typo of `wanted`: at most two edits apart (a letter missing, added, changed).
fn close(candidate: &str, wanted: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (candidate.chars().collect(), wanted.chars().collect());
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut row = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            row.push((previous[j] + usize::from(ca != cb)).min(previous[j + 1] + 1).min(row[j] + 1));
        }
        previous = row;
    }
    previous[b.len()] <= 2
}

fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.match_indices('{').filter_map(move |(start, _)| text[start..].find('}').map(|end| &text[start..=start + end]))
}

/// A values file as read.
enum Read {
    Values(Arc<Map<String, Value>>, TextDigest),
    Invalid(Diagnostic),
    Unreadable(std::io::Error),
}

/// Read and parse `paths`, on as many threads as there are cores (a large values file takes
/// most of a second to parse); results in the order of `paths`.
fn read_all(paths: &[&Path]) -> Vec<Read> {
    let read = |path: &Path| match std::fs::read_to_string(path) {
        Ok(text) => yaml::parse_values(&text, path)
            .map_or_else(Read::Invalid, |values| Read::Values(values, TextDigest::of(&text))),
        Err(err) => Read::Unreadable(err),
    };
    let threads = std::thread::available_parallelism().map_or(1, usize::from).min(paths.len());
    if threads <= 1 {
        return paths.iter().map(|path| read(path)).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::OnceLock<Read>> = paths.iter().map(|_| std::sync::OnceLock::new()).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(path) = paths.get(i) else { break };
                    let _ = slots[i].set(read(path));
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|slot| slot.into_inner().unwrap_or(Read::Values(Arc::default(), TextDigest::of(""))))
        .collect()
}

/// One freeze window as written, or what is wrong with it and the fix.
fn freeze_window(raw: &RawFreeze) -> std::result::Result<Window, (String, &'static str)> {
    const SHAPES: &str = "write `from` and `to` (2026-12-23T18:00), or `cron` and `duration` (`0 12 * * FRI`, 68h), \
                          with an optional `timeZone` (Europe/Berlin) and `reason`";
    let zone_name = raw.time_zone.as_deref().unwrap_or("UTC");
    let zone = freeze::zone(zone_name).map_err(|e| (e, SHAPES))?;
    let (when, written) = match (&raw.from, &raw.to, &raw.cron, &raw.duration) {
        (Some(from), Some(to), None, None) => {
            let (start, end) = (freeze::time(from, &zone), freeze::time(to, &zone));
            let (start, end) = (start.map_err(|e| (e, SHAPES))?, end.map_err(|e| (e, SHAPES))?);
            if end <= start {
                return Err((format!("`to` ({to}) is not after `from` ({from})"), SHAPES));
            }
            (When::Range { from: start, to: end }, format!("{from} to {to} ({zone_name})"))
        }
        (None, None, Some(cron), Some(duration)) => {
            let schedule = freeze::Cron::parse(cron).map_err(|e| (e, SHAPES))?;
            let length = parse_duration(duration)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| (format!("duration `{duration}` is not a duration"), SHAPES))?;
            (When::Recurring { cron: schedule, duration: length }, format!("`{cron}` for {duration} ({zone_name})"))
        }
        _ => return Err(("it needs either `from` and `to`, or `cron` and `duration`".into(), SHAPES)),
    };
    Ok(Window { when, reason: raw.reason.clone(), zone, written })
}

#[cfg(test)]
mod tests {
    use crate::config::fixture;
    use crate::error::{Diagnostic, Error};

    /// The problems of a stages file that does not load, as (line, message).
    fn problems(stages_file: &str) -> Vec<(u64, String)> {
        let (_dir, loaded) = fixture::load(stages_file);
        match loaded {
            Err(Error::Invalid { diagnostics, .. }) => {
                diagnostics.iter().map(|d: &Diagnostic| (d.position.map_or(0, |p| p.0), d.message.clone())).collect()
            }
            Err(other) => panic!("not a validation error: {other}"),
            Ok(_) => panic!("the stages file loads"),
        }
    }

    const RELEASE: &str = "releases:\n  - name: app\n    chart: chart\n    values: [values.yaml]\n";

    #[test]
    fn every_problem_is_reported_at_once_with_its_line() {
        let found = problems(&format!(
            "stages:\n  - name: dev\n    kubeContext: dev\n    namespace: Bad_NS\n  - name: dev\n    kubeContext: x\n    \
             namespace: ok\n{RELEASE}versions:\n  qa: {{app: 1.0.0}}\n"
        ));
        let lines: Vec<u64> = found.iter().map(|(line, _)| *line).collect();
        assert!(
            found.iter().any(|(_, m)| m == "stage `dev`: `Bad_NS` is not a valid Kubernetes namespace"),
            "{found:?}"
        );
        assert!(found.iter().any(|(_, m)| m == "stage `dev` is defined twice (first at line 2)"), "{found:?}");
        assert!(found.iter().any(|(_, m)| m == "versions: unknown stage `qa`"), "{found:?}");
        assert!(lines.iter().all(|line| *line > 0), "every problem has its line: {found:?}");
    }

    #[test]
    fn helm_args_that_redirect_a_stage_and_contradictory_failure_rules_are_refused() {
        let found = problems(&format!(
            "stages:\n  - name: dev\n    kubeContext: dev\n    namespace: a\n    helmArgs: [--atomic, -n, other]\n    \
             onFailure: keep\n    health: {{rollback: true}}\n{RELEASE}"
        ));
        let messages: Vec<&str> = found.iter().map(|(_, m)| m.as_str()).collect();
        assert!(messages.contains(&"stage `dev`: helmArgs may not contain `-n`"), "{messages:?}");
        assert!(messages.contains(&"stage `dev`: both onFailure and health.rollback are set"), "{messages:?}");
        assert!(!messages.iter().any(|m| m.contains("--atomic")), "allowed flags pass: {messages:?}");
    }

    #[test]
    fn values_files_are_resolved_per_stage_and_a_missing_one_names_stage_and_entry() {
        let stages = "stages:\n  - name: dev\n    kubeContext: dev\n    namespace: a\n";
        let found = problems(&format!(
            "{stages}releases:\n  - name: app\n    chart: chart\n    values: [values.yaml, \"envs/{{stage}}/{{release}}.yaml\"]\n"
        ));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].1.contains("envs/dev/app.yaml"), "{found:?}");

        let (_dir, project) = fixture::project(&["dev", "prod"], &["prod"]);
        let (prod, app) = (&project.stages[1], &project.releases[0]);
        let target = project.target(prod, app);
        assert_eq!(target.namespace, "app-prod");
        assert_eq!(target.values_files.iter().map(|f| f.display.as_str()).collect::<Vec<_>>(), ["values.yaml"]);
        assert_eq!(project.stage("qa").expect_err("unknown").to_string(), "unknown stage `qa`");
    }

    #[test]
    fn a_stage_on_several_clusters_deploys_them_wave_by_wave() {
        let stages = "stages:\n  - name: dev\n    kubeContext: dev\n    namespace: a\n  - name: prod\n    namespace: p\n    \
                      clusters:\n      - {name: eu-canary, kubeContext: ctx-a, clusterId: id-a}\n      - {name: eu, kubeContext: ctx-b}\n      \
                      - {name: us, kubeContext: ctx-c, namespace: p-us}\n    waves: [[eu-canary], [us, eu]]\n";
        let (_dir, project) = fixture::load(&format!("{stages}{RELEASE}"));
        let project = project.unwrap_or_else(|err| panic!("loads: {err}: {:?}", err.details()));
        let prod = project.stage("prod").expect("prod");
        let shown: Vec<(String, usize, String, String)> = prod
            .clusters()
            .iter()
            .map(|c| {
                (c.label(), c.cluster.as_ref().map_or(0, |p| p.wave), c.kube_context.to_string(), c.namespace.clone())
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("prod/eu-canary".into(), 1, "ctx-a".into(), "p".into()),
                ("prod/eu".into(), 2, "ctx-b".into(), "p".into()),
                ("prod/us".into(), 2, "ctx-c".into(), "p-us".into()),
            ]
        );
        assert_eq!(prod.waves().iter().map(|w| w.len()).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(prod.clusters()[0].cluster_id.as_deref(), Some("id-a"));
        let targets = project.cluster_targets(prod, &project.releases.iter().collect::<Vec<_>>());
        let where_: Vec<String> = targets.iter().map(|t| format!("{}@{}", t.label(), t.namespace)).collect();
        assert_eq!(where_, ["eu-canary/app@p", "eu/app@p", "us/app@p-us"]);
        // The stage on one cluster is its own only cluster; exec picks one of several by name.
        let dev = project.stage("dev").expect("dev");
        assert_eq!(dev.clusters().len(), 1);
        assert!(dev.on_cluster(None).is_ok() && dev.on_cluster(Some("eu")).is_err());
        assert_eq!(prod.on_cluster(Some("us")).expect("us").label(), "prod/us");
        assert_eq!(
            prod.on_cluster(None).expect_err("which").to_string(),
            "stage `prod` is on several clusters: say which"
        );

        // Without waves: one cluster per wave, in the listed order.
        let (_dir, project) =
            fixture::load(&format!("{}{RELEASE}", stages.replace("    waves: [[eu-canary], [us, eu]]\n", "")));
        let prod = project.expect("loads");
        let prod = prod.stage("prod").expect("prod");
        assert_eq!(
            prod.waves().iter().map(|w| w[0].label()).collect::<Vec<_>>(),
            ["prod/eu-canary", "prod/eu", "prod/us"]
        );
    }

    #[test]
    fn clusters_and_waves_that_cannot_be_deployed_are_refused_with_their_line() {
        let found = problems(&format!(
            "stages:\n  - name: prod\n    kubeContext: x\n    clusterId: abc\n    namespace: p\n    clusters:\n      \
             - {{name: eu, kubeContext: ctx-a}}\n      - {{name: eu, kubeContext: ctx-a}}\n      - {{name: us, kubeContext: current}}\n      \
             - {{name: ap, kubeContext: ctx-d}}\n    waves: [[eu], [us, asia], [], [us]]\n  - name: dev\n    \
             kubeContext: dev\n    namespace: d\n    waves: [[a]]\n{RELEASE}"
        ));
        let at = |text: &str| found.iter().find(|(_, m)| m.contains(text)).map(|(line, _)| *line);
        assert_eq!(at("has both kubeContext and clusters"), Some(3), "{found:?}");
        assert_eq!(at("has both clusterId and clusters"), Some(2), "{found:?}");
        assert_eq!(at("cluster `eu` is defined twice (first at line 7)"), Some(8), "{found:?}");
        assert_eq!(at("clusters `eu` and `eu` both use context `ctx-a`"), Some(8), "{found:?}");
        assert_eq!(at("cluster `us`: kubeContext `current`"), Some(9), "{found:?}");
        assert_eq!(at("wave 2 names unknown cluster `asia`"), Some(11), "{found:?}");
        assert_eq!(at("wave 3 is empty"), Some(11), "{found:?}");
        assert_eq!(at("cluster `us` is in waves 2 and 4"), Some(11), "{found:?}");
        assert_eq!(at("cluster `ap` is in no wave"), Some(11), "{found:?}");
        assert_eq!(at("stage `dev` has waves but no clusters"), Some(15), "{found:?}");
    }

    #[test]
    fn a_stage_argo_cd_deploys_cannot_have_what_argo_cd_cannot_do() {
        let found = problems(
            "stages:\n  - name: prod\n    namespace: p\n    deploy: {command: [./deploy.sh]}\n    onFailure: rollback\n    \
             clusters:\n      \
             - {name: eu, kubeContext: a}\n      - {name: us, kubeContext: b}\n    \
             argocd: {repoUrl: \"\", context: current}\nreleases:\n  - name: app\n    chart: chart\n    \
             secrets: [values.yaml]\n",
        );
        let at = |text: &str| found.iter().find(|(_, m)| m.contains(text)).map(|(line, _)| *line);
        assert_eq!(at("stage `prod`: argocd and clusters"), Some(2), "{found:?}");
        assert_eq!(at("stage `prod`: argocd and deploy"), Some(2), "{found:?}");
        assert_eq!(at("stage `prod`: argocd and a rollback on failure"), Some(2), "{found:?}");
        assert_eq!(at("argocd.context `current`"), Some(9), "{found:?}");
        assert_eq!(at("argocd.repoUrl is empty"), Some(9), "{found:?}");
        assert_eq!(at("Argo CD cannot decrypt the encrypted values of release `app`"), Some(9), "{found:?}");
    }

    #[test]
    fn needs_name_releases_of_the_file_without_a_cycle() {
        let stages = "stages:\n  - name: dev\n    kubeContext: dev\n    namespace: a\n";
        let release = |name: &str, needs: &str| format!("  - name: {name}\n    chart: chart\n    needs: [{needs}]\n");
        let releases =
            [release("operator", "web"), release("db", "db"), release("web", "db, operatr, db"), release("api", "web")];
        let found = problems(&format!("{stages}releases:\n{}", releases.concat()));
        let at = |text: &str| found.iter().find(|(_, m)| m.contains(text)).map(|(line, _)| *line);
        assert_eq!(at("release `db` needs itself"), Some(11), "{found:?}");
        assert_eq!(at("release `web` needs `operatr`, which is not a release of this file"), Some(14), "{found:?}");
        assert_eq!(at("release `web` needs `db` twice"), Some(14), "{found:?}");
        assert_eq!(found.len(), 3, "no cycle yet (operatr is unknown): {found:?}");

        let releases =
            [release("operator", "web"), release("db", ""), release("web", "db, api"), release("api", "operator")];
        let found = problems(&format!("{stages}releases:\n{}", releases.concat()));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].1, "the releases' needs form a cycle: operator -> web -> api -> operator");
        assert_eq!(found[0].0, 17, "the line of the need that closes it (api needs operator)");
    }

    #[test]
    fn a_stage_name_that_is_a_path_is_one_problem() {
        let found = problems(&format!("stages:\n  - name: ../x\n    kubeContext: dev\n    namespace: a\n{RELEASE}"));
        assert_eq!(found.len(), 1, "no follow-up problems about paths built from it: {found:?}");
        assert!(found[0].1.contains("`../x` is not a valid stage name"), "{found:?}");
    }

    #[test]
    fn values_files_read_side_by_side_come_back_in_order() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let paths: Vec<std::path::PathBuf> = (0..40).map(|i| dir.path().join(format!("v{i}.yaml"))).collect();
        for (i, path) in paths.iter().enumerate() {
            match i % 3 {
                0 => std::fs::write(path, format!("count: {i}\n")).expect("write"),
                1 => std::fs::write(path, "a: [\n").expect("write"),
                _ => {} // missing
            }
        }
        let read = super::read_all(&paths.iter().map(std::path::PathBuf::as_path).collect::<Vec<_>>());
        for (i, read) in read.iter().enumerate() {
            match (i % 3, read) {
                (0, super::Read::Values(values, _)) => assert_eq!(values["count"], serde_json::json!(i)),
                (1, super::Read::Invalid(d)) => assert!(d.file.ends_with(format!("v{i}.yaml")), "{d:?}"),
                (2, super::Read::Unreadable(_)) => {}
                (_, _) => panic!("file {i} read as something else"),
            }
        }
    }

    #[test]
    fn soak_and_freeze_windows_are_checked_where_they_are_written() {
        let stage =
            |extra: &str| format!("stages:\n  - name: prod\n    kubeContext: prod\n    namespace: a\n{extra}{RELEASE}");
        let found = problems(&stage(
            "    soak: 1d\n    freeze:\n      - from: 2026-12-24\n        to: 2026-12-23\n      - cron: 0 12 * *\n        \
             duration: 68h\n      - from: 2026-12-24\n        to: 2026-12-26\n        timeZone: Mars/Olympus\n      \
             - cron: 0 12 * * FRI\n",
        ));
        let lines: Vec<(u64, &str)> = found.iter().map(|(line, message)| (*line, message.as_str())).collect();
        assert_eq!(lines.len(), 5, "{lines:?}");
        assert!(lines[0].0 == 5 && lines[0].1.contains("soak `1d` is not a duration"), "{lines:?}");
        assert!(lines[1].0 == 7 && lines[1].1.contains("`to` (2026-12-23) is not after `from`"), "{lines:?}");
        assert!(lines[2].0 == 9 && lines[2].1.contains("has 4 fields"), "{lines:?}");
        assert!(lines[3].0 == 11 && lines[3].1.contains("`Mars/Olympus` is not a time zone"), "{lines:?}");
        assert!(lines[4].0 == 14 && lines[4].1.contains("needs either `from` and `to`, or `cron` and `duration`"));

        let (_dir, loaded) = fixture::load(&stage(
            "    soak: 24h\n    freeze:\n      - cron: 0 12 * * FRI\n        duration: 68h\n        \
             timeZone: Europe/Berlin\n        reason: weekend\n",
        ));
        let project = loaded.expect("loads");
        assert_eq!(project.stages[0].soak, Some(std::time::Duration::from_secs(24 * 3600)));
        assert_eq!(project.stages[0].freeze[0].describe(), "`0 12 * * FRI` for 68h (Europe/Berlin): weekend");
    }
}
