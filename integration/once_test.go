package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
)

const (
	butlerName  = "Light Account Butler"
	butlerEmail = "butler@example.com"
	gitUser     = "butler"
	gitToken    = "tok-9f8e7d6c5b4a-secret"
)

// brokenDeployment has an annotation that does not parse, beside the good one.
const brokenDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: broken
  namespace: falcon-qa
  annotations:
    app.lilly.com/flux.automated: "true"
    app.lilly.com/flux.simple.broken-policy: "283234040926;lrl_falcon_bartender"
`

type env struct {
	dir    string
	config string
	remote string // git URL of the repository
	git    *testpeers.GitServer
}

// setup seeds ECR (once per registry, shared by the tests) and a git
// repository holding the seed Deployment and a broken one, and writes a config.
func setup(t *testing.T, name string, extraRepos string) *env {
	t.Helper()
	return setupFiles(t, name, extraRepos, map[string]string{
		"apps/bartender/deployment.yaml": testpeers.SeedDeployment,
		"apps/broken/deployment.yaml":    brokenDeployment,
		"README.md":                      "manifests\n",
	})
}

// setupRepo is setup with deployment as the only manifest.
func setupRepo(t testing.TB, name, deployment string) *env {
	t.Helper()
	return setupFiles(t, name, "", map[string]string{"apps/bartender/deployment.yaml": deployment})
}

func setupFiles(t testing.TB, name, extraRepos string, files map[string]string) *env {
	t.Helper()
	needPeers(t)
	ctx := context.Background()
	seedOnce(t, ctx)
	e := &env{dir: t.TempDir()}
	root := filepath.Join(e.dir, "remote")
	os.MkdirAll(root, 0o755)
	var err error
	e.git, err = testpeers.NewGitServer(root, gitUser, gitToken)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.git.Close)
	e.remote, err = e.git.InitRepo(name, "main", files)
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(e.dir, "token")
	os.WriteFile(tokenFile, []byte(gitToken+"\n"), 0o600)
	e.config = filepath.Join(e.dir, "imagebutler.yaml")
	cfg := butlerConfig(filepath.Join(e.dir, "state"), e.remote, tokenFile) + extraRepos
	if err := os.WriteFile(e.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// butlerConfig is the imagebutler.yaml of one repository over HTTPS with
// the test token, against moto.
func butlerConfig(stateDir, url, tokenFile string) string {
	return fmt.Sprintf(`stateDir: %q
listen: ""
aws:
  region: %s
  endpoint: %s
git:
  author: {name: %q, email: %q}
repositories:
  - url: %q
    branch: main
    auth: {username: %s, tokenFile: %q}
`, stateDir, testpeers.SeedRegion, moto.Endpoint, butlerName, butlerEmail, url, gitUser, tokenFile)
}

var (
	seedMu sync.Mutex
	seeded bool
)

func seedOnce(t testing.TB, ctx context.Context) {
	t.Helper()
	seedMu.Lock()
	defer seedMu.Unlock()
	if seeded {
		return
	}
	if err := testpeers.SeedECR(ctx, moto.ECR(testpeers.SeedRegion)); err != nil {
		t.Fatal(err)
	}
	seeded = true
}

// once runs `imagebutler once` and returns its output and exit code.
func (e *env) once(t *testing.T) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, "once", "--config", e.config)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String()+errb.String(), gitToken) {
		t.Errorf("output holds the git token:\n%s\n%s", out.String(), errb.String())
	}
	return out.String(), errb.String(), code
}

// clone makes a fresh clone of the remote, as a person would.
func (e *env) clone(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "clone")
	bare := strings.TrimPrefix(e.remote, e.git.URL+"/")
	if _, err := testpeers.Git("", "clone", "--quiet", filepath.Join(e.git.Root, bare), dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := testpeers.Git(dir, args...)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func TestOnceUpdatesSeedDeployment(t *testing.T) {
	e := setup(t, "apps", "")

	stdout, stderr, code := e.once(t)
	if code != 0 {
		t.Fatalf("once exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "ok   "+e.remote+"@main: 1 change(s), pushed ") {
		t.Errorf("summary = %q, want one change pushed", stdout)
	}
	wantProblem := `apps/broken/deployment.yaml: Deployment falcon-qa/broken: annotation app.lilly.com/flux.simple.broken-policy: value \"283234040926;lrl_falcon_bartender\" must be \"<account>;<ecr-repo>;<filter>\"`
	if !strings.Contains(stderr, wantProblem) {
		t.Errorf("stderr does not report the broken annotation %s\nstderr:\n%s", wantProblem, stderr)
	}

	clone := e.clone(t)
	if got := gitOut(t, clone, "rev-list", "--count", "HEAD"); got != "2" {
		t.Errorf("commits on main = %s, want 2 (seed + butler)", got)
	}
	if got := gitOut(t, clone, "log", "-1", "--format=%an <%ae>|%cn <%ce>"); got != butlerName+" <"+butlerEmail+">|"+butlerName+" <"+butlerEmail+">" {
		t.Errorf("author|committer = %q", got)
	}
	if got := gitOut(t, clone, "log", "-1", "--format=%s"); got != "Update falcon-qa:my-policy-bartender to "+testpeers.SeedNewestTag {
		t.Errorf("subject = %q", got)
	}
	got, err := os.ReadFile(filepath.Join(clone, "apps/bartender/deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(testpeers.SeedDeployment,
		"image: "+testpeers.SeedImage+":"+testpeers.SeedOldTag+" #",
		"image: "+testpeers.SeedImage+":"+testpeers.SeedNewestTag+" #", 1)
	if want == testpeers.SeedDeployment {
		t.Fatal("test bug: the replacement did not apply")
	}
	if string(got) != want {
		t.Errorf("deployment.yaml after once:\n%s\nwant:\n%s", got, want)
	}
	if changed := gitOut(t, clone, "diff", "--name-only", "HEAD~1", "HEAD"); changed != "apps/bartender/deployment.yaml" {
		t.Errorf("files changed = %q", changed)
	}

	// A second cycle finds nothing to do.
	stdout, stderr, code = e.once(t)
	if code != 0 || !strings.Contains(stdout, "up to date") {
		t.Errorf("second once: exit %d, stdout %q, stderr %s", code, stdout, stderr)
	}
	clone2 := e.clone(t)
	if got := gitOut(t, clone2, "rev-list", "--count", "HEAD"); got != "2" {
		t.Errorf("commits after the second once = %s, want 2", got)
	}
}

