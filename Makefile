# helm-envs: the two set-up commands are `make demo` and `make test`.
# Both install what they need (Kubernetes, etcd, Helm 4 and Helm 3, sops and Argo CD built once
# from the Go module proxy into ~/.cache/helm-envs; containerd, runc and CNI plugins from Debian) and start/stop
# local clusters, each with a real node that runs Pods, themselves.

SHELL := /bin/bash
TESTBED := scripts/testbed.sh
# Clusters for the test suite live apart from the demo's, so both can run side by side.
TEST_TESTBED_DIR := $(CURDIR)/.tools/testbed-test

.PHONY: all build install-tools demo demo-down check test dist clean

all: build

build:
	cargo build --release --locked

install-tools:
	$(TESTBED) install

# A real run of the example on three local clusters: dev, staging and production.
demo: install-tools
	bash scripts/demo.sh

demo-down:
	$(TESTBED) down

# What needs no cluster, no helm and no root, in a few minutes, first: formatting, lints, the
# unit tests, and the integration tests that need no test bed (run without one, so a test that
# starts needing a cluster fails here instead of passing by accident).
OFFLINE_TESTS := architecture:: bad_input:: cli:: encrypted::encrypted_files_listed_in_the_wrong_list documented::every documented::the_field_checker list:: needs::needs_on_unknown plugin::the_plugin_manifest schema:: readme::wildcards readme::every_readme_setup
check:
	cargo fmt --check
	cargo clippy --locked --all-targets -- -D warnings
	cargo test --locked --lib
	env -u HELM_ENVS_TESTBED -u KUBECONFIG cargo test --locked --test integration -- $(OFFLINE_TESTS)

# The integration tests mostly wait on clusters (rollouts, health timeouts): four at a time.
TEST_THREADS := 4
# Helm 3 runs again every module whose behaviour depends on helm's major version (the flags of
# render, upgrade and rollback, `lookup`, server-side apply, waits, helm's records and messages,
# the plugin loader); these test helm-envs' own logic over the same calls, and run with Helm 4
# only: multi-cluster waves, time gates, the fleet benchmark, CI recipes, Markdown reports,
# isolation, exec, the Secrets check; and what needs no cluster, which `make check` ran.
HELM4_ONLY := waves:: time_gates:: scale:: ci:: markdown:: isolation:: exec:: check_secrets:: $(OFFLINE_TESTS)

# `make check`, then unit and integration tests against real helm and three real clusters (and
# Argo CD, managed from dev, for the stages it deploys): the whole suite with Helm 4, then the
# integration tests whose behaviour depends on the major again with Helm 3 (HELM_ENVS_HELM picks
# the major; Argo CD renders with the test bed's Helm 4 either way, helm-envs with the major
# under test). The clusters are stopped afterwards, whether the tests pass or not.
test: check install-tools
	@export TESTBED_DIR=$(TEST_TESTBED_DIR); \
	$(TESTBED) up --argocd dev staging production || { $(TESTBED) down; exit 1; }; \
	status=0; \
	( eval "$$(HELM_ENVS_HELM=4 $(TESTBED) env)" && echo "== helm $$(helm version --short)" && \
	  cargo test --locked -- --test-threads=$(TEST_THREADS) ) || status=1; \
	( eval "$$(HELM_ENVS_HELM=3 $(TESTBED) env)" && echo "== helm $$(helm version --short)" && \
	  cargo test --locked --test integration -- --test-threads=$(TEST_THREADS) \
	    $(foreach module,$(HELM4_ONLY),--skip $(module)) ) || status=1; \
	$(TESTBED) down; \
	exit $$status

# The release artifacts in dist/: archives, checksums, the signed plugin packages for Helm 4 and
# Helm 3, the release notes (docs/ci/release.md). RELEASE_URL, SIGNING_KEYRING, SIGNING_KEY, HELM.
dist:
	bash scripts/dist.sh

clean:
	-$(TESTBED) down
	cargo clean
	rm -rf .tools bin dist
