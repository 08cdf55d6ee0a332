package gitwriter

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchTree is a generated repository: 1,000 app folders of five files
// (Deployment, Service, ConfigMap, Helm values, kustomization), about 21 MB.
// Half the Deployments carry markers (about 670 in all three forms), one
// app in ten defines a policy, and one file in ten has formatting variety.
type benchTree struct {
	files    map[string][]byte // original
	expected map[string][]byte // after the rewrite
	resolved map[string]Resolution
	changed  int // files whose values change
	markers  int
}

const benchImage = "283234040926.dkr.ecr.us-east-2.amazonaws.com/lrl_app"

func newBenchTree() *benchTree {
	bt := &benchTree{files: map[string][]byte{}, expected: map[string][]byte{}, resolved: map[string]Resolution{}}
	for i := 0; i < 1000; i += 10 {
		bt.resolved[fmt.Sprintf("apps:app-%d", i)] = Resolution{Image: fmt.Sprintf("%s%d", benchImage, i), Tag: "sha-new", Digest: "sha256:new"}
	}
	filler := strings.Repeat("x", 60)
	for i := range 1000 {
		dir := fmt.Sprintf("apps/app-%04d/", i)
		policy := fmt.Sprintf("apps:app-%d", i/10*10)
		image := fmt.Sprintf("%s%d", benchImage, i/10*10)
		variety := i%10 == 3

		var orig, want strings.Builder
		both := func(s string) { orig.WriteString(s); want.WriteString(s) }
		if variety {
			both("---\n# app with a leading document marker\n\n")
		}
		both(fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-%d\n  namespace: apps\n", i))
		if i%10 == 0 {
			both(fmt.Sprintf("  annotations:\n    app.lilly.com/flux.automated: \"true\"\n    app.lilly.com/flux.simple.app-%d: \"283234040926;lrl_app%d;glob:sha-*\"\n", i, i))
		}
		both("spec:\n  template:\n    spec:\n      containers:\n")
		// Half the Deployments have markers; a third of those have two.
		old := "sha-old"
		if i%11 == 0 {
			old = "sha-new" // already current: no change
		}
		if i%2 == 0 {
			bt.markers++
			orig.WriteString(fmt.Sprintf("        - name: app\n          image: %s:%s # {\"$imagepolicy\": %q}\n", image, old, policy))
			want.WriteString(fmt.Sprintf("        - name: app\n          image: %s:sha-new # {\"$imagepolicy\": %q}\n", image, policy))
			if i%12 == 0 {
				bt.markers++
				orig.WriteString(fmt.Sprintf("          env:\n            - name: TAG\n              value: %s # {\"$imagepolicy\": \"%s:tag\"}\n", old, policy))
				want.WriteString(fmt.Sprintf("          env:\n            - name: TAG\n              value: sha-new # {\"$imagepolicy\": \"%s:tag\"}\n", policy))
			} else if i%12 == 6 {
				bt.markers++
				orig.WriteString(fmt.Sprintf("          env:\n            - name: IMAGE\n              value: \"%s\" # {\"$imagepolicy\": \"%s:name\"}\n", image, policy))
				want.WriteString(fmt.Sprintf("          env:\n            - name: IMAGE\n              value: \"%s\" # {\"$imagepolicy\": \"%s:name\"}\n", image, policy))
			}
			if old != "sha-new" {
				bt.changed++
			}
		} else {
			both("        - name: app\n          image: example/app:1.0.0\n")
		}
		both("          resources:\n            limits: {cpu: 100m, memory: 128Mi}\n")
		for j := range 40 {
			both(fmt.Sprintf("          # %s %d\n", filler, j))
		}
		if variety {
			both("          args: |\n            --flag   \n            --other\n")
		}
		bt.add(dir+"deployment.yaml", orig.String(), want.String(), variety && i%20 == 3)

		svc := fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata:\n  name: app-%d\nspec:\n  ports:\n  - port: 80\n", i)
		bt.add(dir+"service.yaml", svc+strings.Repeat("# "+filler+"\n", 12), "", false)

		var cm strings.Builder
		cm.WriteString(fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-%d\ndata:\n  config.txt: |\n", i))
		for j := range 175 {
			cm.WriteString(fmt.Sprintf("    line %d %s\n", j, filler))
		}
		bt.add(dir+"configmap.yaml", cm.String(), "", false)

		var values, valuesWant strings.Builder
		values.WriteString("replicaCount: 1\nimage:\n")
		valuesWant.WriteString("replicaCount: 1\nimage:\n")
		if false {
			values.WriteString(fmt.Sprintf("  repository: example/old # {\"$imagepolicy\": \"%s:name\"}\n", policy))
			valuesWant.WriteString(fmt.Sprintf("  repository: %s # {\"$imagepolicy\": \"%s:name\"}\n", image, policy))
		} else {
			values.WriteString("  repository: example/app\n")
			valuesWant.WriteString("  repository: example/app\n")
		}
		rest := strings.Repeat("# "+filler+"\n", 50)
		bt.add(dir+"values.yaml", values.String()+rest, valuesWant.String()+rest, false)
		bt.add(dir+"kustomization.yaml", "namespace: apps\nresources: [deployment.yaml, service.yaml, configmap.yaml]\n", "", false)
	}
	return bt
}

// add records a file; want "" means unchanged. crlf turns line ends into CRLF.
func (bt *benchTree) add(name, orig, want string, crlf bool) {
	if want == "" {
		want = orig
	}
	if crlf {
		orig, want = strings.ReplaceAll(orig, "\n", "\r\n"), strings.ReplaceAll(want, "\n", "\r\n")
	}
	bt.files[name], bt.expected[name] = []byte(orig), []byte(want)
}

func (bt *benchTree) write(b *testing.B, dir string) {
	for name, data := range bt.files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRewriteRepo(b *testing.B) {
	bt := newBenchTree()
	size := 0
	for _, f := range bt.files {
		size += len(f)
	}
	root := tmpfsDir(b, "bench-rewrite-*")

	// One checked run: every file is byte for byte what it should be.
	dir := filepath.Join(root, "check")
	bt.write(b, dir)
	changes := rewriteBench(b, dir, bt.resolved)
	files := map[string]bool{}
	for _, c := range changes {
		files[c.File] = true
	}
	for name, want := range bt.expected {
		got, _ := os.ReadFile(filepath.Join(dir, name))
		if !bytes.Equal(got, want) {
			b.Fatalf("%s differs from the expected rewrite", name)
		}
	}
	if len(files) != bt.changed {
		b.Fatalf("%d files changed, want %d", len(files), bt.changed)
	}
	b.Logf("%d files, %.1f MB, %d markers, %d files changed", len(bt.files), float64(size)/1e6, bt.markers, len(files))

	b.ReportAllocs()
	b.ResetTimer()
	var cpu time.Duration // of the timed parts: CPU time, as the cost on a shared machine
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := filepath.Join(root, fmt.Sprint(i))
		bt.write(b, dir)
		runtime.GC() // the setup's garbage is not the rewrite's
		b.StartTimer()
		start := cpuTime()
		rewriteBench(b, dir, bt.resolved)
		cpu += cpuTime() - start
		b.StopTimer()
		os.RemoveAll(dir)
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// tmpfsDir makes a folder on /dev/shm (tmpfs) where there is one, else in
// the temporary folder, removed when b ends.
func tmpfsDir(b *testing.B, pattern string) string {
	base := os.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	root, err := os.MkdirTemp(base, pattern)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(root) })
	return root
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rewriteBench(b *testing.B, dir string, resolved map[string]Resolution) []Change {
	tree, err := Discover(dir, []string{"."}, "")
	if err != nil {
		b.Fatal(err)
	}
	defer tree.Close()
	changes, problems := tree.Apply(resolved)
	if len(problems) > 0 {
		b.Fatalf("problems: %v", problems[:min(3, len(problems))])
	}
	return changes
}
