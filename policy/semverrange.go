package policy

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// rangeCuts are versions between which a semver range cannot change its
// mind about a release version (one without a prerelease): every version
// written in the range, with its missing or wildcard parts as 0, and each
// of those with its major, minor or patch one higher. Masterminds' range
// operators (=, !=, <, <=, >, >=, ~, ^, x-ranges, hyphen ranges, and their
// AND and OR) all accept runs of versions that start or end at such a
// version, so every release version strictly between two neighbouring
// cuts, and every version equal to a cut, gets the verdict of any other
// there. Select asks Masterminds once per run and reuses its verdict: a
// version outside the range then costs a binary search instead of the
// error message Check builds and drops for it (44% of a cold selection
// over distinct out-of-range versions). FuzzRangeCuts holds the claim to
// Check itself.
type rangeCuts []version

// versionLiteral finds the versions a range writes: what Masterminds'
// constraint grammar takes for one, and more (a token cutsOf cannot read
// turns the cuts off).
var versionLiteral = regexp.MustCompile(`[vV]?[0-9xX*]+(?:\.[0-9xX*]+)*(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?`)

// cutsOf returns the cuts of the range r, or false when r writes a version
// cutsOf cannot read (Select then asks Check for every version).
func cutsOf(r string) (rangeCuts, bool) {
	var cuts rangeCuts
	add := func(major, minor, patch uint64, pre string) bool {
		s := strconv.FormatUint(major, 10) + "." + strconv.FormatUint(minor, 10) + "." + strconv.FormatUint(patch, 10) + pre
		v, ok := parseVersion(s)
		if ok {
			cuts = append(cuts, v)
		}
		return ok
	}
	for _, lit := range versionLiteral.FindAllString(r, -1) {
		core, pre := strings.TrimLeft(lit, "vV"), ""
		if i := strings.IndexAny(core, "-+"); i >= 0 {
			core, pre = core[:i], core[i:]
			if j := strings.IndexByte(pre, '+'); j >= 0 {
				pre = pre[:j] // build metadata does not order
			}
		}
		parts := strings.Split(core, ".")
		if len(parts) > 3 {
			return nil, false
		}
		var n [3]uint64
		wild := false
		for i, part := range parts {
			switch {
			case part == "x" || part == "X" || part == "*":
				wild = true
			case wild:
				return nil, false // 1.x.2: not a form the cuts know
			default:
				v, err := strconv.ParseUint(part, 10, 64)
				if err != nil || v == ^uint64(0) {
					return nil, false
				}
				n[i] = v
			}
		}
		if wild && pre != "" {
			return nil, false
		}
		if pre != "" && !add(n[0], n[1], n[2], pre) {
			return nil, false
		}
		if !add(n[0], n[1], n[2], "") || !add(n[0]+1, 0, 0, "") || !add(n[0], n[1]+1, 0, "") ||
			!add(n[0], n[1], n[2]+1, "") || !add(n[0], n[1], 0, "") || !add(n[0], 0, 0, "") {
			return nil, false
		}
	}
	slices.SortFunc(cuts, version.compare)
	cuts = slices.CompactFunc(cuts, func(a, b version) bool { return a.compare(b) == 0 })
	return cuts, true
}

// slot is the run v falls in: 2k+1 when v equals cut k, 2k when v lies
// between cut k-1 and cut k.
func (c rangeCuts) slot(v version) int {
	k, found := slices.BinarySearchFunc(c, v, version.compare)
	if found {
		return 2*k + 1
	}
	return 2 * k
}

// verdicts remembers, for one pass over a listing, the range's verdict per
// run of rangeCuts: 0 not asked yet, 1 in range, 2 out.
type verdicts []int8

// inRange reports whether v (read from tag) satisfies p's range, asking
// Check once per run of p's cuts when v is a release version and vs is not
// nil; otherwise of Masterminds' reading of tag.
func (p *Policy) inRange(v version, tag string, vs *verdicts) bool {
	if vs == nil || !p.cutsOK || v.pre != "" {
		return p.check(tag)
	}
	if *vs == nil {
		*vs = make(verdicts, 2*len(p.cuts)+1)
	}
	k := p.cuts.slot(v)
	switch (*vs)[k] {
	case 1:
		return true
	case 2:
		return false
	}
	ok := p.check(tag)
	(*vs)[k] = 2
	if ok {
		(*vs)[k] = 1
	}
	return ok
}

// check asks Masterminds whether the version tag satisfies p's range.
func (p *Policy) check(tag string) bool {
	v, ok := mastermindsVersion(tag)
	return ok && p.constraint.Check(v)
}
