#!/usr/bin/env bash
# Rewrites every wrapper module's go.mod and go.sum from versions.env. Run after a version bump
# (never in CI): it asks the Go module proxy for the pinned modules and their dependencies.
set -euo pipefail
cd "$(dirname "$0")"
source ./versions.env
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

# wrapper NAME GO_DIRECTIVE REQUIREMENT... -- TOOL...
wrapper() {
  local name=$1 go_directive=$2; shift 2
  local requires=() tools=()
  while [[ $1 != -- ]]; do requires+=("$1"); shift; done
  shift
  tools=("$@")
  rm -f "$name/go.mod" "$name/go.sum"
  mkdir -p "$name"
  (
    cd "$name"
    go mod init "kany8s.test/upstream/$name" >/dev/null 2>&1
    go mod edit -go="$go_directive"
    for r in "${requires[@]}"; do go mod edit -require="$r"; done
    for t in "${tools[@]}"; do go mod edit -tool="$t"; done
    if [[ $name == kubernetes ]]; then
      # k8s.io/kubernetes points its staging modules at ./staging and requires them at v0.0.0,
      # which no proxy serves: replace each with its published version of the same release.
      local mod staging
      mod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p')
      staging=$(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$mod")
      for m in $staging; do go mod edit -replace="$m=$m@v0.${KUBERNETES_VERSION#v1.}"; done
      # Only the main module's godebug line applies; keep kubernetes' own.
      grep '^godebug' "$mod" | while read -r _ setting; do go mod edit -godebug="$setting"; done
    fi
    go mod tidy
  )
  echo "pinned $name"
}

wrapper kubernetes 1.26.0 "k8s.io/kubernetes@$KUBERNETES_VERSION" -- \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl
wrapper etcd 1.26.0 "go.etcd.io/etcd/server/v3@$ETCD_VERSION" -- go.etcd.io/etcd/server/v3
wrapper kro 1.26.0 "github.com/kubernetes-sigs/kro@$KRO_VERSION" -- github.com/kubernetes-sigs/kro/cmd/controller
# Cluster API v1.14 moved its API types to their own module; require both at the same version.
wrapper cluster-api 1.26.0 "sigs.k8s.io/cluster-api@$CLUSTER_API_VERSION" "sigs.k8s.io/cluster-api/api@$CLUSTER_API_VERSION" -- \
  sigs.k8s.io/cluster-api/core sigs.k8s.io/cluster-api/bootstrap/kubeadm sigs.k8s.io/cluster-api/controlplane/kubeadm
wrapper helm 1.26.0 "helm.sh/helm/v4@$HELM_VERSION" -- helm.sh/helm/v4/cmd/helm
