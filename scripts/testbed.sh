#!/usr/bin/env bash
# Real Kubernetes clusters on this machine for helm-envs' tests, demo and benchmarks: each one a
# control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) on 127.0.0.1 and a
# real node (containerd, runc, a bridge CNI network and a kubelet) that runs Pods; plus a chart
# repository and an OCI registry, both on 127.0.0.1.
#
#   scripts/testbed.sh install        Kubernetes, etcd, Helm 4 and Helm 3 built from the Go module
#                                     proxy (cached outside the repo, keyed by version), containerd,
#                                     runc, CNI plugins, umoci and the chart registry from Debian,
#                                     and the test images (built locally, never pulled)
#   scripts/testbed.sh peers          the tools the scale benchmark compares against, built from the
#                                     Go module proxy: helmfile, and helm-diff (a helm plugin
#                                     directory, for HELM_PLUGINS)
#   scripts/testbed.sh up NAME...     one cluster with one node per NAME, and the chart registry and
#                                     repository; one kubeconfig with a context per NAME
#   scripts/testbed.sh down           stop exactly what `up` started, by PID; remove the node's
#                                     network devices and cgroups; restore the kernel settings
#   scripts/testbed.sh env            print export lines (PATH with helm and kubectl, KUBECONFIG,
#                                     HELM_ENVS_TESTBED, the registry's and repository's URLs)
#   scripts/testbed.sh status         clusters, nodes, registry and repository, up or down
#
# Environment:
#   HELM_ENVS_CACHE    build cache (default ~/.cache/helm-envs)
#   TESTBED_DIR        where running clusters keep state (default <repo>/.tools/testbed)
#   HELM_ENVS_HELM     the helm major `env` puts on PATH: 4 (default) or 3
#
# Requires root (the kubelet manages cgroups, mounts and network namespaces). Nothing is pulled
# from outside the machine: Pods get only their bridge's /24 (no default route, no masquerade),
# and the kubelet listens on an address of a port-less bridge the test bed creates.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS="$REPO/.tools"
K8S_VERSION=v1.37.2
ETCD_VERSION=v3.6.16
HELM4_VERSION=v4.3.2
HELM3_VERSION=v3.22.0
CACHE="${HELM_ENVS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/helm-envs}/testbed"
K8S_BIN="$CACHE/kubernetes-$K8S_VERSION/bin"
ETCD_BIN="$CACHE/etcd-$ETCD_VERSION/bin"
HELM4_BIN="$CACHE/helm-$HELM4_VERSION/bin"
HELM3_BIN="$CACHE/helm-$HELM3_VERSION/bin"
# The peers of the scale benchmark. helm-diff: the newest v3 release the module proxy serves here.
HELMFILE_VERSION=v1.8.0
HELM_DIFF_VERSION=v3.9.14
PEERS="$CACHE/peers-$HELMFILE_VERSION-$HELM_DIFF_VERSION"
# Keyed by the recipe, so a changed image is rebuilt.
IMAGES="$CACHE/images-$(sed -n '/^web_rootfs()/,/^}/p; /^install_images()/,/^}/p' "${BASH_SOURCE[0]}" | sha256sum | cut -c1-12)"
RUN="${TESTBED_DIR:-$TOOLS/testbed}"
LOGS="$CACHE/logs"
# Machine-wide state shared by every test bed on this machine (the demo's and the tests' can run
# side by side): which node owns which bridge, subnet and address, and the kernel settings to
# restore when the last node stops.
GLOBAL=/run/helm-envs-testbed
# The device holding the nodes' addresses (10.245.0.IDX/32).
DUMMY=hetb0
# Image tags of the example's web image that the nodes hold (the example and the tests use them).
WEB_TAGS="2.7.0 2.8.0 2.9.0"
WEB_IMAGE=registry.acme.example.com/acme/web
PAUSE_IMAGE=registry.k8s.io/pause:3.10
# Kernel settings the kubelet (setupKernelTunables) and the bridge plugin change.
SYSCTLS="vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.ip_forward"

