package gitwriter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/imagebutler/imagebutler/config"
)

// The working tree is written from git's objects here rather than through
// go-git's Worktree, for two reasons. go-git refuses to check out a tree
// holding any name it finds invalid (a newline in a file name, legal in
// git), so one such file would fail the repository every cycle; and each of
// its checkout, reset and status walks the whole tree and its index, so a
// push that changed one file cost as much as a fresh checkout. Here a name
// that is unsafe on this platform is skipped and reported once, a moved
// head writes only the files that differ (a diff of two trees, which skips
// unchanged subtrees), and a commit replaces the written blobs in the head's
// tree. The index is not kept: nothing here reads it.

// unsafeName says why a tree entry's name cannot be written on this
// platform, or "" when it can. Names that would climb out of the working
// copy or into .git are refused everywhere, as git refuses them.
func unsafeName(name string) string {
	switch {
	case name == "", name == ".", name == "..":
		return "not a file name"
	case strings.ContainsAny(name, "/\x00"):
		return "holds '/' or NUL"
	case strings.EqualFold(name, ".git"):
		return "names the .git folder"
	case len(name) > 255:
		return "longer than the 255 bytes file systems take"
	}
	switch runtime.GOOS {
	case "windows":
		return unsafeOnWindows(name)
	case "darwin", "ios":
		// HFS+ ignores some code points in names: ".g\u200cit" is .git.
		if strings.EqualFold(strings.Map(func(r rune) rune {
			if r == 0x200c || r == 0x200d || r == 0x200e || r == 0x200f || (r >= 0x202a && r <= 0x202e) || (r >= 0x206a && r <= 0x206f) || r == 0xfeff {
				return -1
			}
			return r
		}, name), ".git") {
			return "names the .git folder (HFS+)"
		}
	}
	return ""
}

func unsafeOnWindows(name string) string {
	if strings.ContainsAny(name, `<>:"\|?*`) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 }) {
		return "holds a character Windows refuses"
	}
	if strings.HasSuffix(name, ".") || strings.HasSuffix(name, " ") {
		return "ends in a dot or space"
	}
	base := strings.ToUpper(strings.TrimRight(strings.SplitN(name, ".", 2)[0], " "))
	switch base {
	case "CON", "PRN", "AUX", "NUL":
		return "a Windows device name"
	}
	if len(base) == 4 && (strings.HasPrefix(base, "COM") || strings.HasPrefix(base, "LPT")) && base[3] >= '1' && base[3] <= '9' {
		return "a Windows device name"
	}
	if strings.EqualFold(name, "git~1") {
		return "names the .git folder (8.3 name)"
	}
	return ""
}

