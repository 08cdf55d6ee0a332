package scanner

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/imagebutler/imagebutler/policy"
)

// Status is what the last cycle did, for /status.
type Status struct {
	// Cycles counts the cycles finished since start.
	Cycles       int          `json:"cycles"`
	LastStarted  time.Time    `json:"lastStarted,omitzero"`
	LastFinished time.Time    `json:"lastFinished,omitzero"`
	Repositories []RepoStatus `json:"repositories"`
}

// RepoStatus is one repository's last cycle.
type RepoStatus struct {
	Name     string    `json:"name"`
	Time     time.Time `json:"time"`
	Duration string    `json:"duration"`
	// Outcome is "pushed", "up to date", "partial" (a commit was pushed but
	// some policies failed: Error says which), "failed", or "would push" in
	// a dry run.
	Outcome  string         `json:"outcome"`
	Error    string         `json:"error,omitempty"`
	Head     string         `json:"head,omitempty"`   // remote head synced to
	Commit   string         `json:"commit,omitempty"` // commit pushed this cycle, also when partial
	Policies []PolicyStatus `json:"policies"`
	Markers  []MarkerStatus `json:"markers"`
	Problems []string       `json:"problems,omitempty"`
	Changes  []ChangeStatus `json:"changes,omitempty"`
	// PullRequest links the repository's pull request, in pull-request mode.
	PullRequest *PullRequestStatus `json:"pullRequest,omitempty"`
	// LastPush is the butler's last commit pushed to the repository since
	// start, kept across the cycles that push nothing.
	LastPush *PushStatus `json:"lastPush,omitempty"`
	// Shard is the repository's shard when several replicas share the
	// repositories (cluster); absent otherwise.
	Shard *int `json:"shard,omitempty"`
}

// PushStatus is a commit the butler pushed.
type PushStatus struct {
	Commit string    `json:"commit"`
	Time   time.Time `json:"time"`
}

// carry keeps prev's last push in rs when rs pushed nothing.
func (rs *RepoStatus) carry(prev []RepoStatus) {
	if rs.Commit != "" && (rs.Outcome == OutcomePushed || rs.Outcome == OutcomePartial) {
		rs.LastPush = &PushStatus{Commit: rs.Commit, Time: rs.Time}
		return
	}
	for _, p := range prev {
		if p.Name == rs.Name {
			rs.LastPush = p.LastPush
			return
		}
	}
}

// PolicyStatus is one policy's outcome.
type PolicyStatus struct {
	ID        string `json:"id"`
	Image     string `json:"image"`
	Filter    string `json:"filter"`
	Order     string `json:"order"`
	DefinedIn string `json:"definedIn"`
	// State is "resolved", "no_tag", "list_failed" or "conflict".
	State    string    `json:"state"`
	Reason   string    `json:"reason,omitempty"`
	Tag      string    `json:"tag,omitempty"`
	Digest   string    `json:"digest,omitempty"`
	PushedAt time.Time `json:"pushedAt,omitzero"`
	// Gates are the gates its candidates must pass ("minAge 1h, scan (...)"),
	// Gated the candidates refused that rank above the choice, and Passed
	// the gates the choice passed.
	Gates      string        `json:"gates,omitempty"`
	Gated      []GatedStatus `json:"gated,omitempty"`
	Passed     []string      `json:"passed,omitempty"`
	Seen       int           `json:"tagsSeen"`
	Excluded   int           `json:"tagsExcluded"`
	Filtered   int           `json:"tagsFilteredOut"`
	Unparsable int           `json:"tagsUnparsable"`
}

// MarkerStatus is one marker after the cycle.
type MarkerStatus struct {
	Location string `json:"location"` // file:line
	Policy   string `json:"policy"`
	Setter   string `json:"setter"` // image, tag, name or digest
	Value    string `json:"value"`  // the value in git after the cycle
	// State is "current", "updated", "no_policy", "unresolved" or "held".
	State string `json:"state"`
	// HeldBy ("hold" or "downgrade") and Reason say why a held marker kept
	// its value.
	HeldBy string `json:"heldBy,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// GatedStatus is a candidate a gate refused.
type GatedStatus struct {
	Tag    string `json:"tag"`
	Gate   string `json:"gate"` // minAge, scan or signature
	Reason string `json:"reason"`
}

// Release says how a person lets a held marker move on, or "" when it is
// not held.
func (m MarkerStatus) Release() string {
	if m.State != MarkerHeld {
		return ""
	}
	switch m.HeldBy {
	case HeldByAnnotation:
		name := m.Policy[strings.LastIndex(m.Policy, ":")+1:]
		return "remove the annotation " + policy.HoldPrefix + name + " from the object that defines " + m.Policy
	case HeldRevert:
		return "push a tag newer than the one the person rejected, or set the marker back to the butler's value"
	case HeldDowngrade:
		return "push a newer tag, or set the marker by hand: the butler does not move what it wrote backwards"
	case HeldRejected:
		return "push a tag newer than the one the closed pull request proposed"
	}
	return ""
}

// ChangeStatus is one value the butler changed.
type ChangeStatus struct {
	Location string `json:"location"`
	Policy   string `json:"policy"`
	Old      string `json:"old"`
	New      string `json:"new"`
}

// Policy states.
const (
	PolicyResolved   = "resolved"
	PolicyGated      = "gated" // every candidate was refused by a gate
	PolicyNoTag      = "no_tag"
	PolicyListFailed = "list_failed"
	PolicyConflict   = "conflict"
)

// Marker states.
const (
	MarkerCurrent    = "current"
	MarkerUpdated    = "updated"
	MarkerNoPolicy   = "no_policy"
	MarkerUnresolved = "unresolved"
	MarkerHeld       = "held"
	MarkerGated      = "gated" // its policy's newer candidate waits for a gate
)

// Status returns a copy of the last cycle's status.
func (s *Scanner) Status() Status {
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	st := s.status
	st.Repositories = nil
	for _, rs := range s.status.Repositories {
		// With several replicas, only the repositories this one works on.
		if s.shards == nil || s.shards.Holds(rs.Name) {
			st.Repositories = append(st.Repositories, rs)
		}
	}
	return st
}

// status builds the RepoStatus of a result.
func (r RepoResult) status(now time.Time, maxProblems int) RepoStatus {
	rs := RepoStatus{
		Name: r.Repository, Time: now, Duration: r.Duration.Round(time.Millisecond).String(),
		Head: r.Head, Commit: r.Commit, Policies: r.Policies, Markers: r.Markers, PullRequest: r.PullRequest,
	}
	rs.Outcome = r.Outcome()
	if r.Err != nil {
		rs.Error = Clip(r.Err.Error())
	}
	var more int
	rs.Problems, more = r.reported(maxProblems)
	if more > 0 {
		rs.Problems = append(rs.Problems, fmt.Sprintf("and %d more problem(s); raise maxProblems to see them", more))
	}
	for _, c := range r.Changes {
		rs.Changes = append(rs.Changes, ChangeStatus{Location: c.File + ":" + strconv.Itoa(c.Line), Policy: c.Policy, Old: c.Old, New: c.New})
	}
	if rs.Policies == nil {
		rs.Policies = []PolicyStatus{}
	}
	if rs.Markers == nil {
		rs.Markers = []MarkerStatus{}
	}
	return rs
}
