#!/usr/bin/env bash
# Speed at fleet scale, side by side with helmfile + helm-diff and with hand-written loops.
# Generates a fleet (3 stages x RELEASES releases of a 6-resource chart, benches/fleet/svc, no
# Pods), deploys it on three clusters of its own, and times whole processes: median wall time,
# peak memory of the process itself, and the helm and kubectl processes each command starts.
# `diff --from --to` is also timed on one release of 210 resources (benches/fleet/big).
#   scripts/bench-fleet.sh [RUNS] [RELEASES]   (default 3 runs, 40 releases; starts clusters
#       in .tools/bench-testbed and stops them; builds helm-envs --release, and helmfile and
#       helm-diff from the Go module proxy once: scripts/testbed.sh peers)
# Runs under Helm 3 unless HELM_ENVS_HELM=4: helm-diff v3.9.14 (the newest the module proxy
# serves here) does not run under Helm 4, which refuses the `--validate` it passes with
# `--dry-run`; under Helm 4 the helmfile diff rows show exit 1.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
export HELM_ENVS_HELM=${HELM_ENVS_HELM:-3}
runs=${1:-3}
count=${2:-40}
eval "$(scripts/testbed.sh peers)"
source scripts/bench-clusters.sh
export PATH="$(dirname "$bin"):$PATH"

fleet=$work/fleet
mkdir -p "$fleet/charts" "$fleet/values" "$work/loops"
cp -R benches/fleet/svc benches/fleet/big "$fleet/charts/"
cd "$fleet"
stages="dev:fleet-dev staging:fleet-staging production:fleet-prod"
names=$(seq -f 'svc-%02g' 1 "$count")

# The stages file, each stage's values, and a helmfile per stage over the same releases.
{
    echo "stages:"
    for pair in $stages; do printf '  - name: %s\n    kubeContext: %s\n    namespace: %s\n' "${pair%%:*}" "${pair%%:*}" "${pair#*:}"; done
    echo "releases:"
    for name in $names; do
        printf '  - name: %s\n    chart: ./charts/svc\n    values: [values/common.yaml, "envs/{stage}/%s.yaml"]\n' "$name" "$name"
    done
    printf 'envSpecific: [logLevel]\n'
} >helm-envs.yaml
echo 'image: {tag: "2.7.0"}' >values/common.yaml
for pair in $stages; do
    stage=${pair%%:*} namespace=${pair#*:}
    mkdir -p "envs/$stage"
    for name in $names; do
        level=$([ "$stage" = dev ] && echo debug || echo info)
        printf 'logLevel: %s\n' "$level" >"envs/$stage/$name.yaml"
    done
    {
        printf 'helmDefaults:\n  kubeContext: %s\nreleases:\n' "$stage"
        for name in $names; do
            printf '  - name: %s\n    namespace: %s\n    chart: ./charts/svc\n    values: [values/common.yaml, envs/%s/%s.yaml]\n' \
                "$name" "$namespace" "$stage" "$name"
        done
    } >"helmfile-$stage.yaml"
    # The loops users write: one helm (and kubectl) call per release, one after another.
    {
        for name in $names; do
            echo "helm template $name ./charts/svc --namespace $namespace --kube-context $stage -f values/common.yaml -f envs/$stage/$name.yaml | kubectl --context $stage --namespace $namespace diff -f - >/dev/null || true"
        done
    } >"$work/loops/diff-$stage.sh"
    for name in $names; do echo "helm status $name --namespace $namespace --kube-context $stage >/dev/null"; done >"$work/loops/status-$stage.sh"
    for name in $names; do
        echo "helm get manifest $name --namespace $namespace --kube-context $stage | kubectl --context $stage --namespace $namespace diff -f - >/dev/null || true"
    done >"$work/loops/drift-live-$stage.sh"
    kubectl --context "$stage" create namespace "$namespace" >/dev/null
    kubectl --context "$stage" --namespace "$namespace" create secret generic fleet-db --from-literal=url=bench-only >/dev/null
done
# dev runs a newer image on five releases: a change for `diff --from dev --to staging` to show.
for name in $(echo "$names" | head -5); do printf 'image: {tag: "2.8.0"}\n' >>"envs/dev/$name.yaml"; done

# One release of 210 resources, for `diff --from --to` against two `helm template` and `diff -u`.
mkdir -p "$work/big/envs/dev" "$work/big/envs/staging"
cp -R charts/big "$work/big/chart"
printf 'stages:\n  - {name: dev, kubeContext: dev, namespace: big-dev}\n  - {name: staging, kubeContext: staging, namespace: big-staging}\nreleases:\n  - name: big\n    chart: ./chart\n    values: ["envs/{stage}/big.yaml"]\nenvSpecific: [logLevel]\n' >"$work/big/helm-envs.yaml"
printf 'logLevel: debug\nimage: {tag: "2.8.0"}\n' >"$work/big/envs/dev/big.yaml"
printf 'logLevel: info\n' >"$work/big/envs/staging/big.yaml"
echo "cd $work/big && helm template big ./chart --namespace big-dev -f envs/dev/big.yaml >$work/big-dev.yaml && helm template big ./chart --namespace big-staging -f envs/staging/big.yaml >$work/big-staging.yaml && diff -u $work/big-dev.yaml $work/big-staging.yaml >/dev/null; true" >"$work/loops/big.sh"

start=$(date +%s%N)
helm-envs apply --yes >/dev/null
echo "deployed $count releases x 3 stages (apply --yes, first install): $(( ($(date +%s%N) - start) / 1000000 )) ms"
echo "helm $(helm version --template '{{.Version}}'), helmfile $(helmfile --version 2>/dev/null | awk '{print $NF}'), helm-diff $(helm diff version 2>/dev/null), $(nproc) cores, median of $runs runs"
echo

tab=$'\t'
# One line of the measurement's input: a label, then the command (the command itself by default).
row() { echo "$1$tab${2:-$1}"; }
{
    echo "# helm-envs, all stages and each stage alone"
    for command in drift "drift --live" status "check-secrets --all" "apply --dry-run" "apply --yes"; do
        row "helm-envs $command"
    done
    for pair in $stages; do
        stage=${pair%%:*}
        row "helm-envs drift --stage $stage"
        row "helm-envs drift --live --stage $stage"
        row "helm-envs status --stage $stage"
        row "helm-envs check-secrets $stage"
        row "helm-envs upgrade $stage --dry-run"
        row "helm-envs upgrade $stage --yes (nothing to change)" "helm-envs upgrade $stage --yes"
    done
    echo "# diff STAGE against helmfile diff (helm-diff) and the hand loop; status against helmfile"
    for pair in $stages; do
        stage=${pair%%:*}
        row "helm-envs diff $stage"
        row "helmfile -f helmfile-$stage.yaml diff --skip-deps"
        row "loop: helm template | kubectl diff, per release" "bash $work/loops/diff-$stage.sh"
        row "loop: helm get manifest | kubectl diff, per release" "bash $work/loops/drift-live-$stage.sh"
        row "helmfile -f helmfile-$stage.yaml status"
        row "helmfile -f helmfile-$stage.yaml list"
        row "loop: helm status, per release" "bash $work/loops/status-$stage.sh"
    done
    echo "# two stages' config"
    row "helm-envs diff --from dev --to staging ($count releases)" "helm-envs diff --from dev --to staging"
    row "helm-envs diff --from dev --to staging (210 resources)" "helm-envs --config $work/big/helm-envs.yaml diff --from dev --to staging"
    row "two helm template + diff -u (210 resources)" "bash $work/loops/big.sh"
} | python3 "$repo/scripts/bench_measure.py" "$runs"
