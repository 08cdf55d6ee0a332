package integration

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
	"github.com/imagebutler/imagebutler/policy"
	"github.com/imagebutler/imagebutler/scanner"
)

// These tests run the butler in-process against git http-backend (a real
// process with real hooks), with ECR replaced by a lister whose newest tag
// the test sets, so the tag can change every cycle without waiting on moto's
// whole-second push times.

// tagLister answers every ECR repository with one image tagged with the
// current tag, pushed when it was set: each set is a new push that
// replaces the image before it (whose tag the butler may have written).
type tagLister struct{ tag atomic.Value }

type pushedTag struct {
	tag string
	at  time.Time
}

func (l *tagLister) set(tag string) { l.tag.Store(pushedTag{tag, time.Now()}) }

func (l *tagLister) List(context.Context, policy.ImageRef) ([]policy.Image, error) {
	p := l.tag.Load().(pushedTag)
	return []policy.Image{{Tags: []string{p.tag}, Digest: "sha256:00", PushedAt: p.at}}, nil
}

// gitEnv is a git server with one repository holding the seed Deployment.
type gitEnv struct {
	dir  string
	srv  *testpeers.GitServer
	url  string
	bare string
	cfg  *config.Config
	logs *syncBuffer
}

func newGitEnv(t testing.TB, name string) *gitEnv {
	t.Helper()
	e := &gitEnv{dir: t.TempDir(), logs: &syncBuffer{}}
	root := filepath.Join(e.dir, "remote")
	os.MkdirAll(root, 0o755)
	var err error
	if e.srv, err = testpeers.NewGitServer(root, gitUser, gitToken); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.srv.Close)
	if e.url, err = e.srv.InitRepo(name, "main", map[string]string{"apps/bartender/deployment.yaml": testpeers.SeedDeployment}); err != nil {
		t.Fatal(err)
	}
	e.bare = filepath.Join(root, name+".git")
	tokenFile := filepath.Join(e.dir, "token")
	os.WriteFile(tokenFile, []byte(gitToken), 0o600)
	e.cfg, err = config.Parse("test.yaml", []byte(butlerConfig(filepath.Join(e.dir, "state"), e.url, tokenFile)))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *gitEnv) scanner(l scanner.Lister) *scanner.Scanner {
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return scanner.New(e.cfg, l, log, scanner.WithBackoff(func(n int) time.Duration { return time.Duration(n) * 20 * time.Millisecond }))
}

// markerValue is the marked image on the remote's main branch.
func (e *gitEnv) markerValue(t *testing.T) string {
	t.Helper()
	out := gitOut(t, e.bare, "show", "main:apps/bartender/deployment.yaml")
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "$imagepolicy") {
			v, _, _ := strings.Cut(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "image:")), " ")
			return v
		}
	}
	t.Fatal("no marker on main")
	return ""
}

