//! `helm envs promote --from A --to B`: show the promotion patch and what deploying B would
//! change, pass the gates, write B's files, deploy B; restore B's files if the deploy fails.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::cli::PromoteArgs;
use crate::deploy::{Outcome, Record};
use crate::diff;
use crate::error::{Detail, Error, Result};
use crate::files::{self, Restore};
use crate::gates::{self, Gate};
use crate::git::Git;
use crate::helm::Helm;
use crate::kube::Kubectl;
use crate::manifest;
use crate::output::{BOLD, DIM, note};
use crate::promotion::{self, Promotion, ValueChange};
use crate::render::{LiveState, against_installed, all_or_errors, joined, render_all};
use crate::stages::{Project, Release, Stage, Target};
use crate::values::ValuePath;

use super::upgrade::{Checked, check_stage, deploy_failed, deploy_gated, emit, gate, lock, outcomes_text};

pub fn run(project: &Project, args: &PromoteArgs) -> Result<u8> {
    let (from, to) = (project.stage(&args.from)?, project.stage(&args.to)?);
    if from.name == to.name {
        return Err(Error::Other(anyhow::anyhow!(
            "--from and --to are both `{}`; name two different stages",
            from.name
        )));
    }
    if args.git_commit && args.deploy.dry_run {
        return Err(Error::Other(anyhow::anyhow!(
            "--git-commit writes a commit; it cannot be combined with --dry-run"
        )));
    }
    let only = args
        .only
        .iter()
        .map(|p| ValuePath::parse(p).map_err(|why| Error::Other(anyhow::anyhow!("invalid --only `{p}`: {why}"))))
        .collect::<Result<Vec<_>>>()?;
    let releases = project.select_releases(args.release.as_deref())?;
    let plan = promotion::plan(project, from, to, &releases, &only)?;
    for path in &plan.env_specific_only {
        note(&format!("--only {path}: the path is envSpecific (intended to differ per stage) and is never promoted"));
    }
    let mut text = patch_text(&plan, args.deploy.show_secrets);
    let mut json = json!({
        "command": "promote",
        "from": from.name,
        "to": to.name,
        "digest": plan.digest,
        "releases": plan.releases.iter().map(|r| json!({
            "release": r.release.name,
            "patch": redacted_ops(&r.ops, args.deploy.show_secrets),
            "chartVersion": r.version.as_ref().map(|v| json!({"old": v.old, "new": v.new})),
        })).collect::<Vec<_>>(),
        "files": plan.files.iter().map(|f| f.display.clone()).collect::<Vec<_>>(),
    });
    if plan.is_empty() {
        let _ = writeln!(
            text,
            "Nothing to promote: {}'s values{} match {}'s outside envSpecific. \
             (`helm envs diff {}` shows whether {} is deployed as configured.)",
            to.name,
            if only.is_empty() { "" } else { " at the --only paths" },
            from.name,
            to.name,
            to.name
        );
        emit(&args.deploy, &text, &json, "nothing-to-promote");
        return Ok(0);
    }

    // Taken before the cluster is asked anything, so a second run fails at once; the files read
    // by the plan are checked again before they are written.
    let _lock = lock(project, &args.deploy, &format!("promote --from {} --to {}", from.name, to.name))?;
    let branch = format!("promote/{}-to-{}-{}", from.name, to.name, plan.digest);
    let git = Git::new(&project.dir);
    let written: Vec<PathBuf> = plan.files.iter().map(|f| f.path.clone()).collect();
    if args.git_commit {
        git.check(&written, &branch)?;
    }

    // The gates judge the promoted config: the edited files as copies, rendered for B's cluster.
    let copies_dir = tempfile::tempdir()
        .map_err(|e| Error::Other(anyhow::Error::new(e).context("cannot create a temporary directory")))?;
    let mut copies = BTreeMap::new();
    for (i, edit) in plan.files.iter().enumerate().filter(|(_, e)| e.path != project.file) {
        let copy = copies_dir.path().join(format!("{i}.yaml"));
        std::fs::write(&copy, &edit.after)
            .map_err(|e| Error::Other(anyhow::Error::new(e).context("cannot write a temporary values file")))?;
        copies.insert(edit.path.clone(), copy);
    }
    let (helm, kubectl) = (Helm::locate()?, Kubectl::locate()?);
    let promoted: Vec<Target> =
        releases.iter().map(|r| plan.promoted_target(&project.target(to, r), &copies)).collect();
    let sources: Vec<Target> = releases.iter().map(|r| project.target(from, r)).collect();
    let (checked, source_states) = std::thread::scope(|scope| {
        let source = (!args.skip_source_check).then(|| {
            scope.spawn(|| {
                let options = diff::Options { ignore: Vec::new(), show_secrets: false };
                against_installed(project, &helm, &sources, &options)
            })
        });
        let checked = check_stage(project, &helm, &kubectl, to, &promoted, args.deploy.show_secrets);
        let source = source.map(joined);
        (checked, source)
    });
    // GitOps: a CI job writing the pull request often has no cluster credentials. Without a
    // reachable cluster, --no-deploy goes on offline and says which checks it could not run.
    let offline = |err: &Error| args.no_deploy && err.is_unreachable();
    let (Checked { states, gates: target_gates }, offline_target) = match checked {
        Err(err) if offline(&err) => {
            note(&format!(
                "{}'s cluster cannot be reached ({}); --no-deploy goes on without it",
                to.name,
                err.one_line()
            ));
            (offline_check(project, &helm, to, &releases, &promoted)?, true)
        }
        other => (other?, false),
    };
    let mut all_gates = vec![gates::order(project, from, to, args.allow_skip)];
    match source_states.transpose() {
        Ok(Some(source_states)) => {
            let releases: Vec<(&Target, &LiveState)> = sources.iter().zip(source_states.iter()).collect();
            all_gates.push(gates::source_in_sync(from, &releases));
        }
        Ok(None) => note(&format!(
            "--skip-source-check: not checking that {} is deployed and in sync with its config; the promoted \
             values may never have run there",
            from.name
        )),
        Err(err) if offline(&err) => all_gates
            .push(Gate::skipped("source", format!("{}'s cluster cannot be reached ({})", from.name, err.one_line()))),
        Err(err) => return Err(err),
    }
    all_gates.extend(target_gates);

    json["offline"] = json!(offline_target);
    let _ = match offline_target {
        true => writeln!(text, "\n{BOLD}What the promotion changes in {}'s rendered config{BOLD:#} (offline)", to.name),
        false => writeln!(text, "\n{BOLD}What deploying {} will change{BOLD:#}", to.name),
    };
    // What is deployed after the write: B's own files (now edited), the promoted chart version.
    let targets: Vec<Target> = releases
        .iter()
        .zip(&promoted)
        .map(|(r, p)| Target { version: p.version.clone(), ..project.target(to, r) })
        .collect();
    let action = format!("Promote {} into {}?", from.name, to.name);
    let gated = gate(
        to,
        &targets,
        Checked { states, gates: all_gates },
        &args.deploy,
        true,
        offline_target,
        &action,
        &mut text,
        &mut json,
    );
    let needs = match gated {
        Ok(needs) => needs,
        Err(err) => {
            emit(&args.deploy, &text, &json, "refused");
            return Err(err);
        }
    };
    if args.deploy.dry_run {
        let _ = writeln!(text, "{BOLD}Dry run{BOLD:#}: nothing written, nothing deployed.");
        emit(&args.deploy, &text, &json, "dry-run");
        return Ok(0);
    }

    let restore = write_files(project, &plan)?;
    for file in &plan.files {
        let _ = writeln!(text, "wrote     {}", file.display);
    }
    let names: Vec<&str> = plan.files.iter().map(|f| f.display.as_str()).collect();
    let _pending = (!args.no_deploy).then(|| {
        crate::interrupt::pending(vec![
            Detail::Note(format!(
                "{} {} written for the promotion {} -> {}, and its deploy did not finish (a helm upgrade may still \
                 be running: the project stays locked until it ends)",
                names.join(", "),
                if names.len() == 1 { "was" } else { "were" },
                from.name,
                to.name
            )),
            Detail::Help(format!(
                "finish it: `helm envs upgrade {}`; or take the promotion back: restore {} from version control",
                to.name,
                names.join(", ")
            )),
        ])
    });
    if !args.no_deploy {
        let record = Record::new(
            to,
            format!("helm-envs: promoted {} -> {} (patch {})", from.name, to.name, plan.digest),
            Some(&from.name),
        );
        let (outcomes, error) = deploy_gated(project, &helm, to, &targets, &needs, &args.deploy, &record);
        json["outcomes"] = outcomes.iter().map(Outcome::json).collect();
        text.push_str(&outcomes_text(&outcomes));
        if let Some(err) = error {
            let unrestored = restore.restore();
            json["filesRestored"] = json!(unrestored.is_empty());
            emit(&args.deploy, &text, &json, "failed");
            return Err(with_restore_report(deploy_failed("promote", err, &outcomes), &plan, &unrestored));
        }
    }
    if args.git_commit {
        if let Err(err) = git.commit_on_branch(&branch, &written, &commit_message(&plan)) {
            if args.no_deploy {
                let unrestored = restore.restore();
                return Err(with_restore_report(err, &plan, &unrestored));
            }
            return Err(err);
        }
        let _ = writeln!(text, "committed on branch {branch} (now checked out): push it and open a pull request");
        json["branch"] = json!(branch);
    }
    if args.no_deploy {
        let _ = writeln!(
            text,
            "{BOLD}Promoted {} into {}'s files{BOLD:#}; not deployed (--no-deploy).",
            from.name, to.name
        );
        emit(&args.deploy, &text, &json, "written");
    } else {
        let _ = writeln!(text, "{BOLD}Promoted {} into {}.{BOLD:#}", from.name, to.name);
        emit(&args.deploy, &text, &json, "promoted");
    }
    Ok(0)
}

