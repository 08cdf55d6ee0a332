package gitwriter

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSymlinksAreNotFollowed(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "deployment.yaml")
	original := "image: example/old:1 # {\"$imagepolicy\": \"falcon-qa:my-policy-bartender\"}\n"
	if err := os.WriteFile(secret, []byte(original), 0o644); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	os.MkdirAll(filepath.Join(work, "apps"), 0o755)
	if err := os.Symlink(secret, filepath.Join(work, "apps", "linked.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(work, "outside-dir")); err != nil {
		t.Fatal(err)
	}

	tree, err := Discover(work, []string{"."}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	if len(tree.Markers) != 0 {
		t.Errorf("found markers through a symlink: %+v", tree.Markers)
	}
	var fe *FileError
	if len(tree.Problems) != 1 || !errors.As(tree.Problems[0], &fe) || fe.File != "apps/linked.yaml" || !fe.Warning ||
		!strings.Contains(fe.Error(), "is a symlink; not followed") {
		t.Errorf("problems = %v, want the symlink reported", tree.Problems)
	}
	changes, _ := tree.Apply(goldenResolutions)
	if len(changes) != 0 {
		t.Errorf("changes = %+v", changes)
	}
	if got, _ := os.ReadFile(secret); string(got) != original {
		t.Errorf("the file outside the working copy changed:\n%s", got)
	}

	// A configured path that is a link (out, or inside), or goes through
	// one, is reported, naming the link, and nothing under it is read.
	os.Symlink("apps", filepath.Join(work, "inside-dir"))
	for _, p := range []string{"outside-dir", "inside-dir", "outside-dir/x", "inside-dir/linked.yaml"} {
		tree, err := Discover(work, []string{p, "apps"}, "")
		if err != nil {
			t.Fatalf("Discover with paths entry %s: %v", p, err)
		}
		link, _, _ := strings.Cut(p, "/")
		if len(tree.Markers) != 0 || len(tree.Problems) != 2 || !strings.Contains(tree.Problems[0].Error(), fmt.Sprintf("paths entry %q: %s is a link", p, link)) {
			t.Errorf("paths entry %s: markers %v, problems %v", p, tree.Markers, tree.Problems)
		}
		tree.Close()
	}
	// So is a path that climbs out.
	if tree, err := Discover(work, []string{"../"}, ""); err == nil {
		tree.Close()
		t.Error("Discover of ../ succeeded")
	}
}

// A file past a budget is skipped with a warning that names the setting;
// the other files are read as usual.
func TestLimits(t *testing.T) {
	marker := "image: example/old:1 # {\"$imagepolicy\": \"falcon-qa:my-policy-bartender\"}\n"
	big := strings.Repeat("# filler line to make the file large ......................\n", MaxFileSize/60+10) + marker
	tests := map[string]struct {
		limits Limits
		file   string
		want   string // the one problem, or "" for none
	}{
		"default size": {Limits{}, big, "big.yaml: too large: 10486393 bytes, more than discovery.maxFileMiB (10 MiB); skipped"},
		"smaller size": {Limits{MaxFileBytes: 1 << 19}, strings.Repeat("#\n", 1<<18) + marker, "big.yaml: too large: 524361 bytes, more than discovery.maxFileMiB (524288 bytes); skipped"},
		"larger size":  {Limits{MaxFileBytes: 11 << 20}, big, ""},
		"fewer nodes":  {Limits{MaxNodes: 20}, strings.Repeat("a: b\n", 10) + marker, "big.yaml: may hold up to 41 YAML nodes, more than discovery.maxNodes (20); skipped"},
		"enough nodes": {Limits{MaxNodes: 41}, strings.Repeat("a: b\n", 10) + marker, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			work := t.TempDir()
			os.WriteFile(filepath.Join(work, "big.yaml"), []byte(tc.file), 0o644)
			os.WriteFile(filepath.Join(work, "small.yaml"), []byte(marker), 0o644)
			tree, err := tc.limits.Discover(work, []string{"."}, "")
			if err != nil {
				t.Fatal(err)
			}
			defer tree.Close()
			var problems []string
			for _, p := range tree.Problems {
				problems = append(problems, p.Error())
			}
			markers := 2
			if tc.want != "" {
				if len(problems) != 1 || problems[0] != tc.want {
					t.Errorf("problems = %q, want %q", problems, tc.want)
				}
				markers = 1
			} else if len(problems) != 0 {
				t.Errorf("problems = %q, want none", problems)
			}
			if len(tree.Markers) != markers {
				t.Errorf("%d markers, want %d", len(tree.Markers), markers)
			}
		})
	}
}

