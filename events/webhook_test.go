package events

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/imagebutler/imagebutler/config"
)

const secret = "s3cret-webhook"

func sign(body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

const (
	githubPush = `{"ref": "refs/heads/main", "repository": {"clone_url": "https://github.com/Example/Apps.git", "ssh_url": "git@github.com:Example/Apps.git"}}`
	gitlabPush = `{"object_kind": "push", "ref": "refs/heads/main", "project": {"git_http_url": "https://gitlab.example.com/team/infra.git", "git_ssh_url": "git@gitlab.example.com:team/infra.git"}}`
	otherPush  = `{"ref": "refs/heads/feature", "repository": {"clone_url": "https://github.com/example/apps.git"}}`
)

func newWebhook(t *testing.T) (*Webhook, *fakeTarget, *Metrics) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(file, []byte(secret+"\n"), 0o600)
	repos := []config.Repository{
		{URL: "https://xxxxx@github.com/example/apps", Branch: "main"},
		{URL: "ssh://git@gitlab.example.com/team/infra.git", Branch: "main"},
	}
	f := &fakeTarget{}
	m := NewMetrics(prometheus.NewRegistry())
	d := NewDispatcher(context.Background(), f, 50*time.Millisecond, 4, 4, m, quiet)
	return NewWebhook(repos, file, d, m, quiet), f, m
}

func TestWebhook(t *testing.T) {
	tests := map[string]struct {
		body    string
		headers map[string]string
		code    int
		outcome string
		passes  int
	}{
		"github":           {githubPush, map[string]string{"X-Hub-Signature-256": sign(githubPush), "X-GitHub-Event": "push"}, 202, OutcomeAccepted, 1},
		"gitlab":           {gitlabPush, map[string]string{"X-Gitlab-Token": secret, "X-Gitlab-Event": "Push Hook"}, 202, OutcomeAccepted, 1},
		"bearer":           {githubPush, map[string]string{"Authorization": "Bearer " + secret}, 202, OutcomeAccepted, 1},
		"wrong signature":  {githubPush, map[string]string{"X-Hub-Signature-256": sign(githubPush + " ")}, 401, OutcomeUnauthorized, 0},
		"bad signature":    {githubPush, map[string]string{"X-Hub-Signature-256": "sha1=abc"}, 401, OutcomeUnauthorized, 0},
		"no signature":     {githubPush, nil, 401, OutcomeUnauthorized, 0},
		"wrong token":      {gitlabPush, map[string]string{"X-Gitlab-Token": "guess"}, 401, OutcomeUnauthorized, 0},
		"oversized":        {strings.Repeat(" ", MaxWebhookBody+1), map[string]string{"Authorization": "Bearer " + secret}, 413, OutcomeTooLarge, 0},
		"ping":             {`{"zen": "hi"}`, map[string]string{"X-Hub-Signature-256": sign(`{"zen": "hi"}`), "X-GitHub-Event": "ping"}, 200, OutcomeIgnored, 0},
		"other branch":     {otherPush, map[string]string{"X-Hub-Signature-256": sign(otherPush)}, 200, OutcomeIgnored, 0},
		"not json":         {"x", map[string]string{"Authorization": "Bearer " + secret}, 400, OutcomeInvalid, 0},
		"unknown repo":     {`{"ref": "refs/heads/main", "repository": {"clone_url": "https://github.com/other/repo.git"}}`, map[string]string{"Authorization": "Bearer " + secret}, 200, OutcomeIgnored, 0},
		"tag push ignored": {`{"ref": "refs/tags/v1", "repository": {"clone_url": "https://github.com/example/apps.git"}}`, map[string]string{"Authorization": "Bearer " + secret}, 200, OutcomeIgnored, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h, f, m := newWebhook(t)
			req := httptest.NewRequest(http.MethodPost, "/hooks/git", strings.NewReader(tc.body))
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Errorf("status %d, want %d (%s)", rec.Code, tc.code, rec.Body.String())
			}
			if got := testutil.ToFloat64(m.total.WithLabelValues(SourceWebhook, tc.outcome)); got != 1 {
				t.Errorf("events_total{outcome=%q} = %v, want 1", tc.outcome, got)
			}
			deadline := time.Now().Add(time.Minute)
			for tc.passes > 0 && f.count() < tc.passes && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond) // a pass that should not happen has had its window
			if n := f.count(); n != tc.passes {
				t.Errorf("%d passes, want %d", n, tc.passes)
			}
			// Only what is known to come from the forge is kept for /status.
			kept := 1
			if tc.outcome == OutcomeUnauthorized || tc.outcome == OutcomeTooLarge {
				kept = 0
			}
			if r := m.Recent(); len(r) != kept || kept == 1 && strings.Contains(r[0].Detail, secret) {
				t.Errorf("recent events %+v, want %d", r, kept)
			}
		})
	}
}

// A flood of 100 valid deliveries in a second is one pass now and at most
// one more once the rate allows (passesPerMinute 4: 15 s later).
func TestWebhookFloodCoalesced(t *testing.T) {
	h, f, m := newWebhook(t)
	srv := httptest.NewServer(h)
	defer srv.Close()
	for range 100 {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(githubPush))
		req.Header.Set("X-Hub-Signature-256", sign(githubPush))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	for deadline := time.Now().Add(time.Minute); f.count() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no pass within a minute")
		}
	}
	time.Sleep(time.Second)
	if n := f.count(); n > 2 {
		t.Errorf("%d passes for 100 deliveries, want at most 2", n)
	}
	if got := testutil.ToFloat64(m.total.WithLabelValues(SourceWebhook, OutcomeAccepted)); got != 100 {
		t.Errorf("accepted = %v, want 100", got)
	}
}

