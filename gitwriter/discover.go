package gitwriter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/imagebutler/imagebutler/policy"
)

// MaxFileSize is the largest file discovery reads; larger files are skipped with a problem.
const MaxFileSize = 10 << 20

// FileError is a problem found in one file, at a line when one is known.
type FileError struct {
	File string
	Line int
	Err  error
	// Warning is set for files skipped on purpose (symlinks, large files).
	Warning bool
}

func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

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
}

// Discover walks the folders paths (relative to dir) for *.yaml and *.yml
// files, and returns the automated objects and the markers in them.
// defaultNamespace is used for objects that neither name a namespace nor sit
// under a kustomization that does; it falls back to "default". Symlinks are
// never followed and nothing outside dir is read.
func Discover(dir string, paths []string, defaultNamespace string) (*Tree, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening working copy: %w", err)
	}
	if defaultNamespace == "" {
		defaultNamespace = "default"
	}
	t := &Tree{root: root, sources: map[string][]byte{}}
	d := &discoverer{tree: t, fsys: root.FS(), defaultNS: defaultNamespace, kustomizeNS: map[string]string{}}
	seen := map[string]bool{}
	for _, p := range paths {
		p = path.Clean(p)
		err := fs.WalkDir(d.fsys, p, func(name string, e fs.DirEntry, err error) error {
			if err != nil {
				if name == p {
					return fmt.Errorf("path %q: %w", p, err)
				}
				t.problem(name, 0, err)
				return nil
			}
			if e.IsDir() {
				if e.Name() == ".git" {
					return fs.SkipDir
				}
				return nil
			}
			if !isYAML(name) || seen[name] {
				return nil
			}
			seen[name] = true
			if e.Type()&fs.ModeSymlink != 0 {
				t.warn(name, errors.New("is a symlink; not followed"))
				return nil
			}
			if !e.Type().IsRegular() {
				return nil
			}
			d.file(name)
			return nil
		})
		if err != nil {
			root.Close()
			return nil, err
		}
	}
	return t, nil
}

// Close releases the working copy.
func (t *Tree) Close() error { return t.root.Close() }

func isYAML(name string) bool {
	return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
}

func (t *Tree) warn(file string, err error) {
	t.Problems = append(t.Problems, &FileError{File: file, Err: err, Warning: true})
}

func (t *Tree) problem(file string, line int, err error) {
	t.Problems = append(t.Problems, &FileError{File: file, Line: line, Err: err})
}

type discoverer struct {
	tree        *Tree
	fsys        fs.FS
	defaultNS   string
	kustomizeNS map[string]string // dir → namespace of the nearest kustomization
}

var (
	flagAutomation = []byte("app.lilly.com/flux")
	flagMarker     = []byte(markerKey)
)

func (d *discoverer) file(name string) {
	t := d.tree
	f, err := d.fsys.Open(name)
	if err != nil {
		t.problem(name, 0, err)
		return
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		t.problem(name, 0, err)
		return
	}
	if len(src) > MaxFileSize {
		t.warn(name, fmt.Errorf("larger than %d MiB; skipped", MaxFileSize>>20))
		return
	}
	hasMarker := bytes.Contains(src, flagMarker)
	if !hasMarker && !bytes.Contains(src, flagAutomation) {
		return
	}
	t.sources[name] = src
	lines := lineOffsets(src)
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var docs []*yaml.Node
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			// Not YAML (a Helm template, say): rewrite only key: value # marker lines.
			if hasMarker {
				d.scanLines(name, src, lines)
			}
			return
		}
		docs = append(docs, &doc)
	}
	for _, doc := range docs {
		if len(doc.Content) == 0 {
			continue
		}
		obj := d.object(name, doc.Content[0])
		if hasMarker {
			f := &fileScan{d: d, name: name, src: src, lines: lines, obj: obj}
			f.markers(doc, nil, false, false)
		}
	}
}

