//go:build !(linux || darwin)

package gitwriter

import "os"

// open opens the file name for reading.
func (f *folderRoots) open(name string) (regularFile, error) {
	sub, base, err := f.in(name)
	if err != nil {
		return nil, err
	}
	file, err := sub.Open(base)
	if err != nil {
		return nil, err
	}
	return osFile{file}, nil
}

// osFile is a regularFile through os.File.
type osFile struct{ *os.File }

func (f osFile) stat() (int64, bool, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	return st.Size(), st.Mode().IsRegular(), nil
}
