// Package notify tells people what the butler did, where they look: a
// generic webhook (versioned JSON, signed with HMAC-SHA256), Slack
// (incoming webhooks, with blocks) or Microsoft Teams (an Adaptive Card
// through a Workflows webhook). A Tracker turns each repository's results
// into events (a push, a pull request opened, updated, merged or closed, a
// hold that starts or ends, a repository that keeps failing and then
// recovers); a Notifier queues each event for the receivers that want it
// and delivers it in the background, so that a slow or failing receiver
// never holds up a cycle.
package notify

import "time"

// Kinds of event, as receivers ask for them (config.NotifyEvents).
const (
	Pushed      = "pushed"
	PullRequest = "pull-request"
	Held        = "held"
	Failing     = "failing"
	Recovered   = "recovered"
)

// Version names the generic webhook's JSON body; it changes only with a
// change a receiver must know of.
const Version = "imagebutler.notify/v1"

// Event is one thing people are told, as the generic webhook posts it.
type Event struct {
	Version string `json:"version"`
	// ID is the event's idempotency key (the commit, the pull request and
	// its action, the hold): one ID is delivered once.
	ID         string    `json:"id"`
	Kind       string    `json:"event"`
	Time       time.Time `json:"time"`
	Repository string    `json:"repository"`
	// Summary is the event in one line of text.
	Summary     string   `json:"summary"`
	Commit      *Commit  `json:"commit,omitempty"`
	Changes     []Change `json:"changes,omitempty"`
	PullRequest *Pull    `json:"pullRequest,omitempty"`
	Hold        *Hold    `json:"hold,omitempty"`
	Failure     *Failure `json:"failure,omitempty"`
}

// Commit is a commit the butler pushed.
type Commit struct {
	SHA string `json:"sha"`
	URL string `json:"url,omitempty"` // on the forge, when known
}

// Change is one marker the butler changed.
type Change struct {
	Policy   string `json:"policy"`
	Location string `json:"location"` // file:line
	From     string `json:"from"`
	To       string `json:"to"`
}

// Pull is what became of the butler's pull request.
type Pull struct {
	Number int64  `json:"number"`
	URL    string `json:"url,omitempty"`
	Title  string `json:"title,omitempty"`
	// Action is opened, updated, merged or closed.
	Action string `json:"action"`
}

// Hold is a marker kept at its value, from when the hold starts until it
// ends.
type Hold struct {
	Marker string `json:"marker"` // file:line
	Policy string `json:"policy"`
	Value  string `json:"value"`
	// By is why: hold (the annotation), revert, downgrade or rejected.
	By     string `json:"by"`
	Reason string `json:"reason"`
	// State is started or ended.
	State string `json:"state"`
	// Release says how a person lets the marker move on.
	Release string `json:"release,omitempty"`
}

// Failure is a repository's run of failed cycles.
type Failure struct {
	// Cycles is how many cycles in a row failed (for recovered: before it).
	Cycles int       `json:"cycles"`
	Error  string    `json:"error,omitempty"`
	Since  time.Time `json:"since"`
}
