package gitwriter

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize is the largest file discovery reads by default; larger files
// are skipped with a warning.
const MaxFileSize = 10 << 20

// Limits are the budgets of one discovery: what a hostile or careless file
// in a watched repository may cost. Each is reported by its config setting
// when a file exceeds it.
type Limits struct {
	// MaxFileBytes is the largest file read (config discovery.maxFileMiB).
	MaxFileBytes int64
	// MaxNodes is the most YAML nodes a file may hold to be parsed
	// (config discovery.maxNodes).
	MaxNodes int
}

// DefaultLimits are the budgets Discover uses: 10 MiB and 1,000,000 nodes.
var DefaultLimits = Limits{MaxFileBytes: MaxFileSize, MaxNodes: MaxNodes}

// withDefaults fills zero budgets from DefaultLimits.
func (l Limits) withDefaults() Limits {
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = DefaultLimits.MaxFileBytes
	}
	if l.MaxNodes <= 0 {
		l.MaxNodes = DefaultLimits.MaxNodes
	}
	return l
}

// tooLarge is the warning for a file past MaxFileBytes.
func (l Limits) tooLarge(size int64) error {
	return fmt.Errorf("%w: %d bytes, more than discovery.maxFileMiB (%s); skipped", errTooLarge, size, mib(l.MaxFileBytes))
}

