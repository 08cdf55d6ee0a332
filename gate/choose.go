package gate

import (
	"context"
	"slices"
	"time"

	"github.com/imagebutler/imagebutler/policy"
)

// MaxGated is how many gated candidates Choose passes over, newest first,
// before it gives up looking for one that passes.
const MaxGated = 20

// Gated is a candidate the gates refused, ranked above the choice.
type Gated struct {
	Tag    string
	Digest string
	Verdict
}

// Choice is a policy's pick among the candidates that pass its gates.
type Choice struct {
	Result policy.Result // !OK when none passed
	// Gated are the candidates refused, best first.
	Gated []Gated
	// Passed describes the gates the choice passed.
	Passed []string
	// Wake, when not zero, is when the earliest gated candidate comes of
	// age (minAge): a pass then may choose it.
	Wake time.Time
}

// Choose picks p's best candidate among images that passes s: first is
// p's choice over all of images (its memoised selection); while the
// gates refuse the choice, its image is set aside and p chooses again among
// the rest, at most MaxGated times.
func Choose(ctx context.Context, c *Checker, p *policy.Policy, images []policy.Image, first policy.Result, s Set) Choice {
	var out Choice
	res := first
	var rest []policy.Image // images without the gated ones, once one is
	for range MaxGated + 1 {
		if !res.OK() || ctx.Err() != nil {
			out.Result = res
			return out
		}
		img := policy.Image{Tags: []string{res.Tag}, Digest: res.Digest, PushedAt: res.PushedAt}
		v := c.Check(ctx, p.Image, img, s)
		if v.OK() {
			out.Result, out.Passed = res, v.Passed
			return out
		}
		out.Gated = append(out.Gated, Gated{Tag: res.Tag, Digest: res.Digest, Verdict: v})
		if !v.Until.IsZero() && (out.Wake.IsZero() || v.Until.Before(out.Wake)) {
			out.Wake = v.Until
		}
		if rest == nil {
			rest = slices.Clone(images)
		}
		gone := res.Digest
		rest = slices.DeleteFunc(rest, func(img policy.Image) bool { return img.Digest == gone })
		res = p.Select(rest)
	}
	out.Result = policy.Result{Seen: res.Seen, Excluded: res.Excluded, Filtered: res.Filtered, Unparsable: res.Unparsable}
	return out
}
