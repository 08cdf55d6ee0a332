package policy

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// benchImages makes n images as the ECR lister returns them (oldest first):
// one tag each in the shape tag(i) gives, every tenth a signature tag.
func benchImages(n int, tag func(r *rand.Rand, i int) string) []Image {
	r := rand.New(rand.NewPCG(1, 2))
	images := make([]Image, 0, n)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		var t string
		if i%10 == 9 {
			t = fmt.Sprintf("sha256-%064x.sig", r.Uint64())
		} else {
			t = tag(r, i)
		}
		images = append(images, Image{
			Tags:     []string{t},
			Digest:   fmt.Sprintf("sha256:%064x", r.Uint64()),
			PushedAt: base.Add(time.Duration(r.IntN(n*10)) * time.Second),
		})
	}
	slices.SortStableFunc(images, func(a, b Image) int { return a.PushedAt.Compare(b.PushedAt) })
	return images
}

// selectCase is a policy of BenchmarkSelect and the tags it picks among.
type selectCase struct {
	name   string
	policy Policy
	tag    func(r *rand.Rand, i int) string
}

func selectCases() []selectCase {
	return []selectCase{
		{"a_regex_extract_numerical", Policy{Order: Numerical, Pattern: `^dev-(?P<ts>[0-9]+)$`, Extract: "$ts"},
			func(r *rand.Rand, i int) string {
				if i%7 == 0 {
					return fmt.Sprintf("main-%07x", r.Uint32()>>4)
				}
				return fmt.Sprintf("dev-%d", 20240101000000000+r.Int64N(1e12))
			}},
		{"b_semver_range", Policy{Order: Semver, Range: ">=1.0.0 <3.0.0"},
			func(r *rand.Rand, i int) string {
				switch i % 4 {
				case 0:
					return fmt.Sprintf("%d.%d.%d", r.IntN(4), r.IntN(20), r.IntN(30))
				case 1:
					return fmt.Sprintf("v%d.%d.%d-rc.%d", r.IntN(4), r.IntN(20), r.IntN(30), r.IntN(5))
				case 2:
					return fmt.Sprintf("latest-%d", i)
				}
				return fmt.Sprintf("main-%07x", r.Uint32()>>4)
			}},
		// Every tag a distinct version, as in an ECR repository (a tag is
		// unique there), most of them outside the range.
		{"b_semver_distinct", Policy{Order: Semver, Range: "^2.0.0"},
			func(r *rand.Rand, i int) string {
				if i%4 == 3 {
					return fmt.Sprintf("main-%07x", r.Uint32()>>4)
				}
				return fmt.Sprintf("%d.%d.%d", i/10000, (i/100)%100, i%100)
			}},
		{"c_newest_glob", Policy{Glob: "qa-sha-.*"}, qaOrSha},
		{"d_newest_regexp_prefix", Policy{Pattern: `^qa-sha-.*`}, qaOrSha},
	}
}

func BenchmarkSelect(b *testing.B) {
	const n = 100_000
	for _, c := range selectCases() {
		p := c.policy
		p.ID = "ns:bench"
		if err := p.compile(); err != nil {
			b.Fatal(err)
		}
		images := benchImages(n, c.tag)
		want := p.Select(images)
		if !want.OK() {
			b.Fatalf("%s: nothing selected: %s", c.name, want.Reason())
		}
		b.Run(c.name+"/cold", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r := p.Select(images); r.Tag != want.Tag {
					b.Fatalf("Select = %q, want %q", r.Tag, want.Tag)
				}
			}
		})
		b.Run(c.name+"/after-push", func(b *testing.B) {
			// The memo knows the listing; one new image is pushed. The
			// lineage's cost, once per ECR repository however many policies
			// use it, is BenchmarkLineageNext's.
			pushedNow := append(slices.Clone(images), Image{Tags: []string{images[len(images)-1].Tags[0] + "-new"},
				Digest: "sha256:" + strings.Repeat("f", 64), PushedAt: images[len(images)-1].PushedAt.Add(time.Second)})
			var lineage Lineage
			before, after := lineage.Next(images), lineage.Next(pushedNow)
			known := NewMemo()
			p.SelectMemo(before, known)
			m := *known
			if r, want := p.SelectMemo(after, &m), p.Select(pushedNow); r != want {
				b.Fatalf("after a push, SelectMemo = %+v, Select = %+v", r, want)
			}
			b.ReportAllocs()
			for b.Loop() {
				m := *known // the memo as the last cycle left it (a copy costs nothing next to a cold pass)
				p.SelectMemo(after, &m)
			}
		})
		b.Run(c.name+"/warm", func(b *testing.B) {
			// The same listing again, as a fresh listing of an unchanged
			// ECR repository is known by its lineage.
			var lineage Lineage
			l := lineage.Next(images)
			m := NewMemo()
			p.SelectMemo(l, m)
			b.ReportAllocs()
			for b.Loop() {
				if r := p.SelectMemo(l, m); r.Tag != want.Tag {
					b.Fatalf("SelectMemo = %q, want %q", r.Tag, want.Tag)
				}
			}
		})
	}
}

