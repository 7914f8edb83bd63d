//! Running independent helm calls (renders of several stages and releases, cluster reads) in
//! parallel, and gathering their failures.

use std::io::Write as _;

use crate::compare::diff::{self, Comparison};
use crate::compare::manifest::{self, Manifest, Side};
use crate::config::stages::{Project, Target, ValuesFile};
use crate::config::values;
use crate::error::ManifestError;
use crate::error::{Error, Result};
use crate::system::helm::{Helm, Installed, Revision};
use crate::terminal;

/// Render every target, concurrently; results come back in the order of `targets`.
pub fn render_all(helm: &Helm, targets: &[Target]) -> Vec<Result<String>> {
    in_parallel(targets.iter().map(|target| move || helm.template(target)).collect())
}

/// A target's rendered output as resources; an error names the stage, release and template.
pub fn parse_rendered(text: &str, target: &Target) -> Result<Manifest> {
    manifest::parse(text, &target.namespace).map_err(|error| rendered_manifest_error(target, error))
}

pub fn rendered_manifest_error(target: &Target, error: ManifestError) -> Error {
    Error::Manifest {
        origin: format!("helm template output for stage `{}`, release `{}`", target.stage.name, target.release.name),
        error,
        help: format!(
            "fix the template named above; `helm envs render {} --release {}` shows the rendered output",
            target.stage.name, target.release.name
        ),
    }
}

/// `to` with `from`'s own values promoted into it (outside envSpecific) and `from`'s chart
/// version: what promoting `from` into `to` would deploy, exactly as `promote` computes it. The
/// promoted values live in a private temporary file, removed when it is dropped. `None` when
/// the promotion changes nothing (`to` stands for itself).
pub fn promoted_target<'p>(
    project: &Project,
    from: &Target<'p>,
    to: &Target<'p>,
) -> Result<Option<(Target<'p>, tempfile::NamedTempFile)>> {
    // The promotion works on the stages' own files (the shared ones are the same for both).
    let target_values = project.own_values(to);
    let promoted = values::promote(&project.own_values(from), &target_values, &project.env_specific_for(to.release));
    if promoted == target_values && from.version == to.version {
        return Ok(None);
    }
    let file = write_promoted_values(&promoted, from, to)?;
    let values_file = ValuesFile {
        path: file.path().to_path_buf(),
        display: format!("({}'s values promoted into {})", from.stage.name, to.stage.name),
        shared: false,
    };
    let target = Target {
        values_files: promoted_files_in_order(&to.values_files, values_file),
        version: from.version.clone(),
        ..to.clone()
    };
    Ok(Some((target, file)))
}

/// The target's values files with its own files replaced by one file of promoted own values,
/// at the place of the first own file, so the shared files keep their precedence.
fn promoted_files_in_order(files: &[ValuesFile], promoted: ValuesFile) -> Vec<ValuesFile> {
    let mut out = Vec::new();
    let mut promoted = Some(promoted);
    for file in files {
        if file.shared {
            out.push(file.clone());
        } else if let Some(p) = promoted.take() {
            out.push(p);
        }
    }
    out.extend(promoted);
    out
}

/// The promoted values as one values file (JSON is YAML), private to this user.
fn write_promoted_values(
    values: &serde_json::Map<String, serde_json::Value>,
    from: &Target,
    to: &Target,
) -> Result<tempfile::NamedTempFile> {
    let context = || {
        format!(
            "could not write {}'s values promoted into {} for release `{}`",
            from.stage.name, to.stage.name, to.release.name
        )
    };
    let mut file = tempfile::Builder::new()
        .prefix("helm-envs-promoted-")
        .suffix(".json")
        .tempfile()
        .map_err(|e| Error::Other(anyhow::Error::new(e).context(context())))?;
    serde_json::to_writer(&mut file, values)
        .map_err(anyhow::Error::new)
        .and_then(|()| file.flush().map_err(anyhow::Error::new))
        .map_err(|e| Error::Other(e.context(context())))?;
    Ok(file)
}

