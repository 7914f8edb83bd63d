#!/usr/bin/env bash
# `make demo`: the bundled example (examples/acme) on three local clusters, through the real
# `helm envs` plugin. Leaves the clusters running for you to explore; `make demo-down` stops them.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '\033[2m$ %s\033[0m\n' "$*" >&2; "$@"; }

scripts/testbed.sh install
say "Starting four fresh clusters: dev, staging, production and production-us (127.0.0.1 only), and Argo CD managed from dev"
scripts/testbed.sh down
scripts/testbed.sh up --argocd dev staging production production-us
eval "$(scripts/testbed.sh env)"
scripts/testbed.sh status

say "Installing the plugin into a private helm data directory"
# Helm 4 installs a plugin from a directory into $HELM_DATA_HOME/plugins whatever HELM_PLUGINS
# says, so both point at the same place.
export HELM_DATA_HOME="$repo/.tools/helm-data"
export HELM_PLUGINS="$HELM_DATA_HOME/plugins"
rm -rf "$HELM_DATA_HOME" "$repo/.tools/helm-plugins" && mkdir -p "$HELM_PLUGINS"
export CARGO_TARGET_DIR="$repo/target"
run helm plugin install "$repo"

# The demo edits values files and keeps a lock file: it works on a copy, never on the repository.
work="$repo/.tools/demo"
rm -rf "$work" && mkdir -p "$work/examples"
cp -R examples/acme "$work/examples/acme" && cp -R charts "$work/charts"
cd "$work/examples/acme"
for stage in dev staging production; do
    run kubectl --context "$stage" get namespace kube-system -o name
done

say "The stages and releases, as helm-envs resolves them"
run helm envs list

for stage in dev staging production; do
    say "Rendering $stage (both releases in parallel; summary of what helm template printed)"
    run helm envs render "$stage" > "$repo/.tools/demo-$stage.yaml"
    grep -E '^(kind|  namespace|  name):' "$repo/.tools/demo-$stage.yaml" | paste - - - | sort | uniq -c | sed 's/^/   /'
done

say "What a deploy of dev would change (a release not installed yet is all additions)"
run helm envs diff dev -o summary

say "How staging and production differ, documented (envSpecific) apart from undocumented"
run helm envs diff --from staging --to production --release web -o summary
run helm envs diff --from staging --to production --release web --context 1 | sed -n '1,25p'

say "The Secrets the manifests reference: created in dev and staging, one forgotten in production"
run "$repo/scripts/example-secrets.sh" --skip payments-credentials@production
run helm envs check-secrets staging --release web
run helm envs check-secrets production --release web || echo "   (exit $?: production would be refused until payments-credentials exists)"

say "Fix: create the forgotten Secret in production, then check again"
run "$repo/scripts/example-secrets.sh"
run helm envs check-secrets production --release web

say "First deploy of every stage, in order, each behind its gates (production needs approval: --yes)"
say "Each release counts as deployed once its Pods are ready (health.timeout); the wait's time is shown"
start=$(date +%s%N)
run helm envs apply --yes
ms=$(( ($(date +%s%N) - start) / 1000000 ))
printf '   apply of 3 stages x 2 releases, health waits included: %d.%d s\n' $((ms / 1000)) $((ms % 1000 / 100))
run helm envs status --stage production

say "The guide's scenario, step 1: a change in dev only (release candidate 2.8.0 of the web image)"
cp envs/staging/web.yaml "$repo/.tools/demo-staging-web.before.yaml"
printf '\n# Release candidate under test in dev.\nimage:\n  tag: "2.8.0"\n' >> envs/dev/web.yaml
run tail -n 4 envs/dev/web.yaml
run helm envs upgrade dev --release web
for stage in dev staging production; do
    namespace=$(helm envs list -o json | python3 -c "import json,sys; print([s['namespace'] for s in json.load(sys.stdin)['stages'] if s['name']=='$stage'][0])")
    printf '   %-10s web runs %s\n' "$stage" "$(kubectl --context "$stage" -n "$namespace" get deploy web -o jsonpath='{.spec.template.spec.containers[0].image}')"
done

say "Step 2: dev and staging now differ outside envSpecific (an undocumented difference)"
run helm envs diff --from dev --to staging --release web -o summary

say "Skipping staging is refused (exit 3), before anything is written"
run helm envs promote --from dev --to production --yes || echo "   (exit $?)"

say "Step 3: promote dev into staging: the patch, the manifest diff, the gates, the write, the deploy"
run helm envs promote --from dev --to staging --context 1
say "Only the lines carrying the change were written into staging's values file (comments kept)"
diff -u "$repo/.tools/demo-staging-web.before.yaml" envs/staging/web.yaml || true

say "Step 4: promote staging into production (approval required: --yes)"
run helm envs promote --from staging --to production --yes --context 1

