//go:build !linux

package gitwriter

import "os"

// open opens the folder dir beneath root.
func (d *dirs) open(root *os.Root, dir string) (*os.File, error) {
	return root.Open(dir)
}
