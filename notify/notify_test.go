package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/scanner"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const repo = "https://github.com/example/apps.git@main"

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func held(loc, by, value, reason string) scanner.MarkerStatus {
	return scanner.MarkerStatus{Location: loc, Policy: "shop:web", Value: value, State: scanner.MarkerHeld, HeldBy: by, Reason: reason}
}

// The tracker says what changed since a repository's last result: a push,
// a pull request's actions, holds that start and end, a run of failures
// and the recovery.
func TestTracker(t *testing.T) {
	tr := NewTracker([]config.Repository{{URL: "https://github.com/example/apps.git", Branch: "main"}})
	steps := []struct {
		name string
		rs   scanner.RepoStatus
		want []string // kind id summary
	}{
		{"push", scanner.RepoStatus{Outcome: scanner.OutcomePushed, Commit: "0123456789abcdef", Changes: []scanner.ChangeStatus{{Location: "a.yaml:3", Policy: "shop:web", Old: "x:1", New: "x:2"}}},
			[]string{"pushed pushed:0123456789abcdef " + repo + ": pushed 0123456789ab: shop:web x:1 → x:2"}},
		{"a hold starts", scanner.RepoStatus{Outcome: scanner.OutcomeUpToDate, Markers: []scanner.MarkerStatus{held("a.yaml:3", "hold", "x:2", "INC-1")}},
			[]string{"held held:" + repo + ":a.yaml:3:hold:" + valueHash("x:2") + ":started " + repo + ": shop:web held at x:2 (hold): INC-1"}},
		{"a hold on a hostile value", scanner.RepoStatus{Outcome: scanner.OutcomeUpToDate, Markers: []scanner.MarkerStatus{held("a.yaml:3", "hold", "x:2", "INC-1"), held("b.yaml:1", "downgrade", "x:\x00\x7f\r<b>", "gone")}},
			[]string{"held held:" + repo + ":b.yaml:1:downgrade:" + valueHash("x:\x00\x7f\r<b>") + ":started " + repo + ": shop:web held at x:\x00\x7f\r<b> (downgrade): gone"}},
		{"still held", scanner.RepoStatus{Outcome: scanner.OutcomeUpToDate, Markers: []scanner.MarkerStatus{held("a.yaml:3", "hold", "x:2", "INC-1"), held("b.yaml:1", "downgrade", "x:\x00\x7f\r<b>", "gone")}}, nil},
		{"failing, markers unread", scanner.RepoStatus{Outcome: scanner.OutcomeFailed, Error: "fetching: HTTP 500"},
			[]string{"failing failing:" + repo + ":" + "T1 " + repo + ": failing for 1 cycle(s): fetching: HTTP 500"}},
		{"failing again", scanner.RepoStatus{Outcome: scanner.OutcomeFailed, Error: "fetching: HTTP 500"},
			[]string{"failing failing:" + repo + ":" + "T1 " + repo + ": failing for 2 cycle(s): fetching: HTTP 500"}},
		{"recovered, the hold ended", scanner.RepoStatus{Outcome: scanner.OutcomeUpToDate},
			[]string{"held held:" + repo + ":a.yaml:3:hold:" + valueHash("x:2") + ":ended " + repo + ": shop:web no longer held at x:2 (hold)",
				"held held:" + repo + ":b.yaml:1:downgrade:" + valueHash("x:\x00\x7f\r<b>") + ":ended " + repo + ": shop:web no longer held at x:\x00\x7f\r<b> (downgrade)",
				"recovered recovered:" + repo + ":T1 " + repo + ": recovered after 2 failed cycle(s)"}},
		{"pull request opened", scanner.RepoStatus{Outcome: scanner.OutcomePushed, Commit: "c2", PullRequest: &scanner.PullRequestStatus{Number: 7, State: "open", Action: "opened", Title: "Update shop:web"}},
			[]string{"pull-request pull-request:" + repo + "#7:opened:c2 " + repo + ": pull request #7 opened: Update shop:web"}},
		{"pull request unchanged", scanner.RepoStatus{Outcome: scanner.OutcomeUpToDate, PullRequest: &scanner.PullRequestStatus{Number: 7, State: "open", Action: "unchanged", Title: "Update shop:web"}}, nil},
		{"pull request merged", scanner.RepoStatus{Outcome: scanner.OutcomeUpToDate, PullRequest: &scanner.PullRequestStatus{Number: 7, State: "merged", Action: "branch deleted", Title: "Update shop:web"}},
			[]string{"pull-request pull-request:" + repo + "#7:merged " + repo + ": pull request #7 merged: Update shop:web"}},
	}
	failStep := 0
	for i, s := range steps {
		if s.rs.Outcome == scanner.OutcomeFailed {
			failStep = i
			break
		}
	}
	for i, s := range steps {
		s.rs.Name, s.rs.Time = repo, at(i)
		var got []string
		for _, e := range tr.Observe(s.rs) {
			id := strings.Replace(e.ID, ":"+itoa(at(failStep).UnixNano()), ":T1", 1)
			got = append(got, e.Kind+" "+id+" "+e.Summary)
			// The id travels in a header: no control character, whatever
			// the repository holds.
			if strings.ContainsFunc(e.ID, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Errorf("%s: id %q holds a control character", s.name, e.ID)
			}
			if e.Version != Version || e.Repository != repo || !e.Time.Equal(at(i)) {
				t.Errorf("%s: event %+v", s.name, e)
			}
			if e.Kind == Pushed && (e.Commit == nil || e.Commit.URL != "https://github.com/example/apps/commit/0123456789abcdef" || len(e.Changes) != 1) {
				t.Errorf("%s: commit %+v, changes %+v", s.name, e.Commit, e.Changes)
			}
			if e.Kind == Held && e.Hold.State == "started" && e.Hold.By == scanner.HeldByAnnotation && !strings.Contains(e.Hold.Release, "app.lilly.com/flux.hold.web") {
				t.Errorf("%s: release %q", s.name, e.Hold.Release)
			}
		}
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Errorf("step %d (%s): events (-want +got):\n%s", i, s.name, diff)
		}
	}
}

