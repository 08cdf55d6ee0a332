#!/usr/bin/env bash
# Builds the kube-apiserver and kubectl the tests run, from the Go module
# proxy (no other source is reachable), once per version: both binaries are
# cached under $KUBE_CACHE (default ~/.cache/imagebutler/kube-<version>).
# Prints the directory that holds them. etcd comes from Debian (etcd-server).
# The module in ./server requires k8s.io/kubernetes and replaces each staging
# module with its published release; its go.sum pins every byte.
# Takes minutes on 2 cores the first time (the closing notes give the figure);
# nothing after that.
set -euo pipefail
cd "$(dirname "$0")/server"
version=$(awk '/^\/\//{next} {for (i = 1; i < NF; i++) if ($i == "k8s.io/kubernetes") {print $(i+1); exit}}' go.mod)
cache=${KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/imagebutler}
out="$cache/kube-$version"
if [ -x "$out/kube-apiserver" ] && [ -x "$out/kubectl" ]; then
  echo "$out"
  exit 0
fi
mkdir -p "$out"
minor=${version#v1.}
minor=${minor%%.*}
pkg=k8s.io/component-base/version
# The version the binaries report (and the apiserver's compatibility version
# is derived from): without it they would call themselves v0.0.0.
ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
echo "build-kube: building kube-apiserver and kubectl $version (CGO_ENABLED=0); this takes minutes once" >&2
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/kube-apiserver.tmp" ./kube-apiserver
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/kubectl.tmp" ./kubectl
mv "$out/kube-apiserver.tmp" "$out/kube-apiserver"
mv "$out/kubectl.tmp" "$out/kubectl"
echo "$out"
