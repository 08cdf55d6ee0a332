package policy

import (
	"fmt"
	"testing"

	"github.com/Masterminds/semver/v3"
)

// rangeSeeds are ranges of every form Masterminds reads.
var rangeSeeds = []string{
	">=1.0.0", "^2.0.0", "^0.2.3", "^0.0.3", "^0.0", "^0", "~1.2.3", "~1.2", "~1", "~0", "~>1.2", "1.2.x", "1.x", "*", "x",
	">1.2", ">=1.2", "<1.2", "<=1.2", "<=1.2.3", ">1", "<2", "!=1.2.3", "!=1.2", "=1.2.3", "1.2.3", "=1.2", "1.2", "v1.2.3",
	">=1.0.0 <3.0.0", ">= 1.2, < 3.0", "1.2.3 - 2.3.4", "1.2 - 2", "1 - 2.3", "<1 || >=2", ">=1.0.0-0", "^1.2.3-alpha",
	">=1.2.3-rc.1 <2", "1.2.*", "2025.x", "<2025.0.0", ">=0.1.0-0", "~2.0.0 || ^3.1 || 4.x", "!=1.x", ">1.2.3 <1.2.5 || =2",
	">= 1.2.3 <= 1.2.5", "=<1.2", "=>1.2", "~0.0.1", "^0.0.x", "^1.x", "~1.x", ">1.x", "<=1.x", "0.0.0", ">0.0.0",
}

// TestRangeCuts: every release version in a run of a range's cuts gets
// Check's verdict of any other there, for versions on, beside and between
// the cuts.
func TestRangeCuts(t *testing.T) {
	for _, r := range rangeSeeds {
		if _, ok := cutsOf(r); !ok {
			t.Errorf("range %q: no cuts; every version would go to Check", r)
		}
		checkRangeCuts(t, r)
	}
}

func FuzzRangeCuts(f *testing.F) {
	for _, r := range rangeSeeds {
		f.Add(r)
	}
	f.Fuzz(func(t *testing.T, r string) {
		if len(r) > 64 {
			return
		}
		checkRangeCuts(t, r)
	})
}

func checkRangeCuts(t *testing.T, r string) {
	t.Helper()
	c, err := semver.NewConstraint(r)
	if err != nil {
		return
	}
	cuts, ok := cutsOf(r)
	if !ok {
		return // Check judges every version: nothing to hold
	}
	// Versions on each cut and one step to either side in each part, and
	// with build metadata.
	var versions []*semver.Version
	add := func(major, minor, patch int64, meta string) {
		if major < 0 || minor < 0 || patch < 0 {
			return
		}
		v, err := semver.StrictNewVersion(fmt.Sprintf("%d.%d.%d%s", major, minor, patch, meta))
		if err == nil {
			versions = append(versions, v)
		}
	}
	for _, cut := range cuts {
		M, m, p := int64(cut.major), int64(cut.minor), int64(cut.patch)
		for _, d := range []int64{-1, 0, 1} {
			add(M+d, m, p, "")
			add(M, m+d, p, "")
			add(M, m, p+d, "")
			add(M+d, 0, 0, "")
			add(M, m+d, 0, "")
			add(M+d, 99, 99, "")
			add(M, m+d, 99, "")
		}
		add(M, m, p, "+build.1")
	}
	add(0, 0, 0, "")
	first := map[int]*semver.Version{}
	for _, v := range versions {
		in, ok := parseVersion(v.Original())
		if !ok {
			t.Fatalf("%s: not read in place", v)
		}
		k := cuts.slot(in)
		w, seen := first[k]
		if !seen {
			first[k] = v
			continue
		}
		if c.Check(v) != c.Check(w) {
			t.Fatalf("range %q: %s and %s fall in one run of the cuts %v, but Check says %v and %v", r, v, w, cuts, c.Check(v), c.Check(w))
		}
	}
}

// TestInRangeMatchesCheck: Select's verdicts through the cuts are Check's,
// in any order of versions.
func TestInRangeMatchesCheck(t *testing.T) {
	for _, r := range rangeSeeds {
		p := compiled(t, Policy{Order: Semver, Range: r})
		var vs verdicts
		for major := range 4 {
			for minor := range 4 {
				for patch := range 5 {
					tag := fmt.Sprintf("%d.%d.%d", 3-major, minor, patch)
					v := semver.MustParse(tag)
					in, _ := parseVersion(tag)
					if got, want := p.inRange(in, tag, &vs), p.constraint.Check(v); got != want {
						t.Fatalf("range %q, %s: inRange %v, Check %v", r, v, got, want)
					}
				}
			}
		}
	}
}
