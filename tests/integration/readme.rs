//! The README cannot rot: every command in its `console` blocks runs here, in order, on a copy
//! of the example against the test clusters, and its output must match what the README shows.
//! `…` in the README stands for any text within a line, or, alone on a line, for any number of
//! lines. Set `HELM_ENVS_README=overwrite` to write the actual outputs of the examples that do not
//! match into README.md instead (then put `…` where output varies: times, temp paths).
//! Commands in `sh` blocks (installing, the testbed) are checked to be ones `make demo` runs.

use std::path::Path;

use crate::harness::{Namespaces, Project, copy_dir, helm_major, plugins_with_this_build, repo};

/// One `$ command` of a console block and the output the README shows for it.
struct Example {
    line: usize,
    command: String,
    expected: Vec<String>,
}

/// The fenced blocks with the given info string: (first line number, lines).
fn blocks<'a>(readme: &'a str, info: &str) -> Vec<(usize, Vec<&'a str>)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, Vec<&str>)> = None;
    for (i, line) in readme.lines().enumerate() {
        match &mut current {
            None if line.trim_end() == format!("```{info}") => current = Some((i + 2, Vec::new())),
            None => {}
            Some(_) if line.trim_end() == "```" => out.extend(current.take()),
            Some((_, lines)) => lines.push(line),
        }
    }
    out
}

fn examples(readme: &str) -> Vec<Example> {
    let mut out: Vec<Example> = Vec::new();
    for (start, lines) in blocks(readme, "console") {
        let mut continued = false;
        for (offset, line) in lines.iter().enumerate() {
            if continued {
                let example = out.last_mut().expect("a command continues");
                example.command.push('\n');
                example.command.push_str(line);
                continued = line.ends_with('\\');
            } else if let Some(command) = line.strip_prefix("$ ") {
                out.push(Example { line: start + offset, command: command.to_string(), expected: Vec::new() });
                continued = command.ends_with('\\');
            } else if let Some(example) = out.last_mut() {
                example.expected.push(line.to_string());
            }
        }
    }
    out
}

/// A line with `…` wildcards against an actual line.
fn line_matches(expected: &str, actual: &str) -> bool {
    let parts: Vec<&str> = expected.split('…').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return expected == actual;
    }
    if !actual.starts_with(first) || !actual[first.len()..].ends_with(last) || actual.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &actual[first.len()..actual.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

/// Expected lines (a line `…` matches any number of lines) against actual lines.
fn lines_match(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first.trim() == "…" => {
            (0..=actual.len()).any(|skip| lines_match(rest, &actual[skip..]))
        }
        Some((first, rest)) => {
            actual.first().is_some_and(|line| line_matches(first, line)) && lines_match(rest, &actual[1..])
        }
    }
}

/// A copy of the example as the README's reader has it: examples/acme with the charts and the
/// scripts beside it, `helm envs` installed as a plugin (this build's binary).
/// The stages get namespaces of their own (the README shows the example's: acme-dev,
/// acme-staging, acme), so that reruns on the same clusters start clean.
fn reader_project() -> (Project, Namespaces, tempfile::TempDir) {
    let (project, namespaces) = Project::isolated_example("readme");
    copy_dir(&repo().join("scripts"), &project.root().join("scripts"));
    (project, namespaces, plugins_with_this_build())
}

/// The README's namespaces in a command, as the test's.
fn in_test_namespaces(command: &str, ns: &Namespaces) -> String {
    command
        .replace("--namespace acme-dev", &format!("--namespace {}", ns.dev))
        .replace("--namespace acme-staging", &format!("--namespace {}", ns.staging))
        .replace("--namespace acme ", &format!("--namespace {} ", ns.production))
}

/// The test's namespaces in an output, as the README's.
fn in_readme_namespaces(output: &str, ns: &Namespaces) -> String {
    output.replace(&ns.dev, "acme-dev").replace(&ns.staging, "acme-staging").replace(&ns.production, "acme")
}

