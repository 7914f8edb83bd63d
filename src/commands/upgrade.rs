//! `helm envs upgrade STAGE`: deploy a stage's current config behind its gates (cluster pin,
//! Secrets, approval). Also the checks `promote` and `apply` share.

use serde_json::{Value, json};

use crate::cli::{DeployArgs, ListFormat, UpgradeArgs};
use crate::deploy::{self, Outcome, Record, Status};
use crate::diff;
use crate::error::{Detail, Error, Result};
use crate::files::ProjectLock;
use crate::gates::{self, Gate};
use crate::helm::Helm;
use crate::kube::Kubectl;
use crate::output::{self, BOLD, NAME};
use crate::render::{LiveState, against_installed, joined, parse_rendered};
use crate::report::{self, Report};
use crate::stages::{Approval, Project, Stage, Target};

pub fn run(project: &Project, args: &UpgradeArgs) -> Result<u8> {
    let stage = project.stage(&args.stage)?;
    let releases = project.select_releases(args.release.as_deref())?;
    let _lock = lock(project, &args.deploy, &format!("upgrade {}", stage.name))?;
    let (helm, kubectl) = (Helm::locate()?, Kubectl::locate()?);
    let targets: Vec<Target> = releases.iter().map(|r| project.target(stage, r)).collect();
    let checked = check_stage(project, &helm, &kubectl, stage, &targets, args.deploy.show_secrets)?;
    let (mut text, mut json) = (String::new(), json!({"command": "upgrade", "stage": stage.name}));
    let action = format!("Deploy stage {}?", stage.name);
    let needs = match gate(stage, &targets, checked, &args.deploy, false, false, &action, &mut text, &mut json) {
        Ok(needs) => needs,
        Err(err) => {
            emit(&args.deploy, &text, &json, "refused");
            return Err(err);
        }
    };
    let record = Record::new(stage, format!("helm-envs: upgrade of stage {}", stage.name), None);
    let (outcomes, error) = deploy_gated(project, &helm, stage, &targets, &needs, &args.deploy, &record);
    json["outcomes"] = outcomes.iter().map(Outcome::json).collect();
    let result = match (&error, args.deploy.dry_run) {
        (Some(_), _) => "failed",
        (None, true) => "dry-run",
        (None, false) => "deployed",
    };
    if args.deploy.dry_run {
        text.push_str(&format!("{BOLD}Dry run{BOLD:#}: nothing deployed.\n"));
    } else {
        text.push_str(&outcomes_text(&outcomes));
    }
    emit(&args.deploy, &text, &json, result);
    match error {
        Some(err) => Err(deploy_failed("upgrade", err, &outcomes)),
        None => Ok(0),
    }
}

/// The project lock, unless this is a dry run (which writes nothing).
pub(super) fn lock(project: &Project, args: &DeployArgs, purpose: &str) -> Result<Option<ProjectLock>> {
    if args.dry_run { Ok(None) } else { ProjectLock::acquire(&project.dir, purpose).map(Some) }
}

/// A stage checked for a deploy: what the deploy changes per release, and the gates that do
/// not need a person (cluster pin, Secrets).
pub(super) struct Checked {
    pub states: Vec<LiveState>,
    pub gates: Vec<Gate>,
}

/// Diff every target against what is installed, check the cluster pin and the Secrets the
/// config references; the cluster reads run in parallel.
pub(super) fn check_stage(
    project: &Project,
    helm: &Helm,
    kubectl: &Kubectl,
    stage: &Stage,
    targets: &[Target],
    show_secrets: bool,
) -> Result<Checked> {
    let options = diff::Options { ignore: Vec::new(), show_secrets };
    let (states, cluster) = std::thread::scope(|scope| {
        let cluster = scope.spawn(|| gates::cluster(kubectl, stage));
        let states = against_installed(project, helm, targets, &options);
        (states, joined(cluster))
    });
    let states = states?;
    let mut checks: Vec<Gate> = cluster?.into_iter().collect();
    let mut manifests = Vec::new();
    for (target, state) in targets.iter().zip(&states) {
        manifests.push((target.release, parse_rendered(&state.rendered, target)?));
    }
    checks.push(gates::secrets(kubectl, stage, &manifests)?);
    Ok(Checked { states, gates: checks })
}

