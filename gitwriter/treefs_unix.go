//go:build linux || darwin

package gitwriter

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"golang.org/x/sys/unix"
)

// treeDir is a folder of the working tree held open by descriptor: every
// name below is resolved against it with O_NOFOLLOW (openat, mkdirat,
// symlinkat, unlinkat, fstatat with AT_SYMLINK_NOFOLLOW), so no operation
// ever goes through a link, whatever the tree holds, and each costs one
// system call however deep the folder is.
type treeDir struct {
	fd   int
	name string // slash path from the working tree's root; "." for the root
}

// openTreeRoot opens the working tree's root folder dir.
func openTreeRoot(dir string) (*treeDir, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return &treeDir{fd: fd, name: "."}, nil
}

func (d *treeDir) close() {
	if d != nil && d.fd >= 0 {
		unix.Close(d.fd)
		d.fd = -1
	}
}

func (d *treeDir) err(op, name string, err error) error {
	return &os.PathError{Op: op, Path: d.in(name), Err: err}
}

// sub opens the folder name of d. A link there, or anything but a
// folder, is an error (ELOOP, ENOTDIR): it is never followed.
func (d *treeDir) sub(name string) (*treeDir, error) {
	fd, err := openat(d.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, d.err("open", name, err)
	}
	return &treeDir{fd: fd, name: d.in(name)}, nil
}

// up opens the folder d is in ("..", which is never a link).
func (d *treeDir) up() (*treeDir, error) {
	fd, err := openat(d.fd, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, d.err("open", "..", err)
	}
	return &treeDir{fd: fd, name: path.Dir(d.name)}, nil
}

// mkdir creates the folder name; one already there (of any kind) is an
// error wrapping fs.ErrExist.
func (d *treeDir) mkdir(name string) error {
	if err := ignoringEINTR(func() error { return unix.Mkdirat(d.fd, name, 0o755) }); err != nil {
		return d.err("mkdir", name, err)
	}
	return nil
}

// create writes a new regular file name holding data; anything already
// there (a link among them) is an error wrapping fs.ErrExist.
func (d *treeDir) create(name string, data []byte, perm fs.FileMode) error {
	fd, err := openat(d.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return d.err("create", name, err)
	}
	return d.writeAll(fd, name, data)
}

// overwrite replaces the content of the regular file name with data,
// keeping its mode; a link or anything but a regular file is an error.
func (d *treeDir) overwrite(name string, data []byte) error {
	fd, err := openat(d.fd, name, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return d.err("open", name, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return d.err("fstat", name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return d.err("write", name, errors.New("not a regular file"))
	}
	if err := unix.Ftruncate(fd, 0); err != nil {
		unix.Close(fd)
		return d.err("truncate", name, err)
	}
	return d.writeAll(fd, name, data)
}

func (d *treeDir) writeAll(fd int, name string, data []byte) error {
	for len(data) > 0 {
		n, err := unix.Write(fd, data)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			unix.Close(fd)
			return d.err("write", name, err)
		}
		data = data[n:]
	}
	if err := unix.Close(fd); err != nil {
		return d.err("close", name, err)
	}
	return nil
}

// read returns the content of the regular file name; a link or anything
// but a regular file is an error.
func (d *treeDir) read(name string) ([]byte, error) {
	fd, err := openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, d.err("open", name, err)
	}
	f := fdFile(fd)
	defer f.Close()
	if _, regular, err := f.stat(); err != nil {
		return nil, d.err("fstat", name, err)
	} else if !regular {
		return nil, d.err("read", name, errors.New("not a regular file"))
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, d.err("read", name, err)
	}
	return b, nil
}

// symlink makes name a link to target.
func (d *treeDir) symlink(target, name string) error {
	if err := ignoringEINTR(func() error { return unix.Symlinkat(target, d.fd, name) }); err != nil {
		return d.err("symlink", name, err)
	}
	return nil
}

