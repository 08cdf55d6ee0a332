package gitwriter

import (
	"io/fs"
	"strings"
)

// nameOrNone is d's name, or "" for no folder.
func (d *treeDir) nameOrNone() string {
	if d == nil {
		return ""
	}
	return d.name
}

// open opens the folder dir (slash-separated, beneath d; "." for d itself)
// only if it is one all the way: a missing folder, or a link or a file on
// the way, is fs.ErrNotExist (nothing lies beneath it). No link is
// followed.
func (d *treeDir) open(dir string) (*treeDir, error) {
	cur, err := d.sub(".")
	if err != nil {
		return nil, err
	}
	if dir == "." {
		return cur, nil
	}
	for part := range strings.SplitSeq(dir, "/") {
		if k, err := cur.kind(part); err != nil || k != fs.ModeDir {
			cur.close()
			return nil, fs.ErrNotExist
		}
		child, err := cur.sub(part)
		cur.close()
		if err != nil {
			return nil, err
		}
		cur = child
	}
	return cur, nil
}
