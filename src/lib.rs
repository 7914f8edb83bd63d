//! helm-envs: run the same Helm releases through development, staging and production.
//!
//! `main` parses the command line, loads the stages file and dispatches to `commands/`.

use std::process::ExitCode;

use clap::Parser;

pub mod cli;
pub(crate) mod commands;
pub mod compare;
pub mod config;
pub mod error;
pub mod inspect;
pub mod output;
pub mod pipeline;
pub mod redaction;
pub mod system;
pub mod terminal;

use cli::{Cli, ColorChoice, Command};
use config::stages::Project;
use error::{EXIT_ERROR, Result};

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            // Usage errors are errors (1): exit code 2 means "differences found" in helm-envs.
            return ExitCode::from(if err.use_stderr() { EXIT_ERROR } else { 0 });
        }
    };
    match cli.global.color {
        ColorChoice::Always => anstream::ColorChoice::Always.write_global(),
        ColorChoice::Never => anstream::ColorChoice::Never.write_global(),
        ColorChoice::Auto => {}
    }
    terminal::set_verbose(cli.global.verbose);
    if cli.command.reveals_secrets() {
        redaction::reveal();
    }
    if let Some(jobs) = cli.global.jobs {
        system::slots::set_limit(usize::from(jobs));
    }
    system::interrupt::watch();
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            terminal::report_error(&err);
            ExitCode::from(err.exit_code())
        }
    }
}

/// Runs the command; returns the exit code of a successful run (0, or 2 for differences).
fn run(cli: &Cli) -> Result<u8> {
    let success = |result: Result<()>| result.map(|()| 0);
    match &cli.command {
        Command::Completion(args) => {
            commands::completion::run(args);
            Ok(0)
        }
        Command::Complete(args) => {
            commands::complete::run(&args.words);
            Ok(0)
        }
        Command::Init(args) => commands::init::run(cli.global.config.as_deref(), args),
        Command::Schema => {
            commands::schema::run();
            Ok(0)
        }
        Command::List(args) => success(commands::list::run(&load_project(cli)?, args)),
        Command::Render(args) => success(commands::render::run(&load_project(cli)?, args)),
        Command::Diff(args) => commands::diff::run(&load_project(cli)?, args),
        Command::CheckSecrets(args) => commands::check_secrets::run(&load_project(cli)?, args),
        Command::CheckIsolation(args) => commands::check_isolation::run(&load_project(cli)?, args),
        Command::Argocd(args) => commands::argocd::run(&load_project(cli)?, args),
        Command::Promote(args) => commands::promote::run(&load_project(cli)?, args),
        Command::Upgrade(args) => commands::upgrade::run(&load_project(cli)?, args),
        Command::Apply(args) => commands::apply::run(&load_project(cli)?, args),
        Command::Drift(args) => commands::drift::run(&load_project(cli)?, args),
        Command::Status(args) => commands::status::run(&load_project(cli)?, args),
        Command::Exec(args) => commands::exec::run(&load_project(cli)?, args),
    }
}

fn load_project(cli: &Cli) -> Result<Project> {
    let project = Project::find(cli.global.config.as_deref())?;
    if !project.allow_values_outside_project {
        for path in project.values_outside() {
            terminal::note(&format!(
                "values file {path} is outside the project ({}): it is read, and promote will not write it \
                 (allowValuesOutsideProject: true in the stages file allows that)",
                project.dir.display()
            ));
        }
    }
    Ok(project)
}