/// A release as installed next to its config rendered for the stage's cluster: what a deploy
/// would change.
#[derive(Debug)]
pub struct LiveState {
    /// `None`: not installed.
    pub installed: Option<Installed>,
    /// The config rendered against the cluster (`helm template --validate` or `--dry-run=server`).
    pub rendered: String,
    pub comparison: Comparison,
    /// User-supplied values of the deployed revision that are not what the values files give
    /// (unredacted): a deploy records them, even when the manifest stays the same.
    pub values: Vec<values::Difference>,
    /// The release's revisions, oldest first, when asked for.
    pub history: Vec<Revision>,
}

impl LiveState {
    /// Whether a deploy has anything to do: a change of the manifest or of the values, or a
    /// release not (successfully) deployed.
    pub fn needs_deploy(&self) -> bool {
        !self.comparison.is_empty()
            || !self.values.is_empty()
            || self.installed.as_ref().is_none_or(|i| i.status != "deployed")
    }
}

/// Every target as installed (helm's records, see `Helm::current_all`, with each release's
/// history when asked) and as rendered against its cluster, compared; the reads and the
/// renders run in parallel.
pub fn against_installed(
    project: &Project,
    helm: &Helm,
    targets: &[Target],
    options: &diff::Options,
    with_history: bool,
) -> Result<Vec<LiveState>> {
    let (current, rendered) = std::thread::scope(|scope| {
        let current = scope.spawn(|| all_or_errors(helm.current_all(targets, with_history)));
        let rendered = all_or_errors(in_parallel(
            targets.iter().map(|target| move || rendered_for_cluster(helm, target)).collect(),
        ));
        (joined(current), rendered)
    });
    let (current, rendered) = (current?, rendered?);
    let releases: Vec<_> = current
        .into_iter()
        .zip(rendered)
        .map(|(current, (rendered, first_install))| {
            (current.installed, rendered, first_install, current.values, current.history)
        })
        .collect();
    // Helm installs the CRDs of `crds/` on a first install only, and never upgrades them. A
    // release not installed yet: does its chart bring CRDs that an install creates first? (In
    // parallel: a new stage asks it of every release.)
    let renders = releases
        .iter()
        .zip(targets)
        .map(|((installed, rendered, first_install, _, _), target)| {
            move || match installed {
                Some(_) => Ok(manifest::without_crds_dir(rendered)),
                None if *first_install => Ok(rendered.clone()),
                None => {
                    let offline = helm.template_offline_with_crds(target, &[])?;
                    match manifest::crds_dir_api_versions(&offline).is_empty() {
                        true => Ok(rendered.clone()),
                        false => rendered_as_first_install(helm, target, Some(offline)),
                    }
                }
            }
        })
        .collect();
    let renders = all_or_errors(in_parallel(renders))?;
    let mut states = Vec::new();
    for ((target, (installed, _, _, deployed_values, history)), rendered) in targets.iter().zip(releases).zip(renders) {
        let live_text = installed.as_ref().map(Installed::rendered).unwrap_or_default();
        let pair =
            manifest::parse_pair(&live_text, &rendered, &target.namespace).map_err(|(side, error)| match side {
                Side::Old => installed_manifest_error(target, error),
                Side::New => rendered_manifest_error(target, error),
            })?;
        let mut comparison = diff::compare(pair.old, pair.new, options);
        comparison.unchanged += pair.identical;
        let values = match deployed_values {
            Some(deployed) => values::differences(&deployed, &project.merged_values(target)),
            None => Vec::new(),
        };
        states.push(LiveState { installed, rendered, comparison, values, history });
    }
    Ok(states)
}

