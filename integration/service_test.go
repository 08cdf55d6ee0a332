package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
	"github.com/imagebutler/imagebutler/scanner"
)

// serviceRuns numbers the runs of TestServiceMode (-count), each with its
// own ECR repository: other tests expect the seed repository's tags.
var serviceRuns int

// TestServiceMode starts `imagebutler run` as a process against moto and git
// http-backend, watches it become ready and follow a new ECR push, reads
// /status and /metrics, and stops it with SIGTERM.
func TestServiceMode(t *testing.T) {
	needPeers(t)
	ctx := t.Context()
	serviceRuns++
	serviceRepo := fmt.Sprintf("lrl_falcon_service_%d", serviceRuns)
	c := moto.ECR(testpeers.SeedRegion)
	if err := testpeers.CreateRepository(ctx, c, testpeers.SeedAccount, serviceRepo); err != nil {
		t.Fatal(err)
	}
	if _, err := testpeers.PushImage(ctx, c, testpeers.SeedAccount, serviceRepo, "qa-sha-0000001"); err != nil {
		t.Fatal(err)
	}
	e := setupRepo(t, "service", strings.ReplaceAll(testpeers.SeedDeployment, testpeers.SeedRepository, serviceRepo))
	port := freePort(t)
	cfg, _ := os.ReadFile(e.config)
	cfg = []byte(strings.Replace(string(cfg), `listen: ""`, fmt.Sprintf("listen: \"127.0.0.1:%d\"\nschedule: \"@every 2s\"", port), 1))
	os.WriteFile(e.config, cfg, 0o644)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	cmd := exec.Command(binary, "run", "--config", e.config, "--grace", "10s")
	logs, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		logMu    sync.Mutex
		logLines []string
		started  = make(chan struct{}, 100) // one per "cycle started" line
	)
	logsDone := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			logMu.Lock()
			logLines = append(logLines, sc.Text())
			logMu.Unlock()
			if strings.Contains(sc.Text(), `"msg":"cycle started"`) {
				select {
				case started <- struct{}{}:
				default:
				}
			}
		}
		close(logsDone)
	}()
	defer cmd.Process.Kill()

	// Ready after the first cycle, which moves the marker to the only tag.
	waitFor(t, "readyz", func() bool { return get(base+"/readyz") == 200 })
	if got := get(base + "/healthz"); got != 200 {
		t.Errorf("/healthz = %d", got)
	}
	waitFor(t, "first commit", func() bool { return strings.HasSuffix(markerOnMain(t, e), "qa-sha-0000001") })

	// A newer push shows up as a commit.
	time.Sleep(1100 * time.Millisecond) // moto keeps whole seconds
	if _, err := testpeers.PushImage(ctx, c, testpeers.SeedAccount, serviceRepo, "qa-sha-0000002"); err != nil {
		t.Fatal(err)
	}
	pushed := time.Now()
	waitFor(t, "commit of the new tag", func() bool { return strings.HasSuffix(markerOnMain(t, e), "qa-sha-0000002") })
	t.Logf("new tag committed %s after the ECR push (schedule @every 2s)", time.Since(pushed).Round(100*time.Millisecond))

	var st scanner.Status
	waitFor(t, "status of the new tag", func() bool {
		st = scanner.Status{}
		getJSON(t, base+"/status", &st)
		return len(st.Repositories) == 1 && len(st.Repositories[0].Policies) == 1 && st.Repositories[0].Policies[0].Tag == "qa-sha-0000002"
	})
	rs := st.Repositories[0]
	p := rs.Policies[0]
	if p.ID != "falcon-qa:my-policy-bartender" || p.State != scanner.PolicyResolved || p.Image != testpeers.SeedAccount+".dkr.ecr.us-east-2.amazonaws.com/"+serviceRepo ||
		p.Filter != "glob:qa-sha-.*" || p.Order != "newest" || p.Seen != 2 || p.Digest == "" || p.PushedAt.IsZero() {
		t.Errorf("policy status = %+v", p)
	}
	if len(rs.Markers) != 1 || rs.Markers[0].Location != "apps/bartender/deployment.yaml:24" || !strings.HasSuffix(rs.Markers[0].Value, "qa-sha-0000002") {
		t.Errorf("marker status = %+v", rs.Markers)
	}
	if rs.Outcome == "failed" || rs.Head == "" || st.Cycles < 2 {
		t.Errorf("repository status = %+v, cycles %d", rs, st.Cycles)
	}

	metrics := body(t, base+"/metrics")
	for _, want := range []string{
		`imagebutler_cycles_total{result="success"}`,
		fmt.Sprintf(`imagebutler_commits_total{repository="%s@main"} 2`, e.remote),
		`imagebutler_ecr_requests_total{operation="DescribeImages",outcome="ok"}`,
		`imagebutler_policies{state="resolved"} 1`,
		`imagebutler_markers_without_policy 0`,
		`imagebutler_last_success_timestamp_seconds{repository=`,
		`imagebutler_cycle_duration_seconds_count`,
		fmt.Sprintf(`imagebutler_repository_failures_total{repository="%s@main"} 0`, e.remote),
		fmt.Sprintf(`imagebutler_repository_last_attempt_timestamp_seconds{repository="%s@main"} `, e.remote),
		`imagebutler_build_info{commit="`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// SIGTERM as a cycle starts, with a new tag to commit: exits 0 within the
	// grace period, and the remote holds whole commits only.
	time.Sleep(1100 * time.Millisecond)
	if _, err := testpeers.PushImage(ctx, c, testpeers.SeedAccount, serviceRepo, "qa-sha-0000003"); err != nil {
		t.Fatal(err)
	}
	for len(started) > 0 {
		<-started
	}
	<-started
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("run exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("run did not exit within 90s of SIGTERM (grace is 25s)")
	}
	<-logsDone
	if _, err := testpeers.Git(e.bareDir(), "fsck", "--strict"); err != nil {
		t.Errorf("remote after SIGTERM: %v", err)
	}
	if v := markerOnMain(t, e); !strings.HasSuffix(v, "qa-sha-0000002") && !strings.HasSuffix(v, "qa-sha-0000003") {
		t.Errorf("marker after SIGTERM = %s", v)
	}
	var sawJSON bool
	for _, l := range logLines {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "repository done" && m["repo"] == e.remote+"@main" {
			sawJSON = true
		}
	}
	if !sawJSON {
		t.Errorf("no JSON log line per repository; logs:\n%s", strings.Join(logLines, "\n"))
	}
}

