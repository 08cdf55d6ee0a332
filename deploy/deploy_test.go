package deploy

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"helm.sh/helm/v3/pkg/chart/loader"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/imagebutler/imagebutler/config"
)

// objects are the rendered objects, strictly decoded by kind.
type objects struct {
	namespaces      []corev1.Namespace
	serviceAccounts []corev1.ServiceAccount
	configMaps      []corev1.ConfigMap
	deployments     []appsv1.Deployment
	services        []corev1.Service
	claims          []corev1.PersistentVolumeClaim
	networkPolicies []networkingv1.NetworkPolicy
	roles           []rbacv1.Role
	roleBindings    []rbacv1.RoleBinding
	budgets         []policyv1.PodDisruptionBudget
	// monitoring holds the prometheus-operator objects, loosely decoded.
	monitoring []map[string]any
}

// decode reads a stream of YAML documents; every object must decode into
// its k8s.io/api type with no unknown field.
func decode(t *testing.T, stream []byte) objects {
	t.Helper()
	var o objects
	dec := yaml.NewDecoder(bytes.NewReader(stream))
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("rendered YAML does not parse: %v\n%s", err, stream)
		}
		if doc == nil {
			continue
		}
		raw, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		kind, _ := doc["kind"].(string)
		var target any
		switch kind {
		case "Namespace":
			target = grow(&o.namespaces)
		case "ServiceAccount":
			target = grow(&o.serviceAccounts)
		case "ConfigMap":
			target = grow(&o.configMaps)
		case "Deployment":
			target = grow(&o.deployments)
		case "Service":
			target = grow(&o.services)
		case "PersistentVolumeClaim":
			target = grow(&o.claims)
		case "NetworkPolicy":
			target = grow(&o.networkPolicies)
		case "Role":
			target = grow(&o.roles)
		case "RoleBinding":
			target = grow(&o.roleBindings)
		case "PodDisruptionBudget":
			target = grow(&o.budgets)
		case "ServiceMonitor", "PrometheusRule":
			o.monitoring = append(o.monitoring, doc)
			continue
		default:
			t.Fatalf("unexpected kind %q", kind)
		}
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(target); err != nil {
			t.Fatalf("%s %v: %v", kind, doc["metadata"], err)
		}
	}
	return o
}

// grow appends a zero object to list and returns a pointer to it.
func grow[T any](list *[]T) *T {
	*list = append(*list, *new(T))
	return &(*list)[len(*list)-1]
}

