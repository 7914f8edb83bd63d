//! The gates a deploy passes before anything is written: promotion order, the source stage in
//! sync with its config, the cluster pin, the target's Secrets, and approval. Each gate gives a
//! verdict with its reason; a refusal is exit 3.

use std::fmt::Write as _;
use std::io::{BufRead as _, IsTerminal as _, Write as _};

use serde_json::{Value, json};

use crate::compare::drift::{self, Item};
use crate::compare::health::Health;
use crate::compare::isolation;
use crate::compare::manifest::Manifest;
use crate::compare::render::LiveState;
use crate::compare::secrets::{self, StageReport};
use crate::config::stages::{Approval, Project, Release, Stage, Target};
use crate::error::{Detail, Error, Result};
use crate::output;
use crate::system::interrupt;
use crate::system::kube::Kubectl;
use crate::terminal::{BOLD, DIM, ERROR, NAME};

#[derive(Debug, Clone)]
pub struct Gate {
    pub name: &'static str,
    pub passed: bool,
    /// `false`: the check could not run (its cluster cannot be reached); it does not refuse.
    pub checked: bool,
    pub message: String,
    /// What is shown under the verdict.
    pub details: Details,
}

/// What a gate shows under its verdict.
#[derive(Debug, Clone, Default)]
pub enum Details {
    #[default]
    None,
    /// The Secret check's report, when Secrets are missing.
    Secrets(StageReport),
    /// The namespaces that do not exist (shown in the message).
    MissingNamespaces(Vec<String>),
}

impl Gate {
    pub fn new(name: &'static str, passed: bool, message: impl Into<String>) -> Gate {
        Gate { name, passed, checked: true, message: message.into(), details: Details::None }
    }

    /// A check that could not run, and why.
    pub fn skipped(name: &'static str, why: impl Into<String>) -> Gate {
        Gate { checked: false, ..Gate::new(name, true, why) }
    }

    pub fn json(&self) -> Value {
        json!({"gate": self.name, "passed": self.passed, "checked": self.checked, "message": self.message})
    }
}

/// Only the next stage after `from`, unless `--allow-skip`.
pub fn order(project: &Project, from: &Stage, to: &Stage, allow_skip: bool) -> Gate {
    let index = |s: &Stage| project.stages.iter().position(|x| x.name == s.name).unwrap_or_default();
    let (i, j) = (index(from), index(to));
    if j == i + 1 {
        return Gate::new("order", true, format!("{} is the stage after {}", to.name, from.name));
    }
    let how = if j < i { "comes before" } else { "is not the stage right after" };
    if allow_skip {
        Gate::new("order", true, format!("{} {how} {} (allowed by --allow-skip)", to.name, from.name))
    } else {
        let next = project.stages.get(i + 1).map_or("no stage".to_string(), |s| format!("`{}`", s.name));
        Gate::new(
            "order",
            false,
            format!(
                "{} {how} {}: promotions go one stage at a time ({} comes next); pass --allow-skip to skip on purpose",
                to.name, from.name, next
            ),
        )
    }
}

/// The source of a promotion must be deployed as configured: the same judgment as `drift`
/// makes of a stage's cluster (status, chart, user-supplied values, manifest).
pub fn source_in_sync(from: &Stage, releases: &[(&Target, &LiveState)]) -> Gate {
    let mut problems = Vec::new();
    for (target, state) in releases {
        let release = &target.release.name;
        for item in drift::against_config(state, target.configured_chart(), false) {
            problems.push(match item {
                Item::NotDeployed => format!("{release} is not deployed"),
                Item::Status { status, .. } => format!("{release} is in state `{status}`"),
                Item::Chart { deployed, configured } => {
                    format!("{release} runs chart {deployed}, its config has {configured}")
                }
                Item::DeployedValue { path, .. } => format!("{release} was deployed with another `{path}`"),
                Item::Manifest { plan, .. } => format!(
                    "{release} differs from its config ({} to add, {} to change, {} to destroy)",
                    plan.add, plan.change, plan.destroy
                ),
                other => format!("{release}: {other:?}"),
            });
        }
    }
    if problems.is_empty() {
        Gate::new("source", true, format!("{} is deployed and in sync with its config", from.name))
    } else {
        Gate::new(
            "source",
            false,
            format!(
                "{} is not deployed as configured: {}; deploy it first (`helm envs upgrade {}`), see `helm envs diff {}`, \
                 or pass --skip-source-check",
                from.name,
                problems.join("; "),
                from.name,
                from.name
            ),
        )
    }
}

