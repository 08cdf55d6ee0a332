package gitwriter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/imagebutler/imagebutler/policy"
)

var (
	flagAutomation = []byte("app.lilly.com/flux")
	flagMarker     = []byte(markerKey)
)

// MaxNodes is the most YAML nodes a file may hold, by default, for
// discovery to parse it: decoding costs about a hundred bytes a node, so a
// file of many tiny nodes (`[a,a,a,...]`) would cost gigabytes. Larger files
// are skipped with a warning.
const MaxNodes = 1_000_000

// nodeBound is a cheap upper bound on the YAML nodes of data: every node
// but the first needs a line, a ',' or one of ":[]{}" (a key and its value
// count two) to start it.
func nodeBound(data []byte) int {
	n := 1
	for _, c := range data {
		switch c {
		case '\n', ',', '[', '{':
			n++
		case ':':
			n += 2
		}
	}
	return n
}

// scan reads f and records its automated objects, markers and problems.
func (r *reader) scan(f *fileResult) {
	data, err := r.read(f.name)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			f.problems = append(f.problems, &FileError{File: f.name, Err: err, Warning: true})
		} else {
			f.problem(0, err)
		}
		return
	}
	if slices.Contains(kustomizationNames, path.Base(f.name)) {
		f.kustSrc = bytes.Clone(data) // parsed if an object needs its namespace
	}
	hasMarker := bytes.Contains(data, flagMarker)
	if !hasMarker && !bytes.Contains(data, flagAutomation) {
		return // nothing of ours: the buffer is reused
	}
	if n := nodeBound(data); n > r.limits.MaxNodes {
		f.problems = append(f.problems, &FileError{File: f.name, Warning: true,
			Err: fmt.Errorf("may hold up to %d YAML nodes, more than discovery.maxNodes (%d); skipped", n, r.limits.MaxNodes)})
		return
	}
	src := bytes.Clone(data)
	f.src = src
	s := &fileScan{f: f, src: src, lines: lineOffsets(src), crlf: bytes.Contains(src, []byte("\r\n"))}
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
				s.scanLines()
			}
			return
		}
		docs = append(docs, &doc)
	}
	for _, doc := range docs {
		if len(doc.Content) == 0 {
			continue
		}
		s.obj = automatedObject(f, doc.Content[0])
		if hasMarker {
			s.markers(doc, nil, false, false)
		}
	}
}

// automatedObject records the document's object when it is automated, and returns
// its reference for the markers inside it. A namespace left empty is
// resolved later, from kustomizations.
func automatedObject(f *fileResult, n *yaml.Node) ObjectRef {
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
	var misspelt, opted []*yaml.Node
	for i := 0; i+1 < len(ann.Content); i += 2 {
		k, v := ann.Content[i], ann.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			continue
		}
		if k.Value == policy.AutomatedKey && v.ShortTag() != "!!str" {
			// automated: true unquoted is a boolean: Kubernetes refuses the
			// object (annotations are strings), and so does the butler.
			f.problems = append(f.problems, &FileError{File: f.name, Line: v.Line,
				Err: fmt.Errorf("%s: annotation %s: %s is not a string (Kubernetes annotations are strings, and the API server refuses this object): quote it: %s: \"%s\"", ref, k.Value, v.Value, k.Value, v.Value)})
			continue
		}
		if !strings.HasPrefix(k.Value, policy.Domain) && strings.Contains(k.Value, "/flux.") {
			// Another domain's key shaped like ours: app.lily.com/flux.automated.
			misspelt = append(misspelt, k)
		} else if strings.HasPrefix(k.Value, policy.Domain) && k.Value != policy.AutomatedKey {
			opted = append(opted, k) // app.lilly.com/flux.automate, say; Parse reports the rest
		}
		annotations[k.Value] = v.Value
	}
	automated := policy.Automated(annotations)
	if !automated {
		misspelt = append(misspelt, opted...)
	}
	for _, k := range misspelt {
		if guess := policy.KeySuggestion(k.Value); guess != "" && (automated || guess == policy.AutomatedKey || !strings.HasPrefix(k.Value, policy.Domain)) {
			f.problems = append(f.problems, &FileError{File: f.name, Line: k.Line, Warning: true,
				Err: fmt.Errorf("%s: annotation %s: not one of the butler's; ignored; did you mean %s?", ref, k.Value, guess)})
		}
	}
	if automated {
		f.objects = append(f.objects, Object{File: f.name, Line: n.Line, ObjectRef: ref, Annotations: annotations})
	}
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

