#!/usr/bin/env bash
# Stops the manager started by kind-up.sh and deletes the kind cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
KIND_CLUSTER="${KIND_CLUSTER:-kany8s-acceptance}"
if [ -f .kind/kany8s.pid ]; then
  kill "$(cat .kind/kany8s.pid)" 2>/dev/null || true
  rm -f .kind/kany8s.pid
fi
kind delete cluster --name "$KIND_CLUSTER"
