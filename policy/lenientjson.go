package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"unicode/utf8"
)

// decodeLenient decodes the JSON text of an annotation into v. It is
// lenient in one way: a backslash inside a string that starts no valid JSON
// escape (the seed guide writes "^dev-(?P<timestamp>\d+)$") is kept as a
// literal backslash. Every other error names the line and column inside
// text. Keys that schema does not know are returned as paths such as
// `[0].policy.alphabetical.ordr`; the caller warns about them.
func decodeLenient(text string, v any, schema keys) (unknown []string, err error) {
	fixed, inserted := escapeStrayBackslashes(text)
	dec := json.NewDecoder(bytes.NewReader(fixed))
	if err := dec.Decode(v); err != nil {
		return nil, positioned(text, inserted, err)
	}
	if _, err := dec.Token(); err == nil {
		off := originalOffset(inserted, int(dec.InputOffset())-1)
		return nil, fmt.Errorf("%s: unexpected text after the JSON value", position(text, off))
	}
	var generic any
	if err := json.Unmarshal(fixed, &generic); err == nil {
		unknown = schema.unknown(generic, "")
	}
	return unknown, nil
}

// keys is the schema of known object keys: a key maps to the schema of its
// value, or nil for a leaf. Arrays take their elements' schema.
type keys map[string]keys

func (k keys) unknown(v any, path string) []string {
	var out []string
	switch v := v.(type) {
	case []any:
		for i, e := range v {
			out = append(out, k.unknown(e, fmt.Sprintf("%s[%d]", path, i))...)
		}
	case map[string]any:
		names := make([]string, 0, len(v))
		for name := range v {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			sub, ok := k[name]
			if !ok {
				out = append(out, path+"."+name)
				continue
			}
			if sub != nil {
				out = append(out, sub.unknown(v[name], path+"."+name)...)
			}
		}
	}
	return out
}

// escapeStrayBackslashes doubles every backslash inside a JSON string that
// does not start a valid escape, and returns the offsets (in text) before
// which a byte was inserted.
func escapeStrayBackslashes(text string) ([]byte, []int) {
	var (
		out      = make([]byte, 0, len(text)+8)
		inserted []int
		inString bool
	)
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case !inString:
			if c == '"' {
				inString = true
			}
		case c == '"':
			inString = false
		case c == '\\':
			if i+1 < len(text) && isEscape(text[i+1]) {
				out = append(out, c, text[i+1])
				i++
				continue
			}
			out = append(out, '\\')
			inserted = append(inserted, i)
		}
		out = append(out, c)
	}
	return out, inserted
}

func isEscape(c byte) bool {
	switch c {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't', 'u':
		return true
	}
	return false
}

// originalOffset maps an offset in the fixed text back to text.
func originalOffset(inserted []int, off int) int {
	n := 0
	for _, at := range inserted {
		if at+n < off {
			n++
		}
	}
	return off - n
}

// positioned rewrites a decoding error to name the line and column of text
// where it happened.
func positioned(text string, inserted []int, err error) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syntax):
		// Offset counts the bytes read, the offending one included.
		off := originalOffset(inserted, int(syntax.Offset)-1)
		return fmt.Errorf("%s: %s%s", position(text, off), syntax.Error(), near(text, off))
	case errors.As(err, &typ):
		what := "the value"
		if typ.Field != "" {
			what = fmt.Sprintf("field %q", typ.Field)
		}
		return fmt.Errorf("%s: %s must be %s, not a JSON %s", position(text, originalOffset(inserted, int(typ.Offset)-1)), what, typeName(typ), typ.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s: unexpected end of JSON", position(text, len(text)))
	}
	return err
}

// position names the 1-based line and column (in characters) of byte off in text.
func position(text string, off int) string {
	off = max(0, min(off, len(text)))
	line, start := 1, 0
	for i := 0; i < off; i++ {
		if text[i] == '\n' {
			line, start = line+1, i+1
		}
	}
	return fmt.Sprintf("line %d, column %d", line, utf8.RuneCountInString(text[start:off])+1)
}

func typeName(e *json.UnmarshalTypeError) string {
	switch e.Type.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map, reflect.Pointer:
		return "an object"
	}
	return "a " + e.Type.String()
}

// near quotes the word that starts at off, if one does: ` (at "optional")`.
func near(text string, off int) string {
	end := off
	for end < len(text) && end-off < 32 && isNameByte(text[end]) {
		end++
	}
	if end == off {
		return ""
	}
	return fmt.Sprintf(" (at %q)", text[off:end])
}
