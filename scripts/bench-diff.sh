#!/usr/bin/env bash
# Wall time of `helm-envs diff --from A --to B` (renders in parallel) against the sequential
# pipeline a user would write for the same question: `helm template` for each release of each
# stage, one after the other, then `diff -u`.
#   scripts/bench-diff.sh [FROM] [TO] [RUNS]   (default: dev staging, 10 runs; needs
#                                              scripts/testbed.sh install; builds --release)
set -euo pipefail
cd "$(dirname "$0")/.."
from=${1:-dev}
to=${2:-staging}
runs=${3:-10}
eval "$(scripts/testbed.sh env)"
cargo build --release --locked --quiet
bin=$(pwd)/target/release/helm-envs
cd examples/acme

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null || true; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
namespace() { "$bin" list -o json | python3 -c "import json,sys; print([s['namespace'] for s in json.load(sys.stdin)['stages'] if s['name']=='$1'][0])"; }
from_ns=$(namespace "$from")
to_ns=$(namespace "$to")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pipeline() {
    for release in web worker; do
        helm template "$release" ../../charts/acme-web --namespace "$from_ns" --kube-context "$from" \
            -f "values/$release.yaml" -f "envs/$from/$release.yaml" >"$tmp/$release-from.yaml"
        helm template "$release" ../../charts/acme-web --namespace "$to_ns" --kube-context "$to" \
            -f "values/$release.yaml" -f "envs/$to/$release.yaml" >"$tmp/$release-to.yaml"
        diff -u "$tmp/$release-from.yaml" "$tmp/$release-to.yaml" || true
    done
}

ms "$bin" diff --from "$from" --to "$to" >/dev/null # warm the file cache
a=$(for _ in $(seq "$runs"); do ms "$bin" diff --from "$from" --to "$to"; done | median)
b=$(for _ in $(seq "$runs"); do ms pipeline; done | median)
echo "diff $from -> $to, 2 releases, median of $runs runs on $(nproc) cores:"
echo "  helm-envs diff --from $from --to $to            ${a} ms"
echo "  helm template x4 one after other, then diff -u  ${b} ms"
