//! An interrupted run (Ctrl-C, SIGTERM, SIGHUP) says what it leaves behind before it exits:
//! files written whose deploy did not finish, and the command that finishes the job.

use std::sync::Mutex;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::error::{Detail, Error};
use crate::terminal;

/// What an interrupt would leave unfinished now.
static PENDING: Mutex<Option<Vec<Detail>>> = Mutex::new(None);

/// On INT, TERM or HUP: report what is pending, then exit with 128 + the signal, as a shell
/// reports a process the signal ended.
pub fn watch() {
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else { return };
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            let pending = PENDING.lock().ok().and_then(|mut p| p.take());
            if let Some(details) = pending {
                let name = match signal {
                    SIGINT => "SIGINT",
                    SIGTERM => "SIGTERM",
                    _ => "SIGHUP",
                };
                terminal::report_error(&Error::Failed { headline: format!("interrupted ({name})"), details });
            }
            std::process::exit(128 + signal);
        }
    });
}

/// While it lives, an interrupt reports `details` before exiting.
pub struct Pending;

pub fn pending(details: Vec<Detail>) -> Pending {
    if let Ok(mut pending) = PENDING.lock() {
        *pending = Some(details);
    }
    Pending
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Ok(mut pending) = PENDING.lock() {
            *pending = None;
        }
    }
}
