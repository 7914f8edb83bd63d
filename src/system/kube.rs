//! The only module that runs kubectl. Every call carries the stage's explicit context and
//! namespace. Secret listings read names and key names only, never values; `drift --live`
//! reads a release's own objects (its Secrets included) to compare them, and the comparison
//! redacts Secret data.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::PathBuf;

use serde_json::Value;

use crate::config::stages::{KubeContext, Stage};
use crate::error::{Error, KubectlFailure, Result};
use crate::terminal;

/// Prints `name key key ...` per Secret: the values never leave kubectl.
const SECRET_KEYS_TEMPLATE: &str =
    "{{range .items}}{{.metadata.name}}{{range $key, $value := .data}} {{$key}}{{end}}{{\"\\n\"}}{{end}}";

/// Prints the `release` data of each of helm's record Secrets, one per line.
/// Per record, one line: the `helm-envs/config` label (empty without it), a space, the data.
const HELM_RECORDS_TEMPLATE: &str = "{{range .items}}{{with .metadata.labels}}{{with index . \"helm-envs/config\"}}\
    {{.}}{{end}}{{end}} {{index .data \"release\"}}{{\"\\n\"}}{{end}}";

#[derive(Debug, Clone)]
pub struct Kubectl {
    bin: PathBuf,
}

/// Secret name -> key names, as stored in a namespace.
pub type SecretKeys = BTreeMap<String, BTreeSet<String>>;

impl Kubectl {
    /// `$HELM_ENVS_KUBECTL` when set, else `kubectl` on PATH.
    pub fn locate() -> Result<Kubectl> {
        if let Some(bin) = std::env::var_os("HELM_ENVS_KUBECTL").filter(|b| !b.is_empty()) {
            let bin = PathBuf::from(bin);
            return which::which(&bin)
                .map(|bin| Kubectl { bin })
                .map_err(|_| Error::KubectlNotFound { searched: format!("HELM_ENVS_KUBECTL={}", bin.display()) });
        }
        which::which("kubectl")
            .map(|bin| Kubectl { bin })
            .map_err(|_| Error::KubectlNotFound { searched: "`kubectl` on PATH".into() })
    }

