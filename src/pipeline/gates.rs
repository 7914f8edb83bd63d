//! The gates a deploy passes before anything is written: promotion order, the source stage in
//! sync with its config, the cluster pin, the target's Secrets, and approval. Each gate gives a
//! verdict with its reason; a refusal is exit 3.

use crate::compare::argocd::Application;
use crate::compare::drift::{self, Item};
use crate::compare::encryption::{self, KeyProblem};
pub use crate::compare::gate::{Details, Gate, refusal};
use crate::compare::health::Health;
use crate::compare::isolation;
use crate::compare::manifest::Manifest;
use crate::compare::render::LiveState;
use crate::compare::secrets;
use crate::config::freeze;
use crate::config::stages::{Approval, Project, Release, Stage, Target};
use crate::error::Result;
use crate::output;
use crate::system::kube::Kubectl;
use jiff::Timestamp;

/// No deploy while a freeze window of the stage holds, unless `--override-freeze`; `None` for
/// a stage without windows.
pub fn freeze(stage: &Stage, now: Timestamp, overridden: bool) -> Option<Gate> {
    if stage.freeze.is_empty() {
        return None;
    }
    let Some(frozen) = freeze::frozen_at(&stage.freeze, now) else {
        return Some(Gate::passed("freeze", "no freeze window holds now"));
    };
    let until = freeze::show_time(frozen.opens, &frozen.window.zone);
    let what = format!("{} is frozen until {until} ({})", stage.name, frozen.window.describe());
    Some(match overridden {
        true => Gate::overridden("freeze", format!("{what}; deployed anyway (--override-freeze)")),
        false => Gate::refused("freeze", format!("{what}; deploy then, or pass --override-freeze")),
    })
}

/// Since when a release of the source stage has run what it runs, and what that is (`revision
/// 3`, `commit 3f2a…`); `None`: not known.
pub struct Running<'a> {
    pub target: &'a Target<'a>,
    pub since: Option<(String, Timestamp)>,
}

/// From helm's history: when the deployed revision was deployed.
pub fn running_by_helm<'a>(releases: &[(&'a Target<'a>, &LiveState)]) -> Vec<Running<'a>> {
    releases
        .iter()
        .map(|(target, state)| Running {
            target,
            since: state.installed.as_ref().and_then(|installed| {
                let revision = state.history.iter().find(|r| r.revision == installed.revision)?;
                Some((format!("revision {}", installed.revision), revision.updated.parse::<Timestamp>().ok()?))
            }),
        })
        .collect()
}

