//! A promotion from one stage into the next, as data: the patch per release, where each of its
//! operations is written (which of the target's own values files, or the stages file for a
//! chart version), and the edited text of every file. Nothing here touches the disk beyond
//! reading the files; `commands/promote.rs` shows, gates, writes and deploys.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use json_patch::PatchOperation;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::config::edit;
use crate::config::stages::{Project, Release, Stage, Target, ValuesFile};
use crate::config::values::{self, Segment, ValuePath};
use crate::config::yaml;
use crate::error::{Detail, Error, Result};
use crate::redaction;

/// Everything a promotion changes.
#[derive(Debug)]
pub struct Promotion<'p> {
    pub from: &'p Stage,
    pub to: &'p Stage,
    pub releases: Vec<ReleasePromotion<'p>>,
    /// Every file the promotion edits, in a stable order.
    pub files: Vec<FileEdit>,
    /// `--only` paths left out because they are envSpecific.
    pub env_specific_only: Vec<String>,
    /// Short digest of the patch, for the release description and the branch name.
    pub digest: String,
}

#[derive(Debug)]
pub struct ReleasePromotion<'p> {
    pub release: &'p Release,
    /// RFC 6902 operations on the target's own values (its values files merged, shared ones left out).
    pub ops: Vec<PatchOperation>,
    pub changes: Vec<ValueChange>,
    /// The chart version, when the stages differ (and `--only` does not narrow it away).
    pub version: Option<VersionChange>,
}

/// One operation, for people: the path, old and new value, and the file it is written into.
#[derive(Debug, Clone)]
pub struct ValueChange {
    pub path: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
    /// Files (as shown to people) that receive the change.
    pub files: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VersionChange {
    pub old: Option<String>,
    pub new: Option<String>,
}

/// One file's text before and after the promotion.
#[derive(Debug, Clone)]
pub struct FileEdit {
    pub path: PathBuf,
    pub display: String,
    pub before: String,
    pub after: String,
}

impl Promotion<'_> {
    pub fn is_empty(&self) -> bool {
        self.releases.iter().all(|r| r.ops.is_empty() && r.version.is_none())
    }

    /// The target with the promotion applied as `promote` writes it: its own values files
    /// replaced by their edited copies (`copies`: path -> copy), the promoted chart version.
    pub fn promoted_target<'t>(&self, target: &Target<'t>, copies: &BTreeMap<PathBuf, PathBuf>) -> Target<'t> {
        let version = match self.release(&target.release.name).and_then(|r| r.version.as_ref()) {
            Some(change) => change.new.clone(),
            None => target.version.clone(),
        };
        let copy = |file: &ValuesFile| {
            let path = copies.get(&file.path).cloned().unwrap_or_else(|| file.path.clone());
            Some(ValuesFile { path, ..file.clone() })
        };
        with_own_files(target, copy, version)
    }

    fn release(&self, name: &str) -> Option<&ReleasePromotion<'_>> {
        self.releases.iter().find(|r| r.release.name == name)
    }
}

/// `to` with `from`'s own values promoted into it (outside envSpecific) and `from`'s chart
/// version, without planning the edits of files: the same patch `plan` writes (`plan` checks
/// that its edited files give exactly these values), as one private temporary file of promoted
/// own values, removed when it is dropped. For `diff --from --to` and `drift`, which show what
/// a promotion would deploy. `None` when the promotion changes nothing (`to` stands for itself).
pub fn preview<'p>(
    project: &Project,
    from: &Target<'p>,
    to: &Target<'p>,
) -> Result<Option<(Target<'p>, tempfile::NamedTempFile)>> {
    // The promotion works on the stages' own files (the shared ones are the same for both).
    let target_values = project.own_values(to);
    let promoted = values::promote(&project.own_values(from), &target_values, &project.kept_per_stage(from, to));
    if promoted == target_values && from.version == to.version {
        return Ok(None);
    }
    let file = write_promoted_values(&promoted, from, to)?;
    let values_file = ValuesFile {
        path: file.path().to_path_buf(),
        display: format!("({}'s values promoted into {})", from.stage.name, to.stage.name),
        shared: false,
    };
    // One file stands for all own files, at the place of the first, so the shared files keep
    // their precedence.
    let mut first = Some(values_file);
    Ok(Some((with_own_files(to, |_| first.take(), from.version.clone()), file)))
}

