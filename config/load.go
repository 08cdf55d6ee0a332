package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
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

	var c Config
	if err := doc.Decode(&c); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			p.add(0, "", "%v", err)
			return nil, errors.Join(p.list...)
		}
		for _, msg := range te.Errors {
			p.add(typeErrorLine(msg), "", "%s", typeErrorLineRE.ReplaceAllString(msg, ""))
		}
	}
	if len(p.list) > 0 {
		return nil, errors.Join(p.list...)
	}
	c.File = file
	c.applyDefaults()
	c.validate(p, doc)
	if len(p.list) > 0 {
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

// checkKeys reports every mapping key that names no field of t, recursively.
func checkKeys(p *problems, n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // the decoder reports the type mismatch
		}
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
				p.add(k.Line, field, "unknown field")
				continue
			}
			if seen[k.Value] {
				p.add(k.Line, field, "set twice")
			}
			seen[k.Value] = true
			checkKeys(p, v, ft, field)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkKeys(p, n.Content[i+1], t.Elem(), fmt.Sprintf("%s[%q]", path, n.Content[i].Value))
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, item := range n.Content {
			checkKeys(p, item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