// fileScan is the state of one file's marker walk.
type fileScan struct {
	f     *fileResult
	src   []byte
	lines []int
	obj   ObjectRef
	crlf  bool // the file's lines end in \r\n
}

// markers walks n for marker comments. Every comment that holds a marker is
// either rewritten or reported, never silently skipped.
func (s *fileScan) markers(n, parent *yaml.Node, isKey, flow bool) {
	flow = flow || n.Style&yaml.FlowStyle != 0
	if n.LineComment != "" {
		switch {
		case n.Kind == yaml.ScalarNode && !isKey:
			s.marker(n, n.LineComment, flow)
		default:
			s.misplaced(n.Line, n.LineComment, where(n, isKey))
		}
	}
	if headComment := s.comment(n.HeadComment); headComment != "" {
		head := strings.Split(headComment, "\n")
		for i, line := range head {
			last := i == len(head)-1
			if last && n.Kind == yaml.ScalarNode && parent != nil && parent.Kind == yaml.SequenceNode {
				s.marker(n, line, flow)
				continue
			}
			s.misplaced(n.Line-len(head)+i, line, "a comment line that is not directly above a sequence item")
		}
	}
	if footComment := s.comment(n.FootComment); footComment != "" {
		for _, line := range strings.Split(footComment, "\n") {
			s.misplaced(n.Line, line, "a comment line that is not directly above a sequence item")
		}
	}
	for i, c := range n.Content {
		s.markers(c, n, n.Kind == yaml.MappingNode && i%2 == 0, flow)
	}
}

// comment returns a head or foot comment as yaml.v3 gives it for an LF
// file. In a CRLF file it reports each line break twice and ends with one,
// which would put the line above a sequence item one line off.
func (s *fileScan) comment(c string) string {
	if s.crlf {
		c = strings.TrimSuffix(strings.ReplaceAll(c, "\n\n", "\n"), "\n")
	}
	return c
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
func (s *fileScan) misplaced(line int, comment, where string) {
	id, _, ok, err := parseMarker(comment)
	switch {
	case !ok && err != nil:
		s.f.warning(line, err)
	case !ok:
	case err != nil:
		s.f.problem(line, err)
	default:
		s.f.problem(line, fmt.Errorf("marker %s is on %s; not applied", id, where))
	}
}

func (s *fileScan) marker(n *yaml.Node, comment string, flow bool) {
	id, setter, ok, err := parseMarker(comment)
	if !ok {
		if err != nil {
			s.f.warning(n.Line, err)
		}
		return
	}
	if err != nil {
		s.f.problem(n.Line, err)
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
		s.f.problem(n.Line, fmt.Errorf("marker %s is on a block scalar; only single-line values are rewritten", id))
		return
	}
	start, end, err := valueSpan(s.src, s.lines, n.Line, n.Column, st, flow, n.Value)
	if err != nil {
		s.f.problem(n.Line, fmt.Errorf("marker %s: %w", id, err))
		return
	}
	s.f.markers = append(s.f.markers, Marker{
		File: s.f.name, Line: n.Line, Policy: id, Setter: setter, Value: n.Value, Object: s.obj,
		start: start, end: end, style: st,
	})
}

// templateLineRE matches "key: value # {...}" and "- value # {...}" lines of
// files that are not YAML; group 1 is the value.
var templateLineRE = regexp.MustCompile(`^[ \t]*(?:-[ \t]+|(?:-[ \t]+)?[A-Za-z0-9_.\-/"']+:[ \t]+)("[^"]*"|'[^']*'|[^\s#'"{}\[\]&*!|>%@,][^#]*?)[ \t]+(#.*)$`)

func (s *fileScan) scanLines() {
	src, lines := s.src, s.lines
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
				s.f.problem(i+1, fmt.Errorf("marker %s: the value is a template expression; not rewritten", id))
				continue
			}
		}
		m := templateLineRE.FindStringSubmatchIndex(text)
		if m == nil {
			s.f.problem(i+1, errors.New("marker is not on a \"key: value\" line of a file that is not valid YAML; not rewritten"))
			continue
		}
		id, setter, ok, err := parseMarker(text[m[4]:m[5]])
		if !ok {
			if err != nil {
				s.f.warning(i+1, err)
			}
			continue
		}
		if err != nil {
			s.f.problem(i+1, err)
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
		s.f.markers = append(s.f.markers, Marker{
			File: s.f.name, Line: i + 1, Policy: id, Setter: setter, Value: value,
			start: start + m[2], end: start + m[3], style: st,
		})
	}
}
