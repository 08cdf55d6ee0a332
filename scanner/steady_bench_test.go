package scanner

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"

	"github.com/imagebutler/imagebutler/policy"
)

// steadyTree is the tree of the steady-state benchmarks: 100 apps of 50
// files each (5,000 files), every app a kustomization with a namespace, an
// annotated Deployment (100 objects, one policy each over 20 ECR
// repositories) and a values file, with five markers per app (500 files
// hold markers: the Deployment, the values file and three config files).
func steadyTree() map[string]string {
	files := map[string]string{}
	filler := strings.Repeat("# a line of configuration that mentions nothing of ours .................\n", 12)
	for a := range 100 {
		dir := fmt.Sprintf("apps/app%03d/", a)
		ecrRepo := fmt.Sprintf("ecr_%02d", a%20)
		image := "283234040926.dkr.ecr.us-east-2.amazonaws.com/" + ecrRepo
		marker := fmt.Sprintf(`# {"$imagepolicy": "team%02d:app%03d"}`, a%10, a)
		files[dir+"kustomization.yaml"] = fmt.Sprintf("namespace: team%02d\nresources: [deployment.yaml]\n", a%10)
		files[dir+"deployment.yaml"] = fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: app%03d
  annotations:
    app.lilly.com/flux.automated: "true"
    app.lilly.com/flux.simple.app%03d: "283234040926;%s;glob:sha-*"
spec:
  template:
    spec:
      containers:
        - name: app
          image: %s:sha-0000000 %s
`, a, a, ecrRepo, image, marker)
		files[dir+"values.yaml"] = fmt.Sprintf("image:\n  tag: sha-0000000 %s\n", strings.Replace(marker, `"}`, `:tag"}`, 1)) + filler
		for i := range 3 {
			files[fmt.Sprintf("%sconfig-%d.yaml", dir, i)] = fmt.Sprintf("sidecar: %s:sha-0000000 %s\n", image, marker) + filler
		}
		for i := range 44 {
			files[fmt.Sprintf("%sfiles/data-%02d.yaml", dir, i)] = fmt.Sprintf("key: value-%d\n", i) + filler
		}
	}
	return files
}

// steadyScanner returns a scanner over one remote holding steadyTree, after
// the first cycle (which clones and commits), and the remote's path.
func steadyScanner(b *testing.B) (*Scanner, string) {
	b.Helper()
	files := steadyTree()
	if len(files) != 5000 {
		b.Fatalf("%d files, want 5000", len(files))
	}
	l := &fakeLister{calls: map[policy.ImageRef]int{}, images: map[string][]policy.Image{}}
	for r := range 20 {
		var imgs []policy.Image
		for i := range 100 {
			imgs = append(imgs, policy.Image{Tags: []string{fmt.Sprintf("sha-%07d", i+1)}, Digest: fmt.Sprintf("sha256:%064d", r*1000+i), PushedAt: pushed(i)})
		}
		l.images[fmt.Sprintf("ecr_%02d", r)] = imgs
	}
	bare := gitRemote(b, files)
	cfg := testConfig(b, bare)
	s := New(cfg, l, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, r := range s.RunOnce(context.Background()) {
		if r.Err != nil || len(r.Changes) != 500 {
			b.Fatalf("first cycle: err %v, %d changes (want 500)", r.Err, len(r.Changes))
		}
	}
	return s, bare
}

// gitRemote is newRemote made with the git command: one add of every file
// (go-git's Add is per file, quadratic over 5,000).
func gitRemote(b *testing.B, files map[string]string) string {
	b.Helper()
	root := b.TempDir()
	bare, work := filepath.Join(root, "remote.git"), filepath.Join(root, "seed")
	for name, content := range files {
		p := filepath.Join(work, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"init", "--quiet", "--bare", "--initial-branch=main", bare},
		{"-C", work, "init", "--quiet", "--initial-branch=main"},
		{"-C", work, "add", "-A"},
		{"-C", work, "-c", "user.name=A Person", "-c", "user.email=person@example.com", "commit", "--quiet", "-m", "apps"},
		{"-C", work, "push", "--quiet", bare, "main"},
	} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			b.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return bare
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCycleNoChange is a steady-state cycle over a 5,000-file
// repository whose remote did not move and whose listings hold nothing new.
func BenchmarkCycleNoChange(b *testing.B) {
	s, _ := steadyScanner(b)
	b.ReportAllocs()
	var cpu time.Duration
	for b.Loop() {
		start := cpuTime()
		for _, r := range s.RunOnce(context.Background()) {
			if r.Err != nil || r.Commit != "" || len(r.Markers) != 500 {
				b.Fatalf("steady cycle: err %v, commit %q, %d markers", r.Err, r.Commit, len(r.Markers))
			}
		}
		cpu += cpuTime() - start
	}
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// BenchmarkCycleOneFileChanged is a steady-state cycle after a person
// changed one file (not one with a marker) of the 5,000-file repository.
func BenchmarkCycleOneFileChanged(b *testing.B) {
	s, bare := steadyScanner(b)
	person := filepath.Join(b.TempDir(), "person")
	r, err := git.PlainClone(person, false, &git.CloneOptions{URL: bare})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var cpu time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		commitFiles(b, r, person, map[string]string{"apps/app042/files/data-07.yaml": fmt.Sprintf("key: changed %d\n", i)})
		if err := r.Push(&git.PushOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := cpuTime()
		for _, res := range s.RunOnce(context.Background()) {
			if res.Err != nil || res.Commit != "" || len(res.Markers) != 500 {
				b.Fatalf("cycle: err %v, commit %q, %d markers", res.Err, res.Commit, len(res.Markers))
			}
		}
		cpu += cpuTime() - start
	}
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
}
