# Sourced by scripts/testbed.sh: building and installing what the clusters run (Go builds from the module proxy,
# Debian packages, locally built images), and the benchmark peers.
# shellcheck shell=bash

# go_install NAME VERSION MODULE@VERSION LDFLAGS PACKAGE...: build PACKAGEs of a module from the
# Go module proxy into $CACHE/NAME-VERSION/bin, in a throwaway module that requires it.
# REPLACES (an array) adds `replace` lines (Kubernetes' staging modules).
REPLACES=()
go_install() {
    local name=$1 version=$2 require=$3 ldflags=$4
    shift 4
    local out="$CACHE/$name-$version/bin" dir="$CACHE/build/$name-$version"
    local missing=0 pkg
    for pkg in "$@"; do [ -x "$out/$(basename "$pkg")" ] || missing=1; done
    [ "$missing" = 0 ] && return
    command -v go >/dev/null || { step="build $name" fail "go is required (Go 1.26 or newer)"; }
    rm -rf "$dir" && mkdir -p "$dir"
    {
        printf 'module helm-envs.local/testbed-%s\n\ngo 1.26.0\n\nrequire %s\n' "$name" "${require/@/ }"
        if [ ${#REPLACES[@]} -gt 0 ]; then
            printf '\nreplace (\n'
            printf '\t%s\n' "${REPLACES[@]}"
            printf ')\n'
        fi
    } >"$dir/go.mod"
    {
        printf '//go:build tools\n\npackage tools\n\nimport (\n'
        printf '\t_ "%s"\n' "$@"
        printf ')\n'
    } >"$dir/tools.go"
    (cd "$dir" && run "resolve $name $version from the Go module proxy" "$LOGS/$name-mod.log" go mod tidy)
    mkdir -p "$out.tmp"
    (cd "$dir" && run "build $name $version (several minutes the first time)" "$LOGS/$name-build.log" \
        go build -trimpath -ldflags "-s -w $ldflags" -o "$out.tmp/" "$@")
    rm -rf "$out" && mv "$out.tmp" "$out"
    rm -rf "$dir"
}

install_kubernetes() {
    local mod="k8s.io/kubernetes@$K8S_VERSION" minor
    minor=$(echo "$K8S_VERSION" | cut -d. -f2)
    # Kubernetes' go.mod points its staging modules (k8s.io/api, client-go, ...) at directories
    # of its own repository; outside it they come from the proxy at the matching v0.x version.
    local gomod
    if [ ! -x "$K8S_BIN/kubelet" ]; then
        gomod=$(cd "$CACHE" && GOFLAGS=-mod=mod go mod download -json "$mod" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])') ||
            { step="download $mod" fail "the Go module proxy did not serve $mod"; }
        REPLACES=()
        local staging
        for staging in $(sed -n '/^replace (/,/^)/p' "$gomod" | awk '/=>/ {print $1}'); do
            REPLACES+=("$staging => $staging v0.$minor.${K8S_VERSION##*.}")
        done
    fi
    local ldflags="" pkg
    # Helm and kubeVersion constraints read the server's version: set it as Kubernetes' own build does.
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
        ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    go_install kubernetes "$K8S_VERSION" "$mod" "$ldflags" \
        k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubectl
    REPLACES=()
    # pause.c, for the sandbox image, comes with the same module.
    if [ ! -f "$K8S_BIN/../pause.c" ]; then
        local dir
        dir=$(cd "$CACHE" && GOFLAGS=-mod=mod go mod download -json "$mod" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
        cp "$dir/build/pause/linux/pause.c" "$K8S_BIN/../pause.c"
    fi
}

install_etcd() {
    [ -x "$ETCD_BIN/etcd" ] && return
    go_install etcd "$ETCD_VERSION" "go.etcd.io/etcd/server/v3@$ETCD_VERSION" \
        "-X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" go.etcd.io/etcd/server/v3
    # `go build` names the binary after the package path (server, for .../server/v3).
    mv "$ETCD_BIN/server" "$ETCD_BIN/etcd"
}

install_helm() {
    go_install helm "$HELM4_VERSION" "helm.sh/helm/v4@$HELM4_VERSION" \
        "-X helm.sh/helm/v4/internal/version.version=$HELM4_VERSION -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
        helm.sh/helm/v4/cmd/helm
    local minor
    minor=$(echo "$K8S_VERSION" | cut -d. -f2)
    go_install helm "$HELM3_VERSION" "helm.sh/helm/v3@$HELM3_VERSION" \
        "-X helm.sh/helm/v3/internal/version.version=$HELM3_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean
         -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor
         -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor" \
        helm.sh/helm/v3/cmd/helm
}

install_sops() {
    go_install sops "$SOPS_VERSION" "github.com/getsops/sops/v3@$SOPS_VERSION" \
        "" github.com/getsops/sops/v3/cmd/sops
}

# Argo CD, for the stages a GitOps engine deploys: one multi-call binary with only the components
# the test bed runs (argocd-main.go, built as the module's cmd/testbed: each picks its role from
# ARGOCD_BINARY_NAME), its CRDs, and the git wrapper its repo-server runs before every fetch
# (module zips drop file modes: made executable here). v3.6 declares Go 1.27, fetched as a
# toolchain through the module proxy; its go.mod replaces gitops-engine with a nested module the
# module zip leaves out, so that module is fetched at the same version and put where it points.
install_argocd() {
    [ -x "$ARGOCD_DIR/bin/argocd" ] && [ -f "$ARGOCD_DIR/crds/application-crd.yaml" ] && return
    command -v go >/dev/null || { step="build argocd" fail "go is required (Go 1.26 or newer)"; }
    local src="$CACHE/build/argocd-$ARGOCD_VERSION" module dir engine
    module=github.com/argoproj/argo-cd/v3
    dir=$(cd "$CACHE" && GOTOOLCHAIN="$ARGOCD_GO" GOFLAGS=-mod=mod go mod download -json "$module@$ARGOCD_VERSION" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])') ||
        { step="download $module@$ARGOCD_VERSION" fail "the Go module proxy did not serve it"; }
    engine=$(cd "$CACHE" && GOTOOLCHAIN="$ARGOCD_GO" GOFLAGS=-mod=mod go mod download -json "github.com/argoproj/argo-cd/gitops-engine/v3@$ARGOCD_VERSION" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])') ||
        { step="download argo-cd/gitops-engine/v3@$ARGOCD_VERSION" fail "the Go module proxy did not serve it"; }
    rm -rf "$src" && mkdir -p "$(dirname "$src")" && cp -R "$dir" "$src" && chmod -R u+w "$src"
    rm -rf "$src/gitops-engine" && cp -R "$engine" "$src/gitops-engine" && chmod -R u+w "$src/gitops-engine"
    mkdir -p "$src/cmd/testbed" && cp "$REPO/scripts/testbed/argocd-main.go" "$src/cmd/testbed/main.go"
    rm -rf "$ARGOCD_DIR.tmp" && mkdir -p "$ARGOCD_DIR.tmp/bin" "$ARGOCD_DIR.tmp/crds"
    (cd "$src" && run "build argocd $ARGOCD_VERSION (about 4 minutes the first time)" "$LOGS/argocd-build.log" \
        env GOTOOLCHAIN="$ARGOCD_GO" GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath \
        -ldflags "-s -w -X github.com/argoproj/argo-cd/v3/common.version=${ARGOCD_VERSION#v}" \
        -o "$ARGOCD_DIR.tmp/bin/argocd" ./cmd/testbed)
    cp "$src"/manifests/crds/application-crd.yaml "$src"/manifests/crds/appproject-crd.yaml "$ARGOCD_DIR.tmp/crds/"
    cp "$src/hack/git-verify-wrapper.sh" "$ARGOCD_DIR.tmp/bin/" && chmod 755 "$ARGOCD_DIR.tmp/bin/git-verify-wrapper.sh"
    rm -rf "$ARGOCD_DIR" && mv "$ARGOCD_DIR.tmp" "$ARGOCD_DIR" && rm -rf "$src"
}

