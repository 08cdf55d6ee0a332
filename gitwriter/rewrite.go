package gitwriter

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/imagebutler/imagebutler/policy"
)

// Resolution is what a policy resolved to, as markers need it.
type Resolution struct {
	Image  string // image name, <host>/<repository>
	Tag    string
	Digest string // may be empty when unknown
	// Err, when set, says why the policy has no result; its markers are left alone.
	Err error
	// Digests is the policy's digest reflection: with IfNotPresent or Always
	// a full marker is written <image>:<tag>@<digest>.
	Digests policy.DigestReflection
}

// Change is one value the butler rewrote.
type Change struct {
	File   string
	Line   int
	Policy string
	Setter Setter
	Old    string
	New    string
	Object ObjectRef
}

// referenceRE is what the butler writes: characters of the image reference
// grammar only (so never a line break, a quote, '#', or a template's "{{"),
// whatever a listing returned.
var referenceRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:/@-]*$`)

// ErrUnknownPolicy marks a marker that names a policy no annotation defines.
var ErrUnknownPolicy = errors.New("no annotation defines this policy")

// ErrReported marks a Resolution that failed for a reason reported
// already (the annotation that defines the policy failed): Apply leaves its
// markers unchanged without a problem of their own, so that one mistake
// is one line.
var ErrReported = errors.New("reported already")

// valueFor is what marker m should hold, or an error when it cannot be
// written. A full marker pins the digest as Flux's digestReflectionPolicy
// does, and a value that already carries an @digest keeps it in step:
// the digest is never dropped.
func (r Resolution) valueFor(m Marker) (string, error) {
	switch m.Setter {
	case SetTag:
		return r.Tag, nil
	case SetName:
		return r.Image, nil
	case SetDigest:
		if r.Digest == "" {
			return "", errors.New("no digest known; left unchanged")
		}
		return r.Digest, nil
	}
	ref := r.Image + ":" + r.Tag
	current, _, pinned := strings.Cut(m.Value, "@")
	switch {
	case !pinned && r.Digests != policy.ReflectIfNotPresent && r.Digests != policy.ReflectAlways:
		return ref, nil
	case pinned && current == ref && r.Digests == policy.ReflectIfNotPresent:
		return m.Value, nil // the tag's digest was pinned once; it stays
	case r.Digest == "":
		return "", errors.New("no digest known to pin with the tag; left unchanged")
	}
	return ref + "@" + r.Digest, nil
}

// Apply rewrites every marker whose policy resolved, writes the changed
// files back into the working copy, and returns the changes in file and
// line order. Markers naming an unknown policy, or one without a result,
// are left alone and reported as problems. Apply may be called once per
// Tree: discover again to rewrite again.
func (t *Tree) Apply(resolved map[string]Resolution) ([]Change, []error) {
	var (
		changes  []Change
		problems []error
		edits    = map[string][]edit{}
	)
	var known []string // policy ids, for "did you mean"
	for _, m := range t.Markers {
		if t.held[m.Location()] {
			continue
		}
		r, ok := resolved[m.Policy]
		switch {
		case !ok:
			if known == nil {
				known = slices.Collect(maps.Keys(resolved))
			}
			problems = append(problems, &FileError{File: m.File, Line: m.Line,
				Err: fmt.Errorf("marker %s: %w%s", m.Policy, ErrUnknownPolicy, policy.DidYouMean(policy.Suggest(m.Policy, known)))})
			continue
		case r.Err != nil:
			if !errors.Is(r.Err, ErrReported) {
				problems = append(problems, &FileError{File: m.File, Line: m.Line, Err: fmt.Errorf("marker %s: left unchanged: %w", m.Policy, r.Err)})
			}
			continue
		}
		name := m.Policy
		if m.Setter != SetImage {
			name += ":" + string(m.Setter)
		}
		v, err := r.valueFor(m)
		if err == nil && !referenceRE.MatchString(v) {
			err = fmt.Errorf("value %q is not an image reference, tag or digest; left unchanged", v)
		}
		if err != nil {
			problems = append(problems, &FileError{File: m.File, Line: m.Line, Err: fmt.Errorf("marker %s: %w", name, err)})
			continue
		}
		if v == m.Value {
			continue
		}
		text, err := encodeScalar(v, m.style)
		if err != nil {
			problems = append(problems, &FileError{File: m.File, Line: m.Line, Err: fmt.Errorf("marker %s: %w; left unchanged", name, err)})
			continue
		}
		edits[m.File] = append(edits[m.File], edit{start: m.start, end: m.end, text: text})
		changes = append(changes, Change{File: m.File, Line: m.Line, Policy: m.Policy, Setter: m.Setter, Old: m.Value, New: v, Object: m.Object})
	}
	files := make([]string, 0, len(edits))
	for f := range edits {
		files = append(files, f)
	}
	sort.Strings(files)
	t.touched = files
	// Write in contiguous parts, so each writer stays in one folder at a time.
	errs := make([]error, len(files))
	parts := max(1, min(runtime.GOMAXPROCS(0), len(files)/32))
	var wg sync.WaitGroup
	for w := range parts {
		lo, hi := w*len(files)/parts, (w+1)*len(files)/parts
		wg.Add(1)
		go func() {
			defer wg.Done()
			fw := &folderRoots{root: t.root}
			defer fw.close()
			for i := lo; i < hi; i++ {
				errs[i] = fw.write(files[i], splice(t.sources[files[i]], edits[files[i]]))
			}
		}()
	}
	wg.Wait()
	failed := map[string]bool{}
	for i, err := range errs {
		if err != nil {
			failed[files[i]] = true
			problems = append(problems, &FileError{File: files[i], Err: fmt.Errorf("writing: %w", err)})
		}
	}
	written := changes[:0]
	for _, c := range changes {
		if !failed[c.File] {
			written = append(written, c)
		}
	}
	return written, problems
}

type edit struct {
	start, end int
	text       []byte
}

// splice replaces the edited spans of src, which do not overlap.
func splice(src []byte, edits []edit) []byte {
	sort.Slice(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	out := make([]byte, 0, len(src)+64)
	prev := 0
	for _, e := range edits {
		if e.start < prev {
			continue // two markers on one value: the first wins
		}
		out = append(out, src[prev:e.start]...)
		out = append(out, e.text...)
		prev = e.end
	}
	return append(out, src[prev:]...)
}

// folderRoots opens the folder of each file once, beneath the working
// copy's root, for a run of files in the same folders.
type folderRoots struct {
	root *os.Root
	dir  string
	sub  *os.Root
	// wroot and wdir are the working tree's root and the folder of the
	// last write, opened so that a write never goes through a link.
	wroot, wdir *treeDir
	// dirFile is the folder fileDir open as a file, for a platform whose
	// open reads beneath its descriptor.
	dirFile *os.File
	fileDir string
	dirs    dirs
}

func (f *folderRoots) close() {
	f.wdir.close()
	f.wroot.close()
	f.wdir, f.wroot = nil, nil
	if f.sub != nil {
		f.sub.Close()
		f.sub = nil
	}
	if f.dirFile != nil {
		f.dirFile.Close()
		f.dirFile = nil
	}
	f.dirs.close()
}

// in returns the root of name's folder, and name's base.
func (f *folderRoots) in(name string) (*os.Root, string, error) {
	dir := path.Dir(name)
	if f.sub == nil || f.dir != dir {
		if f.sub != nil {
			f.sub.Close()
			f.sub = nil
		}
		sub, err := f.root.OpenRoot(dir)
		if err != nil {
			return nil, "", err
		}
		f.sub, f.dir = sub, dir
	}
	return f.sub, path.Base(name), nil
}

// write replaces the content of the regular file name with data, keeping
// its mode; no component of name is followed if it is a link.
func (f *folderRoots) write(name string, data []byte) error {
	if dir := path.Dir(name); f.wdir == nil || f.wdir.name != dir {
		f.wdir.close()
		f.wdir = nil
		if f.wroot == nil {
			root, err := openTreeRoot(f.root.Name())
			if err != nil {
				return err
			}
			f.wroot = root
		}
		d, err := f.wroot.open(dir)
		if err != nil {
			return err
		}
		f.wdir = d
	}
	return f.wdir.overwrite(path.Base(name), data)
}
