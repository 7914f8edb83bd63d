#!/usr/bin/env bash
# Real Kubernetes clusters on this machine for helm-envs' tests, demo and benchmarks: each one a
# control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) on 127.0.0.1 and a
# real node (containerd, runc, a bridge CNI network and a kubelet) that runs Pods; plus a chart
# repository and an OCI registry, both on 127.0.0.1.
#
#   scripts/testbed.sh install        Kubernetes, etcd, Helm 4, Helm 3, sops and Argo CD built from the Go
#                                     module proxy (cached outside the repo, keyed by version),
#                                     containerd, runc, CNI plugins, umoci, the chart registry and
#                                     age from Debian, and the test images (built locally, never
#                                     pulled)
#   scripts/testbed.sh peers          the tools the scale benchmark compares against, built from the
#                                     Go module proxy: helmfile, and helm-diff (a helm plugin
#                                     directory, for HELM_PLUGINS)
#   scripts/testbed.sh up [--argocd] NAME...
#                                     one cluster with one node per NAME, and the chart registry and
#                                     repository; one kubeconfig with a context per NAME. --argocd:
#                                     also Argo CD (Redis, repo-server, application controller as
#                                     local processes on 127.0.0.1) managed from the first NAME,
#                                     every cluster registered under its name, and a directory of
#                                     bare Git repositories it reads with file:// URLs
#   scripts/testbed.sh down           stop exactly what `up` started, by PID; remove the node's
#                                     network devices and cgroups; restore the kernel settings
#   scripts/testbed.sh env            print export lines (PATH with helm, kubectl and sops,
#                                     KUBECONFIG, HELM_ENVS_TESTBED, the registry's and repository's
#                                     URLs, SOPS_AGE_KEY_FILE with the example's stage keys)
#   scripts/testbed.sh status         clusters, nodes, registry and repository, up or down
#   scripts/testbed.sh signing-key    print export lines for the test bed's GnuPG key that signs
#                                     plugin packages (SIGNING_KEYRING, SIGNING_KEY, SIGNING_PUBRING;
#                                     made once, cached): for `make dist` and the plugin tests
#   scripts/testbed.sh helm-path N    the Helm N binary of the test bed (3 or 4)
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
# sops decrypts the releases' encrypted values files (age keys: Debian's `age`).
SOPS_VERSION=v3.13.3
SOPS_BIN="$CACHE/sops-$SOPS_VERSION/bin"
# Argo CD runs the GitOps stages: built with the Go toolchain its go.mod asks for.
ARGOCD_VERSION=v3.6.2
ARGOCD_GO=go1.27.3
ARGOCD_DIR="$CACHE/argocd-$ARGOCD_VERSION-$(sha256sum "$REPO/scripts/testbed/argocd-main.go" | cut -c1-12)"
# The peers of the scale benchmark. helm-diff: the newest v3 release the module proxy serves here.
HELMFILE_VERSION=v1.8.0
HELM_DIFF_VERSION=v3.9.14
PEERS="$CACHE/peers-$HELMFILE_VERSION-$HELM_DIFF_VERSION"
# Keyed by the recipe, so a changed image is rebuilt.
IMAGES="$CACHE/images-$(sed -n '/^web_rootfs()/,/^}/p; /^install_images()/,/^}/p' "$REPO/scripts/testbed/install.sh" | sha256sum | cut -c1-12)"
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

for part in install control-plane node charts argocd; do
    # shellcheck source=/dev/null
    source "$REPO/scripts/testbed/$part.sh"
done

# ---------------------------------------------------------------- commands

