package scanner

import (
	"errors"

	"github.com/imagebutler/imagebutler/config"
)

// Sharder says which repositories this replica works on when several share
// them (cluster.Member), and whether it may write to one now.
type Sharder interface {
	// Begin starts a pass on the repository named repo; ok is false when
	// another replica works on it. end is called when the pass is over.
	Begin(repo string) (end func(), ok bool)
	// Fence is nil when this replica may push to the repository named repo,
	// or call its forge to change something, now.
	Fence(repo string) error
	// ShardOf is the shard of the repository named repo.
	ShardOf(repo string) int
	// Holds says whether this replica works on the repository named repo.
	Holds(repo string) bool
}

// ErrNotHeld says another replica works on the repository (Pass).
var ErrNotHeld = errors.New("another replica works on this repository")

// WithShards has a cycle work only on the repositories sh gives this
// replica, and every write to one fenced by sh.Fence.
func WithShards(sh Sharder) Option {
	return func(s *Scanner) { s.shards = sh }
}

// begin starts a pass on repo: ok is false when another replica works on it.
func (s *Scanner) begin(repo config.Repository) (end func(), ok bool) {
	if s.shards == nil {
		return func() {}, true
	}
	return s.shards.Begin(repo.Name())
}

// fence is nil when this replica may write to repo now.
func (s *Scanner) fence(repo config.Repository) error {
	if s.shards == nil {
		return nil
	}
	return s.shards.Fence(repo.Name())
}

// shardOf is repo's shard, -1 when the repositories are not sharded.
func (s *Scanner) shardOf(repo string) int {
	if s.shards == nil {
		return -1
	}
	return s.shards.ShardOf(repo)
}

// setShard fills rs.Shard when the repositories are sharded.
func (s *Scanner) setShard(rs *RepoStatus) {
	if n := s.shardOf(rs.Name); n >= 0 {
		rs.Shard = &n
	}
}
