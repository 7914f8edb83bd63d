//! Helm's release records, read where helm keeps them by default: one Secret per revision
//! (type `helm.sh/release.v1`, labels `owner=helm` and `name=<release>`), holding the release
//! as gzipped JSON in base64. Reading every release of a namespace this way is one kubectl call,
//! where `helm get` and `helm history` are one process per release each: at fleet scale most of
//! a command's time is those process start-ups. The record is what `helm get` and `helm
//! history` print from, so both read the same revision.

use base64::Engine as _;
use flate2::read::GzDecoder;
use serde::Deserialize;
use std::io::Read as _;

/// `helm history` shows at most this many revisions (its `--max` default).
const HISTORY_MAX: usize = 256;

/// Whether helm keeps releases in Secrets: its default driver, unless `HELM_DRIVER` names
/// another (configmap, memory, sql), which only helm itself can read.
pub fn in_secrets() -> bool {
    std::env::var("HELM_DRIVER").map_or(true, |driver| matches!(driver.as_str(), "" | "secret" | "secrets"))
}

/// One entry of `helm history -o json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct Revision {
    pub revision: u64,
    /// RFC 3339.
    pub updated: String,
    pub status: String,
    /// `name-version`.
    pub chart: String,
    #[serde(default)]
    pub app_version: String,
    #[serde(default)]
    pub description: String,
}

/// A release as installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub revision: u64,
    pub status: String,
    /// `name-version` of the deployed chart.
    pub chart: String,
    /// The release's objects (what `helm get manifest` prints).
    pub manifest: String,
    /// Its hooks, each under its `# Source:` line.
    pub hooks: String,
    /// The revision's `helm-envs/config` label: the config helm-envs deployed as it (see
    /// `config::fingerprint`). `None` when read through helm, or not deployed by helm-envs.
    pub config_label: Option<String>,
}

impl Installed {
    /// Manifest and hooks: everything the release renders, as `helm template` prints it.
    pub fn rendered(&self) -> String {
        format!("{}{}", self.manifest, self.hooks)
    }
}

/// One revision of a release, as stored.
#[derive(Debug, Deserialize)]
pub struct Record {
    pub name: String,
    #[serde(rename = "version")]
    pub revision: u64,
    #[serde(default)]
    info: Info,
    #[serde(default)]
    chart: Chart,
    #[serde(default)]
    config: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    manifest: String,
    #[serde(default)]
    hooks: Vec<Hook>,
    /// Not in the JSON: a label of the Secret that holds it.
    #[serde(skip)]
    config_label: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Info {
    #[serde(default)]
    last_deployed: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    status: String,
}

#[derive(Debug, Default, Deserialize)]
struct Chart {
    #[serde(default)]
    metadata: Metadata,
}

#[derive(Debug, Default, Deserialize)]
struct Metadata {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
    #[serde(default, rename = "appVersion")]
    app_version: String,
}

#[derive(Debug, Deserialize)]
struct Hook {
    #[serde(default)]
    path: String,
    #[serde(default)]
    manifest: String,
}

/// A record from a line of `Kubectl::helm_records`: the `helm-envs/config` label (maybe
/// empty), a space, the `release` data.
pub fn decode_line(line: &str) -> Result<Record, String> {
    let (label, data) = line.split_once(' ').unwrap_or(("", line));
    let mut record = decode(data)?;
    record.config_label = Some(label.to_string()).filter(|l| !l.is_empty());
    Ok(record)
}

/// A record from the Secret's `release` data as kubectl prints it: base64 (the Secret's
/// encoding) of base64 (helm's) of gzipped (or, from old helms, plain) JSON.
pub fn decode(data: &str) -> Result<Record, String> {
    let engine = base64::engine::general_purpose::STANDARD;
    let helm_text = engine.decode(data.trim()).map_err(|e| format!("not base64: {e}"))?;
    let bytes = engine.decode(helm_text.trim_ascii()).map_err(|e| format!("not helm's base64: {e}"))?;
    let json = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut json = Vec::new();
        GzDecoder::new(bytes.as_slice()).read_to_end(&mut json).map_err(|e| format!("not gzip: {e}"))?;
        json
    } else {
        bytes
    };
    serde_json::from_slice(&json).map_err(|e| format!("not a helm release: {e}"))
}

/// A release as deployed now, from its records (any order): the latest revision, its
/// user-supplied values, and its history oldest first. `None` when there is no record.
pub struct Deployed {
    pub installed: Installed,
    pub values: serde_json::Map<String, serde_json::Value>,
    pub history: Vec<Revision>,
}