/// The config rendered against the target's cluster, as an upgrade would render it. A chart
/// with custom resources of kinds the cluster does not serve cannot be validated against it:
/// it is rendered as a first install sees it instead (see [`rendered_as_first_install`]).
/// Returns the text, and whether it is the first-install rendering.
fn rendered_for_cluster(helm: &Helm, target: &Target) -> Result<(String, bool)> {
    match helm.template_for_cluster(target) {
        Err(Error::Helm(failure)) if failure.stderr.contains("ensure CRDs are installed first") => {
            Ok((rendered_as_first_install(helm, target, None)?, true))
        }
        other => Ok((other?, false)),
    }
}

/// The first install of a chart with CRDs in `crds/`: helm creates those CRDs, then renders
/// the rest seeing their API versions (charts guard their custom resources with
/// `.Capabilities.APIVersions.Has`). The cluster cannot validate resources of kinds it does not
/// serve yet, so this renders offline, with those API versions, and a note says so.
fn rendered_as_first_install(helm: &Helm, target: &Target, offline: Option<String>) -> Result<String> {
    let offline = match offline {
        Some(text) => text,
        None => helm.template_offline_with_crds(target, &[])?,
    };
    let versions = manifest::crds_dir_api_versions(&offline);
    let text = if versions.is_empty() { offline } else { helm.template_offline_with_crds(target, &versions)? };
    terminal::note(&format!(
        "{}/{}: the release brings kinds the cluster does not serve yet (an install creates their CRDs \
         first); compared as rendered offline with those kinds, without the server's validation",
        target.stage.name, target.release.name
    ));
    Ok(text)
}

pub fn installed_manifest_error(target: &Target, error: ManifestError) -> Error {
    Error::Manifest {
        origin: format!("the installed manifest of release `{}` in stage `{}`", target.release.name, target.stage.name),
        error,
        help: format!(
            "helm stored a manifest that is not valid YAML; see it with `helm get manifest {} --namespace {}`",
            target.release.name, target.namespace
        ),
    }
}

/// The result of a scoped thread; a panic becomes an error instead of taking the process down.
pub fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    handle.join().unwrap_or_else(|_| Err(Error::Other(anyhow::anyhow!("a helm-envs thread panicked"))))
}

/// Run jobs on their own threads; results come back in the order of `jobs`.
pub fn in_parallel<T: Send, F: FnOnce() -> Result<T> + Send>(jobs: Vec<F>) -> Vec<Result<T>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs.into_iter().map(|job| scope.spawn(job)).collect();
        handles.into_iter().map(joined).collect()
    })
}

/// All outputs, or the failures (all of them, not just the first). When several calls to one
/// stage fail with the same message (an unreachable cluster), it is reported once.
pub fn all_or_errors<T>(results: Vec<Result<T>>) -> Result<Vec<T>> {
    let total = results.len();
    let mut outputs = Vec::with_capacity(total);
    let mut failures: Vec<Error> = Vec::new();
    for result in results {
        match result {
            Ok(output) => outputs.push(output),
            Err(err) if failures.iter().any(|seen| same_failure(seen, &err)) => {}
            Err(err) => failures.push(err),
        }
    }
    match failures.len() {
        0 => Ok(outputs),
        1 => Err(failures.remove(0)),
        _ => Err(Error::Several { failures, total }),
    }
}

/// Why helm could not reach a cluster, alike for every command: Helm 3 says `Kubernetes cluster
/// unreachable: ...`; Helm 4 says `kubernetes cluster unreachable: ...`, after `cluster
/// reachability check failed: ` and a log line for some commands.
fn unreachable_cause(stderr: &str) -> Option<String> {
    const CAUSE: &str = "kubernetes cluster unreachable";
    stderr.lines().rev().find_map(|line| {
        let start = line.to_ascii_lowercase().find(CAUSE)?;
        Some(line[start..].to_ascii_lowercase())
    })
}

fn same_failure(a: &Error, b: &Error) -> bool {
    match (a, b) {
        (Error::Helm(a), Error::Helm(b)) => {
            a.stage == b.stage && unreachable_cause(&a.stderr).is_some_and(|c| Some(c) == unreachable_cause(&b.stderr))
        }
        _ => false,
    }
}
