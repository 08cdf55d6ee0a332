package gitwriter

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"path"
	"runtime"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// A working copy found on disk when the butler starts (or takes a
// repository over) holds a checkout nothing recorded: most likely its
// last head's tree, intact, but possibly damaged by a crash, a person or a
// full disk. checkoutOver makes it the tree it must hold by comparing
// rather than rewriting, and writes only what differs. What the last
// checkout stamped (stamps.go) and still has its stat data is taken as
// it was; anything else is read and hashed as git hashes a blob. When the
// last checkout's stamps are complete, name the tree wanted and all hold,
// the copy is that tree and nothing is read: a restart over an intact copy
// costs one fstatat per path, where emptying the tree and writing every
// blob (each read and inflated from the pack), as it did before, cost
// several times as much. Into an empty tree (a fresh clone) it writes
// every entry, listing no folder but the root.

// checkoutOver makes the working tree hold tree, whatever it holds now:
// a file whose kind, executable bit and content (its git blob hash) match
// its entry stays as it is, a link whose target matches stays, anything
// else the tree names is written afresh, and anything it does not name is
// removed (but the root's .git). Names unsafe here are skipped and
// reported; no link is followed, and a tree naming an entry twice is
// refused (ErrDuplicateEntry). Stat data kept by the last checkoutOver
// (stamps.go) spare reading what has not changed since; this one's are
// kept for the next.
func (c *Checkout) checkoutOver(ctx context.Context, tree *object.Tree) ([]string, error) {
	w, err := c.newWriter(ctx)
	if err != nil {
		return nil, err
	}
	defer w.close()
	old := loadStamps(c.Dir)
	if old != nil && old.complete && old.rootTree() == tree.Hash && old.allHold(w.root) {
		return nil, nil // the tree the last checkout wrote, untouched since
	}
	r := &repair{writer: w, old: old, now: map[string]stamp{}, complete: true, buf: make([]byte, 32<<10)}
	if err := r.tree(tree); err != nil {
		return w.skipped, err
	}
	complete := r.complete && len(w.skipped) == 0
	if !r.changed && old != nil && len(r.now) == len(old.order) && complete == old.complete {
		return w.skipped, nil // the stamps kept say all there is
	}
	if err := saveStamps(c.Dir, r.now, complete); err != nil && c.log != nil {
		c.log.Warn("a restart will read every file of this working copy", "dir", c.Dir, "err", err.Error())
	}
	return w.skipped, nil
}

// repair is one checkoutOver.
type repair struct {
	*writer
	old *stamps          // the last checkoutOver's; nil: none
	now map[string]stamp // this one's
	// changed says now holds a stamp old did not (a file read or
	// written, a folder listed or changed).
	changed bool
	// complete says every entry written or found intact was stamped.
	complete bool
	buf      []byte
}