// BenchmarkLineageNext is what telling a listing of 100,000 images from
// the last one costs, once per ECR repository per cycle: a fresh listing
// equal to the last (unchanged), and one more image (after-push), with the
// strings laid out in listing order, as a decoded listing has them
// (ordered), or anywhere in memory, as a listing sorted after decoding
// has them (scattered).
func BenchmarkLineageNext(b *testing.B) {
	images := benchImages(100_000, qaOrSha)
	ordered := slices.Clone(images)
	for i := range ordered {
		ordered[i].Tags = []string{strings.Clone(ordered[i].Tags[0])}
		ordered[i].Digest = strings.Clone(ordered[i].Digest)
	}
	scattered := slices.Clone(images)
	for _, i := range rand.New(rand.NewPCG(7, 7)).Perm(len(scattered)) {
		scattered[i].Tags = []string{strings.Clone(scattered[i].Tags[0])}
		scattered[i].Digest = strings.Clone(scattered[i].Digest)
	}
	pushed := func(l []Image) []Image {
		return append(slices.Clone(l), Image{Tags: []string{"qa-sha-new"}, Digest: "sha256:" + strings.Repeat("f", 64), PushedAt: images[len(images)-1].PushedAt})
	}
	unchanged := func(first, next Listing) bool { return next.id == first.id }
	grew := func(first, next Listing) bool { return next.base == first.id }
	for _, c := range []struct {
		name string
		next []Image
		want func(first, next Listing) bool
	}{
		{"unchanged", ordered, unchanged},
		{"after-push", pushed(ordered), grew},
		{"scattered/unchanged", scattered, unchanged},
		{"scattered/after-push", pushed(scattered), grew},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				var l Lineage
				first := l.Next(images)
				b.StartTimer()
				if next := l.Next(c.next); !c.want(first, next) {
					b.Fatalf("Next did not know the listing: %+v", next)
				}
			}
		})
	}
}

// qaOrSha makes two tags in three qa-sha-..., the others sha-...
func qaOrSha(r *rand.Rand, i int) string {
	if i%3 == 0 {
		return fmt.Sprintf("sha-%07x-%d", r.Uint32()>>4, i)
	}
	return fmt.Sprintf("qa-sha-%07x-%d", r.Uint32()>>4, i)
}

// BenchmarkHasPrefixLoop is the floor of a prefix filter: strings.HasPrefix
// over the same 100,000 images, keeping the newest match; with-exclusion
// also reads each tag's last byte, as every selection must for the default
// exclusion (.sig, .att, .sbom), which costs a second cache miss where a
// tag straddles two cache lines.
func BenchmarkHasPrefixLoop(b *testing.B) {
	images := benchImages(100_000, qaOrSha)
	for _, exclude := range []bool{false, true} {
		name := "bare"
		if exclude {
			name = "with-exclusion"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				var best *Image
				for i := range images {
					t := images[i].Tags[0]
					if exclude && t[len(t)-1] == 'g' && strings.HasSuffix(t, ".sig") {
						continue
					}
					if strings.HasPrefix(t, "qa-sha-") && (best == nil || !images[i].PushedAt.Before(best.PushedAt)) {
						best = &images[i]
					}
				}
				if best == nil {
					b.Fatal("no match")
				}
			}
		})
	}
}