// check asserts what a platform engineer relies on.
func check(t *testing.T, o objects) {
	t.Helper()
	var configs []corev1.ConfigMap // the dashboard's is another
	for _, cm := range o.configMaps {
		if _, ok := cm.Data["imagebutler.yaml"]; ok {
			configs = append(configs, cm)
		}
	}
	if len(o.serviceAccounts) != 1 || len(o.deployments) != 1 || len(configs) != 1 || len(o.services) != 1 {
		t.Fatalf("rendered %d ServiceAccounts, %d Deployments, %d config ConfigMaps, %d Services; want one each",
			len(o.serviceAccounts), len(o.deployments), len(configs), len(o.services))
	}
	sa, d, cm, svc := o.serviceAccounts[0], o.deployments[0], configs[0], o.services[0]
	if arn, ok := sa.Annotations["eks.amazonaws.com/role-arn"]; ok && !strings.HasPrefix(arn, "arn:aws:iam::") {
		t.Errorf("ServiceAccount role annotation = %q", arn)
	}
	spec := d.Spec.Template.Spec
	if spec.ServiceAccountName != sa.Name {
		t.Errorf("Deployment runs as %q, the ServiceAccount is %q", spec.ServiceAccountName, sa.Name)
	}
	cfg, err := config.Parse("ConfigMap "+cm.Name, []byte(cm.Data["imagebutler.yaml"]))
	if err != nil {
		t.Fatalf("the ConfigMap's imagebutler.yaml does not validate:\n%v", err)
	}
	if cfg.Cluster != nil {
		checkCluster(t, o, cfg)
	} else if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType || len(o.roles) != 0 {
		t.Errorf("Deployment replicas %v strategy %q, %d Roles; want 1, Recreate and none (no cluster section)", d.Spec.Replicas, d.Spec.Strategy.Type, len(o.roles))
	}
	if psc := spec.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context = %+v", psc)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("containers = %d", len(spec.Containers))
	}
	c := spec.Containers[0]
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("container security context = %+v", sc)
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("resources = %+v", c.Resources)
	}

	// The config the ConfigMap holds is valid, and the Deployment reads it.
	mounts := map[string]string{} // volume → mount path
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	configFile := ""
	for i, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			configFile = v
		} else if a == "--config" && i+1 < len(c.Args) {
			configFile = c.Args[i+1]
		}
	}
	var cfgVolume string
	for name, v := range volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name == cm.Name {
			cfgVolume = name
		}
	}
	if cfgVolume == "" || configFile != path.Join(mounts[cfgVolume], "imagebutler.yaml") {
		t.Errorf("--config %q is not imagebutler.yaml in the mount of ConfigMap %s (%q)", configFile, cm.Name, mounts[cfgVolume])
	}
	if mounts["state"] != cfg.StateDir {
		t.Errorf("stateDir %s is not the state volume's mount %s", cfg.StateDir, mounts["state"])
	}
	for i, r := range cfg.Repositories {
		for _, f := range []string{r.Auth.TokenFile, r.Auth.SSHKeyFile, r.Auth.KnownHostsFile} {
			if f != "" && !strings.HasPrefix(f, mounts["git"]+"/") {
				t.Errorf("repositories[%d]: %s is not in the git secret's mount %s", i, f, mounts["git"])
			}
		}
	}
	if v := volumes["git"]; v.Secret == nil || v.Secret.SecretName == "" {
		t.Errorf("git volume = %+v, want a Secret", v)
	}

	// Probes point at the port imagebutler listens on, at real endpoints.
	_, portText, _ := strings.Cut(*cfg.Listen, ":")
	listenPort, _ := strconv.Atoi(portText)
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for name, probe := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		want := map[string]string{"liveness": "/healthz", "readiness": "/readyz"}[name]
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want {
			t.Errorf("%s probe = %+v, want GET %s", name, probe, want)
			continue
		}
		port := probe.HTTPGet.Port.IntVal
		if probe.HTTPGet.Port.StrVal != "" {
			port = ports[probe.HTTPGet.Port.StrVal]
		}
		if int(port) != listenPort {
			t.Errorf("%s probe port %v is not the listen port %d", name, probe.HTTPGet.Port, listenPort)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name == "" || ports[svc.Spec.Ports[0].TargetPort.StrVal] == 0 {
		t.Errorf("Service ports = %+v; want a named port targeting the container's", svc.Spec.Ports)
	}
}

// checkCluster asserts what replicas sharing the repositories need: more
// than one, replaced one at a time, each with its pod name as identity, a
// Role for Leases in their own namespace only, bound to their service
// account, and a disruption budget that keeps all but one.
func checkCluster(t *testing.T, o objects, cfg *config.Config) {
	t.Helper()
	d := o.deployments[0]
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 || d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		t.Errorf("clustered Deployment replicas %v strategy %q; want several and RollingUpdate", d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	spec := d.Spec.Template.Spec
	env := map[string]string{}
	for _, e := range spec.Containers[0].Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			env[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if env["POD_NAME"] != "metadata.name" || env["POD_NAMESPACE"] != "metadata.namespace" || env["POD_IP"] != "status.podIP" {
		t.Errorf("clustered container env from fields = %v", env)
	}
	if len(spec.TopologySpreadConstraints) == 0 {
		t.Errorf("clustered pod has no topology spread")
	}
	for _, v := range spec.Volumes {
		if v.Name == "state" && v.EmptyDir == nil {
			t.Errorf("clustered state volume = %+v, want an emptyDir per pod", v)
		}
	}
	if len(o.roles) != 1 || len(o.roleBindings) != 1 || len(o.budgets) != 1 {
		t.Fatalf("%d Roles, %d RoleBindings, %d PodDisruptionBudgets; want one each", len(o.roles), len(o.roleBindings), len(o.budgets))
	}
	role, rb, pdb := o.roles[0], o.roleBindings[0], o.budgets[0]
	if len(role.Rules) != 1 || !slices.Equal(role.Rules[0].APIGroups, []string{"coordination.k8s.io"}) || !slices.Equal(role.Rules[0].Resources, []string{"leases"}) ||
		!slices.Equal(role.Rules[0].Verbs, []string{"get", "list", "create", "update", "delete"}) {
		t.Errorf("Role rules = %+v; want leases only", role.Rules)
	}
	if role.Namespace != d.Namespace || cfg.Cluster.Namespace != d.Namespace && cfg.Cluster.Namespace != "default" {
		t.Errorf("Role in %q, Leases in %q, Deployment in %q", role.Namespace, cfg.Cluster.Namespace, d.Namespace)
	}
	if rb.RoleRef.Name != role.Name || len(rb.Subjects) != 1 || rb.Subjects[0].Kind != "ServiceAccount" || rb.Subjects[0].Name != spec.ServiceAccountName {
		t.Errorf("RoleBinding = %+v, want Role %s bound to ServiceAccount %s", rb, role.Name, spec.ServiceAccountName)
	}
	if f := cfg.Cluster.SecretFile; f != "" {
		mounted := false
		for _, m := range spec.Containers[0].VolumeMounts {
			for _, v := range spec.Volumes {
				mounted = mounted || v.Name == m.Name && v.Secret != nil && strings.HasPrefix(f, m.MountPath+"/")
			}
		}
		if !mounted {
			t.Errorf("cluster.secretFile %s is in no mounted Secret", f)
		}
	}
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget maxUnavailable = %v, want 1", pdb.Spec.MaxUnavailable)
	}
	for k, v := range pdb.Spec.Selector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("PodDisruptionBudget selects %s=%s, the pod has %q", k, v, d.Spec.Template.Labels[k])
		}
	}
}