# go_build_module NAME VERSION MODULE LDFLAGS: build a module's main package inside a writable
# copy of the module itself (where its own `replace` lines and go.sum hold) into
# $CACHE/NAME-VERSION/bin/NAME. helm-diff is not in the checksum database: its go.sum and the
# proxy's copy are what the build trusts.
go_build_module() {
    local name=$1 version=$2 module=$3 ldflags=$4
    local out="$CACHE/$name-$version/bin" src="$CACHE/build/$name-$version" dir
    [ -x "$out/$name" ] && return
    command -v go >/dev/null || { step="build $name" fail "go is required (Go 1.26 or newer)"; }
    dir=$(cd "$CACHE" && GONOSUMDB="$module" GOFLAGS=-mod=mod go mod download -json "$module@$version" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])') ||
        { step="download $module@$version" fail "the Go module proxy did not serve it"; }
    rm -rf "$src" && mkdir -p "$(dirname "$src")" && cp -R "$dir" "$src" && chmod -R u+w "$src"
    mkdir -p "$out.tmp"
    (cd "$src" && run "build $name $version (several minutes the first time)" "$LOGS/$name-build.log" \
        env GONOSUMDB="$module" go build -mod=mod -trimpath -ldflags "-s -w $ldflags" -o "$out.tmp/$name" .)
    rm -rf "$out" && mv "$out.tmp" "$out" && rm -rf "$src"
}

