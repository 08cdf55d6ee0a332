package signature

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// Media types and annotations of cosign's signatures.
const (
	// BundleArtifactType is the artifact type of a Sigstore bundle stored
	// as an OCI 1.1 referrer of the image (cosign's new bundle format).
	BundleArtifactType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// SimpleSigningMediaType is the media type of a legacy signature's
	// layer: the signed payload.
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// The annotations of a legacy signature's layer.
	SignatureAnnotation   = "dev.cosignproject.cosign/signature"
	CertificateAnnotation = "dev.sigstore.cosign/certificate"
	BundleAnnotation      = "dev.sigstore.cosign/bundle"
)

// maxSignatures bounds the signatures looked at for one image, and
// maxBlob the bytes read of one: a hostile registry cannot make a
// verification unbounded.
const (
	maxSignatures = 32
	maxBlob       = 4 << 20
)

// candidate is one signature found for an image, not verified yet.
type candidate struct {
	form string // "referrer" or "tag"
	// bundle is a referrer's Sigstore bundle.
	bundle *bundle.Bundle
	// legacy is a signature from the .sig tag: its payload and parts.
	legacy *legacySignature
	// err says why the signature could not be read.
	err error
}

// legacySignature is one layer of a cosign .sig image.
type legacySignature struct {
	payload   []byte
	signature []byte
	cert      []byte // PEM, keyless
	rekor     *rekorBundle
}

// rekorBundle is cosign's "bundle" annotation: a Rekor entry and its
// signed entry timestamp.
type rekorBundle struct {
	SignedEntryTimestamp []byte `json:"SignedEntryTimestamp"`
	Payload              struct {
		Body           string `json:"body"` // base64 of the canonical entry
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"` // hex
	} `json:"Payload"`
}

// registry says where an image's signatures are read and how.
type registry struct {
	repo     name.Repository
	options  []remote.Option
	insecure bool
}

// referrers lists the signatures of digest among its OCI 1.1 referrers:
// those of the Sigstore bundle artifact type. A registry without the
// referrers API is no error.
func (r registry) referrers(ctx context.Context, digest string) ([]candidate, error) {
	var out []candidate
	opts := append([]remote.Option{remote.WithContext(ctx)}, r.options...)
	idx, err := remote.Referrers(r.repo.Digest(digest), opts...)
	if err != nil && !notFound(err) {
		return nil, fmt.Errorf("listing the referrers of %s: %w", digest, err)
	}
	if idx == nil {
		return nil, nil
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading the referrers of %s: %w", digest, err)
	}
	for _, desc := range im.Manifests {
		if len(out) == maxSignatures {
			break
		}
		if !strings.HasPrefix(desc.ArtifactType, "application/vnd.dev.sigstore.bundle") {
			continue
		}
		b, err := r.referrerBundle(desc.Digest, opts)
		if err != nil {
			out = append(out, candidate{form: "referrer", err: fmt.Errorf("%s: %w", desc.Digest, err)})
			continue
		}
		out = append(out, candidate{form: "referrer", bundle: b})
	}
	return out, nil
}

// tagged lists the signatures of digest under the legacy tag
// sha256-<hex>.sig (at most max). No tag is no error.
func (r registry) tagged(ctx context.Context, digest string, max int) ([]candidate, error) {
	opts := append([]remote.Option{remote.WithContext(ctx)}, r.options...)
	tag := r.repo.Tag(strings.Replace(digest, ":", "-", 1) + ".sig")
	img, err := remote.Image(tag, opts...)
	switch {
	case err != nil && notFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", tag.TagStr(), err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", tag.TagStr(), err)
	}
	var out []candidate
	for _, l := range m.Layers {
		if len(out) >= max {
			break
		}
		if l.MediaType != SimpleSigningMediaType {
			continue
		}
		sig, err := legacyLayer(img, l)
		if err != nil {
			out = append(out, candidate{form: "tag", err: err})
			continue
		}
		out = append(out, candidate{form: "tag", legacy: sig})
	}
	return out, nil
}

// referrerBundle reads the Sigstore bundle a referrer manifest holds: its
// first layer.
func (r registry) referrerBundle(h v1.Hash, opts []remote.Option) (*bundle.Bundle, error) {
	img, err := remote.Image(r.repo.Digest(h.String()), opts...)
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil || len(layers) == 0 {
		return nil, fmt.Errorf("no bundle layer (%v)", err)
	}
	raw, err := readLayer(layers[0])
	if err != nil {
		return nil, err
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("not a Sigstore bundle: %w", err)
	}
	return &b, nil
}

func legacyLayer(img v1.Image, l v1.Descriptor) (*legacySignature, error) {
	layer, err := img.LayerByDigest(l.Digest)
	if err != nil {
		return nil, err
	}
	payload, err := readLayer(layer)
	if err != nil {
		return nil, err
	}
	sig, err := base64.StdEncoding.DecodeString(l.Annotations[SignatureAnnotation])
	if err != nil || len(sig) == 0 {
		return nil, errors.New("no signature annotation")
	}
	s := &legacySignature{payload: payload, signature: sig,
		cert: []byte(l.Annotations[CertificateAnnotation])}
	if raw := l.Annotations[BundleAnnotation]; raw != "" {
		var rb rekorBundle
		if err := json.Unmarshal([]byte(raw), &rb); err != nil {
			return nil, fmt.Errorf("the bundle annotation: %w", err)
		}
		s.rekor = &rb
	}
	return s, nil
}

// readLayer reads a layer's bytes as stored (a signature's layers are not
// compressed), at most maxBlob.
func readLayer(l v1.Layer) ([]byte, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxBlob+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBlob {
		return nil, fmt.Errorf("more than %d bytes", maxBlob)
	}
	return b, nil
}

func notFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && (te.StatusCode == http.StatusNotFound || te.StatusCode == http.StatusNotAcceptable)
}

// tlogEntry is the Rekor entry of a legacy signature, with its signed
// entry timestamp (an inclusion promise).
func (s *legacySignature) tlogEntry() (*tlog.Entry, error) {
	if s.rekor == nil {
		return nil, nil
	}
	body, err := base64.StdEncoding.DecodeString(s.rekor.Payload.Body)
	if err != nil {
		return nil, fmt.Errorf("the bundle annotation's body: %w", err)
	}
	logID, err := hex.DecodeString(s.rekor.Payload.LogID)
	if err != nil {
		return nil, fmt.Errorf("the bundle annotation's logID: %w", err)
	}
	return tlog.NewEntry(body, s.rekor.Payload.IntegratedTime, s.rekor.Payload.LogIndex, logID, s.rekor.SignedEntryTimestamp, nil) //nolint:staticcheck // cosign's legacy bundles are Rekor v1 entries
}

// certificate parses a keyless signature's certificate (its chain is
// the trusted root's to give, not the signature's).
func (s *legacySignature) certificate() (*x509.Certificate, error) {
	certs, err := cryptoutils.UnmarshalCertificatesFromPEM(s.cert)
	if err != nil {
		return nil, fmt.Errorf("the certificate annotation: %w", err)
	}
	if len(certs) == 0 {
		return nil, errors.New("the certificate annotation holds no certificate")
	}
	return certs[0], nil
}
