//! Running independent helm calls (renders of several stages and releases, cluster reads) in
//! parallel, and gathering their failures.

use crate::error::{Error, Result};
use crate::helm::Helm;
use crate::manifest::{self, Manifest, ManifestError};
use crate::stages::Target;

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

/// Run jobs on their own threads; results come back in the order of `jobs`.
pub fn in_parallel<T: Send, F: FnOnce() -> Result<T> + Send>(jobs: Vec<F>) -> Vec<Result<T>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs.into_iter().map(|job| scope.spawn(job)).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(Error::Other(anyhow::anyhow!("a helm-envs thread panicked")))))
            .collect()
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

fn same_failure(a: &Error, b: &Error) -> bool {
    match (a, b) {
        (Error::Helm(a), Error::Helm(b)) => {
            a.stage == b.stage && a.stderr == b.stderr && a.stderr.contains("cluster unreachable")
        }
        _ => false,
    }
}