// butlerCommits counts the commits on main authored by the butler.
func (e *gitEnv) butlerCommits(t *testing.T) int {
	t.Helper()
	out := gitOut(t, e.bare, "log", "--format=%ae", "main")
	return strings.Count(out, butlerEmail)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestPushRaceKeepsEveryPersonsCommit(t *testing.T) {
	t.Parallel() // mostly waiting: with the other slow waiters, after the rest
	needPeers(t)
	e := newGitEnv(t, "race")
	gitOut(t, e.bare, "config", "receive.denyNonFastForwards", "true")
	l := &tagLister{}
	l.set("qa-sha-000")
	butler := e.scanner(l)

	// A person pushes 50 commits touching other files, pulling with rebase
	// whenever the butler got there first.
	work := filepath.Join(e.dir, "person")
	gitOut(t, "", "clone", "--quiet", e.bare, work)
	var (
		theirs []string
		wg     sync.WaitGroup
		pErr   error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := range 50 {
			os.MkdirAll(filepath.Join(work, "people"), 0o755)
			os.WriteFile(filepath.Join(work, "people", fmt.Sprintf("note-%02d.txt", k)), []byte("note\n"), 0o644)
			if _, err := testpeers.Git(work, "add", "--all"); err != nil {
				pErr = err
				return
			}
			if _, err := testpeers.Git(work, "commit", "--quiet", "-m", fmt.Sprintf("note %d", k)); err != nil {
				pErr = err
				return
			}
			pushed := false
			for try := 0; try < 100 && !pushed; try++ {
				if _, err := testpeers.Git(work, "push", "--quiet", "origin", "main"); err == nil {
					pushed = true
					break
				}
				if _, err := testpeers.Git(work, "pull", "--quiet", "--rebase", "origin", "main"); err != nil {
					pErr = err
					return
				}
			}
			if !pushed {
				pErr = fmt.Errorf("commit %d never landed", k)
				return
			}
			head, _ := testpeers.Git(work, "rev-parse", "HEAD")
			theirs = append(theirs, strings.TrimSpace(head))
		}
	}()

	var failed int
	for cycle := 1; cycle <= 20; cycle++ {
		l.set(fmt.Sprintf("qa-sha-%03d", cycle))
		for _, r := range butler.RunOnce(context.Background()) {
			if r.Err != nil {
				failed++
				t.Logf("cycle %d: %v", cycle, r.Err)
			}
		}
	}
	wg.Wait()
	if pErr != nil {
		t.Fatal(pErr)
	}
	// The last value lands once the person has stopped.
	for try := 0; try < 3; try++ {
		if r := butler.RunOnce(context.Background())[0]; r.Err == nil {
			break
		}
	}

	if len(theirs) != 50 {
		t.Fatalf("person pushed %d commits, want 50", len(theirs))
	}
	for _, h := range theirs {
		if _, err := testpeers.Git(e.bare, "merge-base", "--is-ancestor", h, "main"); err != nil {
			t.Errorf("person's commit %s is not an ancestor of main", h)
		}
	}
	if got, want := e.markerValue(t), testpeers.SeedImage+":qa-sha-020"; got != want {
		t.Errorf("marker = %s, want %s", got, want)
	}
	if n := e.butlerCommits(t); n < 2 {
		t.Errorf("butler commits on main = %d", n)
	}
	t.Logf("%d of 20 cycles failed after %d attempts; %d butler commits landed", failed, scanner.MaxPushAttempts, e.butlerCommits(t))
}

func TestServerHookRejectsTwiceThenLands(t *testing.T) {
	needPeers(t)
	e := newGitEnv(t, "hooked")
	hook := "#!/bin/sh\nn=$(cat count 2>/dev/null || echo 0)\nn=$((n+1))\necho $n > count\nif [ $n -le 2 ]; then echo \"push $n rejected by policy\" >&2; exit 1; fi\n"
	if err := os.WriteFile(filepath.Join(e.bare, "hooks", "pre-receive"), []byte(hook), 0o755); err != nil {
		t.Fatal(err)
	}
	l := &tagLister{}
	l.set("qa-sha-111")
	r := e.scanner(l).RunOnce(context.Background())[0]
	if r.Err != nil || r.Commit == "" {
		t.Fatalf("RunOnce: err %v, commit %q", r.Err, r.Commit)
	}
	if got := strings.TrimSpace(string(must(os.ReadFile(filepath.Join(e.bare, "count"))))); got != "3" {
		t.Errorf("pushes seen by the hook = %s, want 3", got)
	}
	if got := gitOut(t, e.bare, "rev-parse", "main"); got != r.Commit {
		t.Errorf("main = %s, want the butler's %s", got, r.Commit)
	}
	if n := e.butlerCommits(t); n != 1 {
		t.Errorf("butler commits = %d, want 1", n)
	}
	if logs := e.logs.String(); strings.Count(logs, "push rejected; syncing and trying again") != 2 {
		t.Errorf("logs do not show two rejected pushes:\n%s", logs)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestCorruptWorkingCopyIsClonedAgain(t *testing.T) {
	needPeers(t)
	e := newGitEnv(t, "corrupt")
	l := &tagLister{}
	work := scanner.WorkDir(e.cfg.StateDir, e.cfg.Repositories[0])

	corruptions := []struct {
		name string
		do   func() error
	}{
		{"none", func() error { return nil }},
		{"working files deleted and added by hand", func() error {
			if err := os.RemoveAll(filepath.Join(work, "apps")); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(work, "stray.yaml"), []byte("image: stray # {\"$imagepolicy\": \"falcon-qa:x\"}\n"), 0o644)
		}},
		{"truncated pack", func() error {
			packs, _ := filepath.Glob(filepath.Join(work, ".git", "objects", "pack", "*.pack"))
			objects, _ := filepath.Glob(filepath.Join(work, ".git", "objects", "??", "*"))
			if len(packs)+len(objects) == 0 {
				return fmt.Errorf("no objects to truncate")
			}
			for _, p := range append(packs, objects...) {
				if err := os.Truncate(p, 10); err != nil {
					return err
				}
			}
			return nil
		}},
		{"wrong remote URL", func() error {
			_, err := testpeers.Git(work, "remote", "set-url", "origin", "http://127.0.0.1:1/elsewhere.git")
			return err
		}},
		{"half-written clone beside it", func() error { return os.MkdirAll(work+".clone/.git", 0o755) }},
	}
	for i, c := range corruptions {
		if err := c.do(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		l.set(fmt.Sprintf("qa-sha-%03d", i+1))
		// A process that starts finds the copy so (one that runs keeps its
		// copy open between cycles, under the stateDir lock).
		r := e.scanner(l).RunOnce(context.Background())[0]
		if r.Err != nil || r.Commit == "" {
			t.Fatalf("%s: RunOnce: err %v, commit %q\nlogs:\n%s", c.name, r.Err, r.Commit, e.logs.String())
		}
		if got, want := e.markerValue(t), fmt.Sprintf("%s:qa-sha-%03d", testpeers.SeedImage, i+1); got != want {
			t.Errorf("%s: marker = %s, want %s", c.name, got, want)
		}
		if n := e.butlerCommits(t); n != i+1 {
			t.Errorf("%s: butler commits = %d, want %d (nothing pushed twice)", c.name, n, i+1)
		}
	}
	if n := strings.Count(e.logs.String(), "working copy unusable; cloning it afresh"); n < 2 {
		t.Errorf("re-clone warnings = %d, want at least 2:\n%s", n, e.logs.String())
	}
	if _, err := os.Stat(work + ".clone"); !os.IsNotExist(err) {
		t.Errorf("a partial clone is left beside the working copy: %v", err)
	}
}

func TestSecretsNeverLeak(t *testing.T) {
	needPeers(t)
	e := newGitEnv(t, "secret")
	const urlPassword = "url-embedded-p4ss"
	// One repository with the password in its URL, against a server that wants
	// the token: it fails. One with the right token file on a URL that fails.
	withPassword := strings.Replace(e.url, "http://", "http://"+gitUser+":"+urlPassword+"@", 1)
	e.cfg.Repositories = append(e.cfg.Repositories,
		config.Repository{URL: withPassword, Branch: "main", PushBranch: "other", Paths: []string{"."}, Auth: config.Auth{Username: gitUser}},
		config.Repository{URL: e.srv.URL + "/missing.git", Branch: "main", PushBranch: "main", Paths: []string{"."}, Auth: e.cfg.Repositories[0].Auth},
	)
	l := &tagLister{}
	l.set("qa-sha-222")
	var everything strings.Builder
	for _, r := range e.scanner(l).RunOnce(context.Background()) {
		everything.WriteString(r.Summary() + "\n")
		for _, p := range r.Problems {
			everything.WriteString(p.Error() + "\n")
		}
	}
	everything.WriteString(e.logs.String())
	out := everything.String()
	if !strings.Contains(out, "FAIL") {
		t.Fatalf("expected failing repositories:\n%s", out)
	}
	for _, secret := range []string{gitToken, urlPassword} {
		if strings.Contains(out, secret) {
			t.Errorf("output holds a secret %q:\n%s", secret, out)
		}
	}
	msg := gitOut(t, e.bare, "log", "-1", "--format=%B", "main")
	if strings.Contains(msg, gitToken) || strings.Contains(msg, urlPassword) {
		t.Errorf("commit message holds a secret:\n%s", msg)
	}
}

func TestTokenFileReadEveryCycle(t *testing.T) {
	needPeers(t)
	e := newGitEnv(t, "rotate")
	l := &tagLister{}
	s := e.scanner(l)
	tokenFile := e.cfg.Repositories[0].Auth.TokenFile
	for i, tc := range []struct {
		token string
		ok    bool
	}{{gitToken, true}, {"revoked-token", false}, {gitToken, true}} {
		os.WriteFile(tokenFile, []byte(tc.token+"\n"), 0o600)
		l.set(fmt.Sprintf("qa-sha-%03d", i))
		r := s.RunOnce(context.Background())[0]
		if ok := r.Err == nil; ok != tc.ok {
			t.Errorf("cycle %d with token %q: err %v, want ok = %v", i, tc.token, r.Err, tc.ok)
		}
		if !tc.ok && (r.Err == nil || !strings.Contains(r.Err.Error(), "authentication required")) {
			t.Errorf("cycle %d: error %v does not say authentication failed", i, r.Err)
		}
	}
	if got, want := e.markerValue(t), testpeers.SeedImage+":qa-sha-002"; got != want {
		t.Errorf("marker = %s, want %s", got, want)
	}
}

func TestHungRepositoryTimesOutAlone(t *testing.T) {
	needPeers(t)
	e := newGitEnv(t, "alive")
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers
	}))
	defer hung.Close()
	defer hung.CloseClientConnections()
	// The hung repository gets a short timeout of its own; the live one keeps
	// the default (5m), so a loaded machine cannot make it miss.
	e.cfg.Repositories = append(e.cfg.Repositories, config.Repository{URL: hung.URL + "/hung.git", Branch: "main", PushBranch: "main", Paths: []string{"."}, Timeout: config.Duration(2 * time.Second)})
	e.cfg.Concurrency = 2
	l := &tagLister{}
	l.set("qa-sha-777")
	results := e.scanner(l).RunOnce(context.Background())
	if r := results[0]; r.Err != nil || r.Commit == "" {
		t.Errorf("live repository: err %v, commit %q", r.Err, r.Commit)
	}
	if r := results[1]; r.Err == nil || !strings.Contains(r.Err.Error(), "timed out after 2s") {
		t.Errorf("hung repository: err = %v, want a timeout", r.Err)
	}
}

