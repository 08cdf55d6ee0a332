# syntax=docker/dockerfile:1
# Build: docker build --build-arg VERSION=$(git describe --tags --always) --build-arg COMMIT=$(git rev-parse HEAD) -t imagebutler .

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/imagebutler ./cmd/imagebutler
# stateDir, owned by nonroot: a volume mounted there (compose's named
# volume, an emptyDir with fsGroup) starts out writable by uid 65532.
RUN mkdir -p /out/state

# Static, no shell, no package manager; runs as uid 65532 (nonroot). git is
# not needed: go-git speaks the protocol itself. CA certificates are included.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/imagebutler /imagebutler
COPY --from=build --chown=65532:65532 /out/state /var/lib/imagebutler
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/imagebutler"]
CMD ["run", "--config", "/etc/imagebutler/config/imagebutler.yaml"]
