package policy

import (
	"regexp/syntax"
	"unicode"
	"unicode/utf8"
)

// linearRE is a regexp anchored at the start that is a sequence of
// literals and runs of a byte class, each run optionally a capture group:
// ^dev-(?P<ts>[0-9]+)$, ^main-[a-f0-9]+-(?P<ts>[0-9]+), ^v(.*)$. When each
// run's class excludes the first byte of what follows it, the regexp can
// match a tag in one way only (each run takes all it can), so the match
// and its groups are found in one pass over the tag's bytes, with no
// allocation: FindStringSubmatchIndex's allocation and its machine were 90%
// of a cold numerical pick. FuzzLinearRE holds it to the regexp.
type linearRE struct {
	items []linItem
	end   bool // anchored at the end
	ncap  int  // the regexp's number of groups
}

// linItem is a literal (run false) or a run of the bytes in class (at
// least one when plus), captured as group cap (0: not captured).
type linItem struct {
	lit   string
	run   bool
	plus  bool
	class *[256]bool
	cap   int
}

// linearOf returns the linear form of pattern (Go syntax, as
// regexp.Compile reads it), or false when it has none.
func linearOf(pattern string) (linearRE, bool) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return linearRE{}, false
	}
	l := linearRE{ncap: re.MaxCap()}
	re = re.Simplify()
	subs := []*syntax.Regexp{re}
	if re.Op == syntax.OpConcat {
		subs = re.Sub
	}
	if len(subs) == 0 || subs[0].Op != syntax.OpBeginText {
		return linearRE{}, false
	}
	subs = subs[1:]
	if n := len(subs); n > 0 && subs[n-1].Op == syntax.OpEndText {
		l.end, subs = true, subs[:n-1]
	}
	for _, s := range subs {
		item := linItem{}
		if s.Op == syntax.OpCapture {
			item.cap, s = s.Cap, s.Sub[0]
		}
		switch {
		case s.Op == syntax.OpLiteral && item.cap == 0:
			if s.Flags&syntax.FoldCase != 0 {
				return linearRE{}, false
			}
			for _, r := range s.Rune {
				if r >= utf8.RuneSelf {
					return linearRE{}, false
				}
			}
			item.lit = string(s.Rune)
		case (s.Op == syntax.OpStar || s.Op == syntax.OpPlus) && s.Flags&syntax.NonGreedy == 0:
			class, ok := byteClass(s.Sub[0])
			if !ok {
				return linearRE{}, false
			}
			item.run, item.plus, item.class = true, s.Op == syntax.OpPlus, class
		default:
			return linearRE{}, false
		}
		l.items = append(l.items, item)
	}
	// Each run must stop where the regexp's would: before a byte it cannot
	// take, which the next item must not take either.
	for i, it := range l.items {
		if !it.run || i+1 == len(l.items) {
			continue
		}
		next := l.items[i+1]
		if next.run {
			for b := range 256 {
				if it.class[b] && next.class[b] {
					return linearRE{}, false
				}
			}
			if !next.plus {
				return linearRE{}, false // what follows an empty run is then another's
			}
		} else if next.lit == "" || it.class[next.lit[0]] {
			return linearRE{}, false
		}
	}
	return l, true
}

// byteClass is the bytes a run of the one-rune regexp r takes: ASCII bytes
// by r, and every byte from 0x80 when r takes every rune from 0x80 (any
// multi-byte rune, and an invalid byte, which the regexp reads as U+FFFD),
// none when it takes none of them; false for a class between.
func byteClass(r *syntax.Regexp) (*[256]bool, bool) {
	var ranges []rune
	switch r.Op {
	case syntax.OpAnyChar:
		ranges = []rune{0, unicode.MaxRune}
	case syntax.OpAnyCharNotNL:
		ranges = []rune{0, '\n' - 1, '\n' + 1, unicode.MaxRune}
	case syntax.OpCharClass:
		ranges = r.Rune
	case syntax.OpLiteral:
		if len(r.Rune) != 1 || r.Flags&syntax.FoldCase != 0 {
			return nil, false
		}
		ranges = []rune{r.Rune[0], r.Rune[0]}
	default:
		return nil, false
	}
	var class [256]bool
	high := 0 // how many runes from 0x80 the class takes
	for i := 0; i+1 < len(ranges); i += 2 {
		lo, hi := ranges[i], ranges[i+1]
		for c := lo; c <= hi && c < utf8.RuneSelf; c++ {
			class[c] = true
		}
		if hi >= utf8.RuneSelf {
			high += int(hi - max(lo, utf8.RuneSelf) + 1)
		}
	}
	switch high {
	case 0:
	case unicode.MaxRune - utf8.RuneSelf + 1:
		for b := utf8.RuneSelf; b < 256; b++ {
			class[b] = true
		}
	default:
		return nil, false
	}
	return &class, true
}

// match returns the regexp's FindStringSubmatchIndex of s, written into m
// (grown as needed), or nil when it does not match.
func (l *linearRE) match(s string, m []int) []int {
	n := 2 * (l.ncap + 1)
	if cap(m) < n {
		m = make([]int, n)
	}
	m = m[:n]
	for i := range m {
		m[i] = -1
	}
	i := 0
	for _, it := range l.items {
		if !it.run {
			if len(s)-i < len(it.lit) || s[i:i+len(it.lit)] != it.lit {
				return nil
			}
			i += len(it.lit)
			continue
		}
		start := i
		for i < len(s) && it.class[s[i]] {
			i++
		}
		if it.plus && i == start {
			return nil
		}
		if it.cap > 0 {
			m[2*it.cap], m[2*it.cap+1] = start, i
		}
	}
	if l.end && i != len(s) {
		return nil
	}
	m[0], m[1] = 0, i
	return m
}
