package policy

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestGlob(t *testing.T) {
	tests := []struct {
		glob, tag string
		want      bool
	}{
		{"sha-.*", "sha-06c5953", true},
		{"sha-*", "sha-06c5953", true},
		{"sha-.*", "qa-sha-06c5953", false},
		{"sha-*", "qa-sha-06c5953", false},
		{"qa-sha-.*", "qa-sha-06c5953", true},
		{"v?.0", "v1.0", true},
		{"v?.0", "v10.0", false},
		{"v1.0", "v1x0", false}, // '.' is literal
		{"1.2.*", "1.2.3", true},
		{"1.2.*", "1x2.3", false}, // the first '.' is literal
		{"a+b", "a+b", true},
		{"a+b", "aab", false},
		{"*", "", true},
		{"sha-.*", "sha-", true},
		{"*-*-rc", "a-b-c-rc", true},
		{"*-*-rc", "a-rc", false},
		{"**a", "bba", true},
		{"a*b*c", "abxbxc", true},
		{"a*b*c", "abxbxcd", false},
		{"?", "é", true}, // one character, not one byte
		{"[a]", "[a]", true},
	}
	for _, tt := range tests {
		if got := CompileGlob(tt.glob).Match(tt.tag); got != tt.want {
			t.Errorf("CompileGlob(%q).Match(%q) = %v, want %v", tt.glob, tt.tag, got, tt.want)
		}
	}
}

func at(sec int) time.Time { return time.Unix(1_700_000_000+int64(sec), 0).UTC() }

// tags makes one image per tag, pushed a second apart in order.
func tags(ts ...string) []Image {
	var out []Image
	for i, t := range ts {
		out = append(out, Image{Tags: []string{t}, Digest: fmt.Sprintf("sha256:%02d", i), PushedAt: at(i)})
	}
	return out
}

func compiled(t *testing.T, p Policy) *Policy {
	t.Helper()
	p.ID = "ns:p"
	if err := p.compile(); err != nil {
		t.Fatal(err)
	}
	return &p
}