/// What every promoted target is: `target` with each of its own values files replaced as
/// `own` says (`None` leaves it out; shared files stay), and the chart `version`.
fn with_own_files<'t>(
    target: &Target<'t>,
    mut own: impl FnMut(&ValuesFile) -> Option<ValuesFile>,
    version: Option<String>,
) -> Target<'t> {
    let values_files = target
        .values_files
        .iter()
        .filter_map(|file| if file.shared { Some(file.clone()) } else { own(file) })
        .collect();
    Target { values_files, version, ..target.clone() }
}

/// The promoted values as one values file (JSON is YAML), private to this user.
fn write_promoted_values(values: &Map<String, Value>, from: &Target, to: &Target) -> Result<tempfile::NamedTempFile> {
    let context = || {
        format!(
            "could not write {}'s values promoted into {} for release `{}`",
            from.stage.name, to.stage.name, to.release.name
        )
    };
    let mut file = tempfile::Builder::new()
        .prefix("helm-envs-promoted-")
        .suffix(".json")
        .tempfile()
        .map_err(Error::io(context()))?;
    // Buffered: serde_json writes token by token, a system call each on a bare file (a 20 MB
    // values file took millions of them).
    let mut writer = std::io::BufWriter::new(&mut file);
    serde_json::to_writer(&mut writer, values)
        .map_err(std::io::Error::from)
        .and_then(|()| writer.flush())
        .map_err(Error::io(context()))?;
    drop(writer);
    Ok(file)
}

/// Plan the promotion of `releases` from `from` into `to`, narrowed to `only` when given.
pub fn plan<'p>(
    project: &'p Project,
    from: &'p Stage,
    to: &'p Stage,
    releases: &[&'p Release],
    only: &[ValuePath],
) -> Result<Promotion<'p>> {
    let mut files: BTreeMap<PathBuf, FileState> = BTreeMap::new();
    let mut planned = Vec::new();
    let mut narrowing = Narrowing { only, matched: vec![false; only.len()], env_specific_only: Vec::new() };

    for release in releases {
        let (source, target) = (project.target(from, release), project.target(to, release));
        let own_files: Vec<_> = target.values_files.iter().filter(|f| !f.shared).collect();
        for file in &own_files {
            if !files.contains_key(&file.path) {
                files.insert(file.path.clone(), FileState::read(project, &file.path, &file.display)?);
            }
        }
        let own_to = merge_files(own_files.iter().map(|f| &files[&f.path].values));
        let env_specific = project.kept_per_stage(&source, &target);
        let from_values = narrowing.narrow(project.own_values(&source), &own_to, &env_specific);
        let ops = values::promotion_patch(&from_values, &own_to, &env_specific);
        let version = (only.is_empty() && source.version != target.version)
            .then(|| VersionChange { old: target.version.clone(), new: source.version.clone() });

        if !ops.is_empty() && own_files.is_empty() {
            return Err(Error::Failed {
                headline: format!(
                    "stage `{}` has no values file of its own for release `{}` to receive the promotion",
                    to.name, release.name
                ),
                details: vec![Detail::Help(format!(
                    "add a per-stage values file to the release in {}, e.g. `envs/{{stage}}/{}.yaml`",
                    project.file.display(),
                    release.name
                ))],
            });
        }
        let own_paths: Vec<PathBuf> = own_files.iter().map(|f| f.path.clone()).collect();
        let changes = ops.iter().map(|op| place(op, &own_paths, &mut files)).collect::<Vec<_>>();
        planned.push(Planned { release, own_paths, ops, changes, version });
    }

    if let Some(i) = narrowing.matched.iter().position(|m| !m) {
        return Err(Error::Failed {
            headline: format!("--only {}: no such value in stage `{}` or `{}`", only[i], from.name, to.name),
            details: vec![Detail::Help(format!(
                "name a path both stages can hold, e.g. image.tag; `helm envs diff --from {} --to {}` shows what differs",
                from.name, to.name
            ))],
        });
    }

    let releases_out = planned.into_iter().map(|planned| planned.verified(to, &files)).collect::<Result<Vec<_>>>()?;
    let edits = file_edits(project, to, files, &releases_out)?;
    let digest = digest(from, to, &releases_out);
    let env_specific_only = narrowing.env_specific_only;
    Ok(Promotion { from, to, releases: releases_out, files: edits, env_specific_only, digest })
}