// A transient HTTP 500 on fetch fails that cycle only: the working copy is
// kept (no second clone) and the next cycle fetches into it.
func TestTransientFetchErrorKeepsWorkingCopy(t *testing.T) {
	needPeers(t)
	e := newGitEnv(t, "transient")
	target, _ := url.Parse(e.srv.URL)
	var fail atomic.Bool
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
		httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
	}))
	defer proxy.Close()
	e.cfg.Repositories[0].URL = strings.Replace(e.url, e.srv.URL, proxy.URL, 1)
	l := &tagLister{}
	butler := e.scanner(l)
	work := scanner.WorkDir(e.cfg.StateDir, e.cfg.Repositories[0])

	l.set("qa-sha-001")
	if r := butler.RunOnce(context.Background())[0]; r.Err != nil || r.Commit == "" {
		t.Fatalf("first cycle: err %v, commit %q", r.Err, r.Commit)
	}
	keep := filepath.Join(work, ".git", "kept-by-the-test")
	if err := os.WriteFile(keep, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fail.Store(true) // the remote answers 500 for one cycle
	l.set("qa-sha-002")
	if r := butler.RunOnce(context.Background())[0]; r.Err == nil || !strings.Contains(r.Err.Error(), "500") {
		t.Errorf("cycle with a 500: err = %v, want the 500", r.Err)
	}
	fail.Store(false)
	if r := butler.RunOnce(context.Background())[0]; r.Err != nil || r.Commit == "" {
		t.Fatalf("cycle after the 500: err %v, commit %q", r.Err, r.Commit)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("the working copy was replaced after a transient error: %v\nlogs:\n%s", err, e.logs.String())
	}
	if strings.Contains(e.logs.String(), "cloning it afresh") {
		t.Errorf("cloned again after a transient error:\n%s", e.logs.String())
	}
}

