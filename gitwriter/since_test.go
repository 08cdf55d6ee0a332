package gitwriter

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// DiscoverSince gives what Discover gives, whichever files changed: a
// changed file, a changed kustomization namespace, a file added, a file
// removed, a file that turned into a symlink.
func TestDiscoverSinceMatchesDiscover(t *testing.T) {
	deploy := func(name, tag string) string {
		return fmt.Sprintf(`kind: Deployment
metadata:
  name: %s
  annotations:
    app.lilly.com/flux.automated: "true"
    app.lilly.com/flux.simple.%s: "283234040926;repo;glob:*"
spec:
  template:
    spec:
      containers:
        - image: 283234040926.dkr.ecr.us-east-2.amazonaws.com/repo:%s # {"$imagepolicy": "ns:%s"}
`, name, name, tag, name)
	}
	before := map[string]string{
		"a/kustomization.yaml": "namespace: one\n",
		"a/app.yaml":           deploy("a", "v1"),
		"a/b/app.yaml":         deploy("b", "v1"),
		"c/app.yaml":           deploy("c", "v1"),
		"c/values.yaml":        "tag: v1 # {\"$imagepolicy\": \"ns:c:tag\"}\n",
		"d/app.yaml":           deploy("d", "v1"),
		"e/broken.yaml":        "a: [\n",
	}
	tests := map[string]map[string]string{ // name → the files that change ("" removes)
		"nothing":                           {},
		"file changed":                      {"c/app.yaml": deploy("c", "v2")},
		"namespace changed":                 {"a/kustomization.yaml": "namespace: two\n"},
		"kustomization new":                 {"c/kustomization.yaml": "namespace: three\n"},
		"file added":                        {"f/app.yaml": deploy("f", "v1")},
		"file removed":                      {"d/app.yaml": ""},
		"broken mended":                     {"e/broken.yaml": "a: []\n"},
		"added between":                     {"a/aa.yaml": deploy("aa", "v1"), "c/b.yaml": deploy("cb", "v1")},
		"added beside a folder of its name": {"c.yaml": deploy("cy", "v1"), "a/b.yml": deploy("ab", "v1")},
		"added deep":                        {"a/b/c/d/app.yaml": deploy("deep", "v1"), "a/b/Kustomization": "namespace: k\n"},
		"file to symlink":                   {"c/app.yaml": "->../d/app.yaml"},
		"not YAML":                          {"a/notes.txt": "image: x # {\"$imagepolicy\": \"ns:a\"}\n"},
	}
	write := func(dir string, files map[string]string) {
		for name, content := range files {
			p := filepath.Join(dir, name)
			if content == "" {
				os.Remove(p)
				continue
			}
			os.MkdirAll(filepath.Dir(p), 0o755)
			if target, ok := strings.CutPrefix(content, "->"); ok {
				os.Remove(p)
				os.Symlink(target, p)
				continue
			}
			os.WriteFile(p, []byte(content), 0o644)
		}
	}
	show := func(tr *Tree) string {
		var s string
		for _, o := range tr.Objects {
			s += fmt.Sprintf("object %s:%d %s %v\n", o.File, o.Line, o.ObjectRef, o.Annotations)
		}
		for _, m := range tr.Markers {
			s += fmt.Sprintf("marker %s %s %s %q %s\n", m.Location(), m.Policy, m.Setter, m.Value, m.Object)
		}
		for _, p := range tr.Problems {
			s += "problem " + p.Error() + "\n"
		}
		return s
	}
	for _, paths := range [][]string{{"."}, {"c", "a", "a/b"}} {
		for name, change := range tests {
			t.Run(strings.Join(paths, ",")+"/"+name, func(t *testing.T) {
				dir := t.TempDir()
				write(dir, before)
				prev, err := Discover(dir, paths, "fallback")
				if err != nil {
					t.Fatal(err)
				}
				defer prev.Close()
				write(dir, change)
				got, err := DefaultLimits.DiscoverSince(prev, ChangedFiles(slices.Collect(maps.Keys(change))...), dir, paths, "fallback")
				if err != nil {
					t.Fatal(err)
				}
				defer got.Close()
				want, err := Discover(dir, paths, "fallback")
				if err != nil {
					t.Fatal(err)
				}
				defer want.Close()
				if diff := cmp.Diff(show(want), show(got)); diff != "" {
					t.Errorf("DiscoverSince differs from Discover (-Discover +DiscoverSince):\n%s", diff)
				}
				if len(change) > 0 && show(prev) == show(want) && name != "broken mended" && name != "not YAML" && paths[0] == "." {
					t.Errorf("the change changed nothing: the case tests nothing")
				}
			})
		}
	}
}