step=""
log=""
fail() {
    echo "testbed: $step failed${log:+ (log: $log)}" >&2
    [ -n "$log" ] && [ -f "$log" ] && tail -n 25 "$log" | sed 's/^/  | /' >&2
    echo "testbed: $*" >&2
    exit 1
}
# run STEP LOGFILE CMD...: run CMD with its output in LOGFILE; on failure say which step and where the log is.
run() {
    step=$1 log=$2
    shift 2
    mkdir -p "$(dirname "$log")"
    echo "testbed: $step" >&2
    "$@" >"$log" 2>&1 || fail "fix the cause above and run the command again (finished steps are cached)"
    step="" log=""
}

# ---------------------------------------------------------------- install

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

# Debian's container runtime, CNI plugins, image tool and registry. busybox-static is unpacked
# into the cache only (installing it would replace the system's busybox).
DEBIAN_PACKAGES="containerd runc containernetworking-plugins umoci docker-registry iproute2 openssl curl python3 gcc libc6-dev"
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
    install_images
    echo "testbed: installed Kubernetes $K8S_VERSION, etcd $ETCD_VERSION, helm $HELM4_VERSION and $HELM3_VERSION (under $CACHE)" >&2
}

# ---------------------------------------------------------------- up / down

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# cert NAME SUBJECT EXT: a key and a certificate signed by the test bed's CA.
cert() {
    local pki="$RUN/pki" name=$1 subject=$2 ext=$3
    openssl req -newkey rsa:2048 -nodes -subj "$subject" -keyout "$pki/$name.key" -out "$pki/$name.csr"
    printf '%b\n' "$ext" >"$pki/$name.ext"
    openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
        -days 3650 -extfile "$pki/$name.ext" -out "$pki/$name.crt"
}

make_pki() {
    local pki="$RUN/pki"
    [ -f "$pki/scheduler.crt" ] && return
    rm -rf "$pki" && mkdir -p "$pki"
    step="create PKI" log="$RUN/pki.log"
    {
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=helm-envs-testbed-ca" \
            -keyout "$pki/ca.key" -out "$pki/ca.crt"
        cert apiserver "/CN=kube-apiserver" 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth'
        cert admin "/O=system:masters/CN=admin" 'extendedKeyUsage=clientAuth'
        cert controller-manager "/CN=system:kube-controller-manager" 'extendedKeyUsage=clientAuth'
        cert scheduler "/CN=system:kube-scheduler" 'extendedKeyUsage=clientAuth'
        openssl genrsa -out "$pki/sa.key" 2048
        openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
        # Helm (Go) reads SSL_CERT_FILE: the system's roots plus the test bed's CA, so the chart
        # registry and repository on 127.0.0.1 are trusted without flags.
        cat /etc/ssl/certs/ca-certificates.crt "$pki/ca.crt" >"$pki/ca-bundle.crt" 2>/dev/null ||
            cp "$pki/ca.crt" "$pki/ca-bundle.crt"
    } >"$log" 2>&1 || fail "openssl could not create the test PKI"
    step="" log=""
}

# kubeconfig FILE SERVER USER-CERT-NAME: a kubeconfig for one identity of one cluster.
kubeconfig() {
    cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: testbed
  cluster:
    server: $2
    certificate-authority: $RUN/pki/ca.crt
users:
- name: $3
  user:
    client-certificate: $RUN/pki/$3.crt
    client-key: $RUN/pki/$3.key
contexts:
- name: testbed
  context: {cluster: testbed, user: $3}
current-context: testbed
EOF
    chmod 600 "$1"
}

# start DIR NAME CMD...: CMD in the background, output in DIR/NAME.log, PID in DIR/NAME.pid.
start() {
    local dir=$1 name=$2
    shift 2
    "$@" </dev/null >"$dir/$name.log" 2>&1 &
    echo $! >"$dir/$name.pid"
}

