//! `helm envs exec STAGE -- COMMAND...`: run an existing release script (or any command) with
//! the stage's context in its environment, optionally behind upgrade's gates. The command's
//! exit status is helm-envs' exit status.

use crate::cli::ExecArgs;
use crate::compare::gate::nothing_done;
use crate::config::stages::{Project, Stage, Target};
use crate::error::Result;
use crate::output::document::Document;
use crate::pipeline::{Options, Pipeline, StageRun, gates};
use crate::system::files::ProjectLock;
use crate::system::hooks;
use crate::terminal::{self, BOLD};

use super::deploying::{Terminal, gate};

pub fn run(project: &Project, args: &ExecArgs) -> Result<u8> {
    // A stage on several clusters: the command runs against the one named.
    let stage = project.stage(&args.stage)?.on_cluster(args.cluster.as_deref())?;
    let releases = project.select_releases(args.release.as_deref())?;
    let targets: Vec<Target> = releases.iter().map(|r| project.target(stage, r)).collect();
    let shown = terminal::os_command_line(&args.command);
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
        terminal::debug(&format!("{name}={value:?}"));
    }
    hooks::exec(&args.command, &env)
}

/// Upgrade's gates (cluster pin, Secrets, approval), reported on stderr so that the command's
/// stdout stays its own. Approval is always asked where the stage requires it: what the
/// command changes is not known.
fn pass_gates(project: &Project, stage: &Stage, targets: &[Target], args: &ExecArgs, shown: &str) -> Result<()> {
    let pipeline = Pipeline::new(project, &Terminal)?;
    let options = Options { yes: args.yes, override_freeze: args.override_freeze, ..Options::default() };
    let mut checked = pipeline.check(stage, targets, &options)?;
    // The command deploys, not helm-envs: creating a namespace is its business.
    gates::waive_missing_namespaces(&mut checked.gates, "the command must create it");
    let run = StageRun {
        stage,
        targets,
        options,
        question: format!("Run `{shown}` against stage {}?", stage.name),
        ask_even_if_unchanged: true,
        summary: true,
    };
    let mut report = Document::on_stderr();
    report.push(&format!("{BOLD}What deploying the config of {} would change{BOLD:#}\n", stage.name));
    let gated = gate(checked, &run, &mut report, &Terminal).map_err(nothing_done);
    report.emit(if gated.is_ok() { "passed" } else { "refused" });
    gated.map(|_| ())
}