say "Each stage kept its own credential: its signing key comes from envs/STAGE/web.secrets.yaml (SOPS, its own age key), which no promotion touches"
for stage in dev staging production; do
    namespace=$(helm envs list -o json | python3 -c "import json,sys; print(next(s['namespace'] for s in json.load(sys.stdin)['stages'] if s['name']=='$stage'))")
    # A digest only: the demo shows that the keys differ, never a key.
    digest=$(kubectl --context "$stage" -n "$namespace" get secret web-session -o jsonpath='{.data.signing-key}' | base64 -d | sha256sum | cut -c1-16)
    printf '   %-10s signing key sha256 %s…\n' "$stage" "$digest"
done
run helm envs check-secrets --all --release web | grep -A1 'encrypted values'

say "Each stage's monitoring saw its own changes: helm-envs' Events in each stage's namespace"
for stage in dev staging production; do
    namespace=$(helm envs list -o json | python3 -c "import json,sys; print(next(s['namespace'] for s in json.load(sys.stdin)['stages'] if s['name']=='$stage'))")
    printf '   %s\n' "$stage:"
    kubectl --context "$stage" -n "$namespace" get events -l app.kubernetes.io/managed-by=helm-envs \
        -o custom-columns=REASON:.reason,RELEASE:.metadata.labels.helm-envs/release,FROM:.metadata.labels.helm-envs/promoted-from,MESSAGE:.message \
        --sort-by=.lastTimestamp | sed 's/^/     /'
done

say "Each stage's Pods run what it was given (real nodes: the image reports its version and settings)"
for stage in dev staging production; do
    namespace=$(helm envs list -o json | python3 -c "import json,sys; print([s['namespace'] for s in json.load(sys.stdin)['stages'] if s['name']=='$stage'][0])")
    kubectl --context "$stage" -n "$namespace" rollout status deployment/web --timeout 120s >/dev/null
    printf '   %-10s %s\n' "$stage" "$(kubectl --context "$stage" -n "$namespace" exec deploy/web -- cat /tmp/www/config | grep -E '^(version|LOG_LEVEL|PUBLIC_URL)=' | paste -sd' ')"
done

say "Where every stage stands: revision, chart, in sync with its config, the promotion it came from"
run helm envs status

say "Step 5, validate environment parity: no undocumented difference, no version skew, nothing edited by hand"
run helm envs drift --live

say "Troubleshooting: someone bypasses the workflow (helm upgrade --set in staging, kubectl in production)"
run helm --kube-context staging --namespace acme-staging upgrade worker ../../charts/acme-web \
    --reuse-values --set replicaCount=5
run kubectl --context production --namespace acme set image deployment/web acme-web=registry.acme.example.com/acme/web:hotfix
run helm envs drift --live --details || echo "   (exit $?: drift found)"
for stage in dev staging production; do
    namespace=$(helm envs list -o json | python3 -c "import json,sys; print([s['namespace'] for s in json.load(sys.stdin)['stages'] if s['name']=='$stage'][0])")
    printf '   %-10s web runs %s\n' "$stage" \
        "$(kubectl --context "$stage" -n "$namespace" get deploy web -o jsonpath='{.spec.template.spec.containers[0].image}')"
done

say "Production grows a second region: the stage on two clusters, deployed in waves (eu first, then us)"
python3 - <<'PY'
import re
path = "helm-envs.yaml"
text = open(path).read()
regions = ("    namespace: acme\n    clusters:                  # production in two regions\n"
           "      - {name: eu, kubeContext: production}\n"
           "      - {name: us, kubeContext: production-us}\n"
           "    waves: [[eu], [us]]        # us only once eu is deployed, ready and verified\n")
text = text.replace("    kubeContext: production\n    namespace: acme\n", regions, 1)
open(path, "w").write(text)
PY
run sed -n '/- name: production/,/approval/p' helm-envs.yaml
run helm envs list | sed -n '/^production/,/^  web/p'
run "$repo/scripts/example-secrets.sh" | grep production
run helm envs upgrade production --yes
run helm envs status --stage production
run helm envs drift --stage production || echo "   (exit $?: the hand-made hotfix in eu is still there)"

say "Second act, the guide's GitOps path: Argo CD deploys every stage of examples/acme-gitops from Git"
# The platform's repository: a clone of the example whose repoUrl is a bare repository on this
# machine that Argo CD reads (file://); its stages in namespaces of their own (gitops-*).
gitops="$work/gitops" bare="$HELM_ENVS_TESTBED_GIT/platform.git"
export GIT_AUTHOR_NAME="helm-envs demo" GIT_AUTHOR_EMAIL="demo@helm-envs.invalid"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
rm -rf "$gitops" "$bare" && mkdir -p "$gitops/examples"
cp -R "$repo/examples/acme-gitops" "$gitops/examples/acme-gitops" && cp -R "$repo/charts" "$gitops/charts"
cd "$gitops/examples/acme-gitops"
sed -i -e "s|https://git.acme.example.com/platform.git|file://$bare|" -e 's/namespace: acme-dev$/namespace: gitops-dev/' \
    -e 's/namespace: acme-staging$/namespace: gitops-staging/' -e 's/namespace: acme$/namespace: gitops/' helm-envs.yaml