control_plane_up() {
    local name=$1 dir="$RUN/clusters/$1"
    local etcd_port peer_port api_port
    etcd_port=$(free_port) peer_port=$(free_port) api_port=$(free_port)
    echo "$api_port" >"$dir/port"
    start "$dir" etcd "$ETCD_BIN/etcd" --name "$name" --data-dir "$dir/etcd" \
        --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
        --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
        --initial-cluster "$name=http://127.0.0.1:$peer_port" --listen-metrics-urls "" \
        --quota-backend-bytes 2147483648 --log-level warn
    start "$dir" apiserver "$K8S_BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$etcd_port" \
        --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
        --tls-cert-file="$RUN/pki/apiserver.crt" --tls-private-key-file="$RUN/pki/apiserver.key" \
        --client-ca-file="$RUN/pki/ca.crt" \
        --service-account-issuer=https://kubernetes.default.svc.cluster.local \
        --service-account-key-file="$RUN/pki/sa.pub" --service-account-signing-key-file="$RUN/pki/sa.key" \
        --service-cluster-ip-range=10.0.0.0/24 --authorization-mode=Node,RBAC \
        --enable-admission-plugins=NodeRestriction --allow-privileged=true --profiling=false \
        --kubelet-client-certificate="$RUN/pki/admin.crt" --kubelet-client-key="$RUN/pki/admin.key" \
        --kubelet-preferred-address-types=InternalIP --endpoint-reconciler-type=none
}

# wait_for CLUSTER DIR PROCESS... -- CHECK...: until CHECK succeeds (60 s at most); fails at
# once, with the log, when one of the PROCESSes (pid files DIR/PROCESS.pid) exits.
wait_for() {
    local name=$1 dir=$2 p
    shift 2
    local processes=()
    while [ "$1" != -- ]; do processes+=("$1"); shift; done
    shift
    for _ in $(seq 1 240); do
        "$@" && return
        for p in "${processes[@]}"; do
            if ! kill -0 "$(cat "$dir/$p.pid")" 2>/dev/null; then
                step="start $p for cluster $name" log="$dir/$p.log"
                fail "$p exited; see its log"
            fi
        done
        sleep 0.25
    done
    step="wait for cluster $name: ${processes[*]}" log="$dir/${processes[-1]}.log"
    fail "not ready within 60 s: $*"
}

api_ready() {
    curl -fsS --cacert "$RUN/pki/ca.crt" --cert "$RUN/pki/admin.crt" --key "$RUN/pki/admin.key" \
        "https://127.0.0.1:$(cat "$RUN/clusters/$1/port")/readyz" >/dev/null 2>&1
}

