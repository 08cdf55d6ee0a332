package testpeers

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"

	"github.com/imagebutler/imagebutler/signature"
)

// Registry is an OCI registry (go-containerregistry's, in memory, with the
// referrers API) on loopback, where cosign-style signatures are written.
type Registry struct {
	// URL is http://127.0.0.1:port.
	URL string
	srv *httptest.Server
}

// NewRegistry starts a registry; Close stops it.
func NewRegistry() *Registry {
	srv := httptest.NewServer(registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0))))
	return &Registry{URL: srv.URL, srv: srv}
}

// Close stops the registry.
func (r *Registry) Close() { r.srv.Close() }

// Signer signs a payload as cosign's key does (ECDSA over its SHA-256,
// ASN.1): a key in memory, or KMS's Sign.
type Signer func(payload []byte) ([]byte, error)

// ECDSASigner signs with key.
func ECDSASigner(key *ecdsa.PrivateKey) Signer {
	return func(payload []byte) ([]byte, error) {
		sum := sha256.Sum256(payload)
		return ecdsa.SignASN1(rand.Reader, key, sum[:])
	}
}

// Sign writes what `cosign sign --key --tlog-upload=false` writes for the
// image digest of repo: the tag sha256-<hex>.sig holding the
// simple-signing payload, its signature in an annotation.
func (r *Registry) Sign(repo, digest string, sign Signer) error {
	payload := fmt.Appendf(nil, `{"critical":{"identity":{"docker-reference":"%s"},"image":{"docker-manifest-digest":%q},"type":"cosign container image signature"},"optional":null}`,
		repo, digest)
	sig, err := sign(payload)
	if err != nil {
		return err
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer:       static.NewLayer(payload, signature.SimpleSigningMediaType),
		Annotations: map[string]string{signature.SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)},
	})
	if err != nil {
		return err
	}
	tag, err := name.NewTag(strings.TrimPrefix(r.URL, "http://")+"/"+repo+":"+strings.Replace(digest, ":", "-", 1)+".sig", name.Insecure)
	if err != nil {
		return err
	}
	if err := remote.Write(tag, img); err != nil {
		return fmt.Errorf("writing %s: %w", tag, err)
	}
	return nil
}
