// Package signature verifies cosign signatures of images in ECR with
// sigstore-go: signatures found as OCI 1.1 referrers (a Sigstore bundle,
// as cosign's new bundle format stores them) and under the legacy tag
// sha256-<digest>.sig (simple-signing payloads with their signature,
// certificate and transparency log entry in annotations), by a public key
// or by a keyless (Fulcio) signer of a given OIDC issuer and identity,
// trusted through a Sigstore trusted root read from a file (so it works
// without the internet).
package signature

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/imagebutler/imagebutler/config"
)

// trust is a signature gate's trust, read from its files once (and from
// KMS at first use).
type trust struct {
	identities []identity
	root       root.TrustedMaterial // nil without trustedRootFile
	requireLog bool

	mu   sync.Mutex
	keys []trustedKey
}

type trustedKey struct {
	name     string // the file or the KMS key ARN, for people
	kmsARN   string // a KMS key's ARN; its material comes at first use
	material root.TrustedMaterial
}

// keyMaterial is the trust of one public key, whatever hint a signature
// names (cosign's hints vary).
func keyMaterial(pub crypto.PublicKey) (root.TrustedMaterial, error) {
	v, err := signature.LoadVerifier(pub, hashFor(pub))
	if err != nil {
		return nil, err
	}
	key := root.NewExpiringKey(v, time.Time{}, time.Time{})
	return root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) { return key, nil }), nil
}

// PublicKeyFunc fetches the public key of a KMS key by its ARN.
type PublicKeyFunc func(ctx context.Context, keyARN string) (crypto.PublicKey, error)

// trustedKeys are the keys to verify with: those read from files, and the
// KMS keys fetch gives (once each; a failure is said and tried again next
// time).
func (t *trust) trustedKeys(ctx context.Context, fetch PublicKeyFunc) ([]trustedKey, []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var keys []trustedKey
	var errs []string
	for i, k := range t.keys {
		if k.material == nil {
			if fetch == nil {
				errs = append(errs, "KMS key "+k.kmsARN+": no KMS client is configured")
				continue
			}
			pub, err := fetch(ctx, k.kmsARN)
			if err == nil {
				t.keys[i].material, err = keyMaterial(pub)
			}
			if err != nil {
				errs = append(errs, "KMS key "+k.kmsARN+": "+err.Error())
				continue
			}
			k = t.keys[i]
		}
		keys = append(keys, k)
	}
	return keys, errs
}

type identity struct {
	name string // "<identity> (issuer <issuer>)", for people
	id   verify.CertificateIdentity
}

// loadTrust reads g's keys and trusted root and compiles its identities.
func loadTrust(g *config.SignatureGate) (*trust, error) {
	t := &trust{requireLog: g.RequireTransparencyLog}
	if g.TrustedRootFile != "" {
		tr, err := root.NewTrustedRootFromPath(g.TrustedRootFile)
		if err != nil {
			return nil, fmt.Errorf("reading the trusted root %s: %w", g.TrustedRootFile, err)
		}
		t.root = tr
	}
	for _, file := range g.Keys {
		if arn, ok := config.KMSKeyARN(file); ok {
			t.keys = append(t.keys, trustedKey{name: "KMS key " + arn, kmsARN: arn})
			continue
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading the public key %s: %w", file, err)
		}
		pub, err := cryptoutils.UnmarshalPEMToPublicKey(raw)
		if err != nil {
			return nil, fmt.Errorf("reading the public key %s: %w", file, err)
		}
		material, err := keyMaterial(pub)
		if err != nil {
			return nil, fmt.Errorf("the public key %s: %w", file, err)
		}
		t.keys = append(t.keys, trustedKey{name: file, material: material})
	}
	for _, k := range g.Keyless {
		id, err := verify.NewShortCertificateIdentity(k.Issuer, k.IssuerRegexp, k.Identity, k.IdentityRegexp)
		if err != nil {
			return nil, fmt.Errorf("keyless signer %s %s: %w", k.Issuer+k.IssuerRegexp, k.Identity+k.IdentityRegexp, err)
		}
		name := k.Identity
		if name == "" {
			name = "/" + k.IdentityRegexp + "/"
		}
		issuer := k.Issuer
		if issuer == "" {
			issuer = "/" + k.IssuerRegexp + "/"
		}
		t.identities = append(t.identities, identity{name: name + " (issuer " + issuer + ")", id: id})
	}
	return t, nil
}

// hashFor is the hash cosign signs with for a key: SHA-256, but SHA-384
// and SHA-512 for the larger elliptic curves, as sigstore does.
func hashFor(pub crypto.PublicKey) crypto.Hash {
	if k, ok := pub.(*ecdsa.PublicKey); ok {
		switch k.Curve.Params().BitSize {
		case 384:
			return crypto.SHA384
		case 521:
			return crypto.SHA512
		}
	}
	return crypto.SHA256
}

// CheckTrust reads g's keys and trusted root as a verification will, so
// that a missing or broken file stops the start instead of gating every
// image.
func CheckTrust(g *config.SignatureGate) error {
	_, err := loadTrust(g)
	return err
}