/// The source of a promotion must be healthy: every workload of its releases ready. With
/// `allowed` (`--allow-unhealthy-source`) it passes, and says what it let through.
pub fn source_health(from: &Stage, releases: &[(&Target, &Health)], allowed: bool) -> Gate {
    let problems: Vec<String> = releases
        .iter()
        .flat_map(|(target, health)| {
            health.not_ready().map(move |w| {
                let why = w.why.first().map(|why| format!(" ({why})")).unwrap_or_default();
                format!("{}: {}{why}", target.release.name, w.headline())
            })
        })
        .collect();
    match (problems.is_empty(), allowed) {
        (true, _) => Gate::new("health", true, format!("{}'s workloads are ready", from.name)),
        (false, true) => Gate::new(
            "health",
            true,
            format!(
                "{} is not healthy, promoted anyway (--allow-unhealthy-source): {}",
                from.name,
                problems.join("; ")
            ),
        ),
        (false, false) => Gate::new(
            "health",
            false,
            format!(
                "{} is not healthy: {}; fix it first (`helm envs status {}`), or pass --allow-unhealthy-source",
                from.name,
                problems.join("; "),
                from.name
            ),
        ),
    }
}

/// A stage with `isolation` set must be kept apart from the others as it says.
pub fn isolation(kubectl: &Kubectl, project: &Project, stage: &Stage) -> Option<Gate> {
    stage.isolation?;
    let report = isolation::check(kubectl, project, &[stage]).into_iter().next()?;
    Some(match (&report.unchecked, report.problems.as_slice()) {
        (Some(why), _) => Gate::new("isolation", false, format!("could not be checked: {why}")),
        (None, []) => Gate::new(
            "isolation",
            true,
            match report.shares_with.as_slice() {
                [] => "a cluster of its own".to_string(),
                others => format!("namespaces kept apart from {}", others.join(", ")),
            },
        ),
        (None, problems) => Gate::new(
            "isolation",
            false,
            format!(
                "{} (`helm envs check-isolation {}`)",
                problems.iter().map(output::isolation::line).collect::<Vec<_>>().join("; "),
                stage.name
            ),
        ),
    })
}

/// With `clusterId` set, the stage's context must reach that cluster (namespace kube-system's UID).
pub fn cluster(kubectl: &Kubectl, stage: &Stage) -> Result<Option<Gate>> {
    let Some(expected) = &stage.cluster_id else { return Ok(None) };
    let found = kubectl.cluster_id(stage)?;
    Ok(Some(if &found == expected {
        Gate::new("cluster", true, format!("context {} reaches cluster {expected}", stage.kube_context))
    } else {
        Gate::new(
            "cluster",
            false,
            format!(
                "context {} reaches cluster {found}, but stage `{}` is pinned to clusterId {expected}: the context \
                 points at another cluster",
                stage.kube_context, stage.name
            ),
        )
    }))
}

