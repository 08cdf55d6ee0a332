package scanner

import (
	"fmt"
	"strings"
	"time"

	"github.com/imagebutler/imagebutler/gitwriter"
	"github.com/imagebutler/imagebutler/policy"
)

// Reasons a marker is held: the label of imagebutler_markers_held.
const (
	HeldByAnnotation = "hold"      // the policy's hold annotation
	HeldDowngrade    = "downgrade" // the choice ranks below the current value
)

// MaxHistory is how many commits the butler looks back through to date the
// current value of a marker whose tag ECR no longer lists.
const MaxHistory = 500

// held is why one marker stays as it is this cycle.
type held struct {
	kind, reason string
}

// choice is a policy's result this cycle with the listing it came from.
type choice struct {
	policy *policy.Policy
	result policy.Result
	images []policy.Image
}

// holds decides which markers keep their value this cycle:
//   - every marker of a policy whose defining object has the hold
//     annotation;
//   - a marker whose current tag the policy ranks above its choice (the
//     choice would be a downgrade: a registry glitch, a deleted tag);
//   - for newest-pushed, a marker whose current tag is no longer listed,
//     unless the choice was pushed after the commit that set the value.
//
// A :digest marker is held with the tag-bearing markers of its policy in
// the same file; a :name marker does not depend on the tag. The record is
// git and ECR, not local state: a restarted butler decides the same.
func holds(co *gitwriter.Checkout, tree *gitwriter.Tree, chosen map[string]choice) map[string]held {
	out := map[string]held{}
	heldFiles := map[string]bool{} // policy + file with a held tag-bearing marker
	for _, m := range tree.Markers {
		c, ok := chosen[m.Policy]
		if !ok {
			continue
		}
		if c.policy.Hold != "" {
			out[m.Location()] = held{HeldByAnnotation, "held by " + policy.HoldPrefix + c.policy.Name + ": " + c.policy.Hold}
			continue
		}
		current := currentTag(m)
		if current == "" || current == c.result.Tag {
			continue
		}
		standing, _ := c.policy.RankCurrent(c.images, current, c.result)
		var reason string
		switch {
		case standing == policy.Above:
			reason = fmt.Sprintf("would downgrade from %s to %s", current, c.result.Tag)
		case standing == policy.Unranked && c.policy.Order == policy.Newest:
			set, found, err := co.LastChange(m.File, MaxHistory)
			switch {
			case err != nil:
				reason = fmt.Sprintf("would replace %s, which ECR no longer lists, with %s; %s could not be dated: %v", current, c.result.Tag, m.File, err)
			case !found:
				reason = fmt.Sprintf("would replace %s, which ECR no longer lists, with %s; no change to %s in the last %d commits dates it", current, c.result.Tag, m.File, MaxHistory)
			case c.result.PushedAt.Before(set.Truncate(time.Second)): // both are whole seconds in ECR and git
				reason = fmt.Sprintf("would downgrade from %s, which ECR no longer lists, to %s, pushed %s, before the commit that set %s (%s)",
					current, c.result.Tag, c.result.PushedAt.UTC().Format("2006-01-02T15:04:05Z"), current, set.UTC().Format("2006-01-02T15:04:05Z"))
			}
		}
		if reason != "" {
			out[m.Location()] = held{HeldDowngrade, reason}
			heldFiles[m.Policy+"\x00"+m.File] = true
		}
	}
	for _, m := range tree.Markers {
		if m.Setter == gitwriter.SetDigest && heldFiles[m.Policy+"\x00"+m.File] {
			out[m.Location()] = held{HeldDowngrade, "held with the tag of " + m.Policy + " in " + m.File}
		}
	}
	return out
}

// currentTag is the tag a marker's value holds now: the value of a :tag
// marker, the tag of a full reference (host[:port]/repo:tag[@digest]), or
// "" for :name and :digest markers and references without a tag.
func currentTag(m gitwriter.Marker) string {
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
