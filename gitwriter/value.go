package gitwriter

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	yamlv2 "go.yaml.in/yaml/v2"
	"go.yaml.in/yaml/v3"
)

// style is how a scalar is written.
type style int

const (
	plain style = iota
	singleQuoted
	doubleQuoted
)

// valueSpan finds the bytes of the scalar that starts at the 1-based line and
// column (counted in characters, as yaml.v3 reports them) and checks that
// they decode to want. lineStarts holds the offset of each line.
func valueSpan(src []byte, lineStarts []int, line, column int, st style, flow bool, want string) (start, end int, err error) {
	if line < 1 || line > len(lineStarts) {
		return 0, 0, fmt.Errorf("line %d is outside the file", line)
	}
	lineEnd := len(src)
	if line < len(lineStarts) {
		lineEnd = lineStarts[line]
	}
	text := src[lineStarts[line-1]:lineEnd]
	text = bytes.TrimRight(text, "\r\n")
	off := 0
	for c := 1; c < column && off < len(text); c++ {
		_, size := utf8.DecodeRune(text[off:])
		off += size
	}
	// Step over an anchor (&name) and a tag (!!str) before the value.
	for off < len(text) && (text[off] == '&' || text[off] == '!') {
		for off < len(text) && text[off] != ' ' && text[off] != '\t' {
			off++
		}
		for off < len(text) && (text[off] == ' ' || text[off] == '\t') {
			off++
		}
	}
	rest := text[off:]
	var n int
	switch st {
	case doubleQuoted:
		n = closingDouble(rest)
	case singleQuoted:
		n = closingSingle(rest)
	default:
		n = plainEnd(rest, flow)
	}
	if n <= 0 {
		return 0, 0, fmt.Errorf("value does not end on its line")
	}
	start = lineStarts[line-1] + off
	end = start + n
	got, ok := decodeScalar(src[start:end], st)
	if !ok || got != want {
		return 0, 0, fmt.Errorf("value spans more than one line or is written in a form the butler does not rewrite")
	}
	return start, end, nil
}

func closingDouble(b []byte) int {
	if len(b) == 0 || b[0] != '"' {
		return -1
	}
	for i := 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

func closingSingle(b []byte) int {
	if len(b) == 0 || b[0] != '\'' {
		return -1
	}
	for i := 1; i < len(b); i++ {
		if b[i] == '\'' {
			if i+1 < len(b) && b[i+1] == '\'' {
				i++
				continue
			}
			return i + 1
		}
	}
	return -1
}

// plainEnd is the length of a plain scalar: up to " #" or the end of the
// line (or, inside a flow collection, a ',', ']' or '}'), trailing blanks
// dropped.
func plainEnd(b []byte, flow bool) int {
	n := len(b)
	for i := 0; i < len(b); i++ {
		if i > 0 && b[i] == '#' && (b[i-1] == ' ' || b[i-1] == '\t') || flow && (b[i] == ',' || b[i] == ']' || b[i] == '}') {
			n = i
			break
		}
	}
	return len(bytes.TrimRight(b[:n], " \t"))
}

// decodeScalar reads one written scalar the way YAML would.
func decodeScalar(b []byte, st style) (string, bool) {
	switch st {
	case singleQuoted:
		if len(b) < 2 {
			return "", false
		}
		return strings.ReplaceAll(string(b[1:len(b)-1]), "''", "'"), true
	case doubleQuoted:
		var n yaml.Node
		if err := yaml.Unmarshal(b, &n); err != nil || len(n.Content) != 1 {
			return "", false
		}
		return n.Content[0].Value, true
	}
	return string(b), true
}

// encodeScalar writes value in the style the old value had. A plain value
// that a YAML 1.1 or 1.2 reader would read as something other than that
// string is double-quoted. A value the old style cannot hold on one line
// (a line break or control character in a single-quoted value) is an
// error: the caller leaves the line as it was.
func encodeScalar(value string, st style) ([]byte, error) {
	if !utf8.ValidString(value) {
		return nil, fmt.Errorf("value %q is not valid UTF-8, which YAML cannot hold", value)
	}
	switch st {
	case singleQuoted:
		if strings.IndexFunc(value, notPrintable) >= 0 {
			return nil, fmt.Errorf("value %q holds a character a single-quoted scalar cannot hold on one line", value)
		}
		return []byte("'" + strings.ReplaceAll(value, "'", "''") + "'"), nil
	case doubleQuoted:
		return []byte(strconv.Quote(value)), nil
	}
	if !plainSafe(value) {
		return []byte(strconv.Quote(value)), nil
	}
	return []byte(value), nil
}

func notPrintable(r rune) bool { return !unicode.IsPrint(r) || r == utf8.RuneError }

// plainSafe reports whether value, written plain, reads back as the same
// string in every YAML reader a manifest meets: yaml.v3 (YAML 1.2),
// go.yaml.in/yaml/v2 (what sigs.k8s.io/yaml, kubectl and Helm use), and
// the YAML 1.1 types (booleans, null, numbers, sexagesimals, timestamps).
func plainSafe(value string) bool {
	if value == "" || strings.ContainsAny(value, "\n\r\t#") || strings.Contains(value, ": ") || strings.HasSuffix(value, ":") ||
		strings.IndexFunc(value, notPrintable) >= 0 || yaml11Typed(value) {
		return false
	}
	if referenceRE.MatchString(value) {
		// What the butler writes: no indicator, no space, not a typed
		// scalar, so every reader takes it for a string (FuzzEncodeScalar
		// checks this against both parsers).
		return true
	}
	var n yaml.Node
	if err := yaml.Unmarshal([]byte("v: "+value), &n); err != nil || len(n.Content) != 1 || len(n.Content[0].Content) != 2 {
		return false
	}
	v := n.Content[0].Content[1]
	if v.Kind != yaml.ScalarNode || v.Tag != "!!str" || v.Style != 0 || v.Value != value {
		return false
	}
	var m map[string]any
	if err := yamlv2.Unmarshal([]byte("v: "+value), &m); err != nil {
		return false
	}
	got, ok := m["v"].(string)
	return ok && got == value
}

// yaml11Types are the plain scalars the YAML 1.1 type repository reads as
// something other than a string (https://yaml.org/type/), with the YAML
// 1.2 forms (0o17) and everything Go's number parsers take on top.
var yaml11Types = regexp.MustCompile(`^(?:` +
	`y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF` + // bool
	`|~|null|Null|NULL` + // null
	`|<<|=` + // merge, value
	`|[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+` + // int
	`|[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*` + // float
	`|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)` +
	`|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)?` + // timestamp
	`)$`)

// yaml11Typed reports whether a YAML 1.1 or 1.2 reader could take the plain
// scalar value for a boolean, null, number or timestamp.
func yaml11Typed(value string) bool {
	if yaml11Types.MatchString(value) {
		return true
	}
	// Whatever Go's parsers read as a number (1e3, 0x1p-2, Inf, 1_000).
	clean := strings.ReplaceAll(value, "_", "")
	if _, err := strconv.ParseFloat(clean, 64); err == nil {
		return true
	}
	_, err := strconv.ParseInt(clean, 0, 64)
	return err == nil
}

func lineOffsets(src []byte) []int {
	starts := []int{0}
	for i, c := range src {
		if c == '\n' && i+1 < len(src) {
			starts = append(starts, i+1)
		}
	}
	return starts
}
