package policy

import "strings"

// decimal is an exact decimal number read from a tag: no float64, so
// 17-digit timestamps keep every digit.
type decimal struct {
	neg  bool
	intg string // integer digits, no leading zeros
	frac string // fraction digits, no trailing zeros
}

// maxExponent bounds the exponent parseDecimal accepts, so "1e999999999"
// cannot make it build a huge string.
const maxExponent = 4096

// parseDecimal reads [+-]digits[.digits][e[+-]digits] (or .digits). It
// reports false for anything else, including Inf, NaN and hex floats.
func parseDecimal(s string) (decimal, bool) {
	var d decimal
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		d.neg = s[i] == '-'
		i++
	}
	intStart := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intg := s[intStart:i]
	frac := ""
	if i < len(s) && s[i] == '.' {
		i++
		fracStart := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		frac = s[fracStart:i]
	}
	if intg == "" && frac == "" {
		return d, false
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		expNeg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			expNeg = s[i] == '-'
			i++
		}
		start := i
		for i < len(s) && isDigit(s[i]) {
			exp = exp*10 + int(s[i]-'0')
			if exp > maxExponent {
				return d, false
			}
			i++
		}
		if i == start {
			return d, false
		}
		if expNeg {
			exp = -exp
		}
	}
	if i != len(s) {
		return d, false
	}
	if exp != 0 {
		// Move the point; this allocates, but exponents are rare in tags.
		digits := intg + frac
		point := len(intg) + exp
		switch {
		case point <= 0:
			intg, frac = "", strings.Repeat("0", -point)+digits
		case point >= len(digits):
			intg, frac = digits+strings.Repeat("0", point-len(digits)), ""
		default:
			intg, frac = digits[:point], digits[point:]
		}
	}
	d.intg = strings.TrimLeft(intg, "0")
	d.frac = strings.TrimRight(frac, "0")
	if d.intg == "" && d.frac == "" {
		d.neg = false // -0 is 0
	}
	return d, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// cmp returns -1, 0 or +1 as d is less than, equal to or greater than e.
func (d decimal) cmp(e decimal) int {
	if d.neg != e.neg {
		if d.neg {
			return -1
		}
		return 1
	}
	c := cmpMagnitude(d, e)
	if d.neg {
		return -c
	}
	return c
}

func cmpMagnitude(d, e decimal) int {
	if len(d.intg) != len(e.intg) {
		if len(d.intg) < len(e.intg) {
			return -1
		}
		return 1
	}
	if c := strings.Compare(d.intg, e.intg); c != 0 {
		return c
	}
	// Fractions without trailing zeros compare as strings.
	return strings.Compare(d.frac, e.frac)
}
