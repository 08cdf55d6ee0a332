package gitwriter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/imagebutler/imagebutler/config"
)

// entry is one file of a test tree: its content (a link's target) and mode.
type entry struct {
	content string
	mode    filemode.FileMode
}

func regular(s string) entry { return entry{s, filemode.Regular} }

// storeTree writes files (slash-separated paths) as nested git trees into
// r, bypassing every check of go-git's worktree (names git allows but
// go-git refuses, names no checkout may write), and returns the root's hash.
func storeTree(t *testing.T, r *git.Repository, files map[string]entry) plumbing.Hash {
	t.Helper()
	c := &Checkout{git: r}
	type node struct {
		files map[string]entry
		dirs  map[string]map[string]entry
	}
	n := node{files: map[string]entry{}, dirs: map[string]map[string]entry{}}
	for p, e := range files {
		first, rest, deeper := strings.Cut(p, "/")
		if !deeper {
			n.files[first] = e
			continue
		}
		if n.dirs[first] == nil {
			n.dirs[first] = map[string]entry{}
		}
		n.dirs[first][rest] = e
	}
	var entries []object.TreeEntry
	for name, e := range n.files {
		h, err := c.store(plumbing.BlobObject, []byte(e.content))
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, object.TreeEntry{Name: name, Mode: e.mode, Hash: h})
	}
	for name, sub := range n.dirs {
		entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: storeTree(t, r, sub)})
	}
	// git's order: a folder sorts as if its name ended in '/'.
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	sort.Slice(entries, func(i, j int) bool { return key(entries[i]) < key(entries[j]) })
	obj := r.Storer.NewEncodedObject()
	if err := (&object.Tree{Entries: entries}).Encode(obj); err != nil {
		t.Fatal(err)
	}
	h, err := r.Storer.SetEncodedObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// pushTree commits files onto the bare remote's main (parent: its current
// head, if any).
func pushTree(t *testing.T, bare *git.Repository, files map[string]entry) plumbing.Hash {
	t.Helper()
	sig := object.Signature{Name: "p", Email: "p@example.com", When: time.Now()}
	commit := &object.Commit{Author: sig, Committer: sig, Message: "change\n", TreeHash: storeTree(t, bare, files)}
	if ref, err := bare.Reference(plumbing.NewBranchReferenceName("main"), true); err == nil {
		commit.ParentHashes = []plumbing.Hash{ref.Hash()}
	}
	obj := bare.Storer.NewEncodedObject()
	if err := commit.Encode(obj); err != nil {
		t.Fatal(err)
	}
	h, err := bare.Storer.SetEncodedObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := bare.Storer.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName("main"), h)); err != nil {
		t.Fatal(err)
	}
	return h
}

// listing is what a working tree holds, but .git: path → kind and content.
func listing(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case rel == ".":
			return nil
		case rel == ".git":
			return filepath.SkipDir
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[rel] = "link " + target
		case info.IsDir():
			out[rel+"/"] = "dir"
		case info.Mode()&0o100 != 0:
			b, _ := os.ReadFile(p)
			out[rel] = "exec " + string(b)
		default:
			b, _ := os.ReadFile(p)
			out[rel] = "file " + string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// want is what a checkout of files must hold: every safe entry and its
// folders, nothing of an unsafe one.
func want(files map[string]entry) map[string]string {
	out := map[string]string{}
	for p, e := range files {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if unsafePath(d) == "" {
				out[d+"/"] = "dir" // folders are made down to an unsafe name
			}
		}
		if unsafePath(p) != "" {
			continue
		}
		switch e.mode {
		case filemode.Symlink:
			out[p] = "link " + e.content
		case filemode.Executable:
			out[p] = "exec " + e.content
		default:
			out[p] = "file " + e.content
		}
	}
	return out
}

