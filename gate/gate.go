// Package gate decides whether an image has earned a rollout: an age in
// ECR (minAge), a finished scan without findings past a severity (scan),
// a signature by a trusted key or identity (signature). The platform sets
// gates in the config; an annotation on an object tightens them for its
// policy, never loosens them. A Checker answers for one image, caching
// what it asked ECR and the registry by digest, so that a cycle in which
// nothing changed asks nothing.
package gate

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/policy"
)

// The gates, as metrics, /status and messages name them.
const (
	MinAge    = "minAge"
	Scan      = "scan"
	Signature = "signature"
)

// Set is the gates one policy's candidates must pass.
type Set struct {
	MinAge       time.Duration
	MaxSeverity  string // findings of this severity or above refuse an image; "": none do
	ScanRequired bool
	// Signature is the trust a signature is verified with; nil: no
	// signature is asked for.
	Signature *config.SignatureGate
}

// Empty reports whether the set asks nothing.
func (s Set) Empty() bool {
	return s.MinAge == 0 && s.MaxSeverity == "" && !s.ScanRequired && s.Signature == nil
}

// String describes the set for people: "minAge 1h, scan (no HIGH or
// CRITICAL finding, scan required), signature".
func (s Set) String() string {
	var parts []string
	if s.MinAge > 0 {
		parts = append(parts, "minAge "+s.MinAge.String())
	}
	if s.MaxSeverity != "" || s.ScanRequired {
		parts = append(parts, "scan ("+s.scanWords()+")")
	}
	if s.Signature != nil {
		parts = append(parts, "signature")
	}
	return strings.Join(parts, ", ")
}

func (s Set) scanWords() string {
	var w []string
	if s.MaxSeverity != "" {
		worse := policy.Severities[slices.Index(policy.Severities, s.MaxSeverity):]
		w = append(w, "no "+strings.Join(worse, " or ")+" finding")
	}
	if s.ScanRequired {
		w = append(w, "scan required")
	}
	return strings.Join(w, ", ")
}

// For returns the gates of p's candidates in a repository whose config
// gates are cfg (set at field, such as "gates" or "repositories[2].gates"):
// cfg, tightened by p's gate annotation. A term that would loosen cfg is
// refused with an error saying why, and cfg's gate stays.
func For(cfg config.Gates, field string, p *policy.Policy) (Set, []error) {
	s := Set{MinAge: time.Duration(cfg.MinAge)}
	if cfg.Scan != nil {
		s.MaxSeverity, s.ScanRequired = strings.ToUpper(cfg.Scan.MaxSeverity), cfg.Scan.Require
	}
	if cfg.Signature.SignatureRequired() {
		s.Signature = cfg.Signature
	}
	g := p.Gate
	if g == nil {
		return s, nil
	}
	var errs []error
	refuse := func(format string, args ...any) {
		errs = append(errs, &policy.AnnotationError{Key: g.Key, Err: fmt.Errorf(format, args...)})
	}
	switch {
	case g.MinAge == 0:
	case g.MinAge < s.MinAge:
		refuse("minAge=%s would loosen %s.minAge (%s), which the platform set; it stays %s", g.MinAge, field, s.MinAge, s.MinAge)
	default:
		s.MinAge = g.MinAge
	}
	switch {
	case g.MaxSeverity == "":
	case s.MaxSeverity != "" && slices.Index(policy.Severities, g.MaxSeverity) > slices.Index(policy.Severities, s.MaxSeverity):
		refuse("maxSeverity=%s would loosen %s.scan.maxSeverity (%s), which the platform set; it stays %s", g.MaxSeverity, field, s.MaxSeverity, s.MaxSeverity)
	default:
		s.MaxSeverity = g.MaxSeverity
	}
	s.ScanRequired = s.ScanRequired || g.ScanRequired
	if g.Signed {
		if cfg.Signature == nil {
			refuse("signed: no signature gate is configured (%s.signature): there is no key or identity to verify with", field)
		} else {
			s.Signature = cfg.Signature
		}
	}
	return s, errs
}

// Verdict is what the gates say of one image.
type Verdict struct {
	// Gate is the gate that refused the image ("" when it passed), and
	// Reason says why: "2 CRITICAL findings", "pushed 12m ago, minAge 1h".
	Gate, Reason string
	// Until, for minAge, is when the image comes of age.
	Until time.Time
	// Passed describes each gate the image passed, for commit messages.
	Passed []string
}

// OK reports whether the image passed every gate.
func (v Verdict) OK() bool { return v.Gate == "" }

// ScanResult is an image's scan as ECR reports it.
type ScanResult struct {
	// Status is ECR's scan status (COMPLETE, ACTIVE, IN_PROGRESS, FAILED,
	// ...) or NotScanned.
	Status string
	// Counts are the findings by severity of a finished scan.
	Counts map[string]int32
}

// NotScanned is the status of an image ECR has no scan of.
const NotScanned = "NOT_SCANNED"

// Finished reports whether the scan finished with findings to judge by.
func (r ScanResult) Finished() bool { return r.Status == "COMPLETE" || r.Status == "ACTIVE" }

// Scanner reads an image's scan: ECR's DescribeImages summary, or
// DescribeImageScanFindings where the summary is missing.
type Scanner interface {
	Scan(ctx context.Context, ref policy.ImageRef, digest string) (ScanResult, error)
}

// Verifier verifies an image's signatures with the trust of g, and says
// whose signature it found.
type Verifier interface {
	Verify(ctx context.Context, ref policy.ImageRef, digest string, g *config.SignatureGate) (signer string, err error)
}

