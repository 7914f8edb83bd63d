#!/usr/bin/env bash
# `make dist`: the release artifacts of helm-envs, into dist/ (DIST_DIR):
#   helm-envs-<os>-<arch>.tar.gz   the binary (static where the target allows), LICENSE, README.md
#   helm-envs-<os>-<arch>.tar.gz.sha256, checksums.txt (every archive)
#   envs-<version>.tgz + .prov     the plugin for Helm 4 (apiVersion v1 manifest), signed
#   envs-<version>-helm3.tgz       the plugin for Helm 3 (legacy manifest; Helm 3 verifies nothing)
#   RELEASE_NOTES.md               the CHANGELOG section of the version (## [<version>])
# Both plugin packages carry checksums.txt and the URL the archives will be served from, so the
# install hook downloads the binary for its platform and checks it against the signed package.
#
# The version comes from Cargo.toml; plugin.yaml must agree. Settings (environment):
#   RELEASE_URL       where the archives will be served (default: the GitHub release of the tag
#                     v<version> when `origin` is a GitHub repository; required otherwise)
#   SIGNING_KEYRING   a GnuPG secret keyring (legacy format: `gpg --export-secret-keys`) and
#   SIGNING_KEY       the key's name or email in it; default: the test bed's key
#                     (scripts/testbed.sh signing-key), for trying the release path locally
#   HELM              a Helm 4 binary (default: the test bed's)
#   TARGETS           Rust target triples to build (default: the four release platforms; a
#                     target whose standard library is not installed is skipped and named)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
out=${DIST_DIR:-$repo/dist}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
manifest_version=$(sed -n 's/^version: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' plugin.yaml)
die() { echo "dist: $*" >&2; exit 1; }
[ "$version" = "$manifest_version" ] ||
    die "Cargo.toml says version $version, plugin.yaml says $manifest_version: set plugin.yaml's version to $version"

if [ -z "${RELEASE_URL:-}" ]; then
    origin=$(git remote get-url origin 2>/dev/null || true)
    case "$origin" in
    https://github.com/* | git@github.com:*)
        slug=${origin#https://github.com/} slug=${slug#git@github.com:} slug=${slug%.git}
        RELEASE_URL="https://github.com/$slug/releases/download/v$version"
        ;;
    *) die "RELEASE_URL is not set and origin ($origin) is not on GitHub: say where the archives will be served, e.g. make dist RELEASE_URL=https://example.com/helm-envs/v$version" ;;
    esac
fi

if [ -z "${SIGNING_KEYRING:-}" ]; then
    eval "$(scripts/testbed.sh signing-key)"
    echo "dist: signing with the test bed's key ($SIGNING_KEY); set SIGNING_KEYRING and SIGNING_KEY for a real release" >&2
fi
[ -f "$SIGNING_KEYRING" ] || die "SIGNING_KEYRING $SIGNING_KEYRING does not exist"
HELM=${HELM:-$(scripts/testbed.sh helm-path 4)}
[ -x "$HELM" ] || die "no Helm 4 at $HELM: set HELM to a Helm 4 binary, or run scripts/testbed.sh install"
"$HELM" version --short | grep -q '^v4\.' || die "HELM ($HELM) is not Helm 4: helm plugin package --sign needs Helm 4"