"$repo/scripts/example-secrets.sh" >/dev/null
git -C "$gitops" init --quiet --initial-branch main && git -C "$gitops" add --all
git -C "$gitops" commit --quiet --message "the acme platform" && git init --quiet --bare "$bare"
push() { git -C "$gitops" push --quiet "$bare" HEAD:main; }
push
# A Git webhook would tell Argo CD of a push; here the Application is asked to read its branch again.
refresh() { kubectl --context dev --namespace argocd annotate application "web-$1" argocd.argoproj.io/refresh=hard --overwrite >/dev/null; }
# Until Argo CD runs the commit on the stage and its Pods are ready (3 minutes at most).
until_deployed() {
    local stage=$1 commit i
    commit=$(git -C "$gitops" rev-parse HEAD)
    for i in $(seq 180); do
        helm envs status --stage "$stage" -o json | python3 -c "
import json, sys
web = json.load(sys.stdin)['stages'][0]['releases'][0]
argo = web.get('argocd') or {}
sys.exit(0 if argo.get('sync') == 'Synced' and argo.get('revision') == '$commit' and (web.get('health') or {}).get('ready') else 1)" && {
            printf '   %s runs %s (Argo CD: Synced, Pods ready) after %d s\n' "$stage" "${commit:0:12}" "$i"; return; }
        sleep 1
    done
    echo "demo: Argo CD did not deploy $commit to $stage in 3 minutes" >&2; return 1
}
run sed -n '/- name: staging/,/context: dev/p' helm-envs.yaml
say "The Applications, generated from the stages file (the values files in its order, each stage's cluster)"
run helm envs argocd staging | sed -n '1,40p'
run helm envs argocd --apply
for stage in dev staging production; do until_deployed "$stage"; done
run helm envs status

say "Step 1: a change in dev's files only, committed and pushed: Argo CD deploys dev, and nothing else"
printf 'podAnnotations:\n  acme.example.com/release: "2"\n' >> envs/dev/web.yaml
git -C "$gitops" commit --quiet --all --message "dev: release 2" && push && refresh dev
until_deployed dev
run helm envs drift --stage staging || echo "   (exit $?: dev and staging differ outside envSpecific until the promotion)"

say "Step 2: promote dev into staging as a pull request: a commit on a branch; Argo CD's verdict on dev is the source gate"
run helm envs promote --from dev --to staging --no-deploy --git-commit --yes
branch=$(git -C "$gitops" branch --show-current)
say "The pull request is merged: Argo CD deploys staging; the merge pipeline's upgrade --push (nothing left to push) waits for it, runs staging's checks and records the promotion in staging's Events"
git -C "$gitops" checkout --quiet main && git -C "$gitops" merge --quiet --no-ff --message "Merge $branch" "$branch"
push
run helm envs upgrade staging --push --yes
until_deployed staging
run kubectl --context staging --namespace gitops-staging get events -l app.kubernetes.io/managed-by=helm-envs -o custom-columns=REASON:.reason,MESSAGE:.message

say "Step 3: staging into production without a pull request: --push sends the commit to the branch Argo CD follows and waits until production runs it (approval: --yes)"
run helm envs promote --from staging --to production --git-commit --push --yes
# main is where the pushed commit now is: the local main catches up.
branch=$(git -C "$gitops" branch --show-current)
git -C "$gitops" checkout --quiet main && git -C "$gitops" merge --quiet --ff-only "$branch"
until_deployed production
run kubectl --context production --namespace gitops get events -l app.kubernetes.io/managed-by=helm-envs -o custom-columns=REASON:.reason,MESSAGE:.message

say "Each stage's Pods took the change when its own commit was deployed; helm keeps no release for them"
for stage in dev staging production; do
    namespace=$(helm envs list -o json | python3 -c "import json,sys; print([s['namespace'] for s in json.load(sys.stdin)['stages'] if s['name']=='$stage'][0])")
    printf '   %-10s release %s, %s Pods, helm releases: %s\n' "$stage" \
        "$(kubectl --context "$stage" -n "$namespace" get deploy web -o jsonpath='{.spec.template.metadata.annotations.acme\.example\.com/release}')" \
        "$(kubectl --context "$stage" -n "$namespace" get deploy web -o jsonpath='{.status.readyReplicas}')" \
        "$(helm list --kube-context "$stage" --namespace "$namespace" --short | wc -l)"
done
run helm envs status
run git -C "$gitops" log --oneline --graph

say "Done. Clusters and Argo CD are still running: source <(scripts/testbed.sh env) to use them; make demo-down stops them."