func TestSelect(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		images []Image
		want   string // chosen tag
		counts [4]int // seen, excluded, filtered, unparsable
	}{
		// Newest by push time (simple glob and regexp).
		{"glob newest", Policy{Glob: "qa-sha-.*"}, tags("qa-sha-fff", "sha-aaa", "qa-sha-111", "other"), "qa-sha-111", [4]int{4, 0, 2, 0}},
		{"glob excludes signatures", Policy{Glob: "*"}, tags("sha-1", "sha256-abc.sig", "sha256-abc.att", "x.sbom"), "sha-1", [4]int{4, 3, 0, 0}},
		{"regexp is unanchored", Policy{Pattern: "rc"}, tags("v1-rc1", "main", "rc2-x"), "rc2-x", [4]int{3, 0, 1, 0}},
		{"newest tie goes to greatest tag", Policy{Glob: "*"}, []Image{{Tags: []string{"b", "c", "a"}, PushedAt: at(1)}}, "c", [4]int{3, 0, 0, 0}},

		// Alphabetical, as Flux: asc picks the greatest, desc the smallest.
		{"alphabetical asc", Policy{Order: Alphabetical}, tags("A", "Z", "M"), "Z", [4]int{3, 0, 0, 0}},
		{"alphabetical desc", Policy{Order: Alphabetical, Desc: true}, tags("M", "A", "Z"), "A", [4]int{3, 0, 0, 0}},
		{"alphabetical is byte-wise", Policy{Order: Alphabetical}, tags("a", "B", "_"), "a", [4]int{3, 0, 0, 0}},
		{"alphabetical extract", Policy{Order: Alphabetical, Pattern: `^dev-(?P<ts>\d+)$`, Extract: "$ts"},
			tags("dev-20230101", "dev-20241231", "main", "dev-2024"), "dev-20241231", [4]int{4, 0, 1, 0}},
		{"extract tie goes to the smallest tag, as in Flux", Policy{Order: Alphabetical, Pattern: `^(?:dev|qa)-(\d+)$`, Extract: "$1"},
			tags("qa-5", "dev-5", "dev-4"), "dev-5", [4]int{3, 0, 0, 0}},
		{"alphabetical desc tie goes to the smallest tag too", Policy{Order: Alphabetical, Desc: true, Pattern: `^(?:dev|qa)-(\d+)$`, Extract: "$1"},
			tags("qa-4", "dev-5", "dev-4"), "dev-4", [4]int{3, 0, 0, 0}},

		// Numerical: exact decimals, non-numbers skipped and counted.
		{"numerical picks 10", Policy{Order: Numerical}, tags("1", "10", "9", "latest"), "10", [4]int{4, 0, 0, 1}},
		{"numerical desc", Policy{Order: Numerical, Desc: true}, tags("1", "10", "9", "latest"), "1", [4]int{4, 0, 0, 1}},
		{"numerical 17 digits", Policy{Order: Numerical}, tags("20240101123456789", "20240101123456790", "20240101123456788"), "20240101123456790", [4]int{3, 0, 0, 0}},
		{"numerical decimals", Policy{Order: Numerical}, tags("1.5", "1.10", "1.05", "-3", "+2e-1"), "1.5", [4]int{5, 0, 0, 0}},
		{"numerical negatives", Policy{Order: Numerical}, tags("-10", "-2", "-2.5"), "-2", [4]int{3, 0, 0, 0}},
		{"numerical equal values tie to the smallest tag, as in Flux", Policy{Order: Numerical}, tags("1.0", "1", "01"), "01", [4]int{3, 0, 0, 0}},
		{"numerical desc ties to the smallest tag too", Policy{Order: Numerical, Desc: true}, tags("1.0", "1", "2"), "1", [4]int{3, 0, 0, 0}},
		{"numerical rejects hex, inf, nan", Policy{Order: Numerical}, tags("0x10", "Inf", "NaN", "3"), "3", [4]int{4, 0, 0, 3}},
		{"numerical over extract", Policy{Order: Numerical, Pattern: `^build-(\d+)$`, Extract: "$1"}, tags("build-9", "build-10", "build-x"), "build-10", [4]int{3, 0, 1, 0}},
		{"numerical nothing numeric", Policy{Order: Numerical}, tags("latest", "main"), "", [4]int{2, 0, 0, 2}},

		// Semver: Masterminds v3 rules, strict versions with an optional v, tag written back as found.
		{"semver ignores prerelease", Policy{Order: Semver, Range: ">=1.0.0"}, tags("1.0.0", "1.1.0-rc.1", "0.9.0"), "1.0.0", [4]int{3, 0, 2, 0}},
		{"semver takes prerelease with -0", Policy{Order: Semver, Range: ">=1.0.0-0"}, tags("1.0.0", "1.1.0-rc.1", "0.9.0"), "1.1.0-rc.1", [4]int{3, 0, 1, 0}},
		{"semver v prefix written back", Policy{Order: Semver, Range: ">=1.0.0 <3.0.0"}, tags("v2.1.0", "1.4.17", "v3.0.0", "latest", "main-abc1234"), "v2.1.0", [4]int{5, 0, 1, 2}},
		{"semver is strict", Policy{Order: Semver, Range: "*"}, tags("1.2", "20240101", "1.0.0", "v", "v1", "v1.0", "v1.2.3.4", "1.2.beta", "1.2-5", "1..3", "1.2.3-"), "1.0.0", [4]int{11, 0, 0, 10}},
		{"semver takes zero-padded CalVer, as Flux does", Policy{Order: Semver, Range: "*"}, tags("v2025.07.03", "2024.02.01", "v2025.06.30", "2025.7.2"), "v2025.07.03", [4]int{4, 0, 0, 0}},
		{"semver CalVer in a range", Policy{Order: Semver, Range: "<2025.0.0"}, tags("v2025.07.03", "2024.02.01", "2024.12.31-rc.1"), "2024.02.01", [4]int{3, 0, 2, 0}},
		{"semver rejects a zero-padded prerelease number", Policy{Order: Semver, Range: ">=0.1.0-0"}, tags("1.0.0-rc.01", "0.9.0"), "0.9.0", [4]int{2, 0, 0, 1}},
		{"semver build metadata ties to the greatest tag", Policy{Order: Semver, Range: "*"}, tags("1.0.0+b", "1.0.0+a", "0.9.0"), "1.0.0+b", [4]int{3, 0, 0, 0}},
		{"semver equal versions tie to greatest tag", Policy{Order: Semver, Range: "*"}, tags("v1.0.0", "1.0.0"), "v1.0.0", [4]int{2, 0, 0, 0}},
		{"semver over extract", Policy{Order: Semver, Range: "^1", Pattern: `^(?P<v>.*)-linux$`, Extract: "$v"}, tags("1.2.0-linux", "1.3.0-windows", "1.1.0-linux"), "1.2.0-linux", [4]int{3, 0, 1, 0}},

		// Exclusion lists replace the default.
		{"exclusion list replaces default", Policy{Glob: "*", Exclusions: []string{"^latest$"}}, tags("latest", "a", "b.sig"), "b.sig", [4]int{3, 1, 0, 0}},

		// $createdAt, when injected.
		{"createdAt ordered numerically", Policy{Order: Numerical, Pattern: "^qa-", Extract: "$createdAt", InjectCreatedAt: true},
			[]Image{{Tags: []string{"qa-b"}, PushedAt: at(9)}, {Tags: []string{"qa-a"}, PushedAt: at(10)}, {Tags: []string{"dev-z"}, PushedAt: at(11)}}, "qa-a", [4]int{3, 0, 1, 0}},
		{"createdAt in a template", Policy{Order: Alphabetical, Pattern: "^qa-(.)$", Extract: "${createdAt}-$1", InjectCreatedAt: true},
			[]Image{{Tags: []string{"qa-b"}, PushedAt: at(9)}, {Tags: []string{"qa-a"}, PushedAt: at(9)}}, "qa-b", [4]int{2, 0, 0, 0}},

		{"empty repository", Policy{Glob: "*"}, nil, "", [4]int{0, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := compiled(t, tt.policy)
			for _, memo := range []*Memo{nil, NewMemo()} {
				var lineage Lineage
				for pass := range 2 { // a warm memo must agree with a cold one
					r := p.SelectMemo(lineage.Next(tt.images), memo)
					got := [4]int{r.Seen, r.Excluded, r.Filtered, r.Unparsable}
					if r.Tag != tt.want || got != tt.counts {
						t.Errorf("memo %v pass %d: Select = %q %v, want %q %v", memo != nil, pass, r.Tag, got, tt.want, tt.counts)
					}
					if memo == nil {
						break
					}
				}
			}
		})
	}
}

