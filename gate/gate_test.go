package gate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/policy"
)

func parsedPolicy(t *testing.T, gateValue string) *policy.Policy {
	t.Helper()
	ann := map[string]string{
		policy.AutomatedKey:         "true",
		policy.SimplePrefix + "web": "283234040926;lrl_web;glob:sha-*",
		policy.GatePrefix + "web":   gateValue,
	}
	if gateValue == "" {
		delete(ann, policy.GatePrefix+"web")
	}
	ps, errs := policy.Parse(ann, "shop", "us-east-2")
	if len(errs) > 0 || len(ps) != 1 {
		t.Fatalf("Parse: %v", errs)
	}
	return ps[0]
}

// The annotation tightens the config's gates, and a term that would loosen
// one is refused, saying which and why.
func TestFor(t *testing.T) {
	sig := &config.SignatureGate{Keys: []string{"/etc/cosign.pub"}}
	optional := false
	optionalSig := &config.SignatureGate{Keys: []string{"/etc/cosign.pub"}, Required: &optional}
	cfg := config.Gates{MinAge: config.Duration(time.Hour), Scan: &config.ScanGate{MaxSeverity: "HIGH"}}
	tests := []struct {
		name string
		cfg  config.Gates
		gate string
		want string
		errs []string
	}{
		{"config alone", cfg, "", "minAge 1h0m0s, scan (no HIGH or CRITICAL finding)", nil},
		{"nothing configured", config.Gates{}, "", "", nil},
		{"tightened", cfg, "minAge=2h; maxSeverity=MEDIUM; scanRequired", "minAge 2h0m0s, scan (no MEDIUM or HIGH or CRITICAL finding, scan required)", nil},
		{"loosened", cfg, "minAge=10m; maxSeverity=CRITICAL", "minAge 1h0m0s, scan (no HIGH or CRITICAL finding)", []string{
			"annotation app.lilly.com/flux.gate.web: minAge=10m0s would loosen gates.minAge (1h0m0s), which the platform set; it stays 1h0m0s",
			"annotation app.lilly.com/flux.gate.web: maxSeverity=CRITICAL would loosen gates.scan.maxSeverity (HIGH), which the platform set; it stays HIGH"}},
		{"a scan gate where none is set", config.Gates{}, "maxSeverity=LOW", "scan (no LOW or MEDIUM or HIGH or CRITICAL finding)", nil},
		{"signed without a signature gate", cfg, "signed", "minAge 1h0m0s, scan (no HIGH or CRITICAL finding)", []string{
			"annotation app.lilly.com/flux.gate.web: signed: no signature gate is configured (gates.signature): there is no key or identity to verify with"}},
		{"signature required by the config", config.Gates{Signature: sig}, "", "signature", nil},
		{"signature optional, asked for", config.Gates{Signature: optionalSig}, "signed", "signature", nil},
		{"signature optional, not asked for", config.Gates{Signature: optionalSig}, "", "", nil},
	}
	for _, tt := range tests {
		s, errs := For(tt.cfg, "gates", parsedPolicy(t, tt.gate))
		var got []string
		for _, e := range errs {
			got = append(got, e.Error())
		}
		if s.String() != tt.want || !cmp.Equal(got, tt.errs) {
			t.Errorf("%s: For = %q, %q\nwant %q, %q", tt.name, s.String(), got, tt.want, tt.errs)
		}
	}
}

// fakeScans answers from a map by digest and counts the calls.
type fakeScans struct {
	results map[string]ScanResult
	calls   int
}

func (f *fakeScans) Scan(_ context.Context, _ policy.ImageRef, digest string) (ScanResult, error) {
	f.calls++
	r, ok := f.results[digest]
	if !ok {
		return ScanResult{}, errors.New("AccessDeniedException")
	}
	return r, nil
}

var now = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func img(tag string, age time.Duration) policy.Image {
	return policy.Image{Tags: []string{tag}, Digest: "sha256:" + tag, PushedAt: now.Add(-age)}
}

