package gitwriter

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
)

// fuzzEntry is one line of a fuzzed tree: a slash path, a kind (f file, x
// executable, l link, s submodule) and the content (a link's target).
type fuzzEntry struct {
	path, content string
	mode          filemode.FileMode
}

// parseFuzzTree reads lines "kind path [content]" (space-separated, at most
// 64 lines); anything unreadable is dropped. Paths may name anything: "..",
// ".git", duplicates, a file and a folder of one name.
func parseFuzzTree(spec string) []fuzzEntry {
	var out []fuzzEntry
	for line := range strings.SplitSeq(spec, "\n") {
		if len(out) == 64 {
			break
		}
		kind, rest, ok := strings.Cut(line, " ")
		if !ok || rest == "" {
			continue
		}
		p, content, _ := strings.Cut(rest, " ")
		mode := filemode.Regular
		switch kind {
		case "x":
			mode = filemode.Executable
		case "l":
			mode = filemode.Symlink
		case "s":
			mode = filemode.Submodule
		}
		// Empty components and NUL cannot be stored in a tree's names (NUL
		// ends a name there); keep the rest.
		parts := slices.DeleteFunc(strings.Split(strings.ReplaceAll(p, "\x00", ""), "/"), func(s string) bool { return s == "" })
		if len(parts) == 0 || len(parts) > 32 {
			continue
		}
		out = append(out, fuzzEntry{strings.Join(parts, "/"), "FUZZ:" + content, mode})
	}
	return out
}

// buildFuzzTree stores entries as nested trees, exactly as listed: two of
// one name stay two entries. dup says whether a checkout meets two entries
// of one name: in this tree, or in a folder below it with a safe name.
func buildFuzzTree(t *testing.T, c *Checkout, entries []fuzzEntry) (plumbing.Hash, bool) {
	var list []object.TreeEntry
	dup := false
	var dirs []string
	sub := map[string][]fuzzEntry{}
	for _, e := range entries {
		first, rest, deeper := strings.Cut(e.path, "/")
		if deeper {
			if _, ok := sub[first]; !ok {
				dirs = append(dirs, first)
			}
			sub[first] = append(sub[first], fuzzEntry{rest, e.content, e.mode})
			continue
		}
		content := e.content
		if e.mode == filemode.Symlink {
			content = strings.TrimPrefix(content, "FUZZ:")
		}
		h, err := c.store(plumbing.BlobObject, []byte(content))
		if err != nil {
			t.Fatal(err)
		}
		if e.mode == filemode.Submodule {
			h = plumbing.NewHash("1111111111111111111111111111111111111111")
		}
		list = append(list, object.TreeEntry{Name: first, Mode: e.mode, Hash: h})
	}
	for _, d := range dirs {
		h, d2 := buildFuzzTree(t, c, sub[d])
		dup = dup || d2 && unsafeName(d) == "" // a folder never entered is never written
		list = append(list, object.TreeEntry{Name: d, Mode: filemode.Dir, Hash: h})
	}
	names := map[string]bool{}
	for _, e := range list {
		dup = dup || names[e.Name]
		names[e.Name] = true
	}
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	slices.SortStableFunc(list, func(a, b object.TreeEntry) int { return strings.Compare(key(a), key(b)) })
	obj := c.git.Storer.NewEncodedObject()
	if err := (&object.Tree{Entries: list}).Encode(obj); err != nil {
		t.Fatal(err)
	}
	h, err := c.git.Storer.SetEncodedObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	return h, dup
}

