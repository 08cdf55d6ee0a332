package signature

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/policy"
)

const (
	workflow  = "https://github.com/acme/bartender/.github/workflows/release.yml@refs/heads/main"
	otherFlow = "https://github.com/acme/bartender/.github/workflows/pr.yml@refs/heads/feature"
	issuer    = "https://token.actions.githubusercontent.com"
)

// world is a registry with images and the signers of a test.
type world struct {
	t        *testing.T
	host     string
	sigstore *ca.VirtualSigstore
	rootFile string
	key      *ecdsa.PrivateKey
	keyFile  string
	other    *ecdsa.PrivateKey // a key nobody trusts
}

func newWorld(t *testing.T) *world {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.WithReferrersSupport(true), ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	// No CT logs in this root: the virtual Fulcio's certificates carry no
	// SCTs, and a root without CT logs asks for none.
	// The virtual Rekor's log ID is its hex form's bytes; a trusted root
	// file holds the raw key ID, as Sigstore's does.
	logs := map[string]*root.TransparencyLog{}
	for id, l := range vs.RekorLogs() {
		raw, err := hex.DecodeString(id)
		if err != nil {
			t.Fatal(err)
		}
		l.ID = raw
		logs[id] = l
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vs.FulcioCertificateAuthorities(), nil, vs.TimestampingAuthorities(), logs)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	w := &world{t: t, host: strings.TrimPrefix(srv.URL, "http://"), sigstore: vs,
		rootFile: filepath.Join(dir, "trusted_root.json"), keyFile: filepath.Join(dir, "cosign.pub")}
	if err := os.WriteFile(w.rootFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	w.key = newKey(t)
	w.other = newKey(t)
	pem, err := cryptoutils.MarshalPublicKeyToPEM(&w.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.keyFile, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (w *world) repo() name.Repository {
	r, err := name.NewRepository(w.host+"/team/bartender", name.Insecure)
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

// image pushes a random image and returns its digest.
func (w *world) image() string {
	w.t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		w.t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		w.t.Fatal(err)
	}
	if err := remote.Write(w.repo().Digest(d.String()), img); err != nil {
		w.t.Fatal(err)
	}
	return d.String()
}

// payload is cosign's simple-signing payload for digest.
func payload(digest string) []byte {
	return fmt.Appendf(nil, `{"critical":{"identity":{"docker-reference":"registry/team/bartender"},"image":{"docker-manifest-digest":%q},"type":"cosign container image signature"},"optional":null}`, digest)
}

// statement is cosign v3's image signature statement for digest, of
// predicate type pt.
func statement(digest, pt string) []byte {
	return fmt.Appendf(nil, `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"registry/team/bartender","digest":{"sha256":%q}}],"predicateType":%q,"predicate":{}}`,
		strings.TrimPrefix(digest, "sha256:"), pt)
}

func signECDSA(t *testing.T, k *ecdsa.PrivateKey, msg []byte) []byte {
	sum := sha256.Sum256(msg)
	sig, err := ecdsa.SignASN1(rand.Reader, k, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// sigLayer is one layer of a .sig image.
type sigLayer struct {
	payload     []byte
	annotations map[string]string
}

// pushLegacy writes the .sig tag of digest with layers.
func (w *world) pushLegacy(digest string, layers ...sigLayer) {
	w.t.Helper()
	img := empty.Image
	for _, l := range layers {
		var err error
		img, err = mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(l.payload, SimpleSigningMediaType), Annotations: l.annotations})
		if err != nil {
			w.t.Fatal(err)
		}
	}
	tag := w.repo().Tag(strings.Replace(digest, ":", "-", 1) + ".sig")
	if err := remote.Write(tag, img); err != nil {
		w.t.Fatal(err)
	}
}

// keyLegacy is a key signature of p, cosign's .sig layer.
func (w *world) keyLegacy(k *ecdsa.PrivateKey, p []byte) sigLayer {
	return sigLayer{p, map[string]string{SignatureAnnotation: base64.StdEncoding.EncodeToString(signECDSA(w.t, k, p))}}
}

// keylessLegacy is a keyless signature of p by identity, with its Rekor
// entry in cosign's bundle annotation.
func (w *world) keylessLegacy(identity string, p []byte) sigLayer {
	w.t.Helper()
	e, err := w.sigstore.Sign(identity, issuer, p)
	if err != nil {
		w.t.Fatal(err)
	}
	vc, _ := e.VerificationContent()
	sc, _ := e.SignatureContent()
	entries, _ := e.TlogEntries()
	certPEM, err := cryptoutils.MarshalCertificateToPEM(vc.Certificate())
	if err != nil {
		w.t.Fatal(err)
	}
	rb := w.rekorBundle(entries[0])
	raw, _ := json.Marshal(rb)
	return sigLayer{p, map[string]string{
		SignatureAnnotation:   base64.StdEncoding.EncodeToString(sc.MessageSignatureContent().Signature()),
		CertificateAnnotation: string(certPEM),
		BundleAnnotation:      string(raw),
	}}
}

// rekorBundle is cosign's bundle annotation for entry, with a signed entry
// timestamp of the virtual Rekor.
func (w *world) rekorBundle(entry *tlog.Entry) rekorBundle {
	w.t.Helper()
	tle := entry.TransparencyLogEntry()
	var rb rekorBundle
	rb.Payload.Body = base64.StdEncoding.EncodeToString(tle.CanonicalizedBody)
	rb.Payload.IntegratedTime = tle.IntegratedTime
	rb.Payload.LogIndex = tle.LogIndex
	rb.Payload.LogID = hex.EncodeToString(tle.LogId.KeyId)
	set, err := w.sigstore.RekorSignPayload(tlog.RekorPayload{Body: rb.Payload.Body, IntegratedTime: rb.Payload.IntegratedTime,
		LogIndex: rb.Payload.LogIndex, LogID: rb.Payload.LogID})
	if err != nil {
		w.t.Fatal(err)
	}
	rb.SignedEntryTimestamp = set
	return rb
}

// pushBundle writes b as a referrer of digest, as cosign's new bundle
// format does (the artifact type in the config's media type, which the
// test registry lists as the artifact type).
func (w *world) pushBundle(digest string, b *protobundle.Bundle) {
	w.t.Helper()
	sb, err := bundle.NewBundle(b)
	if err != nil {
		w.t.Fatal(err)
	}
	raw, err := sb.MarshalJSON()
	if err != nil {
		w.t.Fatal(err)
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: static.NewLayer(raw, types.MediaType(BundleArtifactType))})
	if err != nil {
		w.t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.MediaType(BundleArtifactType))
	h, err := v1.NewHash(digest)
	if err != nil {
		w.t.Fatal(err)
	}
	subject, err := remote.Head(w.repo().Digest(digest))
	if err != nil {
		w.t.Fatal(err)
	}
	subject.Digest = h
	withSubject := mutate.Subject(img, *subject).(v1.Image)
	d, err := withSubject.Digest()
	if err != nil {
		w.t.Fatal(err)
	}
	if err := remote.Write(w.repo().Digest(d.String()), withSubject); err != nil {
		w.t.Fatal(err)
	}
}

func envelopeProto(env *dsse.Envelope) *protodsse.Envelope {
	p, _ := base64.StdEncoding.DecodeString(env.Payload)
	out := &protodsse.Envelope{Payload: p, PayloadType: env.PayloadType}
	for _, s := range env.Signatures {
		sig, _ := base64.StdEncoding.DecodeString(s.Sig)
		out.Signatures = append(out.Signatures, &protodsse.Signature{Sig: sig, Keyid: s.KeyID})
	}
	return out
}

// keyBundle is a v0.3 bundle of stmt signed by k, without a log entry
// (cosign sign --key --tlog-upload=false).
func (w *world) keyBundle(k *ecdsa.PrivateKey, stmt []byte) *protobundle.Bundle {
	pt := "application/vnd.in-toto+json"
	sig := signECDSA(w.t, k, dsse.PAE(pt, stmt))
	return &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: "cosign.pub"}},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: stmt, PayloadType: pt, Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	}
}

