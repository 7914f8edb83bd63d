# Sourced by scripts/testbed.sh: PKI, kubeconfigs and the control plane (etcd, kube-apiserver,
# controller-manager, scheduler) of one cluster.
# shellcheck shell=bash

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
