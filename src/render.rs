//! Rendering several (stage, release) targets with helm template, in parallel.

use crate::error::{Error, Result};
use crate::helm::Helm;
use crate::stages::Target;

/// Render every target, concurrently; results come back in the order of `targets`.
pub fn render_all(helm: &Helm, targets: &[Target]) -> Vec<Result<String>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = targets.iter().map(|target| scope.spawn(move || helm.template(target))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(Error::Other(anyhow::anyhow!("a render thread panicked")))))
            .collect()
    })
}

/// All outputs, or the failures (all of them, not just the first).
pub fn all_or_errors(results: Vec<Result<String>>) -> Result<Vec<String>> {
    let total = results.len();
    let (ok, failed): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    let mut failures: Vec<Error> = failed.into_iter().filter_map(Result::err).collect();
    match failures.len() {
        0 => Ok(ok.into_iter().filter_map(Result::ok).collect()),
        1 => Err(failures.remove(0)),
        _ => Err(Error::Several { failures, total }),
    }
}