rm -rf "$out" && mkdir -p "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# ---------------------------------------------------------------- binaries
platform_of() {
    case "$1" in
    x86_64-unknown-linux-*) echo linux-amd64 ;;
    aarch64-unknown-linux-*) echo linux-arm64 ;;
    x86_64-apple-darwin) echo darwin-amd64 ;;
    aarch64-apple-darwin) echo darwin-arm64 ;;
    *) die "no platform name for target $1" ;;
    esac
}
installed_targets=$(rustup target list --installed 2>/dev/null || rustc -vV | sed -n 's/^host: //p')
built=() skipped=()
for target in ${TARGETS:-x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu x86_64-apple-darwin aarch64-apple-darwin}; do
    platform=$(platform_of "$target")
    if ! grep -qx "$target" <<<"$installed_targets"; then
        skipped+=("$platform ($target: its standard library is not installed; rustup target add $target)")
        continue
    fi
    flags=""
    # glibc links statically on Linux: the binary runs on any distribution of its architecture.
    case "$target" in *-linux-gnu) flags="-C target-feature=+crt-static" ;; esac
    flags="$flags -C strip=symbols"
    echo "dist: building $platform ($target)" >&2
    RUSTFLAGS="$flags" cargo build --release --locked --quiet --target "$target" --target-dir "$repo/target/dist"
    mkdir -p "$stage/$platform"
    cp "$repo/target/dist/$target/release/helm-envs" LICENSE README.md "$stage/$platform/"
    tar -C "$stage/$platform" --owner=0 --group=0 --numeric-owner -czf "$out/helm-envs-$platform.tar.gz" helm-envs LICENSE README.md
    (cd "$out" && sha256sum "helm-envs-$platform.tar.gz" >"helm-envs-$platform.tar.gz.sha256")
    built+=("$platform")
done
[ ${#built[@]} -gt 0 ] || die "no target could be built"
(cd "$out" && cat ./*.tar.gz.sha256 >checksums.txt)

# ---------------------------------------------------------------- plugin packages
# plugin_dir MANIFEST DIR: the plugin's files, with MANIFEST as its plugin.yaml.
plugin_dir() {
    mkdir -p "$2"
    cp "$1" "$2/plugin.yaml"
    cp install-binary.sh plugin.complete LICENSE "$2/"
    cp "$out/checksums.txt" "$2/checksums.txt"
    echo "$RELEASE_URL" >"$2/download-url"
}

# Helm 4's own manifest: a subprocess CLI plugin with its command and hooks per platform.
cat >"$stage/plugin-v1.yaml" <<EOF
apiVersion: v1
type: cli/v1
name: envs
version: "$version"
runtime: subprocess
config:
  usage: "envs"
  shortHelp: "run the same releases through dev, staging and production"
  longHelp: |-
    Render, diff, check and promote Helm releases through the stages of a deployment
    (development, staging, production), each on its own kube context and namespace.
  ignoreFlags: false
runtimeConfig:
  platformCommand:
    - os: linux
      command: "\${HELM_PLUGIN_DIR}/bin/helm-envs"
    - os: darwin
      command: "\${HELM_PLUGIN_DIR}/bin/helm-envs"
  platformHooks:
    install:
      - command: "sh"
        args: ["-c", "cd \"\$HELM_PLUGIN_DIR\" && sh ./install-binary.sh"]
    update:
      - command: "sh"
        args: ["-c", "cd \"\$HELM_PLUGIN_DIR\" && sh ./install-binary.sh"]
EOF
plugin_dir "$stage/plugin-v1.yaml" "$stage/helm4/envs"
home=$stage/helm-home
HELM_CONFIG_HOME=$home HELM_DATA_HOME=$home HELM_CACHE_HOME=$home \
    "$HELM" plugin package "$stage/helm4/envs" --sign --keyring "$SIGNING_KEYRING" --key "$SIGNING_KEY" \
    --destination "$out" >"$stage/package.log" 2>&1 || { cat "$stage/package.log" >&2; die "helm plugin package failed"; }
[ -f "$out/envs-$version.tgz.prov" ] || die "helm plugin package wrote no envs-$version.tgz.prov"

plugin_dir plugin.yaml "$stage/helm3/envs"
# Helm 3 looks for plugin.yaml at the archive's root.
(cd "$stage/helm3/envs" && tar --owner=0 --group=0 --numeric-owner -czf "$out/envs-$version-helm3.tgz" ./*)

# ---------------------------------------------------------------- release notes
awk -v heading="## [$version]" 'index($0, "## [") == 1 { if (found) exit; found = (index($0, heading) == 1) } found' \
    CHANGELOG.md >"$out/RELEASE_NOTES.md"
[ -s "$out/RELEASE_NOTES.md" ] || die "CHANGELOG.md has no section ## [$version]: add one for the release"

echo "dist: $out, version $version, served from $RELEASE_URL" >&2
echo "dist: built: ${built[*]}" >&2
for reason in "${skipped[@]}"; do echo "dist: not built: $reason" >&2; done
ls -1 "$out" >&2
