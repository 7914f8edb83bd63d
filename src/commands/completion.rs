use clap::CommandFactory;

use crate::cli::{Cli, CompletionArgs};
use crate::output;

pub fn run(args: &CompletionArgs) {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "helm-envs", &mut script);
    output::stdout(&String::from_utf8_lossy(&script));
}
