//! A gate's verdict: what a deploy must pass before anything is written. The gates themselves
//! are decided in `pipeline::gates`; this is the verdict they give, shown by `output::gates`.

use crate::compare::secrets::StageReport;
use crate::config::stages::Stage;
use crate::error::{Detail, Error};

#[derive(Debug, Clone)]
pub struct Gate {
    pub name: &'static str,
    pub verdict: Verdict,
    pub message: String,
    /// What is shown under the verdict.
    pub details: Details,
}

/// Passed, refused, or not checked: a gate that could not run (its cluster cannot be reached)
/// neither passes nor refuses, and cannot be mistaken for either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    Refused,
    /// The check could not run; it does not refuse.
    Skipped,
    /// It would refuse, and the user passed it with the flag named in the message
    /// (`--override-freeze`): the deploy goes on, and its Event records the override.
    Overridden,
}

/// What a gate shows under its verdict.
#[derive(Debug, Clone, Default)]
pub enum Details {
    #[default]
    None,
    /// The Secret check's report, when Secrets are missing.
    Secrets(StageReport),
    /// The namespaces that do not exist (shown in the message).
    MissingNamespaces(Vec<String>),
}

impl Gate {
    pub fn passed(name: &'static str, message: impl Into<String>) -> Gate {
        Gate { name, verdict: Verdict::Passed, message: message.into(), details: Details::None }
    }

    pub fn refused(name: &'static str, message: impl Into<String>) -> Gate {
        Gate { verdict: Verdict::Refused, ..Gate::passed(name, message) }
    }

    /// A check that could not run, and why.
    pub fn skipped(name: &'static str, why: impl Into<String>) -> Gate {
        Gate { verdict: Verdict::Skipped, ..Gate::passed(name, why) }
    }

    /// A refusal the user overrode with a named flag.
    pub fn overridden(name: &'static str, message: impl Into<String>) -> Gate {
        Gate { verdict: Verdict::Overridden, ..Gate::passed(name, message) }
    }

    pub fn with_details(self, details: Details) -> Gate {
        Gate { details, ..self }
    }

    pub fn is_refused(&self) -> bool {
        self.verdict == Verdict::Refused
    }
}

/// The error for the first refused gate, if any: exit 3, the other refusals under it. What the
/// refusal leaves behind is the caller's to say (a later stage of `apply` follows earlier ones
/// that deployed).
pub fn refusal(stage: &Stage, gates: &[Gate]) -> Option<Error> {
    let refused: Vec<&Gate> = gates.iter().filter(|g| g.is_refused()).collect();
    let first = refused.first()?;
    Some(Error::Refused {
        headline: format!("{} gate of stage `{}` refused: {}", first.name, stage.name, first.message),
        details: refused
            .iter()
            .skip(1)
            .map(|g| Detail::Note(format!("also refused by the {} gate: {}", g.name, g.message)))
            .collect(),
    })
}

/// A refusal that stopped a run before it wrote or deployed anything, saying so.
pub fn nothing_done(err: Error) -> Error {
    match err {
        Error::Refused { .. } => err.with_details([Detail::Help("nothing was written or deployed".into())]),
        other => other,
    }
}