    /// The Secrets of a namespace with their key names, in one query; `None` when the namespace
    /// does not exist (asked only when the namespace holds no Secrets, since an empty list and
    /// an absent namespace look the same).
    pub fn secret_keys(&self, stage: &Stage, namespace: &str) -> Result<Option<SecretKeys>> {
        let mut args = vec!["get".to_string(), "secrets".into(), "--namespace".into(), namespace.to_string()];
        args.extend(context_args(&stage.kube_context));
        args.extend(["--output".into(), format!("go-template={SECRET_KEYS_TEMPLATE}")]);
        let listing = self.run("list Secrets", stage, namespace, args, None)?;
        let secrets: SecretKeys = listing
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                let name = words.next()?.to_string();
                Some((name, words.map(str::to_string).collect()))
            })
            .collect();
        if secrets.is_empty() && !self.namespace_exists(stage, namespace)? {
            return Ok(None);
        }
        Ok(Some(secrets))
    }

    /// helm's records of `releases` in a namespace (every revision; see `system::records`), one
    /// per line: the `helm-envs/config` label and the `release` data (base64 text, which
    /// kubectl prints as stored).
    pub fn helm_records(&self, stage: &Stage, namespace: &str, releases: &[&str]) -> Result<Vec<String>> {
        let mut args = vec!["get".to_string(), "secrets".into(), "--namespace".into(), namespace.to_string()];
        args.extend(context_args(&stage.kube_context));
        args.extend([
            "--selector".into(),
            format!("owner=helm,name in ({})", releases.join(",")),
            "--field-selector".into(),
            "type=helm.sh/release.v1".into(),
            "--output".into(),
            format!("go-template={HELM_RECORDS_TEMPLATE}"),
        ]);
        let out = self.run("read helm's release records", stage, namespace, args, None)?;
        Ok(out.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect())
    }

    /// What helm's `.Capabilities` holds for the stage's cluster, read once for many offline
    /// renders: the server's version, every API version it serves, and each kind of the
    /// preferred versions (`apps/v1/Deployment`), as helm's discovery lists them.
    pub fn capabilities(&self, stage: &Stage) -> Result<Capabilities> {
        let call = |what: &'static str, mut args: Vec<String>| {
            args.extend(context_args(&stage.kube_context));
            self.run(what, stage, "default", args, None)
        };
        let (version, groups, resources) = std::thread::scope(|scope| {
            let version =
                scope.spawn(|| call("read the cluster's version", vec!["version".into(), "--output=json".into()]));
            let groups = scope.spawn(|| call("list the cluster's API versions", vec!["api-versions".into()]));
            let resources = call("list the cluster's API resources", vec!["api-resources".into()]);
            (super::parallel::joined(version), super::parallel::joined(groups), resources)
        });
        let version: Value = serde_json::from_str(&version?).unwrap_or_default();
        let kube_version = version["serverVersion"]["gitVersion"].as_str().unwrap_or_default().to_string();
        if kube_version.is_empty() {
            return Err(Error::Other(anyhow::anyhow!(
                "`kubectl version` did not say the version of stage `{}`'s cluster",
                stage.label()
            )));
        }
        let mut api_versions: BTreeSet<String> =
            groups?.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
        api_versions.extend(kinds_of(&resources?));
        Ok(Capabilities { kube_version, api_versions: api_versions.into_iter().collect() })
    }

    /// The UID of namespace `kube-system` in the stage's cluster: what `clusterId` pins.
    pub fn cluster_id(&self, stage: &Stage) -> Result<String> {
        let mut args = vec!["get".to_string(), "namespace".into(), "kube-system".into()];
        args.extend(context_args(&stage.kube_context));
        args.extend(["--output".into(), "jsonpath={.metadata.uid}".into()]);
        Ok(self
            .run("read the cluster's identity (namespace kube-system)", stage, "kube-system", args, None)?
            .trim()
            .to_string())
    }

    pub fn namespace_exists(&self, stage: &Stage, namespace: &str) -> Result<bool> {
        let mut args = vec!["get".to_string(), "namespace".into(), namespace.to_string()];
        args.extend(context_args(&stage.kube_context));
        args.extend(["--ignore-not-found".into(), "--output".into(), "name".into()]);
        Ok(!self.run("look up the namespace", stage, namespace, args, None)?.trim().is_empty())
    }

    /// The objects of a manifest as they are in the cluster now (`kubectl get -f -`); objects
    /// that no longer exist are left out.
    pub fn live_objects(&self, stage: &Stage, namespace: &str, manifest: &Stdin) -> Result<Vec<Value>> {
        let mut args = vec!["get".to_string(), "--filename".into(), "-".into(), "--namespace".into(), namespace.into()];
        args.extend(context_args(&stage.kube_context));
        // managedFields name who edited an object; kubectl hides them since 1.21.
        args.extend(["--ignore-not-found".into(), "--show-managed-fields".into(), "--output".into(), "json".into()]);
        let out = self.run("read the release's objects", stage, namespace, args, Some(manifest))?;
        objects(&out, stage)
    }

    /// The objects of a manifest as they would be if it were applied now: a server-side dry run
    /// (`kubectl apply --dry-run=server`, what `kubectl diff` compares with). Nothing is changed.
    pub fn applied_dry_run(&self, stage: &Stage, namespace: &str, manifest: &Stdin) -> Result<Vec<Value>> {
        let mut args =
            vec!["apply".to_string(), "--dry-run=server".into(), "--filename".into(), "-".into(), "--namespace".into()];
        args.push(namespace.into());
        args.extend(context_args(&stage.kube_context));
        args.extend(["--output".into(), "json".into()]);
        let out = self.run("dry-run apply the release's manifest", stage, namespace, args, Some(manifest))?;
        objects(&out, stage)
    }

    /// The Pods of a namespace (`kubectl get pods -o json`), to say why a workload is not ready.
    pub fn pods(&self, stage: &Stage, namespace: &str) -> Result<Vec<Value>> {
        let mut args = vec!["get".to_string(), "pods".into(), "--namespace".into(), namespace.to_string()];
        args.extend(context_args(&stage.kube_context));
        args.extend(["--output".into(), "json".into()]);
        let out = self.run("list the namespace's Pods", stage, namespace, args, None)?;
        objects(&out, stage)
    }

    /// The objects of one kind in a namespace (`kubectl get networkpolicies -o json`).
    pub fn list(&self, stage: &Stage, namespace: &str, resource: &'static str) -> Result<Vec<Value>> {
        let mut args = vec!["get".to_string(), resource.into(), "--namespace".into(), namespace.to_string()];
        args.extend(context_args(&stage.kube_context));
        args.extend(["--output".into(), "json".into()]);
        let out = self.run("list the namespace's isolation objects", stage, namespace, args, None)?;
        objects(&out, stage)
    }

    /// A namespace's labels; `None` when it does not exist.
    pub fn namespace_labels(&self, stage: &Stage, namespace: &str) -> Result<Option<BTreeMap<String, String>>> {
        let mut args = vec!["get".to_string(), "namespace".into(), namespace.to_string()];
        args.extend(context_args(&stage.kube_context));
        args.extend(["--ignore-not-found".into(), "--output".into(), "json".into()]);
        let out = self.run("read the namespace's labels", stage, namespace, args, None)?;
        if out.trim().is_empty() {
            return Ok(None);
        }
        let object: Value = serde_json::from_str(&out)
            .map_err(|_| Error::Other(anyhow::anyhow!("kubectl printed a namespace that is not JSON")))?;
        let labels = object["metadata"]["labels"].as_object().cloned().unwrap_or_default();
        Ok(Some(labels.into_iter().map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string())).collect()))
    }

    /// Create an object (an Event) from its JSON (`kubectl create -f -`).
    pub fn create(&self, stage: &Stage, namespace: &str, object: &Value) -> Result<()> {
        let text = object.to_string();
        let stdin = Stdin { text: &text, what: format!("a {}", object["kind"].as_str().unwrap_or("object")) };
        let mut args =
            vec!["create".to_string(), "--filename".into(), "-".into(), "--namespace".into(), namespace.to_string()];
        args.extend(context_args(&stage.kube_context));
        args.extend(["--output".into(), "name".into()]);
        self.run("record an Event", stage, namespace, args, Some(&stdin)).map(|_| ())
    }

    /// Apply objects server-side as helm-envs (`kubectl apply --server-side`), taking over the
    /// fields it sets: the Argo CD Applications it generates for `stage`, in Argo CD's cluster.
    pub fn apply(&self, stage: &Stage, context: &KubeContext, namespace: &str, objects: &Stdin) -> Result<String> {
        let mut args =
            ["apply", "--server-side", "--force-conflicts", "--field-manager", "helm-envs", "--filename", "-"]
                .map(String::from)
                .to_vec();
        args.extend(["--namespace".into(), namespace.to_string()]);
        args.extend(context_args(context));
        let on = in_context(stage, context);
        self.run("apply Argo CD Applications", &on, namespace, args, Some(objects))
    }

    /// Argo CD Applications by name, from Argo CD's cluster (`context`, `namespace`); names it
    /// does not hold are left out.
    pub fn applications(&self, stage: &Stage, argo: (&KubeContext, &str), names: &[String]) -> Result<Vec<Value>> {
        let (context, namespace) = argo;
        let mut args = vec!["get".to_string(), "applications.argoproj.io".into()];
        args.extend(names.iter().cloned());
        args.extend(["--namespace".into(), namespace.to_string()]);
        args.extend(context_args(context));
        args.extend(["--ignore-not-found".into(), "--output".into(), "json".into()]);
        let on = in_context(stage, context);
        let out = self.run("read Argo CD Applications", &on, namespace, args, None)?;
        objects(&out, stage)
    }

    /// Ask Argo CD to compare an Application with its source again now (what a Git webhook
    /// does), and with `sync` (an `operation.sync`: the revision or revisions), to sync it (an
    /// Application without automated sync): the `argocd.argoproj.io/refresh` annotation, then
    /// its `operation`.
    pub fn refresh_application(
        &self,
        stage: &Stage,
        argo: (&KubeContext, &str),
        name: &str,
        sync: Option<Value>,
    ) -> Result<()> {
        let (context, namespace) = argo;
        let on = in_context(stage, context);
        let mut args = vec!["annotate".to_string(), "applications.argoproj.io".into(), name.into()];
        args.extend(["argocd.argoproj.io/refresh=normal".into(), "--overwrite".into()]);
        args.extend(["--namespace".into(), namespace.to_string()]);
        args.extend(context_args(context));
        self.run("ask Argo CD to refresh an Application", &on, namespace, args, None)?;
        let Some(sync) = sync else { return Ok(()) };
        let operation = serde_json::json!({"operation": {"initiatedBy": {"username": "helm-envs"}, "sync": sync}});
        let mut args = vec!["patch".to_string(), "applications.argoproj.io".into(), name.into(), "--type".into()];
        args.extend(["merge".into(), "--patch".into(), operation.to_string(), "--namespace".into(), namespace.into()]);
        args.extend(context_args(context));
        self.run("ask Argo CD to sync an Application", &on, namespace, args, None).map(|_| ())
    }

    /// Set `label` on helm's record of `release` at `revision` (its Secret), as helm would read it
    /// back as a release label.
    pub fn label_revision(
        &self,
        stage: &Stage,
        namespace: &str,
        revision: (&str, u64),
        label: (&str, &str),
    ) -> Result<()> {
        let (release, number) = revision;
        let mut args = vec![
            "label".to_string(),
            "secret".into(),
            format!("sh.helm.release.v1.{release}.v{number}"),
            format!("{}={}", label.0, label.1),
            "--overwrite".into(),
            "--namespace".into(),
            namespace.to_string(),
        ];
        args.extend(context_args(&stage.kube_context));
        self.run("label a release record", stage, namespace, args, None).map(|_| ())
    }

    /// The revisions of `release` whose records carry `label` (`key=value`).
    pub fn labelled_revisions(&self, stage: &Stage, namespace: &str, release: &str, label: &str) -> Result<Vec<u64>> {
        let mut args = vec!["get".to_string(), "secrets".into(), "--namespace".into(), namespace.to_string()];
        args.extend(context_args(&stage.kube_context));
        args.extend([
            "--selector".into(),
            format!("owner=helm,name={release},{label}"),
            "--output".into(),
            "go-template={{range .items}}{{index .metadata.labels \"version\"}}\n{{end}}".into(),
        ]);
        let out = self.run("read helm's release records", stage, namespace, args, None)?;
        Ok(out.lines().filter_map(|line| line.trim().parse().ok()).collect())
    }

    /// The context names of the kubeconfig (`kubectl config get-contexts`); reads no cluster.
    pub fn context_names(&self) -> Result<Vec<String>> {
        let args = ["config", "get-contexts", "--output", "name"].map(String::from).to_vec();
        terminal::debug(&format!("running {}", display_command(&args)));
        let _slot = crate::system::slots::take();
        let out = duct::cmd(&self.bin, &args)
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .map_err(|err| anyhow::Error::new(err).context(format!("could not start {}", self.bin.display())))?;
        if !out.status.success() {
            return Err(Error::Other(anyhow::anyhow!(
                "`{}` failed: {}",
                display_command(&args),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect())
    }

    fn run(
        &self,
        action: &'static str,
        stage: &Stage,
        namespace: &str,
        args: Vec<String>,
        stdin: Option<&Stdin>,
    ) -> Result<String> {
        let command = display_command(&args);
        match stdin {
            Some(input) => terminal::debug(&format!("running {command} < ({})", input.what)),
            None => terminal::debug(&format!("running {command}")),
        }
        let mut expression = duct::cmd(&self.bin, args.iter().map(OsString::from));
        if let Some(input) = stdin {
            expression = expression.stdin_bytes(input.text.as_bytes().to_vec());
        }
        let slot = crate::system::slots::take();
        let out = expression.stdout_capture().stderr_capture().unchecked().run().map_err(|err| {
            anyhow::Error::new(err).context(format!(
                "could not start {} (for stage `{}`)",
                self.bin.display(),
                stage.label()
            ))
        })?;
        drop(slot);
        if out.status.success() {
            return String::from_utf8(out.stdout).map_err(|_| {
                Error::Other(anyhow::anyhow!("kubectl printed output that is not UTF-8 (stage `{}`)", stage.label()))
            });
        }
        Err(Error::Kubectl(Box::new(KubectlFailure {
            action,
            stage: stage.label(),
            context: stage.kube_context.name().map(str::to_string),
            namespace: namespace.to_string(),
            command,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })))
    }
}

/// `stage` as a call into Argo CD's cluster (`context`) shows it: a failure names the context
/// the call went to, Argo CD's, not the stage's own.
fn in_context(stage: &Stage, context: &KubeContext) -> Stage {
    let mut on = stage.clone();
    on.kube_context = context.clone();
    on
}

/// Text for kubectl's standard input, and what it is (for `--verbose`).
pub struct Stdin<'a> {
    pub text: &'a str,
    /// `the manifest of release web`.
    pub what: String,
}

/// The objects of `kubectl ... -o json` output: one object, or a `List` of them.
fn objects(output: &str, stage: &Stage) -> Result<Vec<Value>> {
    if output.trim().is_empty() {
        return Ok(Vec::new());
    }
    match serde_json::from_str::<Value>(output) {
        Ok(Value::Object(mut object)) if object.get("kind").and_then(Value::as_str) == Some("List") => {
            match object.remove("items") {
                Some(Value::Array(items)) => Ok(items),
                _ => Ok(Vec::new()),
            }
        }
        Ok(object @ Value::Object(_)) => Ok(vec![object]),
        _ => Err(Error::Other(anyhow::anyhow!("kubectl printed output that is not JSON (stage `{}`)", stage.label()))),
    }
}

/// No flag for the kubeconfig's current context, chosen explicitly by the stage.
/// A cluster's version and API versions, as helm's `.Capabilities` sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// `v1.37.2`.
    pub kube_version: String,
    /// `apps/v1` and `apps/v1/Deployment` alike.
    pub api_versions: Vec<String>,
}

