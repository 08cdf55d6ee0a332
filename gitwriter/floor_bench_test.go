//go:build linux

package gitwriter

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// benchDir writes benchTree into a folder on tmpfs (where there is one)
// and returns it with the number of bytes written.
func benchDir(b *testing.B, kustomized bool) (string, int) {
	bt := newBenchTree()
	if kustomized { // every namespace from the folder's kustomization
		for name, f := range bt.files {
			bt.files[name] = bytes.Replace(f, []byte("\n  namespace: apps\n"), []byte("\n"), 1)
		}
	}
	root := tmpfsDir(b, "bench-discover-*")
	bt.write(b, root)
	size := 0
	for _, f := range bt.files {
		size += len(f)
	}
	return root, size
}

// BenchmarkDiscoverCold is a cold discovery of benchTree (5,000 files, 21
// MB): every file read and what holds ours parsed, namespaces resolved,
// with the namespaces in the objects (explicit) or each from its folder's
// kustomization (kustomized).
func BenchmarkDiscoverCold(b *testing.B) {
	b.Run("explicit", func(b *testing.B) { benchDiscover(b, false) })
	b.Run("kustomized", func(b *testing.B) { benchDiscover(b, true) })
}

func benchDiscover(b *testing.B, kustomized bool) {
	dir, size := benchDir(b, kustomized)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	var cpu time.Duration
	for b.Loop() {
		runtime.GC()
		start := cpuTime()
		tree, err := Discover(dir, []string{"."}, "")
		if err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - start
		if len(tree.Markers) == 0 {
			b.Fatal("no markers found")
		}
		tree.Close()
	}
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// BenchmarkReadFloor is the I/O floor of a cold discovery of benchTree:
// list each folder and read each file once through descriptors (openat
// beneath the folder's), with as many readers as discovery uses, parsing
// nothing.
func BenchmarkReadFloor(b *testing.B) {
	dir, size := benchDir(b, false)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	var cpu time.Duration
	for b.Loop() {
		start := cpuTime()
		var folders []string
		var walk func(string)
		walk = func(d string) {
			entries, err := os.ReadDir(d)
			if err != nil {
				b.Fatal(err)
			}
			folders = append(folders, d)
			for _, e := range entries {
				if e.IsDir() {
					walk(filepath.Join(d, e.Name()))
				}
			}
		}
		walk(dir)
		work := make(chan string, len(folders))
		for _, f := range folders {
			work <- f
		}
		close(work)
		done := make(chan int)
		for range runtime.GOMAXPROCS(0) {
			go func() {
				buf := make([]byte, 64<<10)
				n := 0
				for d := range work {
					dfd, err := unix.Open(d, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
					if err != nil {
						panic(err)
					}
					f := os.NewFile(uintptr(dfd), d)
					names, _ := f.Readdirnames(-1)
					for _, name := range names {
						fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
						if err != nil {
							continue // a folder
						}
						for {
							m, err := unix.Read(fd, buf)
							if m <= 0 || err != nil {
								break
							}
							n += m
						}
						unix.Close(fd)
					}
					f.Close()
				}
				done <- n
			}()
		}
		total := 0
		for range runtime.GOMAXPROCS(0) {
			total += <-done
		}
		cpu += cpuTime() - start
		if total != size {
			b.Fatalf("read %d bytes, want %d", total, size)
		}
	}
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
}
