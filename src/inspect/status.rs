//! Per stage and release: what is deployed (revision, chart, app version, helm status, when),
//! whether it is the config, and the promotion it came from.

use crate::compare::argocd::{self, Application};
use crate::compare::diff;
use crate::compare::drift::{self, Item, utc_rfc3339};
use crate::compare::health::{self, Health};
use crate::compare::render::{LiveState, Reading, against_installed, parse_rendered, render_all};
use crate::config::promotion::promotion_into;
use crate::config::stages::{Project, Release, Stage, Target};
use crate::error::Result;
use crate::system::git::Git;
use crate::system::helm::{Helm, Revision};
use crate::system::kube::Kubectl;
use crate::system::parallel::{all_or_errors, joined};

/// One release of one stage.
pub struct Row {
    pub release: String,
    pub namespace: String,
    /// `None`: never deployed (or every revision deleted).
    pub latest: Option<Revision>,
    /// Why it is not the config: `status`, `manifest`, `values`. Empty: in sync.
    pub out_of_sync: Vec<&'static str>,
    pub last_promotion: Option<Promotion>,
    /// How many revisions helm kept (the last promotion is looked for in those).
    pub revisions: usize,
    /// Its workloads' readiness; `None` when not deployed.
    pub health: Option<Health>,
    /// A stage Argo CD deploys: its Application, and Argo CD's verdict on it.
    pub application: Option<Application>,
}

/// The promotion a release runs: a revision deployed by `helm envs promote` (its description
/// says so), or on a stage Argo CD deploys, a promotion commit among those it runs.
pub struct Promotion {
    pub from: String,
    pub to: String,
    pub patch: String,
    /// helm's revision.
    pub revision: Option<u64>,
    /// The promotion's commit (a stage Argo CD deploys).
    pub commit: Option<String>,
    /// When it was deployed (helm), or committed (Argo CD).
    pub at: String,
}

/// The programs status reads a stage with.
pub struct Readers<'a> {
    pub helm: &'a Helm,
    pub kubectl: &'a Kubectl,
}

pub fn stage_rows(project: &Project, readers: &Readers, stage: &Stage, releases: &[&Release]) -> Result<Vec<Row>> {
    let Readers { helm, kubectl } = *readers;
    if stage.argocd.is_some() {
        return argo_rows(project, readers, stage, releases);
    }
    let targets: Vec<Target> = releases.iter().map(|release| project.target(stage, release)).collect();
    let states = against_installed(
        project,
        helm,
        &targets,
        &diff::Options::default(),
        Reading { history: true, trust_records: true },
    )?;
    states.iter().flat_map(|s| &s.notes).for_each(|note| crate::terminal::note(note));
    let installed: Vec<_> =
        targets.iter().zip(&states).map(|(target, state)| (target, state.installed.as_ref())).collect();
    let healths = health::of_installed_all(kubectl, &installed)?;
    Ok(targets
        .iter()
        .zip(states)
        .zip(healths)
        .map(|((target, state), health)| Row { health, ..row(target, &state) })
        .collect())
}

/// A stage Argo CD deploys has no Helm record: its Applications say what runs, and the
/// workloads its config renders say whether they are ready.
fn argo_rows(project: &Project, readers: &Readers, stage: &Stage, releases: &[&Release]) -> Result<Vec<Row>> {
    let Readers { helm, kubectl } = *readers;
    let targets: Vec<Target> = releases.iter().map(|release| project.target(stage, release)).collect();
    let (applications, rendered) = std::thread::scope(|scope| {
        let applications = scope.spawn(|| argocd::read(project, kubectl, stage, releases));
        (joined(applications), all_or_errors(render_all(helm, &targets)))
    });
    let applications = applications?;
    let git = Git::new(&project.dir);
    let mut rows = Vec::new();
    for ((target, application), text) in targets.iter().zip(applications).zip(rendered?) {
        let deployed = application.verdict.is_some();
        let health = match deployed {
            true => Some(health::of_rendered(kubectl, target, &parse_rendered(&text, target)?)?),
            false => None,
        };
        let running = application.verdict.as_ref().and_then(|v| v.revision.as_deref());
        rows.push(Row {
            release: target.release.name.clone(),
            namespace: target.namespace.clone(),
            latest: None,
            out_of_sync: Vec::new(),
            last_promotion: running.and_then(|commit| promotion_in_git(&git, commit, stage)),
            revisions: 0,
            health,
            application: Some(application),
        });
    }
    Ok(rows)
}

