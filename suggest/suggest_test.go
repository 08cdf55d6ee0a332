package suggest

import (
	"slices"
	"testing"
)

func TestNearest(t *testing.T) {
	for _, tc := range []struct {
		s     string
		known []string
		max   int
		want  []string
	}{
		{"brnach", []string{"branch", "paths", "url"}, 2, []string{"branch"}},
		{"Branch", []string{"branch", "pushBranch"}, 2, []string{"branch"}},         // case alone: distance 0
		{"pushbranch", []string{"branch", "pushBranch"}, 2, []string{"pushBranch"}}, // nearest wins
		{"falcon-qa:my-polcy", []string{"falcon-qa:my-policy", "falcon-qa:other"}, 2, []string{"falcon-qa:my-policy"}},
		{"app.lily.com", []string{"app.lilly.com"}, 3, []string{"app.lilly.com"}},
		{"branch", []string{"branch"}, 2, nil},                      // known: nothing to suggest
		{"zzz", []string{"branch", "url"}, 2, nil},                  // too far
		{"ab", []string{"ac", "ad", "xy"}, 1, []string{"ac", "ad"}}, // ties, sorted
	} {
		if got := Nearest(tc.s, tc.known, tc.max); !slices.Equal(got, tc.want) {
			t.Errorf("Nearest(%q, %v, %d) = %v, want %v", tc.s, tc.known, tc.max, got, tc.want)
		}
	}
	if got := DidYouMean([]string{"a", "b"}); got != "; did you mean a or b?" {
		t.Errorf("DidYouMean = %q", got)
	}
}
