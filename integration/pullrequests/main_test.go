// Package pullrequests tests pull-request mode and commits through a
// forge's API: against a real Gitea server (built by
// integration/forge/build-gitea.sh) and stand-ins of GitHub's and GitLab's
// APIs, over git http-backend. It has a package of its own so that its
// minutes of waiting on Gitea do not count against the integration
// package's ten.
package pullrequests

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
)

// The butler's identity and the git server's credentials in these tests.
const (
	butlerName  = "Light Account Butler"
	butlerEmail = "butler@example.com"
	gitToken    = "tok-9f8e7d6c5b4a-secret"
)

// gitUser is the user the git server takes gitToken from.
const gitUser = "butler"

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

// runMain runs the tests and stops the Gitea server they started. They
// need no ECR: the scanner lists through stand-ins.
func runMain(m *testing.M) int {
	defer stopGitea()
	return m.Run()
}

// gitEnv is a repository on a git http-backend that takes gitToken, and
// the config of a butler that works on it.
type gitEnv struct {
	dir  string
	srv  *testpeers.GitServer
	url  string
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
	tokenFile := filepath.Join(e.dir, "token")
	os.WriteFile(tokenFile, []byte(gitToken), 0o600)
	e.cfg, err = config.Parse("test.yaml", []byte(fmt.Sprintf(`stateDir: %q
listen: ""
aws: {region: %s}
git:
  author: {name: %q, email: %q}
repositories:
  - url: %q
    branch: main
    auth: {username: %s, tokenFile: %q}
`, filepath.Join(e.dir, "state"), testpeers.SeedRegion, butlerName, butlerEmail, e.url, gitUser, tokenFile)))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// gitOut runs git in dir and returns its trimmed output.
func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := testpeers.Git(dir, args...)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// syncBuffer is a log buffer the scanner writes while the test reads.
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
