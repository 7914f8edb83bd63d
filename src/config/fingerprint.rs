//! What a deploy of a target is made of, as one digest: the chart (every file of a local
//! chart, subcharts included; the reference and pinned version of a repository or OCI chart),
//! the values files' contents in order, and the stage's helm arguments. helm-envs records it on
//! each revision it deploys, with that revision's number (the release label `helm-envs/config`),
//! so a later run can tell that a release runs its config from helm's record alone, without
//! rendering the chart: the way Flux's helm-controller compares digests of chart and values.
//!
//! The judgment errs one way only: anything the digest cannot vouch for (an unpinned repository
//! chart, an unreadable file, a revision someone else made, a label copied onto a later
//! revision by `helm upgrade` or `helm rollback`) means "render and compare", never "in sync".

use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::config::stages::{Chart, Target};

/// The release label that carries `<revision>.<fingerprint>`.
pub const LABEL: &str = "helm-envs/config";

/// Hex digits kept: a label value holds at most 63 characters, with the revision.
const DIGITS: usize = 40;

/// The target's fingerprint; `None` when it cannot be computed (an unpinned repository chart,
/// whose version helm picks at deploy time, or a file that cannot be read).
pub fn of(target: &Target) -> Option<String> {
    let mut hash = Sha256::new();
    let mut field = |name: &str, bytes: &[u8]| {
        hash.update(name.as_bytes());
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    field("release", target.release.name.as_bytes());
    field("namespace", target.namespace.as_bytes());
    match &target.release.chart {
        Chart::Local(dir) => {
            for (relative, contents) in chart_files(dir)? {
                field(&format!("chart:{relative}"), &contents);
            }
        }
        Chart::Repo(reference) | Chart::Oci(reference) => {
            field("chart", reference.as_bytes());
            let pinned = target.version.as_deref().or_else(|| reference.split_once('@').map(|(_, digest)| digest))?;
            field("version", pinned.as_bytes());
        }
    }
    for file in &target.values_files {
        field("values", &std::fs::read(&file.path).ok()?);
    }
    // As encrypted: any change of the secrets (sops re-encrypts the whole file) is a new config,
    // and no decrypted byte goes into a label.
    for file in &target.secret_files {
        field("secrets", &std::fs::read(&file.path).ok()?);
    }
    for arg in &target.stage.helm_args {
        field("arg", arg.as_bytes());
    }
    let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Some(hex[..DIGITS].to_string())
}

/// The label value recorded on revision `revision` of a deploy with `fingerprint`.
pub fn label(fingerprint: &str, revision: u64) -> String {
    format!("{revision}.{fingerprint}")
}

/// Whether a release whose latest revision is `revision`, with `status` and the label value
/// `recorded`, runs the config whose fingerprint is `fingerprint`: helm-envs deployed exactly
/// this config as this very revision, and it deployed.
pub fn runs_config(revision: u64, status: &str, recorded: Option<&str>, fingerprint: &str) -> bool {
    status == "deployed" && recorded == Some(label(fingerprint, revision).as_str())
}

/// What only a render against the cluster answers: `lookup`.
const CLUSTER_WORDS: &[&str] = &["lookup"];

/// What makes an upgrade's render differ from a plain offline `helm template`: the cluster
/// (`lookup`, `.Capabilities`, a `kubeVersion` constraint checked against it) and the release
/// (`.Release.IsUpgrade`, `.IsInstall`, `.Revision`).
const RELEASE_WORDS: &[&str] = &["lookup", "Capabilities", "kubeVersion", "IsUpgrade", "IsInstall", "Revision"];

/// Whether rendering the target may call `lookup`, which only a render against the cluster
/// answers: decided conservatively, by the word anywhere in the chart (its subcharts and their
/// archives included) or in a values file (a string that `tpl` may evaluate). A repository or
/// OCI chart is not on disk to read: it may.
pub fn may_call_lookup(target: &Target) -> bool {
    mentions_any(target, CLUSTER_WORDS)
}

/// Whether the target renders the same text wherever and however it is rendered: a plain
/// offline `helm template` is then exactly what its upgrade renders, and one render serves
/// every comparison. Decided as conservatively as [`may_call_lookup`].
pub fn renders_alike_everywhere(target: &Target) -> bool {
    !mentions_any(target, RELEASE_WORDS)
}

fn mentions_any(target: &Target, words: &[&str]) -> bool {
    let Chart::Local(dir) = &target.release.chart else { return true };
    chart_files(dir).is_none_or(|files| chart_mentions(&files, words))
        || target.values_files.iter().any(|file| std::fs::read(&file.path).map_or(true, |b| mentions(&b, words)))
}

/// Whether a chart's files (an archive's, unpacked) mention one of `words`; an archive that
/// cannot be unpacked may.
fn chart_mentions(files: &[(String, Vec<u8>)], words: &[&str]) -> bool {
    files.iter().any(|(name, contents)| match name.ends_with(".tgz") {
        true => unpacked(contents).is_none_or(|tar| mentions(&tar, words)),
        false => mentions(contents, words),
    })
}

fn mentions(bytes: &[u8], words: &[&str]) -> bool {
    words.iter().any(|word| bytes.windows(word.len()).any(|w| w == word.as_bytes()))
}

/// A gzipped archive's bytes, unpacked (a tar stream holds its files' contents as they are).
fn unpacked(archive: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read as _;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(archive).read_to_end(&mut out).ok()?;
    Some(out)
}

/// Every file under a chart directory, by path relative to it, sorted; `None` when one cannot
/// be read. Symbolic links count as what they point to, as helm loads them (a subchart linked
/// from elsewhere in a monorepo is part of the chart); links nested deeper than helm-envs
/// follows (a loop) make it `None`.
fn chart_files(dir: &Path) -> Option<Vec<(String, Vec<u8>)>> {
    const DEPTH: usize = 32;
    fn walk(dir: &Path, prefix: &str, depth: usize, out: &mut Vec<(String, Vec<u8>)>) -> Option<()> {
        if depth > DEPTH {
            return None;
        }
        let mut entries: Vec<_> = std::fs::read_dir(dir).ok()?.collect::<Result<_, _>>().ok()?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            // Follows links: a dangling one cannot be read, and makes the chart unreadable.
            let metadata = std::fs::metadata(entry.path()).ok()?;
            if metadata.is_dir() {
                walk(&entry.path(), &format!("{name}/"), depth + 1, out)?;
            } else {
                out.push((name, std::fs::read(entry.path()).ok()?));
            }
        }
        Some(())
    }
    let mut out = Vec::new();
    walk(dir, "", 0, &mut out)?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_vouches_for_its_own_revision_of_a_deployed_release_only() {
        let fingerprint = "0123456789abcdef0123456789abcdef01234567";
        let recorded = label(fingerprint, 4);
        assert_eq!(recorded, "4.0123456789abcdef0123456789abcdef01234567");
        assert!(recorded.len() <= 63, "a label value holds 63 characters");
        assert!(runs_config(4, "deployed", Some(&recorded), fingerprint));
        // `helm upgrade` and `helm rollback` copy the labels onto the revision they make.
        assert!(!runs_config(5, "deployed", Some(&recorded), fingerprint));
        assert!(!runs_config(4, "failed", Some(&recorded), fingerprint));
        assert!(!runs_config(4, "deployed", Some(&recorded), "another"));
        assert!(!runs_config(4, "deployed", None, fingerprint));
    }

    #[test]
    fn lookup_is_found_in_templates_and_in_subchart_archives() {
        use std::io::Write as _;
        let gzipped = |text: &str| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(text.as_bytes()).expect("gzip");
            gz.finish().expect("gzip")
        };
        let file = |name: &str, contents: Vec<u8>| (name.to_string(), contents);
        let mentions_lookup = |files: &[(String, Vec<u8>)]| chart_mentions(files, CLUSTER_WORDS);
        let plain = [file("templates/cm.yaml", b"kind: ConfigMap".to_vec())];
        assert!(!mentions_lookup(&plain));
        assert!(mentions_lookup(&[file("templates/s.yaml", b"{{ lookup \"v1\" \"Secret\" }}".to_vec())]));
        assert!(mentions_lookup(&[file(
            "charts/db-1.0.0.tgz",
            gzipped("{{ (lookup \"v1\" \"Secret\" \"a\" \"b\") }}")
        )]));
        assert!(!mentions_lookup(&[file("charts/db-1.0.0.tgz", gzipped("kind: ConfigMap"))]));
        assert!(mentions_lookup(&[file("charts/broken.tgz", b"not gzip".to_vec())]), "unreadable: it may");
        // What makes an upgrade's render differ from a plain one.
        assert!(!chart_mentions(&plain, RELEASE_WORDS));
        let hpa = file("templates/hpa.yaml", b"{{ if .Capabilities.APIVersions.Has \"autoscaling/v2\" }}".to_vec());
        assert!(chart_mentions(&[hpa], RELEASE_WORDS));
        assert!(chart_mentions(&[file("templates/job.yaml", b"{{ if .Release.IsInstall }}".to_vec())], RELEASE_WORDS));
    }

    #[test]
    fn every_file_of_a_chart_counts_subcharts_included() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |relative: &str, text: &str| {
            let path = dir.path().join(relative);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        };
        write("Chart.yaml", "name: c\nversion: 0.1.0\n");
        write("templates/cm.yaml", "kind: ConfigMap\n");
        write("charts/sub/templates/cm.yaml", "kind: ConfigMap\n");
        let files = chart_files(dir.path()).expect("readable");
        let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["Chart.yaml", "charts/sub/templates/cm.yaml", "templates/cm.yaml"]);
        assert!(chart_files(&dir.path().join("missing")).is_none());

        // A subchart linked from elsewhere counts with its files; a link loop is not readable.
        let elsewhere = tempfile::tempdir().expect("tempdir");
        std::fs::write(elsewhere.path().join("Chart.yaml"), "name: common\n").expect("write");
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("charts/common")).expect("symlink");
        let files = chart_files(dir.path()).expect("readable");
        assert!(
            files.iter().any(|(name, contents)| name == "charts/common/Chart.yaml" && contents == b"name: common\n")
        );
        std::os::unix::fs::symlink(dir.path(), dir.path().join("charts/loop")).expect("symlink");
        assert!(chart_files(dir.path()).is_none());
    }
}