/// Without B's cluster: B's config as its files are now against the promoted config, both
/// rendered offline, and the gates that need the cluster marked as not run.
fn offline_check(
    project: &Project,
    helm: &Helm,
    to: &Stage,
    releases: &[&Release],
    promoted: &[Target],
) -> Result<Checked> {
    let current: Vec<Target> = releases.iter().map(|r| project.target(to, r)).collect();
    let rendered = all_or_errors(render_all(helm, &[current.as_slice(), promoted].concat()))?;
    let (now, after) = rendered.split_at(current.len());
    let mut states = Vec::new();
    for ((target, now), after) in promoted.iter().zip(now).zip(after) {
        let pair = manifest::parse_pair(now, after, &target.namespace)
            .map_err(|(_, error)| crate::render::rendered_manifest_error(target, error))?;
        let mut comparison = diff::compare(pair.old, pair.new, &diff::Options::default());
        comparison.unchanged += pair.identical;
        states.push(LiveState { installed: None, rendered: after.clone(), comparison, values: Vec::new() });
    }
    let unreachable = format!("{}'s cluster cannot be reached", to.name);
    let mut gates = vec![Gate::skipped("secrets", unreachable.clone())];
    if to.cluster_id.is_some() {
        gates.insert(0, Gate::skipped("cluster", unreachable));
    }
    Ok(Checked { states, gates })
}

