//! `helm envs exec STAGE -- COMMAND...`: run an existing release script (or any command) with
//! the stage's context in its environment, optionally behind upgrade's gates. The command's
//! exit status is helm-envs' exit status.

use crate::cli::ExecArgs;
use crate::error::Result;
use crate::files::ProjectLock;
use crate::gates;
use crate::helm::Helm;
use crate::hooks;
use crate::kube::Kubectl;
use crate::output::{self, BOLD};
use crate::report::{self, Report};
use crate::stages::{Project, Stage, Target};

use super::upgrade::{Checked, check_stage};

pub fn run(project: &Project, args: &ExecArgs) -> Result<u8> {
    let stage = project.stage(&args.stage)?;
    let releases = project.select_releases(args.release.as_deref())?;
    let targets: Vec<Target> = releases.iter().map(|r| project.target(stage, r)).collect();
    let shown = output::os_command_line(&args.command);
    // A gated command is taken to deploy: no promotion or upgrade of this project may run beside it.
    let _lock = match args.gated {
        true => Some(ProjectLock::acquire(&project.dir, &format!("exec {} -- {shown}", stage.name))?),
        false => None,
    };
    if args.gated {
        pass_gates(project, stage, &targets, args, &shown)?;
    }
    // One release (chosen, or the project's only one): its values files. Several: the stage's
    // context and the release names; the script picks what it needs.
    let mut env = hooks::environment(
        stage,
        match targets.as_slice() {
            [one] => Some(one),
            _ => None,
        },
    )?;
    env.push(("HELM_ENVS_RELEASES".into(), releases.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join("\n")));
    for (name, value) in &env {
        output::debug(&format!("{name}={value:?}"));
    }
    hooks::exec(&args.command, &env)
}

/// Upgrade's gates (cluster pin, Secrets, approval), reported on stderr so that the command's
/// stdout stays its own. Approval is always asked where the stage requires it: what the
/// command changes is not known.
fn pass_gates(project: &Project, stage: &Stage, targets: &[Target], args: &ExecArgs, shown: &str) -> Result<()> {
    let (helm, kubectl) = (Helm::locate()?, Kubectl::locate()?);
    let Checked { states, mut gates } = check_stage(project, &helm, &kubectl, stage, targets, false)?;
    let changes = Report::live(stage, targets, states);
    let mut text = format!("{BOLD}What deploying the config of {} would change{BOLD:#}\n", stage.name);
    text.push_str(&report::summary(&changes));
    text.push_str(&gates::text(stage, &gates));
    output::stderr(&text);
    if let Some(refused) = gates::refusal(stage, &gates) {
        return Err(refused);
    }
    let approval = gates::approval(stage, args.yes, &format!("Run `{shown}` against stage {}?", stage.name))?;
    output::stderr(&gates::line(&approval));
    gates.push(approval);
    match gates::refusal(stage, &gates) {
        Some(refused) => Err(refused),
        None => Ok(()),
    }
}
