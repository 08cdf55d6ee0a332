package gitwriter

import (
	"bytes"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imagebutler/imagebutler/policy"
)

var update = flag.Bool("update", false, "rewrite the expected golden trees")

// goldenResolutions is what the policies of every golden case resolve to.
var goldenResolutions = map[string]Resolution{
	"falcon-qa:my-policy-bartender": {
		Image:  "283234040926.dkr.ecr.us-east-2.amazonaws.com/lrl_falcon_bartender",
		Tag:    "qa-sha-1a2b3c4",
		Digest: "sha256:6b1c0c6f0e1c1b1d8e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d",
	},
	"apps:numeric":       {Image: "example/numeric", Tag: "20240101"},
	"apps:nodigest":      {Image: "example/nodigest", Tag: "1.0.0"},
	"apps:failed":        {Err: errors.New("no tag qualified: of 3 tags, 3 did not match the filter")},
	"from-kustomize:app": {Image: "example/app", Tag: "2"},
	"apps:always":        {Image: "example/always", Tag: "2", Digest: "sha256:2222", Digests: policy.ReflectAlways},
	"apps:once":          {Image: "example/once", Tag: "2", Digest: "sha256:2222", Digests: policy.ReflectIfNotPresent},
	"apps:never":         {Image: "example/never", Tag: "2", Digest: "sha256:2222", Digests: policy.ReflectNever},
	"apps:newline":       {Image: "example/newline", Tag: "a\nb"},
	"apps:yes":           {Image: "example/yes", Tag: "yes"},
	"apps:template":      {Image: "example/template", Tag: "build-{{ .Values.secret }}"},
}

func TestRewriteGolden(t *testing.T) {
	cases, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if _, err := os.Stat(filepath.Join("testdata", c.Name(), "original")); err != nil {
			continue // not a golden tree (fuzz corpus)
		}
		t.Run(c.Name(), func(t *testing.T) {
			base := filepath.Join("testdata", c.Name())
			work := t.TempDir()
			copyTree(t, filepath.Join(base, "original"), work)

			report := rewrite(t, work)
			if *update {
				os.RemoveAll(filepath.Join(base, "expected"))
				copyTree(t, work, filepath.Join(base, "expected"))
				os.WriteFile(filepath.Join(base, "report.txt"), []byte(report), 0o644)
			}
			compareTrees(t, filepath.Join(base, "expected"), work)
			want, _ := os.ReadFile(filepath.Join(base, "report.txt"))
			if diff := cmp.Diff(string(want), report); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}

			// A second pass over its own output changes nothing.
			again := rewriteChanges(t, work)
			if len(again) != 0 {
				t.Errorf("second pass changed %d values: %+v", len(again), again)
			}
			compareTrees(t, filepath.Join(base, "expected"), work)
		})
	}
}

func rewriteChanges(t *testing.T, dir string) []Change {
	t.Helper()
	tree, err := Discover(dir, []string{"."}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	changes, _ := tree.Apply(goldenResolutions)
	return changes
}

// rewrite runs discovery and Apply over dir, and returns a report of the
// objects, markers, changes and problems.
func rewrite(t *testing.T, dir string) string {
	t.Helper()
	tree, err := Discover(dir, []string{"."}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	var b strings.Builder
	for _, o := range tree.Objects {
		b.WriteString("object " + o.File + ": " + o.ObjectRef.String() + "\n")
	}
	for _, m := range tree.Markers {
		b.WriteString("marker " + m.Location() + " " + m.Policy + " " + string(m.Setter) + " " + m.Value + "\n")
	}
	changes, problems := tree.Apply(goldenResolutions)
	for _, c := range changes {
		b.WriteString("change " + c.File + ": " + c.Old + " -> " + c.New + "\n")
	}
	for _, p := range append(tree.Problems, problems...) {
		kind := "problem "
		if fe, ok := p.(*FileError); ok && fe.Warning {
			kind = "warning "
		}
		b.WriteString(kind + p.Error() + "\n")
	}
	return b.String()
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

func compareTrees(t *testing.T, want, got string) {
	t.Helper()
	files := map[string]bool{}
	for _, dir := range []string{want, got} {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(dir, p)
				files[rel] = true
			}
			return nil
		})
	}
	for f := range files {
		w, werr := os.ReadFile(filepath.Join(want, f))
		g, gerr := os.ReadFile(filepath.Join(got, f))
		if werr != nil || gerr != nil {
			t.Errorf("%s: present in only one tree (want: %v, got: %v)", f, werr, gerr)
			continue
		}
		if !bytes.Equal(w, g) {
			t.Errorf("%s differs (-want +got):\n%s", f, cmp.Diff(string(w), string(g)))
		}
	}
}
