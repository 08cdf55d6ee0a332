package signature

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/policy"
)

// SignPredicateType is the predicate type of a cosign image signature in
// a Sigstore bundle: an in-toto statement whose subject is the image's
// manifest digest. Bundles of other predicate types (SBOMs, provenance)
// are attestations, not signatures, and do not pass the gate.
const SignPredicateType = "https://sigstore.dev/cosign/sign/v1"

// DefaultTimeout bounds one image's verification when Verifier.Timeout is
// zero.
const DefaultTimeout = 2 * time.Minute

// legacyPayloadType is the critical.type of a legacy signature's payload.
const legacyPayloadType = "cosign container image signature"

// Verifier verifies cosign signatures of images with sigstore-go. It
// implements gate.Verifier; it is safe for concurrent use.
type Verifier struct {
	// Auth gives the credentials for an image's ECR registry (its
	// authorization token); nil reads anonymously. A gate's own registry
	// is read anonymously.
	Auth func(ctx context.Context, ref policy.ImageRef) (authn.Authenticator, error)
	// Transport carries the registry requests; nil is remote's default.
	Transport http.RoundTripper
	// PublicKey fetches the public key of a KMS key (keys given as
	// awskms:///<ARN> or as the ARN); nil: KMS keys are not trusted.
	PublicKey PublicKeyFunc
	// Timeout bounds one image's verification, all its registry calls: a
	// registry that hangs holds the pass no longer. Zero is two minutes.
	Timeout time.Duration

	mu     sync.Mutex
	trusts map[*config.SignatureGate]loaded
}

type loaded struct {
	t   *trust
	err error
}

// Verify finds the signatures of the image digest in ref's repository and
// says whose trusted signature it found first: "key <file>" or
// "<identity> (issuer <issuer>)". The error says why none passed.
func (v *Verifier) Verify(ctx context.Context, ref policy.ImageRef, digest string, g *config.SignatureGate) (string, error) {
	timeout := v.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t, err := v.trust(g)
	if err != nil {
		return "", err
	}
	sum, err := digestBytes(digest)
	if err != nil {
		return "", err
	}
	reg, err := v.registry(ctx, ref, g)
	if err != nil {
		return "", err
	}
	keys, keyErrs := t.trustedKeys(ctx, v.PublicKey)
	// The referrers first (cosign's current form); the legacy tag only
	// when none of them passes.
	var reasons []string
	judged := 0
	judge := func(found []candidate) string {
		for _, c := range found {
			judged++
			signer, why := t.check(c, digest, sum, keys, keyErrs)
			if why == nil {
				return signer
			}
			reasons = append(reasons, c.form+": "+why.Error())
		}
		return ""
	}
	found, err := reg.referrers(ctx, digest)
	if err != nil {
		reasons = append(reasons, err.Error())
	}
	if signer := judge(found); signer != "" {
		return signer, nil
	}
	found, err = reg.tagged(ctx, digest, maxSignatures-judged)
	if err != nil {
		reasons = append(reasons, err.Error())
	}
	if signer := judge(found); signer != "" {
		return signer, nil
	}
	switch {
	case judged == 0 && len(reasons) == 0:
		return "", fmt.Errorf("not signed: no Sigstore bundle among its referrers and no tag %s",
			strings.Replace(digest, ":", "-", 1)+".sig")
	case judged == 0:
		return "", errors.New(strings.Join(reasons, "; "))
	case judged == 1 && len(reasons) == 1:
		return "", fmt.Errorf("its signature is not trusted: %s", reasons[0])
	}
	return "", fmt.Errorf("%d signatures, none trusted: %s", judged, strings.Join(reasons, "; "))
}

// trust loads g's trust once; a later change of its files needs a restart,
// as the config does.
func (v *Verifier) trust(g *config.SignatureGate) (*trust, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if l, ok := v.trusts[g]; ok {
		return l.t, l.err
	}
	t, err := loadTrust(g)
	if v.trusts == nil {
		v.trusts = map[*config.SignatureGate]loaded{}
	}
	v.trusts[g] = loaded{t, err}
	return t, err
}

