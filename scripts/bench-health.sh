#!/usr/bin/env bash
# What the readiness wait adds to a deploy: the median wall time of a first `apply --yes` of the
# example (3 stages x 2 releases, each release's Pods started from nothing) with every stage's
# `health.timeout: 0s` (helm returns, nothing waits) against the default wait, and of an
# `upgrade dev` that rolls dev's web Deployment to a new image. Each run uses fresh namespaces,
# deleted when it ends.
#   scripts/bench-health.sh [RUNS]   (default 3; starts three clusters of its own in
#                                     .tools/bench-testbed and stops them; builds --release)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
runs=${1:-3}
source scripts/bench-clusters.sh
export PATH="$(dirname "$bin"):$PATH"
cp -R examples charts scripts "$work/"
cd "$work/examples/acme"
cp helm-envs.yaml helm-envs.yaml.orig
cp envs/dev/web.yaml web.yaml.orig

# One run: fresh namespaces (suffix $1), optional health settings ($2), then the timed commands.
run_once() {
    local suffix=$1 settings=$2
    sed -e "s/namespace: acme-dev$/namespace: acme-dev-$suffix/" \
        -e "s/namespace: acme-staging$/namespace: acme-staging-$suffix/" \
        -e "s/namespace: acme$/namespace: acme-$suffix/" helm-envs.yaml.orig > helm-envs.yaml
    if [ -n "$settings" ]; then
        sed -i "s/^    kubeContext: \(.*\)$/    kubeContext: \1\n$settings/" helm-envs.yaml
    fi
    cp web.yaml.orig envs/dev/web.yaml
    "$work/scripts/example-secrets.sh" >/dev/null
    local start end
    start=$(date +%s%N)
    helm-envs apply --yes >/dev/null 2>&1
    end=$(date +%s%N)
    printf '\n# A new image.\nimage:\n  tag: "2.8.0"\n' >> envs/dev/web.yaml
    local ustart uend
    ustart=$(date +%s%N)
    helm-envs upgrade dev --release web >/dev/null 2>&1
    uend=$(date +%s%N)
    # The run's Pods leave the nodes, so the next run's fit (production's CPU requests alone
    # fill most of a 2-CPU node).
    kubectl --context dev delete namespace "acme-dev-$suffix" >/dev/null 2>&1 &
    kubectl --context staging delete namespace "acme-staging-$suffix" >/dev/null 2>&1 &
    kubectl --context production delete namespace "acme-$suffix" >/dev/null 2>&1 &
    wait
    echo "$(( (end - start) / 1000000 )) $(( (uend - ustart) / 1000000 ))"
}

median() { python3 -c 'import statistics,sys; print(int(statistics.median(int(x) for x in sys.argv[1:])))' "$@"; }

declare -a apply_wait apply_none upgrade_wait upgrade_none
for i in $(seq 1 "$runs"); do
    read -r a u < <(run_once "n$i" "    health: {timeout: 0s}")
    apply_none+=("$a"); upgrade_none+=("$u")
    read -r a u < <(run_once "w$i" "")
    apply_wait+=("$a"); upgrade_wait+=("$u")
done

printf '%-44s %10s %10s %10s\n' "median of $runs runs (ms)" "no wait" "wait" "added"
an=$(median "${apply_none[@]}"); aw=$(median "${apply_wait[@]}")
un=$(median "${upgrade_none[@]}"); uw=$(median "${upgrade_wait[@]}")
printf '%-44s %10s %10s %10s\n' "apply --yes (first install, 3 stages x 2)" "$an" "$aw" "$((aw - an))"
printf '%-44s %10s %10s %10s\n' "upgrade dev --release web (new image)" "$un" "$uw" "$((uw - un))"
