#!/bin/sh
# Puts the helm-envs binary at $HELM_PLUGIN_DIR/bin/helm-envs (run by `helm plugin install`
# and `helm plugin update`, or by hand from the plugin directory).
#
# 1. A prebuilt release binary for this platform, when HELM_ENVS_DOWNLOAD_URL names a place
#    that serves them (<url>/v<version>/helm-envs-<os>-<arch>.tar.gz and a .sha256 beside it).
#    No default: no releases are published yet.
# 2. Otherwise, built from source with cargo when cargo is installed.
# 3. Otherwise, a message that says what to install.
set -eu

dir=${HELM_PLUGIN_DIR:-$(cd "$(dirname "$0")" && pwd)}
cd "$dir"
version=$(sed -n 's/^version: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' plugin.yaml)
mkdir -p bin

os=$(uname -s | tr '[:upper:]' '[:lower:]')
arch=$(uname -m)
case "$arch" in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
esac

if [ -n "${HELM_ENVS_DOWNLOAD_URL:-}" ]; then
    asset="helm-envs-$os-$arch.tar.gz"
    url="$HELM_ENVS_DOWNLOAD_URL/v$version/$asset"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    echo "helm-envs: downloading $url" >&2
    if curl -fsSL "$url" -o "$tmp/$asset" && curl -fsSL "$url.sha256" -o "$tmp/$asset.sha256"; then
        expected=$(cut -d' ' -f1 "$tmp/$asset.sha256")
        actual=$(sha256sum "$tmp/$asset" | cut -d' ' -f1)
        if [ "$expected" != "$actual" ]; then
            echo "helm-envs: checksum mismatch for $asset (expected $expected, got $actual); not installed" >&2
            exit 1
        fi
        tar -xzf "$tmp/$asset" -C "$tmp"
        install -m 0755 "$tmp/helm-envs" bin/helm-envs
        echo "helm-envs: installed prebuilt $version for $os-$arch" >&2
        exit 0
    fi
    echo "helm-envs: no prebuilt binary at $url; building from source" >&2
fi

if ! command -v cargo >/dev/null 2>&1; then
    cat >&2 <<MSG
helm-envs: cannot install: no prebuilt binary was downloaded and cargo is not installed.
  Install Rust (https://rustup.rs, then re-open the shell) and run:
    helm plugin update envs
  or set HELM_ENVS_DOWNLOAD_URL to a place that serves helm-envs release binaries.
MSG
    exit 1
fi

echo "helm-envs: building from source with cargo (release profile)" >&2
target=${CARGO_TARGET_DIR:-$dir/target}
cargo build --release --locked --quiet --manifest-path "$dir/Cargo.toml" --target-dir "$target"
install -m 0755 "$target/release/helm-envs" bin/helm-envs
echo "helm-envs: installed $("$dir/bin/helm-envs" --version)" >&2
