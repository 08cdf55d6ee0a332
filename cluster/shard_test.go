package cluster

import "testing"

// TestShard pins the hash: a repository's shard must never change between
// versions, or replicas of two versions (a rolling update) would both work
// on it.
func TestShard(t *testing.T) {
	for _, c := range []struct {
		name   string
		shards int
		want   int
	}{
		{"https://github.com/example/gitops.git@main", 16, 11},
		{"https://github.com/example/gitops.git@main", 1024, 555},
		{"https://github.com/example/gitops.git@release", 16, 3},
		{"ssh://git@github.com/org/apps.git@main", 16, 10},
		{"ssh://git@github.com/org/apps.git@main", 1, 0},
		{"", 16, 5},
	} {
		if got := Shard(c.name, c.shards); got != c.want {
			t.Errorf("Shard(%q, %d) = %d, want %d", c.name, c.shards, got, c.want)
		}
	}
}

func TestShare(t *testing.T) {
	for _, c := range []struct {
		shards, replicas int
		want             []int // by rank
	}{
		{16, 1, []int{16}},
		{16, 3, []int{6, 5, 5}},
		{16, 4, []int{4, 4, 4, 4}},
		{16, 5, []int{4, 3, 3, 3, 3}},
		{2, 3, []int{1, 1, 0}},
	} {
		for rank, want := range c.want {
			if got := Share(c.shards, c.replicas, rank); got != want {
				t.Errorf("Share(%d, %d, %d) = %d, want %d", c.shards, c.replicas, rank, got, want)
			}
		}
	}
	// The shares always add up to the shards, each ⌊S/R⌋ or ⌈S/R⌉.
	for s := 1; s <= 64; s++ {
		for r := 1; r <= 20; r++ {
			sum := 0
			for rank := range r {
				n := Share(s, r, rank)
				if n < s/r || n > (s+r-1)/r {
					t.Fatalf("Share(%d, %d, %d) = %d", s, r, rank, n)
				}
				sum += n
			}
			if sum != s {
				t.Fatalf("shares of %d shards over %d replicas add up to %d", s, r, sum)
			}
		}
	}
}