// File names git takes on Linux but go-git refuses (a Windows device
// name, a newline or a tab in the name) do not fail the repository: they
// are checked out, and the butler's commit keeps them.
func TestUnusualFileNamesDoNotFailRepository(t *testing.T) {
	needPeers(t)
	e := newGitEnv(t, "plain")
	odd := []string{"docs/aux.md", "docs/con.txt", "docs/new\nline.md", "docs/tab\there.yaml"}
	files := map[string]string{"apps/bartender/deployment.yaml": testpeers.SeedDeployment}
	for _, name := range odd {
		files[name] = "an unusual name\n"
	}
	url, err := e.srv.InitRepo("devices", "main", files)
	if err != nil {
		t.Fatal(err)
	}
	e.cfg.Repositories[0].URL = url
	l := &tagLister{}
	l.set("qa-sha-444")
	r := e.scanner(l).RunOnce(context.Background())[0]
	if r.Err != nil || r.Commit == "" {
		t.Fatalf("err %v, commit %q", r.Err, r.Commit)
	}
	work := scanner.WorkDir(e.cfg.StateDir, e.cfg.Repositories[0])
	for _, name := range odd {
		if _, err := os.Stat(filepath.Join(work, filepath.FromSlash(name))); err != nil {
			t.Errorf("%q not checked out: %v", name, err)
		}
	}
	out, err := testpeers.Git(filepath.Join(e.srv.Root, "devices.git"), "ls-tree", "-r", "-z", "--name-only", r.Commit)
	if err != nil {
		t.Fatal(err)
	}
	pushed := strings.Split(strings.TrimRight(out, "\x00"), "\x00")
	for name := range files {
		if !slices.Contains(pushed, name) {
			t.Errorf("the butler's commit lost %q (it has %q)", name, pushed)
		}
	}
}
