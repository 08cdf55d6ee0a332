package cluster

import (
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReplicas runs `imagebutler run` replicas over 40 repositories with 16
// shard Leases on a real kube-apiserver, as the service account the
// kustomize example's Role binds, through every way a replica comes and
// goes. Throughout, each repository gets one butler commit per new tag,
// each the child of the one before (checkHistories). Times are logged; the
// bounds asserted are the waits' three minutes, since the machine may be
// loaded: the closing notes report what was measured.
func TestReplicas(t *testing.T) {
	f := newFleet(t, fleetConfig{schedule: "@every 10s"})

	// Three replicas spread the shards 6/5/5.
	start := time.Now()
	a, b, c := f.start("replica-a"), f.start("replica-b"), f.start("replica-c")
	f.waitBalanced(a.name, b.name, c.name)
	t.Logf("3 replicas started: shards spread 6/5/5 %s after start", time.Since(start).Round(100*time.Millisecond))
	for _, r := range []*replica{a, b, c} {
		var st = f.statusOf(r)
		if len(st.Replicas) != 3 || st.Shards != shards || !st.Writing {
			t.Errorf("%s: /status cluster = %+v", r.name, st)
		}
	}

	// Lease writes in a steady state, over 10 s.
	w0, t0 := a.writes()+b.writes()+c.writes(), time.Now()
	time.Sleep(10 * time.Second)
	w1 := a.writes() + b.writes() + c.writes()
	t.Logf("Lease writes, 3 replicas, 16 shards, retry period %s: %.1f/s", retryPeriod, (w1-w0)/time.Since(t0).Seconds())

	// A new tag: every repository updated once.
	f.pushTag("1.1.0")
	t.Logf("1.1.0 in every repository %s after the push", f.waitAllAt("1.1.0").Round(100*time.Millisecond))

	// kill -9 of a holder: its shards are taken once its Leases expire, and
	// a tag pushed meanwhile lands everywhere.
	h, err := f.holders()
	if err != nil {
		t.Fatal(err)
	}
	var aShards []int
	for n, who := range h {
		if who == a.name {
			aShards = append(aShards, n)
		}
	}
	a.signal(syscall.SIGKILL)
	<-a.done
	killed := time.Now()
	f.pushTag("1.2.0")
	f.waitUntil("replica-a's shards taken", func() bool {
		h, err := f.holders()
		if err != nil {
			return false
		}
		for _, n := range aShards {
			if h[n] == a.name || h[n] == "" {
				return false
			}
		}
		return true
	})
	took := time.Since(killed) // the wait started after the push
	f.waitBalanced(b.name, c.name)
	f.waitAllAt("1.2.0")
	t.Logf("kill -9: %d shards taken %s after the kill (lease %s + retry %s = %s); 1.2.0 everywhere %s after the kill",
		len(aShards), took.Round(100*time.Millisecond), leaseDuration, retryPeriod, leaseDuration+retryPeriod, time.Since(killed).Round(100*time.Millisecond))

	// A replica joining takes its share; then a fourth one.
	d := f.start("replica-d")
	t.Logf("a third replica joining: spread again %s after its start", f.waitBalanced(b.name, c.name, d.name).Round(100*time.Millisecond))
	e := f.start("replica-e")
	t.Logf("a fourth replica joining: 4 shards each %s after its start (two lease durations: %s)", f.waitBalanced(b.name, c.name, d.name, e.name).Round(100*time.Millisecond), 2*leaseDuration)

	// SIGTERM: the replica ends its passes, releases its shards and leaves;
	// the others take them on their next tick.
	b.signal(syscall.SIGTERM)
	<-b.done
	took = f.waitUntil("replica-b's shards taken", func() bool {
		h, err := f.holders()
		if err != nil {
			return false
		}
		for _, who := range h {
			if who == b.name || who == "" {
				return false
			}
		}
		return true
	})
	t.Logf("SIGTERM: every shard held by another replica %s after replica-b exited (retry period %s)", took.Round(100*time.Millisecond), retryPeriod)
	if !strings.Contains(b.logs.String(), "left the cluster") {
		t.Errorf("replica-b did not log that it left the cluster")
	}
	f.waitBalanced(c.name, d.name, e.name)

	// kill -STOP of a holder for two lease durations: the others take its
	// shards; once resumed it finds them gone and pushes nothing (every
	// push is fenced by its renewal, and git refuses a stale head anyway).
	c.signal(syscall.SIGSTOP)
	stopped := time.Now()
	f.pushTag("1.3.0")
	f.waitBalanced(d.name, e.name)
	t.Logf("SIGSTOP: replica-c's shards taken %s after it was frozen", time.Since(stopped).Round(100*time.Millisecond))
	f.waitAllAt("1.3.0")
	time.Sleep(max(0, 2*leaseDuration-time.Since(stopped)))
	c.signal(syscall.SIGCONT)
	resumed := time.Now()
	f.waitBalanced(c.name, d.name, e.name)
	t.Logf("SIGCONT: replica-c back in the spread %s after it resumed", time.Since(resumed).Round(100*time.Millisecond))
	logs := c.logs.String()
	if !strings.Contains(logs, "another replica took a shard") && !strings.Contains(logs, "another replica wrote a shard") {
		t.Errorf("replica-c, resumed, did not notice its shards were taken")
	}
	t.Logf("SIGCONT: replica-c refused %d writes of its own, its renewal too old", strings.Count(logs, "past the renew deadline"))

	// The API server stopped for 30 s: once the renew deadline has passed no
	// replica pushes (a tag pushed then waits); all resume after.
	f.kube.StopAPIServer()
	down := time.Now()
	time.Sleep(renewDeadline + retryPeriod)
	for _, r := range []*replica{c, d, e} {
		st := f.statusOf(r)
		if st.Writing || st.Error == "" {
			t.Errorf("%s with the API server down: /status cluster = %+v, want writing false and the error", r.name, st)
		}
	}
	before := f.heads()
	f.pushTag("1.4.0")
	time.Sleep(30*time.Second - time.Since(down))
	if after := f.heads(); !slices.Equal(before, after) {
		t.Errorf("a replica pushed while the API server was down")
	}
	for _, r := range []*replica{c, d, e} {
		if !strings.Contains(r.logs.String(), "not pushed: shard") && !strings.Contains(r.logs.String(), "not writing until it is renewed") {
			t.Logf("%s logged no refused push (it may have had nothing to push in its shards)", r.name)
		}
	}
	if err := f.kube.StartAPIServer(t.Context()); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	f.waitAllAt("1.4.0")
	t.Logf("API server down 30 s: 1.4.0 everywhere %s after it was up again", time.Since(up).Round(100*time.Millisecond))
	f.waitBalanced(c.name, d.name, e.name)

	f.checkHistories("1.1.0", "1.2.0", "1.3.0", "1.4.0")
	// /status names each repository's shard.
	st := f.fullStatus(c)
	for _, rs := range st.Repositories {
		if rs.Shard == nil {
			t.Errorf("%s: /status repository %s has no shard", c.name, rs.Name)
		}
	}
	if got := c.metric("imagebutler_shards_held"); got < 5 || got > 6 {
		t.Errorf("replica-c imagebutler_shards_held = %v, want 5 or 6", got)
	}
}
