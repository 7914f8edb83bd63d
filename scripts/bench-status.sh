#!/usr/bin/env bash
# `status` of one stage of many releases (issue target: 300 releases within 5 s and 200 MiB).
# Deploys RELEASES releases of benches/fleet/svc into stage dev with `helm-envs apply --yes`,
# then times `status`, `upgrade dev --dry-run` and `upgrade dev --yes` (nothing to change) and,
# for comparison, `helmfile status` and a `helm status` loop over the same releases.
#   scripts/bench-status.sh [RUNS] [RELEASES]   (default 3 runs, 300 releases; starts clusters
#       in .tools/bench-testbed and stops them; the peers as for scripts/bench-fleet.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
export HELM_ENVS_HELM=${HELM_ENVS_HELM:-3}
runs=${1:-3}
count=${2:-300}
eval "$(scripts/testbed.sh peers)"
source scripts/bench-clusters.sh
export PATH="$(dirname "$bin"):$PATH"

cd "$work"
mkdir -p charts envs/dev
cp -R "$repo/benches/fleet/svc" charts/
names=$(seq -f 'svc-%03g' 1 "$count")
{
    printf 'stages:\n  - name: dev\n    kubeContext: dev\n    namespace: many\nreleases:\n'
    for name in $names; do printf '  - name: %s\n    chart: ./charts/svc\n    values: ["envs/{stage}/%s.yaml"]\n' "$name" "$name"; done
} >helm-envs.yaml
{
    printf 'helmDefaults:\n  kubeContext: dev\nreleases:\n'
    for name in $names; do printf '  - name: %s\n    namespace: many\n    chart: ./charts/svc\n    values: [envs/dev/%s.yaml]\n' "$name" "$name"; done
} >helmfile.yaml
# Headless Services: a test cluster's service range (a /24) holds fewer than 300 addresses.
for name in $names; do printf 'logLevel: info\nclusterIP: None\n' >"envs/dev/$name.yaml"; done
for name in $names; do echo "helm status $name --namespace many --kube-context dev >/dev/null"; done >status-loop.sh
kubectl --context dev create namespace many >/dev/null
kubectl --context dev --namespace many create secret generic fleet-db --from-literal=url=bench-only >/dev/null

start=$(date +%s%N)
helm-envs apply --yes >/dev/null
echo "deployed $count releases in one stage (apply --yes, first install): $(( ($(date +%s%N) - start) / 1000000 )) ms"
echo "helm $(helm version --template '{{.Version}}'), helmfile $(helmfile --version 2>/dev/null | awk '{print $NF}'), $(nproc) cores, median of $runs runs"
echo
tab=$'\t'
{
    echo "helm-envs status${tab}helm-envs status"
    echo "helm-envs upgrade dev --dry-run${tab}helm-envs upgrade dev --dry-run"
    echo "helm-envs upgrade dev --yes (nothing to change)${tab}helm-envs upgrade dev --yes"
    echo "helmfile status${tab}helmfile status"
    echo "loop: helm status, per release${tab}bash status-loop.sh"
} | python3 "$repo/scripts/bench_measure.py" "$runs"