// mib writes n bytes in MiB when it is a whole number of them, else in bytes.
func mib(n int64) string {
	if n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// FileError is a problem found in one file, at a line when one is known.
type FileError struct {
	File string
	Line int
	Err  error
	// Warning is set for files skipped on purpose (symlinks, large files)
	// and for comments that look like markers but are not (Flux ignores them).
	Warning bool
}

// Error is "file:line: problem", or "file: problem" without a line.
func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

// Unwrap returns the problem.
func (e *FileError) Unwrap() error { return e.Err }

// Object is an automated Kubernetes object: one that carries
// app.lilly.com/flux.automated: "true".
type Object struct {
	File string // slash-separated, relative to the root
	Line int
	ObjectRef
	Annotations map[string]string
}

// Tree is what Discover found under a root.
type Tree struct {
	root     *os.Root
	Objects  []Object
	Markers  []Marker
	Problems []error // one *FileError per problem; discovery went on past each
	sources  map[string][]byte
	held     map[string]bool // marker locations Apply leaves as they are
	touched  []string        // the files Apply wrote or tried to write
	// files and kust are what each file and kustomization held, before
	// namespaces were resolved: DiscoverSince takes them for the files
	// that did not change.
	files map[string]*fileResult
	kust  map[string]kustResult
}

// kustResult is what one kustomization file says of the namespace.
type kustResult struct {
	namespace string
	problems  []error
}

// Touched returns the files Apply wrote, or tried to write and failed:
// what the working copy must restore (Checkout.MarkDirty).
func (t *Tree) Touched() []string { return t.touched }

// ClearHolds forgets every Hold, for a tree kept for another pass.
func (t *Tree) ClearHolds() { t.held = nil }

// Hold makes Apply leave the marker at location (file:line) as it is, and
// say nothing of it: the caller reports why (a hold, a downgrade).
func (t *Tree) Hold(location string) {
	if t.held == nil {
		t.held = map[string]bool{}
	}
	t.held[location] = true
}

// Discover walks the folders paths (relative to dir) for *.yaml and *.yml
// files, and returns the automated objects and the markers in them.
// defaultNamespace is used for objects that neither name a namespace nor sit
// under a kustomization that does; it falls back to "default". Symlinks are
// never followed and nothing outside dir is read. Files are read in
// parallel; the result does not depend on it.
func Discover(dir string, paths []string, defaultNamespace string) (*Tree, error) {
	return DefaultLimits.Discover(dir, paths, defaultNamespace)
}

// Discover is the package's Discover within the budgets l (zero fields take
// DefaultLimits'): a file past one is skipped with a warning naming the
// setting.
func (l Limits) Discover(dir string, paths []string, defaultNamespace string) (*Tree, error) {
	return l.DiscoverSince(nil, nil, dir, paths, defaultNamespace)
}

// DiscoverSince is Discover for a working copy that prev was discovered in
// at an earlier commit: a file for which unchanged (given its
// slash-separated name relative to dir) reports true has the same content
// as then, and its objects, markers and problems are taken from prev
// without reading it; so is a kustomization's namespace. The result does
// not depend on prev. prev stays usable; nil prev is Discover.
func (l Limits) DiscoverSince(prev *Tree, unchanged func(name string) bool, dir string, paths []string, defaultNamespace string) (*Tree, error) {
	l = l.withDefaults()
	reuse := func(name string) *fileResult {
		if prev == nil || unchanged == nil || !unchanged(name) {
			return nil
		}
		return prev.files[name]
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening working copy: %w", err)
	}
	if defaultNamespace == "" {
		defaultNamespace = "default"
	}
	t := &Tree{root: root, sources: map[string][]byte{}, files: map[string]*fileResult{}, kust: map[string]kustResult{}}
	fsys := root.FS()

	// Walk every YAML file in lexical order, each with a slot for its
	// results, while readers read and parse them: a folder at a time, so a
	// reader opens each folder once.
	var (
		files   []*fileResult
		seen    = map[string]bool{}
		batches = make(chan []*fileResult, 64)
		wg      sync.WaitGroup
		batch   []*fileResult
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &reader{folders: folderRoots{root: root}, limits: l}
			defer r.close()
			for b := range batches {
				for _, f := range b {
					r.scan(f)
				}
			}
		}()
	}
	flush := func() {
		if len(batch) > 0 {
			batches <- batch
			batch = nil
		}
	}
	var walkErr error
	for _, p := range paths {
		p = path.Clean(p)
		walkErr = fs.WalkDir(fsys, p, func(name string, e fs.DirEntry, err error) error {
			if err != nil {
				if name == p {
					return fmt.Errorf("path %q: %w", p, err)
				}
				files = append(files, &fileResult{name: name, problems: []error{&FileError{File: name, Err: err}}})
				return nil
			}
			if e.IsDir() {
				flush()
				if e.Name() == ".git" {
					return fs.SkipDir
				}
				return nil
			}
			if !isYAML(name) || seen[name] {
				return nil
			}
			seen[name] = true
			switch {
			case e.Type()&fs.ModeSymlink != 0:
				files = append(files, &fileResult{name: name, problems: []error{
					&FileError{File: name, Err: errors.New("is a symlink; not followed"), Warning: true}}})
			case e.Type().IsRegular():
				if f := reuse(name); f != nil {
					files = append(files, f)
					break
				}
				f := &fileResult{name: name}
				files = append(files, f)
				batch = append(batch, f)
			}
			return nil
		})
		if walkErr != nil {
			break
		}
	}
	flush()
	close(batches)
	wg.Wait()
	if walkErr != nil {
		root.Close()
		return nil, walkErr
	}

	// Merge in walk order, resolving namespaces; the file results keep
	// theirs unresolved, for DiscoverSince.
	ns := &namespaces{fsys: fsys, fallback: defaultNamespace, byDir: map[string]string{}, limits: l, tree: t}
	if prev != nil && unchanged != nil {
		ns.prev, ns.unchanged = prev.kust, unchanged
	}
	for _, f := range files {
		t.files[f.name] = f
		first := len(t.Objects)
		t.Objects = append(t.Objects, f.objects...)
		for i := range t.Objects[first:] {
			o := &t.Objects[first+i]
			if o.Namespace == "" {
				o.Namespace = ns.of(path.Dir(f.name), t)
			}
		}
		first = len(t.Markers)
		t.Markers = append(t.Markers, f.markers...)
		for i := range t.Markers[first:] {
			m := &t.Markers[first+i]
			if m.Object.Namespace == "" && m.Object.Kind != "" {
				m.Object.Namespace = ns.of(path.Dir(f.name), t)
			}
		}
		t.Problems = append(t.Problems, f.problems...)
		if len(f.markers) > 0 {
			t.sources[f.name] = f.src
		}
	}
	return t, nil
}

// Close releases the working copy.
func (t *Tree) Close() error { return t.root.Close() }

