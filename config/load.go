package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/imagebutler/imagebutler/suggest"
)

// Load reads, decodes and validates the configuration file at path.
// The error, if any, joins one *FieldError per problem found.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates a configuration held in memory; file names it in errors.
func Parse(file string, data []byte) (*Config, error) {
	p := &problems{file: file}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			p.add(0, "", "file is empty")
			return nil, errors.Join(p.list...)
		}
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		p.add(typeErrorLine(msg), "", "%s", typeErrorLineRE.ReplaceAllString(msg, ""))
		return nil, errors.Join(p.list...)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		p.add(extra.Line, "", "holds more than one YAML document")
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		p.add(doc.Line, "", "must be a YAML mapping")
		return nil, errors.Join(p.list...)
	}
	checkKeys(p, doc, reflect.TypeFor[Config](), "")

	// Decoding goes on past values of the wrong type (checkKeys named them),
	// so that every other problem is reported in the same pass.
	var c Config
	if err := doc.Decode(&c); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			p.add(0, "", "%v", err)
			return nil, errors.Join(p.list...)
		}
		for _, msg := range te.Errors {
			if line := typeErrorLine(msg); !p.typeLines[line] {
				p.add(line, "", "%s", typeErrorLineRE.ReplaceAllString(msg, ""))
			}
		}
	}
	c.File = file
	c.applyDefaults()
	c.validate(p, doc)
	if len(p.list) > 0 {
		// In file order, as a person reads and fixes them; problems of one
		// line in the order found.
		slices.SortStableFunc(p.list, func(a, b error) int { return a.(*FieldError).Line - b.(*FieldError).Line })
		return nil, errors.Join(p.list...)
	}
	return &c, nil
}

var typeErrorLineRE = regexp.MustCompile(`^line (\d+): `)

func typeErrorLine(msg string) int {
	m := typeErrorLineRE.FindStringSubmatch(msg)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// checkKeys reports every mapping key that names no field of t, and every
// value whose YAML shape does not fit its field (a string where a list
// belongs, a word where a number belongs), recursively, naming the field's
// path. Fields reported here are skipped by the later checks.
func checkKeys(p *problems, n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // the zero value
	}
	if msg := shapeProblem(n, t); msg != "" {
		p.addType(n.Line, path, msg)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		fields := map[string]reflect.Type{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name != "" && name != "-" {
				fields[name] = f.Type
			}
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			field := join(path, k.Value)
			ft, ok := fields[k.Value]
			if !ok {
				p.add(k.Line, field, "unknown field%s", suggest.DidYouMean(suggest.Nearest(k.Value, slices.Collect(maps.Keys(fields)), 2)))
				continue
			}
			if seen[k.Value] {
				p.add(k.Line, field, "set twice")
			}
			seen[k.Value] = true
			checkKeys(p, v, ft, field)
		}
	case reflect.Map:
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkKeys(p, n.Content[i+1], t.Elem(), fmt.Sprintf("%s[%q]", path, n.Content[i].Value))
		}
	case reflect.Slice:
		for i, item := range n.Content {
			checkKeys(p, item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

var durationType = reflect.TypeFor[Duration]()

// shapeProblem says why node n cannot be decoded into a value of type t, or
// returns "".
func shapeProblem(n *yaml.Node, t reflect.Type) string {
	want := ""
	ok := true
	switch {
	case t == durationType:
		want = "a duration such as 30s or 5m"
		if n.Kind == yaml.ScalarNode {
			_, err := time.ParseDuration(n.Value)
			ok = err == nil
		} else {
			ok = false
		}
	case t.Kind() == reflect.Struct || t.Kind() == reflect.Map:
		want, ok = "a mapping", n.Kind == yaml.MappingNode
	case t.Kind() == reflect.Slice:
		want, ok = "a list", n.Kind == yaml.SequenceNode
		if t.Elem().Kind() == reflect.String {
			want = "a list of strings"
		}
	case t.Kind() == reflect.String:
		want, ok = "a string", n.Kind == yaml.ScalarNode
	case t.Kind() == reflect.Bool:
		want, ok = "true or false", n.Kind == yaml.ScalarNode && n.Tag == "!!bool"
	case t.Kind() == reflect.Int:
		want, ok = "a whole number", n.Kind == yaml.ScalarNode && n.Tag == "!!int"
	case t.Kind() == reflect.Float64:
		want, ok = "a number", n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float")
	}
	if ok {
		return ""
	}
	return fmt.Sprintf("must be %s, got %s", want, describe(n))
}

// describe names a node for an error message: `the string "apps"`, `a list`.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	v := n.Value
	if len(v) > 60 {
		v = v[:60] + "..."
	}
	kind := map[string]string{"!!int": "the number", "!!float": "the number", "!!bool": "the boolean", "!!str": "the string"}[n.Tag]
	if kind == "" {
		kind = "the value"
	}
	return fmt.Sprintf("%s %q", kind, v)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
