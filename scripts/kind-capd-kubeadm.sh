#!/usr/bin/env bash
# [ACC-50] on the kind target: a self-managed kubeadm control plane built by the
# Kany8sKubeadmControlPlane facade with real CAPD and the kubeadm bootstrap provider. Needs
# Docker, kind, clusterctl and kubectl (see docs/acceptance.md); it cannot run without a Docker
# engine, where `make test` runs the same scenario on the embedded target.
set -euo pipefail
cd "$(dirname "$0")/.."

KIND_CLUSTER="${KIND_CLUSTER:-kany8s-acceptance}"
WORKLOAD_CLUSTER="demo-self-managed-docker"
# kind names its node container <cluster>-control-plane, which Docker limits to 63 characters.
suffix="-control-plane"
if (( ${#KIND_CLUSTER} > 63 - ${#suffix} )); then
  echo "kind-capd-kubeadm: KIND_CLUSTER \"$KIND_CLUSTER\" is longer than $(( 63 - ${#suffix} )) characters" >&2
  exit 2
fi
command -v docker >/dev/null 2>&1 || { echo "kind-capd-kubeadm: docker is required on the PATH" >&2; exit 2; }
docker info >/dev/null 2>&1 || { echo "kind-capd-kubeadm: no Docker engine is reachable" >&2; exit 2; }
# Containers of an earlier run carry another cluster CA; kubeadm would join them to nothing.
stale="$(docker ps -a --filter "name=^${WORKLOAD_CLUSTER}-" --format '{{.Names}}')"
if [[ -n "$stale" ]]; then
  echo "kind-capd-kubeadm: remove the containers of an earlier run first: $stale" >&2
  exit 2
fi

KIND_CLUSTER="$KIND_CLUSTER" scripts/kind-up.sh
export KUBECONFIG="$(pwd)/.kind/kubeconfig"
# Waits for the providers' webhooks, then runs steps A–I (H: kubectl get nodes on the workload
# cluster through `clusterctl get kubeconfig`).
make test-acceptance-capd-kubeadm TARGET=kind