// keylessBundle is a v0.1 bundle of stmt signed by identity, with its
// Rekor entry and inclusion promise.
func (w *world) keylessBundle(identity string, stmt []byte) *protobundle.Bundle {
	w.t.Helper()
	e, err := w.sigstore.Attest(identity, issuer, stmt)
	if err != nil {
		w.t.Fatal(err)
	}
	vc, _ := e.VerificationContent()
	sc, _ := e.SignatureContent()
	entries, _ := e.TlogEntries()
	rb := w.rekorBundle(entries[0])
	tle := entries[0].TransparencyLogEntry()
	var kind struct{ Kind, APIVersion string }
	if err := json.Unmarshal(tle.CanonicalizedBody, &kind); err != nil {
		w.t.Fatal(err)
	}
	tle.KindVersion = &protorekor.KindVersion{Kind: kind.Kind, Version: kind.APIVersion}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: rb.SignedEntryTimestamp}
	return &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle+json;version=0.1",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:     &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: vc.Certificate().Raw}},
			TlogEntries: []*protorekor.TransparencyLogEntry{tle},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: envelopeProto(sc.EnvelopeContent().RawEnvelope())},
	}
}

func (w *world) keyGate() *config.SignatureGate {
	return &config.SignatureGate{Keys: []string{w.keyFile}, Registry: "http://" + w.host}
}

