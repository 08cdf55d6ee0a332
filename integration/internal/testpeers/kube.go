package testpeers

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// KubeVar names the folder holding kube-apiserver and kubectl, as
// integration/kube/build-kube.sh prints it (.ci/run sets it).
const KubeVar = "IMAGEBUTLER_KUBE"

// KubeBinaries returns the folder KubeVar names, or why the tests that need
// a control plane cannot run: with CI=true a missing one is a failure the
// caller reports, otherwise a skip that says how to build it.
func KubeBinaries() (dir string, err error) {
	dir = os.Getenv(KubeVar)
	if dir == "" {
		return "", fmt.Errorf("%s is not set: run integration/kube/build-kube.sh (it builds kube-apiserver and kubectl from the module proxy, minutes once) and set %s to the folder it prints", KubeVar, KubeVar)
	}
	for _, b := range []string{"kube-apiserver", "kubectl"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("%s=%s: %w", KubeVar, dir, err)
		}
	}
	if _, err := exec.LookPath("etcd"); err != nil {
		return "", fmt.Errorf("etcd is not installed (Debian: apt-get install etcd-server): %w", err)
	}
	return dir, nil
}

// Kube is a control plane for tests: Debian's etcd and a kube-apiserver
// built from the module proxy, on loopback ports, with static tokens and
// RBAC. Admin is the kubeconfig of a cluster admin; Kubeconfig makes others.
type Kube struct {
	// URL is the API server's https:// address.
	URL string
	// Admin is the path of a kubeconfig with the admin token.
	Admin string
	// CA is the path of the API server's self-signed certificate.
	CA string
	// Kubectl is the kubectl binary.
	Kubectl string

	dir       string
	bin       string
	etcdURL   string
	port      int
	tokens    map[string]string // user name -> token
	etcd      *exec.Cmd
	etcdDone  chan struct{}
	apiserver *exec.Cmd
	apiDone   chan struct{}
}

// Users with a static token: the admin (system:masters) and a service
// account's user name, whose rights come only from the RBAC objects a test
// applies (as in a pod).
const (
	KubeAdmin = "admin"
)

