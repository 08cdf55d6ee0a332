// Command soak measures `imagebutler run` over many cycles: it serves a fake
// ECR (every repository holds the same 1,000 tags) and 20 local git
// repositories, runs the binary with a one-second schedule, and reports the
// process's RSS at cycles 50 and 100, its peak RSS, and its CPU time per
// no-change cycle.
//
//	go run ./integration/soak [-cycles 100] [-repos 20] [-tags 1000]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
)

func main() {
	cycles := flag.Int("cycles", 100, "cycles to run")
	repos := flag.Int("repos", 20, "git repositories")
	tags := flag.Int("tags", 1000, "tags per ECR repository")
	flag.Parse()
	if err := run(*cycles, *repos, *tags); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func run(cycles, repos, tags int) error {
	dir, err := os.MkdirTemp("", "imagebutler-soak-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	ecr := httptest.NewServer(fakeECR(tags))
	defer ecr.Close()

	var cfg strings.Builder
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	// requestsPerSecond: the fake answers at once; at the default 20, the
	// 200 pages of a cycle would take 10 s.
	fmt.Fprintf(&cfg, "schedule: \"@every 1s\"\nstateDir: %s\nlisten: \"127.0.0.1:%d\"\naws: {region: us-east-2, endpoint: %q, requestsPerSecond: 1000}\ngit:\n  author: {name: butler, email: butler@example.com}\nrepositories:\n",
		filepath.Join(dir, "state"), port, ecr.URL)
	srv, err := testpeers.NewGitServer(filepath.Join(dir, "remote"), "", "")
	if err != nil {
		return err
	}
	defer srv.Close()
	os.MkdirAll(srv.Root, 0o755)
	for i := range repos {
		deploy := fmt.Sprintf("kind: Deployment\nmetadata:\n  name: app%d\n  namespace: apps\n  annotations:\n    app.lilly.com/flux.automated: \"true\"\n    app.lilly.com/flux.simple.app%d: \"283234040926;repo_%02d;glob:sha-*\"\nspec:\n  template:\n    spec:\n      containers:\n        - image: 283234040926.dkr.ecr.us-east-2.amazonaws.com/repo_%02d:old # {\"$imagepolicy\": \"apps:app%d\"}\n", i, i, i, i, i)
		if _, err := srv.InitRepo(fmt.Sprintf("app%02d", i), "main", map[string]string{"deploy.yaml": deploy}); err != nil {
			return err
		}
		fmt.Fprintf(&cfg, "  - {url: %s, branch: main}\n", filepath.Join(srv.Root, fmt.Sprintf("app%02d.git", i)))
	}
	cfgFile := filepath.Join(dir, "imagebutler.yaml")
	os.WriteFile(cfgFile, []byte(cfg.String()), 0o644)

	bin := filepath.Join(dir, "imagebutler")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/imagebutler").CombinedOutput(); err != nil {
		return fmt.Errorf("building: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "run", "--config", cfgFile, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=soak", "AWS_SECRET_ACCESS_KEY=soak")
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Process.Kill()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	type sample struct {
		cycle int
		rss   int64 // KiB
		cpu   time.Duration
	}
	var samples []sample
	start := time.Now()
	for _, at := range []int{2, cycles / 2, cycles} {
		for status(base) < at {
			time.Sleep(100 * time.Millisecond)
		}
		s := sample{cycle: at, rss: rssKiB(cmd.Process.Pid), cpu: cpuTime(cmd.Process.Pid)}
		samples = append(samples, s)
		fmt.Printf("cycle %3d after %5.1fs: RSS %6.1f MiB, CPU %v\n", at, time.Since(start).Seconds(), float64(s.rss)/1024, s.cpu.Round(time.Millisecond))
	}
	a, b := samples[1], samples[2]
	fmt.Printf("%d repositories x %d tags: RSS %.1f MiB at cycle %d, %.1f MiB at cycle %d (%+.1f MiB), peak %.1f MiB; CPU per no-change cycle %v\n",
		repos, tags, float64(a.rss)/1024, a.cycle, float64(b.rss)/1024, b.cycle, float64(b.rss-a.rss)/1024,
		float64(statusKiB(cmd.Process.Pid, "VmHWM:"))/1024, ((b.cpu - a.cpu) / time.Duration(b.cycle-a.cycle)).Round(100*time.Microsecond))
	cmd.Process.Signal(syscall.SIGTERM)
	return cmd.Wait()
}

// fakeECR answers DescribeImages with the same tags for every repository,
// each image described with the fields ECR gives an image, in pages of at
// most 1,000 images (ECR's largest; imagebutler asks for it) chained by
// nextToken.
func fakeECR(tags int) http.Handler {
	type detail struct {
		Registry     string   `json:"registryId"`
		Repository   string   `json:"repositoryName"`
		Digest       string   `json:"imageDigest"`
		Tags         []string `json:"imageTags"`
		PushedAt     float64  `json:"imagePushedAt"`
		Status       string   `json:"imageStatus"`
		ManifestType string   `json:"imageManifestMediaType"`
		ArtifactType string   `json:"artifactMediaType"`
		Size         int64    `json:"imageSizeInBytes"`
	}
	const perPage = 1000
	var pages [][]byte
	for start := 0; start == 0 || start < tags; start += perPage { // one page, empty, for no tags
		details := make([]detail, min(perPage, tags-start))
		for k := range details {
			i := start + k
			details[k] = detail{"283234040926", "repo", fmt.Sprintf("sha256:%064d", i), []string{fmt.Sprintf("sha-%07d", i)}, float64(1_700_000_000 + i), "ACTIVE",
				"application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.container.image.v1+json", 52_428_800}
		}
		page := map[string]any{"imageDetails": details}
		if start+perPage < tags {
			page["nextToken"] = strconv.Itoa(len(pages) + 1)
		}
		body, _ := json.Marshal(page)
		pages = append(pages, body)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			NextToken string `json:"nextToken"`
		}
		json.NewDecoder(r.Body).Decode(&in)
		io.Copy(io.Discard, r.Body)
		n, _ := strconv.Atoi(in.NextToken)
		if n >= len(pages) {
			http.Error(w, `{"__type":"InvalidParameterException","message":"bad nextToken"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("Content-Length", strconv.Itoa(len(pages[n])))
		w.Write(pages[n])
	})
}

func status(base string) int {
	resp, err := http.Get(base + "/status")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var st struct{ Cycles int }
	json.NewDecoder(resp.Body).Decode(&st)
	return st.Cycles
}

func rssKiB(pid int) int64 { return statusKiB(pid, "VmRSS:") }

// statusKiB is the field (VmRSS:, VmHWM:, ...) of /proc/PID/status, in KiB.
func statusKiB(pid int, field string) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

// cpuTime is user plus system time of the process, from /proc/PID/stat.
func cpuTime(pid int) time.Duration {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(b)
	fields := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}