// object records the document's object when it is automated, and returns
// its reference for markers inside it.
func (d *discoverer) object(file string, n *yaml.Node) ObjectRef {
	var ref ObjectRef
	if n.Kind != yaml.MappingNode {
		return ref
	}
	ref.Kind = scalar(lookup(n, "kind"))
	meta := lookup(n, "metadata")
	ref.Name = scalar(lookup(meta, "name"))
	ref.Namespace = scalar(lookup(meta, "namespace"))
	ann := lookup(meta, "annotations")
	if ann == nil || ann.Kind != yaml.MappingNode {
		return ref
	}
	annotations := make(map[string]string, len(ann.Content)/2)
	for i := 0; i+1 < len(ann.Content); i += 2 {
		if v := ann.Content[i+1]; v.Kind == yaml.ScalarNode {
			annotations[ann.Content[i].Value] = v.Value
		}
	}
	if !policy.Automated(annotations) {
		return ref
	}
	if ref.Namespace == "" {
		ref.Namespace = d.namespaceFor(path.Dir(file))
	}
	d.tree.Objects = append(d.tree.Objects, Object{File: file, Line: n.Line, ObjectRef: ref, Annotations: annotations})
	return ref
}

func lookup(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// namespaceFor is the namespace: of the nearest kustomization in dir or an
// ancestor inside the root, else the default namespace.
func (d *discoverer) namespaceFor(dir string) string {
	if ns, ok := d.kustomizeNS[dir]; ok {
		return ns
	}
	ns := ""
	for _, name := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
		src, err := fs.ReadFile(d.fsys, path.Join(dir, name))
		if err != nil {
			continue
		}
		var k struct {
			Namespace string `yaml:"namespace"`
		}
		if err := yaml.Unmarshal(src, &k); err != nil {
			d.tree.problem(path.Join(dir, name), 0, fmt.Errorf("reading namespace: %w", err))
		}
		ns = k.Namespace
		break
	}
	if ns == "" {
		if dir == "." || dir == "/" {
			ns = d.defaultNS
		} else {
			ns = d.namespaceFor(path.Dir(dir))
		}
	}
	d.kustomizeNS[dir] = ns
	return ns
}

// fileScan is the state of one file's marker walk.
type fileScan struct {
	d     *discoverer
	name  string
	src   []byte
	lines []int
	obj   ObjectRef
}

// markers walks n for marker comments. Every comment that holds a marker is
// either rewritten or reported, never silently skipped.
func (f *fileScan) markers(n, parent *yaml.Node, isKey, flow bool) {
	flow = flow || n.Style&yaml.FlowStyle != 0
	if n.LineComment != "" {
		switch {
		case n.Kind == yaml.ScalarNode && !isKey:
			f.marker(n, n.LineComment, flow)
		default:
			f.misplaced(n.Line, n.LineComment, where(n, isKey))
		}
	}
	if n.HeadComment != "" {
		head := strings.Split(n.HeadComment, "\n")
		for i, line := range head {
			last := i == len(head)-1
			if last && n.Kind == yaml.ScalarNode && parent != nil && parent.Kind == yaml.SequenceNode {
				f.marker(n, line, flow)
				continue
			}
			f.misplaced(n.Line-len(head)+i, line, "a comment line that is not directly above a sequence item")
		}
	}
	if n.FootComment != "" {
		for _, line := range strings.Split(n.FootComment, "\n") {
			f.misplaced(n.Line, line, "a comment line that is not directly above a sequence item")
		}
	}
	for i, c := range n.Content {
		f.markers(c, n, n.Kind == yaml.MappingNode && i%2 == 0, flow)
	}
}

func where(n *yaml.Node, isKey bool) string {
	switch {
	case isKey:
		return "a key's line with no value on it"
	case n.Kind == yaml.AliasNode:
		return "an alias; put it on the anchored value"
	case n.Kind == yaml.MappingNode, n.Kind == yaml.SequenceNode:
		return "a collection; put it on a scalar value"
	}
	return "a line without a single value"
}