func valueHash(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:6])
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestWebURL(t *testing.T) {
	for raw, want := range map[string]string{
		"https://token@github.com/org/apps.git":     "https://github.com/org/apps",
		"git@gitlab.example.com:team/sub/infra.git": "https://gitlab.example.com/team/sub/infra",
		"ssh://git@gitea.example.com:2222/org/a":    "https://gitea.example.com/org/a",
		"http://127.0.0.1:3000/admin/apps.git":      "http://127.0.0.1:3000/admin/apps",
		"/srv/git/apps.git":                         "",
		"file:///srv/git/apps.git":                  "",
	} {
		if got := webURL(raw); got != want {
			t.Errorf("webURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

// receiverServer records what it was sent; answer decides each reply.
type receiverServer struct {
	*httptest.Server
	mu       sync.Mutex
	bodies   [][]byte
	headers  []http.Header
	answer   func(n int) (int, http.Header)
	received chan struct{}
}

func newReceiverServer(t *testing.T, answer func(n int) (int, http.Header)) *receiverServer {
	s := &receiverServer{answer: answer, received: make(chan struct{}, 100)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, b)
		s.headers = append(s.headers, r.Header.Clone())
		n := len(s.bodies)
		s.mu.Unlock()
		code, h := http.StatusOK, http.Header(nil)
		if s.answer != nil {
			code, h = s.answer(n)
		}
		for k, v := range h {
			w.Header()[k] = v
		}
		w.WriteHeader(code)
		s.received <- struct{}{}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *receiverServer) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-s.received:
		case <-time.After(time.Minute):
			t.Fatalf("the receiver got fewer than %d requests in a minute", n)
		}
	}
}

func writeFile(t *testing.T, content string) string {
	f := filepath.Join(t.TempDir(), "f")
	os.WriteFile(f, []byte(content+"\n"), 0o600)
	return f
}

func pushedStatus(commit string) scanner.RepoStatus {
	return scanner.RepoStatus{Name: repo, Time: t0, Outcome: scanner.OutcomePushed, Commit: commit,
		Changes: []scanner.ChangeStatus{{Location: "apps/a.yaml:12", Policy: "shop:web", Old: "x:<b>1</b>", New: "x:2"}}}
}

// Each receiver type gets its documented shape: the generic webhook the
// versioned event with a signature that verifies by the documented recipe,
// Slack an incoming-webhook message with blocks, Teams an Adaptive Card.
func TestPayloads(t *testing.T) {
	srv := newReceiverServer(t, nil)
	secret := "notify-secret"
	receivers := []config.Receiver{
		{Name: "hook", Type: "webhook", URLFile: writeFile(t, srv.URL+"/hook"), SecretFile: writeFile(t, secret), Events: config.NotifyEvents, FailingAfter: 3},
		{Name: "slack", Type: "slack", URLFile: writeFile(t, srv.URL+"/slack"), Events: config.NotifyEvents, FailingAfter: 3},
		{Name: "teams", Type: "teams", URLFile: writeFile(t, srv.URL+"/teams"), Events: config.NotifyEvents, FailingAfter: 3},
	}
	n := New(receivers, []config.Repository{{URL: "https://github.com/example/apps.git", Branch: "main"}}, prometheus.NewRegistry(), quiet)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx)
	n.Observe(pushedStatus("0123456789abcdef0123"))
	srv.wait(t, 3)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for i, b := range srv.bodies {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("not JSON: %s", b)
		}
		h := srv.headers[i]
		switch {
		case m["version"] != nil: // the generic webhook
			if m["version"] != Version || m["event"] != Pushed || m["id"] != "pushed:0123456789abcdef0123" {
				t.Errorf("webhook body %s", b)
			}
			if h.Get("X-Imagebutler-Event") != Pushed || h.Get("X-Imagebutler-Delivery") != "pushed:0123456789abcdef0123" {
				t.Errorf("webhook headers %v", h)
			}
			// The documented recipe: "sha256=" + hex(HMAC-SHA256(secret, body)).
			if got := h.Get(SignatureHeader); !hmac.Equal([]byte(got), []byte(Sign([]byte(secret), b))) {
				t.Errorf("signature %q does not verify", got)
			}
		case m["blocks"] != nil: // Slack
			blocks := m["blocks"].([]any)
			first := blocks[0].(map[string]any)
			text := first["text"].(map[string]any)["text"].(string)
			if first["type"] != "section" || !strings.Contains(text, "<https://github.com/example/apps/commit/0123456789abcdef0123|Commit 0123456789ab>") {
				t.Errorf("slack first block %v", first)
			}
			details := blocks[1].(map[string]any)["text"].(map[string]any)["text"].(string)
			if !strings.Contains(details, "x:&lt;b&gt;1&lt;/b&gt; → x:2") {
				t.Errorf("slack details not escaped: %q", details)
			}
			if blocks[len(blocks)-1].(map[string]any)["type"] != "context" || !strings.Contains(m["text"].(string), "pushed 0123456789ab") {
				t.Errorf("slack message %s", b)
			}
		case m["attachments"] != nil: // Teams
			a := m["attachments"].([]any)[0].(map[string]any)
			card := a["content"].(map[string]any)
			if m["type"] != "message" || a["contentType"] != "application/vnd.microsoft.card.adaptive" || card["type"] != "AdaptiveCard" ||
				card["version"] != "1.4" || card["$schema"] != "http://adaptivecards.io/schemas/adaptive-card.json" {
				t.Errorf("teams card %s", b)
			}
			action := card["actions"].([]any)[0].(map[string]any)
			if action["type"] != "Action.OpenUrl" || action["url"] != "https://github.com/example/apps/commit/0123456789abcdef0123" {
				t.Errorf("teams action %v", action)
			}
		default:
			t.Errorf("unknown body %s", b)
		}
	}
}

