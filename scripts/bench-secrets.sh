#!/usr/bin/env bash
# What decrypting a release's encrypted values costs: median wall time of
# `helm-envs render STAGE --release web` on the example as it is (web's signing key in a SOPS
# file, decrypted with sops and piped to helm) and on a copy without its `secrets` entry, and of
# `sops --decrypt` of that file alone.
#   scripts/bench-secrets.sh [STAGE] [RUNS]     (default: staging, 20 runs; needs
#                                               scripts/testbed.sh install; no cluster)
set -euo pipefail
cd "$(dirname "$0")/.."
stage=${1:-staging}
runs=${2:-20}
eval "$(scripts/testbed.sh env)"
bin=$(pwd)/target/release/helm-envs
[ -x "$bin" ] || cargo build --release --locked --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/encrypted/examples" "$work/plain/examples"
for copy in encrypted plain; do
    cp -R examples/acme "$work/$copy/examples/acme" && cp -R charts "$work/$copy/charts"
done
python3 - "$work/plain/examples/acme/helm-envs.yaml" <<'EOF'
import sys
path = sys.argv[1]
text = open(path).read()
entry = "    secrets:\n      - envs/{stage}/web.secrets.yaml\n"
assert entry in text, "the example lists web's encrypted values"
open(path, "w").write(text.replace(entry, ""))
EOF

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
render() { (cd "$work/$1/examples/acme" && "$bin" render "$stage" --release web); }
decrypt() { sops --decrypt "examples/acme/envs/$stage/web.secrets.yaml"; }

render encrypted >/dev/null && render plain >/dev/null # warm the file cache
with=$(for _ in $(seq "$runs"); do ms render encrypted; done | median)
without=$(for _ in $(seq "$runs"); do ms render plain; done | median)
alone=$(for _ in $(seq "$runs"); do ms decrypt; done | median)
echo "render $stage --release web, median of $runs runs:"
echo "  with its encrypted values file (sops + pipe): ${with} ms"
echo "  without it:                                   ${without} ms"
echo "  sops --decrypt of the file alone:             ${alone} ms"
