package cluster

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"

	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
)

// kubectlSpanRE finds the kubectl commands docs/deploying.md gives inline.
var kubectlSpanRE = regexp.MustCompile("`(kubectl [^`]+)`")

// TestDeploySteps follows docs/deploying.md on a fresh control plane, in
// its order: the namespace and the git Secret with the guide's own
// commands, then the kustomize overlays (copied out of the repository, as a
// user copies them) and the chart (rendered with its defaults, with the
// Argo CD Application's values, and clustered) applied with server-side
// dry-run, which checks every field against the API server's schemas.
func TestDeploySteps(t *testing.T) {
	needPeers(t)
	ctx := t.Context()
	dir := t.TempDir()
	kube := controlPlane(t) // no other test uses the namespace imagebutler
	kubectl := func(args ...string) string {
		t.Helper()
		out, err := kube.Run(ctx, testpeers.KubeAdmin, dir, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	// Steps 3: the guide's commands, verbatim and in its order (a Secret
	// before its namespace would fail here).
	guide, err := os.ReadFile("../../docs/deploying.md")
	if err != nil {
		t.Fatal(err)
	}
	var commands []string
	for _, m := range kubectlSpanRE.FindAllStringSubmatch(string(guide), -1) {
		if strings.Contains(m[1], "create ") {
			commands = append(commands, m[1])
		}
	}
	want := []string{"kubectl create namespace imagebutler", "kubectl -n imagebutler create secret generic imagebutler-git --from-file=token=./token"}
	if strings.Join(commands, "\n") != strings.Join(want, "\n") {
		t.Fatalf("docs/deploying.md's create commands = %q, want %q", commands, want)
	}
	os.WriteFile(filepath.Join(dir, "token"), []byte("ghp_example\n"), 0o600)
	for _, c := range commands {
		kubectl(strings.Fields(c)[1:]...)
	}
	if out := kubectl("-n", "imagebutler", "get", "secret", "imagebutler-git", "-o", "jsonpath={.data.token}"); out == "" {
		t.Fatal("the git Secret has no token")
	}

	// Step 4: the kustomize folder copied whole, outside the repository;
	// each example applied with server-side dry-run.
	copied := filepath.Join(dir, "kustomize")
	if err := os.CopyFS(copied, os.DirFS("../../deploy/kustomize")); err != nil {
		t.Fatal(err)
	}
	examples, _ := fs.Glob(os.DirFS(copied), "examples/*")
	if len(examples) < 2 {
		t.Fatalf("kustomize examples = %v", examples)
	}
	for _, ex := range examples {
		out := kubectl("apply", "--dry-run=server", "-k", filepath.Join(copied, ex))
		if !strings.Contains(out, "deployment.apps/imagebutler created (server dry run)") {
			t.Errorf("%s: kubectl apply -k said:\n%s", ex, out)
		}
		t.Logf("%s:\n%s", ex, out)
	}

	// Step 5 and 6: the chart, rendered as helm install and Argo CD render
	// it, applied with server-side dry-run.
	app, err := os.ReadFile("../../deploy/argocd/application.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var application struct {
		Spec struct {
			Source struct {
				Helm struct {
					ValuesObject map[string]any `yaml:"valuesObject"`
				} `yaml:"helm"`
			} `yaml:"source"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(app, &application); err != nil {
		t.Fatal(err)
	}
	image := map[string]any{"repository": "123456789012.dkr.ecr.us-east-2.amazonaws.com/imagebutler", "tag": "v0.1.0"}
	for _, c := range []struct {
		name   string
		values map[string]any
	}{
		{"defaults", map[string]any{"image": image}},
		{"argocd", application.Spec.Source.Helm.ValuesObject},
		{"cluster", map[string]any{"image": image, "cluster": map[string]any{"enabled": true}}},
	} {
		manifest := renderChart(t, c.values)
		path := filepath.Join(dir, c.name+".yaml")
		os.WriteFile(path, manifest, 0o644)
		out := kubectl("apply", "--dry-run=server", "-n", "imagebutler", "-f", path)
		if !strings.Contains(out, "deployment.apps/imagebutler created (server dry run)") {
			t.Errorf("chart with %s values: kubectl apply said:\n%s", c.name, out)
		}
		if c.name == "cluster" && (!strings.Contains(out, "role.rbac.authorization.k8s.io/imagebutler-leases created") || !strings.Contains(out, "poddisruptionbudget.policy/imagebutler created")) {
			t.Errorf("clustered chart: kubectl apply said:\n%s", out)
		}
	}
}

// renderChart renders deploy/helm/imagebutler as release imagebutler in
// namespace imagebutler with values (checked against its schema, as helm
// install does), the templates in name order.
func renderChart(t *testing.T, values map[string]any) []byte {
	t.Helper()
	c, err := loader.Load("../../deploy/helm/imagebutler")
	if err != nil {
		t.Fatal(err)
	}
	vals, err := chartutil.ToRenderValues(c, values, chartutil.ReleaseOptions{Name: "imagebutler", Namespace: "imagebutler", IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	files, err := engine.Render(c, vals)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range files {
		if strings.HasSuffix(n, ".yaml") && strings.TrimSpace(files[n]) != "" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var b bytes.Buffer
	for _, n := range names {
		fmt.Fprintf(&b, "---\n# %s\n%s\n", n, files[n])
	}
	return b.Bytes()
}
