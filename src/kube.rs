//! The only module that runs kubectl. Every call carries the stage's explicit context and
//! namespace, and reads only what it needs: Secret names and key names, never values.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::PathBuf;

use crate::error::{Error, KubectlFailure, Result};
use crate::output;
use crate::stages::{KubeContext, Stage};

/// Prints `name key key ...` per Secret: the values never leave kubectl.
const SECRET_KEYS_TEMPLATE: &str =
    "{{range .items}}{{.metadata.name}}{{range $key, $value := .data}} {{$key}}{{end}}{{\"\\n\"}}{{end}}";

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
        let listing = self.run("list Secrets", stage, namespace, args)?;
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

    /// The UID of namespace `kube-system` in the stage's cluster: what `clusterId` pins.
    pub fn cluster_id(&self, stage: &Stage) -> Result<String> {
        let mut args = vec!["get".to_string(), "namespace".into(), "kube-system".into()];
        args.extend(context_args(&stage.kube_context));
        args.extend(["--output".into(), "jsonpath={.metadata.uid}".into()]);
        Ok(self
            .run("read the cluster's identity (namespace kube-system)", stage, "kube-system", args)?
            .trim()
            .to_string())
    }

    fn namespace_exists(&self, stage: &Stage, namespace: &str) -> Result<bool> {
        let mut args = vec!["get".to_string(), "namespace".into(), namespace.to_string()];
        args.extend(context_args(&stage.kube_context));
        args.extend(["--ignore-not-found".into(), "--output".into(), "name".into()]);
        Ok(!self.run("look up the namespace", stage, namespace, args)?.trim().is_empty())
    }

    fn run(&self, action: &'static str, stage: &Stage, namespace: &str, args: Vec<String>) -> Result<String> {
        let command = display_command(&args);
        output::debug(&format!("running {command}"));
        let out = duct::cmd(&self.bin, args.iter().map(OsString::from))
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .map_err(|err| {
                anyhow::Error::new(err).context(format!(
                    "could not start {} (for stage `{}`)",
                    self.bin.display(),
                    stage.name
                ))
            })?;
        if out.status.success() {
            return String::from_utf8(out.stdout).map_err(|_| {
                Error::Other(anyhow::anyhow!("kubectl printed output that is not UTF-8 (stage `{}`)", stage.name))
            });
        }
        Err(Error::Kubectl(Box::new(KubectlFailure {
            action,
            stage: stage.name.clone(),
            context: stage.kube_context.name().map(str::to_string),
            namespace: namespace.to_string(),
            command,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })))
    }
}

/// No flag for the kubeconfig's current context, chosen explicitly by the stage.
fn context_args(context: &KubeContext) -> Vec<String> {
    context.name().map(|name| vec!["--context".into(), name.to_string()]).unwrap_or_default()
}

fn display_command(args: &[String]) -> String {
    output::command_line("kubectl", args)
}