// joinName is the slash path of name in the folder dir ("" for the root).
// Unlike path.Join it never cleans: a tree's names are taken as they are,
// so "a/../b" stays three names (the second unsafe), never "b", and "./x"
// stays two.
func joinName(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// in is the slash path of name in the folder d, whose own name is "." at
// the root; d's names are all safe ones.
func (d *treeDir) in(name string) string {
	if d.name == "." {
		return name
	}
	return d.name + "/" + name
}

// safeFolders is the folders of the slash path p before its first unsafe
// name (itself not counted as a folder), or "".
func safeFolders(p string) string {
	parts := strings.Split(p, "/")
	safe := ""
	for _, part := range parts[:len(parts)-1] {
		if unsafeName(part) != "" {
			break
		}
		safe = joinName(safe, part)
	}
	return safe
}

// unsafePath is the reason of the first unsafe component of a
// slash-separated path, or "".
func unsafePath(p string) string {
	for part := range strings.SplitSeq(p, "/") {
		if why := unsafeName(part); why != "" {
			return why
		}
	}
	return ""
}

// writer writes a tree's entries into the working tree beneath a treeDir
// of its root: no operation goes through a link (each folder is entered
// with O_NOFOLLOW), so nothing lands outside the working copy or in .git
// whatever the names or links of the tree say.
type writer struct {
	c       *Checkout
	root    *treeDir
	ctx     context.Context
	skipped []string // "name: reason", reported by Sync
	n       int
	last    *treeDir // the folder the last write went into, for the next
}

func (c *Checkout) newWriter(ctx context.Context) (*writer, error) {
	root, err := openTreeRoot(c.Dir)
	if err != nil {
		return nil, fmt.Errorf("opening the working tree: %w", err)
	}
	return &writer{c: c, root: root, ctx: ctx}, nil
}

func (w *writer) close() {
	w.forget()
	w.root.close()
}

// forget closes the folder kept for the next write.
func (w *writer) forget() {
	w.last.close()
	w.last = nil
}

func (w *writer) skip(name, why string) { w.skipped = append(w.skipped, name+": "+why) }

// tick checks the context every so many files: a large checkout is bound
// by the repository's timeout too.
func (w *writer) tick() error {
	if w.n++; w.n%256 == 0 {
		return w.ctx.Err()
	}
	return nil
}

// ErrDuplicateEntry is a tree that names one entry twice, which git's own
// tools refuse (fsck's duplicateEntries) and no checkout can write: the
// second would land on, or through, the first.
var ErrDuplicateEntry = errors.New("the tree names an entry twice")

// checkNames refuses a tree (at dir) holding two entries of one name.
func checkNames(t *object.Tree, dir string) error {
	if len(t.Entries) < 2 {
		return nil
	}
	names := make([]string, len(t.Entries))
	for i, e := range t.Entries {
		names[i] = e.Name
	}
	slices.Sort(names)
	for i := 1; i < len(names); i++ {
		if names[i] == names[i-1] {
			return fmt.Errorf("%s: %w", joinName(dir, names[i]), ErrDuplicateEntry)
		}
	}
	return nil
}

// writeEntry writes one non-tree entry as base in dir, where nothing is.
func (w *writer) writeEntry(dir *treeDir, base string, e object.TreeEntry) error {
	name := dir.in(base)
	switch e.Mode {
	case filemode.Submodule:
		// git leaves an empty folder where a submodule is not initialised.
		if err := dir.mkdir(base); err != nil {
			return fmt.Errorf("creating %s: %w", name, err)
		}
		return nil
	case filemode.Symlink:
		target, err := w.blob(e.Hash)
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		if len(target) == 0 || bytes.IndexByte(target, 0) >= 0 {
			w.skip(name, "a link with no target, or one holding NUL") // no file system makes such a link
			return nil
		}
		if err := dir.symlink(string(target), base); err != nil {
			return fmt.Errorf("creating the link %s: %w", name, err)
		}
		return nil
	}
	perm := fs.FileMode(0o644)
	if e.Mode == filemode.Executable {
		perm = 0o755
	}
	content, err := w.blob(e.Hash)
	if err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	if err := dir.create(base, content, perm); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// folder returns the folder dir (slash-separated, "." for the root), made
// where missing: whatever non-folder stands in the way (a file, a link) is
// removed, never followed. It stays open for the next write (forget).
func (w *writer) folder(dir string) (*treeDir, error) {
	if w.last != nil && w.last.name == dir {
		return w.last, nil
	}
	// Names come sorted: the next folder is often below the last one.
	var (
		cur  *treeDir
		rest = dir
		err  error
	)
	if below, ok := strings.CutPrefix(dir, w.last.nameOrNone()+"/"); ok && w.last != nil {
		cur, rest, w.last = w.last, below, nil
	} else {
		w.forget()
		if cur, err = w.root.sub("."); err != nil {
			return nil, err
		}
	}
	if rest != "." {
		for part := range strings.SplitSeq(rest, "/") {
			k, err := cur.kind(part)
			switch {
			case err == nil && k == fs.ModeDir:
			case err == nil:
				if err := cur.remove(part); err != nil {
					cur.close()
					return nil, fmt.Errorf("removing %s: %w", cur.in(part), err)
				}
				fallthrough
			case errors.Is(err, fs.ErrNotExist):
				if err := cur.mkdir(part); err != nil {
					cur.close()
					return nil, fmt.Errorf("creating %s: %w", cur.in(part), err)
				}
			default:
				cur.close()
				return nil, err
			}
			child, err := cur.sub(part)
			cur.close()
			if err != nil {
				return nil, err
			}
			cur = child
		}
	}
	w.last = cur
	return cur, nil
}

// replace writes entry e at name (whose path is safe), removing whatever
// is there first.
func (w *writer) replace(name string, e object.TreeEntry) error {
	dir, err := w.folder(path.Dir(name))
	if err != nil {
		return err
	}
	base := path.Base(name)
	if err := dir.remove(base); err != nil {
		return fmt.Errorf("removing %s: %w", name, err)
	}
	return w.writeEntry(dir, base, e)
}

// remove deletes name and then each folder above it left empty, as git
// does. Of an unsafe name, never written, only the empty folders above it
// are removed.
func (w *writer) remove(name string) error {
	unsafe := unsafePath(name) != ""
	if unsafe {
		safe := ""
		for part := range strings.SplitSeq(name, "/") {
			if unsafeName(part) != "" {
				break
			}
			safe = joinName(safe, part)
		}
		name = joinName(safe, "unwritten") // its folders are what is left to clear
	}
	dir, err := w.root.open(path.Dir(name))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil // no folder there: nothing beneath it either
	case err != nil:
		return err
	}
	defer func() { dir.close() }()
	if !unsafe {
		if err := dir.remove(path.Base(name)); err != nil {
			return fmt.Errorf("removing %s: %w", name, err)
		}
	}
	// Up the folders, one level at a time, while they are left empty.
	for dir.name != "." {
		parent, err := dir.up()
		if err != nil {
			return err
		}
		base := path.Base(dir.name)
		dir.close()
		dir = parent
		if !dir.rmdir(base) { // not empty (or gone): stop
			break
		}
		w.forget() // the folder kept for writes may be gone
	}
	return nil
}

func (w *writer) blob(h plumbing.Hash) ([]byte, error) {
	b, err := w.c.git.BlobObject(h)
	if err != nil {
		return nil, err
	}
	r, err := b.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// checkoutChanges moves a working tree that holds from (but for the
// files in touched, written since) to to, writing only what differs.
func (c *Checkout) checkoutChanges(ctx context.Context, from, to *object.Tree, touched []string) ([]string, error) {
	w, err := c.newWriter(ctx)
	if err != nil {
		return nil, err
	}
	defer w.close()
	// Removals first: a file that becomes a folder (or the reverse) is out
	// of the way before the new entry is written.
	// What to write, with its entry in to when the diff gave it; a file
	// written since (touched) is looked up in to.
	write := map[string]*object.TreeEntry{}
	err = c.diffTrees(from, to, "", func(name string, old, new *object.TreeEntry) error {
		if new != nil {
			write[name] = new
			return nil
		}
		if err := w.tick(); err != nil {
			return err
		}
		return w.remove(name)
	})
	if err != nil {
		return w.skipped, err
	}
	for _, f := range touched {
		if _, ok := write[f]; !ok {
			write[f] = nil
		}
	}
	for _, name := range slices.Sorted(maps.Keys(write)) {
		if err := w.tick(); err != nil {
			return w.skipped, err
		}
		if why := unsafePath(name); why != "" {
			w.skip(name, why)
			// Its folders down to the unsafe name are made, as a fresh
			// checkout makes them.
			if safe := safeFolders(name); safe != "" {
				if _, err := w.folder(safe); err != nil {
					return w.skipped, err
				}
			}
			continue
		}
		e, found := write[name], true
		if e == nil {
			var at object.TreeEntry
			if at, found, err = c.entryAt(to, name); err != nil {
				return w.skipped, err
			}
			e = &at
		}
		if !found || e.Mode == filemode.Dir {
			if err := w.remove(name); err != nil {
				return w.skipped, err
			}
			continue
		}
		if err := w.replace(name, *e); err != nil {
			return w.skipped, err
		}
	}
	return w.skipped, nil
}

// diffTrees calls fn for every non-folder entry (a file, a link, a
// submodule) that differs between trees a and b (either may be nil: empty)
// under dir, with its entry in each (nil where absent), descending only into
// folders whose hashes differ. Unlike go-git's DiffTree it takes every name
// git takes.
func (c *Checkout) diffTrees(a, b *object.Tree, dir string, fn func(name string, from, to *object.TreeEntry) error) error {
	entries := func(t *object.Tree) map[string]*object.TreeEntry {
		m := map[string]*object.TreeEntry{}
		if t != nil {
			for i := range t.Entries {
				m[t.Entries[i].Name] = &t.Entries[i]
			}
		}
		return m
	}
	if b != nil {
		if err := checkNames(b, dir); err != nil {
			return err
		}
	}
	ea, eb := entries(a), entries(b)
	names := slices.Sorted(maps.Keys(ea))
	for n := range eb {
		if ea[n] == nil {
			names = append(names, n)
		}
	}
	sub := func(e *object.TreeEntry, name string) (*object.Tree, error) {
		if e == nil || e.Mode != filemode.Dir {
			return nil, nil
		}
		t, err := c.git.TreeObject(e.Hash)
		if err != nil {
			return nil, fmt.Errorf("reading tree %s: %w", name, err)
		}
		return t, nil
	}
	for _, n := range names {
		x, y := ea[n], eb[n]
		if x != nil && y != nil && x.Hash == y.Hash && x.Mode == y.Mode {
			continue
		}
		name := joinName(dir, n)
		leaf := func(e *object.TreeEntry) *object.TreeEntry {
			if e == nil || e.Mode == filemode.Dir {
				return nil
			}
			return e
		}
		if lx, ly := leaf(x), leaf(y); lx != nil || ly != nil {
			if err := fn(name, lx, ly); err != nil {
				return err
			}
		}
		sx, err := sub(x, name)
		if err != nil {
			return err
		}
		sy, err := sub(y, name)
		if err != nil {
			return err
		}
		if sx != nil || sy != nil {
			if err := c.diffTrees(sx, sy, name, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// entryAt finds the entry at the slash-separated path p in t, with no
// judgement on the name (go-git's FindEntry refuses names git allows).
func (c *Checkout) entryAt(t *object.Tree, p string) (object.TreeEntry, bool, error) {
	parts := strings.Split(p, "/")
	for i, part := range parts {
		var next *object.TreeEntry
		for j := range t.Entries {
			if t.Entries[j].Name == part {
				next = &t.Entries[j]
				break
			}
		}
		if next == nil {
			return object.TreeEntry{}, false, nil
		}
		if i == len(parts)-1 {
			return *next, true, nil
		}
		if next.Mode != filemode.Dir {
			return object.TreeEntry{}, false, nil
		}
		sub, err := c.git.TreeObject(next.Hash)
		if err != nil {
			return object.TreeEntry{}, false, fmt.Errorf("reading tree %s: %w", strings.Join(parts[:i+1], "/"), err)
		}
		t = sub
	}
	return object.TreeEntry{}, false, nil
}

// commitFiles commits the working tree's files (slash-separated, relative
// to the repository's root) onto Head: Head's tree with those blobs
// replaced. Every file must be a regular file of Head's tree: the butler
// changes values, it never adds, removes or re-types a file.
func (c *Checkout) commitFiles(files []string, message string, author config.Author, signer git.Signer) (plumbing.Hash, error) {
	head, err := c.git.CommitObject(c.Head)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("reading commit %s: %w", c.Head, err)
	}
	tree, err := head.Tree()
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("reading the tree of %s: %w", c.Head, err)
	}
	w, err := c.newWriter(context.Background())
	if err != nil {
		return plumbing.ZeroHash, err
	}
	defer w.close()
	blobs := make(map[string]plumbing.Hash, len(files))
	dirs := map[string]bool{}
	for _, f := range files {
		// Read as the checkout writes: never through a link.
		dir, err := w.root.open(path.Dir(f))
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("staging %s: %w", f, err)
		}
		content, err := dir.read(path.Base(f))
		dir.close()
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("staging %s: %w", f, err)
		}
		h, err := c.store(plumbing.BlobObject, content)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("staging %s: %w", f, err)
		}
		p := c.inRepo(f)
		blobs[p] = h
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	treeHash, err := c.replaceBlobs(tree, "", blobs, dirs)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if len(blobs) > 0 {
		return plumbing.ZeroHash, fmt.Errorf("staging %s: not a file of %s", slices.Sorted(maps.Keys(blobs))[0], c.Head)
	}
	clean := strings.NewReplacer("<", "", ">", "", "\n", "")
	sig := object.Signature{Name: clean.Replace(author.Name), Email: clean.Replace(author.Email), When: time.Now()}
	commit := &object.Commit{Author: sig, Committer: sig, Message: message, TreeHash: treeHash, ParentHashes: []plumbing.Hash{c.Head}}
	if signer != nil {
		unsigned := &plumbing.MemoryObject{}
		if err := commit.EncodeWithoutSignature(unsigned); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("signing: %w", err)
		}
		r, err := unsigned.Reader()
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("signing: %w", err)
		}
		sig, err := signer.Sign(r)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("signing: %w", err)
		}
		commit.PGPSignature = string(sig)
	}
	obj := c.git.Storer.NewEncodedObject()
	if err := commit.Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("committing: %w", err)
	}
	h, err := c.git.Storer.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("committing: %w", err)
	}
	local := plumbing.NewBranchReferenceName(c.repo.PushBranch)
	if err := c.git.Storer.SetReference(plumbing.NewHashReference(local, h)); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("setting %s: %w", local, err)
	}
	return h, nil
}

