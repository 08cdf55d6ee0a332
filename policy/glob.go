package policy

import (
	"regexp"
	"strings"
)

// CompileGlob compiles a tag glob into an anchored regular expression.
// '*' matches any run of characters, '?' one character, and the two-byte
// sequence ".*" means the same as '*' (the seed guide writes "sha-.*").
// Everything else matches itself.
func CompileGlob(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`^`)
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; {
		case c == '.' && i+1 < len(pattern) && pattern[i+1] == '*':
			b.WriteString(`.*`)
			i++
		case c == '*':
			b.WriteString(`.*`)
		case c == '?':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
		}
	}
	b.WriteString(`$`)
	return regexp.MustCompile(b.String())
}
