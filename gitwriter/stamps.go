package gitwriter

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

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
	order []string // the paths, sorted: a folder before what it holds
	list  []stamp  // the stamp of each path of order
	// complete says by stamps every entry of the tree in "./" (its Hash),
	// and that tree has no name left unwritten: a working tree whose every
	// stamp holds is that tree, nothing more (allHold).
	complete bool
	savedAt  int64 // the file's modification time; 0: nothing to trust
}

// holds says whether st, found at name now, is the stamp kept for name
// and that stamp says it holds h.
func (s *stamps) holds(name string, st stamp, h plumbing.Hash) bool {
	if s == nil || st.Mtime == 0 {
		return false
	}
	kept, ok := s.get(name)
	return ok && s.same(kept, st, h)
}

// same says whether st, found now, is kept, stamped before the stamps were
// saved, and kept says it holds h.
func (s *stamps) same(kept, st stamp, h plumbing.Hash) bool {
	if st.Mtime == 0 || kept.Hash != h || kept.Mtime >= s.savedAt || kept.Ctime >= s.savedAt {
		return false
	}
	kept.Hash = st.Hash
	return kept == st
}

// get returns the stamp of name.
func (s *stamps) get(name string) (stamp, bool) {
	i, ok := slices.BinarySearch(s.order, name)
	if !ok {
		return stamp{}, false
	}
	return s.list[i], true
}

// The stamps file: stampsMagic, 1 when the stamps are complete (else 0),
// the number of stamps, then each stamp, in path order, as its path
// (length-prefixed), Dev, Ino, Mode, Size, Mtime and Ctime as varints and
// the 20 bytes of its hash.
const stampsMagic = "imagebutler stamps 2\n"

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
	if err != nil || !info.Mode().IsRegular() || info.Size() > maxStampsBytes {
		return nil
	}
	b := make([]byte, info.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil
	}
	st, err := decodeStamps(b)
	if err != nil {
		return nil
	}
	st.savedAt = info.ModTime().UnixNano()
	return st
}

// maxStampsBytes bounds the stamps file loadStamps reads.
const maxStampsBytes = 256 << 20

var errBadStamps = errors.New("not a stamps file")

func decodeStamps(b []byte) (*stamps, error) {
	rest, ok := bytes.CutPrefix(b, []byte(stampsMagic))
	if !ok {
		return nil, errBadStamps
	}
	all := string(b) // the paths are slices of it: one allocation, not one each
	uvarint := func() (uint64, bool) {
		v, n := binary.Uvarint(rest)
		if n <= 0 {
			return 0, false
		}
		rest = rest[n:]
		return v, true
	}
	complete, ok1 := uvarint()
	n, ok2 := uvarint()
	if !ok1 || !ok2 || n > maxStamps {
		return nil, errBadStamps
	}
	list := make([]stamp, 0, n)
	order := make([]string, 0, n)
	for range n {
		l, ok := uvarint()
		if !ok || l > uint64(len(rest)) {
			return nil, errBadStamps
		}
		at := len(b) - len(rest)
		key := all[at : at+int(l)] // no copy: a slice of the one string
		rest = rest[l:]
		var v [6]uint64
		for i := range v {
			if v[i], ok = uvarint(); !ok {
				return nil, errBadStamps
			}
		}
		st := stamp{Dev: v[0], Ino: v[1], Mode: uint32(v[2]), Size: int64(v[3]), Mtime: int64(v[4]), Ctime: int64(v[5])}
		if len(rest) < len(st.Hash) {
			return nil, errBadStamps
		}
		copy(st.Hash[:], rest)
		rest = rest[len(st.Hash):]
		if len(order) > 0 && key <= order[len(order)-1] {
			return nil, errors.New("stamps out of order")
		}
		list = append(list, st)
		order = append(order, key)
	}
	return &stamps{order: order, list: list, complete: complete == 1}, nil
}

// saveStamps replaces the stamps of the working copy dir with by (none
// kept when by is empty), complete or not.
func saveStamps(dir string, by map[string]stamp, complete bool) error {
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
	flag := uint64(0)
	if complete {
		flag = 1
	}
	buf := binary.AppendUvarint(binary.AppendUvarint([]byte(stampsMagic), flag), uint64(len(by)))
	for _, name := range slices.Sorted(maps.Keys(by)) {
		st := by[name]
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

// allHold says whether every stamp of s holds in the working tree whose
// root is root: each path, folders first, has the stat data it was stamped
// with. A path is looked up from the root (fstatat, the last name not
// followed); the folders above it were found unchanged before it, so none
// is a link. It reads no file and lists no folder.
func (s *stamps) allHold(root *treeDir) bool {
	if s == nil || !s.complete || len(s.order) == 0 {
		return false
	}
	for i, name := range s.order {
		var (
			st  stamp
			ok  bool
			err error
		)
		if name == "./" {
			st, err = root.selfStamp()
			ok = err == nil
		} else {
			st, ok, err = root.stamp(strings.TrimSuffix(name, "/"))
		}
		if err != nil || !ok || !s.same(s.list[i], st, s.list[i].Hash) {
			return false
		}
	}
	return true
}

// rootTree is the tree the root folder was stamped with.
func (s *stamps) rootTree() plumbing.Hash {
	st, _ := s.get("./")
	return st.Hash
}
