//! Interrupts (Ctrl-C, SIGTERM, SIGHUP) never end helm-envs from the signal thread: the signal
//! is recorded, and the main thread stops at its next step: no new deploy starts after it, the
//! command finishes its report (what was deployed, what was not attempted, what may still run)
//! and exits with 128 + the signal, as a shell reports a process a signal ended.
//!
//! The programs running when the signal comes are waited for, so the project lock is held as
//! long as they run: `exec`'s command gets the signal passed on at once (it is the user's own
//! script, which knows how to stop), helm is left to finish its current call; a second signal
//! passes it on to helm too, a third kills every child.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, getpgrp, tcgetpgrp};
use signal_hook::consts::{SIGHUP, SIGINT, SIGKILL, SIGTERM};

use crate::error::{Detail, Error, Result, signal_name};
use crate::terminal;

/// The first signal received (0: none).
static RECEIVED: AtomicI32 = AtomicI32::new(0);
/// How many signals were received.
static COUNT: AtomicUsize = AtomicUsize::new(0);
/// The children running now: (pid, what it is).
static CHILDREN: Mutex<Vec<(u32, Child)>> = Mutex::new(Vec::new());

/// What a running child is, which decides when a signal is passed on to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Child {
    /// `exec`'s command or a stage's deploy or verify command: the user's own program.
    Command,
    /// helm (or kubectl): left to finish unless the signal comes again.
    Tool,
}

/// Start recording INT, TERM and HUP.
pub fn watch() {
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else { return };
    std::thread::spawn(move || {
        for signal in signals.forever() {
            let _ = RECEIVED.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
            let count = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
            let children = CHILDREN.lock().map(|c| c.clone()).unwrap_or_default();
            for (pid, kind) in &children {
                let forward = match (count, kind) {
                    (1, Child::Command) => (signal != SIGINT || !terminal_delivered_it()).then_some(signal),
                    (1, Child::Tool) => None,
                    (2, _) => Some(signal),
                    _ => Some(SIGKILL),
                };
                if let Some(forward) = forward {
                    send(*pid, forward);
                }
            }
            terminal::note(&match (count, children.iter().any(|(_, k)| *k == Child::Tool)) {
                (1, true) => format!(
                    "{}: no new deploy will start; waiting for the running helm call to finish (the project stays \
                     locked until it does; {} again passes the signal on to it)",
                    signal_name(signal),
                    signal_name(signal)
                ),
                (1, false) => format!("{}: stopping after the current step", signal_name(signal)),
                (2, _) => {
                    format!(
                        "{}: passed on to the running helm and commands; waiting for them to end",
                        signal_name(signal)
                    )
                }
                _ => format!("{}: killing the running helm and commands", signal_name(signal)),
            });
        }
    });
}

/// The signal received so far, if any.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// An error when a signal was received: the caller stops before its next step. `details` say
/// what the run leaves behind.
pub fn check(details: impl FnOnce() -> Vec<Detail>) -> Result<()> {
    match received() {
        None => Ok(()),
        Some(signal) => Err(Error::Interrupted { signal, details: details() }),
    }
}

/// A running child, known to the signal thread while this lives.
pub struct Running(u32);

/// Make the signal thread aware of a child until the returned guard is dropped.
pub fn running(pids: &[u32], kind: Child) -> Vec<Running> {
    let mut children = CHILDREN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    pids.iter()
        .map(|&pid| {
            children.push((pid, kind));
            Running(pid)
        })
        .collect()
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut children = CHILDREN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        children.retain(|(pid, _)| *pid != self.0);
    }
}

fn send(pid: u32, signal: i32) {
    let (Ok(pid), Ok(signal)) = (i32::try_from(pid), Signal::try_from(signal)) else { return };
    // The pid is a child this process started and has not reaped yet: the guard that lists it
    // is dropped only after the wait.
    let _ = kill(Pid::from_raw(pid), signal);
}

/// Whether a SIGINT came from the terminal's Ctrl-C, which the terminal sends to the whole
/// foreground process group, children included: passing it on would deliver it twice.
fn terminal_delivered_it() -> bool {
    tcgetpgrp(std::io::stdin()).is_ok_and(|foreground| foreground == getpgrp())
}
