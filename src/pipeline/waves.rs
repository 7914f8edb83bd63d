//! Deploying a stage on several clusters: wave by wave, the clusters of a wave side by side
//! (each as a stage of its own: its releases, readiness waits, verify commands and failure
//! rule). The first wave that fails stops the rollout; the error says which clusters run the
//! new config and which the old.

use crate::error::{Detail, Error};
use crate::system::interrupt;

use super::by_cluster;
use super::deploy::{Outcome, StageDeploy, Status};
use super::record::Record;
use super::run::{Pipeline, StageRun};

/// Where one cluster stands after the rollout.
enum Reached {
    /// Its deploy ended well: it runs the config.
    Config,
    /// Its deploy failed and everything was taken back (or nothing had changed).
    Before,
    /// Its deploy failed with some of it left changed.
    Partly,
    /// Its wave never started.
    NotStarted,
}

impl Pipeline<'_> {
    /// Deploy `run` (the targets of a stage on several clusters, cluster by cluster) wave by
    /// wave; `needs[i]`: whether target `i` has anything to deploy.
    pub(super) fn deploy_waves(&self, run: &StageRun, needs: &[bool], record: &Record) -> StageDeploy {
        let clusters = by_cluster(run.targets);
        let mut outcomes: Vec<Outcome> = run.targets.iter().map(|t| Outcome::new(t, Status::NotAttempted)).collect();
        let mut reached: Vec<Reached> = clusters.iter().map(|_| Reached::NotStarted).collect();
        let mut failure: Option<Error> = None;
        let mut cluster_unchanged = true;
        for wave in run.stage.waves().iter().map(|w| w[0].cluster.as_ref().map_or(0, |c| c.wave)) {
            if failure.is_none() {
                failure = interrupt::check(Vec::new).err();
            }
            if failure.is_some() {
                break;
            }
            let in_wave: Vec<usize> = (0..clusters.len()).filter(|&c| wave_of(clusters[c].0) == wave).collect();
            let deploys: Vec<StageDeploy> = std::thread::scope(|scope| {
                let handles: Vec<_> = in_wave
                    .iter()
                    .map(|&c| {
                        let (on, range) = (clusters[c].0, clusters[c].1.clone());
                        let one = StageRun { stage: on, targets: &run.targets[range.clone()], ..run.clone() };
                        scope.spawn(move || self.deploy_releases(&one, &needs[range], record))
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().expect("a cluster's deploy panicked")).collect()
            });
            for (&c, deploy) in in_wave.iter().zip(deploys) {
                let range = clusters[c].1.clone();
                for (slot, outcome) in outcomes[range].iter_mut().zip(deploy.outcomes) {
                    *slot = outcome;
                }
                cluster_unchanged &= deploy.cluster_unchanged;
                reached[c] = match (&deploy.error, deploy.cluster_unchanged) {
                    (None, _) => Reached::Config,
                    (Some(_), true) => Reached::Before,
                    (Some(_), false) => Reached::Partly,
                };
                if let Some(err) = deploy.error {
                    failure = Some(match failure.take() {
                        None => err,
                        Some(first) => first.with_details([Detail::Nested(err.to_string(), err.details())]),
                    });
                }
            }
        }
        let error = failure.map(|err| {
            let names = |want: fn(&Reached) -> bool| -> Vec<String> {
                clusters.iter().zip(&reached).filter(|(_, r)| want(r)).map(|((on, _), _)| on.label()).collect()
            };
            let rollout = Rollout {
                interrupted: matches!(err, Error::Interrupted { .. }),
                config: names(|r| matches!(r, Reached::Config)),
                before: names(|r| matches!(r, Reached::Before | Reached::NotStarted)),
                partly: names(|r| matches!(r, Reached::Partly)),
            };
            err.with_details(rollout.notes())
        });
        StageDeploy { outcomes, error, cluster_unchanged }
    }
}

fn wave_of(on: &crate::config::stages::Stage) -> usize {
    on.cluster.as_ref().map_or(0, |c| c.wave)
}

/// Which clusters run what, after a rollout that stopped.
struct Rollout {
    /// Stopped by a signal, not by a failed wave.
    interrupted: bool,
    config: Vec<String>,
    before: Vec<String>,
    partly: Vec<String>,
}

impl Rollout {
    fn notes(&self) -> Vec<Detail> {
        let stopped = match self.interrupted {
            true => "the rollout stopped at the signal; later waves were not started",
            false => "the rollout stopped at the first wave that failed; later waves were not started",
        };
        let mut notes = vec![Detail::Note(stopped.into())];
        let lists = [
            ("run the new config", &self.config),
            ("run the config they ran before", &self.before),
            ("partly changed", &self.partly),
        ];
        for (what, clusters) in lists.into_iter().filter(|(_, c)| !c.is_empty()) {
            notes.push(Detail::Note(format!("{what}: {}", clusters.join(", "))));
        }
        if !self.config.is_empty() {
            notes.push(Detail::Help(
                "the files keep the new config, which some clusters run: `helm envs drift` lists the clusters behind; \
                 fix the cause and run the deploy again to finish the rollout"
                    .into(),
            ));
        }
        notes
    }
}