/// The stage's namespaces exist, or the stage lets helm create them (`createNamespace`).
pub fn namespaces(kubectl: &Kubectl, stage: &Stage, targets: &[Target]) -> Result<Gate> {
    let mut names: Vec<&str> = targets.iter().map(|t| t.namespace.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut missing = Vec::new();
    for name in &names {
        if !kubectl.namespace_exists(stage, name)? {
            missing.push(*name);
        }
    }
    let listed = |names: &[&str]| names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    let created_by_helm = stage.create_namespace;
    let created_by_script = stage.deploy_command.is_some();
    Ok(match (missing.as_slice(), created_by_helm) {
        (missing, false) if !missing.is_empty() && created_by_script => {
            missing_allowed(&listed(missing), "the deploy command must create it")
        }
        ([], _) => {
            Gate::new("namespace", true, format!("{} exist{}", listed(&names), if names.len() == 1 { "s" } else { "" }))
        }
        (missing, true) => {
            Gate::new("namespace", true, format!("{} will be created by the deploy (createNamespace)", listed(missing)))
        }
        (missing, false) => {
            let context = stage.kube_context.name().map(|c| format!(" --context {c}")).unwrap_or_default();
            let mut gate = Gate::new(
                "namespace",
                false,
                format!(
                    "{} does not exist in the cluster of stage `{}`: create it (`kubectl{context} create namespace {}`), \
                     or set `createNamespace: true` on the stage to let the deploy create it",
                    listed(missing),
                    stage.name,
                    missing[0]
                ),
            );
            gate.details = Details::MissingNamespaces(missing.iter().map(|n| n.to_string()).collect());
            gate
        }
    })
}

/// A namespace that does not exist, let through because this run does not create it itself:
/// `why` says who does (the stage's deploy command, `exec`'s command) or that nothing deploys.
fn missing_allowed(missing: &str, why: &str) -> Gate {
    Gate::new("namespace", true, format!("{missing} does not exist yet; {why}"))
}

/// Turn a refusal for missing namespaces into a pass, for runs that leave creating them to
/// someone else (`why`).
pub fn waive_missing_namespaces(gates: &mut [Gate], why: &str) {
    for gate in gates {
        if let Details::MissingNamespaces(missing) = &gate.details {
            let missing: Vec<String> = missing.iter().map(|n| format!("`{n}`")).collect();
            *gate = missing_allowed(&missing.join(", "), why);
        }
    }
}

/// Every Secret the rendered manifests reference exists in the stage.
pub fn secrets(kubectl: &Kubectl, stage: &Stage, manifests: &[(&Release, Manifest)]) -> Result<Gate> {
    let report = secrets::check_manifests(kubectl, stage, manifests)?;
    let mut gate = if report.passed() {
        let count: usize = report.namespaces.iter().map(|n| n.satisfied.len()).sum();
        Gate::new("secrets", true, format!("every referenced Secret is present ({count})"))
    } else {
        let absent: Vec<&str> = report.namespaces.iter().filter(|n| !n.exists).map(|n| n.namespace.as_str()).collect();
        let why = match absent.as_slice() {
            [] => String::new(),
            absent => format!(" (namespace {} does not exist, so no Secret is there yet)", absent.join(", ")),
        };
        Gate::new(
            "secrets",
            false,
            format!(
                "Secrets are missing in {}{why}: create them before deploying (`helm envs check-secrets {}`)",
                stage.name, stage.name
            ),
        )
    };
    if !report.passed() {
        gate.details = Details::Secrets(report);
    }
    Ok(gate)
}

/// A stage with `approval: required`: `--yes`, or a confirmation typed at a terminal.
pub fn approval(stage: &Stage, yes: bool, action: &str) -> Result<Gate> {
    if stage.approval != Approval::Required {
        return Ok(Gate::new("approval", true, "not required"));
    }
    if yes {
        return Ok(Gate::new("approval", true, "given with --yes"));
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Ok(Gate::new(
            "approval",
            false,
            format!(
                "stage `{}` requires approval: pass --yes, or run on a terminal to confirm at a prompt",
                stage.name
            ),
        ));
    }
    let mut err = anstream::stderr();
    let _ = write!(
        err,
        "{BOLD}{action}{BOLD:#} (stage `{}` requires approval). Type `{}` to confirm: ",
        stage.name, stage.name
    );
    let _ = err.flush();
    let answer = read_answer()?;
    Ok(if answer.trim() == stage.name {
        Gate::new("approval", true, "confirmed at the prompt")
    } else {
        Gate::new("approval", false, format!("not confirmed (expected `{}`)", stage.name))
    })
}

/// A line typed at the prompt. Read on a thread of its own, so that Ctrl-C at the prompt
/// stops the run at once (a read of the terminal is not cut short by a signal).
fn read_answer() -> Result<String> {
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut answer = String::new();
        let _ = send.send(std::io::stdin().lock().read_line(&mut answer).map(|_| answer));
    });
    loop {
        interrupt::check(|| {
            vec![Detail::Note("stopped at the approval prompt: nothing was written or deployed".into())]
        })?;
        match receive.recv_timeout(std::time::Duration::from_millis(100)) {
            Ok(answer) => {
                return answer.map_err(Error::io("cannot read the confirmation"));
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(String::new()),
        }
    }
}

pub fn text(stage: &Stage, gates: &[Gate]) -> String {
    let mut out = format!("{BOLD}Gates for {}{BOLD:#}\n", stage.name);
    for gate in gates {
        out.push_str(&line(gate));
    }
    out
}

/// One gate's verdict line (and its details).
pub fn line(gate: &Gate) -> String {
    let verdict = match (gate.checked, gate.passed) {
        (false, _) => format!("{DIM}skipped{DIM:#}"),
        (true, true) => format!("{NAME}passed {NAME:#}"),
        (true, false) => format!("{ERROR}refused{ERROR:#}"),
    };
    let mut out = format!("  {verdict} {DIM}{:<8}{DIM:#} {}\n", gate.name, gate.message);
    let details = match &gate.details {
        Details::None => String::new(),
        Details::Secrets(report) => output::secrets::text(std::slice::from_ref(report), false),
        Details::MissingNamespaces(_) => String::new(),
    };
    for detail in details.lines() {
        let _ = writeln!(out, "    {detail}");
    }
    out
}

/// The error for the first refused gate, if any.
pub fn refusal(stage: &Stage, gates: &[Gate]) -> Option<Error> {
    let refused: Vec<&Gate> = gates.iter().filter(|g| !g.passed).collect();
    let first = refused.first()?;
    Some(Error::Refused {
        headline: format!("{} gate of stage `{}` refused: {}", first.name, stage.name, first.message),
        details: refused
            .iter()
            .skip(1)
            .map(|g| Detail::Note(format!("also refused by the {} gate: {}", g.name, g.message)))
            .chain([Detail::Help("nothing was written or deployed".into())])
            .collect(),
    })
}
