package integration

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
	"github.com/imagebutler/imagebutler/scanner"
)

// The seed guide's three accounts. PRD is read with the base identity and
// RegistryId; QA and DEV through an assumed role, which moto honours by
// placing the role's calls in the role's account.
const (
	prdAccount = "283234040926"
	qaAccount  = "474366589702"
	devAccount = "408787358807"
)

func roleARN(account string) string { return "arn:aws:iam::" + account + ":role/imagebutler-ecr-read" }

type ecrRepo struct{ account, name string }

// policyDeployment is a Deployment with one simple annotation and one
// marker per ECR repository.
func policyDeployment(name string, repos []ecrRepo) string {
	var ann, containers strings.Builder
	for i, r := range repos {
		fmt.Fprintf(&ann, "    app.lilly.com/flux.simple.%s-%d: \"%s;%s;glob:qa-sha-*\"\n", name, i, r.account, r.name)
		fmt.Fprintf(&containers, "        - name: c%d\n          image: %s.dkr.ecr.us-east-2.amazonaws.com/%s:old # {\"$imagepolicy\": \"apps:%s-%d\"}\n", i, r.account, r.name, name, i)
	}
	return fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: %s\n  namespace: apps\n  annotations:\n    app.lilly.com/flux.automated: \"true\"\n%sspec:\n  template:\n    spec:\n      containers:\n%s", name, ann.String(), containers.String())
}

var accountRuns atomic.Int32

// seedAccounts creates one ECR repository in each account, as that account
// would, and pushes a tag to each.
func seedAccounts(t *testing.T) (prd, qa, dev ecrRepo) {
	t.Helper()
	ctx := t.Context()
	run := accountRuns.Add(1)
	prd = ecrRepo{prdAccount, fmt.Sprintf("lrl_acct_prd_%d", run)}
	qa = ecrRepo{qaAccount, fmt.Sprintf("lrl_acct_qa_%d", run)}
	dev = ecrRepo{devAccount, fmt.Sprintf("lrl_acct_dev_%d", run)}
	base := moto.ECR(testpeers.SeedRegion)
	if err := testpeers.CreateRepository(ctx, base, prd.account, prd.name); err != nil {
		t.Fatal(err)
	}
	if _, err := testpeers.PushImage(ctx, base, prd.account, prd.name, "qa-sha-prd0001"); err != nil {
		t.Fatal(err)
	}
	for _, r := range []ecrRepo{qa, dev} {
		c, err := moto.AssumedECR(ctx, testpeers.SeedRegion, roleARN(r.account))
		if err != nil {
			t.Fatal(err)
		}
		if err := testpeers.CreateRepository(ctx, c, r.account, r.name); err != nil {
			t.Fatal(err)
		}
		if _, err := testpeers.PushImage(ctx, c, r.account, r.name, "qa-sha-"+r.account[:4]+"001"); err != nil {
			t.Fatal(err)
		}
	}
	return prd, qa, dev
}