// sink keeps what the floors warm from being optimized away.
var sink byte

// BenchmarkSelectFloor is what the cold numerical and semver picks of
// BenchmarkSelect cost at least: the same tags through a loop written for
// each policy alone (the exclusion's last-byte test, the pattern or the
// version core read inline, the range as a test of the major; tags read
// ahead a block at a time as Select reads them), allocating nothing.
// Compare with -bench 'Select/(a_|b_).*/cold$' -cpu 1.
func BenchmarkSelectFloor(b *testing.B) {
	excluded := func(t string) bool {
		switch t[len(t)-1] {
		case 'g', 't', 'm':
			return strings.HasSuffix(t, ".sig") || strings.HasSuffix(t, ".att") || strings.HasSuffix(t, ".sbom")
		}
		return false
	}
	semverFloor := func(inRange func(v [3]uint64) bool) func(images []Image) string {
		return func(images []Image) string {
			var best [3]uint64
			bestTag := ""
			var warmth byte
			for i := range images {
				if i%warmBlock == 0 {
					warmth ^= warm(images[i:min(i+warmBlock, len(images))])
				}
				for _, t := range images[i].Tags {
					if excluded(t) {
						continue
					}
					v, rest, ok := floorCore(t)
					if !ok || rest != "" || !inRange(v) { // a prerelease is outside these ranges
						continue
					}
					if bestTag == "" || floorLess(best, v) || v == best && t > bestTag {
						best, bestTag = v, t
					}
				}
			}
			sink ^= warmth
			return bestTag
		}
	}
	cases := []struct {
		name string
		pick func(images []Image) string
	}{
		{"a_regex_extract_numerical", func(images []Image) string {
			best, bestTag := uint64(0), ""
			var warmth byte
			for i := range images {
				if i%warmBlock == 0 {
					warmth ^= warm(images[i:min(i+warmBlock, len(images))])
				}
				for _, t := range images[i].Tags {
					if excluded(t) || !strings.HasPrefix(t, "dev-") || len(t) == 4 {
						continue
					}
					var n uint64
					ok := true
					for _, c := range []byte(t[4:]) {
						if c < '0' || c > '9' {
							ok = false
							break
						}
						n = n*10 + uint64(c-'0')
					}
					if ok && (bestTag == "" || n > best || n == best && t < bestTag) {
						best, bestTag = n, t
					}
				}
			}
			sink ^= warmth
			return bestTag
		}},
		{"b_semver_range", semverFloor(func(v [3]uint64) bool { return v[0] >= 1 && v[0] < 3 })},
		{"b_semver_distinct", semverFloor(func(v [3]uint64) bool { return v[0] == 2 })},
	}
	policies := map[string]Policy{}
	tags := map[string]func(r *rand.Rand, i int) string{}
	for _, c := range selectCases() {
		policies[c.name], tags[c.name] = c.policy, c.tag
	}
	for _, c := range cases {
		p := policies[c.name]
		p.ID = "ns:bench"
		if err := p.compile(); err != nil {
			b.Fatal(err)
		}
		images := benchImages(100_000, tags[c.name])
		want := p.Select(images).Tag
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if got := c.pick(images); got != want {
					b.Fatalf("floor picks %q, Select %q", got, want)
				}
			}
		})
	}
}

// floorCore reads MAJOR.MINOR.PATCH and what follows, for the floors.
func floorCore(t string) (v [3]uint64, rest string, ok bool) {
	t = strings.TrimPrefix(t, "v")
	i := 0
	for part := range 3 {
		start := i
		for i < len(t) && '0' <= t[i] && t[i] <= '9' {
			v[part] = v[part]*10 + uint64(t[i]-'0')
			i++
		}
		if i == start {
			return v, "", false
		}
		if part < 2 {
			if i == len(t) || t[i] != '.' {
				return v, "", false
			}
			i++
		}
	}
	return v, t[i:], true
}

func floorLess(a, b [3]uint64) bool {
	return a[0] < b[0] || a[0] == b[0] && (a[1] < b[1] || a[1] == b[1] && a[2] < b[2])
}
