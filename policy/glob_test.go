package policy

import (
	"fmt"
	"regexp"
	"strings"
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
