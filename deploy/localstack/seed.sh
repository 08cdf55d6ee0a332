#!/usr/bin/env bash
# Creates an ECR repository and puts an image in it, in LocalStack (default)
# or moto (ENDPOINT=http://127.0.0.1:5000).
#
#   ./seed.sh [repository] [tag]
#
# LocalStack runs a real registry, so with docker at hand the script pushes a
# real image; moto has no registry, so the script puts a manifest with the
# ECR API, which is all imagebutler reads.
set -euo pipefail
repo=${1:-lrl_falcon_bartender}
tag=${2:-qa-sha-$(date +%s | sha1sum | cut -c1-7)}
endpoint=${ENDPOINT:-http://localhost:4566}
account=${ACCOUNT:-000000000000}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
export AWS_REGION=${AWS_REGION:-us-east-2} AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-${AWS_REGION:-us-east-2}}
ecr() { aws --endpoint-url "$endpoint" ecr "$@"; }

ecr describe-repositories --registry-id "$account" --repository-names "$repo" >/dev/null 2>&1 ||
  ecr create-repository --registry-id "$account" --repository-name "$repo" >/dev/null

if [[ $endpoint == *4566* ]] && command -v docker >/dev/null; then
  uri=$(ecr describe-repositories --registry-id "$account" --repository-names "$repo" --query 'repositories[0].repositoryUri' --output text)
  docker pull --quiet busybox:stable >/dev/null
  docker tag busybox:stable "$uri:$tag"
  docker push --quiet "$uri:$tag"
else
  layer=$(printf '%s' "$repo:$tag" | sha256sum | cut -d' ' -f1)
  manifest=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":7023,"digest":"sha256:%s"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":32654,"digest":"sha256:%s"}]}' "$layer" "$layer")
  ecr put-image --registry-id "$account" --repository-name "$repo" --image-tag "$tag" --image-manifest "$manifest" >/dev/null
fi
echo "pushed $account/$repo:$tag"
