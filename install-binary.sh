#!/bin/sh
# Puts the helm-envs binary at $HELM_PLUGIN_DIR/bin/helm-envs (run by `helm plugin install`
# and `helm plugin update`, or by hand from the plugin directory), and says which way it took:
#
# 1. The prebuilt binary for this platform, when the plugin knows where release archives are
#    served: the `download-url` file of a packaged plugin (`make dist` writes it), or
#    HELM_ENVS_DOWNLOAD_URL (which wins). The archive's SHA-256 must match `checksums.txt` of the
#    package (covered by the package's signature), or, from a git checkout, the `.sha256` file
#    served beside the archive. A mismatch refuses the install, naming the file.
# 2. Otherwise (no archive for this platform, none served, or no download URL), built from
#    source with cargo, when this is a source checkout and cargo is installed.
# 3. Otherwise, a message that says what to do.
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
asset="helm-envs-$os-$arch.tar.gz"

say() { echo "helm-envs: $*" >&2; }
sha256() { if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1"; else shasum -a 256 "$1"; fi | cut -d' ' -f1; }

url=${HELM_ENVS_DOWNLOAD_URL:-}
if [ -z "$url" ] && [ -f download-url ]; then
    url=$(cat download-url)
fi

prebuilt() {
    expected=""
    if [ -f checksums.txt ]; then
        expected=$(awk -v a="$asset" '$2 == a || $2 == "*" a { print $1 }' checksums.txt)
        if [ -z "$expected" ]; then
            say "this release has no prebuilt binary for $os-$arch (it has: $(awk '{ print $2 }' checksums.txt | sed 's/^helm-envs-//; s/\.tar\.gz$//' | tr '\n' ' '))"
            return 1
        fi
    fi
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    say "downloading $url/$asset"
    if ! curl -fsSL "$url/$asset" -o "$tmp/$asset"; then
        say "could not download $url/$asset"
        return 1
    fi
    if [ -z "$expected" ]; then
        curl -fsSL "$url/$asset.sha256" -o "$tmp/$asset.sha256" || { say "could not download $url/$asset.sha256"; return 1; }
        expected=$(cut -d' ' -f1 "$tmp/$asset.sha256")
    fi
    actual=$(sha256 "$tmp/$asset")
    if [ "$expected" != "$actual" ]; then
        say "checksum mismatch for $asset: expected $expected, got $actual; not installed"
        say "the file at $url/$asset is not the one this release was built with: download it again, or tell whoever serves it"
        exit 1
    fi
    # Called in an `||` list, where `set -e` does not apply: each step says when it fails.
    tar -xzf "$tmp/$asset" -C "$tmp" helm-envs || { say "$asset holds no helm-envs binary; not installed"; exit 1; }
    install -m 0755 "$tmp/helm-envs" bin/helm-envs || exit 1
    say "installed the prebuilt binary $version for $os-$arch (SHA-256 checked)"
    exit 0
}

if [ -n "$url" ]; then
    prebuilt || true
fi

if [ ! -f Cargo.toml ] || ! command -v cargo >/dev/null 2>&1; then
    why="no prebuilt binary was installed"
    [ -n "$url" ] || why="this plugin does not know where prebuilt binaries are served (no download-url, no HELM_ENVS_DOWNLOAD_URL)"
    if [ -f Cargo.toml ]; then
        cat >&2 <<MSG
helm-envs: cannot install: $why, and cargo is not installed.
  Install Rust (https://rustup.rs, then re-open the shell) and run: helm plugin update envs
  or set HELM_ENVS_DOWNLOAD_URL to a place that serves helm-envs release archives.
MSG
    else
        cat >&2 <<MSG
helm-envs: cannot install: $why, and this package holds no source to build from.
  Install from the git repository with cargo present, or from a release that has $asset.
MSG
    fi
    exit 1
fi

say "building from source with cargo (release profile)"
target=${CARGO_TARGET_DIR:-$dir/target}
cargo build --release --locked --quiet --manifest-path "$dir/Cargo.toml" --target-dir "$target"
install -m 0755 "$target/release/helm-envs" bin/helm-envs
say "installed $("$dir/bin/helm-envs" --version), built from source"
