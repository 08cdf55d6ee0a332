package policy

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// globRegexp is the glob rule written as a regexp, as a reference for
// FuzzGlob: '*' and ".*" are ".*", '?' is one character, the rest literal.
func globRegexp(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`(?s)^`)
	for i := 0; i < len(pattern); {
		switch {
		case strings.HasPrefix(pattern[i:], ".*"):
			b.WriteString(`.*`)
			i += 2
		case pattern[i] == '*':
			b.WriteString(`.*`)
			i++
		case pattern[i] == '?':
			b.WriteString(`.`)
			i++
		default:
			_, size := utf8.DecodeRuneInString(pattern[i:])
			b.WriteString(regexp.QuoteMeta(pattern[i : i+size]))
			i += size
		}
	}
	b.WriteString(`$`)
	return regexp.MustCompile(b.String())
}

func sscanPosition(msg string, line, col *int) (int, error) {
	return fmt.Sscanf(msg, "line %d, column %d:", line, col)
}

// The literal form of a regexp matches exactly what the regexp matches.
func FuzzLiteralRE(f *testing.F) {
	for _, seed := range [][2]string{
		{"^qa-sha-.*", "qa-sha-1a2b3c4"}, {"^v1\\.", "v1.2.3"}, {"-rc$", "1.0-rc"}, {"main", "x-main-y"},
		{"^exact$", "exact"}, {".*mid.*", "amidb"}, {"^.*end$", "the end"}, {"(?i)^QA", "qa-1"},
		{"^é-.*", "é-1"}, {"^a.*", "a\nb"}, {"^\\x{FFFD}", "\xff"}, {"(?s)^a.*", "a\nb"},
		{"^a.*$", "a\nb"}, {"^.*b$", "a\nb"}, {".*b$", "a\nb"}, {"^a", "a\n"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, tag string) {
		re, err := regexp.Compile(pattern)
		if err != nil {
			return
		}
		l, ok := literalOf(pattern)
		if !ok {
			return
		}
		got, judged := l.match(tag)
		if judged && got != re.MatchString(tag) {
			t.Errorf("pattern %q, tag %q: literal form says %v, regexp %v", pattern, tag, got, !got)
		}
	})
}

func TestLiteralOf(t *testing.T) {
	for pattern, want := range map[string]*literalRE{
		"^qa-sha-.*":   {lit: "qa-sha-", start: true, multiline: true},
		"^qa-sha-":     {lit: "qa-sha-", start: true, multiline: true},
		"-rc$":         {lit: "-rc", end: true, multiline: true},
		"^exact$":      {lit: "exact", start: true, end: true, multiline: true},
		"main":         {lit: "main", multiline: true},
		".*mid.*":      {lit: "mid", multiline: true},
		"^qa-sha-.*$":  {lit: "qa-sha-", start: true}, // no line break after the literal
		"^.*end$":      {lit: "end", end: true},       // none before it
		"(?s)^a.*$":    {lit: "a", start: true, multiline: true},
		"(?i)^qa":      nil,
		"^qa-[0-9]+":   nil,
		"^a|^b":        nil,
		"^dev-(.*)$":   nil,
		"^v1\\.2\\.x$": {lit: "v1.2.x", start: true, end: true, multiline: true},
	} {
		got, ok := literalOf(pattern)
		switch {
		case want == nil && ok:
			t.Errorf("literalOf(%q) = %+v, want none", pattern, got)
		case want != nil && (!ok || got != *want):
			t.Errorf("literalOf(%q) = %+v, %v; want %+v", pattern, got, ok, *want)
		}
	}
}
