# Sourced by scripts/testbed.sh: Argo CD as local processes, as its own Procfile runs it (Redis,
# the repo-server and the application controller, all on 127.0.0.1), deploying to the clusters
# `up` started. Its CRDs, configuration and AppProject live in the first cluster named (the
# management cluster); every cluster is registered under its own name with a cluster Secret.
# Git: bare repositories under $RUN/argocd/git, read by the repo-server with file:// URLs.
# shellcheck shell=bash

# The label Argo CD finds its configuration and cluster Secrets by.
ARGOCD_PART_OF="app.kubernetes.io/part-of=argocd"
# The iptables comment of the rule that keeps the controller's metrics port to loopback.
ARGOCD_RULE="helm-envs-testbed-argocd"

argocd_up() {
    local mgmt=$1 d="$RUN/argocd"
    if [ -f "$d/controller.pid" ] && alive "$(cat "$d/controller.pid")"; then
        return
    fi
    [ -x "$ARGOCD_DIR/bin/argocd" ] || { step="argocd" fail "Argo CD is not installed: run scripts/testbed.sh install"; }
    command -v redis-server >/dev/null || { step="argocd" fail "redis-server is missing: run scripts/testbed.sh install"; }
    rm -rf "$d" && mkdir -p "$d/git" "$d/tls" "$d/ssh" "$d/gpg" "$d/home"
    local kubectl=("$K8S_BIN/kubectl" --kubeconfig "$RUN/kubeconfig" --context "$mgmt")
    "${kubectl[@]}" config view --raw --minify --flatten >"$d/kubeconfig"
    chmod 600 "$d/kubeconfig"
    run "argocd: CRDs and configuration in cluster $mgmt" "$d/setup.log" argocd_configure "$mgmt"
    local redis_port repo_port repo_metrics controller_metrics
    redis_port=$(free_port) repo_port=$(free_port) repo_metrics=$(free_port) controller_metrics=$(free_port)
    echo "$redis_port" >"$d/redis.port"
    echo "$repo_metrics" >"$d/repo-metrics.port"
    start "$d" redis redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no
    # The repo-server renders with the test bed's Helm 4 (the Helm Argo CD v3.6 ships) and runs
    # git through the wrapper it always calls; it trusts the test bed's CA (charts, registry).
    start "$d" repo-server env HOME="$d/home" PATH="$ARGOCD_DIR/bin:$HELM4_BIN:$PATH" \
        SSL_CERT_FILE="$RUN/pki/ca-bundle.crt" ARGOCD_BINARY_NAME=argocd-repo-server ARGOCD_GPG_ENABLED=false \
        ARGOCD_TLS_DATA_PATH="$d/tls" ARGOCD_SSH_DATA_PATH="$d/ssh" ARGOCD_GNUPGHOME="$d/gpg" \
        "$ARGOCD_DIR/bin/argocd" --address 127.0.0.1 --port "$repo_port" --redis "127.0.0.1:$redis_port" \
        --disable-tls --client-ca-path '' --metrics-address 127.0.0.1 --metrics-port "$repo_metrics"
    # The controller's metrics listener binds every address, IPv4 and IPv6 (no flag moves it):
    # rules keep it to loopback while it runs.
    local tables
    for tables in iptables ip6tables; do
        "$tables" -I INPUT -p tcp --dport "$controller_metrics" ! -i lo -j DROP -m comment --comment "$ARGOCD_RULE"
    done
    echo "$controller_metrics" >"$d/controller-metrics.port"
    start "$d" controller env HOME="$d/home" KUBECONFIG="$d/kubeconfig" ARGOCD_FAKE_IN_CLUSTER=true \
        ARGOCD_BINARY_NAME=argocd-application-controller ARGOCD_TLS_DATA_PATH="$d/tls" ARGOCD_SSH_DATA_PATH="$d/ssh" \
        "$ARGOCD_DIR/bin/argocd" --kubeconfig "$d/kubeconfig" --namespace argocd --redis "127.0.0.1:$redis_port" \
        --repo-server "127.0.0.1:$repo_port" --repo-server-plaintext --metrics-port "$controller_metrics" \
        --app-resync 10 --self-heal-timeout-seconds 2
    echo "$mgmt" >"$d/management"
    wait_for_argocd "$d"
}

