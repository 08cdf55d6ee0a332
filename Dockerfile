# syntax=docker/dockerfile:1
# Build (one platform):  docker build --build-arg VERSION=$(git describe --tags --always) --build-arg COMMIT=$(git rev-parse HEAD) -t imagebutler .
# Build (amd64 + arm64): docker buildx build --platform linux/amd64,linux/arm64 --build-arg VERSION=... --build-arg COMMIT=... -t REGISTRY/imagebutler:TAG --push .

# The builder runs on the build machine's platform and cross-compiles for the
# target's (Go needs no emulation for that). Go 1.26.10 carries the fixes for
# the standard library's advisories of 1.26.8.
FROM --platform=$BUILDPLATFORM golang:1.26.10 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
ARG TARGETOS=linux
ARG TARGETARCH=amd64
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/imagebutler ./cmd/imagebutler
# stateDir, owned by nonroot: a volume mounted there (compose's named
# volume, an emptyDir with fsGroup) starts out writable by uid 65532.
RUN mkdir -p /out/state

# Static, no shell, no package manager; runs as uid 65532 (nonroot). git is
# not needed: go-git speaks the protocol itself. CA certificates are included.
# Pinned by digest (the multi-platform index, so amd64 and arm64 both resolve)
# so a rebuild of the same commit gets the same base. To move it forward:
#   crane digest gcr.io/distroless/static-debian12:nonroot
FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab
ARG VERSION=dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="imagebutler" \
      org.opencontainers.image.description="Keeps Kubernetes manifests in git pointed at the newest matching image in AWS ECR" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}"
COPY --from=build /out/imagebutler /imagebutler
COPY --from=build --chown=65532:65532 /out/state /var/lib/imagebutler
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/imagebutler"]
CMD ["run", "--config", "/etc/imagebutler/config/imagebutler.yaml"]
