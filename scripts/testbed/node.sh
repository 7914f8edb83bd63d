# Sourced by scripts/testbed.sh: a real node (containerd, runc, CNI bridge, kubelet) that runs Pods, and its
# teardown, which goes through every step even when one fails.
# shellcheck shell=bash

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


node_down() (
    # Every step runs even when one before it fails (a pid already gone, a device already
    # removed): an early exit here would leave cgroups, bridges and the node index behind.
    set +e
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
)
