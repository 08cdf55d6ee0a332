package scanner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gofrs/flock"
)

// ErrStateDirLocked says another imagebutler process uses the state directory.
var ErrStateDirLocked = errors.New("another imagebutler process holds the state directory")

// LockStateDir creates dir if needed and takes an exclusive lock on it, so
// that two processes never work in the same working copies. The lock ends
// with the process or when release is called. It works wherever
// gofrs/flock does (flock on Unix, LockFileEx on Windows).
func LockStateDir(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating stateDir: %w", err)
	}
	name := filepath.Join(dir, ".imagebutler.lock")
	l := flock.New(name, flock.SetPermissions(0o600))
	locked, err := l.TryLock()
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", name, err)
	}
	if !locked {
		return nil, fmt.Errorf("%s: %w", dir, ErrStateDirLocked)
	}
	return func() { l.Unlock() }, nil
}