fn row(target: &Target, state: &LiveState) -> Row {
    let history = &state.history;
    // CONFIG says which of these differ.
    let items = drift::against_config(state, target.configured_chart(), false);
    let out_of_sync: Vec<&'static str> = [
        ("status", items.iter().any(|i| matches!(i, Item::Status { .. }))),
        ("chart", items.iter().any(|i| matches!(i, Item::Chart { .. }))),
        ("manifest", items.iter().any(|i| matches!(i, Item::Manifest { .. }))),
        ("values", items.iter().any(|i| matches!(i, Item::DeployedValue { .. }))),
    ]
    .into_iter()
    .filter_map(|(name, differs)| differs.then_some(name))
    .collect();
    let last_promotion = history.iter().rev().find_map(promotion);
    Row {
        release: target.release.name.clone(),
        namespace: target.namespace.clone(),
        revisions: history.len(),
        latest: state.installed.as_ref().and(history.last().cloned()),
        out_of_sync,
        last_promotion,
        health: None,
        application: None,
    }
}

/// `helm-envs: promoted dev -> staging (patch 0123456789ab)`, as `promote` writes it.
fn promotion(revision: &Revision) -> Option<Promotion> {
    let rest = revision.description.strip_prefix("helm-envs: promoted ")?;
    let (from, rest) = rest.split_once(" -> ")?;
    let (to, rest) = rest.split_once(" (patch ")?;
    let patch = rest.strip_suffix(')')?;
    Some(Promotion {
        from: from.to_string(),
        to: to.to_string(),
        patch: patch.to_string(),
        revision: Some(revision.revision),
        commit: None,
        at: short_time(&revision.updated),
    })
}

/// The newest promotion into `stage` among `commit` and the commits before it (the last 500),
/// from the line `promote --git-commit` writes in its message. `None` when there is none, or
/// the commit is not in this clone.
fn promotion_in_git(git: &Git, commit: &str, stage: &Stage) -> Option<Promotion> {
    git.log(commit, 500).ok()?.into_iter().find_map(|logged| {
        let (from, patch) = promotion_into(&logged.message, &stage.name)?;
        Some(Promotion {
            from: from.to_string(),
            to: stage.name.clone(),
            patch: patch.to_string(),
            revision: None,
            commit: Some(logged.id.clone()),
            at: short_time(&utc_rfc3339(logged.time)),
        })
    })
}

/// `2026-11-26T10:35:11.098851754Z` -> `2026-11-26 10:35:11 UTC`.
pub fn short_time(rfc3339: &str) -> String {
    if rfc3339.len() < 19 || !rfc3339.is_char_boundary(19) {
        return rfc3339.to_string();
    }
    let (date_time, rest) = rfc3339.split_at(19);
    let zone = rest.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let zone = if zone == "Z" { "UTC" } else { zone };
    format!("{} {zone}", date_time.replacen('T', " ", 1)).trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revision(description: &str) -> Revision {
        Revision {
            revision: 4,
            updated: "2026-11-26T10:35:11.098851754Z".into(),
            status: "deployed".into(),
            chart: "acme-web-1.4.2".into(),
            app_version: "2.7.0".into(),
            description: description.into(),
        }
    }

    #[test]
    fn the_promotion_is_read_from_the_description_promote_writes() {
        let found = promotion(&revision("helm-envs: promoted dev -> staging (patch 0123456789ab)")).expect("promotion");
        assert_eq!((found.from.as_str(), found.to.as_str(), found.patch.as_str()), ("dev", "staging", "0123456789ab"));
        assert_eq!((found.revision, found.at.as_str()), (Some(4), "2026-11-26 10:35:11 UTC"));
        assert!(promotion(&revision("helm-envs: apply (stage staging)")).is_none());
        assert!(promotion(&revision("Upgrade complete")).is_none());
    }

    #[test]
    fn times_are_shortened_to_seconds_with_their_zone() {
        assert_eq!(short_time("2026-11-26T10:35:11.098851754Z"), "2026-11-26 10:35:11 UTC");
        assert_eq!(short_time("2026-11-26T11:35:11.5+01:00"), "2026-11-26 11:35:11 +01:00");
        assert_eq!(short_time("soon"), "soon");
    }
}