// registry is where ref's signatures are read: the gate's registry, or
// ref's own ECR registry with Auth's credentials.
func (v *Verifier) registry(ctx context.Context, ref policy.ImageRef, g *config.SignatureGate) (registry, error) {
	var r registry
	host := ref.Host()
	var nameOpts []name.Option
	auth := authn.Anonymous
	if g.Registry != "" {
		host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(g.Registry, "https://"), "http://"), "/")
		if strings.HasPrefix(g.Registry, "http://") {
			nameOpts = append(nameOpts, name.Insecure)
			r.insecure = true
		}
	} else if v.Auth != nil {
		a, err := v.Auth(ctx, ref)
		if err != nil {
			return r, fmt.Errorf("credentials for %s: %w", host, err)
		}
		auth = a
	}
	repo, err := name.NewRepository(host+"/"+ref.Repository, nameOpts...)
	if err != nil {
		return r, fmt.Errorf("the repository %s/%s: %w", host, ref.Repository, err)
	}
	r.repo = repo
	r.options = []remote.Option{remote.WithAuth(auth), remote.WithContext(ctx)}
	if v.Transport != nil {
		r.options = append(r.options, remote.WithTransport(v.Transport))
	}
	// One puller for the image's calls: the registry is pinged and logged
	// in to once.
	p, err := remote.NewPuller(r.options...)
	if err != nil {
		return r, err
	}
	r.options = append(r.options, remote.Reuse(p))
	return r, nil
}

// check verifies one found signature against the trust, for the image
// digest (sum is its SHA-256 bytes).
func (t *trust) check(c candidate, digest string, sum []byte, keys []trustedKey, keyErrs []string) (string, error) {
	var entity verify.SignedEntity
	var artifact verify.ArtifactPolicyOption
	switch {
	case c.err != nil:
		return "", c.err
	case c.bundle != nil:
		env, err := c.bundle.Envelope()
		if err != nil || env == nil {
			return "", errors.New("not an image signature: the bundle holds no DSSE envelope")
		}
		entity, artifact = c.bundle, verify.WithArtifactDigest("sha256", sum)
	case c.legacy != nil:
		if err := c.legacy.names(digest); err != nil {
			return "", err
		}
		e, err := newLegacyEntity(c.legacy)
		if err != nil {
			return "", err
		}
		entity, artifact = e, verify.WithArtifact(bytes.NewReader(c.legacy.payload))
	default:
		return "", errors.New("no signature")
	}
	cert := false
	if vc, err := entity.VerificationContent(); err == nil && vc.Certificate() != nil {
		cert = true
	}
	if cert {
		return t.keyless(entity, artifact, c.bundle != nil)
	}
	return t.key(entity, artifact, c.bundle != nil, keys, keyErrs)
}

// keyless verifies a certificate's signature: a Fulcio certificate of the
// trusted root, logged in its transparency log, of a listed identity.
func (t *trust) keyless(entity verify.SignedEntity, artifact verify.ArtifactPolicyOption, statement bool) (string, error) {
	if len(t.identities) == 0 {
		return "", errors.New("signed with a certificate, and no keyless signer is trusted")
	}
	opts := []verify.VerifierOption{verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1)}
	if len(t.root.CTLogs()) > 0 {
		opts = append(opts, verify.WithSignedCertificateTimestamps(1))
	}
	v, err := verify.NewVerifier(t.root, opts...)
	if err != nil {
		return "", err
	}
	var ids []verify.PolicyOption
	for _, id := range t.identities {
		ids = append(ids, verify.WithCertificateIdentity(id.id))
	}
	res, err := v.Verify(entity, verify.NewPolicy(artifact, ids...))
	if err != nil {
		return "", err
	}
	if err := signsImage(res, statement); err != nil {
		return "", err
	}
	c := res.Signature.Certificate
	return fmt.Sprintf("%s (issuer %s)", c.SubjectAlternativeName, c.Issuer), nil
}

// key verifies a key's signature against each trusted key: with its
// transparency log entry where there is one and a trusted root to check it
// with (or where the gate requires one), without otherwise.
func (t *trust) key(entity verify.SignedEntity, artifact verify.ArtifactPolicyOption, statement bool, keys []trustedKey, keyErrs []string) (string, error) {
	if len(keys) == 0 {
		if len(keyErrs) > 0 {
			return "", errors.New(strings.Join(keyErrs, "; "))
		}
		return "", errors.New("signed with a key, and no key is trusted")
	}
	entries, _ := entity.TlogEntries()
	logged := len(entries) > 0 && t.root != nil
	if t.requireLog && !logged {
		if len(entries) == 0 {
			return "", errors.New("no transparency log entry, and the gate requires one (requireTransparencyLog)")
		}
		return "", errors.New("a transparency log entry, and no trusted root to check it with")
	}
	errs := keyErrs
	for _, k := range keys {
		var v *verify.Verifier
		var err error
		if logged {
			v, err = verify.NewVerifier(root.TrustedMaterialCollection{k.material, t.root}, verify.WithTransparencyLog(1), verify.WithIntegratedTimestamps(1))
		} else {
			v, err = verify.NewVerifier(k.material, verify.WithNoObserverTimestamps())
		}
		if err != nil {
			return "", err
		}
		res, err := v.Verify(entity, verify.NewPolicy(artifact, verify.WithKey()))
		if err != nil {
			errs = append(errs, k.label()+": "+err.Error())
			continue
		}
		if err := signsImage(res, statement); err != nil {
			return "", err
		}
		return k.label(), nil
	}
	return "", errors.New(strings.Join(errs, "; "))
}

