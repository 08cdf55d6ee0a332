package gitwriter

import (
	"context"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/imagebutler/imagebutler/config"
)

// BenchmarkOpenIntact is what a restart pays to open the working copy an
// earlier process left, intact, of benchTree (5,000 files, 21 MB; on
// /dev/shm where there is one): open the storage, fetch (nothing new) and
// bring the working tree to the head.
func BenchmarkOpenIntact(b *testing.B) {
	bt := newBenchTree()
	root := tmpfsDir(b, "bench-open-*")
	seed, bare := filepath.Join(root, "seed"), filepath.Join(root, "remote.git")
	bt.write(b, seed)
	for _, args := range [][]string{
		{"init", "--quiet", "--bare", "--initial-branch=main", bare},
		{"-C", seed, "init", "--quiet", "--initial-branch=main"},
		{"-C", seed, "add", "-A"},
		{"-C", seed, "-c", "user.name=A Person", "-c", "user.email=person@example.com", "commit", "--quiet", "-m", "apps"},
		{"-C", seed, "push", "--quiet", bare, "main"},
	} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			b.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	repo := config.Repository{URL: bare, Branch: "main", PushBranch: "main", Paths: []string{"."}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := filepath.Join(root, "copy")
	co, err := Open(context.Background(), dir, repo, log)
	if err != nil {
		b.Fatal(err)
	}
	co.Close()
	b.ReportAllocs()
	var cpu time.Duration
	for b.Loop() {
		start := cpuTime()
		co, err := Open(context.Background(), dir, repo, log)
		if err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - start
		co.Close()
	}
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
}
