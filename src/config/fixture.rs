//! Projects for unit tests: a stages file loaded from a temporary directory that holds a chart
//! (`chart/`) and a values file (`values.yaml`), as `Project::load` validates them.

use std::path::Path;

use tempfile::TempDir;

use super::stages::{FILE_NAME, Project};
use crate::error::Result;

/// `stages_file` written as the project's helm-envs.yaml and loaded; the directory lives as
/// long as the returned guard.
pub fn load(stages_file: &str) -> (TempDir, Result<Project>) {
    load_with(stages_file, &[])
}

/// As `load`, with more files (path relative to the project, text) written first.
pub fn load_with(stages_file: &str, files: &[(&str, &str)]) -> (TempDir, Result<Project>) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    write(dir.path(), "chart/Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\n");
    write(dir.path(), "values.yaml", "replicas: 1\n");
    for (path, text) in files {
        write(dir.path(), path, text);
    }
    write(dir.path(), FILE_NAME, stages_file);
    let project = Project::load(&dir.path().join(FILE_NAME));
    (dir, project)
}

/// A project that loads: stages `names` in order (each on a context of its name, `approval`
/// set on the ones in `approved`), one release `app` of `chart/` with `values.yaml`.
pub fn project(names: &[&str], approved: &[&str]) -> (TempDir, Project) {
    let mut text = String::from("stages:\n");
    for name in names {
        text.push_str(&format!("  - name: {name}\n    kubeContext: {name}\n    namespace: app-{name}\n"));
        if approved.contains(name) {
            text.push_str("    approval: required\n");
        }
    }
    text.push_str("releases:\n  - name: app\n    chart: chart\n    values: [values.yaml]\n");
    let (dir, project) = load(&text);
    (dir, project.unwrap_or_else(|err| panic!("the fixture loads: {err}: {:?}", err.details())))
}

fn write(dir: &Path, relative: &str, text: &str) {
    let path = dir.join(relative);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}
