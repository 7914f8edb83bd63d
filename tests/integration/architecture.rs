//! The source tree's layers (docs/architecture.md): each folder imports only the layers below
//! it, nothing imports `commands`, and no module imports another that imports it back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers from the bottom up; a module may import its own layer and the ones before it.
const LAYERS: &[&[&str]] = &[
    &["error"],
    &["redaction"],
    &["terminal"],
    &["config"],
    &["system"],
    &["compare"],
    &["inspect"],
    &["output"],
    &["pipeline"],
    &["commands", "cli"],
    &["lib"],
];

fn layer(module: &str) -> usize {
    let top = module.split("::").next().unwrap_or(module);
    LAYERS.iter().position(|layer| layer.contains(&top)).unwrap_or_else(|| panic!("module {module} has no layer"))
}

/// Every module (`compare::drift`, `pipeline`, ...) with its source.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).expect("src is readable") {
            let path = entry.expect("entry").path();
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
            if path.is_dir() {
                walk(&path, &format!("{prefix}{stem}::"), out);
            } else if path.extension().is_some_and(|e| e == "rs") && stem != "main" {
                let name =
                    if stem == "mod" { prefix.trim_end_matches("::").to_string() } else { format!("{prefix}{stem}") };
                out.insert(name, std::fs::read_to_string(&path).expect("source is readable"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), "", &mut out);
    out
}

/// The modules `source` (of module `name`) imports: `crate::a::b`, `super::b` and, in a
/// folder's mod.rs, its children by their bare names. Test code is left out.
fn imports(name: &str, source: &str, all: &BTreeMap<String, String>) -> BTreeSet<String> {
    let source = source.split("#[cfg(test)]").next().unwrap_or_default();
    let parent = name.rsplit_once("::").map_or("", |(parent, _)| parent);
    let resolve = |path: &str| -> Option<String> {
        let segments: Vec<&str> = path.split("::").collect();
        (1..=segments.len()).rev().map(|n| segments[..n].join("::")).find(|m| all.contains_key(m))
    };
    let mut found = BTreeSet::new();
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    for (i, _) in source.match_indices("crate::") {
        let path: String = source[i + 7..].chars().take_while(|c| word(*c)).collect();
        found.extend(resolve(path.trim_end_matches(':')));
    }
    for (i, _) in source.match_indices("super::") {
        let path: String = source[i + 7..].chars().take_while(|c| word(*c)).collect();
        let full = if parent.is_empty() { path } else { format!("{parent}::{path}") };
        found
            .extend(resolve(full.trim_end_matches(':')).or_else(|| Some(parent.to_string()).filter(|p| !p.is_empty())));
    }
    for line in source.lines().filter_map(|l| l.trim().strip_prefix("use ")) {
        let child: String = line.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        found.extend(resolve(&format!("{name}::{child}")));
    }
    found.remove(name);
    found.retain(|m| m != "lib");
    found
}

#[test]
fn each_layer_imports_only_the_layers_below_it() {
    let all = modules();
    let mut wrong = Vec::new();
    for (name, source) in &all {
        for import in imports(name, source, &all) {
            if layer(&import) > layer(name) || (import.starts_with("commands") && !name.starts_with("commands")) {
                wrong.push(format!("{name} imports {import}"));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers of docs/architecture.md:\n{}", wrong.join("\n"));
    assert!(all.contains_key("pipeline") && all.contains_key("compare::drift"), "modules found: {:?}", all.keys());
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let all = modules();
    let graph: BTreeMap<&String, BTreeSet<String>> =
        all.iter().map(|(name, source)| (name, imports(name, source, &all))).collect();
    // Depth-first search; a module met again while it is on the path closes a circle.
    fn visit<'g>(
        node: &'g str,
        graph: &'g BTreeMap<&String, BTreeSet<String>>,
        path: &mut Vec<&'g str>,
        done: &mut BTreeSet<&'g str>,
    ) -> Option<String> {
        if let Some(start) = path.iter().position(|n| *n == node) {
            return Some(format!("{} -> {node}", path[start..].join(" -> ")));
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        let edges = graph.iter().find(|(name, _)| name.as_str() == node).map(|(_, e)| e);
        let circle = edges.into_iter().flatten().find_map(|next| visit(next, graph, path, done));
        path.pop();
        circle
    }
    let mut done = BTreeSet::new();
    for name in graph.keys() {
        let circle = visit(name, &graph, &mut Vec::new(), &mut done);
        assert!(circle.is_none(), "import circle: {}", circle.unwrap_or_default());
    }
}

/// The pipeline and the comparisons return data: they never read the terminal or write to it.
/// The command shows what they return and provides the pipeline's approver and reporter.
/// `terminal::debug`, the `--verbose` trace, is the one exception (as a log is).
#[test]
fn nothing_under_pipeline_or_compare_reads_stdin_or_writes_to_the_terminal() {
    const FORBIDDEN: &[&str] = &[
        "stdin()",
        "stdout()",
        "stderr()",
        "is_terminal",
        "anstream",
        "indicatif",
        "print!(",
        "println!(",
        "eprint",
        "terminal::note",
        "terminal::stdout",
        "terminal::stderr",
        "terminal::report_error",
    ];
    let mut found = Vec::new();
    for (name, source) in
        modules().iter().filter(|(name, _)| name.starts_with("pipeline") || name.starts_with("compare"))
    {
        let code = source.split("#[cfg(test)]").next().unwrap_or_default();
        for (number, line) in code.lines().enumerate() {
            let imported = line.trim_start().starts_with("use crate::terminal::{")
                && ["note", "stdout", "stderr"].iter().any(|f| line.contains(f));
            if let Some(word) = FORBIDDEN.iter().find(|w| line.contains(*w)).or(imported.then_some(&"terminal")) {
                found.push(format!("{name}:{}: {word}: {}", number + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "pipeline/ and compare/ must not touch the terminal:\n{}", found.join("\n"));
}

/// Only `main`'s path prints an error and chooses the exit code; commands return errors.
#[test]
fn only_the_entry_point_prints_errors() {
    let printing: Vec<String> = modules()
        .into_iter()
        .filter(|(name, source)| name != "lib" && name != "terminal" && source.contains("report_error("))
        .map(|(name, _)| name)
        .collect();
    assert!(printing.is_empty(), "modules that print errors themselves: {printing:?}");
}