# The management cluster's side: the CRDs (server-side: they are large), the namespace, the
# configuration Argo CD reads at start, the `default` AppProject, and a cluster Secret per
# test-bed cluster, named as its context.
argocd_configure() {
    local mgmt=$1 kubectl=("$K8S_BIN/kubectl" --kubeconfig "$RUN/kubeconfig" --context "$1") dir name
    "${kubectl[@]}" apply --server-side -f "$ARGOCD_DIR/crds/"
    "${kubectl[@]}" create namespace argocd --dry-run=client -o yaml | "${kubectl[@]}" apply -f -
    "${kubectl[@]}" wait --for condition=established --timeout=60s crd/applications.argoproj.io crd/appprojects.argoproj.io
    local ca cert key
    ca=$(base64 -w0 "$RUN/pki/ca.crt") cert=$(base64 -w0 "$RUN/pki/admin.crt") key=$(base64 -w0 "$RUN/pki/admin.key")
    {
        cat <<YAML
apiVersion: v1
kind: ConfigMap
metadata: {name: argocd-cm, namespace: argocd, labels: {app.kubernetes.io/name: argocd-cm, app.kubernetes.io/part-of: argocd}}
data:
  timeout.reconciliation: 10s
---
apiVersion: v1
kind: Secret
metadata: {name: argocd-secret, namespace: argocd, labels: {app.kubernetes.io/name: argocd-secret, app.kubernetes.io/part-of: argocd}}
stringData:
  server.secretkey: $(openssl rand -hex 32)
---
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: default, namespace: argocd}
spec:
  sourceRepos: ["*"]
  destinations: [{namespace: "*", server: "*"}]
  clusterResourceWhitelist: [{group: "*", kind: "*"}]
YAML
        for dir in "$RUN"/clusters/*/; do
            name=$(basename "$dir")
            cat <<YAML
---
apiVersion: v1
kind: Secret
metadata:
  name: cluster-$name
  namespace: argocd
  labels: {argocd.argoproj.io/secret-type: cluster, app.kubernetes.io/part-of: argocd}
stringData:
  name: $name
  server: https://127.0.0.1:$(cat "$dir/port")
  config: '{"tlsClientConfig": {"caData": "$ca", "certData": "$cert", "keyData": "$key"}}'
YAML
        done
    } | "${kubectl[@]}" apply -f -
}

# Both servers answer their health checks (the controller's once its caches are synced).
wait_for_argocd() {
    local d=$1 p
    for _ in $(seq 1 240); do
        for p in redis repo-server controller; do
            alive "$(cat "$d/$p.pid")" || { step="argocd: $p" log="$d/$p.log" fail "Argo CD's $p stopped"; }
        done
        curl -fsS "http://127.0.0.1:$(cat "$d/controller-metrics.port")/healthz" >/dev/null 2>&1 &&
            curl -fsS "http://127.0.0.1:$(cat "$d/repo-metrics.port")/healthz" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    step="argocd" log="$d/controller.log" fail "Argo CD did not become ready within 120 s"
}

argocd_down() {
    local d="$RUN/argocd" port tables
    [ -d "$d" ] || return 0
    stop "$d/controller.pid" "$d/repo-server.pid" "$d/redis.pid"
    if [ -f "$d/controller-metrics.port" ]; then
        port=$(cat "$d/controller-metrics.port")
        for tables in iptables ip6tables; do
            while "$tables" -D INPUT -p tcp --dport "$port" ! -i lo -j DROP -m comment --comment "$ARGOCD_RULE" 2>/dev/null; do :; done
        done
    fi
    rm -rf "$d"
}

argocd_status() {
    local d="$RUN/argocd"
    if [ -f "$d/controller.pid" ] && alive "$(cat "$d/controller.pid")"; then
        echo "argocd: up $ARGOCD_VERSION (management cluster $(cat "$d/management"); git: $d/git)"
    else
        echo "argocd: down"
    fi
}