/// `--only`: the source's values narrowed to the paths asked for, and what the paths matched.
struct Narrowing<'a> {
    only: &'a [ValuePath],
    /// Whether each `--only` path names a value of either stage.
    matched: Vec<bool>,
    /// The `--only` paths that are envSpecific (never promoted).
    env_specific_only: Vec<String>,
}

impl Narrowing<'_> {
    /// The values to promote: all of the source's own values, or, with `--only`, the target's
    /// with just the paths asked for taken from the source.
    fn narrow(
        &mut self,
        own_from: Map<String, Value>,
        own_to: &Map<String, Value>,
        env_specific: &[ValuePath],
    ) -> Map<String, Value> {
        if self.only.is_empty() {
            return own_from;
        }
        let mut narrowed = own_to.clone();
        for (i, path) in self.only.iter().enumerate() {
            let (in_from, in_to) = (path.get(&own_from), path.get(own_to));
            self.matched[i] |= in_from.is_some() || in_to.is_some();
            if is_env_specific(path, env_specific) {
                if !self.env_specific_only.contains(&path.to_string()) {
                    self.env_specific_only.push(path.to_string());
                }
                continue;
            }
            set_path(&mut narrowed, &path.0, in_from.cloned());
        }
        narrowed
    }
}

/// One release's promotion as planned, before it is checked against the edited files.
struct Planned<'p> {
    release: &'p Release,
    own_paths: Vec<PathBuf>,
    ops: Vec<PatchOperation>,
    changes: Vec<Placed>,
    version: Option<VersionChange>,
}

impl<'p> Planned<'p> {
    /// The files, as edited, must give exactly the promoted values Helm will see. Recomputed
    /// from the files as read now, so a file edited since the project was loaded is judged by
    /// its current content.
    fn verified(self, to: &Stage, files: &BTreeMap<PathBuf, FileState>) -> Result<ReleasePromotion<'p>> {
        let Planned { release, own_paths, ops, changes, version } = self;
        let mut expected = Value::Object(merge_files(own_paths.iter().map(|p| &files[p].before_values)));
        json_patch::patch(&mut expected, &ops).map_err(|e| {
            Error::Other(anyhow::anyhow!("the promotion patch does not apply to stage `{}`: {e}", to.name))
        })?;
        let placed = Value::Object(merge_files(own_paths.iter().map(|p| &files[p].values)));
        if placed != expected {
            return Err(Error::Failed {
                headline: format!(
                    "cannot place the promotion into stage `{}`'s values files for release `{}`",
                    to.name, release.name
                ),
                details: vec![Detail::Help(
                    "the values files define the promoted keys in a way one edit cannot express (another release \
                     sharing the file wants a different value); promote the releases one at a time with --release"
                        .into(),
                )],
            });
        }
        let changes = changes
            .into_iter()
            .map(|(path, old, new, placed)| ValueChange {
                path,
                old,
                new,
                files: placed.iter().map(|p| files[p].display.clone()).collect(),
            })
            .collect();
        Ok(ReleasePromotion { release, ops, changes, version })
    }
}