// tree walks t and the working tree together, depth first with one folder
// open at a time, so its cost is linear in the depth. Anything found where
// an entry goes that prune kept and intact refused is removed first, never
// written over or through.
func (r *repair) tree(t *object.Tree) error {
	if err := checkNames(t, ""); err != nil {
		return err
	}
	cur, err := r.root.sub(".")
	if err != nil {
		return err
	}
	defer func() { cur.close() }()
	have, err := r.list(cur, t)
	if err != nil {
		return err
	}
	type frame struct {
		t    *object.Tree
		i    int
		have map[string]bool // the names of t found in the folder
	}
	stack := []frame{{t, 0, have}}
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		if f.i == len(f.t.Entries) {
			// The folder is complete: its stat data say so from here on.
			if st, err := cur.selfStamp(); err == nil && st.Mtime != 0 {
				r.changed = r.changed || !r.old.holds(cur.name+"/", st, f.t.Hash)
				st.Hash = f.t.Hash
				r.now[cur.name+"/"] = st
			} else {
				r.complete = false
			}
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
			r.skip(name, why)
			continue
		}
		if err := r.tick(); err != nil {
			return err
		}
		present := f.have[e.Name]
		if e.Mode != filemode.Dir {
			if present {
				ok, err := r.intact(cur, name, e)
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
			r.changed = true
			if err := r.writeEntry(cur, e.Name, e); err != nil {
				return err
			}
			r.stampEntry(cur, name, e)
			continue
		}
		sub, err := r.c.git.TreeObject(e.Hash)
		if err != nil {
			return fmt.Errorf("reading tree %s: %w", name, err)
		}
		if err := checkNames(sub, name); err != nil {
			return err
		}
		var child *treeDir
		if present {
			// Opened only if it is a folder: a link or a file there is
			// removed, never followed.
			if child, err = cur.sub(e.Name); err != nil {
				if k, kerr := cur.kind(e.Name); kerr == nil && k == fs.ModeDir {
					return err // a folder that cannot be opened
				}
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
			if child, err = cur.sub(e.Name); err != nil {
				return err
			}
		}
		cur.close()
		cur = child
		have := map[string]bool{}
		if present {
			if have, err = r.list(cur, sub); err != nil {
				return err
			}
		}
		stack = append(stack, frame{sub, 0, have})
	}
	return nil
}

// list is prune, but for a folder whose stat data say it holds the names
// of t already (none added, removed or renamed since it was stamped
// holding t): those, without reading it.
func (r *repair) list(d *treeDir, t *object.Tree) (map[string]bool, error) {
	if st, err := d.selfStamp(); err == nil && r.old.holds(d.name+"/", st, t.Hash) {
		have := make(map[string]bool, len(t.Entries))
		for _, e := range t.Entries {
			if unsafeName(e.Name) == "" {
				have[e.Name] = true
			}
		}
		return have, nil
	}
	r.changed = true
	return r.prune(d, t)
}

// stampEntry keeps the stat data of the entry e just written or found
// intact at name (a file, a link, a submodule's folder).
func (r *repair) stampEntry(d *treeDir, name string, e object.TreeEntry) {
	if st, ok, err := d.stamp(path.Base(name)); err == nil && ok && st.Mtime != 0 {
		st.Hash = e.Hash
		r.now[name] = st
		return
	}
	r.complete = false // a link with no target, say, is not written
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

// intact says whether the non-folder entry e (at name) is in d as
// writeEntry writes it: for a file, by its stat data when they are the
// ones stamped with its blob, else by its content.
func (r *repair) intact(d *treeDir, name string, e object.TreeEntry) (bool, error) {
	exec := e.Mode == filemode.Executable
	if r.old != nil {
		st, ok, err := d.stamp(e.Name)
		if err != nil {
			return false, err
		}
		if ok && r.old.holds(name, st, e.Hash) && kindOf(e.Mode, st.Mode) {
			st.Hash = e.Hash
			r.now[name] = st
			return true, nil
		}
	}
	r.changed = true
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
		if err != nil || len(names) > 0 {
			return false, nil
		}
		r.stampEntry(d, name, e)
		return true, nil
	case filemode.Symlink:
		target, ok, err := d.readlink(e.Name)
		if err != nil || !ok {
			return false, err
		}
		want, err := r.blob(e.Hash)
		if err != nil {
			return false, fmt.Errorf("reading %s: %w", name, err)
		}
		if !bytes.Equal(want, []byte(target)) {
			return false, nil
		}
		r.stampEntry(d, name, e)
		return true, nil
	}
	h, st, ok, err := d.blobHash(e.Name, r.buf)
	if err != nil || !ok || h != e.Hash {
		return false, err
	}
	// Windows keeps no executable bit.
	if (st.Mode&0o100 != 0) != exec && runtime.GOOS != "windows" {
		return false, nil
	}
	if st.Mtime != 0 {
		st.Hash = e.Hash
		r.now[name] = st
	} else {
		r.complete = false
	}
	return true, nil
}

// kindOf says whether the stat mode m is of the kind writeEntry makes for
// the tree entry mode e: a link, a submodule's folder, a regular file
// executable by its owner exactly when e is.
func kindOf(e filemode.FileMode, m uint32) bool {
	const typeBits, regular, link, folder = 0o170000, 0o100000, 0o120000, 0o040000
	switch e {
	case filemode.Symlink:
		return m&typeBits == link
	case filemode.Submodule:
		return m&typeBits == folder
	}
	return m&typeBits == regular && (m&0o100 != 0) == (e == filemode.Executable)
}
