//! The only module that runs helm. Every call carries the stage's explicit context and
//! namespace, and the caller's HELM_KUBE* / HELM_NAMESPACE variables are removed from helm's
//! environment so they can never redirect one stage's call to another cluster or namespace.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::config::fingerprint;
use crate::config::stages::{self, KubeContext, Stage, Target};
use crate::error::{Error, HelmFailure, Result};
use crate::redaction;
use crate::system::interrupt;
use crate::system::kube::{Capabilities, Kubectl};
use crate::system::records;
pub use crate::system::records::{Installed, Revision};
use crate::system::sops;
use crate::terminal;

/// Variables helm reads to pick a cluster, namespace or identity. Helm sets several of them for
/// a plugin from its own flags (`helm -n other envs ...`); a stage's call must not inherit them.
pub const SCRUBBED_ENV: &[&str] = &[
    "HELM_NAMESPACE",
    "HELM_KUBECONTEXT",
    "HELM_KUBEAPISERVER",
    "HELM_KUBETOKEN",
    "HELM_KUBEASUSER",
    "HELM_KUBEASGROUPS",
    "HELM_KUBECAFILE",
    "HELM_KUBEINSECURE_SKIP_TLS_VERIFY",
    "HELM_KUBETLS_SERVER_NAME",
];

#[derive(Debug, Clone)]
pub struct Helm {
    bin: PathBuf,
    /// Asked of helm once, when a call first depends on it (held while asking, so parallel
    /// calls wait for the one answer).
    major: Arc<Mutex<Option<Major>>>,
    /// Reads helm's release records straight from their Secrets, when helm keeps them there
    /// and kubectl is at hand (see `system::records`).
    records: Option<Kubectl>,
    /// This run's plain `helm template` outputs, by arguments and the config's fingerprint
    /// (its files' contents): `drift` compares one config with its neighbours and with its
    /// cluster, and a chart that renders alike everywhere is rendered once for both. `None`:
    /// the render failed (run again for its error).
    renders: Arc<Mutex<Renders>>,
}

/// Renders by their arguments and the fingerprint of the files they read, each made once.
type Renders = HashMap<(Vec<String>, String), Arc<OnceLock<Option<String>>>>;

/// A release as deployed now: the latest revision (`None`: not installed), its user-supplied
/// values, and its history oldest first (empty unless asked for).
#[derive(Debug)]
pub struct Current {
    pub installed: Option<Installed>,
    pub values: UserValues,
    pub history: Vec<Revision>,
}

/// The major version of helm: the flags that do one thing differ between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Major {
    V3,
    V4,
}

impl Major {
    /// `helm version --template {{.Version}}` output (`v3.22.0`, `v4.3.2`).
    fn parse(version: &str) -> Option<Major> {
        match version.trim().trim_start_matches('v').split('.').next()? {
            "3" => Some(Major::V3),
            "4" => Some(Major::V4),
            _ => None,
        }
    }

    /// The flags of `helm template` that render as an upgrade does: against the cluster (its
    /// API versions, the server's validation) and with `lookup` answered by it, so a chart that
    /// keeps a generated password or certificate through `lookup` renders the one it keeps.
    /// Helm 4: `--dry-run=server` (`--validate` is deprecated). Helm 3: `--validate` alone
    /// reaches the cluster without running `lookup`, `--dry-run=server` alone runs `lookup`
    /// without the cluster's API versions; both together do both (Helm 3.13 and later).
    fn template_against_cluster(self) -> &'static [&'static str] {
        match self {
            Major::V3 => &["--validate", "--dry-run=server"],
            Major::V4 => &["--dry-run=server"],
        }
    }

    /// Flags of `helm rollback` that take back fields someone changed in the cluster: Helm 4
    /// applies server-side, so a `kubectl set image` owns the field and a plain rollback fails
    /// with a conflict; Helm 3 patches over it.
    pub fn rollback_overriding_edits(self) -> &'static [&'static str] {
        match self {
            Major::V3 => &[],
            Major::V4 => &["--force-conflicts"],
        }
    }

    /// A stage's `helmArgs` in this major's spelling: Helm 4 renamed `--atomic` to
    /// `--rollback-on-failure` and `--force` to `--force-replace` (the old names still work,
    /// with a deprecation warning; the new ones do not exist in Helm 3). So one stages file
    /// deploys the same way under both.
    fn spelled(self, arg: &str) -> String {
        const RENAMED: &[(&str, &str)] = &[("--atomic", "--rollback-on-failure"), ("--force", "--force-replace")];
        let (flag, value) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value)),
            None => (arg, None),
        };
        let renamed = RENAMED.iter().find_map(|&(v3, v4)| match self {
            Major::V3 if flag == v4 => Some(v3),
            Major::V4 if flag == v3 => Some(v4),
            _ => None,
        });
        match (renamed, value) {
            (Some(flag), Some(value)) => format!("{flag}={value}"),
            (Some(flag), None) => flag.to_string(),
            (None, _) => arg.to_string(),
        }
    }
}

