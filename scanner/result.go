package scanner

import (
	"cmp"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/gitwriter"
)

// What one cycle of one repository came to, and how it is said.

// RepoResult is the outcome of one repository in one cycle.
type RepoResult struct {
	Repository string // name without credentials
	Commit     string // pushed commit; empty when nothing changed
	Head       string // remote head the working copy was at
	Changes    []gitwriter.Change
	// Problems are per-annotation, per-marker and per-policy problems; the
	// repository was still processed.
	Problems []error
	// Err is set when the repository failed this cycle.
	Err      error
	Duration time.Duration
	// Policies and Markers say what each policy resolved to and what became
	// of each marker.
	Policies []PolicyStatus
	Markers  []MarkerStatus
	// Diff is the unified diff of the commit, in a dry run.
	Diff string
	// PullRequest is what became of the pull request, in pull-request mode.
	PullRequest *PullRequestStatus
}

// Outcomes of a repository in one cycle, as RepoResult.Outcome, /status and
// the log name them.
const (
	OutcomePushed    = "pushed"     // a commit was pushed; nothing failed
	OutcomeWouldPush = "would push" // a dry run made a commit it did not push
	OutcomeUpToDate  = "up to date" // nothing to change; nothing failed
	// OutcomePartial: a commit was pushed (or, in a dry run, made) but some
	// policies failed (an ECR listing, an unknown region); Err says which.
	OutcomePartial = "partial"
	OutcomeFailed  = "failed" // nothing was pushed; Err says why
)

// Outcome names what became of the repository: one of the Outcome constants.
func (r RepoResult) Outcome() string {
	switch {
	case r.Err != nil && r.Commit != "":
		return OutcomePartial
	case r.Err != nil:
		return OutcomeFailed
	case r.Commit != "" && r.Diff != "":
		return OutcomeWouldPush
	case r.Commit != "":
		return OutcomePushed
	}
	return OutcomeUpToDate
}

// Summary is the one-line report of the result. A pushed commit is always
// named, also when some policies failed.
func (r RepoResult) Summary() string {
	var b strings.Builder
	commit := r.Commit[:min(len(r.Commit), 12)]
	switch r.Outcome() {
	case OutcomeFailed:
		fmt.Fprintf(&b, "FAIL %s: %s", r.Repository, Clip(r.Err.Error()))
	case OutcomePartial:
		verb := "pushed"
		if r.Diff != "" {
			verb = "would push (dry run)"
		}
		fmt.Fprintf(&b, "PARTIAL %s: %d change(s), %s %s; failed: %s", r.Repository, len(r.Changes), verb, commit, Clip(r.Err.Error()))
	case OutcomeWouldPush:
		fmt.Fprintf(&b, "ok   %s: %d change(s), would push (dry run)", r.Repository, len(r.Changes))
	case OutcomePushed:
		fmt.Fprintf(&b, "ok   %s: %d change(s), pushed %s", r.Repository, len(r.Changes), commit)
	default:
		fmt.Fprintf(&b, "ok   %s: up to date", r.Repository)
	}
	if p := r.PullRequest; p != nil && (p.Action != "" || p.Number != 0) {
		switch {
		case p.Action == "would open" || p.Action == "would update":
			fmt.Fprintf(&b, "; %s a pull request from %s into %s: %q", p.Action, p.Branch, p.Base, p.Title)
		case p.Number != 0:
			fmt.Fprintf(&b, "; pull request #%d %s", p.Number, cmp.Or(p.Action, p.State))
			if p.URL != "" {
				fmt.Fprintf(&b, " %s", p.URL)
			}
		default:
			fmt.Fprintf(&b, "; %s %s", p.Branch, p.Action)
		}
	}
	var notes []string
	if n := r.held(); n > 0 {
		notes = append(notes, fmt.Sprintf("%d held", n))
	}
	if len(r.Problems) > 0 {
		notes = append(notes, fmt.Sprintf("%d problem(s)", len(r.Problems)))
	}
	if len(notes) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(notes, ", "))
	}
	return b.String()
}

// held counts the markers that kept their value on purpose.
func (r RepoResult) held() int {
	n := 0
	for _, m := range r.Markers {
		if m.State == MarkerHeld {
			n++
		}
	}
	return n
}

// MaxMessage is the most of one error message the log, /status and the
// summary echo: a hostile remote cannot fill them with one answer.
const MaxMessage = 1024

// Clip cuts s to about MaxMessage bytes, saying how much it left out: at a
// space when one is near the cut, never inside a character, and keeping a
// trailing " (hint: ...)" whole.
func Clip(s string) string {
	if len(s) <= MaxMessage {
		return s
	}
	// A hint at the end is what a person acts on: it is kept whole, and
	// the text before it is cut instead, at a space where one is near.
	tail := ""
	if i := strings.LastIndex(s, " (hint: "); i > 0 && len(s)-i <= MaxMessage/2 {
		s, tail = s[:i], s[i:]
	}
	cut := MaxMessage - len(tail)
	if sp := strings.LastIndexByte(s[:cut], ' '); sp > 0 && sp > cut-80 {
		cut = sp
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d more bytes)%s", s[:cut], len(s)-cut, tail)
}

// reported is what the log and /status show of the problems: the first limit
// (config.DefaultProblemsReported when max is 0), each clipped, and how many
// more there were.
func (r RepoResult) reported(limit int) (shown []string, more int) {
	if limit <= 0 {
		limit = config.DefaultProblemsReported
	}
	for i, p := range r.Problems {
		if i == limit {
			return shown, len(r.Problems) - limit
		}
		shown = append(shown, Clip(p.Error()))
	}
	return shown, 0
}