func TestSameRepository(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"https://github.com/example/apps.git", "https://github.com/example/apps", true},
		{"https://GitHub.com/Example/Apps.git", "https://token@github.com/example/apps/", true},
		{"git@github.com:example/apps.git", "https://github.com/example/apps.git", true},
		{"ssh://git@github.com/example/apps.git", "git@github.com:example/apps", true},
		{"https://github.com/example/apps.git", "https://github.com/example/apps-infra.git", false},
		{"https://github.com/example/apps.git", "https://gitlab.com/example/apps.git", false},
		{"", "https://github.com/example/apps.git", false},
		{"not a url", "not a url", false},
	}
	for _, tc := range tests {
		if got := SameRepository(tc.a, tc.b); got != tc.want {
			t.Errorf("SameRepository(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// bodyWatch is a request body that says whether anything read it.
type bodyWatch struct {
	r    *strings.Reader
	read bool
}

func (b *bodyWatch) Read(p []byte) (int, error) { b.read = true; return b.r.Read(p) }

// A delivery without credentials, or with a wrong token, is refused before
// a byte of its body is read; one with a signature header is read, then
// refused if the signature is wrong.
func TestWebhookRefusesBeforeReading(t *testing.T) {
	for name, tc := range map[string]struct {
		headers  map[string]string
		readBody bool
	}{
		"anonymous":       {nil, false},
		"wrong token":     {map[string]string{"X-Gitlab-Token": "guess"}, false},
		"wrong bearer":    {map[string]string{"Authorization": "Bearer guess"}, false},
		"malformed sig":   {map[string]string{"X-Hub-Signature-256": "sha256=zz"}, false},
		"short sig":       {map[string]string{"X-Hub-Signature-256": "sha256=abcd"}, false},
		"well-formed sig": {map[string]string{"X-Hub-Signature-256": sign("something else")}, true},
	} {
		t.Run(name, func(t *testing.T) {
			h, _, _ := newWebhook(t)
			body := &bodyWatch{r: strings.NewReader(strings.Repeat("x", 1000))}
			req := httptest.NewRequest(http.MethodPost, "/hooks/git", body)
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusUnauthorized || body.read != tc.readBody {
				t.Errorf("status %d, body read %v; want 401, read %v", rec.Code, body.read, tc.readBody)
			}
		})
	}
}

// With MaxDeliveries bodies being read, one more delivery gets 503 at once;
// a body that stalls is cut off after the read timeout, and then the next
// delivery is taken.
func TestWebhookBoundsDeliveriesInFlight(t *testing.T) {
	h, f, m := newWebhook(t)
	h.readTimeout = 500 * time.Millisecond
	srv := httptest.NewServer(h)
	defer srv.Close()
	// MaxDeliveries senders with a signature that send headers and stall.
	var stalled []net.Conn
	for range MaxDeliveries {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /hooks/git HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: %s\r\nContent-Length: 100000\r\n\r\n{", sign(githubPush))
		stalled = append(stalled, c)
	}
	deliver := func() int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(githubPush))
		req.Header.Set("X-Hub-Signature-256", sign(githubPush))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Until every stalled sender holds a place, a delivery may still get
	// one; then one more is refused with 503.
	busy := false
	for deadline := time.Now().Add(time.Minute); !busy && time.Now().Before(deadline); {
		if len(h.slots) == MaxDeliveries {
			busy = deliver() == http.StatusServiceUnavailable
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if !busy {
		t.Fatal("with every place held, a delivery was not refused with 503")
	}
	// The stalled senders are cut off by the read timeout.
	for _, c := range stalled {
		c.SetReadDeadline(time.Now().Add(time.Minute))
		if _, err := io.ReadAll(c); err != nil {
			t.Errorf("a stalled sender's connection was not closed: %v", err)
		}
	}
	if code := deliver(); code != http.StatusAccepted {
		t.Errorf("after the stalled senders were cut off: status %d, want 202", code)
	}
	for deadline := time.Now().Add(time.Minute); f.count() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := testutil.ToFloat64(m.total.WithLabelValues(SourceWebhook, OutcomeBusy)); got < 1 {
		t.Errorf("events_total{outcome=busy} = %v", got)
	}
	for _, r := range m.Recent() {
		if r.Outcome != OutcomeAccepted {
			t.Errorf("kept for /status: %+v", r)
		}
	}
}

// A delivery id seen in the last hour is not acted on twice.
func TestWebhookDeliveryOnce(t *testing.T) {
	h, _, m := newWebhook(t)
	for i, want := range []int{http.StatusAccepted, http.StatusOK, http.StatusAccepted} {
		req := httptest.NewRequest(http.MethodPost, "/hooks/git", strings.NewReader(githubPush))
		req.Header.Set("X-Hub-Signature-256", sign(githubPush))
		req.Header.Set("X-GitHub-Delivery", map[bool]string{true: "b", false: "a"}[i == 2])
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("delivery %d: status %d, want %d", i, rec.Code, want)
		}
	}
	if got := testutil.ToFloat64(m.total.WithLabelValues(SourceWebhook, OutcomeDuplicate)); got != 1 {
		t.Errorf("duplicates = %v, want 1", got)
	}
	// Past the hour the id counts as new; the memory stays bounded.
	if h.handledBefore("X-GitHub-Delivery a", time.Now().Add(2*time.Hour)) {
		t.Error("an id from over an hour ago counted as handled")
	}
	for i := range deliveriesKept + 10 {
		h.handledBefore(fmt.Sprint(i), time.Now())
	}
	if len(h.seen) > deliveriesKept {
		t.Errorf("%d ids remembered, at most %d", len(h.seen), deliveriesKept)
	}
}
