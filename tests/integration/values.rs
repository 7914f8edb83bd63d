//! Values are read and merged exactly as helm reads and merges them: a values file full of
//! YAML 1.1 and merge traps, compared with what real helm gives the chart's templates.

use serde_json::Value;

use crate::harness::{Project, stdout_of};

const DEFAULTS: &str = r#"
defaults:
  keep: 1
  removeMe: 2
  list: [1, 2, 3]
  nested: {a: 1, b: 2}
onlyDefault: x
replaced: {a: 1}
overriddenByNull: here
"#;

const SHARED: &str = r#"
# YAML 1.1 booleans, as go-yaml v2 reads them
b1: yes
b2: No
b3: on
b4: OFF
b5: y
b6: N
b8: "yes"
b9: True
# numbers
o1: 0777
o2: 0o17
o3: 0x1F
u1: 1_000
f1: 1.5e3
s2: 012345678
s3: 1.0
# strings that look like something else
s1: 1:30
dt: 2001-12-14
quotedNumber: "0777"
# keys are strings in Helm
k:
  yes: a
  1: b
# anchors and merge keys
base: &base {cpu: 100m, memory: 64Mi}
derived:
  <<: *base
  memory: 128Mi
# block scalars
script: |
  #!/bin/sh
  echo hi
folded: >
  one
  two
defaults:
  list: [9]
  nested: {b: 3, c: 4}
"#;

const STAGE: &str = r#"
defaults:
  removeMe: null
  brandNew: null
  nested: {c: 5}
overriddenByNull: null
replaced: 5
newNull: ~
"#;

fn numbers_as_f64(value: Value) -> Value {
    match value {
        Value::Number(n) => serde_json::json!(n.as_f64().expect("number")),
        Value::Array(items) => Value::Array(items.into_iter().map(numbers_as_f64).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, numbers_as_f64(v))).collect()),
        other => other,
    }
}

#[test]
fn merged_values_equal_what_helm_computes() {
    let project = Project::empty();
    project
        .write("charts/dump/Chart.yaml", "apiVersion: v2\nname: dump\nversion: 0.1.0\n")
        .write("charts/dump/values.yaml", DEFAULTS)
        .write("charts/dump/templates/values.json", "{{ toJson .Values }}\n")
        .write("values/shared.yaml", SHARED)
        .write("envs/dev/dump.yaml", STAGE)
        .write(
            "helm-envs.yaml",
            "stages:\n  - name: dev\n    kubeContext: dev\n    namespace: dump\nreleases:\n  - name: dump\n    chart: ./charts/dump\n    values: [values/shared.yaml, \"envs/{stage}/dump.yaml\"]\n",
        );

    // What helm computes, rendered through helm-envs.
    let output = project.helm_envs(&["render", "dev"]).output().expect("runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let rendered = stdout_of(&output);
    let json_line = rendered.lines().find(|l| l.starts_with('{')).expect("the dumped values");
    let from_helm: Value = serde_json::from_str(json_line).expect("helm's JSON");

    // What helm-envs computes.
    let stages = helm_envs::config::stages::Project::load(&project.path("helm-envs.yaml")).expect("valid project");
    let target = stages.target(&stages.stages[0], &stages.releases[0]);
    let defaults =
        helm_envs::config::yaml::parse_values(DEFAULTS, std::path::Path::new("values.yaml")).expect("defaults");
    let ours = helm_envs::config::values::coalesce_with_defaults(stages.merged_values(&target), &defaults);

    assert_eq!(numbers_as_f64(Value::Object(ours)), numbers_as_f64(from_helm.clone()));
    // And the traps did what Helm does (so this test fails if both sides were wrong the same way).
    assert_eq!(from_helm["b5"], true);
    assert_eq!(from_helm["o1"], 511);
    assert_eq!(from_helm["k"]["true"], "a");
    assert_eq!(from_helm["defaults"]["list"], serde_json::json!([9]));
    assert_eq!(from_helm["defaults"]["nested"], serde_json::json!({"a": 1, "b": 3, "c": 5}));
    assert!(from_helm["defaults"].get("removeMe").is_none());
    assert!(from_helm.get("overriddenByNull").is_none());
    assert_eq!(from_helm["newNull"], Value::Null);
    assert_eq!(from_helm["derived"]["cpu"], "100m");
}