// misplaced reports a marker comment that sits where no value can be set.
func (f *fileScan) misplaced(line int, comment, where string) {
	id, _, ok, err := parseMarker(comment)
	switch {
	case !ok:
	case err != nil:
		f.d.tree.problem(f.name, line, err)
	default:
		f.d.tree.problem(f.name, line, fmt.Errorf("marker %s is on %s; not applied", id, where))
	}
}

func (f *fileScan) marker(n *yaml.Node, comment string, flow bool) {
	id, setter, ok, err := parseMarker(comment)
	if !ok {
		return
	}
	if err != nil {
		f.d.tree.problem(f.name, n.Line, err)
		return
	}
	var st style
	switch n.Style &^ yaml.TaggedStyle {
	case 0:
		st = plain
	case yaml.SingleQuotedStyle:
		st = singleQuoted
	case yaml.DoubleQuotedStyle:
		st = doubleQuoted
	default:
		f.d.tree.problem(f.name, n.Line, fmt.Errorf("marker %s is on a block scalar; only single-line values are rewritten", id))
		return
	}
	start, end, err := valueSpan(f.src, f.lines, n.Line, n.Column, st, flow, n.Value)
	if err != nil {
		f.d.tree.problem(f.name, n.Line, fmt.Errorf("marker %s: %w", id, err))
		return
	}
	f.d.tree.Markers = append(f.d.tree.Markers, Marker{
		File: f.name, Line: n.Line, Policy: id, Setter: setter, Value: n.Value, Object: f.obj,
		start: start, end: end, style: st,
	})
}

// templateLineRE matches "key: value # {...}" and "- value # {...}" lines of
// files that are not YAML; group 1 is the value.
var templateLineRE = regexp.MustCompile(`^[ \t]*(?:-[ \t]+|(?:-[ \t]+)?[A-Za-z0-9_.\-/"']+:[ \t]+)("[^"]*"|'[^']*'|[^\s#'"{}\[\]&*!|>%@,][^#]*?)[ \t]+(#.*)$`)

func (d *discoverer) scanLines(file string, src []byte, lines []int) {
	for i, start := range lines {
		end := len(src)
		if i+1 < len(lines) {
			end = lines[i+1]
		}
		text := strings.TrimRight(string(src[start:end]), "\r\n")
		if !strings.Contains(text, markerKey) {
			continue
		}
		if before, _, _ := strings.Cut(text, "#"); strings.Contains(before, "{{") {
			if id, _, ok, _ := parseMarker(text[len(before):]); ok {
				d.tree.problem(file, i+1, fmt.Errorf("marker %s: the value is a template expression; not rewritten", id))
				continue
			}
		}
		m := templateLineRE.FindStringSubmatchIndex(text)
		if m == nil {
			d.tree.problem(file, i+1, errors.New("marker is not on a \"key: value\" line of a file that is not valid YAML; not rewritten"))
			continue
		}
		id, setter, ok, err := parseMarker(text[m[4]:m[5]])
		if !ok {
			continue
		}
		if err != nil {
			d.tree.problem(file, i+1, err)
			continue
		}
		raw := text[m[2]:m[3]]
		st := plain
		switch raw[0] {
		case '"':
			st = doubleQuoted
		case '\'':
			st = singleQuoted
		}
		value, ok := decodeScalar([]byte(raw), st)
		if !ok {
			continue
		}
		d.tree.Markers = append(d.tree.Markers, Marker{
			File: file, Line: i + 1, Policy: id, Setter: setter, Value: value,
			start: start + m[2], end: start + m[3], style: st,
		})
	}
}

// Policies lists the distinct policy ids the markers name, sorted.
func (t *Tree) Policies() []string {
	set := map[string]bool{}
	for _, m := range t.Markers {
		set[m.Policy] = true
	}
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
