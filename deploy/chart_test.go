package deploy

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metricsql"
	"go.yaml.in/yaml/v3"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"

	"github.com/imagebutler/imagebutler/config"
)

var update = flag.Bool("update", false, "rewrite the chart's values.schema.json")

const schemaFile = "helm/imagebutler/values.schema.json"

// TestChartSchema: values.schema.json rejects unknown top-level keys and
// holds imagebutler's own config schema under config, generated from the
// config package (go test ./deploy -update rewrites it).
func TestChartSchema(t *testing.T) {
	raw, err := os.ReadFile("helm/imagebutler/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	props := map[string]any{}
	for key, v := range values {
		switch v.(type) {
		case map[string]any:
			props[key] = map[string]any{"type": "object"}
		case []any:
			props[key] = map[string]any{"type": "array"}
		case string:
			props[key] = map[string]any{"type": "string"}
		case bool:
			props[key] = map[string]any{"type": "boolean"}
		case int:
			props[key] = map[string]any{"type": "integer"}
		default:
			props[key] = map[string]any{}
		}
	}
	props["config"] = config.Schema()
	want, _ := json.MarshalIndent(map[string]any{
		"$schema": "http://json-schema.org/draft-07/schema#", "title": "imagebutler chart values",
		"type": "object", "properties": props, "additionalProperties": false,
	}, "", "  ")
	want = append(want, '\n')
	if *update {
		os.WriteFile(schemaFile, want, 0o644)
	}
	got, _ := os.ReadFile(schemaFile)
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not the schema of values.yaml and config.Schema(); run go test ./deploy -update", schemaFile)
	}
}

