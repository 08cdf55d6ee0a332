package gitwriter

import (
	"os"
	"path"
	"runtime"

	"golang.org/x/sys/unix"
)

// open opens the folder dir beneath root in one openat2 call with
// RESOLVE_BENEATH and RESOLVE_NO_SYMLINKS: the kernel refuses any
// resolution that leaves root or goes through a link (ELOOP, returned as
// it is). Where openat2 fails otherwise (an old kernel, a seccomp profile
// that refuses it), dir is opened through root, which stays inside it
// component by component (several system calls a folder); discovery never
// asks for a path through a link (links are not walked into, and a paths
// entry that is or goes through a link is reported, not walked).
func (d *dirs) open(root *os.Root, dir string) (*os.File, error) {
	if !d.plain {
		if d.rootFile == nil {
			f, err := root.Open(".")
			if err != nil {
				return nil, err
			}
			d.rootFile = f
		}
		how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
		fd, err := unix.Openat2(int(d.rootFile.Fd()), dir, &how)
		runtime.KeepAlive(d.rootFile)
		switch {
		case err == nil:
			return os.NewFile(uintptr(fd), path.Join(root.Name(), dir)), nil
		case err == unix.ELOOP, err == unix.ENOTDIR, err == unix.ENOENT:
			return nil, &os.PathError{Op: "openat2", Path: dir, Err: err}
		}
		if err == unix.ENOSYS || err == unix.EPERM {
			d.plain = true
		}
	}
	return root.Open(dir)
}