/// The edits the promotion makes: each values file it changes (comments kept), and the stages
/// file when chart versions move.
fn file_edits(
    project: &Project,
    to: &Stage,
    files: BTreeMap<PathBuf, FileState>,
    releases: &[ReleasePromotion],
) -> Result<Vec<FileEdit>> {
    let mut edits = Vec::new();
    for (path, state) in files {
        if state.values == state.before_values {
            continue;
        }
        let after = edit::edit(&state.before, &path, &state.before_values, &state.values).map_err(edit_failed)?;
        edits.push(FileEdit { path, display: state.display, before: state.before, after });
    }
    let versions: Vec<(&str, &VersionChange)> =
        releases.iter().filter_map(|r| r.version.as_ref().map(|v| (r.release.name.as_str(), v))).collect();
    if !versions.is_empty() {
        edits.push(stages_file_edit(project, to, &versions)?);
    }
    Ok(edits)
}

/// A values file as read for the promotion, and its values as the promotion leaves them.
struct FileState {
    display: String,
    before: String,
    before_values: Map<String, Value>,
    values: Map<String, Value>,
}

impl FileState {
    /// The file as it is now (it may have changed since the project was loaded).
    fn read(project: &Project, path: &Path, display: &str) -> Result<FileState> {
        let before = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("cannot read the values file {display}"))(e))?;
        let before_values = match project.values_if_unchanged(path, &before) {
            Some(values) => values.clone(),
            None => yaml::parse_values(&before, path)
                .map(Arc::unwrap_or_clone)
                .map_err(|d| Error::Invalid { file: path.to_path_buf(), diagnostics: vec![d] })?,
        };
        Ok(FileState { display: display.to_string(), before, values: before_values.clone(), before_values })
    }
}

fn merge_files<'a>(maps: impl Iterator<Item = &'a Map<String, Value>>) -> Map<String, Value> {
    let mut merged = Map::new();
    for map in maps {
        values::merge(&mut merged, map.clone());
    }
    merged
}

/// The value at `keys` of the maps merged as helm merges them, without merging the rest: per
/// operation, merging whole files made a promotion quadratic in their size.
fn merged_at<'a>(maps: impl Iterator<Item = &'a Map<String, Value>>, keys: &[String]) -> Option<Value> {
    let mut merged: Option<Value> = None;
    for map in maps {
        // What this map says at `keys`: a value, nothing, or a non-map above it that replaces
        // the whole branch.
        let mut here = Some(map);
        let mut said: Option<Option<&Value>> = None;
        for (i, key) in keys.iter().enumerate() {
            let Some(value) = here.and_then(|m| m.get(key)) else { break };
            if i + 1 == keys.len() {
                said = Some(Some(value));
            } else if let Value::Object(child) = value {
                here = Some(child);
            } else {
                said = Some(None);
                break;
            }
        }
        merged = match (merged, said) {
            (merged, None) => merged,
            (_, Some(None)) => None,
            (Some(Value::Object(mut base)), Some(Some(Value::Object(overlay)))) => {
                values::merge(&mut base, overlay.clone());
                Some(Value::Object(base))
            }
            (_, Some(Some(value))) => Some(value.clone()),
        };
    }
    merged
}

type Placed = (String, Option<Value>, Option<Value>, Vec<PathBuf>);