pub fn deployed(mut records: Vec<Record>) -> Option<Deployed> {
    records.sort_by_key(|r| r.revision);
    let history: Vec<Revision> = records.iter().map(Record::revision).collect();
    let history = history[history.len().saturating_sub(HISTORY_MAX)..].to_vec();
    let latest = records.pop()?;
    // As `helm get all --template` prints the hooks (see INSTALLED_TEMPLATE).
    let hooks: String = latest.hooks.iter().map(|h| format!("\n---\n# Source: {}\n{}\n", h.path, h.manifest)).collect();
    crate::redaction::rendered(&latest.manifest);
    crate::redaction::rendered(&hooks);
    Some(Deployed {
        installed: Installed {
            revision: latest.revision,
            status: latest.info.status.clone(),
            chart: latest.chart_name(),
            manifest: latest.manifest,
            hooks,
            config_label: latest.config_label,
        },
        values: latest.config.unwrap_or_default(),
        history,
    })
}

impl Record {
    fn chart_name(&self) -> String {
        format!("{}-{}", self.chart.metadata.name, self.chart.metadata.version)
    }

    /// As `helm history -o json` shows it.
    fn revision(&self) -> Revision {
        Revision {
            revision: self.revision,
            updated: self.info.last_deployed.clone(),
            status: self.info.status.clone(),
            chart: self.chart_name(),
            app_version: self.chart.metadata.app_version.clone(),
            description: self.info.description.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write as _;

    /// A record encoded as helm stores it and kubectl prints it.
    fn stored(json: &serde_json::Value) -> String {
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(json.to_string().as_bytes()).expect("gzip");
        let engine = base64::engine::general_purpose::STANDARD;
        engine.encode(engine.encode(gz.finish().expect("gzip")))
    }

    fn release(revision: u64, status: &str) -> serde_json::Value {
        serde_json::json!({
            "name": "web", "version": revision, "namespace": "acme",
            "info": {"status": status, "description": format!("rev {revision}"),
                     "last_deployed": "2026-11-26T10:35:11.098851754Z", "first_deployed": "x"},
            "chart": {"metadata": {"name": "acme-web", "version": "1.4.2", "appVersion": "2.7.0"}},
            "config": {"replicaCount": revision},
            "manifest": "---\n# Source: acme-web/templates/cm.yaml\nkind: ConfigMap\n",
            "hooks": [{"name": "db", "kind": "Job", "path": "acme-web/templates/job.yaml", "manifest": "kind: Job"}],
        })
    }

    #[test]
    fn the_latest_revision_is_what_helm_get_prints_and_the_rest_is_history() {
        let records = [release(2, "deployed"), release(1, "superseded")]
            .iter()
            .map(|r| decode(&stored(r)).expect("decodes"))
            .collect();
        let deployed = deployed(records).expect("installed");
        assert_eq!(deployed.installed.revision, 2);
        assert_eq!(deployed.installed.config_label, None);
        assert_eq!(
            (deployed.installed.status.as_str(), deployed.installed.chart.as_str()),
            ("deployed", "acme-web-1.4.2")
        );
        assert_eq!(deployed.installed.hooks, "\n---\n# Source: acme-web/templates/job.yaml\nkind: Job\n");
        assert_eq!(deployed.values["replicaCount"], 2);
        let history: Vec<(u64, &str)> = deployed.history.iter().map(|r| (r.revision, r.status.as_str())).collect();
        assert_eq!(history, [(1, "superseded"), (2, "deployed")]);
        assert_eq!(deployed.history[1].description, "rev 2");
        assert_eq!(deployed.history[1].app_version, "2.7.0");
        assert!(super::deployed(Vec::new()).is_none());
    }

    #[test]
    fn a_record_without_values_or_hooks_and_unreadable_data() {
        let bare = serde_json::json!({"name": "w", "version": 1, "info": {"status": "failed"}, "chart": {"metadata": {"name": "c", "version": "0.1.0"}}});
        let deployed = deployed(vec![decode(&stored(&bare)).expect("decodes")]).expect("installed");
        assert!(deployed.values.is_empty() && deployed.installed.hooks.is_empty());
        assert!(decode("not base64!").is_err());
        let labelled = decode_line(&format!("1.abc {}", stored(&bare))).expect("decodes");
        assert_eq!(labelled.config_label.as_deref(), Some("1.abc"));
        assert_eq!(decode_line(&format!(" {}", stored(&bare))).expect("decodes").config_label, None);
        let engine = base64::engine::general_purpose::STANDARD;
        assert!(decode(&engine.encode(engine.encode(b"{\"not\": \"a release\"}"))).is_err());
    }
}