func TestCheck(t *testing.T) {
	scans := &fakeScans{results: map[string]ScanResult{
		"sha256:clean":    {Status: "COMPLETE", Counts: map[string]int32{"LOW": 3}},
		"sha256:critical": {Status: "COMPLETE", Counts: map[string]int32{"CRITICAL": 2, "HIGH": 1, "MEDIUM": 4}},
		"sha256:pending":  {Status: "IN_PROGRESS"},
		"sha256:none":     {Status: NotScanned},
		"sha256:active":   {Status: "ACTIVE", Counts: map[string]int32{"HIGH": 1}},
	}}
	c := &Checker{Scans: scans, Now: func() time.Time { return now }}
	ref := policy.ImageRef{Account: "283234040926", Region: "us-east-2", Repository: "lrl_web"}
	high := Set{MaxSeverity: "HIGH"}
	required := Set{MaxSeverity: "HIGH", ScanRequired: true}
	tests := []struct {
		name string
		img  policy.Image
		set  Set
		want string // "gate: reason", or "passed: ..."
	}{
		{"young", img("clean", 12*time.Minute), Set{MinAge: time.Hour}, "minAge: pushed 12m0s ago, minAge 1h0m0s"},
		{"of age", img("clean", 2*time.Hour), Set{MinAge: time.Hour}, "passed: minAge 1h0m0s"},
		{"clean", img("clean", 0), high, "passed: scan (no HIGH or CRITICAL finding)"},
		{"critical", img("critical", 0), high, "scan: 2 CRITICAL, 1 HIGH finding(s)"},
		{"active, enhanced scanning", img("active", 0), high, "scan: 1 HIGH finding(s)"},
		{"pending, not required", img("pending", 0), high, "passed: scan (no HIGH or CRITICAL finding)"},
		{"pending, required", img("pending", 0), required, "scan: no finished scan (in progress), and the scan is required"},
		{"never scanned, required", img("none", 0), required, "scan: no finished scan (not scanned), and the scan is required"},
		{"unreadable", img("denied", 0), high, "scan: its scan could not be read: AccessDeniedException"},
		{"young and critical: minAge first", img("critical", time.Minute), Set{MinAge: time.Hour, MaxSeverity: "HIGH"}, "minAge: pushed 1m0s ago, minAge 1h0m0s"},
	}
	for _, tt := range tests {
		v := c.Check(context.Background(), ref, tt.img, tt.set)
		got := v.Gate + ": " + v.Reason
		if v.OK() {
			got = "passed: " + strings.Join(v.Passed, "; ")
		}
		if got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
	// A second round asks nothing: every answer is cached (an error and an
	// unfinished scan for five minutes, a finished one for an hour).
	before := scans.calls
	for _, tt := range tests {
		c.Check(context.Background(), ref, tt.img, tt.set)
	}
	if scans.calls != before || c.Calls() != before {
		t.Errorf("%d more scan calls on a second round, want 0", scans.calls-before)
	}
	c.Now = func() time.Time { return now.Add(10 * time.Minute) }
	c.Check(context.Background(), ref, img("pending", 0), required)
	c.Check(context.Background(), ref, img("clean", 0), required)
	if scans.calls != before+1 {
		t.Errorf("after ten minutes: %d calls, want 1 (the unfinished scan asked again)", scans.calls-before)
	}
}

// Choose passes over gated candidates, newest first, reporting each, and
// says when the earliest young one comes of age.
func TestChoose(t *testing.T) {
	p := parsedPolicy(t, "")
	images := []policy.Image{img("sha-1", 5*time.Hour), img("sha-2", 4*time.Hour), img("sha-3", 30*time.Minute), img("sha-4", 10*time.Minute)}
	scans := &fakeScans{results: map[string]ScanResult{
		"sha256:sha-1": {Status: "COMPLETE"}, "sha256:sha-2": {Status: "COMPLETE", Counts: map[string]int32{"CRITICAL": 1}},
		"sha256:sha-3": {Status: "COMPLETE"}, "sha256:sha-4": {Status: "COMPLETE"},
	}}
	c := &Checker{Scans: scans, Now: func() time.Time { return now }}
	ch := Choose(context.Background(), c, p, images, p.Select(images), Set{MinAge: time.Hour, MaxSeverity: "HIGH"})
	var gated []string
	for _, g := range ch.Gated {
		gated = append(gated, fmt.Sprintf("%s %s: %s", g.Tag, g.Gate, g.Reason))
	}
	want := []string{"sha-4 minAge: pushed 10m0s ago, minAge 1h0m0s", "sha-3 minAge: pushed 30m0s ago, minAge 1h0m0s", "sha-2 scan: 1 CRITICAL finding(s)"}
	if ch.Result.Tag != "sha-1" || !cmp.Equal(gated, want) || !ch.Wake.Equal(now.Add(30*time.Minute)) {
		t.Errorf("Choose = %s, gated %q, wake %s\nwant sha-1, %q, %s", ch.Result.Tag, gated, ch.Wake, want, now.Add(30*time.Minute))
	}
	if !cmp.Equal(ch.Passed, []string{"minAge 1h0m0s", "scan (no HIGH or CRITICAL finding)"}) {
		t.Errorf("passed %q", ch.Passed)
	}
	// Nothing passes: no choice, every candidate reported.
	ch = Choose(context.Background(), c, p, images, p.Select(images), Set{MinAge: 10 * time.Hour})
	if ch.Result.OK() || len(ch.Gated) != 4 {
		t.Errorf("nothing of age: choice %q, %d gated", ch.Result.Tag, len(ch.Gated))
	}
}

// fakeVerifier signs the digests it knows, and counts its calls.
type fakeVerifier struct {
	signed map[string]string // digest: signer
	calls  int
}

func (f *fakeVerifier) Verify(_ context.Context, _ policy.ImageRef, digest string, _ *config.SignatureGate) (string, error) {
	f.calls++
	if s, ok := f.signed[digest]; ok {
		return s, nil
	}
	return "", errors.New("not signed")
}

// TestCheckSignatures: the signature gate names the signer of a passing
// image; a good signature is asked once for the life of the process, a
// missing one again after five minutes (it may be pushed after the image).
func TestCheckSignatures(t *testing.T) {
	sigs := &fakeVerifier{signed: map[string]string{"sha256:signed": "key cosign.pub"}}
	clock := now
	c := &Checker{Signatures: sigs, Now: func() time.Time { return clock }}
	ref := policy.ImageRef{Account: "283234040926", Region: "us-east-2", Repository: "lrl_web"}
	s := Set{Signature: &config.SignatureGate{Keys: []string{"cosign.pub"}}}
	verdict := func(tag string) string {
		v := c.Check(context.Background(), ref, img(tag, 0), s)
		if v.OK() {
			return "passed: " + strings.Join(v.Passed, "; ")
		}
		return v.Gate + ": " + v.Reason
	}
	for range 3 {
		if got, want := verdict("signed"), "passed: signature by key cosign.pub"; got != want {
			t.Fatalf("signed: %q, want %q", got, want)
		}
		if got, want := verdict("unsigned"), "signature: not signed"; got != want {
			t.Fatalf("unsigned: %q, want %q", got, want)
		}
	}
	if sigs.calls != 2 {
		t.Errorf("three rounds asked %d times, want 2 (one per digest)", sigs.calls)
	}
	clock = now.Add(6 * time.Minute)
	sigs.signed["sha256:unsigned"] = "key cosign.pub"
	verdict("signed")
	if got, want := verdict("unsigned"), "passed: signature by key cosign.pub"; got != want {
		t.Errorf("signed after six minutes: %q, want %q", got, want)
	}
	if sigs.calls != 3 {
		t.Errorf("after six minutes: %d calls, want 3 (only the missing signature asked again)", sigs.calls)
	}
	if (&Checker{}).Check(context.Background(), ref, img("signed", 0), s).Reason != "no signature verifier is configured" {
		t.Error("a Checker without a verifier passed a signature gate")
	}
}
