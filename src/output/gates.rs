//! Gates as text (a verdict line each, with its details) and JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::compare::gate::{Details, Gate, Verdict};
use crate::config::stages::Stage;
use crate::output;
use crate::terminal::{BOLD, DIM, ERROR, NAME, WARN};

pub fn text(stage: &Stage, gates: &[Gate]) -> String {
    let mut out = format!("{BOLD}Gates for {}{BOLD:#}\n", stage.name);
    for gate in gates {
        out.push_str(&line(gate));
    }
    out
}

/// One gate's verdict line (and its details).
pub fn line(gate: &Gate) -> String {
    let verdict = match gate.verdict {
        Verdict::Skipped => format!("{DIM}skipped{DIM:#}"),
        Verdict::Passed => format!("{NAME}passed {NAME:#}"),
        Verdict::Refused => format!("{ERROR}refused{ERROR:#}"),
        Verdict::Overridden => format!("{WARN}overridden{WARN:#}"),
    };
    let mut out = format!("  {verdict} {DIM}{:<8}{DIM:#} {}\n", gate.name, gate.message);
    let details = match &gate.details {
        Details::None | Details::MissingNamespaces(_) => String::new(),
        Details::Secrets(report) => output::secrets::text(std::slice::from_ref(report), false),
    };
    for detail in details.lines() {
        let _ = writeln!(out, "    {detail}");
    }
    out
}

/// A gate in JSON: a skipped gate is passed and not checked.
#[derive(Serialize)]
pub struct GateJson<'a> {
    gate: &'static str,
    passed: bool,
    checked: bool,
    /// Passed only because the user named it in a flag (`--override-freeze`).
    overridden: bool,
    message: &'a str,
}

pub fn json(gates: &[Gate]) -> Vec<GateJson<'_>> {
    gates
        .iter()
        .map(|gate| GateJson {
            gate: gate.name,
            passed: gate.verdict != Verdict::Refused,
            checked: gate.verdict != Verdict::Skipped,
            overridden: gate.verdict == Verdict::Overridden,
            message: &gate.message,
        })
        .collect()
}
