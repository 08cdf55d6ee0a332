package pullrequests

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/forge/forgetest"
	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
	"github.com/imagebutler/imagebutler/scanner"
)

// apiEnv is a GitHub stand-in (forgetest.GitHub: its App endpoints and Git
// Data API, on the bare repository org/apps.git) beside a real git server
// that serves the same repository, taking the App's tokens; and org/twin,
// the same files, pushed to with git, for comparison.
type apiEnv struct {
	dir                string
	api                *forgetest.GitHub
	apiURL             string
	git                *testpeers.GitServer
	apps, twin         string // URLs
	appsBare, twinBare string
	keyFile            string
}

func newAPIEnv(t *testing.T) *apiEnv {
	t.Helper()
	e := &apiEnv{dir: t.TempDir()}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	e.keyFile = filepath.Join(e.dir, "app.pem")
	os.WriteFile(e.keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	e.api = &forgetest.GitHub{Owner: "org", Repo: "apps", Token: gitToken,
		App: &forgetest.App{ID: 4242, InstallationID: 77, Key: &key.PublicKey}}
	srv := httptest.NewServer(e.api)
	t.Cleanup(srv.Close)
	e.apiURL = srv.URL + "/"
	e.git, err = testpeers.NewGitServerAuth(filepath.Join(e.dir, "remote"), func(user, password string) bool {
		return e.api.ValidToken(password)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.git.Close)
	files := map[string]string{"apps/bartender/deployment.yaml": testpeers.SeedDeployment, "README.md": "manifests\n"}
	if e.apps, err = e.git.InitRepo("org/apps", "main", files); err != nil {
		t.Fatal(err)
	}
	if e.twin, err = e.git.InitRepo("org/twin", "main", files); err != nil {
		t.Fatal(err)
	}
	e.appsBare, e.twinBare = filepath.Join(e.git.Root, "org", "apps.git"), filepath.Join(e.git.Root, "org", "twin.git")
	e.api.Bare = e.appsBare
	return e
}

// TestCommitThroughAPI: with commitMethod: api and a GitHub App, the
// butler's commit is made through the Git Data API: its parent is the head
// the butler saw, its tree is the one a git push makes (org/twin, the same
// update pushed with git, holds the same blobs), its author the butler and
// so its committer (GitHub's default when none is given). A person's commit that lands between the butler's
// read of the branch and its ref update makes GitHub refuse the update (not
// a fast-forward: compare-and-swap); the butler syncs, makes the commit
// again on top, and the person's commit stays.
func TestCommitThroughAPI(t *testing.T) {
	e := newAPIEnv(t)
	tokenFile := filepath.Join(e.dir, "token")
	os.WriteFile(tokenFile, []byte(gitToken), 0o600)
	cfg, err := config.Parse("api.yaml", []byte(fmt.Sprintf(`stateDir: %q
listen: ""
aws: {region: %s}
git:
  author: {name: %q, email: %q}
repositories:
  - url: %q
    branch: main
    commitMethod: api
    auth:
      githubApp: {appID: 4242, privateKeyFile: %q, baseURL: %q}
  - url: %q
    branch: main
    auth: {username: x, tokenFile: %q}
`, filepath.Join(e.dir, "state"), testpeers.SeedRegion, butlerName, butlerEmail, e.apps, e.keyFile, e.apiURL, e.twin, tokenFile)))
	if err != nil {
		t.Fatal(err)
	}
	// A person pushes to main while the butler makes its commit.
	var once sync.Once
	person := ""
	e.api.BeforeRefUpdate = func() {
		once.Do(func() {
			work := filepath.Join(e.dir, "person")
			for _, args := range [][]string{
				{"clone", "--quiet", e.appsBare, work},
				{"-C", work, "commit", "--quiet", "--allow-empty", "-m", "A person's commit"},
				{"-C", work, "push", "--quiet", "origin", "main"},
			} {
				if out, err := testpeers.Git("", args...); err != nil {
					t.Errorf("%v\n%s", err, out)
				}
			}
			person = strings.TrimSpace(gitOut(t, e.appsBare, "rev-parse", "main"))
		})
	}
	l := &listing{}
	l.push("qa-sha-0000001")
	logs := &syncBuffer{}
	butler := scanner.New(cfg, l, slog.New(slog.NewTextHandler(logs, nil)), scanner.WithBackoff(func(int) time.Duration { return 10 * time.Millisecond }))
	results := butler.RunOnce(context.Background())
	for _, r := range results {
		if r.Err != nil || r.Commit == "" {
			t.Fatalf("%s: err %v, commit %q\n%s", r.Repository, r.Err, r.Commit, logs.String())
		}
	}
	commits, updates, refused := e.api.GitStats()
	if commits != 2 || updates != 1 || refused != 1 {
		t.Errorf("Git Data API: %d commits, %d ref updates, %d refused; want 2, 1, 1 (the first refused for the person's commit)", commits, updates, refused)
	}
	head := gitOut(t, e.appsBare, "rev-parse", "main")
	if results[0].Commit != head {
		t.Errorf("the butler reports commit %s; main is at %s", results[0].Commit, head)
	}
	if parent := gitOut(t, e.appsBare, "rev-parse", "main^"); parent != person {
		t.Errorf("the API commit's parent is %s, want the person's commit %s", parent, person)
	}
	if who := gitOut(t, e.appsBare, "log", "-1", "--format=%an <%ae> / %cn <%ce>", "main"); who != butlerName+" <"+butlerEmail+"> / "+butlerName+" <"+butlerEmail+">" {
		t.Errorf("author / committer: %s", who)
	}
	// The tree a push makes: the twin's, file for file (the person's commit
	// added no file).
	if a, b := gitOut(t, e.appsBare, "ls-tree", "-r", "main"), gitOut(t, e.twinBare, "ls-tree", "-r", "main"); a != b {
		t.Errorf("the API commit's tree differs from the pushed one:\n%s\n---\n%s", a, b)
	}
	if !strings.Contains(gitOut(t, e.appsBare, "show", "main:apps/bartender/deployment.yaml"), ":qa-sha-0000001") {
		t.Error("main does not hold the new tag")
	}
	if msg := gitOut(t, e.appsBare, "log", "-1", "--format=%B", "main"); msg != gitOut(t, e.twinBare, "log", "-1", "--format=%B", "main") {
		t.Errorf("messages differ:\n%s", msg)
	}
	// Nothing new: no commit.
	if r := butler.RunOnce(context.Background())[0]; r.Err != nil || r.Commit != "" {
		t.Errorf("second cycle: err %v, commit %q", r.Err, r.Commit)
	}
}

// TestPullRequestThroughAPI: in pull-request mode with commitMethod: api,
// the butler's branch is created through the API (a ref that must not
// exist), then replaced by a commit on main's head for a newer tag (with
// force, after the branch was read at the butler's own commit).
func TestPullRequestThroughAPI(t *testing.T) {
	e := newAPIEnv(t)
	tokenFile := filepath.Join(e.dir, "token")
	os.WriteFile(tokenFile, []byte(gitToken), 0o600)
	cfg, err := config.Parse("api.yaml", []byte(fmt.Sprintf(`stateDir: %q
listen: ""
aws: {region: %s}
git:
  author: {name: %q, email: %q}
repositories:
  - url: %q
    branch: main
    commitMethod: api
    auth: {username: x-access-token, tokenFile: %q}
    pullRequest: {provider: github, apiURL: %q}
`, filepath.Join(e.dir, "state"), testpeers.SeedRegion, butlerName, butlerEmail, e.apps, tokenFile, e.apiURL)))
	if err != nil {
		t.Fatal(err)
	}
	l := &listing{}
	l.push("qa-sha-0000001")
	butler := scanner.New(cfg, l, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r := butler.RunOnce(context.Background())[0]
	if r.Err != nil || r.PullRequest.Action != "opened" || r.Commit != gitOut(t, e.appsBare, "rev-parse", "imagebutler/main") {
		t.Fatalf("first cycle: err %v, commit %s, pull request %+v", r.Err, r.Commit, r.PullRequest)
	}
	l.push("qa-sha-0000002")
	r = butler.RunOnce(context.Background())[0]
	branch := gitOut(t, e.appsBare, "rev-parse", "imagebutler/main")
	if r.Err != nil || r.PullRequest.Action != "updated" || r.Commit != branch {
		t.Fatalf("second cycle: err %v, commit %s (branch %s), pull request %+v", r.Err, r.Commit, branch, r.PullRequest)
	}
	if parent, main := gitOut(t, e.appsBare, "rev-parse", "imagebutler/main^"), gitOut(t, e.appsBare, "rev-parse", "main"); parent != main {
		t.Errorf("the branch's commit sits on %s, not main's head %s", parent, main)
	}
	if !strings.Contains(gitOut(t, e.appsBare, "show", "imagebutler/main:apps/bartender/deployment.yaml"), ":qa-sha-0000002") {
		t.Error("the branch does not hold the newer tag")
	}
	if commits, updates, refused := e.api.GitStats(); commits != 2 || updates != 2 || refused != 0 {
		t.Errorf("Git Data API: %d commits, %d ref changes, %d refused; want 2, 2, 0", commits, updates, refused)
	}
	// Nothing new: the branch's commit already proposes it; nothing made.
	if r = butler.RunOnce(context.Background())[0]; r.Err != nil || r.PullRequest.Action != "unchanged" {
		t.Errorf("third cycle: err %v, pull request %+v", r.Err, r.PullRequest)
	}
	if commits, _, _ := e.api.GitStats(); commits != 2 {
		t.Errorf("%d commits made, want no third", commits)
	}
}
