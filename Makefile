# Kany8s developer entry points. `make test` is what CI runs (through .ci/run).
SHELL := /usr/bin/env bash
CARGO ?= cargo

.PHONY: dev test lint crds fmt bench-apiserver

## dev: the local sandbox (embedded API server + fake-kro + simulated Cluster API + kany8s).
dev:
	@echo "make dev: the local sandbox is not built yet (it arrives with the acceptance/sandbox issue)." >&2
	@echo "What works today: 'make test', 'make lint', and 'cargo run -p kany8s -- crds' to print the CRDs." >&2
	@exit 2

## test: every test of the workspace.
test:
	$(CARGO) test --workspace --locked

## lint: formatting and clippy with warnings as errors.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

## crds: regenerate config/crd/bases from the Rust types.
crds:
	rm -f config/crd/bases/*.yaml
	$(CARGO) run --quiet --locked -p kany8s -- crds --output-dir config/crd/bases

## fmt: format the code.
fmt:
	$(CARGO) fmt --all

## bench-apiserver: throughput figures of the embedded API server.
bench-apiserver:
	$(CARGO) bench --locked -p kany8s-apiserver --bench throughput
