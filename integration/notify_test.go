package integration

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
)

// delivery is one request a test receiver got.
type delivery struct {
	at     time.Time
	header http.Header
	body   []byte
	code   int // what the receiver answered
}

// testReceiver records deliveries; answer picks the reply to the n-th.
type testReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []delivery
	answer func(n int, body []byte) (int, http.Header)
}

func newTestReceiver(t *testing.T, answer func(n int, body []byte) (int, http.Header)) *testReceiver {
	r := &testReceiver{answer: answer}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		n := len(r.got) + 1
		code, h := http.StatusOK, http.Header(nil)
		if r.answer != nil {
			code, h = r.answer(n, b)
		}
		r.got = append(r.got, delivery{time.Now(), req.Header.Clone(), b, code})
		r.mu.Unlock()
		for k, v := range h {
			w.Header()[k] = v
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(r.Close)
	return r
}

// delivered returns the deliveries answered 2xx, by event id.
func (r *testReceiver) delivered() map[string][]delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]delivery{}
	for _, d := range r.got {
		if d.code/100 == 2 {
			id := d.header.Get("X-Imagebutler-Delivery")
			out[id] = append(out[id], d)
		}
	}
	return out
}

// kinds counts the delivered events by kind.
func (r *testReceiver) kinds() map[string]int {
	out := map[string]int{}
	for _, ds := range r.delivered() {
		out[ds[0].header.Get("X-Imagebutler-Event")] += len(ds)
	}
	return out
}

