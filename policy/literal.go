package policy

import (
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

// literalRE is a regexp that is one literal, anchored or not, with at most
// a ".*" on either side: ^qa-sha-.*, ^v1\., -rc$, main. Such a pattern
// matches a tag exactly when the literal is its prefix, suffix, whole or
// part, which strings answers without running the regexp.
type literalRE struct {
	lit        string
	start, end bool // anchored at the start, at the end
	// multiline says a line break in the tag changes nothing (a glob's '*'
	// matches one; see literalOf for a regexp's).
	multiline bool
}

// literalOf returns the literal form of pattern (Go syntax, as
// regexp.Compile reads it), or false when it has none.
func literalOf(pattern string) (literalRE, bool) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return literalRE{}, false
	}
	re = re.Simplify()
	subs := []*syntax.Regexp{re}
	if re.Op == syntax.OpConcat {
		subs = re.Sub
	}
	var l literalRE
	anyRun := func(r *syntax.Regexp) bool {
		return r.Op == syntax.OpStar && (r.Sub[0].Op == syntax.OpAnyCharNotNL || r.Sub[0].Op == syntax.OpAnyChar)
	}
	if len(subs) > 0 && subs[0].Op == syntax.OpBeginText {
		l.start, subs = true, subs[1:]
	}
	if n := len(subs); n > 0 && subs[n-1].Op == syntax.OpEndText {
		l.end, subs = true, subs[:n-1]
	}
	// A ".*" dropped beside an anchor (^.*lit, lit.*$) keeps the literal on
	// the first or last line, as "." matches no line break; one dropped at
	// an open end (^lit.*, .*lit) matches less than it might and is never
	// needed, so a line break there changes nothing.
	l.multiline = true
	if len(subs) > 0 && anyRun(subs[0]) {
		l.multiline = l.multiline && !(l.start && subs[0].Sub[0].Op == syntax.OpAnyCharNotNL)
		l.start, subs = false, subs[1:]
	}
	if n := len(subs); n > 0 && anyRun(subs[n-1]) {
		l.multiline = l.multiline && !(l.end && subs[n-1].Sub[0].Op == syntax.OpAnyCharNotNL)
		l.end, subs = false, subs[:n-1]
	}
	if len(subs) != 1 || subs[0].Op != syntax.OpLiteral || subs[0].Flags&syntax.FoldCase != 0 {
		return literalRE{}, false
	}
	l.lit = string(subs[0].Rune)
	if strings.ContainsRune(l.lit, utf8.RuneError) {
		return literalRE{}, false // the regexp's reading of invalid UTF-8 decides
	}
	return l, true
}

// match reports what the regexp would. ok is false for a tag the literal
// form cannot judge (a line break, which "." does not match).
func (l literalRE) match(s string) (matched, ok bool) {
	if !l.multiline && strings.IndexByte(s, '\n') >= 0 {
		return false, false
	}
	switch {
	case l.start && l.end:
		return s == l.lit, true
	case l.start:
		return strings.HasPrefix(s, l.lit), true
	case l.end:
		return strings.HasSuffix(s, l.lit), true
	}
	return strings.Contains(s, l.lit), true
}
