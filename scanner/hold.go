package scanner

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/imagebutler/imagebutler/gitwriter"
	"github.com/imagebutler/imagebutler/policy"
)

// Reasons a marker is held: the label of imagebutler_markers_held.
const (
	HeldByAnnotation = "hold"      // the policy's hold annotation
	HeldRevert       = "revert"    // a person changed the value away from what the butler set
	HeldDowngrade    = "downgrade" // the choice ranks below the current value
)

// MaxHistory is how many commits the butler looks back through for the
// trailers of its own writes.
const MaxHistory = 500

// Held is why one marker stays as it is this cycle.
type Held struct {
	Kind   string // HeldByAnnotation, HeldRevert or HeldDowngrade
	Reason string
}

// Choice is a policy's result this cycle with the listing it came from.
type Choice struct {
	Policy *policy.Policy
	Result policy.Result
	Images []policy.Image
}

// Holds decides which markers keep their value this cycle, by location
// (file:line):
//   - every marker of a policy whose defining object has the hold
//     annotation;
//   - a marker a person changed away from the value the butler last wrote
//     for its policy (its commit trailer says which), until the choice ranks
//     above that value;
//   - a marker that holds the value the butler last wrote for its policy,
//     when the choice ranks below it (a registry glitch, a deleted tag, a
//     stale listing): for newest-pushed, when ECR no longer lists it and the
//     choice was pushed before the butler's commit that set it.
//
// Only what the butler wrote is protected from a downgrade: a value it never
// wrote (an onboarding placeholder such as "initial", a hand-written tag, a
// tag of another stream) is replaced by the policy's choice, as Flux does,
// and a value the policy's exclusions or filter reject is never ranked
// against the choice. A :digest marker is held with the tag-bearing markers
// of its policy in the same file; a :name marker does not depend on the
// tag. The record is git and ECR, not local state: a restarted butler
// decides the same. With no checkout (co nil: a folder outside git) only
// hold annotations apply.
//
// lastSetsOf reads the butler's last writes (Checkout.LastSets, or a cache
// of it); nil reads them from co.
func Holds(co *gitwriter.Checkout, tree *gitwriter.Tree, chosen map[string]Choice, butlerEmail string, lastSetsOf func(ids []string) (map[string]gitwriter.Set, error)) map[string]Held {
	out := map[string]Held{}
	heldFiles := map[string]bool{} // policy + file with a held tag-bearing marker
	// The butler's last writes, read from history only when some marker
	// would change: a cycle with nothing to write walks no history.
	var (
		sets    map[string]gitwriter.Set
		setsErr error
		read    bool
	)
	lastSets := func() (map[string]gitwriter.Set, error) {
		if !read {
			ids := make([]string, 0, len(chosen))
			for id := range chosen {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			if lastSetsOf == nil {
				lastSetsOf = func(ids []string) (map[string]gitwriter.Set, error) { return co.LastSets(ids, butlerEmail, MaxHistory) }
			}
			sets, setsErr = lastSetsOf(ids)
			read = true
		}
		return sets, setsErr
	}
	hold := func(m gitwriter.Marker, kind, reason string) {
		out[m.Location()] = Held{kind, reason}
		heldFiles[m.Policy+"\x00"+m.File] = true
	}
	for _, m := range tree.Markers {
		c, ok := chosen[m.Policy]
		if !ok {
			continue
		}
		if c.Policy.Hold != "" {
			out[m.Location()] = Held{HeldByAnnotation, "held by " + policy.HoldPrefix + c.Policy.Name + ": " + c.Policy.Hold}
			continue
		}
		current := CurrentTag(m)
		if current == "" || current == c.Result.Tag || co == nil {
			continue
		}
		standing, _ := c.Policy.RankCurrent(c.Images, current, c.Result)
		sets, err := lastSets()
		if err != nil {
			// Whether the butler wrote the current value is unknown: keep
			// it where the choice could be a downgrade.
			if standing == policy.Above || standing == policy.Unlisted {
				hold(m, HeldDowngrade, fmt.Sprintf("would replace %s with %s, and the butler's history could not be read to tell whether it wrote %s: %v", current, c.Result.Tag, current, err))
			}
			continue
		}
		set, wrote := sets[m.Policy]
		switch {
		case !wrote:
			// The butler never wrote a value for this policy: whatever the
			// marker holds is a person's, and the choice replaces it.
		case current != set.Value:
			if reason := rejected(co, m, c, set, current, butlerEmail); reason != "" {
				hold(m, HeldRevert, reason)
			}
		case standing == policy.Above:
			hold(m, HeldDowngrade, fmt.Sprintf("would downgrade from %s, which the butler set in %s, to %s", current, set.Commit.String()[:12], c.Result.Tag))
		case standing == policy.Unlisted && c.Result.PushedAt.Before(set.When.Truncate(time.Second)): // both are whole seconds in ECR and git
			hold(m, HeldDowngrade, fmt.Sprintf("would downgrade from %s, which ECR no longer lists, to %s, pushed %s, before the butler's commit %s that set %s (%s)",
				current, c.Result.Tag, c.Result.PushedAt.UTC().Format("2006-01-02T15:04:05Z"), set.Commit.String()[:12], current, set.When.UTC().Format("2006-01-02T15:04:05Z")))
		}
	}
	holdDigests(tree, heldFiles, HeldDowngrade, out)
	return out
}

// holdDigests holds, as kind, the :digest markers of each policy in each
// file where a marker bearing its tag is held (files: policy NUL file).
func holdDigests(tree *gitwriter.Tree, files map[string]bool, kind string, held map[string]Held) {
	for _, m := range tree.Markers {
		if m.Setter == gitwriter.SetDigest && files[m.Policy+"\x00"+m.File] {
			held[m.Location()] = Held{kind, "held with the tag of " + m.Policy + " in " + m.File}
		}
	}
}

// CurrentTag is the tag a marker's value holds now: the value of a :tag
// marker, the tag of a full reference (host[:port]/repo:tag[@digest]), or
// "" for :name and :digest markers and references without a tag.
func CurrentTag(m gitwriter.Marker) string {
	switch m.Setter {
	case gitwriter.SetTag:
		return m.Value
	case gitwriter.SetImage:
		ref, _, _ := strings.Cut(m.Value, "@")
		slash := strings.LastIndex(ref, "/")
		if colon := strings.LastIndex(ref, ":"); colon > slash {
			return ref[colon+1:]
		}
	}
	return ""
}

// rejected says why marker m stays at current when a person changed it away
// from set.Value, the butler's last write: the butler does not write that
// value again, nor anything the policy ranks at or below it, until a tag
// appears that ranks above it. It returns "" when the choice does.
func rejected(co *gitwriter.Checkout, m gitwriter.Marker, c Choice, set gitwriter.Set, current, butlerEmail string) string {
	// Only a value the butler wrote into this file can have been changed
	// away from: a marker a person added since is no rejection.
	if was, err := co.FileAt(set.Commit, m.File); err != nil || !strings.Contains(string(was), set.Value) || !strings.Contains(string(was), m.Policy) {
		return ""
	}
	standing, _ := c.Policy.RankCurrent(c.Images, set.Value, c.Result)
	switch {
	case standing == policy.Below:
		return "" // the choice ranks above the rejected value: resume
	case standing == policy.Unlisted && c.Result.PushedAt.After(set.When):
		return "" // the rejected tag is gone; the choice came after it was set
	}
	who := "a person"
	if person, err := co.ChangedBy(m.File, set.Commit, butlerEmail, MaxHistory); err == nil && person != nil {
		who = fmt.Sprintf("%s (%s, %s)", person.Hash.String()[:12], person.Author.Name, person.Author.Email)
	}
	return fmt.Sprintf("%s changed %s from %s, which the butler set in %s, to %s; waiting for a tag newer than %s (now %s)",
		who, m.Policy, set.Value, set.Commit.String()[:12], current, set.Value, c.Result.Tag)
}

// setsCache keeps each repository's last LastSets answer: the history only
// changes with the head, so a marker held for many cycles costs one walk.
type setsCache struct {
	mu sync.Mutex
	m  map[string]cachedSets // by repository name
}

type cachedSets struct {
	head plumbing.Hash
	ids  string
	sets map[string]gitwriter.Set
}

// lastSets returns co.LastSets(ids), from the cache while repo's head and
// the ids are the same.
func (c *setsCache) lastSets(repo string, co *gitwriter.Checkout, butlerEmail string) func(ids []string) (map[string]gitwriter.Set, error) {
	return func(ids []string) (map[string]gitwriter.Set, error) {
		key := strings.Join(ids, "\x00")
		c.mu.Lock()
		e, ok := c.m[repo]
		c.mu.Unlock()
		if ok && e.head == co.Head && e.ids == key {
			return e.sets, nil
		}
		sets, err := co.LastSets(ids, butlerEmail, MaxHistory)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		if c.m == nil {
			c.m = map[string]cachedSets{}
		}
		c.m[repo] = cachedSets{co.Head, key, sets}
		c.mu.Unlock()
		return sets, nil
	}
}
