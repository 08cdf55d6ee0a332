package policy

import (
	"strconv"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
)

// Select picks the policy's tag from images. It never fails: a Result
// without a Tag says, through its counts, why nothing qualified.
func (p *Policy) Select(images []Image) Result {
	return p.SelectMemo(images, nil)
}

// Memo remembers the work that depends only on a tag (exclusion, filter,
// extracted value, parsed number or version) between calls of SelectMemo for
// one policy over one ECR repository. Tags do not change between cycles,
// so a warm memo makes selection cost a map lookup per tag. It forgets
// tags that stopped appearing. A Memo is not safe for concurrent use.
type Memo struct {
	sig  string
	gen  uint32
	tags map[string]*verdict
}

// NewMemo returns an empty Memo.
func NewMemo() *Memo { return &Memo{tags: map[string]*verdict{}} }

// Len reports how many tags the memo holds.
func (m *Memo) Len() int { return len(m.tags) }

// state is what became of a tag.
type state uint8

const (
	qualified state = iota
	excluded
	filtered
	unparsable
)

// verdict is the outcome for one tag.
type verdict struct {
	gen   uint32
	state state
	value string
	dec   decimal
	ver   *semver.Version
}

// SelectMemo is Select, remembering per-tag work in memo (which may be nil).
func (p *Policy) SelectMemo(images []Image, memo *Memo) Result {
	if p.extract.usesCreatedAt() {
		memo = nil // values depend on push times, not tags alone
	}
	if memo != nil {
		if sig := p.Fingerprint(); memo.sig != sig {
			memo.sig, memo.tags = sig, map[string]*verdict{}
		}
		memo.gen++
	}
	var (
		r       Result
		best    verdict
		bestImg *Image
		bestTag string
		buf     []byte
		scratch verdict
	)
	for i := range images {
		img := &images[i]
		for _, tag := range img.Tags {
			r.Seen++
			var v *verdict
			if memo != nil {
				v = memo.tags[tag]
				if v == nil {
					v = &verdict{}
					buf = p.judge(v, tag, img.PushedAt, buf)
					memo.tags[tag] = v
				}
				v.gen = memo.gen
			} else {
				scratch = verdict{}
				buf = p.judge(&scratch, tag, img.PushedAt, buf)
				v = &scratch
			}
			switch v.state {
			case excluded:
				r.Excluded++
				continue
			case filtered:
				r.Filtered++
				continue
			case unparsable:
				r.Unparsable++
				continue
			}
			if bestImg != nil {
				c := p.compare(v, &best, img, bestImg)
				if c < 0 || c == 0 && tag <= bestTag {
					continue
				}
			}
			best, bestImg, bestTag = *v, img, tag
		}
	}
	if memo != nil && len(memo.tags) > r.Seen {
		for tag, v := range memo.tags {
			if v.gen != memo.gen {
				delete(memo.tags, tag)
			}
		}
	}
	if bestImg != nil {
		r.Tag, r.Digest, r.PushedAt, r.Value = bestTag, bestImg.Digest, bestImg.PushedAt, best.value
	}
	return r
}

// compare ranks candidate v (of image a) against w (of image b): positive
// when v wins.
func (p *Policy) compare(v, w *verdict, a, b *Image) int {
	var c int
	switch p.Order {
	case Newest:
		return a.PushedAt.Compare(b.PushedAt)
	case Alphabetical:
		c = strings.Compare(v.value, w.value)
	case Numerical:
		c = v.dec.cmp(w.dec)
	case Semver:
		return v.ver.Compare(w.ver)
	}
	if p.Desc {
		c = -c
	}
	return c
}

// judge decides the fate of one tag into v. buf is scratch space for
// expanding, returned for reuse; v.value never points into it.
func (p *Policy) judge(v *verdict, tag string, pushed time.Time, buf []byte) []byte {
	if p.isExcluded(tag) {
		v.state = excluded
		return buf
	}
	v.value = tag
	switch {
	case p.glob != nil:
		if !p.glob.Match(tag) {
			v.state = filtered
			return buf
		}
	case p.re != nil && p.Extract == "":
		if !p.re.MatchString(tag) {
			v.state = filtered
			return buf
		}
	case p.re != nil:
		m := p.re.FindStringSubmatchIndex(tag)
		if m == nil {
			v.state = filtered
			return buf
		}
		if g, ok := p.extract.single(); ok {
			if m[2*g] >= 0 {
				v.value = tag[m[2*g]:m[2*g+1]]
			} else {
				v.value = ""
			}
		} else {
			buf = p.extract.expand(buf[:0], tag, m, pushed)
			v.value = string(buf)
		}
	}
	switch p.Order {
	case Numerical:
		d, ok := parseDecimal(v.value)
		if !ok {
			v.state = unparsable
			return buf
		}
		v.dec = d
	case Semver:
		ver, ok := parseVersion(v.value)
		if !ok {
			v.state = unparsable
			return buf
		}
		if !p.constraint.Check(ver) {
			v.state = filtered
			return buf
		}
		v.ver = ver
	}
	v.state = qualified
	return buf
}

func (p *Policy) isExcluded(tag string) bool {
	if p.defaultEx {
		// DefaultExclusion, without running a regexp.
		return strings.HasSuffix(tag, ".sig") || strings.HasSuffix(tag, ".att") || strings.HasSuffix(tag, ".sbom")
	}
	for _, ex := range p.exclude {
		if ex.MatchString(tag) {
			return true
		}
	}
	return false
}

// parseVersion reads a strict semantic version with an optional leading
// "v", as Flux does: "1.2" and "20240101" are not versions.
func parseVersion(s string) (*semver.Version, bool) {
	t := strings.TrimPrefix(s, "v")
	if t == "" || !isDigit(t[0]) {
		return nil, false
	}
	v, err := semver.StrictNewVersion(t)
	if err != nil {
		return nil, false
	}
	return v, true
}

// Reason explains a Result without a tag, for logs and status.
func (r Result) Reason() string {
	if r.OK() {
		return ""
	}
	if r.Seen == 0 {
		return "the ECR repository has no tagged images"
	}
	var parts []string
	add := func(n int, what string) {
		if n > 0 {
			parts = append(parts, strconv.Itoa(n)+" "+what)
		}
	}
	add(r.Excluded, "excluded")
	add(r.Filtered, "filtered out")
	add(r.Unparsable, "not parsable by the order")
	return "no tag qualified: of " + strconv.Itoa(r.Seen) + " tags, " + strings.Join(parts, ", ")
}