// How long a Checker keeps an answer: a finished scan an hour (enhanced
// scanning finds new vulnerabilities in old images), an unfinished one or a
// missing signature five minutes (they may come), a good signature as long
// as the process runs (a digest's signature does not change).
const (
	finishedScanTTL = time.Hour
	pendingTTL      = 5 * time.Minute
	cacheKept       = 10_000
)

// Checker judges images by a Set, asking scans and signatures of Scans and
// Signatures (either may be nil when no gate needs it).
type Checker struct {
	Scans      Scanner
	Signatures Verifier
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu    sync.Mutex
	scans map[string]cachedScan
	sigs  map[string]cachedSig
	calls int
}

type cachedScan struct {
	r   ScanResult
	err error
	at  time.Time
}

type cachedSig struct {
	signer string
	err    error
	at     time.Time
}

// Calls is how many scan and signature lookups the Checker made (its
// cache answered the rest).
func (c *Checker) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

func (c *Checker) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Forget drops what the Checker knows of the image digest of ref: a scan
// finished or a signature was pushed since (an event says so).
func (c *Checker) Forget(ref policy.ImageRef, digest string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := key(ref, digest)
	delete(c.scans, k)
	for sk := range c.sigs {
		if strings.HasPrefix(sk, k+"|") {
			delete(c.sigs, sk)
		}
	}
}

// Check judges img (of the ECR repository ref) by s: minAge first (it
// costs nothing), then the scan, then the signature.
func (c *Checker) Check(ctx context.Context, ref policy.ImageRef, img policy.Image, s Set) Verdict {
	var v Verdict
	now := c.now()
	if s.MinAge > 0 {
		if age := now.Sub(img.PushedAt); age < s.MinAge {
			return Verdict{Gate: MinAge, Until: img.PushedAt.Add(s.MinAge),
				Reason: fmt.Sprintf("pushed %s ago, minAge %s", age.Truncate(time.Second), s.MinAge)}
		}
		v.Passed = append(v.Passed, "minAge "+s.MinAge.String())
	}
	if s.MaxSeverity != "" || s.ScanRequired {
		r, err := c.scan(ctx, ref, img.Digest, now)
		switch {
		case err != nil:
			return Verdict{Gate: Scan, Reason: "its scan could not be read: " + err.Error()}
		case !r.Finished() && s.ScanRequired:
			return Verdict{Gate: Scan, Reason: "no finished scan (" + strings.ToLower(strings.ReplaceAll(r.Status, "_", " ")) + "), and the scan is required"}
		case r.Finished() && s.MaxSeverity != "":
			if found := findingsAtOrAbove(r.Counts, s.MaxSeverity); found != "" {
				return Verdict{Gate: Scan, Reason: found}
			}
		}
		v.Passed = append(v.Passed, "scan ("+s.scanWords()+")")
	}
	if s.Signature != nil {
		if c.Signatures == nil {
			return Verdict{Gate: Signature, Reason: "no signature verifier is configured"}
		}
		signer, err := c.signature(ctx, ref, img.Digest, s.Signature, now)
		if err != nil {
			return Verdict{Gate: Signature, Reason: err.Error()}
		}
		v.Passed = append(v.Passed, "signature by "+signer)
	}
	return v
}

// findingsAtOrAbove says which findings reach severity ("2 CRITICAL, 1 HIGH
// findings"), or "" when none does.
func findingsAtOrAbove(counts map[string]int32, severity string) string {
	var parts []string
	for i := len(policy.Severities) - 1; i >= slices.Index(policy.Severities, severity); i-- {
		if n := counts[policy.Severities[i]]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, policy.Severities[i]))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, ", ") + " finding(s)"
}

func key(ref policy.ImageRef, digest string) string {
	return ref.Account + "/" + ref.Region + "/" + ref.Repository + "@" + digest
}

func (c *Checker) scan(ctx context.Context, ref policy.ImageRef, digest string, now time.Time) (ScanResult, error) {
	k := key(ref, digest)
	c.mu.Lock()
	e, ok := c.scans[k]
	c.mu.Unlock()
	ttl := pendingTTL
	if e.err == nil && e.r.Finished() {
		ttl = finishedScanTTL
	}
	if ok && now.Sub(e.at) < ttl {
		return e.r, e.err
	}
	if c.Scans == nil {
		return ScanResult{}, fmt.Errorf("no scan source is configured")
	}
	r, err := c.Scans.Scan(ctx, ref, digest)
	if ctx.Err() != nil {
		return r, err // not cached: the cycle ended, not the answer
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.scans == nil || len(c.scans) >= cacheKept {
		c.scans = map[string]cachedScan{}
	}
	c.scans[k] = cachedScan{r, err, now}
	return r, err
}

func (c *Checker) signature(ctx context.Context, ref policy.ImageRef, digest string, g *config.SignatureGate, now time.Time) (string, error) {
	k := key(ref, digest) + fmt.Sprintf("|%p", g)
	c.mu.Lock()
	e, ok := c.sigs[k]
	c.mu.Unlock()
	if ok && (e.err == nil || now.Sub(e.at) < pendingTTL) {
		return e.signer, e.err
	}
	signer, err := c.Signatures.Verify(ctx, ref, digest, g)
	if ctx.Err() != nil {
		return signer, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.sigs == nil || len(c.sigs) >= cacheKept {
		c.sigs = map[string]cachedSig{}
	}
	c.sigs[k] = cachedSig{signer, err, now}
	return signer, err
}