impl Helm {
    /// `$HELM_BIN` when helm runs us as a plugin (the helm the user invoked), else `helm` on PATH.
    pub fn locate() -> Result<Helm> {
        if let Some(bin) = std::env::var_os("HELM_BIN").filter(|b| !b.is_empty()) {
            let bin = PathBuf::from(bin);
            if bin.is_file() {
                return Ok(Helm::at(bin));
            }
            if let Ok(found) = which::which(&bin) {
                return Ok(Helm::at(found));
            }
            return Err(Error::HelmNotFound { searched: format!("HELM_BIN={}", bin.display()) });
        }
        which::which("helm")
            .map(Helm::at)
            .map_err(|_| Error::HelmNotFound { searched: "`helm` on PATH (HELM_BIN is not set)".into() })
    }

    fn at(bin: PathBuf) -> Helm {
        let records = records::in_secrets().then(|| Kubectl::locate().ok()).flatten();
        Helm { bin, major: Arc::default(), records, renders: Arc::default() }
    }

    /// Every target's release as deployed now, in the order of `targets`. Where helm keeps its
    /// records in Secrets, one kubectl read per namespace answers for all its releases;
    /// otherwise, or when that read fails, `helm get` (and `helm history` when `with_history`)
    /// per release, whose own errors say what is wrong.
    pub fn current_all(&self, targets: &[Target], with_history: bool) -> Vec<Result<Current>> {
        let groups = stages::by_namespace(targets.iter().enumerate());
        let mut results: Vec<Option<Result<Current>>> = targets.iter().map(|_| None).collect();
        std::thread::scope(|scope| {
            let handles: Vec<_> = groups
                .values()
                .map(|indexes| scope.spawn(move || self.current_in_namespace(targets, indexes, with_history)))
                .collect();
            for (indexes, handle) in groups.values().zip(handles) {
                let group = handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                for (&index, result) in indexes.iter().zip(group) {
                    results[index] = Some(result);
                }
            }
        });
        results.into_iter().map(|result| result.unwrap_or_else(|| unreachable!("every target is in a group"))).collect()
    }

    /// The targets at `indexes`, all of one stage and namespace.
    fn current_in_namespace(&self, targets: &[Target], indexes: &[usize], with_history: bool) -> Vec<Result<Current>> {
        let first = &targets[indexes[0]];
        if let Some(kubectl) = &self.records {
            let names: Vec<&str> = indexes.iter().map(|&i| targets[i].release.name.as_str()).collect();
            let read = kubectl.helm_records(first.stage, &first.namespace, &names).and_then(|lines| {
                lines.iter().map(|line| records::decode_line(line)).collect::<Result<Vec<_>, _>>().map_err(|why| {
                    Error::Other(anyhow::anyhow!(
                        "a release record in namespace {} is unreadable: {why}",
                        first.namespace
                    ))
                })
            });
            match read {
                Ok(mut all) => {
                    return names
                        .iter()
                        .map(|name| {
                            let (own, rest) = all.drain(..).partition(|r| r.name == *name);
                            all = rest;
                            Ok(match records::deployed(own) {
                                Some(d) => {
                                    Current { installed: Some(d.installed), values: Some(d.values), history: d.history }
                                }
                                None => Current { installed: None, values: None, history: Vec::new() },
                            })
                        })
                        .collect();
                }
                Err(err) => terminal::debug(&format!("{err:#}; asking helm release by release instead")),
            }
        }
        super::parallel::in_parallel(indexes.iter().map(|&i| move || self.current(&targets[i], with_history)).collect())
    }

