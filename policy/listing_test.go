package policy

import (
	"slices"
	"testing"
)

// TestLineage: Next knows a listing for the last one, unchanged, or for
// the last one followed by new images, and for nothing else.
func TestLineage(t *testing.T) {
	img := func(tag, digest string, sec int) Image {
		return Image{Tags: []string{tag}, Digest: digest, PushedAt: at(sec)}
	}
	a, b, c := img("a", "sha256:1", 1), img("b", "sha256:2", 2), img("c", "sha256:3", 3)
	two := func(tags ...string) Image { return Image{Tags: tags, Digest: "sha256:1", PushedAt: at(1)} }
	tests := []struct {
		name       string
		last, next []Image
		want       string // same, extends, new
	}{
		{"unchanged", []Image{a, b}, []Image{a, b}, "same"},
		{"unchanged, empty", nil, nil, "same"},
		{"one pushed", []Image{a, b}, []Image{a, b, c}, "extends"},
		{"first push", nil, []Image{a}, "extends"},
		{"oldest expired", []Image{a, b}, []Image{b}, "new"},
		{"expired and pushed", []Image{a, b}, []Image{b, c}, "new"},
		{"one deleted between", []Image{a, b, c}, []Image{a, c}, "new"},
		{"pushed between", []Image{a, c}, []Image{a, b, c}, "new"},
		{"a tag moved", []Image{a, b}, []Image{a, img("b", "sha256:9", 2)}, "new"},
		{"push time differs", []Image{a, b}, []Image{a, img("b", "sha256:2", 5)}, "new"},
		{"a tag renamed", []Image{a, b}, []Image{a, img("x", "sha256:2", 2)}, "new"},
		{"a tag added", []Image{two("a")}, []Image{two("a", "b")}, "new"},
		{"tags split differently", []Image{two("ab", "c")}, []Image{two("a", "bc")}, "new"},
		{"tags reordered", []Image{two("a", "b")}, []Image{two("b", "a")}, "new"},
		{"all gone", []Image{a}, nil, "new"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l Lineage
			first := l.Next(slices.Clone(tt.last))
			next := l.Next(slices.Clone(tt.next))
			got := "new"
			switch {
			case next.id == first.id:
				got = "same"
			case next.base == first.id:
				got = "extends"
				if next.baseLen != len(tt.last) {
					t.Errorf("extends %d images, want %d", next.baseLen, len(tt.last))
				}
			}
			if got != tt.want {
				t.Errorf("Next = %s, want %s", got, tt.want)
			}
			if next.id == 0 || first.id == 0 {
				t.Errorf("a listing of a lineage has no id")
			}
		})
	}
}

// TestLineagesDoNotMix: a listing of one lineage never passes for one of
// another, though their images are the same.
func TestLineagesDoNotMix(t *testing.T) {
	var x, y Lineage
	images := tags("a", "b")
	lx, ly := x.Next(images), y.Next(images)
	if lx.id == ly.id {
		t.Errorf("two lineages gave one id, %d", lx.id)
	}
	p := compiled(t, Policy{Glob: "*"})
	m := NewMemo()
	p.SelectMemo(lx, m)
	if r := p.SelectMemo(y.Next(tags("a", "b", "c")), m); r.Tag != "c" || r.Seen != 3 {
		t.Errorf("SelectMemo = %+v, want c of 3", r)
	}
}
