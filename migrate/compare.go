package migrate

import (
	"context"

	"github.com/imagebutler/imagebutler/policy"
)

// Lister lists an ECR repository's images (scanner.Lister).
type Lister interface {
	List(ctx context.Context, ref policy.ImageRef) ([]policy.Image, error)
}

// Results of a comparison.
const (
	Same            = "same"
	Differs         = "differs"
	FluxNone        = "flux-none"        // Flux recorded no tag; imagebutler picks one
	ImagebutlerNone = "imagebutler-none" // imagebutler picks no tag; Flux recorded one
	NotCompared     = "not compared"
)

// Compare lists each policy's ECR repository (once per repository) and
// sets what imagebutler picks against what Flux recorded; it reports
// whether any differs. With a nil lister nothing is listed: every policy
// is "not compared".
func (p *Plan) Compare(ctx context.Context, l Lister) (differs bool) {
	listed := map[policy.ImageRef][]policy.Image{}
	failed := map[policy.ImageRef]error{}
	for _, pol := range p.Policies {
		switch {
		case pol.Policy == nil:
			pol.Result = NotCompared
			continue
		case l == nil:
			pol.Result, pol.Skip = NotCompared, "ECR not listed (run with --ecr)"
			continue
		}
		ref := pol.Policy.Image
		images, ok := listed[ref]
		if err := failed[ref]; err != nil {
			pol.Result, pol.Skip = NotCompared, "listing ECR failed: "+err.Error()
			continue
		}
		if !ok {
			var err error
			if images, err = l.List(ctx, ref); err != nil {
				failed[ref] = err
				pol.Result, pol.Skip = NotCompared, "listing ECR failed: "+err.Error()
				continue
			}
			listed[ref] = images
		}
		res := pol.Policy.Select(images)
		if res.OK() {
			pol.Pick = res.Tag
		}
		switch {
		case pol.Pick == pol.FluxTag:
			pol.Result = Same
		case pol.FluxTag == "":
			pol.Result = FluxNone
		case pol.Pick == "":
			pol.Result = ImagebutlerNone
		default:
			pol.Result = Differs
		}
		differs = differs || pol.Result != Same
	}
	return differs
}