func TestSelectResultExplainsItself(t *testing.T) {
	p := compiled(t, Policy{Order: Numerical, Pattern: `^dev-(?P<ts>\d+)$`, Extract: "$ts"})
	images := []Image{
		{Tags: []string{"dev-100", "latest"}, Digest: "sha256:aa", PushedAt: at(1)},
		{Tags: []string{"dev-99"}, Digest: "sha256:bb", PushedAt: at(2)},
		{Tags: []string{"dev-100.sig"}, Digest: "sha256:cc", PushedAt: at(3)},
	}
	want := Result{Tag: "dev-100", Digest: "sha256:aa", PushedAt: at(1), Value: "100", Seen: 4, Excluded: 1, Filtered: 1}
	if diff := cmp.Diff(want, p.Select(images)); diff != "" {
		t.Errorf("Select (-want +got):\n%s", diff)
	}
}

func TestMemoResetsForAnotherPolicy(t *testing.T) {
	m := NewMemo()
	var lineage Lineage
	l := lineage.Next(tags("a1", "a2", "b1"))
	a := compiled(t, Policy{Glob: "a*"})
	if r := a.SelectMemo(l, m); r.Tag != "a2" {
		t.Fatalf("Select = %q, want a2", r.Tag)
	}
	// Another policy's signature resets the memo rather than reusing the
	// choice made over the same listing.
	b := compiled(t, Policy{Glob: "b*"})
	if r := b.SelectMemo(l, m); r.Tag != "b1" {
		t.Errorf("with a memo of another policy, Select = %q, want b1", r.Tag)
	}
	// A listing without a lineage is judged afresh and not remembered.
	if r := b.SelectMemo(Listing{Images: tags("b2")}, m); r.Tag != "b2" {
		t.Errorf("over a listing of no lineage, Select = %q, want b2", r.Tag)
	}
	if r := b.SelectMemo(l, m); r.Tag != "b1" {
		t.Errorf("back to the remembered listing, Select = %q, want b1", r.Tag)
	}
}