/// Write one operation into the files: a value into the last own file that defines it (Helm's
/// order decides which one wins), a new key into the last own file, a removal from every own
/// file that defines the key (else an earlier file's value would show through).
fn place(op: &PatchOperation, own: &[PathBuf], files: &mut BTreeMap<PathBuf, FileState>) -> Placed {
    let (pointer, value) = match op {
        PatchOperation::Add(add) => (&add.path, Some(add.value.clone())),
        PatchOperation::Replace(replace) => (&replace.path, Some(replace.value.clone())),
        PatchOperation::Remove(remove) => (&remove.path, None),
        _ => unreachable!("a promotion patch only adds, replaces and removes"),
    };
    let keys: Vec<String> = pointer.tokens().map(|t| t.decoded().into_owned()).collect();
    let segments: Vec<Segment> = keys.iter().cloned().map(Segment::Key).collect();
    let path = ValuePath(segments.clone()).to_string();
    let old = merged_at(own.iter().map(|p| &files[p].values), &keys);
    let defining: Vec<PathBuf> =
        own.iter().filter(|p| ValuePath(segments.clone()).get(&files[*p].values).is_some()).cloned().collect();
    let written = match &value {
        Some(_) => vec![defining.last().or(own.last()).cloned().unwrap_or_default()],
        None => defining,
    };
    for file in &written {
        if let Some(state) = files.get_mut(file) {
            set_path(&mut state.values, &segments, value.clone());
        }
    }
    (path, old, value, written)
}

/// Set (or with `None` remove) the value at `path`, creating maps on the way; a removal also
/// removes maps it leaves empty, so a file never ends up with `key:` (null, which deletes).
fn set_path(map: &mut Map<String, Value>, path: &[Segment], value: Option<Value>) {
    let Some((first, rest)) = path.split_first() else { return };
    match first {
        Segment::Key(key) if rest.is_empty() => {
            match value {
                Some(v) => map.insert(key.clone(), v),
                None => map.remove(key),
            };
        }
        Segment::Key(key) => {
            if value.is_none() && !map.contains_key(key) {
                return;
            }
            let child = map.entry(key.clone()).or_insert_with(|| Value::Object(Map::new()));
            set_value(child, rest, value);
            if child.as_object().is_some_and(Map::is_empty) {
                map.remove(key);
            }
        }
        Segment::Index(_) => {}
    }
}

fn set_value(current: &mut Value, path: &[Segment], value: Option<Value>) {
    match (path.split_first(), current) {
        (Some((Segment::Key(_), _)), Value::Object(map)) => set_path(map, path, value),
        (Some((Segment::Key(_), _)), other) if value.is_some() => {
            *other = Value::Object(Map::new());
            set_value(other, path, value);
        }
        (Some((Segment::Index(i), rest)), Value::Array(items)) if *i < items.len() => {
            if rest.is_empty() {
                match value {
                    Some(v) => items[*i] = v,
                    None => {
                        items.remove(*i);
                    }
                }
            } else {
                set_value(&mut items[*i], rest, value);
            }
        }
        _ => {}
    }
}

fn is_env_specific(path: &ValuePath, env_specific: &[ValuePath]) -> bool {
    env_specific.iter().any(|env| env.0.len() <= path.0.len() && env.0.iter().zip(&path.0).all(|(a, b)| a == b))
}

/// The stages file with `versions.<to>.<release>` set to the promoted chart versions.
fn stages_file_edit(project: &Project, to: &Stage, versions: &[(&str, &VersionChange)]) -> Result<FileEdit> {
    let path = &project.file;
    let before = std::fs::read_to_string(path).map_err(Error::io(format!("cannot read {}", path.display())))?;
    let before_values =
        yaml::parse_values(&before, path).map_err(|d| Error::Invalid { file: path.clone(), diagnostics: vec![d] })?;
    let mut after_values = Map::clone(&before_values);
    for (release, change) in versions {
        let at = [Segment::Key("versions".into()), Segment::Key(to.name.clone()), Segment::Key(release.to_string())];
        set_path(&mut after_values, &at, change.new.clone().map(Value::String));
    }
    let after = edit::edit(&before, path, &before_values, &after_values).map_err(edit_failed)?;
    let display = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    Ok(FileEdit { path: path.clone(), display, before, after })
}

fn edit_failed(diagnostic: crate::error::Diagnostic) -> Error {
    Error::Failed {
        headline: "cannot write the promotion into the target's files".into(),
        details: vec![Detail::Diagnostic(diagnostic)],
    }
}

