#!/usr/bin/env bash
# Builds the upstream target's programs into .upstream/bin (git-ignored) from the wrapper modules
# of this folder, only what is missing or out of date: a component is rebuilt when its go.mod,
# go.sum, versions.env or this script changed. Modules come only from the Go module proxy.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
out=${UPSTREAM_BIN:-$root/.upstream/bin}
source "$here/versions.env"

if ! command -v go >/dev/null 2>&1; then
  echo "make upstream: the Go toolchain is missing. Install Go 1.26 (https://go.dev/dl) and make sure" >&2
  echo "the Go module proxy is reachable (GOPROXY); the upstream target builds kube-apiserver, etcd," >&2
  echo "kro and Cluster API from Go modules." >&2
  exit 2
fi
# A silent toolchain switch or a download outside the proxy must fail loudly instead.
export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -trimpath" CGO_ENABLED=0
proxy=$(go env GOPROXY)
export GOPROXY=${proxy%%,direct}
mkdir -p "$out" "$out/.stamps"

k8s_minor=${KUBERNETES_VERSION#v1.}; k8s_minor=${k8s_minor%%.*}
k8s_ldflags="-s -w \
 -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION \
 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$k8s_minor \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION \
 -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$k8s_minor"
capi_ldflags="-s -w -X sigs.k8s.io/cluster-api/version.gitVersion=$CLUSTER_API_VERSION \
 -X sigs.k8s.io/cluster-api/version.gitMajor=1 -X sigs.k8s.io/cluster-api/version.gitTreeState=clean"

# component WRAPPER "BINARY=PACKAGE ..." LDFLAGS
component() {
  local wrapper=$1 targets=$2 ldflags=$3
  local stamp="$out/.stamps/$wrapper"
  local want
  want=$(cat "$here/$wrapper/go.mod" "$here/$wrapper/go.sum" "$here/versions.env" "$here/build.sh" | sha256sum | cut -d' ' -f1)
  local missing=0 t
  for t in $targets; do [[ -x $out/${t%%=*} ]] || missing=1; done
  if [[ $missing == 0 && -f $stamp && $(cat "$stamp") == "$want" ]]; then
    echo "upstream: $wrapper up to date"
    return
  fi
  local started=$SECONDS
  echo "upstream: building $wrapper ($targets)"
  for t in $targets; do
    (cd "$here/$wrapper" && go build -ldflags "$ldflags" -o "$out/${t%%=*}" "${t#*=}")
  done
  echo "$want" >"$stamp"
  echo "upstream: built $wrapper in $((SECONDS - started)) s"
}

component etcd "etcd=go.etcd.io/etcd/server/v3" "-s -w"
component kubernetes "kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager kubectl=k8s.io/kubernetes/cmd/kubectl" "$k8s_ldflags"
component kro "kro=github.com/kubernetes-sigs/kro/cmd/controller" "-s -w -X sigs.k8s.io/release-utils/version.gitVersion=$KRO_VERSION"
component cluster-api "capi-core=sigs.k8s.io/cluster-api/core capi-kubeadm-bootstrap=sigs.k8s.io/cluster-api/bootstrap/kubeadm capi-kubeadm-control-plane=sigs.k8s.io/cluster-api/controlplane/kubeadm" "$capi_ldflags"
component helm "helm=helm.sh/helm/v4/cmd/helm" "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