node_ready() {
    [ "$("$K8S_BIN/kubectl" --kubeconfig "$RUN/kubeconfig" --context "$1" get node "$1-node" \
        -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

wait_ready() {
    wait_for "$1" "$RUN/clusters/$1" etcd apiserver -- api_ready "$1"
}

controllers_up() {
    local name=$1 dir="$RUN/clusters/$1" server
    server="https://127.0.0.1:$(cat "$dir/port")"
    kubeconfig "$dir/controller-manager.kubeconfig" "$server" controller-manager
    kubeconfig "$dir/scheduler.kubeconfig" "$server" scheduler
    start "$dir" controller-manager "$K8S_BIN/kube-controller-manager" \
        --kubeconfig="$dir/controller-manager.kubeconfig" --leader-elect=false --secure-port=0 \
        --use-service-account-credentials=true --service-account-private-key-file="$RUN/pki/sa.key" \
        --root-ca-file="$RUN/pki/ca.crt" --cluster-signing-cert-file="$RUN/pki/ca.crt" \
        --cluster-signing-key-file="$RUN/pki/ca.key"
    start "$dir" scheduler "$K8S_BIN/kube-scheduler" --kubeconfig="$dir/scheduler.kubeconfig" \
        --leader-elect=false --secure-port=0
}

# Serialises the machine-wide allocation of node indexes.
global_lock() {
    mkdir -p "$GLOBAL/nodes"
    exec {GLOBAL_LOCK}>"$GLOBAL/lock"
    flock "$GLOBAL_LOCK"
}
global_unlock() { exec {GLOBAL_LOCK}>&-; }

# A free node index 1..250: it names the node's bridge, subnet (10.244.IDX.0/24), address
# (10.245.0.IDX on $DUMMY) and cgroup root.
allocate_index() {
    local node_dir=$1 idx
    for idx in $(seq 1 250); do
        if [ ! -e "$GLOBAL/nodes/$idx" ] && ! ip link show "hetbbr$idx" >/dev/null 2>&1; then
            echo "$node_dir" >"$GLOBAL/nodes/$idx"
            echo "$idx"
            return
        fi
    done
    step="allocate a node" fail "250 test bed nodes are registered in $GLOBAL/nodes; run down in the test beds that own them"
}

NODE_ROOTS="cpu cpuacct cpuset memory pids systemd blkio devices freezer hugetlb net_cls perf_event"
# Bind-mounted per node inside its mount namespace: paths the kubelet and containerd hard-code,
# whose contents one node would otherwise garbage-collect from under another.
PRIVATE_DIRS="/var/log/pods /var/log/containers /var/lib/kubelet/device-plugins /var/lib/cni /run/containerd /var/run/netns"

node_up() {
    local name=$1 dir="$RUN/clusters/$1" n="$RUN/clusters/$1/node" idx node_ip server
    server="https://127.0.0.1:$(cat "$dir/port")"
    mkdir -p "$n"
    global_lock
    [ -f "$GLOBAL/sysctl.saved" ] || sysctl -n $SYSCTLS | paste -d= <(tr ' ' '\n' <<<"$SYSCTLS") - >"$GLOBAL/sysctl.saved"
    idx=$(allocate_index "$n")
    global_unlock
    echo "$idx" >"$n/index"
    node_ip="10.245.0.$idx"
    # A bridge without ports stands in for a dummy interface (this kernel has no dummy driver):
    # an address that exists only on this machine.
    ip link show "$DUMMY" >/dev/null 2>&1 || ip link add "$DUMMY" type bridge
    ip link set "$DUMMY" up
    ip addr add "$node_ip/32" dev "$DUMMY" 2>/dev/null || true

    local cg
    for cg in $NODE_ROOTS; do
        [ -d "/sys/fs/cgroup/$cg" ] || continue
        mkdir -p "/sys/fs/cgroup/$cg/helm-envs-$idx"
    done
    if [ -d /sys/fs/cgroup/cpuset/helm-envs-$idx ]; then
        cat /sys/fs/cgroup/cpuset/cpuset.cpus >"/sys/fs/cgroup/cpuset/helm-envs-$idx/cpuset.cpus"
        cat /sys/fs/cgroup/cpuset/cpuset.mems >"/sys/fs/cgroup/cpuset/helm-envs-$idx/cpuset.mems"
    fi

    # A certificate for the kubelet's identity; the Node authorizer limits it to its own node.
    (cert "node-$name" "/O=system:nodes/CN=system:node:$name-node" 'extendedKeyUsage=clientAuth') >"$n/cert.log" 2>&1
    kubeconfig "$n/kubelet.kubeconfig" "$server" "node-$name"

    # The mount namespace the node's containerd and kubelet share.
    local binds="" d
    for d in $PRIVATE_DIRS; do
        mkdir -p "$d" "$n/host$d"
        binds+="mount --bind '$n/host$d' '$d' && "
    done
    unshare --mount --propagation slave -- sh -c "${binds}exec sleep 2147483647" </dev/null >/dev/null 2>&1 &
    echo $! >"$n/mntns.pid"
    local ns="/proc/$(cat "$n/mntns.pid")/ns/mnt"
    for _ in $(seq 1 50); do
        [ "$(readlink "$ns")" != "$(readlink /proc/self/ns/mnt)" ] && nsenter --mount="$ns" -- mountpoint -q /run/containerd && break
        sleep 0.1
    done

    local c="$n/containerd"
    mkdir -p "$c/certs.d/_default" "$n/cni/net.d" "$n/cni/ipam"
    cat >"$c/config.toml" <<EOF
version = 2
root = "$c/root"
state = "$c/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.grpc.v1.cri.tracing"]
[grpc]
  address = "$c/containerd.sock"
[ttrpc]
  address = "$c/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$n/runc"
        BinaryName = "runc"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$c/certs.d"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$n/cni/net.d"
    max_conf_num = 1
EOF
    # Nothing is ever pulled: every registry resolves to a closed local port.
    printf 'server = "http://127.0.0.1:1"\n[host."http://127.0.0.1:1"]\n  capabilities = ["pull", "resolve"]\n' \
        >"$c/certs.d/_default/hosts.toml"
    # No routes and no masquerade: Pods reach their bridge's /24 and nothing else.
    cat >"$n/cni/net.d/10-helm-envs.conflist" <<EOF
{ "cniVersion": "0.4.0", "name": "helm-envs-$idx",
  "plugins": [ { "type": "bridge", "bridge": "hetbbr$idx", "isGateway": true, "ipMasq": false,
                 "hairpinMode": true,
                 "ipam": { "type": "host-local", "dataDir": "$n/cni/ipam",
                           "ranges": [[{"subnet": "10.244.$idx.0/24"}]] } } ] }
EOF
    start "$n" containerd nsenter --mount="$ns" -- containerd --config "$c/config.toml"
    for _ in $(seq 1 100); do [ -S "$c/containerd.sock" ] && break; sleep 0.1; done
    [ -S "$c/containerd.sock" ] || { step="start containerd for $name" log="$n/containerd.log"; fail "containerd did not open its socket"; }
    step="import images into $name's containerd" log="$n/import.log"
    {
        ctr -a "$c/containerd.sock" -n k8s.io images import --base-name "${PAUSE_IMAGE%:*}" "$IMAGES/pause.tar"
        ctr -a "$c/containerd.sock" -n k8s.io images import --base-name "$WEB_IMAGE" "$IMAGES/web.tar"
    } >"$log" 2>&1 || fail "ctr could not import the images"
    step="" log=""

    local kubelet_port healthz_port
    kubelet_port=$(free_port) healthz_port=$(free_port)
    cat >"$n/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: "$node_ip"
port: $kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $healthz_port
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: "$RUN/pki/ca.crt"}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: "unix://$c/containerd.sock"
runtimeRequestTimeout: 2m
cgroupDriver: cgroupfs
cgroupRoot: /helm-envs-$idx
failCgroupV1: false
failSwapOn: false
makeIPTablesUtilChains: false
nodeStatusUpdateFrequency: 2s
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
oomScoreAdj: 0
maxPods: 250
serializeImagePulls: false
volumePluginDir: "$n/kubelet/volume-plugins"
EOF
    start "$n" kubelet nsenter --mount="$ns" -- "$K8S_BIN/kubelet" --config="$n/kubelet.yaml" \
        --kubeconfig="$n/kubelet.kubeconfig" --hostname-override="$name-node" --node-ip="$node_ip" \
        --root-dir="$n/kubelet" --cert-dir="$n/kubelet/pki" --v=1
}

