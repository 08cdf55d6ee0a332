package testpeers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Gitea is a Gitea server run from a binary built by
// integration/forge/build-gitea.sh (sqlite, no SSH, on 127.0.0.1), with an
// admin user and an API token.
type Gitea struct {
	URL   string // http://127.0.0.1:PORT
	User  string
	Token string
	cmd   *exec.Cmd
	dir   string
}

// GiteaUser is the user StartGitea creates; its e-mail is butlerEmail's
// domain's, so its commits are not the butler's.
const GiteaUser = "gitea-admin"

// StartGitea starts the Gitea binary with its state in dir, waits (up to 3
// minutes: a loaded machine is slow) until its API answers, and makes the
// admin user and a token. Close stops it.
func StartGitea(binary, dir string) (*Gitea, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	g := &Gitea{URL: fmt.Sprintf("http://127.0.0.1:%d", port), User: GiteaUser, dir: dir}
	conf := filepath.Join(dir, "custom", "conf", "app.ini")
	if err := os.MkdirAll(filepath.Dir(conf), 0o755); err != nil {
		return nil, err
	}
	ini := fmt.Sprintf(`APP_NAME = imagebutler-test
RUN_MODE = prod
WORK_PATH = %[1]s
I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true
[database]
DB_TYPE = sqlite3
PATH = %[1]s/data/gitea.db
SQLITE_JOURNAL_MODE = WAL
SQLITE_TIMEOUT = 30000
[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = %[2]d
ROOT_URL = %[3]s/
DISABLE_SSH = true
START_SSH_SERVER = false
OFFLINE_MODE = true
LFS_START_SERVER = false
APP_DATA_PATH = %[1]s/data
STATIC_ROOT_PATH = %[4]s
[repository]
ROOT = %[1]s/repos
[security]
INSTALL_LOCK = true
SECRET_KEY = imagebutler-test-secret
INTERNAL_TOKEN = eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJuYmYiOjE3MDAwMDAwMDB9.imagebutler-test-internal-token
[oauth2]
ENABLED = false
[service]
DISABLE_REGISTRATION = true
[mailer]
ENABLED = false
[log]
MODE = console
LEVEL = warn
[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false
[session]
PROVIDER = memory
[cache]
ADAPTER = memory
[queue]
TYPE = channel
[cron]
ENABLED = false
[api]
MAX_RESPONSE_ITEMS = 10
DEFAULT_PAGING_NUM = 10
`, dir, port, g.URL, filepath.Dir(binary))
	if err := os.WriteFile(conf, []byte(ini), 0o600); err != nil {
		return nil, err
	}
	run := func(args ...string) error {
		cmd := exec.Command(binary, append(args, "--work-path", dir, "--config", conf)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("gitea %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := run("migrate"); err != nil {
		return nil, err
	}
	password := "imagebutler-Test-1"
	if err := run("admin", "user", "create", "--username", g.User, "--password", password,
		"--email", "admin@gitea.example.com", "--admin", "--must-change-password=false"); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "gitea.log"))
	if err != nil {
		return nil, err
	}
	g.cmd = exec.Command(binary, "web", "--work-path", dir, "--config", conf)
	g.cmd.Dir = dir
	g.cmd.Stdout, g.cmd.Stderr = log, log
	// Killed with the test process however it ends: a test binary that
	// panics on go test's timeout runs no deferred Close, and a Gitea left
	// behind was found still running an hour later.
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		resp, err := http.Get(g.URL + "/api/v1/version")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			g.Close()
			b, _ := os.ReadFile(filepath.Join(dir, "gitea.log"))
			return nil, fmt.Errorf("gitea did not answer in 3 minutes: %v\n%s", err, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var tok struct {
		SHA1 string `json:"sha1"`
	}
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/api/v1/users/"+g.User+"/tokens",
		strings.NewReader(`{"name":"imagebutler","scopes":["write:repository","write:issue","write:user","write:admin"]}`))
	req.SetBasicAuth(g.User, password)
	req.Header.Set("Content-Type", "application/json")
	if err := g.do(req, &tok); err != nil {
		g.Close()
		return nil, fmt.Errorf("creating a token: %w", err)
	}
	g.Token = tok.SHA1
	return g, nil
}

// Close stops the server.
func (g *Gitea) Close() {
	if g.cmd != nil && g.cmd.Process != nil {
		g.cmd.Process.Kill()
		g.cmd.Wait()
	}
}

func (g *Gitea) do(req *http.Request, out any) error {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, body)
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}

// API calls the REST API as the admin: method on path (under /api/v1),
// with body as JSON, decoding the answer into out (when not nil).
func (g *Gitea) API(ctx context.Context, method, path string, body, out any) error {
	return g.APIAs(ctx, "", method, path, body, out)
}

// APIAs is API acting as user (Gitea's Sudo, which an admin's token may
// use), or as the admin when user is "".
func (g *Gitea) APIAs(ctx context.Context, user, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.URL+"/api/v1"+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "token "+g.Token)
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.Header.Set("Sudo", user)
	}
	return g.do(req, out)
}

// CloneURL is the HTTP URL of repository name of the admin.
func (g *Gitea) CloneURL(name string) string { return g.URL + "/" + g.User + "/" + name + ".git" }

// CreateRepo creates repository name with branch main holding files,
// committed by a person.
func (g *Gitea) CreateRepo(ctx context.Context, name string, files map[string]string) error {
	if err := g.API(ctx, http.MethodPost, "/user/repos", map[string]any{"name": name, "default_branch": "main"}, nil); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "gitea-seed-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	for p, content := range files {
		full := filepath.Join(work, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			return err
		}
	}
	remote := strings.Replace(g.CloneURL(name), "http://", "http://"+g.User+":"+g.Token+"@", 1)
	for _, args := range [][]string{
		{"init", "--quiet", "--initial-branch=main"},
		{"add", "--all"},
		{"commit", "--quiet", "-m", "Initial manifests"},
		{"push", "--quiet", remote, "main"},
	} {
		if _, err := Git(work, args...); err != nil {
			return err
		}
	}
	// Gitea takes the push in through a queue: until it did, the repository
	// is "empty" and its pull requests are not found.
	deadline := time.Now().Add(time.Minute)
	for {
		var repo struct {
			Empty bool `json:"empty"`
		}
		if err := g.API(ctx, http.MethodGet, "/repos/"+g.User+"/"+name, nil, &repo); err != nil {
			return err
		}
		if !repo.Empty {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gitea still calls %s empty a minute after the push", name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
