//! Running calls side by side: helm and kubectl calls to several stages and releases, each on
//! a thread of its own (the number of programs running at once is capped by `slots`).

use crate::error::{Error, Result};

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