wait_node_ready() {
    wait_for "$1" "$RUN/clusters/$1/node" containerd kubelet -- node_ready "$1"
}

write_kubeconfig() {
    local kc="$RUN/kubeconfig.tmp" name first=""
    {
        echo "apiVersion: v1"
        echo "kind: Config"
        echo "clusters:"
        for dir in "$RUN"/clusters/*/; do
            name=$(basename "$dir")
            echo "- name: $name"
            echo "  cluster:"
            echo "    server: https://127.0.0.1:$(cat "$dir/port")"
            echo "    certificate-authority: $RUN/pki/ca.crt"
        done
        echo "users:"
        echo "- name: admin"
        echo "  user:"
        echo "    client-certificate: $RUN/pki/admin.crt"
        echo "    client-key: $RUN/pki/admin.key"
        echo "contexts:"
        for dir in "$RUN"/clusters/*/; do
            name=$(basename "$dir")
            first=${first:-$name}
            echo "- name: $name"
            echo "  context:"
            echo "    cluster: $name"
            echo "    user: admin"
        done
        echo "current-context: $first"
    } >"$kc"
    chmod 600 "$kc"
    mv "$kc" "$RUN/kubeconfig"
}

# ------------------------------------------------- chart registry (OCI) and repository (HTTP)

