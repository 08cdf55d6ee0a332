package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Gates are what an image must have earned before the butler writes its
// tag: an age, a clean scan, a signature. The top-level gates apply to every
// repository that sets none of its own; an annotation on an object may
// tighten them for its policy, never loosen them.
type Gates struct {
	// MinAge is how long an image must have been in ECR (imagePushedAt).
	MinAge Duration `yaml:"minAge"`
	// Scan gates on ECR's scan findings (basic or enhanced scanning).
	Scan *ScanGate `yaml:"scan"`
	// Signature gates on a cosign signature of the image's digest.
	Signature *SignatureGate `yaml:"signature"`
}

// ScanGate is the scan gate.
type ScanGate struct {
	// MaxSeverity is the most severe finding allowed below it: HIGH lets
	// through MEDIUM and below, and refuses an image with a HIGH or
	// CRITICAL finding. Empty: findings do not gate.
	MaxSeverity string `yaml:"maxSeverity"`
	// Require refuses an image without a finished scan.
	Require bool `yaml:"require"`
}

// SignatureGate is the signature gate: who may sign, and where the trust
// comes from. Every key and identity listed is enough alone.
type SignatureGate struct {
	// Required says every image needs a signature; false leaves it to the
	// annotation's "signed" (the trust is still this one). Default true.
	Required *bool `yaml:"required"`
	// Keys are cosign public keys: PEM files, or AWS KMS keys (cosign's
	// awskms:///<key ARN>, or the ARN alone) whose public key is read
	// with KMS GetPublicKey.
	Keys []string `yaml:"keys"`
	// Keyless are the certificate identities of keyless (Fulcio) signers.
	Keyless []SignerIdentity `yaml:"keyless"`
	// TrustedRootFile is the Sigstore trusted root (JSON, as `cosign
	// trusted-root create` or the TUF repository writes it), read at start:
	// needed for keyless, and for keys signed into a transparency log.
	TrustedRootFile string `yaml:"trustedRootFile"`
	// Registry, when set, is where signatures are read instead of the ECR
	// registry (http://host:port for a local mirror or a test registry).
	Registry string `yaml:"registry"`
	// RequireTransparencyLog refuses a signature without a transparency log
	// entry (a key-based signature made with --tlog-upload=false).
	RequireTransparencyLog bool `yaml:"requireTransparencyLog"`
}

// kmsARN is the ARN of a KMS key or alias.
var kmsARN = regexp.MustCompile(`^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/[A-Za-z0-9/_+=.@-]+$`)

// KMSKeyARN says whether a signature gate's key is a KMS key, and its ARN:
// awskms:///<ARN> (as cosign writes it) or the ARN alone.
func KMSKeyARN(key string) (arn string, ok bool) {
	arn = strings.TrimPrefix(key, "awskms:///")
	return arn, kmsARN.MatchString(arn)
}

// SignerIdentity is a keyless signer: the OIDC issuer and the identity
// (subject alternative name) of the certificate, each exact or, with the
// Regexp form, an RE2 pattern matched whole.
type SignerIdentity struct {
	Issuer         string `yaml:"issuer"`
	IssuerRegexp   string `yaml:"issuerRegexp"`
	Identity       string `yaml:"identity"`
	IdentityRegexp string `yaml:"identityRegexp"`
}

// SignatureRequired reports whether the gate requires a signature of every
// image (rather than only of annotated policies').
func (s *SignatureGate) SignatureRequired() bool {
	return s != nil && (s.Required == nil || *s.Required)
}

// Severities are ECR's finding severities, least severe first.
var Severities = []string{"INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

// SeverityRank is the rank of a severity in Severities (0 for
// INFORMATIONAL), or -1 when it is none (UNDEFINED, UNTRIAGED).
func SeverityRank(s string) int { return slices.Index(Severities, strings.ToUpper(s)) }

// GatesOf returns the gates of repo: its own when it sets any, else the
// top-level ones.
func (c *Config) GatesOf(repo Repository) Gates {
	if repo.Gates != nil {
		return *repo.Gates
	}
	return c.Gates
}

// MaxMinAge is the longest minAge: a longer one is surely a typo.
const MaxMinAge = 90 * 24 * time.Hour

func (g Gates) validate(p *problems, at func(keys ...any) int, prefix []any, field string) {
	if d := time.Duration(g.MinAge); d < 0 || d > MaxMinAge {
		p.add(at(append(prefix, "minAge")...), field+".minAge", "must be between 0s and 2160h (90 days), got %s", d)
	}
	if s := g.Scan; s != nil && s.MaxSeverity != "" && SeverityRank(s.MaxSeverity) < 0 {
		p.add(at(append(prefix, "scan", "maxSeverity")...), field+".scan.maxSeverity", "must be one of %s, got %q", strings.Join(Severities, ", "), s.MaxSeverity)
	}
	sig := g.Signature
	if sig == nil {
		return
	}
	if len(sig.Keys) == 0 && len(sig.Keyless) == 0 {
		p.add(at(append(prefix, "signature")...), field+".signature", "needs keys or keyless: whose signatures count")
	}
	for i, k := range sig.Keys {
		_, isKMS := KMSKeyARN(k)
		if !isKMS && (strings.HasPrefix(k, "awskms:") || strings.HasPrefix(k, "arn:")) {
			p.add(at(append(prefix, "signature", "keys", i)...), fmt.Sprintf("%s.signature.keys[%d]", field, i),
				"%q is not a KMS key: use awskms:///arn:aws:kms:<region>:<account>:key/<id> (or alias/<name>); the endpoint comes from aws.endpoint", k)
		}
	}
	for i, id := range sig.Keyless {
		f := fmt.Sprintf("%s.signature.keyless[%d]", field, i)
		line := at(append(prefix, "signature", "keyless", i)...)
		if (id.Issuer == "") == (id.IssuerRegexp == "") {
			p.add(line, f, "needs issuer or issuerRegexp (one of them), such as https://token.actions.githubusercontent.com")
		}
		if (id.Identity == "") == (id.IdentityRegexp == "") {
			p.add(line, f, "needs identity or identityRegexp (one of them), such as https://github.com/org/repo/.github/workflows/build.yaml@refs/heads/main")
		}
		for _, re := range [][2]string{{"issuerRegexp", id.IssuerRegexp}, {"identityRegexp", id.IdentityRegexp}} {
			if _, err := regexp.Compile(re[1]); re[1] != "" && err != nil {
				p.add(at(append(prefix, "signature", "keyless", i, re[0])...), f+"."+re[0], "%q is not a regexp: %v", re[1], err)
			}
		}
	}
	if len(sig.Keyless) > 0 && sig.TrustedRootFile == "" {
		p.add(at(append(prefix, "signature")...), field+".signature.trustedRootFile", "must be set for keyless signers: the Fulcio and Rekor keys come from it")
	}
	if sig.RequireTransparencyLog && sig.TrustedRootFile == "" {
		p.add(at(append(prefix, "signature", "requireTransparencyLog")...), field+".signature.trustedRootFile", "must be set with requireTransparencyLog: the Rekor keys that check a log entry come from it")
	}
	if sig.Registry != "" && !strings.HasPrefix(sig.Registry, "http://") && !strings.HasPrefix(sig.Registry, "https://") {
		p.add(at(append(prefix, "signature", "registry")...), field+".signature.registry", "%q is not an http:// or https:// URL", sig.Registry)
	}
}
