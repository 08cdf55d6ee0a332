// Package cluster spreads the repositories over the replicas that run with
// the same settings, through Kubernetes Leases (coordination.k8s.io/v1):
// a repository belongs to one of N shards (Shard, a stable hash of its
// name), each shard has one Lease, and each replica keeps a Lease of its own
// to say it is alive. Every replica takes free shards up to its fair share
// of the live replicas (⌊N/R⌋ or ⌈N/R⌉) and lets go of the ones above it,
// so that the shards spread out again by themselves when a replica starts,
// stops or dies.
//
// The Leases keep replicas from doing the same work; they are not a perfect
// fence, and need not be: every write the butler makes is a compare-and-swap
// on git (a push names the old head), so a replica that pushes after it lost
// its shard loses nothing. Member.Fence, checked before every push and every
// forge call that changes something, still refuses once the last renewal
// is older than the renew deadline (a replica cut off from the API server,
// or resumed after being frozen).
package cluster
