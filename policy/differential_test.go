package policy

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestSelectMatchesReference compares Select, over random tag sets, with a
// reference written from the documented rules: drop excluded and filtered
// tags, extract, sort by the order with its tie rule, take the first.
func TestSelectMatchesReference(t *testing.T) {
	policies := []Policy{
		{Order: Newest, Glob: "*"},
		{Order: Newest, Pattern: `^qa-`},
		{Order: Alphabetical},
		{Order: Alphabetical, Desc: true},
		{Order: Alphabetical, Pattern: `^(?:dev|qa)-(?P<n>\d+)$`, Extract: "$n"},
		{Order: Alphabetical, Desc: true, Pattern: `^(?:dev|qa)-(?P<n>\d+)$`, Extract: "$n"},
		{Order: Numerical},
		{Order: Numerical, Desc: true},
		{Order: Numerical, Pattern: `^(?:dev|qa)-(\d+)$`, Extract: "$1"},
		{Order: Numerical, Desc: true, Pattern: `^(?:dev|qa)-(\d+)$`, Extract: "$1"},
		{Order: Semver, Range: "*"},
		{Order: Semver, Range: ">=0.0.0-0"},
		{Order: Semver, Range: "*", Pattern: `^(?:dev|qa)-(.*)$`, Extract: "$1"},
	}
	rng := rand.New(rand.NewPCG(11, 12))
	for round := range 400 {
		images := randomImages(rng)
		for _, pol := range policies {
			p := compiled(t, pol)
			got := p.Select(images).Tag
			want := reference(p, images)
			if got != want {
				t.Fatalf("round %d, %s (%s): Select = %q, reference = %q\nimages: %v", round, p.Ordering(), p.Filter(), got, want, images)
			}
		}
	}
}

func randomImages(rng *rand.Rand) []Image {
	word := func() string {
		n := rng.IntN(12)
		switch rng.IntN(9) {
		case 0:
			return strconv.Itoa(n)
		case 1:
			return fmt.Sprintf("%d.%d", n, rng.IntN(3))
		case 2:
			return fmt.Sprintf("%0*d", 1+rng.IntN(3), n) // leading zeros tie in value
		case 3:
			return fmt.Sprintf("%s%d.%d.%d", []string{"", "v"}[rng.IntN(2)], rng.IntN(3), rng.IntN(3), rng.IntN(3))
		case 4:
			return fmt.Sprintf("%d.%02d.%d-rc.%d", 2024+rng.IntN(2), rng.IntN(3), rng.IntN(3), rng.IntN(3))
		case 5:
			return fmt.Sprintf("1.%d.0+b%d", rng.IntN(2), rng.IntN(3))
		case 6:
			return []string{"dev-", "qa-"}[rng.IntN(2)] + strconv.Itoa(n)
		case 7:
			return []string{"latest", "main", "x.sig", "sha256-1.att", "1.2"}[rng.IntN(5)]
		}
		return []string{"dev-", "qa-"}[rng.IntN(2)] + fmt.Sprintf("%d.%d.%d", rng.IntN(2), rng.IntN(2), rng.IntN(2))
	}
	var images []Image
	for i := range 1 + rng.IntN(10) {
		img := Image{Digest: fmt.Sprintf("sha256:%02d", i), PushedAt: at(rng.IntN(4))}
		for range 1 + rng.IntN(2) {
			img.Tags = append(img.Tags, word())
		}
		images = append(images, img)
	}
	return images
}

// candidate is a tag that passed the exclusion list and the filter.
type candidate struct {
	tag, value string
	img        Image
}

// reference selects by the documented rules, independently of Select.
func reference(p *Policy, images []Image) string {
	exclude := regexp.MustCompile(DefaultExclusion)
	var pattern *regexp.Regexp
	if p.Pattern != "" {
		pattern = regexp.MustCompile(p.Pattern)
	}
	var cs []candidate
	for _, img := range images {
		for _, tag := range img.Tags {
			if exclude.MatchString(tag) {
				continue
			}
			value := tag
			switch {
			case p.Glob == "*":
			case pattern != nil:
				m := pattern.FindStringSubmatchIndex(tag)
				if m == nil {
					continue
				}
				if p.Extract != "" {
					value = string(pattern.ExpandString(nil, p.Extract, tag, m))
				}
			}
			cs = append(cs, candidate{tag, value, img})
		}
	}
	// better reports whether a ranks above b, ties included.
	var better func(a, b candidate) bool
	switch p.Order {
	case Newest:
		better = func(a, b candidate) bool {
			if c := a.img.PushedAt.Compare(b.img.PushedAt); c != 0 {
				return c > 0
			}
			return a.tag > b.tag
		}
	case Alphabetical:
		better = func(a, b candidate) bool {
			if a.value != b.value {
				return (a.value > b.value) != p.Desc
			}
			return a.tag < b.tag
		}
	case Numerical:
		cs = keep(cs, func(c candidate) bool { _, ok := refNumber(c.value); return ok })
		better = func(a, b candidate) bool {
			x, _ := refNumber(a.value)
			y, _ := refNumber(b.value)
			if c := x.Cmp(y); c != 0 {
				return (c > 0) != p.Desc
			}
			return a.tag < b.tag
		}
	case Semver:
		withPre := strings.HasSuffix(p.Range, "-0")
		cs = keep(cs, func(c candidate) bool { v, ok := refVersion(c.value); return ok && (withPre || v[3] == 1<<30) })
		better = func(a, b candidate) bool {
			x, _ := refVersion(a.value)
			y, _ := refVersion(b.value)
			for i := range x {
				if x[i] != y[i] {
					return x[i] > y[i]
				}
			}
			return a.tag > b.tag
		}
	}
	if len(cs) == 0 {
		return ""
	}
	sort.SliceStable(cs, func(i, j int) bool { return better(cs[i], cs[j]) })
	return cs[0].tag
}

func keep(cs []candidate, f func(candidate) bool) []candidate {
	var out []candidate
	for _, c := range cs {
		if f(c) {
			out = append(out, c)
		}
	}
	return out
}

var refNumberRE = regexp.MustCompile(`^[-+]?[0-9]+(\.[0-9]+)?$`)

func refNumber(s string) (*big.Rat, bool) {
	if !refNumberRE.MatchString(s) {
		return nil, false
	}
	return new(big.Rat).SetString(s)
}

// refVersionRE is the versions the generator makes: v?X.Y.Z, an optional
// -rc.N, an optional +build.
var refVersionRE = regexp.MustCompile(`^v?([0-9]+)\.([0-9]+)\.([0-9]+)(?:-rc\.([0-9]+))?(?:\+[0-9A-Za-z]+)?$`)

// refVersion is major, minor, patch and the rc number (1<<30 for a release,
// which ranks above its prereleases).
func refVersion(s string) ([4]int, bool) {
	m := refVersionRE.FindStringSubmatch(s)
	if m == nil {
		return [4]int{}, false
	}
	var v [4]int
	for i := range 3 {
		v[i], _ = strconv.Atoi(m[i+1])
	}
	v[3] = 1 << 30
	if m[4] != "" {
		v[3], _ = strconv.Atoi(m[4])
	}
	return v, true
}
