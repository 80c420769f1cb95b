#!/usr/bin/env bash
# The kind target of the acceptance runners (provider.md [ACC-02]): a kind cluster with kro,
# Cluster API (clusterctl) and the Kany8s CRDs, and the kany8s manager running against it from
# this checkout. Needs Docker, kind, clusterctl and kubectl. It cannot run on machines without a
# Docker engine (such as the CI machine); the embedded target covers the same scenarios there.
set -euo pipefail
cd "$(dirname "$0")/.."

KIND_CLUSTER="${KIND_CLUSTER:-kany8s-acceptance}"
KRO_VERSION="${KRO_VERSION:-0.9.3}"
CAPI_VERSION="${CAPI_VERSION:-v1.11.0}"
STATE=".kind"
mkdir -p "$STATE"
KUBECONFIG_PATH="$(pwd)/$STATE/kubeconfig"

for tool in docker kind clusterctl kubectl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "kind-up: $tool is required on the PATH" >&2; exit 2; }
done
docker info >/dev/null 2>&1 || { echo "kind-up: no Docker engine is reachable" >&2; exit 2; }

# The Docker socket is mounted so the CAPD scenario can create workload containers.
cat > "$STATE/kind.yaml" <<EOT
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
  extraMounts:
  - hostPath: /var/run/docker.sock
    containerPath: /var/run/docker.sock
EOT
if ! kind get clusters | grep -qx "$KIND_CLUSTER"; then
  kind create cluster --name "$KIND_CLUSTER" --config "$STATE/kind.yaml" --kubeconfig "$KUBECONFIG_PATH" --wait 120s
else
  kind get kubeconfig --name "$KIND_CLUSTER" > "$KUBECONFIG_PATH"
fi
export KUBECONFIG="$KUBECONFIG_PATH"

echo "installing kro v${KRO_VERSION}"
kubectl create namespace kro-system --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -f "https://github.com/kubernetes-sigs/kro/releases/download/v${KRO_VERSION}/kro-core-install-manifests.yaml"
# kro manages instances of any kind the RGDs declare; in a throwaway cluster it gets all rights.
kubectl apply -f - <<'EOT'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: kro-acceptance-unrestricted
  labels:
    rbac.kro.run/aggregate-to-controller: "true"
rules:
- apiGroups: ["*"]
  resources: ["*"]
  verbs: ["*"]
EOT
kubectl -n kro-system rollout status deployment --timeout=180s

echo "installing Cluster API ${CAPI_VERSION}"
CLUSTER_TOPOLOGY=true clusterctl init --core "cluster-api:${CAPI_VERSION}" \
  --bootstrap "kubeadm:${CAPI_VERSION}" --infrastructure "docker:${CAPI_VERSION}" --wait-providers

echo "installing the Kany8s CRDs and starting the manager from this checkout"
kubectl apply --server-side -f config/crd/bases/
cargo build --quiet --locked -p kany8s --bin kany8s
nohup ./target/debug/kany8s run --kubeconfig "$KUBECONFIG_PATH" --health-probe-bind-address 127.0.0.1:0 \
  --log-format json > "$STATE/kany8s.log" 2>&1 &
echo $! > "$STATE/kany8s.pid"

echo "ready: export KUBECONFIG=$KUBECONFIG_PATH; make test-acceptance-kro-reflection TARGET=kind"
