package policy

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// extractor expands an extract template ($name, ${name}, $1, $$) over a
// match, as regexp.Expand does, plus $createdAt when injected.
type extractor struct {
	pieces []piece
}

type piece struct {
	lit       string
	group     int // submatch index, or -1
	createdAt bool
}

const createdAtName = "createdAt"

// compileExtract checks that every group template names exists in re.
func compileExtract(re *regexp.Regexp, template string, injectCreatedAt bool) (extractor, error) {
	var x extractor
	lit := []byte{}
	flush := func() {
		if len(lit) > 0 {
			x.pieces = append(x.pieces, piece{lit: string(lit), group: -1})
			lit = lit[:0]
		}
	}
	for i := 0; i < len(template); i++ {
		c := template[i]
		if c != '$' {
			lit = append(lit, c)
			continue
		}
		name, rest, ok := extractName(template[i+1:])
		if !ok {
			if i+1 < len(template) && template[i+1] == '$' {
				lit = append(lit, '$')
				i++
				continue
			}
			// A '$' that starts no reference is kept, as regexp.Expand keeps it.
			lit = append(lit, '$')
			continue
		}
		i = len(template) - len(rest) - 1
		flush()
		switch {
		case name == createdAtName && injectCreatedAt && re.SubexpIndex(name) < 0:
			x.pieces = append(x.pieces, piece{group: -1, createdAt: true})
		default:
			g := groupIndex(re, name)
			if g < 0 {
				hint := ""
				if name == createdAtName {
					hint = " (set injectCreatedAt on the repo to use $createdAt)"
				}
				return x, fmt.Errorf("extract %q names group %q, which pattern %q lacks%s", template, name, re.String(), hint)
			}
			x.pieces = append(x.pieces, piece{group: g})
		}
	}
	flush()
	return x, nil
}

// extractName reads the name after a '$': {name} or the longest run of
// letters, digits and underscores, as regexp.Expand does.
func extractName(s string) (name, rest string, ok bool) {
	if len(s) > 1 && s[0] == '{' {
		for i := 1; i < len(s); i++ {
			if s[i] == '}' {
				if i == 1 || !isNameRun(s[1:i]) {
					return "", "", false
				}
				return s[1:i], s[i+1:], true
			}
		}
		return "", "", false
	}
	i := 0
	for i < len(s) && isNameByte(s[i]) {
		i++
	}
	if i == 0 {
		return "", "", false
	}
	return s[:i], s[i:], true
}

func isNameByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isNameRun(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return false
		}
	}
	return true
}

func groupIndex(re *regexp.Regexp, name string) int {
	if n, err := strconv.Atoi(name); err == nil {
		if n >= 0 && n <= re.NumSubexp() {
			return n
		}
		return -1
	}
	return re.SubexpIndex(name)
}

// single reports the group index when the template is exactly one group,
// so the value is a substring of the tag and costs nothing.
func (x extractor) single() (int, bool) {
	if len(x.pieces) == 1 && !x.pieces[0].createdAt && x.pieces[0].lit == "" && x.pieces[0].group >= 0 {
		return x.pieces[0].group, true
	}
	return 0, false
}

// usesCreatedAt reports whether the value depends on the push time.
func (x extractor) usesCreatedAt() bool {
	for _, p := range x.pieces {
		if p.createdAt {
			return true
		}
	}
	return false
}

// expand appends the value for the match m of tag to dst.
func (x extractor) expand(dst []byte, tag string, m []int, pushed time.Time) []byte {
	for _, p := range x.pieces {
		switch {
		case p.createdAt:
			dst = strconv.AppendInt(dst, pushed.Unix(), 10)
		case p.group >= 0:
			if 2*p.group+1 < len(m) && m[2*p.group] >= 0 {
				dst = append(dst, tag[m[2*p.group]:m[2*p.group+1]]...)
			}
		default:
			dst = append(dst, p.lit...)
		}
	}
	return dst
}