// TestNotifications runs `imagebutler run` every two seconds over two
// repositories and three receivers: a generic webhook that answers 500 to
// its first delivery and 429 (Retry-After: 2) to its second, a Slack
// receiver that never answers, and nothing else. It checks what people are
// told: one pushed per commit, one held when a hold starts and one when it
// ends, one failing after three failed cycles and one recovered, each
// delivered once and signed as documented, and cycles that go on while a
// receiver hangs.
func TestNotifications(t *testing.T) {
	t.Parallel() // mostly waiting: with the other slow waiters, after the rest
	needPeers(t)
	ctx := t.Context()
	ecrRepo := "lrl_falcon_notify"
	c := moto.ECR(testpeers.SeedRegion)
	if err := testpeers.CreateRepository(ctx, c, testpeers.SeedAccount, ecrRepo); err != nil {
		t.Fatal(err)
	}
	push := func(tag string) {
		t.Helper()
		time.Sleep(1100 * time.Millisecond) // moto keeps whole seconds: each push is newer
		if _, err := testpeers.PushImage(ctx, c, testpeers.SeedAccount, ecrRepo, tag); err != nil {
			t.Fatal(err)
		}
	}
	push("qa-sha-0000001")
	e := setupRepo(t, "notified", strings.ReplaceAll(testpeers.SeedDeployment, testpeers.SeedRepository, ecrRepo))
	// A second repository behind a switch that makes its git server fail.
	if _, err := e.git.InitRepo("flaky", "main", map[string]string{"README.md": "no manifests\n"}); err != nil {
		t.Fatal(err)
	}
	var broken atomic.Bool
	target, _ := url.Parse(e.git.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	flakyGit := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if broken.Load() {
			http.Error(w, "down for maintenance", http.StatusInternalServerError)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer flakyGit.Close()

	const secret = "notify-key"
	hook := newTestReceiver(t, func(n int, _ []byte) (int, http.Header) {
		switch n {
		case 1:
			return http.StatusInternalServerError, nil
		case 2:
			return http.StatusTooManyRequests, http.Header{"Retry-After": {"2"}}
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
	defer close(hang)
	file := func(name, content string) string {
		p := filepath.Join(e.dir, name)
		os.WriteFile(p, []byte(content+"\n"), 0o600)
		return p
	}
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg, _ := os.ReadFile(e.config)
	cfg = []byte(strings.Replace(string(cfg), `listen: ""`, fmt.Sprintf("listen: \"127.0.0.1:%d\"\nschedule: \"@every 2s\"", port), 1))
	tokenFile := filepath.Join(e.dir, "token")
	cfg = append(cfg, fmt.Sprintf(`  - url: %s/flaky.git
    branch: main
    auth: {username: %s, tokenFile: %q}
notify:
  - {name: hook, type: webhook, urlFile: %q, secretFile: %q}
  - {name: hanging, type: slack, urlFile: %q}
`, flakyGit.URL, gitUser, tokenFile, file("hook-url", hook.URL), file("hook-key", secret), file("slack-url", hanging.URL))...)
	os.WriteFile(e.config, cfg, 0o644)
	startRun(t, e.config)
	cycles := func() int {
		var st struct{ Cycles int }
		resp, err := http.Get(base + "/status")
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(&st)
		return st.Cycles
	}
	waitKinds := func(what string, want map[string]int) {
		t.Helper()
		waitFor(t, what, func() bool {
			got := hook.kinds()
			for k, n := range want {
				if got[k] < n {
					return false
				}
			}
			return true
		})
	}

	// 1. The first cycle pushes: one pushed (after a 500 and a 429).
	waitKinds("the first push told", map[string]int{"pushed": 1})
	// 2. A person holds the policy; a newer tag is pushed: held.
	work := e.clone(t)
	dep := filepath.Join(work, "apps", "bartender", "deployment.yaml")
	b, _ := os.ReadFile(dep)
	withHold := strings.Replace(string(b), "    app.lilly.com/flux.automated: \"true\"\n",
		"    app.lilly.com/flux.automated: \"true\"\n    app.lilly.com/flux.hold.my-policy-bartender: \"INC-7: checkout breaks\"\n", 1)
	os.WriteFile(dep, []byte(withHold), 0o644)
	gitOut(t, work, "commit", "--quiet", "-am", "hold the bartender")
	gitOut(t, work, "push", "--quiet", "origin", "main")
	push("qa-sha-0000002")
	waitKinds("the hold told", map[string]int{"held": 1})
	// 3. The hold goes: the marker moves on (pushed) and the hold ends.
	gitOut(t, work, "pull", "--quiet", "--rebase", "origin", "main")
	b, _ = os.ReadFile(dep)
	os.WriteFile(dep, []byte(strings.Replace(string(b), "    app.lilly.com/flux.hold.my-policy-bartender: \"INC-7: checkout breaks\"\n", "", 1)), 0o644)
	gitOut(t, work, "commit", "--quiet", "-am", "release the bartender")
	gitOut(t, work, "push", "--quiet", "origin", "main")
	waitKinds("the release told", map[string]int{"pushed": 2, "held": 2})
	// 4. The second repository fails three cycles, then recovers.
	broken.Store(true)
	waitKinds("the failure told", map[string]int{"failing": 1})
	broken.Store(false)
	waitKinds("the recovery told", map[string]int{"recovered": 1})
	// Cycles went on all along, with the Slack receiver hanging.
	if n := cycles(); n < 6 {
		t.Errorf("%d cycles ran; the hanging receiver held them up", n)
	}
	time.Sleep(5 * time.Second) // room for a duplicate that must not come
	got := hook.kinds()
	for kind, want := range map[string]int{"pushed": 2, "held": 2, "failing": 1, "recovered": 1} {
		if got[kind] != want {
			t.Errorf("%s delivered %d time(s), want %d (all: %v)", kind, got[kind], want, got)
		}
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if len(hook.got) < 3 || hook.got[0].code != 500 || hook.got[1].code != 429 || hook.got[2].code != 200 {
		t.Fatalf("the first three attempts: %v", hook.got[:min(3, len(hook.got))])
	}
	if hook.got[0].header.Get("X-Imagebutler-Delivery") != hook.got[2].header.Get("X-Imagebutler-Delivery") {
		t.Errorf("the retried delivery is another event")
	}
	if gap := hook.got[2].at.Sub(hook.got[1].at); gap < 2*time.Second {
		t.Errorf("the attempt after 429 with Retry-After: 2 came %s later", gap)
	}
	for _, d := range hook.got {
		// The documented recipe: "sha256=" + hex(HMAC-SHA256(key, body)).
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(d.body)
		if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); !hmac.Equal([]byte(d.header.Get("X-Imagebutler-Signature-256")), []byte(want)) {
			t.Errorf("a delivery's signature does not verify: %s", d.body)
		}
		var ev struct {
			Version, Event, ID string
			Repository         string
			Commit             *struct{ SHA string }
			Hold               *struct{ State, Reason string }
		}
		if err := json.Unmarshal(d.body, &ev); err != nil || ev.Version != "imagebutler.notify/v1" || ev.Event == "" {
			t.Errorf("delivery body %s (%v)", d.body, err)
		}
		if ev.Event == "held" && (ev.Hold == nil || !strings.Contains(ev.Hold.Reason, "INC-7")) {
			t.Errorf("held event without its reason: %s", d.body)
		}
	}
}