// FuzzCheckoutTrees checks out a crafted tree, then moves to a second one,
// as a fresh clone and a kept copy do, then back to the first over what
// the second left, as a restart does: nothing is ever written outside the
// working tree or into .git, a tree that names an entry twice is refused,
// and any other tree is checked out exactly (its safe entries, nothing
// else).
func FuzzCheckoutTrees(f *testing.F) {
	f.Add("l x .git\nf x/hooks/post-checkout evil", "f x/hooks/post-checkout evil")
	f.Add("l x .git", "f x/objects/pack/planted evil")
	f.Add("l apps ../..\nf a.yaml a", "f apps/escape.yaml e")
	f.Add("f a/b/c/d.yaml 1\nx bin/run 2\nl link a/b", "f a/b 1\nl bin ../outside")
	f.Add("f .git/config x\nf .GIT/hooks/h x\nf x/.git/h y\nf .. p\nf a/../b q", "f ok.yaml 1")
	f.Add("f new\nline.yaml n\ns sub m", "f sub/inside.yaml i")
	f.Add("f a 1\nf a 2", "f a 3")
	f.Add("f d/f 1\nl d /etc", "l d /etc\nf e 2")
	f.Add("f \x00 a\nf 7 b", "l 0")            // a NUL name (dropped), a link with no target
	f.Add("f 0/0/0/0/0\nf 1/0\nf 00", "f ./0") // a folder named "." is not the root
	f.Fuzz(func(t *testing.T, first, second string) {
		r, err := git.Init(memory.NewStorage(), nil)
		if err != nil {
			t.Fatal(err)
		}
		top := t.TempDir()
		dir := filepath.Join(top, "work")
		outside := filepath.Join(top, "outside")
		for _, d := range []string{filepath.Join(dir, ".git"), outside} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, ".git", "HEAD"), []byte("ref: refs/heads/main\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		c := &Checkout{git: r, Dir: dir}
		var prev *object.Tree
		// A fresh clone, a kept copy moving to the second tree, then a
		// restart over that copy whose head is the first tree again.
		for step, spec := range []string{first, second, first} {
			entries := parseFuzzTree(spec)
			h, dup := buildFuzzTree(t, c, entries)
			tree, err := r.TreeObject(h)
			if err != nil {
				t.Fatal(err)
			}
			if step == 1 {
				_, err = c.checkoutChanges(context.Background(), prev, tree, nil)
			} else {
				_, err = c.checkoutOver(context.Background(), tree)
			}
			checkUntouched(t, dir, outside)
			switch {
			case dup && !errors.Is(err, ErrDuplicateEntry):
				t.Fatalf("step %d: a tree naming an entry twice: checkout = %v, want ErrDuplicateEntry", step, err)
			case !dup && err != nil:
				t.Fatalf("step %d: checkout: %v", step, err)
			case dup:
				return // refused: the copy is not used again until it is written afresh
			}
			files := map[string]entry{}
			for _, e := range entries {
				content := e.content
				if e.mode == filemode.Symlink {
					content = strings.TrimPrefix(content, "FUZZ:")
				}
				if e.mode == filemode.Submodule {
					files[e.path] = entry{"", filemode.Submodule}
					continue
				}
				files[e.path] = entry{content, e.mode}
			}
			if got, w := listing(t, dir), wantFuzz(files); !reflect.DeepEqual(got, w) {
				t.Fatalf("step %d: working tree\n got %q\nwant %q", step, got, w)
			}
			prev = tree
		}
	})
}

// wantFuzz is what a checkout of files must hold (as want, component by
// component: a path such as a/../b is not cleaned), with an uninitialised
// submodule an empty folder.
func wantFuzz(files map[string]entry) map[string]string {
	out := map[string]string{}
	for p, e := range files {
		parts := strings.Split(p, "/")
		safe := 0
		for safe < len(parts) && unsafeName(parts[safe]) == "" {
			safe++
		}
		for i := 1; i <= min(safe, len(parts)-1); i++ {
			out[strings.Join(parts[:i], "/")+"/"] = "dir" // folders are made down to an unsafe name
		}
		if safe < len(parts) {
			continue
		}
		switch e.mode {
		case filemode.Submodule:
			out[p+"/"] = "dir"
		case filemode.Symlink:
			if e.content != "" && !strings.Contains(e.content, "\x00") {
				out[p] = "link " + e.content
			}
		case filemode.Executable:
			out[p] = "exec " + e.content
		default:
			out[p] = "file " + e.content
		}
	}
	return out
}

// checkUntouched fails when anything landed outside the working tree or in
// its .git: every file the tree can write starts with "FUZZ:".
func checkUntouched(t *testing.T, dir, outside string) {
	t.Helper()
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("written outside the working tree: %v", entries)
	}
	err := filepath.WalkDir(filepath.Join(dir, ".git"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			t.Fatalf("a link in .git: %s", p)
		}
		if d.Type().IsRegular() {
			ours := p == filepath.Join(dir, ".git", "HEAD") || p == filepath.Join(dir, ".git", stampsFile)
			if b, _ := os.ReadFile(p); bytes.HasPrefix(b, []byte("FUZZ:")) || !ours {
				t.Fatalf("written into .git: %s", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
