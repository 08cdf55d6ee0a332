package policy

import (
	"strings"

	"github.com/Masterminds/semver/v3"
)

// version is a semantic version read in place from a tag: what a semver
// order ranks by, with no allocation. It reads and orders exactly as
// Masterminds' StrictNewVersion and Version.Compare do (after Flux's
// leading "v" and zero-padded core, see parseVersion), which
// FuzzParseVersion and FuzzCompareVersions hold it to; Masterminds itself
// is asked only where a range must judge a version its cuts cannot
// (semverrange.go).
type version struct {
	major, minor, patch uint64
	pre                 string // the prerelease, without its '-'; "" for none
}

// parseVersion reads a version as Flux does (fluxcd/pkg/version.ParseVersion
// over Masterminds/semver v3.3.0, which Flux pins): an optional leading "v",
// then exactly MAJOR.MINOR.PATCH of digits, leading zeros allowed
// (zero-padded CalVer such as 2025.07.03 is a version), then an optional
// -prerelease and +build as semver has them. "1", "1.2", "1.2.3.4" and
// "20240101" are not versions.
func parseVersion(s string) (version, bool) {
	var v version
	t := strings.TrimPrefix(s, "v")
	i, zeros := 0, 0 // zeros: leading zeros the core loses, as Masterminds reads it
	for part := range 3 {
		start := i
		for i < len(t) && t[i] == '0' && i+1 < len(t) && isDigit(t[i+1]) {
			i++
		}
		zeros += i - start
		digits := i
		for i < len(t) && isDigit(t[i]) {
			i++
		}
		if i == start {
			return v, false
		}
		n, ok := parseUint(t[digits:i])
		if !ok {
			return v, false
		}
		switch part {
		case 0:
			v.major = n
		case 1:
			v.minor = n
		default:
			v.patch = n
		}
		if part < 2 {
			if i == len(t) || t[i] != '.' {
				return v, false
			}
			i++
		}
	}
	if len(t)-zeros > semver.MaxVersionLen {
		return v, false
	}
	rest := t[i:]
	if rest == "" {
		return v, true
	}
	// Build metadata from the first '+', then a prerelease before it.
	if plus := strings.IndexByte(rest, '+'); plus >= 0 {
		if !identifiers(rest[plus+1:], false) {
			return v, false
		}
		rest = rest[:plus]
	}
	if rest == "" {
		return v, true
	}
	if rest[0] != '-' || !identifiers(rest[1:], true) {
		return v, false
	}
	v.pre = rest[1:]
	return v, true
}

// parseUint reads digits as strconv.ParseUint does: false past 2^64-1.
func parseUint(digits string) (uint64, bool) {
	var n uint64
	for i := 0; i < len(digits); i++ {
		d := uint64(digits[i] - '0')
		if n > (^uint64(0)-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// identifiers checks dot-separated identifiers as Masterminds' validation
// of a prerelease (pre) or build metadata does: none empty, each of ASCII
// letters, digits and '-', and a prerelease's numeric ones without leading
// zeros.
func identifiers(s string, pre bool) bool {
	for id := range strings.SplitSeq(s, ".") {
		if id == "" {
			return false
		}
		numeric := true
		for i := 0; i < len(id); i++ {
			c := id[i]
			switch {
			case isDigit(c):
			case c == '-' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
				numeric = false
			default:
				return false
			}
		}
		if pre && numeric && len(id) > 1 && id[0] == '0' {
			return false
		}
	}
	return true
}

// compare orders v and w as Masterminds' Version.Compare does.
func (v version) compare(w version) int {
	switch {
	case v.major != w.major:
		return cmpUint(v.major, w.major)
	case v.minor != w.minor:
		return cmpUint(v.minor, w.minor)
	case v.patch != w.patch:
		return cmpUint(v.patch, w.patch)
	case v.pre == w.pre:
		return 0
	case v.pre == "":
		return 1
	case w.pre == "":
		return -1
	}
	// Identifier by identifier; the one that runs out first is lower.
	a, b := v.pre, w.pre
	for {
		var x, y string
		x, a, _ = strings.Cut(a, ".")
		y, b, _ = strings.Cut(b, ".")
		if c := comparePrePart(x, y); c != 0 {
			return c
		}
		if a == "" && b == "" {
			return 0
		}
	}
}

// comparePrePart is Masterminds' order of two prerelease identifiers (""
// for one past the end): numbers (those strconv.ParseUint reads) by value
// and below any other, which compare byte-wise.
func comparePrePart(s, o string) int {
	switch {
	case s == o:
		return 0
	case s == "":
		return -1
	case o == "":
		return 1
	}
	si, sNum := numericID(s)
	oi, oNum := numericID(o)
	switch {
	case !sNum && !oNum:
		return strings.Compare(s, o)
	case !oNum:
		return -1
	case !sNum:
		return 1
	}
	return cmpUint(si, oi)
}

func numericID(s string) (uint64, bool) {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
	}
	return parseUint(s)
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// mastermindsVersion reads s as parseVersion does, into Masterminds'
// Version: the zero-padded core without its leading zeros (Masterminds
// checks the prerelease and build on that core, and orders by the
// numbers).
func mastermindsVersion(s string) (*semver.Version, bool) {
	t := strings.TrimPrefix(s, "v")
	i := 0
	for part := range 3 {
		start := i
		for i < len(t) && isDigit(t[i]) {
			i++
		}
		if i == start {
			return nil, false
		}
		if part < 2 {
			if i == len(t) || t[i] != '.' {
				return nil, false
			}
			i++
		}
	}
	if i < len(t) && t[i] != '-' && t[i] != '+' {
		return nil, false
	}
	var b strings.Builder
	b.Grow(len(t))
	for k, part := range strings.SplitN(t[:i], ".", 3) {
		if k > 0 {
			b.WriteByte('.')
		}
		if trimmed := strings.TrimLeft(part, "0"); trimmed != "" {
			b.WriteString(trimmed)
		} else {
			b.WriteByte('0')
		}
	}
	b.WriteString(t[i:])
	v, err := semver.StrictNewVersion(b.String())
	if err != nil {
		return nil, false
	}
	return v, true
}
