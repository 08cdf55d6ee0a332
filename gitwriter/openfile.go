package gitwriter

import (
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
)

// regularFile is a file opened for discovery to read: what read needs of
// it, so that a platform may open it more cheaply than os.File does.
type regularFile interface {
	io.Reader
	// stat reports the file's size and whether it is a regular file.
	stat() (size int64, regular bool, err error)
	Close() error
}

// dirs opens folders beneath a root, never outside it (see open).
type dirs struct {
	rootFile *os.File // the root's folder, when a platform opens beneath it
	plain    bool     // open through the root alone
}

func (d *dirs) close() {
	if d.rootFile != nil {
		d.rootFile.Close()
		d.rootFile = nil
	}
}

// walkFS is root's file system whose ReadDir lists a folder opened by dirs
// (an os.File opened through an os.Root stats every entry it lists).
type walkFS struct {
	fs.FS
	root *os.Root
	dirs dirs
}

func newWalkFS(root *os.Root) *walkFS {
	return &walkFS{FS: root.FS(), root: root}
}

// ReadDir lists the folder name, sorted by name.
func (w *walkFS) ReadDir(name string) ([]fs.DirEntry, error) {
	f, err := w.dirs.open(w.root, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, err
}