/// From Argo CD's history of each Application: when it started running the commit it runs.
pub fn running_by_argocd<'a>(sources: &'a [Target<'a>], applications: &[Application]) -> Vec<Running<'a>> {
    sources
        .iter()
        .zip(applications)
        .map(|(target, application)| Running {
            target,
            since: application.verdict.as_ref().and_then(|verdict| {
                let (revision, since) = verdict.running_since.as_ref()?;
                Some((format!("commit {}", &revision[..revision.len().min(12)]), since.parse::<Timestamp>().ok()?))
            }),
        })
        .collect()
}

/// A promotion into `to` with `soak` set: every release of `from` has run what it runs for that
/// long, unless `--override-soak`.
pub fn soak(from: &Stage, to: &Stage, running: &[Running], now: Timestamp, overridden: bool) -> Option<Gate> {
    let soak = to.soak?;
    let wanted = jiff::SignedDuration::try_from(soak).ok()?;
    let mut young = Vec::new();
    let mut opens = now;
    for Running { target, since } in running {
        let release = &target.label();
        let Some((what, at)) = since else {
            young.push(format!("{release}: when {} deployed it is not known", from.name));
            continue;
        };
        let ready = at.checked_add(wanted).unwrap_or(Timestamp::MAX);
        if ready > now {
            let ran = now.duration_since(*at).round(jiff::Unit::Minute).unwrap_or_default();
            young.push(format!("{release} {what} has run {ran:#}"));
            opens = opens.max(ready);
        }
    }
    let wanted_text = freeze::show_duration(soak);
    if young.is_empty() {
        return Some(Gate::passed("soak", format!("{} has run its config for at least {wanted_text}", from.name)));
    }
    let what = format!(
        "{} wants {wanted_text} in {} first: {}; the gate opens at {}",
        to.name,
        from.name,
        young.join(", "),
        freeze::show_time(opens, &jiff::tz::TimeZone::UTC)
    );
    Some(match overridden {
        true => Gate::overridden("soak", format!("{what}; promoted anyway (--override-soak)")),
        false => Gate::refused("soak", format!("{what}, or pass --override-soak")),
    })
}

/// Only the next stage after `from`, unless `--allow-skip`.
pub fn order(project: &Project, from: &Stage, to: &Stage, allow_skip: bool) -> Gate {
    let index = |s: &Stage| project.stages.iter().position(|x| x.name == s.name).unwrap_or_default();
    let (i, j) = (index(from), index(to));
    if j == i + 1 {
        return Gate::passed("order", format!("{} is the stage after {}", to.name, from.name));
    }
    let how = if j < i { "comes before" } else { "is not the stage right after" };
    if allow_skip {
        Gate::passed("order", format!("{} {how} {} (allowed by --allow-skip)", to.name, from.name))
    } else {
        let next = project.stages.get(i + 1).map_or("no stage".to_string(), |s| format!("`{}`", s.name));
        Gate::refused(
            "order",
            format!(
                "{} {how} {}: promotions go one stage at a time ({} comes next); pass --allow-skip to skip on purpose",
                to.name, from.name, next
            ),
        )
    }
}

/// Every key the source stage keeps in its encrypted values files, the target stage's
/// encrypted files define too: the promoted config must not reach a stage without the
/// credentials it uses. Read from the files' keys, without decrypting. `None` when no release
/// has encrypted files.
pub fn secret_keys(project: &Project, from: &Stage, to: &Stage, releases: &[&Release]) -> Option<Gate> {
    let mut missing = Vec::new();
    let mut any = false;
    for release in releases {
        let (source, target) = (project.target(from, release), project.target(to, release));
        any |= !source.secret_files.is_empty() || !target.secret_files.is_empty();
        let theirs = project.secret_paths(&target);
        let lacking: Vec<String> =
            project.secret_paths(&source).into_iter().filter(|p| !theirs.contains(p)).map(|p| p.to_string()).collect();
        if lacking.is_empty() {
            continue;
        }
        let file = target.secret_files.last().map_or_else(
            || format!("a file under the release's `secrets` for {}", to.name),
            |f| format!("{} (`sops edit {}`)", f.display, f.display),
        );
        missing.push(format!("{}: {} (add to {file})", release.name, lacking.join(", ")));
    }
    if !any {
        return None;
    }
    Some(match missing.as_slice() {
        [] => Gate::passed("encrypted", format!("{}'s encrypted values define every key {}'s do", to.name, from.name)),
        _ => Gate::refused(
            "encrypted",
            format!(
                "{}'s encrypted values lack keys that {} has: {}; give {} its own value for each",
                to.name,
                from.name,
                missing.join("; "),
                to.name
            ),
        ),
    })
}

/// With the stage's `requireOwnKeys`: every encrypted values file of its releases opens with
/// the stage's own keys only (`check-secrets` judges the same). `None` without the setting or
/// without encrypted files.
pub fn own_keys(project: &Project, stage: &Stage, targets: &[Target]) -> Option<Gate> {
    if !stage.require_own_keys {
        return None;
    }
    let releases: Vec<&Release> = targets.iter().map(|t| t.release).collect();
    let verdicts = encryption::check(project, &[stage], &releases);
    if verdicts.is_empty() {
        return None;
    }
    let problems: Vec<String> = verdicts
        .iter()
        .flat_map(|v| {
            v.problems.iter().map(move |problem| match problem {
                KeyProblem::OpensOtherStages { recipient, stages } => {
                    format!("{} opens with {recipient}, a key of {} too", v.file, stages.join(", "))
                }
                KeyProblem::NotForItsRule { .. } => {
                    format!("{} is encrypted for none of the keys .sops.yaml names for it", v.file)
                }
            })
        })
        .collect();
    Some(match problems.as_slice() {
        [] => Gate::passed("keys", format!("{}'s encrypted values open with its own keys only", stage.name)),
        _ => Gate::refused(
            "keys",
            format!(
                "{}; encrypt them for {}'s keys only (see `helm envs check-secrets {}`)",
                problems.join("; "),
                stage.name,
                stage.name
            ),
        ),
    })
}

/// The source of a promotion must be deployed as configured: the same judgment as `drift`
/// makes of a stage's cluster (status, chart, user-supplied values, manifest).
pub fn source_in_sync(from: &Stage, releases: &[(&Target, &LiveState)]) -> Gate {
    let mut problems = Vec::new();
    for (target, state) in releases {
        let release = &target.label();
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
        Gate::passed("source", format!("{} is deployed and in sync with its config", from.name))
    } else {
        Gate::refused(
            "source",
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

/// The source of a promotion that Argo CD deploys must run its config: each Application as the
/// stages file generates it, and Argo CD's verdict Synced (at the commit it follows).
pub fn source_synced_by_argocd(from: &Stage, applications: &[Application]) -> Gate {
    let problems: Vec<String> = applications
        .iter()
        .filter(|application| !application.in_sync())
        .map(|application| match &application.verdict {
            None => format!("Argo CD holds no Application {}", application.name),
            Some(_) if !application.edited.is_empty() => format!(
                "Application {} is not what the stages file generates ({})",
                application.name,
                application.edited.iter().map(|e| e.path.as_str()).collect::<Vec<_>>().join(", ")
            ),
            Some(verdict) => format!("Application {} is {}", application.name, verdict.sync),
        })
        .collect();
    let commits: std::collections::BTreeSet<&str> =
        applications.iter().filter_map(|a| a.verdict.as_ref()?.revision.as_deref()).collect();
    match problems.is_empty() {
        true => Gate::passed(
            "source",
            format!(
                "Argo CD runs {}'s config (Synced at {})",
                from.name,
                commits.iter().map(|c| &c[..c.len().min(12)]).collect::<Vec<_>>().join(", ")
            ),
        ),
        false => Gate::refused(
            "source",
            format!(
                "Argo CD does not run {}'s config: {}; see `helm envs drift --stage {}`, or pass --skip-source-check",
                from.name,
                problems.join("; "),
                from.name
            ),
        ),
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
                format!("{}: {}{why}", target.label(), w.headline())
            })
        })
        .collect();
    match (problems.is_empty(), allowed) {
        (true, _) => Gate::passed("health", format!("{}'s workloads are ready", from.name)),
        (false, true) => Gate::passed(
            "health",
            format!(
                "{} is not healthy, promoted anyway (--allow-unhealthy-source): {}",
                from.name,
                problems.join("; ")
            ),
        ),
        (false, false) => Gate::refused(
            "health",
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
        (Some(why), _) => Gate::refused("isolation", format!("could not be checked: {why}")),
        (None, []) => Gate::passed(
            "isolation",
            match report.shares_with.as_slice() {
                [] => "a cluster of its own".to_string(),
                others => format!("namespaces kept apart from {}", others.join(", ")),
            },
        ),
        (None, problems) => Gate::refused(
            "isolation",
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
        Gate::passed("cluster", format!("context {} reaches cluster {expected}", stage.kube_context))
    } else {
        Gate::refused(
            "cluster",
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
            Gate::passed("namespace", format!("{} exist{}", listed(&names), if names.len() == 1 { "s" } else { "" }))
        }
        (missing, true) => {
            Gate::passed("namespace", format!("{} will be created by the deploy (createNamespace)", listed(missing)))
        }
        (missing, false) => {
            let context = stage.kube_context.name().map(|c| format!(" --context {c}")).unwrap_or_default();
            Gate::refused("namespace", format!(
                    "{} does not exist in the cluster of stage `{}`: create it (`kubectl{context} create namespace {}`), \
                     or set `createNamespace: true` on the stage to let the deploy create it",
                    listed(missing),
                    stage.name,
                    missing[0]
                ),
            )
            .with_details(Details::MissingNamespaces(missing.iter().map(|n| n.to_string()).collect()))
        }
    })
}

/// A namespace that does not exist, let through because this run does not create it itself:
/// `why` says who does (the stage's deploy command, `exec`'s command) or that nothing deploys.
fn missing_allowed(missing: &str, why: &str) -> Gate {
    Gate::passed("namespace", format!("{missing} does not exist yet; {why}"))
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
    Ok(if report.passed() {
        let count: usize = report.namespaces.iter().map(|n| n.satisfied.len()).sum();
        Gate::passed("secrets", format!("every referenced Secret is present ({count})"))
    } else {
        let absent: Vec<&str> = report.namespaces.iter().filter(|n| !n.exists).map(|n| n.namespace.as_str()).collect();
        let why = match absent.as_slice() {
            [] => String::new(),
            absent => format!(" (namespace {} does not exist, so no Secret is there yet)", absent.join(", ")),
        };
        Gate::refused(
            "secrets",
            format!(
                "Secrets are missing in {}{why}: create them before deploying (`helm envs check-secrets {}`)",
                stage.name, stage.name
            ),
        )
        .with_details(Details::Secrets(report))
    })
}

/// Who is asked to approve a stage with `approval: required` when `--yes` was not given: the
/// command provides it (a prompt at a terminal).
pub trait Approver {
    /// The answer typed to `question` for `stage`; `None` when nobody can be asked (no terminal).
    fn ask(&self, stage: &Stage, question: &str) -> Result<Option<String>>;
}

/// A stage with `approval: required`: `--yes`, or the stage's name typed to the approver.
pub fn approval(stage: &Stage, yes: bool, question: &str, approver: &dyn Approver) -> Result<Gate> {
    if stage.approval != Approval::Required {
        return Ok(Gate::passed("approval", "not required"));
    }
    if yes {
        return Ok(Gate::passed("approval", "given with --yes"));
    }
    Ok(match approver.ask(stage, question)? {
        None => Gate::refused(
            "approval",
            format!(
                "stage `{}` requires approval: pass --yes, or run on a terminal to confirm at a prompt",
                stage.name
            ),
        ),
        Some(answer) if answer.trim() == stage.name => Gate::passed("approval", "confirmed at the prompt"),
        Some(_) => Gate::refused("approval", format!("not confirmed (expected `{}`)", stage.name)),
    })
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::compare::gate::Verdict;
    use crate::config::fixture;
    use crate::error::{EXIT_GATE, Error};
    use crate::inspect::diff::Report;
    use crate::pipeline::{Judged, Options, StageRun};

    /// An encrypted file as sops writes it (the values do not matter: nothing is decrypted).
    fn encrypted_for(recipients: &[&str]) -> String {
        let age: String = recipients.iter().map(|r| format!("    - recipient: {r}\n      enc: x\n")).collect();
        format!(
            "token: ENC[AES256_GCM,data:x,iv:x,tag:x,type:str]\nsops:\n  age:\n{age}  mac: ENC[x]\n  version: 3.13.3\n"
        )
    }

    #[test]
    fn a_source_argo_cd_deploys_passes_when_every_application_is_as_generated_and_synced() {
        let (_dir, project) = fixture::load_with(
            "stages:\n  - name: dev\n    kubeContext: dev\n    namespace: a\n    argocd: {repoUrl: file:///git, context: dev}\n\
             releases:\n  - name: app\n    chart: chart\n",
            &[],
        );
        let project = project.expect("loads");
        let synced = Application {
            name: "app-dev".into(),
            verdict: Some(crate::compare::argocd::Verdict {
                sync: "Synced".into(),
                revision: Some("0123456789abcdef0123456789abcdef01234567".into()),
                ..Default::default()
            }),
            edited: Vec::new(),
            generated: serde_json::Value::Null,
        };
        let gate = source_synced_by_argocd(&project.stages[0], std::slice::from_ref(&synced));
        assert_eq!(gate.verdict, Verdict::Passed, "{}", gate.message);
        assert_eq!(gate.message, "Argo CD runs dev's config (Synced at 0123456789ab)");

        let edited = Application {
            edited: vec![crate::compare::argocd::Edit {
                path: "spec.source.targetRevision".into(),
                generated: Some("main".into()),
                live: Some("hotfix".into()),
            }],
            ..synced.clone()
        };
        let missing = Application { name: "web-dev".into(), verdict: None, ..synced.clone() };
        let gate = source_synced_by_argocd(&project.stages[0], &[synced, edited, missing]);
        assert_eq!(gate.verdict, Verdict::Refused);
        assert!(gate.message.contains("app-dev is not what the stages file generates (spec.source.targetRevision)"));
        assert!(gate.message.contains("Argo CD holds no Application web-dev"), "{}", gate.message);
    }

    #[test]
    fn the_keys_gate_refuses_a_production_file_that_devs_key_opens_and_only_where_required() {
        let stages = "stages:\n  - name: dev\n    kubeContext: dev\n    namespace: a\n  - name: production\n    \
                      kubeContext: production\n    namespace: b\n    requireOwnKeys: true\n\
                      releases:\n  - name: app\n    chart: chart\n    secrets: [\"envs/{stage}.secrets.yaml\"]\n";
        let files = [
            ("envs/dev.secrets.yaml", encrypted_for(&["age1dev"])),
            ("envs/production.secrets.yaml", encrypted_for(&["age1prod", "age1dev"])),
        ];
        let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
        let (_dir, project) = fixture::load_with(stages, &files);
        let project = project.unwrap_or_else(|err| panic!("loads: {err}: {:?}", err.details()));
        let targets = |stage: &str| {
            let stage = project.stage(stage).expect("stage");
            project.releases.iter().map(|r| project.target(stage, r)).collect::<Vec<_>>()
        };
        assert!(own_keys(&project, project.stage("dev").expect("dev"), &targets("dev")).is_none(), "not required");
        let gate = own_keys(&project, project.stage("production").expect("production"), &targets("production"))
            .expect("required");
        assert!(matches!(gate.verdict, Verdict::Refused), "{gate:?}");
        assert!(gate.message.contains("envs/production.secrets.yaml opens with age1dev, a key of dev too"), "{gate:?}");
    }

    /// Answers the prompt with what it is given (`None`: nobody at a terminal), and remembers
    /// the questions.
    struct Scripted {
        answer: Option<&'static str>,
        asked: RefCell<Vec<String>>,
    }

    impl Scripted {
        fn answering(answer: Option<&'static str>) -> Scripted {
            Scripted { answer, asked: RefCell::default() }
        }
    }

    impl Approver for Scripted {
        fn ask(&self, stage: &Stage, question: &str) -> Result<Option<String>> {
            self.asked.borrow_mut().push(format!("{}: {question}", stage.name));
            Ok(self.answer.map(str::to_string))
        }
    }

    #[test]
    fn promotions_go_one_stage_at_a_time_unless_skipping_is_allowed() {
        let (_dir, project) = fixture::project(&["dev", "staging", "production"], &[]);
        let [dev, staging, production] = [0, 1, 2].map(|i| &project.stages[i]);
        assert_eq!(order(&project, dev, staging, false).verdict, Verdict::Passed);
        let skipped = order(&project, dev, production, false);
        assert_eq!(skipped.verdict, Verdict::Refused);
        assert!(skipped.message.contains("(`staging` comes next)"), "{}", skipped.message);
        assert!(skipped.message.contains("--allow-skip"), "{}", skipped.message);
        let allowed = order(&project, dev, production, true);
        assert_eq!(allowed.verdict, Verdict::Passed);
        assert!(allowed.message.contains("allowed by --allow-skip"), "{}", allowed.message);
        let backwards = order(&project, production, staging, false);
        assert!(backwards.message.contains("comes before"), "{}", backwards.message);
        assert_eq!(backwards.verdict, Verdict::Refused);
    }

    #[test]
    fn approval_is_given_by_yes_or_by_typing_the_stage_name_and_never_assumed() {
        let (_dir, project) = fixture::project(&["dev", "production"], &["production"]);
        let [dev, production] = [0, 1].map(|i| &project.stages[i]);
        let nobody = Scripted::answering(None);
        let gate = |stage, yes, approver: &Scripted| approval(stage, yes, "Deploy?", approver).expect("no I/O error");

        assert_eq!(gate(dev, false, &nobody).message, "not required");
        assert_eq!(gate(production, true, &nobody).message, "given with --yes");
        assert!(nobody.asked.borrow().is_empty(), "nobody is asked when nothing needs an answer");

        let unattended = gate(production, false, &nobody);
        assert_eq!(unattended.verdict, Verdict::Refused, "no terminal: refused, not passed");
        assert!(unattended.message.contains("pass --yes"), "{}", unattended.message);

        let typed = Scripted::answering(Some("production\n"));
        assert_eq!(gate(production, false, &typed).verdict, Verdict::Passed);
        assert_eq!(*typed.asked.borrow(), ["production: Deploy?"]);

        let wrong = gate(production, false, &Scripted::answering(Some("yes\n")));
        assert_eq!(wrong.verdict, Verdict::Refused);
        assert_eq!(wrong.message, "not confirmed (expected `production`)");
    }

    /// dev and production, production with a Friday-to-Monday freeze (Berlin) and a 24h soak.
    fn timed_project() -> (tempfile::TempDir, Project) {
        let (dir, project) = fixture::load(
            "stages:\n  - {name: dev, kubeContext: dev, namespace: app-dev}\n  - name: production\n    \
             kubeContext: production\n    namespace: app-production\n    soak: 24h\n    freeze:\n      \
             - {cron: 0 12 * * FRI, duration: 68h, timeZone: Europe/Berlin, reason: weekend}\n\
             releases:\n  - {name: app, chart: chart, values: [values.yaml]}\n",
        );
        (dir, project.unwrap_or_else(|err| panic!("loads: {err}: {:?}", err.details())))
    }

    fn at(text: &str) -> Timestamp {
        text.parse().expect("a timestamp")
    }

    #[test]
    fn a_freeze_window_refuses_a_deploy_until_it_ends_unless_overridden() {
        let (_dir, project) = timed_project();
        let [dev, production] = [0, 1].map(|i| &project.stages[i]);
        assert!(freeze(dev, at("2026-12-05T12:00:00Z"), false).is_none(), "no windows, no gate");
        let open = freeze(production, at("2026-12-03T12:00:00Z"), false).expect("a gate");
        assert_eq!((open.verdict, open.message.as_str()), (Verdict::Passed, "no freeze window holds now"));

        let frozen = freeze(production, at("2026-12-05T12:00:00Z"), false).expect("a gate");
        assert_eq!(frozen.verdict, Verdict::Refused);
        assert_eq!(
            frozen.message,
            "production is frozen until 2026-12-07 08:00 Europe/Berlin (2026-12-07T07:00Z) (`0 12 * * FRI` for 68h \
             (Europe/Berlin): weekend); deploy then, or pass --override-freeze"
        );
        let overridden = freeze(production, at("2026-12-05T12:00:00Z"), true).expect("a gate");
        assert_eq!(overridden.verdict, Verdict::Overridden);
        assert!(overridden.message.ends_with("deployed anyway (--override-freeze)"), "{}", overridden.message);
        assert!(refusal(production, &[overridden]).is_none(), "an overridden gate does not refuse");
    }

    #[test]
    fn soak_counts_from_when_the_source_revision_was_deployed() {
        let (_dir, project) = timed_project();
        let [dev, production] = [0, 1].map(|i| &project.stages[i]);
        let target = project.target(dev, &project.releases[0]);
        let deployed = |revision: u64, updated: &str| LiveState {
            argocd: None,
            installed: Some(crate::system::helm::Installed {
                revision,
                status: "deployed".into(),
                chart: "app-0.1.0".into(),
                manifest: String::new(),
                hooks: String::new(),
                config_label: None,
            }),
            rendered: String::new(),
            comparison: Default::default(),
            values: Vec::new(),
            history: vec![
                crate::system::records::Revision {
                    revision: 1,
                    updated: "2026-11-01T00:00:00Z".into(),
                    ..Default::default()
                },
                crate::system::records::Revision { revision, updated: updated.into(), ..Default::default() },
            ],
            regenerated: Vec::new(),
            chart_change: None,
            notes: Vec::new(),
        };
        let now = at("2026-12-06T12:00:00Z");
        assert!(
            soak(production, dev, &running_by_helm(&[(&target, &deployed(2, "2026-12-06T11:50:00Z"))]), now, false)
                .is_none(),
            "dev has no soak"
        );

        let young = deployed(2, "2026-12-06T11:50:00+00:00");
        let gate = soak(dev, production, &running_by_helm(&[(&target, &young)]), now, false).expect("a gate");
        assert_eq!(gate.verdict, Verdict::Refused);
        assert_eq!(
            gate.message,
            "production wants 24h in dev first: app revision 2 has run 10m; the gate opens at 2026-12-07 11:50 UTC, \
             or pass --override-soak"
        );
        assert_eq!(
            soak(dev, production, &running_by_helm(&[(&target, &young)]), now, true).expect("gate").verdict,
            Verdict::Overridden
        );

        let old = deployed(2, "2026-12-05T11:00:00Z");
        let gate = soak(dev, production, &running_by_helm(&[(&target, &old)]), now, false).expect("a gate");
        assert_eq!((gate.verdict, gate.message.as_str()), (Verdict::Passed, "dev has run its config for at least 24h"));

        // A stage Argo CD deploys: since its first sync at the commit it runs.
        let argo =
            [Running { target: &target, since: Some(("commit 0123456789ab".into(), at("2026-12-06T11:00:00Z"))) }];
        let gate = soak(dev, production, &argo, now, false).expect("a gate");
        assert!(gate.message.contains("app commit 0123456789ab has run 1h;"), "{}", gate.message);

        let unknown = LiveState { history: Vec::new(), ..deployed(2, "") };
        let gate = soak(dev, production, &running_by_helm(&[(&target, &unknown)]), now, false).expect("a gate");
        assert_eq!(gate.verdict, Verdict::Refused, "an unknown deploy time is not a soaked one");
    }

    #[test]
    fn the_first_refusal_heads_the_error_and_a_skipped_check_refuses_nothing() {
        let (_dir, project) = fixture::project(&["dev"], &[]);
        let dev = &project.stages[0];
        let gates =
            [Gate::skipped("cluster", "its cluster cannot be reached"), Gate::passed("namespace", "`app-dev` exists")];
        assert!(refusal(dev, &gates).is_none());
        let gates = [Gate::refused("secrets", "Secrets are missing"), Gate::refused("namespace", "`x` does not exist")];
        let err = refusal(dev, &gates).expect("refused");
        assert_eq!(err.exit_code(), EXIT_GATE);
        assert_eq!(err.to_string(), "secrets gate of stage `dev` refused: Secrets are missing");
        let notes: Vec<String> = err.details().iter().map(|d| format!("{d:?}")).collect();
        assert!(notes[0].contains("also refused by the namespace gate"), "{notes:?}");
    }

    #[test]
    fn missing_namespaces_are_waived_only_for_runs_that_leave_creating_them_to_another() {
        let mut gates = vec![
            Gate::refused("namespace", "`app-dev` does not exist")
                .with_details(Details::MissingNamespaces(vec!["app-dev".into()])),
            Gate::refused("secrets", "Secrets are missing"),
        ];
        waive_missing_namespaces(&mut gates, "the command must create it");
        assert_eq!(gates[0].verdict, Verdict::Passed);
        assert_eq!(gates[0].message, "`app-dev` does not exist yet; the command must create it");
        assert_eq!(gates[1].verdict, Verdict::Refused, "other refusals stay");
    }

    fn judged(stage: &Stage, gates: Vec<Gate>, needs: Vec<bool>) -> Judged {
        Judged { report: Report::live(stage, &[], Vec::new()), gates, needs }
    }

    fn run<'a>(stage: &'a Stage, options: Options, ask_even_if_unchanged: bool) -> StageRun<'a> {
        StageRun { stage, targets: &[], options, question: "Deploy?".into(), ask_even_if_unchanged, summary: false }
    }

    #[test]
    fn approval_is_asked_only_when_a_deploy_follows() {
        let (_dir, project) = fixture::project(&["production"], &["production"]);
        let production = &project.stages[0];
        let nobody = Scripted::answering(None);

        let mut unchanged = judged(production, Vec::new(), vec![false]);
        assert_eq!(unchanged.approve(&run(production, Options::default(), false), &nobody).expect("passes"), [false]);
        assert_eq!(unchanged.gates[0].message, "not needed: nothing to deploy");

        let dry_run = Options { dry_run: true, ..Options::default() };
        let mut rehearsed = judged(production, Vec::new(), vec![true]);
        assert_eq!(rehearsed.approve(&run(production, dry_run, false), &nobody).expect("passes"), [true]);
        assert_eq!(rehearsed.gates[0].message, "required; not asked in a dry run");
        assert!(nobody.asked.borrow().is_empty());

        let mut promotion = judged(production, Vec::new(), vec![false]);
        let refused = promotion.approve(&run(production, Options::default(), true), &nobody).expect_err("refused");
        assert!(matches!(refused, Error::Refused { .. }), "a promotion asks even when nothing renders differently");
        assert_eq!(nobody.asked.borrow().len(), 1);
    }

    #[test]
    fn an_automatic_refusal_stops_the_run_even_when_approved() {
        let (_dir, project) = fixture::project(&["dev"], &[]);
        let dev = &project.stages[0];
        let mut refused = judged(dev, vec![Gate::refused("secrets", "Secrets are missing")], vec![true]);
        let yes = Options { yes: true, ..Options::default() };
        let err = refused.approve(&run(dev, yes, false), &Scripted::answering(None)).expect_err("refused");
        assert!(err.to_string().starts_with("secrets gate of stage `dev` refused"), "{err}");
    }
}
