//! The user's own commands: a stage's `deploy.command` (an existing release script, run instead
//! of helm upgrade) and its `verify` commands. They run with argument vectors (never a shell
//! string), in the project directory, with the stage's context in the environment; their
//! output goes to stderr so that stdout stays the report.

use std::ffi::OsString;
use std::path::Path;

use crate::error::{Detail, Error, Result};
use crate::helm::SCRUBBED_ENV;
use crate::output;
use crate::stages::{Stage, Target};

/// The environment a stage's command sees. `HELM_ENVS_VALUES` lists the values files in
/// order, one absolute path per line (a path with a line break is refused).
pub fn environment(stage: &Stage, target: Option<&Target>) -> Result<Vec<(String, String)>> {
    let mut env = vec![("HELM_ENVS_STAGE".to_string(), stage.name.clone())];
    if let Some(context) = stage.kube_context.name() {
        env.push(("HELM_KUBECONTEXT".into(), context.to_string()));
    }
    env.push(("HELM_NAMESPACE".into(), target.map_or(&stage.namespace, |t| &t.namespace).clone()));
    if let Some(target) = target {
        let mut files = Vec::new();
        for file in &target.values_files {
            let path = file.path.display().to_string();
            if path.contains('\n') {
                return Err(Error::Other(anyhow::anyhow!(
                    "the values file path {path:?} contains a line break; it cannot be passed in HELM_ENVS_VALUES"
                )));
            }
            files.push(path);
        }
        env.push(("HELM_ENVS_RELEASE".into(), target.release.name.clone()));
        env.push(("HELM_ENVS_CHART".into(), target.release.chart.reference()));
        env.push(("HELM_ENVS_VERSION".into(), target.version.clone().unwrap_or_default()));
        env.push(("HELM_ENVS_VALUES".into(), files.join("\n")));
    }
    Ok(env)
}

/// Run `command` for `what` ("the deploy command of stage `staging`"); a non-zero exit is an error.
pub fn run(dir: &Path, command: &[String], env: &[(String, String)], what: &str) -> Result<()> {
    let (program, args) = command.split_first().ok_or_else(|| Error::Other(anyhow::anyhow!("{what} is empty")))?;
    let shown = output::command_line(program, args);
    output::debug(&format!("running {shown}"));
    let mut expression = duct::cmd(program, args.iter().map(OsString::from)).dir(dir).stdout_to_stderr().unchecked();
    for name in SCRUBBED_ENV {
        expression = expression.env_remove(name);
    }
    for (name, value) in env {
        expression = expression.env(name, value);
    }
    let status = expression
        .run()
        .map_err(|err| Error::Failed {
            headline: format!("{what} could not be started"),
            details: vec![
                Detail::Note(format!("command: {shown}")),
                Detail::Cause(err.to_string()),
                Detail::Help("the command runs in the directory of the stages file, without a shell".into()),
            ],
        })?
        .status;
    if status.success() {
        return Ok(());
    }
    let code = status.code().map_or_else(|| "a signal".to_string(), |c| format!("status {c}"));
    Err(Error::Failed {
        headline: format!("{what} failed (exit {code})"),
        details: vec![Detail::Note(format!("command: {shown}"))],
    })
}