func (w *world) keylessGate(identities ...string) *config.SignatureGate {
	g := &config.SignatureGate{TrustedRootFile: w.rootFile, Registry: "http://" + w.host}
	for _, id := range identities {
		g.Keyless = append(g.Keyless, config.SignerIdentity{Issuer: issuer, Identity: id})
	}
	return g
}

var ref = policy.ImageRef{Account: "123456789012", Region: "us-east-2", Repository: "team/bartender"}

func TestVerify(t *testing.T) {
	w := newWorld(t)
	tests := []struct {
		name string
		// sign signs (or not) the image digest and returns the gate.
		sign       func(digest string) *config.SignatureGate
		wantSigner string
		wantErr    string
	}{{
		name: "key, legacy tag",
		sign: func(d string) *config.SignatureGate {
			w.pushLegacy(d, w.keyLegacy(w.key, payload(d)))
			return w.keyGate()
		},
		wantSigner: "key " + w.keyFile,
	}, {
		name: "key, bundle referrer",
		sign: func(d string) *config.SignatureGate {
			w.pushBundle(d, w.keyBundle(w.key, statement(d, SignPredicateType)))
			return w.keyGate()
		},
		wantSigner: "key " + w.keyFile,
	}, {
		name: "keyless, legacy tag",
		sign: func(d string) *config.SignatureGate {
			w.pushLegacy(d, w.keylessLegacy(workflow, payload(d)))
			return w.keylessGate(workflow)
		},
		wantSigner: workflow + " (issuer " + issuer + ")",
	}, {
		name: "keyless, bundle referrer",
		sign: func(d string) *config.SignatureGate {
			w.pushBundle(d, w.keylessBundle(workflow, statement(d, SignPredicateType)))
			return w.keylessGate(workflow)
		},
		wantSigner: workflow + " (issuer " + issuer + ")",
	}, {
		name: "keyless, one of two identities, by regexp",
		sign: func(d string) *config.SignatureGate {
			w.pushLegacy(d, w.keylessLegacy(workflow, payload(d)))
			g := w.keylessGate(otherFlow)
			g.Keyless = append(g.Keyless, config.SignerIdentity{Issuer: issuer, IdentityRegexp: `https://github\.com/acme/.*/release\.yml@refs/heads/main`})
			return g
		},
		wantSigner: workflow + " (issuer " + issuer + ")",
	}, {
		name: "an untrusted signature next to a trusted one",
		sign: func(d string) *config.SignatureGate {
			w.pushLegacy(d, w.keyLegacy(w.other, payload(d)), w.keyLegacy(w.key, payload(d)))
			return w.keyGate()
		},
		wantSigner: "key " + w.keyFile,
	}, {
		name:    "unsigned",
		sign:    func(string) *config.SignatureGate { return w.keyGate() },
		wantErr: "not signed: no Sigstore bundle among its referrers and no tag sha256-",
	}, {
		name: "another key",
		sign: func(d string) *config.SignatureGate {
			w.pushLegacy(d, w.keyLegacy(w.other, payload(d)))
			return w.keyGate()
		},
		wantErr: "its signature is not trusted: tag: key " + w.keyFile + ": failed to verify signature",
	}, {
		name: "another workflow of the same repository",
		sign: func(d string) *config.SignatureGate {
			w.pushLegacy(d, w.keylessLegacy(otherFlow, payload(d)))
			return w.keylessGate(workflow)
		},
		wantErr: "failed to verify certificate identity",
	}, {
		name: "another workflow, bundle referrer",
		sign: func(d string) *config.SignatureGate {
			w.pushBundle(d, w.keylessBundle(otherFlow, statement(d, SignPredicateType)))
			return w.keylessGate(workflow)
		},
		wantErr: "failed to verify certificate identity",
	}, {
		name: "tampered payload",
		sign: func(d string) *config.SignatureGate {
			l := w.keyLegacy(w.key, payload(d))
			l.payload = []byte(strings.Replace(string(l.payload), "registry/", "registrx/", 1))
			w.pushLegacy(d, l)
			return w.keyGate()
		},
		wantErr: "failed to verify signature",
	}, {
		name: "a good signature of another image under this image's tag",
		sign: func(d string) *config.SignatureGate {
			other := w.image()
			w.pushLegacy(d, w.keyLegacy(w.key, payload(other)))
			return w.keyGate()
		},
		wantErr: "the payload signs sha256:",
	}, {
		name: "a bundle of another image as this image's referrer",
		sign: func(d string) *config.SignatureGate {
			other := w.image()
			w.pushBundle(d, w.keylessBundle(workflow, statement(other, SignPredicateType)))
			return w.keylessGate(workflow)
		},
		wantErr: "failed to verify signature",
	}, {
		name: "an attestation by the trusted workflow is not a signature",
		sign: func(d string) *config.SignatureGate {
			w.pushBundle(d, w.keylessBundle(workflow, statement(d, "https://slsa.dev/provenance/v1")))
			return w.keylessGate(workflow)
		},
		wantErr: `not an image signature: an attestation of predicate type "https://slsa.dev/provenance/v1"`,
	}, {
		name: "keyless signature where only keys are trusted",
		sign: func(d string) *config.SignatureGate {
			w.pushLegacy(d, w.keylessLegacy(workflow, payload(d)))
			return w.keyGate()
		},
		wantErr: "signed with a certificate, and no keyless signer is trusted",
	}, {
		name: "key signature without a log entry where one is required",
		sign: func(d string) *config.SignatureGate {
			w.pushLegacy(d, w.keyLegacy(w.key, payload(d)))
			g := w.keyGate()
			g.TrustedRootFile = w.rootFile
			g.RequireTransparencyLog = true
			return g
		},
		wantErr: "no transparency log entry, and the gate requires one",
	}, {
		name: "keyless signature whose log entry is not of its signature",
		sign: func(d string) *config.SignatureGate {
			good := w.keylessLegacy(workflow, payload(d))
			other := w.keylessLegacy(workflow, payload(d))
			good.annotations[BundleAnnotation] = other.annotations[BundleAnnotation]
			w.pushLegacy(d, good)
			return w.keylessGate(workflow)
		},
		wantErr: "transparency log",
	}}
	v := &Verifier{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := w.image()
			g := tt.sign(d)
			signer, err := v.Verify(context.Background(), ref, d, g)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Verify = %q, %v; want an error containing %q", signer, err, tt.wantErr)
				}
				t.Log(err)
				return
			}
			if err != nil || signer != tt.wantSigner {
				t.Fatalf("Verify = %q, %v; want %q", signer, err, tt.wantSigner)
			}
		})
	}
}

