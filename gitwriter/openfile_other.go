//go:build !(linux || darwin)

package gitwriter

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