#[test]
fn every_readme_console_command_runs_with_the_output_shown() {
    // The README shows Helm 4 (its rollback needs --force-conflicts, its messages differ); the
    // commands behind it run on Helm 3 too, in the other tests.
    if helm_major() != 4 {
        return;
    }
    let readme_path = repo().join("README.md");
    let readme = std::fs::read_to_string(&readme_path).expect("README.md");
    let examples = examples(&readme);
    assert!(examples.len() > 20, "the README's console blocks were not found");
    let (project, namespaces, plugins) = reader_project();
    let overwrite = std::env::var("HELM_ENVS_README").is_ok_and(|v| v == "overwrite");
    let root = project.root().display().to_string();
    let mut failures = Vec::new();
    let mut actual_outputs = Vec::new();
    let mut matched = Vec::new();
    for example in &examples {
        // The reader is in examples/acme already.
        let output = if example.command.trim() == "cd examples/acme" {
            String::new()
        } else {
            let output = project
                .shell(&format!("exec 2>&1\n{}", in_test_namespaces(&example.command, &namespaces)))
                .env("HELM_PLUGINS", plugins.path())
                .output()
                .expect("sh runs");
            in_readme_namespaces(&String::from_utf8_lossy(&output.stdout).replace(&root, "…"), &namespaces)
        };
        // The readiness wait reports progress when it lasts; how long depends on the machine.
        let actual: Vec<&str> =
            output.lines().filter(|l| !l.starts_with("waiting   ") && !l.starts_with("ready     ")).collect();
        matched.push(lines_match(&example.expected, &actual));
        if !matched.last().copied().unwrap_or_default() {
            failures.push(format!(
                "README.md:{}: `{}`\n--- README shows:\n{}\n--- actual output:\n{}",
                example.line,
                example.command,
                example.expected.join("\n"),
                output
            ));
        }
        actual_outputs.push(output);
    }
    if overwrite {
        write_outputs(&readme_path, &readme, &examples, &actual_outputs, &matched);
        return;
    }
    assert!(failures.is_empty(), "{} README example(s) out of date:\n\n{}", failures.len(), failures.join("\n\n"));
}

/// Replace the shown output of each example that did not match with its actual output (the
/// others keep their `…`).
fn write_outputs(path: &Path, readme: &str, examples: &[Example], outputs: &[String], matched: &[bool]) {
    let lines: Vec<&str> = readme.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut next = 0;
    for ((example, output), matched) in examples.iter().zip(outputs).zip(matched) {
        if *matched {
            continue;
        }
        let command_lines = example.command.lines().count();
        let end_of_command = example.line - 1 + command_lines;
        out.extend(lines[next..end_of_command].iter().map(|l| l.to_string()));
        out.extend(output.lines().map(str::to_string));
        next = end_of_command + example.expected.len();
    }
    out.extend(lines[next..].iter().map(|l| l.to_string()));
    std::fs::write(path, out.join("\n") + "\n").expect("write README.md");
}

/// Set-up commands (`sh` blocks) are not run here: they install things. Each must be one that
/// `make demo` or `make test` runs, so they are exercised on every CI run.
#[test]
fn every_readme_setup_command_is_one_make_demo_or_make_test_runs() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let exercised = ["scripts/demo.sh", "Makefile", ".ci/run", "scripts/testbed.sh"]
        .map(|f| std::fs::read_to_string(repo().join(f)).expect(f))
        .join("\n");
    let mut missing = Vec::new();
    for (start, lines) in blocks(&readme, "sh") {
        for (offset, line) in lines.iter().enumerate() {
            let Some(command) = line.strip_prefix("$ ") else { continue };
            let command = command.split(" #").next().unwrap_or(command).trim();
            // `make demo` is a Makefile target; others appear as written, or with their
            // arguments spelled as variables in the scripts (`helm plugin install "$repo"`).
            let words: Vec<&str> = command.split_whitespace().take(3).collect();
            let found = match words.as_slice() {
                ["make", target, ..] => exercised.contains(&format!("\n{target}:")),
                _ => exercised.contains(&words.join(" ")),
            };
            if !found {
                missing.push(format!("README.md:{}: {command}", start + offset));
            }
        }
    }
    assert!(missing.is_empty(), "set-up commands that neither make demo nor make test runs:\n{}", missing.join("\n"));
}

#[test]
fn wildcards_match_what_they_should() {
    assert!(line_matches("…/examples/acme/helm-envs.yaml: 3 stages", "/tmp/x/examples/acme/helm-envs.yaml: 3 stages"));
    assert!(!line_matches("a…c", "ab"));
    assert!(line_matches("revision 2 (…)", "revision 2 (2026-11-26 10:00)"));
    let expected: Vec<String> = ["first", "…", "last"].map(String::from).to_vec();
    assert!(lines_match(&expected, &["first", "a", "b", "last"]));
    assert!(lines_match(&expected, &["first", "last"]));
    assert!(!lines_match(&expected, &["first", "a"]));
}