func TestOnceBadRepositoryDoesNotStopOthers(t *testing.T) {
	unreachable := "  - url: http://127.0.0.1:1/nowhere.git\n    branch: main\n"
	e := setup(t, "apps2", unreachable)

	stdout, stderr, code := e.once(t)
	if code != 1 {
		t.Errorf("once exited %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ok   "+e.remote) || !strings.HasPrefix(lines[1], "FAIL http://127.0.0.1:1/nowhere.git@main: cloning http://127.0.0.1:1/nowhere.git: ") {
		t.Errorf("summary lines:\n%s", stdout)
	}
	if got := gitOut(t, e.clone(t), "rev-list", "--count", "HEAD"); got != "2" {
		t.Errorf("commits on the good repository = %s, want 2", got)
	}
}

func TestOnceWrongToken(t *testing.T) {
	e := setup(t, "apps3", "")
	os.WriteFile(filepath.Join(e.dir, "token"), []byte("wrong-token\n"), 0o600)
	stdout, _, code := e.once(t)
	if code != 1 || !strings.Contains(stdout, "FAIL ") || !strings.Contains(stdout, "authentication required") {
		t.Errorf("once with a wrong token: exit %d, stdout %q", code, stdout)
	}
	if strings.Contains(stdout, "wrong-token") {
		t.Errorf("output holds the token: %s", stdout)
	}
}

func TestOnceBadConfig(t *testing.T) {
	needPeers(t)
	cfg := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(cfg, []byte("git: {author: {name: b, email: b@x}}\nrepositories:\n  - url: /srv/git/apps\n"), 0o644)
	cmd := exec.Command(binary, "once", "--config", cfg)
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit = %v, want 2; output %s", err, out)
	}
	if want := cfg + ":3: repositories[0].branch: must not be empty"; !strings.Contains(string(out), want) {
		t.Errorf("output %q does not contain %q", out, want)
	}
}

func TestOnceDryRunPushesNothing(t *testing.T) {
	e := setup(t, "dry", "")
	cmd := exec.Command(binary, "once", "--dry-run", "--config", e.config)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("once --dry-run: %v\n%s", err, out)
	}
	for _, want := range []string{
		"ok   " + e.remote + "@main: 1 change(s), would push (dry run)",
		"--- a/apps/bartender/deployment.yaml\n+++ b/apps/bartender/deployment.yaml\n",
		"-          image: " + testpeers.SeedImage + ":" + testpeers.SeedOldTag + " #",
		"+          image: " + testpeers.SeedImage + ":" + testpeers.SeedNewestTag + " #",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if got := gitOut(t, e.clone(t), "rev-list", "--count", "HEAD"); got != "1" {
		t.Errorf("commits after a dry run = %s, want 1", got)
	}
	// A real run afterwards starts from the remote, not the dry run's commit.
	if stdout, _, code := e.once(t); code != 0 || !strings.Contains(stdout, "1 change(s), pushed") {
		t.Errorf("once after the dry run: exit %d, %s", code, stdout)
	}
	if got := gitOut(t, e.clone(t), "rev-list", "--count", "HEAD"); got != "2" {
		t.Errorf("commits after the real run = %s, want 2", got)
	}
}