// butlerRun is an `imagebutler run` a test started.
type butlerRun struct {
	cmd  *exec.Cmd
	logs *syncBuffer // its stdout and stderr
	once sync.Once
}

// startRun starts `imagebutler run --config config`. It is stopped (SIGTERM,
// then waited for) when the test ends, and its logs are printed when the
// test failed.
func startRun(t *testing.T, config string) *butlerRun {
	t.Helper()
	r := &butlerRun{cmd: exec.Command(binary, "run", "--config", config), logs: &syncBuffer{}}
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("imagebutler run logs:\n%s", r.logs.String())
		}
	})
	return r
}

// stop ends the run (once) and waits for it.
func (r *butlerRun) stop() {
	r.once.Do(func() {
		r.cmd.Process.Signal(syscall.SIGTERM)
		r.cmd.Wait()
	})
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func get(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func body(t testing.TB, url string) string {
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func getJSON(t testing.TB, url string, v any) {
	if err := json.Unmarshal([]byte(body(t, url)), v); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond for up to three minutes: generous, since this machine may be
// busy; the test asserts what happens, not how fast.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testpeers.WaitFor(t, what, cond)
}

func markerOnMain(t testing.TB, e *env) string {
	out, err := testpeers.Git(e.bareDir(), "show", "main:apps/bartender/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "$imagepolicy") {
			f := strings.Fields(line)
			return f[1]
		}
	}
	return ""
}

func (e *env) bareDir() string {
	return filepath.Join(e.git.Root, strings.TrimPrefix(e.remote, e.git.URL+"/"))
}
