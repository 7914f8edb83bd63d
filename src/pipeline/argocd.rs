//! A deploy into a stage Argo CD deploys: the promotion's commit pushed to the branch its
//! Applications follow, Argo CD asked to take it (a refresh; a sync where it does not sync by
//! itself), then the wait until every Application is Synced at that commit and the workloads
//! its config renders are ready, within the stage's `health.timeout`.

use std::time::{Duration, Instant};

use crate::compare::argocd::{self, Application};
use crate::compare::health::{self, Health};
use crate::compare::manifest::Manifest;
use crate::compare::render::{parse_rendered, render_all};
use crate::config::argocd as config;
use crate::config::stages::{ArgoSync, DEFAULT_HEALTH_TIMEOUT, Stage, Target};
use crate::error::{Detail, Error, Result};
use crate::system::git::Git;
use crate::system::interrupt;
use crate::system::kube::Stdin;
use crate::system::parallel::all_or_errors;

use super::deploy::{self, Outcome, StageDeploy, Status};
use super::events;
use super::record::Record;
use super::run::Pipeline;
use super::schedule::Schedule;

/// How often Argo CD's verdict and the workloads are read while waiting.
const POLL: Duration = Duration::from_secs(2);

impl Pipeline<'_> {
    /// Push HEAD (a promotion's commit, or the stage's files as committed) to the branch
    /// `stage`'s Applications follow, ask Argo CD to take it, and wait until it runs. Nothing
    /// of the cluster changes before the push; once pushed, Argo CD deploys it whatever this
    /// run does next. Then the stage's verify commands run, as after a helm deploy. Each
    /// release's Event records the deploy in the stage's namespace, as a helm deploy's does.
    pub fn deploy_by_argocd(&self, stage: &Stage, targets: &[Target], git: &Git, record: &Record) -> StageDeploy {
        let not_attempted = || targets.iter().map(|t| Outcome::new(t, Status::NotAttempted)).collect();
        let Some(settings) = &stage.argocd else {
            return StageDeploy { outcomes: not_attempted(), error: None, cluster_unchanged: true };
        };
        let pushed = (|| {
            let manifests = self.rendered(targets)?;
            let commit = git.head()?;
            let _step = self.reporter.step(format!(
                "pushing {} to {} (branch {})",
                &commit[..commit.len().min(12)],
                settings.repo_url,
                settings.revision
            ));
            git.push(&settings.repo_url, &settings.revision).map_err(|err| {
                err.with_details([Detail::Help(format!(
                    "nothing was deployed; the commit stays where it is: bring in {} from the remote and run \
                     again, or open a pull request with it",
                    settings.revision
                ))])
            })?;
            Ok::<_, Error>((manifests, commit))
        })();
        let (manifests, commit) = match pushed {
            Ok(pushed) => pushed,
            Err(error) => {
                return StageDeploy { outcomes: not_attempted(), error: Some(error), cluster_unchanged: true };
            }
        };
        let mut done = vec![false; targets.len()];
        let mut error = self.until_argocd_runs(stage, targets, (&manifests, &commit), &mut done).err();
        if error.is_none()
            && let Err(failed) = deploy::verify(self.project, stage, self.reporter)
        {
            // The stage runs the commit, and its own checks say it does not work.
            done.iter_mut().for_each(|done| *done = false);
            error = Some(failed.with_details([Detail::Help(format!(
                "Argo CD runs commit {}, which stays pushed to {} (the files stay with it): push a commit that \
                 reverts it (`git revert`) or one that fixes it",
                &commit[..commit.len().min(12)],
                settings.revision
            ))]));
        }
        let record = Record { description: format!("{} at commit {commit}", record.description), ..record.clone() };
        for (target, done) in targets.iter().zip(&done) {
            let failure = error.as_ref().filter(|_| !done);
            events::record(&self.kubectl, self.reporter, target, &record, None, failure);
        }
        StageDeploy {
            outcomes: targets
                .iter()
                .zip(done)
                .map(|(t, done)| match done {
                    true => Outcome { commit: Some(commit.clone()), ..Outcome::new(t, Status::Deployed(None)) },
                    false => Outcome::new(t, Status::Failed),
                })
                .collect(),
            error,
            cluster_unchanged: false,
        }
    }

    fn rendered(&self, targets: &[Target]) -> Result<Vec<Manifest>> {
        let texts = all_or_errors(render_all(&self.helm, targets))?;
        targets.iter().zip(&texts).map(|(target, text)| parse_rendered(text, target)).collect()
    }

    /// Until every release's Application is Synced at the commit and its workloads (of the
    /// rendered manifests) are ready; `done` says which releases got there.
    fn until_argocd_runs(
        &self,
        stage: &Stage,
        targets: &[Target],
        (manifests, commit): (&[Manifest], &str),
        done: &mut [bool],
    ) -> Result<()> {
        let Some(settings) = &stage.argocd else { return Ok(()) };
        let argo = (&settings.context, settings.namespace.as_str());
        let applications = argocd::read_targets(self.project, &self.kubectl, stage, targets)?;
        self.update_applications(stage, &applications)?;
        // `needs`: helm-envs starts the syncs it asks for in order, each once what it needs runs;
        // Applications Argo CD syncs by itself take the commit side by side.
        let graph = self.project.deploy_graph(targets);
        let manual = settings.sync == ArgoSync::Manual;
        let ordered = manual && graph.declared;
        if graph.declared && !manual && targets.len() > 1 {
            self.reporter.note(&format!(
                "Argo CD syncs stage {}'s Applications by itself, side by side: `needs` orders the syncs only \
                 with `sync: manual`",
                stage.name
            ));
        }
        let mut schedule = Schedule::new(&graph);
        let mut started = vec![false; targets.len()];
        let start = |i: usize, started: &mut [bool]| -> Result<()> {
            started[i] = true;
            let application = &applications[i];
            // One Argo CD does not hold: the wait below says how to create it.
            if application.verdict.is_some() {
                let sync = manual.then(|| config::sync_at(&application.generated, commit));
                self.kubectl.refresh_application(stage, argo, &application.name, sync)?;
            }
            Ok(())
        };
        if !ordered {
            (0..targets.len()).try_for_each(|i| start(i, &mut started))?;
        }
        let timeout = match stage.health.timeout {
            Duration::ZERO => DEFAULT_HEALTH_TIMEOUT,
            timeout => timeout,
        };
        let waits: Vec<_> = targets.iter().map(|t| self.reporter.wait(t.label())).collect();
        let (start_time, deadline) = (Instant::now(), Instant::now() + timeout);
        loop {
            interrupt::check(|| {
                vec![Detail::Note(format!(
                    "the commit {commit} is pushed: Argo CD deploys it whether or not this run waits; \
                     `helm envs status --stage {}` shows when it has",
                    stage.name
                ))]
            })?;
            if ordered {
                while let Some(next) = schedule.start_next() {
                    start(next, &mut started)?;
                }
            }
            let applications = argocd::read_targets(self.project, &self.kubectl, stage, targets)?;
            let mut states = Vec::new();
            for (i, (application, manifest)) in applications.iter().zip(manifests).enumerate() {
                if done[i] {
                    continue;
                }
                if !started[i] {
                    let needed = graph.needs[i].iter().filter(|&&n| !done[n]).map(|&n| targets[n].label());
                    let state = format!("waits for {}", needed.collect::<Vec<_>>().join(", "));
                    waits[i].show(&state, start_time.elapsed());
                    states.push(format!("{}: {state}", targets[i].label()));
                    continue;
                }
                let health = match at_commit(application, commit) {
                    true => Some(health::of_rendered(&self.kubectl, &targets[i], manifest)?),
                    false => None,
                };
                match judge(application, commit, health.as_ref()) {
                    Progress::Done => {
                        done[i] = true;
                        schedule.finish(i, true);
                        let (ready, desired) = health.map_or((0, 0), |h| h.counts());
                        waits[i].ready(ready, desired, start_time.elapsed());
                    }
                    Progress::Waiting(state) => {
                        waits[i].show(&state, start_time.elapsed());
                        states.push(format!("{}: {state}", targets[i].label()));
                    }
                    Progress::Failed(why) => {
                        return Err(Error::Failed {
                            headline: format!("Argo CD could not deploy {} at {commit}", targets[i].label()),
                            details: why.into_iter().map(Detail::Note).collect(),
                        });
                    }
                }
            }
            if done.iter().all(|d| *d) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Failed {
                    headline: format!(
                        "Argo CD did not deploy stage `{}` at {commit} within {}s",
                        stage.name,
                        timeout.as_secs()
                    ),
                    details: states
                        .into_iter()
                        .map(Detail::Note)
                        .chain([Detail::Help(format!(
                            "the commit is pushed and Argo CD may still take it: `helm envs status --stage {}`",
                            stage.name
                        ))])
                        .collect(),
                });
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Pipeline<'_> {
    /// Applies, as the stages file generates them, the Applications Argo CD holds otherwise: the
    /// chart version a promotion moves is in the Application, not in Git, and an Application
    /// edited by hand would deploy something else than the commit says. Says what changed.
    fn update_applications(&self, stage: &Stage, applications: &[Application]) -> Result<()> {
        let Some(settings) = &stage.argocd else { return Ok(()) };
        let stale: Vec<&Application> =
            applications.iter().filter(|a| a.verdict.is_some() && !a.edited.is_empty()).collect();
        if stale.is_empty() {
            return Ok(());
        }
        for application in &stale {
            let changes: Vec<String> = application
                .edited
                .iter()
                .map(|edit| {
                    format!("{} {} -> {}", edit.path, shown(edit.live.as_ref()), shown(edit.generated.as_ref()))
                })
                .collect();
            self.reporter.note(&format!(
                "updating Application {} from the stages file: {}",
                application.name,
                changes.join("; ")
            ));
        }
        let text = stale.iter().map(|a| a.generated.to_string()).collect::<Vec<_>>().join("\n");
        let what = format!("the Argo CD Applications of stage {}", stage.name);
        self.kubectl.apply(stage, &settings.context, &settings.namespace, &Stdin { text: &text, what })?;
        Ok(())
    }
}