// Each step's tree is checked out by the kept copy (writing what differs
// from the step before, after the butler wrote a file) and by a fresh
// clone (writing everything): both must hold exactly the tree's safe
// entries, with their modes, and nothing was ever written outside.
func TestCheckoutFollowsTree(t *testing.T) {
	outside := t.TempDir()
	steps := []struct {
		name  string
		files map[string]entry
	}{
		{"first", map[string]entry{
			"apps/a.yaml":         regular("a: 1\n"),
			"apps/deep/b.yaml":    regular("b: 1\n"),
			"bin/run.sh":          {"#!/bin/sh\n", filemode.Executable},
			"link.yaml":           {"apps/a.yaml", filemode.Symlink},
			"docs/aux.md":         regular("a Windows device name\n"),
			"docs/new\nline.yaml": regular("a newline in the name\n"),
			"docs/tab\there.md":   regular("a tab\n"),
			".GIT/config":         regular("[core]\nworktree = /\n"),
			"x/.git/hooks/post":   regular("#!/bin/sh\nexit 1\n"),
			"..":                  regular("parent\n"),
			"escape":              {outside, filemode.Symlink},
		}},
		{"modify, delete, add", map[string]entry{
			"apps/a.yaml":         regular("a: 2\n"),
			"apps/new/c.yaml":     regular("c: 1\n"),
			"bin/run.sh":          {"#!/bin/sh\n", filemode.Executable},
			"link.yaml":           {"apps/a.yaml", filemode.Symlink},
			"docs/new\nline.yaml": regular("changed\n"),
			".GIT/config":         regular("[core]\nbare = true\n"),
			"escape":              {outside, filemode.Symlink},
		}},
		{"file becomes folder, folder becomes file, link becomes folder", map[string]entry{
			"apps/a.yaml/inner.yaml": regular("inner: 1\n"),
			"apps/new":               regular("now a file\n"),
			"bin/run.sh":             regular("#!/bin/sh\n"),
			"link.yaml":              regular("was a link\n"),
			"escape/written.yaml":    regular("must land inside\n"),
		}},
		{"folder becomes link, file becomes executable", map[string]entry{
			"apps":       {"/etc", filemode.Symlink},
			"bin/run.sh": {"#!/bin/sh\n", filemode.Executable},
			"escape":     {outside, filemode.Symlink},
		}},
	}
	bareDir := filepath.Join(t.TempDir(), "remote.git")
	bare, err := git.PlainInit(bareDir, true)
	if err != nil {
		t.Fatal(err)
	}
	repo := config.Repository{URL: bareDir, Branch: "main", PushBranch: "main", Paths: []string{"."}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	kept := filepath.Join(t.TempDir(), "kept")
	var co *Checkout
	for i, step := range steps {
		pushTree(t, bare, step.files)
		if co == nil {
			if co, err = Open(context.Background(), kept, repo, log); err != nil {
				t.Fatalf("%s: %v", step.name, err)
			}
		} else {
			// The butler wrote a file it did not commit: Sync restores it.
			if err := os.WriteFile(filepath.Join(kept, "bin", "run.sh"), []byte("written\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			co.MarkDirty("bin/run.sh")
			if err := co.Refresh(context.Background(), co.repo); err != nil {
				t.Fatalf("%s: %v", step.name, err)
			}
		}
		fresh, err := Open(context.Background(), filepath.Join(t.TempDir(), "fresh"), repo, log)
		if err != nil {
			t.Fatalf("%s: fresh clone: %v", step.name, err)
		}
		w := want(step.files)
		for _, c := range []*Checkout{co, fresh} {
			if got := listing(t, c.Dir); !reflect.DeepEqual(got, w) {
				t.Errorf("step %d (%s), %s: working tree\n got %q\nwant %q", i, step.name, filepath.Base(c.Dir), got, w)
			}
		}
		if i == 0 {
			var skipped []string
			for _, s := range fresh.skipped {
				skipped = append(skipped, strings.SplitN(s, ":", 2)[0])
			}
			slices.Sort(skipped)
			if w := []string{"..", ".GIT", "x/.git"}; !reflect.DeepEqual(skipped, w) {
				t.Errorf("skipped %q, want %q", fresh.skipped, w)
			}
		}
		if entries, _ := os.ReadDir(outside); len(entries) != 0 {
			t.Fatalf("step %d (%s): written outside the working copy: %v", i, step.name, entries)
		}
	}
}

// A commit replaces the written blobs in the head's tree and keeps every
// other entry, the ones not checked out here among them.
func TestCommitKeepsEntriesNotCheckedOut(t *testing.T) {
	bareDir := filepath.Join(t.TempDir(), "remote.git")
	bare, err := git.PlainInit(bareDir, true)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]entry{
		"apps/a.yaml":         regular("image: x:1\n"),
		"apps/b.yaml":         regular("b: 1\n"),
		"bin/run.sh":          {"#!/bin/sh\n", filemode.Executable},
		"docs/new\nline.yaml": regular("newline\n"),
		".GIT/config":         regular("[core]\n"),
	}
	base := pushTree(t, bare, files)
	repo := config.Repository{URL: bareDir, Branch: "main", PushBranch: "main", Paths: []string{"."}}
	co, err := Open(context.Background(), filepath.Join(t.TempDir(), "work"), repo, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"apps/a.yaml": "image: x:2\n", "bin/run.sh": "#!/bin/sh\nexit 0\n"} {
		if err := os.WriteFile(filepath.Join(co.Dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h, err := co.Commit([]string{"apps/a.yaml", "bin/run.sh"}, "Update\n", config.Author{Name: "Butler <x>", Email: "b@example.com"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	commit, err := co.git.CommitObject(h)
	if err != nil {
		t.Fatal(err)
	}
	if len(commit.ParentHashes) != 1 || commit.ParentHashes[0] != base || commit.Author.Name != "Butler x" {
		t.Errorf("commit parents %v, author %q", commit.ParentHashes, commit.Author.Name)
	}
	before, _ := co.treeOf(base)
	after, _ := commit.Tree()
	var changed []string
	err = co.diffTrees(before, after, "", func(name string, from, to *object.TreeEntry) error {
		if from == nil || to == nil || from.Mode != to.Mode {
			t.Errorf("%s: added, removed or re-typed (%v → %v)", name, from, to)
		}
		changed = append(changed, name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(changed)
	if w := []string{"apps/a.yaml", "bin/run.sh"}; !reflect.DeepEqual(changed, w) {
		t.Errorf("commit changed %q, want %q", changed, w)
	}
	if _, found, _ := co.entryAt(after, ".GIT/config"); !found {
		t.Error("the entry not checked out is gone from the commit")
	}
	if _, err := co.Commit([]string{"link-or-missing.yaml"}, "x", config.Author{Name: "b", Email: "b@x"}, nil); err == nil {
		t.Error("committing a file the tree does not hold: no error")
	}
}

// A butler's branch made long ago is still the butler's alone, however many
// commits people added to the target since: only the commits the branch
// has over their merge base are looked at.
func TestForeignAfterTheTargetMovedFar(t *testing.T) {
	bareDir := filepath.Join(t.TempDir(), "remote.git")
	bare, err := git.PlainInit(bareDir, true)
	if err != nil {
		t.Fatal(err)
	}
	base := pushTree(t, bare, map[string]entry{"apps/a.yaml": regular("image: x:1\n")})
	butler := object.Signature{Name: "Butler", Email: "butler@example.com", When: time.Now()}
	tree := storeTree(t, bare, map[string]entry{"apps/a.yaml": regular("image: x:2\n")})
	obj := bare.Storer.NewEncodedObject()
	if err := (&object.Commit{Author: butler, Committer: butler, Message: "Update\n", TreeHash: tree, ParentHashes: []plumbing.Hash{base}}).Encode(obj); err != nil {
		t.Fatal(err)
	}
	proposal, err := bare.Storer.SetEncodedObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	bare.Storer.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName("imagebutler/main"), proposal))
	for i := range MaxForeignLook + 50 { // a person's commits on the target
		pushTree(t, bare, map[string]entry{"apps/a.yaml": regular("image: x:1\n"), "notes.md": regular(fmt.Sprint(i))})
	}
	repo := config.Repository{URL: bareDir, Branch: "main", PushBranch: "main", Paths: []string{"."}}
	co, err := Open(context.Background(), filepath.Join(t.TempDir(), "work"), repo, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	remote, err := co.RemoteBranch(context.Background(), "imagebutler/main")
	if err != nil || remote != proposal {
		t.Fatalf("RemoteBranch = %s, %v; want %s", remote, err, proposal)
	}
	foreign, ahead, err := co.Foreign(remote, butler.Email, MaxForeignLook)
	if err != nil || len(foreign) != 0 || ahead != 1 {
		t.Errorf("Foreign = %d foreign, %d ahead, %v; want 0 foreign, 1 ahead", len(foreign), ahead, err)
	}
}

// rawTree stores a tree of exactly entries (no sorting, no checks: a tree
// git's own tools would refuse, two entries of one name among them) and
// returns its hash.
func rawTree(t testing.TB, r *git.Repository, entries ...object.TreeEntry) plumbing.Hash {
	t.Helper()
	obj := r.Storer.NewEncodedObject()
	if err := (&object.Tree{Entries: entries}).Encode(obj); err != nil {
		t.Fatal(err)
	}
	h, err := r.Storer.SetEncodedObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// commitTree makes tree main's new head in r.
func commitTree(t testing.TB, r *git.Repository, tree plumbing.Hash) plumbing.Hash {
	t.Helper()
	sig := object.Signature{Name: "p", Email: "p@example.com", When: time.Now()}
	commit := &object.Commit{Author: sig, Committer: sig, Message: "change\n", TreeHash: tree}
	if ref, err := r.Reference(plumbing.NewBranchReferenceName("main"), true); err == nil {
		commit.ParentHashes = []plumbing.Hash{ref.Hash()}
	}
	obj := r.Storer.NewEncodedObject()
	if err := commit.Encode(obj); err != nil {
		t.Fatal(err)
	}
	h, err := r.Storer.SetEncodedObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Storer.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName("main"), h)); err != nil {
		t.Fatal(err)
	}
	return h
}

// A tree naming one entry twice, a link x to .git and a folder x, is
// refused by a fresh checkout and by a kept copy moving to it: nothing is
// written through the link into .git. A link to .git alone is written as a
// link, and a later folder in its place is a folder.
func TestCheckoutRefusesDuplicateNamesAndNeverWritesThroughLinks(t *testing.T) {
	bareDir := filepath.Join(t.TempDir(), "remote.git")
	bare, err := git.PlainInit(bareDir, true)
	if err != nil {
		t.Fatal(err)
	}
	c := &Checkout{git: bare}
	blob := func(s string) plumbing.Hash {
		h, err := c.store(plumbing.BlobObject, []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	apps := rawTree(t, bare, object.TreeEntry{Name: "a.yaml", Mode: filemode.Regular, Hash: blob("a: 1\n")})
	hook := rawTree(t, bare, object.TreeEntry{Name: "post-checkout", Mode: filemode.Executable, Hash: blob("#!/bin/sh\necho pwned\n")})
	planted := rawTree(t, bare, object.TreeEntry{Name: "hooks", Mode: filemode.Dir, Hash: hook})
	linkToGit := object.TreeEntry{Name: "x", Mode: filemode.Symlink, Hash: blob(".git")}
	appsEntry := object.TreeEntry{Name: "apps", Mode: filemode.Dir, Hash: apps}

	repo := config.Repository{URL: bareDir, Branch: "main", PushBranch: "main", Paths: []string{"."}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	commitTree(t, bare, rawTree(t, bare, appsEntry, linkToGit))
	kept := filepath.Join(t.TempDir(), "kept")
	co, err := Open(context.Background(), kept, repo, log)
	if err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(filepath.Join(kept, "x")); err != nil || target != ".git" {
		t.Fatalf("x = %q, %v; want a link to .git", target, err)
	}
	planted1 := filepath.Join(kept, ".git", "hooks", "post-checkout")

	// The duplicate: refused by the kept copy and by a fresh clone.
	commitTree(t, bare, rawTree(t, bare, appsEntry, linkToGit, object.TreeEntry{Name: "x", Mode: filemode.Dir, Hash: planted}))
	if err := co.Refresh(context.Background(), co.repo); !errors.Is(err, ErrDuplicateEntry) {
		t.Errorf("kept copy: Refresh = %v, want ErrDuplicateEntry", err)
	}
	fresh := filepath.Join(t.TempDir(), "fresh")
	if _, err := Open(context.Background(), fresh, repo, log); !errors.Is(err, ErrDuplicateEntry) {
		t.Errorf("fresh clone: Open = %v, want ErrDuplicateEntry", err)
	}
	for _, p := range []string{planted1, filepath.Join(fresh+".clone", ".git", "hooks", "post-checkout"), filepath.Join(fresh, ".git", "hooks", "post-checkout")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s was written through the link", p)
		}
	}

	// The link alone replaced by a folder of that name: a folder, written
	// in the working tree, not in .git.
	commitTree(t, bare, rawTree(t, bare, appsEntry, object.TreeEntry{Name: "x", Mode: filemode.Dir, Hash: planted}))
	co, err = Open(context.Background(), kept, repo, log) // the copy the refused sync left
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(planted1); err == nil {
		t.Error(".git/hooks/post-checkout was written through the link")
	}
	if info, err := os.Lstat(filepath.Join(kept, "x", "hooks", "post-checkout")); err != nil || !info.Mode().IsRegular() {
		t.Errorf("x/hooks/post-checkout = %v, %v; want a file in the working tree", info, err)
	}
}

// A folder 3,000 levels deep is checked out (and removed) one level at a
// time: no path is resolved from the root per entry.
func TestCheckoutDeepTree(t *testing.T) {
	bareDir := filepath.Join(t.TempDir(), "remote.git")
	bare, err := git.PlainInit(bareDir, true)
	if err != nil {
		t.Fatal(err)
	}
	c := &Checkout{git: bare}
	h, err := c.store(plumbing.BlobObject, []byte("deep: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	const depth = 3000
	tree := rawTree(t, bare, object.TreeEntry{Name: "deep.yaml", Mode: filemode.Regular, Hash: h})
	for range depth {
		tree = rawTree(t, bare, object.TreeEntry{Name: "d", Mode: filemode.Dir, Hash: tree})
	}
	commitTree(t, bare, rawTree(t, bare, object.TreeEntry{Name: "a", Mode: filemode.Dir, Hash: tree}))
	repo := config.Repository{URL: bareDir, Branch: "main", PushBranch: "main", Paths: []string{"."}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := filepath.Join(t.TempDir(), "work")
	co, err := Open(context.Background(), dir, repo, log)
	if err != nil {
		t.Fatal(err)
	}
	// The file is there: walk down by descriptor (its path is longer than
	// PATH_MAX allows in one call).
	cur, err := openTreeRoot(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	for range depth {
		next, err := cur.sub("d")
		cur.close()
		if err != nil {
			t.Fatal(err)
		}
		cur = next
	}
	got, err := cur.read("deep.yaml")
	cur.close()
	if err != nil || string(got) != "deep: 1\n" {
		t.Fatalf("deep.yaml = %q, %v", got, err)
	}
	// The whole folder goes in one move.
	commitTree(t, bare, rawTree(t, bare, object.TreeEntry{Name: "b.yaml", Mode: filemode.Regular, Hash: h}))
	if err := co.Refresh(context.Background(), co.repo); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 { // .git and b.yaml
		t.Errorf("after removing the deep folder: %v", entries)
	}
}

// A repository with a folder deeper than go-git's tree walks allow (1,024
// levels) still takes the butler's commit: the push sends what the commit
// adds without walking the trees the remote has.
func TestPushBesideDeepFolder(t *testing.T) {
	bareDir := filepath.Join(t.TempDir(), "remote.git")
	bare, err := git.PlainInit(bareDir, true)
	if err != nil {
		t.Fatal(err)
	}
	c := &Checkout{git: bare}
	h, err := c.store(plumbing.BlobObject, []byte("deep: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	deep := rawTree(t, bare, object.TreeEntry{Name: "deep.yaml", Mode: filemode.Regular, Hash: h})
	for range 1100 {
		deep = rawTree(t, bare, object.TreeEntry{Name: "d", Mode: filemode.Dir, Hash: deep})
	}
	app, err := c.store(plumbing.BlobObject, []byte("image: x:1\n"))
	if err != nil {
		t.Fatal(err)
	}
	apps := rawTree(t, bare, object.TreeEntry{Name: "a.yaml", Mode: filemode.Regular, Hash: app})
	base := commitTree(t, bare, rawTree(t, bare, object.TreeEntry{Name: "apps", Mode: filemode.Dir, Hash: apps}, object.TreeEntry{Name: "deep", Mode: filemode.Dir, Hash: deep}))
	repo := config.Repository{URL: bareDir, Branch: "main", PushBranch: "main", Paths: []string{"apps"}}
	co, err := Open(context.Background(), filepath.Join(t.TempDir(), "work"), repo, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(co.Dir, "apps", "a.yaml"), []byte("image: x:2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	commit, err := co.Commit([]string{"apps/a.yaml"}, "Update\n", config.Author{Name: "b", Email: "b@example.com"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := co.Push(context.Background()); err != nil {
		t.Fatalf("Push: %v", err)
	}
	ref, err := bare.Reference(plumbing.NewBranchReferenceName("main"), true)
	if err != nil || ref.Hash() != commit {
		t.Fatalf("main = %v, %v; want %s (on %s)", ref, err, commit, base)
	}
	out, err := exec.Command("git", "--git-dir", bareDir, "cat-file", "-p", "main:apps/a.yaml").CombinedOutput()
	if err != nil || string(out) != "image: x:2\n" {
		t.Errorf("pushed apps/a.yaml = %q, %v", out, err)
	}
	if out, err := exec.Command("git", "--git-dir", bareDir, "fsck", "--connectivity-only").CombinedOutput(); err != nil {
		t.Errorf("git fsck: %v\n%s", err, out)
	}
}