/// sha256 of the patch (releases, operations, versions), first 12 hex digits.
fn digest(from: &Stage, to: &Stage, releases: &[ReleasePromotion]) -> String {
    let mut text = format!("{}->{}\n", from.name, to.name);
    for r in releases {
        let ops = serde_json::to_string(&r.ops).unwrap_or_default();
        let _ = writeln!(text, "{} {ops} {:?}", r.release.name, r.version);
    }
    let hash = Sha256::digest(text.as_bytes());
    hash.iter().take(6).fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// `value` with every credential-like key's value (at any depth) replaced by its size.
pub fn redact(value: &Value) -> Value {
    redact_below(value, false)
}

/// The value at `path` as shown: under a credential-like key, everything is redacted (a map
/// keeps its keys, every value in it shows only its size); elsewhere the credentials inside it.
pub fn redact_at(path: &str, value: &Value) -> Value {
    redact_below(value, looks_secret(path))
}

/// `secret`: the value is under a credential-like key. A value the chart keeps in a Secret is
/// redacted wherever it is.
fn redact_below(value: &Value, secret: bool) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), redact_below(v, secret || looks_secret(k)))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| redact_below(v, secret)).collect()),
        other if (secret || redaction::in_a_secret(other)) && !redaction::is_object_name(other) => redacted(other),
        other => other.clone(),
    }
}

/// What is shown instead of a credential: its size.
pub fn redacted(value: &Value) -> Value {
    Value::String(format!("(redacted, {} characters)", serde_json::to_string(value).map_or(0, |t| t.len())))
}

/// Whether a value at this path is probably a credential (shown redacted): a key of the path
/// names one (`redaction::is_credential_key`), so `db.password.value` is as secret as
/// `db.password`, and `tls.secretName` is not.
pub fn looks_secret(path: &str) -> bool {
    path.split(['.', '[']).any(redaction::is_credential_key)
}

/// The line of a promotion's commit message that names it: `helm envs promote --from dev --to
/// staging (patch 3f2a...)`. [`promotion_into`] reads it back.
pub fn commit_line(from: &str, to: &str, digest: &str) -> String {
    format!("helm envs promote --from {from} --to {to} (patch {digest})")
}

