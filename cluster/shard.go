package cluster

import "hash/fnv"

// Shard returns the shard of the repository named name (config.Repository.Name:
// its URL without credentials, "@", its branch) among n shards: the 32-bit
// FNV-1a hash of the name, modulo n. It depends on nothing else, so every
// replica of every version agrees on it; changing the number of shards moves
// repositories between shards, not between names.
func Shard(name string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32() % uint32(n))
}

// Share is how many of shards the replica ranked rank (0-based, among the
// live replicas' identities sorted) should hold when there are replicas
// live ones: ⌊shards/replicas⌋, one more for the first shards%replicas
// ranks. The shares of all ranks add up to shards.
func Share(shards, replicas, rank int) int {
	if replicas < 1 {
		return shards
	}
	n := shards / replicas
	if rank < shards%replicas {
		n++
	}
	return n
}