/// A field's value in a note: JSON, `(none)` when absent.
fn shown(value: Option<&serde_json::Value>) -> String {
    value.map_or_else(|| "(none)".to_string(), serde_json::Value::to_string)
}

/// Where one release's Application stands in a deploy of `commit`.
#[derive(Debug, PartialEq, Eq)]
enum Progress {
    Done,
    /// Still going: what it waits for.
    Waiting(String),
    /// It will not get there by waiting: why.
    Failed(Vec<String>),
}

/// Argo CD compared the Application with `commit` and found the cluster as it says.
fn at_commit(application: &Application, commit: &str) -> bool {
    application.edited.is_empty()
        && application
            .verdict
            .as_ref()
            .is_some_and(|v| v.compared_with_spec && v.sync == "Synced" && v.revision.as_deref() == Some(commit))
}

/// `health`: the workloads the config renders, read once the Application is at `commit`.
fn judge(application: &Application, commit: &str, health: Option<&Health>) -> Progress {
    let Some(verdict) = &application.verdict else {
        return Progress::Failed(vec![format!(
            "Argo CD holds no Application {}: create it from the stages file (helm envs argocd --apply)",
            application.name
        )]);
    };
    if let Some((phase, message)) = &verdict.failed_operation
        && verdict.revision.as_deref() == Some(commit)
    {
        return Progress::Failed(vec![format!("Argo CD's sync: {phase}: {message}")]);
    }
    let short = &commit[..commit.len().min(12)];
    match health {
        None if !application.edited.is_empty() => Progress::Waiting(format!(
            "Application {} is not what the stages file generates ({})",
            application.name,
            application.edited.iter().map(|e| e.path.as_str()).collect::<Vec<_>>().join(", ")
        )),
        None if !verdict.compared_with_spec => {
            Progress::Waiting(format!("Argo CD has not compared the Application as it is now, waiting for {short}"))
        }
        None => Progress::Waiting(match verdict.revision.as_deref() {
            Some(revision) if revision == commit => format!("Argo CD: {} at {short}", verdict.sync),
            Some(revision) => format!("Argo CD runs {}, waiting for {short}", &revision[..revision.len().min(12)]),
            None => format!("Argo CD has not compared it yet, waiting for {short}"),
        }),
        Some(health) if health.failed() => Progress::Failed(
            health.not_ready().flat_map(|w| std::iter::once(w.headline()).chain(w.why.iter().cloned())).collect(),
        ),
        Some(health) if !health.is_ready() => {
            let (ready, desired) = health.counts();
            let why = health.not_ready().flat_map(|w| w.why.first()).next().map(|w| format!(" ({w})"));
            Progress::Waiting(format!("{ready}/{desired} ready{}", why.unwrap_or_default()))
        }
        // The workloads are ready; Argo CD's own verdict takes in every object (an Ingress
        // waiting for its address, a custom resource's health check).
        Some(_) => match verdict.health.as_str() {
            "Healthy" => Progress::Done,
            "Degraded" => Progress::Failed(vec![format!(
                "Argo CD judges {} Degraded{}",
                application.name,
                verdict.health_message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
            )]),
            other => Progress::Waiting(format!(
                "ready; Argo CD: {other}{}",
                verdict.health_message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default()
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::argocd::Verdict;

    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

    fn application(sync: &str, revision: &str, failed: Option<&str>) -> Application {
        Application {
            name: "web-staging".into(),
            verdict: Some(Verdict {
                sync: sync.into(),
                revision: Some(revision.into()),
                failed_operation: failed.map(|m| ("Failed".to_string(), m.to_string())),
                compared_with_spec: true,
                ..Verdict::default()
            }),
            edited: Vec::new(),
            generated: serde_json::Value::Null,
        }
    }

    #[test]
    fn a_deploy_through_argo_cd_is_done_at_the_commit_with_its_workloads_ready() {
        let older = "fedcba9876543210fedcba9876543210fedcba98";
        let before = application("Synced", older, None);
        assert!(!at_commit(&before, COMMIT));
        assert_eq!(
            judge(&before, COMMIT, None),
            Progress::Waiting("Argo CD runs fedcba987654, waiting for 0123456789ab".into())
        );
        // A failed sync of an earlier commit is history; of this one, the end.
        let failed_before = application("OutOfSync", older, Some("boom"));
        assert!(matches!(judge(&failed_before, COMMIT, None), Progress::Waiting(_)));
        let failed = application("OutOfSync", COMMIT, Some("one or more objects failed to apply"));
        assert_eq!(
            judge(&failed, COMMIT, None),
            Progress::Failed(vec!["Argo CD's sync: Failed: one or more objects failed to apply".into()])
        );
        let mut synced = application("Synced", COMMIT, None);
        assert!(at_commit(&synced, COMMIT));
        // Synced at the commit, but judged against the Application before it was updated (a
        // chart version), or edited since: not there yet.
        let mut stale = synced.clone();
        stale.verdict.as_mut().expect("verdict").compared_with_spec = false;
        assert!(!at_commit(&stale, COMMIT));
        assert_eq!(
            judge(&stale, COMMIT, None),
            Progress::Waiting("Argo CD has not compared the Application as it is now, waiting for 0123456789ab".into())
        );
        let edited = Application {
            edited: vec![crate::compare::argocd::Edit {
                path: "spec.sources[0].targetRevision".into(),
                generated: Some("1.5.0".into()),
                live: Some("1.4.2".into()),
            }],
            ..synced.clone()
        };
        assert!(!at_commit(&edited, COMMIT));
        assert_eq!(
            judge(&edited, COMMIT, None),
            Progress::Waiting(
                "Application web-staging is not what the stages file generates (spec.sources[0].targetRevision)".into()
            )
        );
        // Ready workloads, and Argo CD's health verdict on every object of the Application.
        let ready = Health::default();
        let verdict = |app: &mut Application, health: &str| {
            app.verdict.as_mut().expect("verdict").health = health.into();
        };
        verdict(&mut synced, "Progressing");
        assert_eq!(judge(&synced, COMMIT, Some(&ready)), Progress::Waiting("ready; Argo CD: Progressing".into()));
        verdict(&mut synced, "Degraded");
        assert!(matches!(judge(&synced, COMMIT, Some(&ready)), Progress::Failed(_)));
        verdict(&mut synced, "Healthy");
        assert_eq!(judge(&synced, COMMIT, Some(&ready)), Progress::Done);
        let missing = Application { verdict: None, ..synced };
        assert!(matches!(judge(&missing, COMMIT, None), Progress::Failed(_)));
    }
}
