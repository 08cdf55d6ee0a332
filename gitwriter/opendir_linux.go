package gitwriter

import (
	"os"
	"path"
	"runtime"

	"golang.org/x/sys/unix"
)

// open opens the folder dir beneath root in one openat2 call with
// RESOLVE_BENEATH: the kernel refuses any resolution that leaves root, so
// links are followed only while they stay inside it, as os.Root does
// component by component (several system calls a folder). Where openat2
// fails (an old kernel, a seccomp profile that refuses it, or any error),
// dir is opened through root, whose answer stands.
func (d *dirs) open(root *os.Root, dir string) (*os.File, error) {
	if !d.plain {
		if d.rootFile == nil {
			f, err := root.Open(".")
			if err != nil {
				return nil, err
			}
			d.rootFile = f
		}
		how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
		fd, err := unix.Openat2(int(d.rootFile.Fd()), dir, &how)
		runtime.KeepAlive(d.rootFile)
		if err == nil {
			return os.NewFile(uintptr(fd), path.Join(root.Name(), dir)), nil
		}
		if err == unix.ENOSYS || err == unix.EPERM {
			d.plain = true
		}
	}
	return root.Open(dir)
}