/// `group/version/Kind` of each row of `kubectl api-resources`, whose columns are aligned under
/// its header (SHORTNAMES may be empty, so the columns are found by the header's offsets).
fn kinds_of(table: &str) -> Vec<String> {
    let mut lines = table.lines();
    let Some(header) = lines.next() else { return Vec::new() };
    let (Some(version_at), Some(kind_at)) = (header.find("APIVERSION"), header.find("KIND")) else {
        return Vec::new();
    };
    let word_at =
        |line: &str, at: usize| line.get(at..).and_then(|rest| rest.split_whitespace().next()).map(str::to_string);
    lines.filter_map(|line| Some(format!("{}/{}", word_at(line, version_at)?, word_at(line, kind_at)?))).collect()
}

fn context_args(context: &KubeContext) -> Vec<String> {
    context.name().map(|name| vec!["--context".into(), name.to_string()]).unwrap_or_default()
}

fn display_command(args: &[String]) -> String {
    terminal::command_line("kubectl", args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_read_under_the_header_even_without_short_names() {
        let table = "NAME          SHORTNAMES   APIVERSION   NAMESPACED   KIND\n\
                     bindings                   v1           true         Binding\n\
                     deployments   deploy       apps/v1      true         Deployment\n";
        assert_eq!(kinds_of(table), ["v1/Binding", "apps/v1/Deployment"]);
        assert!(kinds_of("").is_empty());
        assert!(kinds_of("NAME\nbindings\n").is_empty());
    }
}
