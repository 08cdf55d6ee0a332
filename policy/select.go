package policy

import (
	"runtime"
	"strconv"
	"strings"
	"sync"
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
// one policy over one ECR repository. It remembers tags by position: the
// scanner lists images oldest first, so a cycle after a push finds the
// earlier tags where they were and judges only the new ones. A Memo is not
// safe for concurrent use.
type Memo struct {
	sig      string
	tags     []string
	verdicts []verdict
	// images records, per tag, what its image was, and result what Select
	// returned: when the listing is the same to the last push time, the
	// result is too.
	images []imageKey
	result *Result
	// chooser is where the last call's choice stood after its last tag,
	// with its chosen image copied into chosen: a call whose listing is
	// the last one plus new images offers only those.
	chooser     chooser
	chosen      Image
	haveChooser bool
}

type imageKey struct {
	digest string
	pushed time.Time
}

// NewMemo returns an empty Memo.
func NewMemo() *Memo { return &Memo{} }

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
	state state
	value string // what is ordered: the extracted value, or the tag
	dec   decimal
	ver   *semver.Version
}

// parallelMin is the number of tags from which selection is split across
// the processors.
const parallelMin = 8192

// SelectMemo is Select, remembering per-tag work in memo (which may be nil).
func (p *Policy) SelectMemo(images []Image, memo *Memo) Result {
	if memo == nil || p.extract.usesCreatedAt() {
		// Values may depend on push times, not on tags alone: nothing to remember.
		return p.selectCold(images)
	}
	if sig := p.Fingerprint(); memo.sig != sig {
		*memo = Memo{sig: sig}
	}
	tags, verdicts, same, from := p.remember(images, memo)
	if same && memo.result != nil {
		return *memo.result
	}
	c, first, k := chooser{p: p}, 0, 0
	if from > 0 && memo.haveChooser {
		// Continue from the last call's choice: find the image that holds
		// tag from, walking back from the end (the new images are there).
		c, c.p = memo.chooser, p
		first, k = len(images), len(tags)
		for first > 0 && k > from {
			first--
			k -= len(images[first].Tags)
		}
	}
	for i := first; i < len(images); i++ {
		img := &images[i]
		for range img.Tags {
			if k >= from || from <= 0 || !memo.haveChooser {
				c.offer(&verdicts[k], tags[k], img)
			}
			k++
		}
	}
	r := c.result()
	memo.result = &r
	memo.chooser, memo.haveChooser = c, true
	if c.bestImg != nil {
		memo.chosen = *c.bestImg
		memo.chooser.bestImg = &memo.chosen
	}
	return r
}

// remember returns every tag of images in order with its verdict, reusing
// the memo's verdicts for the leading tags that are where they were. same
// reports that every tag and its image's digest and push time are as they
// were in the last call. from is the first new tag when images are the
// last call's, unchanged, plus new tags after them (judged and appended
// to the memo, whose earlier state is not copied), else -1.
func (p *Policy) remember(images []Image, memo *Memo) (tags []string, verdicts []verdict, same bool, from int) {
	n, aligned := 0, 0
	same = true
	for i := range images {
		img := &images[i]
		for _, tag := range img.Tags {
			if aligned == n && n < len(memo.tags) && memo.tags[n] == tag {
				aligned++
				k := memo.images[n]
				same = same && k.digest == img.Digest && k.pushed.Equal(img.PushedAt)
			}
			n++
		}
	}
	prefixSame := same
	same = same && aligned == n && n == len(memo.tags)
	if aligned == n && n == len(memo.tags) {
		if !same {
			memo.result, memo.haveChooser = nil, false
			memo.images = imageKeys(images, memo.images[:0])
		}
		return memo.tags, memo.verdicts, same, -1
	}
	if prefixSame && aligned == len(memo.tags) && aligned > 0 {
		// Only new tags, after the known ones: judge those alone.
		k := 0
		for i := range images {
			img := &images[i]
			for _, tag := range img.Tags {
				if k >= aligned {
					memo.tags = append(memo.tags, tag)
					memo.images = append(memo.images, imageKey{img.Digest, img.PushedAt})
				}
				k++
			}
		}
		memo.verdicts = append(memo.verdicts, make([]verdict, n-aligned)...)
		var buf []byte
		for k := aligned; k < n; k++ {
			buf = p.judge(&memo.verdicts[k], memo.tags[k], time.Time{}, buf)
		}
		memo.result = nil
		return memo.tags, memo.verdicts, false, aligned
	}
	memo.haveChooser = false
	// Room to grow: the next pushes append without copying.
	room := n + n/4 + 16
	tags = make([]string, 0, room)
	for i := range images {
		tags = append(tags, images[i].Tags...)
	}
	verdicts = make([]verdict, n, room)
	copy(verdicts, memo.verdicts[:aligned])
	parallel(n-aligned, func(lo, hi int) {
		var buf []byte
		for k := aligned + lo; k < aligned+hi; k++ {
			buf = p.judge(&verdicts[k], tags[k], time.Time{}, buf)
		}
	})
	memo.tags, memo.verdicts, memo.result = tags, verdicts, nil
	memo.images = imageKeys(images, make([]imageKey, 0, room))
	return tags, verdicts, false, -1
}

// imageKeys lists, per tag, its image's digest and push time.
func imageKeys(images []Image, dst []imageKey) []imageKey {
	for i := range images {
		for range images[i].Tags {
			dst = append(dst, imageKey{images[i].Digest, images[i].PushedAt})
		}
	}
	return dst
}

