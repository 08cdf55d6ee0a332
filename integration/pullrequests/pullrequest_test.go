package pullrequests

import (
	"context"
	"encoding/json"
	"fmt"
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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/forge/forgetest"
	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
	"github.com/imagebutler/imagebutler/policy"
	"github.com/imagebutler/imagebutler/scanner"
)

// The pull-request tests run against a real Gitea server, built by
// integration/forge/build-gitea.sh (about 6 minutes once, then cached);
// IMAGEBUTLER_GITEA names the binary. .ci/run builds it and sets it; a
// plain go test ./... without it skips them.
var (
	giteaOnce sync.Once
	giteaSrv  *testpeers.Gitea
	giteaDir  string
	giteaErr  error
)

// stopGitea stops the Gitea server the tests started, if any (TestMain).
func stopGitea() {
	if giteaSrv != nil {
		giteaSrv.Close()
	}
	if giteaDir != "" {
		os.RemoveAll(giteaDir)
	}
}

func needGitea(t *testing.T) *testpeers.Gitea {
	t.Helper()
	bin := os.Getenv("IMAGEBUTLER_GITEA")
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but IMAGEBUTLER_GITEA is not set (.ci/run builds Gitea and sets it)")
		}
		t.Skip("IMAGEBUTLER_GITEA is not set: run integration/forge/build-gitea.sh and set it to the path it prints")
	}
	giteaOnce.Do(func() {
		giteaDir, giteaErr = os.MkdirTemp("", "imagebutler-gitea-*")
		if giteaErr != nil {
			return
		}
		giteaSrv, giteaErr = testpeers.StartGitea(bin, giteaDir)
	})
	if giteaErr != nil {
		t.Fatal(giteaErr)
	}
	return giteaSrv
}

// listing is a fake ECR repository whose images the test pushes, each
// pushed a second after the one before (oldest first, as ECR lists).
type listing struct {
	mu     sync.Mutex
	images []policy.Image
}

func (l *listing) push(tag string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.images = append(l.images, policy.Image{Tags: []string{tag}, Digest: fmt.Sprintf("sha256:%064d", len(l.images)+1),
		PushedAt: time.Now().Add(time.Duration(len(l.images)) * time.Second)})
}

func (l *listing) List(context.Context, policy.ImageRef) ([]policy.Image, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]policy.Image(nil), l.images...), nil
}

// prEnv is one Gitea repository holding the seed Deployment, and a butler
// in pull-request mode over it.
type prEnv struct {
	g      *testpeers.Gitea
	name   string
	cfg    *config.Config
	butler *scanner.Scanner
	ecr    *listing
	logs   *syncBuffer
}

func newPREnv(t *testing.T, name string) *prEnv {
	t.Helper()
	return newPREnvWith(t, name, "")
}

