package cluster

import (
	"maps"
	"slices"
	"time"
)

// Status is what /status shows of this replica's part in the cluster.
type Status struct {
	Identity string `json:"identity"`
	// Shards is how many shards there are; Held the ones this replica holds.
	Shards int   `json:"shards"`
	Held   []int `json:"held"`
	// Releasing are held shards being let go of once their passes end.
	Releasing []int `json:"releasing,omitempty"`
	// Replicas are the live replicas' identities, this one among them.
	Replicas []string `json:"replicas"`
	// LastContact is when the API server last answered a tick in full.
	LastContact time.Time `json:"lastContact,omitzero"`
	// Error is the last tick's failure, "" once one succeeds.
	Error string `json:"error,omitempty"`
	// Writing says whether this replica may push now: every Lease it holds
	// was renewed within the renew deadline.
	Writing bool `json:"writing"`
}

// Status returns this replica's part in the cluster as of now.
func (m *Member) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := Status{Identity: m.cfg.Identity, Shards: m.cfg.Shards, Held: []int{}, Replicas: slices.Clone(m.replicas),
		LastContact: m.contact, Writing: true}
	now := m.now()
	for _, n := range slices.Sorted(maps.Keys(m.held)) {
		h := m.held[n]
		st.Held = append(st.Held, n)
		if h.releasing {
			st.Releasing = append(st.Releasing, n)
		}
		if now.Sub(h.renewed) >= time.Duration(m.cfg.RenewDeadline) {
			st.Writing = false
		}
	}
	if m.lastErr != nil {
		st.Error = m.lastErr.Error()
	}
	return st
}