# helmfile's binary, and a helm plugin directory holding helm-diff (plugin.yaml and bin/diff),
# as `helm plugin install` would lay it out.
cmd_peers() {
    go_build_module helmfile "$HELMFILE_VERSION" github.com/helmfile/helmfile \
        "-X go.szostok.io/version.version=$HELMFILE_VERSION"
    go_build_module helm-diff "$HELM_DIFF_VERSION" github.com/databus23/helm-diff/v3 \
        "-X github.com/databus23/helm-diff/v3/cmd.Version=${HELM_DIFF_VERSION#v}"
    local plugin="$PEERS/plugins/helm-diff" dir
    if [ ! -x "$plugin/bin/diff" ]; then
        dir=$(cd "$CACHE" && GONOSUMDB=github.com/databus23/helm-diff/v3 GOFLAGS=-mod=mod go mod download -json "github.com/databus23/helm-diff/v3@$HELM_DIFF_VERSION" |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
        rm -rf "$plugin" && mkdir -p "$plugin/bin"
        # The published plugin.yaml runs install hooks that download a release; the binary is
        # built here, so the hooks go.
        sed '/^hooks:/,$d' "$dir/plugin.yaml" >"$plugin/plugin.yaml"
        cp "$CACHE/helm-diff-$HELM_DIFF_VERSION/bin/helm-diff" "$plugin/bin/diff"
    fi
    mkdir -p "$PEERS/bin"
    ln -sf "$CACHE/helmfile-$HELMFILE_VERSION/bin/helmfile" "$PEERS/bin/helmfile"
    echo "export PATH=\"$PEERS/bin:\$PATH\""
    echo "export HELM_PLUGINS=\"$PEERS/plugins\""
}

# Debian's container runtime, CNI plugins, image tool and registry; gnupg signs the plugin
# packages of `make dist` and its test; age makes the keys of encrypted values files. busybox-static is unpacked into the cache only
# (installing it would replace the system's busybox).
DEBIAN_PACKAGES="containerd runc containernetworking-plugins umoci docker-registry iproute2 iptables openssl curl python3 gcc libc6-dev gnupg git age redis-server"
install_debian_packages() {
    local missing=() pkg
    for pkg in $DEBIAN_PACKAGES; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        [ "$(id -u)" = 0 ] || { step="install ${missing[*]}" fail "run as root (apt-get install)"; }
        run "apt-get update" "$LOGS/apt-update.log" apt-get update
        run "apt-get install ${missing[*]}" "$LOGS/apt-install.log" \
            env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    fi
}

# The sandbox (pause) image and the example's web image, one tag per version, as OCI archives.
install_images() {
    [ -f "$IMAGES/pause.tar" ] && [ -f "$IMAGES/web.tar" ] && return
    local work="$CACHE/build/images"
    rm -rf "$work" && mkdir -p "$work"
    (cd "$work" && run "download busybox-static" "$LOGS/busybox.log" apt-get download busybox-static)
    dpkg-deb -x "$work"/busybox-static_*.deb "$work/busybox"
    local busybox="$work/busybox/bin/busybox"
    [ -x "$busybox" ] || { step="unpack busybox-static" fail "no bin/busybox in the package"; }
    run "build the pause binary" "$LOGS/pause.log" \
        gcc -Os -static -DVERSION=v3.10-helm-envs -o "$work/pause" "$K8S_BIN/../pause.c"

    step="build the images" log="$LOGS/images.log"
    : >"$log"
    {
        umoci init --layout "$work/pause-layout"
        umoci new --image "$work/pause-layout:3.10"
        umoci unpack --image "$work/pause-layout:3.10" "$work/pause-bundle"
        cp "$work/pause" "$work/pause-bundle/rootfs/pause"
        umoci repack --image "$work/pause-layout:3.10" "$work/pause-bundle"
        umoci config --image "$work/pause-layout:3.10" --config.entrypoint /pause --config.user 65535:65535
        umoci gc --layout "$work/pause-layout"

        umoci init --layout "$work/web-layout"
        local tag
        for tag in $WEB_TAGS; do
            umoci new --image "$work/web-layout:$tag"
            rm -rf "$work/web-bundle"
            umoci unpack --image "$work/web-layout:$tag" "$work/web-bundle"
            web_rootfs "$work/web-bundle/rootfs" "$busybox" "$tag"
            umoci repack --image "$work/web-layout:$tag" "$work/web-bundle"
            umoci config --image "$work/web-layout:$tag" --config.entrypoint /bin/acme-web \
                --config.workingdir / --config.exposedports 8080/tcp --config.user 1000:1000
        done
        umoci gc --layout "$work/web-layout"
        mkdir -p "$IMAGES.tmp"
        tar -C "$work/pause-layout" -cf "$IMAGES.tmp/pause.tar" .
        tar -C "$work/web-layout" -cf "$IMAGES.tmp/web.tar" .
    } >>"$log" 2>&1 || fail "umoci could not build the test images"
    step="" log=""
    rm -rf "$IMAGES" && mv "$IMAGES.tmp" "$IMAGES"
    rm -rf "$work"
    # Images of earlier recipes.
    find "$CACHE" -maxdepth 1 -name 'images-*' ! -path "$IMAGES" -exec rm -rf {} +
}

# The web image: busybox's httpd on :8080. At start it writes what it runs with (its version and
# the chart's non-secret settings) to /tmp/www/config and serves it, so a test can read, from each
# stage's running Pods, which change took effect. With `worker` as first argument it serves the
# same (the readiness probe) and logs that it works the queue.
web_rootfs() {
    local root=$1 busybox=$2 tag=$3 applet
    mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/www"
    cp "$busybox" "$root/bin/busybox"
    for applet in $("$busybox" --list); do
        [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
    done
    echo "$tag" >"$root/etc/acme-version"
    printf 'root:x:0:0:root:/:/bin/sh\nacme:x:1000:1000:acme:/tmp:/bin/sh\n' >"$root/etc/passwd"
    printf 'root:x:0:\nacme:x:1000:\n' >"$root/etc/group"
    chmod 1777 "$root/tmp"
    cat >"$root/bin/acme-web" <<'EOF'
#!/bin/sh
# acme-web test image: serves /tmp/www on :8080; /config says what this Pod runs with.
mkdir -p /tmp/www
mode=web
[ "${1:-}" = worker ] && mode=worker
{
    echo "version=$(cat /etc/acme-version)"
    echo "mode=$mode"
    for name in LOG_LEVEL REQUEST_LOGGING PAYMENTS_MODE PAYMENTS_ENDPOINT PUBLIC_URL; do
        eval "value=\${$name-}"
        echo "$name=$value"
    done
} >/tmp/www/config
echo ok >/tmp/www/healthz
echo "<h1>acme $(cat /etc/acme-version)</h1>" >/tmp/www/index.html
echo "acme-web $(cat /etc/acme-version) starting ($mode, args: $*)"
cat /tmp/www/config
# A shell as PID 1 so that SIGTERM ends the Pod at once (PID 1 ignores signals it has no
# handler for, and httpd installs none: every deleted Pod would wait out its grace period).
trap 'kill "$server" 2>/dev/null; exit 0' TERM INT
httpd -f -p 8080 -h /tmp/www &
server=$!
wait "$server"
EOF
    chmod 755 "$root/bin/acme-web"
}

cmd_install() {
    mkdir -p "$CACHE" "$LOGS"
    install_debian_packages
    install_kubernetes
    install_etcd
    install_helm
    install_sops
    install_argocd
    install_images
    echo "testbed: installed Kubernetes $K8S_VERSION, etcd $ETCD_VERSION, helm $HELM4_VERSION and $HELM3_VERSION, sops $SOPS_VERSION, Argo CD $ARGOCD_VERSION (under $CACHE)" >&2
}
