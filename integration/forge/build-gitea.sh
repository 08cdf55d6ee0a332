#!/usr/bin/env bash
# Builds the Gitea server the pull-request tests run against, from the Go
# module proxy (no other source is reachable), once per version: the binary
# is cached under $GITEA_CACHE (default ~/.cache/imagebutler), with the options
# and templates it reads at run time beside it. Prints the binary's path.
# About 6 minutes on 2 cores the first time; nothing after that.
set -euo pipefail
version=${GITEA_VERSION:-v1.27.3}
cache=${GITEA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/imagebutler}
out="$cache/gitea-$version"
if [ -x "$out/gitea" ] && [ -d "$out/options/locale" ]; then
  echo "$out/gitea"
  exit 0
fi
mkdir -p "$out"
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
# go mod download needs a module to run in; the source it fetches is read-only.
src=$(cd "$work" && go mod init fetch >/dev/null 2>&1 && GOFLAGS=-mod=mod go mod download -json "code.gitea.io/gitea@$version" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$src" ] || [ ! -d "$src" ]; then
  echo "build-gitea: could not download code.gitea.io/gitea@$version from the module proxy" >&2
  exit 1
fi
cp -r "$src" "$work/src"
chmod -R u+w "$work/src"
# Without the bindata tag (which needs the frontend built) Gitea reads its
# options (locales, among them) and templates from STATIC_ROOT_PATH: the
# test's app.ini points it here.
rm -rf "$out/options" "$out/templates"
cp -r "$work/src/options" "$work/src/templates" "$out/"
echo "build-gitea: building Gitea $version (CGO_ENABLED=0, pure-Go sqlite); this takes minutes once" >&2
(cd "$work/src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath \
  -ldflags "-s -w -X main.Version=${version#v}" -o "$out/gitea.tmp" .)
mv "$out/gitea.tmp" "$out/gitea"
echo "$out/gitea"