// newPREnvWith is newPREnv with more pullRequest settings (YAML flow
// entries, such as "autoMerge: {method: squash}").
func newPREnvWith(t *testing.T, name, prSettings string) *prEnv {
	t.Helper()
	if prSettings != "" {
		prSettings = ", " + prSettings
	}
	g := needGitea(t)
	ctx := context.Background()
	if err := g.CreateRepo(ctx, name, map[string]string{"apps/bartender/deployment.yaml": testpeers.SeedDeployment}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte(g.Token+"\n"), 0o600)
	cfg, err := config.Parse("pr.yaml", []byte(fmt.Sprintf(`stateDir: %s
listen: ""
aws: {region: %s}
git:
  author: {name: %q, email: %q}
repositories:
  - url: %s
    branch: main
    auth: {username: %s, tokenFile: %s}
    pullRequest: {provider: gitea%s}
`, filepath.Join(dir, "state"), testpeers.SeedRegion, butlerName, butlerEmail, g.CloneURL(name), g.User, tokenFile, prSettings)))
	if err != nil {
		t.Fatal(err)
	}
	e := &prEnv{g: g, name: name, cfg: cfg, ecr: &listing{}, logs: &syncBuffer{}}
	e.butler = scanner.New(cfg, e.ecr, slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	return e
}

type giteaPull struct {
	Number int64  `json:"number"`
	State  string `json:"state"`
	Merged bool   `json:"merged"`
	Title  string `json:"title"`
	Body   string `json:"body"`
	Head   struct {
		Ref string `json:"ref"`
		SHA string `json:"sha"`
	} `json:"head"`
}

func (e *prEnv) pulls(t *testing.T) []giteaPull {
	t.Helper()
	var out []giteaPull
	if err := e.g.API(context.Background(), http.MethodGet, "/repos/"+e.g.User+"/"+e.name+"/pulls?state=all", nil, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// file is a file's content on a branch, through the API.
func (e *prEnv) file(t *testing.T, branch, path string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.g.URL+"/api/v1/repos/"+e.g.User+"/"+e.name+"/raw/"+path+"?ref="+branch, nil)
	req.Header.Set("Authorization", "token "+e.g.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return string(b)
}

func (e *prEnv) branchExists(t *testing.T, branch string) bool {
	t.Helper()
	err := e.g.API(context.Background(), http.MethodGet, "/repos/"+e.g.User+"/"+e.name+"/branches/"+branch, nil, nil)
	return err == nil
}

func (e *prEnv) cycle(t *testing.T) scanner.RepoResult {
	t.Helper()
	return e.butler.RunOnce(context.Background())[0]
}

const seedFile = "apps/bartender/deployment.yaml"

// An update is proposed in a pull request that a newer tag updates; main
// is never pushed to; once merged, the next cycle has nothing to do and
// deletes the butler's branch.
func TestPullRequestOpenUpdateMerge(t *testing.T) {
	e := newPREnv(t, "open-update-merge")
	mainBefore := e.file(t, "main", seedFile)
	e.ecr.push("qa-sha-0000001")
	r := e.cycle(t)
	if r.Err != nil || r.PullRequest == nil || r.PullRequest.Action != "opened" || r.PullRequest.Number == 0 {
		t.Fatalf("first cycle: err %v, pull request %+v\n%s", r.Err, r.PullRequest, e.logs.String())
	}
	number := r.PullRequest.Number
	if !strings.Contains(e.file(t, "imagebutler/main", seedFile), ":qa-sha-0000001") {
		t.Errorf("the butler's branch does not hold the new tag")
	}
	if e.file(t, "main", seedFile) != mainBefore {
		t.Errorf("main changed: the butler pushed to the target branch")
	}
	if !strings.Contains(r.Summary(), fmt.Sprintf("pull request #%d opened", number)) {
		t.Errorf("summary %q does not name the pull request", r.Summary())
	}

	// A newer tag updates the same pull request.
	e.ecr.push("qa-sha-0000002")
	r = e.cycle(t)
	if r.Err != nil || r.PullRequest.Action != "updated" || r.PullRequest.Number != number {
		t.Fatalf("second cycle: err %v, pull request %+v", r.Err, r.PullRequest)
	}
	pulls := e.pulls(t)
	if len(pulls) != 1 || !strings.Contains(pulls[0].Title, "qa-sha-0000002") || !strings.Contains(pulls[0].Body, "imagebutler-set: falcon-qa:my-policy-bartender=qa-sha-0000002") {
		t.Fatalf("pull requests after the update: %+v", pulls)
	}
	// Nothing new: nothing pushed, the pull request unchanged.
	if r = e.cycle(t); r.Err != nil || r.PullRequest.Action != "unchanged" || r.Commit != "" {
		t.Errorf("cycle with nothing new: err %v, commit %q, pull request %+v", r.Err, r.Commit, r.PullRequest)
	}

	// Gitea checks a pull request's mergeability in the background and
	// answers 405 "try again later" until it did.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		err := e.g.API(context.Background(), http.MethodPost, fmt.Sprintf("/repos/%s/%s/pulls/%d/merge", e.g.User, e.name, number), map[string]string{"Do": "merge"}, nil)
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "405") || time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	if !strings.Contains(e.file(t, "main", seedFile), ":qa-sha-0000002") {
		t.Fatal("the merge did not reach main")
	}
	r = e.cycle(t)
	if r.Err != nil || len(r.Changes) != 0 || r.PullRequest.State != "merged" || r.PullRequest.Action != "branch deleted" {
		t.Errorf("cycle after the merge: err %v, %d changes, pull request %+v", r.Err, len(r.Changes), r.PullRequest)
	}
	if e.branchExists(t, "imagebutler/main") {
		t.Errorf("the butler's branch is still there after the merge")
	}
	if r = e.cycle(t); r.Err != nil || len(r.Changes) != 0 || r.PullRequest.Action != "" || len(e.pulls(t)) != 1 {
		t.Errorf("next cycle: err %v, %d changes, pull request %+v, %d pull requests", r.Err, len(r.Changes), r.PullRequest, len(e.pulls(t)))
	}
}

// A pull request closed without merging rejects its values: they are not
// proposed again until a newer tag ranks above them.
func TestPullRequestClosedIsRejected(t *testing.T) {
	e := newPREnv(t, "closed-rejected")
	e.ecr.push("qa-sha-0000001")
	r := e.cycle(t)
	if r.Err != nil || r.PullRequest == nil || r.PullRequest.Action != "opened" {
		t.Fatalf("first cycle: err %v, pull request %+v\n%s", r.Err, r.PullRequest, e.logs.String())
	}
	first := r.PullRequest.Number
	if err := e.g.API(context.Background(), http.MethodPatch, fmt.Sprintf("/repos/%s/%s/pulls/%d", e.g.User, e.name, first), map[string]string{"state": "closed"}, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // and after a restart: the record is the forge's
		if i == 1 {
			e.butler = scanner.New(e.cfg, e.ecr, slog.New(slog.NewTextHandler(e.logs, nil)))
		}
		r = e.cycle(t)
		if r.Err != nil || len(r.Changes) != 0 || len(e.pulls(t)) != 1 {
			t.Fatalf("cycle %d after the close: err %v, %d changes, %d pull requests", i, r.Err, len(r.Changes), len(e.pulls(t)))
		}
		held := false
		for _, m := range r.Markers {
			held = held || m.State == scanner.MarkerHeld && m.HeldBy == scanner.HeldRejected && strings.Contains(m.Reason, fmt.Sprintf("#%d", first))
		}
		if !held {
			t.Errorf("cycle %d: the marker is not held as rejected: %+v", i, r.Markers)
		}
	}
	e.ecr.push("qa-sha-0000002")
	r = e.cycle(t)
	if r.Err != nil || r.PullRequest.Action != "opened" || r.PullRequest.Number == first {
		t.Fatalf("cycle after a newer tag: err %v, pull request %+v", r.Err, r.PullRequest)
	}
	if !strings.Contains(e.file(t, "imagebutler/main", seedFile), ":qa-sha-0000002") {
		t.Errorf("the new pull request's branch does not hold the newer tag")
	}
}

// A person's commit on the butler's branch stops the butler from touching
// the branch or its pull request.
func TestPullRequestBranchWithAPersonsCommitIsLeftAlone(t *testing.T) {
	e := newPREnv(t, "person-on-branch")
	e.ecr.push("qa-sha-0000001")
	if r := e.cycle(t); r.Err != nil || r.PullRequest.Action != "opened" {
		t.Fatalf("first cycle: err %v, pull request %+v\n%s", r.Err, r.PullRequest, e.logs.String())
	}
	work := t.TempDir()
	remote := strings.Replace(e.g.CloneURL(e.name), "http://", "http://"+e.g.User+":"+e.g.Token+"@", 1)
	for _, args := range [][]string{
		{"clone", "--quiet", "--branch", "imagebutler/main", remote, work},
	} {
		if _, err := testpeers.Git("", args...); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(work, "NOTES.md"), []byte("a person's note\n"), 0o644)
	for _, args := range [][]string{{"add", "NOTES.md"}, {"commit", "--quiet", "-m", "A person's note"}, {"push", "--quiet", "origin", "imagebutler/main"}} {
		if _, err := testpeers.Git(work, args...); err != nil {
			t.Fatal(err)
		}
	}
	personsHead := strings.TrimSpace(gitOut(t, work, "rev-parse", "HEAD"))
	e.ecr.push("qa-sha-0000002")
	r := e.cycle(t)
	if r.Err == nil || !strings.Contains(r.Err.Error(), "the butler did not make") || r.PullRequest.Action != "left alone" {
		t.Fatalf("cycle after a person's commit: err %v, pull request %+v", r.Err, r.PullRequest)
	}
	var branch struct {
		Commit struct {
			ID string `json:"id"`
		} `json:"commit"`
	}
	if err := e.g.API(context.Background(), http.MethodGet, "/repos/"+e.g.User+"/"+e.name+"/branches/imagebutler/main", nil, &branch); err != nil {
		t.Fatal(err)
	}
	if branch.Commit.ID != personsHead {
		t.Errorf("the branch moved from the person's commit %s to %s", personsHead, branch.Commit.ID)
	}
	if p := e.pulls(t); len(p) != 1 || strings.Contains(p[0].Title, "qa-sha-0000002") {
		t.Errorf("the pull request was touched: %+v", p)
	}
}

// Pull-request mode against GitHub: the API is forgetest.GitHub (GitHub's
// documented answers; the real service cannot be reached from here) driven
// through go-github, the git side a real git http-backend.
func TestPullRequestGitHub(t *testing.T) {
	e := newGitEnv(t, "plain")
	url, err := e.srv.InitRepo("org/apps", "main", map[string]string{"apps/bartender/deployment.yaml": testpeers.SeedDeployment})
	if err != nil {
		t.Fatal(err)
	}
	api := &forgetest.GitHub{Owner: "org", Repo: "apps", Token: gitToken}
	srv := httptest.NewServer(api)
	defer srv.Close()
	repo := &e.cfg.Repositories[0]
	repo.URL = url
	repo.PullRequest = &config.PullRequest{Provider: "github", APIURL: srv.URL + "/", Branch: "imagebutler/main", Labels: []string{"dependencies"}}
	bare := filepath.Join(e.srv.Root, "org", "apps.git")
	l := &listing{}
	l.push("qa-sha-0000001")

	dry := scanner.New(e.cfg, l, slog.New(slog.NewTextHandler(io.Discard, nil)), scanner.WithDryRun())
	r := dry.RunOnce(context.Background())[0]
	if r.Err != nil || !strings.Contains(r.Summary(), `would open a pull request from imagebutler/main into main: "Update falcon-qa:my-policy-bartender to qa-sha-0000001"`) || r.Diff == "" || len(api.Pulls()) != 0 {
		t.Fatalf("dry run: err %v, summary %q, %d pull requests", r.Err, r.Summary(), len(api.Pulls()))
	}

	reg := prometheus.NewRegistry()
	butler := scanner.New(e.cfg, l, slog.New(slog.NewTextHandler(e.logs, nil)), scanner.WithMetrics(scanner.NewMetrics(reg)))
	r = butler.RunOnce(context.Background())[0]
	pulls := api.Pulls()
	if r.Err != nil || r.PullRequest.Action != "opened" || len(pulls) != 1 || pulls[0].Head != "imagebutler/main" || pulls[0].Base != "main" || len(pulls[0].Labels) != 1 {
		t.Fatalf("first cycle: err %v, pull request %+v, pulls %+v\n%s", r.Err, r.PullRequest, pulls, e.logs.String())
	}
	if got := gitOut(t, bare, "show", "imagebutler/main:apps/bartender/deployment.yaml"); !strings.Contains(got, ":qa-sha-0000001") {
		t.Errorf("the branch does not hold the tag:\n%s", got)
	}
	status, _ := json.Marshal(butler.Status())
	if !strings.Contains(string(status), `"pullRequest":{"number":1,"url":"https://github.com/org/apps/pull/1","branch":"imagebutler/main","base":"main","state":"open","action":"opened"`) {
		t.Errorf("/status does not link the pull request:\n%s", status)
	}

	// The token lacks a permission for one cycle: the repository fails,
	// naming itself and the permission; the next cycle goes on.
	api.Fail = func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"message":"Resource not accessible by personal access token"}`)
		return true
	}
	l.push("qa-sha-0000002")
	r = butler.RunOnce(context.Background())[0]
	if r.Err == nil || !strings.Contains(r.Summary(), "FAIL "+repo.Name()) || !strings.Contains(r.Err.Error(), `"Pull requests: read and write"`) {
		t.Errorf("cycle with a 403: summary %q", r.Summary())
	}
	api.Fail = nil
	r = butler.RunOnce(context.Background())[0]
	pulls = api.Pulls()
	if r.Err != nil || r.PullRequest.Action != "updated" || len(pulls) != 1 || !strings.Contains(pulls[0].Title, "qa-sha-0000002") {
		t.Fatalf("cycle after the 403: err %v, pull request %+v, pulls %+v", r.Err, r.PullRequest, pulls)
	}

	// Squash-merged (main gets a new commit with the branch's changes), the
	// branch left behind: the butler deletes it and has nothing to do.
	work := t.TempDir()
	if _, err := testpeers.Git("", "clone", "--quiet", bare, work); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"checkout", "--quiet", "origin/imagebutler/main", "--", "apps"},
		{"commit", "--quiet", "-m", "Update images (#1)"},
		{"push", "--quiet", "origin", "HEAD:main"},
	} {
		if _, err := testpeers.Git(work, args...); err != nil {
			t.Fatal(err)
		}
	}
	api.Close(1, true)
	r = butler.RunOnce(context.Background())[0]
	if r.Err != nil || len(r.Changes) != 0 || r.PullRequest.Action != "branch deleted" {
		t.Errorf("cycle after the merge: err %v, %d changes, pull request %+v", r.Err, len(r.Changes), r.PullRequest)
	}
	if _, err := testpeers.Git(bare, "rev-parse", "--verify", "refs/heads/imagebutler/main"); err == nil {
		t.Error("the butler's branch is still there")
	}
	name := repo.Name()
	want := fmt.Sprintf(`# HELP imagebutler_pull_requests_total Pull requests the butler opened or updated, and that it saw merged or closed without merging, by repository and event (opened, updated, merged, closed).
# TYPE imagebutler_pull_requests_total counter
imagebutler_pull_requests_total{event="closed",repository=%[1]q} 0
imagebutler_pull_requests_total{event="merged",repository=%[1]q} 1
imagebutler_pull_requests_total{event="opened",repository=%[1]q} 1
imagebutler_pull_requests_total{event="updated",repository=%[1]q} 1
`, name)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "imagebutler_pull_requests_total"); err != nil {
		t.Error(err)
	}
}