    fn current(&self, target: &Target, with_history: bool) -> Result<Current> {
        let history = match with_history {
            true => self.history(target)?,
            false => Vec::new(),
        };
        Ok(Current { installed: self.installed(target)?, values: self.user_values(target)?, history })
    }

    /// Helm's major version, asked once (`helm version`).
    pub fn major(&self, stage: &Stage) -> Result<Major> {
        let mut known = self.major.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(major) = *known {
            return Ok(major);
        }
        let call = Call { action: "version", stage, release: None, target: None };
        let version = self.run(&call, vec!["version".into(), "--template".into(), "{{.Version}}".into()])?;
        let major = Major::parse(&version)
            .ok_or_else(|| Error::UnsupportedHelm { bin: self.bin.clone(), version: version.trim().to_string() })?;
        *known = Some(major);
        Ok(major)
    }

    /// `helm template` for one release of one stage; returns the rendered manifests. Rendered
    /// once per run for the same arguments and files, even when asked from several threads.
    pub fn template(&self, target: &Target) -> Result<String> {
        let args = template_args(target);
        let Some(config) = fingerprint::of(target) else {
            return self.run(&Call::release("template", target), args);
        };
        let cell = {
            let mut renders = self.renders.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(renders.entry((args.clone(), config)).or_default())
        };
        let mut failure = None;
        let text = cell.get_or_init(|| {
            self.run(&Call::release("template", target), args.clone()).map_err(|err| failure = Some(err)).ok()
        });
        match (text, failure) {
            (Some(text), _) => Ok(text.clone()),
            (None, Some(err)) => Err(err),
            (None, None) => self.template_anew(target),
        }
    }

    /// `helm template` run again, never the output of an earlier render: to see what a chart
    /// generates anew at each render.
    pub fn template_anew(&self, target: &Target) -> Result<String> {
        self.run(&Call::release("template", target), template_args(target))
    }

    /// `helm template` rendered against the stage's cluster, with its real API versions
    /// (`.Capabilities`) and `lookup`, the way an upgrade renders it. Used where the result is
    /// compared with what is deployed.
    /// Without the CRDs of `crds/`: helm validates them as objects of the release, which those
    /// installed before are not.
    /// `upgrade`: the release is installed, so the render is an upgrade's (`--is-upgrade`:
    /// `.Release.IsUpgrade`, which charts test to generate a value on install only).
    /// A stage Argo CD deploys renders as Argo CD renders it: `helm template` without the
    /// cluster (`lookup` answers nothing), whatever holds its objects.
    pub fn template_for_cluster(&self, target: &Target, upgrade: bool) -> Result<String> {
        if target.stage.argocd.is_some() {
            return self.template(target);
        }
        let mut args = template_args(target);
        args.extend(self.major(target.stage)?.template_against_cluster().iter().map(|f| f.to_string()));
        if upgrade {
            args.push("--is-upgrade".into());
        }
        self.run(&Call::release("template", target), args)
    }

    /// `helm template` without a cluster, as an upgrade renders for one whose `.Capabilities`
    /// are `capabilities` (read once per cluster, `Kubectl::capabilities`): for charts that
    /// cannot call `lookup`, the same text as a render against the cluster, without a cluster
    /// discovery in each helm process.
    pub fn template_offline(&self, target: &Target, capabilities: &Capabilities) -> Result<String> {
        let mut args = template_args(target);
        args.extend(["--is-upgrade".into(), "--kube-version".into(), capabilities.kube_version.clone()]);
        for version in &capabilities.api_versions {
            args.extend(["--api-versions".into(), version.clone()]);
        }
        self.run(&Call::release("template", target), args)
    }

    /// `helm template --include-crds` without a cluster, as if it also served `api_versions`
    /// (`--api-versions`, seen by `.Capabilities.APIVersions`).
    pub fn template_offline_with_crds(&self, target: &Target, api_versions: &[String]) -> Result<String> {
        let mut args = template_args(target);
        args.push("--include-crds".into());
        for version in api_versions {
            args.extend(["--api-versions".into(), version.clone()]);
        }
        self.run(&Call::release("template", target), args)
    }

