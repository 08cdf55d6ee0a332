//go:build linux || darwin

package gitwriter

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"syscall"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/filemode"

	"github.com/imagebutler/imagebutler/config"
)

// A restart opens the working copy left on disk: whatever happened to it
// since (a person, a crash, a full disk), it holds the tree again after,
// and only the damaged paths were written: every other file is the very
// file the last run wrote (same inode, same modification time).
func TestRestartRepairsOnlyWhatDiffers(t *testing.T) {
	outside := t.TempDir()
	files := map[string]entry{
		"apps/a.yaml":        regular("a: 1\n"),
		"apps/deep/b.yaml":   regular("b: 1\n"),
		"apps/deep/c.yaml":   regular("c: 1\n"),
		"apps/kept.yaml":     regular("kept: 1\n"),
		"apps/kept2.yaml":    regular("kept: 2\n"),
		"bin/run.sh":         {"#!/bin/sh\n", filemode.Executable},
		"bin/tool.sh":        {"#!/bin/sh\n", filemode.Executable},
		"docs/readme.md":     regular("read me\n"),
		"docs/c.yaml":        regular("c: 2\n"),
		"data/fifo.yaml":     regular("f: 1\n"),
		"data/kept.yaml":     regular("kept: 2\n"),
		"link.yaml":          {"apps/a.yaml", filemode.Symlink},
		"other-link.yaml":    {"apps/kept.yaml", filemode.Symlink},
		"shape/was-dir.yaml": regular("d: 1\n"),
		"top.yaml":           regular("top: 1\n"),
	}
	damages := []struct {
		name string
		path string // what the damage touches; "" for a stray path the repair removes
		do   func(dir string) error
	}{
		{"content changed, same size", "apps/a.yaml", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "apps/a.yaml"), []byte("a: 9\n"), 0o644)
		}},
		{"content changed, same size, modification time put back", "apps/kept2.yaml", func(dir string) error {
			p := filepath.Join(dir, "apps/kept2.yaml")
			info, err := os.Stat(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte("kept: 9\n"), 0o644); err != nil {
				return err
			}
			return os.Chtimes(p, info.ModTime(), info.ModTime())
		}},
		{"deleted", "apps/deep/b.yaml", func(dir string) error { return os.Remove(filepath.Join(dir, "apps/deep/b.yaml")) }},
		{"stray file", "", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "apps/stray.yaml"), []byte("stray\n"), 0o644)
		}},
		{"stray folder", "", func(dir string) error { return os.MkdirAll(filepath.Join(dir, "junk/x/y"), 0o755) }},
		{"a .git folder below the root", "", func(dir string) error {
			return os.MkdirAll(filepath.Join(dir, "apps/deep/.git/hooks"), 0o755)
		}},
		{"executable bit lost", "bin/run.sh", func(dir string) error { return os.Chmod(filepath.Join(dir, "bin/run.sh"), 0o644) }},
		{"executable bit gained", "docs/readme.md", func(dir string) error {
			return os.Chmod(filepath.Join(dir, "docs/readme.md"), 0o755)
		}},
		{"file replaced by a link to an identical file outside", "docs/c.yaml", func(dir string) error {
			if err := os.WriteFile(filepath.Join(outside, "c.yaml"), []byte("c: 2\n"), 0o644); err != nil {
				return err
			}
			os.Remove(filepath.Join(dir, "docs/c.yaml"))
			return os.Symlink(filepath.Join(outside, "c.yaml"), filepath.Join(dir, "docs/c.yaml"))
		}},
		{"folder replaced by a link to outside", "apps/deep/c.yaml", func(dir string) error {
			// apps/deep is then a link: b.yaml (deleted above) and c.yaml are written beneath a real folder.
			if err := os.RemoveAll(filepath.Join(dir, "apps/deep")); err != nil {
				return err
			}
			return os.Symlink(outside, filepath.Join(dir, "apps/deep"))
		}},
		{"a FIFO where a file goes", "data/fifo.yaml", func(dir string) error {
			os.Remove(filepath.Join(dir, "data/fifo.yaml"))
			return syscall.Mkfifo(filepath.Join(dir, "data/fifo.yaml"), 0o644)
		}},
		{"link retargeted", "link.yaml", func(dir string) error {
			os.Remove(filepath.Join(dir, "link.yaml"))
			return os.Symlink("apps/kept.yaml", filepath.Join(dir, "link.yaml"))
		}},
		{"folder where a file goes", "shape/was-dir.yaml", func(dir string) error {
			os.Remove(filepath.Join(dir, "shape/was-dir.yaml"))
			return os.MkdirAll(filepath.Join(dir, "shape/was-dir.yaml/inner"), 0o755)
		}},
	}

	dir, reopen := keptCopy(t, files)
	reopen() // a clone
	reopen() // a restart that finds it intact
	before := map[string]os.FileInfo{}
	for p := range files {
		info, err := os.Lstat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		before[p] = info
	}
	damaged := map[string]bool{}
	for _, d := range damages {
		if err := d.do(dir); err != nil {
			t.Fatalf("%s: %v", d.name, err)
		}
		damaged[d.path] = true
	}

	reopen() // a restart: the copy is reused
	if _, err := os.Stat(dir + ".clone"); !os.IsNotExist(err) {
		t.Fatalf("the copy was cloned afresh, not repaired: %v", err)
	}
	if got, w := listing(t, dir), want(files); !reflect.DeepEqual(got, w) {
		t.Fatalf("working tree after the restart\n got %q\nwant %q", got, w)
	}
	var rewritten, kept []string
	for p, was := range before {
		now, err := os.Lstat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if os.SameFile(was, now) && was.ModTime().Equal(now.ModTime()) {
			kept = append(kept, p)
		} else {
			rewritten = append(rewritten, p)
		}
	}
	var wantRewritten []string
	for p := range damaged {
		if p != "" {
			wantRewritten = append(wantRewritten, p)
		}
	}
	wantRewritten = append(wantRewritten, "apps/deep/b.yaml") // beneath the folder made a link
	slices.Sort(rewritten)
	slices.Sort(wantRewritten)
	wantRewritten = slices.Compact(wantRewritten)
	if !reflect.DeepEqual(rewritten, wantRewritten) {
		t.Errorf("written by the restart %q, want exactly the damaged %q (kept %q)", rewritten, wantRewritten, kept)
	}
	if b, err := os.ReadFile(filepath.Join(outside, "c.yaml")); err != nil || string(b) != "c: 2\n" {
		t.Errorf("the file outside the copy: %q, %v", b, err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Errorf("written outside the working copy: %v", entries)
	}
}