// selectCold judges every tag afresh, splitting the images across the
// processors when there are many.
func (p *Policy) selectCold(images []Image) Result {
	n := 0
	for i := range images {
		n += len(images[i].Tags)
	}
	workers := chunks(n)
	if workers == 1 {
		return p.chooseRange(images).result()
	}
	parts := make([]chooser, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*len(images)/workers, (w+1)*len(images)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			parts[w] = p.chooseRange(images[lo:hi])
		}()
	}
	wg.Wait()
	total := parts[0]
	for _, part := range parts[1:] {
		total.merge(&part)
	}
	return total.result()
}

func (p *Policy) chooseRange(images []Image) chooser {
	c := chooser{p: p}
	var (
		buf []byte
		v   verdict
	)
	for i := range images {
		img := &images[i]
		for _, tag := range img.Tags {
			v = verdict{}
			buf = p.judge(&v, tag, img.PushedAt, buf)
			c.offer(&v, tag, img)
		}
	}
	return c
}

// chunks is how many parts n tags are split into.
func chunks(n int) int {
	if n < parallelMin {
		return 1
	}
	return max(1, min(runtime.GOMAXPROCS(0), n/(parallelMin/2)))
}

// parallel calls f over [0, n) in contiguous parts, one per processor when
// n is large.
func parallel(n int, f func(lo, hi int)) {
	workers := chunks(n)
	if workers == 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(w*n/workers, (w+1)*n/workers)
		}()
	}
	wg.Wait()
}

// chooser keeps the best candidate seen and the counts.
type chooser struct {
	p       *Policy
	r       Result
	best    verdict
	bestImg *Image
	bestTag string
}

func (c *chooser) offer(v *verdict, tag string, img *Image) {
	c.r.Seen++
	switch v.state {
	case excluded:
		c.r.Excluded++
		return
	case filtered:
		c.r.Filtered++
		return
	case unparsable:
		c.r.Unparsable++
		return
	}
	c.consider(v, tag, img)
}

func (c *chooser) consider(v *verdict, tag string, img *Image) {
	if c.bestImg != nil {
		d := c.p.compare(v, &c.best, img, c.bestImg)
		if d < 0 || d == 0 && !c.p.winsTie(tag, c.bestTag) {
			return
		}
	}
	c.best, c.bestImg, c.bestTag = *v, img, tag
}

// winsTie reports whether tag beats best when the order ranks them equal,
// as Flux breaks ties where it is deterministic: alphabetical and numerical
// take the byte-wise smallest tag (whichever the direction), semver and
// newest the byte-wise greatest (v1.0.0 over 1.0.0, 1.0.0+b over 1.0.0+a).
func (p *Policy) winsTie(tag, best string) bool {
	if p.Order == Alphabetical || p.Order == Numerical {
		return tag < best
	}
	return tag > best
}

// merge folds in the chooser of a later part of the images.
func (c *chooser) merge(o *chooser) {
	c.r.Seen += o.r.Seen
	c.r.Excluded += o.r.Excluded
	c.r.Filtered += o.r.Filtered
	c.r.Unparsable += o.r.Unparsable
	if o.bestImg != nil {
		c.consider(&o.best, o.bestTag, o.bestImg)
	}
}

func (c chooser) result() Result {
	r := c.r
	if c.bestImg != nil {
		r.Tag, r.Digest, r.PushedAt, r.Value = c.bestTag, c.bestImg.Digest, c.bestImg.PushedAt, c.best.value
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
	if tag == "" {
		v.state = filtered // ECR has no empty tags; never choose one
		return buf
	}
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
		matched, ok := false, false
		if p.hasLit {
			matched, ok = p.reLit.match(tag)
		}
		if !ok {
			matched = p.re.MatchString(tag)
		}
		if !matched {
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
		if ver.Prerelease() != "" && !p.rangeTakesPre || !p.constraint.Check(ver) {
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
		switch tag[len(tag)-1] {
		case 'g', 't', 'm':
			return strings.HasSuffix(tag, ".sig") || strings.HasSuffix(tag, ".att") || strings.HasSuffix(tag, ".sbom")
		}
		return false
	}
	for _, ex := range p.exclude {
		if ex.MatchString(tag) {
			return true
		}
	}
	return false
}

// parseVersion reads a version as Flux does (fluxcd/pkg/version.ParseVersion
// over Masterminds/semver v3.3.0, which Flux pins): an optional leading "v",
// then exactly MAJOR.MINOR.PATCH of digits, leading zeros allowed
// (zero-padded CalVer such as 2025.07.03 is a version), then an optional
// -prerelease and +build as semver has them. "1", "1.2", "1.2.3.4" and
// "20240101" are not versions.
func parseVersion(s string) (*semver.Version, bool) {
	t := strings.TrimPrefix(s, "v")
	core, rest := t, ""
	if i := strings.IndexAny(t, "-+"); i >= 0 {
		core, rest = t[:i], t[i:]
	}
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return nil, false
	}
	for i, p := range parts {
		if p == "" || strings.IndexFunc(p, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
			return nil, false
		}
		if trimmed := strings.TrimLeft(p, "0"); trimmed != p {
			if trimmed == "" {
				trimmed = "0"
			}
			parts[i] = trimmed
		}
	}
	// Masterminds checks the prerelease and build on the core without its
	// leading zeros, and orders by the numbers.
	v, err := semver.StrictNewVersion(strings.Join(parts, ".") + rest)
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
