#!/usr/bin/env bash
# `make demo`: the bundled example (examples/acme) on three local clusters, through the real
# `helm envs` plugin. Leaves the clusters running for you to explore; `make demo-down` stops them.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }

scripts/testbed.sh install
say "Starting three clusters: dev, staging, production (127.0.0.1 only)"
scripts/testbed.sh up dev staging production
eval "$(scripts/testbed.sh env)"

say "Installing the plugin into a private HELM_PLUGINS"
export HELM_PLUGINS="$repo/.tools/helm-plugins"
rm -rf "$HELM_PLUGINS" && mkdir -p "$HELM_PLUGINS"
export CARGO_TARGET_DIR="$repo/target"
run helm plugin install "$repo"

cd examples/acme
for stage in dev staging production; do
    run kubectl --context "$stage" get namespace kube-system -o name
done

say "The stages and releases, as helm-envs resolves them"
run helm envs list

for stage in dev staging production; do
    say "Rendering $stage (both releases in parallel; summary of what helm template printed)"
    run helm envs render "$stage" > "$repo/.tools/demo-$stage.yaml"
    grep -E '^(kind|  namespace|  name):' "$repo/.tools/demo-$stage.yaml" | paste - - - | sort | uniq -c | sed 's/^/   /'
done

say "What a deploy of dev would change (a release not installed yet is all additions)"
run helm envs diff dev -o summary

say "How staging and production differ, documented (envSpecific) apart from undocumented"
run helm envs diff --from staging --to production --release web -o summary
run helm envs diff --from staging --to production --release web --context 1 | sed -n '1,25p'

say "The Secrets the manifests reference: created in dev and staging, one forgotten in production"
for stage in dev staging production; do
    namespace=$(helm envs list -o json | python3 -c "import json,sys; print([s['namespace'] for s in json.load(sys.stdin)['stages'] if s['name']=='$stage'][0])")
    kubectl --context "$stage" get namespace "$namespace" >/dev/null 2>&1 ||
        kubectl --context "$stage" create namespace "$namespace" >/dev/null
    for secret in "acme-db url password" "payments-credentials api-key" "acme-client-tls tls.crt tls.key" "acme-registry .dockerconfigjson"; do
        set -- $secret
        name=$1; shift
        [ "$stage" = production ] && [ "$name" = payments-credentials ] && continue
        literals=(); for key in "$@"; do literals+=("--from-literal=$key=demo-only"); done
        kubectl --context "$stage" --namespace "$namespace" create secret generic "$name" "${literals[@]}" \
            --dry-run=client -o yaml | kubectl --context "$stage" apply -f - >/dev/null
    done
done
run helm envs check-secrets staging --release web
run helm envs check-secrets production --release web || echo "   (exit $?: production would be refused until payments-credentials exists)"

say "Done. Clusters are still running: source <(scripts/testbed.sh env) to use them; make demo-down stops them."
