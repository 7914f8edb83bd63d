//! Everything printed goes through here: color via anstream (honours NO_COLOR, plain when
//! piped), errors in one format, and `--verbose` tracing to stderr.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use anstyle::{AnsiColor, Style};

use crate::error::{Detail, Error};
use crate::redaction;

static VERBOSE: AtomicBool = AtomicBool::new(false);

pub const BOLD: Style = Style::new().bold();
pub const DIM: Style = Style::new().dimmed();
pub const ERROR: Style = AnsiColor::Red.on_default().bold();
pub const HELP: Style = AnsiColor::Cyan.on_default().bold();
pub const NOTE: Style = AnsiColor::Blue.on_default().bold();
pub const NAME: Style = AnsiColor::Green.on_default().bold();
pub const WARN: Style = AnsiColor::Yellow.on_default();

pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

/// A trace line on stderr when `--verbose` is on (e.g. every helm command line).
pub fn debug(message: &str) {
    if VERBOSE.load(Ordering::Relaxed) {
        let _ = writeln!(anstream::stderr(), "{DIM}helm-envs: {}{DIM:#}", redaction::scrub(message));
    }
}

/// Write to stdout; a closed pipe (`| head`) is not an error worth reporting.
pub fn stdout(text: &str) {
    let text = match redaction::revealed() {
        true => std::borrow::Cow::Borrowed(text),
        false => redaction::scrub(text),
    };
    let mut out = anstream::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Write to stderr: what a command reports beside the output of the command it runs.
/// `note: MESSAGE` on stderr: something the user should know that is not an error.
pub fn note(message: &str) {
    use std::io::Write as _;
    let _ = writeln!(anstream::stderr(), "{NOTE}note{NOTE:#}: {}", redaction::scrub(message));
}

pub fn stderr(text: &str) {
    let text = redaction::scrub(text);
    let mut err = anstream::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}

/// `1 stage`, `3 stages`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

/// A command line for people to read and copy (arguments quoted where a shell would need it).
pub fn command_line(program: &str, args: &[String]) -> String {
    std::iter::once(program.to_string()).chain(args.iter().map(|a| shell_quote(a))).collect::<Vec<_>>().join(" ")
}

/// `command_line` for a command given as OS strings (bytes that are not UTF-8 shown as U+FFFD).
pub fn os_command_line(words: &[std::ffi::OsString]) -> String {
    let words: Vec<String> = words.iter().map(|w| w.to_string_lossy().into_owned()).collect();
    match words.split_first() {
        Some((program, args)) => command_line(program, args),
        None => String::new(),
    }
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c));
    if plain {
        arg.to_string()
    } else if arg.chars().any(char::is_control) {
        // Bash's $'...' keeps the command on one line and every byte visible.
        let mut quoted = String::from("$'");
        for c in arg.chars() {
            match c {
                '\\' => quoted.push_str("\\\\"),
                '\'' => quoted.push_str("\\'"),
                '\n' => quoted.push_str("\\n"),
                '\t' => quoted.push_str("\\t"),
                c if c.is_control() => quoted.push_str(&format!("\\x{:02x}", u32::from(c))),
                c => quoted.push(c),
            }
        }
        quoted.push('\'');
        quoted
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

pub fn report_error(err: &Error) {
    let mut text = format!("{ERROR}error{ERROR:#}: {BOLD}{err}{BOLD:#}\n");
    write_details(&mut text, &err.details(), "  ");
    let _ = anstream::stderr().write_all(redaction::scrub(&text).as_bytes());
}

fn write_details(text: &mut String, details: &[Detail], indent: &str) {
    for detail in details {
        match detail {
            Detail::Diagnostic(d) => {
                text.push_str(&format!("{indent}{ERROR}-->{ERROR:#} {BOLD}{}{BOLD:#}: {}\n", d.location(), d.message));
                if let Some(note) = &d.note {
                    text.push_str(&format!("{indent}    {NOTE}note{NOTE:#}: {note}\n"));
                }
                if let Some(help) = &d.help {
                    text.push_str(&format!("{indent}    {HELP}help{HELP:#}: {help}\n"));
                }
            }
            Detail::Note(note) => text.push_str(&format!("{indent}{NOTE}note{NOTE:#}: {note}\n")),
            Detail::Help(help) => text.push_str(&format!("{indent}{HELP}help{HELP:#}: {help}\n")),
            Detail::Cause(cause) => text.push_str(&format!("{indent}{NOTE}caused by{NOTE:#}: {cause}\n")),
            Detail::Output(output) => {
                for line in output.lines() {
                    text.push_str(&format!("{indent}{DIM}|{DIM:#} {line}\n"));
                }
            }
            Detail::Nested(headline, details) => {
                text.push_str(&format!("{indent}{ERROR}-{ERROR:#} {BOLD}{headline}{BOLD:#}\n"));
                write_details(text, details, &format!("{indent}  "));
            }
        }
    }
}
