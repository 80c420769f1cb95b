#!/usr/bin/env bash
# `make dev`: build and start the local sandbox (embedded API server, fake-kro, simulated
# Cluster API core, kany8s), apply the demo RGD, print what to try, run until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO="${CARGO:-cargo}"
STATE=".sandbox"
mkdir -p "$STATE"
KUBECONFIG_PATH="$(pwd)/$STATE/kubeconfig"

if ! command -v kubectl >/dev/null 2>&1; then
  echo "make dev: kubectl is needed on the PATH to talk to the sandbox" >&2
  exit 2
fi

echo "building the sandbox (first build takes a few minutes)..."
"$CARGO" build --quiet --locked -p acceptance --bin kany8s-acceptance

OUT="$STATE/sandbox.out"
: > "$OUT"
./target/debug/kany8s-acceptance sandbox --kubeconfig "$KUBECONFIG_PATH" --listen "${SANDBOX_LISTEN:-127.0.0.1:0}" > "$OUT" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true' EXIT INT TERM

for _ in $(seq 1 300); do
  if grep -q "ready" "$OUT"; then break; fi
  if ! kill -0 "$PID" 2>/dev/null; then cat "$OUT" >&2; exit 1; fi
  sleep 0.1
done
grep -q "ready" "$OUT" || { echo "make dev: the sandbox did not become ready" >&2; cat "$OUT" >&2; exit 1; }
cat "$OUT"

export KUBECONFIG="$KUBECONFIG_PATH"
kubectl apply -f fixtures/rgds/control-plane/demo-control-plane-kubeconfig.yaml >/dev/null
kubectl wait --for=jsonpath='{.status.state}'=Active --timeout=60s \
  resourcegraphdefinition/demo-control-plane-kubeconfig.kro.run >/dev/null
echo "demo RGD demo-control-plane-kubeconfig.kro.run is Active"

cat <<EOT

Try, in another terminal:

  export KUBECONFIG=$KUBECONFIG_PATH
  kubectl apply -f fixtures/demo/cluster.yaml
  kubectl wait --for=jsonpath='{.status.initialization.controlPlaneInitialized}'=true --timeout=60s kany8scontrolplane/demo
  kubectl get secret demo-kubeconfig -o jsonpath='{.data.value}' | base64 -d

A self-managed kubeadm control plane on the simulated CAPD:

  kubectl apply -f fixtures/demo/kubeadm-cluster.yaml
  kubectl wait --for=condition=Available --timeout=60s kany8scontrolplane/demo-kubeadm
  kubectl get kany8skubeadmcontrolplanes,machines,kubeadmconfigs,secrets

Logs: $STATE/sandbox.log. Ctrl-C stops the sandbox.
EOT

wait "$PID"
