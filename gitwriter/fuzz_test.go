package gitwriter

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzRewrite rewrites arbitrary file bytes with arbitrary tags: it never
// panics, output parses as YAML whenever the input did, only the bytes of
// the marked values differ, and a second pass changes nothing.
func FuzzRewrite(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/original/*.yaml")
	more, _ := filepath.Glob("testdata/*/original/*/*.yaml")
	for _, s := range append(seeds, more...) {
		b, err := os.ReadFile(s)
		if err == nil {
			f.Add(b, "qa-sha-1a2b3c4")
		}
	}
	f.Add([]byte("a: 'x' # {\"$imagepolicy\": \"n:p:tag\"}\n"), "1e3")
	f.Add([]byte("a: x # {\"$imagepolicy\": \"n:p:tag\"}\n"), "build-{{ .Values.secret }}")
	f.Add([]byte("a: 'x' # {\"$imagepolicy\": \"n:p:tag\"}\n"), "a\nb")
	f.Fuzz(func(t *testing.T, src []byte, tag string) {
		// Any tag bytes: the writer itself refuses what is no reference.
		if len(tag) > 256 {
			tag = tag[:256]
		}
		work := t.TempDir()
		file := filepath.Join(work, "f.yaml")
		if err := os.WriteFile(file, src, 0o644); err != nil {
			t.Fatal(err)
		}
		before, changes := rewriteOnce(t, work, tag)
		out, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if len(changes) == 0 {
			if !bytes.Equal(out, src) {
				t.Fatalf("no changes reported, but the file changed")
			}
			return
		}
		if parsesAsYAML(src) && !parsesAsYAML(out) {
			t.Fatalf("input parsed as YAML, output does not:\n%s", out)
		}
		for _, c := range changes {
			if !referenceRE.MatchString(c.New) || strings.Contains(c.New, "{{") {
				t.Fatalf("%q is no reference, but was written", c.New)
			}
		}
		after, again := rewriteOnce(t, work, tag)
		if len(again) != 0 {
			t.Fatalf("second pass changed %+v", again)
		}
		// Every changed value now reads as exactly what was written.
		written := map[int]string{}
		for _, c := range changes {
			written[c.Line] = c.New
		}
		for _, m := range after {
			if want, ok := written[m.Line]; ok && m.Value != want {
				t.Fatalf("line %d reads %q, want %q", m.Line, m.Value, want)
			}
		}
		// Only the marked values differ: the bytes between them are equal.
		if len(before) != len(after) {
			t.Fatalf("%d markers before, %d after", len(before), len(after))
		}
		prevIn, prevOut := 0, 0
		for i := range before {
			a, b := before[i], after[i]
			if a.start < prevIn || b.start < prevOut {
				continue // overlapping markers on one value
			}
			if !bytes.Equal(src[prevIn:a.start], out[prevOut:b.start]) {
				t.Fatalf("bytes outside values differ before marker %d:\n%q\n%q", i, src[prevIn:a.start], out[prevOut:b.start])
			}
			prevIn, prevOut = a.end, b.end
		}
		if !bytes.Equal(src[prevIn:], out[prevOut:]) {
			t.Fatalf("bytes after the last marker differ")
		}
	})
}

// rewriteOnce resolves every policy the markers name to example/img:tag.
func rewriteOnce(t *testing.T, dir, tag string) ([]Marker, []Change) {
	tree, err := Discover(dir, []string{"."}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	resolved := map[string]Resolution{}
	for _, m := range tree.Markers {
		resolved[m.Policy] = Resolution{Image: "example/img", Tag: tag, Digest: "sha256:" + tag}
	}
	markers := append([]Marker(nil), tree.Markers...)
	changes, _ := tree.Apply(resolved)
	return markers, changes
}

func parsesAsYAML(src []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return true
		}
		if err != nil {
			return false
		}
	}
}
