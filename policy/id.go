package policy

import (
	"slices"
	"strings"
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

// DidYouMean is ", did you mean a or b?" for SameName's answer, or "".
func DidYouMean(candidates []string) string {
	if len(candidates) == 0 {
		return ""
	}
	return "; did you mean " + strings.Join(candidates, " or ") + "?"
}
