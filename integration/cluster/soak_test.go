package cluster

import (
	"bufio"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSoakReplicas measures what sharing the work buys on one machine: 1,000
// small repositories (IMAGEBUTLER_SOAK_REPOS), first one replica without a
// cluster, then three with 16 shards and the default Lease timings (15 s /
// 10 s / 2 s): how long until every repository holds a new tag, and the
// Lease writes a second. Minutes of load, so it runs only with
// IMAGEBUTLER_SOAK=1; docs/replicas.md gives the figures it measured. It
// asserts that every repository got each tag once.
func TestSoakReplicas(t *testing.T) {
	if os.Getenv("IMAGEBUTLER_SOAK") != "1" {
		t.Skip("minutes of load: IMAGEBUTLER_SOAK=1 runs it")
	}
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("IMAGEBUTLER_SOAK_REPOS")); err == nil && v > 0 {
		n = v
	}
	f := newFleet(t, fleetConfig{schedule: "@every 10s", repos: n, lease: 15 * time.Second, renew: 10 * time.Second, retry: 2 * time.Second})
	f.patience = 30 * time.Minute

	// One replica, no cluster: its first cycle clones every repository.
	start := time.Now()
	solo := f.startAlone("solo")
	f.waitUntil("the single replica's first cycle", func() bool { return status(solo.base+"/readyz") == http.StatusOK })
	t.Logf("1 replica: first cycle (%d clones) done %s after start", n, time.Since(start).Round(time.Second))
	f.pushTag("1.1.0")
	pushed := time.Now()
	f.waitUntil("1.1.0 committed everywhere by one replica", func() bool { return solo.commits() >= float64(n) })
	t.Logf("1 replica: 1.1.0 in all %d repositories %s after the push", n, time.Since(pushed).Round(time.Second))
	solo.signal(syscall.SIGTERM)
	<-solo.done

	// Three replicas sharing 16 shards, each with working copies of its own.
	start = time.Now()
	rs := []*replica{f.start("replica-a"), f.start("replica-b"), f.start("replica-c")}
	f.waitBalanced("replica-a", "replica-b", "replica-c")
	h, err := f.holders()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		f.waitPassed(r, h)
	}
	t.Logf("3 replicas: shards spread and every repository cloned %s after start", time.Since(start).Round(time.Second))
	w0, t0 := 0.0, time.Now()
	for _, r := range rs {
		w0 += r.writes()
	}
	time.Sleep(30 * time.Second)
	w1 := 0.0
	for _, r := range rs {
		w1 += r.writes()
	}
	t.Logf("3 replicas, 16 shards, retry 2 s: %.1f Lease writes a second", (w1-w0)/time.Since(t0).Seconds())
	f.pushTag("1.2.0")
	pushed = time.Now()
	f.waitUntil("1.2.0 committed everywhere by three replicas", func() bool {
		sum := 0.0
		for _, r := range rs {
			sum += r.commits()
		}
		return sum >= float64(n)
	})
	t.Logf("3 replicas: 1.2.0 in all %d repositories %s after the push", n, time.Since(pushed).Round(time.Second))
	f.checkHistories("1.1.0", "1.2.0")
}

// status is the HTTP status of GET url, 0 when it fails.
func status(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// commits is the commits r pushed, summed over its repositories.
func (r *replica) commits() float64 {
	resp, err := http.Get(r.base + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "imagebutler_commits_total{"); ok {
			_, v, _ := strings.Cut(line, "} ")
			x, _ := strconv.ParseFloat(v, 64)
			sum += x
		}
	}
	return sum
}
