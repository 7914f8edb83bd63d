# Sourced by scripts/testbed.sh: the chart registry (OCI) and repository (HTTP) the tests pull charts from.
# shellcheck shell=bash

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
# .tgz as application/gzip, as release hosts serve it: Helm 3 installs a plugin from a URL only
# when the Content-Type names an archive (the plugin release test serves its packages with this).
class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".tgz": "application/gzip"}
handler = functools.partial(Handler, directory=root)
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