// TestVerifyTrustErrors: a gate whose files cannot be read says which.
func TestVerifyTrustErrors(t *testing.T) {
	w := newWorld(t)
	d := w.image()
	bad := filepath.Join(t.TempDir(), "bad.pub")
	if err := os.WriteFile(bad, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		gate *config.SignatureGate
		want string
	}{
		{&config.SignatureGate{Keys: []string{"/nonexistent/cosign.pub"}}, "reading the public key /nonexistent/cosign.pub"},
		{&config.SignatureGate{Keys: []string{bad}}, "reading the public key " + bad},
		{&config.SignatureGate{TrustedRootFile: bad, Keyless: []config.SignerIdentity{{Issuer: issuer, Identity: workflow}}}, "reading the trusted root " + bad},
	} {
		_, err := (&Verifier{}).Verify(context.Background(), ref, d, tt.gate)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Verify = %v, want an error containing %q", err, tt.want)
		}
	}
}

// TestVerifyRegistryHangs: a registry that accepts and never answers holds
// a verification only until the Verifier's timeout.
func TestVerifyRegistryHangs(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(stop)
	w := newWorld(t)
	g := w.keyGate()
	g.Registry = srv.URL
	v := &Verifier{Timeout: time.Second}
	done := make(chan error, 1)
	go func() {
		_, err := v.Verify(context.Background(), ref, "sha256:"+strings.Repeat("ab", 32), g)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "context deadline exceeded") {
			t.Fatalf("Verify = %v, want the deadline", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("Verify did not return two minutes after its one-second timeout")
	}
}

// TestVerifyBounds: a registry cannot make a verification unbounded: at
// most maxSignatures are judged, and no blob is read past maxBlob.
func TestVerifyBounds(t *testing.T) {
	w := newWorld(t)
	d := w.image()
	var layers []sigLayer
	for range maxSignatures + 8 {
		layers = append(layers, w.keyLegacy(w.other, payload(d)))
	}
	w.pushLegacy(d, layers...)
	_, err := (&Verifier{}).Verify(context.Background(), ref, d, w.keyGate())
	if want := fmt.Sprintf("%d signatures, none trusted", maxSignatures); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Verify = %v, want %q", err, want)
	}

	big := w.image()
	huge := append(payload(big), make([]byte, maxBlob)...)
	w.pushLegacy(big, w.keyLegacy(w.key, huge))
	_, err = (&Verifier{}).Verify(context.Background(), ref, big, w.keyGate())
	if want := fmt.Sprintf("more than %d bytes", maxBlob); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Verify = %v, want %q", err, want)
	}
}

