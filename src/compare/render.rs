//! Running independent helm calls (renders of several stages and releases, cluster reads) in
//! parallel, and gathering their failures.

use crate::compare::argocd::Application;
use crate::compare::diff::{self, Comparison};
use crate::compare::manifest::{self, Manifest, Side};
use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::config::fingerprint;
use crate::config::stages::{Project, Stage, Target};
use crate::config::values;
use crate::error::ManifestError;
use crate::error::{Error, Result};
use crate::system::helm::{Helm, Installed, Revision};
use crate::system::kube::{Capabilities, Kubectl};
use crate::system::parallel::{all_or_errors, in_parallel};
use crate::system::sops;
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

/// A release as installed next to its config rendered for the stage's cluster: what a deploy
/// would change.
#[derive(Debug)]
pub struct LiveState {
    /// `None`: not installed.
    pub installed: Option<Installed>,
    /// A stage Argo CD deploys (no Helm record): the release's Application, whose live objects
    /// `comparison` holds against the config.
    pub argocd: Option<Box<Application>>,
    /// The config as it renders for the cluster (`helm template` as an upgrade renders it); the
    /// deployed manifest itself when helm's record shows that it runs the config.
    pub rendered: String,
    pub comparison: Comparison,
    /// User-supplied values of the deployed revision that are not what the values files give
    /// (unredacted): a deploy records them, even when the manifest stays the same.
    pub values: Vec<values::Difference>,
    /// The release's revisions, oldest first, when asked for.
    pub history: Vec<Revision>,
    /// Resources that differ only by values the chart generates at each render; not in
    /// `comparison`.
    pub regenerated: Vec<diff::Regenerated>,
    /// The configured chart (`name-version`) when the deployed one is another: a deploy
    /// records the new version even when it renders the same.
    pub chart_change: Option<String>,
    /// What the user should know about how the release was read (rendered offline as a first
    /// install sees it); the caller shows them.
    pub notes: Vec<String>,
}

impl LiveState {
    /// A release compared without a Helm record (offline, or on a stage Argo CD deploys): the
    /// config as rendered and what it changes.
    pub fn without_record(rendered: String, comparison: Comparison) -> LiveState {
        LiveState {
            argocd: None,
            installed: None,
            rendered,
            comparison,
            values: Vec::new(),
            history: Vec::new(),
            regenerated: Vec::new(),
            chart_change: None,
            notes: Vec::new(),
        }
    }

    /// Whether a deploy has anything to do: a change of the manifest or of the values, or a
    /// release not (successfully) deployed.
    pub fn needs_deploy(&self) -> bool {
        !self.comparison.is_empty()
            || !self.values.is_empty()
            || self.chart_change.is_some()
            || self.installed.as_ref().is_none_or(|i| i.status != "deployed")
    }
}

/// How releases are read against their config.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reading {
    /// Each release's history too.
    pub history: bool,
    /// A release whose record says helm-envs deployed exactly its config as the latest revision
    /// is in sync without a render (`status`, the deploy decision, the source gate). `diff` and
    /// `drift` compare with a render whatever the record says.
    pub trust_records: bool,
}

