package config

import (
	"fmt"
	"strings"
)

// FieldError is one problem in a configuration file.
type FieldError struct {
	File  string // path of the configuration file
	Line  int    // 1-based line, or 0 when the field is absent
	Field string // field path such as "repositories[1].branch"; empty for the whole file
	Msg   string
}

// Error is "file:line: field: message", leaving out what is unknown.
func (e *FieldError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Field == "" {
		return loc + ": " + e.Msg
	}
	return loc + ": " + e.Field + ": " + e.Msg
}

// problems collects FieldErrors for one file.
type problems struct {
	file string
	list []error
	// typeFields and typeLines are where a value had the wrong type; the
	// checks of its content would only repeat that.
	typeFields []string
	typeLines  map[int]bool
}

func (p *problems) add(line int, field, format string, args ...any) {
	for _, f := range p.typeFields {
		if field == f || strings.HasPrefix(field, f+".") || strings.HasPrefix(field, f+"[") {
			return
		}
	}
	p.list = append(p.list, &FieldError{File: p.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// addType reports a value of the wrong type.
func (p *problems) addType(line int, field, msg string) {
	p.add(line, field, "%s", msg)
	p.typeFields = append(p.typeFields, field)
	if p.typeLines == nil {
		p.typeLines = map[int]bool{}
	}
	p.typeLines[line] = true
}