func kustomize(t *testing.T, dir string) objects {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	o := decode(t, out)
	check(t, o)
	for _, obj := range []string{o.deployments[0].Namespace, o.serviceAccounts[0].Namespace} {
		if obj != "imagebutler" {
			t.Errorf("%s: namespace = %q, want imagebutler", dir, obj)
		}
	}
	// The ConfigMap is generated with a hash suffix, so an edit rolls the pod.
	if name := o.configMaps[0].Name; !strings.HasPrefix(name, "imagebutler-config-") {
		t.Errorf("%s: ConfigMap name %q carries no hash", dir, name)
	}
	return o
}

func TestKustomizeBase(t *testing.T) {
	base := kustomize(t, "kustomize/base")
	// The clustered example: three replicas, its Role and budget.
	if c := kustomize(t, "kustomize/examples/cluster"); len(c.roles) != 1 || *c.deployments[0].Spec.Replicas != 3 {
		t.Errorf("cluster example: %d Roles, %d replicas", len(c.roles), *c.deployments[0].Spec.Replicas)
	}
	eks := kustomize(t, "kustomize/examples/eks")
	if base.configMaps[0].Name == eks.configMaps[0].Name {
		t.Errorf("the overlay's config has the base's ConfigMap name %s: an edit would not roll the pod", base.configMaps[0].Name)
	}
	if got := eks.deployments[0].Spec.Template.Spec.Containers[0].Image; got != "123456789012.dkr.ecr.us-east-2.amazonaws.com/imagebutler:v0.1.0" {
		t.Errorf("overlay image = %s", got)
	}
	if got := eks.serviceAccounts[0].Annotations["eks.amazonaws.com/role-arn"]; got != "arn:aws:iam::123456789012:role/imagebutler" {
		t.Errorf("overlay role ARN = %q", got)
	}
}

func TestHelmChart(t *testing.T) {
	chart, err := loader.Load("helm/imagebutler")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		values map[string]any
		claims int
	}{
		{"defaults", nil, 0},
		{"persistence and digest", map[string]any{"persistence": map[string]any{"enabled": true}, "image": map[string]any{"digest": "sha256:" + strings.Repeat("a", 64)}}, 1},
		{"cluster", map[string]any{"cluster": map[string]any{"enabled": true, "config": map[string]any{"shards": 32}}, "replicaCount": 4}, 0},
		{"cluster with events", map[string]any{"cluster": map[string]any{"enabled": true, "secretName": "imagebutler-cluster"},
			"config": map[string]any{"stateDir": "/var/lib/imagebutler", "listen": ":8080", "git": map[string]any{"author": map[string]any{"name": "b", "email": "b@example.com"}},
				"repositories": []any{map[string]any{"url": "https://github.com/example/apps.git", "branch": "main"}},
				"events":       map[string]any{"sqs": map[string]any{"queueURL": "https://sqs.us-east-2.amazonaws.com/123456789012/imagebutler"}}}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, _, err := render(t, chart, tc.values)
			if err != nil {
				t.Fatal(err)
			}
			check(t, o)
			if len(o.claims) != tc.claims {
				t.Errorf("PersistentVolumeClaims = %d, want %d", len(o.claims), tc.claims)
			}
			if tc.claims == 1 && o.deployments[0].Spec.Template.Spec.Containers[0].Image != "ghcr.io/imagebutler/imagebutler@sha256:"+strings.Repeat("a", 64) {
				t.Errorf("image = %s", o.deployments[0].Spec.Template.Spec.Containers[0].Image)
			}
		})
	}
}