// label names the key for people: "key <file>" or "KMS key <ARN>".
func (k trustedKey) label() string {
	if k.kmsARN != "" {
		return k.name
	}
	return "key " + k.name
}

// signsImage refuses a bundle whose statement is not an image signature:
// an attestation by the same signer says something else about the image.
func signsImage(res *verify.VerificationResult, statement bool) error {
	if !statement {
		return nil
	}
	if res.Statement == nil {
		return errors.New("not an image signature: no in-toto statement")
	}
	if res.Statement.PredicateType != SignPredicateType {
		return fmt.Errorf("not an image signature: an attestation of predicate type %q", res.Statement.PredicateType)
	}
	return nil
}

// names checks that a legacy payload signs digest: a valid signature of
// another image's payload, copied under this image's tag, is not this
// image's.
func (s *legacySignature) names(digest string) error {
	var p struct {
		Critical struct {
			Image struct {
				Digest string `json:"docker-manifest-digest"`
			} `json:"image"`
			Type string `json:"type"`
		} `json:"critical"`
	}
	if err := json.Unmarshal(s.payload, &p); err != nil {
		return fmt.Errorf("the payload is not a cosign signature payload: %w", err)
	}
	if p.Critical.Type != legacyPayloadType {
		return fmt.Errorf("the payload's type is %q, not %q", p.Critical.Type, legacyPayloadType)
	}
	if p.Critical.Image.Digest != digest {
		return fmt.Errorf("the payload signs %s, not this image", p.Critical.Image.Digest)
	}
	return nil
}

// newLegacyEntity is a legacy signature as sigstore-go verifies it: a message
// signature over the payload, by the certificate or a key, with the Rekor
// entry of cosign's bundle annotation.
func newLegacyEntity(s *legacySignature) (*legacyEntity, error) {
	e := &legacyEntity{}
	hash := crypto.SHA256
	if len(bytes.TrimSpace(s.cert)) > 0 {
		cert, err := s.certificate()
		if err != nil {
			return nil, err
		}
		e.content = bundle.NewCertificate(cert)
		hash = hashFor(cert.PublicKey)
	} else {
		// The trusted keys answer whatever hint: cosign's vary.
		e.content = &bundle.PublicKey{}
	}
	h := hash.New()
	h.Write(s.payload)
	e.signature = bundle.NewMessageSignature(h.Sum(nil), hashName(hash), s.signature)
	entry, err := s.tlogEntry()
	if err != nil {
		return nil, err
	}
	if entry != nil {
		e.entries = []*tlog.Entry{entry}
	}
	return e, nil
}

type legacyEntity struct {
	verify.BaseSignedEntity
	content   verify.VerificationContent
	signature *bundle.MessageSignature
	entries   []*tlog.Entry
}

func (e *legacyEntity) VerificationContent() (verify.VerificationContent, error) {
	return e.content, nil
}
func (e *legacyEntity) SignatureContent() (verify.SignatureContent, error) {
	return e.signature, nil
}
func (e *legacyEntity) TlogEntries() ([]*tlog.Entry, error) { return e.entries, nil }
func (e *legacyEntity) Timestamps() ([][]byte, error)       { return nil, nil }
func (e *legacyEntity) HasInclusionPromise() bool           { return len(e.entries) > 0 }

// Version is the bundle version whose rules a legacy signature follows:
// an inclusion promise, no proof.
func (e *legacyEntity) Version() (string, error) { return "v0.1", nil }

func hashName(h crypto.Hash) string {
	switch h {
	case crypto.SHA384:
		return "SHA2_384"
	case crypto.SHA512:
		return "SHA2_512"
	}
	return "SHA2_256"
}

// digestBytes is the SHA-256 of a sha256:<hex> image digest.
func digestBytes(digest string) ([]byte, error) {
	hexSum, ok := strings.CutPrefix(digest, "sha256:")
	b, err := hex.DecodeString(hexSum)
	if !ok || err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("%q is not a sha256 image digest", digest)
	}
	return b, nil
}
