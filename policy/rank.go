package policy

import "time"

// Standing is how a marker's current tag stands against the policy's choice.
type Standing int

// The standings RankCurrent reports.
const (
	// Unranked: the policy cannot rank the current tag: its exclusions or
	// filter reject it, or it is not a number or version.
	Unranked Standing = iota
	// Below: the choice ranks above the current tag; an update is an upgrade.
	Below
	// Same: the current tag is the choice, or ranks equal to it.
	Same
	// Above: the current tag ranks above the choice; writing the choice
	// would be a downgrade.
	Above
	// Unlisted: for newest-pushed, the policy's filter takes the current
	// tag but ECR no longer lists it, so it has no push time to rank by.
	Unlisted
)

// RankCurrent says how current (the tag a marker holds now) stands against
// chosen, the result of Select over images, in the policy's own order.
// A tag the policy's exclusions or filter reject is never ranked, in any
// order. For newest-pushed, current is ranked by its push time in images;
// pushed is that time when it is listed.
func (p *Policy) RankCurrent(images []Image, current string, chosen Result) (s Standing, pushed time.Time) {
	if current == "" || !chosen.OK() {
		return Unranked, time.Time{}
	}
	if current == chosen.Tag {
		return Same, chosen.PushedAt
	}
	if p.Order == Newest {
		var v verdict
		if p.judge(&v, current, time.Time{}, nil); v.state != qualified {
			return Unranked, time.Time{}
		}
		found := false
		for i := range images {
			for _, t := range images[i].Tags {
				if t == current && (!found || images[i].PushedAt.After(pushed)) {
					pushed, found = images[i].PushedAt, true
				}
			}
		}
		switch {
		case !found:
			return Unlisted, time.Time{}
		case pushed.After(chosen.PushedAt):
			return Above, pushed
		case pushed.Equal(chosen.PushedAt):
			return Same, pushed
		}
		return Below, pushed
	}
	var cur, best verdict
	p.judge(&cur, current, time.Time{}, nil)
	p.judge(&best, chosen.Tag, chosen.PushedAt, nil)
	if cur.state != qualified || best.state != qualified {
		return Unranked, time.Time{}
	}
	switch c := p.compare(&cur, &best, nil, nil); {
	case c > 0:
		return Above, time.Time{}
	case c == 0:
		return Same, time.Time{}
	}
	return Below, time.Time{}
}
