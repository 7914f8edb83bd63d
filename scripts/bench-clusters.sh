# Sourced by the benchmark scripts, from the repository root: three clusters of their own (dev,
# staging, production in .tools/bench-testbed, stopped on exit), a --release build in $bin, a
# scratch directory in $work (removed on exit), and helm and kubectl on PATH.
export TESTBED_DIR="$repo/.tools/bench-testbed"
work=$(mktemp -d)
cleanup() { "$repo/scripts/testbed.sh" down >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

scripts/testbed.sh install >/dev/null
scripts/testbed.sh down >/dev/null 2>&1 || true
scripts/testbed.sh up dev staging production >/dev/null
eval "$(scripts/testbed.sh env)"
cargo build --release --locked --quiet
bin=$repo/target/release/helm-envs
