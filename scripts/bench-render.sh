#!/usr/bin/env bash
# Wall time of `helm-envs render STAGE` (releases in parallel) against the sequential
# `helm template` commands a user would run by hand for the same stage.
#   scripts/bench-render.sh [STAGE] [RUNS]      (default: staging, 10 runs; needs `make build`
#                                                and scripts/testbed.sh install)
set -euo pipefail
cd "$(dirname "$0")/.."
stage=${1:-staging}
runs=${2:-10}
eval "$(scripts/testbed.sh env)"
bin=$(pwd)/target/release/helm-envs
[ -x "$bin" ] || cargo build --release --locked --quiet
cd examples/acme

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }

sequential() {
    for release in web worker; do
        helm template "$release" ../../charts/acme-web --namespace "$(ns)" --kube-context "$stage" \
            -f "values/$release.yaml" -f "envs/$stage/$release.yaml"
    done
}
ns() { "$bin" list -o json | python3 -c "import json,sys; print([s['namespace'] for s in json.load(sys.stdin)['stages'] if s['name']=='$stage'][0])"; }
namespace=$(ns)
ns() { echo "$namespace"; }

ms "$bin" render "$stage" >/dev/null # warm the file cache
a=$(for _ in $(seq "$runs"); do ms "$bin" render "$stage"; done | median)
b=$(for _ in $(seq "$runs"); do ms sequential; done | median)
echo "stage $stage, 2 releases, median of $runs runs on $(nproc) cores:"
echo "  helm-envs render $stage            ${a} ms"
echo "  helm template x2, one after other  ${b} ms"