// render renders the chart with values (validated against its schema, as
// `helm install` does) and returns the objects and NOTES.txt.
func render(t *testing.T, c *chart.Chart, values map[string]any) (objects, string, error) {
	t.Helper()
	vals, err := chartutil.ToRenderValues(c, values, chartutil.ReleaseOptions{Name: "imagebutler", Namespace: "imagebutler"}, chartutil.DefaultCapabilities)
	if err != nil {
		return objects{}, "", err
	}
	files, err := engine.Render(c, vals)
	if err != nil {
		return objects{}, "", err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var stream bytes.Buffer
	for _, n := range names {
		if strings.HasSuffix(n, ".yaml") {
			fmt.Fprintf(&stream, "---\n%s\n", files[n])
		}
	}
	return decode(t, stream.Bytes()), files["imagebutler/templates/NOTES.txt"], nil
}

// Every peer-chart key is used, a typo is refused at install time, and the
// monitoring objects render with alert rules that parse as PromQL.
func TestChartValues(t *testing.T) {
	c, err := loader.Load("helm/imagebutler")
	if err != nil {
		t.Fatal(err)
	}
	full := map[string]any{
		"image":              map[string]any{"repository": "registry.example.com/imagebutler", "tag": "v1.2.3", "pullPolicy": "Always"},
		"imagePullSecrets":   []any{map[string]any{"name": "regcred"}},
		"serviceAccount":     map[string]any{"create": true, "name": "butler", "roleARN": "arn:aws:iam::123456789012:role/imagebutler", "annotations": map[string]any{"a": "b"}},
		"podLabels":          map[string]any{"team": "platform"},
		"podAnnotations":     map[string]any{"x": "y"},
		"priorityClassName":  "system-cluster-critical",
		"extraArgs":          []any{"--log-level=debug"},
		"extraVolumes":       []any{map[string]any{"name": "ca", "configMap": map[string]any{"name": "ca"}}},
		"extraVolumeMounts":  []any{map[string]any{"name": "ca", "mountPath": "/etc/ssl/extra"}},
		"nodeSelector":       map[string]any{"kubernetes.io/arch": "arm64"},
		"tolerations":        []any{map[string]any{"key": "k", "operator": "Exists"}},
		"podSecurityContext": map[string]any{"runAsNonRoot": true, "runAsUser": 65532, "fsGroup": 65532},
		"serviceMonitor":     map[string]any{"enabled": true},
		"prometheusRule":     map[string]any{"enabled": true},
		"dashboards":         map[string]any{"enabled": true},
		"networkPolicy": map[string]any{"enabled": true,
			"metricsFrom": []any{map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "monitoring"}}}},
			"egress":      []any{map[string]any{"ports": []any{map[string]any{"port": 443}}}}},
	}
	o, notes, err := render(t, c, full)
	if err != nil {
		t.Fatal(err)
	}
	check(t, o)
	pod := o.deployments[0].Spec.Template.Spec
	if pod.ServiceAccountName != "butler" || o.serviceAccounts[0].Name != "butler" ||
		o.serviceAccounts[0].Annotations["eks.amazonaws.com/role-arn"] != "arn:aws:iam::123456789012:role/imagebutler" {
		t.Errorf("service account: pod uses %q, object %+v", pod.ServiceAccountName, o.serviceAccounts[0].ObjectMeta)
	}
	if len(pod.ImagePullSecrets) != 1 || pod.PriorityClassName != "system-cluster-critical" || pod.NodeSelector["kubernetes.io/arch"] != "arm64" ||
		len(pod.Tolerations) != 1 || o.deployments[0].Spec.Template.Labels["team"] != "platform" {
		t.Errorf("pod spec lacks a value: %+v", pod)
	}
	main := pod.Containers[0]
	if main.Image != "registry.example.com/imagebutler:v1.2.3" || main.Args[len(main.Args)-1] != "--log-level=debug" || main.VolumeMounts[len(main.VolumeMounts)-1].MountPath != "/etc/ssl/extra" {
		t.Errorf("container = %+v", main)
	}
	if len(pod.InitContainers) != 1 || pod.InitContainers[0].Args[0] != "check-config" {
		t.Errorf("no check-config init container: %+v", pod.InitContainers)
	}
	if len(o.configMaps) != 2 || len(o.monitoring) != 2 {
		t.Errorf("%d ConfigMaps (want config and dashboard), %d monitoring objects (want 2)", len(o.configMaps), len(o.monitoring))
	}
	for _, m := range o.monitoring {
		if m["kind"] != "PrometheusRule" {
			continue
		}
		groups := m["spec"].(map[string]any)["groups"].([]any)
		for _, g := range groups {
			for _, r := range g.(map[string]any)["rules"].([]any) {
				expr := r.(map[string]any)["expr"].(string)
				if _, err := metricsql.Parse(expr); err != nil {
					t.Errorf("alert %v: %q does not parse: %v", r.(map[string]any)["alert"], expr, err)
				}
			}
		}
	}
	// The NetworkPolicy selects the pod and opens only its metrics port, to
	// the monitoring namespace; egress is limited because rules were given.
	if len(o.networkPolicies) != 1 {
		t.Fatalf("%d NetworkPolicies, want 1", len(o.networkPolicies))
	}
	np := o.networkPolicies[0].Spec
	for k, v := range np.PodSelector.MatchLabels {
		if o.deployments[0].Spec.Template.Labels[k] != v {
			t.Errorf("NetworkPolicy selects %s=%s, the pod has %q", k, v, o.deployments[0].Spec.Template.Labels[k])
		}
	}
	if len(np.PodSelector.MatchLabels) == 0 || len(np.Ingress) != 1 || len(np.Ingress[0].Ports) != 1 ||
		np.Ingress[0].Ports[0].Port.String() != pod.Containers[0].Ports[0].Name || len(np.Ingress[0].From) != 1 ||
		len(np.PolicyTypes) != 2 || len(np.Egress) != 1 {
		t.Errorf("NetworkPolicy = %+v", np)
	}
	if !strings.Contains(notes, "kubectl -n imagebutler logs deploy/imagebutler") {
		t.Errorf("NOTES.txt = %q", notes)
	}
	var dash map[string]any
	for _, cm := range o.configMaps {
		if body, ok := cm.Data["imagebutler.json"]; ok {
			if err := json.Unmarshal([]byte(body), &dash); err != nil {
				t.Errorf("dashboard is not JSON: %v", err)
			}
		}
	}
	if dash["title"] != "imagebutler" {
		t.Errorf("dashboard = %v", dash["title"])
	}

	// A typo, at the top or inside config, fails at install time.
	for _, bad := range []map[string]any{
		{"serviceAcount": map[string]any{}},
		{"config": map[string]any{"repositories": []any{map[string]any{"url": "https://x/y.git", "brnach": "main"}}}},
		{"config": map[string]any{"concurrency": "four"}},
		{"config": map[string]any{"listen": "8080"}}, // check-config refuses it too; the pod would crash-loop
	} {
		if _, _, err := render(t, c, bad); err == nil || !strings.Contains(err.Error(), "schema") {
			t.Errorf("values %v: err = %v, want a schema error", bad, err)
		}
	}
}

