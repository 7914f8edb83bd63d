use std::time::Instant;
fn deployment(i: usize, image: &str) -> String {
    format!(
        "---
# Source: fleet/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: svc-{i:05}
  namespace: fleet
  labels:
    app.kubernetes.io/name: svc-{i:05}
    app.kubernetes.io/instance: fleet
    app.kubernetes.io/managed-by: Helm
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
          image: \"{image}\"
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
fn main() {
    let old: String = (0..10_000).map(|i| deployment(i, "registry.example.com/fleet/app:1.0.0")).collect();
    let t = Instant::now();
    let m = helm_envs::manifest::parse(&old, "fleet").unwrap();
    eprintln!("{} bytes, {} resources, parse {:?}", old.len(), m.len(), t.elapsed());
    probe(&old);
}
#[allow(dead_code)]
fn probe(old: &str) {
    let docs: Vec<&str> = old.split("---\n").filter(|d| !d.is_empty()).collect();
    let t = Instant::now();
    for d in &docs {
        let _: serde::de::IgnoredAny = serde_saphyr::from_str_with_options(d, helm_envs::yaml::helm_options()).unwrap();
    }
    eprintln!("ignored any {:?}", t.elapsed());
    let t = Instant::now();
    for d in &docs {
        let _: serde::de::IgnoredAny = serde_saphyr::from_str(d).unwrap();
    }
    eprintln!("ignored any default opts {:?}", t.elapsed());
    let t = Instant::now();
    for d in &docs {
        let _: serde_json::Value = serde_saphyr::from_str(d).unwrap();
    }
    eprintln!("json value default {:?}", t.elapsed());
    let t = Instant::now();
    let _: Vec<serde::de::IgnoredAny> =
        serde_saphyr::from_multiple_with_options(old, helm_envs::yaml::helm_options()).unwrap();
    eprintln!("multiple ignored {:?}", t.elapsed());
}
