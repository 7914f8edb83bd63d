#!/usr/bin/env bash
# What `helm-envs exec` adds to a release script: the median wall time of `exec STAGE -- true`
# against `true` alone, and of `exec --gated` (which renders and checks the stage first)
# against `upgrade --dry-run` (the same checks, no command), on the example (3 stages x 2
# releases, deployed). Also `init` on a values-<stage>.yaml layout.
#   scripts/bench-exec.sh [RUNS]   (default 20; starts three clusters of its own in
#                                   .tools/bench-testbed and stops them; builds --release)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
runs=${1:-20}
source scripts/bench-clusters.sh
export PATH="$(dirname "$bin"):$PATH"

cp -R examples charts scripts "$work/"
cd "$work/examples/acme"
"$work/scripts/example-secrets.sh" >/dev/null
"$bin" apply --yes >/dev/null

# median wall time in ms of a command run $runs times (output discarded, failures fatal)
median() {
    python3 - "$runs" "$@" <<'PY'
import statistics, subprocess, sys, time
runs, cmd = int(sys.argv[1]), sys.argv[2:]
times = []
for _ in range(runs):
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    times.append((time.perf_counter() - start) * 1000)
print(f"{statistics.median(times):8.1f} ms")
PY
}

printf '%-52s %s\n' "true" "$(median true)"
printf '%-52s %s\n' "helm-envs exec dev -- true" "$(median "$bin" exec dev -- true)"
printf '%-52s %s\n' "helm-envs exec dev --release web -- true" "$(median "$bin" exec dev --release web -- true)"
printf '%-52s %s\n' "helm-envs upgrade production --dry-run (the checks)" "$(median "$bin" upgrade production --dry-run)"
printf '%-52s %s\n' "helm-envs exec production --gated --yes -- true" "$(median "$bin" exec production --gated --yes -- true)"

mkdir -p "$work/legacy" && cp -R "$work/charts/acme-web" "$work/legacy/chart"
for stage in dev staging production; do cp "envs/$stage/web.yaml" "$work/legacy/values-$stage.yaml"; done
cd "$work/legacy"
printf '%-52s %s\n' "helm-envs init --force (values-<stage>.yaml layout)" "$(median "$bin" init --force)"
