//go:build !(linux || darwin)

package gitwriter

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"

	"github.com/go-git/go-git/v5/plumbing"
)

// treeDir is a folder of the working tree, reached beneath an os.Root of
// the tree's root. Each folder is entered only after Lstat says it is a
// folder and not a link, so no path it builds goes through a link; the
// final component of each operation is never followed (O_EXCL creates,
// Lstat checks). Linux and macOS use descriptors instead (treefs_unix.go).
type treeDir struct {
	root *os.Root
	own  bool   // root is closed with this folder
	name string // slash path from the working tree's root; "." for the root
}

func openTreeRoot(dir string) (*treeDir, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &treeDir{root: root, own: true, name: "."}, nil
}

func (d *treeDir) close() {
	if d != nil && d.own && d.root != nil {
		d.root.Close()
		d.root = nil
	}
}

func (d *treeDir) at(name string) string { return d.in(name) }

func (d *treeDir) sub(name string) (*treeDir, error) {
	k, err := d.kind(name)
	if err != nil {
		return nil, err
	}
	if k != fs.ModeDir {
		return nil, &os.PathError{Op: "open", Path: d.at(name), Err: errors.New("not a folder (a link is never followed)")}
	}
	return &treeDir{root: d.root, name: d.at(name)}, nil
}

func (d *treeDir) up() (*treeDir, error) {
	return &treeDir{root: d.root, name: path.Dir(d.name)}, nil
}

func (d *treeDir) mkdir(name string) error { return d.root.Mkdir(d.at(name), 0o755) }

func (d *treeDir) create(name string, data []byte, perm fs.FileMode) error {
	f, err := d.root.OpenFile(d.at(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (d *treeDir) overwrite(name string, data []byte) error {
	info, err := d.root.Lstat(d.at(name))
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return &os.PathError{Op: "write", Path: d.at(name), Err: errors.New("not a regular file")}
	}
	return d.root.WriteFile(d.at(name), data, info.Mode().Perm())
}

func (d *treeDir) read(name string) ([]byte, error) {
	info, err := d.root.Lstat(d.at(name))
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, &os.PathError{Op: "read", Path: d.at(name), Err: errors.New("not a regular file")}
	}
	return d.root.ReadFile(d.at(name))
}

func (d *treeDir) symlink(target, name string) error { return d.root.Symlink(target, d.at(name)) }

func (d *treeDir) kind(name string) (fs.FileMode, error) {
	info, err := d.root.Lstat(d.at(name))
	if err != nil {
		return 0, err
	}
	switch {
	case info.Mode()&fs.ModeSymlink != 0:
		return fs.ModeSymlink, nil
	case info.IsDir():
		return fs.ModeDir, nil
	case info.Mode().IsRegular():
		return 0, nil
	}
	return fs.ModeIrregular, nil
}

func (d *treeDir) names() ([]string, error) {
	entries, err := fs.ReadDir(d.root.FS(), d.name)
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names, err
}

func (d *treeDir) remove(name string) error {
	if _, err := d.kind(name); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	// os.Root's RemoveAll removes a link, not what it points to.
	return d.root.RemoveAll(d.at(name))
}

func (d *treeDir) rmdir(name string) bool {
	if k, err := d.kind(name); err != nil || k != fs.ModeDir {
		return false
	}
	return d.root.Remove(d.at(name)) == nil
}

// blobHash is the git blob hash of the regular file name; ok is false
// when it is anything else. Its stamp says only its mode: no stat data is
// kept here, so a restart hashes every file.
func (d *treeDir) blobHash(name string, buf []byte) (h plumbing.Hash, st stamp, ok bool, err error) {
	info, err := d.root.Lstat(d.at(name))
	if err != nil || !info.Mode().IsRegular() {
		return h, st, false, nil
	}
	f, err := d.root.Open(d.at(name))
	if err != nil {
		return h, st, false, err
	}
	defer f.Close()
	hasher := plumbing.NewHasher(plumbing.BlobObject, info.Size())
	n, err := io.CopyBuffer(hasher, f, buf)
	if err != nil {
		return h, st, false, err
	}
	if n != info.Size() {
		return h, st, false, nil
	}
	return hasher.Sum(), stamp{Mode: uint32(info.Mode().Perm())}, true, nil
}

// stamp and selfStamp keep no stat data here (ok false, a zero stamp): a
// restart compares contents.
func (d *treeDir) stamp(name string) (stamp, bool, error) { return stamp{}, false, nil }

func (d *treeDir) selfStamp() (stamp, error) { return stamp{}, nil }

func (d *treeDir) readlink(name string) (string, bool, error) {
	if k, err := d.kind(name); err != nil || k != fs.ModeSymlink {
		return "", false, nil
	}
	target, err := d.root.Readlink(d.at(name))
	return target, err == nil, err
}
