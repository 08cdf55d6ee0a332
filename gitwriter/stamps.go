package gitwriter

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/go-git/go-git/v5/plumbing"
)

// A restart trusts what the working tree's stat data says, as git trusts
// its index: when a copy's working tree has been brought to a tree
// (checkoutOver), the stat data of each file it wrote or found intact, with
// the blob it holds, and of each folder, with the tree it holds, are kept
// in .git/imagebutler-stamps. The next checkoutOver (a restart) takes a
// file whose stat data are unchanged as holding that blob without reading
// it, and a folder whose stat data are unchanged (no entry added, removed
// or renamed in it since) and whose tree is the same as holding those
// names without listing it. Anything else is read and hashed.
//
// Stat data are trusted only when they predate the stamps file itself (its
// modification time, on the file system's own clock): a file changed in
// the same clock tick as it was stamped could keep its size and times, so
// it is hashed, as git treats a "racily clean" entry. A change that keeps
// a file's inode, size, modification and change times, which only setting
// the clock back can make, goes unnoticed, as in git. On platforms without
// the descriptor-based tree (treefs_other.go) nothing is stamped: every
// file is hashed.

// stampsFile is the stamps' file in the working copy's .git.
const stampsFile = "imagebutler-stamps"

// stamp is the stat data of a file or folder of the working tree, with the
// blob (a file) or tree (a folder) it held when stamped.
type stamp struct {
	Dev, Ino     uint64
	Mode         uint32
	Size         int64
	Mtime, Ctime int64 // nanoseconds since the epoch
	Hash         plumbing.Hash
}

// stamps are the stamps of a working tree by slash path, a folder's
// ending in "/" (the root's is "./"), and when they were saved.
type stamps struct {
	by      map[string]stamp
	savedAt int64 // the file's modification time; 0: nothing to trust
}

// holds says whether st, found at name now, is the stamp kept for name
// and that stamp says it holds h.
func (s *stamps) holds(name string, st stamp, h plumbing.Hash) bool {
	if s == nil || st.Mtime == 0 {
		return false
	}
	kept, ok := s.by[name]
	if !ok || kept.Hash != h || kept.Mtime >= s.savedAt || kept.Ctime >= s.savedAt {
		return false
	}
	kept.Hash = st.Hash
	return kept == st
}

// The stamps file: stampsMagic, the number of stamps, then each stamp as
// its path (length-prefixed), Dev, Ino, Mode, Size, Mtime and Ctime as
// varints and the 20 bytes of its hash.
const stampsMagic = "imagebutler stamps 1\n"

// maxStamps bounds what loadStamps reads of a file it did not check.
const maxStamps = 1 << 22

// loadStamps reads the stamps of the working copy dir; nil when there are
// none, or none that can be read.
func loadStamps(dir string) *stamps {
	p := filepath.Join(dir, ".git", stampsFile)
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		return nil
	}
	by, err := decodeStamps(bufio.NewReader(f))
	if err != nil {
		return nil
	}
	return &stamps{by: by, savedAt: info.ModTime().UnixNano()}
}

func decodeStamps(r *bufio.Reader) (map[string]stamp, error) {
	magic := make([]byte, len(stampsMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != stampsMagic {
		return nil, errors.New("not a stamps file")
	}
	n, err := binary.ReadUvarint(r)
	if err != nil || n > maxStamps {
		return nil, errors.New("a bad count")
	}
	by := make(map[string]stamp, n)
	var name []byte
	for range n {
		l, err := binary.ReadUvarint(r)
		if err != nil || l > 1<<16 {
			return nil, errors.New("a bad name")
		}
		name = slices.Grow(name[:0], int(l))[:l]
		if _, err := io.ReadFull(r, name); err != nil {
			return nil, err
		}
		var st stamp
		var v [6]uint64
		for i := range v {
			if v[i], err = binary.ReadUvarint(r); err != nil {
				return nil, err
			}
		}
		st.Dev, st.Ino, st.Mode, st.Size, st.Mtime, st.Ctime = v[0], v[1], uint32(v[2]), int64(v[3]), int64(v[4]), int64(v[5])
		if _, err := io.ReadFull(r, st.Hash[:]); err != nil {
			return nil, err
		}
		by[string(name)] = st
	}
	return by, nil
}

// saveStamps replaces the stamps of the working copy dir with by (none
// kept when by is empty).
func saveStamps(dir string, by map[string]stamp) error {
	p := filepath.Join(dir, ".git", stampsFile)
	if len(by) == 0 {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), stampsFile+".*")
	if err != nil {
		return err
	}
	w := bufio.NewWriter(tmp)
	buf := binary.AppendUvarint([]byte(stampsMagic), uint64(len(by)))
	for name, st := range by {
		buf = binary.AppendUvarint(buf, uint64(len(name)))
		buf = append(buf, name...)
		for _, v := range []uint64{st.Dev, st.Ino, uint64(st.Mode), uint64(st.Size), uint64(st.Mtime), uint64(st.Ctime)} {
			buf = binary.AppendUvarint(buf, v)
		}
		buf = append(buf, st.Hash[:]...)
		if len(buf) > 32<<10 {
			w.Write(buf)
			buf = buf[:0]
		}
	}
	_, err = w.Write(buf)
	if err == nil {
		err = w.Flush()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("saving the working tree's stat data: %w", err)
	}
	return nil
}
