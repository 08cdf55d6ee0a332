package gitwriter

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"runtime"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// A working copy found on disk when the butler starts (or takes a
// repository over) holds a checkout nothing recorded: most likely its
// last head's tree, intact, but possibly damaged by a crash, a person or a
// full disk. checkoutOver makes it the tree it must hold by comparing
// rather than rewriting: each file is read and hashed as git hashes a blob,
// and only what differs is written. On an intact copy a restart reads
// every file once and writes nothing, where emptying the tree and writing
// every blob (each read and inflated from the pack), as it did before, cost
// several times as much. Into an empty tree (a fresh clone) it writes
// every entry, listing no folder but the root.

// checkoutOver makes the working tree hold tree, whatever it holds now:
// a file whose kind, executable bit and content (its git blob hash) match
// its entry stays as it is, a link whose target matches stays, anything
// else the tree names is written afresh, and anything it does not name is
// removed (but the root's .git). Names unsafe here are skipped and
// reported; no link is followed, and a tree naming an entry twice is
// refused (ErrDuplicateEntry).
func (c *Checkout) checkoutOver(ctx context.Context, tree *object.Tree) ([]string, error) {
	w, err := c.newWriter(ctx)
	if err != nil {
		return nil, err
	}
	defer w.close()
	err = w.repairTree(tree)
	return w.skipped, err
}

// repairTree walks t and the working tree together, depth first with one
// folder open at a time, so its cost is linear in the depth. Anything found
// where an entry goes that prune kept and intact refused is removed first,
// never written over or through.
func (w *writer) repairTree(t *object.Tree) error {
	if err := checkNames(t, ""); err != nil {
		return err
	}
	cur, err := w.root.sub(".")
	if err != nil {
		return err
	}
	defer func() { cur.close() }()
	have, err := w.prune(cur, t)
	if err != nil {
		return err
	}
	type frame struct {
		t    *object.Tree
		i    int
		have map[string]bool // the names of t found in the folder
	}
	buf := make([]byte, 32<<10)
	stack := []frame{{t, 0, have}}
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		if f.i == len(f.t.Entries) {
			if stack = stack[:len(stack)-1]; len(stack) > 0 {
				parent, err := cur.up()
				if err != nil {
					return err
				}
				cur.close()
				cur = parent
			}
			continue
		}
		e := f.t.Entries[f.i]
		f.i++
		name := cur.in(e.Name)
		if why := unsafeName(e.Name); why != "" {
			w.skip(name, why)
			continue
		}
		if err := w.tick(); err != nil {
			return err
		}
		present := f.have[e.Name]
		if e.Mode != filemode.Dir {
			if present {
				ok, err := w.intact(cur, e, buf)
				if err != nil {
					return err
				}
				if ok {
					continue
				}
				if err := cur.remove(e.Name); err != nil {
					return fmt.Errorf("removing %s: %w", name, err)
				}
			}
			if err := w.writeEntry(cur, e.Name, e); err != nil {
				return err
			}
			continue
		}
		sub, err := w.c.git.TreeObject(e.Hash)
		if err != nil {
			return fmt.Errorf("reading tree %s: %w", name, err)
		}
		if err := checkNames(sub, name); err != nil {
			return err
		}
		if present {
			if k, err := cur.kind(e.Name); err != nil || k != fs.ModeDir {
				if err := cur.remove(e.Name); err != nil {
					return fmt.Errorf("removing %s: %w", name, err)
				}
				present = false
			}
		}
		if !present {
			if err := cur.mkdir(e.Name); err != nil {
				return fmt.Errorf("creating %s: %w", name, err)
			}
		}
		child, err := cur.sub(e.Name)
		if err != nil {
			return err
		}
		cur.close()
		cur = child
		have := map[string]bool{}
		if present {
			if have, err = w.prune(cur, sub); err != nil {
				return err
			}
		}
		stack = append(stack, frame{sub, 0, have})
	}
	return nil
}

// prune removes from the folder d every name that t does not name (or
// names unsafely), but the root's .git, and returns the names left.
func (w *writer) prune(d *treeDir, t *object.Tree) (map[string]bool, error) {
	names, err := d.names()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", d.name, err)
	}
	want := make(map[string]bool, len(t.Entries))
	for _, e := range t.Entries {
		if unsafeName(e.Name) == "" {
			want[e.Name] = true
		}
	}
	have := make(map[string]bool, len(names))
	for _, n := range names {
		switch {
		case d.name == "." && n == ".git":
		case want[n]:
			have[n] = true
		default:
			if err := d.remove(n); err != nil {
				return nil, fmt.Errorf("removing %s: %w", d.in(n), err)
			}
		}
	}
	return have, nil
}

// intact says whether the non-folder entry e is in d as writeEntry writes
// it.
func (w *writer) intact(d *treeDir, e object.TreeEntry, buf []byte) (bool, error) {
	switch e.Mode {
	case filemode.Submodule: // an empty folder
		if k, err := d.kind(e.Name); err != nil || k != fs.ModeDir {
			return false, nil
		}
		sub, err := d.sub(e.Name)
		if err != nil {
			return false, nil
		}
		defer sub.close()
		names, err := sub.names()
		return err == nil && len(names) == 0, nil
	case filemode.Symlink:
		target, ok, err := d.readlink(e.Name)
		if err != nil || !ok {
			return false, err
		}
		want, err := w.blob(e.Hash)
		if err != nil {
			return false, fmt.Errorf("reading %s: %w", d.in(e.Name), err)
		}
		return bytes.Equal(want, []byte(target)), nil
	}
	h, exec, ok, err := d.blobHash(e.Name, buf)
	if err != nil || !ok {
		return false, err
	}
	// Windows keeps no executable bit.
	return h == e.Hash && (exec == (e.Mode == filemode.Executable) || runtime.GOOS == "windows"), nil
}