// TestStaticBinary builds the command as the Dockerfile does and checks it
// needs no C library: the final image (distroless static) has none.
func TestStaticBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dockerfile, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "distroless/static", "nonroot",
		"--platform=$BUILDPLATFORM golang:1.26.10", "GOOS=$TARGETOS GOARCH=$TARGETARCH", "org.opencontainers.image.revision"} {
		if !bytes.Contains(dockerfile, []byte(want)) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	// Every stage that is not built here comes from a pinned digest or a
	// patch-level tag: a rebuild of the same commit gets the same base.
	for _, m := range regexp.MustCompile(`(?m)^FROM (?:--platform=\S+ )?(\S+)`).FindAllSubmatch(dockerfile, -1) {
		ref := string(m[1])
		if strings.Contains(ref, "distroless") && !regexp.MustCompile(`@sha256:[0-9a-f]{64}$`).MatchString(ref) {
			t.Errorf("Dockerfile: base %s is not pinned by digest", ref)
		}
	}
	bin := filepath.Join(t.TempDir(), "imagebutler")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "../cmd/imagebutler")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary asks for a dynamic loader")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs %v", libs)
	}
}

// The Argo CD Application example installs the chart of this repository
// with values the chart's schema accepts, and renders the objects the
// chart promises.
func TestArgoCDApplication(t *testing.T) {
	data, err := os.ReadFile("argocd/application.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var app struct {
		APIVersion string         `yaml:"apiVersion"`
		Kind       string         `yaml:"kind"`
		Metadata   map[string]any `yaml:"metadata"`
		Spec       struct {
			Project string `yaml:"project"`
			Source  struct {
				RepoURL        string `yaml:"repoURL"`
				TargetRevision string `yaml:"targetRevision"`
				Path           string `yaml:"path"`
				Helm           struct {
					ReleaseName  string         `yaml:"releaseName"`
					ValuesObject map[string]any `yaml:"valuesObject"`
				} `yaml:"helm"`
			} `yaml:"source"`
			Destination struct {
				Server    string `yaml:"server"`
				Namespace string `yaml:"namespace"`
			} `yaml:"destination"`
			SyncPolicy map[string]any `yaml:"syncPolicy"`
		} `yaml:"spec"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&app); err != nil {
		t.Fatal(err)
	}
	if app.APIVersion != "argoproj.io/v1alpha1" || app.Kind != "Application" {
		t.Fatalf("%s/%s is not an Argo CD Application", app.APIVersion, app.Kind)
	}
	src := app.Spec.Source
	if _, err := os.Stat(filepath.Join("..", src.Path, "Chart.yaml")); err != nil {
		t.Fatalf("source.path %s is not this repository's chart: %v", src.Path, err)
	}
	c, err := loader.Load(filepath.Join("..", src.Path))
	if err != nil {
		t.Fatal(err)
	}
	o, _, err := render(t, c, src.Helm.ValuesObject)
	if err != nil {
		t.Fatalf("the chart refuses the Application's values: %v", err)
	}
	check(t, o)
	if got := o.deployments[0].Spec.Template.Spec.Containers[0].Image; got != "123456789012.dkr.ecr.us-east-2.amazonaws.com/imagebutler:v0.1.0" {
		t.Errorf("image = %s", got)
	}
	if app.Spec.Destination.Namespace != "imagebutler" {
		t.Errorf("destination namespace %q", app.Spec.Destination.Namespace)
	}
}

// The EKS overlay builds once copied out of the repository, as people copy
// it: the kustomize folder whole (base beside examples/eks).
func TestKustomizeOverlayCopied(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "kustomize")
	err := filepath.WalkDir("kustomize", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dst, strings.TrimPrefix(path, "kustomize"))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	kustomize(t, filepath.Join(dst, "examples", "eks"))
}
