# Kany8s developer entry points. `make test` is what CI runs (through .ci/run).
SHELL := /usr/bin/env bash
CARGO ?= cargo

SCENARIOS := kro-reflection kro-infra-reflection kro-infra-cluster-identity kro-reflection-multi-rgd topology pause-quiet capd-kubeadm eks-rotator eks-karpenter
TARGET ?= embedded

.PHONY: upstream moto dev test fidelity lint crds fmt bench-apiserver bench-scale bench-chaos release-manifests test-acceptance kind-up kind-down kind-capd-kubeadm

## upstream: build the upstream target's programs (kube-apiserver, etcd, kro, Cluster API, helm)
## from Go modules into .upstream/bin; a no-op when they are up to date (upstream/build.sh).
upstream:
	@upstream/build.sh

## moto: the AWS API emulator of the eks-karpenter-bootstrapper's EC2 tests (moto in server
## mode, versions pinned in plugins/eks/tests/moto-requirements.txt) in a project-local venv,
## .tools/moto; reinstalled only when the requirements change. The tests start
## `.tools/moto/bin/moto_server` on a free loopback port themselves (docs/eks/README.md).
MOTO_REQUIREMENTS := plugins/eks/tests/moto-requirements.txt
moto: .tools/moto/.installed
.tools/moto/.installed: $(MOTO_REQUIREMENTS)
	python3 -m venv .tools/moto
	.tools/moto/bin/python -m pip install --quiet --disable-pip-version-check -r $(MOTO_REQUIREMENTS)
	touch $@

## dev: the local sandbox; TARGET=embedded (default: embedded API server + fake-kro + simulated
## Cluster API + kany8s) or TARGET=upstream (real etcd, kube-apiserver, kro, Cluster API).
dev:
	@CARGO=$(CARGO) TARGET=$(TARGET) scripts/dev.sh

## test: every test of the workspace: the embedded tests and every scenario on the upstream
## target (whose programs `make upstream` builds first; without Go it stops and says so).
test: upstream moto
	$(CARGO) test --workspace --locked

## fidelity: the differential suite: the embedded API server against the real kube-apiserver
## (etcd, kube-apiserver, kube-controller-manager of `make upstream`), request by request; prints
## the table and `fidelity: N checks, ...`, writes target/fidelity/differences.md (docs/fidelity.md).
fidelity: upstream
	$(CARGO) run --quiet --locked -p fidelity --bin fidelity

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

## test-acceptance: every acceptance scenario on the embedded target.
test-acceptance: $(addprefix test-acceptance-,$(SCENARIOS))

## test-acceptance-<scenario>: one scenario; TARGET=upstream runs it on the real components,
## TARGET=kind on the cluster of $$KUBECONFIG.
test-acceptance-%: $(if $(filter upstream,$(TARGET)),upstream)
	$(CARGO) run --quiet --locked -p acceptance --bin kany8s-acceptance -- run $* --target $(TARGET) --artifacts artifacts

## The eks-karpenter scenario starts moto (the AWS API emulator) itself.
test-acceptance-eks-karpenter: moto

## kind-up / kind-down: the kind target (needs Docker, kind, clusterctl; see docs/acceptance.md).
kind-up:
	scripts/kind-up.sh
kind-down:
	scripts/kind-down.sh

## kind-capd-kubeadm: [ACC-50] with real CAPD and kubeadm on kind (Docker needed).
kind-capd-kubeadm:
	scripts/kind-capd-kubeadm.sh

## release-manifests: the clusterctl bundles, the single-bundle install.yaml and metadata.yaml in out/.
release-manifests:
	@mkdir -p out
	kubectl kustomize config/clusterctl/controlplane > out/control-plane-components.yaml
	kubectl kustomize config/clusterctl/infrastructure > out/infrastructure-components.yaml
	kubectl kustomize config/default > out/install.yaml
	cp metadata.yaml out/metadata.yaml
	cp templates/*.yaml out/

## bench-scale: N clusters (N = 100, 1000; BENCH_CLUSTERS=100,1000,10000 for more) on the embedded
## target; TARGET=upstream runs them on real kube-apiserver and etcd (built by `make upstream`).
BENCH_CLUSTERS ?= 100,1000
bench-scale: $(if $(filter upstream,$(TARGET)),upstream)
	$(CARGO) build --release --locked -p kany8s -p acceptance
	target/release/kany8s-acceptance bench scale --clusters $(BENCH_CLUSTERS) --target $(TARGET)

## bench-chaos: 1000 clusters under API faults, dropped watches and manager restarts.
bench-chaos:
	$(CARGO) build --release --locked -p kany8s -p acceptance
	target/release/kany8s-acceptance bench chaos --clusters 1000
