package notify

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/scanner"
)

// Tracker turns each repository's successive results into events: what
// changed since its last result. It keeps no more than the last result's
// holds, failure count and pull request per repository.
type Tracker struct {
	links map[string]string // repository name → its web address, when known

	mu    sync.Mutex
	repos map[string]*repoState
}

type repoState struct {
	holds     map[string]Hold // by marker, kind and value
	failures  int
	failSince time.Time
	pull      *scanner.PullRequestStatus
}

// NewTracker returns a Tracker for repos (their web addresses make the
// links to commits).
func NewTracker(repos []config.Repository) *Tracker {
	t := &Tracker{links: map[string]string{}, repos: map[string]*repoState{}}
	for _, r := range repos {
		if web := webURL(r.URL); web != "" {
			t.links[r.Name()] = web
		}
	}
	return t
}

// Observe returns the events of rs, a repository's newest result. The
// failing event comes with every failed cycle, its Failure.Cycles counting
// them: a receiver takes the one that reaches its own threshold.
func (t *Tracker) Observe(rs scanner.RepoStatus) []Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	st, seen := t.repos[rs.Name]
	if !seen {
		st = &repoState{holds: map[string]Hold{}}
		t.repos[rs.Name] = st
	}
	var out []Event
	event := func(kind, id, summary string) *Event {
		out = append(out, Event{Version: Version, ID: id, Kind: kind, Time: rs.Time, Repository: rs.Name, Summary: rs.Name + ": " + summary})
		return &out[len(out)-1]
	}

	if rs.Commit != "" && rs.PullRequest == nil && (rs.Outcome == scanner.OutcomePushed || rs.Outcome == scanner.OutcomePartial) {
		e := event(Pushed, "pushed:"+rs.Commit, "pushed "+short(rs.Commit)+": "+changesLine(rs.Changes))
		e.Commit = &Commit{SHA: rs.Commit, URL: t.commitURL(rs.Name, rs.Commit)}
		for _, c := range rs.Changes {
			e.Changes = append(e.Changes, Change{Policy: c.Policy, Location: c.Location, From: c.Old, To: c.New})
		}
	}

	if p := rs.PullRequest; p != nil && p.Number != 0 {
		action := ""
		switch {
		case p.Action == "opened" || p.Action == "updated":
			action = p.Action
		case (p.State == "merged" || p.State == "closed") && st.pull != nil && st.pull.Number == p.Number && st.pull.State == "open":
			action = p.State
		}
		if action != "" {
			id := fmt.Sprintf("pull-request:%s#%d:%s", rs.Name, p.Number, action)
			if action == "opened" || action == "updated" {
				id += ":" + rs.Commit
			}
			e := event(PullRequest, id, fmt.Sprintf("pull request #%d %s: %s", p.Number, action, p.Title))
			e.PullRequest = &Pull{Number: p.Number, URL: p.URL, Title: p.Title, Action: action}
			if action != "merged" && action != "closed" {
				e.Changes = changes(rs.Changes)
			}
		}
		st.pull = p
	}

	// Holds: those that start and those that end. A repository that failed
	// before its markers were read says nothing of its holds.
	if rs.Outcome != scanner.OutcomeFailed || len(rs.Markers) > 0 {
		now := map[string]Hold{}
		for _, m := range rs.Markers {
			if m.State != scanner.MarkerHeld {
				continue
			}
			h := Hold{Marker: m.Location, Policy: m.Policy, Value: m.Value, By: m.HeldBy, Reason: m.Reason, Release: m.Release()}
			// The id names the value by a hash: it travels in a header,
			// and repository text may hold anything.
			sum := sha256.Sum256([]byte(m.Value))
			now[m.Location+":"+m.HeldBy+":"+hex.EncodeToString(sum[:6])] = h
		}
		for _, k := range slices.Sorted(maps.Keys(now)) {
			h := now[k]
			if _, was := st.holds[k]; !was {
				h.State = "started"
				e := event(Held, "held:"+rs.Name+":"+k+":started", fmt.Sprintf("%s held at %s (%s): %s", h.Policy, h.Value, h.By, h.Reason))
				e.Hold = &h
			}
		}
		for _, k := range slices.Sorted(maps.Keys(st.holds)) {
			h := st.holds[k]
			if _, still := now[k]; !still {
				h.State = "ended"
				e := event(Held, "held:"+rs.Name+":"+k+":ended", fmt.Sprintf("%s no longer held at %s (%s)", h.Policy, h.Value, h.By))
				e.Hold = &h
			}
		}
		st.holds = now
	}

	if rs.Error != "" {
		if st.failures == 0 {
			st.failSince = rs.Time
		}
		st.failures++
		e := event(Failing, fmt.Sprintf("failing:%s:%d", rs.Name, st.failSince.UnixNano()), fmt.Sprintf("failing for %d cycle(s): %s", st.failures, rs.Error))
		e.Failure = &Failure{Cycles: st.failures, Error: rs.Error, Since: st.failSince}
	} else if st.failures > 0 {
		e := event(Recovered, fmt.Sprintf("recovered:%s:%d", rs.Name, st.failSince.UnixNano()), fmt.Sprintf("recovered after %d failed cycle(s)", st.failures))
		e.Failure = &Failure{Cycles: st.failures, Since: st.failSince}
		st.failures = 0
	}
	return out
}

func changes(cs []scanner.ChangeStatus) []Change {
	var out []Change
	for _, c := range cs {
		out = append(out, Change{Policy: c.Policy, Location: c.Location, From: c.Old, To: c.New})
	}
	return out
}

// changesLine is the changes in a few words: the first, and how many more.
func changesLine(cs []scanner.ChangeStatus) string {
	if len(cs) == 0 {
		return "no marker changed"
	}
	s := cs[0].Policy + " " + cs[0].Old + " → " + cs[0].New
	if len(cs) > 1 {
		s += fmt.Sprintf(" (and %d more)", len(cs)-1)
	}
	return s
}

func short(sha string) string { return sha[:min(12, len(sha))] }

// commitURL is the web address of commit sha in the repository named repo,
// or "" when its forge is not known.
func (t *Tracker) commitURL(repo, sha string) string {
	web := t.links[repo]
	if web == "" {
		return ""
	}
	if strings.Contains(web, "gitlab") {
		return web + "/-/commit/" + sha
	}
	return web + "/commit/" + sha // GitHub, Gitea, Forgejo, Bitbucket Server's /commits differ but redirect
}

// webURL is the web address of a repository's git URL: https://host/path
// without ".git" and without credentials; "" for a local path.
func webURL(raw string) string {
	clean, _, _ := config.SplitCredentials(raw)
	var host, path string
	switch {
	case strings.HasPrefix(clean, "https://"), strings.HasPrefix(clean, "http://"), strings.HasPrefix(clean, "ssh://"):
		u, err := url.Parse(clean)
		if err != nil || u.Host == "" {
			return ""
		}
		host, path = u.Hostname(), u.Path
		if u.Scheme != "ssh" && u.Port() != "" {
			host = u.Host
		}
	case strings.Contains(clean, "@") && strings.Contains(clean, ":") && !strings.Contains(clean, "://"):
		h, p, _ := strings.Cut(clean[strings.Index(clean, "@")+1:], ":")
		host, path = h, p
	default:
		return ""
	}
	path = strings.TrimSuffix(strings.Trim(path, "/"), ".git")
	if host == "" || path == "" {
		return ""
	}
	scheme := "https"
	if strings.HasPrefix(clean, "http://") {
		scheme = "http"
	}
	return scheme + "://" + host + "/" + path
}
