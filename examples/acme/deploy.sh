#!/bin/sh
# The acme team's release script from before helm-envs, adapted to `helm envs exec`: instead of
# its own copy of each stage's context, namespace and values files, it reads them from the
# environment helm-envs gives it. Run it as
#   helm envs exec STAGE --release RELEASE [--gated] -- ./deploy.sh
set -eu
: "${HELM_ENVS_RELEASE:?run me with: helm envs exec STAGE --release RELEASE -- ./deploy.sh}"

# HELM_ENVS_VALUES: the values files in helm's merge order, one absolute path per line.
set -f                      # no globbing of the paths
old_ifs=$IFS
IFS='
'
set --
for file in $HELM_ENVS_VALUES; do set -- "$@" --values "$file"; done
IFS=$old_ifs

echo "deploying $HELM_ENVS_RELEASE to $HELM_ENVS_STAGE ($HELM_KUBECONTEXT/$HELM_NAMESPACE) with $# values arguments"
# HELM_ENVS_SECRETS: the release's SOPS-encrypted values files, still encrypted. This script
# takes at most one, decrypted by sops into memory and piped to helm (`--values -`), never
# into a file.
case "${HELM_ENVS_SECRETS:-}" in
"")
    exec helm upgrade --install "$HELM_ENVS_RELEASE" "$HELM_ENVS_CHART" \
        --kube-context "$HELM_KUBECONTEXT" --namespace "$HELM_NAMESPACE" "$@"
    ;;
*"
"*)
    echo "deploy.sh takes one encrypted values file; the release has several" >&2
    exit 1
    ;;
*)
    decrypted=$(sops --decrypt "$HELM_ENVS_SECRETS")   # in memory; a failure stops here (set -e)
    printf '%s\n' "$decrypted" | helm upgrade --install "$HELM_ENVS_RELEASE" "$HELM_ENVS_CHART" \
        --kube-context "$HELM_KUBECONTEXT" --namespace "$HELM_NAMESPACE" "$@" --values -
    ;;
esac
