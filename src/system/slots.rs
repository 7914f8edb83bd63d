//! How many helm and kubectl processes run at once. Commands start their independent calls in
//! parallel (every release of every stage); each process takes a slot while it runs, so a fleet
//! of 300 releases runs `--jobs` processes at a time instead of 300 at once, which would thrash
//! the CPU and the API servers. Slots are taken only around a process, never while waiting for
//! other work, so nested parallel calls cannot deadlock.

use std::sync::{Condvar, Mutex, OnceLock, PoisonError};

static LIMIT: OnceLock<usize> = OnceLock::new();
static RUNNING: Mutex<usize> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

/// Four per core: helm and kubectl spend much of a call waiting on the API server.
pub fn default_limit() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from).saturating_mul(4).clamp(4, 32)
}

/// Set once, from `--jobs`, before any process starts.
pub fn set_limit(limit: usize) {
    let _ = LIMIT.set(limit.max(1));
}

/// How many processes may run at once (`--jobs`).
pub fn limit() -> usize {
    *LIMIT.get_or_init(default_limit)
}

/// A running process's slot, given back when dropped.
pub struct Slot(());

/// Waits for a free slot.
pub fn take() -> Slot {
    let limit = limit();
    let mut running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
    while *running >= limit {
        running = FREED.wait(running).unwrap_or_else(PoisonError::into_inner);
    }
    *running += 1;
    Slot(())
}

impl Drop for Slot {
    fn drop(&mut self) {
        *RUNNING.lock().unwrap_or_else(PoisonError::into_inner) -= 1;
        FREED.notify_one();
    }
}
