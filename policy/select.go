package policy

import (
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// Select picks the policy's tag from images. It never fails: a Result
// without a Tag says, through its counts, why nothing qualified.
func (p *Policy) Select(images []Image) Result {
	var (
		r       Result
		best    *Image
		bestTag string
		bestVer *semver.Version
	)
	for i := range images {
		img := &images[i]
	tags:
		for _, tag := range img.Tags {
			r.Seen++
			for _, ex := range p.exclude {
				if ex.MatchString(tag) {
					r.Excluded++
					continue tags
				}
			}
			if p.match != nil && !p.match.MatchString(tag) {
				r.Filtered++
				continue
			}
			switch p.Order {
			case Semver:
				v, err := semver.NewVersion(tag)
				if err != nil {
					r.Unparsable++
					continue
				}
				if !p.semver.Check(v) {
					r.Filtered++
					continue
				}
				if best != nil {
					if c := v.Compare(bestVer); c < 0 || c == 0 && tag <= bestTag {
						continue
					}
				}
				bestVer = v
			default:
				if best != nil {
					if c := img.PushedAt.Compare(best.PushedAt); c < 0 || c == 0 && tag <= bestTag {
						continue
					}
				}
			}
			best, bestTag = img, tag
		}
	}
	if best != nil {
		r.Tag, r.Digest, r.PushedAt = bestTag, best.Digest, best.PushedAt
	}
	return r
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
	add(r.Filtered, "did not match the filter")
	add(r.Unparsable, "were not versions")
	return "no tag qualified: of " + strconv.Itoa(r.Seen) + " tags, " + strings.Join(parts, ", ")
}
