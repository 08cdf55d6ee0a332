#!/usr/bin/env bash
# Creates an ECR repository in ACCOUNT and puts an image in it, in LocalStack
# (the default endpoint) or moto (ENDPOINT=http://127.0.0.1:PORT).
#
#   ACCOUNT=283234040926 ENDPOINT=http://127.0.0.1:5000 ./seed.sh [repository] [tag]
#
# Needs the aws CLI (v1 or v2). LocalStack runs a real registry, so with docker
# at hand the script pushes a real image; moto has no registry, so the script
# puts a manifest with the ECR API, which is all imagebutler reads. It checks
# that the image landed in ACCOUNT and fails loudly if it did not.
set -euo pipefail
repo=${1:-lrl_falcon_bartender}
tag=${2:-qa-sha-$(date +%s | sha1sum | cut -c1-7)}
endpoint=${ENDPOINT:-http://localhost:4566}
account=${ACCOUNT:-000000000000}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
export AWS_REGION=${AWS_REGION:-us-east-2}
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-$AWS_REGION}
die() { echo "seed.sh: $*" >&2; exit 1; }
command -v aws >/dev/null || die "needs the aws CLI (apt-get install awscli, or pip install awscli)"
ecr() { aws --endpoint-url "$endpoint" --output text ecr "$@"; }

# The registry that holds a repository of this name. moto answers by name
# whatever registry is asked, so the answer is checked, not trusted.
owner=$(ecr describe-repositories --registry-id "$account" --repository-names "$repo" \
  --query 'repositories[0].registryId' 2>/dev/null) || owner=""
if [[ -z $owner || $owner == None ]]; then
  owner=$(ecr create-repository --registry-id "$account" --repository-name "$repo" --query 'repository.registryId') ||
    die "could not create $repo in account $account at $endpoint"
fi
[[ $owner == "$account" ]] ||
  die "repository $repo is in account $owner, not $account (moto matches repositories by name across accounts: restart it, or use another repository name)"

if [[ $endpoint == *4566* ]] && command -v docker >/dev/null; then
  uri=$(ecr describe-repositories --registry-id "$account" --repository-names "$repo" --query 'repositories[0].repositoryUri')
  docker pull --quiet busybox:stable >/dev/null
  docker tag busybox:stable "$uri:$tag"
  docker push --quiet "$uri:$tag"
else
  layer=$(printf '%s' "$repo:$tag" | sha256sum | cut -d' ' -f1)
  manifest=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":7023,"digest":"sha256:%s"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":32654,"digest":"sha256:%s"}]}' "$layer" "$layer")
  ecr put-image --registry-id "$account" --repository-name "$repo" --image-tag "$tag" --image-manifest "$manifest" >/dev/null
fi

# The image must be found the way imagebutler asks: by account, repository and tag.
digest=$(ecr describe-images --registry-id "$account" --repository-name "$repo" --image-ids "imageTag=$tag" \
  --query 'imageDetails[0].imageDigest' 2>&1) || die "the push did not land in $account/$repo: $digest"
[[ $digest == sha256:* ]] || die "the push did not land in $account/$repo: no image tagged $tag ($digest)"
echo "pushed $account/$repo:$tag (region $AWS_REGION, $endpoint)"
