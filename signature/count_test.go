package signature

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// counting counts the requests it carries, by kind.
type counting struct {
	mu    sync.Mutex
	kinds []string
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	kind := "ping"
	switch p := r.URL.Path; {
	case strings.Contains(p, "/referrers/"):
		kind = "referrers"
	case strings.Contains(p, "/manifests/"):
		kind = "manifest"
	case strings.Contains(p, "/blobs/"):
		kind = "blob"
	}
	c.mu.Lock()
	c.kinds = append(c.kinds, kind)
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// TestRequestsPerVerification: what one verification costs the registry
// besides its ping (one over https; the test registry's plain http makes
// go-containerregistry try https first): the referrers listing, the
// legacy tag only when no referrer passes, and a signature's manifest and
// blob.
func TestRequestsPerVerification(t *testing.T) {
	w := newWorld(t)
	unsigned := w.image()
	legacy := w.image()
	w.pushLegacy(legacy, w.keyLegacy(w.key, payload(legacy)))
	referrer := w.image()
	w.pushBundle(referrer, w.keyBundle(w.key, statement(referrer, SignPredicateType)))
	both := w.image()
	w.pushBundle(both, w.keyBundle(w.key, statement(both, SignPredicateType)))
	w.pushLegacy(both, w.keyLegacy(w.key, payload(both)))
	for _, tt := range []struct {
		name, digest string
		want         string
	}{
		{"unsigned", unsigned, "referrers manifest"},                   // the .sig tag's 404
		{"legacy tag", legacy, "referrers manifest blob"},              // the .sig manifest, its layer
		{"referrer", referrer, "referrers manifest blob"},              // the bundle's manifest, its layer
		{"both: the tag is not read", both, "referrers manifest blob"}, // the referrer passed
	} {
		c := &counting{}
		if _, err := (&Verifier{Transport: c}).Verify(context.Background(), ref, tt.digest, w.keyGate()); (err == nil) == (tt.name == "unsigned") {
			t.Fatalf("%s: Verify = %v", tt.name, err)
		}
		var got []string
		pings := 0
		for _, k := range c.kinds {
			if k == "ping" {
				pings++
				continue
			}
			got = append(got, k)
		}
		if strings.Join(got, " ") != tt.want || pings > 2 {
			t.Errorf("%s: requests %v, want %s and the ping (at most 2 over plain http)", tt.name, c.kinds, tt.want)
		}
	}
}
