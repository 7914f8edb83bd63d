use clap::CommandFactory;

use crate::cli::{Cli, CompletionArgs};
use crate::terminal;

pub fn run(args: &CompletionArgs) {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "helm-envs", &mut script);
    terminal::stdout(&String::from_utf8_lossy(&script));
}