/// Write every edited file atomically; each file must still hold what the plan read.
fn write_files(project: &Project, plan: &Promotion) -> Result<Restore> {
    // Every file first: a read-only one, or one outside the project, refuses the promotion
    // before anything is written.
    for edit in &plan.files {
        if !edit.path.starts_with(&project.dir) && !project.allow_values_outside_project {
            return Err(Error::Refused {
                headline: format!("{} is outside the project; not written", edit.display),
                details: vec![
                    Detail::Note(format!("the project is {}", project.dir.display())),
                    Detail::Help(
                        "move the values file into the project, or set `allowValuesOutsideProject: true` in the \
                         stages file if writing there is meant"
                            .into(),
                    ),
                ],
            });
        }
        files::check_writable(&edit.path).map_err(|err| Error::Failed {
            headline: format!("cannot write {}", edit.display),
            details: vec![Detail::Note(format!("{err:#}")), Detail::Help("nothing was written".into())],
        })?;
    }
    let mut restore = Restore::default();
    for edit in &plan.files {
        let current = std::fs::read_to_string(&edit.path).unwrap_or_default();
        if current != edit.before {
            let unrestored = restore.restore();
            return Err(with_restore_report(
                Error::Failed {
                    headline: format!("{} changed while the promotion was being prepared", edit.display),
                    details: vec![Detail::Help("run the promotion again".into())],
                },
                plan,
                &unrestored,
            ));
        }
        if let Err(err) = files::write_atomic(&edit.path, edit.after.as_bytes()) {
            let unrestored = restore.restore();
            return Err(with_restore_report(
                Error::Other(err.context(format!("cannot write {}", edit.display))),
                plan,
                &unrestored,
            ));
        }
        restore.remember(&edit.path, &edit.before, &edit.after);
    }
    Ok(restore)
}

/// Add to an error what became of the files the promotion had written.
fn with_restore_report(err: Error, plan: &Promotion, unrestored: &[(PathBuf, anyhow::Error)]) -> Error {
    let headline = err.to_string();
    let mut details = err.details();
    if unrestored.is_empty() {
        let names: Vec<&str> = plan.files.iter().map(|f| f.display.as_str()).collect();
        details.push(Detail::Note(format!(
            "{} restored as they were: nothing of the promotion was kept",
            names.join(", ")
        )));
    } else {
        for (path, why) in unrestored {
            details.push(Detail::Note(format!(
                "{} was not restored: {why:#}; check it against version control",
                path.display()
            )));
        }
    }
    let code_is_gate = matches!(err, Error::Refused { .. });
    if code_is_gate { Error::Refused { headline, details } } else { Error::Failed { headline, details } }
}

