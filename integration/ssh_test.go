package integration

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/gittestserver"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
)

// sshEnv is fluxcd/pkg/gittestserver serving one repository over SSH, and
// an imagebutler config that reaches it with a deploy key.
type sshEnv struct {
	env
	srv        *gittestserver.GitServer
	knownHosts string
	hostKey    ssh.PublicKey
}

func newSSHEnv(t *testing.T) *sshEnv {
	t.Helper()
	needPeers(t)
	seedOnce(t, t.Context())
	e := &sshEnv{env: env{dir: t.TempDir()}}
	var err error
	e.srv, err = gittestserver.NewTempGitServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(e.srv.Root()) })
	keys := filepath.Join(e.dir, "hostkeys")
	e.srv.KeyDir(keys)
	fixture := filepath.Join(e.dir, "fixture")
	os.MkdirAll(filepath.Join(fixture, "apps", "bartender"), 0o755)
	os.WriteFile(filepath.Join(fixture, "apps", "bartender", "deployment.yaml"), []byte(testpeers.SeedDeployment), 0o644)
	if err := e.srv.InitRepo(fixture, "main", "apps.git"); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.ListenSSH(); err != nil {
		t.Fatal(err)
	}
	go e.srv.StartSSH()
	t.Cleanup(func() { e.srv.StopSSH() })
	e.remote = e.srv.SSHAddress() + "/apps.git"

	pub, err := os.ReadFile(filepath.Join(keys, "gitkit.rsa.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if e.hostKey, _, _, _, err = ssh.ParseAuthorizedKey(pub); err != nil {
		t.Fatal(err)
	}
	e.knownHosts = filepath.Join(e.dir, "known_hosts")
	e.writeKnownHosts(t, e.hostKey)

	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "deploy key")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(e.dir, "id_ed25519")
	os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600)

	e.config = filepath.Join(e.dir, "imagebutler.yaml")
	cfg := "stateDir: " + filepath.Join(e.dir, "state") + `
listen: ""
aws: {region: us-east-2, endpoint: "` + moto.Endpoint + `"}
git:
  author: {name: "` + butlerName + `", email: "` + butlerEmail + `"}
repositories:
  - url: ` + e.remote + `
    branch: main
    auth: {sshKeyFile: ` + keyFile + `, knownHostsFile: ` + e.knownHosts + `}
`
	os.WriteFile(e.config, []byte(cfg), 0o644)
	return e
}

func (e *sshEnv) writeKnownHosts(t *testing.T, key ssh.PublicKey) {
	host := strings.TrimPrefix(e.srv.SSHAddress(), "ssh://git@")
	h, port, _ := net.SplitHostPort(host)
	line := knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort(h, port))}, key)
	if err := os.WriteFile(e.knownHosts, []byte(line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSSHCloneCommitPush(t *testing.T) {
	e := newSSHEnv(t)
	stdout, stderr, code := e.once(t)
	if code != 0 || !strings.Contains(stdout, "1 change(s), pushed") {
		t.Fatalf("once over SSH: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	bare := filepath.Join(e.srv.Root(), "apps.git")
	if got := gitOut(t, bare, "log", "-1", "--format=%ae %s", "main"); got != butlerEmail+" Update falcon-qa:my-policy-bartender to "+testpeers.SeedNewestTag {
		t.Errorf("head commit = %q", got)
	}
	// Fetch again: nothing to do.
	if stdout, _, code := e.once(t); code != 0 || !strings.Contains(stdout, "up to date") {
		t.Errorf("second once over SSH: exit %d, %s", code, stdout)
	}
}

func TestSSHUnknownHostKeyRefused(t *testing.T) {
	e := newSSHEnv(t)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	otherKey, _ := ssh.NewSignerFromKey(other)
	e.writeKnownHosts(t, otherKey.PublicKey())

	stdout, stderr, code := e.once(t)
	if code != 1 || !strings.Contains(stdout, "FAIL "+e.remote) || !strings.Contains(stdout, "knownhosts: key mismatch") {
		t.Errorf("once with a wrong host key: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	bare := filepath.Join(e.srv.Root(), "apps.git")
	if n := strings.Count(gitOut(t, bare, "log", "--format=%ae", "main"), butlerEmail); n != 0 {
		t.Errorf("butler commits = %d after a refused host key", n)
	}
}
