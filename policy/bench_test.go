package policy

import (
	"fmt"
	"math/rand/v2"
	"runtime"
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

func BenchmarkSelect(b *testing.B) {
	const n = 100_000
	cases := []struct {
		name   string
		policy Policy
		tag    func(r *rand.Rand, i int) string
	}{
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
		{"c_newest_glob", Policy{Glob: "qa-sha-.*"}, qaOrSha},
		{"d_newest_regexp_prefix", Policy{Pattern: `^qa-sha-.*`}, qaOrSha},
	}
	for _, c := range cases {
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
			// The memo knows the listing; one new image is pushed.
			pushedNow := append(slices.Clone(images), Image{Tags: []string{images[len(images)-1].Tags[0] + "-new"},
				Digest: "sha256:" + strings.Repeat("f", 64), PushedAt: images[len(images)-1].PushedAt.Add(time.Second)})
			m := NewMemo()
			p.SelectMemo(images, m)
			if r, want := p.SelectMemo(pushedNow, m), p.Select(pushedNow); r != want {
				b.Fatalf("after a push, SelectMemo = %+v, Select = %+v", r, want)
			}
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				m := NewMemo()
				p.SelectMemo(images, m)
				runtime.GC() // the setup's garbage is not the selection's
				b.StartTimer()
				p.SelectMemo(pushedNow, m)
			}
		})
		b.Run(c.name+"/warm", func(b *testing.B) {
			m := NewMemo()
			p.SelectMemo(images, m)
			b.ReportAllocs()
			for b.Loop() {
				if r := p.SelectMemo(images, m); r.Tag != want.Tag {
					b.Fatalf("SelectMemo = %q, want %q", r.Tag, want.Tag)
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
// over the same 100,000 images, keeping the newest match.
func BenchmarkHasPrefixLoop(b *testing.B) {
	images := benchImages(100_000, qaOrSha)
	for b.Loop() {
		var best *Image
		for i := range images {
			if t := images[i].Tags[0]; strings.HasPrefix(t, "qa-sha-") && (best == nil || !images[i].PushedAt.Before(best.PushedAt)) {
				best = &images[i]
			}
		}
		if best == nil {
			b.Fatal("no match")
		}
	}
}
