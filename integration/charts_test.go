package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
)

// chartRelease is a Flux HelmRelease whose chart version a chart policy
// keeps current, beside an OCIRepository and an image policy on the same ECR
// repository (which holds both charts and images).
const chartRelease = `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: flux-system
  annotations:
    app.lilly.com/flux.automated: "true"
    app.lilly.com/flux.simple.podinfo-chart: "283234040926;charts/podinfo;semver:>=6.0.0"
    app.lilly.com/flux.artifact.podinfo-chart: "chart"
    app.lilly.com/flux.simple.podinfo-image: "283234040926;charts/podinfo;semver:>=6.0.0"
spec:
  interval: 10m
  chart:
    spec:
      chart: podinfo
      version: 6.4.0 # {"$imagepolicy": "flux-system:podinfo-chart:tag"}
      sourceRef: {kind: HelmRepository, name: podinfo}
  values:
    image:
      repository: 283234040926.dkr.ecr.us-east-2.amazonaws.com/charts/podinfo # {"$imagepolicy": "flux-system:podinfo-image:name"}
      tag: 6.4.0 # {"$imagepolicy": "flux-system:podinfo-image:tag"}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: podinfo
  namespace: flux-system
spec:
  url: oci://283234040926.dkr.ecr.us-east-2.amazonaws.com/charts/podinfo
  ref:
    tag: 6.4.0 # {"$imagepolicy": "flux-system:podinfo-chart:tag"}
`

// TestChartPolicy: an ECR repository holding Helm charts (8.1.0 the newest)
// and container images (7.0.0): a policy with the artifact annotation
// "chart" writes the newest chart version to the HelmRelease and the
// OCIRepository; the image policy on the same repository ignores the
// charts. moto reports no artifact type, so the ECR endpoint is a proxy in
// front of it that adds artifactMediaType to the charts' image details, as
// ECR's DescribeImages documents it.
func TestChartPolicy(t *testing.T) {
	needPeers(t)
	ctx := t.Context()
	c := moto.ECR(testpeers.SeedRegion)
	const repo = "charts/podinfo"
	if err := testpeers.CreateRepository(ctx, c, testpeers.SeedAccount, repo); err != nil {
		t.Fatal(err)
	}
	proxy := testpeers.NewECRProxy(moto.Endpoint)
	defer proxy.Close()
	for _, v := range []string{"6.4.0", "8.1.0"} {
		digest, err := testpeers.PushChart(ctx, c, testpeers.SeedAccount, repo, v)
		if err != nil {
			t.Fatal(err)
		}
		proxy.SetArtifactType(digest, testpeers.HelmChartConfigType)
	}
	for _, v := range []string{"6.9.0", "7.0.0"} {
		if _, err := testpeers.PushImage(ctx, c, testpeers.SeedAccount, repo, v); err != nil {
			t.Fatal(err)
		}
	}
	e := setupFiles(t, "charts", "", map[string]string{"flux/podinfo.yaml": chartRelease})
	cfg, _ := os.ReadFile(e.config)
	os.WriteFile(e.config, []byte(strings.Replace(string(cfg), "endpoint: "+moto.Endpoint, "endpoint: "+proxy.URL, 1)), 0o644)

	stdout, stderr, code := e.once(t)
	if code != 0 || !strings.Contains(stdout, "3 change(s), pushed") {
		t.Fatalf("once: exit %d\n%s\n%s", code, stdout, stderr)
	}
	got, _ := os.ReadFile(filepath.Join(e.clone(t), "flux/podinfo.yaml"))
	want := strings.NewReplacer(
		"version: 6.4.0", "version: 8.1.0",
		"tag: 6.4.0 # {\"$imagepolicy\": \"flux-system:podinfo-image:tag\"}", "tag: 7.0.0 # {\"$imagepolicy\": \"flux-system:podinfo-image:tag\"}",
		"tag: 6.4.0 # {\"$imagepolicy\": \"flux-system:podinfo-chart:tag\"}", "tag: 8.1.0 # {\"$imagepolicy\": \"flux-system:podinfo-chart:tag\"}",
	).Replace(chartRelease)
	if string(got) != want {
		t.Errorf("flux/podinfo.yaml after once:\n%s\nwant:\n%s", got, want)
	}
	// One listing per kind of artifact the repository's policies ask for.
	if calls := proxy.Calls(); len(calls) != 2 {
		t.Errorf("DescribeImages calls = %d, want 2 (images, charts): %+v", len(calls), calls)
	}
	if stdout, _, code := e.once(t); code != 0 || !strings.Contains(stdout, "up to date") {
		t.Errorf("second once: exit %d, %s", code, stdout)
	}
}
