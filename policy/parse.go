package policy

import (
	"fmt"
	"sort"
	"strings"
)

// AnnotationError is a problem with one annotation of an object.
type AnnotationError struct {
	Key   string // annotation key
	Value string // annotation value
	Err   error
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
				errs = append(errs, &AnnotationError{Key: key, Value: value, Err: err})
				continue
			}
			p.Key = key
			policies = append(policies, p)
		case key == CustomReposKey || key == CustomPolicyKey || key == AutomatedKey || strings.HasPrefix(key, HoldPrefix):
			// Read together below.
		case strings.HasPrefix(key, keyPrefix):
			errs = append(errs, &AnnotationError{Key: key, Value: value, Warning: true,
				Err: fmt.Errorf("unknown annotation; ignored (known: %s, %s<policy>, %s, %s, %s<policy>)", AutomatedKey, SimplePrefix, CustomReposKey, CustomPolicyKey, HoldPrefix)})
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