// StartKube starts etcd and kube-apiserver (from the folder bin) with data
// and logs under dir, each user of users given a token (KubeAdmin always,
// in system:masters), and waits until the API server is ready.
func StartKube(ctx context.Context, bin, dir string, users ...string) (*Kube, error) {
	k := &Kube{dir: dir, bin: bin, Kubectl: filepath.Join(bin, "kubectl"), tokens: map[string]string{}}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	etcdPort, err := freePort()
	if err != nil {
		return nil, err
	}
	peerPort, err := freePort()
	if err != nil {
		return nil, err
	}
	if k.port, err = freePort(); err != nil {
		return nil, err
	}
	k.etcdURL = "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	k.URL = "https://127.0.0.1:" + strconv.Itoa(k.port)
	peer := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	k.etcd = exec.Command("etcd", "--data-dir", filepath.Join(dir, "etcd"), "--name", "default",
		"--listen-client-urls", k.etcdURL, "--advertise-client-urls", k.etcdURL,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "default="+peer,
		"--log-level", "warn", "--logger", "zap", "--quota-backend-bytes", strconv.Itoa(1<<30))
	if k.etcdDone, err = startLogged(k.etcd, filepath.Join(dir, "etcd.log")); err != nil {
		return nil, fmt.Errorf("starting etcd: %w", err)
	}

	// Tokens, and the key the API server signs service account tokens with
	// (it will not start without one).
	var csv string
	for _, u := range append([]string{KubeAdmin}, users...) {
		b := make([]byte, 16)
		rand.Read(b)
		k.tokens[u] = hex.EncodeToString(b)
		group := ""
		if u == KubeAdmin {
			group = "system:masters"
		}
		csv += fmt.Sprintf("%s,%s,%s,%q\n", k.tokens[u], u, u, group)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(csv), 0o600); err != nil {
		k.Stop()
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		k.Stop()
		return nil, err
	}
	der := x509.MarshalPKCS1PrivateKey(key)
	if err := os.WriteFile(filepath.Join(dir, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		k.Stop()
		return nil, err
	}
	if err := k.StartAPIServer(ctx); err != nil {
		k.Stop()
		return nil, err
	}
	k.CA = filepath.Join(dir, "certs", "apiserver.crt")
	if k.Admin, err = k.Kubeconfig(KubeAdmin); err != nil {
		k.Stop()
		return nil, err
	}
	return k, nil
}

// StartAPIServer starts kube-apiserver (again, after StopAPIServer) on the
// same port, and waits until it is ready (3 minutes at most: the machines
// are shared).
func (k *Kube) StartAPIServer(ctx context.Context) error {
	k.apiserver = exec.Command(filepath.Join(k.bin, "kube-apiserver"),
		"--etcd-servers", k.etcdURL,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", strconv.Itoa(k.port),
		"--cert-dir", filepath.Join(k.dir, "certs"),
		"--token-auth-file", filepath.Join(k.dir, "tokens.csv"),
		"--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", filepath.Join(k.dir, "sa.key"),
		"--service-account-signing-key-file", filepath.Join(k.dir, "sa.key"),
		"--service-cluster-ip-range", "10.0.0.0/24",
		"--endpoint-reconciler-type", "none",
		"--enable-priority-and-fairness=false",
		"--v", "1")
	var err error
	if k.apiDone, err = startLogged(k.apiserver, filepath.Join(k.dir, "kube-apiserver.log")); err != nil {
		return fmt.Errorf("starting kube-apiserver: %w", err)
	}
	// The certificate is made at start; until then any TLS answer will do.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", k.URL+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+k.tokens[KubeAdmin])
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-k.apiDone:
			log, _ := os.ReadFile(filepath.Join(k.dir, "kube-apiserver.log"))
			return fmt.Errorf("kube-apiserver exited before it was ready:\n%s", tail(log, 4000))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(k.dir, "kube-apiserver.log"))
			return fmt.Errorf("kube-apiserver was not ready within 3m:\n%s", tail(log, 4000))
		}
	}
}

// StopAPIServer kills kube-apiserver (etcd stays).
func (k *Kube) StopAPIServer() {
	if k.apiserver != nil && k.apiserver.Process != nil {
		k.apiserver.Process.Kill()
		<-k.apiDone
	}
}

// Stop kills both servers.
func (k *Kube) Stop() {
	k.StopAPIServer()
	if k.etcd != nil && k.etcd.Process != nil {
		k.etcd.Process.Kill()
		<-k.etcdDone
	}
}

// Kubeconfig writes a kubeconfig for user (one of the users StartKube was
// given) that trusts the API server's certificate, and returns its path.
func (k *Kube) Kubeconfig(user string) (string, error) {
	token, ok := k.tokens[user]
	if !ok {
		return "", fmt.Errorf("no token for user %q", user)
	}
	path := filepath.Join(k.dir, user+".kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: test
  context: {cluster: test, user: %s}
current-context: test
`, k.URL, filepath.Join(k.dir, "certs", "apiserver.crt"), user, token, user)
	return path, os.WriteFile(path, []byte(cfg), 0o600)
}

// Run runs kubectl with args as user, in dir, and returns its combined output.
func (k *Kube) Run(ctx context.Context, user, dir string, args ...string) (string, error) {
	cfg, err := k.Kubeconfig(user)
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, k.Kubectl, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "KUBECONFIG="+cfg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %v: %w\n%s", args, err, out)
	}
	return string(out), nil
}

// startLogged starts cmd with its output in logPath, killed with this
// process however it ends; the channel closes when it exits.
func startLogged(cmd *exec.Cmd, logPath string) (chan struct{}, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); f.Close(); close(done) }()
	return done, nil
}

// tail is the last n bytes of b.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
