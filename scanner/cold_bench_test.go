package scanner

import (
	"context"
	"os"
	"testing"
	"time"
)

// The cold benchmarks measure what a restart (or a replica taking a
// repository over) pays on the 5,000-file steadyTree, the remote already
// holding the butler's commit: TMPDIR=/dev/shm runs them on tmpfs.

// BenchmarkCycleRestart is the first cycle of a fresh scanner (a new
// process) over the intact working copy an earlier one left in stateDir:
// open and fetch it, bring its working tree to the head, discover, select,
// rewrite nothing.
func BenchmarkCycleRestart(b *testing.B) {
	s, _ := steadyScanner(b)
	s.closeKept()
	b.ReportAllocs()
	var cpu time.Duration
	for b.Loop() {
		fresh := New(s.cfg, s.lister, s.log)
		start := cpuTime()
		checkColdCycle(b, fresh)
		cpu += cpuTime() - start
		fresh.closeKept()
	}
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// BenchmarkCycleFirst is the first cycle of a fresh scanner with an empty
// stateDir: clone, check out, discover, select, rewrite nothing.
func BenchmarkCycleFirst(b *testing.B) {
	s, _ := steadyScanner(b)
	s.closeKept()
	b.ReportAllocs()
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		cfg := *s.cfg
		dir, err := os.MkdirTemp("", "imagebutler-state-")
		if err != nil {
			b.Fatal(err)
		}
		cfg.StateDir = dir
		fresh := New(&cfg, s.lister, s.log)
		b.StartTimer()
		start := cpuTime()
		checkColdCycle(b, fresh)
		cpu += cpuTime() - start
		b.StopTimer()
		fresh.closeKept()
		os.RemoveAll(dir)
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

func checkColdCycle(b *testing.B, s *Scanner) {
	b.Helper()
	for _, r := range s.RunOnce(context.Background()) {
		if r.Err != nil || r.Commit != "" || len(r.Markers) != 500 {
			b.Fatalf("cold cycle: err %v, commit %q, %d markers", r.Err, r.Commit, len(r.Markers))
		}
	}
}

// closeKept closes the working copies and discoveries s keeps, as the
// process's exit would.
func (s *Scanner) closeKept() {
	for _, k := range s.kept {
		if k.co != nil {
			k.co.Close()
		}
		k.dropTree()
	}
}