/// The promotion into stage `to` a commit message records ([`commit_line`]): the stage it
/// came from and its patch digest. A merged pull request carries it to the deploy Argo CD
/// makes, and to `status`.
pub fn promotion_into<'m>(message: &'m str, to: &str) -> Option<(&'m str, &'m str)> {
    message.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("helm envs promote --from ")?;
        let (from, rest) = rest.split_once(" --to ")?;
        let digest = rest.strip_prefix(to)?.strip_prefix(" (patch ")?.strip_suffix(')')?;
        Some((from, digest))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `diff --from --to` and `drift` preview a promotion with `preview`; `promote` deploys the
    /// files `plan` edits. Both must give the target the same values, shared file untouched,
    /// envSpecific kept, and the same chart version.
    #[test]
    fn the_preview_deploys_what_the_planned_edits_deploy() {
        let stages = "envSpecific: [ingress.host]
stages:
  - {name: dev, kubeContext: dev, namespace: app-dev}
  - {name: staging, kubeContext: staging, namespace: app-staging}
releases:
  - name: app
    chart: chart
    values: [values.yaml, \"envs/{stage}/app.yaml\", \"envs/{stage}/extra.yaml\"]
";
        let files = [
            ("envs/dev/app.yaml", "image: {tag: \"2.0\"}  # new\ningress: {host: dev.local}\nfeature: on\n"),
            ("envs/dev/extra.yaml", "limits: {cpu: 2}\n"),
            ("envs/staging/app.yaml", "# staging\nimage: {tag: \"1.0\"}\ningress: {host: staging.local}\nold: gone\n"),
            ("envs/staging/extra.yaml", "limits: {cpu: 1, memory: 1Gi}\n"),
        ];
        let (_dir, project) = super::super::fixture::load_with(stages, &files);
        let project = project.unwrap_or_else(|err| panic!("loads: {err}: {:?}", err.details()));
        let (dev, staging) = (&project.stages[0], &project.stages[1]);
        let release = &project.releases[0];
        let (from, to) = (project.target(dev, release), project.target(staging, release));

        let (previewed, _file) =
            preview(&project, &from, &to).expect("previews").expect("the promotion changes staging");
        let plan = plan(&project, dev, staging, &[release], &[]).expect("plans");
        let copies_dir = tempfile::tempdir().expect("a temporary directory");
        let mut copies = BTreeMap::new();
        for (i, edit) in plan.files.iter().enumerate() {
            let copy = copies_dir.path().join(format!("{i}.yaml"));
            std::fs::write(&copy, &edit.after).expect("write a copy");
            copies.insert(edit.path.clone(), copy);
        }
        let planned = plan.promoted_target(&to, &copies);

        let own_values = |target: &Target| {
            let maps: Vec<Map<String, Value>> = target
                .values_files
                .iter()
                .filter(|f| !f.shared)
                .map(|f| yaml::parse_values(&std::fs::read_to_string(&f.path).expect("read"), &f.path).expect("parses"))
                .map(Arc::unwrap_or_clone)
                .collect();
            merge_files(maps.iter())
        };
        let expected = json!({"image": {"tag": "2.0"}, "ingress": {"host": "staging.local"}, "feature": true,
            "limits": {"cpu": 2}});
        assert_eq!(Value::Object(own_values(&previewed)), expected);
        assert_eq!(Value::Object(own_values(&planned)), expected);
        let shared = |target: &Target| -> Vec<PathBuf> {
            target.values_files.iter().filter(|f| f.shared).map(|f| f.path.clone()).collect()
        };
        assert_eq!(shared(&previewed), shared(&to));
        assert_eq!(shared(&planned), shared(&to));
        assert_eq!(previewed.values_files[0].path, to.values_files[0].path, "the shared file keeps its precedence");
        assert_eq!((previewed.version.clone(), planned.version.clone()), (from.version.clone(), from.version.clone()));
    }

    #[test]
    fn the_value_at_a_path_is_the_one_helm_merges() {
        let files = [
            map(serde_json::json!({"a": {"b": 1, "m": {"x": 1}}, "c": 1})),
            map(serde_json::json!({"a": {"m": {"y": 2}}, "c": {"d": 2}})),
            map(serde_json::json!({"a": "replaced"})),
        ];
        let keys = |text: &str| text.split('.').map(str::to_string).collect::<Vec<_>>();
        for path in ["a.b", "a.m", "a.m.x", "c", "c.d", "a", "missing"] {
            let mut whole = Map::new();
            for file in &files[..2] {
                values::merge(&mut whole, file.clone());
            }
            let expected = ValuePath(keys(path).into_iter().map(Segment::Key).collect()).get(&whole).cloned();
            assert_eq!(merged_at(files[..2].iter(), &keys(path)), expected, "{path}");
        }
        assert_eq!(merged_at(files.iter(), &keys("a.m")), None, "a later scalar replaces the branch");
        assert_eq!(merged_at(files.iter(), &keys("a")), Some(serde_json::json!("replaced")));
    }

    #[test]
    fn everything_under_a_credential_like_key_is_redacted() {
        assert!(looks_secret("db.password.value"));
        assert!(looks_secret("auth.apiToken"));
        assert!(!looks_secret("ingress.tls.secretName"));
        assert!(!looks_secret("auth.existingSecret"));
        let shown = redact_at("db", &json!({"password": {"value": "hunter2"}, "host": "db.local"}));
        assert_eq!(shown["password"]["value"], json!("(redacted, 9 characters)"));
        assert_eq!(shown["host"], json!("db.local"));
        assert_eq!(redact_at("db.password", &json!({"value": "hunter2"}))["value"], json!("(redacted, 9 characters)"));
        assert_eq!(redact_at("db.password.value", &json!("hunter2")), json!("(redacted, 9 characters)"));
    }

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("a map"),
        }
    }

    fn path(text: &str) -> Vec<Segment> {
        ValuePath::parse(text).expect("valid path").0
    }

    #[test]
    fn removing_the_last_key_removes_the_maps_it_empties() {
        let mut values = map(json!({"image": {"tag": "1"}, "keep": 1}));
        set_path(&mut values, &path("image.tag"), None);
        assert_eq!(Value::Object(values), json!({"keep": 1}));
    }

    #[test]
    fn setting_creates_maps_and_replaces_a_scalar_on_the_way() {
        let mut values = map(json!({"a": 1}));
        set_path(&mut values, &path("a.b.c"), Some(json!("x")));
        set_path(&mut values, &path("d.e"), Some(json!(2)));
        assert_eq!(Value::Object(values), json!({"a": {"b": {"c": "x"}}, "d": {"e": 2}}));
    }

    #[test]
    fn list_items_are_set_in_place() {
        let mut values = map(json!({"hosts": [{"name": "a"}, {"name": "b"}]}));
        set_path(&mut values, &path("hosts[1].name"), Some(json!("c")));
        assert_eq!(values["hosts"], json!([{"name": "a"}, {"name": "c"}]));
    }

    #[test]
    fn a_value_goes_to_the_last_file_that_defines_it_and_a_removal_to_every_one() {
        let (a, b) = (PathBuf::from("a.yaml"), PathBuf::from("b.yaml"));
        let state = |v: Value| FileState {
            display: String::new(),
            before: String::new(),
            before_values: map(v.clone()),
            values: map(v),
        };
        let mut files = BTreeMap::from([
            (a.clone(), state(json!({"x": 1, "y": 1}))),
            (b.clone(), state(json!({"x": 2, "z": {"k": 1}}))),
        ]);
        let own = [a.clone(), b.clone()];
        let op = |text: &str| {
            serde_json::from_value::<PatchOperation>(serde_json::from_str(text).expect("json")).expect("op")
        };
        let (_, old, _, written) = place(&op(r#"{"op":"replace","path":"/x","value":3}"#), &own, &mut files);
        assert_eq!((old, written), (Some(json!(2)), vec![b.clone()]));
        let (_, _, _, written) = place(&op(r#"{"op":"add","path":"/n/m","value":"v"}"#), &own, &mut files);
        assert_eq!(written, vec![b.clone()]);
        let (_, _, _, written) = place(&op(r#"{"op":"remove","path":"/x"}"#), &own, &mut files);
        assert_eq!(written, vec![a.clone(), b.clone()]);
        assert_eq!(Value::Object(files[&a].values.clone()), json!({"y": 1}));
        assert_eq!(Value::Object(files[&b].values.clone()), json!({"z": {"k": 1}, "n": {"m": "v"}}));
    }

    #[test]
    fn credential_like_paths_are_recognised() {
        assert!(looks_secret("database.password"));
        assert!(looks_secret("auth.apiToken"));
        assert!(!looks_secret("image.tag"));
        assert!(!looks_secret("secretsEnabled.count"));
        assert!(!looks_secret("ingress.tls.secretName"));
        assert!(!looks_secret("database.existingSecret"));
        assert!(looks_secret("database.secretKey"));
    }

    #[test]
    fn a_promotion_commit_names_the_stage_it_came_from_and_its_patch() {
        let message = format!(
            "Promote dev to staging: podAnnotations\n\n{}\n\nweb:\n  + podAnnotations: ...",
            commit_line("dev", "staging", "cfb57c26138d")
        );
        assert_eq!(promotion_into(&message, "staging"), Some(("dev", "cfb57c26138d")));
        assert_eq!(promotion_into(&message, "production"), None, "a promotion into another stage");
        assert_eq!(promotion_into(&message, "stag"), None);
        assert_eq!(promotion_into("Merge the promotion", "staging"), None);
    }
}
