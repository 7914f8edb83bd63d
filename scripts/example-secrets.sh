#!/usr/bin/env bash
# Creates the Secrets the bundled example's manifests reference (acme-db, payments-credentials,
# acme-client-tls, acme-registry), with placeholder values, in every stage's namespace of
# examples/acme (on each cluster of a stage on several), creating the namespaces too. Idempotent. Run from examples/acme (or give the
# stages file with HELM_ENVS_CONFIG); needs helm-envs (or `helm envs`) and kubectl.
#   --skip NAME@STAGE   leave one Secret out of one stage (repeatable), to see a gate refuse
set -euo pipefail

skip=()
while [ $# -gt 0 ]; do
    case "$1" in
        --skip) skip+=("$2"); shift 2 ;;
        *) echo "usage: $0 [--skip NAME@STAGE]..." >&2; exit 1 ;;
    esac
done

if command -v helm-envs >/dev/null; then envs=(helm-envs); else envs=(helm envs); fi
stages=$("${envs[@]}" list -o json | python3 -c '
import json, sys
for stage in json.load(sys.stdin)["stages"]:
    # A stage on several clusters: every cluster of it (shown as stage/cluster).
    for where in stage.get("clusters") or [stage]:
        label = stage["name"] + ("/" + where["name"] if "clusters" in stage else "")
        print(stage["name"], label, where["kubeContext"], where["namespace"])')

while read -r stage label context namespace; do
    kubectl --context "$context" get namespace "$namespace" >/dev/null 2>&1 ||
        kubectl --context "$context" create namespace "$namespace" >/dev/null
    created=()
    for secret in "acme-db url password" "payments-credentials api-key" \
                  "acme-client-tls tls.crt tls.key" "acme-registry .dockerconfigjson"; do
        set -- $secret
        name=$1; shift
        [[ " ${skip[*]-} " == *" $name@$stage "* ]] && continue
        literals=()
        for key in "$@"; do literals+=("--from-literal=$key=placeholder"); done
        kubectl --context "$context" --namespace "$namespace" create secret generic "$name" "${literals[@]}" \
            --dry-run=client -o yaml | kubectl --context "$context" apply -f - >/dev/null
        created+=("$name")
    done
    echo "$label: ${created[*]} in namespace $namespace"
done <<< "$stages"
