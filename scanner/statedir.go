package scanner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrStateDirLocked says another imagebutler process uses the state directory.
var ErrStateDirLocked = errors.New("another imagebutler process holds the state directory")

// LockStateDir creates dir if needed and takes an exclusive lock on it, so
// that two processes never work in the same working copies. The lock ends
// with the process or when release is called.
func LockStateDir(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating stateDir: %w", err)
	}
	name := filepath.Join(dir, ".imagebutler.lock")
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", name, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", dir, ErrStateDirLocked)
		}
		return nil, fmt.Errorf("locking %s: %w", name, err)
	}
	return func() { f.Close() }, nil
}
