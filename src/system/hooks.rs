//! The user's own commands: a stage's `deploy.command` (an existing release script, run instead
//! of helm upgrade), its `verify` commands, and `helm envs exec`. They run with argument vectors
//! (never a shell string) and the stage's context in the environment. Deploy and verify
//! commands run in the project directory with their output on stderr, so that stdout stays the
//! report; `exec` runs where the user is, on the user's terminal.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use crate::config::stages::{Stage, Target, ValuesFile};
use crate::error::{Detail, Error, Result};
use crate::system::helm::SCRUBBED_ENV;
use crate::system::interrupt;
use crate::terminal;

/// The environment a stage's command sees. `HELM_ENVS_VALUES` lists the values files in
/// order, one absolute path per line (a path with a line break is refused), and
/// `HELM_ENVS_SECRETS` the encrypted ones, still encrypted (a script decrypts what it needs). `KUBECONFIG` is the
/// kubeconfig helm-envs itself uses, made absolute, so a script that changes directory or
/// `HOME` still reaches the same clusters.
pub fn environment(stage: &Stage, target: Option<&Target>) -> Result<Vec<(String, String)>> {
    let mut env = vec![("HELM_ENVS_STAGE".to_string(), stage.name.clone())];
    if let Some(cluster) = &stage.cluster {
        env.push(("HELM_ENVS_CLUSTER".into(), cluster.name.clone()));
    }
    if let Some(context) = stage.kube_context.name() {
        env.push(("HELM_KUBECONTEXT".into(), context.to_string()));
    }
    if let Some(kubeconfig) = kubeconfig() {
        env.push(("KUBECONFIG".into(), kubeconfig));
    }
    env.push(("HELM_NAMESPACE".into(), target.map_or(&stage.namespace, |t| &t.namespace).clone()));
    if let Some(target) = target {
        env.push(("HELM_ENVS_RELEASE".into(), target.release.name.clone()));
        env.push(("HELM_ENVS_CHART".into(), target.release.chart.reference()));
        env.push(("HELM_ENVS_VERSION".into(), target.version.clone().unwrap_or_default()));
        env.push(("HELM_ENVS_VALUES".into(), path_lines("HELM_ENVS_VALUES", &target.values_files)?));
        env.push(("HELM_ENVS_SECRETS".into(), path_lines("HELM_ENVS_SECRETS", &target.secret_files)?));
    }
    Ok(env)
}

/// Files' absolute paths, one per line (a path with a line break is refused).
fn path_lines(variable: &str, files: &[ValuesFile]) -> Result<String> {
    let mut lines = Vec::new();
    for file in files {
        let path = file.path.display().to_string();
        if path.contains('\n') {
            return Err(Error::Other(anyhow::anyhow!(
                "the values file path {path:?} contains a line break; it cannot be passed in {variable}"
            )));
        }
        lines.push(path);
    }
    Ok(lines.join("\n"))
}

/// Variables `environment` sets for some commands only; an inherited value (a helm-envs run
/// inside another one's script) must not reach a command that was not given one.
const OWN_ENV: &[&str] = &[
    "HELM_ENVS_CLUSTER",
    "HELM_ENVS_RELEASE",
    "HELM_ENVS_RELEASES",
    "HELM_ENVS_CHART",
    "HELM_ENVS_VERSION",
    "HELM_ENVS_VALUES",
    "HELM_ENVS_SECRETS",
];

/// The caller's environment without its cluster-selecting variables, with the stage's added.
/// Given whole (`full_env`): with duct's `env_remove` a removal wraps the expression and would
/// win over a variable set before it.
fn with_environment(expression: duct::Expression, env: &[(String, String)]) -> duct::Expression {
    let mut full: HashMap<OsString, OsString> = std::env::vars_os()
        .filter(|(name, _)| !SCRUBBED_ENV.iter().chain(OWN_ENV).any(|scrubbed| name == OsStr::new(scrubbed)))
        .collect();
    full.extend(env.iter().map(|(name, value)| (OsString::from(name), OsString::from(value))));
    expression.full_env(full)
}

/// The kubeconfig helm and kubectl read: `$KUBECONFIG` (a `:`-separated list; relative entries
/// made absolute), else `~/.kube/config` when it exists. `None` when neither is there.
fn kubeconfig() -> Option<String> {
    let cwd = std::env::current_dir().unwrap_or_default();
    match std::env::var("KUBECONFIG") {
        Ok(list) if !list.is_empty() => Some(
            list.split(':')
                .filter(|entry| !entry.is_empty())
                .map(|entry| cwd.join(entry).display().to_string())
                .collect::<Vec<_>>()
                .join(":"),
        ),
        _ => {
            let default = PathBuf::from(std::env::var_os("HOME")?).join(".kube").join("config");
            default.is_file().then(|| default.display().to_string())
        }
    }
}

/// Run `command` for `what` ("the deploy command of stage `staging`"); a non-zero exit is an error.
pub fn run(dir: &Path, command: &[String], env: &[(String, String)], what: &str) -> Result<()> {
    let (program, args) = command.split_first().ok_or_else(|| Error::Other(anyhow::anyhow!("{what} is empty")))?;
    let shown = terminal::command_line(program, args);
    terminal::debug(&format!("running {shown}"));
    let expression =
        with_environment(duct::cmd(program, args.iter().map(OsString::from)).dir(dir).stdout_to_stderr(), env)
            .unchecked();
    let status = run_watched(&expression)
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

/// `helm envs exec`: run the user's command in the current directory, on the user's terminal,
/// with `env` added to the environment; returns its exit status as the shell reports it
/// (128 + the signal for a command killed by one). A command that cannot be started gives 127
/// when it is not found and 126 otherwise, as `env` and shells do.
pub fn exec(command: &[OsString], env: &[(String, String)]) -> Result<u8> {
    let (program, args) = command.split_first().ok_or_else(|| Error::Other(anyhow::anyhow!("no command to run")))?;
    let shown = terminal::os_command_line(command);
    terminal::debug(&format!("running {shown}"));
    let expression = with_environment(duct::cmd(program, args), env).unchecked();
    let finished = run_watched(&expression).map_err(|err| Error::NotStarted {
        headline: format!("{} could not be started", program.to_string_lossy()),
        details: vec![
            Detail::Note(format!("command: {shown}")),
            Detail::Cause(err.to_string()),
            Detail::Help(not_started_help(program).into()),
        ],
        code: if err.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 },
    })?;
    Ok(exit_status(&finished.status))
}

/// Run the user's command to its end, known to the signal handling meanwhile (an interrupt is
/// passed on to it, and it is waited for).
fn run_watched(expression: &duct::Expression) -> std::io::Result<std::process::Output> {
    let handle = expression.start()?;
    let _running = interrupt::running(&handle.pids(), interrupt::Child::Command);
    handle.into_output()
}

fn not_started_help(program: &OsStr) -> &'static str {
    if Path::new(program).components().count() > 1 {
        "the path is relative to the current directory; check that the file exists and is executable (chmod +x)"
    } else {
        "the command is looked up on PATH, without a shell; for a script in this directory write ./script.sh"
    }
}

/// The status as a shell reports it: the exit code, or 128 + the signal that killed it.
fn exit_status(status: &std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(1),
        (None, None) => 1,
    }
}
