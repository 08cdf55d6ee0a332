package testpeers

import (
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
)

// GitServer serves the bare repositories under Root over HTTP through
// `git http-backend`, optionally behind Basic auth.
type GitServer struct {
	// URL is the server's base URL; a repository's URL is URL + "/" + name.
	URL string
	// Root holds the bare repositories.
	Root string
	srv  *httptest.Server

	mu       sync.Mutex
	requests map[string]int // by method and last path element
}

// Requests reports how many requests the server answered for method and
// the last element of the path, such as ("POST", "git-upload-pack").
func (g *GitServer) Requests(method, last string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.requests[method+" "+last]
}

// NewGitServer serves root. When token is not empty, every request must
// carry Basic auth with username and token.
func NewGitServer(root, username, token string) (*GitServer, error) {
	var check func(user, password string) bool
	if token != "" {
		check = func(u, p string) bool {
			return u == username && subtle.ConstantTimeCompare([]byte(p), []byte(token)) == 1
		}
	}
	return NewGitServerAuth(root, check)
}

// NewGitServerAuth serves root; when check is not nil, every request must
// carry Basic auth that check accepts.
func NewGitServerAuth(root string, check func(user, password string) bool) (*GitServer, error) {
	execPath, err := Git("", "--exec-path")
	if err != nil {
		return nil, err
	}
	backend := &cgi.Handler{
		Path:   filepath.Join(strings.TrimSpace(execPath), "git-http-backend"),
		Env:    []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
		Stderr: io.Discard, // hooks' and git's own messages reach the client anyway
	}
	var h http.Handler = backend
	if check != nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || !check(u, p) {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			backend.ServeHTTP(w, r)
		})
	}
	g := &GitServer{Root: root, requests: map[string]int{}}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.requests[r.Method+" "+path.Base(r.URL.Path)]++
		g.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	g.URL = g.srv.URL
	return g, nil
}

// Close stops the server.
func (g *GitServer) Close() { g.srv.Close() }

// InitRepo creates the bare repository name.git with one commit on branch
// holding files (slash-separated path → content), and returns its URL.
func (g *GitServer) InitRepo(name, branch string, files map[string]string) (string, error) {
	bare := filepath.Join(g.Root, name+".git")
	if _, err := Git("", "init", "--quiet", "--bare", "--initial-branch="+branch, bare); err != nil {
		return "", err
	}
	if _, err := Git(bare, "config", "http.receivepack", "true"); err != nil {
		return "", err
	}
	work, err := os.MkdirTemp("", "seed-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	if _, err := Git("", "clone", "--quiet", bare, work); err != nil {
		return "", err
	}
	if _, err := Git(work, "checkout", "--quiet", "-b", branch); err != nil {
		return "", err
	}
	for p, content := range files {
		full := filepath.Join(work, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	for _, args := range [][]string{
		{"add", "--all"},
		{"commit", "--quiet", "-m", "Initial manifests"},
		{"push", "--quiet", "origin", branch},
	} {
		if _, err := Git(work, args...); err != nil {
			return "", err
		}
	}
	return g.URL + "/" + name + ".git", nil
}

// Git runs the git command in dir as a person would, with a fixed identity
// and no user or system configuration, and returns its output.
func Git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=A Person", "GIT_AUTHOR_EMAIL=person@example.com",
		"GIT_COMMITTER_NAME=A Person", "GIT_COMMITTER_EMAIL=person@example.com",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
