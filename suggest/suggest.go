// Package suggest finds what a person probably meant to write: the known
// names nearest to a misspelt one, for "did you mean" in error messages.
package suggest

import (
	"slices"
	"strings"

	"github.com/agnivade/levenshtein"
)

// Nearest returns the names of known nearest to s, at most max edits away
// (letters compared without case, so that a name differing only in case is
// found first), sorted; none when s is itself known.
func Nearest(s string, known []string, max int) []string {
	if slices.Contains(known, s) {
		return nil
	}
	best, out := max+1, []string(nil)
	lower := strings.ToLower(s)
	for _, k := range known {
		d := levenshtein.ComputeDistance(lower, strings.ToLower(k))
		switch {
		case d > max:
		case d < best:
			best, out = d, []string{k}
		case d == best && !slices.Contains(out, k):
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// DidYouMean is "; did you mean a or b?" for candidates, or "".
func DidYouMean(candidates []string) string {
	if len(candidates) == 0 {
		return ""
	}
	return "; did you mean " + strings.Join(candidates, " or ") + "?"
}
