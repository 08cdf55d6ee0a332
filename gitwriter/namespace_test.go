package gitwriter

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// An object that names no namespace takes the nearest kustomization's,
// read with the walk (one parse per kustomization) or, above the paths
// walked, on its own; the fallback when none names one.
func TestNamespaceFromKustomization(t *testing.T) {
	deploy := func(name string) string {
		return "kind: Deployment\nmetadata:\n  name: " + name + "\n  annotations:\n    app.lilly.com/flux.automated: \"true\"\n    app.lilly.com/flux.simple.p: \"283234040926;r;glob:*\"\n"
	}
	files := map[string]string{
		"kustomization.yaml":                "namespace: top\n",
		"apps/kustomization.yaml":           "resources: [a]\n", // names none: the top's
		"apps/a/deploy.yaml":                deploy("a"),
		"apps/b/kustomization.yml":          "namespace: bee\n",
		"apps/b/deploy.yaml":                deploy("b"),
		"apps/b/deeper/deploy.yaml":         deploy("b-deeper"),
		"apps/c/Kustomization":              "namespace: see\n",
		"apps/c/deploy.yaml":                deploy("c"),
		"apps/d/kustomization.yaml":         "namespace: [not, a, string\n",
		"apps/d/deploy.yaml":                deploy("d"),
		"apps/e/kustomization.yaml":         "namespace: ee\n",
		"apps/e/kustomization.yml":          "namespace: not-this-one\n",
		"apps/e/deploy.yaml":                deploy("e"),
		"apps/f/deploy.yaml":                "kind: Deployment\nmetadata:\n  name: f\n  namespace: own\n  annotations:\n    app.lilly.com/flux.automated: \"true\"\n",
		"elsewhere/kustomization.yaml":      "namespace: elsewhere\n",
		"elsewhere/only/deploy.yaml":        deploy("only"),
		"elsewhere/only/kustomization.yaml": "resources: [deploy.yaml]\n",
	}
	work := t.TempDir()
	for name, content := range files {
		p := filepath.Join(work, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		paths []string
		want  map[string]string
	}{
		{[]string{"."}, map[string]string{"a": "top", "b": "bee", "b-deeper": "bee", "c": "see", "d": "top", "e": "ee", "f": "own", "only": "elsewhere"}},
		// The kustomizations above apps/b and elsewhere/only are not walked: read on their own.
		{[]string{"apps/b", "elsewhere/only", "apps/a"}, map[string]string{"a": "top", "b": "bee", "b-deeper": "bee", "only": "elsewhere"}},
	} {
		tree, err := Discover(work, tc.paths, "fallback")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, o := range tree.Objects {
			got[o.Name] = o.Namespace
		}
		tree.Close()
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("paths %q: namespaces (-want +got):\n%s", tc.paths, diff)
		}
		var problems []string
		for _, p := range tree.Problems {
			problems = append(problems, p.Error())
		}
		var wantProblems []string
		if tc.paths[0] == "." {
			wantProblems = []string{"apps/d/kustomization.yaml: reading namespace: yaml: line 1: did not find expected ',' or ']'"}
		}
		if diff := cmp.Diff(wantProblems, problems); diff != "" {
			t.Errorf("paths %q: problems (-want +got):\n%s", tc.paths, diff)
		}
	}
}