func TestReason(t *testing.T) {
	tests := []struct {
		r    Result
		want string
	}{
		{Result{Tag: "x"}, ""},
		{Result{}, "the ECR repository has no tagged images"},
		{Result{Seen: 8, Excluded: 1, Filtered: 6, Unparsable: 1}, "no tag qualified: of 8 tags, 1 excluded, 6 filtered out, 1 not parsable by the order"},
	}
	for _, tt := range tests {
		if got := tt.r.Reason(); got != tt.want {
			t.Errorf("%+v.Reason() = %q, want %q", tt.r, got, tt.want)
		}
	}
}

func TestDecimal(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1", "1.0", 0}, {"-0", "0", 0}, {"0.5", "0.45", 1}, {"1e3", "999", 1}, {"1E-2", "0.01", 0},
		{"-1", "1", -1}, {"-1.5", "-1.25", -1}, {".5", "0.5", 0}, {"5.", "5", 0},
		{"20240101123456789", "20240101123456788", 1}, {"00012", "12", 0},
	}
	for _, tt := range tests {
		a, aok := parseDecimal(tt.a)
		b, bok := parseDecimal(tt.b)
		if !aok || !bok {
			t.Errorf("parseDecimal(%q, %q) = %v, %v", tt.a, tt.b, aok, bok)
			continue
		}
		if got := a.cmp(b); got != tt.want {
			t.Errorf("cmp(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
	for _, bad := range []string{"", "-", ".", "1e", "1e+", "1.2.3", "0x1", "Inf", "1e99999", " 1", "1_000"} {
		if _, ok := parseDecimal(bad); ok {
			t.Errorf("parseDecimal(%q) accepted", bad)
		}
	}
}

// TestSelectLarge checks the parallel and remembered paths against a plain
// sequential pass, over enough tags to split, as the listing grows and shifts.
func TestSelectLarge(t *testing.T) {
	policies := []Policy{
		{Order: Numerical, Pattern: `^dev-(?P<ts>[0-9]+)$`, Extract: "$ts"},
		{Order: Semver, Range: ">=1.0.0 <3.0.0"},
		{Glob: "qa-sha-.*"},
		{Order: Alphabetical, Desc: true},
	}
	images := benchImages(3*parallelMin, func(r *rand.Rand, i int) string {
		switch i % 5 {
		case 0:
			return fmt.Sprintf("dev-%d", 20240101000000000+r.Int64N(1e12))
		case 1:
			return fmt.Sprintf("%d.%d.%d", r.IntN(4), r.IntN(20), r.IntN(30))
		case 2:
			return fmt.Sprintf("qa-sha-%07x-%d", r.Uint32()>>4, i)
		}
		return fmt.Sprintf("main-%07x-%d", r.Uint32()>>4, i)
	})
	for _, pol := range policies {
		p := compiled(t, pol)
		m := NewMemo()
		var lineage Lineage
		for step, list := range [][]Image{
			images[:len(images)-100], // first listing
			images[:len(images)-100], // unchanged: all remembered
			images,                   // 100 pushed: a remembered prefix
			images[50:],              // 50 expired: nothing where it was
			append([]Image{}, images[50:]...),
			moved(images[50:]), // the first tag moved to a new image, pushed last
		} {
			want := p.chooseRange(list).result()
			if got := p.Select(list); got != want {
				t.Errorf("%s step %d: cold Select = %+v, want %+v", p.Ordering(), step, got, want)
			}
			if got := p.SelectMemo(lineage.Next(list), m); got != want {
				t.Errorf("%s step %d: SelectMemo = %+v, want %+v", p.Ordering(), step, got, want)
			}
		}
	}
}

func TestExplain(t *testing.T) {
	p := compiled(t, Policy{Order: Numerical, Pattern: `^dev-(\d+)$`, Extract: "$1"})
	e := p.Explain(tags("dev-9", "dev-10", "latest", "dev-2", "x.sig", "dev-10b", "dev-1"), 2)
	if e.Tag != "dev-10" || len(e.Candidates) != 2 || e.Candidates[0].Tag != e.Tag || e.Candidates[1].Tag != "dev-9" {
		t.Errorf("Explain = %+v", e)
	}
	want := []Dropped{{"latest", "filtered out"}, {"x.sig", "excluded"}, {"dev-10b", "filtered out"}}
	if diff := cmp.Diff(want, e.Dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
}

// TestPrereleaseShortcut: a range with no '-' rejects every prerelease, as
// Masterminds' Check does, so Select need not call it.
func TestPrereleaseShortcut(t *testing.T) {
	ranges := []string{">=1.0.0", "*", "^1", "~1.2", "1.x", ">0.0.0", "!=1.0.0", "<3", "=1.2.3", "1.2.3", ">=1.0.0 <3.0.0",
		"<1 || >=2", "x", "^0.0.1", "~0", ">= 1.2, < 3.0", "<=1.2.3", "1.2.*", ">=1.0.0-0", "1.2.3 - 1.4.0", "^1.2.3-alpha"}
	versions := []string{"1.2.3-rc.1", "1.0.0-0", "2.0.0-alpha", "0.0.1-x", "1.2.3-beta+meta", "3.0.0-rc", "1.3.0-rc.1", "1.2.3", "2.5.0"}
	for _, r := range ranges {
		p := compiled(t, Policy{Order: Semver, Range: r})
		for _, v := range versions {
			ver, _ := mastermindsVersion(v)
			want := p.constraint.Check(ver)
			got := p.Select(tags(v)).OK()
			if got != want {
				t.Errorf("range %q, version %s: Select qualifies it = %v, Masterminds Check = %v", r, v, got, want)
			}
		}
	}
}

// moved returns a copy of images whose first tag now belongs to a new
// image, pushed after every other.
func moved(images []Image) []Image {
	out := append([]Image{}, images...)
	out[0].Digest, out[0].PushedAt = "sha256:moved", out[len(out)-1].PushedAt.Add(time.Hour)
	return out
}

// TestMemoNoticesMovedTag: the same tags in the same places, but a tag now
// on a newer image: the remembered result must not be reused.
func TestMemoNoticesMovedTag(t *testing.T) {
	p := compiled(t, Policy{Glob: "*"})
	m := NewMemo()
	var lineage Lineage
	before := []Image{{Tags: []string{"a"}, Digest: "sha256:1", PushedAt: at(1)}, {Tags: []string{"b"}, Digest: "sha256:2", PushedAt: at(2)}}
	if r := p.SelectMemo(lineage.Next(before), m); r.Tag != "b" {
		t.Fatalf("Select = %q, want b", r.Tag)
	}
	after := []Image{{Tags: []string{"a"}, Digest: "sha256:3", PushedAt: at(3)}, {Tags: []string{"b"}, Digest: "sha256:2", PushedAt: at(2)}}
	if r := p.SelectMemo(lineage.Next(after), m); r.Tag != "a" || r.Digest != "sha256:3" {
		t.Errorf("after a moved: Select = %q %s, want a sha256:3", r.Tag, r.Digest)
	}
}

// A memo carried through a listing that grows by pushes, retags and
// deletions gives, at every step, what a cold Select gives: counts, tag,
// digest and push time, for every order.
func TestMemoFollowsListingChanges(t *testing.T) {
	policies := []Policy{
		{Glob: "qa-*"},
		{Pattern: `^qa-`},
		{Order: Alphabetical, Pattern: `^qa-(?P<v>.*)$`, Extract: "$v"},
		{Order: Numerical, Pattern: `^qa-(?P<n>[0-9]+)$`, Extract: "$n", Desc: true},
		{Order: Semver, Range: ">=1.0.0"},
		{Order: Numerical, Pattern: `^qa-`, Extract: "$createdAt", InjectCreatedAt: true},
	}
	r := rand.New(rand.NewPCG(3, 4))
	tag := func() string {
		switch r.IntN(4) {
		case 0:
			return fmt.Sprintf("qa-%d", r.IntN(50))
		case 1:
			return fmt.Sprintf("%d.%d.%d", r.IntN(3), r.IntN(5), r.IntN(5))
		case 2:
			return fmt.Sprintf("main-%d", r.IntN(50))
		}
		return fmt.Sprintf("qa-%d.sig", r.IntN(50))
	}
	for _, pol := range policies {
		p := compiled(t, pol)
		m := NewMemo()
		var (
			lineage Lineage
			images  []Image
		)
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for step := range 300 {
			switch op := r.IntN(10); {
			case op < 6 || len(images) == 0: // push a new image (now and then two, or a second tag)
				at = at.Add(time.Duration(r.IntN(3)) * time.Second)
				images = append(images, Image{Tags: []string{tag()}, Digest: fmt.Sprintf("sha256:%064d", step), PushedAt: at})
				if r.IntN(4) == 0 {
					images[len(images)-1].Tags = append(images[len(images)-1].Tags, tag())
				}
			case op < 8: // delete one
				i := r.IntN(len(images))
				images = append(images[:i:i], images[i+1:]...)
			default: // retag the last image
				last := &images[len(images)-1]
				last.Tags = append(last.Tags[:len(last.Tags):len(last.Tags)], tag())
			}
			listing := slices.Clone(images)
			got, want := p.SelectMemo(lineage.Next(listing), m), p.Select(listing)
			if got != want {
				t.Fatalf("%s step %d: SelectMemo = %+v, Select = %+v", p.Fingerprint(), step, got, want)
			}
		}
	}
}

// TestNewestLiteralAgreesWithJudge: the loop of a newest-pushed policy
// with a literal filter gives what judge and offer give through the glob or
// regexp itself, counts, tag and image, over tags with signatures, empty tags, line breaks and push-time
// ties, several to an image.
func TestNewestLiteralAgreesWithJudge(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	pieces := []string{"qa-", "-rc", "x", "main", ".sig", ".att", ".sbom", "\n", "1", "a"}
	tag := func() string {
		var b strings.Builder
		for range r.IntN(4) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		return b.String()
	}
	var images []Image
	for i := range 3000 {
		img := Image{Digest: fmt.Sprintf("sha256:%064d", i), PushedAt: at(r.IntN(500))}
		for range 1 + r.IntN(3) {
			img.Tags = append(img.Tags, tag())
		}
		images = append(images, img)
	}
	for _, pol := range []Policy{
		{Glob: "qa-*"}, {Glob: "*-rc"}, {Glob: "main"}, {Glob: "*x*"}, {Glob: "*"}, {Glob: "qa-.*"},
		{Pattern: `^qa-`}, {Pattern: `-rc$`}, {Pattern: `^qa-.*$`}, {Pattern: `^.*rc$`}, {Pattern: `main`}, {Pattern: `^x$`},
	} {
		p := compiled(t, pol)
		if !p.newestLitOK {
			t.Fatalf("%s: no literal loop", p.Filter())
		}
		slow := *p
		slow.newestLitOK, slow.hasLit = false, false // judge through the glob or the regexp itself
		for _, list := range [][]Image{images, images[:1], nil} {
			if got, want := p.chooseRange(list).result(), slow.chooseRange(list).result(); got != want {
				t.Errorf("%s over %d images: literal loop %+v, judge %+v", p.Filter(), len(list), got, want)
			}
		}
	}
}
