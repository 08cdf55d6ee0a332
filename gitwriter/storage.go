package gitwriter

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// A working copy's git storage is opened with a small object cache of its
// own (go-git's default pins up to 96 MiB per repository, and the butler
// keeps every copy open between cycles, so RSS grew with the number and size
// of the repositories), and with its pack files kept open (KeepDescriptors:
// go-git otherwise reopens a pack for every object it reads). Each fetch
// adds a pack; once a copy holds more than MaxPacks, its smaller packs are
// merged into one (compactPacks), so lookups and open files stay bounded.

// ObjectCacheBytes is the object cache of each working copy.
const ObjectCacheBytes = 8 * cache.MiByte

// MaxPacks is how many packs a working copy holds before its smaller ones
// are merged.
const MaxPacks = 16

// openStorage opens the git storage of the working copy dir.
func openStorage(dir string) *filesystem.Storage {
	return filesystem.NewStorageWithOptions(idxBuffered{osfs.New(filepath.Join(dir, ".git"))}, cache.NewObjectLRU(ObjectCacheBytes),
		filesystem.Options{KeepDescriptors: true})
}

// idxBuffered opens pack index files with a read buffer. go-git decodes an
// index with one read per fan-out bucket for each of its tables (about a
// thousand reads for any pack of some size), straight from the file; the
// first fetch of a restart reads the whole index to learn whether it holds
// the remote's head.
type idxBuffered struct{ billy.Filesystem }

// Open opens filename, buffered when it is a pack index.
func (fs idxBuffered) Open(filename string) (billy.File, error) {
	f, err := fs.Filesystem.Open(filename)
	if err != nil || !strings.HasSuffix(filename, ".idx") {
		return f, err
	}
	return &bufferedFile{File: f, r: bufio.NewReaderSize(f, 64<<10)}, nil
}

// bufferedFile reads a file through a buffer; Seek and ReadAt see the
// file's position as the reader does.
type bufferedFile struct {
	billy.File
	r *bufio.Reader
}

func (f *bufferedFile) Read(p []byte) (int, error) { return f.r.Read(p) }

func (f *bufferedFile) Seek(offset int64, whence int) (int64, error) {
	if whence == io.SeekCurrent {
		offset -= int64(f.r.Buffered())
	}
	n, err := f.File.Seek(offset, whence)
	f.r.Reset(f.File)
	return n, err
}

// openRepository opens the working copy dir (a repository whose .git is a
// folder, as the butler makes them).
func openRepository(dir string) (*git.Repository, *filesystem.Storage, error) {
	if info, err := os.Stat(filepath.Join(dir, ".git")); err != nil || !info.IsDir() {
		return nil, nil, fmt.Errorf("%s: %w", dir, git.ErrRepositoryNotExists)
	}
	st := openStorage(dir)
	r, err := git.Open(st, osfs.New(dir))
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return r, st, nil
}

// Close releases the working copy's open files. The copy on disk stays.
func (c *Checkout) Close() error {
	if c == nil || c.storage == nil {
		return nil
	}
	err := c.storage.Close()
	c.storage = nil
	return err
}

// setRepository makes r (with its storage st) the copy's repository,
// closing the one before.
func (c *Checkout) setRepository(r *git.Repository, st *filesystem.Storage) {
	c.Close()
	c.git, c.storage = r, st
}

// compactPacks merges every pack but the largest into one new pack, when
// the copy holds more than MaxPacks: the clone's pack stays as it is, the
// many small ones each fetch added become one. The storage is opened
// again after (its index of packs is stale).
func (c *Checkout) compactPacks() error {
	pos, ok := c.git.Storer.(storer.PackedObjectStorer)
	if !ok {
		return nil
	}
	packs, err := pos.ObjectPacks()
	if err != nil || len(packs) <= MaxPacks {
		return err
	}
	packDir := filepath.Join(c.Dir, ".git", "objects", "pack")
	size := func(h plumbing.Hash) int64 {
		info, err := os.Stat(filepath.Join(packDir, "pack-"+h.String()+".pack"))
		if err != nil {
			return 0
		}
		return info.Size()
	}
	slices.SortFunc(packs, func(a, b plumbing.Hash) int { return int(size(b) - size(a)) }) // largest first
	var objs []plumbing.Hash
	seen := map[plumbing.Hash]bool{}
	for _, p := range packs[1:] {
		hs, err := packObjects(filepath.Join(packDir, "pack-"+p.String()+".idx"))
		if err != nil {
			return err
		}
		for _, h := range hs {
			if !seen[h] {
				seen[h] = true
				objs = append(objs, h)
			}
		}
	}
	pw, ok := c.git.Storer.(storer.PackfileWriter)
	if !ok {
		return errors.New("the storage cannot write packs")
	}
	w, err := pw.PackfileWriter()
	if err != nil {
		return err
	}
	if _, err := packfile.NewEncoder(w, c.git.Storer, false).Encode(objs, 10); err != nil {
		w.Close()
		return fmt.Errorf("merging packs: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("merging packs: %w", err)
	}
	// Reopen before deleting: the new pack is then indexed, and no old
	// one is held open.
	r, st, err := openRepository(c.Dir)
	if err != nil {
		return err
	}
	c.setRepository(r, st)
	pos = c.git.Storer.(storer.PackedObjectStorer)
	for _, p := range packs[1:] {
		if err := pos.DeleteOldObjectPackAndIndex(p, time.Time{}); err != nil {
			return fmt.Errorf("removing a merged pack: %w", err)
		}
	}
	r, st, err = openRepository(c.Dir)
	if err != nil {
		return err
	}
	c.setRepository(r, st)
	return nil
}

// packObjects lists the objects of the pack whose index is idx.
func packObjects(idx string) ([]plumbing.Hash, error) {
	f, err := os.Open(idx)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	index := idxfile.NewMemoryIndex()
	if err := idxfile.NewDecoder(f).Decode(index); err != nil {
		return nil, fmt.Errorf("reading %s: %w", idx, err)
	}
	iter, err := index.Entries()
	if err != nil {
		return nil, err
	}
	defer iter.Close()
	var out []plumbing.Hash
	for {
		e, err := iter.Next()
		if err != nil {
			break
		}
		out = append(out, e.Hash)
	}
	return out, nil
}
