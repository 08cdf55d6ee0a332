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

// MaxHistory is how many commits the butler looks back through to date the
// current value of a marker whose tag ECR no longer lists.
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
//     (its commit trailer says which), until the choice ranks above that
//     value;
//   - a marker whose current tag the policy ranks above its choice (the
//     choice would be a downgrade: a registry glitch, a deleted tag);
//   - for newest-pushed, a marker whose current tag is no longer listed,
//     unless the choice was pushed after the commit that set the value.
//
// A :digest marker is held with the tag-bearing markers of its policy in
// the same file; a :name marker does not depend on the tag. The record is
// git and ECR, not local state: a restarted butler decides the same. With
// no checkout (co nil: a folder outside git) the rules that need history
// are not applied.
//
// lastSets reads the butler's last writes (Checkout.LastSets, or a cache of
// it); nil with co.
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
		if co == nil {
			return nil, nil
		}
		if !read {
			ids := make([]string, 0, len(chosen))
			for id := range chosen {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			if lastSetsOf == nil {
				lastSetsOf = func(ids []string) (map[string]gitwriter.Set, error) { return co.LastSets(ids, MaxHistory) }
			}
			sets, setsErr = lastSetsOf(ids)
			read = true
		}
		return sets, setsErr
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
		if current == "" || current == c.Result.Tag {
			continue
		}
		sets, err := lastSets()
		if set, ok := sets[m.Policy]; ok && err == nil && current != set.Value {
			if reason := rejected(co, m, c, set, current, butlerEmail); reason != "" {
				out[m.Location()] = Held{HeldRevert, reason}
				heldFiles[m.Policy+"\x00"+m.File] = true
				continue
			}
		}
		standing, _ := c.Policy.RankCurrent(c.Images, current, c.Result)
		var reason string
		switch {
		case standing == policy.Above:
			reason = fmt.Sprintf("would downgrade from %s to %s", current, c.Result.Tag)
		case standing == policy.Unranked && c.Policy.Order == policy.Newest && co != nil:
			set, found, err := co.LastChange(m.File, MaxHistory)
			switch {
			case err != nil:
				reason = fmt.Sprintf("would replace %s, which ECR no longer lists, with %s; %s could not be dated: %v", current, c.Result.Tag, m.File, err)
			case !found:
				reason = fmt.Sprintf("would replace %s, which ECR no longer lists, with %s; no change to %s in the last %d commits dates it", current, c.Result.Tag, m.File, MaxHistory)
			case c.Result.PushedAt.Before(set.Truncate(time.Second)): // both are whole seconds in ECR and git
				reason = fmt.Sprintf("would downgrade from %s, which ECR no longer lists, to %s, pushed %s, before the commit that set %s (%s)",
					current, c.Result.Tag, c.Result.PushedAt.UTC().Format("2006-01-02T15:04:05Z"), current, set.UTC().Format("2006-01-02T15:04:05Z"))
			}
		}
		if reason != "" {
			out[m.Location()] = Held{HeldDowngrade, reason}
			heldFiles[m.Policy+"\x00"+m.File] = true
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
	case standing == policy.Unranked && c.Policy.Order == policy.Newest && c.Result.PushedAt.After(set.When):
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
func (c *setsCache) lastSets(repo string, co *gitwriter.Checkout) func(ids []string) (map[string]gitwriter.Set, error) {
	return func(ids []string) (map[string]gitwriter.Set, error) {
		key := strings.Join(ids, "\x00")
		c.mu.Lock()
		e, ok := c.m[repo]
		c.mu.Unlock()
		if ok && e.head == co.Head && e.ids == key {
			return e.sets, nil
		}
		sets, err := co.LastSets(ids, MaxHistory)
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