// A receiver answering 500 then 200 gets the message once more; 429 with
// Retry-After is waited out as asked; a 400 is not tried again; an id
// delivered is not sent twice; a hanging receiver never blocks Observe.
func TestDelivery(t *testing.T) {
	var waits []time.Duration
	var mu sync.Mutex
	noWait := func(_ context.Context, d time.Duration) bool {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		return true
	}
	flaky := newReceiverServer(t, func(n int) (int, http.Header) {
		switch n {
		case 1:
			return http.StatusInternalServerError, nil
		case 2:
			return http.StatusTooManyRequests, http.Header{"Retry-After": {"7"}}
		case 4:
			return http.StatusBadRequest, nil
		}
		return http.StatusOK, nil
	})
	hang := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer hanging.Close()
	defer close(hang) // before the server closes: its handlers return
	reg := prometheus.NewRegistry()
	n := New([]config.Receiver{
		{Name: "flaky", Type: "webhook", URLFile: writeFile(t, flaky.URL), Events: config.NotifyEvents, FailingAfter: 3},
		{Name: "hanging", Type: "slack", URLFile: writeFile(t, hanging.URL), Events: config.NotifyEvents, FailingAfter: 3},
	}, nil, reg, quiet)
	n.receivers[0].wait = noWait
	n.receivers[1].wait = func(ctx context.Context, _ time.Duration) bool { return ctx.Err() == nil }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx)

	n.Observe(pushedStatus("c1"))
	flaky.wait(t, 3)              // 500, 429, 200
	n.Observe(pushedStatus("c1")) // the same commit again: not sent twice
	n.Observe(pushedStatus("c2")) // 400: refused, not tried again
	n.Observe(pushedStatus("c3")) // 200
	flaky.wait(t, 2)
	start := time.Now()
	for i := range QueueLength + 20 { // the hanging receiver's queue fills; Observe never waits
		n.Observe(pushedStatus("flood-" + itoa(int64(i))))
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("Observe took %s with a hanging receiver", d)
	}
	mu.Lock()
	if len(waits) < 2 || waits[0] != time.Second || waits[1] != 7*time.Second {
		t.Errorf("waits between attempts %v, want 1s (backoff) then 7s (Retry-After)", waits)
	}
	mu.Unlock()
	count := func(r, outcome string) float64 {
		return testutil.ToFloat64(n.total.WithLabelValues(r, Pushed, outcome))
	}
	// The receiver answered before the sender counted: wait for the count.
	for deadline := time.Now().Add(time.Minute); count("flaky", OutcomeSent) < 2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if count("flaky", OutcomeSent) < 2 || count("flaky", OutcomeFailed) != 1 || count("flaky", OutcomeDuplicate) != 1 || count("hanging", OutcomeDropped) < 1 {
		t.Errorf("sent %v, failed %v, duplicate %v, hanging dropped %v", count("flaky", OutcomeSent), count("flaky", OutcomeFailed),
			count("flaky", OutcomeDuplicate), count("hanging", OutcomeDropped))
	}
	flaky.mu.Lock()
	var ids []string
	for _, h := range flaky.headers[:5] {
		ids = append(ids, h.Get("X-Imagebutler-Delivery"))
	}
	flaky.mu.Unlock()
	if diff := cmp.Diff([]string{"pushed:c1", "pushed:c1", "pushed:c1", "pushed:c2", "pushed:c3"}, ids); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
}

// The failing event reaches a receiver once, when the run of failed cycles
// reaches its threshold; recovered only after such a run.
func TestFailingThreshold(t *testing.T) {
	srv := newReceiverServer(t, nil)
	n := New([]config.Receiver{{Name: "r", Type: "webhook", URLFile: writeFile(t, srv.URL), Events: []string{Failing, Recovered}, FailingAfter: 3}}, nil, prometheus.NewRegistry(), quiet)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx)
	fail := scanner.RepoStatus{Name: repo, Outcome: scanner.OutcomeFailed, Error: "boom"}
	ok := scanner.RepoStatus{Name: repo, Outcome: scanner.OutcomeUpToDate}
	for i, rs := range []scanner.RepoStatus{fail, fail, ok, fail, fail, fail, fail, fail, ok} {
		rs.Time = at(i)
		n.Observe(rs)
	}
	srv.wait(t, 2)
	time.Sleep(100 * time.Millisecond) // room for a message that must not come
	srv.mu.Lock()
	defer srv.mu.Unlock()
	var kinds []string
	for _, h := range srv.headers {
		kinds = append(kinds, h.Get("X-Imagebutler-Event"))
	}
	if diff := cmp.Diff([]string{Failing, Recovered}, kinds); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}