// isYAML reports whether a file of that name is read: *.yaml, *.yml, and
// Kustomization (kustomize's file name without an extension).
func isYAML(name string) bool {
	return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml") || path.Base(name) == "Kustomization"
}

// fileResult is what one file holds.
type fileResult struct {
	name     string
	src      []byte // the bytes, kept when the file has markers
	objects  []Object
	markers  []Marker
	problems []error
}

func (f *fileResult) problem(line int, err error) {
	f.problems = append(f.problems, &FileError{File: f.name, Line: line, Err: err})
}

func (f *fileResult) warning(line int, err error) {
	f.problems = append(f.problems, &FileError{File: f.name, Line: line, Err: err, Warning: true})
}

// reader reads files through the working copy's root, keeping the folder
// of the last file open so that each file costs one open beneath it.
type reader struct {
	folders folderRoots
	limits  Limits
	buf     []byte // reused for files that hold nothing of ours
}

func (r *reader) close() { r.folders.close() }

// read returns the bytes of name; they are only valid until the next read
// unless the caller copies them.
func (r *reader) read(name string) ([]byte, error) {
	sub, base, err := r.folders.in(name)
	if err != nil {
		return nil, err
	}
	f, err := sub.Open(base)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	if st.Size() > r.limits.MaxFileBytes {
		return nil, r.limits.tooLarge(st.Size())
	}
	n := int(st.Size())
	if cap(r.buf) < n+1 {
		r.buf = make([]byte, n+1, n+n/2+1)
	}
	buf := r.buf[:n+1]
	got, err := io.ReadFull(f, buf)
	switch {
	case err == io.ErrUnexpectedEOF, err == io.EOF:
		return buf[:got], nil // shrank while we read: take what is there
	case err != nil:
		return nil, err
	}
	return nil, r.limits.tooLarge(int64(n) + 1) // grew past its size while we read
}

var errTooLarge = errors.New("too large")

// namespaces resolves the namespace of objects that name none.
type namespaces struct {
	fsys     fs.FS
	fallback string
	byDir    map[string]string // dir → namespace of the nearest kustomization, or fallback
	limits   Limits
	tree     *Tree // whose kust it fills
	// prev and unchanged give the namespaces of kustomizations that did
	// not change since an earlier discovery.
	prev      map[string]kustResult
	unchanged func(string) bool
}

// of is the namespace: of the nearest kustomization in dir or an ancestor
// inside the root, else the fallback.
func (n *namespaces) of(dir string, t *Tree) string {
	if ns, ok := n.byDir[dir]; ok {
		return ns
	}
	ns := ""
	for _, name := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
		file := path.Join(dir, name)
		// As for every file: never through a symlink, never past MaxFileBytes.
		st, err := fs.Lstat(n.fsys, file)
		if err != nil {
			continue
		}
		if !st.Mode().IsRegular() {
			break // the walk reports a symlink under the paths
		}
		k, ok := n.prev[file]
		if !ok || !n.unchanged(file) {
			if k, ok = n.read(file, st.Size()); !ok {
				continue
			}
		}
		n.tree.kust[file] = k
		t.Problems = append(t.Problems, k.problems...)
		ns = k.namespace
		break
	}
	if ns == "" {
		if dir == "." || dir == "/" {
			ns = n.fallback
		} else {
			ns = n.of(path.Dir(dir), t)
		}
	}
	n.byDir[dir] = ns
	return ns
}

// read reads the namespace of the kustomization file of size bytes; ok is
// false when it cannot be read (gone since the walk).
func (n *namespaces) read(file string, size int64) (k kustResult, ok bool) {
	if size > n.limits.MaxFileBytes {
		k.problems = []error{&FileError{File: file, Err: fmt.Errorf("not read for its namespace: %w", n.limits.tooLarge(size)), Warning: true}}
		return k, true
	}
	src, err := fs.ReadFile(n.fsys, file)
	if err != nil {
		return k, false
	}
	var v struct {
		Namespace string `yaml:"namespace"`
	}
	if err := yaml.Unmarshal(src, &v); err != nil {
		k.problems = []error{&FileError{File: file, Err: fmt.Errorf("reading namespace: %w", err)}}
	}
	k.namespace = v.Namespace
	return k, true
}