cmd_up() {
    local with_argocd=0
    if [ "${1:-}" = --argocd ]; then with_argocd=1; shift; fi
    [ $# -gt 0 ] || { echo "usage: scripts/testbed.sh up [--argocd] NAME..." >&2; exit 2; }
    [ "$(id -u)" = 0 ] || { step="up" fail "the test bed's nodes need root (cgroups, mounts, network namespaces)"; }
    [ -x "$K8S_BIN/kubelet" ] && [ -x "$HELM4_BIN/helm" ] && [ -x "$SOPS_BIN/sops" ] && [ -f "$IMAGES/web.tar" ] ||
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
    [ "$with_argocd" = 1 ] && argocd_up "$1"
    echo "testbed: up: $*$([ "$with_argocd" = 1 ] && echo ", Argo CD managed from $1") (kubeconfig: $RUN/kubeconfig)" >&2
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
    argocd_down
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
    echo "export PATH=\"$helm_bin:$K8S_BIN:$ETCD_BIN:$SOPS_BIN:\$PATH\""
    echo "export KUBECONFIG=\"$RUN/kubeconfig\""
    echo "export HELM_ENVS_TESTBED=\"$RUN\""
    echo "export SSL_CERT_FILE=\"$RUN/pki/ca-bundle.crt\""
    # The example's stage keys (test keys, committed with it): sops opens every stage's files.
    echo "export SOPS_AGE_KEY_FILE=\"$REPO/examples/acme/keys/all-stages.agekey\""
    [ -f "$RUN/charts/registry.url" ] && echo "export HELM_ENVS_TESTBED_REGISTRY=\"$(cat "$RUN/charts/registry.url")\""
    [ -f "$RUN/charts/repo.url" ] && echo "export HELM_ENVS_TESTBED_REPO=\"$(cat "$RUN/charts/repo.url")\""
    # Argo CD's management cluster and the directory of the bare repositories it reads.
    [ -f "$RUN/argocd/management" ] && echo "export HELM_ENVS_TESTBED_ARGOCD=\"$(cat "$RUN/argocd/management")\"" &&
        echo "export HELM_ENVS_TESTBED_GIT=\"$RUN/argocd/git\""
    return 0
}

# A key of the test bed's own (RSA: what Helm's OpenPGP reader takes), in GnuPG's legacy keyring
# format that `helm plugin package --sign` and `helm plugin install --keyring` read.
cmd_signing_key() {
    local d="$CACHE/signing-key" name="helm-envs test bed <testbed@helm-envs.invalid>"
    if [ ! -s "$d/secring.gpg" ] || [ ! -s "$d/pubring.gpg" ]; then
        rm -rf "$d" && mkdir -p "$d/gnupg" && chmod 700 "$d/gnupg"
        step="make the signing key" log="$d/keygen.log"
        {
            gpg --homedir "$d/gnupg" --batch --pinentry-mode loopback --passphrase '' \
                --quick-gen-key "$name" rsa3072 sign never &&
                gpg --homedir "$d/gnupg" --batch --export-secret-keys >"$d/secring.gpg.tmp" &&
                gpg --homedir "$d/gnupg" --batch --export >"$d/pubring.gpg.tmp" &&
                mv "$d/secring.gpg.tmp" "$d/secring.gpg" && mv "$d/pubring.gpg.tmp" "$d/pubring.gpg"
        } >"$log" 2>&1 || fail "gpg could not make the test bed's signing key"
        gpgconf --homedir "$d/gnupg" --kill all >/dev/null 2>&1 || true
        step="" log=""
    fi
    echo "export SIGNING_KEYRING=\"$d/secring.gpg\""
    echo "export SIGNING_KEY=\"testbed@helm-envs.invalid\""
    echo "export SIGNING_PUBRING=\"$d/pubring.gpg\""
}

cmd_helm_path() {
    case "${1:-}" in
    4) echo "$HELM4_BIN/helm" ;;
    3) echo "$HELM3_BIN/helm" ;;
    *) echo "usage: scripts/testbed.sh helm-path 3|4" >&2; exit 2 ;;
    esac
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
    argocd_status
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
signing-key) cmd_signing_key ;;
helm-path) cmd_helm_path "${2:-}" ;;
*)
    sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