// redirect sends every request to one plain-HTTP host: the image's ECR
// registry name, and the credentials Auth gives it, reach the test
// registry.
type redirect struct{ host string }

func (r redirect) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.URL.Scheme, req.URL.Host = "http", r.host
	return http.DefaultTransport.RoundTrip(req)
}

// TestVerifyECRCredentials: without a registry of its own, a gate reads
// the signatures from the image's ECR registry with the credentials Auth
// gives (ECR answers 401 without them).
func TestVerifyECRCredentials(t *testing.T) {
	w := newWorld(t)
	d := w.image()
	w.pushLegacy(d, w.keyLegacy(w.key, payload(d)))
	var hosts []string
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		hosts = append(hosts, r.Host)
		if u, p, ok := r.BasicAuth(); !ok || u != "AWS" || p != "ecr-token" {
			rw.Header().Set("WWW-Authenticate", `Basic realm="https://123456789012.dkr.ecr.us-east-2.amazonaws.com/"`)
			http.Error(rw, "Not Authorized", http.StatusUnauthorized)
			return
		}
		// The test registry holds the signatures; forward to it.
		r.URL.Scheme, r.URL.Host = "http", w.host
		resp, err := http.DefaultTransport.RoundTrip(r.Clone(r.Context()))
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			rw.Header()[k] = vs
		}
		rw.WriteHeader(resp.StatusCode)
		io.Copy(rw, resp.Body)
	}))
	defer srv.Close()
	g := &config.SignatureGate{Keys: []string{w.keyFile}}
	tr := redirect{strings.TrimPrefix(srv.URL, "http://")}

	var asked []policy.ImageRef
	v := &Verifier{Transport: tr, Auth: func(_ context.Context, r policy.ImageRef) (authn.Authenticator, error) {
		asked = append(asked, r)
		return &authn.Basic{Username: "AWS", Password: "ecr-token"}, nil
	}}
	signer, err := v.Verify(context.Background(), ref, d, g)
	if err != nil || signer != "key "+w.keyFile {
		t.Fatalf("Verify with credentials = %q, %v", signer, err)
	}
	if len(asked) != 1 || asked[0] != ref {
		t.Errorf("Auth asked for %v, want %v once", asked, ref)
	}
	if len(hosts) == 0 || hosts[0] != ref.Host() {
		t.Errorf("the registry was asked as %v, want %s", hosts, ref.Host())
	}

	_, err = (&Verifier{Transport: tr}).Verify(context.Background(), ref, d, g)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("Verify without credentials = %v, want ECR's 401", err)
	}
}

// TestVerifyKMSKey: a KMS key's public key is fetched at first use, once;
// a failed fetch is said in the verdict and tried again at the next.
func TestVerifyKMSKey(t *testing.T) {
	w := newWorld(t)
	d := w.image()
	w.pushLegacy(d, w.keyLegacy(w.key, payload(d)))
	const arn = "arn:aws:kms:us-east-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	g := &config.SignatureGate{Keys: []string{"awskms:///" + arn}, Registry: "http://" + w.host}
	var fetched []string
	fail := true
	v := &Verifier{PublicKey: func(_ context.Context, keyARN string) (crypto.PublicKey, error) {
		fetched = append(fetched, keyARN)
		if fail {
			return nil, errors.New("KMS GetPublicKey: AccessDeniedException")
		}
		return &w.key.PublicKey, nil
	}}
	_, err := v.Verify(context.Background(), ref, d, g)
	if want := "KMS key " + arn + ": KMS GetPublicKey: AccessDeniedException"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Verify with KMS failing = %v, want %q", err, want)
	}
	fail = false
	for range 2 {
		signer, err := v.Verify(context.Background(), ref, d, g)
		if err != nil || signer != "KMS key "+arn {
			t.Fatalf("Verify = %q, %v; want KMS key %s", signer, err, arn)
		}
	}
	if len(fetched) != 2 || fetched[0] != arn {
		t.Errorf("fetched %v; want %s twice (the failure, then once for good)", fetched, arn)
	}
	if _, err := (&Verifier{}).Verify(context.Background(), ref, d, g); err == nil || !strings.Contains(err.Error(), "no KMS client is configured") {
		t.Errorf("Verify without a KMS client = %v", err)
	}
}