func TestHostileYAML(t *testing.T) {
	tests := map[string]struct {
		src     string
		markers int
		problem string
	}{
		"deep.yaml": {strings.Repeat("[", 100000) + "x" + strings.Repeat("]", 100000) + " # {\"$imagepolicy\": \"a:b\"}\n", 0,
			"deep.yaml:1: marker is not on a \"key: value\" line of a file that is not valid YAML; not rewritten"},
		"bomb.yaml": {`a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
metadata: {annotations: *h}
image: example/old:1 # {"$imagepolicy": "falcon-qa:my-policy-bartender"}
`, 1, ""},
		"nested-annotations.yaml": {"metadata:\n  annotations:\n    app.lilly.com/flux.automated: \"true\"\n    app.lilly.com/flux.simple.x: [1, [2, [3]]]\n", 0, ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			work := t.TempDir()
			os.WriteFile(filepath.Join(work, name), []byte(tt.src), 0o644)
			tree, err := Discover(work, []string{"."}, "")
			if err != nil {
				t.Fatal(err)
			}
			defer tree.Close()
			if len(tree.Markers) != tt.markers {
				t.Errorf("markers = %d, want %d", len(tree.Markers), tt.markers)
			}
			var msgs []string
			for _, p := range tree.Problems {
				msgs = append(msgs, p.Error())
			}
			if got := strings.Join(msgs, "\n"); got != tt.problem {
				t.Errorf("problems = %q, want %q", got, tt.problem)
			}
			tree.Apply(goldenResolutions) // must not panic or hang
		})
	}
}

// A kustomization.yaml is read for its namespace under the same rules as
// every file: never through a symlink, never past MaxFileSize.
func TestKustomizationNamespaceReadSafely(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "kustomization.yaml"), []byte("namespace: evil\n"), 0o644)
	work := t.TempDir()
	deploy := "kind: Deployment\nmetadata:\n  name: d\n  annotations:\n    app.lilly.com/flux.automated: \"true\"\n    app.lilly.com/flux.simple.p: \"283234040926;r;glob:*\"\n"
	for _, dir := range []string{"linked", "large"} {
		os.MkdirAll(filepath.Join(work, dir), 0o755)
		os.WriteFile(filepath.Join(work, dir, "deploy.yaml"), []byte(deploy), 0o644)
	}
	if err := os.Symlink(filepath.Join(outside, "kustomization.yaml"), filepath.Join(work, "linked", "kustomization.yaml")); err != nil {
		t.Fatal(err)
	}
	big := "namespace: big\n" + strings.Repeat("# filler line to make the file large ......................\n", MaxFileSize/60+10)
	os.WriteFile(filepath.Join(work, "large", "kustomization.yaml"), []byte(big), 0o644)

	tree, err := Discover(work, []string{"."}, "fallback")
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	for _, o := range tree.Objects {
		if o.Namespace != "fallback" {
			t.Errorf("%s: namespace %q, want the fallback", o.File, o.Namespace)
		}
	}
	var problems []string
	for _, p := range tree.Problems {
		problems = append(problems, p.Error())
	}
	want := []string{
		"large/kustomization.yaml: not read for its namespace: too large: 10486335 bytes, more than discovery.maxFileMiB (10 MiB); skipped",
		"large/kustomization.yaml: too large: 10486335 bytes, more than discovery.maxFileMiB (10 MiB); skipped",
		"linked/kustomization.yaml: is a symlink; not followed"}
	sort.Strings(problems)
	if diff := cmp.Diff(want, problems); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

// A file of many tiny nodes is skipped, not parsed: its cost stays small.
func TestManyNodesFileSkipped(t *testing.T) {
	work := t.TempDir()
	var b strings.Builder
	b.WriteString("# app.lilly.com/flux.automated is mentioned once\nlist: [")
	for b.Len() < 8<<20 {
		b.WriteString("a,")
	}
	b.WriteString("a]\n")
	os.WriteFile(filepath.Join(work, "nodes.yaml"), []byte(b.String()), 0o644)
	os.WriteFile(filepath.Join(work, "small.yaml"), []byte("a: b # {\"$imagepolicy\": \"n:p:tag\"}\n"), 0o644)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tree, err := Discover(work, []string{"."}, "")
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	if len(tree.Problems) != 1 || !strings.Contains(tree.Problems[0].Error(), "nodes.yaml: may hold up to") || len(tree.Markers) != 1 {
		t.Errorf("problems %v, markers %d", tree.Problems, len(tree.Markers))
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("discovery of an 8 MiB file of 4M nodes allocated %d MiB", allocated>>20)
	if allocated > 64<<20 {
		t.Errorf("allocated %d MiB", allocated>>20)
	}
}
