package policy

import "testing"

func TestRankCurrent(t *testing.T) {
	tests := []struct {
		name    string
		policy  Policy
		images  []Image
		current string
		want    Standing
	}{
		{"semver current above every listed", Policy{Order: Semver, Range: "*"}, tags("1.0.0", "1.1.0"), "v2.0.0", Above},
		{"semver upgrade", Policy{Order: Semver, Range: "*"}, tags("1.0.0", "1.1.0"), "1.0.0", Below},
		{"semver outside the range", Policy{Order: Semver, Range: "^1"}, tags("1.0.0", "1.1.0"), "2.0.0", Unranked},
		{"numerical current above", Policy{Order: Numerical}, tags("5", "7"), "9", Above},
		{"numerical equal value", Policy{Order: Numerical}, tags("5", "7"), "07", Same},
		{"alphabetical current above", Policy{Order: Alphabetical}, tags("a", "b"), "c", Above},
		{"alphabetical not a candidate", Policy{Order: Alphabetical, Pattern: `^rel-`}, tags("rel-a", "rel-b"), "main", Unranked},
		{"newest current listed and newer", Policy{Glob: "*"}, []Image{{Tags: []string{"new"}, PushedAt: at(5)}, {Tags: []string{"old"}, PushedAt: at(1)}}, "new", Same},
		{"newest current listed older", Policy{Glob: "*"}, tags("a", "b"), "a", Below},
		{"newest current not listed", Policy{Glob: "*"}, tags("a", "b"), "gone", Unlisted},
		{"newest current filtered out, listed and newer", Policy{Glob: "sha-*"}, []Image{{Tags: []string{"sha-1"}, PushedAt: at(1)}, {Tags: []string{"qa-sha-1"}, PushedAt: at(5)}}, "qa-sha-1", Unranked},
		{"newest current filtered out, not listed", Policy{Glob: "sha-.*"}, tags("sha-1", "sha-2"), "qa-sha-06c5953", Unranked},
		{"newest current excluded", Policy{Glob: "*"}, []Image{{Tags: []string{"a"}, PushedAt: at(1)}, {Tags: []string{"a.sig"}, PushedAt: at(5)}}, "a.sig", Unranked},
		{"newest regexp filter", Policy{Order: Newest, Pattern: "^rel-"}, tags("rel-a", "rel-b"), "main", Unranked},
		{"nothing chosen", Policy{Order: Semver, Range: "*"}, tags("latest"), "1.0.0", Unranked},
	}
	for _, tt := range tests {
		p := compiled(t, tt.policy)
		chosen := p.Select(tt.images)
		if got, _ := p.RankCurrent(tt.images, tt.current, chosen); got != tt.want {
			t.Errorf("%s: RankCurrent(%q) against %q = %d, want %d", tt.name, tt.current, chosen.Tag, got, tt.want)
		}
	}
}