# The example chart published at several versions: 1.4.2 (the chart as it is) and the versions a
# promotion moves through. Each version's appVersion follows the web image it ships.
CHART_VERSIONS="1.4.2:2.7.0 1.5.0:2.8.0 1.6.0:2.9.0"

charts_up() {
    local d="$RUN/charts"
    if [ -f "$d/registry.pid" ] && kill -0 "$(cat "$d/registry.pid")" 2>/dev/null; then
        return
    fi
    rm -rf "$d" && mkdir -p "$d/packages" "$d/repo" "$d/registry-data"
    local registry_port repo_port
    registry_port=$(free_port) repo_port=$(free_port)
    cert charts "/CN=127.0.0.1" 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth' >"$d/cert.log" 2>&1
    cat >"$d/registry.yml" <<EOF
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $d/registry-data}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:$registry_port
  tls: {certificate: $RUN/pki/charts.crt, key: $RUN/pki/charts.key}
EOF
    start "$d" registry docker-registry serve "$d/registry.yml"
    cat >"$d/serve.py" <<'EOF'
import functools, http.server, ssl, sys
root, port, crt, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(crt, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
EOF
    start "$d" repo python3 "$d/serve.py" "$d/repo" "$repo_port" "$RUN/pki/charts.crt" "$RUN/pki/charts.key"
    echo "oci://127.0.0.1:$registry_port/charts" >"$d/registry.url"
    echo "https://127.0.0.1:$repo_port" >"$d/repo.url"

    local helm="$HELM4_BIN/helm" home="$d/helm-home" spec version app
    step="publish the example chart" log="$d/publish.log"
    {
        for spec in $CHART_VERSIONS; do
            version=${spec%%:*} app=${spec#*:}
            rm -rf "$d/src" && mkdir -p "$d/src" && cp -R "$REPO/charts/acme-web" "$d/src/"
            sed -i -E "s/^version: .*/version: $version/; s/^appVersion: .*/appVersion: \"$app\"/" "$d/src/acme-web/Chart.yaml"
            sed -i -E "s/^  tag: .*/  tag: \"$app\"/" "$d/src/acme-web/values.yaml"
            HELM_CACHE_HOME="$home/cache" HELM_CONFIG_HOME="$home/config" HELM_DATA_HOME="$home/data" \
                "$helm" package "$d/src/acme-web" --destination "$d/packages"
        done
        cp "$d/packages/"*.tgz "$d/repo/"
        HELM_CACHE_HOME="$home/cache" HELM_CONFIG_HOME="$home/config" HELM_DATA_HOME="$home/data" \
            "$helm" repo index "$d/repo" --url "$(cat "$d/repo.url")"
        for _ in $(seq 1 50); do
            curl -fsS --cacert "$RUN/pki/ca.crt" "https://127.0.0.1:$registry_port/v2/" >/dev/null && break
            sleep 0.1
        done
        for spec in $CHART_VERSIONS; do
            SSL_CERT_FILE="$RUN/pki/ca-bundle.crt" HELM_CACHE_HOME="$home/cache" HELM_CONFIG_HOME="$home/config" \
                HELM_DATA_HOME="$home/data" "$helm" push "$d/packages/acme-web-${spec%%:*}.tgz" "$(cat "$d/registry.url")"
        done
        for _ in $(seq 1 50); do
            curl -fsS --cacert "$RUN/pki/ca.crt" "$(cat "$d/repo.url")/index.yaml" >/dev/null 2>&1 && break
            sleep 0.1
        done
        curl -fsS --cacert "$RUN/pki/ca.crt" "$(cat "$d/repo.url")/index.yaml"
    } >"$log" 2>&1 || fail "the chart registry or repository did not take the example chart"
    step="" log=""
}

# ---------------------------------------------------------------- commands

cmd_up() {
    [ $# -gt 0 ] || { echo "usage: scripts/testbed.sh up NAME..." >&2; exit 2; }
    [ "$(id -u)" = 0 ] || { step="up" fail "the test bed's nodes need root (cgroups, mounts, network namespaces)"; }
    [ -x "$K8S_BIN/kubelet" ] && [ -x "$HELM4_BIN/helm" ] && [ -f "$IMAGES/web.tar" ] ||
        { step="up" fail "the test bed is not installed: run scripts/testbed.sh install"; }
    local name
    for name in "$@"; do
        [[ "$name" =~ ^[a-z0-9][a-z0-9-]*$ ]] || { step="up" fail "cluster name '$name' must be lowercase letters, digits and '-'"; }
    done
    mkdir -p "$RUN/clusters"
    make_pki
    local started=()
    for name in "$@"; do
        if [ -f "$RUN/clusters/$name/apiserver.pid" ] && kill -0 "$(cat "$RUN/clusters/$name/apiserver.pid")" 2>/dev/null; then
            echo "testbed: cluster $name is already up" >&2
            continue
        fi
        rm -rf "$RUN/clusters/$name" && mkdir -p "$RUN/clusters/$name"
        control_plane_up "$name"
        started+=("$name")
    done
    for name in "${started[@]}"; do wait_ready "$name"; done
    write_kubeconfig
    for name in "${started[@]}"; do controllers_up "$name"; node_up "$name"; done
    charts_up
    for name in "${started[@]}"; do wait_node_ready "$name"; done
    echo "testbed: up: $* (kubeconfig: $RUN/kubeconfig)" >&2
}

# alive PID: running (a zombie that nobody reaped yet has ended).
alive() {
    [ -r "/proc/$1/stat" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# stop PIDFILE...: TERM to each, KILL to what is left after 3 s. The test bed's state is thrown
# away, so nothing needs a graceful shutdown.
stop() {
    local pidfile pids=()
    for pidfile in "$@"; do
        [ -f "$pidfile" ] || continue
        pids+=("$(cat "$pidfile")")
        rm -f "$pidfile"
    done
    [ ${#pids[@]} -gt 0 ] || return 0
    kill "${pids[@]}" 2>/dev/null || true
    local pid
    for _ in $(seq 1 30); do
        for pid in "${pids[@]}"; do alive "$pid" && break; pid=""; done
        [ -z "$pid" ] && return 0
        sleep 0.1
    done
    kill -9 "${pids[@]}" 2>/dev/null || true
}

node_down() {
    local n=${1%/} idx
    [ -d "$n" ] || return 0
    idx=$(cat "$n/index" 2>/dev/null || true)
    stop "$n/kubelet.pid" "$n/containerd.pid"
    if [ -n "$idx" ]; then
        # The containers and their shims (shims outlive containerd): everything in the node's
        # cgroups, and every shim of its containerd.
        local pids cg
        pids=$(find /sys/fs/cgroup/pids/helm-envs-"$idx" -name cgroup.procs -exec cat {} + 2>/dev/null || true)
        pids+=" $(pgrep -f "containerd-shim-runc-v2 .*-address $n/containerd/containerd.sock" || true)"
        # shellcheck disable=SC2086
        [ -n "${pids// /}" ] && kill -9 $pids 2>/dev/null
        for _ in $(seq 1 30); do
            pgrep -f "containerd-shim-runc-v2 .*-address $n/containerd/containerd.sock" >/dev/null || break
            sleep 0.1
        done
        for cg in $NODE_ROOTS; do
            [ -d "/sys/fs/cgroup/$cg/helm-envs-$idx" ] || continue
            find "/sys/fs/cgroup/$cg/helm-envs-$idx" -depth -type d -exec rmdir {} \; 2>/dev/null || true
        done
        ip link del "hetbbr$idx" 2>/dev/null || true
        ip addr del "10.245.0.$idx/32" dev "$DUMMY" 2>/dev/null || true
    fi
    # Network namespaces and mounts live in the node's mount namespace and go with it.
    stop "$n/mntns.pid"
    [ -n "$idx" ] && rm -f "$GLOBAL/nodes/$idx"
    return 0
}

cmd_down() {
    local dir p stopped=() pidfiles=()
    if [ -d "$RUN/clusters" ]; then
        for dir in "$RUN"/clusters/*/; do
            [ -d "$dir" ] || continue
            dir=${dir%/}
            node_down "$dir/node" &
            for p in scheduler controller-manager apiserver etcd; do pidfiles+=("$dir/$p.pid"); done
            stopped+=("$(basename "$dir")")
        done
    fi
    wait
    stop "${pidfiles[@]}" "$RUN/charts/registry.pid" "$RUN/charts/repo.pid"
    for p in "${stopped[@]}"; do rm -rf "$RUN/clusters/$p"; done
    rm -rf "$RUN/charts"
    rm -f "$RUN/kubeconfig"
    # The last node on the machine restores the kernel settings and removes $DUMMY.
    if [ -d "$GLOBAL/nodes" ]; then
        global_lock
        if [ -z "$(ls -A "$GLOBAL/nodes")" ]; then
            if [ -f "$GLOBAL/sysctl.saved" ]; then
                local line
                while read -r line; do sysctl -q -w "$line" >/dev/null 2>&1 || true; done <"$GLOBAL/sysctl.saved"
                rm -f "$GLOBAL/sysctl.saved"
            fi
            ip link del "$DUMMY" 2>/dev/null || true
        fi
        global_unlock
    fi
    echo "testbed: down: ${stopped[*]:-nothing was running}" >&2
}

cmd_env() {
    local helm_bin=$HELM4_BIN
    case "${HELM_ENVS_HELM:-4}" in
    4) ;;
    3) helm_bin=$HELM3_BIN ;;
    *) echo "testbed: HELM_ENVS_HELM must be 3 or 4, not '${HELM_ENVS_HELM}'" >&2; exit 2 ;;
    esac
    echo "export PATH=\"$helm_bin:$K8S_BIN:$ETCD_BIN:\$PATH\""
    echo "export KUBECONFIG=\"$RUN/kubeconfig\""
    echo "export HELM_ENVS_TESTBED=\"$RUN\""
    echo "export SSL_CERT_FILE=\"$RUN/pki/ca-bundle.crt\""
    [ -f "$RUN/charts/registry.url" ] && echo "export HELM_ENVS_TESTBED_REGISTRY=\"$(cat "$RUN/charts/registry.url")\""
    [ -f "$RUN/charts/repo.url" ] && echo "export HELM_ENVS_TESTBED_REPO=\"$(cat "$RUN/charts/repo.url")\""
    return 0
}

cmd_status() {
    local dir state
    for dir in "$RUN"/clusters/*/; do
        [ -d "$dir" ] || continue
        dir=${dir%/}
        if kill -0 "$(cat "$dir/apiserver.pid" 2>/dev/null)" 2>/dev/null; then
            state="up https://127.0.0.1:$(cat "$dir/port")"
            if kill -0 "$(cat "$dir/node/kubelet.pid" 2>/dev/null)" 2>/dev/null; then
                state+=", node $(basename "$dir")-node at 10.245.0.$(cat "$dir/node/index")"
            else
                state+=", node down"
            fi
        else
            state=down
        fi
        echo "$(basename "$dir") $state"
    done
    if kill -0 "$(cat "$RUN/charts/registry.pid" 2>/dev/null)" 2>/dev/null; then
        echo "registry up $(cat "$RUN/charts/registry.url")"
        echo "repository up $(cat "$RUN/charts/repo.url")"
    fi
}

case "${1:-}" in
install) cmd_install ;;
peers) cmd_peers ;;
up) shift; cmd_up "$@" ;;
down) cmd_down ;;
env) cmd_env ;;
status) cmd_status ;;
*)
    sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
