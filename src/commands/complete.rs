//! `helm-envs __complete WORDS... PARTIAL` (hidden): completion candidates for Helm's dynamic
//! plugin completion (`plugin.complete` runs it), so `helm envs <TAB>` completes subcommands,
//! flags, and the project's own stage and release names. Prints one candidate per line, then
//! `:N`, the cobra completion directive (4: no file completion; 0: the shell's default).

use clap::CommandFactory;

use crate::cli::Cli;
use crate::config::stages::Project;
use crate::terminal;

/// cobra's ShellCompDirectiveDefault: the shell completes file names.
const FILES: u8 = 0;
/// cobra's ShellCompDirectiveNoFileComp.
const NO_FILES: u8 = 4;

pub fn run(words: &[String]) {
    let (partial, before) = words.split_last().map_or(("", &[][..]), |(last, rest)| (last.as_str(), rest));
    let (candidates, directive) = candidates(before, partial);
    let mut out: String = candidates.into_iter().filter(|c| c.starts_with(partial)).map(|c| c + "\n").collect();
    out.push_str(&format!(":{directive}\n"));
    terminal::stdout(&out);
}

fn candidates(before: &[String], partial: &str) -> (Vec<String>, u8) {
    let root = Cli::command();
    let mut command = &root;
    let mut config: Option<String> = None;
    let mut positionals = 0;
    let mut words = before.iter().peekable();
    while let Some(word) = words.next() {
        if word == "--" {
            // exec's command: the shell's own completion.
            return (Vec::new(), FILES);
        }
        if let Some(flag) = word.strip_prefix('-') {
            let takes_value = find_flag(&root, command, flag).is_some_and(|a| a.get_action().takes_values());
            if takes_value && !word.contains('=') {
                let value = words.next();
                if flag.trim_start_matches('-') == "config" {
                    config = value.cloned();
                }
            }
            continue;
        }
        match command.find_subcommand(word) {
            Some(sub) if std::ptr::eq(command, &root) => command = sub,
            _ => positionals += 1,
        }
    }
    // The value of the flag just typed.
    if let Some(flag) = before.last().and_then(|w| w.strip_prefix('-'))
        && !before.last().is_some_and(|w| w.contains('='))
        && let Some(arg) = find_flag(&root, command, flag)
        && arg.get_action().takes_values()
    {
        return values_of(arg, config.as_deref());
    }
    if partial.starts_with('-') {
        let flags = command.get_arguments().chain(root.get_arguments().filter(|a| a.is_global_set()));
        let names = flags.filter(|a| !a.is_hide_set()).filter_map(|a| a.get_long().map(|l| format!("--{l}")));
        return (names.collect(), NO_FILES);
    }
    if std::ptr::eq(command, &root) {
        let names = root.get_subcommands().filter(|s| !s.is_hide_set()).map(|s| s.get_name().to_string());
        return (names.collect(), NO_FILES);
    }
    match command.get_positionals().nth(positionals) {
        Some(arg) if !arg.is_last_set() => values_of(arg, config.as_deref()),
        _ => (Vec::new(), NO_FILES),
    }
}

/// A flag of the subcommand (or a global one) by `-x`, `--name` or `--name=...` (leading `-` gone).
fn find_flag<'c>(root: &'c clap::Command, command: &'c clap::Command, flag: &str) -> Option<&'c clap::Arg> {
    let name = flag.split('=').next().unwrap_or(flag);
    let matches = |arg: &&clap::Arg| match name.strip_prefix('-') {
        Some(long) => arg.get_long() == Some(long),
        None => name.chars().count() == 1 && arg.get_short() == name.chars().next(),
    };
    command.get_arguments().find(matches).or_else(|| root.get_arguments().find(matches))
}

/// What an argument takes: stage or release names from the stages file, its possible values,
/// or file names.
fn values_of(arg: &clap::Arg, config: Option<&str>) -> (Vec<String>, u8) {
    let names = |of_stages: bool| {
        let names = project(config).map(|p| match of_stages {
            true => p.stages.iter().map(|s| s.name.clone()).collect(),
            false => p.releases.iter().map(|r| r.name.clone()).collect(),
        });
        (names.unwrap_or_default(), NO_FILES)
    };
    match arg.get_id().as_str() {
        "stage" | "from" | "to" => names(true),
        "release" => names(false),
        "config" => (Vec::new(), FILES),
        _ => {
            let values: Vec<String> = arg.get_possible_values().iter().map(|v| v.get_name().to_string()).collect();
            (values, NO_FILES)
        }
    }
}

/// The stages file as the command would find it; `None` when there is none or it does not load
/// (completion stays quiet: the command itself will say what is wrong).
fn project(config: Option<&str>) -> Option<Project> {
    let explicit =
        config.map(std::path::PathBuf::from).or_else(|| std::env::var_os("HELM_ENVS_CONFIG").map(Into::into));
    Project::find(explicit.as_deref()).ok()
}
