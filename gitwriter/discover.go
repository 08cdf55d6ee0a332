package gitwriter

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime"
	"slices"
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
	// order is files in walk order; walkErrors says the walk met folders
	// it could not read (DiscoverSince then walks again).
	order      []*fileResult
	walkErrors bool
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

// Changes names the files of a working copy (slash-separated, relative to
// its folder) that were added, changed or removed since an earlier
// discovery: Checkout.ChangesSince gives them from git.
type Changes struct{ names map[string]bool }

// ChangedFiles returns the Changes of exactly these files.
func ChangedFiles(names ...string) *Changes {
	c := &Changes{names: map[string]bool{}}
	for _, n := range names {
		c.names[n] = true
	}
	return c
}

// Unchanged reports whether the file name is as it was.
func (c *Changes) Unchanged(name string) bool { return !c.names[name] }

// DiscoverSince is Discover for a working copy that prev was discovered in,
// when since names every file that changed from then (nothing else in the
// folder was added, changed or removed): a file not named has the same
// content as then, and its objects, markers and problems are taken from
// prev without reading it; so is a kustomization's namespace; and the
// folders are not walked again, only the named files looked at. The result
// does not depend on prev. prev stays usable; nil prev or since is
// Discover.
func (l Limits) DiscoverSince(prev *Tree, since *Changes, dir string, paths []string, defaultNamespace string) (*Tree, error) {
	l = l.withDefaults()
	if prev == nil || since == nil {
		prev, since = nil, nil
	}
	reuse := func(name string) *fileResult {
		if prev == nil || !since.Unchanged(name) {
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
	linked := slices.ContainsFunc(paths, func(p string) bool { return linkIn(root, path.Clean(p)) != "" })
	if prev != nil && !prev.walkErrors && !linked { // a linked paths entry is walked afresh: its problem is reported each time
		files, err := l.filesSince(root, prev, since, paths)
		if err != nil {
			root.Close()
			return nil, err
		}
		return t.merge(files, prev, since, defaultNamespace, l), nil
	}

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
	walk := newWalkFS(root)
	defer walk.dirs.close()
	for _, p := range paths {
		p = path.Clean(p)
		if link := linkIn(root, p); link != "" {
			files = append(files, linkedPath(p, link))
			continue
		}
		walkErr = fs.WalkDir(walk, p, func(name string, e fs.DirEntry, err error) error {
			if err != nil {
				if name == p {
					return fmt.Errorf("path %q: %w", p, err)
				}
				t.walkErrors = true
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
				files = append(files, symlinkResult(name))
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

	return t.merge(files, prev, since, defaultNamespace, l), nil
}

// linkIn returns the first component of the slash path p (itself
// included) that is a link, or "". Discovery does not follow links: a
// paths entry that is or goes through one is reported, not walked.
func linkIn(root *os.Root, p string) string {
	if p == "." {
		return ""
	}
	cur := ""
	for part := range strings.SplitSeq(p, "/") {
		cur = path.Join(cur, part)
		if info, err := root.Lstat(cur); err == nil && info.Mode()&fs.ModeSymlink != 0 {
			return cur
		}
	}
	return ""
}

// linkedPath is the result of a paths entry p that link makes a link or
// goes through: a problem naming both, nothing read.
func linkedPath(p, link string) *fileResult {
	err := fmt.Errorf("paths entry %q: %s is a link; links are not followed, so nothing under it is read", p, link)
	return &fileResult{name: p, problems: []error{&FileError{File: p, Err: err}}}
}

// merge fills t from the file results in walk order, resolving
// namespaces; the file results keep theirs unresolved, for DiscoverSince.
func (t *Tree) merge(files []*fileResult, prev *Tree, since *Changes, defaultNamespace string, l Limits) *Tree {
	ns := &namespaces{fsys: t.root.FS(), fallback: defaultNamespace, byDir: map[string]string{}, limits: l, tree: t}
	if prev != nil {
		ns.prev, ns.unchanged = prev.kust, since.Unchanged
	}
	t.order = files
	for _, f := range files {
		t.files[f.name] = f // before any lookup: a folder's kustomization comes after its other files
	}
	for _, f := range files {
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
	for _, f := range files {
		f.kustSrc = nil // not needed: a later lookup reads the file
	}
	return t
}

// filesSince is the walk's list of file results for a working copy that
// prev was discovered in and of which since names every change: prev's,
// with each changed file looked at again (read when it is a regular YAML
// file under paths), in the order the walk gives.
func (l Limits) filesSince(root *os.Root, prev *Tree, since *Changes, paths []string) ([]*fileResult, error) {
	paths = slices.Clone(paths)
	for i, p := range paths {
		p = path.Clean(p)
		paths[i] = p
		if _, err := root.Stat(p); err != nil {
			return nil, fmt.Errorf("path %q: %w", p, err)
		}
	}
	files := make([]*fileResult, 0, len(prev.order)+len(since.names))
	for _, f := range prev.order {
		if since.Unchanged(f.name) {
			files = append(files, f)
		}
	}
	r := &reader{folders: folderRoots{root: root}, limits: l}
	defer r.close()
	for name := range since.names {
		if !isYAML(name) || !slices.ContainsFunc(paths, func(p string) bool { return within(name, p) }) {
			continue
		}
		info, err := root.Lstat(name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue // removed
		case err != nil:
			files = append(files, &fileResult{name: name, problems: []error{&FileError{File: name, Err: err}}})
		case info.Mode()&fs.ModeSymlink != 0:
			files = append(files, symlinkResult(name))
		case info.Mode().IsRegular():
			f := &fileResult{name: name}
			r.scan(f)
			files = append(files, f)
		}
	}
	// The walk goes through paths in turn, each folder's entries by name.
	first := func(name string) int {
		return slices.IndexFunc(paths, func(p string) bool { return within(name, p) })
	}
	slices.SortFunc(files, func(a, b *fileResult) int {
		if c := first(a.name) - first(b.name); c != 0 {
			return c
		}
		return walkOrder(a.name, b.name)
	})
	return files, nil
}

// within reports whether name is in the folder p ("." is every name).
func within(name, p string) bool {
	return p == "." || name == p || strings.HasPrefix(name, p+"/")
}

// walkOrder compares two slash-separated names as fs.WalkDir meets them:
// by the first folder or file name in which they differ.
func walkOrder(a, b string) int {
	for {
		ah, at, aMore := strings.Cut(a, "/")
		bh, bt, bMore := strings.Cut(b, "/")
		if c := strings.Compare(ah, bh); c != 0 || !aMore || !bMore {
			if c == 0 { // one is the other's folder: the folder comes first
				switch {
				case !aMore && bMore:
					return -1
				case aMore && !bMore:
					return 1
				}
			}
			return c
		}
		a, b = at, bt
	}
}

func symlinkResult(name string) *fileResult {
	return &fileResult{name: name, problems: []error{
		&FileError{File: name, Err: errors.New("is a symlink; not followed"), Warning: true}}}
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
	// kust is what a kustomization file says of the namespace, parsed
	// from kustSrc (the bytes the walk's reader read) when an object needs
	// it; kustSrc is dropped once the tree is merged.
	kust    *kustResult
	kustSrc []byte
}

// kustomizationNames are the file names kustomize reads in a folder, in
// its order.
var kustomizationNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

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
	f, err := r.folders.open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, regular, err := f.stat()
	if err != nil {
		return nil, err
	}
	if !regular {
		return nil, errors.New("not a regular file")
	}
	if size > r.limits.MaxFileBytes {
		return nil, r.limits.tooLarge(size)
	}
	n := int(size)
	if cap(r.buf) < n+1 {
		r.buf = make([]byte, n+1, n+n/2+1)
	}
	// Read until the size stat gave, or one byte past it (the file grew),
	// or the end (it shrank): a file read whole needs no read at its end.
	buf, got := r.buf[:n+1], 0
	for got < n {
		m, err := f.Read(buf[got:])
		got += m
		switch {
		case err == io.EOF:
			return buf[:got], nil // shrank while we read: take what is there
		case err != nil:
			return nil, err
		}
	}
	if got > n {
		return nil, r.limits.tooLarge(int64(got)) // grew past its size while we read
	}
	return buf[:got], nil
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
	for _, name := range kustomizationNames {
		file := path.Join(dir, name)
		if f := n.tree.files[file]; f != nil && (f.kust != nil || f.kustSrc != nil) { // read by the walk's readers
			if f.kust == nil {
				k := kustOf(file, f.kustSrc)
				f.kust, f.kustSrc = &k, nil
			}
			n.tree.kust[file] = *f.kust
			t.Problems = append(t.Problems, f.kust.problems...)
			ns = f.kust.namespace
			break
		}
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
	return kustOf(file, src), true
}

// kustOf is what the kustomization file holding src says of the
// namespace.
func kustOf(file string, src []byte) (k kustResult) {
	var v struct {
		Namespace string `yaml:"namespace"`
	}
	if err := yaml.Unmarshal(src, &v); err != nil {
		k.problems = []error{&FileError{File: file, Err: fmt.Errorf("reading namespace: %w", err)}}
	}
	k.namespace = v.Namespace
	return k
}
