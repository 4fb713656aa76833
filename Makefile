# Tidal: every developer and CI entry point. README.md names `make demo` and `make test`.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

# Caches live outside the clone so a fresh clone (CI) reuses compiled crates and Go builds.
TIDAL_CACHE ?= $(HOME)/.cache/tidal
CARGO_TARGET_DIR ?= $(TIDAL_CACHE)/target
export TIDAL_CACHE CARGO_TARGET_DIR
CARGO ?= cargo

.PHONY: help test demo scale toolchain lint fmt fmt-check clippy shellcheck unit fuzz fuzz-smoke e2e image image-build cluster-up cluster-down crds compare-reaction

help:
	@echo "make test    everything CI runs: format, lint, unit, conformance and e2e tests"
	@echo "make e2e     only the e2e stage (local control plane up, tests, down)"
	@echo "make demo    the built-in HPA and Tidal side by side on the local control plane (~4 min warm)"
	@echo "make scale   kube-controller-manager vs Tidal at N = 100, 1000, 5000, 10000 on a cluster of its own (README, Performance)"
	@echo "make image   build the operator image without Docker (buildah) and run it as the chart does"
	@echo "make fmt     format the code;  make lint  shellcheck + rustfmt check + clippy"
	@echo "make crds    regenerate crds/autoscaler.yaml from the Rust types"
	@echo "make fuzz    each fuzz target for FUZZ_SECONDS (default $(FUZZ_SECONDS)); make fuzz-smoke  25 s each"

## test: everything CI runs.
test: lint unit fuzz-smoke e2e

## e2e: local control plane (built from Go modules on first use, ~20 min cold), e2e tests,
## chart checks; see hack/e2e.sh and e2e/README.md.
e2e: toolchain
	./hack/e2e.sh

## image: the operator image, built on this machine without a Docker engine (hack/image-build.sh:
## static musl binary, hack/image-rootfs.sh, buildah on the Dockerfile's runtime stage), then run
## under the chart's securityContext against the local control plane until it has scaled a
## Deployment (hack/image-smoke.sh). Prints the image size and start-up time.
image: image-build
	./hack/image-smoke.sh

image-build: toolchain
	./hack/image-build.sh

cluster-up:
	e2e/cluster/cluster.sh up

cluster-down:
	e2e/cluster/cluster.sh down

## demo: Tidal and the built-in HPA side by side on the local control plane (hack/demo.sh):
## brings the cluster up if needed, installs the CRD, runs a 3-minute comparison, prints the
## summary and where the plot is.
demo: toolchain
	./hack/demo.sh

## compare-reaction: reaction to fresh metrics, Tidal vs the built-in HPA at kcm's 5 s (the rig's)
## and 15 s (its default) sync period, on a 20-step trace: about 40 minutes (hack/compare-reaction.sh).
compare-reaction: toolchain
	./hack/compare-reaction.sh

## scale: kube-controller-manager's HPA controller and Tidal at N objects (hack/scale.sh,
## `tidal-e2e scale`) on a cluster of its own sized for the largest N; README, Performance.
## TIDAL_SCALE_OBJECTS=100,1000 make scale runs fewer.
scale: toolchain
	./hack/scale.sh

toolchain:
	@./hack/ensure-rust.sh

fmt: toolchain
	$(CARGO) fmt --all

fmt-check: toolchain
	$(CARGO) fmt --all -- --check

clippy: toolchain
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

## shellcheck: every shell script (hack/, e2e/cluster/, e2e/kind/), following what they source
## (hack/lib.sh, e2e/cluster/stack-env.sh); installs shellcheck from Debian's packages if missing.
SHELL_SCRIPTS := $(wildcard hack/*.sh e2e/cluster/*.sh e2e/kind/*.sh)
shellcheck:
	@./hack/ensure-tools.sh shellcheck
	shellcheck -x $(SHELL_SCRIPTS)

lint: shellcheck fmt-check clippy

unit: toolchain
	$(CARGO) test --workspace --locked
	@# README's offline example, exactly as written (shared/ sits beside the clone).
	$(CARGO) run -q --locked -p tidal -- calc ../shared/conformance/cases/A14.json > /dev/null
	@echo "unit: README's calc example ok"
	@# README's offline convert examples, exactly as written (the cluster ones run in hack/e2e.sh).
	$(CARGO) run -q --locked -p tidal -- convert --to hpa crds/examples/behavior.yaml > /dev/null
	$(CARGO) run -q --locked -p tidal -- convert --to hpa crds/examples/behavior.yaml | $(CARGO) run -q --locked -p tidal -- convert > /dev/null
	@echo "unit: README's convert examples ok"

## fuzz: the libFuzzer targets of fuzz/ one after another, one job each (hack/fuzz.sh; nightly).
## The default gives each target at least 10 million executions on 2 shared cores: the slowest,
## selector, ran at 7,674 exec/s over 1,303 s for 10 million (README "Fuzzing").
FUZZ_SECONDS ?= 1500
fuzz: toolchain
	./hack/fuzz.sh --seconds $(FUZZ_SECONDS)

## fuzz-smoke: what CI runs: each target briefly from its committed corpus, so a regression on a
## known input or a fuzz target that no longer builds fails the run.
fuzz-smoke: toolchain
	./hack/fuzz.sh --seconds 25

crds: toolchain
	$(CARGO) run -q --locked -p tidal-crds --bin crdgen > crds/autoscaler.yaml
	cp crds/autoscaler.yaml charts/tidal/crds/autoscaler.yaml
