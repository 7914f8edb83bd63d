//! The only module that runs helm. Every call carries the stage's explicit context and
//! namespace, and the caller's HELM_KUBE* / HELM_NAMESPACE variables are removed from helm's
//! environment so they can never redirect one stage's call to another cluster or namespace.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::output;
use crate::stages::{KubeContext, Target};

/// Variables helm reads to pick a cluster, namespace or identity. Helm sets several of them for
/// a plugin from its own flags (`helm -n other envs ...`); a stage's call must not inherit them.
const SCRUBBED_ENV: &[&str] = &[
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
}

impl Helm {
    /// `$HELM_BIN` when helm runs us as a plugin (the helm the user invoked), else `helm` on PATH.
    pub fn locate() -> Result<Helm> {
        if let Some(bin) = std::env::var_os("HELM_BIN").filter(|b| !b.is_empty()) {
            let bin = PathBuf::from(bin);
            if bin.is_file() {
                return Ok(Helm { bin });
            }
            if let Ok(found) = which::which(&bin) {
                return Ok(Helm { bin: found });
            }
            return Err(Error::HelmNotFound { searched: format!("HELM_BIN={}", bin.display()) });
        }
        which::which("helm")
            .map(|bin| Helm { bin })
            .map_err(|_| Error::HelmNotFound { searched: "`helm` on PATH (HELM_BIN is not set)".into() })
    }

    /// `helm template` for one release of one stage; returns the rendered manifests.
    pub fn template(&self, target: &Target) -> Result<String> {
        self.run("template", target, template_args(target))
    }

    fn run(&self, action: &'static str, target: &Target, args: Vec<String>) -> Result<String> {
        let command = display_command(&args);
        output::debug(&format!("running {command}"));
        let mut expression =
            duct::cmd(&self.bin, args.iter().map(OsString::from)).stdout_capture().stderr_capture().unchecked();
        for name in SCRUBBED_ENV {
            expression = expression.env_remove(name);
        }
        let out = expression.run().map_err(|err| {
            anyhow::Error::new(err).context(format!(
                "could not start {} (for stage `{}`)",
                self.bin.display(),
                target.stage.name
            ))
        })?;
        if out.status.success() {
            String::from_utf8(out.stdout).map_err(|_| {
                Error::Other(anyhow::anyhow!(
                    "helm {action} for stage `{}`, release `{}` printed output that is not UTF-8",
                    target.stage.name,
                    target.release.name
                ))
            })
        } else {
            Err(Error::Helm {
                action,
                stage: target.stage.name.clone(),
                release: target.release.name.clone(),
                command,
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }
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
    for file in &target.values_files {
        args.push("--values".into());
        args.push(file.path.display().to_string());
    }
    if let Some(version) = &target.version {
        args.push("--version".into());
        args.push(version.clone());
    }
    args
}

fn context_args(context: &KubeContext) -> Vec<String> {
    match context {
        KubeContext::Named(name) => vec!["--kube-context".into(), name.clone()],
        // The kubeconfig's current context, chosen explicitly by the stage; with HELM_KUBECONTEXT
        // removed from the environment helm falls back to exactly that.
        KubeContext::Current => Vec::new(),
    }
}

/// A command line for people to read and copy (arguments quoted where needed).
pub fn display_command(args: &[String]) -> String {
    std::iter::once("helm".to_string()).chain(args.iter().map(|a| shell_quote(a))).collect::<Vec<_>>().join(" ")
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c));
    if plain { arg.to_string() } else { format!("'{}'", arg.replace('\'', r"'\''")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_is_only_added_where_needed() {
        assert_eq!(
            display_command(&["template".into(), "web".into(), "a b".into(), "it's".into()]),
            "helm template web 'a b' 'it'\\''s'"
        );
    }
}
