//! `helm envs schema`: the stages file's JSON Schema, for editors and CI.

use crate::config::stages;
use crate::terminal;

pub fn run() {
    terminal::stdout(&format!("{:#}\n", stages::json_schema()));
}