func TestThreeAccountsListedOncePerCycle(t *testing.T) {
	needPeers(t)
	prd, qa, dev := seedAccounts(t)
	proxy := testpeers.NewECRProxy(moto.Endpoint)
	defer proxy.Close()

	e := &env{dir: t.TempDir()}
	root := filepath.Join(e.dir, "remote")
	os.MkdirAll(root, 0o755)
	var err error
	if e.git, err = testpeers.NewGitServer(root, gitUser, gitToken); err != nil {
		t.Fatal(err)
	}
	defer e.git.Close()
	urlA, err := e.git.InitRepo("team-a", "main", map[string]string{"deploy.yaml": policyDeployment("a", []ecrRepo{prd, qa, dev})})
	if err != nil {
		t.Fatal(err)
	}
	urlB, err := e.git.InitRepo("team-b", "main", map[string]string{"deploy.yaml": policyDeployment("b", []ecrRepo{qa, dev})})
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(e.dir, "token")
	os.WriteFile(tokenFile, []byte(gitToken), 0o600)
	e.config = filepath.Join(e.dir, "imagebutler.yaml")
	os.WriteFile(e.config, []byte(fmt.Sprintf(`stateDir: %s
listen: ""
aws:
  region: us-east-2
  endpoint: %s
  accounts:
    %q: {roleARN: %q}
    %q: {roleARN: %q}
git:
  author: {name: %q, email: %q}
repositories:
  - {url: %s, branch: main, auth: {username: %s, tokenFile: %s}}
  - {url: %s, branch: main, auth: {username: %s, tokenFile: %s}}
`, filepath.Join(e.dir, "state"), proxy.URL, qaAccount, roleARN(qaAccount), devAccount, roleARN(devAccount),
		butlerName, butlerEmail, urlA, gitUser, tokenFile, urlB, gitUser, tokenFile)), 0o644)

	stdout, stderr, code := e.once(t)
	if code != 0 || strings.Count(stdout, "3 change(s), pushed") != 1 || strings.Count(stdout, "2 change(s), pushed") != 1 {
		t.Fatalf("once: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	calls := proxy.Calls()
	byRepo := map[string][]testpeers.ECRCall{}
	for _, c := range calls {
		byRepo[c.Repository] = append(byRepo[c.Repository], c)
	}
	for _, r := range []ecrRepo{prd, qa, dev} {
		got := byRepo[r.name]
		if len(got) != 1 {
			t.Errorf("%s: %d DescribeImages calls in one cycle, want 1", r.name, len(got))
			continue
		}
		if got[0].RegistryID != r.account {
			t.Errorf("%s: RegistryId %q, want %s", r.name, got[0].RegistryID, r.account)
		}
		assumed := strings.HasPrefix(got[0].AccessKey, "ASIA")
		if wantAssumed := r.account != prdAccount; assumed != wantAssumed {
			t.Errorf("%s: signed with %s; assumed role = %v, want %v", r.name, got[0].AccessKey, assumed, wantAssumed)
		}
	}
	if len(calls) != 3 {
		t.Errorf("DescribeImages calls = %d, want 3", len(calls))
	}
	// Each marker got its own account's tag.
	bare := filepath.Join(root, "team-a.git")
	file := gitOut(t, bare, "show", "main:deploy.yaml")
	for _, want := range []string{prd.name + ":qa-sha-prd0001", qa.name + ":qa-sha-4743001", dev.name + ":qa-sha-4087001"} {
		if !strings.Contains(file, want) {
			t.Errorf("team-a deploy.yaml lacks %s:\n%s", want, file)
		}
	}
}

// TestECRFaults puts a proxy answering with throttling, 500s and a hang in
// front of moto and runs cycles in-process, to read the metrics.
func TestECRFaults(t *testing.T) {
	t.Parallel() // mostly waiting: with the other slow waiters, after the rest
	needPeers(t)
	prd, _, _ := seedAccounts(t)
	proxy := testpeers.NewECRProxy(moto.Endpoint)
	defer proxy.Close()
	ge := newGitEnv(t, "faults")
	// This repository holds one policy only: the fault queue is its own.
	work := filepath.Join(ge.dir, "seedwork")
	gitOut(t, "", "clone", "--quiet", ge.bare, work)
	gitOut(t, work, "rm", "--quiet", "-r", "apps")
	os.WriteFile(filepath.Join(work, "deploy.yaml"), []byte(policyDeployment("f", []ecrRepo{prd})), 0o644)
	gitOut(t, work, "add", "--all")
	gitOut(t, work, "commit", "--quiet", "-m", "policy")
	gitOut(t, work, "push", "--quiet", "origin", "main")

	ge.cfg.AWS = config.AWS{Region: "us-east-2", Endpoint: proxy.URL, MaxConcurrentRequests: 4, RequestsPerSecond: 100,
		RequestTimeout: config.Duration(5 * time.Second), MaxAttempts: 5, MaxBackoff: config.Duration(100 * time.Millisecond)}
	reg := prometheus.NewRegistry()
	m := scanner.NewMetrics(reg)
	lister, err := scanner.NewECR(t.Context(), ge.cfg.AWS, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s := scanner.New(ge.cfg, lister, slog.New(slog.NewTextHandler(io.Discard, nil)), scanner.WithMetrics(m))

	// Two throttles, a 500 and a hang, then moto: the fifth attempt lands.
	proxy.Inject(testpeers.Throttle, testpeers.Throttle, testpeers.Fail500, testpeers.Hang)
	r := s.RunOnce(context.Background())[0]
	if r.Err != nil || r.Commit == "" {
		t.Fatalf("cycle through faults: err %v, commit %q", r.Err, r.Commit)
	}
	for outcome, want := range map[string]float64{"ThrottlingException": 2, "ServerException": 1, "timeout": 1, "ok": 1} {
		if got := testutil.ToFloat64(metricECR(t, reg, outcome)); got != want {
			t.Errorf("ecr requests with outcome %s = %v, want %v", outcome, got, want)
		}
	}

	// ECR failing throughout: the repository fails this cycle, naming the
	// code and the ECR repository; the markers stay as they are.
	proxy.Always(testpeers.Fail500)
	start := time.Now()
	r = s.RunOnce(context.Background())[0]
	if r.Err == nil || !strings.Contains(r.Err.Error(), "ServerException on "+prdAccount+"/"+prd.name+" in us-east-2") {
		t.Errorf("cycle with ECR down: err = %v", r.Err)
	}
	if r.Commit != "" {
		t.Errorf("a commit was made with ECR down: %s", r.Commit)
	}
	t.Logf("with ECR down the cycle gave up after %s", time.Since(start).Round(10*time.Millisecond))
	proxy.Always(testpeers.Pass)
}

func metricECR(t *testing.T, reg *prometheus.Registry, outcome string) prometheus.Collector {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
	for _, f := range families {
		if f.GetName() != "imagebutler_ecr_requests_total" {
			continue
		}
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					g.Set(mt.GetCounter().GetValue())
				}
			}
		}
	}
	return g
}
