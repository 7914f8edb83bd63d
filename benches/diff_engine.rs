//! The diff engine on a large release: two renderings of 10,000 Deployments (~7.6 MB each) of
//! which 100 differ. Times parse + match + diff + format (text and JSON), in one namespace and
//! across two (as `diff --from --to` compares stages), reports peak memory (VmHWM), and times
//! `diff -u` on the same pair for scale.
//!
//!   cargo bench --bench diff_engine            (prints figures; no assertions)

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use helm_envs::compare::diff::{self, Comparison};
use helm_envs::compare::manifest::{self, Namespaces};
use helm_envs::inspect::diff::{Mode, ReleaseReport, Report, Sections};
use helm_envs::output::report;

const RESOURCES: usize = 10_000;
const CHANGED_EVERY: usize = 100;
const RUNS: usize = 5;

fn deployment(i: usize, tag: &str, namespace: &str) -> String {
    format!(
        "---
# Source: fleet/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: svc-{i:05}
  namespace: {namespace}
  labels:
    app.kubernetes.io/name: svc-{i:05}
    app.kubernetes.io/instance: fleet
    helm.sh/chart: fleet-1.0.0
spec:
  replicas: 2
  selector:
    matchLabels:
      app.kubernetes.io/name: svc-{i:05}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: svc-{i:05}
    spec:
      containers:
        - name: app
          image: \"registry.example.com/fleet/app:{tag}\"
          ports:
            - containerPort: 8080
          env:
            - name: LOG_LEVEL
              value: info
          resources:
            requests: {{cpu: 100m, memory: 128Mi}}
            limits: {{cpu: 500m, memory: 256Mi}}
"
    )
}

/// Two renderings, the old one for namespace `old_namespace`, the new one for `fleet`.
fn generate(old_namespace: &str) -> (String, String) {
    let old = (0..RESOURCES).map(|i| deployment(i, "1.0.0", old_namespace)).collect();
    let new = (0..RESOURCES)
        .map(|i| deployment(i, if i % CHANGED_EVERY == 0 { "1.1.0" } else { "1.0.0" }, "fleet"))
        .collect();
    (old, new)
}

fn report(comparison: Comparison) -> Report {
    Report {
        mode: Mode::Live { stage: "bench".into() },
        releases: vec![ReleaseReport {
            release: "fleet".into(),
            namespace: "fleet".into(),
            context: "bench".into(),
            sections: Sections::Live {
                installed: None,
                argocd: None,
                comparison,
                values: Vec::new(),
                regenerated: Vec::new(),
                chart_change: None,
            },
        }],
        unmanaged: Vec::new(),
        ignored: Vec::new(),
    }
}

/// Parse both sides, match, diff, and format as text and JSON; returns the output sizes.
fn diff_pair(old: &str, new: &str, old_namespace: &str) -> (usize, usize) {
    let pair = manifest::parse_pair_across(old, new, Namespaces { old: old_namespace, new: "fleet" }).unwrap();
    let mut comparison = diff::compare(pair.old, pair.new, &diff::Options::default());
    comparison.unchanged += pair.identical;
    assert_eq!(comparison.plan().change, RESOURCES / CHANGED_EVERY);
    let report = report(comparison);
    let text = report::text(&report, 3);
    let json = serde_json::to_string(&report::json(&report)).unwrap();
    (text.len(), json.len())
}

/// The same work without the identical-document shortcut: every document parsed.
fn diff_full_parse(old: &str, new: &str) -> usize {
    let comparison = diff::compare(
        manifest::parse(old, "fleet").unwrap(),
        manifest::parse(new, "fleet").unwrap(),
        &diff::Options::default(),
    );
    report::text(&report(comparison), 3).len()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut samples = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        last = Some(f());
        samples.push(start.elapsed());
    }
    (median(samples), last.unwrap())
}

/// Peak resident memory of this process so far (Linux), in MiB.
fn peak_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() {
    let (old, new) = generate("fleet");
    let baseline = peak_mib().unwrap_or(0.0);
    println!(
        "diff engine: {RESOURCES} Deployments per side ({:.1} MB and {:.1} MB), {} changed; median of {RUNS} runs, {} cores",
        old.len() as f64 / 1e6,
        new.len() as f64 / 1e6,
        RESOURCES / CHANGED_EVERY,
        std::thread::available_parallelism().map_or(1, usize::from)
    );

    let (elapsed, (text, json)) = time(RUNS, || diff_pair(&old, &new, "fleet"));
    let peak = peak_mib().unwrap_or(0.0);
    println!(
        "  parse + match + diff + text + JSON   {:>7.1} ms   (text {} KB, JSON {} KB)",
        ms(elapsed),
        text / 1000,
        json / 1000
    );
    println!("  peak memory (VmHWM)                  {peak:>7.1} MiB (of which {baseline:.1} MiB the two inputs)");

    // Two stages' renderings (`diff --from --to`): the old side in a namespace of its own.
    let (dev, _) = generate("fleet-dev");
    let (elapsed, _) = time(RUNS, || diff_pair(&dev, &new, "fleet-dev"));
    println!("  same, the two sides' namespaces differ {:>5.1} ms", ms(elapsed));
    println!("  peak memory (VmHWM)                  {:>7.1} MiB", peak_mib().unwrap_or(0.0));
    drop(dev);

    let (elapsed, _) = time(1, || diff_full_parse(&old, &new));
    println!("  same, every document parsed          {:>7.1} ms   (no identical-document shortcut)", ms(elapsed));
    let (elapsed, _) = time(1, || manifest::parse(&new, "fleet").unwrap().len());
    println!("  parse one side in full (first install) {:>5.1} ms", ms(elapsed));
    println!("  peak memory after full parses        {:>7.1} MiB", peak_mib().unwrap_or(0.0));

    match diff_u(&old, &new) {
        Ok(elapsed) => println!("  diff -u on the same two files        {:>7.1} ms", ms(elapsed)),
        Err(err) => println!("  diff -u: not run ({err})"),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn diff_u(old: &str, new: &str) -> std::io::Result<Duration> {
    let dir = tempfile::tempdir()?;
    let (a, b) = (dir.path().join("old.yaml"), dir.path().join("new.yaml"));
    std::fs::write(&a, old)?;
    std::fs::write(&b, new)?;
    let (elapsed, out) = time(RUNS, || std::process::Command::new("diff").arg("-u").arg(&a).arg(&b).output());
    out?;
    Ok(elapsed)
}
