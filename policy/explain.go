package policy

import (
	"sort"
	"time"
)

// Candidate is a tag that qualified, as Explain ranks it.
type Candidate struct {
	Tag      string
	Value    string // what was ordered
	Digest   string
	PushedAt time.Time
}

// Dropped is a tag that did not qualify, and why: "excluded", "filtered
// out" or "not parsable by the order".
type Dropped struct {
	Tag    string
	Reason string
}

// Explanation is Select's result with the best candidates, best first, and
// examples of dropped tags.
type Explanation struct {
	Result
	Candidates []Candidate
	Dropped    []Dropped
}

// Explain selects as Select does and also returns up to n candidates in
// the policy's order (the first is the chosen one) and up to n dropped tags
// for each reason.
func (p *Policy) Explain(images []Image, n int) Explanation {
	e := Explanation{Result: p.Select(images)}
	type ranked struct {
		v   verdict
		tag string
		img *Image
	}
	var (
		all     []ranked
		s       scratch
		reasons = map[state]string{excluded: "excluded", filtered: "filtered out", unparsable: "not parsable by the order"}
		shown   = map[state]int{}
	)
	for i := range images {
		img := &images[i]
		for _, tag := range img.Tags {
			var v verdict
			p.judge(&v, tag, img.PushedAt, &s)
			if v.state == qualified {
				all = append(all, ranked{v, tag, img})
				continue
			}
			if shown[v.state] < n {
				shown[v.state]++
				e.Dropped = append(e.Dropped, Dropped{Tag: tag, Reason: reasons[v.state]})
			}
		}
	}
	sort.SliceStable(all, func(i, j int) bool {
		c := p.compare(&all[i].v, &all[j].v, all[i].img, all[j].img)
		return c > 0 || c == 0 && all[i].tag > all[j].tag
	})
	for _, r := range all[:min(n, len(all))] {
		e.Candidates = append(e.Candidates, Candidate{Tag: r.tag, Value: r.v.value, Digest: r.img.Digest, PushedAt: r.img.PushedAt})
	}
	return e
}
