#!/usr/bin/env bash
# What a `needs` graph saves on a stage's deploy: the wall time of a first `upgrade dev --yes` of
# RELEASES releases of benches/fleet/svc (6 resources each) in file order (no `needs`: one after
# another) against the same releases with a three-level graph (a quarter of the first tenth
# need nothing, ... see below), side by side within --jobs. Two kinds of release: no Pods (the
# time is helm's), and one Pod each (the time is mostly the readiness wait). Each run deploys
# into a fresh namespace, deleted afterwards.
#   scripts/bench-needs.sh [RUNS] [RELEASES]   (default 1 run, 40 releases; starts clusters of
#       its own in .tools/bench-testbed and stops them; builds helm-envs --release)
# The graph: releases 1-4 need nothing; 5-16 each need one of 1-4; the rest each need one of
# 5-16 (three levels, every release of a level but the first waits for one of the level above).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
runs=${1:-1}
count=${2:-40}
source scripts/bench-clusters.sh
export PATH="$(dirname "$bin"):$PATH"
mkdir -p "$work/charts" "$work/values"
cp -R benches/fleet/svc "$work/charts/"
cd "$work"
names=$(seq -f 'svc-%02g' 1 "$count")

# stages_file ORDER PODS NAMESPACE: the stages file, with or without `needs`.
stages_file() {
    local order=$1 pods=$2 namespace=$3 i=0
    printf 'stages:\n  - name: dev\n    kubeContext: dev\n    namespace: %s\n    createNamespace: true\n' "$namespace"
    printf 'releases:\n'
    for name in $names; do
        i=$((i + 1))
        printf '  - name: %s\n    chart: ./charts/svc\n    values: [values/pods-%s.yaml]\n' "$name" "$pods"
        if [ "$order" = needs ] && [ "$i" -gt 4 ]; then
            if [ "$i" -le 16 ]; then need=$(( (i - 5) % 4 + 1 )); else need=$(( (i - 17) % 12 + 5 )); fi
            printf '    needs: [svc-%02d]\n' "$need"
        fi
    done
}
printf 'replicaCount: 0\n' >values/pods-0.yaml
printf 'replicaCount: 1\n' >values/pods-1.yaml

# run_once ORDER PODS SUFFIX: milliseconds of one first deploy.
run_once() {
    local order=$1 pods=$2 namespace="needs-$1-$2-$3"
    stages_file "$order" "$pods" "$namespace" >helm-envs.yaml
    kubectl --context dev create namespace "$namespace" >/dev/null
    kubectl --context dev --namespace "$namespace" create secret generic fleet-db --from-literal=url=bench-only >/dev/null
    local start end
    start=$(date +%s%N)
    helm-envs upgrade dev --yes >"$work/out-$namespace.log" 2>&1 || { cat "$work/out-$namespace.log" >&2; exit 1; }
    end=$(date +%s%N)
    kubectl --context dev delete namespace "$namespace" --wait=true >/dev/null 2>&1
    echo $(( (end - start) / 1000000 ))
}

median() { python3 -c 'import statistics,sys; print(int(statistics.median(int(x) for x in sys.argv[1:])))' "$@"; }

echo "# $(date -u +%Y-%m-%dT%H:%MZ), helm $(helm version --short), $(nproc) cores, --jobs default ($(( $(nproc) * 4 < 4 ? 4 : $(nproc) * 4 )))"
printf '%-52s %12s %12s %8s\n' "first deploy of $count releases (ms)" "file order" "needs graph" "ratio"
for pods in 0 1; do
    declare -a file=() graph=()
    for i in $(seq 1 "$runs"); do
        file+=("$(run_once file "$pods" "$i")")
        graph+=("$(run_once needs "$pods" "$i")")
    done
    f=$(median "${file[@]}") g=$(median "${graph[@]}")
    label=$([ "$pods" = 0 ] && echo "no Pods (helm only)" || echo "one Pod each (with readiness wait)")
    printf '%-52s %12s %12s %8s\n' "$label, median of $runs" "$f" "$g" "$(python3 -c "print(f'{$f/$g:.1f}x')")"
done
