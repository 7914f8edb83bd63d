#!/usr/bin/env bash
# Wall time of `helm-envs drift` and `helm-envs status` over the example (3 stages x 2 releases,
# deployed), against each stage alone (`--stage S`) and against the very same helm and kubectl
# queries run one after another (replayed from the command's own `-v` log).
#   scripts/bench-drift.sh [RUNS]   (default 5 runs; starts three clusters of its own in
#                                    .tools/bench-testbed and stops them; builds --release)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
runs=${1:-5}
source scripts/bench-clusters.sh

cp -R examples charts "$work/"
cd "$work/examples/acme"
for pair in dev:acme-dev staging:acme-staging production:acme; do
    stage=${pair%%:*} namespace=${pair#*:}
    kubectl --context "$stage" create namespace "$namespace" >/dev/null
    for secret in "acme-db url password" "payments-credentials api-key" "acme-client-tls tls.crt tls.key" \
        "acme-registry .dockerconfigjson"; do
        set -- $secret
        name=$1; shift
        literals=(); for key in "$@"; do literals+=("--from-literal=$key=bench-only"); done
        kubectl --context "$stage" --namespace "$namespace" create secret generic "$name" "${literals[@]}" >/dev/null
    done
done
"$bin" apply --yes >/dev/null
# The releases' manifests, for replaying the kubectl queries that read one on stdin.
mkdir -p "$work/manifests"
for pair in dev:acme-dev staging:acme-staging production:acme; do
    for release in web worker; do
        helm get manifest "$release" --kube-context "${pair%%:*}" --namespace "${pair#*:}" \
            >"$work/manifests/${pair%%:*}-$release.yaml"
    done
done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
timed() { for _ in $(seq "$runs"); do ms "$@"; done | median; }

# The queries a command ran, as it logged them with -v. Promoted values live in a temporary file
# that is gone after the run: the replay renders the stage's own file instead (the same work).
# A release's manifest on kubectl's stdin comes from the files saved above.
queries() {
    "$bin" "$@" -v 2>&1 >/dev/null | sed -n 's/^helm-envs: running //p' | grep -v '^git ' |
        sed -E 's#--kube-context ([a-z]+) --values ([^ ]+)/values/([a-z]+)\.yaml --values [^ ]*helm-envs-promoted-[^ ]+\.json#--kube-context \1 --values \2/values/\3.yaml --values \2/envs/\1/\3.yaml#' |
        sed -E "s#(--context ([a-z]+) .*) < \(the manifest of release ([a-z]+)\)\$#\1 < $work/manifests/\2-\3.yaml#"
}
# CPU time (user + sys, children included) of one run, in ms.
cpu() { local TIMEFORMAT='%U %S'; { time "$@" >/dev/null 2>&1; } 2>&1 | awk '{printf "%d", ($1 + $2) * 1000}'; }
sequential() { while IFS= read -r line; do eval "$line" >/dev/null 2>&1 || true; done <"$1"; }

report() {
    local command=$1 extra=${2:-}
    queries $command $extra >"$work/queries"
    local n all one_by_one per_stage=()
    n=$(wc -l <"$work/queries")
    all=$(timed "$bin" $command $extra)
    for stage in dev staging production; do per_stage+=("$(timed "$bin" $command $extra --stage "$stage")"); done
    one_by_one=$(timed sequential "$work/queries")
    printf '  %-34s %6s ms   (CPU %s ms)\n' "helm-envs $command $extra" "$all" "$(cpu "$bin" $command $extra)"
    printf '  %-34s %6s ms\n' "  --stage dev / staging / production" "${per_stage[0]} / ${per_stage[1]} / ${per_stage[2]}"
    printf '  %-34s %6s ms   (CPU %s ms)\n' "  its $n queries one after another" "$one_by_one" \
        "$(cpu sequential "$work/queries")"
}

echo "drift and status, example deployed (3 stages x 2 releases), median of $runs runs on $(nproc) cores:"
report drift
report drift --live
report status
