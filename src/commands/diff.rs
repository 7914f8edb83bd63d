//! `helm envs diff STAGE` (installed releases against config) and `helm envs diff --from A
//! --to B` (two stages' config, documented differences apart from undocumented ones).

use std::collections::BTreeSet;
use std::io::Write as _;

use crate::cli::{DiffArgs, DiffFormat};
use crate::compare::diff::{self, IgnorePattern};
use crate::compare::manifest::{self, Namespaces, Side};
use crate::compare::render::{
    against_installed, all_or_errors, in_parallel, joined, promoted_target, render_all, rendered_manifest_error,
};
use crate::config::stages::{Project, Release, Stage, Target};
use crate::error::{EXIT_DIFFERENCES, Error, Result};
use crate::output::report::{self, Mode, ReleaseReport, Report, Sections, Unmanaged};
use crate::system::helm::Helm;
use crate::terminal;

pub fn run(project: &Project, args: &DiffArgs) -> Result<u8> {
    let ignore = args
        .ignore
        .iter()
        .map(|p| IgnorePattern::parse(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|message| Error::Other(anyhow::anyhow!("invalid --ignore: {message}")))?;
    let options = diff::Options { ignore, show_secrets: args.show_secrets };
    let releases = project.select_releases(args.release.as_deref())?;
    let report = match (&args.stage, &args.from, &args.to) {
        (Some(name), _, _) => {
            let stage = project.stage(name)?;
            let (releases, unmanaged) = live(project, &Helm::locate()?, stage, &releases, &options)?;
            Report { mode: Mode::Live { stage: name.clone() }, releases, unmanaged, ignored: args.ignore.clone() }
        }
        (None, Some(from), Some(to)) => {
            let (from_stage, to_stage) = (project.stage(from)?, project.stage(to)?);
            if from == to {
                return Err(Error::Other(anyhow::anyhow!(
                    "--from and --to are both `{from}`; name two different stages"
                )));
            }
            let releases = between(project, &Helm::locate()?, from_stage, to_stage, &releases, &options)?;
            let mode = Mode::Stages { from: from.clone(), to: to.clone() };
            Report { mode, releases, unmanaged: Vec::new(), ignored: args.ignore.clone() }
        }
        _ => {
            return Err(Error::Other(anyhow::anyhow!(
                "name the stage to diff (`helm envs diff dev`), or two stages to compare \
                 (`helm envs diff --from dev --to staging`)"
            )));
        }
    };

    for u in &report.unmanaged {
        let _ = writeln!(
            anstream::stderr(),
            "{NOTE}note{NOTE:#}: release `{}` is installed in stage {} (namespace {}) but is not in {}; it was not diffed",
            u.release,
            u.stage,
            u.namespace,
            project.file.display(),
            NOTE = terminal::NOTE,
        );
    }
    let changes = report.has_changes();
    let text = match args.output {
        DiffFormat::Text => report::text(&report, args.context),
        DiffFormat::Summary => report::summary(&report),
        DiffFormat::Json => terminal::json_text(&report::json(&report))?,
        DiffFormat::Markdown => {
            let show = |release: &str| match (&args.stage, &args.from, &args.to) {
                (Some(stage), _, _) => format!("helm envs diff {stage} --release {release}"),
                (_, Some(from), Some(to)) => format!("helm envs diff --from {from} --to {to} --release {release}"),
                _ => String::new(),
            };
            report::markdown(report, args.context, &show).render(args.max_size)
        }
    };
    terminal::stdout(&text);
    Ok(if args.detailed_exitcode && changes { EXIT_DIFFERENCES } else { 0 })
}

/// Every release of the stage as installed against its config rendered for the stage's cluster.
fn live(
    project: &Project,
    helm: &Helm,
    stage: &Stage,
    releases: &[&Release],
    options: &diff::Options,
) -> Result<(Vec<ReleaseReport>, Vec<Unmanaged>)> {
    let targets: Vec<Target> = releases.iter().map(|release| project.target(stage, release)).collect();
    // Releases of other projects may share a namespace; only list each namespace once.
    let namespaces: BTreeSet<&str> = targets.iter().map(|t| t.namespace.as_str()).collect();
    let (states, listed) = std::thread::scope(|scope| {
        let listing = scope.spawn(|| {
            all_or_errors(in_parallel(
                namespaces.iter().map(|namespace| move || helm.releases_in(stage, namespace)).collect(),
            ))
        });
        let states = against_installed(project, helm, &targets, options, false);
        (states, joined(listing))
    });
    let states = states?;
    let listed = listed?;

    let reports = Report::live(stage, &targets, states).releases;

    let mut unmanaged = Vec::new();
    for (namespace, names) in namespaces.into_iter().zip(listed) {
        let known = |name: &String| project.releases.iter().any(|r| &r.name == name);
        for release in names.into_iter().filter(|name| !known(name)) {
            unmanaged.push(Unmanaged { stage: stage.name.clone(), namespace: namespace.to_string(), release });
        }
    }
    Ok((reports, unmanaged))
}

/// Two stages' config: undocumented differences (`to` rendered with `from`'s values outside
/// envSpecific, against `to` as configured) and documented ones (`from` against that promoted
/// rendering). Nothing is guessed: the split comes from rendering the promotion.
fn between(
    project: &Project,
    helm: &Helm,
    from: &Stage,
    to: &Stage,
    releases: &[&Release],
    options: &diff::Options,
) -> Result<Vec<ReleaseReport>> {
    // Per release: `from`, `to`, and `to` with the promotion applied, unless the promotion
    // changes nothing (then `to` stands for it and one render fewer runs).
    let mut promoted_files = Vec::new();
    let mut renders: Vec<Target> = Vec::new();
    let mut promoted_at: Vec<usize> = Vec::new();
    for release in releases {
        let (source, target) = (project.target(from, release), project.target(to, release));
        let base = renders.len();
        match promoted_target(project, &source, &target)? {
            None => {
                promoted_at.push(base + 1);
                renders.extend([source, target]);
            }
            Some((promoted, file)) => {
                promoted_files.push(file);
                promoted_at.push(base + 2);
                renders.extend([source, target, promoted]);
            }
        }
    }
    let rendered = all_or_errors(render_all(helm, &renders))?;
    drop(promoted_files);

    // Each pair is parsed for itself, so documents the same on both sides (after the move into
    // the target's namespace) are counted, not parsed.
    let compare = |old: usize, new: usize| -> Result<diff::Comparison> {
        let namespaces = Namespaces { old: &renders[old].namespace, new: &renders[new].namespace };
        let pair =
            manifest::parse_pair_across(&rendered[old], &rendered[new], namespaces).map_err(|(side, error)| {
                let target = &renders[if side == Side::Old { old } else { new }];
                rendered_manifest_error(target, error)
            })?;
        let mut comparison = diff::compare(pair.old, pair.new, options);
        comparison.unchanged += pair.identical;
        Ok(comparison)
    };
    let mut reports = Vec::new();
    let mut base = 0;
    for promoted_index in promoted_at {
        let (source, target) = (&renders[base], &renders[base + 1]);
        // The source first, so that a template broken on both sides is named in `from`.
        let documented = compare(base, promoted_index)?;
        reports.push(ReleaseReport {
            release: target.release.name.clone(),
            namespace: target.namespace.clone(),
            context: to.kube_context.to_string(),
            sections: Sections::Stages {
                from_namespace: source.namespace.clone(),
                undocumented: compare(promoted_index, base + 1)?,
                documented,
            },
        });
        base = promoted_index + 1;
    }
    Ok(reports)
}
