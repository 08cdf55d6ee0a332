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
			d.markers(name, src, lines, doc.Content[0], nil, obj)
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

// markers walks n for marker comments. parent is n's parent node.
func (d *discoverer) markers(file string, src []byte, lines []int, n, parent *yaml.Node, obj ObjectRef) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.LineComment != "" {
			d.marker(file, src, lines, n, n.LineComment, obj)
		} else if parent != nil && parent.Kind == yaml.SequenceNode && n.HeadComment != "" {
			head := strings.Split(strings.TrimSpace(n.HeadComment), "\n")
			d.marker(file, src, lines, n, head[len(head)-1], obj)
		}
	case yaml.MappingNode, yaml.SequenceNode:
		for _, c := range n.Content {
			d.markers(file, src, lines, c, n, obj)
		}
	}
}

func (d *discoverer) marker(file string, src []byte, lines []int, n *yaml.Node, comment string, obj ObjectRef) {
	id, setter, ok, err := parseMarker(comment)
	if !ok {
		return
	}
	if err != nil {
		d.tree.problem(file, n.Line, err)
		return
	}
	var st style
	switch n.Style {
	case 0, yaml.TaggedStyle:
		st = plain
	case yaml.SingleQuotedStyle:
		st = singleQuoted
	case yaml.DoubleQuotedStyle:
		st = doubleQuoted
	default:
		d.tree.problem(file, n.Line, fmt.Errorf("marker %s is on a block or flow value; only single-line values are rewritten", id))
		return
	}
	start, end, err := valueSpan(src, lines, n.Line, n.Column, st, n.Value)
	if err != nil {
		d.tree.problem(file, n.Line, fmt.Errorf("marker %s: %w", id, err))
		return
	}
	d.tree.Markers = append(d.tree.Markers, Marker{
		File: file, Line: n.Line, Policy: id, Setter: setter, Value: n.Value, Object: obj,
		start: start, end: end, style: st,
	})
}

// templateLineRE matches "key: value # {...}" and "- value # {...}" lines of
// files that are not YAML; group 1 is the value.
var templateLineRE = regexp.MustCompile(`^[ \t]*(?:-[ \t]+)?(?:[A-Za-z0-9_.\-/"']+:[ \t]+)?("[^"]*"|'[^']*'|[^\s#'"{][^#]*?)[ \t]+(#.*)$`)

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
		if strings.Contains(text[:m[4]], "{{") {
			d.tree.problem(file, i+1, fmt.Errorf("marker %s: the value is a template expression; not rewritten", id))
			continue
		}
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