/// The patch as people read it.
fn patch_text(plan: &Promotion, show_secrets: bool) -> String {
    let mut out = format!(
        "{BOLD}Promoting {} into {}{BOLD:#} {DIM}(patch {}){DIM:#}\n",
        plan.from.name, plan.to.name, plan.digest
    );
    for release in &plan.releases {
        if release.changes.is_empty() && release.version.is_none() {
            let _ = writeln!(out, "{BOLD}{}{BOLD:#}: nothing to promote", release.release.name);
            continue;
        }
        let _ = writeln!(out, "{BOLD}{}{BOLD:#}:", release.release.name);
        for change in release.changes.iter().flat_map(leaves) {
            let _ = writeln!(out, "  {}", change_line(&change, show_secrets));
        }
        if let Some(version) = &release.version {
            let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
            let _ = writeln!(
                out,
                "  ~ chart version: {} -> {}  {DIM}{}{DIM:#}",
                show(&version.old),
                show(&version.new),
                plan.files.last().map_or("", |f| f.display.as_str())
            );
        }
    }
    out
}

/// A map added or removed whole, as one line per value under it (`image.tag`), as people
/// think of the change.
fn leaves(change: &ValueChange) -> Vec<ValueChange> {
    let map = match (&change.old, &change.new) {
        (None, Some(Value::Object(map))) | (Some(Value::Object(map)), None) if !map.is_empty() => map,
        _ => return vec![change.clone()],
    };
    let added = change.new.is_some();
    map.iter()
        .flat_map(|(key, value)| {
            let path = ValuePath(vec![crate::values::Segment::Key(key.clone())]).to_string();
            leaves(&ValueChange {
                path: format!("{}{}{path}", change.path, if path.starts_with('[') { "" } else { "." }),
                old: (!added).then(|| value.clone()),
                new: added.then(|| value.clone()),
                files: change.files.clone(),
            })
        })
        .collect()
}

fn change_line(change: &ValueChange, show_secrets: bool) -> String {
    let shown = |v: &Value| shown_value(&change.path, v, show_secrets);
    let files = change.files.join(", ");
    match (&change.old, &change.new) {
        (Some(old), Some(new)) => format!("~ {}: {} -> {}  {DIM}{files}{DIM:#}", change.path, shown(old), shown(new)),
        (None, Some(new)) => format!("+ {}: {}  {DIM}{files}{DIM:#}", change.path, shown(new)),
        (Some(old), None) => format!("- {} (was {})  {DIM}{files}{DIM:#}", change.path, shown(old)),
        (None, None) => format!("  {}", change.path),
    }
}

/// A value on one line (compact JSON, cut at 100 characters); a credential-like path shows
/// only its size unless `--show-secrets`.
fn shown_value(path: &str, value: &Value, show_secrets: bool) -> String {
    let value = if show_secrets { value.clone() } else { promotion::redact_at(path, value) };
    let text = serde_json::to_string(&value).unwrap_or_default();
    if text.chars().count() > 100 { format!("{}…", text.chars().take(100).collect::<String>()) } else { text }
}

fn redacted_ops(ops: &[json_patch::PatchOperation], show_secrets: bool) -> Value {
    let mut value = serde_json::to_value(ops).unwrap_or_default();
    if show_secrets {
        return value;
    }
    if let Value::Array(items) = &mut value {
        for op in items {
            let path = op["path"].as_str().unwrap_or_default().replace('/', ".");
            if let Some(v) = op.get_mut("value") {
                *v = promotion::redact_at(&path, v);
            }
        }
    }
    value
}

/// The commit message of `--git-commit`: the promotion and its patch (credentials redacted:
/// commit messages are logs).
fn commit_message(plan: &Promotion) -> String {
    let mut paths: Vec<String> =
        plan.releases.iter().flat_map(|r| r.changes.iter().flat_map(leaves)).map(|c| c.path).collect();
    paths.sort();
    paths.dedup();
    let mut subject = format!("Promote {} to {}: {}", plan.from.name, plan.to.name, paths.join(", "));
    if subject.chars().count() > 72 {
        subject = format!("Promote {} to {} ({} values)", plan.from.name, plan.to.name, paths.len());
    }
    let mut body = format!(
        "{subject}\n\nhelm envs promote --from {} --to {} (patch {})\n",
        plan.from.name, plan.to.name, plan.digest
    );
    for release in &plan.releases {
        if release.changes.is_empty() && release.version.is_none() {
            continue;
        }
        let _ = writeln!(body, "\n{}:", release.release.name);
        for change in release.changes.iter().flat_map(leaves) {
            let _ = writeln!(body, "  {}", strip_styles(&change_line(&change, false)));
        }
        if let Some(v) = &release.version {
            let _ = writeln!(body, "  ~ chart version: {:?} -> {:?}", v.old, v.new);
        }
    }
    body
}

fn strip_styles(text: &str) -> String {
    anstream::adapter::strip_str(text).to_string()
}
