package cluster

import (
	"net/http"
	"testing"
)

// TestIdleReplica: with more replicas than shards, the one left without a
// shard is ready (its cycles run, over nothing), shows no repository and
// holds nothing, while the others hold one shard each.
func TestIdleReplica(t *testing.T) {
	f := newFleet(t, fleetConfig{schedule: "@every 10s", repos: 4, shards: 2})
	rs := []*replica{f.start("replica-a"), f.start("replica-b"), f.start("replica-c")}
	var idle *replica
	f.waitUntil("three replicas that see each other, two holding a shard each, one holding none", func() bool {
		for _, r := range rs {
			if st, err := r.clusterStatus(); err != nil || len(st.Replicas) != 3 {
				return false
			}
		}
		h, err := f.holders()
		if err != nil || len(h) != 2 || h[0] == "" || h[1] == "" || h[0] == h[1] {
			return false
		}
		idle = nil
		for _, r := range rs {
			if r.name != h[0] && r.name != h[1] {
				idle = r
			}
		}
		return idle != nil
	})
	f.waitUntil(idle.name+" ready", func() bool { return status(idle.base+"/readyz") == http.StatusOK })
	st := f.statusOf(idle)
	if len(st.Held) != 0 || len(st.Replicas) != 3 || !st.Writing {
		t.Errorf("%s: /status cluster = %+v, want no shard held among 3 replicas", idle.name, st)
	}
	if full := f.fullStatus(idle); len(full.Repositories) != 0 || full.Cycles == 0 {
		t.Errorf("%s: /status shows %d repositories after %d cycles, want none after one or more", idle.name, len(full.Repositories), full.Cycles)
	}
	if got := idle.metric("imagebutler_shards_held"); got != 0 {
		t.Errorf("%s: imagebutler_shards_held = %v, want 0", idle.name, got)
	}
}
