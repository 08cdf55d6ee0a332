package policy

import (
	"strings"
	"unicode/utf8"
)

// Glob matches whole tags against a pattern in which '*' matches any run of
// characters, '?' one character, and the sequence ".*" means the same as
// '*' (the seed guide writes "sha-.*"). Everything else matches itself.
type Glob struct {
	pattern string
	parts   []string // literal runs; "*" and "?" stand alone
}

// CompileGlob compiles pattern. Every pattern is valid.
func CompileGlob(pattern string) *Glob {
	g := &Glob{pattern: pattern}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			g.parts = append(g.parts, lit.String())
			lit.Reset()
		}
	}
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; {
		case c == '.' && i+1 < len(pattern) && pattern[i+1] == '*', c == '*':
			if c == '.' {
				i++
			}
			flush()
			if n := len(g.parts); n == 0 || g.parts[n-1] != "*" {
				g.parts = append(g.parts, "*")
			}
		case c == '?':
			flush()
			g.parts = append(g.parts, "?")
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return g
}

// literal returns g as a literal test, when its only wildcards are a '*' at
// either end: qa-sha-*, *-rc, main, *x*. Unlike a regexp's '.', a glob's
// '*' matches a line break too, so multiline is set.
func (g *Glob) literal() (literalRE, bool) {
	parts := g.parts
	l := literalRE{start: true, end: true, multiline: true}
	if len(parts) > 0 && parts[0] == "*" {
		l.start, parts = false, parts[1:]
	}
	if n := len(parts); n > 0 && parts[n-1] == "*" {
		l.end, parts = false, parts[:n-1]
	}
	switch {
	case len(parts) == 0 && !l.start:
		return l, true // "*": the empty literal, anywhere
	case len(parts) != 1 || parts[0] == "*" || parts[0] == "?":
		return literalRE{}, false
	}
	l.lit = parts[0]
	return l, true
}

// String returns the pattern as written.
func (g *Glob) String() string { return g.pattern }

// Match reports whether the whole of s matches.
func (g *Glob) Match(s string) bool {
	return matchParts(g.parts, s)
}

// matchParts matches greedily, backtracking only to the most recent '*',
// which is enough for patterns whose only wildcards are '*' and '?'.
func matchParts(parts []string, s string) bool {
	starPart, starS := -1, 0
	p, i := 0, 0
	for {
		if p < len(parts) {
			switch part := parts[p]; part {
			case "*":
				starPart, starS = p, i
				p++
				continue
			case "?":
				if i < len(s) {
					_, size := utf8.DecodeRuneInString(s[i:])
					i += size
					p++
					continue
				}
			default:
				if strings.HasPrefix(s[i:], part) {
					i += len(part)
					p++
					continue
				}
			}
		} else if i == len(s) {
			return true
		}
		if starPart < 0 || starS >= len(s) {
			return false
		}
		_, size := utf8.DecodeRuneInString(s[starS:])
		starS += size
		p, i = starPart+1, starS
	}
}