/// Show the diff and the gates of a checked stage (appended to `text`; in `json` as `diff` and
/// `gates`), then ask for approval (not in a dry run); returns which releases have something to
/// deploy. The report so far is printed before a prompt, so the person approving sees it. A
/// refused gate is an error (exit 3); the caller prints the report. `approve_always`: ask even
/// when nothing would be deployed (a promotion writes the stage's files anyway); `summary`:
/// one line per changed resource instead of the field and line diff.
#[allow(clippy::too_many_arguments)]
pub(super) fn gate(
    stage: &Stage,
    targets: &[Target],
    checked: Checked,
    args: &DeployArgs,
    approve_always: bool,
    summary: bool,
    action: &str,
    text: &mut String,
    json: &mut Value,
) -> Result<Vec<bool>> {
    let Checked { states, mut gates } = checked;
    let needs: Vec<bool> = states.iter().map(LiveState::needs_deploy).collect();
    let diff_report = Report::live(stage, targets, states);
    text.push_str(&match summary {
        true => report::summary(&diff_report),
        false => report::text(&diff_report, args.context),
    });
    json["diff"] = report::json(&diff_report);
    text.push_str(&gates::text(stage, &gates));
    json["gates"] = gates.iter().map(Gate::json).collect();
    if let Some(refused) = gates::refusal(stage, &gates) {
        return Err(refused);
    }
    let approval = if !approve_always && !needs.iter().any(|n| *n) {
        Gate::new("approval", true, "not needed: nothing to deploy")
    } else if args.dry_run {
        match stage.approval {
            Approval::Required => Gate::new("approval", true, "required; not asked in a dry run"),
            Approval::None => Gate::new("approval", true, "not required"),
        }
    } else {
        if args.output == ListFormat::Text {
            output::stdout(&std::mem::take(text));
        }
        gates::approval(stage, args.yes, action)?
    };
    text.push_str(&gates::line(&approval));
    gates.push(approval);
    json["gates"] = gates.iter().map(Gate::json).collect();
    match gates::refusal(stage, &gates) {
        Some(refused) => Err(refused),
        None => Ok(needs),
    }
}

/// Deploy the releases of a gated stage that have something to deploy (nothing in a dry run).
pub(super) fn deploy_gated(
    project: &Project,
    helm: &Helm,
    stage: &Stage,
    targets: &[Target],
    needs: &[bool],
    args: &DeployArgs,
    record: &Record,
) -> (Vec<Outcome>, Option<Error>) {
    if args.dry_run || !needs.iter().any(|n| *n) {
        let outcomes = targets
            .iter()
            .zip(needs)
            .map(|(t, needed)| Outcome {
                stage: stage.name.clone(),
                release: t.release.name.clone(),
                status: if *needed { Status::NotAttempted } else { Status::Unchanged },
            })
            .collect();
        return (outcomes, None);
    }
    deploy::stage(project, helm, stage, targets, needs, record)
}

/// Print the rest of the report: the text on stdout, or the JSON document with its result.
pub(super) fn emit(args: &DeployArgs, text: &str, json: &Value, result: &str) {
    match args.output {
        ListFormat::Text => output::stdout(text),
        ListFormat::Json => {
            let mut json = json.clone();
            json["schemaVersion"] = json!(1);
            json["result"] = json!(result);
            output::stdout(&format!("{}\n", serde_json::to_string_pretty(&json).unwrap_or_default()));
        }
    }
}

/// One line per release: what happened.
pub(super) fn outcomes_text(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    for o in outcomes {
        let line = match &o.status {
            Status::Deployed(Some(revision)) => {
                format!("{NAME}deployed{NAME:#}  {}/{} (revision {revision})", o.stage, o.release)
            }
            Status::Deployed(None) => {
                format!("{NAME}deployed{NAME:#}  {}/{} (by the deploy command)", o.stage, o.release)
            }
            Status::Unchanged => format!("unchanged {}/{}", o.stage, o.release),
            Status::Failed => format!("{}failed{:#}    {}/{}", output::ERROR, output::ERROR, o.stage, o.release),
            Status::NotAttempted => format!("not attempted {}/{}", o.stage, o.release),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// A deploy that failed, with what was and was not deployed.
pub(super) fn deploy_failed(command: &str, err: Error, outcomes: &[Outcome]) -> Error {
    let mut details = vec![Detail::Nested(err.to_string(), err.details())];
    let deployed: Vec<String> = outcomes
        .iter()
        .filter(|o| matches!(o.status, Status::Deployed(_)))
        .map(|o| format!("{}/{}", o.stage, o.release))
        .collect();
    if !deployed.is_empty() {
        details.push(Detail::Note(format!("deployed before the failure: {}", deployed.join(", "))));
    }
    let skipped: Vec<String> = outcomes
        .iter()
        .filter(|o| o.status == Status::NotAttempted)
        .map(|o| format!("{}/{}", o.stage, o.release))
        .collect();
    if !skipped.is_empty() {
        details.push(Detail::Note(format!("not attempted: {}", skipped.join(", "))));
    }
    details.push(Detail::Help(
        "helm keeps a failed release at its new revision unless the stage's helmArgs include --atomic \
         (--rollback-on-failure in Helm 4; either is spelled for the helm in use); `helm history` shows it \
         and `helm rollback` returns to the previous one"
            .into(),
    ));
    Error::Failed { headline: format!("{command} failed"), details }
}
