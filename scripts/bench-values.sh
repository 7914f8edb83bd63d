#!/usr/bin/env bash
# Wall time and peak memory of `drift`, `promote --dry-run` and `diff --from --to` on two stages
# whose values files have KEYS keys each (groups of 10), 1 % of them different. No cluster: the
# stages' contexts do not exist, so each command does its offline work and reports the clusters
# as unreachable.
#   scripts/bench-values.sh [KEYS...]   (default: 5000 20000 100000; builds --release; needs helm
#                                        on PATH, e.g. after `eval "$(scripts/testbed.sh env)"`)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
bin=$(pwd)/target/release/helm-envs
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%-8s %-22s %8s %10s\n' keys command seconds peak-MiB
for keys in "${@:-5000 20000 100000}"; do
    for keys_n in $keys; do
        project="$work/$keys_n"
        mkdir -p "$project/chart/templates" "$project/envs/dev" "$project/envs/staging"
        printf 'apiVersion: v2\nname: big\nversion: 0.1.0\n' >"$project/chart/Chart.yaml"
        printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  groups: "{{ len .Values }}"\n' \
            >"$project/chart/templates/cm.yaml"
        cat >"$project/helm-envs.yaml" <<STAGES
stages:
  - name: dev
    kubeContext: bench-nowhere-dev
    namespace: big-dev
  - name: staging
    kubeContext: bench-nowhere-staging
    namespace: big-staging
releases:
  - name: big
    chart: chart
    values: ["envs/{stage}/big.yaml"]
STAGES
        python3 - "$project" "$keys_n" <<'PY'
import sys
project, n = sys.argv[1], int(sys.argv[2])
for stage in ("dev", "staging"):
    with open(f"{project}/envs/{stage}/big.yaml", "w") as f:
        for group in range(n // 10):
            f.write(f"group{group}:\n")
            for k in range(10):
                i = group * 10 + k
                value = f"other-{i}" if stage == "staging" and i % 100 == 0 else f"value-{i}"
                f.write(f"  key{k}: {value}  # key {i}\n")
PY
        for command in "drift" "promote --from dev --to staging --dry-run --no-deploy" "diff --from dev --to staging"; do
            # shellcheck disable=SC2086
            measured=$(cd "$project" && { /usr/bin/time -f '%e %M' "$bin" $command >/dev/null 2>"$work/err" || true; } ; tail -n 1 "$work/err")
            read -r seconds kib <<<"$measured"
            printf '%-8s %-22s %8s %10s\n' "$keys_n" "${command%% --dry-run*}" "$seconds" "$((kib / 1024))"
        done
    done
done