// kind is the type of name (fs.ModeDir, fs.ModeSymlink, 0 for a regular
// file, ...), without following a link; fs.ErrNotExist when it is absent.
func (d *treeDir) kind(name string) (fs.FileMode, error) {
	var st unix.Stat_t
	if err := ignoringEINTR(func() error { return unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		return 0, d.err("lstat", name, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return fs.ModeDir, nil
	case unix.S_IFLNK:
		return fs.ModeSymlink, nil
	case unix.S_IFREG:
		return 0, nil
	}
	return fs.ModeIrregular, nil
}

// names lists the entries of d.
func (d *treeDir) names() ([]string, error) {
	fd, err := openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, d.err("open", ".", err)
	}
	f := os.NewFile(uintptr(fd), d.name)
	defer f.Close()
	return f.Readdirnames(-1)
}

// remove deletes name, whatever it is, never following a link: a folder
// with everything in it, depth first, holding one descriptor at a time
// however deep it goes. A name already gone is not an error.
func (d *treeDir) remove(name string) error {
	err := ignoringEINTR(func() error { return unix.Unlinkat(d.fd, name, 0) })
	switch {
	case err == nil, err == unix.ENOENT:
		return nil
	case err != unix.EISDIR && err != unix.EPERM: // EPERM: macOS's answer for a folder
		return d.err("unlink", name, err)
	}
	cur, err := d.sub(name)
	if err != nil {
		return err
	}
	var pending [][]string // per level below name, the folders still to empty
	list := func() error {
		entries, err := cur.names()
		if err != nil {
			return err
		}
		var folders []string
		for _, e := range entries {
			switch err := ignoringEINTR(func() error { return unix.Unlinkat(cur.fd, e, 0) }); {
			case err == unix.EISDIR || err == unix.EPERM:
				folders = append(folders, e)
			case err != nil && err != unix.ENOENT:
				return cur.err("unlink", e, err)
			}
		}
		pending = append(pending, folders)
		return nil
	}
	defer func() { cur.close() }()
	if err := list(); err != nil {
		return err
	}
	for {
		level := len(pending) - 1
		if n := len(pending[level]); n > 0 {
			next := pending[level][n-1]
			pending[level] = pending[level][:n-1]
			child, err := cur.sub(next)
			if err != nil {
				return err
			}
			cur.close()
			cur = child
			if err := list(); err != nil {
				return err
			}
			continue
		}
		if level == 0 { // name is empty now
			cur.close()
			if err := ignoringEINTR(func() error { return unix.Unlinkat(d.fd, name, unix.AT_REMOVEDIR) }); err != nil {
				return d.err("rmdir", name, err)
			}
			return nil
		}
		parent, err := cur.up()
		if err != nil {
			return err
		}
		base := path.Base(cur.name)
		cur.close()
		cur = parent
		pending = pending[:level]
		if err := ignoringEINTR(func() error { return unix.Unlinkat(cur.fd, base, unix.AT_REMOVEDIR) }); err != nil {
			return cur.err("rmdir", base, err)
		}
	}
}

// rmdir removes the folder name when it is empty; ok is false when it is
// not (or is not a folder, or is gone).
func (d *treeDir) rmdir(name string) (ok bool) {
	return ignoringEINTR(func() error { return unix.Unlinkat(d.fd, name, unix.AT_REMOVEDIR) }) == nil
}

func openat(dirfd int, name string, flags int, perm uint32) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, perm)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func ignoringEINTR(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}

// blobHash is the git blob hash of the regular file name, and its stamp
// as read. ok is false when name is absent or anything but a regular file
// (a link is never followed), or changed size while read; buf is the read
// buffer.
func (d *treeDir) blobHash(name string, buf []byte) (h plumbing.Hash, st stamp, ok bool, err error) {
	fd, err := openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	switch {
	case err == unix.ELOOP || err == unix.ENOENT || err == unix.ENXIO: // a link, gone, a socket
		return h, st, false, nil
	case err != nil:
		return h, st, false, d.err("open", name, err)
	}
	f := fdFile(fd)
	defer f.Close()
	var sys unix.Stat_t
	if err := unix.Fstat(fd, &sys); err != nil {
		return h, st, false, d.err("fstat", name, err)
	}
	if sys.Mode&unix.S_IFMT != unix.S_IFREG {
		return h, st, false, nil
	}
	hasher := plumbing.NewHasher(plumbing.BlobObject, sys.Size)
	n, err := io.CopyBuffer(hasher, f, buf)
	if err != nil {
		return h, st, false, d.err("read", name, err)
	}
	if n != sys.Size {
		return h, st, false, nil
	}
	return hasher.Sum(), stampOf(&sys), true, nil
}

// stamp is name's stat data (a link's own, never its target's); ok is
// false when name is absent.
func (d *treeDir) stamp(name string) (st stamp, ok bool, err error) {
	var sys unix.Stat_t
	err = ignoringEINTR(func() error { return unix.Fstatat(d.fd, name, &sys, unix.AT_SYMLINK_NOFOLLOW) })
	switch {
	case err == unix.ENOENT:
		return st, false, nil
	case err != nil:
		return st, false, d.err("lstat", name, err)
	}
	return stampOf(&sys), true, nil
}

// selfStamp is the stat data of the folder d itself.
func (d *treeDir) selfStamp() (stamp, error) {
	var sys unix.Stat_t
	if err := unix.Fstat(d.fd, &sys); err != nil {
		return stamp{}, d.err("fstat", ".", err)
	}
	return stampOf(&sys), nil
}

func stampOf(sys *unix.Stat_t) stamp {
	return stamp{Dev: uint64(sys.Dev), Ino: uint64(sys.Ino), Mode: uint32(sys.Mode), Size: sys.Size,
		Mtime: time.Unix(int64(sys.Mtim.Sec), int64(sys.Mtim.Nsec)).UnixNano(), Ctime: time.Unix(int64(sys.Ctim.Sec), int64(sys.Ctim.Nsec)).UnixNano()}
}

// readlink is the target of the link name; ok is false when name is
// absent or not a link.
func (d *treeDir) readlink(name string) (target string, ok bool, err error) {
	for size := 256; ; size *= 4 {
		buf := make([]byte, size)
		var n int
		err := ignoringEINTR(func() (err error) { n, err = unix.Readlinkat(d.fd, name, buf); return err })
		switch {
		case err == unix.EINVAL || err == unix.ENOENT: // not a link, gone
			return "", false, nil
		case err != nil:
			return "", false, d.err("readlink", name, err)
		case n < size:
			return string(buf[:n]), true, nil
		case size > 1<<16:
			return "", false, d.err("readlink", name, errors.New("target too long"))
		}
	}
}
