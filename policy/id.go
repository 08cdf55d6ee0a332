package policy

import (
	"slices"
	"strings"

	"github.com/imagebutler/imagebutler/suggest"
)

// SameName returns the ids among known that name the same policy as id in
// another namespace, sorted: what a marker naming an unknown id most likely
// meant ("default:web" when only "shop:web" exists).
func SameName(id string, known []string) []string {
	_, name, ok := strings.Cut(id, ":")
	if !ok {
		return nil
	}
	var out []string
	for _, k := range known {
		if _, n, _ := strings.Cut(k, ":"); n == name && k != id {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// Suggest returns what a marker naming the unknown id most likely meant:
// the same name in another namespace (SameName), or an id of known at most
// two edits away (a typo), sorted.
func Suggest(id string, known []string) []string {
	out := SameName(id, known)
	for _, k := range suggest.Nearest(id, known, 2) {
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// DidYouMean is "; did you mean a or b?" for Suggest's answer, or "".
func DidYouMean(candidates []string) string { return suggest.DidYouMean(candidates) }
