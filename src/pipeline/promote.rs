//! The checks of a promotion A -> B before its gate: B's cluster as for any deploy (with the
//! promoted config), A's releases deployed as configured (the source gate), the stage order;
//! and, for `--no-deploy` without a reachable cluster, B's config compared offline.

use crate::compare::diff;
use crate::compare::health::{self, Health};
use crate::compare::manifest;
use crate::compare::render::{self, LiveState, against_installed, render_all};
use crate::config::stages::{Release, Stage, Target};
use crate::error::{Error, Result};
use crate::system::parallel::{all_or_errors, joined};

use super::gates::{self, Gate};
use super::run::{Checked, Pipeline};

/// What a promotion asks of the clusters.
pub struct PromotionCheck<'a> {
    pub from: &'a Stage,
    pub to: &'a Stage,
    pub releases: &'a [&'a Release],
    /// B's targets with the promoted config (edited copies, promoted chart version).
    pub promoted: &'a [Target<'a>],
    /// `--skip-source-check` not given.
    pub check_source: bool,
    /// `--allow-skip`: promote past the next stage.
    pub allow_skip: bool,
    /// `--allow-unhealthy-source`: the source's workloads need not be ready.
    pub allow_unhealthy_source: bool,
    /// `--no-deploy`: an unreachable cluster is not an error; its checks are skipped.
    pub offline_allowed: bool,
    pub show_secrets: bool,
}

/// The checked promotion: B's diff and every automatic gate (order, source, cluster, Secrets).
pub struct PromotionChecked {
    pub checked: Checked,
    /// B's cluster could not be reached: the diff is between B's config and the promoted one.
    pub offline: bool,
}

impl Pipeline<'_> {
    /// Check B (with the promoted config) and A (deployed as configured) in parallel.
    pub fn check_promotion(&self, check: &PromotionCheck) -> Result<PromotionChecked> {
        let PromotionCheck { from, to, releases, promoted, .. } = *check;
        let sources: Vec<Target> = releases.iter().map(|r| self.project.target(from, r)).collect();
        let (checked, source_states) = std::thread::scope(|scope| {
            let source = check.check_source.then(|| {
                scope.spawn(|| {
                    let options = diff::Options { ignore: Vec::new(), show_secrets: false };
                    let states = against_installed(
                        self.project,
                        &self.helm,
                        &sources,
                        &options,
                        render::Reading { history: false, trust_records: true },
                    )?;
                    states.iter().flat_map(|s| &s.notes).for_each(|note| self.reporter.note(note));
                    let healths = sources
                        .iter()
                        .zip(&states)
                        .map(|(target, state)| match &state.installed {
                            Some(installed) => health::of_installed(&self.kubectl, target, installed),
                            None => Ok(Health::default()),
                        })
                        .collect::<Result<Vec<_>>>()?;
                    Ok((states, healths))
                })
            });
            let checked = self.check(to, promoted, check.show_secrets);
            (checked, source.map(joined))
        });
        // GitOps: a CI job writing the pull request often has no cluster credentials. Without a
        // reachable cluster, --no-deploy goes on offline and says which checks it could not run.
        let offline = |err: &Error| check.offline_allowed && err.is_unreachable();
        let (Checked { states, gates: target_gates }, offline_target) = match checked {
            Err(err) if offline(&err) => {
                self.reporter.note(&format!(
                    "{}'s cluster cannot be reached ({}); --no-deploy goes on without it",
                    to.name,
                    err.one_line()
                ));
                (self.offline_check(to, releases, promoted)?, true)
            }
            other => (other?, false),
        };
        let mut all_gates = vec![gates::order(self.project, from, to, check.allow_skip)];
        match source_states.transpose() {
            Ok(Some((source_states, healths))) => {
                let releases: Vec<(&Target, &LiveState)> = sources.iter().zip(source_states.iter()).collect();
                all_gates.push(gates::source_in_sync(from, &releases));
                let healths: Vec<(&Target, &Health)> = sources.iter().zip(healths.iter()).collect();
                all_gates.push(gates::source_health(from, &healths, check.allow_unhealthy_source));
            }
            Ok(None) => self.reporter.note(&format!(
                "--skip-source-check: not checking that {} is deployed and in sync with its config; the promoted \
                 values may never have run there",
                from.name
            )),
            Err(err) if offline(&err) => all_gates.push(Gate::skipped(
                "source",
                format!("{}'s cluster cannot be reached ({})", from.name, err.one_line()),
            )),
            Err(err) => return Err(err),
        }
        all_gates.extend(target_gates);
        Ok(PromotionChecked { checked: Checked { states, gates: all_gates }, offline: offline_target })
    }

    /// Without B's cluster: B's config as its files are now against the promoted config, both
    /// rendered offline, and the gates that need the cluster marked as not run.
    fn offline_check(&self, to: &Stage, releases: &[&Release], promoted: &[Target]) -> Result<Checked> {
        let current: Vec<Target> = releases.iter().map(|r| self.project.target(to, r)).collect();
        let rendered = all_or_errors(render_all(&self.helm, &[current.as_slice(), promoted].concat()))?;
        let (now, after) = rendered.split_at(current.len());
        let mut states = Vec::new();
        for ((target, now), after) in promoted.iter().zip(now).zip(after) {
            let pair = manifest::parse_pair(now, after, &target.namespace)
                .map_err(|(_, error)| render::rendered_manifest_error(target, error))?;
            let mut comparison = diff::compare(pair.old, pair.new, &diff::Options::default());
            comparison.unchanged += pair.identical;
            states.push(LiveState {
                installed: None,
                rendered: after.clone(),
                comparison,
                values: Vec::new(),
                history: Vec::new(),
                regenerated: Vec::new(),
                chart_change: None,
                notes: Vec::new(),
            });
        }
        let unreachable = format!("{}'s cluster cannot be reached", to.name);
        let mut gates = vec![Gate::skipped("secrets", unreachable.clone())];
        if to.cluster_id.is_some() {
            gates.insert(0, Gate::skipped("cluster", unreachable));
        }
        Ok(Checked { states, gates })
    }
}