// A restart over an intact copy reads no file (its stat data are the ones
// stamped), so it has nothing new to stamp: the stamps file stays as it
// was. A stamps file that cannot be read costs a reading of every file,
// never a wrong tree.
func TestRestartOverIntactCopyTrustsStamps(t *testing.T) {
	files := map[string]entry{"a/one.yaml": regular("one\n"), "a/b/two.yaml": regular("two\n"), "run.sh": {"#!/bin/sh\n", filemode.Executable},
		"link.yaml": {"a/one.yaml", filemode.Symlink}}
	dir, reopen := keptCopy(t, files)
	open := func() {
		t.Helper()
		reopen()
		if got, w := listing(t, dir), want(files); !reflect.DeepEqual(got, w) {
			t.Fatalf("working tree\n got %q\nwant %q", got, w)
		}
	}
	stampsPath := filepath.Join(dir, ".git", stampsFile)
	open() // a clone: what it wrote in the stamps file's own clock tick is not trusted yet
	open() // those are read, and stamped again
	saved, err := os.Stat(stampsPath)
	if err != nil {
		t.Fatal(err)
	}
	st := loadStamps(dir)
	if st == nil || len(st.order) != 7 || !st.complete { // three files, a link, three folders (the root among them)
		t.Fatalf("stamps %+v, want three files, a link and three folders, complete", st)
	}
	open()
	if again, err := os.Stat(stampsPath); err != nil || !os.SameFile(saved, again) || !again.ModTime().Equal(saved.ModTime()) {
		t.Errorf("a restart over an intact copy saved its stamps again (it read or wrote something): %v", err)
	}

	if err := os.WriteFile(stampsPath, []byte("imagebutler stamps 1\n\xff\xff\xff"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a/one.yaml"), []byte("ONE\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	open()
	if st := loadStamps(dir); st == nil || len(st.order) != 7 {
		t.Errorf("stamps after a restart over a damaged stamps file: %+v", st)
	}
}

// keptCopy makes a remote holding files and returns the folder of its
// working copy, and a function that opens (cloning the first time) and
// closes it, as a process that starts and stops does.
func keptCopy(t *testing.T, files map[string]entry) (string, func()) {
	bareDir := filepath.Join(t.TempDir(), "remote.git")
	bare, err := git.PlainInit(bareDir, true)
	if err != nil {
		t.Fatal(err)
	}
	pushTree(t, bare, files)
	repo := config.Repository{URL: bareDir, Branch: "main", PushBranch: "main", Paths: []string{"."}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := filepath.Join(t.TempDir(), "kept")
	return dir, func() {
		t.Helper()
		co, err := Open(context.Background(), dir, repo, log)
		if err != nil {
			t.Fatal(err)
		}
		co.Close()
	}
}

// Complete stamps hold in an untouched working tree, and in no tree where
// anything changed since, however it changed: a restart then walks the
// tree instead.
func TestStampsAllHold(t *testing.T) {
	files := map[string]entry{"a/one.yaml": regular("one\n"), "a/b/two.yaml": regular("two\n"), "run.sh": {"#!/bin/sh\n", filemode.Executable},
		"link.yaml": {"a/one.yaml", filemode.Symlink}}
	for _, c := range []struct {
		name   string
		damage func(dir string) error
	}{
		{"untouched", nil},
		{"a file rewritten, same size, times put back", func(dir string) error {
			p := filepath.Join(dir, "a/b/two.yaml")
			info, _ := os.Stat(p)
			if err := os.WriteFile(p, []byte("TWO\n"), 0o644); err != nil {
				return err
			}
			return os.Chtimes(p, info.ModTime(), info.ModTime())
		}},
		{"a stray file deep down", func(dir string) error { return os.WriteFile(filepath.Join(dir, "a/b/stray"), nil, 0o644) }},
		{"a stray file at the root", func(dir string) error { return os.WriteFile(filepath.Join(dir, "stray"), nil, 0o644) }},
		{"a folder swapped for a link to its copy", func(dir string) error {
			copyDir := filepath.Join(filepath.Dir(dir), "copy-of-b")
			if err := os.Rename(filepath.Join(dir, "a/b"), copyDir); err != nil {
				return err
			}
			return os.Symlink(copyDir, filepath.Join(dir, "a/b"))
		}},
		{"a link retargeted", func(dir string) error {
			os.Remove(filepath.Join(dir, "link.yaml"))
			return os.Symlink("a/b/two.yaml", filepath.Join(dir, "link.yaml"))
		}},
		{"executable bit dropped", func(dir string) error { return os.Chmod(filepath.Join(dir, "run.sh"), 0o644) }},
		{"a file deleted", func(dir string) error { return os.Remove(filepath.Join(dir, "a/one.yaml")) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, reopen := keptCopy(t, files)
			reopen()
			reopen() // what the clone wrote in the stamps' own clock tick is stamped again
			if c.damage != nil {
				if err := c.damage(dir); err != nil {
					t.Fatal(err)
				}
			}
			root, err := openTreeRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.close()
			st := loadStamps(dir)
			if got, want := st.allHold(root), c.damage == nil; got != want {
				t.Errorf("allHold = %v, want %v", got, want)
			}
			reopen()
			if got, w := listing(t, dir), want(files); !reflect.DeepEqual(got, w) {
				t.Errorf("working tree after a restart\n got %q\nwant %q", got, w)
			}
		})
	}
}