/// Every target as installed (helm's records, see `Helm::current_all`) and, unless its record
/// shows it runs its config, as rendered against its cluster, compared. The renders run in
/// parallel.
pub fn against_installed(
    project: &Project,
    helm: &Helm,
    targets: &[Target],
    options: &diff::Options,
    reading: Reading,
) -> Result<Vec<LiveState>> {
    let current = all_or_errors(helm.current_all(targets, reading.history))?;
    for (target, current) in targets.iter().zip(&current) {
        if let Some(deployed) = &current.values {
            hide_deployed_secrets(project, target, deployed);
        }
    }
    let in_sync: Vec<bool> = targets
        .iter()
        .zip(&current)
        .map(|(target, current)| reading.trust_records && runs_config(target, current.installed.as_ref()))
        .collect();
    let capabilities = Discovery::new(targets);
    // Helm installs the CRDs of `crds/` on a first install only, and never upgrades them. A
    // release not installed yet: does its chart bring CRDs that an install creates first?
    let renders = targets
        .iter()
        .zip(&current)
        .zip(&in_sync)
        .map(|((target, current), in_sync)| {
            let (installed, capabilities) = (current.installed.is_some(), &capabilities);
            move || match (in_sync, installed) {
                (true, _) => Ok(None),
                (false, true) => rendered_as_upgrade(helm, target, capabilities, false).map(Some),
                (false, false) => rendered_for_first_install(helm, target).map(Some),
            }
        })
        .collect();
    let renders = all_or_errors(in_parallel(renders))?;
    let mut states = Vec::new();
    for ((target, current), rendered) in targets.iter().zip(current).zip(renders) {
        let live_text = current.installed.as_ref().map(Installed::rendered).unwrap_or_default();
        let Some((rendered, as_first_install)) = rendered else {
            let unchanged = manifest::parse(&live_text, &target.namespace)
                .map_err(|error| installed_manifest_error(target, error))?
                .len();
            states.push(LiveState {
                argocd: None,
                installed: current.installed,
                rendered: live_text,
                comparison: Comparison { changes: Vec::new(), unchanged },
                values: Vec::new(),
                history: current.history,
                regenerated: Vec::new(),
                chart_change: None,
                notes: Vec::new(),
            });
            continue;
        };
        let mut comparison = compared(&live_text, &rendered, target, options)?;
        let regenerated = match current.installed.is_some() && !comparison.is_empty() {
            true => {
                let (second, _) = rendered_as_upgrade(helm, target, &capabilities, true)?;
                regenerated_at_each_render(target, (&rendered, &second), &mut comparison, options)?
            }
            false => Vec::new(),
        };
        let values = match &current.values {
            Some(deployed) => values::differences(deployed, &configured_values(project, target)?),
            None => Vec::new(),
        };
        let chart_change = current.installed.as_ref().and_then(|installed| {
            target.configured_chart().map(|c| c.to_string()).filter(|configured| *configured != installed.chart)
        });
        states.push(LiveState {
            argocd: None,
            installed: current.installed,
            rendered,
            comparison,
            values,
            history: current.history,
            regenerated,
            chart_change,
            notes: as_first_install.then(|| first_install_note(target)).into_iter().collect(),
        });
    }
    Ok(states)
}

/// Whether the release's latest revision is, by its record, the target's config deployed by
/// helm-envs (see `config::fingerprint`).
fn runs_config(target: &Target, installed: Option<&Installed>) -> bool {
    let Some(installed) = installed else { return false };
    installed.config_label.is_some()
        && fingerprint::of(target).is_some_and(|f| {
            fingerprint::runs_config(installed.revision, &installed.status, installed.config_label.as_deref(), &f)
        })
}

/// The deployed text against a render of the target, resource by resource.
fn compared(live: &str, rendered: &str, target: &Target, options: &diff::Options) -> Result<Comparison> {
    let pair = manifest::parse_pair(live, rendered, &target.namespace).map_err(|(side, error)| match side {
        Side::Old => installed_manifest_error(target, error),
        Side::New => rendered_manifest_error(target, error),
    })?;
    let mut comparison = diff::compare(pair.old, pair.new, options);
    comparison.unchanged += pair.identical;
    Ok(comparison)
}

/// A second render of the same config, when the first differs from what is deployed: what
/// differs between the two renders is generated anew at each render and is not a change of
/// config. Taken out of `comparison` and returned, so people can be told why the chart changes
/// at every deploy.
fn regenerated_at_each_render(
    target: &Target,
    (first, second): (&str, &str),
    comparison: &mut Comparison,
    options: &diff::Options,
) -> Result<Vec<diff::Regenerated>> {
    let again = compared(first, second, target, options)?;
    if again.is_empty() {
        return Ok(Vec::new());
    }
    Ok(diff::take_regenerated(comparison, &again))
}

