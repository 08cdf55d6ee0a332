package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
	"github.com/imagebutler/imagebutler/scanner"
)

// TestURLCredentialsNeverLeak puts credentials into repository URLs in every
// form people write them, and checks every output path: the summary and
// problems, debug logs, /status, /metrics, commit messages and the working
// copies' .git/config. Credentials are sent, not stored in the URL.
func TestURLCredentialsNeverLeak(t *testing.T) {
	needPeers(t)
	const (
		password  = "p@ss%w/rd"       // '@', '%' and '/' in the password
		escaped   = "p%40ss%25w%2Frd" // the same, percent-encoded
		userToken = "ghp_userT0ken42" // a token written as the user name
	)
	dir := t.TempDir()
	srv, err := testpeers.NewGitServer(filepath.Join(dir, "remote"), gitUser, password)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	url, err := srv.InitRepo("apps", "main", map[string]string{"apps/bartender/deployment.yaml": testpeers.SeedDeployment})
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(url, "http://")
	forms := []struct {
		url    string
		pushes bool
	}{
		{"http://" + gitUser + ":" + escaped + "@" + host, true},
		{"http://" + gitUser + ":" + password + "@" + host, true},
		{"http://" + userToken + "@" + host, false}, // the server wants user butler
	}
	cfg := &config.Config{
		StateDir: filepath.Join(dir, "state"), Concurrency: 1, RepositoryTimeout: config.Duration(config.DefaultRepositoryTimeout),
		AWS: config.AWS{Region: testpeers.SeedRegion},
		Git: config.Git{Author: config.Author{Name: butlerName, Email: butlerEmail}},
	}
	for i, f := range forms {
		cfg.Repositories = append(cfg.Repositories, config.Repository{URL: f.url, Branch: "main", PushBranch: fmt.Sprintf("butler-%d", i), Paths: []string{"."}})
	}
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	m := scanner.NewMetrics(reg)
	l := &tagLister{}
	l.set("qa-sha-333")
	s := scanner.New(cfg, l, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), scanner.WithMetrics(m))

	var out strings.Builder
	for i, r := range s.RunOnce(context.Background()) {
		out.WriteString(r.Summary() + "\n")
		for _, p := range r.Problems {
			out.WriteString(p.Error() + "\n")
		}
		if pushed := r.Commit != "" && r.Err == nil; pushed != forms[i].pushes {
			t.Errorf("%s: pushed %v, want %v (%v)", r.Repository, pushed, forms[i].pushes, r.Err)
		}
	}
	out.WriteString(logs.String())
	status, _ := json.Marshal(s.Status())
	out.Write(status)
	families, _ := reg.Gather()
	for _, f := range families {
		out.WriteString(f.String() + "\n")
	}
	out.WriteString(gitOut(t, filepath.Join(dir, "remote", "apps.git"), "log", "--all", "--format=%B"))
	configs, _ := filepath.Glob(filepath.Join(cfg.StateDir, "*", ".git", "config"))
	if len(configs) < 2 {
		t.Fatalf("working copies' .git/config: %v", configs)
	}
	for _, c := range configs {
		b, _ := os.ReadFile(c)
		out.Write(b)
	}
	for _, secret := range []string{password, escaped, userToken, password[2:], escaped[3:]} { // whole or in part
		if strings.Contains(out.String(), secret) {
			t.Errorf("an output holds the secret %q:\n%s", secret, out.String())
		}
	}
}
