package scanner

import (
	"errors"
	"fmt"

	"github.com/imagebutler/imagebutler/gitwriter"
	"github.com/imagebutler/imagebutler/policy"
)

// Found is a policy and the object that defines it.
type Found struct {
	*policy.Policy
	File   string
	Object gitwriter.ObjectRef
	// Err is set when the id is defined twice, differently; such a policy
	// resolves to nothing and its markers are left alone.
	Err error
}

// ErrConflict marks a policy id defined twice, differently.
var ErrConflict = errors.New("policy is defined twice, differently")

// FindPolicies parses the policies of every automated object of tree, with
// region for annotations that give a bare account id. Each problem names the
// file, the object and the annotation; policy.AnnotationError warnings stay
// reachable with errors.As.
func FindPolicies(tree *gitwriter.Tree, region string) (map[string]*Found, []error) {
	found := map[string]*Found{}
	var problems []error
	for _, obj := range tree.Objects {
		ps, errs := policy.Parse(obj.Annotations, obj.Namespace, region)
		for _, e := range errs {
			problems = append(problems, fmt.Errorf("%s: %s: %w", obj.File, obj.ObjectRef, e))
		}
		for _, p := range ps {
			prev, dup := found[p.ID]
			if !dup {
				found[p.ID] = &Found{Policy: p, File: obj.File, Object: obj.ObjectRef}
				continue
			}
			if p.Hold != "" && prev.Hold == "" {
				prev.Hold = p.Hold // a hold on any defining object holds the policy
			}
			if !prev.Same(p) {
				problems = append(problems, fmt.Errorf("%s: %s: annotation %s: policy %s is already defined differently by %s in %s (%s, %s, %s)",
					obj.File, obj.ObjectRef, p.Key, p.ID, prev.Object, prev.File, prev.Image, prev.Filter(), prev.Ordering()))
				prev.Err = ErrConflict
			}
		}
	}
	return found, problems
}

// FailedPolicies are the ids of policies whose defining annotation failed
// among problems (FindPolicies'), but for those found defined elsewhere:
// their markers are left unchanged without a second problem.
func FailedPolicies(found map[string]*Found, problems []error) map[string]bool {
	failed := map[string]bool{}
	for _, p := range problems {
		var ae *policy.AnnotationError
		if errors.As(p, &ae) && !ae.Warning && ae.Policy != "" && found[ae.Policy] == nil {
			failed[ae.Policy] = true
		}
	}
	return failed
}
