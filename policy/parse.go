package policy

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/imagebutler/imagebutler/suggest"
)

// AnnotationError is a problem with one annotation of an object.
type AnnotationError struct {
	Key   string // annotation key
	Value string // annotation value
	// Policy is the id of the policy the annotation would have defined,
	// when it names one ("" when it does not): its markers are not
	// reported again as naming no policy.
	Policy string
	Err    error
	// Warning is set for problems that do not stop the annotation's other
	// policies, such as an unknown field or a policy no repo uses.
	Warning bool
}

// Error is "annotation <key>: <problem>".
func (e *AnnotationError) Error() string {
	return fmt.Sprintf("annotation %s: %v", e.Key, e.Err)
}

// Unwrap returns the problem.
func (e *AnnotationError) Unwrap() error { return e.Err }

// KeySuggestion returns the annotation key the misspelt key most likely
// meant, or "": a key of this butler's domain written with a typo
// (app.lily.com/flux.automated, app.lilly.com/flux.simpel.web), three
// edits at most. A key of another domain that does not end like one of
// ours is left alone.
func KeySuggestion(key string) string {
	domain, rest, ok := strings.Cut(key, "/")
	if !ok {
		return ""
	}
	if domain+"/" != Domain && len(suggest.Nearest(domain+"/", []string{Domain}, 3)) == 0 {
		return ""
	}
	candidates := []string{AutomatedKey, CustomReposKey, CustomPolicyKey}
	if after, ok := strings.CutPrefix(rest, "flux."); ok {
		if _, name, ok := strings.Cut(after, "."); ok && name != "" {
			for _, p := range []string{SimplePrefix, HoldPrefix, ArtifactPrefix, GatePrefix} {
				candidates = append(candidates, p+name)
			}
		}
	}
	if near := suggest.Nearest(key, candidates, 3); len(near) == 1 {
		return near[0]
	}
	return ""
}

// Automated reports whether annotations opt the object in.
func Automated(annotations map[string]string) bool {
	return annotations[AutomatedKey] == "true"
}

// Parse reads the policies of one object's annotations. namespace is the
// object's resolved namespace; region fills in bare account ids. An object
// that is not automated yields nothing. Each annotation that cannot be read
// adds an *AnnotationError and does not stop the others; warnings have
// Warning set and come with their policies.
func Parse(annotations map[string]string, namespace, region string) ([]*Policy, []error) {
	if !Automated(annotations) {
		return nil, nil
	}
	keys := make([]string, 0, len(annotations))
	for k := range annotations {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	var (
		policies []*Policy
		errs     []error
	)
	for _, key := range keys {
		value := annotations[key]
		switch {
		case strings.HasPrefix(key, SimplePrefix):
			p, err := parseSimple(strings.TrimPrefix(key, SimplePrefix), value, namespace, region)
			if err != nil {
				errs = append(errs, &AnnotationError{Key: key, Value: value, Policy: namespace + ":" + strings.TrimPrefix(key, SimplePrefix), Err: err})
				continue
			}
			p.Key = key
			policies = append(policies, p)
		case key == CustomReposKey || key == CustomPolicyKey || key == AutomatedKey || strings.HasPrefix(key, HoldPrefix) || strings.HasPrefix(key, ArtifactPrefix) || strings.HasPrefix(key, GatePrefix):
			// Read together below.
		case strings.HasPrefix(key, keyPrefix):
			if guess := KeySuggestion(key); guess != "" {
				errs = append(errs, &AnnotationError{Key: key, Value: value, Warning: true,
					Err: fmt.Errorf("unknown annotation; ignored%s", suggest.DidYouMean([]string{guess}))})
				continue
			}
			errs = append(errs, &AnnotationError{Key: key, Value: value, Warning: true,
				Err: fmt.Errorf("unknown annotation; ignored (known: %s, %s<policy>, %s, %s, %s<policy>, %s<policy>, %s<policy>)", AutomatedKey, SimplePrefix, CustomReposKey, CustomPolicyKey, HoldPrefix, ArtifactPrefix, GatePrefix)})
		}
	}
	_, hasRepos := annotations[CustomReposKey]
	_, hasPolicies := annotations[CustomPolicyKey]
	if hasRepos || hasPolicies {
		ps, perrs := parseCustom(annotations[CustomReposKey], annotations[CustomPolicyKey], hasRepos, hasPolicies, namespace)
		policies = append(policies, ps...)
		errs = append(errs, perrs...)
	}
	// Holds name policies of this object.
	byName := map[string]*Policy{}
	for _, p := range policies {
		byName[p.Name] = p
	}
	for _, key := range keys {
		if name, ok := strings.CutPrefix(key, GatePrefix); ok {
			g, err := ParseGate(annotations[key])
			if err == nil && byName[name] == nil {
				err = fmt.Errorf("gates policy %q, which this object does not define", name)
			}
			if err != nil {
				errs = append(errs, &AnnotationError{Key: key, Value: annotations[key], Err: err})
				// A policy whose gates cannot be read picks nothing: an
				// image written past the gates its team asked for is worse.
				policies = slices.DeleteFunc(policies, func(p *Policy) bool { return p.Name == name })
				continue
			}
			g.Key = key
			byName[name].Gate = g
			continue
		}
		if name, ok := strings.CutPrefix(key, ArtifactPrefix); ok {
			if err := setArtifact(byName[name], name, annotations[key]); err != nil {
				errs = append(errs, &AnnotationError{Key: key, Value: annotations[key], Err: err})
				// A policy that cannot tell charts from images picks nothing:
				// an image written where a chart version stands is worse.
				policies = slices.DeleteFunc(policies, func(p *Policy) bool { return p.Name == name })
			}
			continue
		}
		name, ok := strings.CutPrefix(key, HoldPrefix)
		if !ok {
			continue
		}
		reason := strings.TrimSpace(annotations[key])
		if reason == "" {
			reason = "held"
		}
		if p, found := byName[name]; found {
			p.Hold = reason
			continue
		}
		errs = append(errs, &AnnotationError{Key: key, Value: annotations[key], Warning: true,
			Err: fmt.Errorf("holds policy %q, which this object does not define; ignored", name)})
	}
	return policies, errs
}

// Artifact kinds a policy picks among (the values of ArtifactPrefix).
const (
	ArtifactImage = "image" // container images (the default)
	ArtifactChart = "chart" // Helm charts (artifact type application/vnd.cncf.helm.config.v1+json)
)

// setArtifact applies the artifact annotation of policy name (p, nil when
// this object does not define it) with value.
func setArtifact(p *Policy, name, value string) error {
	switch strings.TrimSpace(value) {
	case ArtifactImage, ArtifactChart:
	default:
		return fmt.Errorf("must be %q or %q, got %q", ArtifactImage, ArtifactChart, value)
	}
	if p == nil {
		return fmt.Errorf("sets the artifact of policy %q, which this object does not define", name)
	}
	p.Image.Charts = strings.TrimSpace(value) == ArtifactChart
	return nil
}
