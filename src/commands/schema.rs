//! `helm envs schema`: the stages file's JSON Schema, for editors and CI.

use crate::output;
use crate::stages;

pub fn run() {
    output::stdout(&format!("{:#}\n", stages::json_schema()));
}