// Notification receivers take their secrets through the existing values:
// a Secret mounted with extraVolumes, the files named in config.notify;
// the rendered config is one imagebutler loads.
func TestChartNotifyReceivers(t *testing.T) {
	c, err := loader.Load("helm/imagebutler")
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]any{
		"config": map[string]any{
			"schedule": "@every 1m", "stateDir": "/var/lib/imagebutler", "listen": ":8080",
			"aws": map[string]any{"region": "us-east-2"},
			"git": map[string]any{"author": map[string]any{"name": "Light Account Butler", "email": "butler@example.com"}},
			"repositories": []any{map[string]any{"url": "https://github.com/example/apps.git", "branch": "main",
				"auth": map[string]any{"username": "x-access-token", "tokenFile": "/etc/imagebutler/git/token"}}},
			"notify": []any{
				map[string]any{"type": "slack", "urlFile": "/etc/imagebutler/notify/slack-url", "events": []any{"pushed", "held"}},
				map[string]any{"type": "webhook", "urlFile": "/etc/imagebutler/notify/hook-url", "secretFile": "/etc/imagebutler/notify/hook-key"},
			},
		},
		"extraVolumes":      []any{map[string]any{"name": "notify", "secret": map[string]any{"secretName": "imagebutler-notify", "defaultMode": 0o400}}},
		"extraVolumeMounts": []any{map[string]any{"name": "notify", "mountPath": "/etc/imagebutler/notify", "readOnly": true}},
	}
	o, _, err := render(t, c, values)
	if err != nil {
		t.Fatal(err)
	}
	check(t, o)
	pod := o.deployments[0].Spec.Template.Spec
	mounted := false
	for _, m := range pod.Containers[0].VolumeMounts {
		mounted = mounted || m.Name == "notify" && m.MountPath == "/etc/imagebutler/notify" && m.ReadOnly
	}
	if !mounted || pod.Volumes[len(pod.Volumes)-1].Secret == nil || pod.Volumes[len(pod.Volumes)-1].Secret.SecretName != "imagebutler-notify" {
		t.Errorf("the receivers' Secret is not mounted: %+v, %+v", pod.Containers[0].VolumeMounts, pod.Volumes)
	}
	for _, cm := range o.configMaps {
		if raw, ok := cm.Data["imagebutler.yaml"]; ok {
			cfg, err := config.Parse("imagebutler.yaml", []byte(raw))
			if err != nil {
				t.Fatalf("the rendered config does not load: %v", err)
			}
			if len(cfg.Notify) != 2 || cfg.Notify[0].URLFile != "/etc/imagebutler/notify/slack-url" || cfg.Notify[1].SecretFile != "/etc/imagebutler/notify/hook-key" {
				t.Errorf("notify = %+v", cfg.Notify)
			}
		}
	}
}