/// An installed release's config rendered as its upgrade will render it (without the CRDs of
/// `crds/`, which an upgrade leaves alone). A chart that renders alike everywhere is rendered
/// plainly (the same render `drift` makes between stages, made once); one that cannot call
/// `lookup` renders offline with its cluster's capabilities, read once per cluster (the same
/// text, without a cluster discovery in every helm process); any other against the cluster, so
/// `lookup` is answered. `again`: a second render, never an earlier one's output.
/// Returns the text, and whether it is the first-install rendering.
fn rendered_as_upgrade(helm: &Helm, target: &Target, discovery: &Discovery, again: bool) -> Result<(String, bool)> {
    if fingerprint::renders_alike_everywhere(target) {
        let text = if again { helm.template_anew(target)? } else { helm.template(target)? };
        return Ok((manifest::without_crds_dir(&text), false));
    }
    let (rendered, as_first_install) = match fingerprint::may_call_lookup(target) {
        false if let Some(capabilities) = discovery.of(target.stage) => {
            (helm.template_offline(target, capabilities)?, false)
        }
        _ => rendered_for_cluster(helm, target, true)?,
    };
    Ok((manifest::without_crds_dir(&rendered), as_first_install))
}

/// Each stage's cluster capabilities, read when a render first needs them, once per stage.
/// `None` when they cannot be read: the render then goes to the cluster, whose error says why.
/// (Keyed by stage and cluster: each cluster of a stage on several is read.)
struct Discovery {
    kubectl: Option<Kubectl>,
    stages: BTreeMap<String, OnceLock<Option<Capabilities>>>,
}

impl Discovery {
    fn new(targets: &[Target]) -> Self {
        let stages = targets.iter().map(|t| (t.stage.label(), OnceLock::new())).collect();
        Discovery { kubectl: Kubectl::locate().ok(), stages }
    }

    fn of(&self, stage: &Stage) -> Option<&Capabilities> {
        let (kubectl, cell) = (self.kubectl.as_ref()?, self.stages.get(&stage.label())?);
        cell.get_or_init(|| match kubectl.capabilities(stage) {
            Ok(capabilities) => Some(capabilities),
            Err(err) => {
                terminal::debug(&format!("{err:#}; rendering against the cluster instead"));
                None
            }
        })
        .as_ref()
    }
}

/// A release not installed yet, rendered as its install will render it: against the cluster,
/// or offline with the API versions its `crds/` bring when the chart has any (see
/// [`rendered_as_first_install`]).
fn rendered_for_first_install(helm: &Helm, target: &Target) -> Result<(String, bool)> {
    let (rendered, first_install) = rendered_for_cluster(helm, target, false)?;
    if first_install {
        return Ok((rendered, true));
    }
    let offline = helm.template_offline_with_crds(target, &[])?;
    match manifest::crds_dir_api_versions(&offline).is_empty() {
        true => Ok((rendered, false)),
        false => Ok((rendered_as_first_install(helm, target, Some(offline))?, true)),
    }
}

/// The config rendered against the target's cluster, as an upgrade (`upgrade`) or an install
/// would render it. A chart with custom resources of kinds the cluster does not serve cannot be
/// validated against it: it is rendered as a first install sees it instead (see
/// [`rendered_as_first_install`]). Returns the text, and whether it is the first-install
/// rendering.
fn rendered_for_cluster(helm: &Helm, target: &Target, upgrade: bool) -> Result<(String, bool)> {
    match helm.template_for_cluster(target, upgrade) {
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
    if versions.is_empty() { Ok(offline) } else { helm.template_offline_with_crds(target, &versions) }
}

fn first_install_note(target: &Target) -> String {
    format!(
        "{}/{}: the release brings kinds the cluster does not serve yet (an install creates their CRDs \
         first); compared as rendered offline with those kinds, without the server's validation",
        target.stage.name, target.release.name
    )
}

/// The values a release was deployed with at the paths any stage keeps in an encrypted file:
/// secrets too (an earlier credential, shown as changed in a diff), though no file holds them
/// now.
fn hide_deployed_secrets(project: &Project, target: &Target, deployed: &serde_json::Map<String, serde_json::Value>) {
    for stage in &project.stages {
        for path in project.secret_paths(&project.target(stage, target.release)) {
            if let Some(value) = path.get(deployed) {
                crate::redaction::secret_value(value);
            }
        }
    }
}

/// The values helm is given for a target: its values files merged in order, then its
/// encrypted files decrypted (already, by the render that came first).
fn configured_values(project: &Project, target: &Target) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut merged = project.merged_values(target);
    for file in &target.secret_files {
        values::merge(&mut merged, sops::decrypt(file)?.values.clone());
    }
    Ok(merged)
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