// replaceBlobs stores t with the blobs under dir replaced (each found one
// is taken out of blobs) and returns its hash; dirs holds every folder
// that has a replaced blob below it.
func (c *Checkout) replaceBlobs(t *object.Tree, dir string, blobs map[string]plumbing.Hash, dirs map[string]bool) (plumbing.Hash, error) {
	entries := slices.Clone(t.Entries)
	for i, e := range entries {
		p := joinName(dir, e.Name)
		switch {
		case e.Mode == filemode.Dir && dirs[p]:
			sub, err := c.git.TreeObject(e.Hash)
			if err != nil {
				return plumbing.ZeroHash, fmt.Errorf("reading tree %s: %w", p, err)
			}
			if entries[i].Hash, err = c.replaceBlobs(sub, p, blobs, dirs); err != nil {
				return plumbing.ZeroHash, err
			}
		case e.Mode.IsFile() && e.Mode != filemode.Symlink:
			if h, ok := blobs[p]; ok {
				entries[i].Hash = h
				delete(blobs, p)
			}
		}
	}
	obj := c.git.Storer.NewEncodedObject()
	if err := (&object.Tree{Entries: entries}).Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("writing tree %s: %w", dir, err)
	}
	return c.git.Storer.SetEncodedObject(obj)
}

// store writes one object of type t to the repository.
func (c *Checkout) store(t plumbing.ObjectType, content []byte) (plumbing.Hash, error) {
	obj := c.git.Storer.NewEncodedObject()
	obj.SetType(t)
	obj.SetSize(int64(len(content)))
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := w.Write(content); err != nil {
		w.Close()
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return c.git.Storer.SetEncodedObject(obj)
}