    /// The release as deployed (latest revision): its manifest and hooks, or `None` when the
    /// release is not installed in the target's namespace.
    pub fn installed(&self, target: &Target) -> Result<Option<Installed>> {
        let mut args = release_query("get", target);
        args.insert(1, "all".into());
        args.extend(["--template".into(), INSTALLED_TEMPLATE.into()]);
        match self.run(&Call::release("get", target), args) {
            Ok(output) => parse_installed(&output).map(Some).ok_or_else(|| unreadable("get all", target)),
            Err(Error::Helm(failure)) if failure.stderr.contains("release: not found") => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The values the deployed revision was installed with (`helm get values`: user-supplied,
    /// without the chart's defaults); `None` when the release is not installed.
    pub fn user_values(&self, target: &Target) -> Result<UserValues> {
        let mut args = release_query("get", target);
        args.insert(1, "values".into());
        args.extend(["--output".into(), "json".into()]);
        match self.run(&Call::release("get values", target), args) {
            // A release installed without values prints `null`.
            Ok(output) => match serde_json::from_str(&output) {
                Ok(serde_json::Value::Object(map)) => Ok(Some(map)),
                Ok(serde_json::Value::Null) => Ok(Some(serde_json::Map::new())),
                _ => Err(unreadable("get values", target)),
            },
            Err(Error::Helm(failure)) if failure.stderr.contains("release: not found") => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The release's revisions, oldest first (helm keeps the last `--history-max`); empty when
    /// the release is not installed.
    pub fn history(&self, target: &Target) -> Result<Vec<Revision>> {
        let mut args = release_query("history", target);
        args.extend(["--output".into(), "json".into()]);
        match self.run(&Call::release("history", target), args) {
            Ok(output) => serde_json::from_str(&output).map_err(|_| unreadable("history", target)),
            Err(Error::Helm(failure)) if failure.stderr.contains("release: not found") => Ok(Vec::new()),
            Err(err) => Err(err),
        }
    }

    /// `helm upgrade --install` of a target: its values files in order, `--reset-values` (never
    /// the values of the previous revision), the chart version, the stage's `helmArgs`. Returns
    /// helm's output.
    pub fn upgrade(&self, target: &Target, description: &str, labels: &[(String, String)]) -> Result<String> {
        let major = self.major(target.stage)?;
        self.run(&Call::release("upgrade", target), upgrade_args(target, major, description, labels))
    }

    /// `helm rollback` of a target's release to revision `to`.
    pub fn rollback(&self, target: &Target, to: u64) -> Result<()> {
        let mut args = release_query("rollback", target);
        args.push(to.to_string());
        self.run(&Call::release("rollback", target), args).map(|_| ())
    }

    /// `helm uninstall` of a target's release (a first install that failed, taken back).
    pub fn uninstall(&self, target: &Target) -> Result<()> {
        self.run(&Call::release("uninstall", target), release_query("uninstall", target)).map(|_| ())
    }

    /// The names of the releases installed in a namespace of a stage (any status).
    /// The chart repositories helm knows (`helm repo list`), name to URL; none is no error.
    pub fn repositories(&self, stage: &Stage) -> Result<BTreeMap<String, String>> {
        let call = Call { action: "repo list", stage, release: None, target: None };
        let listed = match self.run(&call, vec!["repo".into(), "list".into(), "--output".into(), "json".into()]) {
            Ok(listed) => listed,
            Err(Error::Helm(failure)) if failure.stderr.contains("no repositories") => return Ok(BTreeMap::new()),
            Err(err) => return Err(err),
        };
        let entries: Vec<serde_json::Value> = serde_json::from_str(&listed).unwrap_or_default();
        Ok(entries
            .iter()
            .filter_map(|e| Some((e["name"].as_str()?.to_string(), e["url"].as_str()?.to_string())))
            .collect())
    }

    pub fn releases_in(&self, stage: &Stage, namespace: &str) -> Result<Vec<String>> {
        let mut args = vec!["list".to_string(), "--namespace".into(), namespace.to_string()];
        args.extend(context_args(&stage.kube_context));
        // Every state, spelled so both majors take it: Helm 4 has no `--all` (it lists every
        // state by default), Helm 3 lists only deployed and failed releases without flags.
        args.extend(
            ["--deployed", "--failed", "--pending", "--superseded", "--uninstalling", "--uninstalled"]
                .map(String::from),
        );
        args.extend(["--short".into(), "--max".into(), "100000".into()]);
        let call = Call { action: "list", stage, release: None, target: None };
        Ok(self.run(&call, args)?.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect())
    }

    fn run(&self, call: &Call<'_>, args: Vec<String>) -> Result<String> {
        let mut command = display_command(&args);
        // Taken before the decrypted values' pipes exist: their writers wait only for helm.
        let slot = crate::system::slots::take();
        let secrets = call.target.map(|t| t.secret_files.as_slice()).filter(|files| !files.is_empty());
        let feed = match secrets {
            Some(files) if matches!(call.action, "template" | "upgrade") => Some(sops::Feed::open(files)?),
            _ => None,
        };
        let args = match &feed {
            Some(feed) => {
                command = feed.display(&command);
                feed.substitute(args)
            }
            None => args,
        };
        terminal::debug(&format!("running {command}"));
        let mut expression =
            duct::cmd(&self.bin, args.iter().map(OsString::from)).stdout_capture().stderr_capture().unchecked();
        for name in SCRUBBED_ENV {
            expression = expression.env_remove(name);
        }
        // A deploy holds the project lock for as long as it runs, whatever becomes of helm-envs.
        if call.action == "upgrade"
            && let Some(lock) = crate::system::files::lock_for_child()
        {
            expression = expression.stdin_file(lock);
        }
        let could_not_start = |err: std::io::Error| {
            anyhow::Error::new(err).context(format!(
                "could not start {} (for stage `{}`)",
                self.bin.display(),
                call.stage.name
            ))
        };
        let handle = expression.start().map_err(could_not_start)?;
        let running = interrupt::running(&handle.pids(), interrupt::Child::Tool);
        let out = handle.into_output().map_err(could_not_start)?;
        drop(running);
        drop(slot);
        drop(feed);
        if out.status.success() {
            if matches!(call.action, "template" | "get") {
                redaction::rendered(&String::from_utf8_lossy(&out.stdout));
            }
            String::from_utf8(out.stdout).map_err(|_| {
                Error::Other(anyhow::anyhow!(
                    "helm {} for stage `{}` printed output that is not UTF-8",
                    call.action,
                    call.stage.label(),
                ))
            })
        } else {
            Err(Error::Helm(Box::new(HelmFailure {
                action: call.action,
                stage: call.stage.label(),
                release: call.release.map(str::to_string),
                context: call.stage.kube_context.name().map(str::to_string),
                command,
                stderr: without_credentials(String::from_utf8_lossy(&out.stderr).into_owned(), call.target),
            })))
        }
    }
}

/// `helm ACTION RELEASE --namespace NS [--kube-context C]`.
fn release_query(action: &str, target: &Target) -> Vec<String> {
    let mut args =
        vec![action.to_string(), target.release.name.clone(), "--namespace".into(), target.namespace.clone()];
    args.extend(context_args(&target.stage.kube_context));
    args
}

fn unreadable(action: &str, target: &Target) -> Error {
    Error::Other(anyhow::anyhow!(
        "could not read `helm {action}` output for release `{}` in stage `{}`",
        target.release.name,
        target.stage.label()
    ))
}

/// The user-supplied values of a deployed revision; `None` when the release is not installed.
pub type UserValues = Option<serde_json::Map<String, serde_json::Value>>;

/// What a helm call is for, to say so when it fails.
struct Call<'a> {
    action: &'static str,
    stage: &'a Stage,
    release: Option<&'a str>,
    /// The target whose values files may hold credentials helm could echo in a message.
    target: Option<&'a Target<'a>>,
}

impl<'a> Call<'a> {
    fn release(action: &'static str, target: &'a Target) -> Self {
        Call { action, stage: target.stage, release: Some(&target.release.name), target: Some(target) }
    }
}

/// Helm's message with the secrets of the target's values files taken out: a template's
/// `fail` or a type error can print a value, and helm's output reaches people and logs. The
/// files nothing read before are read here (which shows their credentials to `redaction`).
fn without_credentials(stderr: String, target: Option<&Target>) -> String {
    if let Some(target) = target {
        for file in target.values_files.iter().filter(|f| !crate::config::yaml::was_parsed(&f.path)) {
            if let Ok(text) = std::fs::read_to_string(&file.path) {
                let _ = crate::config::yaml::parse_values(&text, &file.path);
            }
        }
    }
    redaction::scrub(&stderr).into_owned()
}

/// `helm get all --template`: revision, status and chart on three lines, then the manifest,
/// then (after a record separator, which YAML text cannot contain) the hooks in `helm get
/// hooks`' format, in one call.
const INSTALLED_TEMPLATE: &str = "{{.Release.Version}}\n{{.Release.Info.Status}}\n\
    {{.Release.Chart.Metadata.Name}}-{{.Release.Chart.Metadata.Version}}\n{{.Release.Manifest}}\x1e\
    {{range .Release.Hooks}}\n---\n# Source: {{.Path}}\n{{.Manifest}}\n{{end}}";

/// `helm get all --template INSTALLED_TEMPLATE` output.
fn parse_installed(output: &str) -> Option<Installed> {
    let mut parts = output.splitn(4, '\n');
    let revision = parts.next()?.trim().parse().ok()?;
    let status = parts.next()?.trim().to_string();
    let chart = parts.next()?.trim().to_string();
    let (manifest, hooks) = parts.next().unwrap_or_default().split_once('\x1e')?;
    Some(Installed {
        revision,
        status,
        chart,
        manifest: manifest.to_string(),
        hooks: hooks.to_string(),
        config_label: None,
    })
}

/// Arguments of `helm template` for a target.
pub fn template_args(target: &Target) -> Vec<String> {
    let mut args = vec![
        "template".to_string(),
        target.release.name.clone(),
        target.release.chart.reference(),
        "--namespace".into(),
        target.namespace.clone(),
    ];
    args.extend(context_args(&target.stage.kube_context));
    // The encrypted files last, as written; `run` hands helm their decrypted text instead.
    for file in target.values_files.iter().chain(&target.secret_files) {
        args.push("--values".into());
        args.push(file.path.display().to_string());
    }
    if let Some(version) = &target.version {
        args.push("--version".into());
        args.push(version.clone());
    }
    args
}

/// Arguments of `helm upgrade --install` for a target.
pub fn upgrade_args(target: &Target, major: Major, description: &str, labels: &[(String, String)]) -> Vec<String> {
    let mut args = template_args(target);
    args[0] = "upgrade".into();
    args.extend(["--install".into(), "--reset-values".into(), "--description".into(), description.to_string()]);
    if !labels.is_empty() {
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        args.extend(["--labels".into(), labels.join(",")]);
    }
    if target.stage.create_namespace {
        args.push("--create-namespace".into());
    }
    args.extend(target.stage.helm_args.iter().map(|arg| major.spelled(arg)));
    args
}

/// No flag for the kubeconfig's current context (chosen explicitly by the stage): with
/// HELM_KUBECONTEXT removed from the environment helm falls back to exactly that.
fn context_args(context: &KubeContext) -> Vec<String> {
    context.name().map(|name| vec!["--kube-context".into(), name.to_string()]).unwrap_or_default()
}

/// A command line for people to read and copy.
pub fn display_command(args: &[String]) -> String {
    terminal::command_line("helm", args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majors_are_read_from_helm_version() {
        assert_eq!(Major::parse("v3.22.0\n"), Some(Major::V3));
        assert_eq!(Major::parse("v4.3.2"), Some(Major::V4));
        assert_eq!(Major::parse("v2.17.0"), None);
        assert_eq!(Major::parse(""), None);
    }

    #[test]
    fn renamed_flags_are_spelled_for_the_major() {
        assert_eq!(Major::V4.spelled("--atomic"), "--rollback-on-failure");
        assert_eq!(Major::V4.spelled("--force=true"), "--force-replace=true");
        assert_eq!(Major::V3.spelled("--rollback-on-failure"), "--atomic");
        assert_eq!(Major::V3.spelled("--force-replace"), "--force");
        assert_eq!(Major::V3.spelled("--atomic"), "--atomic");
        assert_eq!(Major::V4.spelled("--force-conflicts"), "--force-conflicts");
        assert_eq!(Major::V4.spelled("--timeout=5m"), "--timeout=5m");
    }

    #[test]
    fn quoting_is_only_added_where_needed() {
        assert_eq!(
            display_command(&["template".into(), "web".into(), "a b".into(), "it's".into()]),
            "helm template web 'a b' 'it'\\''s'"
        );
        assert_eq!(display_command(&["get".into(), "a\nb's\\".into()]), r"helm get $'a\nb\'s\\'");
        assert_eq!(display_command(&["get".into(), "a\x1eb".into()]), r"helm get $'a\x1eb'");
    }
}
