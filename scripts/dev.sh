#!/usr/bin/env bash
# `make dev [TARGET=embedded|upstream]`: build and start the local sandbox, apply the demo RGD,
# print what to try, run until Ctrl-C.
#   embedded (default): the embedded API server, fake-kro, the simulated Cluster API core, kany8s.
#   upstream: the real etcd, kube-apiserver, kro and Cluster API as loopback processes (built by
#             `make upstream`), kany8s as its ServiceAccounts.
# `scripts/dev.sh --commands TARGET` prints only the demo's kubectl commands, one per line
# (acceptance/tests/sandbox.rs runs them).
set -euo pipefail
cd "$(dirname "$0")/.."

STATE=".sandbox"
KUBECONFIG_PATH="$(pwd)/$STATE/kubeconfig"

# The demo commands of TARGET (no shell syntax but one pipe, so a test can run them).
demo_commands() {
  echo "kubectl apply -f fixtures/demo/cluster.yaml"
  echo "kubectl wait --for=jsonpath='{.status.initialization.controlPlaneInitialized}'=true --timeout=120s kany8scontrolplane/demo"
  echo "kubectl get secret demo-kubeconfig -o jsonpath='{.data.value}' | base64 -d"
  echo "#"
  if [[ $1 == upstream ]]; then
    # The target plays the workload cluster: the kubeadm cluster gets the target's CA, so the
    # facade's admin kubeconfig is accepted and Cluster API's probe succeeds.
    echo "kubectl create secret generic demo-kubeadm-ca --type=cluster.x-k8s.io/secret --from-file=tls.crt=$STATE/upstream/pki/ca.crt --from-file=tls.key=$STATE/upstream/pki/ca.key"
    echo "kubectl label secret demo-kubeadm-ca cluster.x-k8s.io/cluster-name=demo-kubeadm"
  fi
  echo "kubectl apply -f fixtures/demo/kubeadm-cluster.yaml"
  echo "kubectl wait --for=condition=Available --timeout=120s kany8scontrolplane/demo-kubeadm"
  echo "kubectl get kany8skubeadmcontrolplanes,machines,kubeadmconfigs,secrets"
}

TARGET="${TARGET:-embedded}"
if [[ ${1:-} == --commands ]]; then
  demo_commands "${2:-embedded}"
  exit 0
fi
case "$TARGET" in
  embedded|upstream) ;;
  *) echo "make dev: TARGET must be embedded or upstream, not '$TARGET'" >&2; exit 2 ;;
esac

CARGO="${CARGO:-cargo}"
mkdir -p "$STATE"
if [[ $TARGET == upstream ]]; then
  upstream/build.sh
  # kubectl of the target's release.
  export PATH="$(pwd)/.upstream/bin:$PATH"
elif ! command -v kubectl >/dev/null 2>&1; then
  echo "make dev: kubectl is needed on the PATH to talk to the sandbox" >&2
  exit 2
fi

echo "building the sandbox (first build takes a few minutes)..."
"$CARGO" build --quiet --locked -p acceptance --bin kany8s-acceptance

OUT="$STATE/sandbox.out"
: > "$OUT"
./target/debug/kany8s-acceptance sandbox --target "$TARGET" --kubeconfig "$KUBECONFIG_PATH" --listen "${SANDBOX_LISTEN:-127.0.0.1:0}" > "$OUT" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true' EXIT INT TERM

for _ in $(seq 1 1800); do
  if grep -q "ready" "$OUT"; then break; fi
  if ! kill -0 "$PID" 2>/dev/null; then cat "$OUT" >&2; exit 1; fi
  sleep 0.1
done
grep -q "ready" "$OUT" || { echo "make dev: the sandbox did not become ready" >&2; cat "$OUT" >&2; exit 1; }
cat "$OUT"

export KUBECONFIG="$KUBECONFIG_PATH"
kubectl apply -f fixtures/rgds/control-plane/demo-control-plane-kubeconfig.yaml >/dev/null
kubectl wait --for=jsonpath='{.status.state}'=Active --timeout=120s \
  resourcegraphdefinition/demo-control-plane-kubeconfig.kro.run >/dev/null
echo "demo RGD demo-control-plane-kubeconfig.kro.run is Active"

echo
echo "Try, in another terminal:"
echo
echo "  export KUBECONFIG=$KUBECONFIG_PATH"
[[ $TARGET == upstream ]] && echo "  export PATH=$(pwd)/.upstream/bin:\$PATH"
demo_commands "$TARGET" | sed -e 's/^#$/\nA self-managed kubeadm control plane on the simulated CAPD:\n/' -e 's/^kubectl/  kubectl/'
echo
echo "Logs: $STATE/sandbox.log. Ctrl-C stops the sandbox."

wait "$PID"
