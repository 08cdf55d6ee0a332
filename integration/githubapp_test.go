package integration

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io/fs"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagebutler/imagebutler/forge/forgetest"
	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
)

// TestGitHubApp runs `imagebutler run` as a GitHub App installation in
// pull-request mode against forgetest.GitHub (GitHub's documented App
// endpoints: a JWT checked with the App's public key, the installation
// looked up from the repository, installation tokens with an expiry) and
// a real git http-backend that takes only the tokens the App minted. The
// installation tokens live 62 s here, so ghinstallation renews each a
// minute early: every cycle after the first two seconds mints a new one,
// and git and the API are each called with a token still valid. No token
// reaches the logs, /status or the state directory. Then the App is
// uninstalled: the repository fails, naming the App and the installation.
func TestGitHubApp(t *testing.T) {
	needPeers(t)
	seedOnce(t, t.Context())
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "app.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)

	api := &forgetest.GitHub{Owner: "org", Repo: "apps",
		App: &forgetest.App{ID: 4242, InstallationID: 77, Key: &key.PublicKey, TokenTTL: 62 * time.Second}}
	apiSrv := httptest.NewServer(api)
	defer apiSrv.Close()
	var (
		mu      sync.Mutex
		usedGit = map[string]bool{} // the tokens git was called with
	)
	git, err := testpeers.NewGitServerAuth(filepath.Join(dir, "remote"), func(user, password string) bool {
		mu.Lock()
		usedGit[password] = true
		mu.Unlock()
		return user == "x-access-token" && api.ValidToken(password)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer git.Close()
	url, err := git.InitRepo("org/apps", "main", map[string]string{"apps/bartender/deployment.yaml": testpeers.SeedDeployment})
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	stateDir := filepath.Join(dir, "state")
	config := filepath.Join(dir, "imagebutler.yaml")
	os.WriteFile(config, []byte(fmt.Sprintf(`stateDir: %q
listen: "127.0.0.1:%d"
schedule: "@every 1s"
aws: {region: %s, endpoint: %s}
git:
  author: {name: %q, email: %q}
repositories:
  - url: %q
    branch: main
    auth:
      githubApp: {appID: 4242, privateKeyFile: %q}
    pullRequest: {provider: github, apiURL: %q}
`, stateDir, port, testpeers.SeedRegion, moto.Endpoint, butlerName, butlerEmail, url, keyFile, apiSrv.URL+"/")), 0o644)

	if out, err := exec.Command(binary, "check-config", "--config", config).CombinedOutput(); err != nil {
		t.Fatalf("check-config: %v\n%s", err, out)
	}
	butler := startRun(t, config)
	waitFor(t, "the pull request", func() bool { return len(api.Pulls()) == 1 })
	// Renewal: tokens keep being minted, and cycles keep passing with them
	// (git and the API refuse an expired token).
	waitFor(t, "three tokens minted and a cycle after the third", func() bool {
		return len(api.Minted()) >= 3 && metric(t, base, `imagebutler_cycles_total{result="success"}`) >= 3
	})
	mu.Lock()
	if len(usedGit) < 3 {
		t.Errorf("git was called with %d tokens, want a new one after each renewal (at least 3)", len(usedGit))
	}
	mu.Unlock()
	if p := api.Pulls()[0]; p.Head != "imagebutler/main" || p.State != "open" {
		t.Errorf("pull request %+v", p)
	}
	if out, err := testpeers.Git(filepath.Join(git.Root, "org", "apps.git"), "show", "imagebutler/main:apps/bartender/deployment.yaml"); err != nil || !strings.Contains(out, testpeers.SeedImage+":") {
		t.Errorf("the butler's branch: %v\n%s", err, out)
	}

	// Closed without merging: the butler knows the pull request for its
	// own (opened by the App's bot, asked of GET /app) and holds its value.
	api.Close(1, false)
	waitFor(t, "the closed pull request's value held", func() bool {
		return strings.Contains(body(t, base+"/status"), "was closed without merging; waiting for a tag newer than")
	})
	if strings.Contains(butler.logs.String(), "did not say whose token") {
		t.Error("the butler could not tell its own pull requests")
	}

	api.Revoke()
	want := "GitHub App 4242, installation 77: minting an installation token: HTTP 404: no such installation of the App: it was uninstalled, or installationID is wrong; reinstall the App (or fix auth.githubApp.installationID) (GitHub: Not Found)"
	waitFor(t, "the revoked installation to fail the repository", func() bool {
		return strings.Contains(body(t, base+"/status"), want)
	})

	status := body(t, base+"/status")
	butler.stop() // its last words in the logs too
	minted := api.Minted()
	leaks := map[string]string{"the logs": butler.logs.String(), "/status": status}
	filepath.WalkDir(stateDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, _ := os.ReadFile(path)
			leaks[path] = string(b)
		}
		return nil
	})
	for where, text := range leaks {
		for _, tok := range minted {
			if strings.Contains(text, tok) {
				t.Errorf("%s holds an installation token", where)
			}
		}
		if strings.Contains(text, "ghs_") {
			t.Errorf("%s holds something like an installation token", where)
		}
	}
}

// metric is the value of the sample named series (name{labels}) that
// base's /metrics serves, or -1 when there is none.
func metric(t *testing.T, base, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(body(t, base+"/metrics"), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f
			}
		}
	}
	return -1
}
